package policy

import (
	"bytes"
	"fmt"

	"github.com/pion/rtp"

	"github.com/openstage/openstage/internal/ivs"
)

// RTP payload structures of RFC 6184 §5.2 (Table 1) and the NAL unit header fields (§5.3).
const (
	rtpSTAPA = 24
	rtpFUA   = 28

	nalTypeMask   = 0x1f
	nalForbidden  = 0x80
	nalRefIdcMask = 0x60

	fuStart = 0x80
	fuEnd   = 0x40

	// maxSPSSize bounds the reassembly of an SPS sent in FU-A fragments. Real ones are tens of bytes; even
	// one with HRD parameters for 32 CPBs and 4:4:4 scaling lists stays well under this.
	maxSPSSize = 2048
)

// Inspector checks one H.264 stream against a policy as it flows: one RTP stream (one SSRC: each simulcast
// layer needs its own Inspector). It looks at
//   - every SPS: its profile (INVALID_VIDEO_CODEC when the policy wants Baseline and the SPS says otherwise)
//     and its cropped picture size (RESOLUTION_EXCEEDED);
//   - the start of every coded slice: slice_type (B_FRAME_PRESENT unless the policy allows B slices).
//
// Feed it RTP packets as received (WriteRTP: single NAL unit packets, STAP-A and FU-A, i.e. packetization
// modes 0 and 1 of RFC 6184), or NAL units without start codes (WriteNAL), or an Annex B byte stream
// (WriteAnnexB). It does not reassemble fragmented slices (the slice header is in the first fragment), so it
// copies nothing and allocates nothing per packet; an SPS split over FU-A fragments, which no common encoder
// sends, is reassembled when its fragments arrive in order.
//
// The first violation is kept: later calls return it again. An SPS that cannot be parsed is not a violation
// (the decoders would fail too, and a lost fragment could cause it); it is counted in BadSPS.
//
// An Inspector is not safe for concurrent use.
type Inspector struct {
	p Policy
	v *Violation

	sps     SPS
	haveSPS bool
	rawSPS  []byte // the last SPS NAL unit parsed, to skip identical repeats (one per keyframe)
	badSPS  int

	fuSPS    []byte // SPS being reassembled from FU-A fragments
	fuActive bool
	fuNext   uint16 // sequence number the next fragment must have
}

// NewInspector makes an Inspector for one H.264 stream.
func NewInspector(p Policy) *Inspector { return &Inspector{p: p} }

// Violation returns the first violation found, or nil.
func (in *Inspector) Violation() *Violation { return in.v }

// SPS returns the last SPS parsed, if any.
func (in *Inspector) SPS() (SPS, bool) { return in.sps, in.haveSPS }

// BadSPS counts SPS NAL units that could not be parsed.
func (in *Inspector) BadSPS() int { return in.badSPS }

// WriteRTP inspects one RTP packet of the stream. Packets may be lost or reordered; only an SPS in FU-A
// fragments needs them in order.
func (in *Inspector) WriteRTP(pkt *rtp.Packet) *Violation {
	if in.v != nil || pkt == nil {
		return in.v
	}
	return in.writePayload(pkt.SequenceNumber, pkt.Payload)
}

func (in *Inspector) writePayload(seq uint16, b []byte) *Violation {
	if len(b) == 0 {
		return nil
	}
	switch typ := b[0] & nalTypeMask; {
	case typ >= 1 && typ <= 23: // single NAL unit packet (§5.6): the payload is the NAL unit
		in.fuActive = false
		return in.WriteNAL(b)
	case typ == rtpSTAPA: // §5.7.1: header byte, then (16-bit size, NAL unit)*
		in.fuActive = false
		rest := b[1:]
		for len(rest) >= 2 {
			n := int(rest[0])<<8 | int(rest[1])
			rest = rest[2:]
			if n > len(rest) {
				return nil // a damaged aggregate: ignore the rest of it
			}
			if v := in.WriteNAL(rest[:n]); v != nil {
				return v
			}
			rest = rest[n:]
		}
		return nil
	case typ == rtpFUA: // §5.8: FU indicator, FU header, fragment
		if len(b) < 3 {
			return nil
		}
		indicator, header, frag := b[0], b[1], b[2:]
		nalType := header & nalTypeMask
		if header&fuStart != 0 {
			in.fuActive = false
			// The NAL unit header is F and NRI from the FU indicator and the type from the FU header.
			nalHeader := indicator&(nalForbidden|nalRefIdcMask) | nalType
			switch nalType {
			case nalSliceNonIDR, nalSliceIDR:
				return in.slice(nalHeader, frag)
			case nalSPS:
				in.fuSPS = append(append(in.fuSPS[:0], nalHeader), frag...)
				in.fuActive, in.fuNext = true, seq+1
			}
			return nil
		}
		if !in.fuActive {
			return nil
		}
		if seq != in.fuNext || nalType != nalSPS || len(in.fuSPS)+len(frag) > maxSPSSize {
			in.fuActive = false // lost, reordered or oversized: wait for the next SPS
			return nil
		}
		in.fuSPS = append(in.fuSPS, frag...)
		in.fuNext++
		if header&fuEnd != 0 {
			in.fuActive = false
			return in.WriteNAL(in.fuSPS)
		}
		return nil
	}
	// STAP-B, MTAP and FU-B exist only in the interleaved mode, which CheckOffer refuses; 0, 30 and 31 are
	// undefined. Nothing to look at.
	return nil
}

// WriteNAL inspects one NAL unit: its header byte and payload, without a start code.
func (in *Inspector) WriteNAL(nal []byte) *Violation {
	if in.v != nil || len(nal) == 0 {
		return in.v
	}
	switch nal[0] & nalTypeMask {
	case nalSPS:
		in.spsNAL(nal)
	case nalSliceNonIDR, nalSliceIDR:
		in.slice(nal[0], nal[1:])
	}
	return in.v
}

// WriteAnnexB inspects every NAL unit of an Annex B byte stream (ITU-T H.264 B.2): NAL units after
// 0x000001 or 0x00000001 start codes.
func (in *Inspector) WriteAnnexB(stream []byte) *Violation {
	for nal := range AnnexBNALs(stream) {
		if v := in.WriteNAL(nal); v != nil {
			return v
		}
	}
	return in.v
}

func (in *Inspector) slice(header byte, body []byte) *Violation {
	if header&nalForbidden != 0 || in.p.AllowBFrames {
		return in.v
	}
	kind, err := sliceKind(body)
	if err == nil && kind == SliceB {
		in.v = violation(ivs.ErrBFramePresent, "the H.264 stream has B slices; policy %s does not allow B-frames", in.p.Name)
	}
	return in.v
}

func (in *Inspector) spsNAL(nal []byte) {
	if in.haveSPS && bytes.Equal(nal, in.rawSPS) {
		return
	}
	s, err := ParseSPS(nal)
	if err != nil {
		in.badSPS++
		return
	}
	in.rawSPS = append(in.rawSPS[:0], nal...)
	in.sps, in.haveSPS = s, true
	if in.p.H264BaselineOnly && !s.Profile().Baseline() {
		in.v = violation(ivs.ErrInvalidVideoCodec, "the H.264 stream is %s profile (profile_idc %d, constraints %08b); policy %s accepts only Baseline",
			s.Profile(), s.ProfileIDC, s.ConstraintFlags, in.p.Name)
		return
	}
	if v := CheckResolution(in.p, s.Width, s.Height); v != nil {
		in.v = v
	}
}

// AnnexBNALs yields the NAL units of an Annex B byte stream, without their start codes and without the
// trailing zero bytes before the next start code (trailing_zero_8bits, B.1.1).
func AnnexBNALs(stream []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		i := findStartCode(stream, 0)
		for i >= 0 {
			start := i + 3
			next := findStartCode(stream, start)
			end := len(stream)
			if next >= 0 {
				end = next
			}
			nal := stream[start:end]
			for len(nal) > 0 && nal[len(nal)-1] == 0 {
				nal = nal[:len(nal)-1]
			}
			if len(nal) > 0 && !yield(nal) {
				return
			}
			i = next
		}
	}
}

// findStartCode returns the index of the next 0x000001 at or after from, or -1.
func findStartCode(b []byte, from int) int {
	if from >= len(b) {
		return -1
	}
	if i := bytes.Index(b[from:], []byte{0, 0, 1}); i >= 0 {
		return from + i
	}
	return -1
}

// String describes the inspector's state, for logs.
func (in *Inspector) String() string {
	if !in.haveSPS {
		return "h264: no SPS yet"
	}
	return fmt.Sprintf("h264: %s %dx%d level %d", in.sps.Profile(), in.sps.Width, in.sps.Height, in.sps.LevelIDC)
}
