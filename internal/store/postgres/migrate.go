package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var embeddedMigrations embed.FS

// migration is one schema step: migrations/NNNN_name.sql, applied once, in version order.
type migration struct {
	version int
	name    string // the file name without ".sql", e.g. "0001_init"
	sql     string
}

// migrationLock is the advisory lock every node takes before it looks at the schema, so that nodes starting
// at once apply each migration exactly once ("openstag" in ASCII; any constant other code does not use).
const migrationLock int64 = 0x6f70656e73746167

// loadMigrations reads every *.sql file at the root of fsys. Versions must be 1, 2, 3, ... without gaps or
// duplicates, so that a missing file is noticed before the database is touched.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("postgres: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		name := strings.TrimSuffix(e.Name(), ".sql")
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || len(num) != 4 {
			return nil, fmt.Errorf("postgres: migration file %q is not named NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("postgres: read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("postgres: migrations must be numbered 1, 2, 3, ... without gaps or duplicates: found %s at position %d", m.name, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("postgres: no migrations")
	}
	return ms, nil
}

func defaultMigrations() fs.FS {
	sub, err := fs.Sub(embeddedMigrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}

// migrate brings the schema to the newest migration in one transaction that first takes the migration
// lock: a node that starts while another migrates waits, then finds the work done. PostgreSQL's DDL is
// transactional, so a failing migration leaves nothing of itself (nor of the ones before it in this run). A
// database whose schema is newer than this binary, or whose recorded history differs from the binary's, is
// an error and is left untouched. It returns the versions it applied.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []migration) (applied []int, err error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	defer func() {
		if err != nil {
			rollback(ctx, tx)
		}
	}()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return nil, fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER          NOT NULL PRIMARY KEY,
		name       TEXT COLLATE "C" NOT NULL,
		applied_at BIGINT           NOT NULL
	)`
	if _, err := tx.Exec(ctx, create); err != nil {
		return nil, fmt.Errorf("postgres: create schema_migrations: %w", err)
	}
	done, err := checkHistory(ctx, tx, ms)
	if err != nil {
		return nil, err
	}
	for _, m := range ms[done:] {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return nil, fmt.Errorf("postgres: migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, time.Now().UnixNano()); err != nil {
			return nil, fmt.Errorf("postgres: migration %s: record: %w", m.name, err)
		}
		applied = append(applied, m.version)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: migrate: commit: %w", err)
	}
	return applied, nil
}

// checkHistory compares the recorded migrations with the binary's and returns how many are applied.
func checkHistory(ctx context.Context, tx pgx.Tx, ms []migration) (int, error) {
	rows, err := tx.Query(ctx, `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		return 0, fmt.Errorf("postgres: read schema_migrations: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			return 0, fmt.Errorf("postgres: read schema_migrations: %w", err)
		}
		if v > len(ms) {
			return 0, fmt.Errorf("postgres: database schema version %d (%s) is newer than this binary, which knows versions up to %d: upgrade openstage", v, name, len(ms))
		}
		if v != n+1 || ms[v-1].name != name {
			return 0, fmt.Errorf("postgres: database records migration %d as %q, this binary has %q", v, name, ms[min(max(v, 1), len(ms))-1].name)
		}
		n = v
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("postgres: read schema_migrations: %w", err)
	}
	return n, nil
}
