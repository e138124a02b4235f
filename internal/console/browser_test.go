package console_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/chromedp/chromedp"

	"github.com/openstage/openstage/internal/clientinfo"
	"github.com/openstage/openstage/internal/config"
	"github.com/openstage/openstage/internal/console"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/media"
	"github.com/openstage/openstage/internal/server"
)

// chromiumPath is Debian's chromium, which scripts/ci-deps-browser.sh installs.
const chromiumPath = "/usr/bin/chromium"

// chromium returns the browser to drive, skipping the test on a machine without one, but never in CI,
// which must run it.
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is missing: CI must install Debian's chromium (scripts/ci-deps-browser.sh)", chromiumPath)
		}
		t.Skipf("%s is missing: install Debian's chromium (scripts/ci-deps-browser.sh) to run the browser test", chromiumPath)
	}
	return chromiumPath
}

// startServer runs a whole openstage in-process on 127.0.0.1 (API, WHIP, events socket, console) with
// media on a free UDP port, and returns its base URL and an AWS SDK client for it.
func startServer(t *testing.T, logs io.Writer, maxParticipants int) (string, *ivsrealtime.Client) {
	t.Helper()
	_, base, c := runServer(t, logs, serverConfig(t, maxParticipants))
	return base, c
}

// serverConfig is the configuration of the tests' servers; a test changes what it needs before runServer.
func serverConfig(t *testing.T, maxParticipants int) *config.Config {
	return &config.Config{Listen: "127.0.0.1:0", RTCUDPPort: 0, DataDir: t.TempDir(), Region: "us-east-1", AccountID: "000000000000",
		AccessKeyID: "AKOSTEST", SecretAccessKey: "secret", SessionEndGrace: 500 * time.Millisecond, Retention: time.Hour,
		MediaPolicy: "ivs", MaxStages: 10, MaxPublicKeys: 3, MaxPublishersPerStage: 12, MaxSubscribersPerStage: maxParticipants}
}

// runServer runs a server on cfg until the test ends, and returns it, its base URL and an AWS SDK client for it.
func runServer(t *testing.T, logs io.Writer, cfg *config.Config) (*server.Server, string, *ivsrealtime.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, io.Discard, func(a net.Addr) { ready <- a }) }()
	<-ready
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		hc.CloseIdleConnections()
	})
	base := cfg.BaseURL()
	return s, base, ivsrealtime.New(ivsrealtime.Options{BaseEndpoint: aws.String(base), Region: "us-east-1", RetryMaxAttempts: 1, HTTPClient: hc,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKOSTEST", SecretAccessKey: "secret"}, nil
		})})
}

// browser is one headless Chromium; each participant is a tab of it.
type browser struct {
	t    *testing.T
	ctx  context.Context
	logs io.Writer
	wg   sync.WaitGroup
}

func startBrowser(t *testing.T, logs io.Writer) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()), // a fresh profile: no cached pages, no granted permissions
		chromedp.NoSandbox,                // CI runs as root in a container, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		// A fake camera (a moving pattern) and microphone (a beep), granted without a prompt.
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		// openstage on 127.0.0.1 offers loopback ICE candidates, which Chromium ignores without this.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// No traffic but the test's: the machines have no internet.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx, logs: logs}
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit
		b.wg.Wait()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no deadline (its life is ctx's)
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return b
}

// tab is one participant's page.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
}

// open opens the join page in a new tab and waits until its script runs.
func (b *browser) open(name, url string) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	msgs := chromedp.Console(ctx)
	b.wg.Go(func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			fmt.Fprintf(b.logs, "[%s] %s\n", name, m)
		}
	})
	tb := &tab{t: b.t, name: name, ctx: ctx}
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("%s: navigate: %v", name, err)
	}
	tb.waitFor("the page's script", `document.body.dataset.ready === "true"`, 10*time.Second)
	return tb
}

func (tb *tab) eval(js string) json.RawMessage {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("%s: %s: %v", tb.name, js, err)
	}
	return v
}

func (tb *tab) click(id string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID(id))); err != nil {
		tb.t.Fatalf("%s: click #%s: %v", tb.name, id, err)
	}
}

// waitFor polls a JavaScript condition.
func (tb *tab) waitFor(what, cond string, d time.Duration) {
	tb.t.Helper()
	ivstest.Eventually(tb.t, d, 100*time.Millisecond, func() error {
		if string(tb.eval("!!("+cond+")")) != "true" {
			return fmt.Errorf("%s: %s (%s)", tb.name, what, cond)
		}
		return nil
	})
}

func (tb *tab) errorText() string {
	var s string
	_ = json.Unmarshal(tb.eval(`document.getElementById("error").hidden ? "" : document.getElementById("error").textContent`), &s)
	return s
}

// pageStats is what the join page's openstageJoin.stats() reports (from getStats).
type pageStats struct {
	ConnectionState string `json:"connectionState"`
	PublishState    string `json:"publishState"`
	SubscriberCount int    `json:"subscriberCount"`
	Local           map[string]struct {
		PacketsSent   int    `json:"packetsSent"`
		FramesEncoded int    `json:"framesEncoded"`
		FrameWidth    int    `json:"frameWidth"`
		MimeType      string `json:"mimeType"`
		SDPFmtpLine   string `json:"sdpFmtpLine"`
	} `json:"local"`
	Remote map[string]remoteStats `json:"remote"`
}

type remoteStats struct {
	UserID         string `json:"userId"`
	Publishing     bool   `json:"publishing"`
	SubscribeState string `json:"subscribeState"`
	Video          *struct {
		FramesDecoded int    `json:"framesDecoded"`
		FrameWidth    int    `json:"frameWidth"`
		MimeType      string `json:"mimeType"`
	} `json:"video"`
	Audio *struct {
		PacketsReceived      int    `json:"packetsReceived"`
		TotalSamplesReceived int    `json:"totalSamplesReceived"`
		MimeType             string `json:"mimeType"`
	} `json:"audio"`
}

func (tb *tab) stats() pageStats {
	tb.t.Helper()
	var s pageStats
	if err := json.Unmarshal(tb.eval(`openstageJoin.stats()`), &s); err != nil {
		tb.t.Fatalf("%s: stats: %v", tb.name, err)
	}
	return s
}

// receiving reports whether the page decodes video frames and receives audio from each of the publishers.
func (s pageStats) receiving(publishers ...string) error {
	for _, p := range publishers {
		r, ok := s.Remote[p]
		switch {
		case !ok:
			return fmt.Errorf("no tile for %s", p)
		case r.Video == nil || r.Video.FramesDecoded == 0:
			return fmt.Errorf("no video frames decoded from %s", p)
		case r.Audio == nil || r.Audio.PacketsReceived == 0 || r.Audio.TotalSamplesReceived == 0:
			return fmt.Errorf("no audio received from %s", p)
		case r.Video.MimeType != "video/H264" || r.Audio.MimeType != "audio/opus":
			return fmt.Errorf("codecs from %s: %s, %s", p, r.Video.MimeType, r.Audio.MimeType)
		}
	}
	return nil
}

// unsignedToken is a token the page reads but no server would accept: the page checks only the expiry,
// as the IVS SDK does, so an expired one is refused before anything is sent.
func unsignedToken(base string, exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"jti": "AAAAAAAAAAAA", "topic": "xxxxxxxxxxxx", "exp": exp.Unix(),
		"whip_url": base + "/whip", "events_url": "ws" + strings.TrimPrefix(base, "http") + "/events",
		"capabilities": map[string]bool{"allow_publish": true, "allow_subscribe": true}})
	return enc([]byte(`{"alg":"ES384","typ":"JWT"}`)) + "." + enc(claims) + "." + enc([]byte("not a signature"))
}

// TestBrowserParticipants is the join page in a real browser against a real server: two participants
// publish camera and microphone and each sees and hears the other, a third watches both, a fourth finds
// the stage full; then the AWS SDK reads what openstage recorded of them. On the direct send path, the
// default (docs/DESIGN.md §4.11-4.12), Chromium decodes what openstage seals and sends itself, NACKs and
// sender reports included, and its subscriptions carry on on openstage's own endpoint.
func TestBrowserParticipants(t *testing.T) { browserParticipants(t, media.SendPathDirect) }

// TestBrowserParticipantsPionSendPath is the same with --media-send-path pion: pion's writer and
// connection for the whole subscription.
func TestBrowserParticipantsPionSendPath(t *testing.T) {
	browserParticipants(t, media.SendPathPion)
}

func browserParticipants(t *testing.T, sendPath string) {
	began := time.Now()
	logs := &ivstest.Buffer{} // the server's and the pages' logs, shown when the test fails
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("DEBUGLOGS") != "" {
			t.Logf("server and page logs:\n%s", logs.String())
		}
	})
	cfg := serverConfig(t, 3) // three participants at most: the fourth finds the stage full
	cfg.MediaSendPath = sendPath
	_, base, c := runServer(t, logs, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("browsers"),
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{
			{UserId: aws.String("alice")},
			{UserId: aws.String("bob")},
			{UserId: aws.String("carol"), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}},
			{UserId: aws.String("dave")},
		}})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.Stage.Arn
	toks := out.ParticipantTokens
	alice, bob, carol, dave := *toks[0].ParticipantId, *toks[1].ParticipantId, *toks[2].ParticipantId, *toks[3].ParticipantId
	page := func(i int) string { return base + console.JoinPath + "?token=" + *toks[i].Token }

	b := startBrowser(t, logs)
	tabs := map[string]*tab{}
	for i, name := range []string{"alice", "bob", "carol"} {
		tb := b.open(name, page(i))
		// The token's capabilities decide the publish box: checked for alice and bob, not for carol.
		want := "true"
		if name == "carol" {
			want = "false"
		}
		if got := string(tb.eval(`document.getElementById("publish").checked`)); got != want {
			t.Fatalf("%s: publish box checked=%s", name, got)
		}
		tb.click("join")
		tabs[name] = tb
	}
	for name, tb := range tabs {
		tb.waitFor("joining", `openstageJoin.stage && openstageJoin.stage.connectionState === "connected"`, 10*time.Second)
		if e := tb.errorText(); e != "" {
			t.Fatalf("%s: the page shows an error: %s", name, e)
		}
	}
	t.Logf("three browsers joined after %v", time.Since(began).Round(time.Millisecond))

	// Each publisher decodes the other's video and receives its audio; carol receives both.
	want := map[string][]string{"alice": {bob}, "bob": {alice}, "carol": {alice, bob}}
	for name, tb := range tabs {
		ivstest.Eventually(t, 20*time.Second, 200*time.Millisecond, func() error {
			s := tb.stats()
			if err := s.receiving(want[name]...); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if name != "carol" {
				v, a := s.Local["video"], s.Local["audio"]
				if s.PublishState != "published" || v.MimeType != "video/H264" || !strings.Contains(v.SDPFmtpLine, "profile-level-id=42e01f") ||
					!strings.Contains(v.SDPFmtpLine, "packetization-mode=1") || v.FramesEncoded == 0 || a.MimeType != "audio/opus" || a.PacketsSent == 0 {
					return fmt.Errorf("%s: publishing %+v", name, s.Local)
				}
			}
			// A tile per remote participant who may publish; carol, subscribe-only, is counted, not listed
			// (docs/DESIGN.md §4.3).
			if len(s.Remote) != len(want[name]) {
				return fmt.Errorf("%s: %d tiles, want %d: %+v", name, len(s.Remote), len(want[name]), s.Remote)
			}
			if s.SubscriberCount != 1 {
				return fmt.Errorf("%s: told of %d subscribers, want 1 (carol)", name, s.SubscriberCount)
			}
			t.Logf("%s receives %v: %+v", name, want[name], s.Remote)
			return nil
		})
	}
	t.Logf("media flowing both ways after %v", time.Since(began).Round(time.Millisecond))
	if strings.Contains(logs.String(), "direct send path unavailable") {
		t.Fatalf("a subscription fell back to pion's writer on a UDP pair (send path %s)", sendPath)
	}
	if sendPath == media.SendPathDirect {
		// Chromium's four subscriptions leave pion's connection (its first SRTCP, or 5 s) and carry on
		// on openstage's endpoint: consent answered, reports and NACKs, until they end.
		ivstest.Eventually(t, 10*time.Second, 200*time.Millisecond, func() error {
			if n := ivstest.Metric(t, base, "openstage_media_subscriptions_detached_total"); n < 4 {
				return fmt.Errorf("%v subscriptions detached, want 4", n)
			}
			return nil
		})
		// Past the timeouts that end a subscriber whose consent stopped (3 s + 5 s), carol still decodes
		// both publishers: Chromium's checks are answered, and what it sends keeps the subscriptions.
		before := tabs["carol"].stats()
		time.Sleep(10 * time.Second)
		after := tabs["carol"].stats()
		for _, p := range []string{alice, bob} {
			b, a := before.Remote[p], after.Remote[p]
			if b.Video == nil || a.Video == nil || a.Video.FramesDecoded <= b.Video.FramesDecoded+100 || a.Audio.PacketsReceived <= b.Audio.PacketsReceived+200 {
				t.Fatalf("carol, 10 s after the detach, from %s: before %+v %+v, after %+v %+v", p, b.Video, b.Audio, a.Video, a.Audio)
			}
		}
	}

	// The page shows a tile per remote participant: carol's, which this screenshot keeps, shows alice and bob.
	tiles := tabs["carol"].eval(`[...document.querySelectorAll("figure.tile.remote")].map(f => f.dataset.participantId + " " + f.querySelector(".name").textContent + " " + f.classList.contains("has-video"))`)
	var got []string
	_ = json.Unmarshal(tiles, &got)
	slices.Sort(got)
	wantTiles := []string{alice + " alice true", bob + " bob true"}
	slices.Sort(wantTiles)
	if !slices.Equal(got, wantTiles) {
		t.Fatalf("carol's tiles %q, want %q", got, wantTiles)
	}
	shot, err := chromedp.Run(tabs["carol"].ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("OPENSTAGE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shotPath := filepath.Join(dir, "console-join-two-tiles-"+sendPath+".png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the join page with two remote tiles: %s", shotPath)

	// Muting goes to the others through SET_STATE and STAGE_STATE: alice's page marks bob's mic muted.
	micBadge := fmt.Sprintf(`document.querySelector('figure.tile[data-participant-id=%q] .mic').hidden`, bob)
	tabs["bob"].click("mute-mic")
	tabs["alice"].waitFor("bob's mic muted", "!"+micBadge, 5*time.Second)
	tabs["bob"].click("mute-mic")
	tabs["alice"].waitFor("bob's mic unmuted", micBadge, 5*time.Second)

	// Readable errors. Publishing with a subscribe-only token: the server refuses it (403, code 2003).
	tabs["carol"].click("publish")
	tabs["carol"].waitFor("the no-capability error", `document.getElementById("error").textContent.includes("may not publish")`, 10*time.Second)
	// The stage is full (at most three participants here): the events socket's JOIN_ERROR.
	d := b.open("dave", page(3))
	d.click("join")
	d.waitFor("the stage-full error", `document.getElementById("error").textContent.includes("stage is full")`, 10*time.Second)
	// An expired token is refused by the page itself.
	d.eval(fmt.Sprintf(`{ const t = document.getElementById("token"); t.value = %q; t.dispatchEvent(new Event("input")); }`, unsignedToken(base, time.Now().Add(-time.Minute))))
	d.click("join")
	d.waitFor("the expired-token error", `document.getElementById("error").textContent.includes("expired")`, 5*time.Second)
	t.Logf("errors: %q, %q", tabs["carol"].errorText(), d.errorText())

	// Alice stops publishing but stays: the others drop their subscriptions to her, keep her tile without
	// video, and show no error (the server closing a subscription whose publisher stopped is no failure).
	tabs["alice"].click("publish")
	for _, name := range []string{"bob", "carol"} {
		tabs[name].waitFor("alice's stop", fmt.Sprintf(`(f => f && !f.classList.contains("has-video") && !f.classList.contains("publishing"))(document.querySelector('figure.tile[data-participant-id=%q]'))`, alice), 10*time.Second)
	}
	if e := tabs["bob"].errorText(); e != "" {
		t.Fatalf("bob's page shows an error after alice stopped publishing: %s", e)
	}
	if s := tabs["bob"].stats(); s.Remote[alice].SubscribeState != "not_subscribed" || s.Remote[alice].Video != nil || s.PublishState != "published" {
		t.Fatalf("bob after alice stopped publishing: %+v", s)
	}

	// Everyone leaves; the session ends after its grace window, and the API tells what happened.
	for _, name := range []string{"alice", "bob", "carol"} {
		tabs[name].click("leave")
		tabs[name].waitFor("leaving", `!openstageJoin.stage && document.querySelectorAll("figure.tile.remote").length === 0`, 10*time.Second)
	}
	session := ivstest.WaitSessionEnded(ctx, t, c, arn, 1)
	parts, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: arn, SessionId: &session})
	if err != nil || len(parts.Participants) != 4 {
		t.Fatalf("participants %+v %v", parts, err)
	}

	// What the server recorded of the browser: the same as ua-parser makes of its User-Agent.
	var ua string
	_ = json.Unmarshal(tabs["alice"].eval(`navigator.userAgent`), &ua)
	uaReq, _ := http.NewRequest("GET", "/", nil)
	uaReq.Header.Set("User-Agent", ua)
	resolver, err := clientinfo.New("")
	if err != nil {
		t.Fatal(err)
	}
	parsed := resolver.FromRequest(uaReq, "")
	_ = resolver.Close()
	for _, who := range []struct {
		id, user  string
		published bool
	}{{alice, "alice", true}, {bob, "bob", true}, {carol, "carol", false}} {
		gp, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: arn, SessionId: &session, ParticipantId: aws.String(who.id)})
		if err != nil {
			t.Fatal(err)
		}
		p := gp.Participant
		browserName := aws.ToString(p.BrowserName)
		// Headless Chromium says HeadlessChrome in its User-Agent, and ua-parser reports it so; a person's
		// Chromium or Chrome says Chrome.
		if !slices.Contains([]string{"Chrome", "Chromium", "HeadlessChrome"}, browserName) || browserName != parsed.BrowserName ||
			aws.ToString(p.BrowserVersion) != parsed.BrowserVersion || aws.ToString(p.OsName) != "Linux" ||
			aws.ToString(p.SdkVersion) != console.SDKVersion || p.Protocol != types.ParticipantProtocolWhip ||
			p.Published != who.published || p.State != types.ParticipantStateDisconnected || aws.ToString(p.UserId) != who.user {
			t.Fatalf("%s: browser %q %q os %q sdk %q protocol %s published %v state %s (the User-Agent %q)", who.user, browserName,
				aws.ToString(p.BrowserVersion), aws.ToString(p.OsName), aws.ToString(p.SdkVersion), p.Protocol, p.Published, p.State, ua)
		}
		if who.user == "alice" {
			t.Logf("GetParticipant alice: browser %s %s, os %s, sdk %s, protocol %s", browserName, aws.ToString(p.BrowserVersion),
				aws.ToString(p.OsName), aws.ToString(p.SdkVersion), p.Protocol)
		}
	}

	// The events, as ListParticipantEvents gives them. The order between a participant's own subscriptions
	// and its publish depends on timing, so each list is checked as: JOINED first, LEFT last, the expected
	// events in between, and every start before its stop.
	wantEvents := map[string][]string{
		alice: {"PUBLISH_STARTED", "SUBSCRIBE_STARTED>" + bob, "SUBSCRIBE_STOPPED>" + bob, "PUBLISH_STOPPED"},
		bob:   {"PUBLISH_STARTED", "SUBSCRIBE_STARTED>" + alice, "SUBSCRIBE_STOPPED>" + alice, "PUBLISH_STOPPED"},
		carol: {"SUBSCRIBE_STARTED>" + alice, "SUBSCRIBE_STARTED>" + bob, "PUBLISH_ERROR:INSUFFICIENT_CAPABILITIES",
			"SUBSCRIBE_STOPPED>" + alice, "SUBSCRIBE_STOPPED>" + bob},
	}
	for pid, w := range wantEvents {
		evs := ivstest.Events(ctx, t, c, arn, session, pid)
		if len(evs) < 2 || evs[0] != "JOINED" || evs[len(evs)-1] != "LEFT" {
			t.Fatalf("events of %s: %q", pid, evs)
		}
		mid := slices.Clone(evs[1 : len(evs)-1])
		slices.Sort(mid)
		w = slices.Clone(w)
		slices.Sort(w)
		if !slices.Equal(mid, w) {
			t.Fatalf("events of %s\n got %q\nwant JOINED, %q, LEFT", pid, evs, w)
		}
		for i, e := range evs {
			if stop, ok := strings.CutPrefix(e, "SUBSCRIBE_STOPPED"); ok && !slices.Contains(evs[:i], "SUBSCRIBE_STARTED"+stop) ||
				e == "PUBLISH_STOPPED" && !slices.Contains(evs[:i], "PUBLISH_STARTED") {
				t.Fatalf("events of %s: %s before its start: %q", pid, e, evs)
			}
		}
		t.Logf("events of %s: %q", pid, evs)
	}
	if evs := ivstest.Events(ctx, t, c, arn, session, dave); !slices.Equal(evs, []string{"JOIN_ERROR:QUOTA_EXCEEDED"}) {
		t.Fatalf("events of dave: %q", evs)
	}
	t.Logf("done in %v", time.Since(began).Round(time.Millisecond))
}
