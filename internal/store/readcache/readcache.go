// Package readcache keeps the participants GetParticipant reads in memory, in front of a store that no other
// process writes to (the embedded SQLite file, which the server holds with sqlite.Exclusive).
//
// A point read through SQLite costs more than the rest of a GetParticipant call together (it takes the WAL
// read lock with two fcntl calls, runs the VM and allocates the row; profiled in docs/BENCHMARKS.md), and
// callers poll participants. Every write of this process goes through Update, so the cache knows when an
// entry goes stale:
//
//   - Update records the participants its fn writes (PutParticipant) and, after the store's Update has
//     returned (committed or not), drops them; deletions (DeleteStage, DeleteEndedBefore) drop everything.
//     The writer is acknowledged only after that, so a caller that saw its write acknowledged never reads
//     the older row.
//   - A read that misses remembers the cache's generation, reads the store, and keeps the row only if no
//     invalidation happened meanwhile: a row read before a commit cannot be stored after the commit's
//     invalidation.
//
// Reads made through a Tx are not cached: they must see the transaction's own writes.
package readcache

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// DefaultEntries bounds the cache when New is given 0: at about 1 KB a participant, a few tens of MB.
const DefaultEntries = 1 << 15

// Store is a store.Store whose GetParticipant answers from memory when it can.
type Store struct {
	store.Store
	max int

	mu  sync.Mutex
	gen uint64 // bumped by every invalidation
	m   map[key]ivs.Participant

	hits, misses uint64 // guarded by mu; for tests and metrics
}

var _ store.Store = (*Store)(nil)

type key struct {
	stage   ivs.StageID
	session ivs.SessionID
	id      ivs.ParticipantID
}

// New wraps s, which no other process may write to while the result is in use, keeping at most entries
// participants (DefaultEntries when 0).
func New(s store.Store, entries int) *Store {
	if entries <= 0 {
		entries = DefaultEntries
	}
	return &Store{Store: s, max: entries, m: make(map[key]ivs.Participant)}
}

// GetParticipant returns the participant from memory, or reads it from the store and remembers it.
func (c *Store) GetParticipant(ctx context.Context, stage ivs.StageID, session ivs.SessionID, id ivs.ParticipantID) (ivs.Participant, error) {
	k := key{stage, session, id}
	c.mu.Lock()
	if p, ok := c.m[k]; ok {
		c.hits++
		c.mu.Unlock()
		return clone(p), nil
	}
	c.misses++
	gen := c.gen
	c.mu.Unlock()

	p, err := c.Store.GetParticipant(ctx, stage, session, id)
	if err != nil {
		return p, err // not-found is not remembered: a join creates the row
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(c.m) >= c.max {
			for old := range c.m { // any entry will do: Go's map order is random
				delete(c.m, old)
				break
			}
		}
		c.m[k] = clone(p)
	}
	c.mu.Unlock()
	return p, nil
}

// Update runs fn through the store and then forgets what fn wrote.
func (c *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	var w writes
	err := c.Store.Update(ctx, func(t store.Tx) error {
		return fn(&recordingTx{Tx: t, w: &w})
	})
	// Also after an error: a failed commit may have been applied (an error on the way back), and the fns
	// of a shared transaction may have been run more than once.
	c.invalidate(&w)
	return err
}

// DeleteEndedBefore deletes old sessions with their participants: everything cached may be gone.
func (c *Store) DeleteEndedBefore(ctx context.Context, t time.Time) (int, error) {
	n, err := c.Store.DeleteEndedBefore(ctx, t)
	c.invalidate(&writes{all: true})
	return n, err
}

// Stats returns how many GetParticipant calls were answered from memory and how many read the store.
func (c *Store) Stats() (hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

func (c *Store) invalidate(w *writes) {
	if !w.all && len(w.keys) == 0 {
		return
	}
	c.mu.Lock()
	c.gen++
	if w.all {
		clear(c.m)
	} else {
		for _, k := range w.keys {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

// writes is what one Update's fn wrote that the cache may hold. A fn runs on one goroutine.
type writes struct {
	keys []key
	all  bool
}

// recordingTx notes the writes that change participants and passes everything to the store's Tx.
type recordingTx struct {
	store.Tx
	w *writes
}

func (t *recordingTx) PutParticipant(ctx context.Context, p ivs.Participant) error {
	t.w.keys = append(t.w.keys, key{p.StageID, p.SessionID, p.ID})
	return t.Tx.PutParticipant(ctx, p)
}

func (t *recordingTx) SetParticipantRecording(ctx context.Context, stage ivs.StageID, session ivs.SessionID, id ivs.ParticipantID, r ivs.ParticipantRecording) error {
	t.w.keys = append(t.w.keys, key{stage, session, id})
	return t.Tx.SetParticipantRecording(ctx, stage, session, id, r)
}

func (t *recordingTx) DeleteStage(ctx context.Context, id ivs.StageID) error {
	t.w.all = true
	return t.Tx.DeleteStage(ctx, id)
}

// clone copies the one field of a participant that shares memory, so that neither the cache nor a caller
// can change the other's copy.
func clone(p ivs.Participant) ivs.Participant {
	if p.Attributes != nil {
		p.Attributes = maps.Clone(p.Attributes)
	}
	return p
}
