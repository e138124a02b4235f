package policy

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fixture is one of the libx264 streams in testdata (see testdata/README.md), with what its SPS says as
// ffmpeg's trace_headers bitstream filter prints it.
type fixture struct {
	file                string
	width, height       int
	profileIDC          uint8
	constraints         uint8
	profile             Profile
	level               uint8
	chroma              uint32
	codedW, codedH      int
	frameMbsOnly        bool
	cropR, cropB        uint32
	pocType             uint32
	maxNumReorderFrames uint32
	bSlices             bool
}

var fixtures = []fixture{
	{file: "cb_1280x720.h264", width: 1280, height: 720, profileIDC: 66, constraints: 0xC0, profile: ProfileConstrainedBaseline,
		level: 50, chroma: 1, codedW: 1280, codedH: 720, frameMbsOnly: true, pocType: 2},
	{file: "cb_720x1280.h264", width: 720, height: 1280, profileIDC: 66, constraints: 0xC0, profile: ProfileConstrainedBaseline,
		level: 50, chroma: 1, codedW: 720, codedH: 1280, frameMbsOnly: true, pocType: 2},
	{file: "cb_1920x1080.h264", width: 1920, height: 1080, profileIDC: 66, constraints: 0xC0, profile: ProfileConstrainedBaseline,
		level: 51, chroma: 1, codedW: 1920, codedH: 1088, frameMbsOnly: true, cropB: 4, pocType: 2},
	{file: "cb_854x480.h264", width: 854, height: 480, profileIDC: 66, constraints: 0xC0, profile: ProfileConstrainedBaseline,
		level: 40, chroma: 1, codedW: 864, codedH: 480, frameMbsOnly: true, cropR: 5, pocType: 2},
	{file: "cb_1366x768.h264", width: 1366, height: 768, profileIDC: 66, constraints: 0xC0, profile: ProfileConstrainedBaseline,
		level: 50, chroma: 1, codedW: 1376, codedH: 768, frameMbsOnly: true, cropR: 5, pocType: 2},
	{file: "high_bframes_640x360.h264", width: 640, height: 360, profileIDC: 100, profile: ProfileHigh,
		level: 31, chroma: 1, codedW: 640, codedH: 368, frameMbsOnly: true, cropB: 4, pocType: 0, maxNumReorderFrames: 2, bSlices: true},
	// Interlaced: 34 map units are field macroblock pairs, 68 macroblock rows; CropUnitY is 4.
	{file: "main_interlaced_1920x1080.h264", width: 1920, height: 1080, profileIDC: 77, constraints: 0x40, profile: ProfileMain,
		level: 62, chroma: 1, codedW: 1920, codedH: 1088, frameMbsOnly: false, cropB: 2, pocType: 0},
	// 4:4:4: CropUnitX and CropUnitY are 1.
	{file: "high444_642x362.h264", width: 642, height: 362, profileIDC: 244, profile: ProfileHigh444,
		level: 31, chroma: 3, codedW: 656, codedH: 368, frameMbsOnly: true, cropR: 14, cropB: 6, pocType: 2},
	// 4:2:2: CropUnitX is 2, CropUnitY 1.
	{file: "high422_640x362.h264", width: 640, height: 362, profileIDC: 122, profile: ProfileHigh422,
		level: 31, chroma: 2, codedW: 640, codedH: 368, frameMbsOnly: true, cropB: 6, pocType: 2},
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nalsOf(stream []byte) [][]byte {
	var out [][]byte
	for nal := range AnnexBNALs(stream) {
		out = append(out, nal)
	}
	return out
}

func TestFixtureSPS(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			var sps []SPS
			for _, nal := range nalsOf(readFixture(t, fx.file)) {
				if nal[0]&0x1f != nalSPS {
					continue
				}
				s, err := ParseSPS(nal)
				if err != nil {
					t.Fatalf("ParseSPS(% x): %v", nal, err)
				}
				sps = append(sps, s)
			}
			if len(sps) != 2 { // one per IDR: frames 0 and 5
				t.Fatalf("%d SPS, want 2", len(sps))
			}
			s := sps[0]
			if s.Width != fx.width || s.Height != fx.height {
				t.Errorf("size %dx%d, want %dx%d", s.Width, s.Height, fx.width, fx.height)
			}
			if s.CodedWidth() != fx.codedW || s.CodedHeight() != fx.codedH {
				t.Errorf("coded size %dx%d, want %dx%d", s.CodedWidth(), s.CodedHeight(), fx.codedW, fx.codedH)
			}
			if s.ProfileIDC != fx.profileIDC || s.ConstraintFlags != fx.constraints || s.Profile() != fx.profile {
				t.Errorf("profile_idc %d constraints %08b (%s), want %d %08b (%s)",
					s.ProfileIDC, s.ConstraintFlags, s.Profile(), fx.profileIDC, fx.constraints, fx.profile)
			}
			if s.LevelIDC != fx.level || s.ChromaFormatIDC != fx.chroma || s.FrameMbsOnly != fx.frameMbsOnly ||
				s.PicOrderCntType != fx.pocType || s.CropRight != fx.cropR || s.CropBottom != fx.cropB {
				t.Errorf("got %+v", s)
			}
			if s.FrameMbsOnly == s.MbAdaptiveFrameField { // x264 sets MBAFF for interlaced
				t.Errorf("frame_mbs_only %v, mb_adaptive_frame_field %v", s.FrameMbsOnly, s.MbAdaptiveFrameField)
			}
			if !s.VUIPresent || !s.VUI.Valid || !s.VUI.TimingInfoPresent || s.VUI.NumUnitsInTick != 1 || s.VUI.TimeScale != 60 ||
				!s.VUI.BitstreamRestriction || s.VUI.MaxNumReorderFrames != fx.maxNumReorderFrames {
				t.Errorf("VUI %+v", s.VUI)
			}
			if s.MaxNumRefFrames != 16 || !s.Direct8x8Inference || s.BitDepthLuma != 8 || s.BitDepthChroma != 8 {
				t.Errorf("got %+v", s)
			}
			if !reflect.DeepEqual(sps[0], sps[1]) {
				t.Errorf("the two SPS differ:\n%+v\n%+v", sps[0], sps[1])
			}
		})
	}
}

func TestFixtureSlices(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			counts := map[SliceKind]int{}
			idr := 0
			for _, nal := range nalsOf(readFixture(t, fx.file)) {
				typ := nal[0] & 0x1f
				k, err := SliceType(nal)
				if typ != nalSliceIDR && typ != nalSliceNonIDR {
					if !errors.Is(err, ErrNotSlice) {
						t.Errorf("NAL type %d: err = %v, want ErrNotSlice", typ, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("NAL type %d: %v", typ, err)
				}
				if typ == nalSliceIDR {
					idr++
					if k != SliceI {
						t.Errorf("IDR slice of type %s", k)
					}
				}
				counts[k]++
			}
			if idr == 0 || counts[SliceP] == 0 {
				t.Errorf("slices %v, %d IDR", counts, idr)
			}
			if got := counts[SliceB] > 0; got != fx.bSlices {
				t.Errorf("B slices found: %v, want %v (%v)", got, fx.bSlices, counts)
			}
		})
	}
}

// bitWriter writes an RBSP for tests: u(n), ue(v), se(v) as in ITU-T H.264 §7.2 and §9.1.
type bitWriter struct {
	buf  []byte
	cur  byte
	nbit uint
}

func (w *bitWriter) u(n uint, v uint64) {
	for i := int(n) - 1; i >= 0; i-- {
		w.cur = w.cur<<1 | byte(v>>uint(i)&1)
		w.nbit++
		if w.nbit == 8 {
			w.buf = append(w.buf, w.cur)
			w.cur, w.nbit = 0, 0
		}
	}
}

func (w *bitWriter) flag(b bool) {
	if b {
		w.u(1, 1)
	} else {
		w.u(1, 0)
	}
}

func (w *bitWriter) ue(v uint32) {
	x := uint64(v) + 1
	n := uint(0)
	for x>>n > 1 {
		n++
	}
	w.u(n, 0)
	w.u(n+1, x)
}

func (w *bitWriter) se(v int32) {
	if v > 0 {
		w.ue(uint32(2*int64(v) - 1))
	} else {
		w.ue(uint32(-2 * int64(v)))
	}
}

// trailing writes rbsp_trailing_bits and returns the RBSP.
func (w *bitWriter) trailing() []byte {
	w.u(1, 1)
	for w.nbit != 0 {
		w.u(1, 0)
	}
	return w.buf
}

// escape inserts emulation_prevention_three_byte where §7.4.1 requires: after two zero bytes, before any
// byte ≤ 3.
func escape(rbsp []byte) []byte {
	var out []byte
	zeros := 0
	for _, b := range rbsp {
		if zeros >= 2 && b <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// spsSpec is what writeSPS encodes: an SPS plus the scaling list deltas and HRD parameters that ParseSPS
// skips.
type spsSpec struct {
	SPS
	scaling [12][]int32 // delta_scale values per list; nil: list not present
	hrd     [2]int      // NAL and VCL HRD: number of CPBs, 0 for none
}

func writeSPS(sp spsSpec) []byte {
	s := sp.SPS
	var w bitWriter
	w.u(8, uint64(s.ProfileIDC))
	w.u(8, uint64(s.ConstraintFlags))
	w.u(8, uint64(s.LevelIDC))
	w.ue(s.ID)
	if highProfile(s.ProfileIDC) {
		w.ue(s.ChromaFormatIDC)
		if s.ChromaFormatIDC == 3 {
			w.flag(s.SeparateColourPlane)
		}
		w.ue(s.BitDepthLuma - 8)
		w.ue(s.BitDepthChroma - 8)
		w.flag(s.QPPrimeYZeroTransformBypass)
		w.flag(s.ScalingMatrixPresent)
		if s.ScalingMatrixPresent {
			n := 8
			if s.ChromaFormatIDC == 3 {
				n = 12
			}
			for i := range n {
				w.flag(sp.scaling[i] != nil)
				for _, d := range sp.scaling[i] {
					w.se(d)
				}
			}
		}
	}
	w.ue(s.Log2MaxFrameNum - 4)
	w.ue(s.PicOrderCntType)
	switch s.PicOrderCntType {
	case 0:
		w.ue(s.Log2MaxPicOrderCntLsb - 4)
	case 1:
		w.flag(s.DeltaPicOrderAlwaysZero)
		w.se(s.OffsetForNonRefPic)
		w.se(s.OffsetForTopToBottomField)
		w.ue(uint32(len(s.OffsetForRefFrame)))
		for _, o := range s.OffsetForRefFrame {
			w.se(o)
		}
	}
	w.ue(s.MaxNumRefFrames)
	w.flag(s.GapsInFrameNumAllowed)
	w.ue(s.PicWidthInMbsMinus1)
	w.ue(s.PicHeightInMapUnitsMinus1)
	w.flag(s.FrameMbsOnly)
	if !s.FrameMbsOnly {
		w.flag(s.MbAdaptiveFrameField)
	}
	w.flag(s.Direct8x8Inference)
	w.flag(s.FrameCropping)
	if s.FrameCropping {
		w.ue(s.CropLeft)
		w.ue(s.CropRight)
		w.ue(s.CropTop)
		w.ue(s.CropBottom)
	}
	w.flag(s.VUIPresent)
	if s.VUIPresent {
		v := s.VUI
		w.flag(v.AspectRatioIDC != 0)
		if v.AspectRatioIDC != 0 {
			w.u(8, uint64(v.AspectRatioIDC))
			if v.AspectRatioIDC == 255 {
				w.u(16, uint64(v.SARWidth))
				w.u(16, uint64(v.SARHeight))
			}
		}
		w.flag(true) // overscan_info_present_flag
		w.flag(false)
		w.flag(true) // video_signal_type_present_flag
		w.u(3, 5)
		w.flag(v.VideoFullRange)
		w.flag(true) // colour_description_present_flag
		w.u(24, 0x010101)
		w.flag(true) // chroma_loc_info_present_flag
		w.ue(1)
		w.ue(2)
		w.flag(v.TimingInfoPresent)
		if v.TimingInfoPresent {
			w.u(32, uint64(v.NumUnitsInTick))
			w.u(32, uint64(v.TimeScale))
			w.flag(v.FixedFrameRate)
		}
		for _, n := range sp.hrd {
			w.flag(n > 0)
			if n > 0 {
				w.ue(uint32(n - 1))
				w.u(4, 3)
				w.u(4, 5)
				for i := range n {
					w.ue(uint32(1000 * (i + 1)))
					w.ue(uint32(3000 * (i + 1)))
					w.flag(i%2 == 0)
				}
				w.u(20, 0xABCDE)
			}
		}
		if sp.hrd[0] > 0 || sp.hrd[1] > 0 {
			w.flag(true) // low_delay_hrd_flag
		}
		w.flag(false) // pic_struct_present_flag
		w.flag(v.BitstreamRestriction)
		if v.BitstreamRestriction {
			w.flag(true)
			w.ue(2)
			w.ue(1)
			w.ue(15)
			w.ue(15)
			w.ue(v.MaxNumReorderFrames)
			w.ue(v.MaxDecFrameBuffering)
		}
	}
	return append([]byte{0x67}, escape(w.trailing())...)
}

// randomSPS makes a valid SPS with every optional part exercised at random, and its expected size derived
// the way an encoder does: choose a picture size, round up to macroblocks, crop the rest.
func randomSPS(rng *rand.Rand) spsSpec {
	var sp spsSpec
	s := &sp.SPS
	profiles := []uint8{66, 77, 88, 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
	s.ProfileIDC = profiles[rng.IntN(len(profiles))]
	s.ConstraintFlags = uint8(rng.IntN(64)) << 2
	s.LevelIDC = uint8(rng.IntN(63))
	s.ID = uint32(rng.IntN(32))
	s.ChromaFormatIDC, s.BitDepthLuma, s.BitDepthChroma = 1, 8, 8
	if highProfile(s.ProfileIDC) {
		s.ChromaFormatIDC = uint32(rng.IntN(4))
		s.SeparateColourPlane = s.ChromaFormatIDC == 3 && rng.IntN(2) == 0
		s.BitDepthLuma, s.BitDepthChroma = 8+uint32(rng.IntN(7)), 8+uint32(rng.IntN(7))
		s.QPPrimeYZeroTransformBypass = rng.IntN(2) == 0
		s.ScalingMatrixPresent = rng.IntN(2) == 0
		if s.ScalingMatrixPresent {
			for i := range sp.scaling {
				if rng.IntN(3) == 0 {
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				// Deltas that reach random values, stopping early (nextScale 0) now and then.
				stop := size + rng.IntN(size)
				last := int32(8)
				list := []int32{}
				for j := range size {
					target := int32(1 + rng.IntN(255))
					if j == stop {
						target = 0
					}
					d := target - last
					if d > 127 {
						d -= 256
					} else if d < -128 {
						d += 256
					}
					list = append(list, d)
					if target == 0 {
						break
					}
					last = target
				}
				sp.scaling[i] = list
			}
		}
	}
	s.Log2MaxFrameNum = 4 + uint32(rng.IntN(13))
	s.PicOrderCntType = uint32(rng.IntN(3))
	switch s.PicOrderCntType {
	case 0:
		s.Log2MaxPicOrderCntLsb = 4 + uint32(rng.IntN(13))
	case 1:
		s.DeltaPicOrderAlwaysZero = rng.IntN(2) == 0
		s.OffsetForNonRefPic = rng.Int32N(1<<20) - 1<<19
		s.OffsetForTopToBottomField = rng.Int32N(1<<20) - 1<<19
		if n := rng.IntN(8); n > 0 {
			s.OffsetForRefFrame = make([]int32, n)
			for i := range s.OffsetForRefFrame {
				s.OffsetForRefFrame[i] = rng.Int32N(1<<16) - 1<<15
			}
		}
	}
	s.MaxNumRefFrames = uint32(rng.IntN(17))
	s.GapsInFrameNumAllowed = rng.IntN(2) == 0
	s.FrameMbsOnly = rng.IntN(3) != 0
	s.MbAdaptiveFrameField = !s.FrameMbsOnly && rng.IntN(2) == 0
	s.Direct8x8Inference = rng.IntN(2) == 0

	chromaArrayType := s.ChromaFormatIDC
	if s.SeparateColourPlane {
		chromaArrayType = 0
	}
	unitX, unitY := 1, 1
	switch chromaArrayType {
	case 1:
		unitX, unitY = 2, 2
	case 2:
		unitX = 2
	}
	if !s.FrameMbsOnly {
		unitY *= 2
	}
	mbH := 16
	if !s.FrameMbsOnly {
		mbH = 32 // a map unit is a macroblock pair
	}
	// A size in whole crop units, the coded size rounded up to macroblocks (pairs), the rest cropped from
	// random sides.
	width := unitX * (1 + rng.IntN(4000/unitX))
	height := unitY * (1 + rng.IntN(2500/unitY))
	s.PicWidthInMbsMinus1 = uint32((width+15)/16 - 1)
	s.PicHeightInMapUnitsMinus1 = uint32((height+mbH-1)/mbH - 1)
	cropX := uint32(((int(s.PicWidthInMbsMinus1)+1)*16 - width) / unitX)
	cropY := uint32(((int(s.PicHeightInMapUnitsMinus1)+1)*mbH - height) / unitY)
	// An encoder may also crop more than the rounding, from any side.
	extraX, extraY := uint32(rng.IntN(3)), uint32(rng.IntN(3))
	if int(extraX)*unitX >= width {
		extraX = 0
	}
	if int(extraY)*unitY >= height {
		extraY = 0
	}
	width -= int(extraX) * unitX
	height -= int(extraY) * unitY
	cropX += extraX
	cropY += extraY
	s.FrameCropping = cropX+cropY > 0 || rng.IntN(4) == 0
	if s.FrameCropping {
		s.CropLeft = uint32(rng.IntN(int(cropX) + 1))
		s.CropRight = cropX - s.CropLeft
		s.CropTop = uint32(rng.IntN(int(cropY) + 1))
		s.CropBottom = cropY - s.CropTop
	}
	s.Width, s.Height = width, height

	s.VUIPresent = rng.IntN(4) != 0
	if s.VUIPresent {
		v := &s.VUI
		v.Valid = true
		if rng.IntN(2) == 0 {
			v.AspectRatioIDC = 255
			v.SARWidth, v.SARHeight = uint16(rng.IntN(65536)), uint16(rng.IntN(65536))
		} else {
			v.AspectRatioIDC = uint8(rng.IntN(17))
		}
		v.VideoFullRange = rng.IntN(2) == 0
		v.TimingInfoPresent = rng.IntN(2) == 0
		if v.TimingInfoPresent {
			v.NumUnitsInTick, v.TimeScale, v.FixedFrameRate = rng.Uint32(), rng.Uint32(), rng.IntN(2) == 0
		}
		sp.hrd = [2]int{rng.IntN(3) * rng.IntN(17), rng.IntN(2) * rng.IntN(33)}
		v.BitstreamRestriction = rng.IntN(2) == 0
		if v.BitstreamRestriction {
			v.MaxNumReorderFrames, v.MaxDecFrameBuffering = uint32(rng.IntN(17)), uint32(rng.IntN(17))
		}
	}
	return sp
}

func TestSPSRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	escapes := 0
	for i := range 2000 {
		sp := randomSPS(rng)
		nal := writeSPS(sp)
		if bytes.Contains(nal, []byte{0, 0, 3}) {
			escapes++
		}
		got, err := ParseSPS(nal)
		if err != nil {
			t.Fatalf("#%d: ParseSPS: %v\nspec %+v\nnal % x", i, err, sp.SPS, nal)
		}
		if !reflect.DeepEqual(got, sp.SPS) {
			t.Fatalf("#%d:\n got %+v\nwant %+v\nnal % x", i, got, sp.SPS, nal)
		}
	}
	if escapes < 8 {
		t.Errorf("only %d of the SPS needed emulation prevention; the test does not exercise it", escapes)
	}
}

// TestSPSTruncated cuts SPS NAL units short everywhere: before the picture size, that is an error; within
// the VUI, the SPS parses with VUI.Valid false.
func TestSPSTruncated(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 40 {
		sp := randomSPS(rng)
		nal := writeSPS(sp)
		for n := range len(nal) {
			// Every cut near the start and in the VUI at the end; a sample of those within scaling lists.
			if n > 32 && n < len(nal)-32 && n%7 != 0 {
				continue
			}
			got, err := ParseSPS(nal[:n])
			if err != nil {
				continue
			}
			// It parsed: what it says is right. The cut was in the VUI (which is then invalid) or in the
			// trailing bits.
			if got.Width != sp.Width || got.Height != sp.Height || got.VUIPresent != sp.VUIPresent ||
				got.VUI.Valid && got.VUI != sp.VUI {
				t.Fatalf("cut to %d of %d bytes: parsed %+v\nwant %+v", n, len(nal), got, sp.SPS)
			}
		}
	}
}

func TestSPSErrors(t *testing.T) {
	valid := writeSPS(spsSpec{SPS: SPS{ProfileIDC: 66, ConstraintFlags: 0xC0, LevelIDC: 31, ChromaFormatIDC: 1,
		BitDepthLuma: 8, BitDepthChroma: 8, Log2MaxFrameNum: 4, PicOrderCntType: 2, MaxNumRefFrames: 1,
		PicWidthInMbsMinus1: 79, PicHeightInMapUnitsMinus1: 44, FrameMbsOnly: true}})
	if s, err := ParseSPS(valid); err != nil || s.Width != 1280 || s.Height != 720 {
		t.Fatalf("valid SPS: %+v, %v", s, err)
	}
	mk := func(f func(*SPS)) []byte {
		sp := spsSpec{SPS: SPS{ProfileIDC: 100, LevelIDC: 31, ChromaFormatIDC: 1, BitDepthLuma: 8, BitDepthChroma: 8,
			Log2MaxFrameNum: 4, PicOrderCntType: 0, Log2MaxPicOrderCntLsb: 4, MaxNumRefFrames: 1,
			PicWidthInMbsMinus1: 39, PicHeightInMapUnitsMinus1: 22, FrameMbsOnly: true}}
		f(&sp.SPS)
		return writeSPS(sp)
	}
	tests := []struct {
		name string
		nal  []byte
	}{
		{"empty", nil},
		{"header only", []byte{0x67}},
		{"PPS", []byte{0x68, 0xce, 0x38, 0x80}},
		{"forbidden bit", append([]byte{0xe7}, valid[1:]...)},
		{"sps id 32", mk(func(s *SPS) { s.ID = 32 })},
		{"chroma_format_idc 4", mk(func(s *SPS) { s.ChromaFormatIDC = 4 })},
		{"bit depth 15", mk(func(s *SPS) { s.BitDepthLuma = 15 })},
		{"log2_max_frame_num 17", mk(func(s *SPS) { s.Log2MaxFrameNum = 17 })},
		{"pic_order_cnt_type 3", mk(func(s *SPS) { s.PicOrderCntType = 3 })},
		{"log2_max_poc_lsb 17", mk(func(s *SPS) { s.Log2MaxPicOrderCntLsb = 17 })},
		{"max_num_ref_frames 17", mk(func(s *SPS) { s.MaxNumRefFrames = 17 })},
		{"width 8193 MBs", mk(func(s *SPS) { s.PicWidthInMbsMinus1 = 8192 })},
		{"crop everything", mk(func(s *SPS) { s.FrameCropping, s.CropLeft, s.CropRight = true, 160, 160 })},
		{"crop all rows", mk(func(s *SPS) { s.FrameCropping, s.CropBottom = true, 184 })},
		{"exp-Golomb of 33 bits", []byte{0x67, 0x42, 0xc0, 0x1f, 0, 0, 0, 0, 0x80}},
	}
	for _, tc := range tests {
		if s, err := ParseSPS(tc.nal); err == nil {
			t.Errorf("%s: parsed %+v", tc.name, s)
		}
	}
	if _, err := ParseSPS([]byte{0x68, 0}); !errors.Is(err, ErrNotSPS) {
		t.Errorf("PPS: err = %v, want ErrNotSPS", err)
	}
}

func TestRBSPReader(t *testing.T) {
	// 00 00 03 01: the 03 is dropped; 00 00 03 03: the first 03 is dropped, the second kept.
	r := newRBSPReader([]byte{0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x03, 0xff})
	var got []byte
	for {
		b, err := r.u(8)
		if err != nil {
			break
		}
		got = append(got, byte(b))
	}
	if want := []byte{0, 0, 1, 0, 0, 3, 0xff}; !bytes.Equal(got, want) {
		t.Errorf("got % x, want % x", got, want)
	}
	// Exp-Golomb codes of Table 9-2: 1 → 0, 010 → 1, 011 → 2, 00100 → 3 ...; se: 0, 1, −1, 2, −2.
	var w bitWriter
	for v := range uint32(300) {
		w.ue(v)
	}
	for _, v := range []int32{0, 1, -1, 2, -2, 127, -128, 1 << 30, -(1 << 30)} {
		w.se(v)
	}
	w.ue(1<<32 - 2) // the largest value
	r = newRBSPReader(escape(w.trailing()))
	for v := range uint32(300) {
		if got, err := r.ue(); err != nil || got != v {
			t.Fatalf("ue: got %d, %v; want %d", got, err, v)
		}
	}
	for _, v := range []int32{0, 1, -1, 2, -2, 127, -128, 1 << 30, -(1 << 30)} {
		if got, err := r.se(); err != nil || got != v {
			t.Fatalf("se: got %d, %v; want %d", got, err, v)
		}
	}
	if got, err := r.ue(); err != nil || got != 1<<32-2 {
		t.Fatalf("ue max: got %d, %v", got, err)
	}
}

func TestSliceType(t *testing.T) {
	for st := range uint32(10) {
		var w bitWriter
		w.ue(uint32(st * 37)) // first_mb_in_slice
		w.ue(st)
		w.ue(0) // pic_parameter_set_id
		body := w.trailing()
		for _, hdr := range []byte{0x01, 0x21, 0x41, 0x65} {
			nal := append([]byte{hdr}, escape(body)...)
			k, err := SliceType(nal)
			if err != nil || k != SliceKind(st%5) {
				t.Errorf("slice_type %d: got %s, %v", st, k, err)
			}
		}
	}
	if _, err := SliceType([]byte{0x41}); err == nil {
		t.Error("empty slice header accepted")
	}
	if _, err := SliceType(nil); err == nil {
		t.Error("nil accepted")
	}
	var w bitWriter
	w.ue(0)
	w.ue(10) // slice_type 10 does not exist
	if _, err := SliceType(append([]byte{0x41}, w.trailing()...)); err == nil {
		t.Error("slice_type 10 accepted")
	}
	for _, typ := range []byte{2, 6, 7, 8, 9, 20} {
		if _, err := SliceType([]byte{0x60 | typ, 0x88}); !errors.Is(err, ErrNotSlice) {
			t.Errorf("NAL type %d: err = %v", typ, err)
		}
	}
	if SliceB.String() != "B" || SliceKind(7).String() != "SliceKind(7)" {
		t.Error("SliceKind.String")
	}
}

func TestClassifyProfile(t *testing.T) {
	tests := map[string]Profile{
		"42e01f": ProfileConstrainedBaseline, // Chrome, OBS
		"42c01f": ProfileConstrainedBaseline, // x264 baseline
		"42f01f": ProfileConstrainedBaseline,
		"42401f": ProfileConstrainedBaseline,
		"42001f": ProfileBaseline,
		"42801e": ProfileBaseline,
		"42101e": ProfileBaseline, // constraint_set3 (level 1b)
		"4d001f": ProfileMain,
		"4d401f": ProfileMain,
		"4d801f": ProfileConstrainedBaseline, // Main that also conforms to Baseline
		"4dc01f": ProfileConstrainedBaseline,
		"58c01e": ProfileConstrainedBaseline,
		"58801e": ProfileBaseline,
		"58001e": ProfileExtended,
		"64001f": ProfileHigh,
		"640c1f": ProfileConstrainedHigh,
		"6e001f": ProfileHigh10,
		"7a001f": ProfileHigh422,
		"f4001f": ProfileHigh444,
		"6e101f": ProfileHigh10Intra,
		"2c101f": ProfileCAVLC444Intra,
		"42e11f": ProfileUnknown, // reserved_zero_2bits set
		"42081f": ProfileUnknown, // constraint_set4 on Baseline
		"4d201f": ProfileUnknown, // constraint_set2 on Main
		"64081f": ProfileUnknown, // Progressive High: not in the table
		"53001f": ProfileUnknown,
	}
	for s, want := range tests {
		plid, err := ParseProfileLevelID(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := plid.Profile(); got != want {
			t.Errorf("%s: %s, want %s", s, got, want)
		}
		if plid.String() != s {
			t.Errorf("String() = %s, want %s", plid, s)
		}
	}
	for _, bad := range []string{"", "42e01", "42e01f0", "42e0zz", "0x42e0"} {
		if _, err := ParseProfileLevelID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if p, _ := ParseProfileLevelID("42E01F"); p.Profile() != ProfileConstrainedBaseline {
		t.Error("upper case profile-level-id")
	}
	if DefaultProfileLevelID.Profile() != ProfileBaseline || DefaultProfileLevelID.String() != "42000a" {
		t.Errorf("default %s %s", DefaultProfileLevelID, DefaultProfileLevelID.Profile())
	}
	if Profile(200).String() != "Profile(200)" || !ProfileBaseline.Baseline() || ProfileMain.Baseline() {
		t.Error("Profile methods")
	}
}
