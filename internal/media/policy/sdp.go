package policy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/openstage/openstage/internal/ivs"
)

// ErrMalformedOffer: the offer is not SDP this package can read. CheckOffer reports it as a Violation with
// code INVALID_VIDEO_CODEC (no acceptable video can be found in it) and this error as Err, so that callers can
// answer 400 rather than record a media policy breach.
var ErrMalformedOffer = errors.New("malformed SDP offer")

// MediaSection is one m-line of an offer with its codecs (RFC 8866 §5.14).
type MediaSection struct {
	Kind string // the <media> field: "audio", "video", "application"...
	Mid  string // a=mid (RFC 9143), "" when absent
	// Disabled: port 0 without a=bundle-only, a section the offerer does not want (RFC 3264 §8.2; RFC 8843
	// §6 gives bundle-only sections port 0 while they are in use).
	Disabled bool
	Codecs   []Codec // in the m-line's order, which is the offerer's preference
}

// Codec is one RTP payload type of an m-line: its rtpmap (RFC 8866 §6.6) and fmtp (§6.15).
type Codec struct {
	PayloadType uint8
	MimeType    string // Kind + "/" + encoding name as offered, e.g. "video/H264", "audio/opus"
	ClockRate   uint32
	Channels    uint16 // audio channels from rtpmap's encoding parameters; 0 when not given
	// Fmtp holds the format parameters by lower-case name (media type parameter names are case-insensitive,
	// RFC 6838 §4.3). Empty parameters, such as the one the IVS web SDK's Opus line starts with
	// ("a=fmtp:111 ;maxaveragebitrate=64000;..."), are skipped.
	Fmtp map[string]string
}

// Name is the encoding name: the MIME type's subtype.
func (c Codec) Name() string { return c.MimeType[strings.IndexByte(c.MimeType, '/')+1:] }

// H264 decodes an H.264 codec's profile-level-id and packetization-mode (RFC 6184 §8.1), applying their
// defaults when absent: 42000a and mode 0.
func (c Codec) H264() (plid ProfileLevelID, packetizationMode int, err error) {
	plid = DefaultProfileLevelID
	if v, ok := c.Fmtp["profile-level-id"]; ok {
		if plid, err = ParseProfileLevelID(v); err != nil {
			return plid, 0, err
		}
	}
	if v, ok := c.Fmtp["packetization-mode"]; ok {
		if packetizationMode, err = strconv.Atoi(v); err != nil || packetizationMode < 0 || packetizationMode > 2 {
			return plid, 0, fmt.Errorf("packetization-mode %q is not 0, 1 or 2", v)
		}
	}
	return plid, packetizationMode, nil
}

// describe names the codec for messages: "VP8", "H.264 High (640c1f) packetization-mode 1".
func (c Codec) describe() string {
	if !strings.EqualFold(c.MimeType, MimeH264) {
		return c.Name()
	}
	plid, mode, err := c.H264()
	if err != nil {
		return "H.264 (" + err.Error() + ")"
	}
	return fmt.Sprintf("H.264 %s (%s) packetization-mode %d", plid.Profile(), plid, mode)
}

// auxiliary reports whether the codec is a repair or redundancy format rather than media: RTX (RFC 4588),
// RED (RFC 2198), ULPFEC (RFC 5109), FlexFEC (RFC 8627), comfort noise (RFC 3389) and DTMF (RFC 4733). They
// ride along with a media codec and say nothing about which one is sent.
func (c Codec) auxiliary() bool {
	switch strings.ToLower(c.Name()) {
	case "rtx", "red", "ulpfec", "flexfec", "flexfec-03", "cn", "telephone-event":
		return true
	}
	return false
}

// staticPayloadTypes are the RFC 3551 §6 payload types an m-line may list without an rtpmap.
var staticPayloadTypes = map[uint8]Codec{
	0:  {MimeType: "audio/PCMU", ClockRate: 8000, Channels: 1},
	3:  {MimeType: "audio/GSM", ClockRate: 8000, Channels: 1},
	8:  {MimeType: "audio/PCMA", ClockRate: 8000, Channels: 1},
	9:  {MimeType: "audio/G722", ClockRate: 8000, Channels: 1},
	13: {MimeType: "audio/CN", ClockRate: 8000, Channels: 1},
	18: {MimeType: "audio/G729", ClockRate: 8000, Channels: 1},
	26: {MimeType: "video/JPEG", ClockRate: 90000},
	31: {MimeType: "video/H261", ClockRate: 90000},
	34: {MimeType: "video/H263", ClockRate: 90000},
}

// ParseOffer reads an SDP offer's m-lines and their codecs. An offer with more than MaxOfferSections m-lines
// is refused with ErrTooManySections, before it is parsed. The work is linear in the offer's length: a
// payload type the m-line lists more than once is read once.
func ParseOffer(offer string) ([]MediaSection, error) {
	secs, _, err := parseOffer(offer)
	return secs, err
}

// parseOffer is ParseOffer that also returns the number of m-lines when there are too many.
func parseOffer(offer string) ([]MediaSection, int, error) {
	// A line scan first: an offer of 500 m-lines (the body may be 256 KiB) is refused without building it.
	if n := countMLines(offer); n > MaxOfferSections {
		return nil, n, tooManySections(n)
	}
	if strings.TrimSpace(offer) == "" {
		return nil, 0, fmt.Errorf("%w: empty", ErrMalformedOffer)
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrMalformedOffer, err)
	}
	// The scan counts every line that starts with "m=", which is every m-line pion reads; this is in case
	// the two ever disagree.
	if n := len(sd.MediaDescriptions); n > MaxOfferSections {
		return nil, n, tooManySections(n)
	}
	out := make([]MediaSection, 0, len(sd.MediaDescriptions))
	for _, md := range sd.MediaDescriptions {
		sec := MediaSection{Kind: strings.ToLower(md.MediaName.Media)}
		bundleOnly := false
		rtpmap := map[uint8]string{}
		fmtp := map[uint8]string{}
		for _, a := range md.Attributes {
			switch strings.ToLower(a.Key) {
			case "mid":
				sec.Mid = a.Value
			case "bundle-only":
				bundleOnly = true
			case "rtpmap", "fmtp":
				pt, rest, ok := splitPayloadType(a.Value)
				if !ok {
					continue // a malformed line about one payload type does not spoil the others
				}
				if strings.EqualFold(a.Key, "rtpmap") {
					rtpmap[pt] = rest
				} else {
					fmtp[pt] = rest
				}
			}
		}
		sec.Disabled = md.MediaName.Port.Value == 0 && !bundleOnly
		if sec.Kind == "audio" || sec.Kind == "video" {
			// A payload type listed twice is one format (RFC 8866 §5.14 lists formats, not uses): reading it
			// again would make the work the m-line's length times its fmtp's, which one 250 KB offer of
			// "96 96 96..." and a long a=fmtp:96 turned into minutes.
			var seen [128]bool
			for _, f := range md.MediaName.Formats {
				n, err := strconv.ParseUint(f, 10, 7) // RTP payload types are 7 bits (RFC 3550 §5.1)
				if err != nil || seen[n] {
					continue
				}
				seen[n] = true
				pt := uint8(n)
				c, ok := parseRTPMap(sec.Kind, rtpmap[pt])
				if !ok {
					if c, ok = staticPayloadTypes[pt]; !ok || !strings.HasPrefix(c.MimeType, sec.Kind+"/") {
						continue // a dynamic payload type without rtpmap has no meaning
					}
				}
				c.PayloadType = pt
				c.Fmtp = parseFmtp(fmtp[pt])
				sec.Codecs = append(sec.Codecs, c)
			}
		}
		out = append(out, sec)
	}
	return out, 0, nil
}

// splitPayloadType splits "96 H264/90000" into 96 and "H264/90000".
func splitPayloadType(v string) (uint8, string, bool) {
	v = strings.TrimSpace(v)
	i := strings.IndexAny(v, " \t")
	if i < 0 {
		return 0, "", false
	}
	n, err := strconv.ParseUint(v[:i], 10, 7)
	if err != nil {
		return 0, "", false
	}
	return uint8(n), strings.TrimSpace(v[i+1:]), true
}

// parseRTPMap reads "<encoding name>/<clock rate>[/<encoding parameters>]" (RFC 8866 §6.6).
func parseRTPMap(kind, v string) (Codec, bool) {
	parts := strings.Split(v, "/")
	if len(parts) < 2 || parts[0] == "" {
		return Codec{}, false
	}
	clock, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return Codec{}, false
	}
	c := Codec{MimeType: kind + "/" + parts[0], ClockRate: uint32(clock)}
	if len(parts) > 2 && kind == "audio" {
		if ch, err := strconv.ParseUint(parts[2], 10, 16); err == nil {
			c.Channels = uint16(ch)
		}
	}
	return c, true
}

// parseFmtp reads "key=value;key=value". Parameters are separated by ';' (RFC 8866 §6.15 leaves the syntax to
// each format; every format used here follows RFC 4855 §3); whitespace around them and empty ones are
// ignored, so the IVS web SDK's leading ';' is harmless.
func parseFmtp(v string) map[string]string {
	if v == "" {
		return nil
	}
	m := map[string]string{}
	for p := range strings.SplitSeq(v, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, val, _ := strings.Cut(p, "=")
		m[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(val)
	}
	return m
}

// acceptable reports whether the policy admits the codec, and if not why.
func (p Policy) acceptable(kind string, c Codec) (bool, string) {
	list := p.AllowedAudio
	if kind == "video" {
		list = p.AllowedVideo
	}
	if !allowed(list, c.MimeType) {
		return false, ""
	}
	switch {
	case strings.EqualFold(c.MimeType, MimeH264):
		plid, mode, err := c.H264()
		if err != nil {
			return false, err.Error()
		}
		// Mode 2 (interleaved, RFC 6184 §6.4) needs de-interleaving buffers and DON handling that an SFU
		// forwarding to browsers does not do; WebRTC endpoints use modes 0 and 1 only.
		if mode == 2 {
			return false, "packetization-mode 2 (interleaved) is not supported"
		}
		prof := plid.Profile()
		if prof == ProfileUnknown {
			return false, fmt.Sprintf("profile-level-id %s is no H.264 profile", plid)
		}
		if p.H264BaselineOnly && !prof.Baseline() {
			return false, fmt.Sprintf("H.264 %s is not Baseline", prof)
		}
	case strings.EqualFold(c.MimeType, MimeOpus):
		// RFC 7587 §7: the media subtype is always opus/48000/2, whatever the actual rate and channels.
		if c.ClockRate != 48000 {
			return false, fmt.Sprintf("opus with clock rate %d (RFC 7587 requires 48000)", c.ClockRate)
		}
	}
	return true, ""
}

// acceptedDescription says what the policy accepts for a kind, for messages.
func (p Policy) acceptedDescription(kind string) string {
	list := p.AllowedAudio
	if kind == "video" {
		list = p.AllowedVideo
	}
	if len(list) == 0 {
		return "no " + kind
	}
	names := make([]string, 0, len(list))
	for _, m := range list {
		n := m[strings.IndexByte(m, '/')+1:]
		switch {
		case strings.EqualFold(m, MimeH264) && p.H264BaselineOnly:
			n = "H.264 (Baseline or Constrained Baseline, packetization-mode 0 or 1)"
		case strings.EqualFold(m, MimeH264):
			n = "H.264 (packetization-mode 0 or 1)"
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// CheckOffer vets a publish offer against the policy (docs/DESIGN.md §4.8), before any media flows:
//   - the offer has at most MaxOfferSections m-lines, disabled ones included, else INVALID_VIDEO_CODEC with
//     Err ErrTooManySections (found by a line scan, before the offer is parsed);
//   - at most MaxVideoSections enabled video m-lines, else INVALID_VIDEO_CODEC, and MaxAudioSections audio,
//     else INVALID_AUDIO_CODEC; at most one application (data channel) m-line, else INVALID_VIDEO_CODEC (see
//     checkSections);
//   - every enabled video m-line must offer at least one allowed video codec, else INVALID_VIDEO_CODEC; with
//     RequireVideo there must be one (IVS rejects offers without H.264 video even from audio-only publishers);
//   - likewise audio, with INVALID_AUDIO_CODEC;
//   - an offer with neither is INVALID_VIDEO_CODEC.
//
// Video is judged first, as IVS does. An m-line's direction is not looked at: the IVS web SDK offers its
// video as sendrecv without a track when publishing audio only, and that must pass. It returns nil when the
// offer passes.
func CheckOffer(p Policy, offer string) *Violation {
	secs, n, err := parseOffer(offer)
	if errors.Is(err, ErrTooManySections) {
		return p.tooManyLines(n, err)
	}
	if err != nil {
		return &Violation{Code: ivs.ErrInvalidVideoCodec, Message: err.Error(), Err: err}
	}
	if v := p.checkSections(secs); v != nil {
		return v
	}
	var audio, video *Violation
	sawAudio, sawVideo := false, false
	for _, sec := range secs {
		if sec.Disabled || (sec.Kind != "audio" && sec.Kind != "video") {
			continue
		}
		if sec.Kind == "audio" {
			sawAudio = true
		} else {
			sawVideo = true
		}
		ok, offered, reasons := false, []string{}, []string{}
		for _, c := range sec.Codecs {
			if c.auxiliary() {
				continue
			}
			good, why := p.acceptable(sec.Kind, c)
			if good {
				ok = true
				break
			}
			if d := c.describe(); !slices.Contains(offered, d) {
				offered = append(offered, d)
			}
			if why != "" && !slices.Contains(reasons, why) {
				reasons = append(reasons, why)
			}
		}
		if ok {
			continue
		}
		code := ivs.ErrInvalidAudioCodec
		if sec.Kind == "video" {
			code = ivs.ErrInvalidVideoCodec
		}
		what := "nothing"
		if len(offered) > 0 {
			what = strings.Join(offered, ", ")
		}
		msg := fmt.Sprintf("%s m-line%s offers %s; policy %s accepts %s", sec.Kind, midText(sec.Mid), what, p.Name,
			p.acceptedDescription(sec.Kind))
		if len(reasons) > 0 {
			msg += " (" + strings.Join(reasons, "; ") + ")"
		}
		v := &Violation{Code: code, Message: msg}
		if sec.Kind == "video" && video == nil {
			video = v
		} else if sec.Kind == "audio" && audio == nil {
			audio = v
		}
	}
	switch {
	case video != nil:
		return video
	case p.RequireVideo && !sawVideo:
		return violation(ivs.ErrInvalidVideoCodec, "offer has no video; policy %s requires %s video even when only audio is published",
			p.Name, p.acceptedDescription("video"))
	case audio != nil:
		return audio
	case p.RequireAudio && !sawAudio:
		return violation(ivs.ErrInvalidAudioCodec, "offer has no audio; policy %s requires %s audio", p.Name,
			p.acceptedDescription("audio"))
	case !sawAudio && !sawVideo:
		return violation(ivs.ErrInvalidVideoCodec, "offer carries neither audio nor video")
	}
	return nil
}

func midText(mid string) string {
	if mid == "" {
		return ""
	}
	return " (mid " + shortMid(mid) + ")"
}

// VetOffer is CheckOffer in the shape of the WHIP handler's OfferCheck: the event error code and message, or
// "" when the offer passes.
func (p Policy) VetOffer(offer string) (ivs.ErrorCode, string) {
	if v := CheckOffer(p, offer); v != nil {
		return v.Code, v.Message
	}
	return "", ""
}

// PreferredVideo returns the video codecs of the offer's first enabled video m-line that the policy accepts,
// best first, for the answer to pick from: by the policy's AllowedVideo order, then for H.264 Constrained
// Baseline before Baseline before other profiles and packetization-mode 1 before 0 (what every WebRTC
// subscriber decodes), then in the offer's order. RTX and other auxiliary formats are left out. An offer whose
// video passes CheckOffer yields at least one codec.
func PreferredVideo(p Policy, offer string) ([]Codec, error) {
	secs, err := ParseOffer(offer)
	if err != nil {
		return nil, err
	}
	for _, sec := range secs {
		if sec.Kind != "video" || sec.Disabled {
			continue
		}
		var out []Codec
		for _, c := range sec.Codecs {
			if ok, _ := p.acceptable("video", c); ok && !c.auxiliary() {
				out = append(out, c)
			}
		}
		slices.SortStableFunc(out, func(a, b Codec) int {
			if d := preferenceRank(p.AllowedVideo, a.MimeType) - preferenceRank(p.AllowedVideo, b.MimeType); d != 0 {
				return d
			}
			return h264Rank(a) - h264Rank(b)
		})
		return out, nil
	}
	return nil, nil
}

// h264Rank orders H.264 payload types: Constrained Baseline mode 1 first.
func h264Rank(c Codec) int {
	if !strings.EqualFold(c.MimeType, MimeH264) {
		return 0
	}
	plid, mode, err := c.H264()
	if err != nil {
		return 100
	}
	r := 4
	switch plid.Profile() {
	case ProfileConstrainedBaseline:
		r = 0
	case ProfileBaseline:
		r = 2
	}
	if mode != 1 {
		r++
	}
	return r
}
