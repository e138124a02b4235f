package stage

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/openstage/openstage/internal/ivs"
)

// The live state of a stage as its watchers (the events sockets) see it (docs/DESIGN.md §4.3, "a large
// stage"). Participants whose token can publish are listed, by id, to everyone; subscribe-only participants
// (the audience, up to 10,000 on one stage) are not listed to others, only counted. So a viewer joining or
// leaving changes no list and wakes no socket at once: the count reaches the sockets at most once per
// countInterval, and a join costs the same on a stage of 10,000 as on a stage of 10.
//
// One immutable snapshot of the listed participants is built per change, on demand, and shared by every
// reader; readers holding a Presence check its version without the stage lock.

// countInterval is how often, at most, a stage's watchers are woken because its count of unlisted
// participants changed, per countPer of them: one count costs a message to every socket, so a stage of
// 10,000 is told every 10 s and the count's bytes per second, and so per join, stay those of a stage of
// 1,000 (docs/BENCHMARKS.md, "The events protocol at 10,000").
const (
	countInterval = time.Second
	countPer      = 1000
)

// LiveParticipant is one connected participant as the stage's events socket shows it.
type LiveParticipant struct {
	ID         ivs.ParticipantID
	UserID     string
	Attributes map[string]string
	Publishing bool
	MediaState
}

// Snapshot is the listed participants of a stage at one version of its live state, in participant id
// order. It is shared by every reader: never modify it.
type Snapshot struct {
	Stage        ivs.StageID
	Version      uint64 // rises with every change of a listed participant; equal versions show the same state
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

// listedBy says whether a participant with these capabilities is listed to the others: whoever may
// publish. The web SDK's socket asks for the topic "<stageId>/publishers", and IVS counts the rest
// (aws:ivs:SUBSCRIBER_COUNT) rather than listing them (docs/DESIGN.md §4.3).
func listedBy(canPublish bool) bool { return canPublish }

// StageState returns the stage's current snapshot of listed participants.
func (s *Service) StageState(id ivs.StageID) *Snapshot {
	ls, err := s.lockLive(id)
	if err != nil {
		return &Snapshot{Stage: id}
	}
	defer s.unlock(ls, nil)
	return ls.snapshotLocked()
}

// snapshotLocked returns the snapshot at the stage's current version, building it if needed.
func (ls *liveStage) snapshotLocked() *Snapshot {
	v := ls.version.Load()
	if sn := ls.snap.Load(); sn != nil && sn.Version == v {
		return sn
	}
	out := make([]LiveParticipant, 0, len(ls.listed))
	for pid, lp := range ls.listed {
		out = append(out, lp.live(pid))
	}
	slices.SortFunc(out, func(a, b LiveParticipant) int { return strings.Compare(string(a.ID), string(b.ID)) })
	sn := &Snapshot{Stage: ls.id, Version: v, Participants: out}
	ls.snap.Store(sn)
	return sn
}

func (lp *liveParticipant) live(id ivs.ParticipantID) LiveParticipant {
	return LiveParticipant{ID: id, UserID: lp.userID, Attributes: lp.attributes, Publishing: lp.publishing(), MediaState: lp.media}
}

// View is what one connection's events socket shows: the listed participants, the connection's own
// participant (Self, which the stage state includes for its receiver whether listed or not) and how many
// connected participants are not listed.
type View struct {
	*Snapshot
	Self     LiveParticipant
	Listed   bool // Self is among Snapshot.Participants
	Unlisted int
}

// View returns what the connection's events socket shows now. An unchanged stage costs two atomic loads:
// the stage lock is taken only to build a new snapshot after a change of a listed participant.
func (pr *Presence) View() View {
	ls := pr.ls
	v := View{Self: pr.self, Listed: pr.listed, Unlisted: int(ls.unlisted.Load())}
	if sn := ls.snap.Load(); sn != nil && sn.Version == ls.version.Load() {
		v.Snapshot = sn
		return v
	}
	ls.mu.Lock()
	v.Snapshot = ls.snapshotLocked()
	ls.mu.Unlock()
	return v
}

// Watch returns a channel that receives (coalesced, never blocking the domain) after every change of the
// stage's listed participants (joins, leaves, publishes, media state) and, at most once per
// countInterval, after its count of unlisted participants changed. It is closed when ctx ends.
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

// changedLocked records a change of lp, one of the stage's participants: a listed participant's change
// moves the stage's state to a new version and wakes its watchers; an unlisted one's wakes nobody (its
// own socket shows what it knows of itself).
func (s *Service) changedLocked(ls *liveStage, lp *liveParticipant) {
	if !lp.listed {
		return
	}
	// From one counter for all stages: a stage forgotten and made again never repeats a version.
	ls.version.Store(s.versions.Add(1))
	s.wake(ls.id)
}

// countChangedLocked records that the stage's count of unlisted participants changed: its watchers are
// woken once the countInterval since the last such wake-up has passed, so a stream of viewers joining
// costs each socket one wake-up a second (fewer on a stage of thousands: countPer), not one per join.
func (s *Service) countChangedLocked(ls *liveStage) {
	if ls.countTimer != nil {
		return // a wake-up is due; it shows the count as it is then
	}
	interval := countInterval * time.Duration(max(1, ls.unlisted.Load()/countPer))
	delay := ls.countWoke.Add(interval).Sub(s.clock.Now())
	ls.countTimer = s.clock.AfterFunc(max(delay, 0), func() {
		if !s.enter() {
			return
		}
		defer s.timers.Done()
		ls.mu.Lock()
		ls.countTimer = nil
		ls.countWoke = s.clock.Now()
		ls.mu.Unlock()
		s.wake(ls.id)
	})
}

// wake wakes the stage's watchers. It takes s.mu, a leaf.
func (s *Service) wake(id ivs.StageID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.watchers[id] {
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
		for _, lp := range ls.listed {
			if lp.publishing() {
				publishers++
			}
		}
		ls.mu.Unlock()
	}
	return sessions, participants, publishers
}
