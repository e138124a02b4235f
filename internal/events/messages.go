package events

import (
	"context"
	"encoding/json"

	"github.com/coder/websocket"
)

// Message types (docs/DESIGN.md §4.4).
const (
	typeStageState    = "STAGE_STATE"
	typePing          = "PING"
	typePong          = "PONG"
	typeSetState      = "SET_STATE"              // V1: fields at the top level, no reply
	typeAWSSetState   = "aws:ivs:SET_STATE"      // V2: fields in payload, acknowledged with its requestId
	typeExchangeToken = "aws:ivs:EXCHANGE_TOKEN" // stage.exchangeToken(); the SDK waits 5 s for a reply
	typeJoinError     = "aws:ivs:JOIN_ERROR"
	typeDisconnect    = "aws:ivs:DISCONNECT"
	// The count of participants not listed in STAGE_STATE (docs/DESIGN.md §4.3); the web SDK raises it as
	// stageSubscriberCountChanged and ignores a sequenceNumber not above the last on the socket.
	typeSubscriberCount = "aws:ivs:SUBSCRIBER_COUNT"
)

// outbound is every server message: a type and, for most, a payload.
type outbound struct {
	Type    string `json:"type"`
	Payload any    `json:"payload,omitempty"`
}

type joinError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type disconnect struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// stageState is STAGE_STATE's payload. The web SDK ignores a state whose sequenceNumber is not above the
// last on the socket, and learns of no remote participant without one (docs/DESIGN.md §4.4).
type stageState struct {
	StageID        string          `json:"stageId"`
	SequenceNumber int64           `json:"sequenceNumber"`
	Participants   json.RawMessage `json:"participants"`
	Disconnected   []struct{}      `json:"disconnected"`   // always empty: departures show as absences
	ServerFeatures []string        `json:"serverFeatures"` // none: no "xdp", SDP goes over WHIP
}

// subscriberCount is aws:ivs:SUBSCRIBER_COUNT's payload.
type subscriberCount struct {
	SequenceNumber int64 `json:"sequenceNumber"`
	Count          int   `json:"count"`
}

// participant is one entry of STAGE_STATE. The SDK compares every field to derive its joined, left and
// updated events, and subscribes to a participant only while isPublishing is true.
type participant struct {
	ID           string            `json:"id"`
	UserID       string            `json:"userId"`
	Attributes   map[string]string `json:"attributes"` // never null: the SDK compares it as an object
	IsPublishing bool              `json:"isPublishing"`
	AudioMuted   bool              `json:"audioMuted"`
	VideoStopped bool              `json:"videoStopped"`
}

// ids are the requestId and traceId a client puts in a request, echoed as they came (the SDK sends
// strings; raw JSON keeps whatever type another client uses).
type ids struct {
	RequestID json.RawMessage `json:"requestId,omitempty"`
	TraceID   json.RawMessage `json:"traceId,omitempty"`
}

type pong struct {
	RequestID json.RawMessage `json:"requestId"`
}

type exchangeReply struct {
	ids
	Error struct {
		Message string `json:"message"`
	} `json:"error"`
}

// inbound is every client message; which fields matter depends on Type.
type inbound struct {
	Type         string          `json:"type"`
	AudioMuted   *bool           `json:"audioMuted"` // SET_STATE (V1)
	VideoStopped *bool           `json:"videoStopped"`
	Payload      json.RawMessage `json:"payload"`
}

// inPayload is the payload of the V2 messages (PING, aws:ivs:SET_STATE, aws:ivs:EXCHANGE_TOKEN).
type inPayload struct {
	ids
	AudioMuted   *bool `json:"audioMuted"`
	VideoStopped *bool `json:"videoStopped"`
}

// present reports whether a raw JSON value was given and is not null.
func present(r json.RawMessage) bool { return len(r) > 0 && string(r) != "null" }

func writeJSON(ctx context.Context, ws *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return ws.Write(ctx, websocket.MessageText, b)
}
