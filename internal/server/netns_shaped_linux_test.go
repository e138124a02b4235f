package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/stage"
)

const (
	shapedHelperEnv   = "OPENSTAGE_SHAPED_HELPER"
	shapedHelperToken = "OPENSTAGE_SHAPED_TOKEN"
	shapedHelperPub   = "OPENSTAGE_SHAPED_PUB"
	relLayerLink      = "urn:ietf:params:whep:ext:core:layer"
)

// selectedLayer GETs a subscription's layer link and returns the layer it receives.
func selectedLayer(ctx context.Context, hc *http.Client, link string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var l struct {
		Layers []struct {
			EncodingID string `json:"encodingId"`
			Selected   bool   `json:"selected"`
		} `json:"layers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return "", err
	}
	for _, x := range l.Layers {
		if x.Selected {
			return x.EncodingID, nil
		}
	}
	return "", nil
}

// TestSimulcastFollowsAShapedLink: a simulcast publisher (three layers of about 180, 470 and 760 kbit/s)
// and two subscribers that both ask for the highest layer, one on the host and one in a network namespace
// behind a veth shaped to 300 kbit/s (tc tbf). The constrained one moves down to the lowest layer within
// seconds, from the loss its receiver reports show, and keeps receiving video and keyframes; the other
// stays on the highest.
func TestSimulcastFollowsAShapedLink(t *testing.T) {
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
	_, toks, err := r.Server.Domain().CreateStage(ctx, "shaped", nil, []stage.TokenSpec{{}, {Capabilities: []stage.Capability{stage.CapSubscribe}},
		{Capabilities: []stage.Capability{stage.CapSubscribe}}})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	pub, err := peer.Publish(ctx, peer.Options{WHIPURL: r.whip, Token: toks[0].Token, LocalAddr: n.hostIP, HTTP: hc, Simulcast: []string{"low", "mid", "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // every layer measured (its bitrate), so the automatic choice knows them
	free, err := peer.Subscribe(ctx, peer.Options{WHIPURL: r.whip, Token: toks[1].Token, LocalAddr: n.hostIP, HTTP: hc,
		Header: http.Header{"X-Stages-Initial-Layer-Pref": {"highest"}}}, string(toks[0].ParticipantID))
	if err != nil {
		t.Fatal(err)
	}
	defer free.Close()

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
	sel, err := selectedLayer(ctx, hc, free.Link(relLayerLink))
	if err != nil || sel != "hi" {
		t.Fatalf("the unconstrained subscriber receives %q (%v), want hi", sel, err)
	}
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
	// It keeps decoding: video and keyframes (one a second in the publisher's stream) go on arriving on the
	// lowest layer, which the link carries.
	_, before := sub.Stats()
	v, k := sub.VideoPackets.Load(), sub.Keyframes.Load()
	// 10 s: the shaped link loses a sixth of the packets or so, and a keyframe with them now and then.
	time.Sleep(10 * time.Second)
	_, after := sub.Stats()
	dv, dk := sub.VideoPackets.Load()-v, sub.Keyframes.Load()-k
	t.Logf("on the lowest layer: %d video packets, %d keyframes, %d of %d lost in 10 s", dv, dk, after.Lost-before.Lost, after.Expected-before.Expected)
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
