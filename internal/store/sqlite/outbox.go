package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/openstage/openstage/internal/store"
)

// The notification log and the webhooks' delivery state (0004_notifications.sql). SQLite commits one write
// transaction at a time, so what a reader sees of the log has no holes: ListNotifications needs no horizon.

const (
	// A chunk of buffered notifications (chunks.go, buffer.go): the seqs are the writer's (seqcache.go); an
	// explicit value in the AUTOINCREMENT key is stored as given and moves sqlite_sequence past it, as a
	// generated one would.
	appendChunkSQL = `INSERT INTO notification_chunks (last_seq, first_seq, time, data) VALUES (?, ?, ?, ?)`
	// The last seq the log has handed out, even if deleted since: AUTOINCREMENT never reuses one.
	lastNotificationSeqSQL = `SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'notification_chunks'), 0),
		coalesce((SELECT max(last_seq) FROM notification_chunks), 0))`
	lastChunkSQL = `SELECT coalesce(max(last_seq), 0) FROM notification_chunks`
)

// AppendNotification buffers n with the seq after the log's last (buffer.go); the transaction's
// notifications are written as chunks (chunks.go).
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

// writeChunks writes notes, consecutive seqs, as chunks.
func (t *tx) writeChunks(ctx context.Context, notes []bufNote) error {
	st := t.bound(ctx, qAppendChunk)
	for len(notes) > 0 {
		b, n, at := nextChunk(t.chunk[:0], notes)
		t.chunk = b
		if _, err := st.ExecContext(ctx, notes[n-1].seq, notes[0].seq, at, b); err != nil {
			return fmt.Errorf("append notifications %d-%d: %w", notes[0].seq, notes[n-1].seq, err)
		}
		notes = notes[n:]
	}
	return nil
}

// ListNotifications reads the chunks that hold seqs above after, in order, until it has limit
// notifications.
func (s *Store) ListNotifications(ctx context.Context, after int64, limit int) ([]store.Notification, error) {
	if limit <= 0 {
		return nil, nil
	}
	// Each chunk read holds at least one notification above after: limit chunks are enough.
	rows, err := s.r.QueryContext(ctx, `SELECT first_seq, last_seq, data FROM notification_chunks WHERE last_seq > ? ORDER BY last_seq LIMIT ?`,
		after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list notifications: %w", err)
	}
	defer rows.Close()
	var out []store.Notification
	for len(out) < limit && rows.Next() {
		var first, last int64
		var data []byte
		if err := rows.Scan(&first, &last, &data); err != nil {
			return nil, fmt.Errorf("sqlite: list notifications: %w", err)
		}
		ns, err := decodeChunk(first, last, data, after, limit-len(out))
		if err != nil {
			return nil, fmt.Errorf("sqlite: list notifications: %w", err)
		}
		out = append(out, ns...)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list notifications: %w", err)
	}
	return out, nil
}

func (s *Store) GetNotification(ctx context.Context, seq int64) (store.Notification, error) {
	var first, last int64
	var data []byte
	err := s.r.QueryRowContext(ctx, `SELECT first_seq, last_seq, data FROM notification_chunks WHERE last_seq >= ? ORDER BY last_seq LIMIT 1`,
		seq).Scan(&first, &last, &data)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && first > seq) {
		return store.Notification{}, fmt.Errorf("sqlite: notification %d: %w", seq, store.ErrNotFound)
	}
	if err != nil {
		return store.Notification{}, fmt.Errorf("sqlite: notification %d: %w", seq, err)
	}
	ns, err := decodeChunk(first, last, data, seq-1, 1)
	if err != nil {
		return store.Notification{}, fmt.Errorf("sqlite: notification %d: %w", seq, err)
	}
	return ns[0], nil
}

func (s *Store) LastNotification(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.r.QueryRowContext(ctx, lastChunkSQL).Scan(&seq); err != nil {
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
			if err := t.sqlTx(c, false).QueryRowContext(c, lastChunkSQL).Scan(&cursor); err != nil {
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

// pruneNotifications is the notification log's part of the retention job (DeleteEndedBefore): the chunks
// whose notifications are all older than before go, a batch of chunks per transaction, and with them the
// dead letters that named their notifications (a replay would have nothing to send).
func (s *Store) pruneNotifications(ctx context.Context, before int64) error {
	for {
		var n int64
		err := s.update(ctx, func(t *tx) error {
			res, err := t.sqlTx(ctx, true).ExecContext(t.detach(ctx), `DELETE FROM notification_chunks WHERE last_seq IN
				(SELECT last_seq FROM notification_chunks WHERE time < ? ORDER BY last_seq LIMIT ?)`, before, s.cfg.deleteBatch)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			_, err = t.sqlTx(ctx, true).ExecContext(t.detach(ctx), `DELETE FROM webhook_dead_letters WHERE coalesce((SELECT c.first_seq
				FROM notification_chunks c WHERE c.last_seq >= webhook_dead_letters.seq ORDER BY c.last_seq LIMIT 1), seq + 1) > seq`)
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
