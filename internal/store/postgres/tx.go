package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// tx is one READ COMMITTED transaction. Its reads see its own writes.
type tx struct {
	reads
	tx pgx.Tx
}

var _ store.Tx = (*tx)(nil)

// Advisory lock classes, the first key of pg_advisory_xact_lock(class, key). A transaction-scoped advisory
// lock is released when its transaction ends, like a row lock, and it locks something that has no row: "the
// set of stages" that a quota check counts, or the tags of one ARN. The locks are database-wide: schemas of
// one database share them, which at worst makes their writers take turns.
const (
	lockStages     int32 = 0x6f730001 // CountStages in a transaction
	lockPublicKeys int32 = 0x6f730002 // CountPublicKeys and ListPublicKeys in a transaction
	lockTags       int32 = 0x6f730003 // Tags and MergeTags of one ARN (key: hashtext(arn))
	lockRetention  int32 = 0x6f730004 // one DeleteEndedBefore batch at a time
)

func (t *tx) lock(ctx context.Context, class, key int32) error {
	if _, err := t.tx.Exec(ctx, qLock, class, key); err != nil {
		return fmt.Errorf("postgres: lock: %w", err)
	}
	return nil
}

func (t *tx) lockARN(ctx context.Context, arn string) error {
	if _, err := t.tx.Exec(ctx, qLockArn, lockTags, arn); err != nil {
		return fmt.Errorf("postgres: lock tags: %w", err)
	}
	return nil
}

// exec runs a write statement and returns the number of rows it changed.
func (t *tx) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// The reads a transaction makes before deciding to write (a quota, a uniqueness check, a tag limit) wait for
// every other transaction that made the same read to end. READ COMMITTED takes a new snapshot per
// statement, so the count that follows the lock sees what the previous holder committed.

func (t *tx) CountStages(ctx context.Context) (int, error) {
	if err := t.lock(ctx, lockStages, 0); err != nil {
		return 0, err
	}
	return t.reads.CountStages(ctx)
}

func (t *tx) CountPublicKeys(ctx context.Context) (int, error) {
	if err := t.lock(ctx, lockPublicKeys, 0); err != nil {
		return 0, err
	}
	return t.reads.CountPublicKeys(ctx)
}

func (t *tx) ListPublicKeys(ctx context.Context, p store.Page) ([]ivs.PublicKey, error) {
	if err := t.lock(ctx, lockPublicKeys, 0); err != nil {
		return nil, err
	}
	return t.reads.ListPublicKeys(ctx, p)
}

func (t *tx) Tags(ctx context.Context, arn string) (map[string]string, error) {
	if err := t.lockARN(ctx, arn); err != nil {
		return nil, err
	}
	return t.reads.Tags(ctx, arn)
}

func (t *tx) LockStage(ctx context.Context, id ivs.StageID) (ivs.Stage, error) {
	return get(t.tx.QueryRow(ctx, qLockStage, string(id)), scanStage, "stage "+string(id))
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
	n, err := t.exec(ctx, qInsertStage, string(s.ID), s.Name, string(s.ActiveSessionID), created, recID, recDoc)
	if err != nil {
		return fmt.Errorf("postgres: insert stage %s: %w", s.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: insert stage %s: %w", s.ID, store.ErrExists)
	}
	return nil
}

func (t *tx) UpdateStage(ctx context.Context, s ivs.Stage) error {
	recID, recDoc, err := store.EncodeRecording(s.Recording)
	if err != nil {
		return err
	}
	n, err := t.exec(ctx, qUpdateStage, s.Name, string(s.ActiveSessionID), recID, recDoc, string(s.ID))
	if err != nil {
		return fmt.Errorf("postgres: update stage %s: %w", s.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: update stage %s: %w", s.ID, store.ErrNotFound)
	}
	return nil
}

func (t *tx) DeleteStage(ctx context.Context, id ivs.StageID) error {
	n, err := t.exec(ctx, qDeleteStage, string(id))
	if err != nil {
		return fmt.Errorf("postgres: delete stage %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: delete stage %s: %w", id, store.ErrNotFound)
	}
	for _, q := range []string{qDeleteStageEvs, qDeleteStageSeqs, qDeleteStageParts, qDeleteStageSess, qDeleteStageRevs, qDeleteStageOwner} {
		if _, err := t.exec(ctx, q, string(id)); err != nil {
			return fmt.Errorf("postgres: delete stage %s: %w", id, err)
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
	n, err := t.exec(ctx, qInsertSession, string(s.StageID), string(s.ID), start, end)
	if err != nil {
		return fmt.Errorf("postgres: insert session %s/%s: %w", s.StageID, s.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: insert session %s/%s: %w", s.StageID, s.ID, store.ErrExists)
	}
	return nil
}

func (t *tx) UpdateSession(ctx context.Context, s ivs.Session) error {
	end, err := nanos(s.EndTime)
	if err != nil {
		return err
	}
	n, err := t.exec(ctx, qUpdateSession, end, string(s.StageID), string(s.ID))
	if err != nil {
		return fmt.Errorf("postgres: update session %s/%s: %w", s.StageID, s.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: update session %s/%s: %w", s.StageID, s.ID, store.ErrNotFound)
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
			return fmt.Errorf("postgres: put participant %s: %w", p.ID, err)
		}
		attrs = string(b)
	}
	c := p.Client
	_, err = t.exec(ctx, qPutParticipant, string(p.StageID), string(p.SessionID), bin(string(p.ID)), bin(p.UserID),
		string(p.State), joined, attrs, p.Published, bin(c.ISPName), bin(c.OSName), bin(c.OSVersion), bin(c.BrowserName),
		bin(c.BrowserVersion), bin(c.SDKVersion), string(c.Protocol))
	if err != nil {
		return fmt.Errorf("postgres: put participant %s/%s/%s: %w", p.StageID, p.SessionID, p.ID, err)
	}
	return nil
}

func (t *tx) SetParticipantRecording(ctx context.Context, stage ivs.StageID, session ivs.SessionID, id ivs.ParticipantID, r ivs.ParticipantRecording) error {
	state := r.State
	if state == "" {
		state = ivs.RecordingDisabled
	}
	n, err := t.exec(ctx, qSetParticipantRecording, r.BucketName, bin(r.Prefix), string(state), string(stage), string(session), bin(string(id)))
	if err != nil {
		return fmt.Errorf("postgres: set participant recording %s/%s/%s: %w", stage, session, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: participant %s/%s/%s", store.ErrNotFound, stage, session, id)
	}
	return nil
}

func (t *tx) AppendEvent(ctx context.Context, e *ivs.Event) error {
	at, err := nanos(e.Time)
	if err != nil {
		return err
	}
	var seq int64
	err = t.tx.QueryRow(ctx, qAppendEvent, string(e.StageID), string(e.SessionID), bin(string(e.ParticipantID)),
		string(e.Name), at, bin(string(e.RemoteParticipantID)), string(e.ErrorCode)).Scan(&seq)
	if err != nil {
		return fmt.Errorf("postgres: append event %s/%s/%s: %w", e.StageID, e.SessionID, e.ParticipantID, err)
	}
	e.Seq = seq
	return nil
}

func (t *tx) InsertPublicKey(ctx context.Context, k ivs.PublicKey) error {
	created, err := nanos(k.CreatedAt)
	if err != nil {
		return err
	}
	n, err := t.exec(ctx, qInsertPublicKey, string(k.ID), k.Name, bin(k.Material), k.Fingerprint, created)
	if err != nil {
		return fmt.Errorf("postgres: insert public key %s: %w", k.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: insert public key %s: %w", k.ID, store.ErrExists)
	}
	return nil
}

func (t *tx) DeletePublicKey(ctx context.Context, id ivs.PublicKeyID) error {
	n, err := t.exec(ctx, qDeletePublicKey, string(id))
	if err != nil {
		return fmt.Errorf("postgres: delete public key %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: delete public key %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (t *tx) MergeTags(ctx context.Context, arn string, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	// The same lock as Tags: a transaction that read the tags to check a limit holds it until it ends.
	if err := t.lockARN(ctx, arn); err != nil {
		return err
	}
	for k, v := range tags {
		if _, err := t.exec(ctx, qMergeTag, arn, bin(k), bin(v)); err != nil {
			return fmt.Errorf("postgres: merge tags: %w", err)
		}
	}
	return nil
}

func (t *tx) RemoveTags(ctx context.Context, arn string, keys []string) error {
	for _, k := range keys {
		if _, err := t.exec(ctx, qRemoveTag, arn, bin(k)); err != nil {
			return fmt.Errorf("postgres: remove tags: %w", err)
		}
	}
	return nil
}

func (t *tx) DeleteTags(ctx context.Context, arn string) error {
	if _, err := t.exec(ctx, qDeleteTags, arn); err != nil {
		return fmt.Errorf("postgres: delete tags: %w", err)
	}
	return nil
}

func (t *tx) Revoke(ctx context.Context, stage ivs.StageID, id ivs.ParticipantID) error {
	if _, err := t.exec(ctx, qRevoke, string(stage), bin(string(id))); err != nil {
		return fmt.Errorf("postgres: revoke: %w", err)
	}
	return nil
}

type endedSession struct{ stage, id string }

func (t *tx) endedSessions(ctx context.Context, before int64, n int) ([]endedSession, error) {
	return list(ctx, t.reads, "ended sessions", n, func(sc scanner) (endedSession, error) {
		var e endedSession
		err := sc.Scan(&e.stage, &e.id)
		return e, err
	}, qEndedSessions, before, int64(n))
}
