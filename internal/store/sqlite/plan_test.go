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
	for id := qListParticipants; id < qListParticipants+8; id++ {
		lists = append(lists, id)
	}
	for _, id := range lists {
		q := stmtSQL[id]
		args := make([]any, strings.Count(q, "?"))
		for i := range args {
			args[i] = "x"
		}
		rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); strings.Contains(p, "TEMP B-TREE") || !strings.Contains(p, "USING") {
			t.Errorf("%s\nplanned as: %s", q, p)
		}
	}
}
