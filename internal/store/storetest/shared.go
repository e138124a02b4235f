package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// What several handles on one database (several openstage nodes) rely on, and the checks a transaction
// makes before it writes. Every test here also runs on a single handle (Run).

// testSharedSeeEachOther: a stage created through one handle is read, changed and deleted through the other.
func testSharedSeeEachOther(t *testing.T, ss []store.Store) {
	ctx := t.Context()
	a, b := ss[0], ss[1]
	st := insertStage(t, a, ivs.Stage{ID: ivs.NewStageID(), Name: "made-by-a", CreatedAt: at(1)})
	eq(t, "stage read through b", normStage(must(b.GetStage(ctx, st.ID)).get(t)), st)
	arn := "arn:aws:ivs:us-east-1:000000000000:stage/" + string(st.ID)
	renamed := st
	renamed.Name = "renamed-by-b"
	update(t, b, func(tx store.Tx) error {
		cur, err := tx.LockStage(ctx, st.ID)
		if err != nil {
			return err
		}
		cur.Name = renamed.Name
		return errors.Join(tx.UpdateStage(ctx, cur), tx.MergeTags(ctx, arn, map[string]string{"by": "b"}))
	})
	eq(t, "stage read through a after b's update", normStage(must(a.GetStage(ctx, st.ID)).get(t)), renamed)
	eq(t, "tags read through a", must(a.Tags(ctx, arn)).get(t), map[string]string{"by": "b"})
	if got := must(a.ListStages(ctx, store.Page{Limit: 10})).get(t); len(got) != 1 || got[0].ID != st.ID {
		t.Fatalf("ListStages through a: %+v", got)
	}

	// Events appended through both continue one sequence.
	sess, pid := ivs.NewSessionID(), ivs.NewParticipantID()
	for i := range 4 {
		e := ivs.Event{StageID: st.ID, SessionID: sess, ParticipantID: pid, Name: ivs.EventJoined, Time: at(i)}
		update(t, ss[i%2], func(tx store.Tx) error { return tx.AppendEvent(ctx, &e) })
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d appended through handle %d: Seq %d", i, i%2, e.Seq)
		}
	}

	update(t, a, func(tx store.Tx) error { return tx.DeleteStage(ctx, st.ID) })
	if _, err := b.GetStage(ctx, st.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetStage through b after a deleted it: %v", err)
	}
}

// testSharedDeleteEndedBefore: both nodes run the retention job at once; between them they delete every
// ended session once, and nothing else.
func testSharedDeleteEndedBefore(t *testing.T, ss []store.Store) {
	ctx := t.Context()
	st := insertStage(t, ss[0], newStage(at(0)))
	active := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: at(0)}
	const ended = 60
	update(t, ss[0], func(tx store.Tx) error {
		for i := range ended {
			ss := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: at(i), EndTime: at(i + 1)}
			if _, err := fill(ctx, tx, ss, 2, 3); err != nil {
				return err
			}
		}
		_, err := fill(ctx, tx, active, 2, 3)
		return err
	})
	var wg sync.WaitGroup
	counts := make([]int, len(ss))
	errs := make([]error, len(ss))
	for i, s := range ss {
		wg.Go(func() { counts[i], errs[i] = s.DeleteEndedBefore(ctx, at(10000)) })
	}
	wg.Wait()
	total := 0
	for i := range ss {
		if errs[i] != nil {
			t.Fatalf("DeleteEndedBefore through handle %d: %v", i, errs[i])
		}
		total += counts[i]
	}
	if total != ended {
		t.Fatalf("the handles deleted %v sessions, %d in all; want %d", counts, total, ended)
	}
	if v := must(ss[1].ListSessions(ctx, st.ID, store.Page{Limit: 100})).get(t); len(v) != 1 || v[0].ID != active.ID {
		t.Fatalf("sessions left: %v, want only the active one", v)
	}
	if p, e := countAll(t, ss[1], active); p != 2 || e != 6 {
		t.Fatalf("the active session has %d participants, %d events; want 2, 6", p, e)
	}
}

// testConcurrentQuotaChecks: transactions that count before they insert (the stage and public key quotas,
// the tag limit) never exceed the limit together, however many run at once.
func testConcurrentQuotaChecks(t *testing.T, ss []store.Store) {
	ctx := t.Context()
	const limit = 5
	arn := "arn:aws:ivs:us-east-1:000000000000:stage/" + string(ivs.NewStageID())
	race := func(what string, fn func(tx store.Tx, w int) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for w := range workers {
			wg.Go(func() {
				errs[w] = ss[w%len(ss)].Update(ctx, func(tx store.Tx) error { return fn(tx, w) })
			})
		}
		wg.Wait()
		for w, err := range errs {
			if err != nil {
				t.Fatalf("%s: worker %d: %v", what, w, err)
			}
		}
	}
	// The pause between the check and the write leaves room for every other worker to check too, unless
	// the store makes them wait.
	const pause = 2 * time.Millisecond
	race("stages", func(tx store.Tx, w int) error {
		n, err := tx.CountStages(ctx)
		if err != nil || n >= limit {
			return err
		}
		time.Sleep(pause)
		return tx.InsertStage(ctx, newStage(at(w)))
	})
	if n := must(ss[0].CountStages(ctx)).get(t); n != limit {
		t.Fatalf("%d workers checking a quota of %d stages left %d stages", workers, limit, n)
	}
	race("public keys", func(tx store.Tx, w int) error {
		var n int
		if w%2 == 0 {
			keys, err := tx.ListPublicKeys(ctx, store.Page{Limit: 100})
			if err != nil {
				return err
			}
			n = len(keys)
		} else {
			var err error
			if n, err = tx.CountPublicKeys(ctx); err != nil {
				return err
			}
		}
		if n >= limit {
			return nil
		}
		time.Sleep(pause)
		return tx.InsertPublicKey(ctx, ivs.PublicKey{ID: ivs.NewPublicKeyID(), Name: "k", Material: "m", Fingerprint: fmt.Sprint(w), CreatedAt: at(w)})
	})
	if n := must(ss[0].CountPublicKeys(ctx)).get(t); n != limit {
		t.Fatalf("%d workers checking a quota of %d public keys left %d keys", workers, limit, n)
	}
	race("tags", func(tx store.Tx, w int) error {
		tags, err := tx.Tags(ctx, arn)
		if err != nil || len(tags) >= limit {
			return err
		}
		time.Sleep(pause)
		return tx.MergeTags(ctx, arn, map[string]string{fmt.Sprintf("k%02d", w): "v"})
	})
	if n := len(must(ss[0].Tags(ctx, arn)).get(t)); n != limit {
		t.Fatalf("%d workers checking a limit of %d tags left %d tags", workers, limit, n)
	}
}

func testSecrets(t *testing.T, s store.Store) {
	ctx := t.Context()
	calls := 0
	mk := func(v string) func() ([]byte, error) {
		return func() ([]byte, error) { calls++; return []byte(v), nil }
	}
	if v := must(s.Secret(ctx, "a", mk("one"))).get(t); string(v) != "one" || calls != 1 {
		t.Fatalf("first Secret: %q after %d calls of create, want %q after 1", v, calls, "one")
	}
	if v := must(s.Secret(ctx, "a", mk("two"))).get(t); string(v) != "one" || calls != 1 {
		t.Fatalf("second Secret: %q after %d calls of create; want the stored %q, create not called", v, calls, "one")
	}
	if v := must(s.Secret(ctx, "b", mk("other"))).get(t); string(v) != "other" {
		t.Fatalf("Secret of another name: %q", v)
	}

	// An error from create stores nothing: the next call creates.
	errBoom := errors.New("boom")
	_, err := s.Secret(ctx, "c", func() ([]byte, error) { return nil, errBoom })
	wantErr(t, "Secret whose create failed", err, errBoom)
	if v := must(s.Secret(ctx, "c", mk("after"))).get(t); string(v) != "after" {
		t.Fatalf("Secret after a failed create: %q", v)
	}

	// Values are bytes, stored as given.
	bin := []byte{0, 1, 2, 0xfe, 0xff, '\n', 0}
	if v := must(s.Secret(ctx, "bin", func() ([]byte, error) { return bin, nil })).get(t); !bytes.Equal(v, bin) {
		t.Fatalf("binary secret came back as %x", v)
	}
	if v := must(s.Secret(ctx, "bin", mk("x"))).get(t); !bytes.Equal(v, bin) {
		t.Fatalf("stored binary secret read back as %x", v)
	}
	pem := bytes.Repeat([]byte("-----BEGIN PRIVATE KEY-----\n"), 40)
	if v := must(s.Secret(ctx, "token-signing-key", func() ([]byte, error) { return pem, nil })).get(t); !bytes.Equal(v, pem) {
		t.Fatal("a PEM-sized secret did not round-trip")
	}
}

// testConcurrentSecret: callers racing to create one secret all get the same value, the first stored.
func testConcurrentSecret(t *testing.T, ss []store.Store) {
	ctx := t.Context()
	var wg sync.WaitGroup
	got := make([][]byte, workers)
	errs := make([]error, workers)
	var created atomic.Int32
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			got[w], errs[w] = ss[w%len(ss)].Secret(ctx, "race", func() ([]byte, error) {
				created.Add(1)
				v := make([]byte, 48)
				_, err := rand.Read(v)
				return v, err
			})
		})
	}
	close(start)
	wg.Wait()
	for w := range workers {
		if errs[w] != nil {
			t.Fatalf("worker %d: %v", w, errs[w])
		}
		if !bytes.Equal(got[w], got[0]) {
			t.Fatalf("worker %d got %x, worker 0 got %x: racing callers must all get the winner's value", w, got[w], got[0])
		}
	}
	if len(got[0]) != 48 {
		t.Fatalf("the shared secret is %d bytes", len(got[0]))
	}
	for i, s := range ss {
		v := must(s.Secret(ctx, "race", func() ([]byte, error) { return nil, errors.New("must not be called") })).get(t)
		if !bytes.Equal(v, got[0]) {
			t.Fatalf("handle %d reads %x after the race, the racers got %x", i, v, got[0])
		}
	}
	t.Logf("%d of %d racers made a value; one was kept", created.Load(), workers)
}
