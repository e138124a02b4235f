package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// Group commit.
//
// A commit with synchronous=FULL costs an fsync of the WAL, about half a millisecond on an ordinary disk, and
// the single writer connection can do nothing else meanwhile: one transaction per Update caps the store at a
// couple of thousand durable writes a second, however many callers there are. Concurrent Update calls
// therefore share transactions. Each caller still runs its own fn, on its own goroutine, on the one open
// write transaction, inside a savepoint of its own (opened only when its first write reaches SQLite; appends
// are buffered until then, buffer.go); the caller that finds nobody waiting behind it commits the transaction
// for everyone in it. So:
//
//   - every caller is acknowledged only after the commit that holds its writes has returned: Update returns
//     nil only once the writes are durable, and returns the commit's error if the commit fails;
//   - a fn that fails or panics is rolled back to its savepoint (its buffered appends dropped) and takes
//     nothing of the others with it; the first fn of a transaction needs no savepoint: if it fails, the
//     transaction holds nothing else and is rolled back whole;
//   - fns still run one at a time, in the order they got the writer, and a fn's reads through its Tx see the
//     writes of the fns before it in the same transaction, which commit with (or before) its own.
//
// A lone caller pays nothing for this: with no one waiting it commits at once, as before.

// maxGroup bounds how many fns share one transaction, so a steady stream of writers still commits often.
const maxGroup = 512

// group is one open write transaction and the callers whose fns are in it.
type group struct {
	t       *tx
	members int           // fns that succeeded in it
	done    chan struct{} // closed when it has been committed or lost
	err     error         // why it did not commit; read after done
}

// Stats count the store's write transactions.
type Stats struct {
	Updates int64 // Update (and internal) calls whose writes were committed
	Commits int64 // transactions committed, each one fsync of the WAL
}

// Stats returns the counts since Open.
func (s *Store) Stats() Stats {
	return Stats{Updates: s.updates.Load(), Commits: s.commits.Load()}
}

// errGroupLost: SQLite rolled back the whole shared transaction (an I/O error, a full disk, an interrupt), so
// the writes of the callers before the failing one are gone too.
var errGroupLost = errors.New("sqlite: the write transaction was rolled back by SQLite")

func (s *Store) update(ctx context.Context, fn func(*tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// The writer is taken without regard to ctx: a caller who gave up waiting could leave a transaction that
	// counted on it to commit behind, uncommitted. The wait is bounded by the fns ahead of it.
	s.waiting.Add(1)
	s.wlock <- struct{}{}
	s.waiting.Add(-1)
	if s.closed {
		s.release()
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		s.release()
		return err
	}
	g := s.cur
	first := g == nil
	if first {
		sqlTx, err := s.w.BeginTx(context.Background(), nil) // the transaction outlives this caller's ctx
		if err != nil {
			s.release()
			return fmt.Errorf("sqlite: begin: %w", err)
		}
		t := &tx{s: s, tx: sqlTx}
		t.reads = reads{q: t}
		if err := s.seqs.check(ctx, t); err != nil {
			_ = sqlTx.Rollback()
			s.release()
			return fmt.Errorf("sqlite: begin: %w", err)
		}
		g = &group{t: t, done: make(chan struct{})}
		s.cur = g
	}
	// The fn's savepoint is opened when its first write reaches SQLite, if ever (buffer.go).
	g.t.startFn(first)
	ok := false
	defer func() {
		if ok {
			return
		}
		// fn returned an error, panicked, or called runtime.Goexit (t.FailNow in a test): nothing it wrote
		// may land. The panic, if any, continues once this returns.
		s.undo(g, first)
		s.release()
	}()
	err := fn(g.t)
	if err != nil {
		return err // the deferred undo rolls it back
	}
	ok = true
	if err := g.t.broken; err != nil {
		s.loseGroup(g, err)
		s.release()
		return g.err
	}
	if g.t.fn.sp {
		if err := g.t.control(ctx, qReleaseSavepoint); err != nil {
			s.loseGroup(g, err)
			s.release()
			return fmt.Errorf("sqlite: release savepoint: %w", err)
		}
	}
	g.members++
	if s.waiting.Load() > 0 && g.members < maxGroup {
		// Someone is about to take the writer: its fn joins this transaction, and it, or whoever comes
		// last, commits. Wait for that commit.
		s.release()
		<-g.done
		return g.err
	}
	s.commit(g)
	s.release()
	return g.err
}

// release gives the writer to the next caller, committing the open transaction first if nobody is waiting
// to join it: no transaction is ever left open without someone bound to commit it.
func (s *Store) release() {
	if g := s.cur; g != nil && s.waiting.Load() == 0 {
		s.commit(g)
	}
	<-s.wlock
}

// commit commits the open transaction and tells its members. The writer is held.
func (s *Store) commit(g *group) {
	s.cur = nil
	if g.members == 0 { // everyone in it failed and was rolled back
		_ = g.t.tx.Rollback()
	} else if err := g.t.flush(context.Background(), len(g.t.events), len(g.t.notes)); err != nil {
		// The members' buffered rows could not be written (buffer.go): none of their writes may land.
		_ = g.t.tx.Rollback()
		s.seqs.clear()
		g.err = fmt.Errorf("%w: %v", errGroupLost, err)
	} else if err := g.t.tx.Commit(); err != nil {
		s.seqs.clear() // what the transaction wrote is not there
		g.err = fmt.Errorf("sqlite: commit: %w", err)
	} else {
		s.commits.Add(1)
		s.updates.Add(int64(g.members))
	}
	close(g.done)
}

// undo rolls back the current fn's writes: its buffered rows are dropped, what it wrote to SQLite is
// rolled back to its savepoint. The writer is held.
func (s *Store) undo(g *group, first bool) {
	g.t.dropFn() // its sequence hints go with its writes
	if first {
		// The transaction holds this fn's writes and nothing else (the others join only after it): roll
		// it all back.
		s.cur = nil
		_ = g.t.tx.Rollback()
		close(g.done)
		return
	}
	if err := g.t.broken; err != nil {
		s.loseGroup(g, err)
		return
	}
	if !g.t.fn.sp {
		return // nothing of it reached SQLite
	}
	if err := g.t.control(context.Background(), qRollbackToSavepoint); err != nil {
		s.loseGroup(g, err)
		return
	}
	if err := g.t.control(context.Background(), qReleaseSavepoint); err != nil {
		s.loseGroup(g, err)
	}
}

// loseGroup ends a transaction SQLite has already rolled back (or that cannot go on): its members are told
// their writes are lost. The writer is held.
func (s *Store) loseGroup(g *group, cause error) {
	s.cur = nil
	s.seqs.clear()
	_ = g.t.tx.Rollback()
	g.err = fmt.Errorf("%w: %v", errGroupLost, cause)
	close(g.done)
}

var errClosed = errors.New("sqlite: store closed")

// groupState is the part of Store that group commit uses.
type groupState struct {
	wlock   chan struct{} // holding it = owning the writer connection and s.cur
	waiting atomic.Int64  // callers blocked on wlock
	cur     *group        // the open transaction, if any; guarded by wlock
	closed  bool          // guarded by wlock
	seqs    seqCache      // guarded by wlock
	updates atomic.Int64
	commits atomic.Int64
}

// closeWriter waits for the writer and marks the store closed: later Updates fail, and no transaction is
// left open.
func (s *Store) closeWriter() {
	s.waiting.Add(1)
	s.wlock <- struct{}{}
	s.waiting.Add(-1)
	s.closed = true
	// Whoever waits now only finds the store closed: commit the open transaction for its members here,
	// before the pools close under it.
	if g := s.cur; g != nil {
		s.commit(g)
	}
	<-s.wlock
}
