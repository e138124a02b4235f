package stage

import (
	"context"
	"errors"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/notify"
	"github.com/openstage/openstage/internal/store"
)

// Stage sessions: one begins with the first join on a stage that has none and ends when the last
// participant has been gone for the grace window (docs/DESIGN.md §5).

// ensureSessionTx returns the stage's active session, starting one when there is none.
func (s *Service) ensureSessionTx(ctx context.Context, tx store.Tx, st ivs.Stage) (ivs.SessionID, error) {
	if st.ActiveSessionID != "" {
		return st.ActiveSessionID, nil
	}
	sess := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: s.now()}
	if err := tx.InsertSession(ctx, sess); err != nil {
		return "", err
	}
	if err := tx.AppendNotification(ctx, notify.FromSession(notify.KindSessionStarted, st.ID, sess.ID, sess.StartTime)); err != nil {
		return "", err
	}
	st.ActiveSessionID = sess.ID
	if err := tx.UpdateStage(ctx, st); err != nil {
		return "", err
	}
	return sess.ID, nil
}

// scheduleEndLocked ends the session after the grace window unless someone joins first.
func (s *Service) scheduleEndLocked(ls *liveStage) {
	if ls.endTimer != nil {
		ls.endTimer.Stop()
	}
	session := ls.session
	ls.endTimer = s.clock.AfterFunc(s.cfg.SessionEndGrace, func() {
		if !s.enter() {
			return
		}
		defer s.timers.Done()
		s.endSessionIfIdle(context.Background(), ls.id, session)
	})
}

// enter registers a timer callback as running; it fails once the service is closed.
func (s *Service) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.timers.Add(1)
	return true
}

func (s *Service) endSessionIfIdle(ctx context.Context, id ivs.StageID, session ivs.SessionID) {
	ls, err := s.lockLive(id)
	if err != nil {
		return
	}
	defer s.unlock(ls, nil)
	if len(ls.parts) > 0 || ls.session != session {
		return
	}
	if err := s.endSessionLocked(ctx, ls); err != nil {
		s.log.Error("end stage session", "stage", id, "session", session, "err", err)
	}
}

// endSessionLocked sets the session's endTime and clears the stage's activeSessionId.
func (s *Service) endSessionLocked(ctx context.Context, ls *liveStage) error {
	if ls.endTimer != nil {
		ls.endTimer.Stop()
		ls.endTimer = nil
	}
	session := ls.session
	if session == "" {
		return nil
	}
	err := s.store.Update(ctx, func(tx store.Tx) error { return s.endSessionTx(ctx, tx, ls.id, session) })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	ls.session = ""
	return nil
}

func (s *Service) endSessionTx(ctx context.Context, tx store.Tx, stageID ivs.StageID, session ivs.SessionID) error {
	sess, err := tx.GetSession(ctx, stageID, session)
	if err != nil {
		return err
	}
	if sess.Active() {
		sess.EndTime = s.now()
		if err := tx.UpdateSession(ctx, sess); err != nil {
			return err
		}
		if err := tx.AppendNotification(ctx, notify.FromSession(notify.KindSessionEnded, stageID, session, sess.EndTime)); err != nil {
			return err
		}
	}
	st, err := tx.LockStage(ctx, stageID)
	if err != nil {
		return err
	}
	if st.ActiveSessionID == session {
		st.ActiveSessionID = ""
		return tx.UpdateStage(ctx, st)
	}
	return nil
}
