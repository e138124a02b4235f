package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// Buffered appends and lazy savepoints.
//
// Every participant event is an Update of two appends, the event and its notification (internal/stage,
// history.go), and group commit (group.go) runs those fns one after another on the writer connection. Run
// as statements, each fn cost two INSERTs, a SAVEPOINT and its RELEASE, each one a trip through
// database/sql and the driver. Instead:
//
//   - AppendEvent and AppendNotification only buffer their rows in the transaction, with the numbers they
//     will have (the event's Seq from its participant's hint, the notification's seq after the log's last,
//     seqcache.go): a fn sees its Seq at once, as before;
//   - the buffered rows are written when the transaction commits, all together; or earlier, when a fn
//     executes any other statement, read or write: so every read through the Tx still sees the writes of
//     its own fn and of the fns before it in the transaction (store.Store's Update contract);
//   - a fn's savepoint is opened only before its first write reaches SQLite (its own buffered rows or
//     another write). A fn that only appends never needs one: if it fails, its rows are dropped from the
//     buffer, never written.
//
// Writing rows that were buffered cannot meet a constraint when the numbers are right: the hints are the
// writer's own (seqcache.go), and the tables have no other constraint these rows could break. If it fails
// anyway (an I/O error, a full disk, a wrong hint), the transaction cannot keep what its members were told
// it would: it is lost as a whole and every member gets the error (errGroupLost), nothing half-written.

// bufEvent is an event row to be written (eventCols).
type bufEvent struct {
	stage, session, participant string
	seq                         int64
	name                        string
	at                          int64
	remote, code                string
}

// bufNote is a notification to be written, in a chunk (chunks.go).
type bufNote struct {
	seq                  int64
	stage, session, kind string
	at                   int64
	detail               string
}

// fnState is the running fn's part of the transaction.
type fnState struct {
	first         bool // the transaction's first fn: a failure rolls back everything, it needs no savepoint
	sp            bool // its savepoint is open
	events, notes int  // where its buffered rows begin in tx.events and tx.notes
	note          int64
	noteOK        bool // the notification seq hint when it started, restored if it fails
}

// startFn marks the start of a fn in the transaction. The writer is held.
func (t *tx) startFn(first bool) {
	t.touched = t.touched[:0]
	t.fn = fnState{first: first, events: len(t.events), notes: len(t.notes), note: t.s.seqs.note, noteOK: t.s.seqs.noteOK}
}

// dropFn forgets the running fn's buffered rows and the hints it set; what it wrote to SQLite is the
// caller's to roll back. The writer is held.
func (t *tx) dropFn() {
	for _, k := range t.touched {
		delete(t.s.seqs.m, k)
	}
	t.events, t.notes = t.events[:t.fn.events], t.notes[:t.fn.notes]
	t.s.seqs.note, t.s.seqs.noteOK = t.fn.note, t.fn.noteOK
}

// isWrite: the statement changes the database, so a fn that runs it needs its savepoint.
func isWrite(id stmtID) bool {
	return id >= firstWrite && id != qLastSeq && id != qEndedSessions && id != qDataVersion
}

// control runs one of the transaction's own statements (savepoints), as is.
func (t *tx) control(ctx context.Context, id stmtID) error {
	ctx = t.detach(ctx)
	_, err := t.bound(ctx, id).ExecContext(ctx)
	return err
}

// sqlTx is the transaction for a statement of the running fn that is not one of the prepared ones
// (outbox.go), readied as by stmt.
func (t *tx) sqlTx(ctx context.Context, write bool) *sql.Tx {
	t.before(ctx, write)
	return t.tx
}

// before readies the transaction for a statement of the running fn: the buffered rows are written, the
// fns' before it first; a write, or the fn's own rows, first opens its savepoint. A failure breaks the
// transaction (t.broken); the statement then runs on a transaction that will not commit.
func (t *tx) before(ctx context.Context, write bool) {
	if t.broken != nil {
		return
	}
	own := len(t.events) > t.fn.events || len(t.notes) > t.fn.notes
	if !own && !write && len(t.events) == 0 && len(t.notes) == 0 {
		return
	}
	ctx = t.detach(ctx)
	// The rows of the fns before: theirs, not this fn's to roll back.
	if err := t.flush(ctx, t.fn.events, t.fn.notes); err != nil {
		t.broken = err
		return
	}
	if (own || write) && !t.fn.first && !t.fn.sp {
		if err := t.control(ctx, qSavepoint); err != nil {
			t.broken = fmt.Errorf("savepoint: %w", err)
			return
		}
		t.fn.sp = true
	}
	if err := t.flush(ctx, len(t.events), len(t.notes)); err != nil {
		t.broken = err
	}
}

// flush writes the first ev buffered events and nt buffered notifications and takes them out of the
// buffer.
func (t *tx) flush(ctx context.Context, ev, nt int) error {
	if ev > 0 {
		st := t.bound(ctx, qAppendEvent)
		for i := range t.events[:ev] {
			e := &t.events[i]
			if _, err := st.ExecContext(ctx, e.stage, e.session, e.participant, e.seq, e.name, e.at, e.remote, e.code); err != nil {
				return fmt.Errorf("append event %s/%s/%s: %w", e.stage, e.session, e.participant, err)
			}
		}
		t.events = t.events[:copy(t.events, t.events[ev:])]
		t.fn.events = max(0, t.fn.events-ev)
	}
	if nt > 0 {
		if err := t.writeChunks(ctx, t.notes[:nt]); err != nil {
			return err
		}
		t.notes = t.notes[:copy(t.notes, t.notes[nt:])]
		t.fn.notes = max(0, t.fn.notes-nt)
	}
	return nil
}
