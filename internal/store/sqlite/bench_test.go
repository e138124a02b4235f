package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
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

// BenchmarkNotificationRows is what a notification costs SQLite beside its event, without the store around
// it: events of 256 participants inserted by prepared statements, 200 to a synchronous=FULL transaction, alone
// ("events"), each with a notification row in the table migration 0004 made ("rows", as the store wrote them
// before 0007), and with one chunk row per transaction holding the transaction's notifications ("chunk", as
// the store writes them now). ns/op is per event. docs/BENCHMARKS.md, "Fifth pass".
func BenchmarkNotificationRows(b *testing.B) {
	const perTx, participants = 200, 256
	detail := `{"event_name":"Participant Subscribed","user_id":"user-0000000000000000","session_id":"st-AAAAAAAAAAAA","participant_id":"AAAAAAAAAAAA","remote_participant_id":"BBBBBBBBBBBB"}`
	for _, mode := range []string{"events", "rows", "chunk"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), "rows.db")
			s := openTest(b, path)
			if _, err := s.w.ExecContext(ctx, `CREATE TABLE notifications (seq INTEGER PRIMARY KEY AUTOINCREMENT,
				stage_id TEXT NOT NULL, session_id TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL, time INTEGER NOT NULL,
				detail TEXT NOT NULL); CREATE INDEX notifications_by_time ON notifications (time)`); err != nil {
				b.Fatal(err)
			}
			stage, session := ivs.NewStageID(), ivs.NewSessionID()
			parts := make([]string, participants)
			for i := range parts {
				parts[i] = string(ivs.NewParticipantID())
			}
			prepare := func(q string) *sql.Stmt {
				st, err := s.w.PrepareContext(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { st.Close() })
				return st
			}
			insEvent := prepare(`INSERT INTO events (stage_id, session_id, participant_id, seq, name, time, remote_participant_id, error_code)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
			insRow := prepare(`INSERT INTO notifications (seq, stage_id, session_id, kind, time, detail) VALUES (?, ?, ?, ?, ?, ?)`)
			insChunk := prepare(appendChunkSQL)
			var chunk []byte
			b.ResetTimer()
			for done := 0; done < b.N; {
				tx, err := s.w.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				chunk = chunk[:0]
				first := done + 1
				for i := 0; i < perTx && done < b.N; i++ {
					done++
					at := time.Now().UnixNano()
					if _, err := tx.StmtContext(ctx, insEvent).ExecContext(ctx, string(stage), string(session), parts[done%participants], done,
						"SUBSCRIBE_STARTED", at, parts[0], ""); err != nil {
						b.Fatal(err)
					}
					switch mode {
					case "rows":
						if _, err := tx.StmtContext(ctx, insRow).ExecContext(ctx, done, string(stage), string(session), "SUBSCRIBE_STARTED", at, detail); err != nil {
							b.Fatal(err)
						}
					case "chunk":
						chunk = appendChunkNote(chunk, &bufNote{stage: string(stage), session: string(session), kind: "SUBSCRIBE_STARTED", at: at, detail: detail})
					}
				}
				if mode == "chunk" {
					if _, err := tx.StmtContext(ctx, insChunk).ExecContext(ctx, done, first, time.Now().UnixNano(), chunk); err != nil {
						b.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// listBench is the database BenchmarkListPages reads, seeded as openstage bench seeds its API part
// (internal/bench, seed): one session of 10,000 participants, each with JOINED and LEFT, and one of them
// with a long event history (benchEvents events).
type listBench struct {
	s            *Store
	raw          *sql.DB // the same file through a plain pool, as internal/bench's rawDB opens it
	stage        ivs.StageID
	session      ivs.SessionID
	heavy        ivs.ParticipantID
	participants []ivs.ParticipantID
	joined       []time.Time
}

const (
	listBenchParticipants = 10_000
	listBenchPageRows     = 101 // a page of 100 and the one more row the API reads to decide on a nextToken
	listBenchConns        = 16
)

func openListBench(b *testing.B) *listBench {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "bench.db")
	s := openTest(b, path, WithReaders(listBenchConns))
	lb := &listBench{s: s, stage: ivs.NewStageID(), session: ivs.NewSessionID()}
	t0 := time.Now().Add(-time.Hour).UTC()
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertStage(ctx, ivs.Stage{ID: lb.stage, Name: "bench", CreatedAt: t0}); err != nil {
			return err
		}
		return tx.InsertSession(ctx, ivs.Session{StageID: lb.stage, ID: lb.session, StartTime: t0, EndTime: t0.Add(59 * time.Minute)})
	})
	if err != nil {
		b.Fatal(err)
	}
	for i := range listBenchParticipants {
		lb.participants = append(lb.participants, ivs.NewParticipantID())
		lb.joined = append(lb.joined, t0.Add(time.Duration(i)*time.Millisecond))
	}
	lb.heavy = lb.participants[0]
	err = s.Update(ctx, func(tx store.Tx) error {
		for i, id := range lb.participants {
			p := ivs.Participant{StageID: lb.stage, SessionID: lb.session, ID: id, UserID: fmt.Sprintf("user-%d", i),
				State: ivs.StateDisconnected, FirstJoinTime: lb.joined[i], Attributes: map[string]string{"role": "viewer"},
				Client: ivs.ClientInfo{OSName: "Linux", BrowserName: "Chrome", BrowserVersion: "156.0", SDKVersion: "1.41.0", Protocol: ivs.ProtocolWHIP}}
			if err := tx.PutParticipant(ctx, p); err != nil {
				return err
			}
			for _, name := range []ivs.EventName{ivs.EventJoined, ivs.EventLeft} {
				e := ivs.Event{StageID: lb.stage, SessionID: lb.session, ParticipantID: id, Name: name, Time: lb.joined[i]}
				if err := tx.AppendEvent(ctx, &e); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	seedEvents(b, s, lb.stage, lb.session, lb.heavy, benchEvents-2)
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	q := url.Values{}
	q.Add("_pragma", "query_only(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	if lb.raw, err = sql.Open("sqlite", u.String()+"?"+q.Encode()); err != nil {
		b.Fatal(err)
	}
	lb.raw.SetMaxOpenConns(listBenchConns)
	lb.raw.SetMaxIdleConns(listBenchConns)
	b.Cleanup(func() { lb.raw.Close() })
	return lb
}

// The raw ceilings' SQL: the statements the store ran for these pages when the ceilings were set
// (internal/bench's rawParticipantsPageSQL and rawParticipantsAfterSQL; rawEventsPageSQL without its LIMIT, as
// the store reads its pages), kept here as they were so the ceiling does not move with the store's statements.
const (
	rawParticipantsPageSQL = `SELECT id, user_id, state, first_join_time, published, recording_state FROM participants
		WHERE stage_id = ? AND session_id = ? ORDER BY first_join_time, id`
	rawParticipantsAfterSQL = `SELECT id, user_id, state, first_join_time, published, recording_state FROM participants
		WHERE stage_id = ? AND session_id = ? AND (first_join_time, id) > (?, ?) ORDER BY first_join_time, id`
	rawEventsPageSQL = `SELECT stage_id, session_id, participant_id, seq, name, time, remote_participant_id, error_code
		FROM events WHERE stage_id = ? AND session_id = ? AND participant_id = ? AND seq > ? ORDER BY seq`
)

// BenchmarkListPages: the store's ListParticipantSummaries page (what the API's ListParticipants reads) and
// ListEvents page, first and last, each beside its raw ceiling: the store's own statement prepared on a plain
// pool and scanned into plain values, stopping after the page's rows as the store does (internal/bench's
// rawPages). store ÷ raw is the store's read-path overhead; "serial" is one client, "parallel" 8 ×
// GOMAXPROCS clients.
func BenchmarkListPages(b *testing.B) {
	lb := openListBench(b)
	// A context that can be cancelled, as a request's is (and openstage bench's): database/sql and the
	// driver watch such a context during a query, which they skip for context.Background.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	last := listBenchParticipants - 100 - 1 // the 9,900th participant: the last page's cursor
	partsAfter := map[string]*store.Cursor{"first": nil, "last": {Time: lb.joined[last], ID: string(lb.participants[last])}}
	eventsAfter := map[string]int64{"first": 0, "last": benchEvents - 100}
	rawParts := [2]*sql.Stmt{}
	for after, q := range []string{rawParticipantsPageSQL, rawParticipantsAfterSQL} {
		st, err := lb.raw.PrepareContext(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		rawParts[after] = st
	}
	rawEvents, err := lb.raw.PrepareContext(ctx, rawEventsPageSQL)
	if err != nil {
		b.Fatal(err)
	}
	defer rawEvents.Close()

	type op func() (int, error)
	ops := []struct {
		name string
		op   func(page string) op
	}{
		{"participants/raw", func(page string) op {
			c := partsAfter[page]
			return func() (int, error) {
				var rows *sql.Rows
				var err error
				if c == nil {
					rows, err = rawParts[0].QueryContext(ctx, string(lb.stage), string(lb.session))
				} else {
					rows, err = rawParts[1].QueryContext(ctx, string(lb.stage), string(lb.session), c.Time.UnixNano(), c.ID)
				}
				if err != nil {
					return 0, err
				}
				defer rows.Close()
				var id, user, state, recState string
				var joined, published int64
				n := 0
				for n < listBenchPageRows && rows.Next() {
					if err := rows.Scan(&id, &user, &state, &joined, &published, &recState); err != nil {
						return n, err
					}
					n++
				}
				return n, rows.Err()
			}
		}},
		{"participants/store", func(page string) op {
			p := store.Page{After: partsAfter[page], Limit: listBenchPageRows}
			return func() (int, error) {
				ps, err := lb.s.ListParticipantSummaries(ctx, lb.stage, lb.session, store.ParticipantFilter{}, p)
				return len(ps), err
			}
		}},
		{"events/raw", func(page string) op {
			after := eventsAfter[page]
			return func() (int, error) {
				rows, err := rawEvents.QueryContext(ctx, string(lb.stage), string(lb.session), string(lb.heavy), after)
				if err != nil {
					return 0, err
				}
				defer rows.Close()
				var stage, session, participant, name, remote, code string
				var seq, t int64
				n := 0
				for n < listBenchPageRows && rows.Next() {
					if err := rows.Scan(&stage, &session, &participant, &seq, &name, &t, &remote, &code); err != nil {
						return n, err
					}
					n++
				}
				return n, rows.Err()
			}
		}},
		{"events/store", func(page string) op {
			p := store.Page{After: &store.Cursor{Seq: eventsAfter[page]}, Limit: listBenchPageRows}
			return func() (int, error) {
				evs, err := lb.s.ListEvents(ctx, lb.stage, lb.session, lb.heavy, p)
				return len(evs), err
			}
		}},
	}
	for _, page := range []string{"first", "last"} {
		want := listBenchPageRows
		if page == "last" {
			want = 100
		}
		for _, o := range ops {
			f := o.op(page)
			check := func(n int, err error) bool {
				if err != nil || n != want {
					b.Errorf("%s %s: %d rows, %v", o.name, page, n, err)
					return false
				}
				return true
			}
			b.Run(o.name+"/"+page+"/serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if !check(f()) {
						return
					}
				}
			})
			b.Run(o.name+"/"+page+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if !check(f()) {
							return
						}
					}
				})
			})
		}
	}
}
