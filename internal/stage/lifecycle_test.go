package stage_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openstage/openstage/internal/clock"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/teststore"
	"github.com/openstage/openstage/internal/token"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const grace = 10 * time.Second

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	ctx   context.Context
	svc   *stage.Service
	st    store.Store
	clk   *clock.Fake
	kicks *kicks
	arn   string
}

type kicks struct {
	mu  sync.Mutex
	got []string
}

// closer records the domain closing a connection of participant p.
func (k *kicks) closer(p string) func(stage.CloseReason) {
	return func(r stage.CloseReason) {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.got = append(k.got, p+":"+string(r))
	}
}

func (k *kicks) list() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.got)
}

var testSigner = func() *token.Signer {
	k, err := token.GenerateKey()
	if err != nil {
		panic(err)
	}
	s, err := token.NewSigner(k, token.KeyIDFor(&k.PublicKey))
	if err != nil {
		panic(err)
	}
	return s
}()

func newEnv(t *testing.T, q stage.Quotas) *env {
	t.Helper()
	ctx := context.Background()
	st := teststore.Open(t) // SQLite, or PostgreSQL when OPENSTAGE_TEST_DATABASE is set
	e := &env{t: t, ctx: ctx, st: st, clk: clock.NewFake(t0), kicks: &kicks{}}
	e.svc = e.service(st)
	t.Cleanup(func() {
		_ = e.svc.Shutdown(ctx) // before teststore's cleanup closes the store
	})
	if q != (stage.Quotas{}) {
		e.svc = stage.New(e.config(q), st, e.clk, testSigner, nil)
	}
	v, _, err := e.svc.CreateStage(ctx, "s", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.arn = v.ARN
	return e
}

func (e *env) config(q stage.Quotas) stage.Config {
	return stage.Config{Account: ivs.Account{Region: "us-east-1", ID: "000000000000"},
		WHIPURL: "http://127.0.0.1/whip", EventsURL: "ws://127.0.0.1/events", SessionEndGrace: grace, Quotas: q}
}

func (e *env) service(st store.Store) *stage.Service {
	return stage.New(e.config(stage.DefaultQuotas), st, e.clk, testSigner, nil)
}

// join mints a token with the given capabilities and joins with it.
func (e *env) join(caps ...stage.Capability) (*stage.Presence, token.Claims) {
	e.t.Helper()
	if caps == nil {
		caps = []stage.Capability{}
	}
	tok, err := e.svc.CreateParticipantToken(e.ctx, e.arn, stage.TokenSpec{UserID: "u", Capabilities: caps})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := e.svc.Authenticate(e.ctx, tok.Token)
	if err != nil {
		e.t.Fatal(err)
	}
	pr, err := e.svc.Join(e.ctx, stage.JoinRequest{Claims: c, Client: ivs.ClientInfo{Protocol: ivs.ProtocolWHIP, SDKVersion: "1.2.3"},
		OnClose: e.kicks.closer(c.ParticipantID)})
	if err != nil {
		e.t.Fatal(err)
	}
	return pr, c
}

func (e *env) events(pr *stage.Presence) []string {
	e.t.Helper()
	evs, err := e.svc.ListEvents(e.ctx, e.arn, pr.Session, pr.ID, store.Page{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ivstest.DomainEvent(ev))
	}
	return out
}

func (e *env) participant(pr *stage.Presence) ivs.Participant {
	e.t.Helper()
	p, err := e.svc.GetParticipant(e.ctx, e.arn, pr.Session, pr.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) activeSession() ivs.SessionID {
	e.t.Helper()
	v, err := e.svc.GetStage(e.ctx, e.arn)
	if err != nil {
		e.t.Fatal(err)
	}
	return v.ActiveSessionID
}

func want(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
}

var both = []stage.Capability{stage.CapPublish, stage.CapSubscribe}

func TestJoinLeaveAndSessionGrace(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	a, _ := e.join(both...)
	sess := e.activeSession()
	if sess == "" || sess != a.Session || len(sess) != 16 {
		t.Fatalf("session %q, presence in %q", sess, a.Session)
	}
	p := e.participant(a)
	if p.State != ivs.StateConnected || !p.FirstJoinTime.Equal(t0) || p.UserID != "u" || p.Client.SDKVersion != "1.2.3" {
		t.Fatalf("participant after join: %+v", p)
	}
	// A second connection of the same participant is no second JOINED; the participant stays until the last goes.
	c, _ := e.svc.Authenticate(e.ctx, mustToken(t, e, a.ID))
	_ = c
	if err := a.Leave(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Leave(e.ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	want(t, e.events(a), []string{"JOINED", "LEFT"})
	if p := e.participant(a); p.State != ivs.StateDisconnected || !p.FirstJoinTime.Equal(t0) {
		t.Fatalf("participant after leave: %+v", p)
	}
	e.clk.Advance(grace - time.Second)
	if e.activeSession() != sess {
		t.Fatal("session ended inside the grace window")
	}
	e.clk.Advance(2 * time.Second)
	if e.activeSession() != "" {
		t.Fatal("session still active after the grace window")
	}
	got, err := e.svc.GetSession(e.ctx, e.arn, sess)
	if err != nil || got.EndTime.IsZero() || !got.StartTime.Equal(t0) {
		t.Fatalf("ended session: %+v %v", got, err)
	}
}

// mustToken is unused by design of the test above; kept minimal.
func mustToken(t *testing.T, e *env, _ ivs.ParticipantID) string {
	t.Helper()
	tok, err := e.svc.CreateParticipantToken(e.ctx, e.arn, stage.TokenSpec{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

func TestTwoConnectionsOneParticipant(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	a, claims := e.join(both...)
	a2, err := e.svc.Join(e.ctx, stage.JoinRequest{Claims: claims})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Leave(e.ctx); err != nil {
		t.Fatal(err)
	}
	if p := e.participant(a); p.State != ivs.StateConnected {
		t.Fatalf("left with a connection still open: %+v", p)
	}
	if err := a2.Leave(e.ctx); err != nil {
		t.Fatal(err)
	}
	want(t, e.events(a), []string{"JOINED", "LEFT"})
}

func TestRejoinInsideGraceKeepsSessionAndFirstJoinTime(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	a, claims := e.join(both...)
	sess := a.Session
	_ = a.Leave(e.ctx)
	e.clk.Advance(grace / 2)
	a2, err := e.svc.Join(e.ctx, stage.JoinRequest{Claims: claims})
	if err != nil {
		t.Fatal(err)
	}
	if a2.Session != sess {
		t.Fatalf("rejoin inside grace made session %s, want %s", a2.Session, sess)
	}
	e.clk.Advance(2 * grace)
	if e.activeSession() != sess {
		t.Fatal("session ended with a participant connected")
	}
	if p := e.participant(a2); !p.FirstJoinTime.Equal(t0) || p.State != ivs.StateConnected {
		t.Fatalf("firstJoinTime moved or state wrong: %+v", p)
	}
	want(t, e.events(a2), []string{"JOINED", "LEFT", "JOINED"})
	_ = a2.Leave(e.ctx)
	e.clk.Advance(grace + time.Second)
	// After the session ended, the same token joins a new session.
	a3, err := e.svc.Join(e.ctx, stage.JoinRequest{Claims: claims})
	if err != nil {
		t.Fatal(err)
	}
	if a3.Session == sess || a3.Session == "" {
		t.Fatalf("join after the session ended reused %s", a3.Session)
	}
	want(t, e.events(a3), []string{"JOINED"})
}

func TestPublishSubscribeSequences(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	pub, _ := e.join(both...)
	sub, _ := e.join(stage.CapSubscribe)
	if err := e.svc.StartPublish(e.ctx, pub); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.StartPublish(e.ctx, pub); err != nil { // again: no second event
		t.Fatal(err)
	}
	if err := e.svc.StartSubscribe(e.ctx, sub, pub.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.StopPublish(e.ctx, pub); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.StopSubscribe(e.ctx, sub, pub.ID); err != nil { // already stopped by the publisher's stop
		t.Fatal(err)
	}
	_ = pub.Leave(e.ctx)
	_ = sub.Leave(e.ctx)
	want(t, e.events(pub), []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"})
	want(t, e.events(sub), []string{"JOINED", "SUBSCRIBE_STARTED>" + string(pub.ID), "SUBSCRIBE_STOPPED>" + string(pub.ID), "LEFT"})
	if p := e.participant(pub); !p.Published || p.State != ivs.StateDisconnected {
		t.Fatalf("published must stay true after leaving: %+v", p)
	}
	if p := e.participant(sub); p.Published {
		t.Fatalf("subscriber marked published: %+v", p)
	}
}

func TestLeaveWhilePublishingAndSubscribing(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	a, _ := e.join(both...)
	b, _ := e.join(both...)
	for _, pr := range []*stage.Presence{a, b} {
		if err := e.svc.StartPublish(e.ctx, pr); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.StartSubscribe(e.ctx, a, b.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.StartSubscribe(e.ctx, b, a.ID); err != nil {
		t.Fatal(err)
	}
	_ = a.Leave(e.ctx)
	want(t, e.events(a), []string{"JOINED", "PUBLISH_STARTED", "SUBSCRIBE_STARTED>" + string(b.ID),
		"SUBSCRIBE_STOPPED>" + string(b.ID), "PUBLISH_STOPPED", "LEFT"})
	want(t, e.events(b), []string{"JOINED", "PUBLISH_STARTED", "SUBSCRIBE_STARTED>" + string(a.ID),
		"SUBSCRIBE_STOPPED>" + string(a.ID)})
}

func TestErrorEvents(t *testing.T) {
	e := newEnv(t, stage.Quotas{Stages: 10, PublicKeys: 3, PublishersPerStage: 1, SubscribersPerStage: 3})
	subOnly, _ := e.join(stage.CapSubscribe)
	pubOnly, _ := e.join(stage.CapPublish)
	other, _ := e.join(both...)

	if err := e.svc.StartPublish(e.ctx, subOnly); !errors.Is(err, stage.ErrInsufficientCapabilities) {
		t.Fatalf("publish without PUBLISH: %v", err)
	}
	if err := e.svc.StartSubscribe(e.ctx, pubOnly, other.ID); !errors.Is(err, stage.ErrInsufficientCapabilities) {
		t.Fatalf("subscribe without SUBSCRIBE: %v", err)
	}
	if err := e.svc.StartSubscribe(e.ctx, subOnly, other.ID); !errors.Is(err, stage.ErrPublisherNotFound) {
		t.Fatalf("subscribe to a non-publisher: %v", err)
	}
	if err := e.svc.StartPublish(e.ctx, pubOnly); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.StartPublish(e.ctx, other); !errors.Is(err, stage.ErrQuotaExceeded) {
		t.Fatalf("publisher over the quota: %v", err)
	}
	// The stage holds 3 participants: a 4th is refused with JOIN_ERROR.
	tok, err := e.svc.CreateParticipantToken(e.ctx, e.arn, stage.TokenSpec{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.Authenticate(e.ctx, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Join(e.ctx, stage.JoinRequest{Claims: c}); !errors.Is(err, stage.ErrQuotaExceeded) {
		t.Fatalf("join over the participant cap: %v", err)
	}
	if err := e.svc.RecordError(e.ctx, other, ivs.EventPublishError, ivs.ErrResolutionExceeded, ""); err != nil {
		t.Fatal(err)
	}

	want(t, e.events(subOnly), []string{"JOINED", "PUBLISH_ERROR:INSUFFICIENT_CAPABILITIES", "SUBSCRIBE_ERROR>" + string(other.ID) + ":PUBLISHER_NOT_FOUND"})
	want(t, e.events(pubOnly), []string{"JOINED", "SUBSCRIBE_ERROR>" + string(other.ID) + ":INSUFFICIENT_CAPABILITIES", "PUBLISH_STARTED"})
	want(t, e.events(other), []string{"JOINED", "PUBLISH_ERROR:QUOTA_EXCEEDED", "PUBLISH_ERROR:RESOLUTION_EXCEEDED"})
	refused := &stage.Presence{Stage: ivs.StageID(c.Topic), ID: ivs.ParticipantID(c.ParticipantID), Session: other.Session}
	want(t, e.events(refused), []string{"JOIN_ERROR:QUOTA_EXCEEDED"})
	if p := e.participant(refused); p.State != ivs.StateDisconnected {
		t.Fatalf("refused participant: %+v", p)
	}
}

func TestDisconnectParticipant(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	a, claims := e.join(both...)
	b, _ := e.join(both...)
	if err := e.svc.DisconnectParticipant(e.ctx, e.arn, a.ID, "bye"); err != nil {
		t.Fatal(err)
	}
	want(t, e.events(a), []string{"JOINED", "LEFT"})
	if got := e.kicks.list(); !slices.Equal(got, []string{string(a.ID) + ":PARTICIPANT_DISCONNECTED"}) {
		t.Fatalf("disconnector calls %q", got)
	}
	if err := a.Leave(e.ctx); err != nil { // the transport's late close is harmless
		t.Fatal(err)
	}
	want(t, e.events(a), []string{"JOINED", "LEFT"})
	if _, err := e.svc.Join(e.ctx, stage.JoinRequest{Claims: claims}); !errors.Is(err, stage.ErrRevoked) {
		t.Fatalf("rejoin after DisconnectParticipant: %v", err)
	}
	if _, err := e.svc.Authenticate(e.ctx, mustSign(t, claims)); !errors.Is(err, stage.ErrRevoked) {
		t.Fatalf("authenticate after DisconnectParticipant: %v", err)
	}
	if e.activeSession() != b.Session {
		t.Fatal("session ended while b is connected")
	}
	if err := e.svc.DisconnectParticipant(e.ctx, "arn:aws:ivs:us-east-1:000000000000:stage/AAAAAAAAAAAA", a.ID, ""); !errors.Is(err, stage.ErrStageNotFound) {
		t.Fatalf("disconnect on an unknown stage: %v", err)
	}
}

func mustSign(t *testing.T, c token.Claims) string {
	t.Helper()
	raw, err := testSigner.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestDeleteStageDisconnectsEveryone(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	a, _ := e.join(both...)
	b, claims := e.join(both...)
	if err := e.svc.DeleteStage(e.ctx, e.arn); err != nil {
		t.Fatal(err)
	}
	got := e.kicks.list()
	slices.Sort(got)
	wantKicks := []string{string(a.ID) + ":STAGE_DELETED", string(b.ID) + ":STAGE_DELETED"}
	slices.Sort(wantKicks)
	if !slices.Equal(got, wantKicks) {
		t.Fatalf("kicks %q want %q", got, wantKicks)
	}
	if _, err := e.svc.GetStage(e.ctx, e.arn); !errors.Is(err, stage.ErrStageNotFound) {
		t.Fatalf("stage after delete: %v", err)
	}
	if _, err := e.svc.Authenticate(e.ctx, mustSign(t, claims)); !errors.Is(err, stage.ErrStageNotFound) {
		t.Fatalf("token of a deleted stage: %v", err)
	}
	_ = a.Leave(e.ctx)
}

func TestShutdownAndRecover(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	a, _ := e.join(both...)
	if err := e.svc.StartPublish(e.ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Shutdown(e.ctx); err != nil {
		t.Fatal(err)
	}
	want(t, e.events(a), []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"})
	if e.activeSession() != "" {
		t.Fatal("session open after shutdown")
	}

	// A crash: a service that never shuts down leaves a participant CONNECTED and its session open.
	crashed := e.service(e.st)
	e.svc = crashed
	b, _ := e.join(both...)
	e.clk.Advance(time.Minute)
	restarted := e.service(e.st)
	if err := restarted.Recover(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.svc = restarted
	want(t, e.events(b), []string{"JOINED", "LEFT"})
	if p := e.participant(b); p.State != ivs.StateDisconnected {
		t.Fatalf("after recovery: %+v", p)
	}
	if e.activeSession() != "" {
		t.Fatal("session still open after recovery")
	}
	s, err := restarted.GetSession(e.ctx, e.arn, b.Session)
	if err != nil || s.EndTime.IsZero() {
		t.Fatalf("session after recovery: %+v %v", s, err)
	}
	_ = crashed.Shutdown(e.ctx)
}

func TestConcurrentJoinsMakeOneSession(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	var wg sync.WaitGroup
	pres := make([]*stage.Presence, 20)
	claims := make([]token.Claims, 20)
	for i := range claims {
		tok, err := e.svc.CreateParticipantToken(e.ctx, e.arn, stage.TokenSpec{})
		if err != nil {
			t.Fatal(err)
		}
		if claims[i], err = e.svc.Authenticate(e.ctx, tok.Token); err != nil {
			t.Fatal(err)
		}
	}
	for i := range pres {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr, err := e.svc.Join(e.ctx, stage.JoinRequest{Claims: claims[i%len(claims)]})
			if err != nil {
				t.Error(err)
				return
			}
			pres[i] = pr
		}()
	}
	wg.Wait()
	sess, err := e.svc.ListSessions(e.ctx, e.arn, store.Page{Limit: 10})
	if err != nil || len(sess) != 1 {
		t.Fatalf("sessions %v %v", sess, err)
	}
	parts, err := e.svc.ListParticipants(e.ctx, e.arn, sess[0].ID, stage.ParticipantQuery{}, store.Page{Limit: 100})
	if err != nil || len(parts) != 20 {
		t.Fatalf("participants %d %v", len(parts), err)
	}
}

func TestSelfSignedTokensAndDeletedKeys(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := token.MarshalPublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := e.svc.ImportPublicKey(e.ctx, string(pemBytes), "mine", nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := token.NewSigner(key, pk.ARN)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clk.Now()
	raw, err := signer.Sign(token.Claims{ExpiresAt: now.Add(time.Hour), IssuedAt: now, ParticipantID: "self_signed-1",
		Resource: e.arn, Topic: ivs.LastSegment(e.arn), EventsURL: "ws://x/events", WhipURL: "http://x/whip",
		Capabilities: token.Capabilities{AllowPublish: true}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.Authenticate(e.ctx, raw)
	if err != nil || c.ParticipantID != "self_signed-1" {
		t.Fatalf("self-signed token: %+v %v", c, err)
	}
	if _, err := e.svc.ImportPublicKey(e.ctx, string(pemBytes), "again", nil); !errors.Is(err, stage.ErrConflict) {
		t.Fatalf("importing the same key twice: %v", err)
	}
	if err := e.svc.DeletePublicKey(e.ctx, pk.ARN); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Authenticate(e.ctx, raw)
	if r, ok := token.ReasonOf(err); !ok || r != token.UnknownKey {
		t.Fatalf("token of a deleted key: %v", err)
	}
	// Expiry uses the domain's clock.
	tok, err := e.svc.CreateParticipantToken(e.ctx, e.arn, stage.TokenSpec{Duration: ptr(1)})
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(2 * time.Minute)
	_, err = e.svc.Authenticate(e.ctx, tok.Token)
	if r, ok := token.ReasonOf(err); !ok || r != token.Expired {
		t.Fatalf("expired token: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestTokenReuseDisplacesTheOlderConnection(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	_, claims := e.join(both...)
	pid := ivs.ParticipantID(claims.ParticipantID)
	var closed []string
	var mu sync.Mutex
	on := func(name string) func(stage.CloseReason) {
		return func(r stage.CloseReason) { mu.Lock(); closed = append(closed, name+":"+string(r)); mu.Unlock() }
	}
	join := func(kind stage.ConnKind, remote ivs.ParticipantID, name string) *stage.Presence {
		pr, err := e.svc.Join(e.ctx, stage.JoinRequest{Claims: claims, Kind: kind, Remote: remote, OnClose: on(name)})
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}
	ev1 := join(stage.ConnEvents, "", "events1")
	join(stage.ConnPublish, "", "pub1")
	join(stage.ConnSubscribe, "x", "subx")
	join(stage.ConnSubscribe, "y", "suby") // another publisher: no displacement
	ev2 := join(stage.ConnEvents, "", "events2")
	join(stage.ConnPublish, "", "pub2")
	mu.Lock()
	got := slices.Clone(closed)
	mu.Unlock()
	if !slices.Equal(got, []string{"events1:TOKEN_REUSED", "pub1:TOKEN_REUSED"}) {
		t.Fatalf("closed %q", got)
	}
	// The displaced connection's own late Leave changes nothing; the newer one is still there.
	_ = ev1.Leave(e.ctx)
	want(t, e.events(ev2), []string{"JOINED"})
	if st := e.svc.StageState(ev2.Stage).Participants; len(st) != 1 || st[0].ID != pid {
		t.Fatalf("stage state %+v", st)
	}
}

func TestStageStateAndWatch(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	a, _ := e.join(both...)
	ctx, cancel := context.WithCancel(e.ctx)
	ch := e.svc.Watch(ctx, a.Stage)
	wake := func(what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("no wake-up after %s", what)
		}
	}
	b, _ := e.join(both...)
	wake("join")
	if err := e.svc.StartPublish(e.ctx, b); err != nil {
		t.Fatal(err)
	}
	wake("publish")
	if err := e.svc.SetMediaState(b, stage.MediaState{AudioMuted: true}); err != nil {
		t.Fatal(err)
	}
	wake("mute")
	snap := e.svc.StageState(a.Stage)
	if again := e.svc.StageState(a.Stage); again != snap {
		t.Fatal("an unchanged stage built a second snapshot")
	}
	st := snap.Participants
	if len(st) != 2 {
		t.Fatalf("state %+v", st)
	}
	for _, p := range st {
		if p.ID == b.ID && (!p.Publishing || !p.AudioMuted || p.VideoStopped || p.UserID != "u") {
			t.Fatalf("b in state %+v", p)
		}
		if p.ID == a.ID && (p.Publishing || p.AudioMuted) {
			t.Fatalf("a in state %+v", p)
		}
	}
	_ = b.Leave(e.ctx)
	wake("leave")
	if next := e.svc.StageState(a.Stage); next.Version <= snap.Version || len(next.Participants) != 1 || next.Participants[0].ID != a.ID {
		t.Fatalf("state after leave %+v", next)
	}
	cancel()
	for range ch { // closed once ctx ends
	}
}

// A crash leaves a publisher and a subscriber CONNECTED: recovery ends what each had open, as every other
// way of leaving does (PUBLISH_STOPPED, SUBSCRIBE_STOPPED, then LEFT), not LEFT alone.
func TestRecoveryEndsWhatWasOpen(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	crashed := e.svc
	pub, _ := e.join(both...)
	sub, _ := e.join(both...)
	if err := e.svc.StartPublish(e.ctx, pub); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.StartSubscribe(e.ctx, sub, pub.ID); err != nil {
		t.Fatal(err)
	}
	restarted := e.service(e.st)
	if err := restarted.Recover(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.svc = restarted
	want(t, e.events(pub), []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"})
	want(t, e.events(sub), []string{"JOINED", "SUBSCRIBE_STARTED>" + string(pub.ID), "SUBSCRIBE_STOPPED>" + string(pub.ID), "LEFT"})
	ivstest.CheckHistories(t, e.st, pub.Stage, pub.Session, true)
	_ = crashed // never shut down: a crashed node does nothing more
}

// Another writer (a second node's start-up recovery, today) has recorded a live participant as gone. When
// the participant really leaves, the history must not say LEFT twice.
func TestNoSecondLeftAfterAnotherWriterEndedTheParticipant(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	a, _ := e.join(both...)
	if err := e.svc.StartPublish(e.ctx, a); err != nil {
		t.Fatal(err)
	}
	other := e.service(e.st)
	if err := other.Recover(e.ctx); err != nil { // ends a, which is still live on e.svc
		t.Fatal(err)
	}
	want(t, e.events(a), []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"})
	// Its publish stopping and its leaving add nothing to a history that already ended.
	if err := e.svc.StopPublish(e.ctx, a); !errors.Is(err, ivs.ErrHistory) {
		t.Fatalf("stop publish after another writer's LEFT: %v, want a refusal", err)
	}
	if err := a.Leave(e.ctx); err != nil {
		t.Fatal(err)
	}
	want(t, e.events(a), []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"})
	ivstest.CheckHistories(t, e.st, a.Stage, a.Session, true)
	_ = other.Shutdown(e.ctx)
}
