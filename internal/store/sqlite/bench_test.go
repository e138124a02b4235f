package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/notify"
	"github.com/openstage/openstage/internal/store"
)

const benchEvents = 100_000

// seedEvents appends n events for one participant in transactions of 10,000.
func seedEvents(b *testing.B, s *Store, st ivs.StageID, sess ivs.SessionID, p ivs.ParticipantID, n int) {
	b.Helper()
	ctx := context.Background()
	for done := 0; done < n; {
		err := s.Update(ctx, func(tx store.Tx) error {
			for i := 0; i < 10_000 && done+i < n; i++ {
				e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: p, Name: ivs.EventSubscribeStarted,
					Time: time.Now(), RemoteParticipantID: ivs.NewParticipantID()}
				if err := tx.AppendEvent(ctx, &e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		done += 10_000
	}
}

// BenchmarkAppendEvent: one durable write transaction (BEGIN IMMEDIATE, one AppendEvent, COMMIT with
// synchronous=FULL) per iteration, for a participant with no events and for one with 100k events already.
func BenchmarkAppendEvent(b *testing.B) {
	for _, prior := range []int{0, benchEvents} {
		name := "fresh"
		if prior > 0 {
			name = "after100k"
		}
		b.Run(name, func(b *testing.B) {
			s := openTest(b, filepath.Join(b.TempDir(), "bench.db"))
			ctx := context.Background()
			st, sess, p := ivs.NewStageID(), ivs.NewSessionID(), ivs.NewParticipantID()
			seedEvents(b, s, st, sess, p, prior)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: p, Name: ivs.EventJoined, Time: time.Now()}
				if err := s.Update(ctx, func(tx store.Tx) error { return tx.AppendEvent(ctx, &e) }); err != nil {
					b.Fatal(err)
				}
				if e.Seq != int64(prior+i+1) {
					b.Fatalf("Seq %d, want %d", e.Seq, prior+i+1)
				}
			}
		})
	}
}

// BenchmarkListEventsPage: a 100-row page of one participant's 100k events, at the start and at the end.
func BenchmarkListEventsPage(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "bench.db"))
	ctx := context.Background()
	st, sess, p := ivs.NewStageID(), ivs.NewSessionID(), ivs.NewParticipantID()
	// Other participants' events around it, so the page is cut out of a bigger table.
	seedEvents(b, s, st, sess, ivs.NewParticipantID(), benchEvents/4)
	seedEvents(b, s, st, sess, p, benchEvents)
	seedEvents(b, s, st, sess, ivs.NewParticipantID(), benchEvents/4)
	for _, c := range []struct {
		name  string
		after *store.Cursor
	}{
		{"start", nil},
		{"end", &store.Cursor{Seq: benchEvents - 100}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				evs, err := s.ListEvents(ctx, st, sess, p, store.Page{After: c.after, Limit: 100})
				if err != nil || len(evs) != 100 {
					b.Fatalf("%d events, %v", len(evs), err)
				}
			}
		})
	}
}

// BenchmarkAppendEventConcurrent: many writers, each waiting for its own durable Update of one event, as
// the stage domain's participants do; group commit shares the commits.
func BenchmarkAppendEventConcurrent(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "bench.db"))
	ctx := context.Background()
	st, sess := ivs.NewStageID(), ivs.NewSessionID()
	b.SetParallelism(32) // × GOMAXPROCS writers
	b.RunParallel(func(pb *testing.PB) {
		p := ivs.NewParticipantID()
		for pb.Next() {
			e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: p, Name: ivs.EventJoined, Time: time.Now()}
			if err := s.Update(ctx, func(tx store.Tx) error { return tx.AppendEvent(ctx, &e) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	stats := s.Stats()
	b.ReportMetric(float64(stats.Updates)/float64(max(stats.Commits, 1)), "events/commit")
}

// BenchmarkIngest: what the stage domain writes for each participant event (internal/stage/history.go), an
// event and its notification in one durable Update, from many writers at once (as openstage bench's ingest
// part, whose writers it matches: 128 × GOMAXPROCS).
func BenchmarkIngest(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "bench.db"))
	ctx := context.Background()
	st, sess := ivs.NewStageID(), ivs.NewSessionID()
	b.SetParallelism(128)
	b.RunParallel(func(pb *testing.PB) {
		p := ivs.NewParticipantID()
		for pb.Next() {
			e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: p, Name: ivs.EventSubscribeStarted, Time: time.Now(),
				RemoteParticipantID: p}
			err := s.Update(ctx, func(tx store.Tx) error {
				if err := tx.AppendEvent(ctx, &e); err != nil {
					return err
				}
				n, err := notify.FromEvent(e, "user-0000000000000000")
				if err != nil {
					return err
				}
				return tx.AppendNotification(ctx, n)
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	stats := s.Stats()
	b.ReportMetric(float64(stats.Updates)/float64(max(stats.Commits, 1)), "events/commit")
}
