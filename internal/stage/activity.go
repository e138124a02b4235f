package stage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/openstage/openstage/internal/ivs"
)

// Media activity: publishing and subscribing, each carried by one connection (docs/DESIGN.md §5). The
// domain's own media sessions (media.go) call these when their media connects and ends; tests and tools
// may call them on a presence of their own.

// withParticipant runs fn with the stage locked and pr's participant, if pr is still one of its
// connections (ErrNotJoined otherwise). Closers fn returns run after the unlock.
func (s *Service) withParticipant(pr *Presence, fn func(ls *liveStage, lp *liveParticipant) ([]closer, error)) error {
	ls, err := s.lockLive(pr.Stage)
	if err != nil {
		return err
	}
	var cs []closer
	defer func() { s.unlock(ls, cs) }()
	lp := ls.parts[pr.ID]
	if lp == nil {
		return ErrNotJoined
	}
	if _, ok := lp.conns[pr]; !ok {
		return ErrNotJoined
	}
	cs, err = fn(ls, lp)
	return err
}

// eventLocked stores one event of a participant of the live stage in a transaction of its own.
func (s *Service) eventLocked(ctx context.Context, ls *liveStage, pid ivs.ParticipantID, name ivs.EventName, remote ivs.ParticipantID, code ivs.ErrorCode) error {
	_, err := s.update(ctx, ls, func(w *writer) error { return w.live(pid, name, s.now(), remote, code) })
	return err
}

// refuseLocked records an error event and returns err.
func (s *Service) refuseLocked(ctx context.Context, ls *liveStage, pid ivs.ParticipantID, name ivs.EventName, remote ivs.ParticipantID, code ivs.ErrorCode, err error) error {
	if rerr := s.eventLocked(ctx, ls, pid, name, remote, code); rerr != nil {
		return fmt.Errorf("stage: record %s: %w", name, rerr)
	}
	return err
}

// stopPublishTx appends a SUBSCRIBE_STOPPED for each of the publisher's subscribers, then its
// PUBLISH_STOPPED.
func (s *Service) stopPublishTx(w *writer, pid ivs.ParticipantID, at time.Time) error {
	for _, sub := range sortedKeys(w.ls.parts) {
		if _, ok := w.ls.parts[sub].subs[pid]; ok && sub != pid {
			if err := w.live(sub, ivs.EventSubscribeStopped, at, pid, ""); err != nil {
				return err
			}
		}
	}
	return w.live(pid, ivs.EventPublishStopped, at, "", "")
}

// dropPublisherLocked forgets that pid publishes, and everyone's subscription to it.
func (s *Service) dropPublisherLocked(ls *liveStage, pid ivs.ParticipantID) {
	for _, sp := range ls.parts {
		delete(sp.subs, pid)
	}
	if lp := ls.parts[pid]; lp != nil {
		lp.publisher = nil
		s.changedLocked(ls, lp)
	}
}

// CheckPublish refuses, with a PUBLISH_ERROR event, a publish the token or the stage's quota does not
// allow. Publish calls it before it answers an offer; StartPublish checks again when media flows.
func (s *Service) CheckPublish(ctx context.Context, pr *Presence) error {
	return s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) ([]closer, error) {
		return nil, s.checkPublishLocked(ctx, ls, lp, pr.ID)
	})
}

func (s *Service) checkPublishLocked(ctx context.Context, ls *liveStage, lp *liveParticipant, pid ivs.ParticipantID) error {
	if !lp.caps.AllowPublish {
		return s.refuseLocked(ctx, ls, pid, ivs.EventPublishError, "", ivs.ErrInsufficientCapabilities, ErrInsufficientCapabilities)
	}
	if lp.publishing() {
		return nil // a new publishing connection takes the place of the old: no new publisher for the quota
	}
	n := 0
	for _, p := range ls.parts {
		if p.publishing() {
			n++
		}
	}
	if n >= s.cfg.Quotas.PublishersPerStage {
		return s.refuseLocked(ctx, ls, pid, ivs.EventPublishError, "", ivs.ErrQuotaExceeded,
			fmt.Errorf("%w: the stage has %d publishers, its limit", ErrQuotaExceeded, n))
	}
	return nil
}

// StartPublish records PUBLISH_STARTED when the media of connection pr connects, or PUBLISH_ERROR when
// its token lacks PUBLISH or the stage has its quota of publishers. If another connection of the
// participant was publishing, its publish ends first (PUBLISH_STOPPED): the newest publish wins.
func (s *Service) StartPublish(ctx context.Context, pr *Presence) error {
	return s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) ([]closer, error) {
		if lp.publisher == pr {
			return nil, nil
		}
		var cs []closer
		if old := lp.publisher; old != nil {
			delete(lp.conns, old)
			cs = append(cs, closer{old, CloseTokenReused})
			if err := s.endActivityLocked(ctx, ls, lp, old); err != nil {
				return cs, err
			}
		}
		if err := s.checkPublishLocked(ctx, ls, lp, pr.ID); err != nil {
			return cs, err
		}
		_, err := s.update(ctx, ls, func(w *writer) error {
			p, err := w.GetParticipant(ctx, ls.id, ls.session, pr.ID)
			if err != nil {
				return err
			}
			if !p.Published {
				p.Published = true
				if err := w.PutParticipant(ctx, p); err != nil {
					return err
				}
			}
			return w.live(pr.ID, ivs.EventPublishStarted, s.now(), "", "")
		})
		if err != nil {
			return cs, err
		}
		lp.publisher = pr
		s.changedLocked(ls, lp)
		return cs, nil
	})
}

// StopPublish records PUBLISH_STOPPED, and SUBSCRIBE_STOPPED for everyone who was receiving it, if
// connection pr is the participant's publishing one. A connection already gone had its stop recorded
// when it went.
func (s *Service) StopPublish(ctx context.Context, pr *Presence) error {
	err := s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) ([]closer, error) {
		if lp.publisher != pr {
			return nil, nil
		}
		_, err := s.update(ctx, ls, func(w *writer) error { return s.stopPublishTx(w, pr.ID, s.now()) })
		if err != nil {
			return nil, err
		}
		s.dropPublisherLocked(ls, pr.ID)
		return nil, nil
	})
	if errors.Is(err, ErrNotJoined) {
		return nil
	}
	return err
}

// Publishing reports whether a participant is publishing on the stage now.
func (s *Service) Publishing(id ivs.StageID, pid ivs.ParticipantID) bool {
	ls, err := s.lockLive(id)
	if err != nil {
		return false
	}
	defer s.unlock(ls, nil)
	lp := ls.parts[pid]
	return lp != nil && lp.publishing()
}

// CheckSubscribe refuses, with a SUBSCRIBE_ERROR event, a subscription the token does not allow, to a
// participant who is not publishing, or over the stage's subscriber quota.
func (s *Service) CheckSubscribe(ctx context.Context, pr *Presence, remote ivs.ParticipantID) error {
	return s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) ([]closer, error) {
		_, err := s.checkSubscribeLocked(ctx, ls, lp, pr.ID, remote)
		return nil, err
	})
}

// checkSubscribeLocked returns the publisher's publishing connection when pid may subscribe to remote.
func (s *Service) checkSubscribeLocked(ctx context.Context, ls *liveStage, lp *liveParticipant, pid, remote ivs.ParticipantID) (*Presence, error) {
	if !lp.caps.AllowSubscribe {
		return nil, s.refuseLocked(ctx, ls, pid, ivs.EventSubscribeError, remote, ivs.ErrInsufficientCapabilities, ErrInsufficientCapabilities)
	}
	rp := ls.parts[remote]
	if rp == nil || !rp.publishing() || remote == pid {
		return nil, s.refuseLocked(ctx, ls, pid, ivs.EventSubscribeError, remote, ivs.ErrPublisherNotFound,
			fmt.Errorf("%w: %s", ErrPublisherNotFound, remote))
	}
	if len(lp.subs) > 0 {
		return rp.publisher, nil // already a subscriber: no new subscriber for the quota
	}
	n := 0
	for _, p := range ls.parts {
		if len(p.subs) > 0 {
			n++
		}
	}
	if n >= s.cfg.Quotas.SubscribersPerStage {
		return nil, s.refuseLocked(ctx, ls, pid, ivs.EventSubscribeError, remote, ivs.ErrQuotaExceeded,
			fmt.Errorf("%w: the stage has %d subscribers, its limit", ErrQuotaExceeded, n))
	}
	return rp.publisher, nil
}

// StartSubscribe records SUBSCRIBE_STARTED to remote when the media of connection pr connects, or
// SUBSCRIBE_ERROR as CheckSubscribe does. Another connection of the participant receiving remote ends
// first (SUBSCRIBE_STOPPED): the newest subscription wins.
func (s *Service) StartSubscribe(ctx context.Context, pr *Presence, remote ivs.ParticipantID) error {
	return s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) ([]closer, error) {
		if _, err := s.checkSubscribeLocked(ctx, ls, lp, pr.ID, remote); err != nil {
			return nil, err
		}
		via, ok := lp.subs[remote]
		if via == pr {
			return nil, nil
		}
		var cs []closer
		if ok {
			delete(lp.conns, via)
			cs = append(cs, closer{via, CloseTokenReused})
			if err := s.endActivityLocked(ctx, ls, lp, via); err != nil {
				return cs, err
			}
		}
		if err := s.eventLocked(ctx, ls, pr.ID, ivs.EventSubscribeStarted, remote, ""); err != nil {
			return cs, err
		}
		lp.subs[remote] = pr
		return cs, nil
	})
}

// StopSubscribe records SUBSCRIBE_STOPPED (once) for connection pr's subscription to remote.
func (s *Service) StopSubscribe(ctx context.Context, pr *Presence, remote ivs.ParticipantID) error {
	err := s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) ([]closer, error) {
		if lp.subs[remote] != pr {
			return nil, nil
		}
		if err := s.eventLocked(ctx, ls, pr.ID, ivs.EventSubscribeStopped, remote, ""); err != nil {
			return nil, err
		}
		delete(lp.subs, remote)
		return nil, nil
	})
	if errors.Is(err, ErrNotJoined) {
		return nil
	}
	return err
}

// RecordError records a PUBLISH_ERROR or SUBSCRIBE_ERROR found by the media plane (a media policy code).
func (s *Service) RecordError(ctx context.Context, pr *Presence, name ivs.EventName, code ivs.ErrorCode, remote ivs.ParticipantID) error {
	if name != ivs.EventPublishError && name != ivs.EventSubscribeError {
		return fmt.Errorf("stage: %s is not an error event of a joined participant", name)
	}
	return s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) ([]closer, error) {
		return nil, s.eventLocked(ctx, ls, pr.ID, name, remote, code)
	})
}

// MediaState is what a participant says of its own media (the IVS SDK's SET_STATE): shown to the others
// in the stage state, never stored.
type MediaState struct {
	AudioMuted   bool
	VideoStopped bool
}

// SetMediaState records a participant's mute state and tells the stage's watchers.
func (s *Service) SetMediaState(pr *Presence, m MediaState) error {
	return s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) ([]closer, error) {
		if lp.media != m {
			lp.media = m
			s.changedLocked(ls, lp)
		}
		return nil, nil
	})
}

func slicesSort(ids []ivs.ParticipantID) {
	slices.SortFunc(ids, func(a, b ivs.ParticipantID) int { return strings.Compare(string(a), string(b)) })
}
