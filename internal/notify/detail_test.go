package notify

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
)

// detail is the participant event detail as FromEvent wrote it before appendDetail, through encoding/json:
// the reference appendDetail is held to.
type detail struct {
	SessionID           string `json:"session_id"`
	EventName           string `json:"event_name"`
	EventTime           string `json:"event_time"`
	UserID              string `json:"user_id"`
	ParticipantID       string `json:"participant_id"`
	RemoteParticipantID string `json:"remote_participant_id,omitempty"`
	ErrorCode           string `json:"error_code,omitempty"`
}

// marshalDetail is what FromEvent wrote before appendDetail: the detail through encoding/json.
func marshalDetail(t testing.TB, e ivs.Event, userID string) string {
	t.Helper()
	b, err := json.Marshal(detail{SessionID: string(e.SessionID), EventName: kinds[Kind(e.Name)].eventName,
		EventTime: e.Time.UTC().Format(eventTime), UserID: userID, ParticipantID: string(e.ParticipantID),
		RemoteParticipantID: string(e.RemoteParticipantID), ErrorCode: string(e.ErrorCode)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkDetail: FromEvent's detail is json.Marshal's, byte for byte (webhook receivers may sign or compare it).
func checkDetail(t testing.TB, e ivs.Event, userID string) {
	t.Helper()
	n, err := FromEvent(e, userID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(n.Detail), marshalDetail(t, e, userID); got != want {
		t.Errorf("detail\n got %s\nwant %s", got, want)
	}
}

func TestDetailEncoding(t *testing.T) {
	at := time.Date(2026, 12, 3, 15, 4, 5, 678_900_000, time.FixedZone("x", 3600))
	base := ivs.Event{StageID: "st-1", SessionID: "st-1/ses", ParticipantID: "p-1", Time: at}
	for _, name := range []ivs.EventName{ivs.EventJoined, ivs.EventLeft, ivs.EventJoinError, ivs.EventPublishStarted, ivs.EventPublishStopped,
		ivs.EventPublishError, ivs.EventSubscribeStarted, ivs.EventSubscribeStopped, ivs.EventSubscribeError} {
		e := base
		e.Name = name
		checkDetail(t, e, "user-1")
		e.RemoteParticipantID, e.ErrorCode = "p-2", ivs.ErrorCode("INSUFFICIENT_CAPABILITIES")
		checkDetail(t, e, "")
	}
	for _, s := range []string{
		"", "plain", `quote"`, `back\slash`, "a<b", "a>b", "a&b", "\x7f", "new\nline", "\x01", "tab\tnew\nline\rcr\bbs\fff\x00\x1f\x7f",
		"é ünïcode 日本", "\u2028\u2029", "bad utf-8 \xff\xfe", "emoji 🎉",
	} {
		e := base
		e.Name, e.SessionID, e.ParticipantID, e.RemoteParticipantID, e.ErrorCode = ivs.EventSubscribeError, ivs.SessionID(s), ivs.ParticipantID(s), ivs.ParticipantID(s), ivs.ErrorCode(s)
		checkDetail(t, e, s)
	}
	// The zero time and times far from now format as encoding/json's did.
	for _, tm := range []time.Time{{}, time.Unix(0, 0), time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)} {
		e := base
		e.Name, e.Time = ivs.EventJoined, tm
		checkDetail(t, e, "u")
	}
}

func FuzzDetail(f *testing.F) {
	f.Add("ses", "p", "u", "r", "c", int64(0))
	f.Add(`"\<>&`, "\x00\n", "\xff", "\u2028", "日本", int64(1<<62))
	f.Fuzz(func(t *testing.T, session, pid, user, remote, code string, nanos int64) {
		e := ivs.Event{StageID: "st", SessionID: ivs.SessionID(session), ParticipantID: ivs.ParticipantID(pid), Name: ivs.EventSubscribeError,
			Time: time.Unix(0, nanos), RemoteParticipantID: ivs.ParticipantID(remote), ErrorCode: ivs.ErrorCode(code)}
		checkDetail(t, e, user)
	})
}

// BenchmarkFromEvent: the notification of one participant event, as the ingest makes it for every event.
func BenchmarkFromEvent(b *testing.B) {
	e := ivs.Event{StageID: "st-0123456789ab", SessionID: "st-0123456789ab/ses-0123456789ab", ParticipantID: "p-0123456789ab",
		Name: ivs.EventSubscribeStarted, Time: time.Now(), RemoteParticipantID: "p-ba9876543210"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromEvent(e, "user-0000000000000000"); err != nil {
			b.Fatal(err)
		}
	}
}
