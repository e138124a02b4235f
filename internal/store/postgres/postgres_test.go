package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/postgres"
	"github.com/openstage/openstage/internal/store/storetest"
	"github.com/openstage/openstage/internal/store/teststore"
)

// These tests need a PostgreSQL server: they skip unless OPENSTAGE_TEST_DATABASE is set (see teststore).

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConformance runs the suite once, with the default options: its biggest retention test crosses the
// default delete batch, and TestConformanceShared runs the retention job with a small one.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return teststore.OpenPostgres(t, teststore.PostgresDSN(t))
	})
}

// TestConformanceShared: two Stores on one schema, as two nodes on one database, each purging in small
// batches.
func TestConformanceShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		dsn := teststore.PostgresDSN(t)
		return teststore.OpenPostgres(t, dsn, postgres.WithDeleteBatch(7)), teststore.OpenPostgres(t, dsn, postgres.WithDeleteBatch(7))
	})
}

// TestConcurrentOpenMigratesOnce: nodes starting together on a fresh database apply each migration once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	const nodes = 8
	ms := fstest.MapFS{
		"0001_one.sql": {Data: []byte(`CREATE TABLE one (x INTEGER); INSERT INTO one VALUES (1);`)},
		"0002_two.sql": {Data: []byte(`INSERT INTO one VALUES (2);`)},
	}
	for _, tc := range []struct {
		name string
		opts []postgres.Option
		// count is a query that is 1 when every migration ran once.
		check func(t *testing.T, s *postgres.Store)
	}{
		{"counting migrations", []postgres.Option{postgres.WithMigrations(ms)}, func(t *testing.T, s *postgres.Store) {
			w, _ := s.Pools()
			var n, sum int
			if err := w.QueryRow(t.Context(), `SELECT COUNT(*), SUM(x) FROM one`).Scan(&n, &sum); err != nil {
				t.Fatal(err)
			}
			if n != 2 || sum != 3 {
				t.Fatalf("the migrations' rows: %d rows summing to %d; want 2 rows, 1 and 2", n, sum)
			}
		}},
		{"embedded migrations", nil, func(t *testing.T, s *postgres.Store) {
			// The store works: every node's schema is whole.
			ctx := t.Context()
			if err := s.Update(ctx, func(tx store.Tx) error {
				return tx.InsertStage(ctx, ivs.Stage{ID: ivs.NewStageID(), Name: "x", CreatedAt: time.Now()})
			}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := teststore.PostgresDSN(t)
			stores := make([]*postgres.Store, nodes)
			errs := make([]error, nodes)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range nodes {
				wg.Go(func() {
					<-start
					stores[i], errs[i] = postgres.Open(t.Context(), dsn, tc.opts...)
				})
			}
			close(start)
			wg.Wait()
			for i, s := range stores {
				if s != nil {
					t.Cleanup(func() { s.Close() })
				}
				if errs[i] != nil {
					t.Fatalf("node %d: %v", i, errs[i])
				}
			}
			fsys := postgres.DefaultMigrations()
			if tc.opts != nil {
				fsys = ms
			}
			want, _ := postgres.LoadMigrations(fsys)
			w, _ := stores[0].Pools()
			var n, distinct, maxV int
			if err := w.QueryRow(t.Context(), `SELECT COUNT(*), COUNT(DISTINCT version), MAX(version) FROM schema_migrations`).Scan(&n, &distinct, &maxV); err != nil {
				t.Fatal(err)
			}
			if n != len(want) || distinct != len(want) || maxV != len(want) {
				t.Fatalf("schema_migrations after %d concurrent Opens: %d rows, %d versions, newest %d; want %d", nodes, n, distinct, maxV, len(want))
			}
			tc.check(t, stores[nodes-1])
		})
	}
}

func TestMigrations(t *testing.T) {
	ctx := t.Context()
	dsn := teststore.PostgresDSN(t)
	m1 := fstest.MapFS{"0001_one.sql": {Data: []byte(`CREATE TABLE one (x INTEGER); INSERT INTO one VALUES (1);`)}}
	m2 := fstest.MapFS{
		"0001_one.sql": m1["0001_one.sql"],
		"0002_two.sql": {Data: []byte(`INSERT INTO one VALUES (2);`)},
	}
	open := func(fsys fstest.MapFS) error {
		s, err := postgres.Open(ctx, dsn, postgres.WithMigrations(fsys))
		if err == nil {
			s.Close()
		}
		return err
	}
	rows := func() []int {
		t.Helper()
		s := teststore.OpenPostgres(t, dsn, postgres.WithMigrations(m2))
		defer s.Close()
		w, _ := s.Pools()
		r, err := w.Query(ctx, `SELECT x FROM one ORDER BY x`)
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
	for _, fsys := range []fstest.MapFS{m1, m1, m2, m2} {
		if err := open(fsys); err != nil {
			t.Fatal(err)
		}
	}
	if got := rows(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("after opening twice with one migration and twice with two: rows %v, want [1 2]", got)
	}
	if err := open(m1); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("opening a newer schema: %v", err)
	}
	other := fstest.MapFS{"0001_uno.sql": m1["0001_one.sql"], "0002_two.sql": m2["0002_two.sql"]}
	if err := open(other); err == nil || !strings.Contains(err.Error(), "records migration 1") {
		t.Fatalf("opening with a different history: %v", err)
	}
	// A failing migration leaves nothing of itself behind, nor of the others applied in the same run.
	bad := fstest.MapFS{
		"0001_one.sql":   m1["0001_one.sql"],
		"0002_two.sql":   m2["0002_two.sql"],
		"0003_three.sql": {Data: []byte(`INSERT INTO one VALUES (3);`)},
		"0004_four.sql":  {Data: []byte(`INSERT INTO one VALUES (4); THIS IS NOT SQL;`)},
	}
	if err := open(bad); err == nil || !strings.Contains(err.Error(), "0004_four") {
		t.Fatalf("a failing migration: %v", err)
	}
	if got := rows(); len(got) != 2 {
		t.Fatalf("a failed migration run left rows %v", got)
	}
	for _, fsys := range []fstest.MapFS{
		{"0001_one.sql": m1["0001_one.sql"], "0003_three.sql": bad["0003_three.sql"]},
		{"1_one.sql": m1["0001_one.sql"]},
		{"0001_one.sql": m1["0001_one.sql"], "0001_again.sql": m1["0001_one.sql"]},
		{},
	} {
		if _, err := postgres.LoadMigrations(fsys); err == nil {
			t.Errorf("LoadMigrations accepted %v", fsys)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	dsn := teststore.PostgresDSN(t)
	s := teststore.OpenPostgres(t, dsn)
	st := ivs.Stage{ID: ivs.NewStageID(), Name: "kept", CreatedAt: time.Now()}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.InsertStage(ctx, st) }); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(s.Close(), s.Close()); err != nil {
		t.Fatalf("Close twice: %v", err)
	}
	s2 := teststore.OpenPostgres(t, dsn)
	if got, err := s2.GetStage(ctx, st.ID); err != nil || got.Name != "kept" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	ms, _ := postgres.LoadMigrations(postgres.DefaultMigrations())
	if v, err := s2.SchemaVersion(ctx); err != nil || v != len(ms) {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, len(ms))
	}
}

func TestReadPoolIsReadOnly(t *testing.T) {
	s := teststore.OpenPostgres(t, teststore.PostgresDSN(t))
	_, r := s.Pools()
	if _, err := r.Exec(t.Context(), `DELETE FROM stages`); err == nil {
		t.Fatal("the read pool accepted a write")
	}
}

// TestUpdateAfterCanceledContextInFn: a transaction whose context ends midway rolls back and gives its
// connection back, so the pool keeps working.
func TestUpdateAfterCanceledContextInFn(t *testing.T) {
	s := teststore.OpenPostgres(t, teststore.PostgresDSN(t))
	w, _ := s.Pools()
	for range int(w.Config().MaxConns) + 2 {
		ctx, cancel := context.WithCancel(t.Context())
		st := ivs.Stage{ID: ivs.NewStageID(), Name: "x", CreatedAt: time.Now()}
		err := s.Update(ctx, func(tx store.Tx) error {
			if err := tx.InsertStage(ctx, st); err != nil {
				return err
			}
			cancel()
			return tx.InsertStage(ctx, ivs.Stage{ID: ivs.NewStageID(), Name: "y", CreatedAt: time.Now()})
		})
		if err == nil {
			t.Fatal("Update whose context was canceled midway succeeded")
		}
		if _, err := s.GetStage(t.Context(), st.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a write before the cancel landed: %v", err)
		}
	}
	if err := s.Update(t.Context(), func(tx store.Tx) error {
		return tx.InsertStage(t.Context(), ivs.Stage{ID: ivs.NewStageID(), Name: "z", CreatedAt: time.Now()})
	}); err != nil {
		t.Fatalf("the store after canceled transactions: %v", err)
	}
}

func TestTimeRange(t *testing.T) {
	s := teststore.OpenPostgres(t, teststore.PostgresDSN(t))
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

// TestQueryPlans checks that every keyset list can be served by an index in its order: no sort, so a page
// costs the same at any depth. Scans and sorts are disabled (they stay possible, at a prohibitive cost) so that
// the planner shows the index plan it would use on a big table rather than what it prefers on an empty one.
func TestQueryPlans(t *testing.T) {
	s := teststore.OpenPostgres(t, teststore.PostgresDSN(t))
	ctx := t.Context()
	w, _ := s.Pools()
	conn, err := w.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, set := range []string{"enable_seqscan", "enable_bitmapscan", "enable_sort"} {
		if _, err := conn.Exec(ctx, `SET `+set+` = off`); err != nil {
			t.Fatal(err)
		}
		defer conn.Exec(context.Background(), `RESET `+set)
	}
	for q, args := range postgres.ListQueries() {
		rows, err := conn.Query(ctx, "EXPLAIN "+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, strings.TrimSpace(line))
		}
		rows.Close()
		p := strings.Join(plan, "\n")
		if strings.Contains(p, "Sort") || strings.Contains(p, "Seq Scan") || !strings.Contains(p, "Index") {
			t.Errorf("plan of\n%s\n%s", q, p)
		} else {
			t.Logf("%s", strings.Join(plan, " / "))
		}
	}
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://openstage:s3cret-pw@127.0.0.1:1/none?sslmode=disable&connect_timeout=2",
		"postgres://openstage:s3cret-pw@127.0.0.1:1/none?sslmode=bogus",
	} {
		_, err := postgres.Open(ctx, dsn)
		if err == nil {
			t.Fatalf("Open(%s) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Fatalf("the error shows the password: %v", err)
		}
	}
}
