package policy

import (
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/openstage/openstage/internal/ivs"
)

// StreamInspector applies a policy to everything one publisher sends: every track's RTP packets, from
// whichever goroutines read them. It combines
//   - per video RTP stream (SSRC), an H.264 Inspector (profile, resolution, B slices), or for VP8 a check of
//     each keyframe's size (RFC 6386 §9.1); VP9 and AV1 sizes are not checked;
//   - one BitrateMeter over all media payloads (retransmissions excluded), as IVS's limit is per stream;
//   - the duration since the first packet.
//
// Its Inspect method has the shape of media.Inspector. It is safe for concurrent use.
type StreamInspector struct {
	p Policy

	mu      sync.Mutex
	v       *Violation
	started time.Time
	meter   *BitrateMeter
	h264    map[uint32]*Inspector // by SSRC
}

// NewStreamInspector makes the inspector for one publisher.
func NewStreamInspector(p Policy) *StreamInspector {
	return &StreamInspector{p: p, meter: NewBitrateMeterFor(p)}
}

// Inspect looks at one packet of a track of the given kind and negotiated codec. It returns the violation's
// code and message once the stream breaks the policy, and "" until then.
func (s *StreamInspector) Inspect(kind webrtc.RTPCodecType, codec webrtc.RTPCodecParameters, pkt *rtp.Packet,
	now time.Time) (ivs.ErrorCode, string) {
	if v := s.Check(kind, codec.MimeType, pkt, now); v != nil {
		return v.Code, v.Message
	}
	return "", ""
}

// Check is Inspect returning the Violation itself.
func (s *StreamInspector) Check(kind webrtc.RTPCodecType, mimeType string, pkt *rtp.Packet, now time.Time) *Violation {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v != nil || pkt == nil {
		return s.v
	}
	if s.started.IsZero() {
		s.started = now
	}
	if v := CheckDuration(s.p, s.started, now); v != nil {
		s.v = v
		return v
	}
	if strings.EqualFold(mimeType, "video/rtx") || strings.EqualFold(mimeType, "audio/rtx") {
		return nil // repairs of packets already counted
	}
	if v := s.meter.Add(len(pkt.Payload), now); v != nil {
		s.v = v
		return v
	}
	if kind != webrtc.RTPCodecTypeVideo {
		return nil
	}
	switch {
	case strings.EqualFold(mimeType, MimeH264):
		in := s.h264[pkt.SSRC]
		if in == nil {
			if s.h264 == nil {
				s.h264 = map[uint32]*Inspector{}
			}
			in = NewInspector(s.p)
			s.h264[pkt.SSRC] = in
		}
		s.v = in.WriteRTP(pkt)
	case strings.EqualFold(mimeType, MimeVP8):
		if w, h, ok := VP8KeyframeSize(pkt.Payload); ok {
			s.v = CheckResolution(s.p, w, h)
		}
	}
	return s.v
}

// Violation returns the first violation found, or nil.
func (s *StreamInspector) Violation() *Violation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v
}

// Bitrate returns the publisher's current bitrate in bits per second.
func (s *StreamInspector) Bitrate(now time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.meter.Rate(now)
}

// VP8KeyframeSize reads the picture size from an RTP VP8 payload that starts a keyframe; ok is false for
// every other payload. The payload descriptor is RFC 7741 §4.2; the frame starts with the 3-byte frame tag
// whose lowest bit is 0 on keyframes, then the start code 9d 01 2a and two little-endian 16-bit fields, each
// 14 bits of size and 2 bits of scaling (RFC 6386 §9.1).
func VP8KeyframeSize(payload []byte) (width, height int, ok bool) {
	if len(payload) < 1 {
		return 0, 0, false
	}
	d := payload[0]
	// S (start of partition) set and partition index 0: the frame header follows.
	if d&0x10 == 0 || d&0x07 != 0 {
		return 0, 0, false
	}
	i := 1
	if d&0x80 != 0 { // X: extension byte I|L|T|K|RSV
		if len(payload) < 2 {
			return 0, 0, false
		}
		x := payload[1]
		i = 2
		if x&0x80 != 0 { // I: PictureID, 7 or 15 bits (M bit)
			if len(payload) <= i {
				return 0, 0, false
			}
			if payload[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID|Y|KEYIDX
			i++
		}
	}
	f := payload[min(i, len(payload)):]
	if len(f) < 10 || f[0]&0x01 != 0 || f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
		return 0, 0, false
	}
	width = int(uint16(f[6])|uint16(f[7])<<8) & 0x3fff
	height = int(uint16(f[8])|uint16(f[9])<<8) & 0x3fff
	return width, height, width > 0 && height > 0
}
