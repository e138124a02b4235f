package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestListPlansUseIndexOrder: the list statements have no LIMIT (queries.go) and are cut short by the
// reader, which is only cheap if SQLite walks an index in the list's order rather than sorting all the
// rows first. Every list must therefore be planned without a temporary b-tree.
func TestListPlansUseIndexOrder(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "plan.db"))
	lists := []stmtID{qListStagesFirst, qListStagesAfter, qListSessionsFirst, qListSessionsAfter, qListEvents,
		qListPublicKeysFirst, qListPublicKeysAfter, qListStorageConfigurationsFirst, qListStorageConfigurationsAfter,
		qStagesUsingStorageConfiguration}
	for id := qListParticipants; id < qListParticipants+10; id++ {
		lists = append(lists, id)
	}
	for id := qListParticipantSummaries; id < qListParticipantSummaries+10; id++ {
		lists = append(lists, id)
	}
	for _, id := range lists {
		q := stmtSQL[id]
		if p := queryPlan(t, s, q); strings.Contains(p, "TEMP B-TREE") || !strings.Contains(p, "USING") {
			t.Errorf("%s\nplanned as: %s", q, p)
		}
	}
}

// TestParticipantSummariesUseCoveringIndexes: a page of participant summaries (the API's ListParticipants)
// is read from an index of the list's order alone, every filter included, with no lookup of the table's
// rows (migration 0006; docs/BENCHMARKS.md, issue 16).
func TestParticipantSummariesUseCoveringIndexes(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "plan.db"))
	for kind, index := range []string{filterNone: "participants_by_join", filterUser: "participants_by_user",
		filterPublished: "participants_by_published", filterState: "participants_by_state",
		filterRecordingState: "participants_by_recording_state"} {
		for after := range 2 {
			q := stmtSQL[qListParticipantSummaries+stmtID(2*kind+after)]
			p := queryPlan(t, s, q)
			if !strings.Contains(p, "USING COVERING INDEX "+index+" ") || strings.Contains(p, "TEMP B-TREE") {
				t.Errorf("%s\nplanned as: %s; want the covering index %s", q, p, index)
			}
		}
	}
}

// queryPlan is SQLite's EXPLAIN QUERY PLAN of q, its steps joined by "; ".
func queryPlan(t *testing.T, s *Store, q string) string {
	t.Helper()
	args := make([]any, strings.Count(q, "?"))
	for i := range args {
		args[i] = "x"
	}
	rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}
