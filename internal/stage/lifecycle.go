package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/openstage/openstage/internal/clock"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/token"
)

// Lock order: liveStage.mu, then Service.mu (a leaf, never held while taking another lock). liveStage.mu is
// held across the store transaction of a change so that one stage's events are stored in the order they
// happen and memory never runs ahead of the store.

// liveStage is the in-memory state of a stage with a session on this node.
type liveStage struct {
	mu       sync.Mutex
	id       ivs.StageID
	session  ivs.SessionID // active session, "" when none
	parts    map[ivs.ParticipantID]*liveParticipant
	endTimer clock.Timer
	gone     bool // removed from Service.live; lockers must look it up again
}

// liveParticipant is one connected participant: its connections and what it is doing.
type liveParticipant struct {
	conns      map[*Presence]struct{}
	caps       token.Capabilities
	userID     string
	attributes map[string]string
	publishing bool
	media      MediaState
	subs       map[ivs.ParticipantID]struct{} // publishers it subscribes to
	client     ivs.ClientInfo                 // what its stored record says of its client
}

// ConnKind is what a connection is for. A token holds at most one connection of each kind (one per
// publisher for subscriptions); a newer one displaces the older (SPEC §3: the token used elsewhere wins).
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
}

// closer is a deferred OnClose call.
type closer struct {
	pr     *Presence
	reason CloseReason
}

func runClosers(cs []closer) {
	for _, c := range cs {
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
			return nil, errors.New("stage: service is shut down")
		}
		ls := s.live[id]
		if ls == nil {
			ls = &liveStage{id: id, parts: map[ivs.ParticipantID]*liveParticipant{}}
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

// forget drops an idle stage from memory. Caller holds ls.mu.
func (s *Service) forget(ls *liveStage) {
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
// CONNECTED with a JOINED event, starting a stage session when none is active.
func (s *Service) Join(ctx context.Context, req JoinRequest) (*Presence, error) {
	stageID := ivs.StageID(req.Claims.Topic)
	pid := ivs.ParticipantID(req.Claims.ParticipantID)
	ls, err := s.lockLive(stageID)
	if err != nil {
		return nil, err
	}
	var displaced []closer
	defer func() { runClosers(displaced) }() // after the unlock below: deferred calls run last-in first-out
	defer ls.mu.Unlock()
	defer s.forget(ls)

	revoked, err := s.store.Revoked(ctx, stageID, pid)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, ErrRevoked
	}
	pr := &Presence{s: s, Stage: stageID, ID: pid, kind: req.Kind, remote: req.Remote, onClose: req.OnClose}
	if lp := ls.parts[pid]; lp != nil {
		if req.Kind != ConnOther {
			for old := range lp.conns {
				if old.kind == req.Kind && old.remote == req.Remote {
					delete(lp.conns, old)
					displaced = append(displaced, closer{old, CloseTokenReused})
				}
			}
		}
		pr.Session = ls.session
		lp.conns[pr] = struct{}{}
		s.learnClient(ctx, ls, pid, lp, req.Client)
		return pr, nil
	}
	if n := len(ls.parts); n >= s.cfg.Quotas.SubscribersPerStage {
		if ls.session != "" {
			s.recordRefusal(ctx, ls, pid, req, ivs.EventJoinError, ivs.ErrQuotaExceeded)
		}
		return nil, fmt.Errorf("%w: the stage has %d participants, its limit", ErrQuotaExceeded, n)
	}

	var session ivs.SessionID
	var client ivs.ClientInfo
	err = s.store.Update(ctx, func(tx store.Tx) error {
		st, err := tx.LockStage(ctx, stageID)
		if err != nil {
			return notFound(err, ErrStageNotFound, string(stageID))
		}
		if session, err = s.ensureSession(ctx, tx, st); err != nil {
			return err
		}
		client, err = s.joinParticipant(ctx, tx, stageID, session, pid, req)
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
	ls.parts[pid] = &liveParticipant{
		conns:      map[*Presence]struct{}{pr: {}},
		caps:       req.Claims.Capabilities,
		userID:     req.Claims.UserID,
		attributes: nonNil(req.Claims.Attributes),
		subs:       map[ivs.ParticipantID]struct{}{},
		client:     client,
	}
	s.notify(stageID)
	return pr, nil
}

// fillClient completes what is known of a participant's client with what a later connection tells. The
// IVS web SDK, and openstage's own browser client, connect the events socket first, and a browser can put
// no header on a WebSocket: their sdkVersion (X-Stages-SDK) and their protocol (WHIP) only come with the
// first publish or subscribe (reference/ivs-web-sdk-protocol.md §4, "fill the field in late"). Known values
// are never replaced: one participant is one client. It reports whether anything was added.
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

// learnClient records what a further connection of a live participant adds to its client info. A failure
// to store it costs only those fields, not the connection, so it is logged and the join goes on. Caller
// holds ls.mu.
func (s *Service) learnClient(ctx context.Context, ls *liveStage, pid ivs.ParticipantID, lp *liveParticipant, more ivs.ClientInfo) {
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

// ensureSession returns the stage's active session, starting one when there is none.
func (s *Service) ensureSession(ctx context.Context, tx store.Tx, st ivs.Stage) (ivs.SessionID, error) {
	if st.ActiveSessionID != "" {
		return st.ActiveSessionID, nil
	}
	sess := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: s.now()}
	if err := tx.InsertSession(ctx, sess); err != nil {
		return "", err
	}
	st.ActiveSessionID = sess.ID
	if err := tx.UpdateStage(ctx, st); err != nil {
		return "", err
	}
	return sess.ID, nil
}

// joinParticipant makes or reuses the participant record and appends JOINED. firstJoinTime is set once;
// published stays as it was (it is sticky for the session); the client info is completed (fillClient). It
// returns the client info recorded.
func (s *Service) joinParticipant(ctx context.Context, tx store.Tx, stageID ivs.StageID, session ivs.SessionID, pid ivs.ParticipantID, req JoinRequest) (ivs.ClientInfo, error) {
	now := s.now()
	p, err := tx.GetParticipant(ctx, stageID, session, pid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p = ivs.Participant{
			StageID: stageID, SessionID: session, ID: pid, UserID: req.Claims.UserID,
			FirstJoinTime: now, Attributes: nonNil(req.Claims.Attributes),
		}
	case err != nil:
		return ivs.ClientInfo{}, err
	}
	p.Client, _ = fillClient(p.Client, req.Client)
	p.State = ivs.StateConnected
	if err := tx.PutParticipant(ctx, p); err != nil {
		return ivs.ClientInfo{}, err
	}
	return p.Client, tx.AppendEvent(ctx, &ivs.Event{StageID: stageID, SessionID: session, ParticipantID: pid, Name: ivs.EventJoined, Time: now})
}

// recordRefusal records an error event for a participant who is not (or no longer) connected, creating
// its record in the session as DISCONNECTED if it has none. Caller holds ls.mu and ls.session != "".
func (s *Service) recordRefusal(ctx context.Context, ls *liveStage, pid ivs.ParticipantID, req JoinRequest, name ivs.EventName, code ivs.ErrorCode) {
	err := s.store.Update(ctx, func(tx store.Tx) error {
		now := s.now()
		p, err := tx.GetParticipant(ctx, ls.id, ls.session, pid)
		if errors.Is(err, store.ErrNotFound) {
			p = ivs.Participant{StageID: ls.id, SessionID: ls.session, ID: pid, UserID: req.Claims.UserID,
				State: ivs.StateDisconnected, FirstJoinTime: now, Attributes: nonNil(req.Claims.Attributes), Client: req.Client}
			if p.Client.Protocol == "" {
				p.Client.Protocol = ivs.ProtocolUnknown
			}
			if err := tx.PutParticipant(ctx, p); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		return tx.AppendEvent(ctx, &ivs.Event{StageID: ls.id, SessionID: ls.session, ParticipantID: pid, Name: name, Time: now, ErrorCode: code})
	})
	if err != nil {
		s.log.ErrorContext(ctx, "record refusal", "stage", ls.id, "participant", pid, "event", name, "err", err)
	}
}

// Leave ends this connection. The participant's last connection leaving makes it DISCONNECTED with LEFT
// (after PUBLISH_STOPPED and SUBSCRIBE_STOPPED for whatever it was still doing). Leave is idempotent.
func (pr *Presence) Leave(ctx context.Context) error {
	s := pr.s
	ls, err := s.lockLive(pr.Stage)
	if err != nil {
		return nil // shut down: Shutdown already recorded everyone as gone
	}
	defer ls.mu.Unlock()
	defer s.forget(ls)
	lp := ls.parts[pr.ID]
	if lp == nil {
		return nil
	}
	if _, ok := lp.conns[pr]; !ok {
		return nil
	}
	delete(lp.conns, pr)
	if len(lp.conns) > 0 {
		return nil
	}
	_, err = s.depart(ctx, ls, pr.ID, "")
	return err
}

// depart records a participant's leaving: the stops of what it was doing, DISCONNECTED and LEFT, then
// schedules the session's end if it was the last one. Connections it still had are returned as closers
// with reason, for the caller to run once it has unlocked. Caller holds ls.mu.
func (s *Service) depart(ctx context.Context, ls *liveStage, pid ivs.ParticipantID, reason CloseReason) ([]closer, error) {
	lp := ls.parts[pid]
	if lp == nil {
		return nil, nil
	}
	err := s.store.Update(ctx, func(tx store.Tx) error {
		now := s.now()
		ev := func(p ivs.ParticipantID, name ivs.EventName, remote ivs.ParticipantID) error {
			return tx.AppendEvent(ctx, &ivs.Event{StageID: ls.id, SessionID: ls.session, ParticipantID: p, Name: name, Time: now, RemoteParticipantID: remote})
		}
		for remote := range lp.subs {
			if err := ev(pid, ivs.EventSubscribeStopped, remote); err != nil {
				return err
			}
		}
		if lp.publishing {
			if err := s.stopPublishTx(ctx, tx, ls, pid, ev); err != nil {
				return err
			}
		}
		p, err := tx.GetParticipant(ctx, ls.id, ls.session, pid)
		if err != nil {
			return err
		}
		p.State = ivs.StateDisconnected
		if err := tx.PutParticipant(ctx, p); err != nil {
			return err
		}
		return ev(pid, ivs.EventLeft, "")
	})
	// The connection is gone whether or not the store took the record: memory follows reality.
	if lp.publishing {
		s.dropSubscribersOf(ls, pid)
	}
	delete(ls.parts, pid)
	var cs []closer
	for pr := range lp.conns {
		delete(lp.conns, pr)
		cs = append(cs, closer{pr, reason})
	}
	if len(ls.parts) == 0 && ls.session != "" {
		s.scheduleEnd(ls)
	}
	s.notify(ls.id)
	if err != nil {
		return cs, fmt.Errorf("stage: record leave of %s: %w", pid, err)
	}
	return cs, nil
}

// stopPublishTx appends PUBLISH_STOPPED and a SUBSCRIBE_STOPPED for each of the publisher's subscribers.
func (s *Service) stopPublishTx(ctx context.Context, tx store.Tx, ls *liveStage, pid ivs.ParticipantID, ev func(ivs.ParticipantID, ivs.EventName, ivs.ParticipantID) error) error {
	for sub, sp := range ls.parts {
		if _, ok := sp.subs[pid]; ok && sub != pid {
			if err := ev(sub, ivs.EventSubscribeStopped, pid); err != nil {
				return err
			}
		}
	}
	return ev(pid, ivs.EventPublishStopped, "")
}

func (s *Service) dropSubscribersOf(ls *liveStage, pid ivs.ParticipantID) {
	for _, sp := range ls.parts {
		delete(sp.subs, pid)
	}
	if lp := ls.parts[pid]; lp != nil {
		lp.publishing = false
	}
}

// scheduleEnd ends the session after the grace window unless someone joins first. Caller holds ls.mu.
func (s *Service) scheduleEnd(ls *liveStage) {
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
	defer ls.mu.Unlock()
	defer s.forget(ls)
	if len(ls.parts) > 0 || ls.session != session {
		return
	}
	if err := s.endSession(ctx, ls); err != nil {
		s.log.Error("end stage session", "stage", id, "session", session, "err", err)
	}
}

// endSession sets the session's endTime and clears the stage's activeSessionId. Caller holds ls.mu.
func (s *Service) endSession(ctx context.Context, ls *liveStage) error {
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

// Media activity. Each call names the connection it comes from.

func (s *Service) withParticipant(pr *Presence, fn func(ls *liveStage, lp *liveParticipant) error) error {
	ls, err := s.lockLive(pr.Stage)
	if err != nil {
		return err
	}
	defer ls.mu.Unlock()
	defer s.forget(ls)
	lp := ls.parts[pr.ID]
	if lp == nil {
		return ErrNotJoined
	}
	if _, ok := lp.conns[pr]; !ok {
		return ErrNotJoined
	}
	return fn(ls, lp)
}

func (s *Service) event(ctx context.Context, ls *liveStage, pid ivs.ParticipantID, name ivs.EventName, remote ivs.ParticipantID, code ivs.ErrorCode) error {
	return s.store.Update(ctx, func(tx store.Tx) error {
		return tx.AppendEvent(ctx, &ivs.Event{StageID: ls.id, SessionID: ls.session, ParticipantID: pid, Name: name, Time: s.now(), RemoteParticipantID: remote, ErrorCode: code})
	})
}

// refuse records an error event and returns err.
func (s *Service) refuse(ctx context.Context, ls *liveStage, pid ivs.ParticipantID, name ivs.EventName, remote ivs.ParticipantID, code ivs.ErrorCode, err error) error {
	if rerr := s.event(ctx, ls, pid, name, remote, code); rerr != nil {
		return fmt.Errorf("stage: record %s: %w", name, rerr)
	}
	return err
}

// CheckPublish refuses, with a PUBLISH_ERROR event, a publish the token or the stage's quota does not
// allow. The media plane calls it before it answers an offer; StartPublish checks again when media flows.
func (s *Service) CheckPublish(ctx context.Context, pr *Presence) error {
	return s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) error {
		return s.checkPublish(ctx, ls, lp, pr.ID)
	})
}

func (s *Service) checkPublish(ctx context.Context, ls *liveStage, lp *liveParticipant, pid ivs.ParticipantID) error {
	if !lp.caps.AllowPublish {
		return s.refuse(ctx, ls, pid, ivs.EventPublishError, "", ivs.ErrInsufficientCapabilities, ErrInsufficientCapabilities)
	}
	if lp.publishing {
		return nil
	}
	n := 0
	for _, p := range ls.parts {
		if p.publishing {
			n++
		}
	}
	if n >= s.cfg.Quotas.PublishersPerStage {
		return s.refuse(ctx, ls, pid, ivs.EventPublishError, "", ivs.ErrQuotaExceeded,
			fmt.Errorf("%w: the stage has %d publishers, its limit", ErrQuotaExceeded, n))
	}
	return nil
}

// StartPublish records PUBLISH_STARTED when the publisher's media connects, or PUBLISH_ERROR when its
// token lacks PUBLISH or the stage has its quota of publishers.
func (s *Service) StartPublish(ctx context.Context, pr *Presence) error {
	return s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) error {
		if err := s.checkPublish(ctx, ls, lp, pr.ID); err != nil || lp.publishing {
			return err
		}
		err := s.store.Update(ctx, func(tx store.Tx) error {
			p, err := tx.GetParticipant(ctx, ls.id, ls.session, pr.ID)
			if err != nil {
				return err
			}
			if !p.Published {
				p.Published = true
				if err := tx.PutParticipant(ctx, p); err != nil {
					return err
				}
			}
			return tx.AppendEvent(ctx, &ivs.Event{StageID: ls.id, SessionID: ls.session, ParticipantID: pr.ID, Name: ivs.EventPublishStarted, Time: s.now()})
		})
		if err != nil {
			return err
		}
		lp.publishing = true
		s.notify(ls.id)
		return nil
	})
}

// StopPublish records PUBLISH_STOPPED, and SUBSCRIBE_STOPPED for everyone who was receiving it.
func (s *Service) StopPublish(ctx context.Context, pr *Presence) error {
	err := s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) error {
		if !lp.publishing {
			return nil
		}
		err := s.store.Update(ctx, func(tx store.Tx) error {
			now := s.now()
			return s.stopPublishTx(ctx, tx, ls, pr.ID, func(p ivs.ParticipantID, name ivs.EventName, remote ivs.ParticipantID) error {
				return tx.AppendEvent(ctx, &ivs.Event{StageID: ls.id, SessionID: ls.session, ParticipantID: p, Name: name, Time: now, RemoteParticipantID: remote})
			})
		})
		if err != nil {
			return err
		}
		s.dropSubscribersOf(ls, pr.ID)
		s.notify(ls.id)
		return nil
	})
	if errors.Is(err, ErrNotJoined) {
		return nil // already gone: leaving stopped it
	}
	return err
}

// Publishing reports whether a participant is publishing on the stage now.
func (s *Service) Publishing(id ivs.StageID, pid ivs.ParticipantID) bool {
	ls, err := s.lockLive(id)
	if err != nil {
		return false
	}
	defer ls.mu.Unlock()
	defer s.forget(ls)
	lp := ls.parts[pid]
	return lp != nil && lp.publishing
}

// CheckSubscribe refuses, with a SUBSCRIBE_ERROR event, a subscription the token does not allow, to a
// participant who is not publishing, or over the stage's subscriber quota.
func (s *Service) CheckSubscribe(ctx context.Context, pr *Presence, remote ivs.ParticipantID) error {
	return s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) error {
		return s.checkSubscribe(ctx, ls, lp, pr.ID, remote)
	})
}

func (s *Service) checkSubscribe(ctx context.Context, ls *liveStage, lp *liveParticipant, pid, remote ivs.ParticipantID) error {
	if !lp.caps.AllowSubscribe {
		return s.refuse(ctx, ls, pid, ivs.EventSubscribeError, remote, ivs.ErrInsufficientCapabilities, ErrInsufficientCapabilities)
	}
	if rp := ls.parts[remote]; rp == nil || !rp.publishing || remote == pid {
		return s.refuse(ctx, ls, pid, ivs.EventSubscribeError, remote, ivs.ErrPublisherNotFound,
			fmt.Errorf("%w: %s", ErrPublisherNotFound, remote))
	}
	if _, ok := lp.subs[remote]; ok || len(lp.subs) > 0 {
		return nil // already a subscriber: no new subscriber for the quota
	}
	n := 0
	for _, p := range ls.parts {
		if len(p.subs) > 0 {
			n++
		}
	}
	if n >= s.cfg.Quotas.SubscribersPerStage {
		return s.refuse(ctx, ls, pid, ivs.EventSubscribeError, remote, ivs.ErrQuotaExceeded,
			fmt.Errorf("%w: the stage has %d subscribers, its limit", ErrQuotaExceeded, n))
	}
	return nil
}

// StartSubscribe records SUBSCRIBE_STARTED to remote when the subscriber's media connects, or
// SUBSCRIBE_ERROR as CheckSubscribe does.
func (s *Service) StartSubscribe(ctx context.Context, pr *Presence, remote ivs.ParticipantID) error {
	return s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) error {
		if err := s.checkSubscribe(ctx, ls, lp, pr.ID, remote); err != nil {
			return err
		}
		if _, ok := lp.subs[remote]; ok {
			return nil
		}
		if err := s.event(ctx, ls, pr.ID, ivs.EventSubscribeStarted, remote, ""); err != nil {
			return err
		}
		lp.subs[remote] = struct{}{}
		return nil
	})
}

// StopSubscribe records SUBSCRIBE_STOPPED (once) for a subscription to remote.
func (s *Service) StopSubscribe(ctx context.Context, pr *Presence, remote ivs.ParticipantID) error {
	err := s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) error {
		if _, ok := lp.subs[remote]; !ok {
			return nil
		}
		if err := s.event(ctx, ls, pr.ID, ivs.EventSubscribeStopped, remote, ""); err != nil {
			return err
		}
		delete(lp.subs, remote)
		return nil
	})
	if errors.Is(err, ErrNotJoined) {
		return nil
	}
	return err
}

// RecordError records a PUBLISH_ERROR or SUBSCRIBE_ERROR found by the media plane (a media policy code).
func (s *Service) RecordError(ctx context.Context, pr *Presence, name ivs.EventName, code ivs.ErrorCode, remote ivs.ParticipantID) error {
	if name != ivs.EventPublishError && name != ivs.EventSubscribeError && name != ivs.EventJoinError {
		return fmt.Errorf("stage: %s is not an error event", name)
	}
	return s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) error {
		return s.event(ctx, ls, pr.ID, name, remote, code)
	})
}

// DisconnectParticipant bars a participant id from the stage (its token never joins again) and, if it is
// connected, records it as gone and has the media plane close its connections.
func (s *Service) DisconnectParticipant(ctx context.Context, stageARN string, pid ivs.ParticipantID, reason string) error {
	id, err := s.stageID(stageARN)
	if err != nil {
		return err
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
		cs, derr = s.depart(ctx, ls, pid, CloseDisconnected)
	}
	s.forget(ls)
	ls.mu.Unlock()
	runClosers(cs)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "participant disconnected", "stage", id, "participant", pid, "reason", reason, "was_connected", connected)
	return derr
}

// evictStage records everyone on the stage as gone, ends its session at once, runs then (if not nil) while
// still holding the stage, and closes their connections with reason.
func (s *Service) evictStage(ctx context.Context, id ivs.StageID, reason CloseReason, then func() error) error {
	ls, err := s.lockLive(id)
	if err != nil {
		return err
	}
	var cs []closer
	var errs []error
	for pid := range ls.parts {
		c, err := s.depart(ctx, ls, pid, reason)
		cs = append(cs, c...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.endSession(ctx, ls); err != nil {
		errs = append(errs, err)
	}
	if then != nil && len(errs) == 0 {
		if err := then(); err != nil {
			errs = append(errs, err)
		}
	}
	s.forget(ls)
	ls.mu.Unlock()
	runClosers(cs)
	return errors.Join(errs...)
}

// Shutdown is the graceful stop of SPEC §1: every participant is recorded as LEFT and disconnected, every
// open session is ended, and timers stop. The store stays open for the caller to close.
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
	return errors.Join(errs...)
}

// Recover repairs what a crash left: participants still CONNECTED are recorded as DISCONNECTED with LEFT,
// and sessions still open are ended. Call it at start, before serving.
func (s *Service) Recover(ctx context.Context) error {
	parts, err := s.store.ConnectedParticipants(ctx)
	if err != nil {
		return err
	}
	for _, p := range parts {
		err := s.store.Update(ctx, func(tx store.Tx) error {
			p.State = ivs.StateDisconnected
			if err := tx.PutParticipant(ctx, p); err != nil {
				return err
			}
			return tx.AppendEvent(ctx, &ivs.Event{StageID: p.StageID, SessionID: p.SessionID, ParticipantID: p.ID, Name: ivs.EventLeft, Time: s.now()})
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

// MediaState is what a participant says of its own media (the IVS SDK's SET_STATE): shown to the others
// in the stage state, never stored.
type MediaState struct {
	AudioMuted   bool
	VideoStopped bool
}

// SetMediaState records a participant's mute state and tells the stage's watchers.
func (s *Service) SetMediaState(pr *Presence, m MediaState) error {
	return s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) error {
		if lp.media != m {
			lp.media = m
			s.notify(ls.id)
		}
		return nil
	})
}

// LiveParticipant is one connected participant as the stage's events socket shows it.
type LiveParticipant struct {
	ID         ivs.ParticipantID
	UserID     string
	Attributes map[string]string
	Publishing bool
	MediaState
}

// StageState is a snapshot of who is connected to a stage now, in participant id order.
func (s *Service) StageState(id ivs.StageID) []LiveParticipant {
	ls, err := s.lockLive(id)
	if err != nil {
		return nil
	}
	defer ls.mu.Unlock()
	defer s.forget(ls)
	out := make([]LiveParticipant, 0, len(ls.parts))
	for pid, lp := range ls.parts {
		out = append(out, LiveParticipant{ID: pid, UserID: lp.userID, Attributes: lp.attributes, Publishing: lp.publishing, MediaState: lp.media})
	}
	slices.SortFunc(out, func(a, b LiveParticipant) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
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

// notify wakes the stage's watchers. It takes s.mu, a leaf lock, so it may be called under ls.mu.
func (s *Service) notify(id ivs.StageID) {
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
		for _, lp := range ls.parts {
			if lp.publishing {
				publishers++
			}
		}
		ls.mu.Unlock()
	}
	return sessions, participants, publishers
}
