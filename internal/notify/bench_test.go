package notify_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/notify"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/teststore"
)

// BenchmarkDelivery writes notifications at a target rate to one local receiver and reports the
// deliveries' throughput and mean lag (commit to receipt):
//   - one-per-tx: one event and its notification per durable transaction, as one participant's activity
//     writes them; the store's synchronous commits bound the rate (about 300 a second on this machine's disk);
//   - batch-10-at-1000/s: ten per transaction every 10 ms, as a busy node's concurrent writers commit
//     together, 1,000 a second.
func BenchmarkDelivery(b *testing.B) {
	if testing.Short() {
		b.Skip("short")
	}
	for _, tc := range []struct {
		name  string
		batch int
		every time.Duration
	}{{"one-per-tx", 1, time.Millisecond}, {"batch-10-at-1000/s", 10, 10 * time.Millisecond}} {
		b.Run(tc.name, func(b *testing.B) {
			s := teststore.Open(b)
			var got, lagSum atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				got.Add(1)
			}))
			defer srv.Close()
			cfg := notify.Config{Endpoints: []notify.Endpoint{{Name: "bench", URL: srv.URL, Secret: "bench-secret-0123"}},
				Observer: lagObserver{&lagSum}}
			running(b, s, cfg)
			time.Sleep(100 * time.Millisecond) // the endpoint's row exists: it starts at the log's end
			start := time.Now()
			tick := time.NewTicker(tc.every)
			defer tick.Stop()
			b.ResetTimer()
			for written := 0; written < b.N; written += tc.batch {
				<-tick.C
				writeBatch(b, s, min(tc.batch, b.N-written))
			}
			for got.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			el := time.Since(start)
			b.ReportMetric(float64(b.N)/el.Seconds(), "deliveries/s")
			b.ReportMetric(float64(lagSum.Load())/float64(b.N)/1e6, "ms-lag")
		})
	}
}

// writeBatch commits n events with their notifications in one transaction.
func writeBatch(b *testing.B, s store.Store, n int) {
	err := s.Update(context.Background(), func(tx store.Tx) error {
		for range n {
			e := ivs.Event{StageID: "stageAAAAAAA", SessionID: "st-AAAAAAAAAAAAA", ParticipantID: "pAAAAAAAAAAA", Name: ivs.EventJoined, Time: time.Now()}
			if err := tx.AppendEvent(context.Background(), &e); err != nil {
				return err
			}
			no, err := notify.FromEvent(e, "user-1")
			if err != nil {
				return err
			}
			if err := tx.AppendNotification(context.Background(), no); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

type lagObserver struct{ sum *atomic.Int64 }

func (o lagObserver) Delivery(_, result string, lag time.Duration) {
	if result == "delivered" {
		o.sum.Add(int64(lag))
	}
}
func (lagObserver) Depth(string, int64) {}
