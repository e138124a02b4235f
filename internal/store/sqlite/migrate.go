package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var embeddedMigrations embed.FS

// migration is one schema step: migrations/NNNN_name.sql, applied once, in version order.
type migration struct {
	version int
	name    string // the file name without ".sql", e.g. "0001_init"
	sql     string
}

// loadMigrations reads every *.sql file at the root of fsys (or under "migrations/" for the embedded set).
// Versions must be 1, 2, 3, ... without gaps or duplicates, so that a missing file is noticed at build time
// rather than as a half-applied schema.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("sqlite: read migrations: %w", err)
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
			return nil, fmt.Errorf("sqlite: migration file %q is not named NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("sqlite: read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlite: migrations must be numbered 1, 2, 3, ... without gaps or duplicates: found %s at position %d", m.name, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("sqlite: no migrations")
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
			applied = append(applied, m.version)
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
		if v < 1 || ms[v-1].name != name {
			return fmt.Errorf("sqlite: database records migration %d as %q, this binary has %q", v, name, ms[v-1].name)
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
		return false, fmt.Errorf("sqlite: migration %s: begin: %w", m.name, err)
	}
	defer func() {
		if !applied {
			_ = tx.Rollback()
		}
	}()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: %w", m.name, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, time.Now().UnixNano()); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: record: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: commit: %w", m.name, err)
	}
	return true, nil
}
