package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/notify"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/sqlite"
)

// IngestRow is durable event ingest through the store at one number of concurrent writers: each writer
// appends one event and its notification (the notification log, docs/DESIGN.md §5.6) per Update and waits
// for it to be acknowledged (committed, synchronous=FULL) before the next, as the stage domain does for every
// participant event (internal/stage/history.go, writer.event).
type IngestRow struct {
	Writers int     `json:"writers"`
	Events  int64   `json:"events"`
	PerSec  float64 `json:"perSecond"`
	// Commits is how many transactions the store committed (fsyncs of the WAL): with group commit,
	// concurrent writers share them.
	Commits int64   `json:"commits"`
	P50     float64 `json:"p50Ms"`
	P99     float64 `json:"p99Ms"`
	// RawPairs is this row's own ceiling, measured just before it: the same rows (the events, and their
	// notifications in one chunk) by plain prepared INSERTs, 100 events per transaction, events/s.
	RawPairs float64 `json:"rawEventNotificationPerSecond"`
}

// userID is the participants' user id in their notifications: as long as the ids a token carries.
const userID = "user-0000000000000000"

func ingest(ctx context.Context, dir string, writers int, d time.Duration) (IngestRow, error) {
	raw, err := rawPairCeiling(ctx, dir, writers, min(d/3, time.Second), ingestBatchRows)
	if err != nil {
		return IngestRow{}, fmt.Errorf("bench: event and notification ceiling: %w", err)
	}
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
				if err := st.Update(ctx, func(tx store.Tx) error {
					if err := tx.AppendEvent(ctx, &e); err != nil {
						return err
					}
					n, err := notify.FromEvent(e, userID)
					if err != nil {
						return err
					}
					return tx.AppendNotification(ctx, n)
				}); err != nil {
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
	// And one notification for each.
	if last, err := st.LastNotification(ctx); err != nil || last != acked.Load() {
		return IngestRow{}, fmt.Errorf("bench: %d events acknowledged, the notification log ends at %d (%v)", acked.Load(), last, err)
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	l := summarize(writers, all, took)
	return IngestRow{Writers: writers, Events: acked.Load(), PerSec: float64(acked.Load()) / took.Seconds(),
		Commits: st.Stats().Commits - commits0, P50: l.P50, P99: l.P99, RawPairs: raw}, nil
}

// rawPairCeiling is the ceiling of the ingest as the domain writes it: for each event, its row, and for
// the transaction's notifications one chunk row holding them all, as the SQLite store writes them
// (internal/store/sqlite, chunks.go), by plain prepared INSERTs, batch events per transaction,
// synchronous=FULL in WAL mode, in the store's own schema on a fresh file, for as many participants as the
// ingest has writers. It returns events/s.
func rawPairCeiling(ctx context.Context, dir string, participants int, d time.Duration, batch int) (float64, error) {
	path := filepath.Join(dir, fmt.Sprintf("raw-pairs-%d.db", participants))
	st, err := sqlite.Open(ctx, path) // the schema
	if err != nil {
		return 0, err
	}
	if err := st.Close(); err != nil {
		return 0, err
	}
	db, err := openDurable(path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	insEvent, err := db.PrepareContext(ctx, `INSERT INTO events (stage_id, session_id, participant_id, seq, name, time,
		remote_participant_id, error_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return 0, err
	}
	defer insEvent.Close()
	insNote, err := db.PrepareContext(ctx, `INSERT INTO notification_chunks (last_seq, first_seq, time, data) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return 0, err
	}
	defer insNote.Close()
	stage, session := ivs.NewStageID(), ivs.NewSessionID()
	parts := make([]ivs.ParticipantID, participants)
	for i := range parts {
		parts[i] = ivs.NewParticipantID()
	}
	// A detail of the size the ingest writes; encoding it is the domain's work, not the ceiling's.
	n, err := notify.FromEvent(ivs.Event{StageID: stage, SessionID: session, ParticipantID: parts[0], Name: ivs.EventSubscribeStarted,
		Time: time.Now(), RemoteParticipantID: parts[0]}, userID)
	if err != nil {
		return 0, err
	}
	// A chunk of batch notifications of that size; building it is the store's work, not the ceiling's.
	var chunk []byte
	for range batch {
		for _, f := range []string{string(stage), string(session), n.Kind, "1764806400123456789", string(n.Detail)} {
			chunk = fmt.Appendf(chunk, "%d:%s,", len(f), f)
		}
	}
	events, seq := 0, 0
	start := time.Now()
	for time.Since(start) < d {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		e, nt := tx.StmtContext(ctx, insEvent), tx.StmtContext(ctx, insNote)
		for range batch {
			p := parts[seq%participants]
			seq++
			at := time.Now().UnixNano()
			if _, err := e.ExecContext(ctx, string(stage), string(session), string(p), seq, string(ivs.EventSubscribeStarted), at, string(parts[0]), ""); err != nil {
				_ = tx.Rollback()
				return 0, err
			}
		}
		if _, err := nt.ExecContext(ctx, seq, seq-batch+1, time.Now().UnixNano(), chunk); err != nil {
			_ = tx.Rollback()
			return 0, err
		}
		if err := tx.Commit(); err != nil {
			return 0, err
		}
		events += batch
	}
	return float64(events) / time.Since(start).Seconds(), nil
}
