package stage_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/clock"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/teststore"
	"github.com/openstage/openstage/internal/token"
)

// FuzzLifecycle drives the domain with random joins, publishes, subscriptions, leaves, disconnects,
// session ends and crashes (a node that stops without a word, and a new one that recovers), then ends
// everything (gracefully or by a crash) and checks every participant's stored history against the grammar
// of ivs.History: JOINED before anything else, nothing after LEFT until a new JOINED, PUBLISH_STOPPED and
// each SUBSCRIBE_STOPPED before LEFT, every participant ended. The domain must never have refused one of
// its own events (ivs.ErrHistory): that would be a path trying to write a contradiction.
//
// Each input is a run of store transactions, each with an fsync: scripts/test fuzzes it fewer times.
// fuzztime: 400x
func FuzzLifecycle(f *testing.F) {
	st := teststore.Open(f) // one store per fuzzing process: each input makes a stage of its own
	for _, seed := range [][]byte{
		{0x10, 0x11, 0x21, 0x30, 0x50, 0x70},                   // publish, subscribe, stop, leave, crash
		{0x00, 0x11, 0x20, 0x12, 0x70, 0x81},                   // crash while publishing and subscribing
		{0x11, 0x11, 0x20, 0x60, 0x11, 0x80},                   // a publish displaced, a disconnect
		{0x01, 0x12, 0x23, 0x52, 0x90, 0x13, 0x40, 0x53, 0x71}, // session end, rejoin, stop subscribe
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		runLifecycle(t, st, ops)
	})
}

// TestLifecycleHistories runs the fuzz seeds and a few fixed long sequences on both stores.
func TestLifecycleHistories(t *testing.T) {
	st := teststore.Open(t)
	for _, ops := range [][]byte{
		{0x10, 0x11, 0x21, 0x30, 0x50, 0x70},
		{0x00, 0x11, 0x20, 0x12, 0x70, 0x81},
		{0x11, 0x11, 0x20, 0x60, 0x11, 0x80},
		{0x01, 0x12, 0x23, 0x52, 0x90, 0x13, 0x40, 0x53, 0x71},
		{0x11, 0x12, 0x13, 0x20, 0x21, 0x22, 0x23, 0x70, 0x11, 0x22, 0x51, 0x60, 0x70, 0x80},
	} {
		runLifecycle(t, st, ops)
	}
}

const fuzzParticipants = 4

type lifecycle struct {
	t     *testing.T
	ctx   context.Context
	st    store.Store
	svc   *stage.Service
	clk   *clock.Fake
	arn   string
	claim [fuzzParticipants]token.Claims
	held  []*stage.Presence
}

func (l *lifecycle) service() {
	l.clk = clock.NewFake(time.Now()) // a crashed node's clock is never advanced again: its timers never fire
	l.svc = stage.New(stage.Config{Account: ivs.Account{Region: "us-east-1", ID: "000000000000"},
		WHIPURL: "http://127.0.0.1/whip", EventsURL: "ws://127.0.0.1/events", SessionEndGrace: grace}, l.st, l.clk, testSigner,
		slog.New(slog.DiscardHandler))
}

// check fails on an error that says the domain tried to write a contradicting history; the other
// refusals (not joined, not publishing, revoked) are what the random sequence asked for.
func (l *lifecycle) check(what string, err error) {
	l.t.Helper()
	if errors.Is(err, ivs.ErrHistory) {
		l.t.Fatalf("%s: the domain refused its own event: %v", what, err)
	}
}

func (l *lifecycle) pick(b byte) *stage.Presence {
	if len(l.held) == 0 {
		return nil
	}
	return l.held[int(b)%len(l.held)]
}

func (l *lifecycle) join(p int, kind stage.ConnKind, remote ivs.ParticipantID) *stage.Presence {
	pr, err := l.svc.Join(l.ctx, stage.JoinRequest{Claims: l.claim[p], Kind: kind, Remote: remote})
	l.check("join", err)
	if err != nil {
		return nil
	}
	l.held = append(l.held, pr)
	return pr
}

func (l *lifecycle) crash() {
	l.held = nil
	l.service()
	l.check("recover", l.svc.Recover(l.ctx))
}

func runLifecycle(t *testing.T, st store.Store, ops []byte) {
	ctx := context.Background()
	l := &lifecycle{t: t, ctx: ctx, st: st}
	l.service()
	v, _, err := l.svc.CreateStage(ctx, "fuzz", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.arn = v.ARN
	stageID := ivs.StageID(ivs.LastSegment(v.ARN))
	for i := range l.claim {
		tok, err := l.svc.CreateParticipantToken(ctx, v.ARN, stage.TokenSpec{UserID: "u",
			Capabilities: []stage.Capability{stage.CapPublish, stage.CapSubscribe}})
		if err != nil {
			t.Fatal(err)
		}
		if l.claim[i], err = l.svc.Authenticate(ctx, tok.Token); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(b byte) ivs.ParticipantID {
		return ivs.ParticipantID(l.claim[int(b)%fuzzParticipants].ParticipantID)
	}
	for _, op := range ops {
		arg := op & 0x0f
		p := int(arg) % fuzzParticipants
		switch op >> 4 {
		case 0: // an events socket
			l.join(p, stage.ConnEvents, "")
		case 1: // a publish whose media flows
			if pr := l.join(p, stage.ConnPublish, ""); pr != nil {
				l.check("start publish", l.svc.StartPublish(ctx, pr))
			}
		case 2: // a subscription to the next participant, whose media flows
			remote := ids(arg + 1)
			if pr := l.join(p, stage.ConnSubscribe, remote); pr != nil {
				l.check("start subscribe", l.svc.StartSubscribe(ctx, pr, remote))
			}
		case 3:
			if pr := l.pick(arg); pr != nil {
				l.check("stop publish", l.svc.StopPublish(ctx, pr))
			}
		case 4:
			if pr := l.pick(arg); pr != nil {
				l.check("stop subscribe", l.svc.StopSubscribe(ctx, pr, ids(arg+1)))
			}
		case 5:
			if pr := l.pick(arg); pr != nil {
				l.check("leave", pr.Leave(ctx))
			}
		case 6:
			l.check("disconnect", l.svc.DisconnectParticipant(ctx, l.arn, ids(arg), "fuzz"))
		case 7:
			l.crash()
		case 8: // the grace window passes: an empty stage's session ends
			l.clk.Advance(grace + time.Second)
		case 9: // the same publish connection starts again (idempotent)
			if pr := l.pick(arg); pr != nil {
				l.check("restart publish", l.svc.StartPublish(ctx, pr))
			}
		default: // a media policy refusal
			if pr := l.pick(arg); pr != nil {
				l.check("record error", l.svc.RecordError(ctx, pr, ivs.EventPublishError, ivs.ErrBitrateExceeded, ""))
			}
		}
	}
	// End everything: the last byte chooses a graceful stop or a crash and a recovery.
	if len(ops) > 0 && ops[len(ops)-1]&1 == 1 {
		l.crash()
	}
	l.check("shutdown", l.svc.Shutdown(ctx))
	sessions, err := st.ListSessions(ctx, stageID, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, sess := range sessions {
		ivstest.CheckHistories(t, st, stageID, sess.ID, true)
	}
	// The store outlives this input: leave the stage quota to the next one.
	l.service()
	if err := l.svc.DeleteStage(ctx, l.arn); err != nil {
		t.Fatal(err)
	}
	l.check("shutdown", l.svc.Shutdown(ctx))
}
