package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// The notification log and the webhooks' delivery state (0004_notifications.sql).
//
// Sequences are not transactional: seq 6 may be taken by a transaction that commits after the one that took
// 7, or by one that rolls back. A reader that went past 7 while 6 was in flight would never see 6. So
// ListNotifications returns only a prefix without holes, and when it meets a hole it waits until every
// transaction that could fill it has ended, then looks again: what is still missing then never commits.
//
// Why that wait is enough: a transaction takes its transaction id (pg_current_xact_id, in the statement
// that inserts the row, before the row's seq) before its seq, and seqs are handed out in increasing order.
// If seq g is missing while a higher seq r is visible in snapshot S, g was taken before r, r before r's
// commit, and that commit before S: g's transaction had its id before S, so its id is below S's xmax. Once
// the oldest running transaction id (xmin) reaches S's xmax, g's transaction has ended, and g is visible or
// never will be.

const (
	qAppendNotification = `WITH x AS MATERIALIZED (SELECT pg_current_xact_id() AS xid)
		INSERT INTO notifications (xid, stage_id, session_id, kind, time, detail)
		SELECT x.xid, $1, $2, $3, $4, $5 FROM x RETURNING seq`
	notificationCols = `seq, stage_id, session_id, kind, time, detail`
)

// holeWait bounds how long ListNotifications waits for the transactions that may fill a hole. A transaction
// of the domain lasts milliseconds; one that lasts longer (a long transaction of another program on the same
// database) only delays the readers: they get the prefix before the hole and ask again.
const holeWait = 2 * time.Second

func (t *tx) AppendNotification(ctx context.Context, n *store.Notification) error {
	at, err := nanos(n.Time)
	if err != nil {
		return err
	}
	if err := t.tx.QueryRow(ctx, qAppendNotification, string(n.StageID), string(n.SessionID), n.Kind, at, string(n.Detail)).Scan(&n.Seq); err != nil {
		return fmt.Errorf("postgres: append notification %s %s: %w", n.Kind, n.StageID, err)
	}
	return nil
}

func scanNotification(sc scanner) (store.Notification, error) {
	var n store.Notification
	var stage, session, detail string
	var at int64
	if err := sc.Scan(&n.Seq, &stage, &session, &n.Kind, &at, &detail); err != nil {
		return n, err
	}
	n.StageID, n.SessionID, n.Time, n.Detail = ivs.StageID(stage), ivs.SessionID(session), fromNanos(at), []byte(detail)
	return n, nil
}

// snapshotRead reads the notifications after after, with the xmax of the snapshot they were read in.
func (s *Store) snapshotRead(ctx context.Context, after int64, limit int) (ns []store.Notification, xmax uint64, err error) {
	err = pgx.BeginTxFunc(ctx, s.r, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(t pgx.Tx) error {
		// The first statement fixes the transaction's snapshot; the rows below are read in it.
		if err := t.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&xmax); err != nil {
			return err
		}
		rows, err := t.Query(ctx, `SELECT `+notificationCols+` FROM notifications WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
		if err != nil {
			return err
		}
		ns, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Notification, error) { return scanNotification(r) })
		return err
	})
	return ns, xmax, err
}

// prefix returns the notifications of ns that follow after without a hole, holes at or below dead excepted.
func prefix(ns []store.Notification, after, dead int64) []store.Notification {
	next := after + 1
	for i, n := range ns {
		if n.Seq != next && next <= dead {
			next = n.Seq // a hole that will never fill
		}
		if n.Seq != next {
			return ns[:i]
		}
		next++
	}
	return ns
}

func (s *Store) ListNotifications(ctx context.Context, after int64, limit int) ([]store.Notification, error) {
	ns, xmax, err := s.snapshotRead(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list notifications: %w", err)
	}
	first := prefix(ns, after, after)
	if len(first) == len(ns) {
		return ns, nil
	}
	// A hole: wait for the transactions that may fill it, then read again. Holes below the highest seq seen
	// now are then final. If they take too long, the reader gets what comes before the hole.
	highest := ns[len(ns)-1].Seq
	deadline := time.Now().Add(holeWait)
	for {
		var xmin uint64
		if err := s.r.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&xmin); err != nil {
			return nil, fmt.Errorf("postgres: list notifications: %w", err)
		}
		if xmin >= xmax {
			break
		}
		if time.Now().After(deadline) {
			return first, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	ns, _, err = s.snapshotRead(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list notifications: %w", err)
	}
	return prefix(ns, after, highest), nil
}

func (s *Store) GetNotification(ctx context.Context, seq int64) (store.Notification, error) {
	n, err := scanNotification(s.r.QueryRow(ctx, `SELECT `+notificationCols+` FROM notifications WHERE seq = $1`, seq))
	if errors.Is(err, pgx.ErrNoRows) {
		return n, fmt.Errorf("postgres: notification %d: %w", seq, store.ErrNotFound)
	}
	if err != nil {
		return n, fmt.Errorf("postgres: notification %d: %w", seq, err)
	}
	return n, nil
}

func (s *Store) LastNotification(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.r.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM notifications`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("postgres: last notification: %w", err)
	}
	return seq, nil
}

func (s *Store) AcquireDelivery(ctx context.Context, endpoint, owner string, ttl time.Duration) (cursor int64, ok bool, err error) {
	// A new endpoint starts at the log's end; an existing one is taken if free, lapsed or already owner's.
	err = s.w.QueryRow(ctx, `INSERT INTO webhook_deliveries AS d (endpoint, cursor, owner, lease_until)
		VALUES ($1, (SELECT coalesce(max(seq), 0) FROM notifications), $2, now() + make_interval(secs => $3))
		ON CONFLICT (endpoint) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
		WHERE d.owner = excluded.owner OR d.owner = '' OR d.lease_until < now()
		RETURNING d.cursor`, endpoint, owner, ttl.Seconds()).Scan(&cursor)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("postgres: acquire delivery %s: %w", endpoint, err)
	}
	return cursor, true, nil
}

func (s *Store) AdvanceDelivery(ctx context.Context, endpoint, owner string, cursor int64, ttl time.Duration, dead []store.DeadLetter, done []int64) error {
	err := s.update(ctx, func(t *tx) error {
		n, err := t.exec(ctx, `UPDATE webhook_deliveries SET cursor = greatest(cursor, $3), lease_until = now() + make_interval(secs => $4)
			WHERE endpoint = $1 AND owner = $2`, endpoint, owner, cursor, ttl.Seconds())
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrLeaseLost
		}
		for _, d := range dead {
			_, err := t.exec(ctx, `INSERT INTO webhook_dead_letters AS d (endpoint, seq, attempts, last_error, at, replay)
				VALUES ($1, $2, $3, $4, $5, false)
				ON CONFLICT (endpoint, seq) DO UPDATE SET attempts = d.attempts + excluded.attempts,
					last_error = excluded.last_error, at = excluded.at, replay = false`,
				endpoint, d.Seq, d.Attempts, d.LastError, d.At.UnixNano())
			if err != nil {
				return err
			}
		}
		if len(done) > 0 {
			if _, err := t.exec(ctx, `DELETE FROM webhook_dead_letters WHERE endpoint = $1 AND seq = ANY($2)`, endpoint, done); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: advance delivery %s: %w", endpoint, err)
	}
	return nil
}

func (s *Store) ReleaseDelivery(ctx context.Context, endpoint, owner string) error {
	if _, err := s.w.Exec(ctx, `UPDATE webhook_deliveries SET owner = '', lease_until = '-infinity' WHERE endpoint = $1 AND owner = $2`,
		endpoint, owner); err != nil {
		return fmt.Errorf("postgres: release delivery %s: %w", endpoint, err)
	}
	return nil
}

func (s *Store) DeadLetters(ctx context.Context, endpoint string) ([]store.DeadLetter, error) {
	rows, err := s.r.Query(ctx, `SELECT endpoint, seq, attempts, last_error, at, replay FROM webhook_dead_letters
		WHERE $1 = '' OR endpoint = $1 ORDER BY seq, endpoint`, endpoint)
	if err != nil {
		return nil, fmt.Errorf("postgres: dead letters: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.DeadLetter, error) {
		var d store.DeadLetter
		var at int64
		err := r.Scan(&d.Endpoint, &d.Seq, &d.Attempts, &d.LastError, &at, &d.Replay)
		d.At = fromNanos(at)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: dead letters: %w", err)
	}
	return out, nil
}

func (s *Store) ReplayDeadLetters(ctx context.Context, endpoint string, seqs []int64) (int, error) {
	if seqs == nil {
		seqs = []int64{} // an empty array, not NULL: every dead letter
	}
	tag, err := s.w.Exec(ctx, `UPDATE webhook_dead_letters SET replay = true
		WHERE endpoint = $1 AND NOT replay AND (cardinality($2::bigint[]) = 0 OR seq = ANY($2))`, endpoint, seqs)
	if err != nil {
		return 0, fmt.Errorf("postgres: replay dead letters %s: %w", endpoint, err)
	}
	return int(tag.RowsAffected()), nil
}

// pruneNotifications is the notification log's part of the retention job (DeleteEndedBefore): notifications
// older than before go, a batch per transaction, and with them the dead letters that named them (a replay
// would have nothing to send).
func (s *Store) pruneNotifications(ctx context.Context, before int64) error {
	for {
		var n int64
		err := s.update(ctx, func(t *tx) error {
			var err error
			n, err = t.exec(ctx, `DELETE FROM notifications WHERE seq IN
				(SELECT seq FROM notifications WHERE time < $1 ORDER BY seq LIMIT $2)`, before, s.cfg.deleteBatch)
			if err != nil || n == 0 {
				return err
			}
			_, err = t.exec(ctx, `DELETE FROM webhook_dead_letters d
				WHERE NOT EXISTS (SELECT 1 FROM notifications n WHERE n.seq = d.seq)`)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: prune notifications: %w", err)
		}
		if n < int64(s.cfg.deleteBatch) {
			return nil
		}
	}
}
