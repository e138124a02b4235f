package server

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/openstage/openstage/internal/console"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/stage"
)

const (
	shapedHelperEnv   = "OPENSTAGE_SHAPED_HELPER"
	shapedHelperToken = "OPENSTAGE_SHAPED_TOKEN"
	shapedHelperPub   = "OPENSTAGE_SHAPED_PUB"
)

// TestSimulcastFollowsAShapedLink: a simulcast publisher (pion: three layers of about 180, 470 and 760
// kbit/s) and two subscribers that both ask for the highest layer, one on the host and one in a network
// namespace behind a veth shaped to 300 kbit/s (tc tbf). The constrained one moves down to the lowest layer
// within seconds, from the loss its receiver reports show, and keeps receiving video and keyframes; the
// other stays on the highest.
func TestSimulcastFollowsAShapedLink(t *testing.T) {
	shapedLinkTest(t, func(ctx context.Context, r *testServer, n netnsNet, hc *http.Client, token string) {
		pub, err := peer.Publish(ctx, peer.Options{WHIPURL: r.whip, Token: token, LocalAddr: n.hostIP, HTTP: hc, Simulcast: []string{"low", "mid", "hi"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pub.Close)
		if err := pub.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSimulcastFromChromiumFollowsAShapedLink is TestSimulcastFollowsAShapedLink with headless Chromium
// publishing its camera as three H.264 layers (320x180, 640x360, 1280x720; at most 150, 600 and 1500
// kbit/s, as its own bandwidth estimate allows) instead of pion.
func TestSimulcastFromChromiumFollowsAShapedLink(t *testing.T) {
	needChromium(t)
	shapedLinkTest(t, func(ctx context.Context, r *testServer, n netnsNet, hc *http.Client, token string) {
		// The page is served from the veth's private address over plain HTTP: the camera needs a secure page.
		tab := chromiumTab(t, r.base+console.JoinPath, chromedp.Flag("unsafely-treat-insecure-origin-as-secure", r.base))
		publishSimulcastFromChromium(t, tab, r.whip, token)
	})
}

// shapedLinkTest runs the subscribers of the shaped-link tests against the publisher that publish connects
// with token.
func shapedLinkTest(t *testing.T, publish func(ctx context.Context, r *testServer, n netnsNet, hc *http.Client, token string)) {
	needNetns(t)
	if _, err := exec.LookPath("tc"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and tc (iproute2) is missing")
		}
		t.Skip("tc (iproute2) is missing")
	}
	n := makeNetns(t, "")
	run(t, "tc", "qdisc", "add", "dev", n.hostDev, "root", "tbf", "rate", "300kbit", "burst", "8kb", "latency", "400ms")

	cfg := testConfig(t)
	cfg.Listen = net.JoinHostPort(n.hostIP, "0")
	cfg.MediaPolicy = "ivs"
	r := runServer(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	v, toks, err := r.Server.Domain().CreateStage(ctx, "shaped", nil, []stage.TokenSpec{{}, {Capabilities: []stage.Capability{stage.CapSubscribe}},
		{Capabilities: []stage.Capability{stage.CapSubscribe}}})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	publish(ctx, r, n, hc, toks[0].Token)
	ivstest.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error { // as a client, subscribe once it publishes
		if !r.Server.Domain().Publishing(ivs.StageID(ivs.LastSegment(v.ARN)), toks[0].ParticipantID) {
			return fmt.Errorf("%s is not publishing", toks[0].ParticipantID)
		}
		return nil
	})
	free, err := peer.Subscribe(ctx, peer.Options{WHIPURL: r.whip, Token: toks[1].Token, LocalAddr: n.hostIP, HTTP: hc,
		Header: http.Header{"X-Stages-Initial-Layer-Pref": {"highest"}}}, string(toks[0].ParticipantID))
	if err != nil {
		t.Fatal(err)
	}
	defer free.Close()
	// Every layer arrives and is measured (its bitrate) before the constrained subscriber comes, so that
	// the automatic choice knows them all; Chromium turns its higher layers on as its estimate grows.
	ivstest.Eventually(t, 30*time.Second, 250*time.Millisecond, func() error {
		l, err := getLayers(ctx, hc, free.Link(relLayerLink))
		if err != nil {
			return err
		}
		if len(l.Layers) != 3 {
			return fmt.Errorf("%d layers", len(l.Layers))
		}
		for _, x := range l.Layers {
			if x.Bitrate == 0 {
				return fmt.Errorf("layer %s not measured yet", x.EncodingID)
			}
		}
		t.Logf("layers: %+v", l.Layers)
		return nil
	})

	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.ns, os.Args[0], "-test.run=^TestShapedHelperProcess$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), shapedHelperEnv+"=1", helperWHIP+"="+r.whip, shapedHelperToken+"="+toks[2].Token,
		shapedHelperPub+"="+string(toks[0].ParticipantID), helperLocal+"="+n.clientIP)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("constrained subscriber:\n%s", out.String())
	if err != nil {
		t.Fatalf("the constrained subscriber failed: %v", err)
	}
	// The unconstrained subscriber is on the highest layer. Chromium may have turned hi off for a while (its
	// estimate falls when the machine is busy): the automatic choice then moved it down to a layer that
	// sends, and moves it back up after a clean stretch (lossUpAfter), hence the wait.
	ivstest.Eventually(t, 20*time.Second, 250*time.Millisecond, func() error {
		sel, err := selectedLayer(ctx, hc, free.Link(relLayerLink))
		if err != nil || sel != "hi" {
			return fmt.Errorf("the unconstrained subscriber receives %q (%v), want hi", sel, err)
		}
		return nil
	})
	if n := r.Server.sfu.Stats().LayerSwitches.Load(); n == 0 {
		t.Error("no layer switch counted")
	}
	if !strings.Contains(r.metrics(t), "openstage_media_layer_switches_total") {
		t.Error("no layer switch metric")
	}
}

// TestShapedHelperProcess is the constrained subscriber of TestSimulcastFollowsAShapedLink, run by it
// inside the network namespace; it does nothing in a normal test run.
func TestShapedHelperProcess(t *testing.T) {
	if os.Getenv(shapedHelperEnv) != "1" {
		t.Skip("the constrained subscriber of TestSimulcastFollowsAShapedLink")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	sub, err := peer.Subscribe(ctx, peer.Options{WHIPURL: os.Getenv(helperWHIP), Token: os.Getenv(shapedHelperToken),
		LocalAddr: os.Getenv(helperLocal), HTTP: hc, Header: http.Header{"X-Stages-Initial-Layer-Pref": {"highest"}}}, os.Getenv(shapedHelperPub))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := sub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	link := sub.Link(relLayerLink)
	var first string
	ivstest.Eventually(t, 30*time.Second, 250*time.Millisecond, func() error {
		sel, err := selectedLayer(ctx, hc, link)
		if err != nil {
			return err
		}
		if first == "" {
			first = sel
		}
		if sel != "low" {
			return fmt.Errorf("receiving %q", sel)
		}
		return nil
	})
	t.Logf("first layer %q; on the lowest %v after connecting", first, time.Since(start).Round(100*time.Millisecond))
	// It keeps decoding: video and keyframes, the largest frames, go on arriving on the lowest layer, which
	// the link carries. The pion publisher makes a keyframe every second; Chromium only when asked, so the
	// subscriber asks until one has come in these 10 s, and after a second with loss and no keyframe in it,
	// as a decoder that lost its reference does.
	_, before := sub.Stats()
	v, k := sub.VideoPackets.Load(), sub.Keyframes.Load()
	for i, lost, keys := 0, before.Lost, k; i < 10; i++ {
		time.Sleep(time.Second)
		_, now := sub.Stats()
		got := sub.Keyframes.Load()
		if got == k || (now.Lost > lost && got == keys) {
			sub.RequestKeyframe()
		}
		lost, keys = now.Lost, got
	}
	_, after := sub.Stats()
	dv, dk := sub.VideoPackets.Load()-v, sub.Keyframes.Load()-k
	w, h := sub.VideoSize()
	t.Logf("on the lowest layer (%dx%d): %d video packets, %d keyframes, %d of %d lost in 10 s", w, h, dv, dk, after.Lost-before.Lost,
		after.Expected-before.Expected)
	if dv < 80 || dk == 0 {
		t.Fatalf("on the lowest layer: %d video packets and %d keyframes in 10 s", dv, dk)
	}
	if sel, _ := selectedLayer(ctx, hc, link); sel != "low" {
		t.Fatalf("moved back to %q on the shaped link", sel)
	}
	_, video := sub.Stats()
	fmt.Printf("RESULT first=%s lowest-after=%v lost=%d of %d\n", first, time.Since(start).Round(100*time.Millisecond), video.Lost, video.Expected)
	if err := sub.Delete(ctx); err != nil {
		t.Error(err)
	}
}
