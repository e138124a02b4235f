package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/openstage/openstage/internal/config"
	"github.com/openstage/openstage/internal/console"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
)

const (
	browserHelperEnv  = "OPENSTAGE_NETNS_BROWSER_HELPER"
	browserHelperURLs = "OPENSTAGE_NETNS_BROWSER_URLS" // the join pages, space-separated
)

// TestICETCPChromiumWithoutUDP: headless Chromium in a network namespace whose UDP is dropped joins a
// stage twice with the join page (two tabs, two participants), and each tab publishes camera and
// microphone and decodes the other's video, all over ICE-TCP; the domain records both participants'
// publishes and subscriptions as usual.
func TestICETCPChromiumWithoutUDP(t *testing.T) {
	fw := needNetns(t)
	needChromium(t)
	n := udpDroppingNetns(t, fw)
	cfg := testConfig(t)
	cfg.Listen = net.JoinHostPort(n.hostIP, "0")
	cfg.RTCTCPPort = config.SameAsUDP
	r := runServer(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	v, toks, err := r.Server.Domain().CreateStage(ctx, "chromium-no-udp", nil, []stage.TokenSpec{{UserID: "alice"}, {UserID: "bob"}})
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, tok := range toks {
		urls = append(urls, r.base+console.JoinPath+"?token="+tok.Token)
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.ns, os.Args[0], "-test.run=^TestNetnsBrowserHelperProcess$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), browserHelperEnv+"=1", browserHelperURLs+"="+strings.Join(urls, " "))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err != nil || testing.Verbose() {
		t.Logf("Chromium in the namespace:\n%s", out.String())
	}
	if err != nil {
		t.Fatalf("the browser client failed: %v", err)
	}
	if !strings.Contains(out.String(), "RESULT both-receiving") {
		t.Fatal("the browser client reported no result")
	}
	if n := droppedUDP(t, fw, n.ns); n == 0 {
		t.Error("the firewall dropped no UDP: Chromium never tried it")
	} else {
		t.Logf("the firewall dropped %d UDP packets from Chromium", n)
	}
	m := r.metrics(t)
	if !strings.Contains(m, `openstage_media_connections_total{transport="udp"} 0`+"\n") ||
		strings.Contains(m, `openstage_media_connections_total{transport="tcp"} 0`+"\n") {
		t.Errorf("connections by transport:\n%s", grepLines(m, "openstage_media_connections_total"))
	}
	sess, err := r.Server.Domain().ListSessions(ctx, v.ARN, store.Page{Limit: 1})
	if err != nil || len(sess) != 1 {
		t.Fatalf("sessions %v %v", sess, err)
	}
	for i, tok := range toks {
		other := toks[1-i].ParticipantID
		ivstest.Eventually(t, ivstest.Until(ctx, 10*time.Second), 50*time.Millisecond, func() error {
			evs, err := r.Server.Domain().ListEvents(ctx, v.ARN, sess[0].ID, tok.ParticipantID, store.Page{Limit: 100})
			if err != nil {
				return err
			}
			var names []string
			for _, e := range evs {
				s := string(e.Name)
				if e.RemoteParticipantID != "" {
					s += ">" + string(e.RemoteParticipantID)
				}
				names = append(names, s)
			}
			got := " " + strings.Join(names, " ") + " "
			for _, want := range []string{" JOINED ", " PUBLISH_STARTED ", " SUBSCRIBE_STARTED>" + string(other) + " ", " LEFT "} {
				if !strings.Contains(got, want) {
					return fmt.Errorf("events of %s: %s; no %s", tok.ParticipantID, got, want)
				}
			}
			return nil
		})
	}
}

func grepLines(s, sub string) string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}

// TestNetnsBrowserHelperProcess is the browser side of TestICETCPChromiumWithoutUDP, run by it inside the
// network namespace; it does nothing in a normal test run.
func TestNetnsBrowserHelperProcess(t *testing.T) {
	if os.Getenv(browserHelperEnv) != "1" {
		t.Skip("the browser of TestICETCPChromiumWithoutUDP")
	}
	urls := strings.Fields(os.Getenv(browserHelperURLs))
	origin := urls[0][:strings.Index(urls[0], console.JoinPath)]
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// The server is on the veth's private address over plain HTTP: the camera needs a secure page.
		chromedp.Flag("unsafely-treat-insecure-origin-as-secure", origin),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	eval := func(ctx context.Context, js string) string {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		v, err := chromedp.Run(c, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return string(v)
	}
	var tabs []context.Context
	for i, u := range urls {
		ctx, cancel := chromedp.NewContext(bctx)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
			t.Fatalf("tab %d: %v", i, err)
		}
		ivstest.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
			if eval(ctx, `document.body.dataset.ready === "true"`) != "true" {
				return fmt.Errorf("tab %d: the page's script has not run", i)
			}
			return nil
		})
		c, ccancel := context.WithTimeout(ctx, 10*time.Second)
		if err := chromedp.Do(c, chromedp.Click(chromedp.ID("join"))); err != nil {
			ccancel()
			t.Fatalf("tab %d: join: %v", i, err)
		}
		ccancel()
		tabs = append(tabs, ctx)
	}
	start := time.Now()
	for i, ctx := range tabs {
		ivstest.Eventually(t, 40*time.Second, 250*time.Millisecond, func() error {
			var s struct {
				PublishState string `json:"publishState"`
				Remote       map[string]struct {
					Video *struct {
						FramesDecoded int `json:"framesDecoded"`
					} `json:"video"`
				} `json:"remote"`
			}
			if err := json.Unmarshal([]byte(eval(ctx, `openstageJoin.stats()`)), &s); err != nil {
				return err
			}
			if s.PublishState != "published" {
				return fmt.Errorf("tab %d: publish %q", i, s.PublishState)
			}
			for id, r := range s.Remote {
				if r.Video != nil && r.Video.FramesDecoded > 10 {
					t.Logf("tab %d decodes %s's video (%d frames) %v after joining", i, id, r.Video.FramesDecoded, time.Since(start))
					return nil
				}
			}
			return fmt.Errorf("tab %d decodes no video yet: %+v; error %s", i, s, eval(ctx, `document.getElementById("error").textContent`))
		})
	}
	fmt.Println("RESULT both-receiving")
	for _, ctx := range tabs {
		c, ccancel := context.WithTimeout(ctx, 10*time.Second)
		_, _ = chromedp.Run(c, chromedp.Evaluate[[]byte](`openstageJoin.stage && openstageJoin.stage.leave().then(() => true)`, chromedp.EvalAwaitPromise))
		ccancel()
	}
	time.Sleep(500 * time.Millisecond)
}
