package policy

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Profile is an H.264 profile as a decoder must support it: profile_idc together with the constraint flags
// (RFC 6184 §8.1, Table 5; ITU-T H.264 Annex A.2). The same stream may be labelled in several ways, e.g.
// Constrained Baseline as 42e0xx, 42c0xx, 4d40xx or 58c0xx.
type Profile uint8

const (
	ProfileUnknown Profile = iota
	ProfileConstrainedBaseline
	ProfileBaseline
	ProfileMain
	ProfileExtended
	ProfileHigh
	ProfileConstrainedHigh // High with constraint_set4 and constraint_set5 (A.2.4.2), as WebRTC uses it
	ProfileHigh10
	ProfileHigh422
	ProfileHigh444
	ProfileHigh10Intra
	ProfileHigh422Intra
	ProfileHigh444Intra
	ProfileCAVLC444Intra
)

var profileNames = [...]string{
	ProfileUnknown:             "unknown",
	ProfileConstrainedBaseline: "Constrained Baseline",
	ProfileBaseline:            "Baseline",
	ProfileMain:                "Main",
	ProfileExtended:            "Extended",
	ProfileHigh:                "High",
	ProfileConstrainedHigh:     "Constrained High",
	ProfileHigh10:              "High 10",
	ProfileHigh422:             "High 4:2:2",
	ProfileHigh444:             "High 4:4:4 Predictive",
	ProfileHigh10Intra:         "High 10 Intra",
	ProfileHigh422Intra:        "High 4:2:2 Intra",
	ProfileHigh444Intra:        "High 4:4:4 Intra",
	ProfileCAVLC444Intra:       "CAVLC 4:4:4 Intra",
}

func (p Profile) String() string {
	if int(p) < len(profileNames) {
		return profileNames[p]
	}
	return fmt.Sprintf("Profile(%d)", uint8(p))
}

// Baseline reports whether p is Baseline or Constrained Baseline: what IVS accepts.
func (p Profile) Baseline() bool { return p == ProfileConstrainedBaseline || p == ProfileBaseline }

// profilePattern is one row of RFC 6184 Table 5: profile_idc and a profile-iop bit pattern where mask marks
// the bits that must equal value ('x' bits are free).
type profilePattern struct {
	idc         uint8
	mask, value uint8
	profile     Profile
}

// bitPattern turns "x1xx0000" into a mask and value, most significant bit first.
func bitPattern(s string) (mask, value uint8) {
	for i := range 8 {
		bit := uint8(0x80) >> i
		switch s[i] {
		case '0':
			mask |= bit
		case '1':
			mask |= bit
			value |= bit
		}
	}
	return mask, value
}

func row(idc uint8, pattern string, p Profile) profilePattern {
	m, v := bitPattern(pattern)
	return profilePattern{idc, m, v, p}
}

// profilePatterns is RFC 6184 Table 5 in its order (the first match wins: 42 with constraint_set1 is
// Constrained Baseline before it could be Baseline), plus Constrained High (H.264 A.2.4.2), which RFC 6184
// predates and WebRTC offers as 640c1f.
var profilePatterns = []profilePattern{
	row(0x42, "x1xx0000", ProfileConstrainedBaseline),
	row(0x4D, "1xxx0000", ProfileConstrainedBaseline),
	row(0x58, "11xx0000", ProfileConstrainedBaseline),
	row(0x42, "x0xx0000", ProfileBaseline),
	row(0x58, "10xx0000", ProfileBaseline),
	row(0x4D, "0x0x0000", ProfileMain),
	row(0x58, "00xx0000", ProfileExtended),
	row(0x64, "00000000", ProfileHigh),
	row(0x64, "00001100", ProfileConstrainedHigh),
	row(0x6E, "00000000", ProfileHigh10),
	row(0x7A, "00000000", ProfileHigh422),
	row(0xF4, "00000000", ProfileHigh444),
	row(0x6E, "00010000", ProfileHigh10Intra),
	row(0x7A, "00010000", ProfileHigh422Intra),
	row(0xF4, "00010000", ProfileHigh444Intra),
	row(0x2C, "00010000", ProfileCAVLC444Intra),
}

// ClassifyProfile maps profile_idc and the constraint flags byte (profile-iop) to a profile per RFC 6184
// Table 5. Combinations the table does not list are ProfileUnknown.
func ClassifyProfile(profileIDC, constraintFlags uint8) Profile {
	for _, p := range profilePatterns {
		if p.idc == profileIDC && constraintFlags&p.mask == p.value {
			return p.profile
		}
	}
	return ProfileUnknown
}

// ProfileLevelID is the decoded fmtp parameter profile-level-id of RFC 6184 §8.1: profile_idc, profile-iop
// and level_idc, three bytes in hexadecimal.
type ProfileLevelID struct {
	ProfileIDC, ProfileIOP, LevelIDC uint8
}

// DefaultProfileLevelID is what RFC 6184 §8.1 says to infer when profile-level-id is absent: Baseline
// without additional constraints, level 1 (42000a).
var DefaultProfileLevelID = ProfileLevelID{0x42, 0x00, 0x0A}

// ParseProfileLevelID decodes a profile-level-id value such as "42e01f" (case-insensitive).
func ParseProfileLevelID(s string) (ProfileLevelID, error) {
	if len(s) != 6 {
		return ProfileLevelID{}, fmt.Errorf("profile-level-id %q is not six hex digits", s)
	}
	var b [3]byte
	if _, err := hex.Decode(b[:], []byte(strings.ToLower(s))); err != nil {
		return ProfileLevelID{}, fmt.Errorf("profile-level-id %q is not six hex digits", s)
	}
	return ProfileLevelID{b[0], b[1], b[2]}, nil
}

// Profile classifies the profile-level-id.
func (p ProfileLevelID) Profile() Profile { return ClassifyProfile(p.ProfileIDC, p.ProfileIOP) }

func (p ProfileLevelID) String() string {
	return fmt.Sprintf("%02x%02x%02x", p.ProfileIDC, p.ProfileIOP, p.LevelIDC)
}
