package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openstage/openstage/internal/store"
)

//go:embed migrations/*.sql
var embeddedMigrations embed.FS

// migration is one schema step (store.Migration: the files and their checks are common to the stores).
type migration = store.Migration

// migrationLock is the advisory lock every node takes before it looks at the schema, so that nodes starting
// at once apply each migration exactly once ("openstag" in ASCII; any constant other code does not use).
const migrationLock int64 = 0x6f70656e73746167

// loadMigrations reads and checks the migration files at the root of fsys.
func loadMigrations(fsys fs.FS) ([]migration, error) { return store.LoadMigrations(fsys) }

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
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return nil, fmt.Errorf("postgres: migration %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, time.Now().UnixNano()); err != nil {
			return nil, fmt.Errorf("postgres: migration %s: record: %w", m.Name, err)
		}
		applied = append(applied, m.Version)
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
		if v != n+1 || ms[v-1].Name != name {
			return 0, fmt.Errorf("postgres: database records migration %d as %q, this binary has %q", v, name, ms[min(max(v, 1), len(ms))-1].Name)
		}
		n = v
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("postgres: read schema_migrations: %w", err)
	}
	return n, nil
}
