// Package postgres is the shared store: PostgreSQL through pgx/v5, which several openstage nodes can use at
// once. It behaves as the embedded store does (the storetest suite runs against both); what differs is how
// it gets there when the writers are other processes:
//
//   - Transactions run at READ COMMITTED. Decisions are serialised by locks that the transaction holds until
//     it ends: LockStage is SELECT ... FOR UPDATE; AppendEvent takes the participant's next Seq from a counter
//     row it locks; and the reads a transaction makes to check a limit before it writes (CountStages,
//     CountPublicKeys, ListPublicKeys, Tags) first take an advisory lock on what they read, so two nodes that
//     check the same quota or the same resource's tags at once take turns.
//   - Writes go through one connection pool and reads outside a transaction through another, whose
//     connections are read-only, so a transaction's fn that reads through the Store never waits for a
//     connection that another transaction holds.
//   - Migrations run at Open under an advisory lock, so nodes starting together apply each exactly once.
//   - Update never retries fn. Nothing here needs SERIALIZABLE's retries, but two nodes that append events
//     for the same participants in different orders can deadlock; PostgreSQL then fails one transaction and
//     its caller gets the error, as for any other failed write.
//
// Times are BIGINT unix nanoseconds in UTC, as in SQLite; the zero time.Time is stored as 0, and times outside
// the years 1678–2262 are rejected.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openstage/openstage/internal/store"
)

var _ store.Store = (*Store)(nil)

// Option configures Open.
type Option func(*config)

type config struct {
	deleteBatch int
	migrations  fs.FS
}

// WithDeleteBatch sets how many rows DeleteEndedBefore deletes per transaction (default 2000), so the
// retention job never holds its locks for a whole purge.
func WithDeleteBatch(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.deleteBatch = n
		}
	}
}

// withMigrations replaces the embedded migrations (tests only).
func withMigrations(fsys fs.FS) Option { return func(c *config) { c.migrations = fsys } }

// Store is the PostgreSQL implementation of store.Store. It is safe for concurrent use.
type Store struct {
	reads // reads outside a transaction, on the read pool

	w   *pgxpool.Pool // transactions, migrations, secrets
	r   *pgxpool.Pool // reads outside a transaction: read-only connections
	cfg config

	closeOnce sync.Once
}

// Open connects to the database of dsn (postgres://user:password@host:port/db?param=value, or the key=value
// form; pgx's parameters apply, such as pool_max_conns, and any other parameter is a session setting such as
// search_path) and applies the migrations the schema lacks. It fails if the schema is newer than this binary.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg := config{deleteBatch: 2000}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.migrations == nil {
		cfg.migrations = defaultMigrations()
	}
	ms, err := loadMigrations(cfg.migrations)
	if err != nil {
		return nil, err
	}
	wcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err) // pgx leaves the password out of its parse errors
	}
	if _, ok := wcfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		wcfg.ConnConfig.RuntimeParams["application_name"] = "openstage" // how operators tell our sessions apart
	}
	rcfg := wcfg.Copy()
	rcfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"

	s := &Store{cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			s.closePools()
		}
	}()
	if s.w, err = pgxpool.NewWithConfig(ctx, wcfg); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if _, err := migrate(ctx, s.w, ms); err != nil {
		return nil, err
	}
	if s.r, err = pgxpool.NewWithConfig(ctx, rcfg); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s.reads = reads{q: s.r}
	ok = true
	return s, nil
}

// SchemaVersion returns the newest migration applied to the schema.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.r.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	return v, nil
}

// Update runs fn in one READ COMMITTED transaction: it commits when fn returns nil and rolls back when fn
// returns an error or panics (the panic then continues). Reads through the Store inside fn do not see fn's
// writes; reads through the Tx do.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.update(ctx, func(t *tx) error { return fn(t) })
}

func (s *Store) update(ctx context.Context, fn func(*tx) error) error {
	ptx, err := s.w.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	t := &tx{tx: ptx}
	t.reads = reads{q: ptx}
	done := false
	defer func() {
		if !done { // fn failed or panicked: nothing it wrote lands
			rollback(ctx, ptx)
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	done = true
	if err := ptx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// rollback ends a transaction that will not commit. It runs even when ctx is done (that may be why the
// transaction failed), so that the connection goes back to the pool clean.
func rollback(ctx context.Context, t pgx.Tx) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = t.Rollback(rctx)
}

// DeleteEndedBefore deletes the sessions whose end time is set and before t, with their participants and
// events. It works in transactions of at most the delete batch size (WithDeleteBatch) rows each; a session row
// goes last, after all its events and participants, so an interrupted purge resumes where it stopped. Nodes
// that run it at once take turns batch by batch. It returns how many sessions it deleted.
func (s *Store) DeleteEndedBefore(ctx context.Context, t time.Time) (int, error) {
	var before int64
	switch {
	case t.IsZero() || !t.After(minTime):
		return 0, nil // nothing ends before the earliest storable time
	case t.After(maxTime):
		before = 1<<63 - 1
	default:
		before = t.UnixNano()
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var deleted int
		finished := false
		err := s.update(ctx, func(t *tx) error {
			deleted = 0
			if err := t.lock(ctx, lockRetention, 0); err != nil {
				return err
			}
			ended, err := t.endedSessions(ctx, before, 64)
			if err != nil {
				return err
			}
			if len(ended) == 0 {
				finished = true
				return nil
			}
			budget := int64(s.cfg.deleteBatch)
			for _, ss := range ended {
				n, err := t.exec(ctx, qDeleteSessionEvents, ss.stage, ss.id, budget)
				if err != nil {
					return err
				}
				if budget -= n; budget <= 0 {
					return nil
				}
				n, err = t.exec(ctx, qDeleteSessionParticipants, ss.stage, ss.id, budget)
				if err != nil {
					return err
				}
				if budget -= n; budget <= 0 {
					return nil
				}
				if _, err := t.exec(ctx, qDeleteSessionSeqs, ss.stage, ss.id); err != nil {
					return err
				}
				n, err = t.exec(ctx, qDeleteSession, ss.stage, ss.id, before)
				if err != nil {
					return err
				}
				deleted += int(n)
				if budget--; budget <= 0 {
					return nil
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("postgres: delete ended sessions: %w", err)
		}
		total += deleted
		if finished {
			return total, s.pruneNotifications(ctx, before)
		}
	}
}

// Secret returns the value stored under name or, when there is none, stores what create makes and returns
// it. When several nodes race, the first insert wins and the others return its value: their own insert
// does nothing once the winner's commits, and the value is read back after it.
func (s *Store) Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	var v []byte
	err := s.w.QueryRow(ctx, qSecret, name).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: secret %s: %w", name, err)
	}
	made, err := create()
	if err != nil {
		return nil, fmt.Errorf("postgres: secret %s: %w", name, err)
	}
	if made == nil {
		made = []byte{} // a nil slice would be NULL
	}
	if _, err := s.w.Exec(ctx, qInsertSecret, name, made); err != nil {
		return nil, fmt.Errorf("postgres: secret %s: %w", name, err)
	}
	if err := s.w.QueryRow(ctx, qSecret, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("postgres: secret %s: %w", name, err)
	}
	return v, nil
}

// Close closes both pools, waiting for the connections in use to come back. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(s.closePools)
	return nil
}

func (s *Store) closePools() {
	if s.r != nil {
		s.r.Close()
	}
	if s.w != nil {
		s.w.Close()
	}
}

// Time conversion: BIGINT unix nanoseconds, UTC, zero ⇔ 0.

var (
	minTime = time.Unix(0, -1<<63).UTC()
	maxTime = time.Unix(0, 1<<63-1).UTC()
)

func nanos(t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return 0, fmt.Errorf("postgres: time %s is outside what int64 nanoseconds can hold", t.Format(time.RFC3339))
	}
	return t.UnixNano(), nil
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// bin converts a string for a BYTEA column: never nil, which pgx would send as NULL.
func bin(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return []byte(s)
}
