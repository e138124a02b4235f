package stage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openstage/openstage/internal/clock"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/token"
)

// Presence: who is connected to a stage, through which connections (docs/DESIGN.md §5, §9).
//
// Lock order (docs/DESIGN.md §9): liveStage.mu, then Service.mu or MediaSession.mu (leaves: never held
// while taking another lock). liveStage.mu is held across the store transaction of a change, so that one
// stage's events are stored in the order they happen and memory never runs ahead of the store. Functions
// named ...Locked expect liveStage.mu held. No media call (which may call back into the domain) and no
// OnClose runs under liveStage.mu: they are collected as closers and run after the unlock.

// liveStage is the in-memory state of a stage with a session on this node.
type liveStage struct {
	mu       sync.Mutex
	id       ivs.StageID
	session  ivs.SessionID // active session, "" when none
	parts    map[ivs.ParticipantID]*liveParticipant
	endTimer clock.Timer
	gone     bool // removed from Service.live; lockers must look it up again

	// What the events sockets show (snapshot.go). listed are the participants listed to everyone; the
	// others are counted in unlisted. version and snap are written under mu and read without it.
	listed     map[ivs.ParticipantID]*liveParticipant
	version    atomic.Uint64            // bumped by every change of a listed participant (changedLocked)
	snap       atomic.Pointer[Snapshot] // the listed participants at some version, built on demand
	unlisted   atomic.Int64
	countTimer clock.Timer // a wake-up for a changed count is due (countChangedLocked)
	countWoke  time.Time   // the last such wake-up
}

// liveParticipant is one connected participant: its connections and what it is doing. Each activity
// belongs to the connection that carries it, so that a connection ending (displaced, closed, failed)
// ends exactly its own activity.
type liveParticipant struct {
	conns      map[*Presence]struct{}
	caps       token.Capabilities
	userID     string
	attributes map[string]string
	publisher  *Presence // the connection whose media is published; nil when not publishing
	media      MediaState
	subs       map[ivs.ParticipantID]*Presence // publishers it receives, each through one connection
	client     ivs.ClientInfo                  // what its stored record says of its client
	hist       ivs.History                     // where its stored history stands (history.go)
	listed     bool                            // shown to the others by id (snapshot.go), else counted
}

func (lp *liveParticipant) publishing() bool { return lp.publisher != nil }

// ConnKind is what a connection is for. A token holds at most one connection of each kind (one per
// publisher for subscriptions); a newer one displaces the older (docs/DESIGN.md §3: the token used
// elsewhere wins).
type ConnKind string

const (
	ConnEvents    ConnKind = "events"
	ConnPublish   ConnKind = "publish"
	ConnSubscribe ConnKind = "subscribe"
	ConnOther     ConnKind = "" // never displaces (tests, tools)
)

// CloseReason says why the domain closes a connection. The values are the IVS SDK's reasons.
type CloseReason string

const (
	CloseTokenReused  CloseReason = "TOKEN_REUSED"
	CloseDisconnected CloseReason = "PARTICIPANT_DISCONNECTED"
	CloseStageDeleted CloseReason = "STAGE_DELETED"
	CloseShutdown     CloseReason = "SERVER_SHUTDOWN"
)

// Presence is one live connection of a participant (an events socket, a publish, a subscription). The
// participant is JOINED with its first presence and LEFT when its last one leaves.
type Presence struct {
	s       *Service
	Stage   ivs.StageID
	ID      ivs.ParticipantID
	Session ivs.SessionID
	kind    ConnKind
	remote  ivs.ParticipantID
	onClose func(CloseReason)
	media   *MediaSession // the media the domain negotiated for this connection; nil for others

	// For View: the stage it joined, and its participant as its own socket shows it.
	ls     *liveStage
	self   LiveParticipant
	listed bool
}

// JoinRequest is a verified token plus what the transport learned about the client and how to close
// the connection when the domain ends it.
type JoinRequest struct {
	Claims token.Claims
	Client ivs.ClientInfo
	Kind   ConnKind
	Remote ivs.ParticipantID // the publisher, for ConnSubscribe
	// OnClose is called (never under a domain lock) when the domain ends this connection: the token was
	// used again for the same kind, DisconnectParticipant, DeleteStage, or shutdown. It must not block.
	OnClose func(CloseReason)

	media *MediaSession // set by Publish and Subscribe
}

// closer is a deferred OnClose call.
type closer struct {
	pr     *Presence
	reason CloseReason
}

func runClosers(cs []closer) {
	for _, c := range cs {
		if c.pr.media != nil {
			c.pr.media.closeMedia()
		}
		if c.pr.onClose != nil {
			c.pr.onClose(c.reason)
		}
	}
}

// lockLive returns the stage's live state, locked.
func (s *Service) lockLive(id ivs.StageID) (*liveStage, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrShutdown
		}
		ls := s.live[id]
		if ls == nil {
			ls = &liveStage{id: id, parts: map[ivs.ParticipantID]*liveParticipant{}, listed: map[ivs.ParticipantID]*liveParticipant{}}
			s.live[id] = ls
		}
		s.mu.Unlock()
		ls.mu.Lock()
		if !ls.gone {
			return ls, nil
		}
		ls.mu.Unlock()
	}
}

// forgetLocked drops an idle stage from memory.
func (s *Service) forgetLocked(ls *liveStage) {
	if len(ls.parts) > 0 || ls.session != "" {
		return
	}
	ls.gone = true
	s.mu.Lock()
	if s.live[ls.id] == ls {
		delete(s.live, ls.id)
	}
	s.mu.Unlock()
}

// unlock forgets the stage if it is idle, releases it, then runs the closers collected under the lock.
func (s *Service) unlock(ls *liveStage, cs []closer) {
	s.forgetLocked(ls)
	ls.mu.Unlock()
	runClosers(cs)
}

// Authenticate verifies a participant token for a join: signature and claims, then that its stage exists
// and that DisconnectParticipant has not barred it. Errors are *token.Error, ErrStageNotFound or ErrRevoked.
func (s *Service) Authenticate(ctx context.Context, raw string) (token.Claims, error) {
	c, err := s.verifier.Verify(ctx, raw)
	if err != nil {
		return token.Claims{}, err
	}
	id, ok := s.cfg.Account.StageIDFromARN(c.Resource)
	if !ok || string(id) != c.Topic {
		return token.Claims{}, fmt.Errorf("%w: %s", ErrStageNotFound, c.Resource)
	}
	if _, err := s.store.GetStage(ctx, id); err != nil {
		return token.Claims{}, notFound(err, ErrStageNotFound, c.Resource)
	}
	revoked, err := s.store.Revoked(ctx, id, ivs.ParticipantID(c.ParticipantID))
	if err != nil {
		return token.Claims{}, err
	}
	if revoked {
		return token.Claims{}, ErrRevoked
	}
	return c, nil
}

// Join adds a connection for the token's participant. The first connection makes the participant
// CONNECTED with a JOINED event, starting a stage session when none is active. A connection of the same
// kind (and, for subscriptions, the same publisher) that the participant already holds is displaced: its
// activity ends (PUBLISH_STOPPED, SUBSCRIBE_STOPPED) and it is closed with TOKEN_REUSED.
func (s *Service) Join(ctx context.Context, req JoinRequest) (*Presence, error) {
	stageID := ivs.StageID(req.Claims.Topic)
	pid := ivs.ParticipantID(req.Claims.ParticipantID)
	ls, err := s.lockLive(stageID)
	if err != nil {
		return nil, err
	}
	var displaced []closer
	defer func() { s.unlock(ls, displaced) }()

	revoked, err := s.store.Revoked(ctx, stageID, pid)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, ErrRevoked
	}
	pr := &Presence{s: s, Stage: stageID, ID: pid, kind: req.Kind, remote: req.Remote, onClose: req.OnClose, media: req.media, ls: ls}
	if lp := ls.parts[pid]; lp != nil {
		pr.self, pr.listed = lp.live(pid), lp.listed
		if req.Kind != ConnOther {
			for old := range lp.conns {
				if old.kind != req.Kind || old.remote != req.Remote {
					continue
				}
				delete(lp.conns, old)
				displaced = append(displaced, closer{old, CloseTokenReused})
				if err := s.endActivityLocked(ctx, ls, lp, old); err != nil {
					return nil, err
				}
			}
		}
		pr.Session = ls.session
		lp.conns[pr] = struct{}{}
		s.learnClientLocked(ctx, ls, pid, lp, req.Client)
		return pr, nil
	}
	if n := len(ls.parts); n >= s.cfg.Quotas.SubscribersPerStage {
		if ls.session != "" {
			s.recordRefusalLocked(ctx, ls, pid, req, ivs.EventJoinError, ivs.ErrQuotaExceeded)
		}
		return nil, fmt.Errorf("%w: the stage has %d participants, its limit", ErrQuotaExceeded, n)
	}

	var session ivs.SessionID
	var client ivs.ClientInfo
	w, err := s.update(ctx, ls, func(w *writer) error {
		st, err := w.LockStage(ctx, stageID)
		if err != nil {
			return notFound(err, ErrStageNotFound, string(stageID))
		}
		if session, err = s.ensureSessionTx(ctx, w.Tx, st); err != nil {
			return err
		}
		client, err = s.joinParticipantTx(w, stageID, session, pid, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	if ls.endTimer != nil {
		ls.endTimer.Stop()
		ls.endTimer = nil
	}
	ls.session = session
	pr.Session = session
	lp := &liveParticipant{
		conns:      map[*Presence]struct{}{pr: {}},
		caps:       req.Claims.Capabilities,
		userID:     req.Claims.UserID,
		attributes: nonNil(req.Claims.Attributes),
		subs:       map[ivs.ParticipantID]*Presence{},
		client:     client,
		hist:       w.hist[histKey{stageID, session, pid}],
		listed:     listedBy(req.Claims.Capabilities.AllowPublish),
	}
	ls.parts[pid] = lp
	pr.self, pr.listed = lp.live(pid), lp.listed
	if lp.listed {
		ls.listed[pid] = lp
		s.changedLocked(ls, lp)
	} else {
		ls.unlisted.Add(1)
		s.countChangedLocked(ls)
	}
	return pr, nil
}

// fillClient completes what is known of a participant's client with what a later connection tells. The
// IVS web SDK, and openstage's own browser client, connect the events socket first, and a browser can put
// no header on a WebSocket: their sdkVersion (X-Stages-SDK) and their protocol (WHIP) only come with the
// first publish or subscribe (docs/DESIGN.md §4, "fill the field in late"). Known values are never
// replaced: one participant is one client. It reports whether anything was added.
func fillClient(have, more ivs.ClientInfo) (ivs.ClientInfo, bool) {
	out := have
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&out.ISPName, more.ISPName}, {&out.OSName, more.OSName}, {&out.OSVersion, more.OSVersion},
		{&out.BrowserName, more.BrowserName}, {&out.BrowserVersion, more.BrowserVersion}, {&out.SDKVersion, more.SDKVersion},
	} {
		if *f.dst == "" {
			*f.dst = f.v
		}
	}
	if (out.Protocol == "" || out.Protocol == ivs.ProtocolUnknown) && more.Protocol != "" {
		out.Protocol = more.Protocol
	}
	if out.Protocol == "" {
		out.Protocol = ivs.ProtocolUnknown
	}
	return out, out != have
}

// learnClientLocked records what a further connection of a live participant adds to its client info. A
// failure to store it costs only those fields, not the connection, so it is logged and the join goes on.
func (s *Service) learnClientLocked(ctx context.Context, ls *liveStage, pid ivs.ParticipantID, lp *liveParticipant, more ivs.ClientInfo) {
	merged, changed := fillClient(lp.client, more)
	if !changed {
		return
	}
	err := s.store.Update(ctx, func(tx store.Tx) error {
		p, err := tx.GetParticipant(ctx, ls.id, ls.session, pid)
		if err != nil {
			return err
		}
		p.Client, _ = fillClient(p.Client, more)
		merged = p.Client
		return tx.PutParticipant(ctx, p)
	})
	if err != nil {
		s.log.WarnContext(ctx, "stage: record client info", "stage", ls.id, "participant", pid, "err", err)
		return
	}
	lp.client = merged
}

// joinParticipantTx makes or reuses the participant record and appends JOINED. firstJoinTime is set once;
// published stays as it was (it is sticky for the session); the client info is completed (fillClient). It
// returns the client info recorded. A record still CONNECTED is a participant that has not left in the
// history (another writer's connection, or a crash not yet recovered): it is ended first, so that the
// history never holds two JOINED in a row.
func (s *Service) joinParticipantTx(w *writer, stageID ivs.StageID, session ivs.SessionID, pid ivs.ParticipantID, req JoinRequest) (ivs.ClientInfo, error) {
	ctx, now := w.ctx, s.now()
	p, err := w.GetParticipant(ctx, stageID, session, pid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p = ivs.Participant{
			StageID: stageID, SessionID: session, ID: pid, UserID: req.Claims.UserID,
			FirstJoinTime: now, Attributes: nonNil(req.Claims.Attributes),
		}
		w.hist[histKey{stageID, session, pid}] = ivs.History{} // no record, so no events to replay
	case err != nil:
		return ivs.ClientInfo{}, err
	case p.State == ivs.StateConnected:
		if err := s.endStoredTx(w, p, now); err != nil {
			return ivs.ClientInfo{}, err
		}
	}
	p.Client, _ = fillClient(p.Client, req.Client)
	p.State = ivs.StateConnected
	if err := w.PutParticipant(ctx, p); err != nil {
		return ivs.ClientInfo{}, err
	}
	return p.Client, w.event(ivs.Event{StageID: stageID, SessionID: session, ParticipantID: pid, Name: ivs.EventJoined, Time: now})
}

// recordRefusalLocked records an error event for a participant who is not (or no longer) connected,
// creating its record in the session as DISCONNECTED if it has none. ls.session must be set.
func (s *Service) recordRefusalLocked(ctx context.Context, ls *liveStage, pid ivs.ParticipantID, req JoinRequest, name ivs.EventName, code ivs.ErrorCode) {
	_, err := s.update(ctx, ls, func(w *writer) error {
		now := s.now()
		p, err := w.GetParticipant(ctx, ls.id, ls.session, pid)
		if errors.Is(err, store.ErrNotFound) {
			p = ivs.Participant{StageID: ls.id, SessionID: ls.session, ID: pid, UserID: req.Claims.UserID,
				State: ivs.StateDisconnected, FirstJoinTime: now, Attributes: nonNil(req.Claims.Attributes), Client: req.Client}
			if p.Client.Protocol == "" {
				p.Client.Protocol = ivs.ProtocolUnknown
			}
			if err := w.PutParticipant(ctx, p); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		return w.live(pid, name, now, "", code)
	})
	if err != nil {
		s.log.ErrorContext(ctx, "record refusal", "stage", ls.id, "participant", pid, "event", name, "err", err)
	}
}

// Leave ends this connection and whatever it carried (its publish, its subscription). The participant's
// last connection leaving makes it DISCONNECTED with LEFT. Leave is idempotent.
func (pr *Presence) Leave(ctx context.Context) error {
	s := pr.s
	ls, err := s.lockLive(pr.Stage)
	if err != nil {
		return nil // shut down: Shutdown already recorded everyone as gone
	}
	var cs []closer
	defer func() { s.unlock(ls, cs) }()
	lp := ls.parts[pr.ID]
	if lp == nil {
		return nil
	}
	if _, ok := lp.conns[pr]; !ok {
		return nil
	}
	delete(lp.conns, pr)
	if len(lp.conns) > 0 {
		return s.endActivityLocked(ctx, ls, lp, pr)
	}
	cs, err = s.departLocked(ctx, ls, pr.ID, "")
	return err
}

// endActivityLocked records the end of what connection pr carried: PUBLISH_STOPPED (with SUBSCRIBE_STOPPED
// for everyone receiving it) if it was the participant's publishing connection, SUBSCRIBE_STOPPED for the
// subscription it carried. pr must already be out of lp.conns.
func (s *Service) endActivityLocked(ctx context.Context, ls *liveStage, lp *liveParticipant, pr *Presence) error {
	var remotes []ivs.ParticipantID
	for remote, via := range lp.subs {
		if via == pr {
			remotes = append(remotes, remote)
		}
	}
	publishing := lp.publisher == pr
	if !publishing && len(remotes) == 0 {
		return nil
	}
	_, err := s.update(ctx, ls, func(w *writer) error {
		now := s.now()
		for _, remote := range remotes {
			if err := w.live(pr.ID, ivs.EventSubscribeStopped, now, remote, ""); err != nil {
				return err
			}
		}
		if publishing {
			return s.stopPublishTx(w, pr.ID, now)
		}
		return nil
	})
	// The connection is gone whether or not the store took the record: memory follows reality.
	for _, remote := range remotes {
		delete(lp.subs, remote)
	}
	if publishing {
		s.dropPublisherLocked(ls, pr.ID)
	}
	if err != nil {
		return fmt.Errorf("stage: record the end of %s's %s connection: %w", pr.ID, pr.kind, err)
	}
	return nil
}

// departLocked records a participant's leaving: the stops of what it was doing, DISCONNECTED and LEFT,
// then schedules the session's end if it was the last one. Connections it still had are returned as
// closers with reason, for the caller to run once it has unlocked.
func (s *Service) departLocked(ctx context.Context, ls *liveStage, pid ivs.ParticipantID, reason CloseReason) ([]closer, error) {
	lp := ls.parts[pid]
	if lp == nil {
		return nil, nil
	}
	_, err := s.update(ctx, ls, func(w *writer) error {
		now := s.now()
		p, err := w.GetParticipant(ctx, ls.id, ls.session, pid)
		if err != nil {
			return err
		}
		if p.State != ivs.StateConnected {
			// Another writer has already ended this participant in the store (its LEFT is written): a
			// second LEFT would contradict the history.
			s.log.WarnContext(ctx, "stage: participant already recorded as gone", "stage", ls.id, "participant", pid)
			return nil
		}
		for _, remote := range sortedKeys(lp.subs) {
			if err := w.live(pid, ivs.EventSubscribeStopped, now, remote, ""); err != nil {
				return err
			}
		}
		if lp.publishing() {
			if err := s.stopPublishTx(w, pid, now); err != nil {
				return err
			}
		}
		p.State = ivs.StateDisconnected
		if err := w.PutParticipant(ctx, p); err != nil {
			return err
		}
		return w.live(pid, ivs.EventLeft, now, "", "")
	})
	if lp.publishing() {
		s.dropPublisherLocked(ls, pid)
	}
	delete(ls.parts, pid)
	if lp.listed {
		delete(ls.listed, pid)
		s.changedLocked(ls, lp)
	} else {
		ls.unlisted.Add(-1)
		s.countChangedLocked(ls)
	}
	cs := make([]closer, 0, len(lp.conns))
	for pr := range lp.conns {
		delete(lp.conns, pr)
		cs = append(cs, closer{pr, reason})
	}
	if len(ls.parts) == 0 && ls.session != "" {
		s.scheduleEndLocked(ls)
	}
	if err != nil {
		return cs, fmt.Errorf("stage: record leave of %s: %w", pid, err)
	}
	return cs, nil
}

// DisconnectParticipant bars a participant id from the stage (its token never joins again) and, if it is
// connected, records it as gone and closes its connections.
func (s *Service) DisconnectParticipant(ctx context.Context, stageARN string, pid ivs.ParticipantID, reason string) error {
	id, err := s.stageID(stageARN)
	if err != nil {
		return err
	}
	// Where the participant's connections are: on another node, it is that node that disconnects it.
	peer, release, err := s.place(ctx, id)
	if err != nil {
		return notFound(err, ErrStageNotFound, stageARN)
	}
	defer release()
	if peer != nil {
		return peer.DisconnectParticipant(ctx, stageARN, pid, reason)
	}
	ls, err := s.lockLive(id)
	if err != nil {
		return err
	}
	err = s.store.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.LockStage(ctx, id); err != nil {
			return notFound(err, ErrStageNotFound, stageARN)
		}
		return tx.Revoke(ctx, id, pid)
	})
	var derr error
	var cs []closer
	connected := ls.parts[pid] != nil
	if err == nil && connected {
		cs, derr = s.departLocked(ctx, ls, pid, CloseDisconnected)
	}
	s.unlock(ls, cs)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "participant disconnected", "stage", id, "participant", pid, "reason", reason, "was_connected", connected)
	return derr
}

func sortedKeys[V any](m map[ivs.ParticipantID]V) []ivs.ParticipantID {
	out := make([]ivs.ParticipantID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slicesSort(out)
	return out
}
