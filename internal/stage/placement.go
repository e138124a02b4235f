package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// Several nodes on one store (docs/DESIGN.md §6.2): a stage's live state — presence, STAGE_STATE, its media —
// lives on one node, its owner. The transports reach the owner before they call the domain (internal/cluster
// forwards them), so the domain itself only has to (1) send the two API operations that act on live state,
// DisconnectParticipant and DeleteStage, to the owner when it is another node, and (2) end what a gone owner
// left in the store when this node takes a stage over (Adopt).

// Placement says where a stage's live state is. Nil (one node) means here, always.
type Placement interface {
	// Place makes sure a live node holds the stage, claiming it for this node if none does. It returns the
	// Peer to call when another node holds it, nil when this node does; release ends the caller's use of
	// the stage (the node keeps a stage it uses) and must be called whatever Place returned, unless err.
	Place(ctx context.Context, id ivs.StageID) (peer Peer, release func(), err error)
}

// Peer is another node, holding a stage's live state: the operations that take effect there.
type Peer interface {
	DisconnectParticipant(ctx context.Context, stageARN string, pid ivs.ParticipantID, reason string) error
	DeleteStage(ctx context.Context, stageARN string) error
}

// SetPlacement makes the service part of a cluster (call it before serving).
func (s *Service) SetPlacement(p Placement) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.placement = p
}

// place is Placement.Place, or "here" without a placement.
func (s *Service) place(ctx context.Context, id ivs.StageID) (Peer, func(), error) {
	s.mu.Lock()
	p := s.placement
	s.mu.Unlock()
	if p == nil {
		return nil, func() {}, nil
	}
	return p.Place(ctx, id)
}

// Holds reports whether this node has live state for the stage (participants, or a session in its grace
// window): while it does, the node must keep the stage's lease.
func (s *Service) Holds(id ivs.StageID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[id] != nil
}

// Held lists the stages this node has live state for.
func (s *Service) Held() []ivs.StageID {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]ivs.StageID, 0, len(s.live))
	for id := range s.live {
		ids = append(ids, id)
	}
	return ids
}

// Adopt makes this node's view of the stage the only one, when it holds no live state for it: the
// participants the store shows CONNECTED in the stage's active session were held by a node that is gone (a
// dead node, or this one before a crash), so they get the events that end them (as crash recovery writes
// them) and become DISCONNECTED, and the session ends. A node calls it when it takes a stage over, before
// anyone joins there. With live state here it does nothing: those participants are this node's own. The
// stage's recordings left unfinished by a recorder of another process end as FAILED too. It returns how many
// participants it ended.
func (s *Service) Adopt(ctx context.Context, id ivs.StageID) (int, error) {
	ls, err := s.lockLive(id)
	if err != nil {
		return 0, err
	}
	defer s.unlock(ls, nil)
	if ls.session != "" || len(ls.parts) > 0 {
		return 0, nil
	}
	// Recordings the gone holder left unfinished (one in its reconnect window may outlive the session).
	if _, err := s.endOrphanRecordings(ctx, id); err != nil {
		return 0, err
	}
	st, err := s.store.GetStage(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && st.ActiveSessionID == "") {
		return 0, nil // deleted, or nothing open
	}
	if err != nil {
		return 0, err
	}
	ended := 0
	connected := store.ParticipantFilter{State: ivs.StateConnected}
	for {
		// Each pass ends a page of them; the filter then no longer finds those.
		parts, err := s.store.ListParticipants(ctx, id, st.ActiveSessionID, connected, store.Page{Limit: 100})
		if err != nil {
			return ended, err
		}
		if len(parts) == 0 {
			break
		}
		_, err = s.update(ctx, nil, func(w *writer) error {
			if _, err := w.LockStage(ctx, id); err != nil {
				return err
			}
			for _, p := range parts {
				p, err := w.GetParticipant(ctx, p.StageID, p.SessionID, p.ID)
				if err != nil {
					return err
				}
				if p.State == ivs.StateConnected {
					if err := s.endStoredTx(w, p, s.now()); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return ended, fmt.Errorf("stage: adopt %s: %w", id, err)
		}
		ended += len(parts)
	}
	err = s.store.Update(ctx, func(tx store.Tx) error { return s.endSessionTx(ctx, tx, id, st.ActiveSessionID) })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return ended, err
	}
	s.log.InfoContext(ctx, "stage taken over: ended what its previous holder left", slog.String("stage", string(id)),
		slog.String("session", string(st.ActiveSessionID)), slog.Int("participants", ended))
	return ended, nil
}

// Evict ends the stage's live state on this node as a shutdown does (LEFT for everyone, the session ended,
// connections closed): for a node that can no longer prove it owns the stage.
func (s *Service) Evict(ctx context.Context, id ivs.StageID) error {
	return s.evictStage(ctx, id, CloseShutdown, nil)
}
