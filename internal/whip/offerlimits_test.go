package whip_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/media/policy"
	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/stage"
)

// extraSections appends n m-lines of kind to an offer, with mids from first on, on port (0: disabled).
func extraSections(offer, kind string, first, n, port int) string {
	var b strings.Builder
	b.WriteString(offer)
	for i := range n {
		switch kind {
		case "audio":
			fmt.Fprintf(&b, "m=audio %d UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:%d\r\na=sendonly\r\na=rtcp-mux\r\n"+
				"a=rtpmap:111 opus/48000/2\r\n", port, first+i)
		default:
			fmt.Fprintf(&b, "m=video %d UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:%d\r\na=sendonly\r\na=rtcp-mux\r\n"+
				"a=rtpmap:96 H264/90000\r\na=fmtp:96 profile-level-id=42e01f;packetization-mode=1\r\n", port, first+i)
		}
	}
	return b.String()
}

// postOffer POSTs an SDP offer to path under the WHIP URL and returns the status and the JSON error body.
func (e *env) postOffer(path, token, offer string) (int, struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}) {
	e.t.Helper()
	var body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/whip"+path, strings.NewReader(offer))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 4 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			e.t.Fatalf("%d with Content-Type %q: %s", resp.StatusCode, ct, b)
		}
		if err := json.Unmarshal(b, &body); err != nil {
			e.t.Fatalf("%d with a body that is not JSON: %v: %s", resp.StatusCode, err, b)
		}
	}
	return resp.StatusCode, body
}

// recvonlyOffer is a subscriber's offer from pion with a recvonly transceiver of each kind given.
func recvonlyOffer(t *testing.T, kinds ...webrtc.RTPCodecType) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range kinds {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// TestOfferLimits: the media policy bounds the sections of an offer. A publish offer of 500 m-lines, which
// was once answered 201 with 500 m-lines, is refused 400 with the IVS SDK's code 2014 and a PUBLISH_ERROR,
// as is a second video or audio section under ivs; a subscribe offer with more sections than the publisher
// sends is a SUBSCRIBE_ERROR. The IVS SDK's publish offer still publishes, and a subscription to it still
// works.
func TestOfferLimits(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "media", "policy", "testdata", "obs_whip.sdp"))
	if err != nil {
		t.Fatal(err)
	}
	obs := string(b)
	const video, audio = webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio

	ivsPolicy, openPolicy := policy.IVS, policy.Open
	e := newEnv(t, stage.Quotas{}, &ivsPolicy)
	publishRefusals := []struct {
		name, offer, code, message string
	}{
		{"500 m-lines", extraSections(obs, "video", 2, 498, 9), "INVALID_VIDEO_CODEC",
			"INVALID_VIDEO_CODEC: the offer has 500 m-lines; openstage reads at most 16, and policy ivs accepts at most one audio and one video section"},
		{"500 disabled m-lines", extraSections(obs, "video", 2, 498, 0), "INVALID_VIDEO_CODEC", "the offer has 500 m-lines"},
		{"two video sections", extraSections(obs, "video", 2, 1, 9), "INVALID_VIDEO_CODEC",
			"the offer has 2 video sections (mid 1, mid 2); policy ivs accepts at most one audio and one video section"},
		{"two audio sections", extraSections(obs, "audio", 2, 1, 9), "INVALID_AUDIO_CODEC",
			"the offer has 2 audio sections (mid 0, mid 2)"},
	}
	for _, c := range publishRefusals {
		t.Run("publish "+c.name, func(t *testing.T) {
			tok := e.token()
			status, body := e.postOffer("/publish/"+string(tok.ParticipantID), tok.Token, c.offer)
			if status != http.StatusBadRequest || body.Code != 2014 || !strings.Contains(body.Message, c.message) {
				t.Fatalf("got %d %+v, want 400 code 2014 with %q", status, body, c.message)
			}
			e.waitEvents(tok.ParticipantID, 5*time.Second, "JOINED", "PUBLISH_ERROR:"+c.code, "LEFT")
		})
	}

	// The IVS web SDK's offer (audio in mid 0, video in mid 1, VP8 listed first) publishes under ivs.
	pub := e.token()
	o := e.opts(pub)
	o.SDKLike = true
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	p, err := peer.Publish(ctx, o)
	if err != nil {
		t.Fatalf("SDK-shaped publish under ivs: %v", err)
	}
	defer p.Close()
	waitFor(t, 5*time.Second, "PUBLISH_STARTED", func() bool { return e.domain.Publishing(ivs.StageID(ivs.LastSegment(e.arn)), pub.ParticipantID) })

	subscribeRefusals := []struct {
		name, offer, message string
	}{
		{"500 m-lines", extraSections(recvonlyOffer(t, audio, video), "video", 2, 498, 0),
			"INVALID_VIDEO_CODEC: the subscribe offer has 500 m-lines; openstage reads at most 16"},
		{"three sections for two", recvonlyOffer(t, audio, video, video),
			"the subscribe offer has 3 audio and video sections (mid 0, mid 1, mid 2); the publisher sends 2, and a subscriber may offer at most 2"},
	}
	for _, c := range subscribeRefusals {
		t.Run("subscribe "+c.name, func(t *testing.T) {
			tok := e.token(stage.CapSubscribe)
			status, body := e.postOffer("/subscribe/"+string(pub.ParticipantID), tok.Token, c.offer)
			if status != http.StatusBadRequest || body.Code != 2014 || !strings.Contains(body.Message, c.message) {
				t.Fatalf("got %d %+v, want 400 code 2014 with %q", status, body, c.message)
			}
			e.waitEvents(tok.ParticipantID, 5*time.Second, "JOINED", "SUBSCRIBE_ERROR>"+string(pub.ParticipantID)+":INVALID_VIDEO_CODEC", "LEFT")
		})
	}
	// A subscriber's usual recvonly audio and video offer still gets the media.
	sub := e.subscribe(e.token(stage.CapSubscribe), pub.ParticipantID)
	waitFor(t, 10*time.Second, "a keyframe at the subscriber", func() bool { return sub.Keyframes.Load() > 0 })

	t.Run("publish 500 m-lines under open", func(t *testing.T) {
		e := newEnv(t, stage.Quotas{}, &openPolicy)
		tok := e.token()
		status, body := e.postOffer("", tok.Token, extraSections(obs, "video", 2, 498, 9))
		if status != http.StatusBadRequest || body.Code != 2014 ||
			!strings.Contains(body.Message, "the offer has 500 m-lines; openstage reads at most 16, and policy open accepts at most two audio and two video sections") {
			t.Fatalf("got %d %+v", status, body)
		}
		e.waitEvents(tok.ParticipantID, 5*time.Second, "JOINED", "PUBLISH_ERROR:INVALID_VIDEO_CODEC", "LEFT")
		// Two video sections are within open's limits.
		tok = e.token()
		status, body = e.postOffer("", tok.Token, extraSections(obs, "video", 2, 1, 9))
		if status != http.StatusCreated {
			t.Fatalf("two video sections under open: %d %+v", status, body)
		}
	})
}
