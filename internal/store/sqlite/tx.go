package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// tx is one write transaction on the writer connection, shared by the fns of a group (group.go). Its reads
// see its own writes.
type tx struct {
	reads
	s       *Store
	tx      *sql.Tx
	stmts   [numStmts]*sql.Stmt
	touched []seqKey // sequence hints the running fn set (seqcache.go)

	// Appends not yet written (buffer.go): the fns' events and notifications, in order, and where the
	// running fn's begin.
	events []bufEvent
	notes  []bufNote
	chunk  []byte // a notification chunk's blob, being built (outbox.go)
	fn     fnState
	// broken: writing buffered rows failed, so the transaction cannot commit what its members wrote.
	broken error
}

var _ store.Tx = (*tx)(nil)

// stmt returns a statement for the running fn to execute: the buffered appends are written first, so that
// it sees them, and a write first opens the fn's savepoint (buffer.go).
func (t *tx) stmt(ctx context.Context, id stmtID) *sql.Stmt {
	t.before(ctx, isWrite(id))
	return t.bound(ctx, id)
}

// bound binds the writer pool's prepared statement to this transaction, once per statement per transaction.
// database/sql reuses the statement already prepared on the writer connection rather than preparing it again,
// and closes the binding when the transaction ends.
func (t *tx) bound(ctx context.Context, id stmtID) *sql.Stmt {
	st := t.stmts[id]
	if st == nil {
		st = t.tx.StmtContext(t.detach(ctx), t.s.wstmts[id])
		t.stmts[id] = st
	}
	return st
}

// detach keeps the caller's values but not its cancellation: a cancelled statement in a write transaction
// makes SQLite roll the whole transaction back (sqlite3_interrupt), the other callers' writes with it.
func (t *tx) detach(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// exec runs a write statement and returns the number of rows it changed.
func (t *tx) exec(ctx context.Context, id stmtID, args ...any) (int64, error) {
	ctx = t.detach(ctx)
	res, err := t.stmt(ctx, id).ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *tx) LockStage(ctx context.Context, id ivs.StageID) (ivs.Stage, error) {
	// The writer connection holds SQLite's write lock from BEGIN IMMEDIATE to the end of the transaction:
	// every write transaction is already serialised, so reading the stage is enough.
	return t.GetStage(ctx, id)
}

func (t *tx) InsertStage(ctx context.Context, s ivs.Stage) error {
	created, err := nanos(s.CreatedAt)
	if err != nil {
		return err
	}
	recID, recDoc, err := store.EncodeRecording(s.Recording)
	if err != nil {
		return err
	}
	n, err := t.exec(ctx, qInsertStage, s.ID, s.Name, s.ActiveSessionID, created, recID, recDoc)
	if err != nil {
		return fmt.Errorf("sqlite: insert stage %s: %w", s.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: insert stage %s: %w", s.ID, store.ErrExists)
	}
	return nil
}

func (t *tx) UpdateStage(ctx context.Context, s ivs.Stage) error {
	recID, recDoc, err := store.EncodeRecording(s.Recording)
	if err != nil {
		return err
	}
	n, err := t.exec(ctx, qUpdateStage, s.Name, s.ActiveSessionID, recID, recDoc, s.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update stage %s: %w", s.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: update stage %s: %w", s.ID, store.ErrNotFound)
	}
	return nil
}

func (t *tx) DeleteStage(ctx context.Context, id ivs.StageID) error {
	n, err := t.exec(ctx, qDeleteStage, id)
	if err != nil {
		return fmt.Errorf("sqlite: delete stage %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete stage %s: %w", id, store.ErrNotFound)
	}
	t.s.seqs.clear() // its events go
	for _, q := range []stmtID{qDeleteStageEvents, qDeleteStageParticipants, qDeleteStageSessions, qDeleteStageRevocations} {
		if _, err := t.exec(ctx, q, id); err != nil {
			return fmt.Errorf("sqlite: delete stage %s: %w", id, err)
		}
	}
	return nil
}

func (t *tx) InsertSession(ctx context.Context, s ivs.Session) error {
	start, err := nanos(s.StartTime)
	if err != nil {
		return err
	}
	end, err := nanos(s.EndTime)
	if err != nil {
		return err
	}
	n, err := t.exec(ctx, qInsertSession, s.StageID, s.ID, start, end)
	if err != nil {
		return fmt.Errorf("sqlite: insert session %s/%s: %w", s.StageID, s.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: insert session %s/%s: %w", s.StageID, s.ID, store.ErrExists)
	}
	return nil
}

func (t *tx) UpdateSession(ctx context.Context, s ivs.Session) error {
	end, err := nanos(s.EndTime)
	if err != nil {
		return err
	}
	n, err := t.exec(ctx, qUpdateSession, end, s.StageID, s.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update session %s/%s: %w", s.StageID, s.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: update session %s/%s: %w", s.StageID, s.ID, store.ErrNotFound)
	}
	return nil
}

func (t *tx) PutParticipant(ctx context.Context, p ivs.Participant) error {
	joined, err := nanos(p.FirstJoinTime)
	if err != nil {
		return err
	}
	attrs := "{}"
	if len(p.Attributes) > 0 {
		b, err := json.Marshal(p.Attributes)
		if err != nil {
			return fmt.Errorf("sqlite: put participant %s: %w", p.ID, err)
		}
		attrs = string(b)
	}
	c := p.Client
	_, err = t.exec(ctx, qPutParticipant, p.StageID, p.SessionID, p.ID, p.UserID, p.State, joined, attrs, p.Published,
		c.ISPName, c.OSName, c.OSVersion, c.BrowserName, c.BrowserVersion, c.SDKVersion, c.Protocol)
	if err != nil {
		return fmt.Errorf("sqlite: put participant %s/%s/%s: %w", p.StageID, p.SessionID, p.ID, err)
	}
	return nil
}

func (t *tx) SetParticipantRecording(ctx context.Context, stage ivs.StageID, session ivs.SessionID, id ivs.ParticipantID, r ivs.ParticipantRecording) error {
	state := r.State
	if state == "" {
		state = ivs.RecordingDisabled
	}
	n, err := t.exec(ctx, qSetParticipantRecording, r.BucketName, r.Prefix, state, stage, session, id)
	if err != nil {
		return fmt.Errorf("sqlite: set participant recording %s/%s/%s: %w", stage, session, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: participant %s/%s/%s", store.ErrNotFound, stage, session, id)
	}
	return nil
}

// AppendEvent buffers the event (buffer.go) with the Seq after the participant's last: known from the
// hint (seqcache.go), or read.
func (t *tx) AppendEvent(ctx context.Context, e *ivs.Event) error {
	at, err := nanos(e.Time)
	if err != nil {
		return err
	}
	k := seqKey{e.StageID, e.SessionID, e.ParticipantID}
	last, ok := t.s.seqs.get(k)
	if !ok {
		// The read writes the buffered rows first, so it sees this transaction's events.
		ctx = t.detach(ctx)
		if err := t.stmt(ctx, qLastSeq).QueryRowContext(ctx, string(e.StageID), string(e.SessionID), string(e.ParticipantID)).Scan(&last); err != nil {
			return fmt.Errorf("sqlite: append event %s/%s/%s: %w", e.StageID, e.SessionID, e.ParticipantID, err)
		}
	}
	seq := last + 1
	t.events = append(t.events, bufEvent{stage: string(e.StageID), session: string(e.SessionID), participant: string(e.ParticipantID),
		seq: seq, name: string(e.Name), at: at, remote: string(e.RemoteParticipantID), code: string(e.ErrorCode)})
	t.hint(k, seq)
	e.Seq = seq
	return nil
}

// hint records a participant's last Seq, remembering that this fn set it in case it is rolled back.
func (t *tx) hint(k seqKey, seq int64) {
	t.s.seqs.set(k, seq)
	t.touched = append(t.touched, k)
}

func (t *tx) InsertPublicKey(ctx context.Context, k ivs.PublicKey) error {
	created, err := nanos(k.CreatedAt)
	if err != nil {
		return err
	}
	n, err := t.exec(ctx, qInsertPublicKey, k.ID, k.Name, k.Material, k.Fingerprint, created)
	if err != nil {
		return fmt.Errorf("sqlite: insert public key %s: %w", k.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: insert public key %s: %w", k.ID, store.ErrExists)
	}
	return nil
}

func (t *tx) DeletePublicKey(ctx context.Context, id ivs.PublicKeyID) error {
	n, err := t.exec(ctx, qDeletePublicKey, id)
	if err != nil {
		return fmt.Errorf("sqlite: delete public key %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete public key %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (t *tx) MergeTags(ctx context.Context, arn string, tags map[string]string) error {
	for k, v := range tags {
		if _, err := t.exec(ctx, qMergeTag, arn, k, v); err != nil {
			return fmt.Errorf("sqlite: merge tags: %w", err)
		}
	}
	return nil
}

func (t *tx) RemoveTags(ctx context.Context, arn string, keys []string) error {
	for _, k := range keys {
		if _, err := t.exec(ctx, qRemoveTag, arn, k); err != nil {
			return fmt.Errorf("sqlite: remove tags: %w", err)
		}
	}
	return nil
}

func (t *tx) DeleteTags(ctx context.Context, arn string) error {
	if _, err := t.exec(ctx, qDeleteTags, arn); err != nil {
		return fmt.Errorf("sqlite: delete tags: %w", err)
	}
	return nil
}

func (t *tx) Revoke(ctx context.Context, stage ivs.StageID, id ivs.ParticipantID) error {
	if _, err := t.exec(ctx, qRevoke, stage, id); err != nil {
		return fmt.Errorf("sqlite: revoke: %w", err)
	}
	return nil
}

func (t *tx) endedSessions(ctx context.Context, before int64, n int) ([]endedSession, error) {
	return list(ctx, t.reads, "ended sessions", n, func(sc scanner) (endedSession, error) {
		var e endedSession
		err := sc.Scan(&e.StageID, &e.ID)
		return e, err
	}, qEndedSessions, before, n)
}
