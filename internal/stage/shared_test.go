package stage_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/openstage/openstage/internal/clock"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/teststore"
	"github.com/openstage/openstage/internal/token"
)

// sharedSigner loads the token signing key as the server does: from the store's secret, made by whichever
// node asks first.
func sharedSigner(st store.Store) (*token.Signer, error) {
	pem, err := st.Secret(context.Background(), "token-signing-key", func() ([]byte, error) {
		k, err := token.GenerateKey()
		if err != nil {
			return nil, err
		}
		return token.MarshalPrivateKeyPEM(k)
	})
	if err != nil {
		return nil, err
	}
	k, err := token.ParsePrivateKeyPEM(pem)
	if err != nil {
		return nil, err
	}
	return token.NewSigner(k, token.KeyIDFor(&k.PublicKey))
}

// TestTwoNodesOneDatabase: two stage services, each on its own handle to one database (two connection pools
// to one PostgreSQL schema with OPENSTAGE_TEST_DATABASE set, two Opens of one SQLite file otherwise), as two
// openstage nodes. Each accepts the tokens the other makes, and joins racing through both make one session
// per stage and one record per participant.
func TestTwoNodesOneDatabase(t *testing.T) {
	ctx := context.Background()
	stA, stB := teststore.OpenPair(t)
	var signers [2]*token.Signer
	var errs [2]error
	var wg sync.WaitGroup
	for i, st := range []store.Store{stA, stB} {
		wg.Go(func() { signers[i], errs[i] = sharedSigner(st) }) // both nodes start at once
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(t0)
	cfg := stage.Config{Account: ivs.Account{Region: "us-east-1", ID: "000000000000"},
		WHIPURL: "http://127.0.0.1/whip", EventsURL: "ws://127.0.0.1/events", SessionEndGrace: grace, Quotas: stage.DefaultQuotas}
	a, b := stage.New(cfg, stA, clk, signers[0], nil), stage.New(cfg, stB, clk, signers[1], nil)
	t.Cleanup(func() { _ = a.Shutdown(ctx); _ = b.Shutdown(ctx) })
	nodes := [2]*stage.Service{a, b}

	for round := range 8 {
		v, _, err := nodes[round%2].CreateStage(ctx, "shared", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Tokens made by each node are accepted by the other: same key, same kid.
		var claims [2]token.Claims
		for i, maker := range nodes {
			tok, err := maker.CreateParticipantToken(ctx, v.ARN, stage.TokenSpec{UserID: "u", Capabilities: both})
			if err != nil {
				t.Fatal(err)
			}
			if claims[i], err = nodes[1-i].Authenticate(ctx, tok.Token); err != nil {
				t.Fatalf("node %d rejects a token node %d made: %v", 1-i, i, err)
			}
		}
		// Two participants join through different nodes at once, and one of them through both.
		type join struct {
			node int
			c    token.Claims
		}
		joins := []join{{0, claims[0]}, {1, claims[1]}, {1, claims[0]}}
		pres := make([]*stage.Presence, len(joins))
		errs := make([]error, len(joins))
		start := make(chan struct{})
		for i, j := range joins {
			wg.Go(func() {
				<-start
				pres[i], errs[i] = nodes[j.node].Join(ctx, stage.JoinRequest{Claims: j.c})
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: join %d: %v", round, i, err)
			}
		}
		sessions, err := a.ListSessions(ctx, v.ARN, store.Page{Limit: 10})
		if err != nil || len(sessions) != 1 {
			t.Fatalf("round %d: %d sessions after racing joins through two nodes (%v); want 1", round, len(sessions), err)
		}
		for i, pr := range pres {
			if pr.Session != sessions[0].ID {
				t.Fatalf("round %d: join %d is in session %s, the stage's is %s", round, i, pr.Session, sessions[0].ID)
			}
		}
		parts, err := b.ListParticipants(ctx, v.ARN, sessions[0].ID, stage.ParticipantQuery{}, store.Page{Limit: 10})
		if err != nil || len(parts) != 2 {
			t.Fatalf("round %d: %d participant records (%v); want 2", round, len(parts), err)
		}
		for _, pr := range pres {
			if err := pr.Leave(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}
