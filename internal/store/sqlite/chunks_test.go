package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

func TestChunkRoundTrip(t *testing.T) {
	notes := []bufNote{
		{seq: 7, stage: "stageAAAAAAA", session: "st-AAAAAAAAAAAA", kind: "JOINED", at: 1, detail: `{"a":1}`},
		{seq: 8, stage: "", session: "", kind: "SESSION_ENDED", at: -5, detail: `{}`},
		{seq: 9, stage: "s:,9", session: "1:x,", kind: "K", at: 1764806400123456789, detail: `{"n":"héllo, \u0000 \"q\""}`},
	}
	var b []byte
	for i := range notes {
		b = appendChunkNote(b, &notes[i])
	}
	for _, tc := range []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, -1, []int64{7, 8, 9}},
		{6, -1, []int64{7, 8, 9}},
		{7, -1, []int64{8, 9}},
		{8, 1, []int64{9}},
		{0, 2, []int64{7, 8}},
		{9, -1, nil},
	} {
		ns, err := decodeChunk(7, 9, b, tc.after, tc.limit)
		if err != nil {
			t.Fatalf("after %d limit %d: %v", tc.after, tc.limit, err)
		}
		var seqs []int64
		for _, n := range ns {
			seqs = append(seqs, n.Seq)
			want := notes[n.Seq-7]
			if string(n.StageID) != want.stage || string(n.SessionID) != want.session || n.Kind != want.kind ||
				n.Time.UnixNano() != want.at || string(n.Detail) != want.detail {
				t.Errorf("seq %d decoded as %+v, want %+v", n.Seq, n, want)
			}
		}
		if fmt.Sprint(seqs) != fmt.Sprint(tc.want) {
			t.Errorf("after %d limit %d: seqs %v, want %v", tc.after, tc.limit, seqs, tc.want)
		}
	}
	// The seq range must match the records exactly.
	for _, r := range [][2]int64{{7, 8}, {7, 10}, {6, 9}} {
		if _, err := decodeChunk(r[0], r[1], b, 0, -1); !errors.Is(err, errChunk) {
			t.Errorf("chunk %d-%d of three records: %v", r[0], r[1], err)
		}
	}
}

func TestChunkCorrupt(t *testing.T) {
	good := appendChunkNote(nil, &bufNote{seq: 1, stage: "a", session: "b", kind: "c", at: 2, detail: "{}"})
	for _, data := range []string{
		"",
		string(good[:len(good)-1]),
		string(good) + "x",
		"1:a,1:b,1:c,1:x,2:{},",    // time not a number
		"1:a,1:b,1:c,1:2,3:{},",    // length past the end
		"1:a,1:b,1:c,1:2,2:{}x",    // no comma
		"1:a,1:b,1:c,1:2,-2:{},",   // no length
		"9999999999:a,",            // absurd length
		"1:a,1:b,1:c,1:2,02:{},",   // a leading zero is still a number: accepted, and consistent
		"1:a,1:b,1:c,1:2,2:{},1:a", // a second record cut short
	} {
		_, err := decodeChunk(1, 1, []byte(data), 0, -1)
		if data == "1:a,1:b,1:c,1:2,02:{}," {
			if err != nil {
				t.Errorf("%q: %v", data, err)
			}
			continue
		}
		if !errors.Is(err, errChunk) {
			t.Errorf("%q: %v, want errChunk", data, err)
		}
	}
}

func FuzzDecodeChunk(f *testing.F) {
	f.Add([]byte(appendChunkNote(nil, &bufNote{stage: "a", session: "b", kind: "JOINED", at: 3, detail: `{"x":1}`})), int64(1), int64(1), int64(0), int8(-1))
	f.Add([]byte("1:a,1:b,1:c,1:2,2:{},1:a,1:b,1:c,1:A,2:{},"), int64(4), int64(5), int64(4), int8(1))
	f.Fuzz(func(t *testing.T, data []byte, first, last, after int64, limit int8) {
		ns, err := decodeChunk(first, last, data, first-1, -1)
		// A window of the chunk is the same window of the whole, and fails where the whole fails.
		win, werr := decodeChunk(first, last, data, after, int(limit))
		if (err == nil) != (werr == nil) {
			t.Fatalf("whole: %v; after %d limit %d: %v", err, after, limit, werr)
		}
		if err != nil {
			return
		}
		var want []store.Notification
		for _, n := range ns {
			if n.Seq > after && (limit < 0 || len(want) < int(limit)) {
				want = append(want, n)
			}
		}
		if fmt.Sprint(win) != fmt.Sprint(want) {
			t.Fatalf("after %d limit %d: %+v, want %+v", after, limit, win, want)
		}
		if len(ns) != int(last-first+1) {
			t.Fatalf("%d notifications from chunk %d-%d", len(ns), first, last)
		}
		// Whatever decodes re-encodes to a chunk that decodes the same.
		var b []byte
		for i, n := range ns {
			if n.Seq != first+int64(i) {
				t.Fatalf("seq %d at %d of a chunk from %d", n.Seq, i, first)
			}
			at, err := nanos(n.Time) // as AppendNotification stores it (the zero time as 0)
			if err != nil {
				t.Fatal(err)
			}
			b = appendChunkNote(b, &bufNote{stage: string(n.StageID), session: string(n.SessionID), kind: n.Kind, at: at,
				detail: string(n.Detail)})
		}
		again, err := decodeChunk(first, last, b, first-1, -1)
		if err != nil || fmt.Sprint(again) != fmt.Sprint(ns) {
			t.Fatalf("re-encoded %q: %+v, %v; first %+v", b, again, err, ns)
		}
	})
}

// TestNotificationChunksSplit: a transaction's notifications go in chunks of at most maxChunkNotes, and every
// page boundary and single read across them finds each notification once, in order.
func TestNotificationChunksSplit(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), "c.db"))
	const total = 2*maxChunkNotes + 3
	t0 := time.Unix(1_700_000_000, 0)
	var seqs []int64
	err := s.Update(ctx, func(tx store.Tx) error {
		for i := range total {
			n := &store.Notification{StageID: "stageAAAAAAA", Kind: "JOINED", Time: t0.Add(time.Duration(i) * time.Second),
				Detail: fmt.Appendf(nil, `{"i":%d}`, i)}
			if err := tx.AppendNotification(ctx, n); err != nil {
				return err
			}
			seqs = append(seqs, n.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var chunks int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM notification_chunks`).Scan(&chunks); err != nil || chunks != 3 {
		t.Fatalf("%d chunks, %v; want 3", chunks, err)
	}
	check := func(n store.Notification, i int) {
		t.Helper()
		if n.Seq != seqs[i] || string(n.Detail) != fmt.Sprintf(`{"i":%d}`, i) || !n.Time.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("notification %d = %+v", i, n)
		}
	}
	for _, limit := range []int{1, 7, maxChunkNotes, maxChunkNotes + 1, 1000} {
		after, i := int64(0), 0
		for {
			page, err := s.ListNotifications(ctx, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if len(page) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(page))
			}
			for _, n := range page {
				check(n, i)
				i++
			}
			after = page[len(page)-1].Seq
		}
		if i != total {
			t.Fatalf("limit %d: paged %d of %d", limit, i, total)
		}
	}
	for i, seq := range seqs {
		n, err := s.GetNotification(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		check(n, i)
	}
	for _, seq := range []int64{seqs[0] - 1, seqs[total-1] + 1} {
		if _, err := s.GetNotification(ctx, seq); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetNotification(%d): %v", seq, err)
		}
	}
	if last, err := s.LastNotification(ctx); err != nil || last != seqs[total-1] {
		t.Fatalf("LastNotification = %d, %v", last, err)
	}
	// Retention keeps a chunk until all of it is older than the cut.
	if _, err := s.DeleteEndedBefore(ctx, t0.Add(time.Duration(maxChunkNotes+5)*time.Second)); err != nil {
		t.Fatal(err)
	}
	left, err := s.ListNotifications(ctx, 0, 10)
	if err != nil || len(left) == 0 || left[0].Seq != seqs[maxChunkNotes] {
		t.Fatalf("after retention: first %+v, %v; want seq %d, the second chunk's first", left[:min(1, len(left))], err, seqs[maxChunkNotes])
	}
	if _, err := s.GetNotification(ctx, seqs[0]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted chunk's notification: %v", err)
	}
}

// TestMigrationToNotificationChunks: a database with the notification log of migration 0004 keeps every
// notification, byte for byte, and its highest seq when 0007 turns the log into chunks.
func TestMigrationToNotificationChunks(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "m.db")
	upTo6 := fstest.MapFS{}
	err := fs.WalkDir(defaultMigrations(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name >= "0007" {
			return err
		}
		b, err := fs.ReadFile(defaultMigrations(), name)
		upTo6[name] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(upTo6) != 6 {
		t.Fatalf("%d migrations before 0007", len(upTo6))
	}
	// The statements of this binary need 0007's table: Open migrates, then fails to prepare them.
	if s, err := Open(ctx, path, withMigrations(upTo6)); err == nil {
		s.Close()
		t.Fatal("Open with migrations 1-6 prepared this binary's statements")
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		seq                          int64
		stage, session, kind, detail string
		at                           int64
	}
	rows := []row{
		{1, "stageAAAAAAA", "st-AAAAAAAAAAAA", "JOINED", `{"event_name":"Participant Joined"}`, 1_700_000_000_000_000_001},
		{2, "stageAAAAAAA", "", "SESSION_ENDED", `{"note":"héllo, 1:x, \"q\""}`, 1_700_000_001_000_000_000},
		{5, "stageBBBBBBB", "st-BBBBBBBBBBBB", "LEFT", `{}`, 1_700_000_002_000_000_000},
		{6, "stageBBBBBBB", "st-BBBBBBBBBBBB", "LEFT", `{"gone":true}`, 1_700_000_003_000_000_000},
	}
	for _, r := range rows {
		if _, err := db.ExecContext(ctx, `INSERT INTO notifications (seq, stage_id, session_id, kind, time, detail) VALUES (?, ?, ?, ?, ?, ?)`,
			r.seq, r.stage, r.session, r.kind, r.at, r.detail); err != nil {
			t.Fatal(err)
		}
	}
	// The newest is deleted: its seq must still never be handed out again.
	if _, err := db.ExecContext(ctx, `DELETE FROM notifications WHERE seq = 6`); err != nil {
		t.Fatal(err)
	}
	rows = rows[:3]
	db.Close()

	s := openTest(t, path)
	got, err := s.ListNotifications(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("%d notifications after the migration, want %d: %+v", len(got), len(rows), got)
	}
	for i, r := range rows {
		n := got[i]
		if n.Seq != r.seq || n.StageID != ivs.StageID(r.stage) || n.SessionID != ivs.SessionID(r.session) || n.Kind != r.kind ||
			string(n.Detail) != r.detail || n.Time.UnixNano() != r.at {
			t.Errorf("notification %d = %+v, want %+v", i, n, r)
		}
	}
	n := &store.Notification{StageID: "stageAAAAAAA", Kind: "JOINED", Time: time.Now(), Detail: []byte(`{}`)}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.AppendNotification(ctx, n) }); err != nil {
		t.Fatal(err)
	}
	if n.Seq != 7 {
		t.Fatalf("the first seq after the migration is %d, want 7 (6 was handed out before)", n.Seq)
	}
}

// appendNotes is one Update appending a notification for each of details, at times t0 + i s, and returns
// their seqs.
func appendNotes(t *testing.T, s *Store, t0 time.Time, details ...string) ([]int64, error) {
	t.Helper()
	var seqs []int64
	err := s.Update(t.Context(), func(tx store.Tx) error {
		for i, d := range details {
			n := &store.Notification{StageID: "stageAAAAAAA", Kind: "JOINED", Time: t0.Add(time.Duration(i) * time.Second), Detail: []byte(d)}
			if err := tx.AppendNotification(t.Context(), n); err != nil {
				return err
			}
			seqs = append(seqs, n.Seq)
		}
		return nil
	})
	return seqs, err
}

func logSeqs(t *testing.T, s *Store) []int64 {
	t.Helper()
	ns, err := s.ListNotifications(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, n := range ns {
		seqs = append(seqs, n.Seq)
	}
	return seqs
}

// TestNotificationChunkOverlapRefused: a notification numbered below the log's end (a wrong hint, planted
// here) fails its transaction instead of storing a chunk that overlaps the log, as the per-row table's
// primary key did; the next transaction numbers right.
func TestNotificationChunkOverlapRefused(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "o.db"))
	t0 := time.Now()
	if _, err := appendNotes(t, s, t0, `{}`, `{}`, `{}`); err != nil {
		t.Fatal(err)
	}
	err := s.Update(t.Context(), func(tx store.Tx) error {
		s.seqs.setNote(0) // the writer is held: the fn runs on it
		for range 2 {
			if err := tx.AppendNotification(t.Context(), &store.Notification{StageID: "stageAAAAAAA", Kind: "JOINED", Time: t0, Detail: []byte(`{}`)}); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, errGroupLost) || !strings.Contains(err.Error(), "overlaps the log") {
		t.Fatalf("a chunk over seqs 1-2 again: %v", err)
	}
	if got := fmt.Sprint(logSeqs(t, s)); got != "[1 2 3]" {
		t.Fatalf("log %s after the refused chunk", got)
	}
	seqs, err := appendNotes(t, s, t0, `{}`)
	if err != nil || seqs[0] != 4 {
		t.Fatalf("next notification %v, %v; want seq 4", seqs, err)
	}
}

// TestNotificationChunksSplitByBytes: large notifications go in chunks of at most maxChunkBytes (or one
// notification, if it alone is larger).
func TestNotificationChunksSplitByBytes(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "b.db"))
	big := `{"x":"` + strings.Repeat("a", maxChunkBytes*2/5) + `"}`
	huge := `{"x":"` + strings.Repeat("b", maxChunkBytes+1) + `"}`
	if _, err := appendNotes(t, s, time.Now(), big, big, big, huge, `{}`); err != nil {
		t.Fatal(err)
	}
	rows, err := s.r.QueryContext(t.Context(), `SELECT first_seq, last_seq FROM notification_chunks ORDER BY last_seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var chunks []string
	for rows.Next() {
		var first, last int64
		if err := rows.Scan(&first, &last); err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, fmt.Sprintf("%d-%d", first, last))
	}
	if got := strings.Join(chunks, " "); got != "1-2 3-3 4-4 5-5" {
		t.Fatalf("chunks %s, want 1-2 3-3 4-4 5-5", got)
	}
	if got := fmt.Sprint(logSeqs(t, s)); got != "[1 2 3 4 5]" {
		t.Fatalf("log %s", got)
	}
}

// TestNotificationChunksRetentionDeadLetters: retention keeps the dead letters of the notifications in the
// chunks it keeps, those in the middle of a chunk too, and drops the others.
func TestNotificationChunksRetentionDeadLetters(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	t0 := time.Unix(1_700_000_000, 0)
	a, err := appendNotes(t, s, t0, `{}`, `{}`, `{}`, `{}`, `{}`) // at 0-4 s
	if err != nil {
		t.Fatal(err)
	}
	b, err := appendNotes(t, s, t0.Add(10*time.Second), `{}`, `{}`, `{}`, `{}`, `{}`) // at 10-14 s
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AcquireDelivery(ctx, "ep", "node", time.Minute); err != nil {
		t.Fatal(err)
	}
	var dead []store.DeadLetter
	for _, seq := range []int64{a[2], b[1], b[4], b[4] + 5} {
		dead = append(dead, store.DeadLetter{Seq: seq, Attempts: 1, LastError: "503", At: t0})
	}
	if err := s.AdvanceDelivery(ctx, "ep", "node", b[4], time.Minute, dead, nil); err != nil {
		t.Fatal(err)
	}
	// The cut falls inside the second chunk: it stays whole.
	if _, err := s.DeleteEndedBefore(ctx, t0.Add(12*time.Second)); err != nil {
		t.Fatal(err)
	}
	dls, err := s.DeadLetters(ctx, "ep")
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, d := range dls {
		got = append(got, d.Seq)
	}
	if fmt.Sprint(got) != fmt.Sprint([]int64{b[1], b[4]}) {
		t.Fatalf("dead letters after retention %v, want %v", got, []int64{b[1], b[4]})
	}
	if got := fmt.Sprint(logSeqs(t, s)); got != fmt.Sprint(b) {
		t.Fatalf("log %s after retention, want the second chunk %v", got, b)
	}
}
