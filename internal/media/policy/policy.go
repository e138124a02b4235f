// Package policy is openstage's media policy (docs/DESIGN.md §4.8): which codecs and how many media sections a publisher
// (or a subscriber) may offer, and the limits its stream must keep (resolution, bitrate, no B-frames,
// duration). IVS enforces these and reports breaches as PUBLISH_ERROR events with the codes
// INVALID_VIDEO_CODEC, INVALID_AUDIO_CODEC, RESOLUTION_EXCEEDED, BITRATE_EXCEEDED, B_FRAME_PRESENT and
// STREAM_DURATION_EXCEEDED; openstage does the same.
//
// The package is pure: it reads SDP offers (CheckOffer, CheckSubscribeOffer), H.264 parameter sets and
// slice headers (ParseSPS, SliceType, Inspector), and counts bytes (BitrateMeter). The WHIP handler and the
// SFU call it and act on the Violation it returns.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/openstage/openstage/internal/ivs"
)

// MIME types as pion/webrtc spells them (webrtc.MimeTypeH264 ...). Comparisons ignore case.
const (
	MimeH264 = "video/H264"
	MimeVP8  = "video/VP8"
	MimeVP9  = "video/VP9"
	MimeAV1  = "video/AV1"
	MimeOpus = "audio/opus"
)

// Policy is a media policy. Zero limits mean no limit.
type Policy struct {
	Name string
	// AllowedVideo and AllowedAudio are the codecs a publisher may send, as MIME types, most preferred first.
	AllowedVideo []string
	AllowedAudio []string
	// RequireVideo: the offer must carry a video m-line with an allowed codec, even when the publisher sends
	// only audio (IVS: "your SDP offer must include an H.264 video track, even if you are only publishing
	// audio"). RequireAudio likewise for audio.
	RequireVideo bool
	RequireAudio bool
	// H264BaselineOnly admits H.264 only in the Baseline and Constrained Baseline profiles, in the offer's
	// profile-level-id and in the stream's SPS.
	H264BaselineOnly bool
	// AllowBFrames admits H.264 B slices (B_FRAME_PRESENT otherwise).
	AllowBFrames bool
	// MaxWidth and MaxHeight bound the picture in either orientation: the longer side may be up to the larger
	// of the two, the shorter side up to the smaller, so 1280x720 also admits 720x1280 (phones held upright).
	MaxWidth, MaxHeight int
	// MaxBitrate bounds the publisher's media bitrate in bits per second, as RTP payload averaged over
	// BitrateWindow.
	MaxBitrate int64
	// BitrateWindow is how long the bitrate must stay over MaxBitrate before it is a violation; zero means
	// DefaultBitrateWindow.
	BitrateWindow time.Duration
	// MaxDuration bounds how long one publish may last.
	MaxDuration time.Duration
	// MaxAudioSections and MaxVideoSections bound the enabled audio and video m-sections of a publish offer
	// (port 0 sections are disabled and not counted; the simulcast layers of one section, a=simulcast and
	// a=rid, are that one section). Zero means no limit of their own; whatever they say, no offer may have
	// more than MaxOfferSections m-lines, nor more than one application (data channel) section: see CheckOffer.
	MaxAudioSections, MaxVideoSections int
}

// DefaultBitrateWindow is the window BITRATE_EXCEEDED is judged over when a policy names none: long enough
// that a keyframe burst does not trip it.
const DefaultBitrateWindow = 5 * time.Second

// IVS is what Amazon IVS real-time ingest accepts (rt-stream-ingest; docs/DESIGN.md §4.8):
// H.264 Baseline or Constrained Baseline video, required even of audio-only publishers, and Opus audio;
// at most 720p (either orientation), 8.5 Mbps, no B-frames, 24 hours; one audio and one video section, as
// IVS maps a publish offer onto one audio and one video track (the IVS web SDK offers audio in mid 0 and video
// in mid 1, and keeps the video section, empty and sendrecv, when it publishes audio only).
var IVS = Policy{
	Name:             "ivs",
	AllowedVideo:     []string{MimeH264},
	AllowedAudio:     []string{MimeOpus},
	RequireVideo:     true,
	RequireAudio:     true,
	H264BaselineOnly: true,
	MaxWidth:         1280,
	MaxHeight:        720,
	MaxBitrate:       8_500_000,
	MaxDuration:      24 * time.Hour,
	MaxAudioSections: 1,
	MaxVideoSections: 1,
}

// Open also accepts VP8, VP9, AV1, any H.264 profile, and publishers without video (or without audio),
// with IVS's limits unless configured otherwise.
//
// It admits two audio and two video sections in one publish: room for what one browser app may send on one
// connection (a camera and a screen share, a microphone and a second audio source), where IVS wants one of
// each. It stays small because every section is a track the SFU forwards to every subscriber (a fanout, and
// per subscriber an RTP sender and an RTCP reader), all of one publisher's tracks share its MaxBitrate, and
// the IVS clients subscribe with one audio and one video section anyway (CheckSubscribeOffer).
var Open = Policy{
	Name:             "open",
	AllowedVideo:     []string{MimeH264, MimeVP8, MimeVP9, MimeAV1},
	AllowedAudio:     []string{MimeOpus},
	MaxWidth:         1280,
	MaxHeight:        720,
	MaxBitrate:       8_500_000,
	MaxDuration:      24 * time.Hour,
	MaxAudioSections: 2,
	MaxVideoSections: 2,
}

// Names lists the built-in policies.
func Names() []string { return []string{IVS.Name, Open.Name} }

// ByName returns a copy of a built-in policy ("ivs" or "open", any case). The copy's slices are its own, so
// a caller may adjust it without changing the package's.
func ByName(name string) (Policy, error) {
	var p Policy
	switch strings.ToLower(strings.TrimSpace(name)) {
	case IVS.Name:
		p = IVS
	case Open.Name:
		p = Open
	default:
		return Policy{}, fmt.Errorf("unknown media policy %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	p.AllowedVideo = slices.Clone(p.AllowedVideo)
	p.AllowedAudio = slices.Clone(p.AllowedAudio)
	return p, nil
}

// Validate checks a configured policy.
func (p Policy) Validate() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("policy has no name"))
	}
	if p.MaxWidth < 0 || p.MaxHeight < 0 || p.MaxBitrate < 0 || p.MaxDuration < 0 || p.BitrateWindow < 0 ||
		p.MaxAudioSections < 0 || p.MaxVideoSections < 0 {
		errs = append(errs, errors.New("limits must not be negative"))
	}
	if (p.MaxWidth == 0) != (p.MaxHeight == 0) {
		errs = append(errs, errors.New("set both MaxWidth and MaxHeight, or neither"))
	}
	if p.RequireVideo && len(p.AllowedVideo) == 0 {
		errs = append(errs, errors.New("video is required but no video codec is allowed"))
	}
	if p.RequireAudio && len(p.AllowedAudio) == 0 {
		errs = append(errs, errors.New("audio is required but no audio codec is allowed"))
	}
	for _, m := range p.AllowedVideo {
		if !strings.HasPrefix(strings.ToLower(m), "video/") {
			errs = append(errs, fmt.Errorf("allowed video codec %q is not a video/ MIME type", m))
		}
	}
	for _, m := range p.AllowedAudio {
		if !strings.HasPrefix(strings.ToLower(m), "audio/") {
			errs = append(errs, fmt.Errorf("allowed audio codec %q is not an audio/ MIME type", m))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("media policy %q: %w", p.Name, err)
	}
	return nil
}

func (p Policy) bitrateWindow() time.Duration {
	if p.BitrateWindow > 0 {
		return p.BitrateWindow
	}
	return DefaultBitrateWindow
}

// Violation is a breach of the policy: the error code of the PUBLISH_ERROR event, and a message for people.
type Violation struct {
	Code    ivs.ErrorCode
	Message string
	// Err is the underlying error when there is one, e.g. an offer that is not SDP at all (ErrMalformedOffer).
	Err error
}

func (v *Violation) Error() string { return string(v.Code) + ": " + v.Message }
func (v *Violation) Unwrap() error { return v.Err }

func violation(code ivs.ErrorCode, format string, args ...any) *Violation {
	return &Violation{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CheckResolution returns RESOLUTION_EXCEEDED when a width x height picture is over the policy's limit in
// both orientations (see Policy.MaxWidth).
func CheckResolution(p Policy, width, height int) *Violation {
	if p.MaxWidth <= 0 || p.MaxHeight <= 0 {
		return nil
	}
	long, short := max(width, height), min(width, height)
	if long > max(p.MaxWidth, p.MaxHeight) || short > min(p.MaxWidth, p.MaxHeight) {
		return violation(ivs.ErrResolutionExceeded, "video is %dx%d; policy %s allows at most %dx%d (either orientation)",
			width, height, p.Name, p.MaxWidth, p.MaxHeight)
	}
	return nil
}

// CheckDuration returns STREAM_DURATION_EXCEEDED when a publish that started at started has lasted longer
// than the policy allows by now.
func CheckDuration(p Policy, started, now time.Time) *Violation {
	if p.MaxDuration <= 0 || now.Sub(started) <= p.MaxDuration {
		return nil
	}
	return violation(ivs.ErrStreamDurationExceeded, "publishing has lasted %s; policy %s allows at most %s",
		now.Sub(started).Truncate(time.Second), p.Name, p.MaxDuration)
}

// DurationDeadline is when a publish that started at started breaks MaxDuration; ok is false without a
// limit. The SFU can set a timer rather than check every packet.
func DurationDeadline(p Policy, started time.Time) (deadline time.Time, ok bool) {
	if p.MaxDuration <= 0 {
		return time.Time{}, false
	}
	return started.Add(p.MaxDuration), true
}

// policyText names a policy in messages.
func policyText(name string) string {
	if name == "" {
		return "the media policy"
	}
	return "policy " + name
}

func allowed(list []string, mime string) bool {
	return slices.ContainsFunc(list, func(m string) bool { return strings.EqualFold(m, mime) })
}

func preferenceRank(list []string, mime string) int {
	for i, m := range list {
		if strings.EqualFold(m, mime) {
			return i
		}
	}
	return len(list)
}
