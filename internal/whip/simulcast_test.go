package whip_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/media/policy"
	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/stage"
)

const relLayer = "urn:ietf:params:whep:ext:core:layer"

type layerList struct {
	Layers []struct {
		EncodingID      string  `json:"encodingId"`
		Bitrate         int     `json:"bitrate"`
		Width           int     `json:"width"`
		Height          int     `json:"height"`
		FramesPerSecond float64 `json:"framesPerSecond"`
		Selected        bool    `json:"selected"`
	} `json:"layers"`
}

func (e *env) layers(sub *peer.Subscriber) (l layerList, selected string) {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(e.ctx, http.MethodGet, sub.Link(relLayer), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET layers: %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		e.t.Fatal(err)
	}
	for _, x := range l.Layers {
		if x.Selected {
			selected = x.EncodingID
		}
	}
	return l, selected
}

// videoRate is how many video packets sub receives per second, over d.
func videoRate(sub *peer.Subscriber, d time.Duration) float64 {
	n := sub.VideoPackets.Load()
	time.Sleep(d)
	return float64(sub.VideoPackets.Load()-n) / d.Seconds()
}

// TestSimulcast: a publisher sends three RID layers (low, mid, hi, as the IVS web SDK names them, the
// higher ones carrying more bytes per frame); each subscriber gets one layer, the first one from
// X-Stages-Initial-Layer-Pref, with its audio; keyframe requests go to the layer a subscriber receives; the
// layer link lists the layers and moves a subscriber to another at that layer's keyframe, with sequence
// numbers that run on, and back to the automatic choice with {}. It runs under the ivs media policy.
func TestSimulcast(t *testing.T) {
	pol := policy.IVS // the layers obey IVS's media policy, each checked as a stream of its own
	e := newEnv(t, stage.Quotas{}, &pol)
	pt := e.token()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	o := e.opts(pt)
	o.Simulcast = []string{"low", "mid", "hi"}
	pub, err := peer.Publish(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "PUBLISH_STARTED", func() bool {
		return e.domain.Publishing(ivs.StageID(ivs.LastSegment(e.arn)), pt.ParticipantID)
	})
	subscribe := func(pref string) *peer.Subscriber {
		t.Helper()
		o := e.opts(e.token(stage.CapSubscribe))
		if pref != "" {
			o.Header = http.Header{"X-Stages-Initial-Layer-Pref": {pref}}
		}
		s, err := peer.Subscribe(ctx, o, string(pt.ParticipantID))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		if err := s.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	low, high := subscribe(""), subscribe("highest") // the SDK's default is lowest
	for _, s := range []*peer.Subscriber{low, high} {
		defer func() {
			t.Logf("subscriber: video %d audio %d keyframes %d; publisher sent video %d rtp %d", s.VideoPackets.Load(), s.AudioPackets.Load(),
				s.Keyframes.Load(), pub.SentVideo.Load(), pub.VideoRTP.Load())
		}()
		waitFor(t, 10*time.Second, "video, audio and a keyframe", func() bool {
			return s.VideoPackets.Load() > 20 && s.AudioPackets.Load() > 20 && s.Keyframes.Load() > 0
		})
	}
	l, sel := e.layers(low)
	if len(l.Layers) != 3 || l.Layers[0].EncodingID != "low" || l.Layers[2].EncodingID != "hi" || sel != "low" {
		t.Fatalf("the low subscriber's layers: %+v", l)
	}
	if l.Layers[0].Width != 320 || l.Layers[0].Height != 180 || l.Layers[0].Bitrate == 0 || l.Layers[2].Bitrate <= l.Layers[0].Bitrate ||
		l.Layers[0].FramesPerSecond < 10 {
		t.Errorf("layer measurements: %+v", l)
	}
	if _, sel := e.layers(high); sel != "hi" {
		t.Fatalf("the high subscriber receives %q", sel)
	}
	if l, m, h := e.sfu.LayerSubscribers(); l != 1 || m != 0 || h != 1 {
		t.Errorf("subscribers per layer: low %d, mid %d, high %d", l, m, h)
	}
	rl, rh := videoRate(low, 2*time.Second), videoRate(high, 2*time.Second)
	t.Logf("video packets per second: low subscriber %.0f, high subscriber %.0f", rl, rh)
	if rh < 1.5*rl {
		t.Errorf("the high subscriber gets %.0f packets/s, the low one %.0f: not different layers", rh, rl)
	}

	// Keyframe requests reach the layer the subscriber receives.
	time.Sleep(500 * time.Millisecond) // past the per-layer rate limit of the requests made at connection
	before := map[string]int64{}
	for rid, n := range pub.LayerKeyframeRequests {
		before[rid] = n.Load()
	}
	if !low.RequestKeyframe() {
		t.Fatal("no video to ask a keyframe for")
	}
	ivstest.Eventually(t, time.Second, 10*time.Millisecond, func() error {
		if pub.LayerKeyframeRequests["low"].Load() == before["low"] {
			return fmt.Errorf("the low layer got no keyframe request")
		}
		return nil
	})
	if d := pub.LayerKeyframeRequests["hi"].Load() - before["hi"]; d != 0 {
		t.Errorf("the hi layer got %d keyframe requests for the low subscriber", d)
	}
	high.RequestKeyframe()
	ivstest.Eventually(t, time.Second, 10*time.Millisecond, func() error {
		if pub.LayerKeyframeRequests["hi"].Load() == before["hi"] {
			return fmt.Errorf("the hi layer got no keyframe request")
		}
		return nil
	})
	if d := pub.LayerKeyframeRequests["mid"].Load() - before["mid"]; d != 0 {
		t.Errorf("the mid layer got %d keyframe requests", d)
	}

	// The layer link moves the low subscriber to hi, at a keyframe of hi.
	_, lostBefore := low.Stats()
	kf := low.Keyframes.Load()
	if code := e.post(low.Link(relLayer), "application/json", `{"mediaId":"1","encodingId":"hi"}`, ""); code != http.StatusNoContent {
		t.Fatalf("select hi: %d", code)
	}
	ivstest.Eventually(t, 3*time.Second, 20*time.Millisecond, func() error {
		if _, sel := e.layers(low); sel != "hi" || low.Keyframes.Load() == kf {
			return fmt.Errorf("selected %q, %d keyframes since", sel, low.Keyframes.Load()-kf)
		}
		return nil
	})
	if r := videoRate(low, 2*time.Second); r < 1.5*rl {
		t.Errorf("after the switch to hi the subscriber gets %.0f packets/s, as before (%.0f)", r, rl)
	}
	if _, v := low.Stats(); v.Lost-lostBefore.Lost > 5 {
		t.Errorf("%d video packets counted lost across the switch: sequence numbers jumped", v.Lost-lostBefore.Lost)
	}
	if n := e.sfu.Stats().LayerSwitches.Load(); n < 1 {
		t.Errorf("%d layer switches counted", n)
	}
	// {} returns to the automatic choice (its preference, lowest); an unknown layer is refused.
	if code := e.post(low.Link(relLayer), "application/json", `{}`, ""); code != http.StatusNoContent {
		t.Fatalf("automatic: %d", code)
	}
	ivstest.Eventually(t, 3*time.Second, 20*time.Millisecond, func() error {
		if _, sel := e.layers(low); sel != "low" {
			return fmt.Errorf("selected %q", sel)
		}
		return nil
	})
	if code := e.post(low.Link(relLayer), "application/json", `{"mediaId":"1","encodingId":"ultra"}`, ""); code != http.StatusBadRequest {
		t.Errorf("unknown layer: %d", code)
	}
}
