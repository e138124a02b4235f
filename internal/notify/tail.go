package notify

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/openstage/openstage/internal/store"
)

// Tail watches the end of the notification log for the consumers of one process (webhook deliverers,
// event streams), so that they wait on a channel rather than each polling the store. It polls
// LastNotification: notifications written by other nodes sharing the database arrive the same way.
type Tail struct {
	st   store.Outbox
	poll time.Duration
	log  *slog.Logger

	mu      sync.Mutex
	last    int64
	changed chan struct{} // closed when last moves
}

// NewTail makes a tail polling every poll (50 ms when 0).
func NewTail(st store.Outbox, poll time.Duration, log *slog.Logger) *Tail {
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	return &Tail{st: st, poll: poll, log: log, changed: make(chan struct{})}
}

// Run polls until ctx is done. Its caller owns it.
func (t *Tail) Run(ctx context.Context) {
	tick := time.NewTicker(t.poll)
	defer tick.Stop()
	for {
		if last, err := t.st.LastNotification(ctx); err != nil {
			if ctx.Err() == nil {
				t.log.Warn("notify: read the log's end", "err", err)
			}
		} else {
			t.mu.Lock()
			if last != t.last {
				t.last = last
				close(t.changed)
				t.changed = make(chan struct{})
			}
			t.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Changed returns a channel closed when the log's end next moves.
func (t *Tail) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}
