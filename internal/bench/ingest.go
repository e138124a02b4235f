package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/sqlite"
)

// IngestRow is durable event ingest through the store at one number of concurrent writers: each writer
// appends one event per Update and waits for it to be acknowledged (committed, synchronous=FULL) before
// the next, as the stage domain does for every participant event.
type IngestRow struct {
	Writers int     `json:"writers"`
	Events  int64   `json:"events"`
	PerSec  float64 `json:"perSecond"`
	// Commits is how many transactions the store committed (fsyncs of the WAL): with group commit,
	// concurrent writers share them.
	Commits int64   `json:"commits"`
	P50     float64 `json:"p50Ms"`
	P99     float64 `json:"p99Ms"`
}

func ingest(ctx context.Context, dir string, writers int, d time.Duration) (IngestRow, error) {
	path := filepath.Join(dir, fmt.Sprintf("ingest-%d.db", writers))
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return IngestRow{}, err
	}
	defer st.Close()
	stage, session := ivs.NewStageID(), ivs.NewSessionID()
	parts := make([]ivs.ParticipantID, writers)
	for i := range parts {
		parts[i] = ivs.NewParticipantID()
	}
	var acked atomic.Int64
	perWriter := make([]int64, writers)
	lats := make([][]time.Duration, writers)
	commits0 := st.Stats().Commits
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	start := time.Now()
	end := start.Add(d)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && ctx.Err() == nil {
				t0 := time.Now()
				e := ivs.Event{StageID: stage, SessionID: session, ParticipantID: parts[w], Name: ivs.EventSubscribeStarted,
					Time: t0, RemoteParticipantID: parts[(w+1)%writers]}
				if err := st.Update(ctx, func(tx store.Tx) error { return tx.AppendEvent(ctx, &e) }); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				lats[w] = append(lats[w], time.Since(t0))
				perWriter[w]++
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if e := firstErr.Load(); e != nil {
		return IngestRow{}, *e
	}
	// Every acknowledged event is there, in order, without gaps.
	for w, p := range parts {
		if perWriter[w] == 0 {
			continue
		}
		evs, err := st.ListEvents(ctx, stage, session, p, store.Page{After: &store.Cursor{Seq: perWriter[w] - 1}, Limit: 2})
		if err != nil {
			return IngestRow{}, err
		}
		if len(evs) != 1 || evs[0].Seq != perWriter[w] {
			return IngestRow{}, fmt.Errorf("bench: writer %d had %d events acknowledged, the store has %v", w, perWriter[w], evs)
		}
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	l := summarize(writers, all, took)
	return IngestRow{Writers: writers, Events: acked.Load(), PerSec: float64(acked.Load()) / took.Seconds(),
		Commits: st.Stats().Commits - commits0, P50: l.P50, P99: l.P99}, nil
}
