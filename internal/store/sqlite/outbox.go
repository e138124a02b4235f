package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// The notification log and the webhooks' delivery state (0004_notifications.sql). SQLite commits one write
// transaction at a time, so what a reader sees of the log has no holes: ListNotifications needs no horizon.

const (
	// The seq is the writer's (buffer.go, seqcache.go): an explicit value in an AUTOINCREMENT column is
	// stored as given and moves sqlite_sequence past it, as a generated one would.
	appendNotificationSQL = `INSERT INTO notifications (seq, stage_id, session_id, kind, time, detail) VALUES (?, ?, ?, ?, ?, ?)`
	// The last seq the log has handed out, even if deleted since: AUTOINCREMENT never reuses one.
	lastNotificationSeqSQL = `SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'notifications'), 0),
		coalesce((SELECT max(seq) FROM notifications), 0))`
	notificationCols = `seq, stage_id, session_id, kind, time, detail`
)

// AppendNotification buffers n with the seq after the log's last (buffer.go).
func (t *tx) AppendNotification(ctx context.Context, n *store.Notification) error {
	at, err := nanos(n.Time)
	if err != nil {
		return err
	}
	last, ok := t.s.seqs.lastNote()
	if !ok {
		c := t.detach(ctx)
		if err := t.sqlTx(c, false).QueryRowContext(c, lastNotificationSeqSQL).Scan(&last); err != nil {
			return fmt.Errorf("sqlite: append notification %s %s: %w", n.Kind, n.StageID, err)
		}
	}
	n.Seq = last + 1
	t.notes = append(t.notes, bufNote{seq: n.Seq, stage: string(n.StageID), session: string(n.SessionID), kind: n.Kind, at: at,
		detail: string(n.Detail)})
	t.s.seqs.setNote(n.Seq)
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

func (s *Store) ListNotifications(ctx context.Context, after int64, limit int) ([]store.Notification, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+notificationCols+` FROM notifications WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list notifications: %w", err)
	}
	defer rows.Close()
	var out []store.Notification
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list notifications: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list notifications: %w", err)
	}
	return out, nil
}

func (s *Store) GetNotification(ctx context.Context, seq int64) (store.Notification, error) {
	n, err := scanNotification(s.r.QueryRowContext(ctx, `SELECT `+notificationCols+` FROM notifications WHERE seq = ?`, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return n, fmt.Errorf("sqlite: notification %d: %w", seq, store.ErrNotFound)
	}
	if err != nil {
		return n, fmt.Errorf("sqlite: notification %d: %w", seq, err)
	}
	return n, nil
}

func (s *Store) LastNotification(ctx context.Context) (int64, error) {
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT coalesce((SELECT max(seq) FROM notifications), 0)`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("sqlite: last notification: %w", err)
	}
	return seq, nil
}

func (s *Store) AcquireDelivery(ctx context.Context, endpoint, owner string, ttl time.Duration) (cursor int64, ok bool, err error) {
	err = s.update(ctx, func(t *tx) error {
		c := t.detach(ctx)
		now := time.Now()
		var holder string
		var until int64
		err := t.sqlTx(c, false).QueryRowContext(c, `SELECT cursor, owner, lease_until FROM webhook_deliveries WHERE endpoint = ?`, endpoint).Scan(&cursor, &holder, &until)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// A new endpoint starts at the log's end.
			if err := t.sqlTx(c, false).QueryRowContext(c, `SELECT coalesce(max(seq), 0) FROM notifications`).Scan(&cursor); err != nil {
				return err
			}
			_, err = t.sqlTx(c, true).ExecContext(c, `INSERT INTO webhook_deliveries (endpoint, cursor, owner, lease_until) VALUES (?, ?, ?, ?)`,
				endpoint, cursor, owner, now.Add(ttl).UnixNano())
			ok = err == nil
			return err
		case err != nil:
			return err
		case holder != owner && holder != "" && until > now.UnixNano():
			return nil
		}
		_, err = t.sqlTx(c, true).ExecContext(c, `UPDATE webhook_deliveries SET owner = ?, lease_until = ? WHERE endpoint = ?`, owner, now.Add(ttl).UnixNano(), endpoint)
		ok = err == nil
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("sqlite: acquire delivery %s: %w", endpoint, err)
	}
	return cursor, ok, nil
}

func (s *Store) AdvanceDelivery(ctx context.Context, endpoint, owner string, cursor int64, ttl time.Duration, dead []store.DeadLetter, done []int64) error {
	err := s.update(ctx, func(t *tx) error {
		c := t.detach(ctx)
		now := time.Now()
		res, err := t.sqlTx(c, true).ExecContext(c, `UPDATE webhook_deliveries SET cursor = max(cursor, ?), lease_until = ? WHERE endpoint = ? AND owner = ?`,
			cursor, now.Add(ttl).UnixNano(), endpoint, owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, store.ErrLeaseLost)
		}
		for _, d := range dead {
			_, err := t.sqlTx(c, true).ExecContext(c, `INSERT INTO webhook_dead_letters (endpoint, seq, attempts, last_error, at, replay) VALUES (?, ?, ?, ?, ?, 0)
				ON CONFLICT (endpoint, seq) DO UPDATE SET attempts = attempts + excluded.attempts, last_error = excluded.last_error, at = excluded.at, replay = 0`,
				endpoint, d.Seq, d.Attempts, d.LastError, d.At.UnixNano())
			if err != nil {
				return err
			}
		}
		for _, seq := range done {
			if _, err := t.sqlTx(c, true).ExecContext(c, `DELETE FROM webhook_dead_letters WHERE endpoint = ? AND seq = ?`, endpoint, seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: advance delivery %s: %w", endpoint, err)
	}
	return nil
}

func (s *Store) ReleaseDelivery(ctx context.Context, endpoint, owner string) error {
	err := s.update(ctx, func(t *tx) error {
		_, err := t.sqlTx(ctx, true).ExecContext(t.detach(ctx), `UPDATE webhook_deliveries SET owner = '', lease_until = 0 WHERE endpoint = ? AND owner = ?`, endpoint, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: release delivery %s: %w", endpoint, err)
	}
	return nil
}

func (s *Store) DeadLetters(ctx context.Context, endpoint string) ([]store.DeadLetter, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT endpoint, seq, attempts, last_error, at, replay FROM webhook_dead_letters
		WHERE ? = '' OR endpoint = ? ORDER BY seq, endpoint`, endpoint, endpoint)
	if err != nil {
		return nil, fmt.Errorf("sqlite: dead letters: %w", err)
	}
	defer rows.Close()
	var out []store.DeadLetter
	for rows.Next() {
		var d store.DeadLetter
		var at int64
		if err := rows.Scan(&d.Endpoint, &d.Seq, &d.Attempts, &d.LastError, &at, &d.Replay); err != nil {
			return nil, fmt.Errorf("sqlite: dead letters: %w", err)
		}
		d.At = fromNanos(at)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: dead letters: %w", err)
	}
	return out, nil
}

func (s *Store) ReplayDeadLetters(ctx context.Context, endpoint string, seqs []int64) (int, error) {
	var n int64
	err := s.update(ctx, func(t *tx) error {
		q, args := `UPDATE webhook_dead_letters SET replay = 1 WHERE endpoint = ? AND replay = 0`, []any{endpoint}
		if len(seqs) > 0 {
			q += ` AND seq IN (?` + strings.Repeat(`, ?`, len(seqs)-1) + `)`
			for _, s := range seqs {
				args = append(args, s)
			}
		}
		res, err := t.sqlTx(ctx, true).ExecContext(t.detach(ctx), q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: replay dead letters %s: %w", endpoint, err)
	}
	return int(n), nil
}

// pruneNotifications is the notification log's part of the retention job (DeleteEndedBefore): notifications
// older than before go, a batch per transaction, and with them the dead letters that named them (a replay
// would have nothing to send).
func (s *Store) pruneNotifications(ctx context.Context, before int64) error {
	for {
		var n int64
		err := s.update(ctx, func(t *tx) error {
			res, err := t.sqlTx(ctx, true).ExecContext(t.detach(ctx), `DELETE FROM notifications WHERE seq IN
				(SELECT seq FROM notifications WHERE time < ? ORDER BY seq LIMIT ?)`, before, s.cfg.deleteBatch)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			_, err = t.sqlTx(ctx, true).ExecContext(t.detach(ctx), `DELETE FROM webhook_dead_letters
				WHERE NOT EXISTS (SELECT 1 FROM notifications n WHERE n.seq = webhook_dead_letters.seq)`)
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: prune notifications: %w", err)
		}
		if n < int64(s.cfg.deleteBatch) {
			return nil
		}
	}
}
