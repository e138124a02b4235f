package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// Ending stages and participants without their connections' help: DeleteStage, graceful shutdown, and
// crash recovery. Each writes the same history a participant leaving by itself writes (docs/DESIGN.md §5):
// SUBSCRIBE_STOPPED for each open subscription, PUBLISH_STOPPED if publishing, then LEFT.

// evictStage records everyone on the stage as gone, ends its session at once, runs then (if not nil) while
// still holding the stage, and closes their connections with reason.
func (s *Service) evictStage(ctx context.Context, id ivs.StageID, reason CloseReason, then func() error) error {
	ls, err := s.lockLive(id)
	if err != nil {
		return err
	}
	var cs []closer
	var errs []error
	for _, pid := range sortedKeys(ls.parts) {
		c, err := s.departLocked(ctx, ls, pid, reason)
		cs = append(cs, c...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.endSessionLocked(ctx, ls); err != nil {
		errs = append(errs, err)
	}
	if then != nil && len(errs) == 0 {
		if err := then(); err != nil {
			errs = append(errs, err)
		}
	}
	s.unlock(ls, cs)
	return errors.Join(errs...)
}

// Shutdown is the graceful stop: every participant is recorded as LEFT and disconnected, every open
// session is ended, and timers stop. The store stays open for the caller to close.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	ids := make([]ivs.StageID, 0, len(s.live))
	for id := range s.live {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := s.evictStage(ctx, id, CloseShutdown, nil); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	s.closed = true // from here lockLive fails, so no new holder of a liveStage appears
	rest := make([]*liveStage, 0, len(s.live))
	for _, ls := range s.live {
		rest = append(rest, ls)
	}
	s.mu.Unlock()
	for _, ls := range rest {
		ls.mu.Lock()
		if ls.endTimer != nil {
			ls.endTimer.Stop()
		}
		ls.mu.Unlock()
	}
	s.timers.Wait()
	s.closing.Wait()
	// The publishes have ended (closing them above detached their recordings): every recording of this
	// node, reconnect windows included, ends now with its files complete.
	s.stopRecordings()
	s.closing.Wait()
	return errors.Join(errs...)
}

// Recover repairs what a crash left: participants still CONNECTED get the events that end them as their
// history stands (SUBSCRIBE_STOPPED, PUBLISH_STOPPED, LEFT) and become DISCONNECTED, and sessions still open
// are ended. Call it at start, before serving.
func (s *Service) Recover(ctx context.Context) error {
	// First the recordings, while their participants still show how far they got.
	recs, err := s.recoverRecordings(ctx)
	if err != nil {
		return err
	}
	if recs > 0 {
		s.log.Info("recovered recordings a stop interrupted: now FAILED, their playlists complete", slog.Int("recordings", recs))
	}
	parts, err := s.store.ConnectedParticipants(ctx)
	if err != nil {
		return err
	}
	for _, p := range parts {
		_, err := s.update(ctx, nil, func(w *writer) error {
			p, err := w.GetParticipant(ctx, p.StageID, p.SessionID, p.ID)
			if err != nil || p.State != ivs.StateConnected {
				return err
			}
			return s.endStoredTx(w, p, s.now())
		})
		if err != nil {
			return fmt.Errorf("stage: recover participant %s: %w", p.ID, err)
		}
	}
	sessions, err := s.store.ActiveSessions(ctx)
	if err != nil {
		return err
	}
	for _, sess := range sessions {
		if err := s.store.Update(ctx, func(tx store.Tx) error { return s.endSessionTx(ctx, tx, sess.StageID, sess.ID) }); err != nil {
			return fmt.Errorf("stage: recover session %s: %w", sess.ID, err)
		}
	}
	if len(parts) > 0 || len(sessions) > 0 {
		s.log.Info("recovered from an unclean stop", slog.Int("participants", len(parts)), slog.Int("sessions", len(sessions)))
	}
	return nil
}

// endStoredTx ends a participant the store shows CONNECTED but no connection of this node holds: it
// appends what its stored history still has open, then LEFT, and marks it DISCONNECTED.
func (s *Service) endStoredTx(w *writer, p ivs.Participant, at time.Time) error {
	h, err := storedHistory(w.ctx, w.Tx, p.StageID, p.SessionID, p.ID)
	if err != nil {
		return err
	}
	for _, e := range h.Departure() {
		e.StageID, e.SessionID, e.ParticipantID, e.Time = p.StageID, p.SessionID, p.ID, at
		if err := w.event(e); err != nil {
			return err
		}
	}
	p.State = ivs.StateDisconnected
	if err := w.PutParticipant(w.ctx, p); err != nil {
		return err
	}
	if p.Recording.State.Unfinished() {
		// A recording a gone node left (Adopt; Recover has finished these already): it will write no more.
		rs := p.Recording
		rs.State = ivs.RecordingFailed
		if err := w.SetParticipantRecording(w.ctx, p.StageID, p.SessionID, p.ID, rs); err != nil {
			return err
		}
		s.spawn(func() { s.finishRecording(p.Recording) })
	}
	return nil
}
