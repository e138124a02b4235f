package sqlite

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// Notification chunks (0007_notification_chunks.sql, docs/DESIGN.md §6.1).
//
// Every participant event commits with its notification, so the log took one row of its own per event:
// measured, that second row cost about a quarter more of SQLite's work per event than the event's row
// alone (docs/BENCHMARKS.md, "Fifth pass"). The log is only ever read in order or by seq, so the SQLite
// store writes the notifications a transaction buffers as one row, a chunk: the notifications of seqs
// first_seq..last_seq, consecutive, in one blob. A chunk's key is its last seq, an AUTOINCREMENT rowid, so
// sqlite_sequence still keeps the highest seq ever handed out after the newest chunks are deleted.
//
// The blob is the notifications one after another, each five netstrings ("<byte length>:<bytes>,"): stage,
// session, kind, time (Unix nanoseconds in decimal) and detail. The migration builds the same form in SQL
// from the table it replaces.

// Bounds of one chunk: a transaction that buffers more writes more chunks, so that reading one notification
// (GetNotification, a page of the log) never decodes an unbounded blob.
const (
	maxChunkNotes = 256
	maxChunkBytes = 256 << 10
)

var errChunk = errors.New("sqlite: corrupt notification chunk")

// appendNetstring appends s as a netstring.
func appendNetstring[S string | []byte](b []byte, s S) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	b = append(b, s...)
	return append(b, ',')
}

// appendChunkNote appends one notification's record to a chunk's blob.
func appendChunkNote(b []byte, n *bufNote) []byte {
	var at [20]byte
	b = appendNetstring(b, n.stage)
	b = appendNetstring(b, n.session)
	b = appendNetstring(b, n.kind)
	b = appendNetstring(b, strconv.AppendInt(at[:0], n.at, 10))
	return appendNetstring(b, n.detail)
}

// nextChunk appends to b the records of the next chunk of notes: as many notes as keep the chunk within
// maxChunkNotes and maxChunkBytes (at least one, however large), and returns the blob, how many notes it
// holds and the newest of their times.
func nextChunk(b []byte, notes []bufNote) (blob []byte, n int, newest int64) {
	newest = notes[0].at
	for n < len(notes) && n < maxChunkNotes {
		size := len(b)
		if b = appendChunkNote(b, &notes[n]); n > 0 && len(b) > maxChunkBytes {
			return b[:size], n, newest // the note that passed the bound starts the next chunk
		}
		newest = max(newest, notes[n].at)
		n++
	}
	return b, n, newest
}

// netstring reads one netstring from the front of b.
func netstring(b []byte) (field, rest []byte, err error) {
	n, i := 0, 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i >= 9 { // no field is near a gigabyte
			return nil, nil, errChunk
		}
		n = n*10 + int(b[i]-'0')
	}
	if i == 0 || i >= len(b) || b[i] != ':' || len(b)-i-1 < n+1 || b[i+1+n] != ',' {
		return nil, nil, errChunk
	}
	return b[i+1 : i+1+n], b[i+2+n:], nil
}

// decodeChunk returns the notifications of the chunk first..last whose seq is above after, at most limit
// of them (limit < 0: all). A blob that does not hold exactly last-first+1 records is an error.
func decodeChunk(first, last int64, data []byte, after int64, limit int) ([]store.Notification, error) {
	var out []store.Notification
	var f [5][]byte
	seq := first
	for ; len(data) > 0; seq++ {
		var err error
		for i := range f {
			if f[i], data, err = netstring(data); err != nil {
				return nil, fmt.Errorf("%w %d-%d", errChunk, first, last)
			}
		}
		// Every record is checked whole, returned or not, so that a chunk reads the same to every reader.
		at, err := strconv.ParseInt(string(f[3]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w %d-%d: time %q", errChunk, first, last, f[3])
		}
		if seq <= after || (limit >= 0 && len(out) == limit) {
			continue
		}
		out = append(out, store.Notification{Seq: seq, StageID: ivs.StageID(f[0]), SessionID: ivs.SessionID(f[1]),
			Kind: string(f[2]), Time: fromNanos(at), Detail: append([]byte(nil), f[4]...)})
	}
	if seq != last+1 {
		return nil, fmt.Errorf("%w %d-%d: %d records", errChunk, first, last, seq-first)
	}
	return out, nil
}
