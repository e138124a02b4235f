package ivstest

import (
	"testing"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// historyPage is how many rows CheckHistories reads at a time: small enough that a long history crosses
// pages, so that the pagination is checked with the grammar.
const historyPage = 50

// CheckHistories reads every participant of a stage session through r (every page of ListParticipants),
// and every event of each (every page of ListEvents), and checks each participant's events: they belong to
// that stage, session and participant, their Seq is 1, 2, 3, ... and they follow the grammar of
// ivs.History. With requireEnded, every participant must also end not joined (an ended session, or one
// that crash recovery closed). It reports what is wrong with t.Errorf, fails the test at once when the
// store does not answer, and returns each participant's history.
func CheckHistories(t testing.TB, r store.Reader, stage ivs.StageID, session ivs.SessionID, requireEnded bool) map[ivs.ParticipantID]ivs.History {
	t.Helper()
	out := map[ivs.ParticipantID]ivs.History{}
	p := store.Page{Limit: historyPage}
	for {
		parts, err := r.ListParticipants(t.Context(), stage, session, store.ParticipantFilter{}, p)
		if err != nil {
			t.Fatalf("list the participants of session %s of stage %s: %v", session, stage, err)
		}
		for _, part := range parts {
			if _, dup := out[part.ID]; dup {
				t.Fatalf("session %s of stage %s: participant %q listed twice", session, stage, part.ID)
			}
			out[part.ID] = CheckHistory(t, r, stage, session, part.ID, requireEnded)
		}
		if len(parts) < p.Limit {
			return out
		}
		last := parts[len(parts)-1]
		p.After = &store.Cursor{Time: last.FirstJoinTime, ID: string(last.ID)}
	}
}

// CheckHistory checks one participant's events as CheckHistories does, and returns its history.
func CheckHistory(t testing.TB, r store.Reader, stage ivs.StageID, session ivs.SessionID, participant ivs.ParticipantID,
	requireEnded bool) ivs.History {
	t.Helper()
	events := ParticipantEvents(t, r, stage, session, participant)
	for i, e := range events {
		if e.StageID != stage || e.SessionID != session || e.ParticipantID != participant {
			t.Errorf("participant %q of session %s: event %d (%s) is of stage %s, session %s, participant %q", participant,
				session, i+1, DomainEvent(e), e.StageID, e.SessionID, e.ParticipantID)
		}
		if e.Seq != int64(i+1) {
			t.Errorf("participant %q of session %s: event %d (%s) has Seq %d", participant, session, i+1, DomainEvent(e), e.Seq)
		}
	}
	h, err := ivs.ReplayHistory(events)
	if err != nil {
		t.Errorf("participant %q of session %s: %v\nhistory: %v", participant, session, err, historyString(events))
	} else if requireEnded && h.Joined() {
		t.Errorf("participant %q of session %s did not end: %s, and its departure (%v) was not recorded\nhistory: %v",
			participant, session, h, historyString(h.Departure()), historyString(events))
	}
	return h
}

// ParticipantEvents returns every event of a participant in a session, read through r in pages, in the
// order the store lists them.
func ParticipantEvents(t testing.TB, r store.Reader, stage ivs.StageID, session ivs.SessionID, participant ivs.ParticipantID) []ivs.Event {
	t.Helper()
	var out []ivs.Event
	p := store.Page{Limit: historyPage}
	for {
		page, err := r.ListEvents(t.Context(), stage, session, participant, p)
		if err != nil {
			t.Fatalf("list the events of participant %q of session %s: %v", participant, session, err)
		}
		for _, e := range page {
			if p.After != nil && e.Seq <= p.After.Seq {
				t.Fatalf("participant %q of session %s: the page after Seq %d holds Seq %d", participant, session, p.After.Seq, e.Seq)
			}
		}
		out = append(out, page...)
		if len(page) < p.Limit {
			return out
		}
		p.After = &store.Cursor{Seq: page[len(page)-1].Seq}
	}
}

// historyString writes events as DomainEvent does, one after the other.
func historyString(events []ivs.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = DomainEvent(e)
	}
	return out
}
