package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// TestBufferedAppendsAreRead: appends are buffered (buffer.go), yet every read through a Tx sees them: the
// fn's own, and those of the fns before it in the shared transaction.
func TestBufferedAppendsAreRead(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "b.db"))
	ctx := t.Context()
	st, sess, p := ivs.NewStageID(), ivs.NewSessionID(), ivs.NewParticipantID()
	ev := func(name ivs.EventName) *ivs.Event {
		return &ivs.Event{StageID: st, SessionID: sess, ParticipantID: p, Name: name, Time: time.Now()}
	}
	countEvents := func(tx store.Tx) (int, error) {
		evs, err := tx.ListEvents(ctx, st, sess, p, store.Page{Limit: 100})
		return len(evs), err
	}
	release, first := holdWriter(t, s, func(tx store.Tx) error {
		if err := tx.AppendEvent(ctx, ev(ivs.EventJoined)); err != nil {
			return err
		}
		if n, err := countEvents(tx); err != nil || n != 1 {
			return fmt.Errorf("the fn's own read: %d events, %v; want 1", n, err)
		}
		return tx.AppendEvent(ctx, ev(ivs.EventPublishStarted))
	})
	second := make(chan error, 1)
	go func() {
		second <- s.Update(ctx, func(tx store.Tx) error {
			if n, err := countEvents(tx); err != nil || n != 2 {
				return fmt.Errorf("the next fn's read: %d events, %v; want 2", n, err)
			}
			e := ev(ivs.EventPublishStopped)
			if err := tx.AppendEvent(ctx, e); err != nil {
				return err
			}
			if e.Seq != 3 {
				return fmt.Errorf("Seq %d, want 3", e.Seq)
			}
			return nil
		})
	}()
	waitWaiting(t, s, 1)
	before := s.Stats().Commits
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if c := s.Stats().Commits - before; c != 1 {
		t.Errorf("%d commits, want the one shared", c)
	}
	evs, err := s.ListEvents(ctx, st, sess, p, store.Page{Limit: 100})
	if err != nil || len(evs) != 3 || evs[2].Name != ivs.EventPublishStopped {
		t.Fatalf("stored: %+v, %v", evs, err)
	}
}

// TestBufferedAppendsRolledBack: a fn that fails takes its buffered appends with it, whether they were
// still buffered or already written inside its savepoint (it wrote something else after them), and the
// numbers it took are handed out again: no hole in a participant's Seq or in the notification log. The
// other fns of the transaction keep theirs.
func TestBufferedAppendsRolledBack(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "b.db"))
	ctx := t.Context()
	st, sess, p := ivs.NewStageID(), ivs.NewSessionID(), ivs.NewParticipantID()
	errBoom := errors.New("boom")
	appendBoth := func(tx store.Tx, marker string) (int64, int64, error) {
		e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: p, Name: ivs.EventJoined, Time: time.Now()}
		if err := tx.AppendEvent(ctx, &e); err != nil {
			return 0, 0, err
		}
		n := &store.Notification{StageID: st, SessionID: sess, Kind: "JOINED", Time: e.Time, Detail: []byte(`"` + marker + `"`)}
		err := tx.AppendNotification(ctx, n)
		return e.Seq, n.Seq, err
	}
	var got [][2]int64
	ok := func(marker string) func(store.Tx) error {
		return func(tx store.Tx) error {
			e, n, err := appendBoth(tx, marker)
			got = append(got, [2]int64{e, n})
			return err
		}
	}
	failing := func(marker string, write bool) func(store.Tx) error {
		return func(tx store.Tx) error {
			if _, _, err := appendBoth(tx, marker); err != nil {
				return err
			}
			if write { // its rows are written, inside its savepoint, before this
				if err := tx.Revoke(ctx, st, p); err != nil {
					return err
				}
			}
			return errBoom
		}
	}
	// One transaction: ok, failing (still buffered), ok, failing (written), ok.
	release, first := holdWriter(t, s, ok("a"))
	fns := []func(store.Tx) error{failing("x", false), ok("b"), failing("y", true), ok("c")}
	results := make([]chan error, len(fns))
	for i, fn := range fns {
		results[i] = make(chan error, 1)
		go func() { results[i] <- s.Update(ctx, fn) }()
		waitWaiting(t, s, int64(i+1)) // in this order
	}
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, res := range results {
		if err := <-res; (i%2 == 0) != errors.Is(err, errBoom) {
			t.Fatalf("fn %d: %v", i, err)
		}
	}
	// Alone, failing, then ok: the same again without a shared transaction.
	if err := s.Update(ctx, failing("z", false)); !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	if err := s.Update(ctx, ok("d")); err != nil {
		t.Fatal(err)
	}
	for i, g := range got {
		if g[0] != int64(i+1) || g[1] != got[0][1]+int64(i) {
			t.Fatalf("event and notification numbers %v: a hole or a repeat", got)
		}
	}
	if revoked, err := s.Revoked(ctx, st, p); err != nil || revoked {
		t.Fatalf("the failed fn's write: revoked %v, %v", revoked, err)
	}
	ns, err := s.ListNotifications(ctx, 0, 100)
	if err != nil || len(ns) != 4 {
		t.Fatalf("notifications %+v, %v", ns, err)
	}
	for i, n := range ns {
		if want := fmt.Sprintf(`"%c"`, "abcd"[i]); n.Seq != got[i][1] || string(n.Detail) != want {
			t.Errorf("notification %d = %d %s, want %d %s", i, n.Seq, n.Detail, got[i][1], want)
		}
	}
	evs, err := s.ListEvents(ctx, st, sess, p, store.Page{Limit: 100})
	if err != nil || len(evs) != 4 || evs[3].Seq != 4 {
		t.Fatalf("events %+v, %v", evs, err)
	}
}

// TestBufferedAppendsFailedWriteLosesTheTransaction: if buffered rows cannot be written when the
// transaction commits (here: a wrong sequence hint, planted), no member is told its writes are durable and
// none of them is stored; the next transaction starts afresh.
func TestBufferedAppendsFailedWriteLosesTheTransaction(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "b.db"))
	ctx := t.Context()
	st, sess := ivs.NewStageID(), ivs.NewSessionID()
	for _, lateRead := range []bool{false, true} {
		p := ivs.NewParticipantID()
		appendOne(t, s, st, sess, p)
		appendOne(t, s, st, sess, p)
		release, first := holdWriter(t, s, func(tx store.Tx) error { return insertStage(ctx, tx, fmt.Sprint("ok", lateRead)) })
		second := make(chan error, 1)
		go func() {
			second <- s.Update(ctx, func(tx store.Tx) error {
				s.seqs.set(seqKey{st, sess, p}, 1) // wrong: the participant has 2 events
				e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: p, Name: ivs.EventLeft, Time: time.Now()}
				return tx.AppendEvent(ctx, &e)
			})
		}()
		waitWaiting(t, s, 1)
		third := make(chan error, 1)
		if lateRead { // a read of the next fn writes the buffered rows, and fails it
			go func() {
				third <- s.Update(ctx, func(tx store.Tx) error {
					_, err := tx.GetStage(ctx, "nonexistent")
					if !errors.Is(err, store.ErrNotFound) {
						return err
					}
					return nil
				})
			}()
			waitWaiting(t, s, 2)
		} else {
			third <- errGroupLost
		}
		release()
		for i, err := range []error{<-first, <-second, <-third} {
			if !errors.Is(err, errGroupLost) {
				t.Errorf("lateRead %v: member %d: %v, want errGroupLost", lateRead, i, err)
			}
		}
		if stageExists(t, s, fmt.Sprint("ok", lateRead)) {
			t.Errorf("lateRead %v: a lost member's write was stored", lateRead)
		}
		if got := appendOne(t, s, st, sess, p); got != 3 {
			t.Fatalf("lateRead %v: Seq %d after the lost transaction, want 3", lateRead, got)
		}
	}
}
