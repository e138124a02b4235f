package readcache_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/readcache"
	"github.com/openstage/openstage/internal/store/sqlite"
	"github.com/openstage/openstage/internal/store/storetest"
	"github.com/openstage/openstage/internal/store/teststore"
)

// The cache is invisible to everything the conformance suite checks (one handle: the cache assumes no other
// writer, so the shared-database suite does not apply).
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return readcache.New(teststore.Open(t), 0) })
}

func openSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "openstage.db"), sqlite.Exclusive())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func participant(n int) ivs.Participant {
	return ivs.Participant{StageID: "st", SessionID: "se", ID: "p", UserID: fmt.Sprint(n), State: ivs.StateConnected,
		FirstJoinTime: time.Unix(1700000000, 0).UTC(), Attributes: map[string]string{"n": fmt.Sprint(n)}}
}

func put(t *testing.T, s store.Store, p ivs.Participant) {
	t.Helper()
	if err := s.Update(t.Context(), func(tx store.Tx) error { return tx.PutParticipant(t.Context(), p) }); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s store.Store) ivs.Participant {
	t.Helper()
	p, err := s.GetParticipant(t.Context(), "st", "se", "p")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHitsAndInvalidation(t *testing.T) {
	c := readcache.New(openSQLite(t), 0)
	if _, err := c.GetParticipant(t.Context(), "st", "se", "p"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("before the join: %v, want ErrNotFound", err)
	}
	put(t, c, participant(1)) // a miss is not remembered: the participant is read after its join
	if p := get(t, c); p.UserID != "1" {
		t.Fatalf("after the join: %q", p.UserID)
	}
	got := get(t, c)
	got.Attributes["n"] = "changed by the caller" // the caller's copy is its own
	if hits, _ := c.Stats(); hits != 1 {
		t.Fatalf("hits = %d after reading twice, want 1", hits)
	}
	if p := get(t, c); p.Attributes["n"] != "1" {
		t.Fatalf("the cache's copy changed with the caller's: %v", p.Attributes)
	}

	put(t, c, participant(2))
	if p := get(t, c); p.UserID != "2" || p.Attributes["n"] != "2" {
		t.Fatalf("after PutParticipant: %+v", p)
	}
	// A failed fn still forgets what it touched (a savepoint rolled back; nothing changes in the store).
	boom := errors.New("boom")
	err := c.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.PutParticipant(t.Context(), participant(3)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if p := get(t, c); p.UserID != "2" {
		t.Fatalf("after a rolled-back write: %q", p.UserID)
	}
}

func TestDeletionsForgetEverything(t *testing.T) {
	ctx := t.Context()
	c := readcache.New(openSQLite(t), 0)
	st := ivs.Stage{ID: "st", Name: "x", CreatedAt: time.Unix(1700000000, 0).UTC()}
	if err := c.Update(ctx, func(tx store.Tx) error { return tx.InsertStage(ctx, st) }); err != nil {
		t.Fatal(err)
	}
	put(t, c, participant(1))
	get(t, c)
	if err := c.Update(ctx, func(tx store.Tx) error { return tx.DeleteStage(ctx, "st") }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetParticipant(ctx, "st", "se", "p"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after DeleteStage: %v, want ErrNotFound", err)
	}

	// DeleteEndedBefore: a session that ended, with its participant.
	sess := ivs.Session{StageID: "st2", ID: "se", StartTime: time.Unix(1700000000, 0).UTC(), EndTime: time.Unix(1700000100, 0).UTC()}
	p := participant(1)
	p.StageID = "st2"
	if err := c.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertStage(ctx, ivs.Stage{ID: "st2", CreatedAt: sess.StartTime}); err != nil {
			return err
		}
		if err := tx.InsertSession(ctx, sess); err != nil {
			return err
		}
		return tx.PutParticipant(ctx, p)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetParticipant(ctx, "st2", "se", "p"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.DeleteEndedBefore(ctx, time.Unix(1800000000, 0)); err != nil || n != 1 {
		t.Fatalf("DeleteEndedBefore = %d, %v", n, err)
	}
	if _, err := c.GetParticipant(ctx, "st2", "se", "p"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after DeleteEndedBefore: %v, want ErrNotFound", err)
	}
}

// slowReads holds GetParticipant after it has read the store, until release is closed.
type slowReads struct {
	store.Store
	read    chan struct{}
	release chan struct{}
}

func (s *slowReads) GetParticipant(ctx context.Context, st ivs.StageID, se ivs.SessionID, id ivs.ParticipantID) (ivs.Participant, error) {
	p, err := s.Store.GetParticipant(ctx, st, se, id)
	close(s.read)
	<-s.release
	return p, err
}

// A row read before a write commits must not be remembered after the write's invalidation: otherwise the
// cache would answer the old row until the next write.
func TestReadOverlappingAWrite(t *testing.T) {
	base := openSQLite(t)
	put(t, base, participant(1))
	slow := &slowReads{Store: base, read: make(chan struct{}), release: make(chan struct{})}
	c := readcache.New(slow, 0)

	done := make(chan ivs.Participant)
	go func() {
		p, _ := c.GetParticipant(context.Background(), "st", "se", "p")
		done <- p
	}()
	<-slow.read               // the reader holds version 1
	put(t, c, participant(2)) // committed and invalidated meanwhile
	close(slow.release)
	if p := <-done; p.UserID != "1" {
		t.Fatalf("the overlapping read returned %q, want the row it read (1)", p.UserID)
	}
	slow.read, slow.release = make(chan struct{}), make(chan struct{})
	close(slow.release)
	if p := get(t, c); p.UserID != "2" {
		t.Fatalf("after the write: %q, want 2 (the overlapping read's row was kept)", p.UserID)
	}
}

// Readers racing one writer never see a version older than the last acknowledged write.
func TestNoStaleReadAfterAck(t *testing.T) {
	c := readcache.New(openSQLite(t), 0)
	put(t, c, participant(0))
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				want := acked.Load()
				p, err := c.GetParticipant(context.Background(), "st", "se", "p")
				if err != nil {
					errs <- err
					return
				}
				var n int64
				fmt.Sscan(p.UserID, &n)
				if n < want {
					errs <- fmt.Errorf("read version %d after version %d was acknowledged", n, want)
					return
				}
			}
		}()
	}
	writes := 300
	if testing.Short() {
		writes = 50
	}
	for i := 1; i <= writes; i++ {
		put(t, c, participant(i))
		acked.Store(int64(i))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if hits, misses := c.Stats(); hits == 0 || misses == 0 {
		t.Fatalf("hits %d, misses %d: the race exercised neither path", hits, misses)
	}
}

func TestBounded(t *testing.T) {
	s := openSQLite(t)
	c := readcache.New(s, 8)
	for i := range 20 {
		p := participant(i)
		p.ID = ivs.ParticipantID(fmt.Sprint("p", i))
		put(t, c, p)
		if _, err := c.GetParticipant(t.Context(), "st", "se", p.ID); err != nil {
			t.Fatal(err)
		}
	}
	// The last participant read is still there.
	before, _ := c.Stats()
	if _, err := c.GetParticipant(t.Context(), "st", "se", "p19"); err != nil {
		t.Fatal(err)
	}
	if after, _ := c.Stats(); after != before+1 {
		t.Fatal("the last participant read is not in the cache")
	}
	hits := 0
	for i := range 20 {
		before, _ := c.Stats()
		if _, err := c.GetParticipant(t.Context(), "st", "se", ivs.ParticipantID(fmt.Sprint("p", i))); err != nil {
			t.Fatal(err)
		}
		if after, _ := c.Stats(); after > before {
			hits++
		}
	}
	if hits > 8 {
		t.Fatalf("%d of 20 participants answered from a cache of 8", hits)
	}
}
