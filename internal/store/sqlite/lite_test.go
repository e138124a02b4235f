package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// TestLiteReadsWhatTheDriverReads: every page the page pool reads (lite.go) equals the same page read inside
// a transaction, through database/sql and modernc's driver, for every filter and cursor of ListParticipants
// and for events, with text the store must give back byte for byte (non-ASCII, empty, quotes, a NUL).
func TestLiteReadsWhatTheDriverReads(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "lite.db"))
	ctx := context.Background()
	st, sess := ivs.NewStageID(), ivs.NewSessionID()
	users := []string{"", "ünïcødé 🎤", `quo"te'`, "nul\x00byte", strings.Repeat("x", 128)}
	t0 := time.Now().UTC()
	var first ivs.ParticipantID
	err := s.Update(ctx, func(tx store.Tx) error {
		for i := range 40 {
			p := ivs.Participant{StageID: st, SessionID: sess, ID: ivs.NewParticipantID(), UserID: users[i%len(users)],
				State: ivs.StateConnected, Published: i%3 == 0, FirstJoinTime: t0.Add(time.Duration(i) * time.Millisecond)}
			if i%2 == 1 {
				p.State = ivs.StateDisconnected
			}
			if i%4 == 0 {
				p.Recording.State = ivs.RecordingActive
			}
			if i == 0 {
				first = p.ID
			}
			if err := tx.PutParticipant(ctx, p); err != nil {
				return err
			}
			e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: first, Name: ivs.EventJoined, Time: t0,
				RemoteParticipantID: p.ID}
			if i%5 == 0 {
				e.Name, e.ErrorCode = ivs.EventPublishError, ivs.ErrorCode("B_FRAME_PRESENT")
			}
			if err := tx.AppendEvent(ctx, &e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	published, user, state, rec := true, users[1], ivs.StateDisconnected, ivs.RecordingActive
	filters := []store.ParticipantFilter{{}, {Published: &published}, {UserID: &user}, {State: state}, {RecordingState: rec}}
	for _, f := range filters {
		var after *store.Cursor
		for page := 0; ; page++ {
			p := store.Page{After: after, Limit: 7}
			got, err := s.ListParticipantSummaries(ctx, st, sess, f, p)
			if err != nil {
				t.Fatal(err)
			}
			var want []store.ParticipantSummary
			if err := s.Update(ctx, func(tx store.Tx) error {
				want, err = tx.ListParticipantSummaries(ctx, st, sess, f, p)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("filter %+v page %d: %d rows, the driver read %d", f, page, len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("filter %+v page %d row %d: %+v, the driver read %+v", f, page, i, got[i], want[i])
				}
			}
			if len(got) < 7 {
				break
			}
			last := got[len(got)-1]
			after = &store.Cursor{Time: last.FirstJoinTime, ID: string(last.ID)}
		}
	}
	got, err := s.ListEvents(ctx, st, sess, first, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var want []ivs.Event
	if err := s.Update(ctx, func(tx store.Tx) error {
		want, err = tx.ListEvents(ctx, st, sess, first, store.Page{Limit: 100})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 40 || len(got) != len(want) {
		t.Fatalf("events: %d, the driver read %d", len(got), len(want))
	}
	for i := range got {
		if !got[i].Time.Equal(want[i].Time) {
			t.Fatalf("event %d: time %v, the driver read %v", i, got[i].Time, want[i].Time)
		}
		got[i].Time = want[i].Time
		if got[i] != want[i] {
			t.Fatalf("event %d: %+v, the driver read %+v", i, got[i], want[i])
		}
	}
}

// TestLiteErrors: SQLite's errors come back with its message, a connection cannot write, and the pool
// opens a new connection after an error.
func TestLiteErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := openLite(fileURI(filepath.Join(dir, "missing.db")), time.Second); err == nil {
		t.Fatal("opened a file that does not exist (the pool never creates one)")
	}
	s := openTest(t, filepath.Join(dir, "lite.db"))
	c, err := openLite(fileURI(s.Path()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if _, err := c.prepare("SELECT nope FROM nowhere"); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("prepare of a bad statement: %v", err)
	}
	err = c.run("CREATE TABLE t (x)")
	var le *liteError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("a write on a query_only connection: %v", err)
	}
	if _, err := c.query(qListEvents, []any{1.5}); err == nil {
		t.Fatal("bound a float")
	}

	// After an error the pool drops the connection; the next read opens another.
	pc, err := s.pages.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := pc.query(s.pages, qListEvents, []any{"a", "b", "c", int64(0)})
	if err != nil {
		t.Fatal(err)
	}
	rows.reset()
	pc.failed()
	if pc.conn != nil {
		t.Fatal("failed kept the connection")
	}
	s.pages.put(pc)
	if _, err := s.ListEvents(context.Background(), ivs.NewStageID(), ivs.NewSessionID(), ivs.NewParticipantID(), store.Page{}); err != nil {
		t.Fatal(err)
	}
}

// panicRow panics on its first row, as a bug in a scanner would.
type panicRow struct{}

func (panicRow) columns() int { return 6 }
func (panicRow) value(columnReader) (store.ParticipantSummary, error) {
	panic("scanner bug")
}

// TestPagePanicLeavesNoSnapshot: a page read that panics (recovered by its caller, as net/http recovers a
// handler) does not hand its connection back with the statement still stepping: that connection would keep
// its read snapshot, and the next page read on it would not see later commits.
func TestPagePanicLeavesNoSnapshot(t *testing.T) {
	s, st, sess, _ := pagesFixture(t, WithReaders(1))
	ctx := context.Background()
	variant, args, err := participantQuery(st, sess, store.ParticipantFilter{}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the scanner's panic did not reach the caller")
			}
		}()
		_, _ = listPage(ctx, s.pages, "participant summaries", 10, panicRow{}, qListParticipantSummaries+variant, args...)
	}()
	user := "after-the-panic"
	p := ivs.Participant{StageID: st, SessionID: sess, ID: ivs.NewParticipantID(), UserID: user, State: ivs.StateConnected,
		FirstJoinTime: time.Now().UTC()}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.PutParticipant(ctx, p) }); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListParticipantSummaries(ctx, st, sess, store.ParticipantFilter{UserID: &user}, store.Page{})
	if err != nil || len(got) != 1 || got[0].ID != p.ID {
		t.Fatalf("a page read after the panic, on the pool's only connection: %+v, %v", got, err)
	}
}
