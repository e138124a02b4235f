package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/store"
)

// testEventHistories: a session's histories as the stage domain writes them (participants interleaved,
// several events of one instant, some appended in one transaction and some in several) read back in the
// order they were appended, and so in an order the grammar of ivs.History accepts. Ties in time are where
// this matters: a departure is recorded at one instant as SUBSCRIBE_STOPPED, PUBLISH_STOPPED, LEFT, and a
// list sorted by time then anything else (name, remote participant, row id of another table) breaks it.
func testEventHistories(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := insertStage(t, s, newStage(at(0)))
	sess := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: at(1)}
	update(t, s, func(tx store.Tx) error { return tx.InsertSession(ctx, sess) })

	// host publishes and watches guest; guest publishes and watches host; viewer watches both; refused is
	// turned away twice; rejoiner leaves and joins again at one instant; flapper starts and stops publishing
	// often enough that its history spans several pages.
	names := []string{"host", "guest", "viewer", "refused", "rejoiner", "flapper"}
	ids := map[string]ivs.ParticipantID{}
	for i, n := range names {
		p := newParticipant(st.ID, sess.ID, at(1))
		p.UserID = n
		if n == "refused" {
			p.State = ivs.StateDisconnected
			p.FirstJoinTime = at(3)
		} else if i > 0 {
			p.FirstJoinTime = at(1 + i%3)
		}
		ids[n] = p.ID
		update(t, s, func(tx store.Tx) error { return tx.PutParticipant(ctx, p) })
	}
	// ev parses "who NAME>remote:CODE" at second sec.
	ev := func(sec int, spec string) ivs.Event {
		who, rest, _ := strings.Cut(spec, " ")
		rest, code, _ := strings.Cut(rest, ":")
		name, remote, _ := strings.Cut(rest, ">")
		e := ivs.Event{StageID: st.ID, SessionID: sess.ID, ParticipantID: ids[who], Name: ivs.EventName(name), Time: at(sec),
			ErrorCode: ivs.ErrorCode(code)}
		if remote != "" {
			e.RemoteParticipantID = ids[remote]
			if e.RemoteParticipantID == "" {
				e.RemoteParticipantID = ivs.ParticipantID(remote) // someone who is not in the session
			}
		}
		return e
	}
	var flaps []string
	for range 40 {
		flaps = append(flaps, "flapper PUBLISH_STARTED", "flapper PUBLISH_ERROR:BITRATE_EXCEEDED", "flapper PUBLISH_STOPPED")
	}
	// Each batch is one transaction; every event of a batch has the batch's time.
	type batch struct {
		sec    int
		events []string
	}
	live := []batch{
		{1, []string{"host JOINED", "guest JOINED"}},
		{2, []string{"host PUBLISH_STARTED"}},
		{3, []string{"guest SUBSCRIBE_STARTED>host", "viewer JOINED", "viewer SUBSCRIBE_STARTED>host"}},
		{3, []string{"refused JOIN_ERROR:QUOTA_EXCEEDED"}},
		{3, []string{"flapper JOINED"}},
		{3, flaps},
		{4, []string{"guest PUBLISH_STARTED", "host SUBSCRIBE_STARTED>guest", "viewer SUBSCRIBE_STARTED>guest",
			"viewer SUBSCRIBE_ERROR>nobody:PUBLISHER_NOT_FOUND", "rejoiner JOINED"}},
		{5, []string{"rejoiner LEFT", "rejoiner JOINED", "refused JOIN_ERROR:QUOTA_EXCEEDED"}},
		{5, []string{"rejoiner SUBSCRIBE_STARTED>host", "flapper PUBLISH_STARTED"}},
	}
	// What stays open at the end of live, by participant.
	open := map[string][]string{
		"host":     {"host SUBSCRIBE_STOPPED>guest", "host PUBLISH_STOPPED", "host LEFT"},
		"guest":    {"guest SUBSCRIBE_STOPPED>host", "guest PUBLISH_STOPPED", "guest LEFT"},
		"viewer":   {"viewer SUBSCRIBE_STOPPED>guest", "viewer SUBSCRIBE_STOPPED>host", "viewer LEFT"},
		"rejoiner": {"rejoiner SUBSCRIBE_STOPPED>host", "rejoiner LEFT"},
		"flapper":  {"flapper PUBLISH_STOPPED", "flapper LEFT"},
	}
	ending := []batch{
		// host leaves: its subscription, then its publish with its subscribers' SUBSCRIBE_STOPPED, then LEFT.
		{6, []string{"host SUBSCRIBE_STOPPED>guest", "guest SUBSCRIBE_STOPPED>host", "viewer SUBSCRIBE_STOPPED>host",
			"rejoiner SUBSCRIBE_STOPPED>host", "host PUBLISH_STOPPED", "host LEFT"}},
		{7, []string{"guest PUBLISH_ERROR:BITRATE_EXCEEDED"}},
		{7, []string{"viewer SUBSCRIBE_STOPPED>guest", "guest PUBLISH_STOPPED", "guest LEFT"}},
		{8, []string{"viewer LEFT", "rejoiner LEFT", "flapper PUBLISH_STOPPED", "flapper LEFT"}},
	}

	appended := map[ivs.ParticipantID][]ivs.Event{}
	write := func(bs []batch) {
		for _, b := range bs {
			update(t, s, func(tx store.Tx) error {
				for _, spec := range b.events {
					e := ev(b.sec, spec)
					if err := tx.AppendEvent(ctx, &e); err != nil {
						return fmt.Errorf("%s: %w", spec, err)
					}
					appended[e.ParticipantID] = append(appended[e.ParticipantID], e)
				}
				return nil
			})
		}
	}
	// readBack compares every participant's events with what was appended, in pages that split the ties.
	readBack := func(when string) {
		t.Helper()
		for _, n := range names {
			want := appended[ids[n]]
			fetch := func(p store.Page) ([]ivs.Event, error) { return s.ListEvents(ctx, st.ID, sess.ID, ids[n], p) }
			for _, size := range []int{1, 2, 100} {
				got := walk(t, size, len(want), fetch, func(e ivs.Event) store.Cursor { return store.Cursor{Seq: e.Seq} })
				eqList(t, fmt.Sprintf("%s: %s's events in pages of %d", when, n, size), got, want, normEvent)
			}
		}
	}

	write(live)
	readBack("live")
	hs := ivstest.CheckHistories(t, s, st.ID, sess.ID, false)
	if len(hs) != len(names) {
		t.Fatalf("live: %d histories, want %d", len(hs), len(names))
	}
	for _, n := range names {
		h := hs[ids[n]]
		var got []string
		for _, e := range h.Departure() {
			e.ParticipantID = ids[n]
			got = append(got, ivstest.DomainEvent(e))
		}
		// The stops of subscriptions by remote participant id (random here), then of the publish, then LEFT.
		rank := map[ivs.EventName]int{ivs.EventSubscribeStopped: 0, ivs.EventPublishStopped: 1, ivs.EventLeft: 2}
		var wantEvs []ivs.Event
		for _, spec := range open[n] {
			wantEvs = append(wantEvs, ev(0, spec))
		}
		slices.SortFunc(wantEvs, func(a, b ivs.Event) int {
			return cmp.Or(cmp.Compare(rank[a.Name], rank[b.Name]), cmp.Compare(a.RemoteParticipantID, b.RemoteParticipantID))
		})
		var want []string
		for _, e := range wantEvs {
			want = append(want, ivstest.DomainEvent(e))
		}
		if !slices.Equal(got, want) {
			t.Errorf("live: %s is %s; its departure is %v, want %v", n, h, got, want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	write(ending)
	readBack("ended")
	hs = ivstest.CheckHistories(t, s, st.ID, sess.ID, true)
	if len(hs) != len(names) {
		t.Fatalf("ended: %d histories, want %d", len(hs), len(names))
	}
	if n := len(appended[ids["flapper"]]); n <= 2*50 {
		t.Fatalf("test setup: flapper's history (%d events) should span several pages", n)
	}
}
