package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/coder/websocket"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/stage"
)

// socket is one joined events connection. Two goroutines own it: the request's, which writes (stage
// states, DISCONNECT, the close), and a reader it starts and waits for, which answers the client's messages.
// coder/websocket allows writes from both at once.
type socket struct {
	h      *Handler
	ws     *websocket.Conn
	log    *slog.Logger
	stage  ivs.StageID
	pr     *stage.Presence
	kicked chan stage.CloseReason // OnClose's signal to the writer; buffered so OnClose never blocks
	// stopRead ends the reader: the socket is closed under it.
	stopRead context.CancelFunc

	// Written by the writer only.
	seq      int64  // sequenceNumber of the last STAGE_STATE sent; the first is 1 (docs/DESIGN.md §4)
	version  uint64 // the stage state version it showed, to skip a wake-up that changed nothing
	countSeq int64  // sequenceNumber of the last aws:ivs:SUBSCRIBER_COUNT sent
	count    int    // the count it showed
	self     []byte // this participant's entry as a one-element JSON array, when it is not listed
}

// onClose is the domain ending the connection. It must not block, and the first reason is the one told.
func (s *socket) onClose(r stage.CloseReason) {
	select {
	case s.kicked <- r:
	default:
	}
}

// run serves the joined socket until it ends and says why.
func (s *socket) run(ctx context.Context, watch <-chan struct{}) string {
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	s.stopRead = stopRead
	readDone := make(chan struct{})
	var readWhy string
	go func() {
		defer close(readDone)
		readWhy = s.readLoop(readCtx)
	}()
	why := s.writeLoop(ctx, watch, readDone)
	// Whatever ended the writer, the socket is over; closing it ends a reader still waiting for data.
	_ = s.ws.CloseNow()
	<-readDone
	if why == "" {
		why = readWhy
	}
	return why
}

// writeLoop sends the stage state on connect and after every change until the socket ends. It returns ""
// when the reader ended first (the reader says why).
func (s *socket) writeLoop(ctx context.Context, watch <-chan struct{}, readDone <-chan struct{}) string {
	if err := s.sendState(ctx); err != nil {
		return "write: " + err.Error()
	}
	for {
		select {
		case <-readDone:
			return ""
		case <-ctx.Done():
			return "request ended"
		case <-s.h.done:
			s.close(websocket.StatusGoingAway, "server shutting down")
			return "handler closed"
		case r := <-s.kicked:
			s.disconnect(ctx, r)
			return "closed by the domain: " + string(r)
		case _, ok := <-watch:
			if !ok {
				return "request ended"
			}
			// Watch coalesces: one wake-up may stand for many changes, and a writer slowed by its client
			// sends only the latest state.
			if err := s.sendState(ctx); err != nil {
				return "write: " + err.Error()
			}
		}
	}
}

// sendState sends what changed since the last call: STAGE_STATE with the listed participants and this
// one (the SDK skips its own id), and aws:ivs:SUBSCRIBER_COUNT with the number of participants not listed
// (docs/DESIGN.md §4.3, a large stage). The listed participants' JSON is encoded once per change, for every
// socket of the stage (stage.Snapshot.Encoded).
func (s *socket) sendState(ctx context.Context) error {
	v := s.pr.View()
	if s.seq == 0 || v.Version != s.version {
		s.seq++
		s.version = v.Version
		parts := v.Encoded(encodeParticipants)
		if !v.Listed {
			if s.self == nil {
				// The entry shows the participant as it joined (stage.View.Self): encoded once per socket,
				// not once per state sent to it.
				s.self = encodeParticipants(&stage.Snapshot{Participants: []stage.LiveParticipant{v.Self}})
			}
			parts = withSelf(parts, s.self)
		}
		err := s.write(ctx, outbound{Type: typeStageState, Payload: stageState{
			StageID: string(s.stage), SequenceNumber: s.seq, Participants: parts,
			Disconnected: []struct{}{}, ServerFeatures: []string{},
		}})
		if err != nil {
			return err
		}
	}
	if v.Unlisted != s.count {
		s.countSeq++
		s.count = v.Unlisted
		return s.write(ctx, outbound{Type: typeSubscriberCount, Payload: subscriberCount{SequenceNumber: s.countSeq, Count: v.Unlisted}})
	}
	return nil
}

// withSelf puts the receiver's own entry (one, a one-element JSON array) in front of the listed
// participants' JSON array.
func withSelf(list, one []byte) []byte {
	if len(list) <= 2 { // "[]"
		return one
	}
	out := make([]byte, 0, len(one)+len(list))
	out = append(out, one[:len(one)-1]...)
	out = append(out, ',')
	return append(out, list[1:]...)
}

// encodeParticipants is the participants array of STAGE_STATE (docs/DESIGN.md §4).
func encodeParticipants(snap *stage.Snapshot) []byte {
	ps := make([]participant, 0, len(snap.Participants))
	for _, p := range snap.Participants {
		attrs := p.Attributes
		if attrs == nil {
			attrs = map[string]string{}
		}
		ps = append(ps, participant{ID: string(p.ID), UserID: p.UserID, Attributes: attrs,
			IsPublishing: p.Publishing, AudioMuted: p.AudioMuted, VideoStopped: p.VideoStopped})
	}
	body, err := json.Marshal(ps)
	if err != nil {
		// Strings and bools only: Marshal cannot fail on them.
		panic("events: encode participants: " + err.Error())
	}
	return body
}

// disconnectReasons are the human-readable reasons sent with aws:ivs:DISCONNECT.
var disconnectReasons = map[stage.CloseReason]string{
	stage.CloseTokenReused:  "the participant token was used for another connection",
	stage.CloseDisconnected: "the participant was disconnected from the stage",
	stage.CloseStageDeleted: "the stage was deleted",
	stage.CloseShutdown:     "the server is shutting down",
}

// disconnect tells the client why the domain ends its connection, then closes the socket. Without the
// message the SDK would take the close for a network failure and reconnect (docs/DESIGN.md §4.4, ending a connection).
func (s *socket) disconnect(ctx context.Context, r stage.CloseReason) {
	reason, ok := disconnectReasons[r]
	if !ok {
		reason = "the connection was closed by the server"
	}
	if err := s.write(ctx, outbound{Type: typeDisconnect, Payload: disconnect{Code: string(r), Reason: reason}}); err != nil {
		s.log.DebugContext(ctx, "events: write DISCONNECT", "err", err)
		return
	}
	s.close(websocket.StatusNormalClosure, string(r))
}

// close sends a close frame and waits closeGrace at most for the client's. The reader, still reading,
// takes the client's close frame; stopping it closes the socket, which cuts coder/websocket's own 5 s wait
// for a client that does not answer (Handler.Close waits for every socket).
func (s *socket) close(code websocket.StatusCode, reason string) {
	t := time.AfterFunc(closeGrace, s.stopRead)
	defer t.Stop()
	_ = s.ws.Close(code, reason)
}

func (s *socket) write(ctx context.Context, v any) error {
	wctx, cancel := context.WithTimeout(ctx, s.h.writeTimeout)
	defer cancel()
	return writeJSON(wctx, s.ws, v)
}

// readLoop answers the client's messages until the socket ends, and says why it did.
func (s *socket) readLoop(ctx context.Context) string {
	var media stage.MediaState // what this client last said; SET_STATE may carry one field only
	for {
		// A fresh deadline per message is the idle timeout: the SDK PINGs every 15 s (docs/DESIGN.md §4.4), so a
		// silent client is gone. coder/websocket closes the socket when the deadline passes.
		rctx, cancel := context.WithTimeout(ctx, s.h.idle)
		typ, data, err := s.ws.Read(rctx)
		idle := errors.Is(rctx.Err(), context.DeadlineExceeded)
		cancel()
		if err != nil {
			switch {
			case idle:
				return "idle timeout"
			case websocket.CloseStatus(err) != -1:
				return fmt.Sprintf("client closed (%d)", websocket.CloseStatus(err))
			default:
				return "read: " + err.Error()
			}
		}
		if typ != websocket.MessageText {
			continue
		}
		if err := s.handle(ctx, data, &media); err != nil {
			return "write: " + err.Error()
		}
	}
}

// handle answers one client message. Only a failed write is an error: a message it cannot use is ignored,
// as the SDK ignores what it does not know.
func (s *socket) handle(ctx context.Context, data []byte, media *stage.MediaState) error {
	var m inbound
	if err := json.Unmarshal(data, &m); err != nil {
		s.log.DebugContext(ctx, "events: malformed message ignored", "err", err)
		return nil
	}
	var p inPayload
	if present(m.Payload) {
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			p = inPayload{} // a payload of another shape counts as none
		}
	}
	switch m.Type {
	case typePing:
		out := outbound{Type: typePong}
		if present(p.RequestID) {
			out.Payload = pong{RequestID: p.RequestID}
		}
		return s.write(ctx, out)
	case typeSetState:
		s.setMedia(ctx, media, m.AudioMuted, m.VideoStopped)
		return nil
	case typeAWSSetState:
		if !s.setMedia(ctx, media, p.AudioMuted, p.VideoStopped) {
			return nil
		}
		// The V2 client waits 5 s for this ack, matched by requestId (docs/DESIGN.md §4.4).
		return s.write(ctx, outbound{Type: typeAWSSetState, Payload: p.ids})
	case typeExchangeToken:
		// Not supported (IVS allows it for self-signed tokens only). Answering at once lets the SDK's
		// exchangeToken() fail now instead of after its 5 s wait.
		var r exchangeReply
		r.ids = p.ids
		r.Error.Message = "token exchange is not supported by this server"
		return s.write(ctx, outbound{Type: typeExchangeToken, Payload: r})
	default:
		s.log.DebugContext(ctx, "events: message of unknown type ignored", "type", clip(m.Type))
		return nil
	}
}

// setMedia applies a SET_STATE; it reports whether the domain took it.
func (s *socket) setMedia(ctx context.Context, media *stage.MediaState, audioMuted, videoStopped *bool) bool {
	next := *media
	if audioMuted != nil {
		next.AudioMuted = *audioMuted
	}
	if videoStopped != nil {
		next.VideoStopped = *videoStopped
	}
	if err := s.h.domain.SetMediaState(s.pr, next); err != nil {
		// ErrNotJoined: the domain has just ended this connection, and its DISCONNECT is on the way.
		s.log.DebugContext(ctx, "events: SET_STATE not applied", "err", err)
		return false
	}
	*media = next
	return true
}

// clip bounds a client-chosen string before it reaches a log.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
