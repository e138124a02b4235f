// Package teststore opens the store that tests run on, so that every test package can run against either
// store: SQLite in the test's temporary directory by default, PostgreSQL when the environment variable
// OPENSTAGE_TEST_DATABASE holds a DSN (postgres://postgres@127.0.0.1:5432/test?sslmode=disable). Against
// PostgreSQL each test gets a schema of its own, made empty and dropped when the test ends, so tests can run
// in parallel and again on the same database.
package teststore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/postgres"
	"github.com/openstage/openstage/internal/store/sqlite"
)

// Env names the environment variable with the PostgreSQL DSN of the tests.
const Env = "OPENSTAGE_TEST_DATABASE"

// Postgres reports whether tests run against PostgreSQL.
func Postgres() bool { return os.Getenv(Env) != "" }

// Name is the store tests run against, for logs: "postgres" or "sqlite".
func Name() string {
	if Postgres() {
		return "postgres"
	}
	return "sqlite"
}

// Open returns a fresh, empty store for t, closed when t ends.
func Open(t testing.TB) store.Store {
	t.Helper()
	if Postgres() {
		return OpenPostgres(t, PostgresDSN(t))
	}
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "openstage.db"))
	if err != nil {
		t.Fatalf("teststore: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("teststore: close: %v", err)
		}
	})
	return s
}

// OpenPair returns two handles on one fresh, empty database, as two openstage processes sharing it have:
// two Opens of one SQLite file by default, of one PostgreSQL schema when OPENSTAGE_TEST_DATABASE is set.
// Both close when t ends.
func OpenPair(t testing.TB) (store.Store, store.Store) {
	t.Helper()
	if Postgres() {
		dsn := PostgresDSN(t)
		return OpenPostgres(t, dsn), OpenPostgres(t, dsn)
	}
	path := filepath.Join(t.TempDir(), "openstage.db")
	open := func() store.Store {
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatalf("teststore: %v", err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("teststore: close: %v", err)
			}
		})
		return s
	}
	return open(), open()
}

// OpenPostgres opens a PostgreSQL store on dsn, closed when t ends. Opening a DSN that PostgresDSN returned
// twice gives two handles on one database, as two openstage nodes would have.
func OpenPostgres(t testing.TB, dsn string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, opts...)
	if err != nil {
		t.Fatalf("teststore: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("teststore: close: %v", err)
		}
	})
	return s
}

// PostgresDSN creates an empty schema in the database of OPENSTAGE_TEST_DATABASE, drops it (with all it
// holds) when t ends, and returns a DSN whose connections work in that schema. It skips t when the variable
// is not set.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(Env)
	if base == "" {
		t.Skipf("%s is not set: set it to a PostgreSQL DSN (for example postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run this test", Env)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("teststore: %s must be a postgres:// URL", Env)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	admin(t, base, `CREATE SCHEMA `+schema)
	// Cleanups run last-registered first: the stores opened on the DSN close before the schema goes.
	t.Cleanup(func() { admin(t, base, `DROP SCHEMA `+schema+` CASCADE`) })
	q := u.Query()
	q.Set("search_path", schema) // pgx sends unknown parameters as session settings
	u.RawQuery = q.Encode()
	return u.String()
}

// admin runs one statement on a connection of its own.
func admin(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("teststore: connect to %s: %v", Env, redact(err))
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("teststore: %s: %v", sql, err)
	}
}

// redact keeps a password that an error may quote out of test logs.
func redact(err error) string {
	s := err.Error()
	if u, perr := url.Parse(os.Getenv(Env)); perr == nil {
		if p, ok := u.User.Password(); ok && p != "" {
			s = strings.ReplaceAll(s, p, "xxxxx")
		}
	}
	return s
}
