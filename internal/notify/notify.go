// Package notify turns what the stage domain writes into notifications and pushes them out: the kinds and
// their EventBridge shape (this file), the webhooks' deliverers (webhook.go) and the server-sent event
// stream (stream.go). The notification log itself is in the store (store.Outbox), written in the same
// transaction as the events it tells of (docs/DESIGN.md §5.6).
package notify

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// Kind names what a notification tells: a participant event's name (ivs.EventName) or a session's start or
// end. Webhook filters and the stream's `event:` field use it.
type Kind string

const (
	KindSessionStarted Kind = "SESSION_STARTED"
	KindSessionEnded   Kind = "SESSION_ENDED"

	// A participant's recording (docs/DESIGN.md §7): started (its first segment is written), ended, or failed
	// before or after it started.
	KindRecordingStarted     Kind = "RECORDING_STARTED"
	KindRecordingEnded       Kind = "RECORDING_ENDED"
	KindRecordingStartFailed Kind = "RECORDING_START_FAILED"
	KindRecordingEndFailed   Kind = "RECORDING_END_FAILED"
)

// shape is how a kind looks as an EventBridge event.
type shape struct {
	detailType string
	eventName  string
}

// IVS's own detail-type, and openstage's for what IVS does not send (same envelope, same detail fields).
const (
	ivsStageUpdate       = "IVS Stage Update"
	ivsRecordingChange   = "IVS Participant Recording State Change"
	openstageStageUpdate = "Openstage Stage Update"
)

// kinds is every kind with its EventBridge shape. IVS's EventBridge events (RealTimeUserGuide/eventbridge):
// "IVS Stage Update" with event_name "Participant Published", "Participant Unpublished", "Participant Publish
// Error". The rest IVS never sends. A new kind (recording state changes: "IVS Participant Recording State
// Change" with "Recording Start", ...) is one entry here and an AppendNotification where it happens.
var kinds = map[Kind]shape{
	Kind(ivs.EventPublishStarted):   {ivsStageUpdate, "Participant Published"},
	Kind(ivs.EventPublishStopped):   {ivsStageUpdate, "Participant Unpublished"},
	Kind(ivs.EventPublishError):     {ivsStageUpdate, "Participant Publish Error"},
	Kind(ivs.EventJoined):           {openstageStageUpdate, "Participant Joined"},
	Kind(ivs.EventLeft):             {openstageStageUpdate, "Participant Left"},
	Kind(ivs.EventJoinError):        {openstageStageUpdate, "Participant Join Error"},
	Kind(ivs.EventSubscribeStarted): {openstageStageUpdate, "Participant Subscribed"},
	Kind(ivs.EventSubscribeStopped): {openstageStageUpdate, "Participant Unsubscribed"},
	Kind(ivs.EventSubscribeError):   {openstageStageUpdate, "Participant Subscribe Error"},
	KindSessionStarted:              {openstageStageUpdate, "Session Started"},
	KindSessionEnded:                {openstageStageUpdate, "Session Ended"},
	// IVS's: "IVS Participant Recording State Change" with these event names.
	KindRecordingStarted:     {ivsRecordingChange, "Recording Start"},
	KindRecordingEnded:       {ivsRecordingChange, "Recording End"},
	KindRecordingStartFailed: {ivsRecordingChange, "Recording Start Failure"},
	KindRecordingEndFailed:   {ivsRecordingChange, "Recording End Failure"},
}

// Known reports whether k is a kind notifications are made of (the config's filters are checked with it).
func Known(k Kind) bool { _, ok := kinds[k]; return ok }

// Kinds lists every kind (for errors and docs).
func Kinds() []Kind {
	out := make([]Kind, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	return out
}

// eventTime is the detail's time: RFC 3339 in UTC with milliseconds, which IVS's consumers parse and which
// keeps one participant's events apart.
const eventTime = "2006-01-02T15:04:05.000Z07:00"

type sessionDetail struct {
	SessionID string `json:"session_id"`
	EventName string `json:"event_name"`
	EventTime string `json:"event_time"`
}

// FromEvent makes the notification of a participant event; userID is the participant's.
func FromEvent(e ivs.Event, userID string) (*store.Notification, error) {
	k := Kind(e.Name)
	sh, ok := kinds[k]
	if !ok {
		return nil, fmt.Errorf("notify: no notification kind for event %s", e.Name)
	}
	return &store.Notification{StageID: e.StageID, SessionID: e.SessionID, Kind: string(k), Time: e.Time, Detail: appendDetail(nil, e, sh, userID)}, nil
}

// appendDetail appends e's EventBridge detail, with IVS's field names (a captured "Participant Published":
// session_id, event_name, event_time, user_id, participant_id); the fields IVS does not have are
// openstage's and only on the kinds they concern. It writes what json.Marshal of a struct of those fields
// wrote, byte for byte (TestDetailEncoding): FromEvent runs inside the store transaction of every
// participant event, where json.Marshal's reflection was a twentieth of the ingest's CPU, profiled.
func appendDetail(b []byte, e ivs.Event, sh shape, userID string) []byte {
	n := 128 + len(e.SessionID) + len(sh.eventName) + len(userID) + len(e.ParticipantID) + len(e.RemoteParticipantID) + len(e.ErrorCode)
	b = slices.Grow(b, n)
	b = append(b, `{"session_id":`...)
	b = appendString(b, string(e.SessionID))
	b = append(b, `,"event_name":`...)
	b = appendString(b, sh.eventName)
	b = append(b, `,"event_time":"`...)
	b = e.Time.UTC().AppendFormat(b, eventTime) // digits, '-', ':', '.', 'T', 'Z': nothing to escape
	b = append(b, `","user_id":`...)
	b = appendString(b, userID)
	b = append(b, `,"participant_id":`...)
	b = appendString(b, string(e.ParticipantID))
	if e.RemoteParticipantID != "" {
		b = append(b, `,"remote_participant_id":`...)
		b = appendString(b, string(e.RemoteParticipantID))
	}
	if e.ErrorCode != "" {
		b = append(b, `,"error_code":`...)
		b = appendString(b, string(e.ErrorCode))
	}
	return append(b, '}')
}

// appendString appends s as a JSON string. Ids and names are plain ASCII and copied as they are; anything
// else (a user id is the token's) goes through encoding/json, so its escapes stay json.Marshal's own.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// FromSession makes the notification of a session's start (KindSessionStarted) or end (KindSessionEnded).
func FromSession(k Kind, stage ivs.StageID, session ivs.SessionID, at time.Time) *store.Notification {
	b, _ := json.Marshal(sessionDetail{SessionID: string(session), EventName: kinds[k].eventName, EventTime: at.UTC().Format(eventTime)})
	return &store.Notification{StageID: stage, SessionID: session, Kind: string(k), Time: at, Detail: b}
}

// recordingDetail is IVS's detail of a recording state change: session_id, event_name, participant_id,
// recording_s3_bucket_name, recording_s3_key_prefix (and event_time, as openstage's other details).
type recordingDetail struct {
	SessionID     string `json:"session_id"`
	EventName     string `json:"event_name"`
	EventTime     string `json:"event_time"`
	ParticipantID string `json:"participant_id"`
	BucketName    string `json:"recording_s3_bucket_name"`
	KeyPrefix     string `json:"recording_s3_key_prefix"`
}

// RecordingKind is the notification of a recording moving from prev to next, if that move is one IVS
// announces: ACTIVE (started), STOPPED (ended), FAILED (a start failure before ACTIVE, an end failure after).
func RecordingKind(prev, next ivs.RecordingState) (Kind, bool) {
	switch {
	case next == ivs.RecordingActive && prev != ivs.RecordingActive:
		return KindRecordingStarted, true
	case next == ivs.RecordingStopped && prev != ivs.RecordingStopped:
		return KindRecordingEnded, true
	case next == ivs.RecordingFailed && (prev == ivs.RecordingStarting || prev == ivs.RecordingDisabled || prev == ""):
		return KindRecordingStartFailed, true
	case next == ivs.RecordingFailed && prev != ivs.RecordingFailed:
		return KindRecordingEndFailed, true
	}
	return "", false
}

// FromRecording makes the notification of a participant's recording state change (RecordingKind).
func FromRecording(k Kind, stage ivs.StageID, session ivs.SessionID, pid ivs.ParticipantID, rs ivs.ParticipantRecording, at time.Time) *store.Notification {
	b, _ := json.Marshal(recordingDetail{SessionID: string(session), EventName: kinds[k].eventName, EventTime: at.UTC().Format(eventTime),
		ParticipantID: string(pid), BucketName: rs.BucketName, KeyPrefix: rs.Prefix})
	return &store.Notification{StageID: stage, SessionID: session, Kind: string(k), Time: at, Detail: b}
}

// Event is a notification as sent: the EventBridge event envelope (docs.aws.amazon.com/eventbridge,
// "Amazon EventBridge events"), in the order of IVS's.
type Event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// ID is a notification's id on the wire (the envelope's id, the idempotency header, the stream's id:): its
// seq in decimal. It is the same on every delivery and every node.
func ID(seq int64) string { return strconv.FormatInt(seq, 10) }

// Encode returns the notification's EventBridge event as JSON.
func Encode(n store.Notification, acct ivs.Account) ([]byte, error) {
	sh, ok := kinds[Kind(n.Kind)]
	if !ok {
		// A kind a newer node wrote: sent with openstage's detail-type rather than dropped.
		sh = shape{detailType: openstageStageUpdate}
	}
	return json.Marshal(Event{Version: "0", ID: ID(n.Seq), DetailType: sh.detailType, Source: "aws.ivs", Account: acct.ID,
		Time: n.Time.UTC().Format(time.RFC3339), Region: acct.Region, Resources: []string{acct.StageARN(n.StageID)},
		Detail: json.RawMessage(n.Detail)})
}
