package policy

import (
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/openstage/openstage/internal/ivs"
)

// packetize turns an Annex B stream into RTP packets with pion's H.264 payloader (RFC 6184 packetization
// mode 1: single NAL units, STAP-A for SPS+PPS, FU-A for what exceeds mtu). Below an MTU of 100 STAP-A is
// turned off: pion drops SPS and PPS that do not fit in one STAP-A, and small MTUs are here to send the SPS
// in FU-A fragments.
func packetize(stream []byte, mtu uint16) []*rtp.Packet {
	p := codecs.H264Payloader{DisableStapA: mtu < 100}
	var out []*rtp.Packet
	seq := uint16(65530) // wraps during the stream
	for nal := range AnnexBNALs(stream) {
		for _, pl := range p.Payload(mtu, append([]byte{0, 0, 0, 1}, nal...)) {
			out = append(out, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, SSRC: 1234},
				Payload: pl})
			seq++
		}
	}
	return out
}

// packetKinds counts the packet types of RFC 6184 §5.2 in packets.
func packetKinds(pkts []*rtp.Packet) (single, stapA, fuA int) {
	for _, p := range pkts {
		switch p.Payload[0] & 0x1f {
		case rtpSTAPA:
			stapA++
		case rtpFUA:
			fuA++
		default:
			single++
		}
	}
	return
}

// permissive admits everything: the Inspector then only observes.
var permissive = Policy{Name: "permissive", AllowBFrames: true}

func TestInspectorFixtures(t *testing.T) {
	openBFrames := Open
	openBFrames.AllowBFrames = true
	tests := []struct {
		file                   string
		ivs, open, openBFrames ivs.ErrorCode
	}{
		{"cb_1280x720.h264", "", "", ""},
		{"cb_720x1280.h264", "", "", ""}, // portrait 720p is within 1280x720
		{"cb_854x480.h264", "", "", ""},
		{"cb_1920x1080.h264", ivs.ErrResolutionExceeded, ivs.ErrResolutionExceeded, ivs.ErrResolutionExceeded},
		{"cb_1366x768.h264", ivs.ErrResolutionExceeded, ivs.ErrResolutionExceeded, ivs.ErrResolutionExceeded},
		{"high_bframes_640x360.h264", ivs.ErrInvalidVideoCodec, ivs.ErrBFramePresent, ""},
		{"main_interlaced_1920x1080.h264", ivs.ErrInvalidVideoCodec, ivs.ErrResolutionExceeded, ivs.ErrResolutionExceeded},
		{"high444_642x362.h264", ivs.ErrInvalidVideoCodec, "", ""},
		{"high422_640x362.h264", ivs.ErrInvalidVideoCodec, "", ""},
	}
	for _, tc := range tests {
		stream := readFixture(t, tc.file)
		for _, pc := range []struct {
			p    Policy
			want ivs.ErrorCode
		}{{IVS, tc.ivs}, {Open, tc.open}, {openBFrames, tc.openBFrames}, {permissive, ""}} {
			code := func(v *Violation) ivs.ErrorCode {
				if v == nil {
					return ""
				}
				return v.Code
			}
			// The same verdict from the byte stream and from RTP at several MTUs: 1200 (slices in FU-A,
			// SPS and PPS in STAP-A), 100 (B slices fragmented too) and 12 (the SPS itself in FU-A).
			in := NewInspector(pc.p)
			if got := code(in.WriteAnnexB(stream)); got != pc.want {
				t.Errorf("%s, policy %s, Annex B: %q, want %q", tc.file, pc.p.Name, got, pc.want)
			}
			for _, mtu := range []uint16{1200, 100, 12} {
				in := NewInspector(pc.p)
				var v *Violation
				for _, pkt := range packetize(stream, mtu) {
					if v = in.WriteRTP(pkt); v != nil {
						break
					}
				}
				if got := code(v); got != pc.want {
					t.Errorf("%s, policy %s, MTU %d: %q, want %q (%v)", tc.file, pc.p.Name, mtu, got, pc.want, v)
				}
				if in.Violation() != v {
					t.Errorf("Violation() = %v, want %v", in.Violation(), v)
				}
				if v != nil && in.WriteRTP(&rtp.Packet{Payload: []byte{0x41, 0x9a}}) != v {
					t.Error("the violation is not kept")
				}
				s, ok := in.SPS()
				if !ok || in.BadSPS() != 0 {
					t.Fatalf("%s MTU %d: SPS seen %v, bad %d", tc.file, mtu, ok, in.BadSPS())
				}
				if want := fixtureByName(t, tc.file); s.Width != want.width || s.Height != want.height {
					t.Errorf("%s MTU %d: %dx%d", tc.file, mtu, s.Width, s.Height)
				}
			}
		}
	}
}

func fixtureByName(t *testing.T, name string) fixture {
	for _, f := range fixtures {
		if f.file == name {
			return f
		}
	}
	t.Fatalf("no fixture %s", name)
	return fixture{}
}

func TestPacketizationExercised(t *testing.T) {
	stream := readFixture(t, "cb_1280x720.h264")
	single, stapA, fuA := packetKinds(packetize(stream, 1200))
	if single == 0 || stapA == 0 || fuA == 0 {
		t.Errorf("MTU 1200: %d single, %d STAP-A, %d FU-A: not every packet type is tested", single, stapA, fuA)
	}
	// At MTU 12 the SPS is sent in FU-A fragments: no STAP-A at all.
	if _, stapA, _ := packetKinds(packetize(stream, 12)); stapA != 0 {
		t.Errorf("MTU 12: %d STAP-A", stapA)
	}
}

// spsFragments returns the packets of the first access unit's SPS when sent in FU-A, and the rest.
func spsFragments(t *testing.T, pkts []*rtp.Packet) (frags, rest []*rtp.Packet) {
	for i, p := range pkts {
		if p.Payload[0]&0x1f == rtpFUA && p.Payload[1]&0x1f == nalSPS {
			frags = append(frags, p)
			continue
		}
		if len(frags) > 0 {
			return frags, pkts[i:]
		}
	}
	t.Fatal("no fragmented SPS")
	return nil, nil
}

func TestInspectorSPSFragmentLoss(t *testing.T) {
	pkts := packetize(readFixture(t, "cb_1920x1080.h264"), 12)
	frags, rest := spsFragments(t, pkts)
	if len(frags) < 3 {
		t.Fatalf("%d fragments", len(frags))
	}

	// A lost middle fragment: the SPS is not reassembled from the others (it would be garbage); no violation
	// and no parse error. The next SPS (second IDR) is.
	in := NewInspector(IVS)
	for i, p := range frags {
		if i != 1 {
			in.WriteRTP(p)
		}
	}
	if _, ok := in.SPS(); ok || in.BadSPS() != 0 || in.Violation() != nil {
		t.Fatalf("after a lost fragment: SPS %v, bad %d, violation %v", ok, in.BadSPS(), in.Violation())
	}
	var v *Violation
	for _, p := range rest {
		if v = in.WriteRTP(p); v != nil {
			break
		}
	}
	if v == nil || v.Code != ivs.ErrResolutionExceeded {
		t.Errorf("second SPS: %v", v)
	}

	// Reordered fragments: the same.
	in = NewInspector(IVS)
	in.WriteRTP(frags[0])
	in.WriteRTP(frags[2])
	in.WriteRTP(frags[1])
	for _, p := range frags[3:] {
		in.WriteRTP(p)
	}
	if _, ok := in.SPS(); ok || in.BadSPS() != 0 {
		t.Errorf("after reordering: SPS %v, bad %d", ok, in.BadSPS())
	}

	// A continuation without its start, and a start followed by a single NAL unit packet.
	in = NewInspector(IVS)
	for _, p := range frags[1:] {
		in.WriteRTP(p)
	}
	in.WriteRTP(frags[0])
	in.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: frags[1].SequenceNumber}, Payload: []byte{0x68, 0xce, 0x38, 0x80}})
	for _, p := range frags[1:] {
		in.WriteRTP(p)
	}
	if _, ok := in.SPS(); ok || in.BadSPS() != 0 {
		t.Errorf("after orphan fragments: SPS %v, bad %d", ok, in.BadSPS())
	}
}

func TestInspectorMalformedPayloads(t *testing.T) {
	sps := writeSPS(spsSpec{SPS: SPS{ProfileIDC: 66, ConstraintFlags: 0xC0, LevelIDC: 40, ChromaFormatIDC: 1,
		BitDepthLuma: 8, BitDepthChroma: 8, Log2MaxFrameNum: 4, PicOrderCntType: 2, MaxNumRefFrames: 1,
		PicWidthInMbsMinus1: 119, PicHeightInMapUnitsMinus1: 67, FrameMbsOnly: true,
		FrameCropping: true, CropBottom: 4}})
	stap := func(nals ...[]byte) []byte {
		b := []byte{0x78}
		for _, n := range nals {
			b = append(b, byte(len(n)>>8), byte(len(n)))
			b = append(b, n...)
		}
		return b
	}
	bSlice := func() []byte { // slice_type 6 (B, all slices of the picture), non-IDR
		var w bitWriter
		w.ue(0)
		w.ue(6)
		w.ue(0)
		return append([]byte{0x01}, w.trailing()...)
	}()
	tests := []struct {
		name    string
		payload []byte
		want    ivs.ErrorCode
	}{
		{"empty", nil, ""},
		{"STAP-A with an SPS", stap([]byte{0x09, 0xf0}, sps), ivs.ErrResolutionExceeded},
		{"STAP-A size past the end", append(stap(sps)[:3], sps...)[:10], ""},
		{"STAP-A size past the end, then SPS", append([]byte{0x78, 0xff, 0xff}, sps...), ""},
		{"STAP-A with a B slice", stap(bSlice), ivs.ErrBFramePresent},
		{"FU-A too short", []byte{0x7c, 0x85}, ""},
		{"FU-A start of a B slice", append([]byte{0x7c, 0x81}, bSlice[1:]...), ivs.ErrBFramePresent},
		{"FU-A B slice with F bit", append([]byte{0xfc, 0x81}, bSlice[1:]...), ""},
		{"B slice with F bit", append([]byte{0x81}, bSlice[1:]...), ""},
		{"STAP-B", append([]byte{0x19, 0, 0}, sps...), ""},
		{"FU-B", append([]byte{0x1d, 0x87, 0, 0}, sps[1:]...), ""},
		{"type 0", []byte{0x00, 1, 2, 3}, ""},
		{"type 30", []byte{0x1e, 1, 2, 3}, ""},
		{"garbage SPS", []byte{0x67, 0xff}, ""},
	}
	for _, tc := range tests {
		in := NewInspector(IVS)
		v := in.WriteRTP(&rtp.Packet{Payload: tc.payload})
		got := ivs.ErrorCode("")
		if v != nil {
			got = v.Code
		}
		if got != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, v, tc.want)
		}
	}
	if NewInspector(IVS).WriteRTP(nil) != nil {
		t.Error("nil packet")
	}
	in := NewInspector(IVS)
	in.WriteNAL([]byte{0x67, 0xff})
	in.WriteNAL([]byte{0x67, 0xff})
	if in.BadSPS() != 2 || in.String() != "h264: no SPS yet" {
		t.Errorf("BadSPS %d, %s", in.BadSPS(), in)
	}
	in.WriteNAL(sps)
	if in.String() != "h264: Constrained Baseline 1920x1080 level 40" {
		t.Errorf("String() = %s", in)
	}
}

// A plain Baseline SPS (constraint_set1 clear) passes under IVS; a Main one does not.
func TestInspectorProfiles(t *testing.T) {
	for _, tc := range []struct {
		idc, flags uint8
		want       ivs.ErrorCode
	}{
		{66, 0x00, ""}, {66, 0x40, ""}, {66, 0xC0, ""}, {77, 0x80, ""}, {77, 0x00, ivs.ErrInvalidVideoCodec},
		{100, 0x00, ivs.ErrInvalidVideoCodec}, {100, 0x0C, ivs.ErrInvalidVideoCodec}, {66, 0x08, ivs.ErrInvalidVideoCodec},
	} {
		sps := writeSPS(spsSpec{SPS: SPS{ProfileIDC: tc.idc, ConstraintFlags: tc.flags, LevelIDC: 31, ChromaFormatIDC: 1,
			BitDepthLuma: 8, BitDepthChroma: 8, Log2MaxFrameNum: 4, PicOrderCntType: 2, MaxNumRefFrames: 1,
			PicWidthInMbsMinus1: 39, PicHeightInMapUnitsMinus1: 22, FrameMbsOnly: true}})
		v := NewInspector(IVS).WriteNAL(sps)
		got := ivs.ErrorCode("")
		if v != nil {
			got = v.Code
		}
		if got != tc.want {
			t.Errorf("profile_idc %d flags %08b: %v, want %q", tc.idc, tc.flags, v, tc.want)
		}
	}
}

func TestInspectorAllocations(t *testing.T) {
	pkts := packetize(readFixture(t, "high_bframes_640x360.h264"), 1200)
	pkts = append(pkts, packetize(readFixture(t, "cb_1280x720.h264"), 100)...)
	in := NewInspector(permissive)
	for _, p := range pkts {
		in.WriteRTP(p)
	}
	// Once the SPS have been seen, a pass allocates nothing: identical SPS are not parsed again, and the
	// SPS reassembly buffer is reused.
	allocs := testing.AllocsPerRun(20, func() {
		for _, p := range pkts[len(pkts)/2:] {
			in.WriteRTP(p)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per pass", allocs)
	}
}

func TestAnnexBNALs(t *testing.T) {
	stream := []byte{0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 4, 0, 0}
	var got [][]byte
	for nal := range AnnexBNALs(stream) {
		got = append(got, nal)
	}
	if len(got) != 3 || string(got[0]) != "\x67\x01\x02" || string(got[1]) != "\x68\x03" || string(got[2]) != "\x65\x04" {
		t.Errorf("% x", got)
	}
	for range AnnexBNALs(stream) {
		break // stopping early is allowed
	}
	for range AnnexBNALs([]byte{1, 2, 3}) {
		t.Error("NAL in a stream without start codes")
	}
}
