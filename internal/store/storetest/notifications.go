package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// The notification log and the webhooks' delivery state (store.Outbox, docs/DESIGN.md §5.6).

func note(stage ivs.StageID, kind, marker string, sec int) *store.Notification {
	return &store.Notification{StageID: stage, SessionID: "st-aaaaaaaaaaaaa", Kind: kind, Time: at(sec),
		Detail: []byte(`{"marker":"` + marker + `"}`)}
}

func testNotifications(t *testing.T, s store.Store) {
	ctx := t.Context()
	if got := must(s.LastNotification(ctx)).get(t); got != 0 {
		t.Fatalf("LastNotification of an empty log = %d", got)
	}
	var seqs []int64
	update(t, s, func(tx store.Tx) error {
		for i := range 3 {
			n := note("stageAAAAAAA", "JOINED", fmt.Sprint(i), i)
			if err := tx.AppendNotification(ctx, n); err != nil {
				return err
			}
			seqs = append(seqs, n.Seq)
		}
		return nil
	})
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("seqs %v do not increase", seqs)
		}
	}
	// A rolled back notification is never seen, and leaves no hole a reader stops at.
	boom := errors.New("boom")
	if err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.AppendNotification(ctx, note("stageAAAAAAA", "LEFT", "rolled back", 9)); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	update(t, s, func(tx store.Tx) error {
		n := note("stageBBBBBBB", "SESSION_STARTED", "3", 3)
		err := tx.AppendNotification(ctx, n)
		seqs = append(seqs, n.Seq)
		return err
	})
	// On PostgreSQL a reader stops before a hole until every transaction that could fill it has ended, those
	// of other databases of the server included (postgres/outbox.go): on a server busy with other tests that
	// may outlast one call's wait, and the hole is passed by a later call.
	var all []store.Notification
	for deadline := time.Now().Add(30 * time.Second); ; {
		all = must(s.ListNotifications(ctx, 0, 100)).get(t)
		if len(all) == 4 || time.Now().After(deadline) {
			break
		}
	}
	if len(all) != 4 {
		t.Fatalf("ListNotifications = %d notifications, want 4: %+v", len(all), all)
	}
	for i, n := range all {
		if n.Seq != seqs[i] || string(n.Detail) != fmt.Sprintf(`{"marker":"%d"}`, i) || !n.Time.Equal(at(i)) {
			t.Errorf("notification %d = %+v, want seq %d marker %d", i, n, seqs[i], i)
		}
	}
	if all[3].StageID != "stageBBBBBBB" || all[3].Kind != "SESSION_STARTED" || all[3].SessionID != "st-aaaaaaaaaaaaa" {
		t.Errorf("notification 3 = %+v", all[3])
	}
	page := must(s.ListNotifications(ctx, seqs[0], 2)).get(t)
	if len(page) != 2 || page[0].Seq != seqs[1] || page[1].Seq != seqs[2] {
		t.Errorf("page after %d = %+v", seqs[0], page)
	}
	if rest := must(s.ListNotifications(ctx, seqs[3], 10)).get(t); len(rest) != 0 {
		t.Errorf("page after the last = %+v", rest)
	}
	if got := must(s.GetNotification(ctx, seqs[2])).get(t); got.Seq != seqs[2] || string(got.Detail) != `{"marker":"2"}` {
		t.Errorf("GetNotification = %+v", got)
	}
	if _, err := s.GetNotification(ctx, seqs[3]+1000); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetNotification of none = %v, want ErrNotFound", err)
	}
	if got := must(s.LastNotification(ctx)).get(t); got != seqs[3] {
		t.Errorf("LastNotification = %d, want %d", got, seqs[3])
	}
}

func testDeliveries(t *testing.T, s store.Store) {
	ctx := t.Context()
	const ttl = time.Minute
	var first int64
	update(t, s, func(tx store.Tx) error {
		n := note("stageAAAAAAA", "JOINED", "0", 0)
		err := tx.AppendNotification(ctx, n)
		first = n.Seq
		return err
	})
	// A new endpoint starts at the log's end; its lease is its owner's until released or lapsed.
	cur, ok, err := s.AcquireDelivery(ctx, "a", "node1", ttl)
	if err != nil || !ok || cur != first {
		t.Fatalf("AcquireDelivery(new) = %d, %v, %v; want %d, true", cur, ok, err, first)
	}
	if _, ok, err := s.AcquireDelivery(ctx, "a", "node2", ttl); err != nil || ok {
		t.Fatalf("AcquireDelivery by another owner = %v, %v; want refused", ok, err)
	}
	if err := s.AdvanceDelivery(ctx, "a", "node2", first+5, ttl, nil, nil); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("AdvanceDelivery by another owner = %v, want ErrLeaseLost", err)
	}
	dead := []store.DeadLetter{{Seq: first + 1, Attempts: 3, LastError: "HTTP 500", At: at(1)}, {Seq: first + 2, Attempts: 3, LastError: "timeout", At: at(2)}}
	if err := s.AdvanceDelivery(ctx, "a", "node1", first+3, ttl, dead, nil); err != nil {
		t.Fatal(err)
	}
	// The cursor never moves back.
	if err := s.AdvanceDelivery(ctx, "a", "node1", first+1, ttl, nil, nil); err != nil {
		t.Fatal(err)
	}
	if cur, ok, err := s.AcquireDelivery(ctx, "a", "node1", ttl); err != nil || !ok || cur != first+3 {
		t.Fatalf("AcquireDelivery(renew) = %d, %v, %v; want %d, true", cur, ok, err, first+3)
	}
	got := must(s.DeadLetters(ctx, "a")).get(t)
	if len(got) != 2 || got[0].Seq != first+1 || got[0].Attempts != 3 || got[0].LastError != "HTTP 500" || got[0].Endpoint != "a" ||
		!got[0].At.Equal(at(1)) || got[0].Replay || got[1].Seq != first+2 {
		t.Fatalf("DeadLetters = %+v", got)
	}
	if other := must(s.DeadLetters(ctx, "b")).get(t); len(other) != 0 {
		t.Fatalf("DeadLetters(b) = %+v", other)
	}
	if n := must(s.ReplayDeadLetters(ctx, "a", []int64{first + 2})).get(t); n != 1 {
		t.Fatalf("ReplayDeadLetters(one) = %d", n)
	}
	if n := must(s.ReplayDeadLetters(ctx, "a", nil)).get(t); n != 1 {
		t.Fatalf("ReplayDeadLetters(all) = %d, want the one left", n)
	}
	got = must(s.DeadLetters(ctx, "")).get(t)
	if len(got) != 2 || !got[0].Replay || !got[1].Replay {
		t.Fatalf("DeadLetters after replay = %+v", got)
	}
	// A replay that fails again is dead again, with its attempts added; one delivered is forgotten.
	if err := s.AdvanceDelivery(ctx, "a", "node1", first+3, ttl,
		[]store.DeadLetter{{Seq: first + 1, Attempts: 2, LastError: "HTTP 503", At: at(5)}}, []int64{first + 2}); err != nil {
		t.Fatal(err)
	}
	got = must(s.DeadLetters(ctx, "a")).get(t)
	if len(got) != 1 || got[0].Seq != first+1 || got[0].Attempts != 5 || got[0].Replay || got[0].LastError != "HTTP 503" {
		t.Fatalf("DeadLetters after a failed replay = %+v", got)
	}
	if err := s.ReleaseDelivery(ctx, "a", "node1"); err != nil {
		t.Fatal(err)
	}
	if cur, ok, err := s.AcquireDelivery(ctx, "a", "node2", ttl); err != nil || !ok || cur != first+3 {
		t.Fatalf("AcquireDelivery after release = %d, %v, %v", cur, ok, err)
	}
	// A lapsed lease is anyone's.
	if _, ok, err := s.AcquireDelivery(ctx, "b", "node1", time.Millisecond); err != nil || !ok {
		t.Fatalf("AcquireDelivery(b) = %v, %v", ok, err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, ok, err := s.AcquireDelivery(ctx, "b", "node2", ttl); err != nil || !ok {
		t.Fatalf("AcquireDelivery of a lapsed lease = %v, %v", ok, err)
	}
}

// testConcurrentNotifications: writers on every handle append at once, some rolling back, while a reader
// pages by the last seq it got. The reader must end with every committed notification exactly once, in
// seq order: a seq taken before another but committed after it is not skipped.
func testConcurrentNotifications(t *testing.T, ss []store.Store) {
	ctx := t.Context()
	const writers, each = 6, 40
	var mu sync.Mutex
	committed := map[string]bool{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			s := ss[w%len(ss)]
			for i := range each {
				marker := fmt.Sprintf("w%d-%d", w, i)
				rollback := i%7 == 3
				err := s.Update(ctx, func(tx store.Tx) error {
					if err := tx.AppendNotification(ctx, note(ivs.StageID(fmt.Sprintf("stage%07d", w)), "JOINED", marker, i)); err != nil {
						return err
					}
					if i%5 == 0 {
						time.Sleep(time.Millisecond) // hold a low seq while others commit higher ones
					}
					if rollback {
						return errRollback
					}
					return nil
				})
				if rollback && errors.Is(err, errRollback) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				committed[marker] = true
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[string]int{}
	var cursor int64
	read := func(s store.Store) {
		ns, err := s.ListNotifications(ctx, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if n.Seq <= cursor {
				t.Fatalf("seq %d after cursor %d", n.Seq, cursor)
			}
			cursor = n.Seq
			seen[string(n.Detail)]++
		}
	}
	for r := 0; ; r++ {
		select {
		case <-done:
			for range 200 {
				read(ss[r%len(ss)])
			}
			if len(seen) != len(committed) {
				t.Fatalf("the reader saw %d notifications, %d committed", len(seen), len(committed))
			}
			for m := range committed {
				if seen[`{"marker":"`+m+`"}`] != 1 {
					t.Errorf("notification %s seen %d times", m, seen[`{"marker":"`+m+`"}`])
				}
			}
			return
		default:
			read(ss[r%len(ss)])
		}
	}
}

var errRollback = errors.New("storetest: rollback")

// testNotificationRetention: the retention job (DeleteEndedBefore) deletes notifications older than its time,
// in batches, with the dead letters that named them, and keeps the rest.
func testNotificationRetention(t *testing.T, s store.Store) {
	ctx := t.Context()
	var seqs []int64
	for i := range 12 { // more than one batch of the smallest delete batch the suites use (7)
		update(t, s, func(tx store.Tx) error {
			n := note("stageAAAAAAA", "JOINED", fmt.Sprint(i), i)
			err := tx.AppendNotification(ctx, n)
			seqs = append(seqs, n.Seq)
			return err
		})
	}
	if _, ok, err := s.AcquireDelivery(ctx, "ep", "node", time.Minute); err != nil || !ok {
		t.Fatalf("AcquireDelivery: %v %v", ok, err)
	}
	dead := []store.DeadLetter{{Endpoint: "ep", Seq: seqs[1], Attempts: 3, LastError: "503", At: at(20)},
		{Endpoint: "ep", Seq: seqs[11], Attempts: 3, LastError: "503", At: at(20)}}
	if err := s.AdvanceDelivery(ctx, "ep", "node", seqs[11], time.Minute, dead, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteEndedBefore(ctx, at(10)); err != nil {
		t.Fatal(err)
	}
	left := must(s.ListNotifications(ctx, 0, 100)).get(t)
	if len(left) != 2 || left[0].Seq != seqs[10] || left[1].Seq != seqs[11] {
		t.Fatalf("after retention at 10 s: %+v, want the notifications at 10 and 11 s", left)
	}
	dls := must(s.DeadLetters(ctx, "ep")).get(t)
	if len(dls) != 1 || dls[0].Seq != seqs[11] {
		t.Fatalf("dead letters after retention: %+v, want only the one whose notification is kept", dls)
	}
}
