package sqlite

import (
	"context"

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
//   - a fn that fails drops the hints it set (buffer.go, dropFn), a transaction rolled back or lost drops
//     them all, and so do deletions of events;
//   - a hint that is still too low (none is known) makes the buffered row collide with the primary key (an
//     event's; a notification chunk's overlap is refused by the notification_chunks_in_order trigger, 0007)
//     when it is written: the whole transaction is lost and its members are told (buffer.go), and the hints
//     are dropped. A hint cannot be too high: events are only removed by the deletions above.
//
// The notification log's last seq is kept the same way (note), so that AppendNotification can buffer its row
// with its seq (buffer.go); a fn that fails puts it back to what it was when the fn started.
type seqCache struct {
	m       map[seqKey]int64
	note    int64 // the notification log's last seq, if noteOK
	noteOK  bool
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

func (c *seqCache) clear() {
	clear(c.m)
	c.noteOK = false
}

func (c *seqCache) lastNote() (int64, bool) { return c.note, c.noteOK }

func (c *seqCache) setNote(seq int64) { c.note, c.noteOK = seq, true }

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
