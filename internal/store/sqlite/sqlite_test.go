package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	goleak.VerifyTestMain(m)
}

func openTest(t testing.TB, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		// A small delete batch, so that the suite's retention tests cross many batches.
		return openTest(t, filepath.Join(t.TempDir(), "openstage.db"), WithDeleteBatch(97))
	})
}

// TestConformanceShared: two Stores on one file, as two processes sharing a data dir would have.
func TestConformanceShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		path := filepath.Join(t.TempDir(), "openstage.db")
		return openTest(t, path, WithDeleteBatch(7)), openTest(t, path, WithDeleteBatch(7))
	})
}

func TestConformanceDefaultOptions(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, filepath.Join(t.TempDir(), "openstage.db"))
	})
}

func TestFileModeAndPragmas(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a dir?with#odd chars", "x.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path)
	ctx := t.Context()
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.InsertStage(ctx, ivs.Stage{ID: ivs.NewStageID(), Name: "x", CreatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(f), m)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files beside the odd directory: %v (the DSN mangled the path?)", entries)
	}
	pragma := func(db *sql.DB, name string) string {
		t.Helper()
		var v string
		if err := db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		return v
	}
	for _, db := range []*sql.DB{s.w, s.r} {
		for name, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000"} {
			if got := pragma(db, name); got != want {
				t.Errorf("PRAGMA %s = %s, want %s", name, got, want)
			}
		}
	}
	if got, want := pragma(s.w, "wal_autocheckpoint"), strconv.Itoa(walCheckpointPages); got != want {
		t.Errorf("writer wal_autocheckpoint = %s, want %s", got, want)
	}
	if got := pragma(s.r, "query_only"); got != "1" {
		t.Errorf("reader query_only = %s", got)
	}
	if _, err := s.r.ExecContext(ctx, `DELETE FROM stages`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "openstage.db")
	ctx := t.Context()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	st := ivs.Stage{ID: ivs.NewStageID(), Name: "kept", CreatedAt: time.Now()}
	e := ivs.Event{StageID: st.ID, SessionID: ivs.NewSessionID(), ParticipantID: ivs.NewParticipantID(), Name: ivs.EventJoined, Time: time.Now()}
	if err := s.Update(ctx, func(tx store.Tx) error {
		return errors.Join(tx.InsertStage(ctx, st), tx.AppendEvent(ctx, &e))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// A clean close checkpoints the WAL into the database file.
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("WAL holds %d bytes after Close", fi.Size())
	}

	for range 2 {
		s := openTest(t, path)
		got, err := s.GetStage(ctx, st.ID)
		if err != nil || got.Name != "kept" {
			t.Fatalf("after reopen: %+v, %v", got, err)
		}
		evs, err := s.ListEvents(ctx, e.StageID, e.SessionID, e.ParticipantID, store.Page{Limit: 10})
		if err != nil || len(evs) != 1 {
			t.Fatalf("events after reopen: %v, %v", evs, err)
		}
		var n, v int
		if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
			t.Fatal(err)
		}
		ms, _ := loadMigrations(defaultMigrations())
		if n != len(ms) || v != len(ms) {
			t.Fatalf("schema_migrations: %d rows, max %d; want %d", n, v, len(ms))
		}
		if sv, err := s.SchemaVersion(ctx); err != nil || sv != len(ms) {
			t.Fatalf("SchemaVersion = %d, %v", sv, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrations(t *testing.T) {
	ctx := t.Context()
	m1 := fstest.MapFS{"0001_one.sql": {Data: []byte(`CREATE TABLE one (x INTEGER); INSERT INTO one VALUES (1);`)}}
	m2 := fstest.MapFS{
		"0001_one.sql": m1["0001_one.sql"],
		"0002_two.sql": {Data: []byte(`INSERT INTO one VALUES (2);`)},
	}
	path := filepath.Join(t.TempDir(), "m.db")
	// The test migrations do not create the store's tables, so Open cannot prepare its statements: it fails
	// after migrating, which is what these tests look at.
	open := func(fsys fstest.MapFS) error {
		s, err := Open(ctx, path, withMigrations(fsys))
		if err == nil {
			s.Close()
		}
		return err
	}
	rows := func() []int {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		r, err := db.Query(`SELECT x FROM one ORDER BY rowid`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var xs []int
		for r.Next() {
			var x int
			if err := r.Scan(&x); err != nil {
				t.Fatal(err)
			}
			xs = append(xs, x)
		}
		return xs
	}
	_ = open(m1)
	_ = open(m1)
	if got := rows(); len(got) != 1 {
		t.Fatalf("after opening twice with one migration: rows %v, want [1]", got)
	}
	_ = open(m2)
	_ = open(m2)
	if got := rows(); len(got) != 2 || got[1] != 2 {
		t.Fatalf("after adding a migration: rows %v, want [1 2]", got)
	}
	// The binary now only knows migration 1: the database is newer.
	if err := open(m1); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("opening a newer database: %v", err)
	}
	// A renamed migration is a different history.
	other := fstest.MapFS{"0001_uno.sql": m1["0001_one.sql"], "0002_two.sql": m2["0002_two.sql"]}
	if err := open(other); err == nil || !strings.Contains(err.Error(), "records migration 1") {
		t.Fatalf("opening with a different history: %v", err)
	}
	// A failing migration leaves nothing of itself behind.
	bad := fstest.MapFS{
		"0001_one.sql":   m1["0001_one.sql"],
		"0002_two.sql":   m2["0002_two.sql"],
		"0003_three.sql": {Data: []byte(`INSERT INTO one VALUES (3); THIS IS NOT SQL;`)},
	}
	if err := open(bad); err == nil || !strings.Contains(err.Error(), "0003_three") {
		t.Fatalf("a failing migration: %v", err)
	}
	if got := rows(); len(got) != 2 {
		t.Fatalf("a failed migration left rows %v", got)
	}
	// Badly named or numbered sets are refused before touching the database.
	for _, fsys := range []fstest.MapFS{
		{"0001_one.sql": m1["0001_one.sql"], "0003_three.sql": bad["0003_three.sql"]},
		{"1_one.sql": m1["0001_one.sql"]},
		{"0001_one.sql": m1["0001_one.sql"], "0001_again.sql": m1["0001_one.sql"]},
		{},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("loadMigrations accepted %v", fsys)
		}
	}
}

func TestTimeRange(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	ctx := t.Context()
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	err := s.Update(ctx, func(tx store.Tx) error {
		return tx.InsertStage(ctx, ivs.Stage{ID: ivs.NewStageID(), Name: "x", CreatedAt: far})
	})
	if err == nil {
		t.Fatal("a time beyond int64 nanoseconds was stored")
	}
	if n, err := s.DeleteEndedBefore(ctx, far); err != nil || n != 0 {
		t.Fatalf("DeleteEndedBefore(year 3000) = %d, %v", n, err)
	}
	if n, err := s.DeleteEndedBefore(ctx, time.Time{}); err != nil || n != 0 {
		t.Fatalf("DeleteEndedBefore(zero) = %d, %v", n, err)
	}
}

// TestQueryPlans checks that every list is served by an index in its order: no full scan, no sort.
func TestQueryPlans(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"))
	ctx := t.Context()
	for id := range numStmts {
		q := stmtSQL[id]
		if !strings.HasPrefix(strings.TrimSpace(q), "SELECT") || id == qCountStages || id == qCountPublicKeys || id == qCountStorageConfigurations || id == qActiveSessions || id == qConnectedParticipants ||
			id == qUnfinishedRecordings { // crash recovery's reads: a scan of a partial index of the few rows

			continue
		}
		n := strings.Count(q, "?")
		args := make([]any, n)
		for i := range args {
			args[i] = 1
		}
		rows, err := s.w.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var a, b, c int
			var detail string
			if err := rows.Scan(&a, &b, &c, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		t.Logf("%d: %s", id, p)
		scan := strings.Contains(strings.ReplaceAll(p, "SCAN CONSTANT ROW", ""), "SCAN ")
		if strings.Contains(p, "TEMP B-TREE") || (scan && id != qListStagesFirst && id != qListPublicKeysFirst && id != qListStorageConfigurationsFirst) {
			t.Errorf("statement %d plan %q\n%s", id, p, q)
		}
	}
}

// TestUpgradeKeepsData: a database made before a migration existed gets it at the next Open, data intact.
func TestUpgradeKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	first, err := embeddedMigrations.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	// The binary that knew only 0001 made the schema (this one's statements need more, so Open fails after
	// migrating); its stage is written behind the store's back.
	if s, err := Open(ctx, path, withMigrations(fstest.MapFS{"0001_init.sql": {Data: first}})); err == nil {
		s.Close()
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO stages (id, name, active_session_id, created_at) VALUES ('AAAAAAAAAAAA', 'old', '', 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := openTest(t, path)
	if got, err := s.GetStage(ctx, "AAAAAAAAAAAA"); err != nil || got.Name != "old" {
		t.Fatalf("the old stage after the upgrade: %+v, %v", got, err)
	}
	ms, _ := loadMigrations(defaultMigrations())
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(ms) || v < 2 {
		t.Fatalf("SchemaVersion after the upgrade = %d, %v; want %d", v, err, len(ms))
	}
	if v, err := s.Secret(ctx, "k", func() ([]byte, error) { return []byte("v"), nil }); err != nil || string(v) != "v" {
		t.Fatalf("Secret after the upgrade: %q, %v", v, err)
	}
}

// Exclusive: one holder at a time, in this process or another; Close lets the next one in.
func TestExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "openstage.db")
	a, err := Open(t.Context(), path, Exclusive())
	if err != nil {
		t.Fatal(err)
	}
	if !a.Exclusive() {
		t.Fatal("Exclusive() = false after Open(Exclusive())")
	}
	if _, err := Open(t.Context(), path, Exclusive()); !errors.Is(err, ErrInUse) {
		t.Fatalf("second exclusive Open: %v, want ErrInUse", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := openTest(t, path, Exclusive())
	if !b.Exclusive() {
		t.Fatal("Exclusive() = false after the first holder closed")
	}
	if c := openTest(t, filepath.Join(t.TempDir(), "other.db")); c.Exclusive() {
		t.Fatal("Exclusive() = true without the option")
	}
}
