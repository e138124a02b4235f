package stage

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/openstage/openstage/internal/ivs"
)

// The live state of a stage as its watchers (the events sockets) see it. One immutable snapshot is built
// per change, on demand, and shared by every reader: a change costs O(N log N) once, not once per socket.

// LiveParticipant is one connected participant as the stage's events socket shows it.
type LiveParticipant struct {
	ID         ivs.ParticipantID
	UserID     string
	Attributes map[string]string
	Publishing bool
	MediaState
}

// Snapshot is who is connected to a stage at one version of its live state, in participant id order.
// It is shared by every reader: never modify it.
type Snapshot struct {
	Stage        ivs.StageID
	Version      uint64 // rises with every change; equal versions show the same state
	Participants []LiveParticipant

	encOnce sync.Once
	enc     []byte
}

// Encoded returns encode(sn), computed once however many readers ask: the transport that sends snapshots
// (the events socket) encodes each only once. Every caller must pass the same encoding.
func (sn *Snapshot) Encoded(encode func(*Snapshot) []byte) []byte {
	sn.encOnce.Do(func() { sn.enc = encode(sn) })
	return sn.enc
}

// StageState returns the stage's current snapshot.
func (s *Service) StageState(id ivs.StageID) *Snapshot {
	ls, err := s.lockLive(id)
	if err != nil {
		return &Snapshot{Stage: id}
	}
	defer s.unlock(ls, nil)
	if ls.snap != nil && ls.snap.Version == ls.version {
		return ls.snap
	}
	out := make([]LiveParticipant, 0, len(ls.parts))
	for pid, lp := range ls.parts {
		out = append(out, LiveParticipant{ID: pid, UserID: lp.userID, Attributes: lp.attributes, Publishing: lp.publishing(), MediaState: lp.media})
	}
	slices.SortFunc(out, func(a, b LiveParticipant) int { return strings.Compare(string(a.ID), string(b.ID)) })
	ls.snap = &Snapshot{Stage: id, Version: ls.version, Participants: out}
	return ls.snap
}

// Watch returns a channel that receives (coalesced, never blocking the domain) after every change of the
// stage's live state: joins, leaves, publishes, media state. It is closed when ctx ends.
func (s *Service) Watch(ctx context.Context, id ivs.StageID) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	if s.watchers[id] == nil {
		s.watchers[id] = map[chan struct{}]struct{}{}
	}
	s.watchers[id][ch] = struct{}{}
	s.mu.Unlock()
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		delete(s.watchers[id], ch)
		if len(s.watchers[id]) == 0 {
			delete(s.watchers, id)
		}
		s.mu.Unlock()
		close(ch)
	})
	return ch
}

// notifyLocked moves the stage's state to a new version and wakes its watchers. It takes s.mu, a leaf.
func (s *Service) notifyLocked(ls *liveStage) {
	// From one counter for all stages: a stage forgotten and made again never repeats a version.
	ls.version = s.versions.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.watchers[ls.id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// LiveCounts is what is live on this node now: stages with a session, connected participants, publishers.
func (s *Service) LiveCounts() (sessions, participants, publishers int) {
	s.mu.Lock()
	stages := make([]*liveStage, 0, len(s.live))
	for _, ls := range s.live {
		stages = append(stages, ls)
	}
	s.mu.Unlock()
	for _, ls := range stages {
		ls.mu.Lock()
		if ls.session != "" {
			sessions++
		}
		participants += len(ls.parts)
		for _, lp := range ls.parts {
			if lp.publishing() {
				publishers++
			}
		}
		ls.mu.Unlock()
	}
	return sessions, participants, publishers
}
