package api

import (
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// The answers of the read operations the API is measured on (GetParticipant, ListParticipants,
// ListParticipantEvents) write their own JSON into a reused buffer: encoding/json's reflection and a string
// per timestamp were a third of a list page's handler time beside the store read (docs/BENCHMARKS.md,
// issue 16). They write exactly what encoding/json writes for the wire structs of wire.go, which stay the
// definition of the shapes: encode_test.go compares the two on every member, and fuzzes the strings.

// jsonAppender is an answer that appends its own JSON encoding to a buffer.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// bodyBuffers are the buffers answers are encoded into; a buffer that grew past maxPooledBody (a list of
// large documents) is left to the collector rather than kept.
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const maxPooledBody = 256 << 10

// appendString appends s as a JSON string, escaped as encoding/json escapes it (json.Marshal's defaults):
// '"' and '\\' with a backslash; \b \f \n \r \t by name and other control characters as \u00XX; '<', '>'
// and '&' as \u003c \u003e \u0026 (HTML-safe); U+2028 and U+2029 as \u2028 and \u2029; each byte of
// invalid UTF-8 as \ufffd.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendStamp appends t as stamp formats it, quoted, or null for the zero time.
func appendStamp(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	t = t.UTC()
	year, month, day := t.Date()
	if year < 1000 || year > 9999 { // beyond four digits: as time.Format does it
		b = append(b, '"')
		b = t.AppendFormat(b, timeLayout)
		return append(b, '"')
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / int(time.Millisecond)
	b = append(b, '"')
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
	b = append(b, byte('0'+int(month)/10), byte('0'+int(month)%10), '-', byte('0'+day/10), byte('0'+day%10), 'T')
	b = append(b, byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10), ':')
	b = append(b, byte('0'+sec/10), byte('0'+sec%10), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z', '"')
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

// appendNextToken appends the optional nextToken member (omitempty) and closes the object.
func appendNextToken(b []byte, next *string) []byte {
	if next != nil {
		b = append(b, `,"nextToken":`...)
		b = appendString(b, *next)
	}
	return append(b, '}')
}

// appendSummary appends the members of wireParticipantSummary, without the braces.
func appendSummary(b []byte, id ivs.ParticipantID, userID string, state ivs.ParticipantState, joined time.Time, published bool,
	recording ivs.RecordingState) []byte {
	b = append(b, `"participantId":`...)
	b = appendString(b, string(id))
	b = append(b, `,"userId":`...)
	b = appendString(b, userID)
	b = append(b, `,"state":`...)
	b = appendString(b, string(state))
	if !joined.IsZero() { // omitempty
		b = append(b, `,"firstJoinTime":`...)
		b = appendStamp(b, joined)
	}
	b = append(b, `,"published":`...)
	b = appendBool(b, published)
	if recording == "" {
		recording = ivs.RecordingDisabled // recordingStateOut
	}
	b = append(b, `,"recordingState":`...)
	b = appendString(b, string(recording))
	return append(b, `,"replicationType":"NONE","redundantIngest":false`...)
}

// participantsOut is ListParticipants' answer: {"participants": [ParticipantSummary...], "nextToken"}.
type participantsOut struct {
	rows []store.ParticipantSummary
	next *string
}

func (o participantsOut) appendJSON(b []byte) []byte {
	b = append(b, `{"participants":[`...)
	for i := range o.rows {
		p := &o.rows[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendSummary(b, p.ID, p.UserID, p.State, p.FirstJoinTime, p.Published, p.RecordingState)
		b = append(b, '}')
	}
	b = append(b, ']')
	return appendNextToken(b, o.next)
}

// eventsOut is ListParticipantEvents' answer: {"events": [Event...], "nextToken"}.
type eventsOut struct {
	rows []ivs.Event
	next *string
}

func (o eventsOut) appendJSON(b []byte) []byte {
	b = append(b, `{"events":[`...)
	for i := range o.rows {
		e := &o.rows[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, string(e.Name))
		b = append(b, `,"participantId":`...)
		b = appendString(b, string(e.ParticipantID))
		b = append(b, `,"eventTime":`...)
		b = appendStamp(b, e.Time)
		if e.RemoteParticipantID != "" {
			b = append(b, `,"remoteParticipantId":`...)
			b = appendString(b, string(e.RemoteParticipantID))
		}
		if e.ErrorCode != "" {
			b = append(b, `,"errorCode":`...)
			b = appendString(b, string(e.ErrorCode))
		}
		b = append(b, `,"replica":false}`...)
	}
	b = append(b, ']')
	return appendNextToken(b, o.next)
}

// getParticipantOut is GetParticipant's answer: {"participant": Participant}.
type getParticipantOut struct{ p ivs.Participant }

func (o getParticipantOut) appendJSON(b []byte) []byte {
	p := &o.p
	b = append(b, `{"participant":{`...)
	b = appendSummary(b, p.ID, p.UserID, p.State, p.FirstJoinTime, p.Published, p.Recording.State)
	b = append(b, `,"attributes":{`...)
	b = appendSortedMap(b, p.Attributes)
	c := &p.Client
	b = append(b, `},"ispName":`...)
	b = appendString(b, c.ISPName)
	b = append(b, `,"osName":`...)
	b = appendString(b, c.OSName)
	b = append(b, `,"osVersion":`...)
	b = appendString(b, c.OSVersion)
	b = append(b, `,"browserName":`...)
	b = appendString(b, c.BrowserName)
	b = append(b, `,"browserVersion":`...)
	b = appendString(b, c.BrowserVersion)
	b = append(b, `,"sdkVersion":`...)
	b = appendString(b, c.SDKVersion)
	b = append(b, `,"recordingS3BucketName":`...)
	b = appendString(b, p.Recording.BucketName)
	b = append(b, `,"recordingS3Prefix":`...)
	b = appendString(b, p.Recording.Prefix)
	proto := c.Protocol
	if proto == "" {
		proto = ivs.ProtocolUnknown
	}
	b = append(b, `,"protocol":`...)
	b = appendString(b, string(proto))
	return append(b, `}}`...)
}

// appendSortedMap appends the members of m in the order of their keys, as encoding/json does, without
// the braces.
func appendSortedMap(b []byte, m map[string]string) []byte {
	var stack [8]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return b
}
