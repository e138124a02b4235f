package policy

import (
	"errors"
	"fmt"
)

// NAL unit types this package looks at (ITU-T H.264 Table 7-1).
const (
	nalSliceNonIDR = 1
	nalSliceIDR    = 5
	nalSPS         = 7
)

// ErrNotSPS: ParseSPS was given a NAL unit of another type.
var ErrNotSPS = errors.New("h264: not a sequence parameter set NAL unit")

// ErrNotSlice: SliceType was given a NAL unit that is not a coded slice of a non-IDR or IDR picture.
var ErrNotSlice = errors.New("h264: not a coded slice NAL unit")

func fieldErr(name string, err error) error { return fmt.Errorf("h264: %s: %w", name, err) }

func rangeErr(name string, v, max int64) error {
	return fmt.Errorf("h264: %s = %d, more than %d", name, v, max)
}

// SPS is a sequence parameter set (ITU-T H.264 §7.3.2.1.1, semantics §7.4.2.1.1), with the picture size
// it implies.
type SPS struct {
	ProfileIDC uint8
	// ConstraintFlags is the byte after profile_idc: constraint_set0_flag in the top bit down to
	// constraint_set5_flag, then reserved_zero_2bits. It is the "profile-iop" of RFC 6184 §8.1.
	ConstraintFlags uint8
	LevelIDC        uint8
	ID              uint32 // seq_parameter_set_id

	// Present for the High profiles and the others listed in §7.3.2.1.1; defaults otherwise (4:2:0, 8 bit).
	ChromaFormatIDC             uint32 // 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4
	SeparateColourPlane         bool
	BitDepthLuma                uint32
	BitDepthChroma              uint32
	QPPrimeYZeroTransformBypass bool
	ScalingMatrixPresent        bool

	Log2MaxFrameNum uint32 // log2_max_frame_num_minus4 + 4
	PicOrderCntType uint32
	// pic_order_cnt_type 0
	Log2MaxPicOrderCntLsb uint32 // log2_max_pic_order_cnt_lsb_minus4 + 4
	// pic_order_cnt_type 1
	DeltaPicOrderAlwaysZero   bool
	OffsetForNonRefPic        int32
	OffsetForTopToBottomField int32
	OffsetForRefFrame         []int32 // num_ref_frames_in_pic_order_cnt_cycle entries

	MaxNumRefFrames           uint32
	GapsInFrameNumAllowed     bool
	PicWidthInMbsMinus1       uint32
	PicHeightInMapUnitsMinus1 uint32
	FrameMbsOnly              bool
	MbAdaptiveFrameField      bool
	Direct8x8Inference        bool
	FrameCropping             bool
	CropLeft, CropRight       uint32 // frame_crop_*_offset, in crop units (CropUnitX/CropUnitY)
	CropTop, CropBottom       uint32

	VUIPresent bool
	// VUI holds the VUI parameters when VUIPresent and they parsed; see VUI.Valid.
	VUI VUI

	// Width and Height are the cropped frame size in luma samples, as a decoder outputs it (§7.4.2.1.1,
	// equations 7-18 to 7-22 for the crop).
	Width, Height int
}

// VUI is the part of the VUI parameters (ITU-T H.264 Annex E.1.1) a media policy cares about.
type VUI struct {
	// Valid is false when the VUI could not be read to its end. The SPS fields before it, the picture size
	// included, are still right: a decoder does not need the VUI to decode.
	Valid bool

	AspectRatioIDC       uint8
	SARWidth, SARHeight  uint16
	VideoFullRange       bool
	TimingInfoPresent    bool
	NumUnitsInTick       uint32
	TimeScale            uint32
	FixedFrameRate       bool
	BitstreamRestriction bool
	// MaxNumReorderFrames > 0 announces frames decoded before they are shown: B-frames (or reordered P).
	MaxNumReorderFrames  uint32
	MaxDecFrameBuffering uint32
}

// Profile returns the profile the SPS declares, with its constraint flags taken into account (RFC 6184
// §8.1, Table 5).
func (s SPS) Profile() Profile { return ClassifyProfile(s.ProfileIDC, s.ConstraintFlags) }

// CodedWidth and CodedHeight are the decoded picture size before cropping: whole macroblocks (§7.4.2.1.1,
// PicWidthInSamplesL and FrameHeightInMbs·16).
func (s SPS) CodedWidth() int { return (int(s.PicWidthInMbsMinus1) + 1) * 16 }

func (s SPS) CodedHeight() int {
	return s.frameHeightInMbs() * 16
}

// frameHeightInMbs is equation 7-18: FrameHeightInMbs = (2 − frame_mbs_only_flag) · PicHeightInMapUnits.
func (s SPS) frameHeightInMbs() int {
	h := int(s.PicHeightInMapUnitsMinus1) + 1
	if !s.FrameMbsOnly {
		h *= 2
	}
	return h
}

// highProfile reports whether profile_idc is one whose SPS carries chroma_format_idc and the fields after it
// (the if-statement of §7.3.2.1.1: the High, High 10, 4:2:2, 4:4:4, CAVLC 4:4:4, scalable and multiview
// profiles).
func highProfile(idc uint8) bool {
	switch idc {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		return true
	}
	return false
}

// Limits that keep arithmetic on hostile input in range. A level 6.2 picture is at most 139 264 macroblocks
// (Table A-1), whose widest legal shape is 1055 macroblocks (√(8·MaxFS), A.3.1 h); 8192 leaves room for
// streams that lie about their level while keeping width·height far from overflow.
const maxPicDimMbs = 8192

// ParseSPS parses a sequence parameter set NAL unit: the NAL unit header byte followed by the EBSP, as carried
// in RTP (RFC 6184) or after an Annex B start code, emulation prevention bytes included. The VUI is parsed
// too, but an error inside it leaves SPS.VUI.Valid false instead of failing: the picture size precedes it.
func ParseSPS(nal []byte) (SPS, error) {
	var s SPS
	if len(nal) < 1 {
		return s, fieldErr("NAL unit header", errTruncated)
	}
	if nal[0]&0x80 != 0 {
		return s, errors.New("h264: forbidden_zero_bit is set")
	}
	if nal[0]&0x1f != nalSPS {
		return s, ErrNotSPS
	}
	r := newRBSPReader(nal[1:])
	if err := s.parse(&r); err != nil {
		return SPS{}, err
	}
	return s, nil
}

func (s *SPS) parse(r *rbspReader) error {
	head, err := r.u(24)
	if err != nil {
		return fieldErr("profile_idc/constraint flags/level_idc", err)
	}
	s.ProfileIDC, s.ConstraintFlags, s.LevelIDC = uint8(head>>16), uint8(head>>8), uint8(head)
	if s.ID, err = r.ueMax(31, "seq_parameter_set_id"); err != nil {
		return err
	}

	// Inferred when absent (§7.4.2.1.1): 4:2:0, 8-bit, flat scaling.
	s.ChromaFormatIDC, s.BitDepthLuma, s.BitDepthChroma = 1, 8, 8
	if highProfile(s.ProfileIDC) {
		if s.ChromaFormatIDC, err = r.ueMax(3, "chroma_format_idc"); err != nil {
			return err
		}
		if s.ChromaFormatIDC == 3 {
			if s.SeparateColourPlane, err = r.flag(); err != nil {
				return fieldErr("separate_colour_plane_flag", err)
			}
		}
		d, err := r.ueMax(6, "bit_depth_luma_minus8")
		if err != nil {
			return err
		}
		s.BitDepthLuma = d + 8
		if d, err = r.ueMax(6, "bit_depth_chroma_minus8"); err != nil {
			return err
		}
		s.BitDepthChroma = d + 8
		if s.QPPrimeYZeroTransformBypass, err = r.flag(); err != nil {
			return fieldErr("qpprime_y_zero_transform_bypass_flag", err)
		}
		if s.ScalingMatrixPresent, err = r.flag(); err != nil {
			return fieldErr("seq_scaling_matrix_present_flag", err)
		}
		if s.ScalingMatrixPresent {
			// Six 4x4 lists, then two 8x8 lists (six for 4:4:4, which has 8x8 chroma transforms).
			n := 8
			if s.ChromaFormatIDC == 3 {
				n = 12
			}
			for i := range n {
				present, err := r.flag()
				if err != nil {
					return fieldErr("seq_scaling_list_present_flag", err)
				}
				if !present {
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				if err := skipScalingList(r, size); err != nil {
					return err
				}
			}
		}
	}

	d, err := r.ueMax(12, "log2_max_frame_num_minus4")
	if err != nil {
		return err
	}
	s.Log2MaxFrameNum = d + 4
	if s.PicOrderCntType, err = r.ueMax(2, "pic_order_cnt_type"); err != nil {
		return err
	}
	switch s.PicOrderCntType {
	case 0:
		if d, err = r.ueMax(12, "log2_max_pic_order_cnt_lsb_minus4"); err != nil {
			return err
		}
		s.Log2MaxPicOrderCntLsb = d + 4
	case 1:
		if s.DeltaPicOrderAlwaysZero, err = r.flag(); err != nil {
			return fieldErr("delta_pic_order_always_zero_flag", err)
		}
		if s.OffsetForNonRefPic, err = r.se(); err != nil {
			return fieldErr("offset_for_non_ref_pic", err)
		}
		if s.OffsetForTopToBottomField, err = r.se(); err != nil {
			return fieldErr("offset_for_top_to_bottom_field", err)
		}
		n, err := r.ueMax(255, "num_ref_frames_in_pic_order_cnt_cycle")
		if err != nil {
			return err
		}
		if n > 0 {
			s.OffsetForRefFrame = make([]int32, n)
		}
		for i := range s.OffsetForRefFrame {
			if s.OffsetForRefFrame[i], err = r.se(); err != nil {
				return fieldErr("offset_for_ref_frame", err)
			}
		}
	}
	// max_num_ref_frames is bounded by MaxDpbFrames, at most 16 (A.3.1 h, A.3.2 f).
	if s.MaxNumRefFrames, err = r.ueMax(16, "max_num_ref_frames"); err != nil {
		return err
	}
	if s.GapsInFrameNumAllowed, err = r.flag(); err != nil {
		return fieldErr("gaps_in_frame_num_value_allowed_flag", err)
	}
	if s.PicWidthInMbsMinus1, err = r.ueMax(maxPicDimMbs-1, "pic_width_in_mbs_minus1"); err != nil {
		return err
	}
	if s.PicHeightInMapUnitsMinus1, err = r.ueMax(maxPicDimMbs-1, "pic_height_in_map_units_minus1"); err != nil {
		return err
	}
	if s.FrameMbsOnly, err = r.flag(); err != nil {
		return fieldErr("frame_mbs_only_flag", err)
	}
	if !s.FrameMbsOnly {
		if s.MbAdaptiveFrameField, err = r.flag(); err != nil {
			return fieldErr("mb_adaptive_frame_field_flag", err)
		}
	}
	if s.Direct8x8Inference, err = r.flag(); err != nil {
		return fieldErr("direct_8x8_inference_flag", err)
	}
	if s.FrameCropping, err = r.flag(); err != nil {
		return fieldErr("frame_cropping_flag", err)
	}
	if s.FrameCropping {
		for _, f := range []struct {
			v    *uint32
			name string
		}{
			{&s.CropLeft, "frame_crop_left_offset"}, {&s.CropRight, "frame_crop_right_offset"},
			{&s.CropTop, "frame_crop_top_offset"}, {&s.CropBottom, "frame_crop_bottom_offset"},
		} {
			// Bounded below by the picture size; this cap only keeps the sums from overflowing.
			if *f.v, err = r.ueMax(maxPicDimMbs*16, f.name); err != nil {
				return err
			}
		}
	}
	if err := s.computeSize(); err != nil {
		return err
	}
	if s.VUIPresent, err = r.flag(); err != nil {
		return fieldErr("vui_parameters_present_flag", err)
	}
	if s.VUIPresent {
		s.VUI.Valid = s.VUI.parse(r) == nil
	}
	// rbsp_trailing_bits are not checked: some encoders pad or truncate them, and nothing depends on them.
	return nil
}

// computeSize applies §7.4.2.1.1: the crop window is counted in CropUnitX by CropUnitY luma samples, which
// depend on the chroma subsampling (Table 6-1) and on whether pictures may be fields.
func (s *SPS) computeSize() error {
	chromaArrayType := s.ChromaFormatIDC
	if s.SeparateColourPlane {
		chromaArrayType = 0
	}
	// SubWidthC and SubHeightC of Table 6-1.
	subW, subH := 1, 1
	switch s.ChromaFormatIDC {
	case 1:
		subW, subH = 2, 2
	case 2:
		subW, subH = 2, 1
	}
	fieldFactor := 1 // 2 − frame_mbs_only_flag
	if !s.FrameMbsOnly {
		fieldFactor = 2
	}
	cropUnitX, cropUnitY := 1, fieldFactor // equations 7-19 and 7-20 (ChromaArrayType 0)
	if chromaArrayType != 0 {
		cropUnitX, cropUnitY = subW, subH*fieldFactor // equations 7-21 and 7-22
	}
	w, h := s.CodedWidth(), s.CodedHeight()
	cropW := cropUnitX * (int(s.CropLeft) + int(s.CropRight))
	cropH := cropUnitY * (int(s.CropTop) + int(s.CropBottom))
	// The crop window must keep at least one sample: frame_crop_left_offset ≤
	// PicWidthInSamplesL ÷ CropUnitX − (frame_crop_right_offset + 1), and likewise vertically.
	if cropW >= w || cropH >= h {
		return fmt.Errorf("h264: frame cropping (%d, %d) leaves nothing of the %dx%d picture", cropW, cropH, w, h)
	}
	s.Width, s.Height = w-cropW, h-cropH
	return nil
}

// skipScalingList reads scaling_list() of §7.3.2.1.1.1 without keeping it: delta_scale values are read until
// the list is full or nextScale becomes 0 (which means "use the default list" on the first entry, or "repeat
// the last value" for the rest).
func skipScalingList(r *rbspReader, size int) error {
	last, next := int32(8), int32(8)
	for range size {
		if next != 0 {
			delta, err := r.se()
			if err != nil {
				return fieldErr("delta_scale", err)
			}
			if delta < -128 || delta > 127 {
				return rangeErr("delta_scale", int64(delta), 127)
			}
			next = (last + delta + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
	return nil
}

// parse reads vui_parameters() of Annex E.1.1.
func (v *VUI) parse(r *rbspReader) error {
	present, err := r.flag() // aspect_ratio_info_present_flag
	if err != nil {
		return err
	}
	if present {
		idc, err := r.u(8)
		if err != nil {
			return err
		}
		v.AspectRatioIDC = uint8(idc)
		if idc == 255 { // Extended_SAR (Table E-1)
			sar, err := r.u(32)
			if err != nil {
				return err
			}
			v.SARWidth, v.SARHeight = uint16(sar>>16), uint16(sar)
		}
	}
	if present, err = r.flag(); err != nil { // overscan_info_present_flag
		return err
	}
	if present {
		if _, err := r.u(1); err != nil { // overscan_appropriate_flag
			return err
		}
	}
	if present, err = r.flag(); err != nil { // video_signal_type_present_flag
		return err
	}
	if present {
		if _, err := r.u(3); err != nil { // video_format
			return err
		}
		if v.VideoFullRange, err = r.flag(); err != nil {
			return err
		}
		colour, err := r.flag() // colour_description_present_flag
		if err != nil {
			return err
		}
		if colour { // colour_primaries, transfer_characteristics, matrix_coefficients
			if _, err := r.u(24); err != nil {
				return err
			}
		}
	}
	if present, err = r.flag(); err != nil { // chroma_loc_info_present_flag
		return err
	}
	if present {
		if _, err := r.ueMax(5, "chroma_sample_loc_type_top_field"); err != nil {
			return err
		}
		if _, err := r.ueMax(5, "chroma_sample_loc_type_bottom_field"); err != nil {
			return err
		}
	}
	if v.TimingInfoPresent, err = r.flag(); err != nil {
		return err
	}
	if v.TimingInfoPresent {
		if v.NumUnitsInTick, err = r.u(32); err != nil {
			return err
		}
		if v.TimeScale, err = r.u(32); err != nil {
			return err
		}
		if v.FixedFrameRate, err = r.flag(); err != nil {
			return err
		}
	}
	nalHRD, err := r.flag()
	if err != nil {
		return err
	}
	if nalHRD {
		if err := skipHRD(r); err != nil {
			return err
		}
	}
	vclHRD, err := r.flag()
	if err != nil {
		return err
	}
	if vclHRD {
		if err := skipHRD(r); err != nil {
			return err
		}
	}
	if nalHRD || vclHRD {
		if _, err := r.u(1); err != nil { // low_delay_hrd_flag
			return err
		}
	}
	if _, err := r.u(1); err != nil { // pic_struct_present_flag
		return err
	}
	if v.BitstreamRestriction, err = r.flag(); err != nil {
		return err
	}
	if v.BitstreamRestriction {
		if _, err := r.u(1); err != nil { // motion_vectors_over_pic_boundaries_flag
			return err
		}
		// max_bytes_per_pic_denom (≤16), max_bits_per_mb_denom (≤16), log2_max_mv_length_horizontal and
		// _vertical (≤15 each, E.2.1)
		for _, max := range []uint32{16, 16, 15, 15} {
			if _, err := r.ueMax(max, "bitstream_restriction"); err != nil {
				return err
			}
		}
		if v.MaxNumReorderFrames, err = r.ueMax(16, "max_num_reorder_frames"); err != nil {
			return err
		}
		if v.MaxDecFrameBuffering, err = r.ueMax(16, "max_dec_frame_buffering"); err != nil {
			return err
		}
	}
	return nil
}

// skipHRD reads hrd_parameters() of Annex E.1.2.
func skipHRD(r *rbspReader) error {
	cpbCnt, err := r.ueMax(31, "cpb_cnt_minus1")
	if err != nil {
		return err
	}
	if _, err := r.u(8); err != nil { // bit_rate_scale, cpb_size_scale
		return err
	}
	for range cpbCnt + 1 {
		if _, err := r.ue(); err != nil { // bit_rate_value_minus1
			return err
		}
		if _, err := r.ue(); err != nil { // cpb_size_value_minus1
			return err
		}
		if _, err := r.u(1); err != nil { // cbr_flag
			return err
		}
	}
	// initial_cpb_removal_delay_length_minus1, cpb_removal_delay_length_minus1,
	// dpb_output_delay_length_minus1, time_offset_length: u(5) each
	_, err = r.u(20)
	return err
}

// SliceKind is slice_type modulo 5 (ITU-T H.264 Table 7-6).
type SliceKind uint8

const (
	SliceP  SliceKind = 0
	SliceB  SliceKind = 1
	SliceI  SliceKind = 2
	SliceSP SliceKind = 3
	SliceSI SliceKind = 4
)

func (k SliceKind) String() string {
	switch k {
	case SliceP:
		return "P"
	case SliceB:
		return "B"
	case SliceI:
		return "I"
	case SliceSP:
		return "SP"
	case SliceSI:
		return "SI"
	}
	return fmt.Sprintf("SliceKind(%d)", uint8(k))
}

// SliceType reads the start of a slice header (§7.3.3: first_mb_in_slice, then slice_type) from a coded slice
// NAL unit, type 1 (non-IDR) or 5 (IDR), header byte included. slice_type 1 and 6 are B slices: 5 to 9
// say that every slice of the picture has the same type (§7.4.3), which does not matter here.
func SliceType(nal []byte) (SliceKind, error) {
	if len(nal) < 1 {
		return 0, fieldErr("NAL unit header", errTruncated)
	}
	if t := nal[0] & 0x1f; t != nalSliceNonIDR && t != nalSliceIDR {
		return 0, ErrNotSlice
	}
	return sliceKind(nal[1:])
}

// sliceKind reads slice_type from the bytes after a slice's NAL unit header. Only the first few bytes are
// needed, so the start of an RTP fragment will do.
func sliceKind(body []byte) (SliceKind, error) {
	r := newRBSPReader(body)
	if _, err := r.ueMax(maxPicDimMbs*maxPicDimMbs, "first_mb_in_slice"); err != nil {
		return 0, err
	}
	t, err := r.ueMax(9, "slice_type")
	if err != nil {
		return 0, err
	}
	return SliceKind(t % 5), nil
}
