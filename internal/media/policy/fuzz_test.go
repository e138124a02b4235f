package policy

import (
	"math/rand/v2"
	"testing"

	"github.com/pion/rtp"
)

// FuzzParseSPS feeds arbitrary bytes to every parser of untrusted H.264 input: ParseSPS, SliceType, and the
// Inspector's RTP payload and Annex B paths. None may panic, and what ParseSPS accepts must be sane.
func FuzzParseSPS(f *testing.F) {
	for _, fx := range fixtures {
		for nal := range AnnexBNALs(readFixture(f, fx.file)) {
			if len(nal) < 64 { // parameter sets, and short slices
				f.Add(nal)
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20 {
		f.Add(writeSPS(randomSPS(rng)))
	}
	f.Add([]byte{0x7c, 0x87, 0x42, 0xc0})
	f.Add([]byte{0x78, 0x00, 0x04, 0x67, 0x42, 0xc0, 0x1f})
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := ParseSPS(data); err == nil {
			if s.Width <= 0 || s.Height <= 0 || s.Width > s.CodedWidth() || s.Height > s.CodedHeight() {
				t.Fatalf("accepted SPS with size %dx%d (coded %dx%d)", s.Width, s.Height, s.CodedWidth(), s.CodedHeight())
			}
			_ = s.Profile().String()
		}
		// As a slice, whatever the header says.
		if len(data) > 0 {
			hdr := append([]byte{0x41}, data[1:]...)
			if k, err := SliceType(hdr); err == nil && k > SliceSI {
				t.Fatalf("slice kind %d", k)
			}
		}
		_, _ = SliceType(data)
		// As RTP payloads (each prefix, so FU-A sequences build up) and as a byte stream.
		in := NewInspector(IVS)
		for i := range min(len(data), 16) {
			in.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i)}, Payload: data[i:]})
		}
		NewInspector(Open).WriteAnnexB(data)
		_, _, _ = VP8KeyframeSize(data)
	})
}
