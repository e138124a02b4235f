package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/openstage/openstage/internal/ivs"
)

func BenchmarkZZVariants(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "bench.db"))
	ctx := context.Background()
	st, sess, p := ivs.NewStageID(), ivs.NewSessionID(), ivs.NewParticipantID()
	seedEvents(b, s, st, sess, p, 20000)
	for _, v := range []struct {
		name, q string
		args []any
	}{
		{"params", stmtSQL[qListEvents], []any{st, sess, p, 0, 100}},
		{"literal-limit", `SELECT ` + eventCols + ` FROM events WHERE stage_id = ? AND session_id = ? AND participant_id = ? AND seq > ? ORDER BY seq LIMIT 100`, []any{st, sess, p, 0}},
		{"count-only", `SELECT seq FROM events WHERE stage_id = ? AND session_id = ? AND participant_id = ? AND seq > ? ORDER BY seq LIMIT ?`, []any{st, sess, p, 0, 100}},
	} {
		stmt, err := s.r.PrepareContext(ctx, v.q)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				rows, err := stmt.QueryContext(ctx, v.args...)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rows.Next() {
					n++
				}
				rows.Close()
				if n != 100 {
					b.Fatal(n)
				}
			}
		})
		stmt.Close()
	}
}
