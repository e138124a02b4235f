package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/openstage/openstage/internal/console"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func TestFilesTypesAndCaching(t *testing.T) {
	h := console.Handler()
	for _, tc := range []struct{ path, ctype, contains string }{
		{console.JoinPath, "text/html; charset=utf-8", `<script type="module" src="join.js">`},
		{"/console/join.js", "text/javascript; charset=utf-8", `from "./sdk/openstage-stage.js"`},
		{"/console/join.css", "text/css; charset=utf-8", ".tile"},
		{console.ModulePath, "text/javascript; charset=utf-8", "export class Stage"},
		{console.ConsolePath, "text/html; charset=utf-8", `<script type="module" src="console.js">`},
		{"/console/console.js", "text/javascript; charset=utf-8", `from "./sigv4.js"`},
		{"/console/sigv4.js", "text/javascript; charset=utf-8", "export async function signRequest"},
		{"/console/timeline.js", "text/javascript; charset=utf-8", "export function renderTimeline"},
		{"/console/console.css", "text/css; charset=utf-8", ".timeline"},
	} {
		res := get(t, h, "GET", tc.path)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != tc.ctype || !strings.Contains(string(body), tc.contains) {
			t.Fatalf("%s: %d %q, body has %q: %v", tc.path, res.StatusCode, res.Header.Get("Content-Type"), tc.contains, strings.Contains(string(body), tc.contains))
		}
		if res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: caching headers %v", tc.path, res.Header)
		}
		etag := res.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("%s: no ETag", tc.path)
		}
		if res := get(t, h, "GET", tc.path, "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
			t.Fatalf("%s: revalidation gave %d", tc.path, res.StatusCode)
		}
		if res := get(t, h, "HEAD", tc.path); res.StatusCode != 200 {
			t.Fatalf("HEAD %s: %d", tc.path, res.StatusCode)
		}
	}
	res := get(t, h, "GET", console.JoinPath)
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || res.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("page headers %v", res.Header)
	}
	// The console talks to its own origin only, and has no use for the camera.
	res = get(t, h, "GET", console.ConsolePath)
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self';") || strings.Contains(csp, "ws:") ||
		res.Header.Get("Permissions-Policy") != "camera=(), microphone=()" || res.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("console headers %v", res.Header)
	}
	for _, p := range []string{"/console/index.html", "/console/nope.js", "/console/sdk/", "/console/../go.mod", "/console/web/join.html"} {
		if res := get(t, h, "GET", p); res.StatusCode != 404 {
			t.Fatalf("%s: %d", p, res.StatusCode)
		}
	}
	if res := get(t, h, "POST", console.JoinPath); res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d %v", res.StatusCode, res.Header)
	}
}

// TestNothingFromElsewhere: the machines may have no internet, so the pages must load nothing from
// another origin (no CDN, no font service).
func TestNothingFromElsewhere(t *testing.T) {
	h := console.Handler()
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import\s+url\(\s*["']?(https?:)?//|\bfrom\s+["'](https?:)?//|import\(\s*["'](https?:)?//`)
	for _, p := range []string{console.JoinPath, "/console/join.js", "/console/join.css", console.ModulePath,
		console.ConsolePath, "/console/console.js", "/console/sigv4.js", "/console/timeline.js", "/console/console.css"} {
		body, _ := io.ReadAll(get(t, h, "GET", p).Body)
		if m := external.Find(body); m != nil {
			t.Errorf("%s loads from another origin: %q", p, m)
		}
	}
}

// TestSDKVersionPassesTheModel: the client's version is what GetParticipant returns as sdkVersion, which
// the API model restricts to [a-zA-Z0-9-_.,:;\s]; a version the server had to cut would not round-trip.
func TestSDKVersionPassesTheModel(t *testing.T) {
	body, _ := io.ReadAll(get(t, console.Handler(), "GET", console.ModulePath).Body)
	m := regexp.MustCompile(`export const SDK_VERSION = "([^"]*)"`).FindSubmatch(body)
	if m == nil {
		t.Fatal("no SDK_VERSION in the module")
	}
	if v := string(m[1]); v != console.SDKVersion || !regexp.MustCompile(`^[a-zA-Z0-9\-_.,:;\s]{1,128}$`).MatchString(v) {
		t.Fatalf("SDK_VERSION %q (Go says %q)", v, console.SDKVersion)
	}
}
