package recording_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/openstage/openstage/internal/recording/bucket"
)

// hlsJS is hls.js as scripts/ci-deps-recording.sh installs it (npm ci in scripts/clients/hls).
var hlsJS = filepath.Join("..", "..", "scripts", "clients", "hls", "node_modules", "hls.js", "dist", "hls.min.js")

const chromiumPath = "/usr/bin/chromium"

// TestHLSJSPlaysRecording: a recording played as a web page plays it: hls.js (npm) in Debian's headless
// Chromium loads the multivariant playlist over HTTP, plays, and reports the video's dimensions; the
// screenshot goes to $OPENSTAGE_ARTIFACTS.
func TestHLSJSPlaysRecording(t *testing.T) {
	for _, need := range []string{chromiumPath, hlsJS} {
		if _, err := os.Stat(need); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI=true but %s is missing (scripts/ci-deps-browser.sh, scripts/ci-deps-recording.sh)", need)
			}
			t.Skipf("%s is missing: run scripts/ci-deps-browser.sh and scripts/ci-deps-recording.sh", need)
		}
	}
	root := t.TempDir()
	store, err := bucket.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	_, prefix := record(t, store, "recordings", true, 6*time.Second)
	dir := filepath.Join(root, "recordings", filepath.FromSlash(prefix))

	mux := http.NewServeMux()
	mux.Handle("/rec/", http.StripPrefix("/rec/", http.FileServer(http.Dir(dir))))
	mux.HandleFunc("/hls.min.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, hlsJS) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><html><body style="margin:0;background:#000">
<video id="v" muted playsinline style="width:640px;height:360px"></video>
<script src="/hls.min.js"></script>
<script>
window.hlsErrors = [];
const v = document.getElementById("v");
const hls = new Hls({debug: false});
hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) window.hlsErrors.push(d.type + ": " + d.details); });
hls.loadSource("/rec/media/hls/multivariant.m3u8");
hls.attachMedia(v);
hls.on(Hls.Events.MANIFEST_PARSED, () => v.play());
</script></body></html>`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root in a container, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.WindowSize(800, 500),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	// Playing: past 2 s of the recording (its second segment), with the video's size known to the element.
	const wait = `new Promise((resolve) => {
  const check = () => {
    const v = document.getElementById("v");
    if (window.hlsErrors.length || (v.videoWidth > 0 && v.currentTime > 2.5)) {
      resolve({width: v.videoWidth, height: v.videoHeight, time: v.currentTime, errors: window.hlsErrors});
    } else { setTimeout(check, 100); }
  };
  check();
})`
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](wait, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Width, Height int
		Time          float64
		Errors        []string
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if len(got.Errors) > 0 || got.Width != 320 || got.Height != 180 {
		t.Fatalf("hls.js played %+v, want 320x180 without errors", got)
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("OPENSTAGE_ARTIFACTS")
	if out == "" {
		out = t.TempDir()
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(out, "recording-hlsjs-playback.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("hls.js played the recording at %dx%d to %.1f s; screenshot %s", got.Width, got.Height, got.Time, path)
}
