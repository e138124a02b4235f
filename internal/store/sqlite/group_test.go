package sqlite

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/store"
)

// holdWriter starts an Update whose fn blocks until the returned release is called, and returns once the
// fn is running: callers that come meanwhile queue behind it, and join its transaction when it ends.
func holdWriter(t *testing.T, s *Store, fn func(store.Tx) error) (release func(), result <-chan error) {
	t.Helper()
	running, unblock := make(chan struct{}), make(chan struct{})
	res := make(chan error, 1)
	go func() {
		res <- s.Update(context.Background(), func(tx store.Tx) error {
			close(running)
			<-unblock
			return fn(tx)
		})
	}()
	<-running
	return func() { close(unblock) }, res
}

// waitWaiting waits until n callers are queued for the writer.
func waitWaiting(t *testing.T, s *Store, n int64) {
	t.Helper()
	ivstest.Eventually(t, 10*time.Second, time.Millisecond, func() error {
		if w := s.waiting.Load(); w < n {
			return fmt.Errorf("%d callers waiting, want %d", w, n)
		}
		return nil
	})
}

func insertStage(ctx context.Context, tx store.Tx, id string) error {
	return tx.InsertStage(ctx, ivs.Stage{ID: ivs.StageID(id), Name: id, CreatedAt: time.Now()})
}

func stageExists(t *testing.T, s *Store, id string) bool {
	t.Helper()
	_, err := s.GetStage(context.Background(), ivs.StageID(id))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestGroupCommitSharesOneCommit: callers that queue while a transaction runs join it, and all of them are
// answered by one commit.
func TestGroupCommitSharesOneCommit(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "g.db"))
	ctx := t.Context()
	before := s.Stats()
	release, first := holdWriter(t, s, func(tx store.Tx) error { return insertStage(ctx, tx, "first") })
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(ctx, func(tx store.Tx) error { return insertStage(ctx, tx, fmt.Sprintf("s%02d", i)) })
		}()
	}
	waitWaiting(t, s, n)
	release()
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if !stageExists(t, s, fmt.Sprintf("s%02d", i)) {
			t.Fatalf("caller %d was acknowledged but its stage is not there", i)
		}
	}
	after := s.Stats()
	if c, u := after.Commits-before.Commits, after.Updates-before.Updates; c != 1 || u != n+1 {
		t.Fatalf("%d commits for %d updates, want 1 for %d", c, u, n+1)
	}
}

// TestGroupCommitIsolatesFailures: in one shared transaction, fns that return an error, panic or exit their
// goroutine lose their own writes and nobody else's, and see the panic go on in their own goroutine.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "g.db"))
	ctx := t.Context()
	before := s.Stats()
	release, first := holdWriter(t, s, func(tx store.Tx) error { return insertStage(ctx, tx, "first") })

	errBoom := errors.New("boom")
	type outcome struct {
		err      error
		panicked any
	}
	kinds := []string{"ok", "error", "panic", "goexit", "sqlerror", "ok"}
	out := make([]outcome, len(kinds))
	var wg sync.WaitGroup
	for i, kind := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { out[i].panicked = recover() }()
			id := fmt.Sprintf("%s%d", kind, i)
			out[i].err = s.Update(ctx, func(tx store.Tx) error {
				if err := insertStage(ctx, tx, id); err != nil {
					return err
				}
				switch kind {
				case "error":
					return errBoom
				case "panic":
					panic("fn panicked")
				case "goexit":
					runtime.Goexit()
				case "sqlerror": // a failing statement after a successful one
					return insertStage(ctx, tx, "first")
				}
				return nil
			})
		}()
	}
	waitWaiting(t, s, int64(len(kinds)))
	release()
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, kind := range kinds {
		id := fmt.Sprintf("%s%d", kind, i)
		o := out[i]
		switch kind {
		case "ok":
			if o.err != nil || o.panicked != nil || !stageExists(t, s, id) {
				t.Errorf("%s: %+v, stored %v", id, o, stageExists(t, s, id))
			}
		case "error":
			if !errors.Is(o.err, errBoom) || stageExists(t, s, id) {
				t.Errorf("%s: %+v, stored %v", id, o, stageExists(t, s, id))
			}
		case "panic":
			if o.panicked != "fn panicked" || stageExists(t, s, id) {
				t.Errorf("%s: %+v, stored %v", id, o, stageExists(t, s, id))
			}
		case "goexit", "sqlerror":
			if kind == "sqlerror" && !errors.Is(o.err, store.ErrExists) {
				t.Errorf("%s: %+v", id, o)
			}
			if stageExists(t, s, id) {
				t.Errorf("%s: its writes were kept", id)
			}
		}
	}
	if !stageExists(t, s, "first") {
		t.Error("the first fn's stage is gone")
	}
	after := s.Stats()
	if c, u := after.Commits-before.Commits, after.Updates-before.Updates; c != 1 || u != 3 {
		t.Fatalf("%d commits for %d updates, want 1 for 3 (first and the two ok)", c, u)
	}
}

// TestGroupCommitFirstFails: when the fn that opened the transaction fails, the transaction holds nothing
// else and is rolled back whole; those queued behind start a new one.
func TestGroupCommitFirstFails(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "g.db"))
	ctx := t.Context()
	errBoom := errors.New("boom")
	release, first := holdWriter(t, s, func(tx store.Tx) error {
		if err := insertStage(ctx, tx, "first"); err != nil {
			return err
		}
		return errBoom
	})
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(ctx, func(tx store.Tx) error { return insertStage(ctx, tx, fmt.Sprintf("s%d", i)) })
		}()
	}
	waitWaiting(t, s, int64(len(errs)))
	release()
	wg.Wait()
	if err := <-first; !errors.Is(err, errBoom) {
		t.Fatalf("first: %v", err)
	}
	if stageExists(t, s, "first") {
		t.Fatal("the failed first fn's write landed")
	}
	for i, err := range errs {
		if err != nil || !stageExists(t, s, fmt.Sprintf("s%d", i)) {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
}

// TestGroupCommitCancelledCaller: a caller whose context ends while it waits for the writer gives up
// without writing; one whose fn has run is answered with the commit's outcome.
func TestGroupCommitCancelledCaller(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "g.db"))
	ctx := t.Context()
	release, first := holdWriter(t, s, func(tx store.Tx) error { return insertStage(ctx, tx, "first") })
	cctx, cancel := context.WithCancel(ctx)
	res := make(chan error, 1)
	go func() {
		res <- s.Update(cctx, func(tx store.Tx) error { return insertStage(ctx, tx, "cancelled") })
	}()
	waitWaiting(t, s, 1)
	cancel()
	release()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if !stageExists(t, s, "first") || stageExists(t, s, "cancelled") {
		t.Fatal("wrong writes after a cancelled caller")
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return insertStage(ctx, tx, "after") }); err != nil {
		t.Fatal(err)
	}
}

// TestGroupCommitManyWriters: many concurrent writers, each appending to its own participant and waiting
// for each acknowledgement; every acknowledged event is there, in order, and commits were shared.
func TestGroupCommitManyWriters(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "g.db"))
	ctx := t.Context()
	const writers, each = 32, 40
	before := s.Stats()
	st, sess := ivs.NewStageID(), ivs.NewSessionID()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid := ivs.ParticipantID(fmt.Sprintf("w%011d", w))
			for i := range each {
				e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: pid, Name: ivs.EventJoined, Time: time.Now()}
				if err := s.Update(ctx, func(tx store.Tx) error { return tx.AppendEvent(ctx, &e) }); err != nil {
					errs <- err
					return
				}
				if e.Seq != int64(i+1) {
					errs <- fmt.Errorf("writer %d: Seq %d, want %d", w, e.Seq, i+1)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range writers {
		evs, err := s.ListEvents(ctx, st, sess, ivs.ParticipantID(fmt.Sprintf("w%011d", w)), store.Page{})
		if err != nil || len(evs) != each {
			t.Fatalf("writer %d: %d events, %v", w, len(evs), err)
		}
	}
	after := s.Stats()
	if u := after.Updates - before.Updates; u != writers*each {
		t.Fatalf("%d updates counted, want %d", u, writers*each)
	}
	t.Logf("%d updates in %d commits", writers*each, after.Commits-before.Commits)
}

// crashWritersEnv makes the crash child write from this many goroutines at once (group commit).
const crashWritersEnv = "OPENSTAGE_SQLITE_CRASH_CHILD_WRITERS"

// crashChildGroup runs writers goroutines, each appending events to its own participant and printing
// "ack W N" once its Nth Update has returned nil.
func crashChildGroup(s *Store, writers int) int {
	ctx := context.Background()
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := range writers {
		go func() {
			pid := ivs.ParticipantID(fmt.Sprintf("g%011d", w))
			for n := 1; ; n++ {
				e := ivs.Event{StageID: crashStage, SessionID: crashSession, ParticipantID: pid, Name: ivs.EventJoined, Time: time.Now()}
				// An event and its notification, as the stage domain writes them (buffer.go buffers both).
				if err := s.Update(ctx, func(tx store.Tx) error {
					if err := tx.AppendEvent(ctx, &e); err != nil {
						return err
					}
					return tx.AppendNotification(ctx, &store.Notification{StageID: crashStage, SessionID: crashSession, Kind: "JOINED",
						Time: e.Time, Detail: fmt.Appendf(nil, `{"w":%d,"n":%d}`, w, n)})
				}); err != nil {
					fmt.Fprintln(os.Stderr, "update:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %d %d\n", w, n)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestGroupCrashLosesNothingAcknowledged: a child writing from many goroutines at once, so that its
// commits are shared, is killed with SIGKILL; every write it acknowledged is there after reopening.
func TestGroupCrashLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const writers = 16
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path, crashWritersEnv+"="+strconv.Itoa(writers))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := make([]int, writers)
	total, killed := 0, false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			continue
		}
		w, _ := strconv.Atoi(f[1])
		n, _ := strconv.Atoi(f[2])
		acked[w] = max(acked[w], n)
		if total++; total == 2000 && !killed {
			killed = true
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("the child stopped after %d acknowledgements", total)
	}
	s := openTest(t, path)
	ctx := t.Context()
	for w := range writers {
		evs, err := s.ListEvents(ctx, crashStage, crashSession, ivs.ParticipantID(fmt.Sprintf("g%011d", w)), store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		// Each writer has at most one write in flight beyond what it acknowledged.
		if len(evs) < acked[w] || len(evs) > acked[w]+1 {
			t.Fatalf("writer %d: %d acknowledged, %d stored", w, acked[w], len(evs))
		}
		acked[w] = len(evs)
	}
	// Every stored event has its notification, and nothing else is in the log: each writer's, in order.
	ns, err := s.ListNotifications(ctx, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	for _, n := range ns {
		var d struct{ W, N int }
		if err := json.Unmarshal(n.Detail, &d); err != nil || d.W < 0 || d.W >= writers || d.N != next[d.W]+1 {
			t.Fatalf("notification %d %s out of order (%v)", n.Seq, n.Detail, err)
		}
		next[d.W] = d.N
	}
	for w := range writers {
		if next[w] != acked[w] {
			t.Errorf("writer %d: %d events stored, %d notifications", w, acked[w], next[w])
		}
	}
}

// appendOne appends one event for p and returns its Seq.
func appendOne(t *testing.T, s *Store, st ivs.StageID, sess ivs.SessionID, p ivs.ParticipantID) int64 {
	t.Helper()
	ctx := t.Context()
	e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: p, Name: ivs.EventJoined, Time: time.Now()}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.AppendEvent(ctx, &e) }); err != nil {
		t.Fatal(err)
	}
	return e.Seq
}

// TestSeqHintsFollowOtherWriters: the sequence hints of one Store are dropped when another Store on the
// same file (another process) changes the events, so no Seq is skipped or repeated.
func TestSeqHintsFollowOtherWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	a, b := openTest(t, path), openTest(t, path)
	ctx := t.Context()
	st, sess, p := ivs.NewStageID(), ivs.NewSessionID(), ivs.NewParticipantID()
	if err := a.Update(ctx, func(tx store.Tx) error {
		return tx.InsertStage(ctx, ivs.Stage{ID: st, Name: "x", CreatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	for want := int64(1); want <= 2; want++ {
		if got := appendOne(t, a, st, sess, p); got != want {
			t.Fatalf("Seq %d, want %d", got, want)
		}
	}
	if got := appendOne(t, b, st, sess, p); got != 3 { // the other writer continues the sequence
		t.Fatalf("the other store's Seq %d, want 3", got)
	}
	if got := appendOne(t, a, st, sess, p); got != 4 {
		t.Fatalf("Seq %d after the other store wrote, want 4", got)
	}
	// The other store deletes the events (the stage goes): a hint of 4 would now leave a gap.
	if err := b.Update(ctx, func(tx store.Tx) error { return tx.DeleteStage(ctx, st) }); err != nil {
		t.Fatal(err)
	}
	if got := appendOne(t, a, st, sess, p); got != 1 {
		t.Fatalf("Seq %d after the other store deleted the events, want 1", got)
	}
}

// TestSeqHintsFollowRollbacks: an append that is rolled back, alone or in a shared transaction, leaves no
// hint behind.
func TestSeqHintsFollowRollbacks(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "g.db"))
	ctx := t.Context()
	st, sess, p, q := ivs.NewStageID(), ivs.NewSessionID(), ivs.NewParticipantID(), ivs.NewParticipantID()
	errBoom := errors.New("boom")
	appendThenFail := func(pid ivs.ParticipantID) func(store.Tx) error {
		return func(tx store.Tx) error {
			e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: pid, Name: ivs.EventJoined, Time: time.Now()}
			if err := tx.AppendEvent(ctx, &e); err != nil {
				return err
			}
			return errBoom
		}
	}
	appendOne(t, s, st, sess, p)
	// Alone: the whole transaction is rolled back.
	if err := s.Update(ctx, appendThenFail(p)); !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	if got := appendOne(t, s, st, sess, p); got != 2 {
		t.Fatalf("Seq %d after a rolled-back append, want 2", got)
	}
	// In a shared transaction: rolled back to its savepoint, after another fn appended for q.
	release, first := holdWriter(t, s, func(tx store.Tx) error {
		e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: q, Name: ivs.EventJoined, Time: time.Now()}
		return tx.AppendEvent(ctx, &e)
	})
	res := make(chan error, 1)
	go func() { res <- s.Update(ctx, appendThenFail(p)) }()
	waitWaiting(t, s, 1)
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-res; !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	if got := appendOne(t, s, st, sess, p); got != 3 {
		t.Fatalf("Seq %d after an append rolled back to its savepoint, want 3", got)
	}
	if got := appendOne(t, s, st, sess, q); got != 2 {
		t.Fatalf("q's Seq %d, want 2", got)
	}
	// Retention deletes a session's events: its participants start over.
	if err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertSession(ctx, ivs.Session{StageID: st, ID: sess, StartTime: time.Unix(100, 0), EndTime: time.Unix(200, 0)}); err != nil {
			return err
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteEndedBefore(ctx, time.Unix(300, 0)); err != nil || n != 1 {
		t.Fatalf("DeleteEndedBefore: %d, %v", n, err)
	}
	if got := appendOne(t, s, st, sess, p); got != 1 {
		t.Fatalf("Seq %d after retention deleted the session, want 1", got)
	}
}

// TestCloseCommitsTheOpenTransaction: a store closed while callers wait answers the callers already in
// the open transaction with its commit, and the later ones with an error.
func TestCloseCommitsTheOpenTransaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	release, first := holdWriter(t, s, func(tx store.Tx) error { return insertStage(ctx, tx, "first") })
	second := make(chan error, 1)
	go func() { second <- s.Update(ctx, func(tx store.Tx) error { return insertStage(ctx, tx, "second") }) }()
	waitWaiting(t, s, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitWaiting(t, s, 2) // Close waits for the writer too
	release()
	if err := <-first; err != nil {
		t.Fatalf("the caller in the open transaction: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	err2 := <-second
	if err2 != nil && !errors.Is(err2, errClosed) {
		t.Fatalf("a caller after Close: %v", err2)
	}
	s2 := openTest(t, path)
	if !stageExists(t, s2, "first") || (err2 == nil) != stageExists(t, s2, "second") {
		t.Fatalf("after Close: first %v, second %v (its Update said %v)", stageExists(t, s2, "first"), stageExists(t, s2, "second"), err2)
	}
}
