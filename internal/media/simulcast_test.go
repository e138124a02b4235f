package media

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

func TestIsKeyframeStart(t *testing.T) {
	sps := []byte{0x67, 0x42, 0xc0, 0x1f}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	stap := []byte{24, 0, byte(len(sps))}
	stap = append(append(stap, sps...), 0, byte(len(pps)))
	stap = append(stap, pps...)
	for _, c := range []struct {
		name string
		mime string
		p    []byte
		want bool
	}{
		{"H.264 IDR slice", webrtc.MimeTypeH264, []byte{0x65, 0x88}, true},
		{"H.264 SPS", webrtc.MimeTypeH264, sps, true},
		{"H.264 STAP-A with SPS and PPS", webrtc.MimeTypeH264, stap, true},
		{"H.264 FU-A start of an IDR", webrtc.MimeTypeH264, []byte{0x7c, 0x85, 0}, true},
		{"H.264 FU-A middle of an IDR", webrtc.MimeTypeH264, []byte{0x7c, 0x05, 0}, false},
		{"H.264 P slice", webrtc.MimeTypeH264, []byte{0x41, 0x9a}, false},
		{"H.264 filler", webrtc.MimeTypeH264, []byte{0x0c, 0xff}, false},
		{"VP8 key frame, first packet", webrtc.MimeTypeVP8, []byte{0x10, 0x00}, true},
		{"VP8 key frame with picture id", webrtc.MimeTypeVP8, []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
		{"VP8 inter frame", webrtc.MimeTypeVP8, []byte{0x10, 0x01}, false},
		{"VP8 not the first packet", webrtc.MimeTypeVP8, []byte{0x00, 0x00}, false},
		{"empty", webrtc.MimeTypeH264, nil, false},
	} {
		if got := isKeyframeStart(c.mime, c.p); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// simulcastOffer is the shape of a browser's publish offer with simulcast on (the IVS web SDK's rids).
const simulcastOffer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=msid:s a\r\na=rtpmap:111 opus/48000/2\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\na=msid:s v\r\na=rtpmap:102 H264/90000\r\n" +
	"a=rid:low send\r\na=rid:mid send\r\na=rid:hi send\r\na=simulcast:send low;mid;hi\r\n"

// TestAnnouncedTracksCountsLayers: every layer of a simulcast section is a track, so the wait for all of a
// publisher's tracks does not end after two layers, before the audio.
func TestAnnouncedTracksCountsLayers(t *testing.T) {
	n, rids := announcedTracks(simulcastOffer)
	if n != 4 || strings.Join(rids, ",") != "low,mid,hi" {
		t.Fatalf("announced %d tracks, rids %v; want 4 and low,mid,hi", n, rids)
	}
	four := strings.Replace(simulcastOffer, "a=simulcast:send low;mid;hi", "a=rid:x send\r\na=simulcast:send low;~mid;hi,x;x2;x3", 1)
	if n, rids := announcedTracks(four); n != 4 || strings.Join(rids, ",") != "low,hi,x2" {
		t.Fatalf("paused and alternative rids: %d tracks, rids %v", n, rids)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(simulcastOffer); err != nil {
		t.Fatal(err)
	}
	if r := simulcastRIDs(d.MediaDescriptions[0]); r != nil {
		t.Fatalf("audio rids %v", r)
	}
}

// discard is a subscriber's send path that keeps nothing.
type discard struct{ n int }

func (d *discard) Write(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
	d.n++
	return len(payload), nil
}

// newTestLayered makes a simulcast video of n layers (without a publisher: nobody requests keyframes).
func newTestLayered(t testing.TB, n int) (*layered, []*layer) {
	v, err := newLayered(videoCodecs[0].RTPCodecCapability, "openstage-p")
	if err != nil {
		t.Fatal(err)
	}
	var ls []*layer
	for i := range n {
		l := &layer{rid: fmt.Sprint("r", i), order: i}
		l.ssrc.Store(uint32(100 + i))
		ls = append(ls, l)
	}
	v.layers = ls
	return v, ls
}

func bindSelector(t testing.TB, v *layered, target *layer, w interceptor.RTPWriter, i int) *selector {
	s := &selector{v: v, gate: &gate{video: true}, target: target}
	if _, err := (selectorTrack{s}).Bind(&trackContext{id: fmt.Sprint(i), ssrc: webrtc.SSRC(5000 + i), codec: videoCodecs[0], w: w}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSelectorSwitchesAtKeyframes: a selector forwards only its layer, moves to the wanted one at that
// layer's keyframe and not before, and the subscriber's sequence numbers run on across the switch.
func TestSelectorSwitchesAtKeyframes(t *testing.T) {
	v, ls := newTestLayered(t, 2)
	out := &sent{}
	s := bindSelector(t, v, ls[0], out, 0)
	pkt := func(l int, seq uint16, key bool) *rtp.Packet {
		payload := []byte{0x41, 0x9a} // P slice
		if key {
			payload = []byte{0x65, 0x88}
		}
		return &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: uint32(100 + l)}, Payload: payload}
	}
	// Nothing before the first keyframe of the wanted layer; then only that layer.
	v.write(ls[0], pkt(0, 10, false))
	v.write(ls[1], pkt(1, 500, true))
	v.write(ls[0], pkt(0, 11, true))
	v.write(ls[0], pkt(0, 12, false))
	v.write(ls[1], pkt(1, 501, false))
	// Move to layer 1: its P slices are not forwarded, layer 0 goes on until layer 1's keyframe.
	if err := s.selectLayer("r1"); err != nil {
		t.Fatal(err)
	}
	v.write(ls[1], pkt(1, 502, false))
	v.write(ls[0], pkt(0, 13, false))
	if k := v.write(ls[1], pkt(1, 503, true)); k != 1 {
		t.Errorf("the keyframe the selector moves at was sent to %d subscribers, want 1", k)
	}
	if k := v.write(ls[0], pkt(0, 14, false)); k != 0 {
		t.Errorf("a packet of the layer left was sent to %d subscribers", k)
	}
	v.write(ls[1], pkt(1, 504, false))
	got := out.wait(t, 5)
	var seqs []uint16
	for _, p := range got {
		if p.SSRC != 5000 {
			t.Errorf("SSRC %d", p.SSRC)
		}
		seqs = append(seqs, p.SequenceNumber)
	}
	if fmt.Sprint(seqs) != "[11 12 13 14 15]" {
		t.Fatalf("sequence numbers %v, want 11..15: forwarded layer 0 from its keyframe, then layer 1 from its", seqs)
	}
	if got[3].Payload[0] != 0x65 || got[3].Timestamp <= got[2].Timestamp {
		t.Errorf("the switch is not at layer 1's keyframe with a later timestamp: %+v", got[3].Header)
	}
	if l := s.layers(); !l[1].Selected || l[0].Selected {
		t.Errorf("layers %+v", l)
	}
	if err := s.selectLayer("nope"); err == nil {
		t.Error("an unknown layer was selected")
	}
	s.detach()
	if k := v.write(ls[1], pkt(1, 505, true)); k != 0 {
		t.Errorf("a detached selector still forwards (%d)", k)
	}
}

// TestSelectorAsksAgainForAnOverdueKeyframe: a selector waiting for the keyframe of the layer it moves to
// asks that layer again once keyframeRetry has passed without one, and no more often; it asks nothing of
// the layer it leaves, nor once it has moved.
func TestSelectorAsksAgainForAnOverdueKeyframe(t *testing.T) {
	v, ls := newTestLayered(t, 2)
	s := bindSelector(t, v, ls[0], &discard{}, 0)
	pkt := func(key bool) *rtp.Packet {
		payload := []byte{0x41, 0x9a} // P slice
		if key {
			payload = []byte{0x65, 0x88}
		}
		return &rtp.Packet{Header: rtp.Header{Version: 2}, Payload: payload}
	}
	v.write(ls[0], pkt(true))
	if err := s.selectLayer("r1"); err != nil { // asks r1 for a keyframe at once
		t.Fatal(err)
	}
	asked := ls[1].lastPLI.Load()
	if asked == 0 {
		t.Fatal("the move asked no keyframe")
	}
	// Within the layer's own rate limit and the retry interval: no request.
	v.write(ls[1], pkt(false))
	v.write(ls[1], pkt(false))
	if ls[1].lastPLI.Load() != asked {
		t.Fatal("asked again at once")
	}
	// As if keyframeRetry had passed (and the layer's rate limit with it): the next packet of r1 asks again.
	s.mu.Lock()
	s.askedAt = s.askedAt.Add(-keyframeRetry)
	s.mu.Unlock()
	ls[1].lastPLI.Store(asked - int64(time.Second))
	v.write(ls[0], pkt(false))
	if ls[1].lastPLI.Load() != asked-int64(time.Second) {
		t.Fatal("a packet of the layer left asked r1 for a keyframe")
	}
	v.write(ls[1], pkt(false))
	if again := ls[1].lastPLI.Load(); again <= asked {
		t.Fatal("an overdue keyframe was not asked for again")
	}
	// Moved: r1's packets are forwarded and ask nothing.
	v.write(ls[1], pkt(true))
	s.mu.Lock()
	s.askedAt = time.Time{}
	s.mu.Unlock()
	ls[1].lastPLI.Store(1)
	v.write(ls[1], pkt(false))
	if ls[1].lastPLI.Load() != 1 {
		t.Fatal("asked for a keyframe of the layer already forwarded")
	}
	if l := s.layers(); !l[1].Selected {
		t.Fatalf("layers %+v", l)
	}
}

// BenchmarkForward compares the forwarding paths per packet handed to ten subscribers: a plain video
// (fanout) and a three-layer simulcast video (each subscriber on one layer, packets from all three).
func BenchmarkForward(b *testing.B) {
	const subs = 10
	payload := make([]byte, 1100)
	payload[0] = 0x41
	b.Run("fanout", func(b *testing.B) {
		f, err := newFanout(videoCodecs[0].RTPCodecCapability, "video", "openstage-p")
		if err != nil {
			b.Fatal(err)
		}
		d := &discard{}
		for i := range subs {
			if _, err := f.Bind(&trackContext{id: fmt.Sprint(i), ssrc: webrtc.SSRC(5000 + i), codec: videoCodecs[0], w: d}); err != nil {
				b.Fatal(err)
			}
		}
		p := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 100}, Payload: payload}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			p.SequenceNumber = uint16(i)
			f.write(p)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(d.n), "ns/forwarded")
	})
	b.Run("simulcast3", func(b *testing.B) {
		v, ls := newTestLayered(b, 3)
		d := &discard{}
		for i := range subs {
			s := bindSelector(b, v, ls[i%3], d, i)
			s.cur = ls[i%3]
		}
		p := &rtp.Packet{Header: rtp.Header{Version: 2}, Payload: payload}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			p.SequenceNumber = uint16(i / 3)
			p.SSRC = uint32(100 + i%3)
			v.write(ls[i%3], p)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(d.n), "ns/forwarded")
	})
}

// TestSelectorFollowsTheLink: the automatic choice moves one layer down after two receiver reports in a
// row with heavy loss (not again before the move could show), down to the lowest and no further, back up
// after a long clean stretch, and below what a REMB estimate carries; a layer the client chose stays.
func TestSelectorFollowsTheLink(t *testing.T) {
	v, ls := newTestLayered(t, 3)
	for i, bps := range []int64{150_000, 500_000, 1_500_000} {
		ls[i].bitrate.Store(bps)
		ls[i].lastAt.Store(time.Now().UnixNano())
	}
	s := bindSelector(t, v, ls[2], &discard{}, 0)
	s.pref = LayerHighest
	target := func() string {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.target.rid
	}
	t0 := time.Now().Add(time.Hour) // past the hold of any real-time choice
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	s.onLoss(0.3, at(0))
	if target() != "r2" {
		t.Fatal("one lossy report moved the layer")
	}
	s.onLoss(0.3, at(time.Second))
	if target() != "r1" {
		t.Fatalf("after two lossy reports: %s, want r1", target())
	}
	s.onLoss(0.3, at(2*time.Second))
	s.onLoss(0.3, at(2500*time.Millisecond))
	if target() != "r1" {
		t.Fatalf("moved again within the hold: %s", target())
	}
	s.onLoss(0.3, at(3500*time.Millisecond))
	s.onLoss(0.3, at(4500*time.Millisecond))
	if target() != "r0" {
		t.Fatalf("after two more lossy reports: %s, want r0", target())
	}
	s.onLoss(0.5, at(7*time.Second))
	s.onLoss(0.5, at(8*time.Second))
	if target() != "r0" {
		t.Fatalf("below the lowest layer: %s", target())
	}
	// Clean since the report at 8 s, the last lossy one.
	for d := 9 * time.Second; d < 8*time.Second+lossUpAfter; d += time.Second {
		s.onLoss(0.01, at(d))
	}
	if target() != "r0" {
		t.Fatalf("moved up before %v without loss: %s", lossUpAfter, target())
	}
	s.onLoss(0, at(8*time.Second+lossUpAfter))
	if target() != "r1" {
		t.Fatalf("after %v without loss: %s, want r1", lossUpAfter, target())
	}
	// A layer the client chose is kept whatever the link does.
	if err := s.selectLayer("r2"); err != nil {
		t.Fatal(err)
	}
	for d := time.Minute; d < time.Minute+5*time.Second; d += time.Second {
		s.onLoss(0.5, at(d))
	}
	if target() != "r2" {
		t.Fatalf("the client's layer was moved: %s", target())
	}
	// Back to automatic: the preference (highest), then below a REMB estimate of 600 kbit/s.
	if err := s.selectLayer(""); err != nil {
		t.Fatal(err)
	}
	if target() != "r2" {
		t.Fatalf("automatic with preference highest: %s", target())
	}
	s.onREMB(600_000, at(2*time.Minute))
	if target() != "r1" {
		t.Fatalf("REMB 600 kbit/s: %s, want r1 (500 kbit/s)", target())
	}
	s.onREMB(600_000, at(2*time.Minute+5*time.Second))
	if target() != "r1" {
		t.Fatalf("REMB 600 kbit/s moved below a layer that fits: %s", target())
	}
}

// TestStoppedLayer: a layer that has sent nothing for layerIdle is listed with no bitrate and frame rate, and
// the automatic choice does not move up to it; once it sends again it is a layer like the others; when it
// stops under a subscriber, the subscriber moves down; padding does not count as sending.
func TestStoppedLayer(t *testing.T) {
	v, ls := newTestLayered(t, 3)
	for i, bps := range []int64{150_000, 500_000, 1_500_000} {
		ls[i].bitrate.Store(bps)
		ls[i].fps.Store(15_000)
		ls[i].lastAt.Store(time.Now().UnixNano())
	}
	ls[2].lastAt.Store(time.Now().Add(-layerIdle - time.Second).UnixNano()) // the publisher turned hi off
	s := bindSelector(t, v, ls[1], &discard{}, 0)
	if l := s.layers(); l[2].Bitrate != 0 || l[2].FramesPerSecond != 0 || l[1].Bitrate != 500_000 || l[1].FramesPerSecond != 15 {
		t.Fatalf("layers %+v", l)
	}
	s.step(+1, 0, time.Now())
	s.mu.Lock()
	target := s.target.rid
	s.mu.Unlock()
	if target != "r1" {
		t.Fatalf("moved up to %s, which sends nothing", target)
	}
	ls[2].measure(&rtp.Packet{Payload: []byte{0x41, 0x9a}}, 1000, time.Now()) // on again
	s.step(+1, 0, time.Now())
	s.mu.Lock()
	target = s.target.rid
	s.mu.Unlock()
	if target != "r2" {
		t.Fatalf("did not move up to r2 once it sends again: %s", target)
	}
	// Off again, under the subscriber: its next receiver report, clean as it is, moves it down to r1.
	ls[2].lastAt.Store(time.Now().Add(-layerIdle - time.Second).UnixNano())
	s.onLoss(0, time.Now().Add(time.Hour)) // past the hold of the last move
	s.mu.Lock()
	target = s.target.rid
	s.mu.Unlock()
	if target != "r1" {
		t.Fatalf("left on r2, which stopped: %s", target)
	}
	// Each clean report past lossUpAfter tries to move up; while r2 sends nothing there is nowhere to go, and
	// the first such report after it is back moves the subscriber up to it.
	s.onLoss(0, time.Now().Add(time.Hour+lossUpAfter))
	s.mu.Lock()
	target = s.target.rid
	s.mu.Unlock()
	if target != "r1" {
		t.Fatalf("moved up to r2 while it sends nothing: %s", target)
	}
	ls[2].measure(&rtp.Packet{Payload: []byte{0x41, 0x9a}}, 1000, time.Now())
	s.onLoss(0, time.Now().Add(time.Hour+lossUpAfter+time.Second))
	s.mu.Lock()
	target = s.target.rid
	s.mu.Unlock()
	if target != "r2" {
		t.Fatalf("not back on r2 at the first clean report after it sends again: %s", target)
	}
	ls[2].lastAt.Store(time.Now().Add(-layerIdle - time.Second).UnixNano())
	// Padding is no sign of life: a layer that only pads stays stopped.
	ls[2].measure(&rtp.Packet{Header: rtp.Header{Padding: true, PaddingSize: 200}}, 212, time.Now())
	if !ls[2].stopped() {
		t.Fatal("a padding-only packet counted as the layer sending")
	}
}
