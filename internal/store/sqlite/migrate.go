package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/openstage/openstage/internal/store"
)

//go:embed migrations/*.sql
var embeddedMigrations embed.FS

// migration is one schema step (store.Migration: the files and their checks are common to the stores).
type migration = store.Migration

// loadMigrations reads and checks the migration files at the root of fsys.
func loadMigrations(fsys fs.FS) ([]migration, error) { return store.LoadMigrations(fsys) }

func defaultMigrations() fs.FS {
	sub, err := fs.Sub(embeddedMigrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}

// migrate brings the database to the newest migration. Every step runs in its own write transaction
// (BEGIN IMMEDIATE on the writer pool), which re-reads the applied version under the write lock: two processes
// opening the same file at once cannot apply a step twice. A database whose schema is newer than this binary,
// or whose recorded history differs from the binary's, is an error and is left untouched.
func migrate(ctx context.Context, db *sql.DB, ms []migration) (applied []int, err error) {
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	)`
	if _, err := db.ExecContext(ctx, create); err != nil {
		return nil, fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	if err := checkHistory(ctx, db, ms); err != nil {
		return nil, err
	}
	for _, m := range ms {
		done, err := applyMigration(ctx, db, m)
		if err != nil {
			return applied, err
		}
		if done {
			applied = append(applied, m.Version)
		}
	}
	return applied, nil
}

// checkHistory compares the recorded migrations with the binary's.
func checkHistory(ctx context.Context, db *sql.DB, ms []migration) error {
	rows, err := db.QueryContext(ctx, `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		return fmt.Errorf("sqlite: read schema_migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			return fmt.Errorf("sqlite: read schema_migrations: %w", err)
		}
		if v > len(ms) {
			return fmt.Errorf("sqlite: database schema version %d (%s) is newer than this binary, which knows versions up to %d: upgrade openstage", v, name, len(ms))
		}
		if v < 1 || ms[v-1].Name != name {
			return fmt.Errorf("sqlite: database records migration %d as %q, this binary has %q", v, name, ms[v-1].Name)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: read schema_migrations: %w", err)
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration) (applied bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("sqlite: migration %s: begin: %w", m.Name, err)
	}
	defer func() {
		if !applied {
			_ = tx.Rollback()
		}
	}()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UnixNano()); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: record: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: commit: %w", m.Name, err)
	}
	return true, nil
}
