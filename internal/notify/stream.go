package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// Stream serves the notification log as server-sent events (GET /events/stream; the README has the
// contract): `id:` the notification's id, `event:` its kind, `data:` its EventBridge event; resumable with
// Last-Event-ID, filterable with ?stage=.
type Stream struct {
	Store   store.Store
	Account ivs.Account
	Tail    *Tail
	// Authorized reports whether the request carries a key allowed to read the stream.
	Authorized func(r *http.Request) bool
	Heartbeat  time.Duration // between comments that keep idle connections open (15 s when 0)
	Log        *slog.Logger

	once    sync.Once
	closing chan struct{}
}

func (s *Stream) init() { s.once.Do(func() { s.closing = make(chan struct{}) }) }

// Close ends every open stream (the server's shutdown: http.Server.Shutdown waits for handlers, which
// would otherwise never return).
func (s *Stream) Close() {
	s.init()
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
}

func (s *Stream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	if !s.Authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="openstage"`)
		http.Error(w, "unauthorized: sign the request with SigV4 or send an API key", http.StatusUnauthorized)
		return
	}
	var stage ivs.StageID
	if v := r.URL.Query().Get("stage"); v != "" {
		if id, ok := s.Account.StageIDFromARN(v); ok {
			stage = id
		} else {
			stage = ivs.StageID(v)
		}
	}
	ctx := r.Context()
	cursor, err := s.start(ctx, r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The stream lives for hours: no write deadline (the server's is sized for requests).
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// A retry hint for EventSource, and a first byte so that the client sees the stream open.
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	heartbeat := s.Heartbeat
	if heartbeat <= 0 {
		heartbeat = 15 * time.Second
	}
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	for {
		changed := s.Tail.Changed()
		ns, err := s.Store.ListNotifications(ctx, cursor, 500)
		if err != nil {
			if ctx.Err() == nil {
				s.Log.Warn("events stream: read the log", "err", err)
			}
			return
		}
		for _, n := range ns {
			cursor = n.Seq
			if stage != "" && n.StageID != stage {
				continue
			}
			body, err := Encode(n, s.Account)
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", n.Seq, n.Kind, body); err != nil {
				return
			}
		}
		if len(ns) > 0 {
			if rc.Flush() != nil {
				return
			}
			if len(ns) == 500 {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		case <-changed:
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// start is where the stream begins: after Last-Event-ID (the header EventSource sends when it reconnects,
// or ?lastEventId=), else at the log's end.
func (s *Stream) start(ctx context.Context, r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("lastEventId")
	}
	if v == "" {
		return s.Store.LastNotification(ctx)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad Last-Event-ID %q", v)
	}
	return n, nil
}
