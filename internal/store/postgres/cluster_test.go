package postgres_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/postgres"
	"github.com/openstage/openstage/internal/store/teststore"
)

// The registry and the leases (store.Cluster), on two Stores sharing one schema as two nodes do.

const leaseTTL = 400 * time.Millisecond

func newStage(t *testing.T, s store.Store, session ivs.SessionID) ivs.StageID {
	t.Helper()
	id := ivs.NewStageID()
	err := s.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.InsertStage(t.Context(), ivs.Stage{ID: id, Name: "s", CreatedAt: time.Now()}); err != nil {
			return err
		}
		if session == "" {
			return nil
		}
		if err := tx.InsertSession(t.Context(), ivs.Session{StageID: id, ID: session, StartTime: time.Now()}); err != nil {
			return err
		}
		return tx.UpdateStage(t.Context(), ivs.Stage{ID: id, Name: "s", ActiveSessionID: session})
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func beat(t *testing.T, s *postgres.Store, id store.NodeID) {
	t.Helper()
	if err := s.Heartbeat(t.Context(), store.Node{ID: id, URL: "http://" + string(id), PublicURL: "http://lb", MediaAddr: "127.0.0.1:1",
		StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func TestLeases(t *testing.T) {
	dsn := teststore.PostgresDSN(t)
	n1, n2 := teststore.OpenPostgres(t, dsn), teststore.OpenPostgres(t, dsn)
	ctx := t.Context()
	beat(t, n1, "n1")
	beat(t, n2, "n2")
	s1 := newStage(t, n1, "")

	// The first claim takes the stage; a claim by another live node finds the owner and changes nothing.
	c, err := n1.Claim(ctx, s1, "n1", leaseTTL)
	if err != nil || !c.Took || c.Owner.ID != "n1" || c.Previous != "" || !c.Owner.Alive || c.Owner.URL != "http://n1" {
		t.Fatalf("first claim: %+v %v", c, err)
	}
	c, err = n2.Claim(ctx, s1, "n2", leaseTTL)
	if err != nil || c.Took || c.Owner.ID != "n1" {
		t.Fatalf("claim of an owned stage: %+v %v", c, err)
	}
	if c, err = n1.Claim(ctx, s1, "n1", leaseTTL); err != nil || c.Took || c.Owner.ID != "n1" {
		t.Fatalf("the owner's own claim again: %+v %v", c, err)
	}
	if _, err := n1.Claim(ctx, "nosuchstage1", "n1", leaseTTL); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim of a stage that does not exist: %v", err)
	}
	if o, ok, err := n2.Owner(ctx, s1, leaseTTL); err != nil || !ok || o.ID != "n1" {
		t.Fatalf("Owner: %+v %v %v", o, ok, err)
	}
	if orphans, err := n2.Orphans(ctx, leaseTTL); err != nil || len(orphans) != 0 {
		t.Fatalf("orphans while every node lives: %v %v", orphans, err)
	}

	// n1's heartbeat lapses: its lease is no longer an owner, the stage is an orphan, and n2 takes it over.
	time.Sleep(leaseTTL + 100*time.Millisecond)
	beat(t, n2, "n2")
	if _, ok, err := n2.Owner(ctx, s1, leaseTTL); err != nil || ok {
		t.Fatalf("Owner after the owner's heartbeat lapsed: %v %v", ok, err)
	}
	if orphans, err := n2.Orphans(ctx, leaseTTL); err != nil || !slices.Equal(orphans, []ivs.StageID{s1}) {
		t.Fatalf("orphans after n1 died: %v %v", orphans, err)
	}
	nodes, err := n2.Nodes(ctx, leaseTTL)
	if err != nil || len(nodes) != 2 || nodes[0].ID != "n1" || nodes[0].Alive || !nodes[1].Alive {
		t.Fatalf("Nodes: %+v %v", nodes, err)
	}
	c, err = n2.Claim(ctx, s1, "n2", leaseTTL)
	if err != nil || !c.Took || c.Previous != "n1" || c.Owner.ID != "n2" {
		t.Fatalf("take-over: %+v %v", c, err)
	}
	// n1 comes back: the stage stays n2's; n1's release of it does nothing.
	beat(t, n1, "n1")
	if err := n1.Release(ctx, s1, "n1"); err != nil {
		t.Fatal(err)
	}
	if o, ok, err := n1.Owner(ctx, s1, leaseTTL); err != nil || !ok || o.ID != "n2" {
		t.Fatalf("owner after a stale release: %+v %v %v", o, ok, err)
	}
	if owned, err := n1.Owned(ctx, "n2"); err != nil || !slices.Equal(owned, []ivs.StageID{s1}) {
		t.Fatalf("Owned: %v %v", owned, err)
	}
	if err := n2.Release(ctx, s1, "n2"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := n1.Owner(ctx, s1, leaseTTL); err != nil || ok {
		t.Fatalf("owner after release: %v %v", ok, err)
	}

	// A stage with an open session and no lease (a store from before leases) is an orphan too; one with a
	// lease of a live node is not.
	s2 := newStage(t, n1, ivs.NewSessionID())
	if orphans, err := n1.Orphans(ctx, leaseTTL); err != nil || !slices.Equal(orphans, []ivs.StageID{s2}) {
		t.Fatalf("orphans with an unleased open session: %v %v", orphans, err)
	}
	if _, err := n1.Claim(ctx, s2, "n1", leaseTTL); err != nil {
		t.Fatal(err)
	}
	if orphans, err := n1.Orphans(ctx, leaseTTL); err != nil || len(orphans) != 0 {
		t.Fatalf("orphans after the claim: %v %v", orphans, err)
	}

	// DeleteStage takes the lease with it; Leave takes the node and its leases.
	if err := n1.Update(ctx, func(tx store.Tx) error { return tx.DeleteStage(ctx, s2) }); err != nil {
		t.Fatal(err)
	}
	if owned, err := n1.Owned(ctx, "n1"); err != nil || len(owned) != 0 {
		t.Fatalf("leases after DeleteStage: %v %v", owned, err)
	}
	s3 := newStage(t, n1, "")
	if _, err := n1.Claim(ctx, s3, "n1", leaseTTL); err != nil {
		t.Fatal(err)
	}
	if err := n1.Leave(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.Node(ctx, "n1", leaseTTL); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the node after Leave: %v", err)
	}
	if owned, err := n2.Owned(ctx, "n1"); err != nil || len(owned) != 0 {
		t.Fatalf("its leases after Leave: %v %v", owned, err)
	}
}

// TestConcurrentClaimsOneOwner: nodes racing to claim the same fresh stages through two Stores: each stage
// is taken exactly once, and every claimer is told the same owner.
func TestConcurrentClaimsOneOwner(t *testing.T) {
	dsn := teststore.PostgresDSN(t)
	stores := []*postgres.Store{teststore.OpenPostgres(t, dsn), teststore.OpenPostgres(t, dsn)}
	nodes := []store.NodeID{"a", "b", "c", "d", "e", "f"}
	for i, n := range nodes {
		beat(t, stores[i%2], n)
	}
	const stages = 20
	for range stages {
		id := newStage(t, stores[0], "")
		var mu sync.Mutex
		took := 0
		seen := map[store.NodeID]bool{}
		var wg sync.WaitGroup
		for i, n := range nodes {
			wg.Go(func() {
				c, err := stores[i%2].Claim(context.Background(), id, n, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if c.Took {
					took++
				}
				seen[c.Owner.ID] = true
			})
		}
		wg.Wait()
		if took != 1 || len(seen) != 1 {
			t.Fatalf("stage %s: %d claims took it, owners seen %v", id, took, seen)
		}
	}
}
