package api

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// The reference encodings: the wire structs of wire.go through encoding/json, as the answers were encoded
// before they wrote their own JSON (encode.go).

func referenceParticipants(rows []store.ParticipantSummary, next *string) []byte {
	out := struct {
		Participants []wireParticipantSummary `json:"participants"`
		NextToken    *string                  `json:"nextToken,omitempty"`
	}{Participants: make([]wireParticipantSummary, len(rows)), NextToken: next}
	for i, s := range rows {
		out.Participants[i] = participantSummaryOut(ivs.Participant{ID: s.ID, UserID: s.UserID, State: s.State,
			FirstJoinTime: s.FirstJoinTime, Published: s.Published, Recording: ivs.ParticipantRecording{State: s.RecordingState}})
	}
	b, _ := json.Marshal(out)
	return b
}

func referenceEvents(rows []ivs.Event, next *string) []byte {
	out := struct {
		Events    []wireEvent `json:"events"`
		NextToken *string     `json:"nextToken,omitempty"`
	}{Events: make([]wireEvent, len(rows)), NextToken: next}
	for i, e := range rows {
		out.Events[i] = eventOut(e)
	}
	b, _ := json.Marshal(out)
	return b
}

func referenceParticipant(p ivs.Participant) []byte {
	b, _ := json.Marshal(struct {
		Participant wireParticipant `json:"participant"`
	}{participantOut(p)})
	return b
}

// awkward are strings that every escaping rule of encoding/json applies to.
var awkward = []string{"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "\x00\x01\x1f\x7f", "\b\f\n\r\t",
	"line\u2028sep\u2029", "é ü 日本 🎙", "bad \xff utf-8 \xc3", "\xed\xa0\x80 surrogate", "user-42"}

func TestAnswersEncodeAsEncodingJSON(t *testing.T) {
	times := []time.Time{{}, time.Date(2026, 12, 3, 9, 4, 5, 678_901_234, time.UTC),
		time.Date(2026, 1, 2, 23, 59, 59, 999_999_999, time.FixedZone("x", 3600)), time.Unix(0, 1).UTC(),
		time.Date(999, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(12345, 6, 7, 8, 9, 10, 0, time.UTC)}
	states := []ivs.RecordingState{"", ivs.RecordingDisabled, ivs.RecordingActive, ivs.RecordingFailed}
	var sums []store.ParticipantSummary
	var events []ivs.Event
	for i, s := range awkward {
		sums = append(sums, store.ParticipantSummary{ID: ivs.ParticipantID(s), UserID: awkward[(i+3)%len(awkward)],
			State: ivs.ParticipantState(awkward[(i+5)%len(awkward)]), FirstJoinTime: times[i%len(times)], Published: i%2 == 0,
			RecordingState: states[i%len(states)]})
		events = append(events, ivs.Event{Name: ivs.EventName(s), ParticipantID: ivs.ParticipantID(awkward[(i+1)%len(awkward)]),
			Time: times[i%len(times)], RemoteParticipantID: ivs.ParticipantID(awkward[(i+2)%len(awkward)]),
			ErrorCode: ivs.ErrorCode(awkward[(i+4)%len(awkward)])})
	}
	tok := "AQAAAAAAAAAAAAAAAAAAAGFiYw_-"
	for _, next := range []*string{nil, &tok} {
		for n := range len(sums) + 1 {
			if got, want := (participantsOut{sums[:n], next}).appendJSON(nil), referenceParticipants(sums[:n], next); string(got) != string(want) {
				t.Errorf("ListParticipants, %d rows:\n got %s\nwant %s", n, got, want)
			}
			if got, want := (eventsOut{events[:n], next}).appendJSON(nil), referenceEvents(events[:n], next); string(got) != string(want) {
				t.Errorf("ListParticipantEvents, %d rows:\n got %s\nwant %s", n, got, want)
			}
		}
	}
	for i, s := range awkward {
		p := ivs.Participant{ID: ivs.ParticipantID(s), UserID: awkward[(i+1)%len(awkward)], State: ivs.StateConnected,
			FirstJoinTime: times[i%len(times)], Published: i%2 == 1,
			Client: ivs.ClientInfo{ISPName: s, OSName: s, OSVersion: "1", BrowserName: s, BrowserVersion: "2", SDKVersion: s,
				Protocol: ivs.Protocol(awkward[(i+2)%len(awkward)])},
			Recording: ivs.ParticipantRecording{BucketName: s, Prefix: s, State: states[i%len(states)]}}
		switch i % 3 {
		case 0:
			p.Attributes = nil
		case 1:
			p.Attributes = map[string]string{}
		default:
			p.Attributes = map[string]string{}
			for j, k := range awkward {
				p.Attributes[k] = awkward[(j+i)%len(awkward)]
			}
		}
		if got, want := (getParticipantOut{p}).appendJSON(nil), referenceParticipant(p); string(got) != string(want) {
			t.Errorf("GetParticipant %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// FuzzAppendString: appendString writes what encoding/json writes for any string.
func FuzzAppendString(f *testing.F) {
	for _, s := range awkward {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got := appendString([]byte("x"), s)
		if string(got[1:]) != string(want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got[1:], want)
		}
		if !utf8.Valid(got) {
			t.Fatalf("%q: not UTF-8: %q", s, got)
		}
	})
}

// FuzzAppendStamp: appendStamp writes what stamp does, quoted, for any instant.
func FuzzAppendStamp(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(1_796_000_000), int64(999_999_999))
	f.Add(int64(-62_135_596_800), int64(1))
	f.Add(int64(253_402_300_799), int64(500_000_000))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec)
		want := "null"
		if s := stamp(tm); s != nil {
			b, _ := json.Marshal(*s)
			want = string(b)
		}
		if got := appendStamp(nil, tm); string(got) != want {
			t.Fatalf("%v: got %s, want %s", tm, got, want)
		}
	})
}

func TestRequestIDForm(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	a, b := newRequestID(), newRequestID()
	if !re.MatchString(a) || !re.MatchString(b) || a == b {
		t.Fatalf("request ids %q and %q", a, b)
	}
}
