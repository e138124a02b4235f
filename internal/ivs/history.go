package ivs

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrHistory is wrapped by every error History returns: an event that the participant's history up to it
// does not allow (errors.Is(err, ErrHistory)).
var ErrHistory = errors.New("ivs: event history")

// History is the grammar of one participant's events in one stage session, and where a history of events
// has left the participant:
//
//   - Not joined (the zero value, and after LEFT): JOINED joins; JOIN_ERROR (a refused join) stays not
//     joined. Any other event is refused: nothing follows LEFT until a new JOINED.
//   - Joined: JOINED and JOIN_ERROR are refused. PUBLISH_STARTED needs the participant not publishing,
//     PUBLISH_STOPPED needs it publishing. SUBSCRIBE_STARTED needs a remote participant (the publisher)
//     that is not the participant itself and that it has no open subscription to; SUBSCRIBE_STOPPED needs
//     an open subscription to its remote participant. PUBLISH_ERROR and SUBSCRIBE_ERROR change nothing.
//     LEFT needs the participant neither publishing nor subscribed to anyone (PUBLISH_STOPPED and a
//     SUBSCRIBE_STOPPED for each open subscription come first), and makes it not joined.
//   - An event name the model does not have is refused, and so is an event of another participant (once
//     an event has named the participant, by Event.ParticipantID).
//
// Times, Seq and error codes are not part of the grammar. History is a small value: copying it copies the
// state (Apply never writes to memory that a copy shares), so a copy is a snapshot.
type History struct {
	self       ParticipantID   // the participant, once an event named it
	joined     bool            // between JOINED and LEFT
	left       bool            // not joined because of a LEFT (for the messages only)
	publishing bool            // between PUBLISH_STARTED and PUBLISH_STOPPED
	subs       []ParticipantID // open subscriptions, by remote participant id, sorted; never written in place
}

// Joined reports whether the participant is in the session: after JOINED and before LEFT.
func (h History) Joined() bool { return h.joined }

// Publishing reports whether the participant is publishing: after PUBLISH_STARTED and before PUBLISH_STOPPED.
func (h History) Publishing() bool { return h.publishing }

// Subscriptions returns the participants (publishers) the participant has an open subscription to, sorted.
// The slice is the caller's.
func (h History) Subscriptions() []ParticipantID { return slices.Clone(h.subs) }

// Subscribed reports whether the participant has an open subscription to remote.
func (h History) Subscribed(remote ParticipantID) bool {
	_, ok := slices.BinarySearch(h.subs, remote)
	return ok
}

// Apply checks that e may come next in the history and, if so, moves the history past it. When e may not
// come next it returns an error that wraps ErrHistory and names the event and the rule, and leaves h as it
// was.
func (h *History) Apply(e Event) error {
	next, err := h.next(e)
	if err != nil {
		return err
	}
	*h = next
	return nil
}

// Check reports what Apply would, without changing h.
func (h History) Check(e Event) error {
	_, err := h.next(e)
	return err
}

// Departure returns the events that end the participant's presence properly from where the history is: a
// SUBSCRIBE_STOPPED for each open subscription (by remote participant id), PUBLISH_STOPPED if it is
// publishing, then LEFT. It is empty when the participant is not joined. The events carry only Name and
// RemoteParticipantID; the caller fills in the stage, session, participant and time. Applied in order, they
// leave the history not joined.
func (h History) Departure() []Event {
	if !h.joined {
		return nil
	}
	out := make([]Event, 0, len(h.subs)+2)
	for _, remote := range h.subs {
		out = append(out, Event{Name: EventSubscribeStopped, RemoteParticipantID: remote})
	}
	if h.publishing {
		out = append(out, Event{Name: EventPublishStopped})
	}
	return append(out, Event{Name: EventLeft})
}

// String describes the state, for messages: "not joined", "joined", "joined, publishing, subscribed to
// [a b]".
func (h History) String() string {
	if !h.joined {
		return "not joined"
	}
	var b strings.Builder
	b.WriteString("joined")
	if h.publishing {
		b.WriteString(", publishing")
	}
	if len(h.subs) > 0 {
		fmt.Fprintf(&b, ", subscribed to %v", h.subs)
	}
	return b.String()
}

// ReplayHistory applies events in order to a new History (not joined). On the first event the history does
// not allow it returns the history up to that event and an error (wrapping ErrHistory) that says which
// event it was.
func ReplayHistory(events []Event) (History, error) {
	var h History
	for i, e := range events {
		if err := h.Apply(e); err != nil {
			return h, fmt.Errorf("event %d of %d (seq %d): %w", i+1, len(events), e.Seq, err)
		}
	}
	return h, nil
}

// violation is the error for an event the history does not allow; the message names the event and the rule.
func violation(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrHistory, fmt.Sprintf(format, args...))
}

// next returns the history after e, or the rule e breaks. It never writes to h's memory: a changed set of
// subscriptions is a new slice.
func (h History) next(e Event) (History, error) {
	if e.ParticipantID != "" && h.self != "" && e.ParticipantID != h.self {
		return h, violation("%s of participant %q in the history of participant %q", e.Name, e.ParticipantID, h.self)
	}
	if e.ParticipantID != "" {
		h.self = e.ParticipantID
	}
	switch e.Name {
	case EventJoined, EventLeft, EventPublishStarted, EventPublishStopped, EventSubscribeStarted,
		EventSubscribeStopped, EventPublishError, EventSubscribeError, EventJoinError:
	default:
		return h, violation("unknown event %q", e.Name)
	}

	if !h.joined {
		switch e.Name {
		case EventJoined:
			return History{self: h.self, joined: true}, nil
		case EventJoinError:
			return h, nil
		}
		if h.left {
			if e.Name == EventLeft {
				return h, violation("LEFT after LEFT")
			}
			return h, violation("%s after LEFT: a new JOINED must come first", e.Name)
		}
		return h, violation("%s before JOINED", e.Name)
	}

	switch e.Name {
	case EventJoined:
		return h, violation("JOINED while joined: LEFT must come first")
	case EventJoinError:
		return h, violation("JOIN_ERROR while joined")
	case EventLeft:
		if len(h.subs) > 0 {
			return h, violation("LEFT with an open subscription to %q: SUBSCRIBE_STOPPED must come first", h.subs[0])
		}
		if h.publishing {
			return h, violation("LEFT while still publishing: PUBLISH_STOPPED must come first")
		}
		return History{self: h.self, left: true}, nil
	case EventPublishStarted:
		if h.publishing {
			return h, violation("PUBLISH_STARTED while already publishing")
		}
		h.publishing = true
	case EventPublishStopped:
		if !h.publishing {
			return h, violation("PUBLISH_STOPPED while not publishing")
		}
		h.publishing = false
	case EventSubscribeStarted:
		remote := e.RemoteParticipantID
		i, open := slices.BinarySearch(h.subs, remote)
		switch {
		case remote == "":
			return h, violation("SUBSCRIBE_STARTED without a remote participant")
		case remote == h.self:
			return h, violation("SUBSCRIBE_STARTED to %q, the participant itself", remote)
		case open:
			return h, violation("SUBSCRIBE_STARTED to %q while already subscribed to it", remote)
		}
		h.subs = slices.Insert(slices.Clip(h.subs), i, remote) // clipped: a new array, never h's
	case EventSubscribeStopped:
		remote := e.RemoteParticipantID
		i, open := slices.BinarySearch(h.subs, remote)
		switch {
		case remote == "":
			return h, violation("SUBSCRIBE_STOPPED without a remote participant")
		case !open:
			return h, violation("SUBSCRIBE_STOPPED to %q with no open subscription", remote)
		}
		subs := make([]ParticipantID, 0, len(h.subs)-1)
		h.subs = append(append(subs, h.subs[:i]...), h.subs[i+1:]...)
		if len(h.subs) == 0 {
			h.subs = nil
		}
	case EventPublishError, EventSubscribeError:
		// Refusals change nothing.
	}
	return h, nil
}
