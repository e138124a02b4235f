// Package sqlite is the embedded store: one SQLite database file (modernc.org/sqlite, pure Go) in WAL mode.
//
// Writes go through a pool of one connection whose transactions begin IMMEDIATE, so write transactions are
// serialised in the process and take SQLite's write lock up front (no SQLITE_BUSY upgrade failures midway);
// reads outside a transaction go through a separate pool of several read-only connections, which WAL lets run
// beside the writer, and the list pages the API reads through one more such pool read below database/sql
// (pages.go). Every connection runs with synchronous=FULL: a commit that returned nil is in the WAL on
// disk and survives a crash of the process or of the machine, as far as the disk honours fsync.
//
// Times are stored as INTEGER unix nanoseconds in UTC and come back in UTC; the zero time.Time is stored as 0
// (so the instant 1970-01-01T00:00:00Z itself reads back as the zero time). Times outside the years 1678–2262
// cannot be stored and are rejected.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

var _ store.Store = (*Store)(nil)

// Option configures Open.
type Option func(*config)

type config struct {
	readers     int
	busyTimeout time.Duration
	deleteBatch int
	migrations  fs.FS
	exclusive   bool
}

// WithReaders sets how many connections the read pool keeps, and the list pages' pool beside it (pages.go)
// (default: GOMAXPROCS, at least 4).
func WithReaders(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.readers = n
		}
	}
}

// WithBusyTimeout sets how long a connection waits for a lock held by another process before failing with
// SQLITE_BUSY (default 10 s). Within one process writers queue on the writer pool instead.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.busyTimeout = d
		}
	}
}

// WithDeleteBatch sets how many rows DeleteEndedBefore deletes per write transaction (default 2000): the
// retention job holds the write lock for one batch at a time, never for the whole purge.
func WithDeleteBatch(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.deleteBatch = n
		}
	}
}

// Exclusive makes Open take an exclusive lock (flock) on "<path>.lock" and hold it until Close, failing with
// ErrInUse when another Store holds it, in this process or another. A server that keeps what it reads in
// memory (readcache) needs to know that no other openstage writes the file; Exclusive is how it knows. The
// lock is advisory: only Opens with Exclusive honour it (the sqlite3 shell, say, does not). Where the
// platform has no flock, the option does nothing and Store.Exclusive reports false.
func Exclusive() Option { return func(c *config) { c.exclusive = true } }

// ErrInUse: Exclusive found the database held by another Store.
var ErrInUse = errors.New("sqlite: the database is in use by another openstage process")

// withMigrations replaces the embedded migrations (tests only).
func withMigrations(fsys fs.FS) Option { return func(c *config) { c.migrations = fsys } }

// Store is the SQLite implementation of store.Store. It is safe for concurrent use.
type Store struct {
	reads // reads outside a transaction, on the read pool
	groupState

	path   string
	w      *sql.DB   // writer pool: one connection, BEGIN IMMEDIATE
	r      *sql.DB   // reader pool: query_only connections
	pages  *pagePool // the list pages' query_only connections (pages.go)
	wstmts [numStmts]*sql.Stmt
	rstmts [numStmts]*sql.Stmt
	cfg    config

	lock      *os.File // the held "<path>.lock", with Exclusive
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating it with mode 0600 if needed) the database file at path and applies the migrations the
// file lacks. It fails if the file's schema is newer than this binary's.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{
		readers:     max(4, runtime.GOMAXPROCS(0)),
		busyTimeout: 10 * time.Second,
		deleteBatch: 2000,
	}
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

	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := createFile(abs); err != nil {
		return nil, err
	}

	s := &Store{path: abs, cfg: cfg}
	s.wlock = make(chan struct{}, 1)
	ok := false
	defer func() {
		if !ok {
			s.closePools()
			s.unlock()
		}
	}()
	if cfg.exclusive {
		if s.lock, err = lockFile(abs + ".lock"); err != nil {
			return nil, err
		}
	}

	// The writer first: it turns the file to WAL (a persistent setting) before any reader connects.
	s.w, err = sql.Open("sqlite", dsn(abs, cfg, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	var mode string
	if err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	if mode != "wal" {
		return nil, fmt.Errorf("sqlite: open %s: journal mode is %q, not wal", abs, mode)
	}
	if _, err := migrate(ctx, s.w, ms); err != nil {
		return nil, err
	}

	s.r, err = sql.Open("sqlite", dsn(abs, cfg, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	s.r.SetMaxOpenConns(cfg.readers)
	s.r.SetMaxIdleConns(cfg.readers)
	s.r.SetConnMaxLifetime(0)
	s.r.SetConnMaxIdleTime(0)

	for id := range numStmts {
		if s.wstmts[id], err = s.w.PrepareContext(ctx, stmtSQL[id]); err != nil {
			return nil, fmt.Errorf("sqlite: prepare %q: %w", stmtSQL[id], err)
		}
		if id >= firstWrite {
			continue
		}
		if s.rstmts[id], err = s.r.PrepareContext(ctx, stmtSQL[id]); err != nil {
			return nil, fmt.Errorf("sqlite: prepare %q: %w", stmtSQL[id], err)
		}
	}
	s.pages = newPagePool(cfg.readers, func() (*liteConn, error) { return openLite(fileURI(abs), cfg.busyTimeout) })
	s.reads = reads{q: poolStmts{&s.rstmts, s.pages}}
	ok = true
	return s, nil
}

// createFile creates the database file with mode 0600 if it does not exist (SQLite gives its -wal and -shm
// files the mode of the database file), and syncs the directory so that the new entry survives a power cut.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // best effort: not every platform can sync a directory
		_ = d.Close()
	}
	return nil
}

// walCheckpointPages is how many WAL frames the writer lets accumulate before a commit checkpoints them
// into the database file (SQLite's default is 1000). A checkpoint copies each page once however many frames
// of it the WAL holds, and a busy ingest rewrites the same leaves commit after commit (each participant's
// last events): at 1000, checkpoints were 15% of the ingest's CPU, profiled (docs/BENCHMARKS.md). The WAL
// file grows to about this many pages (16 MB with 4 KB pages) and is reused. Not more: the commit that
// checkpoints copies all those pages first, and at 10000 that showed in the ingest's p99 latency. Durability
// is unchanged: a commit is still acknowledged after the fsync of the WAL.
const walCheckpointPages = 4000

// dsn builds the modernc DSN: the file's URI (fileURI) with the pragmas every connection of the pool runs
// when it opens.
func dsn(path string, cfg config, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "fullfsync(1)")            // macOS: F_FULLFSYNC for the WAL; a no-op elsewhere
	q.Add("_pragma", "checkpoint_fullfsync(1)") // and for checkpoints
	if writer {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walCheckpointPages))
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return fileURI(path) + "?" + q.Encode()
}

// fileURI is the file: URI of path, so that '?' or '#' in a path cannot be taken for parameters.
func fileURI(path string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	if !strings.HasPrefix(u.Path, "/") { // Windows: file:///C:/...
		u.Path = "/" + u.Path
	}
	return u.String()
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// SchemaVersion returns the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	return v, nil
}

// Update runs fn in a write transaction: its writes are committed when fn returns nil and rolled back when fn
// returns an error or panics (the panic then continues). fns run one at a time; concurrent callers share a
// transaction and its commit (group commit, see group.go), and each is answered only once that commit is
// durable. fn must not call Update itself (it would wait for itself). Reads through the Store inside fn do not
// see fn's writes; reads through the Tx do, and also see the writes of the fns before it in the transaction.
// Statements inside fn run to completion even if ctx is cancelled meanwhile: interrupting one would make
// SQLite roll back the whole shared transaction.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.update(ctx, func(t *tx) error { return fn(t) })
}

// DeleteEndedBefore deletes the sessions whose end time is set and before t, with their participants and
// events. It works in write transactions of at most the delete batch size (WithDeleteBatch) rows each, so other
// writers wait for one batch at most; a session row goes last, after all its events and participants, so an
// interrupted purge resumes where it stopped. It returns how many sessions it deleted.
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
				t.s.seqs.clear() // the session's events go (seqcache.go)
				n, err := t.exec(ctx, qDeleteSessionEvents, ss.StageID, ss.ID, budget)
				if err != nil {
					return err
				}
				if budget -= n; budget <= 0 {
					return nil
				}
				n, err = t.exec(ctx, qDeleteSessionParticipants, ss.StageID, ss.ID, budget)
				if err != nil {
					return err
				}
				if budget -= n; budget <= 0 {
					return nil
				}
				n, err = t.exec(ctx, qDeleteSession, ss.StageID, ss.ID, before)
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
			return total, fmt.Errorf("sqlite: delete ended sessions: %w", err)
		}
		total += deleted
		if finished {
			return total, s.pruneNotifications(ctx, before)
		}
	}
}

// Secret returns the value stored under name or, if there is none, stores what create makes and returns it.
// create runs outside any transaction (making a key takes a while); the insert and the read-back then run in
// one write transaction, so when processes race the first insert wins and everyone reads the winner's value.
func (s *Store) Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	var v []byte
	err := s.rstmts[qSecret].QueryRowContext(ctx, name).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: secret %s: %w", name, err)
	}
	made, err := create()
	if err != nil {
		return nil, fmt.Errorf("sqlite: secret %s: %w", name, err)
	}
	if made == nil {
		made = []byte{} // a nil slice would be NULL
	}
	err = s.update(ctx, func(t *tx) error {
		if _, err := t.exec(ctx, qInsertSecret, name, made); err != nil {
			return err
		}
		return t.queryRow(ctx, qSecret, name).Scan(&v)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: secret %s: %w", name, err)
	}
	return v, nil
}

// Exclusive reports whether this Store holds the database's lock (see Exclusive): no other Store opened with
// Exclusive, in this process or another, can open the file while this one is open.
func (s *Store) Exclusive() bool { return s.lock != nil }

func (s *Store) unlock() {
	if s.lock != nil {
		_ = s.lock.Close() // closing the descriptor releases the flock
	}
}

// Close waits for the writer, closes both pools and fails later Updates. The writer checkpoints the WAL into the database file first, so a cleanly closed
// database is a single file. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeWriter()
		s.closeErr = s.closePools()
		s.unlock()
	})
	return s.closeErr
}

func (s *Store) closePools() error {
	var errs []error
	if s.pages != nil {
		errs = append(errs, s.pages.close())
	}
	for i := range s.rstmts {
		if s.rstmts[i] != nil {
			errs = append(errs, s.rstmts[i].Close())
		}
	}
	if s.r != nil {
		errs = append(errs, s.r.Close()) // readers go first: a checkpoint cannot pass an open read snapshot
	}
	for i := range s.wstmts {
		if s.wstmts[i] != nil {
			errs = append(errs, s.wstmts[i].Close())
		}
	}
	if s.w != nil {
		if _, err := s.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			errs = append(errs, fmt.Errorf("sqlite: checkpoint: %w", err))
		}
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

// Time conversion: INTEGER unix nanoseconds, UTC, zero ⇔ 0.

var (
	minTime = time.Unix(0, -1<<63).UTC()
	maxTime = time.Unix(0, 1<<63-1).UTC()
)

func nanos(t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return 0, fmt.Errorf("sqlite: time %s is outside what int64 nanoseconds can hold", t.Format(time.RFC3339))
	}
	return t.UnixNano(), nil
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

type endedSession struct {
	StageID ivs.StageID
	ID      ivs.SessionID
}
