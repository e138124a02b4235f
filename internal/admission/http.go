package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"
)

// HandlerOptions configure Limiter.Handler for one transport.
type HandlerOptions struct {
	// Name is the transport in log lines ("whip", "events").
	Name string
	// Code is the "code" member of the 429's JSON body, in the transport's own codes.
	Code any
	// OnRefused is called once for every request refused unexamined (metrics). It must not block.
	OnRefused func()
	// FailStatus, if set, counts the answers of next it returns true for as failed authentications too
	// (for WHIP: a bad offer). It needs a wrapped ResponseWriter, so leave it nil for a handler that
	// hijacks the connection (the events socket).
	FailStatus func(r *http.Request, status int) bool
}

// Handler admits requests to next. A request from an address that has spent its failures is answered
// 429 Too Many Requests, with Retry-After and a JSON body {"code", "message"}, and never reaches next:
// nothing of it is parsed or verified. The answer comes after Config.Hold (within its bounds): a refusal
// costs the server little, but a client that sends its next request as soon as it has the answer would
// otherwise be refused as fast as the network allows, and that is not free. OPTIONS requests (CORS
// preflights, which carry no credential) always pass. The requests that pass carry the limiter in their
// context: the transport reports a refused token with Failed(ctx), and asks whether to log any other
// refusal with Noted(ctx).
func (l *Limiter) Handler(next http.Handler, o HandlerOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		addr := AddrOf(r.RemoteAddr)
		if d := l.Admit(addr); !d.Allow {
			if d.Log {
				l.log.WarnContext(r.Context(), "admission: too many failed authentications; refusing the address's requests unexamined",
					"transport", o.Name, "remote", r.RemoteAddr, "retry_after", d.RetryAfter, "not_logged", d.Unlogged)
			}
			if o.OnRefused != nil {
				o.OnRefused()
			}
			if release, ok := l.holdSlot(addr); ok {
				t := time.NewTimer(l.hold)
				select {
				case <-t.C:
				case <-r.Context().Done():
				}
				t.Stop()
				release()
			}
			TooManyRequests(w, r, o.Code, d.RetryAfter)
			return
		}
		t := &ticket{l: l, addr: addr}
		r = r.WithContext(context.WithValue(r.Context(), ticketKey{}, t))
		if o.FailStatus == nil {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if !t.counted.Load() && sw.status != 0 && o.FailStatus(r, sw.status) {
			l.Failed(addr)
		}
	})
}

// TooManyRequests answers 429 with Retry-After (whole seconds, at least 1) and a JSON body
// {"code": code, "message": ...}, readable by a page on another origin.
func TooManyRequests(w http.ResponseWriter, r *http.Request, code any, retry time.Duration) {
	secs := max(1, int(math.Ceil(retry.Seconds())))
	h := w.Header()
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = "*"
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "Retry-After")
	h.Set("Retry-After", strconv.Itoa(secs))
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	_ = json.NewEncoder(w).Encode(struct {
		Code    any    `json:"code"`
		Message string `json:"message"`
	}{code, fmt.Sprintf("too many failed authentications from this address; retry in %d s", secs)})
}

type ticketKey struct{}

// ticket is what an admitted request carries: its limiter and address.
type ticket struct {
	l       *Limiter
	addr    netip.Addr
	counted atomic.Bool
}

func ticketOf(ctx context.Context) *ticket {
	t, _ := ctx.Value(ticketKey{}).(*ticket)
	return t
}

// Failed records that the request of ctx failed authentication (a missing, invalid or expired token, a
// deleted stage, a revoked participant): its address spends one failure. It returns whether to log the
// refusal. A context that did not come through Limiter.Handler spends nothing and is always logged.
func Failed(ctx context.Context) Decision {
	t := ticketOf(ctx)
	if t == nil {
		return Decision{Allow: true, Log: true}
	}
	t.counted.Store(true)
	return t.l.Failed(t.addr)
}

// Noted says whether to log a refusal of the request of ctx that is not the client's failure (a full
// stage): it spends nothing, and the same log bounds apply. A context that did not come through
// Limiter.Handler is always logged.
func Noted(ctx context.Context) Decision {
	t := ticketOf(ctx)
	if t == nil {
		return Decision{Allow: true, Log: true}
	}
	return t.l.Noted(t.addr)
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's own writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
