package whip_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/stage"
)

const (
	relSessionDelete    = "urn:ietf:params:whip:ivs-stages:session-delete"
	relPlaybackControls = "urn:ietf:params:whep:core:playback-controls"
)

// post sends body to url as a browser would: no Authorization unless auth is set.
func (e *env) post(url, contentType, body, auth string) int {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestSessionDeleteBeacon: the answer's session-delete link, POSTed as the IVS web SDK's unload beacon does
// (navigator.sendBeacon: text/plain {"authorization":"<token>"}, no Authorization header), ends the
// publish within a second, recorded through the domain as PUBLISH_STOPPED and LEFT. A beacon with another
// token, or to a URL with the wrong secret, ends nothing.
func TestSessionDeleteBeacon(t *testing.T) {
	e := newEnv(t, stage.Quotas{}, nil)
	tok := e.token()
	p := e.publish(tok)
	e.waitEvents(tok.ParticipantID, 5*time.Second, "JOINED", "PUBLISH_STARTED")
	link := p.Link(relSessionDelete)
	if !strings.HasPrefix(link, p.Location()+"/") {
		t.Fatalf("session-delete link %q, Location %q", link, p.Location())
	}
	if p.Link(relPlaybackControls) != "" {
		t.Error("a publish answer has a playback-controls link")
	}
	other := e.token()
	if code := e.post(link, "text/plain;charset=UTF-8", `{"authorization":"`+other.Token+`"}`, ""); code != http.StatusForbidden {
		t.Errorf("a beacon with another participant's token: %d", code)
	}
	if code := e.post(link, "text/plain;charset=UTF-8", `{}`, ""); code != http.StatusForbidden {
		t.Errorf("a beacon without a token: %d", code)
	}
	if code := e.post(link[:len(link)-4]+"0000", "text/plain;charset=UTF-8", `{"authorization":"`+tok.Token+`"}`, ""); code != http.StatusNotFound {
		t.Errorf("a beacon with a wrong secret: %d", code)
	}
	if code := e.post(p.Location()+"/end/", "text/plain;charset=UTF-8", `{"authorization":"`+tok.Token+`"}`, ""); code/100 == 2 {
		t.Errorf("a beacon without the secret: %d", code)
	}
	time.Sleep(200 * time.Millisecond)
	if got := e.events(tok.ParticipantID); len(got) != 2 {
		t.Fatalf("refused beacons changed the history: %q", got)
	}
	start := time.Now()
	if code := e.post(link, "text/plain;charset=UTF-8", `{"authorization":"`+tok.Token+`"}`, ""); code != http.StatusNoContent {
		t.Fatalf("the beacon: %d", code)
	}
	e.waitEvents(tok.ParticipantID, time.Second, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT")
	t.Logf("LEFT recorded %v after the beacon", time.Since(start))
	waitFor(t, 5*time.Second, "the publisher's connection to close", func() bool { return p.State() >= 4 })
	// The session is gone: a second beacon, and a DELETE, find nothing.
	if code := e.post(link, "text/plain;charset=UTF-8", `{"authorization":"`+tok.Token+`"}`, ""); code != http.StatusNotFound {
		t.Errorf("a second beacon: %d", code)
	}
}

// TestPlaybackControls: the playback-controls link of a subscription pauses its video ({"pause":["1"]}, as
// the IVS web SDK sends for a hidden tile) — no video packet reaches that subscriber any more while audio
// still flows and another subscriber still gets video — and resumes it ({"play":["1"]}) with a keyframe
// request sent to the publisher at once, with sequence numbers that run on as if nothing had been held back.
func TestPlaybackControls(t *testing.T) {
	e := newEnv(t, stage.Quotas{}, nil)
	pt := e.token()
	pub := e.publish(pt)
	waitFor(t, 5*time.Second, "PUBLISH_STARTED", func() bool {
		return e.domain.Publishing(ivs.StageID(ivs.LastSegment(e.arn)), pt.ParticipantID)
	})
	st := e.token(stage.CapSubscribe)
	sub := e.subscribe(st, pt.ParticipantID)
	other := e.subscribe(e.token(stage.CapSubscribe), pt.ParticipantID)
	link := sub.Link(relPlaybackControls)
	if link == "" || sub.Link(relSessionDelete) == "" {
		t.Fatalf("subscribe answer links: playback %q, session-delete %q", link, sub.Link(relSessionDelete))
	}
	waitFor(t, 10*time.Second, "video and a keyframe", func() bool { return sub.VideoPackets.Load() > 20 && sub.Keyframes.Load() > 0 })

	if code := e.post(link, "application/json", `{"pause":["1"]}`, st.Token); code != http.StatusNoContent {
		t.Fatalf("pause: %d", code)
	}
	time.Sleep(300 * time.Millisecond) // what was in flight arrives
	v0, a0, o0 := sub.VideoPackets.Load(), sub.AudioPackets.Load(), other.VideoPackets.Load()
	time.Sleep(1500 * time.Millisecond)
	v1, a1, o1 := sub.VideoPackets.Load(), sub.AudioPackets.Load(), other.VideoPackets.Load()
	if v1 != v0 {
		t.Errorf("paused video: %d packets arrived", v1-v0)
	}
	if a1-a0 < 30 {
		t.Errorf("audio stopped too: %d packets in 1.5 s", a1-a0)
	}
	if o1-o0 < 10 {
		t.Errorf("the other subscriber's video stopped: %d packets in 1.5 s", o1-o0)
	}
	kf, plis := sub.Keyframes.Load(), pub.KeyframeRequests.Load()
	// The SDK's control requests may come without Authorization (the URL's secret is enough), and with mids
	// as numbers.
	start := time.Now()
	if code := e.post(link, "application/json", `{"play":[1]}`, ""); code != http.StatusNoContent {
		t.Fatalf("play: %d", code)
	}
	ivstest.Eventually(t, 300*time.Millisecond, 5*time.Millisecond, func() error {
		if pub.KeyframeRequests.Load() == plis {
			return fmt.Errorf("no keyframe request reached the publisher")
		}
		return nil
	})
	t.Logf("keyframe request at the publisher %v after play", time.Since(start))
	// The test publisher loops a file with a keyframe every second and ignores requests; a camera answers at once.
	ivstest.Eventually(t, 3*time.Second, 10*time.Millisecond, func() error {
		if sub.VideoPackets.Load() == v1 || sub.Keyframes.Load() == kf {
			return fmt.Errorf("after play: %d video packets, %d keyframes", sub.VideoPackets.Load()-v1, sub.Keyframes.Load()-kf)
		}
		return nil
	})
	t.Logf("video and a keyframe %v after play", time.Since(start))
	time.Sleep(300 * time.Millisecond)
	if _, video := sub.Stats(); video.Lost > 5 {
		t.Errorf("the subscriber counts %d video packets lost across the pause: sequence numbers jumped", video.Lost)
	}

	// Refusals: an unknown mid, a malformed body, another participant's token, a wrong secret.
	if code := e.post(link, "application/json", `{"pause":["7"]}`, ""); code != http.StatusBadRequest {
		t.Errorf("unknown mid: %d", code)
	}
	if code := e.post(link, "application/json", `{"pause":`, ""); code != http.StatusBadRequest {
		t.Errorf("malformed body: %d", code)
	}
	if code := e.post(link, "application/json", `{"pause":["1"]}`, pt.Token); code != http.StatusForbidden {
		t.Errorf("another participant's token: %d", code)
	}
	if code := e.post(link[:len(link)-4]+"0000", "application/json", `{"pause":["1"]}`, st.Token); code != http.StatusNotFound {
		t.Errorf("wrong secret: %d", code)
	}
	// Pausing is no event: the subscription is as it was.
	e.waitEvents(st.ParticipantID, time.Second, "JOINED", "SUBSCRIBE_STARTED>"+string(pt.ParticipantID))
}
