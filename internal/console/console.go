// Package console serves openstage's browser pages and the browser client they use: the operator's console at
// /console/ (stages, live sessions updating from the event stream, past sessions and their timelines, token
// creation; it signs its AWS API calls itself with the API key the operator logs in with), the join page at
// /console/join, where a person joins a stage with a participant token, previews and publishes the camera
// and microphone and sees and hears the others (docs/DESIGN.md §8), and the client module at
// /console/sdk/openstage-stage.js, which apps may load too.
//
// Everything is embedded in the binary and served from it: the machines openstage runs on may have no
// internet, so the pages load nothing from a CDN or any other origin.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed web
var webFS embed.FS

// Prefix is the path the handler serves under; mount the handler there (mux.Handle(Prefix, Handler())).
const Prefix = "/console/"

// Paths of the pages and the client module.
const (
	ConsolePath = Prefix
	JoinPath    = Prefix + "join"
	ModulePath  = Prefix + "sdk/openstage-stage.js"
)

// SDKVersion is the browser client's version (SDK_VERSION in web/sdk/openstage-stage.js), which it sends
// as X-Stages-SDK and GetParticipant returns as sdkVersion.
const SDKVersion = "openstage-web-0.1.0"

// contentTypes are the types of the embedded files, by extension. JavaScript must be served as JavaScript:
// browsers refuse module scripts of any other type; and every text file names its charset, because
// without one Chromium reads a script as windows-1252 (docs/DESIGN.md §4.4, "Serving the SDK").
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// aliases are the pages' URLs without an extension.
var aliases = map[string]string{
	"":     "console.html",
	"join": "join.html",
}

// pageCSP keeps the pages to their own scripts and styles. connect-src allows any http(s) and ws(s) origin
// because a token's whip_url and events_url name the server by its public URL, which need not be the
// origin the page was loaded from; media-src allows the camera preview and the remote streams.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"media-src 'self' blob: mediastream:; connect-src 'self' http: https: ws: wss:; " +
	"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// consoleCSP is the console's: it talks to its own origin only (the API and the event stream), shows no
// media and loads no images but its own.
const consoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"media-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type file struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the console's pages and the client module under Prefix.
func Handler() http.Handler {
	files := map[string]file{}
	err := fs.WalkDir(webFS, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil // only what the pages use is served
		}
		b, err := webFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		files[strings.TrimPrefix(p, "web/")] = file{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		// The files are compiled in; failing to read them is a build defect.
		panic("console: embedded files: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if a, ok := aliases[name]; ok {
			name = a
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		h.Set("X-Content-Type-Options", "nosniff")
		// The files change with the binary and their URLs carry no version, so browsers may keep them but
		// must ask whether they are still current; the ETag makes that a 304 without a body.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		if name == "console.html" {
			// The console needs neither the camera nor any other origin; its URLs name stages and sessions,
			// which no referrer should carry.
			h.Set("Content-Security-Policy", consoleCSP)
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Permissions-Policy", "camera=(), microphone=()")
		} else if path.Ext(name) == ".html" {
			h.Set("Content-Security-Policy", pageCSP)
			// The join page's URL may carry a participant token (?token=): never send it on as a referrer.
			h.Set("Referrer-Policy", "no-referrer")
			// Camera and microphone for this origin only.
			h.Set("Permissions-Policy", "camera=(self), microphone=(self)")
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	})
}
