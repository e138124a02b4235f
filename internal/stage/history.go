package stage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/notify"
	"github.com/openstage/openstage/internal/store"
)

// The domain never writes a participant history that contradicts itself (docs/DESIGN.md §5): every event
// it appends, on every path (join, leave, publish, subscribe, disconnect, shutdown, crash recovery), is
// checked against the grammar of the participant's history (ivs.History) before it is written. A live
// participant's history is kept in memory beside its connections; any other's is replayed from the store.
// A participant whose stored record another writer has ended (another node, a recovery) takes no event
// but a new JOINED.

// writer is one store transaction of the domain's, with its appends checked.
type writer struct {
	store.Tx
	ctx  context.Context
	ls   *liveStage // the stage the caller holds, nil for recovery
	hist map[histKey]ivs.History
}

type histKey struct {
	stage   ivs.StageID
	session ivs.SessionID
	pid     ivs.ParticipantID
}

// update runs fn in a transaction. Once it commits, the live participants' histories move past what it
// appended; the writer is returned for callers that make a live participant out of it (Join).
func (s *Service) update(ctx context.Context, ls *liveStage, fn func(w *writer) error) (*writer, error) {
	var w *writer
	err := s.store.Update(ctx, func(tx store.Tx) error {
		w = &writer{Tx: tx, ctx: ctx, ls: ls, hist: map[histKey]ivs.History{}}
		return fn(w)
	})
	if err != nil {
		return nil, err
	}
	if ls != nil {
		for k, h := range w.hist {
			if lp := ls.parts[k.pid]; lp != nil && k.stage == ls.id && k.session == ls.session {
				lp.hist = h
			}
		}
	}
	return w, nil
}

// history returns where the participant's history stands in this transaction.
func (w *writer) history(k histKey) (ivs.History, error) {
	if h, ok := w.hist[k]; ok {
		return h, nil
	}
	if w.ls != nil && w.ls.id == k.stage && w.ls.session == k.session {
		if lp := w.ls.parts[k.pid]; lp != nil {
			// Memory is this node's view; the record says whether another writer has ended it since.
			p, err := w.GetParticipant(w.ctx, k.stage, k.session, k.pid)
			if err != nil {
				return ivs.History{}, err
			}
			if p.State != ivs.StateConnected {
				return storedHistory(w.ctx, w.Tx, k.stage, k.session, k.pid)
			}
			return lp.hist, nil
		}
	}
	return storedHistory(w.ctx, w.Tx, k.stage, k.session, k.pid)
}

// event appends e if the participant's history allows it, and refuses it (an error wrapping
// ivs.ErrHistory) if not.
func (w *writer) event(e ivs.Event) error {
	k := histKey{e.StageID, e.SessionID, e.ParticipantID}
	h, err := w.history(k)
	if err != nil {
		return err
	}
	if err := h.Apply(e); err != nil {
		return fmt.Errorf("stage: refusing to record %s for %s: %w", e.Name, e.ParticipantID, err)
	}
	if err := w.AppendEvent(w.ctx, &e); err != nil {
		return err
	}
	if err := w.notify(e); err != nil {
		return err
	}
	w.hist[k] = h
	return nil
}

// notify appends e's notification in the same transaction (docs/DESIGN.md §5.6): the webhooks and the
// event stream see exactly the events that were stored.
func (w *writer) notify(e ivs.Event) error {
	var userID string
	if lp := w.liveParticipant(e); lp != nil {
		userID = lp.userID
	} else if p, err := w.GetParticipant(w.ctx, e.StageID, e.SessionID, e.ParticipantID); err == nil {
		userID = p.UserID
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	n, err := notify.FromEvent(e, userID)
	if err != nil {
		return err
	}
	return w.AppendNotification(w.ctx, n)
}

// liveParticipant returns e's participant if it is live on the writer's stage.
func (w *writer) liveParticipant(e ivs.Event) *liveParticipant {
	if w.ls == nil || w.ls.id != e.StageID || w.ls.session != e.SessionID {
		return nil
	}
	return w.ls.parts[e.ParticipantID]
}

// live appends an event of a participant of the writer's stage, in its active session.
func (w *writer) live(pid ivs.ParticipantID, name ivs.EventName, at time.Time, remote ivs.ParticipantID, code ivs.ErrorCode) error {
	return w.event(ivs.Event{StageID: w.ls.id, SessionID: w.ls.session, ParticipantID: pid, Name: name, Time: at,
		RemoteParticipantID: remote, ErrorCode: code})
}

// storedHistory replays a participant's stored events. A history written before the domain checked them
// may not follow the grammar: it is replayed leniently, keeping what applies, which still tells what the
// participant opened last.
func storedHistory(ctx context.Context, r store.Reader, stage ivs.StageID, session ivs.SessionID, pid ivs.ParticipantID) (ivs.History, error) {
	var h ivs.History
	page := store.Page{Limit: 500}
	for {
		evs, err := r.ListEvents(ctx, stage, session, pid, page)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return h, nil
			}
			return h, err
		}
		for _, e := range evs {
			_ = h.Apply(e)
		}
		if len(evs) < page.Limit {
			return h, nil
		}
		page.After = &store.Cursor{Seq: evs[len(evs)-1].Seq}
	}
}
