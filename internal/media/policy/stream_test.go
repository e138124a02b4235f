package policy

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/openstage/openstage/internal/ivs"
)

var h264Params = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
	ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 109}
var opusParams = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
	ClockRate: 48000, Channels: 2}, PayloadType: 111}
var vp8Params = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8,
	ClockRate: 90000}, PayloadType: 96}

func TestStreamInspectorFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		p    Policy
		want ivs.ErrorCode
	}{
		{"cb_1280x720.h264", IVS, ""},
		{"cb_1920x1080.h264", IVS, ivs.ErrResolutionExceeded},
		{"high_bframes_640x360.h264", IVS, ivs.ErrInvalidVideoCodec},
		{"high_bframes_640x360.h264", Open, ivs.ErrBFramePresent},
	} {
		s := NewStreamInspector(tc.p)
		now := time.Now()
		var code ivs.ErrorCode
		var msg string
		for i, pkt := range packetize(readFixture(t, tc.file), 1200) {
			// audio interleaved with the video, from the same inspector
			s.Inspect(webrtc.RTPCodecTypeAudio, opusParams, &rtp.Packet{Header: rtp.Header{SSRC: 1}, Payload: make([]byte, 80)}, now)
			if code, msg = s.Inspect(webrtc.RTPCodecTypeVideo, h264Params, pkt, now.Add(time.Duration(i)*time.Millisecond)); code != "" {
				break
			}
		}
		if code != tc.want || (code != "" && msg == "") {
			t.Errorf("%s under %s: %q %q, want %q", tc.file, tc.p.Name, code, msg, tc.want)
		}
		if tc.want != "" && s.Violation() == nil {
			t.Error("Violation() is nil")
		}
	}
}

// Simulcast layers are separate SSRCs: each gets its own SPS state, so a 720p layer next to a 360p one is
// judged on its own SPS.
func TestStreamInspectorSimulcast(t *testing.T) {
	s := NewStreamInspector(IVS)
	now := time.Now()
	hi := packetize(readFixture(t, "cb_1280x720.h264"), 1200)
	lo := packetize(readFixture(t, "cb_854x480.h264"), 1200)
	for i := range max(len(hi), len(lo)) {
		for _, l := range []struct {
			pkts []*rtp.Packet
			ssrc uint32
		}{{hi, 1}, {lo, 2}} {
			if i < len(l.pkts) {
				p := *l.pkts[i]
				p.SSRC = l.ssrc
				if code, msg := s.Inspect(webrtc.RTPCodecTypeVideo, h264Params, &p, now); code != "" {
					t.Fatalf("%s: %s", code, msg)
				}
			}
		}
	}
	if len(s.h264) != 2 {
		t.Errorf("%d H.264 inspectors", len(s.h264))
	}
}

func TestStreamInspectorBitrateAndDuration(t *testing.T) {
	// 10 Mbps of Opus-sized packets, then a rtx flood that does not count.
	s := NewStreamInspector(IVS)
	t0 := time.Now()
	var code ivs.ErrorCode
	for i := 0; code == "" && i < 20000; i++ {
		// 1250 bytes every ms = 10 Mbps
		code, _ = s.Inspect(webrtc.RTPCodecTypeAudio, opusParams, &rtp.Packet{Payload: make([]byte, 1250)}, t0.Add(time.Duration(i)*time.Millisecond))
	}
	if code != ivs.ErrBitrateExceeded {
		t.Errorf("code %q", code)
	}
	if b := s.Bitrate(t0.Add(5 * time.Second)); b < 9_000_000 {
		t.Errorf("Bitrate = %d", b)
	}

	s = NewStreamInspector(IVS)
	rtx := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "video/rtx", ClockRate: 90000}}
	for i := range 20000 {
		if code, msg := s.Inspect(webrtc.RTPCodecTypeVideo, rtx, &rtp.Packet{Payload: make([]byte, 1250)}, t0.Add(time.Duration(i)*time.Millisecond)); code != "" {
			t.Fatalf("rtx counted: %s %s", code, msg)
		}
	}

	s = NewStreamInspector(IVS)
	if code, _ := s.Inspect(webrtc.RTPCodecTypeAudio, opusParams, &rtp.Packet{Payload: []byte{1}}, t0); code != "" {
		t.Fatal(code)
	}
	if code, _ := s.Inspect(webrtc.RTPCodecTypeAudio, opusParams, &rtp.Packet{Payload: []byte{1}}, t0.Add(24*time.Hour)); code != "" {
		t.Fatal(code)
	}
	code, msg := s.Inspect(webrtc.RTPCodecTypeAudio, opusParams, &rtp.Packet{Payload: []byte{1}}, t0.Add(25*time.Hour))
	if code != ivs.ErrStreamDurationExceeded || !strings.Contains(msg, "25h0m0s") {
		t.Errorf("%q %q", code, msg)
	}
	if code, _ := s.Inspect(webrtc.RTPCodecTypeAudio, opusParams, nil, t0); code != ivs.ErrStreamDurationExceeded {
		t.Error("violation not kept")
	}
}

// vp8Keyframe is the start of a VP8 keyframe (RFC 6386 §9.1): frame tag with the key frame bit clear, start
// code, and the 14-bit sizes with scaling bits set (which must be masked off).
func vp8Keyframe(w, h int) []byte {
	f := []byte{0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, byte(w), byte(w>>8) | 0x40, byte(h), byte(h>>8) | 0x80}
	return append(f, make([]byte, 3000)...)
}

func TestVP8KeyframeSize(t *testing.T) {
	for _, tc := range []struct{ w, h int }{{1280, 720}, {1920, 1080}, {320, 180}, {16383, 1}} {
		// pion's payloader writes the descriptor with and without a picture ID.
		for _, pid := range []bool{false, true} {
			pl := &codecs.VP8Payloader{EnablePictureID: pid}
			payloads := pl.Payload(1200, vp8Keyframe(tc.w, tc.h))
			w, h, ok := VP8KeyframeSize(payloads[0])
			if !ok || w != tc.w || h != tc.h {
				t.Errorf("%dx%d (picture ID %v): %dx%d %v", tc.w, tc.h, pid, w, h, ok)
			}
			for _, p := range payloads[1:] {
				if _, _, ok := VP8KeyframeSize(p); ok {
					t.Error("continuation read as a keyframe")
				}
			}
		}
	}
	inter := vp8Keyframe(1920, 1080)
	inter[0] |= 1 // inter frame
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"empty", nil},
		{"inter frame", append([]byte{0x10}, inter...)},
		{"not a partition start", append([]byte{0x00}, vp8Keyframe(640, 480)...)},
		{"partition 1", append([]byte{0x11}, vp8Keyframe(640, 480)...)},
		{"bad start code", append([]byte{0x10}, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2b, 0, 5, 0, 5)},
		{"short", []byte{0x10, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0, 5}},
		{"X without extension byte", []byte{0x90}},
		{"I without picture ID", []byte{0x90, 0x80}},
		{"zero size", append([]byte{0x10}, vp8Keyframe(0, 0)...)},
	} {
		if w, h, ok := VP8KeyframeSize(tc.payload); ok {
			t.Errorf("%s: %dx%d", tc.name, w, h)
		}
	}
	// Every extension field present: picture ID (15 bits), TL0PICIDX, TID/KEYIDX.
	full := append([]byte{0x90, 0xf0, 0x80 | 0x12, 0x34, 0x05, 0x40}, vp8Keyframe(1280, 720)...)
	if w, h, ok := VP8KeyframeSize(full); !ok || w != 1280 || h != 720 {
		t.Errorf("full descriptor: %dx%d %v", w, h, ok)
	}
	short := []byte{0x90, 0x20, 0x40}
	if _, _, ok := VP8KeyframeSize(short); ok {
		t.Error("short")
	}

	s := NewStreamInspector(Open)
	pl := &codecs.VP8Payloader{EnablePictureID: true}
	for _, size := range [][2]int{{1280, 720}, {1920, 1080}} {
		for _, p := range pl.Payload(1200, vp8Keyframe(size[0], size[1])) {
			code, _ := s.Inspect(webrtc.RTPCodecTypeVideo, vp8Params, &rtp.Packet{Payload: p}, time.Now())
			if size[0] == 1280 && code != "" {
				t.Fatalf("720p VP8: %s", code)
			}
			if size[0] == 1920 && code != ivs.ErrResolutionExceeded {
				t.Fatalf("1080p VP8: %q", code)
			}
		}
	}
}

func TestStreamInspectorConcurrent(t *testing.T) {
	s := NewStreamInspector(permissive)
	video := packetize(readFixture(t, "high_bframes_640x360.h264"), 300)
	now := time.Now()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i, p := range video {
				q := *p
				q.SSRC = uint32(g % 2)
				s.Inspect(webrtc.RTPCodecTypeVideo, h264Params, &q, now.Add(time.Duration(i)*time.Millisecond))
				s.Inspect(webrtc.RTPCodecTypeAudio, opusParams, &rtp.Packet{Payload: make([]byte, 100)}, now)
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			_ = s.Violation()
			_ = s.Bitrate(now)
		}
	})
	wg.Wait()
	if s.Violation() != nil {
		t.Error(s.Violation())
	}
}
