package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/openstage/openstage/internal/ivs"
)

// How many sections an offer may have. IVS has no error code for "too many media sections": its
// PUBLISH_ERROR codes name what it could not map, so openstage refuses an extra video section (and an offer
// of too many m-lines, or of a second data channel section: either way the video it should use cannot be
// told) with INVALID_VIDEO_CODEC, and an extra audio section with INVALID_AUDIO_CODEC. The WHIP handler
// answers both 400 with the IVS SDKs' code 2014 and records the PUBLISH_ERROR, as for a codec it refuses.

// MaxOfferSections bounds the m-lines of any offer openstage reads, publish or subscribe, disabled (port 0)
// ones included, whatever the policy. The most any policy admits is a few audio and video sections and a data
// channel; Chrome keeps a port-0 section for each transceiver it ever stopped, so there is room for those.
// A longer offer is refused after a scan of its lines, before it is parsed, so that 500 m-lines cost no
// more than reading the request body.
const MaxOfferSections = 16

// maxApplicationSections: an offer may have one enabled application m-line. It is not media, so it is not
// counted against a policy's audio and video limits, and it is accepted rather than refused: the IVS SDKs
// send none, but WHIP clients may (libdatachannel-based ones such as OBS can), and pion answers it. JSEP
// (RFC 9429 §5.2.1) makes at most one, however many data channels there are, as all of them share one SCTP
// association (RFC 8831 §6); a second is no client's doing.
const maxApplicationSections = 1

// minSubscribeSections: a subscribe offer may always have this many audio and video sections, whatever the
// publisher sends. The IVS SDKs and the aiortc and pion WHIP clients offer a recvonly audio and a recvonly video
// section before they know what the publisher sends, and an audio-only publisher gets such offers too.
const minSubscribeSections = 2

// ErrTooManySections: the offer has more than MaxOfferSections m-lines. ParseOffer returns it (wrapped), and
// CheckOffer and CheckSubscribeOffer report it as a Violation with this error as Err. Unlike
// ErrMalformedOffer, the offer is SDP: this is a breach of the policy, and the WHIP handler records it.
var ErrTooManySections = errors.New("too many m-lines")

func tooManySections(n int) error {
	return fmt.Errorf("%w: the offer has %d; openstage reads at most %d", ErrTooManySections, n, MaxOfferSections)
}

// countMLines counts the lines of an SDP text that start with "m=". Lines may end in CRLF or LF (pion accepts
// either, and blank lines between), so an "m=" after either character starts a line.
func countMLines(offer string) int {
	n := 0
	for i := 0; ; {
		j := strings.Index(offer[i:], "m=")
		if j < 0 {
			return n
		}
		j += i
		if j == 0 || offer[j-1] == '\n' || offer[j-1] == '\r' {
			n++
		}
		i = j + 2
	}
}

// tooManyLines is the violation of an offer with n m-lines, more than MaxOfferSections.
func (p Policy) tooManyLines(n int, err error) *Violation {
	msg := fmt.Sprintf("the offer has %d m-lines; openstage reads at most %d", n, MaxOfferSections)
	if limits := p.sectionLimits(); limits != "" {
		msg += fmt.Sprintf(", and %s accepts %s", policyText(p.Name), limits)
	}
	return &Violation{Code: ivs.ErrInvalidVideoCodec, Message: msg, Err: err}
}

// sectionCount is an offer's enabled sections by kind, with their mids for messages.
type sectionCount struct {
	audio, video, application []string
}

func countSections(secs []MediaSection) sectionCount {
	var c sectionCount
	for _, sec := range secs {
		if sec.Disabled {
			continue
		}
		switch sec.Kind {
		case "audio":
			c.audio = append(c.audio, sec.Mid)
		case "video":
			c.video = append(c.video, sec.Mid)
		case "application":
			c.application = append(c.application, sec.Mid)
		}
		// Other kinds (text, message, image) are not WebRTC media: pion answers them rejected. They count
		// towards MaxOfferSections only.
	}
	return c
}

func (c sectionCount) media() []string { return append(append([]string(nil), c.audio...), c.video...) }

// checkSections applies the policy's limits on a publish offer's sections: MaxVideoSections (judged first,
// as codecs are), MaxAudioSections and the one application section.
func (p Policy) checkSections(secs []MediaSection) *Violation {
	c := countSections(secs)
	limits := p.sectionLimits()
	if p.MaxVideoSections > 0 && len(c.video) > p.MaxVideoSections {
		return violation(ivs.ErrInvalidVideoCodec, "the offer has %d video sections (%s); %s accepts %s (the simulcast layers of one video section are one section)",
			len(c.video), midList(c.video), policyText(p.Name), limits)
	}
	if p.MaxAudioSections > 0 && len(c.audio) > p.MaxAudioSections {
		return violation(ivs.ErrInvalidAudioCodec, "the offer has %d audio sections (%s); %s accepts %s",
			len(c.audio), midList(c.audio), policyText(p.Name), limits)
	}
	return checkApplication(c)
}

func checkApplication(c sectionCount) *Violation {
	if len(c.application) > maxApplicationSections {
		return violation(ivs.ErrInvalidVideoCodec, "the offer has %d application (data channel) sections (%s); openstage accepts at most one",
			len(c.application), midList(c.application))
	}
	return nil
}

// maxMediaSections is how many audio and video sections the policy lets a publisher send, 0 for no limit
// of its own.
func (p Policy) maxMediaSections() int {
	if p.MaxAudioSections <= 0 || p.MaxVideoSections <= 0 {
		return 0
	}
	return p.MaxAudioSections + p.MaxVideoSections
}

// CheckSubscribeOffer vets a subscriber's offer (WHIP subscribe) for a publisher that sends publisherSections
// audio and video sections, before it is negotiated:
//   - at most MaxOfferSections m-lines, disabled ones included, as for CheckOffer (ErrTooManySections);
//   - at most max(publisherSections, 2) enabled audio and video sections together, else INVALID_VIDEO_CODEC:
//     a section beyond the publisher's tracks would only ever be answered inactive, but every one is a
//     transceiver the SFU keeps. Two are always allowed (minSubscribeSections): the IVS SDKs and aiortc offer
//     recvonly audio and video whatever the publisher sends. When publisherSections is 0 (not known), the
//     bound is what the policy lets any publisher send (MaxAudioSections + MaxVideoSections, or
//     MaxOfferSections if either is unlimited), and never less than two;
//   - at most one application section, as for CheckOffer.
//
// Codecs and directions are not looked at: the SFU answers with what the publisher sends. An offer that is
// not SDP is INVALID_VIDEO_CODEC with Err ErrMalformedOffer, as for CheckOffer. No SUBSCRIBE_ERROR code of
// IVS says "too many sections"; INVALID_VIDEO_CODEC is the code openstage gives an offer it cannot map.
func CheckSubscribeOffer(p Policy, offer string, publisherSections int) *Violation {
	secs, n, err := parseOffer(offer)
	if errors.Is(err, ErrTooManySections) {
		return &Violation{Code: ivs.ErrInvalidVideoCodec, Err: err,
			Message: fmt.Sprintf("the subscribe offer has %d m-lines; openstage reads at most %d", n, MaxOfferSections)}
	}
	if err != nil {
		return &Violation{Code: ivs.ErrInvalidVideoCodec, Message: err.Error(), Err: err}
	}
	c := countSections(secs)
	limit, sends := publisherSections, ""
	if limit > 0 {
		sends = fmt.Sprintf("the publisher sends %d", publisherSections)
	} else if limit = p.maxMediaSections(); limit > 0 {
		sends = fmt.Sprintf("%s lets a publisher send at most %d", policyText(p.Name), limit)
	} else {
		limit = MaxOfferSections
	}
	limit = max(limit, minSubscribeSections)
	if media := c.media(); len(media) > limit {
		msg := fmt.Sprintf("the subscribe offer has %d audio and video sections (%s); ", len(media), midList(media))
		if sends != "" {
			msg += sends + ", and "
		}
		return violation(ivs.ErrInvalidVideoCodec, "%sa subscriber may offer at most %d", msg, limit)
	}
	return checkApplication(c)
}

// VetSubscribeOffer is CheckSubscribeOffer in the shape of VetOffer: the event error code (for a
// SUBSCRIBE_ERROR) and message, or "" when the offer passes. publisherSections is the number of enabled audio
// and video sections of the publisher's offer (CountMediaSections), or 0 when not known.
func (p Policy) VetSubscribeOffer(offer string, publisherSections int) (ivs.ErrorCode, string) {
	if v := CheckSubscribeOffer(p, offer, publisherSections); v != nil {
		return v.Code, v.Message
	}
	return "", ""
}

// CountMediaSections returns the enabled audio and video sections of an offer: for a publish offer that
// passed CheckOffer, what VetSubscribeOffer wants to know of the publisher. It is 0 for an offer that cannot
// be read or has too many m-lines.
func CountMediaSections(offer string) int {
	secs, err := ParseOffer(offer)
	if err != nil {
		return 0
	}
	c := countSections(secs)
	return len(c.audio) + len(c.video)
}

// sectionLimits says what the policy accepts, for messages: "at most one audio and one video section",
// "at most two video sections"; "" without limits.
func (p Policy) sectionLimits() string {
	a, v := p.MaxAudioSections, p.MaxVideoSections
	plural := func(n int) string {
		if n > 1 {
			return "sections"
		}
		return "section"
	}
	switch {
	case a > 0 && v > 0:
		return fmt.Sprintf("at most %s audio and %s video %s", number(a), number(v), plural(max(a, v)))
	case v > 0:
		return fmt.Sprintf("at most %s video %s", number(v), plural(v))
	case a > 0:
		return fmt.Sprintf("at most %s audio %s", number(a), plural(a))
	}
	return ""
}

func number(n int) string {
	if n >= 1 && n <= 4 {
		return [...]string{"one", "two", "three", "four"}[n-1]
	}
	return strconv.Itoa(n)
}

// maxMidText bounds a mid in messages: the offer is the client's, and messages go to logs and to it.
const maxMidText = 32

// shortMid is a mid for messages: at most maxMidText bytes of it, with anything unprintable escaped.
func shortMid(mid string) string {
	more := ""
	if len(mid) > maxMidText {
		mid, more = mid[:maxMidText], "..."
	}
	q := strconv.Quote(mid)
	return q[1:len(q)-1] + more
}

// midList names sections by mid for messages: "mid 0, mid 1", "no mid" for a section without one.
func midList(mids []string) string {
	parts := make([]string, len(mids))
	for i, m := range mids {
		if m == "" {
			parts[i] = "no mid"
		} else {
			parts[i] = "mid " + shortMid(m)
		}
	}
	return strings.Join(parts, ", ")
}
