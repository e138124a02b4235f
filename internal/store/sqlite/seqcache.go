package sqlite

import (
	"context"
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/openstage/openstage/internal/ivs"
)

// The last event sequence number of each participant this process appended to, so that AppendEvent is one
// INSERT instead of a MAX(seq) seek and an INSERT (a third of an ingest's cost, profiled). It is only a
// hint, kept right as follows, and a wrong hint cannot store a wrong Seq:
//
//   - it is read and written only by the holder of the writer (group.go), inside write transactions, which
//     hold SQLite's write lock;
//   - each transaction starts by reading PRAGMA data_version, which changes when another connection (another
//     Store on the file, another process) has committed: then the hints are dropped;
//   - a fn rolled back to its savepoint drops the hints it set, a transaction rolled back or lost drops
//     them all, and so do deletions of events;
//   - a hint that is still too low makes the INSERT collide with the primary key: the hint is dropped and
//     the MAX(seq) is read (a hint cannot be too high: events are only removed by the deletions above).
type seqCache struct {
	m       map[seqKey]int64
	version int64 // data_version the hints are valid for
	valid   bool
}

type seqKey struct {
	stage   ivs.StageID
	session ivs.SessionID
	id      ivs.ParticipantID
}

// maxSeqHints bounds the cache; past it, it starts over.
const maxSeqHints = 1 << 16

func (c *seqCache) clear() { clear(c.m) }

func (c *seqCache) get(k seqKey) (int64, bool) {
	v, ok := c.m[k]
	return v, ok
}

func (c *seqCache) set(k seqKey, seq int64) {
	if c.m == nil || len(c.m) >= maxSeqHints {
		c.m = make(map[seqKey]int64)
	}
	c.m[k] = seq
}

// check drops the hints if another connection has committed since they were taken. It runs at the start of
// each write transaction.
func (c *seqCache) check(ctx context.Context, t *tx) error {
	var v int64
	if err := t.queryRow(ctx, qDataVersion).Scan(&v); err != nil {
		c.valid = false
		c.clear()
		return err
	}
	if !c.valid || v != c.version {
		c.clear()
	}
	c.version, c.valid = v, true
	return nil
}

// isPrimaryKeyConflict reports whether err is SQLite's primary key constraint failure.
func isPrimaryKeyConflict(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
