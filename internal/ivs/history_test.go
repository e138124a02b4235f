package ivs

import (
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// hev parses an event written as ivstest.DomainEvent writes one: NAME, NAME>remote, NAME:ERROR_CODE. The
// event is participant p's.
func hev(s string) Event {
	e := Event{ParticipantID: "p"}
	s, code, _ := strings.Cut(s, ":")
	name, remote, _ := strings.Cut(s, ">")
	e.Name, e.RemoteParticipantID, e.ErrorCode = EventName(name), ParticipantID(remote), ErrorCode(code)
	return e
}

func hevs(ss ...string) []Event {
	out := make([]Event, len(ss))
	for i, s := range ss {
		out[i] = hev(s)
	}
	return out
}

func TestHistory(t *testing.T) {
	type state struct {
		joined, publishing bool
		subs               []ParticipantID
	}
	notJoined := state{}
	joined := state{joined: true}
	for _, tc := range []struct {
		name   string
		events []string
		bad    int    // index of the first refused event, -1 when all are accepted
		msg    string // what the refusal says
		want   state  // after the accepted events
	}{
		{"empty", nil, -1, "", notJoined},
		{"join", []string{"JOINED"}, -1, "", joined},
		{"join and leave", []string{"JOINED", "LEFT"}, -1, "", notJoined},
		{"join error first", []string{"JOIN_ERROR:QUOTA_EXCEEDED"}, -1, "", notJoined},
		{"join errors then join", []string{"JOIN_ERROR:QUOTA_EXCEEDED", "JOIN_ERROR:QUOTA_EXCEEDED", "JOINED"}, -1, "", joined},
		{"join error after leave", []string{"JOINED", "LEFT", "JOIN_ERROR:QUOTA_EXCEEDED"}, -1, "", notJoined},
		{"publish", []string{"JOINED", "PUBLISH_STARTED"}, -1, "", state{joined: true, publishing: true}},
		{"publish, stop, leave", []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"}, -1, "", notJoined},
		{"publish twice in a row", []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "PUBLISH_STARTED"}, -1, "",
			state{joined: true, publishing: true}},
		{"rejoin", []string{"JOINED", "LEFT", "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT", "JOINED"}, -1, "", joined},
		{"subscriptions", []string{"JOINED", "SUBSCRIBE_STARTED>c", "SUBSCRIBE_STARTED>a", "SUBSCRIBE_STARTED>b",
			"SUBSCRIBE_STOPPED>a"}, -1, "", state{joined: true, subs: []ParticipantID{"b", "c"}}},
		{"subscribe again after stopping", []string{"JOINED", "SUBSCRIBE_STARTED>a", "SUBSCRIBE_STOPPED>a", "SUBSCRIBE_STARTED>a"},
			-1, "", state{joined: true, subs: []ParticipantID{"a"}}},
		{"everything, then leave", []string{"JOINED", "PUBLISH_STARTED", "SUBSCRIBE_STARTED>a", "PUBLISH_ERROR:BITRATE_EXCEEDED",
			"SUBSCRIBE_ERROR>b:PUBLISHER_NOT_FOUND", "SUBSCRIBE_STARTED>b", "PUBLISH_STOPPED", "SUBSCRIBE_STOPPED>b",
			"SUBSCRIBE_STOPPED>a", "LEFT"}, -1, "", notJoined},
		{"errors change nothing", []string{"JOINED", "PUBLISH_ERROR:INSUFFICIENT_CAPABILITIES", "SUBSCRIBE_ERROR>a:QUOTA_EXCEEDED",
			"SUBSCRIBE_ERROR:PUBLISHER_NOT_FOUND", "PUBLISH_STARTED", "PUBLISH_ERROR:RESOLUTION_EXCEEDED"}, -1, "",
			state{joined: true, publishing: true}},

		// Not joined.
		{"left first", []string{"LEFT"}, 0, "LEFT before JOINED", notJoined},
		{"publish first", []string{"PUBLISH_STARTED"}, 0, "PUBLISH_STARTED before JOINED", notJoined},
		{"publish error first", []string{"PUBLISH_ERROR:INSUFFICIENT_CAPABILITIES"}, 0, "PUBLISH_ERROR before JOINED", notJoined},
		{"subscribe error after join error", []string{"JOIN_ERROR:QUOTA_EXCEEDED", "SUBSCRIBE_ERROR>a:PUBLISHER_NOT_FOUND"}, 1,
			"SUBSCRIBE_ERROR before JOINED", notJoined},
		{"left after left", []string{"JOINED", "LEFT", "LEFT"}, 2, "LEFT after LEFT", notJoined},
		{"left after left and a join error", []string{"JOINED", "LEFT", "JOIN_ERROR:QUOTA_EXCEEDED", "LEFT"}, 3, "LEFT after LEFT", notJoined},
		{"publish after left", []string{"JOINED", "LEFT", "PUBLISH_STARTED"}, 2,
			"PUBLISH_STARTED after LEFT: a new JOINED must come first", notJoined},
		{"subscribe stopped after left", []string{"JOINED", "SUBSCRIBE_STARTED>a", "SUBSCRIBE_STOPPED>a", "LEFT", "SUBSCRIBE_STOPPED>a"}, 4,
			"SUBSCRIBE_STOPPED after LEFT", notJoined},

		// Joined.
		{"joined twice", []string{"JOINED", "JOINED"}, 1, "JOINED while joined: LEFT must come first", joined},
		{"join error while joined", []string{"JOINED", "JOIN_ERROR:QUOTA_EXCEEDED"}, 1, "JOIN_ERROR while joined", joined},
		{"left while publishing", []string{"JOINED", "PUBLISH_STARTED", "LEFT"}, 2,
			"LEFT while still publishing: PUBLISH_STOPPED must come first", state{joined: true, publishing: true}},
		{"left while subscribed", []string{"JOINED", "SUBSCRIBE_STARTED>b", "SUBSCRIBE_STARTED>a", "LEFT"}, 3,
			`LEFT with an open subscription to "a": SUBSCRIBE_STOPPED must come first`,
			state{joined: true, subs: []ParticipantID{"a", "b"}}},
		{"publish started twice", []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STARTED"}, 2,
			"PUBLISH_STARTED while already publishing", state{joined: true, publishing: true}},
		{"publish stopped without start", []string{"JOINED", "PUBLISH_STOPPED"}, 1, "PUBLISH_STOPPED while not publishing", joined},
		{"publish stopped twice", []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "PUBLISH_STOPPED"}, 3,
			"PUBLISH_STOPPED while not publishing", joined},
		{"subscribe twice to one", []string{"JOINED", "SUBSCRIBE_STARTED>a", "SUBSCRIBE_STARTED>a"}, 2,
			`SUBSCRIBE_STARTED to "a" while already subscribed to it`, state{joined: true, subs: []ParticipantID{"a"}}},
		{"subscribe to nobody", []string{"JOINED", "SUBSCRIBE_STARTED"}, 1, "SUBSCRIBE_STARTED without a remote participant", joined},
		{"subscribe to itself", []string{"JOINED", "SUBSCRIBE_STARTED>p"}, 1, `SUBSCRIBE_STARTED to "p", the participant itself`, joined},
		{"subscribe stopped to nobody", []string{"JOINED", "SUBSCRIBE_STOPPED"}, 1, "SUBSCRIBE_STOPPED without a remote participant", joined},
		{"subscribe stopped without start", []string{"JOINED", "SUBSCRIBE_STARTED>a", "SUBSCRIBE_STOPPED>b"}, 2,
			`SUBSCRIBE_STOPPED to "b" with no open subscription`, state{joined: true, subs: []ParticipantID{"a"}}},
		{"subscribe stopped twice", []string{"JOINED", "SUBSCRIBE_STARTED>a", "SUBSCRIBE_STOPPED>a", "SUBSCRIBE_STOPPED>a"}, 3,
			`SUBSCRIBE_STOPPED to "a" with no open subscription`, joined},

		// Any state.
		{"unknown event", []string{"JOINED", "WAVED"}, 1, `unknown event "WAVED"`, joined},
		{"unknown event first", []string{"joined"}, 0, `unknown event "joined"`, notJoined},
		{"empty name", []string{""}, 0, `unknown event ""`, notJoined},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := hevs(tc.events...)
			var h History
			for i, e := range events {
				before := h
				err := h.Apply(e)
				if i != tc.bad {
					if err != nil {
						t.Fatalf("event %d %s: %v", i, tc.events[i], err)
					}
					continue
				}
				if !errors.Is(err, ErrHistory) {
					t.Fatalf("event %d %s: got error %v, want ErrHistory", i, tc.events[i], err)
				}
				if !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("event %d %s: error %q does not say %q", i, tc.events[i], err, tc.msg)
				}
				if !reflect.DeepEqual(h, before) {
					t.Errorf("a refused event changed the history from %+v to %+v", before, h)
				}
				break
			}
			got := state{h.Joined(), h.Publishing(), h.Subscriptions()}
			if len(got.subs) == 0 {
				got.subs = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("state %+v (%s), want %+v", got, h, tc.want)
			}

			// ReplayHistory says the same, and stops at the same event.
			r, err := ReplayHistory(events)
			if tc.bad < 0 {
				if err != nil {
					t.Fatalf("ReplayHistory: %v", err)
				}
			} else if !errors.Is(err, ErrHistory) || !strings.Contains(err.Error(), tc.msg) ||
				!strings.Contains(err.Error(), "event "+strconv.Itoa(tc.bad+1)+" of ") {
				t.Fatalf("ReplayHistory: error %v, want event %d refused with %q", err, tc.bad+1, tc.msg)
			}
			if !reflect.DeepEqual(r, h) {
				t.Errorf("ReplayHistory left %+v, Apply %+v", r, h)
			}
		})
	}
}

func TestHistoryCheck(t *testing.T) {
	h, err := ReplayHistory(hevs("JOINED", "PUBLISH_STARTED"))
	if err != nil {
		t.Fatal(err)
	}
	before := h
	if err := h.Check(hev("PUBLISH_STOPPED")); err != nil {
		t.Fatalf("Check PUBLISH_STOPPED while publishing: %v", err)
	}
	if err := h.Check(hev("LEFT")); !errors.Is(err, ErrHistory) {
		t.Fatalf("Check LEFT while publishing: %v", err)
	}
	if err := h.Check(hev("SUBSCRIBE_STARTED>a")); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h, before) {
		t.Fatalf("Check changed the history: %+v, was %+v", h, before)
	}
}

// TestHistoryParticipant: once an event names the participant, events of another are refused, and so is a
// subscription to the participant itself, even when the event that makes it does not name it.
func TestHistoryParticipant(t *testing.T) {
	var h History
	if err := h.Apply(Event{Name: EventJoined}); err != nil { // nobody named yet: anyone's
		t.Fatal(err)
	}
	if err := h.Apply(Event{Name: EventPublishStarted, ParticipantID: "p"}); err != nil {
		t.Fatal(err)
	}
	err := h.Apply(Event{Name: EventPublishStopped, ParticipantID: "q"})
	if !errors.Is(err, ErrHistory) || !strings.Contains(err.Error(), `PUBLISH_STOPPED of participant "q" in the history of participant "p"`) {
		t.Fatalf("another participant's event: %v", err)
	}
	if err := h.Apply(Event{Name: EventSubscribeStarted, RemoteParticipantID: "p"}); !errors.Is(err, ErrHistory) {
		t.Fatalf("a subscription to itself, in an event without the participant: %v", err)
	}
	if err := h.Apply(Event{Name: EventPublishStopped}); err != nil { // an event without a participant is its
		t.Fatal(err)
	}
	if err := h.Apply(Event{Name: EventLeft, ParticipantID: "p"}); err != nil {
		t.Fatal(err)
	}
	// The participant stays known after LEFT.
	if err := h.Apply(Event{Name: EventJoined, ParticipantID: "q"}); !errors.Is(err, ErrHistory) {
		t.Fatalf("another participant's JOINED after LEFT: %v", err)
	}
}

// TestHistoryDeparture: from every state, the departure is the stops in order then LEFT, and applying it
// ends the participant.
func TestHistoryDeparture(t *testing.T) {
	for _, tc := range []struct {
		events []string
		want   []string
	}{
		{nil, nil},
		{[]string{"JOIN_ERROR:QUOTA_EXCEEDED"}, nil},
		{[]string{"JOINED", "LEFT"}, nil},
		{[]string{"JOINED"}, []string{"LEFT"}},
		{[]string{"JOINED", "PUBLISH_ERROR:INSUFFICIENT_CAPABILITIES"}, []string{"LEFT"}},
		{[]string{"JOINED", "PUBLISH_STARTED"}, []string{"PUBLISH_STOPPED", "LEFT"}},
		{[]string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED"}, []string{"LEFT"}},
		{[]string{"JOINED", "SUBSCRIBE_STARTED>b"}, []string{"SUBSCRIBE_STOPPED>b", "LEFT"}},
		{[]string{"JOINED", "SUBSCRIBE_STARTED>c", "PUBLISH_STARTED", "SUBSCRIBE_STARTED>a", "SUBSCRIBE_STARTED>b", "SUBSCRIBE_STOPPED>b"},
			[]string{"SUBSCRIBE_STOPPED>a", "SUBSCRIBE_STOPPED>c", "PUBLISH_STOPPED", "LEFT"}},
		{[]string{"JOINED", "LEFT", "JOINED", "SUBSCRIBE_STARTED>a", "PUBLISH_STARTED"},
			[]string{"SUBSCRIBE_STOPPED>a", "PUBLISH_STOPPED", "LEFT"}},
	} {
		h, err := ReplayHistory(hevs(tc.events...))
		if err != nil {
			t.Fatalf("%v: %v", tc.events, err)
		}
		dep := h.Departure()
		var got []string
		for _, e := range dep {
			if e.ParticipantID != "" || e.ErrorCode != "" || e.Seq != 0 || !e.Time.IsZero() {
				t.Errorf("%v: departure event %+v carries more than a name and a remote participant", tc.events, e)
			}
			s := string(e.Name)
			if e.RemoteParticipantID != "" {
				s += ">" + string(e.RemoteParticipantID)
			}
			got = append(got, s)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v: departure %v, want %v", tc.events, got, tc.want)
		}
		before := h
		for _, e := range dep {
			e.ParticipantID = "p"
			if err := h.Apply(e); err != nil {
				t.Fatalf("%v: applying the departure: %v", tc.events, err)
			}
		}
		if h.Joined() || h.Publishing() || len(h.Subscriptions()) != 0 {
			t.Errorf("%v: after the departure: %s", tc.events, h)
		}
		if len(dep) > 0 && h.Joined() == before.Joined() {
			t.Errorf("%v: departure from %s did not leave", tc.events, before)
		}
		if d := h.Departure(); len(d) != 0 {
			t.Errorf("%v: a second departure: %v", tc.events, d)
		}
	}
}

// TestHistoryCopy: a copy is a snapshot; what happens to one does not happen to the other.
func TestHistoryCopy(t *testing.T) {
	h, err := ReplayHistory(hevs("JOINED", "SUBSCRIBE_STARTED>a", "SUBSCRIBE_STARTED>c"))
	if err != nil {
		t.Fatal(err)
	}
	snap := h
	for _, s := range []string{"SUBSCRIBE_STARTED>b", "SUBSCRIBE_STOPPED>a", "SUBSCRIBE_STARTED>d", "SUBSCRIBE_STOPPED>c"} {
		if err := h.Apply(hev(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got := snap.Subscriptions(); !slices.Equal(got, []ParticipantID{"a", "c"}) {
		t.Fatalf("the snapshot's subscriptions became %v", got)
	}
	if got := h.Subscriptions(); !slices.Equal(got, []ParticipantID{"b", "d"}) {
		t.Fatalf("subscriptions %v", got)
	}
	subs := h.Subscriptions()
	subs[0] = "z"
	if !h.Subscribed("b") || h.Subscribed("z") {
		t.Fatal("Subscriptions returned the history's own slice")
	}
}

func TestHistoryString(t *testing.T) {
	for events, want := range map[string]string{
		"":       "not joined",
		"JOINED": "joined",
		"JOINED PUBLISH_STARTED SUBSCRIBE_STARTED>b SUBSCRIBE_STARTED>a": "joined, publishing, subscribed to [a b]",
	} {
		h, err := ReplayHistory(hevs(strings.Fields(events)...))
		if err != nil {
			t.Fatal(err)
		}
		if got := h.String(); got != want {
			t.Errorf("%q: String() = %q, want %q", events, got, want)
		}
	}
}

// model is the grammar written the obvious way, with a map: FuzzHistory compares History with it.
type model struct {
	joined, publishing bool
	subs               map[ParticipantID]bool
	named              bool // an accepted event has named the participant: History knows who it is
}

func (m *model) apply(self ParticipantID, e Event) bool {
	named := m.named
	ok := m.step(self, e, named || e.ParticipantID == self)
	m.named = named || ok && e.ParticipantID != ""
	return ok
}

// step is apply's rules; known says whether History knows the participant's id (for SUBSCRIBE_STARTED to
// itself).
func (m *model) step(self ParticipantID, e Event, known bool) bool {
	switch e.Name {
	case EventJoined:
		if m.joined {
			return false
		}
		*m = model{joined: true, subs: map[ParticipantID]bool{}}
	case EventJoinError:
		return !m.joined
	case EventLeft:
		if !m.joined || m.publishing || len(m.subs) > 0 {
			return false
		}
		*m = model{}
	case EventPublishStarted, EventPublishStopped:
		if !m.joined || m.publishing != (e.Name == EventPublishStopped) {
			return false
		}
		m.publishing = !m.publishing
	case EventSubscribeStarted:
		r := e.RemoteParticipantID
		if !m.joined || r == "" || known && r == self || m.subs[r] {
			return false
		}
		m.subs[r] = true
	case EventSubscribeStopped:
		if !m.joined || !m.subs[e.RemoteParticipantID] {
			return false
		}
		delete(m.subs, e.RemoteParticipantID)
	case EventPublishError, EventSubscribeError:
		return m.joined
	default:
		return false
	}
	return true
}

// FuzzHistory applies random sequences of events (two bytes each: the event, and its remote participant)
// and checks Apply against the model: it never panics, it accepts what the model accepts, a refusal wraps
// ErrHistory and changes nothing, Check agrees with Apply, and from every state the departure applies and
// ends the participant without touching the history it was computed from.
func FuzzHistory(f *testing.F) {
	f.Add([]byte{0, 0, 2, 0, 3, 0, 1, 0})
	f.Add([]byte{0, 0, 4, 1, 4, 1, 4, 2, 5, 1, 1, 0, 1, 0})
	f.Add([]byte{8, 0, 0, 0, 2, 0, 1, 0, 0, 0, 4, 3, 6, 0, 7, 2})
	names := []EventName{EventJoined, EventLeft, EventPublishStarted, EventPublishStopped, EventSubscribeStarted,
		EventSubscribeStopped, EventPublishError, EventSubscribeError, EventJoinError, "UNKNOWN"}
	remotes := []ParticipantID{"", "a", "b", "p", "c"} // p is the participant itself
	f.Fuzz(func(t *testing.T, data []byte) {
		var h History
		m := model{}
		for i := 0; i+1 < len(data); i += 2 {
			e := Event{Name: names[int(data[i])%len(names)], RemoteParticipantID: remotes[int(data[i+1])%len(remotes)]}
			if data[i]&0x80 == 0 || data[i+1]&0x80 != 0 { // some events do not name the participant
				e.ParticipantID = "p"
			}
			before := h
			checked := h.Check(e)
			err := h.Apply(e)
			if (checked == nil) != (err == nil) {
				t.Fatalf("event %d %+v: Check says %v, Apply %v", i/2, e, checked, err)
			}
			if ok := m.apply("p", e); ok != (err == nil) {
				t.Fatalf("event %d %+v from %s: Apply says %v, the model %v", i/2, e, before, err, ok)
			}
			if err != nil {
				if !errors.Is(err, ErrHistory) || !strings.Contains(err.Error(), string(e.Name)) {
					t.Fatalf("event %d %+v: error %v", i/2, e, err)
				}
				if !reflect.DeepEqual(h, before) {
					t.Fatalf("event %d %+v: refused, and the history changed from %+v to %+v", i/2, e, before, h)
				}
			}
			subs := h.Subscriptions()
			if h.Joined() != m.joined || h.Publishing() != m.publishing || len(subs) != len(m.subs) ||
				!slices.IsSorted(subs) {
				t.Fatalf("event %d: history %s, model %+v", i/2, h, m)
			}
			for _, r := range subs {
				if !m.subs[r] || !h.Subscribed(r) {
					t.Fatalf("event %d: history %s, model %+v", i/2, h, m)
				}
			}

			// The departure ends the participant, on a copy that leaves h alone.
			snap, d := h, h
			for _, e := range h.Departure() {
				e.ParticipantID = "p"
				if err := d.Apply(e); err != nil {
					t.Fatalf("event %d: departure from %s: %v", i/2, h, err)
				}
			}
			if d.Joined() || d.Publishing() || len(d.Subscriptions()) != 0 {
				t.Fatalf("event %d: after the departure from %s: %s", i/2, h, d)
			}
			if !reflect.DeepEqual(h, snap) {
				t.Fatalf("event %d: applying the departure to a copy changed the history: %+v, was %+v", i/2, h, snap)
			}
		}
	})
}
