package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// pagesFixture: a store with one session of 300 participants, the first of them with 300 events.
func pagesFixture(t *testing.T, opts ...Option) (*Store, ivs.StageID, ivs.SessionID, ivs.ParticipantID) {
	t.Helper()
	s := openTest(t, filepath.Join(t.TempDir(), "pages.db"), opts...)
	ctx := context.Background()
	st, sess := ivs.NewStageID(), ivs.NewSessionID()
	var heavy ivs.ParticipantID
	t0 := time.Now().UTC()
	err := s.Update(ctx, func(tx store.Tx) error {
		for i := range 300 {
			p := ivs.Participant{StageID: st, SessionID: sess, ID: ivs.NewParticipantID(), UserID: "u",
				State: ivs.StateConnected, FirstJoinTime: t0.Add(time.Duration(i) * time.Millisecond)}
			if i == 0 {
				heavy = p.ID
			}
			if err := tx.PutParticipant(ctx, p); err != nil {
				return err
			}
			e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: heavy, Name: ivs.EventJoined, Time: t0}
			if err := tx.AppendEvent(ctx, &e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, st, sess, heavy
}

// TestPagesHonourContext: a page read outside a transaction does not hand its context to the driver
// (pages.go), but a cancelled caller gets no rows, and one waiting for a connection gives up with its context.
func TestPagesHonourContext(t *testing.T) {
	s, st, sess, heavy := pagesFixture(t, WithReaders(1))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.ListEvents(cancelled, st, sess, heavy, store.Page{Limit: 100}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListEvents with a cancelled context: %v", err)
	}
	if _, err := s.ListParticipantSummaries(cancelled, st, sess, store.ParticipantFilter{}, store.Page{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListParticipantSummaries with a cancelled context: %v", err)
	}

	// The pool's only connection is taken: a reader waits, until its deadline.
	c, err := s.pages.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.ListEvents(short, st, sess, heavy, store.Page{Limit: 100}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ListEvents waiting for a connection past its deadline: %v", err)
	}
	s.pages.put(c)
	if evs, err := s.ListEvents(context.Background(), st, sess, heavy, store.Page{}); err != nil || len(evs) != 300 {
		t.Fatalf("ListEvents, every event: %d, %v", len(evs), err)
	}
}

// TestPagesAfterClose: Close waits for a read in flight (its connection is in use), and a page read after
// Close fails rather than waiting for a connection that never returns.
func TestPagesAfterClose(t *testing.T) {
	s, st, sess, heavy := pagesFixture(t, WithReaders(1))
	inFlight, err := s.pages.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a page read held a connection", err)
	case <-time.After(50 * time.Millisecond):
	}
	s.pages.put(inFlight)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListEvents(context.Background(), st, sess, heavy, store.Page{Limit: 10}); !errors.Is(err, errStoreClosed) {
		t.Fatalf("ListEvents after Close: %v", err)
	}
}

// TestPagesConcurrent: more readers than connections, beside a writer, each page whole and in order (run
// with -race).
func TestPagesConcurrent(t *testing.T) {
	s, st, sess, heavy := pagesFixture(t, WithReaders(2))
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: ivs.NewParticipantID(), Name: ivs.EventJoined, Time: time.Now()}
			if err := s.Update(ctx, func(tx store.Tx) error { return tx.AppendEvent(ctx, &e) }); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var readers sync.WaitGroup
	for range 8 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for range 50 {
				evs, err := s.ListEvents(ctx, st, sess, heavy, store.Page{After: &store.Cursor{Seq: 100}, Limit: 101})
				if err != nil || len(evs) != 101 || evs[0].Seq != 101 || evs[100].Seq != 201 || evs[0].ParticipantID != heavy {
					t.Errorf("events page: %d rows, %v", len(evs), err)
					return
				}
				ps, err := s.ListParticipantSummaries(ctx, st, sess, store.ParticipantFilter{}, store.Page{Limit: 101})
				if err != nil || len(ps) != 101 || ps[0].ID != heavy {
					t.Errorf("participants page: %d rows, %v", len(ps), err)
					return
				}
			}
		}()
	}
	readers.Wait()
	close(stop)
	wg.Wait()
}
