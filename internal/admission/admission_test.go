package admission

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is the injected clock: time moves only when a step says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_750_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
	addrC = netip.MustParseAddr("192.0.2.3")
	addrD = netip.MustParseAddr("192.0.2.4")
)

// step is one call on the limiter after advancing the clock, and what it must answer.
type step struct {
	after time.Duration
	op    string // "admit", "fail", "noted"
	addr  netip.Addr
	n     int // repeat (default 1); the wants are of the last call
	allow bool
	retry time.Duration // admit: want RetryAfter when refused
	log   bool
	// unlogged is the want of Decision.Unlogged; -1 skips the log wants.
	unlogged int
}

func TestLimiter(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name    string
		cfg     Config
		steps   []step
		tracked int // -1: not checked
	}{
		{
			name: "burst, then refused until a failure is earned back",
			cfg:  Config{Rate: 10, Burst: 5},
			steps: []step{
				{op: "admit", addr: addrA, allow: true, unlogged: -1},
				{op: "fail", addr: addrA, n: 4, allow: true, unlogged: -1},
				{op: "admit", addr: addrA, allow: true, unlogged: -1}, // one left
				{op: "fail", addr: addrA, allow: true, unlogged: -1},
				{op: "admit", addr: addrA, allow: false, retry: 100 * time.Millisecond, unlogged: -1},
				{after: 50 * time.Millisecond, op: "admit", addr: addrA, allow: false, retry: 50 * time.Millisecond, unlogged: -1},
				{after: 50 * time.Millisecond, op: "admit", addr: addrA, allow: true, unlogged: -1},
				{op: "fail", addr: addrA, allow: true, unlogged: -1},
				{op: "admit", addr: addrA, allow: false, retry: 100 * time.Millisecond, unlogged: -1},
				{after: time.Second, op: "fail", addr: addrA, n: 5, allow: true, unlogged: -1}, // the burst is back
				{op: "admit", addr: addrA, allow: false, unlogged: -1},
			},
			tracked: 1,
		},
		{
			name: "addresses are independent; admitting spends nothing",
			cfg:  Config{Rate: 1, Burst: 2},
			steps: []step{
				{op: "admit", addr: addrB, n: 1000, allow: true, unlogged: -1},
				{op: "fail", addr: addrA, n: 2, allow: true, unlogged: -1},
				{op: "admit", addr: addrA, allow: false, retry: time.Second, unlogged: -1},
				{op: "admit", addr: addrB, allow: true, unlogged: -1},
				{op: "fail", addr: addrB, allow: true, unlogged: -1},
				{op: "admit", addr: addrB, allow: true, unlogged: -1},
			},
			tracked: 2,
		},
		{
			name: "rate 0 refuses nobody",
			cfg:  Config{Rate: 0, Burst: 5},
			steps: []step{
				{op: "fail", addr: addrA, n: 100, allow: true, unlogged: -1},
				{op: "admit", addr: addrA, allow: true, unlogged: -1},
			},
			tracked: 1, // still tracked, for the log bound
		},
		{
			name: "burst 0 refuses nobody",
			cfg:  Config{Rate: 10, Burst: 0},
			steps: []step{
				{op: "fail", addr: addrA, n: 100, allow: true, unlogged: -1},
				{op: "admit", addr: addrA, allow: true, unlogged: -1},
			},
			tracked: 1,
		},
		{
			name: "bounded table: the least recently failing address is forgotten",
			cfg:  Config{Rate: 1, Burst: 1, MaxAddresses: 3},
			steps: []step{
				{op: "fail", addr: addrA, allow: true, unlogged: -1},
				{op: "fail", addr: addrB, allow: true, unlogged: -1},
				{op: "fail", addr: addrC, allow: true, unlogged: -1},
				{op: "admit", addr: addrA, allow: false, unlogged: -1}, // A is touched: B is now the oldest
				{op: "fail", addr: addrD, allow: true, unlogged: -1},   // evicts B
				{op: "admit", addr: addrB, allow: true, unlogged: -1},
				{op: "admit", addr: addrA, allow: false, unlogged: -1},
				{op: "admit", addr: addrC, allow: false, unlogged: -1},
				{op: "admit", addr: addrD, allow: false, unlogged: -1},
			},
			tracked: 3,
		},
		{
			name: "idle addresses are dropped as new failures come",
			cfg:  Config{Rate: 10, Burst: 5, LogInterval: time.Second},
			steps: []step{
				{op: "fail", addr: addrA, n: 5, allow: true, unlogged: -1},
				{op: "fail", addr: addrB, allow: true, unlogged: -1},
				{after: 900 * time.Millisecond, op: "fail", addr: addrC, allow: true, unlogged: -1}, // nobody idle yet
				{after: 200 * time.Millisecond, op: "fail", addr: addrD, allow: true, unlogged: -1}, // A and B are
			},
			tracked: 2,
		},
		{
			name: "one line per address per interval, carrying the count of the rest",
			cfg:  Config{Rate: 10, Burst: 3, LogInterval: 10 * time.Second},
			steps: []step{
				{op: "fail", addr: addrA, allow: true, log: true, unlogged: 0},
				{op: "fail", addr: addrA, n: 2, allow: true, log: false, unlogged: 0},
				{op: "admit", addr: addrA, allow: false, log: true, unlogged: 2},        // the first refusal of an episode is logged
				{op: "admit", addr: addrA, n: 4, allow: false, log: false, unlogged: 0}, // the next ones are counted
				{op: "fail", addr: addrB, allow: true, log: true, unlogged: 0},          // another address is logged
				{after: 9 * time.Second, op: "fail", addr: addrA, allow: true, log: false, unlogged: 0},
				{after: time.Second, op: "admit", addr: addrA, allow: true, unlogged: -1},
				{op: "fail", addr: addrA, n: 4, allow: true, log: false, unlogged: 0}, // the first of these was logged
				{after: 10 * time.Second, op: "admit", addr: addrA, allow: true, unlogged: -1},
				{op: "noted", addr: addrA, allow: true, log: true, unlogged: 3},
				{op: "noted", addr: addrC, allow: true, log: true, unlogged: 0}, // no failures: always logged
			},
			tracked: 2,
		},
		{
			name: "each episode of refusals starts with a line",
			cfg:  Config{Rate: 10, Burst: 1, LogInterval: time.Hour},
			steps: []step{
				{op: "fail", addr: addrA, allow: true, log: true, unlogged: 0},
				{op: "admit", addr: addrA, allow: false, log: true, unlogged: 0},
				{op: "admit", addr: addrA, allow: false, log: false, unlogged: 0},
				{after: time.Second, op: "admit", addr: addrA, allow: true, unlogged: -1}, // the budget is full again
				{op: "fail", addr: addrA, allow: true, log: false, unlogged: 0},
				{op: "admit", addr: addrA, allow: false, log: true, unlogged: 2},
			},
			tracked: 1,
		},
		{
			name: "an overall bound on lines across addresses",
			cfg:  Config{Rate: 10, Burst: 3, LogRate: 1, LogBurst: 2},
			steps: []step{
				{op: "fail", addr: addrA, allow: true, log: true, unlogged: 0},
				{op: "fail", addr: addrB, allow: true, log: true, unlogged: 0},
				{op: "fail", addr: addrC, allow: true, log: false, unlogged: 0},
				{op: "fail", addr: addrD, allow: true, log: false, unlogged: 0},
				{after: time.Second, op: "fail", addr: addrC, allow: true, log: true, unlogged: 1},
				{op: "fail", addr: addrD, allow: true, log: false, unlogged: 0},
			},
			tracked: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			cfg := tt.cfg
			cfg.Now, cfg.Log = clk.now, quiet
			l := New(cfg)
			for i, s := range tt.steps {
				clk.advance(s.after)
				var d Decision
				for range max(1, s.n) {
					switch s.op {
					case "admit":
						d = l.Admit(s.addr)
					case "fail":
						d = l.Failed(s.addr)
					case "noted":
						d = l.Noted(s.addr)
					}
				}
				if d.Allow != s.allow {
					t.Fatalf("step %d (%s %s): allow %v, want %v", i, s.op, s.addr, d.Allow, s.allow)
				}
				if s.retry != 0 && d.RetryAfter != s.retry {
					t.Errorf("step %d: retry after %v, want %v", i, d.RetryAfter, s.retry)
				}
				if s.unlogged >= 0 && (d.Log != s.log || d.Unlogged != uint64(s.unlogged)) {
					t.Errorf("step %d (%s %s): log %v unlogged %d, want %v %d", i, s.op, s.addr, d.Log, d.Unlogged, s.log, s.unlogged)
				}
			}
			if tt.tracked >= 0 && l.Tracked() != tt.tracked {
				t.Errorf("tracked %d, want %d", l.Tracked(), tt.tracked)
			}
		})
	}
}

// TestLimiterBoundedUnderManyAddresses: a flood from more addresses than the table holds keeps it at its
// bound, and the addresses failing most recently are the ones held.
func TestLimiterBoundedUnderManyAddresses(t *testing.T) {
	clk := newClock()
	l := New(Config{Rate: 1, Burst: 1, MaxAddresses: 100, Now: clk.now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for i := range 10_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Failed(a)
		if n := l.Tracked(); n > 100 {
			t.Fatalf("%d addresses tracked", n)
		}
	}
	if l.Admit(netip.AddrFrom4([4]byte{10, 0, 39, 15})).Allow { // the last one, 9999
		t.Error("the most recent address was forgotten")
	}
	if !l.Admit(netip.AddrFrom4([4]byte{10, 0, 0, 0})).Allow {
		t.Error("the first address is still held")
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := New(Config{Rate: 1000, Burst: 10, MaxAddresses: 16, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				a := netip.AddrFrom4([4]byte{10, 0, byte(g), byte(i % 40)})
				if l.Admit(a).Allow {
					l.Failed(a)
				}
				l.Noted(a)
			}
		}()
	}
	wg.Wait()
	if n := l.Tracked(); n > 16 {
		t.Fatalf("%d tracked", n)
	}
}

func TestAddrOf(t *testing.T) {
	for _, tt := range []struct{ remote, want string }{
		{"192.0.2.7:41234", "192.0.2.7"},
		{"127.0.0.2:80", "127.0.0.2"},
		{"[::ffff:192.0.2.7]:443", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::"},
		{"[2001:db8:1:2:ffff::1]:1", "2001:db8:1:2::"}, // the same /64
		{"[fe80::1%eth0]:1", "fe80::"},
		{"192.0.2.7", "192.0.2.7"}, // no port
		{"[2001:db8::1]", "2001:db8::"},
		{"@", "invalid IP"}, // a Unix socket: one address for all
		{"", "invalid IP"},
	} {
		if got := AddrOf(tt.remote).String(); got != tt.want {
			t.Errorf("AddrOf(%q) = %s, want %s", tt.remote, got, tt.want)
		}
	}
}

// TestHandler: through the HTTP handler, an address is refused 429 (Retry-After, a JSON body, readable
// cross-origin) once the handler behind has reported its failures, without reaching that handler; others
// and preflights pass; answers the transport marks as failures count too.
func TestHandler(t *testing.T) {
	clk := newClock()
	var logs strings.Builder
	var mu sync.Mutex
	l := New(Config{Rate: 1, Burst: 3, Hold: -1, Now: clk.now, Log: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))})
	var reached, refused int
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		switch r.URL.Path {
		case "/bad-token":
			Failed(r.Context())
			w.WriteHeader(http.StatusUnauthorized)
		case "/bad-offer":
			w.WriteHeader(http.StatusBadRequest)
		case "/bad-token-400": // reported and answered 400: counted once
			Failed(r.Context())
			w.WriteHeader(http.StatusBadRequest)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	})
	h := l.Handler(next, HandlerOptions{Name: "test", Code: 2001, OnRefused: func() { refused++ },
		FailStatus: func(r *http.Request, status int) bool {
			return r.Method == http.MethodPost && status == http.StatusBadRequest
		}})
	do := func(method, path, remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = remote
		r.Header.Set("Origin", "https://app.example")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	const bad, good = "198.51.100.9:5000", "203.0.113.5:6000"
	do("POST", "/bad-token", bad)
	do("POST", "/bad-offer", bad)
	do("POST", "/bad-token-400", bad)
	if reached != 3 {
		t.Fatalf("reached %d", reached)
	}
	w := do("POST", "/bad-token", bad)
	if w.Code != http.StatusTooManyRequests || reached != 3 || refused != 1 {
		t.Fatalf("4th: %d, reached %d, refused %d", w.Code, reached, refused)
	}
	if w.Header().Get("Retry-After") != "1" || w.Header().Get("Content-Type") != "application/json" ||
		w.Header().Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Errorf("headers %v", w.Header())
	}
	var body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Code != 2001 || body.Message == "" {
		t.Errorf("body %q: %v", w.Body.String(), err)
	}
	// Another address, a preflight and a request of the refused address's port-mate all behave.
	if w := do("POST", "/ok", good); w.Code != http.StatusOK {
		t.Errorf("other address: %d", w.Code)
	}
	if w := do("OPTIONS", "/ok", bad); w.Code != http.StatusOK {
		t.Errorf("preflight: %d", w.Code)
	}
	if w := do("GET", "/ok", "198.51.100.9:5001"); w.Code != http.StatusTooManyRequests {
		t.Errorf("same address, other port: %d", w.Code)
	}
	clk.advance(time.Second)
	if w := do("GET", "/ok", bad); w.Code != http.StatusOK {
		t.Errorf("after a second: %d", w.Code)
	}
	mu.Lock()
	n := strings.Count(logs.String(), "refusing the address's requests unexamined")
	mu.Unlock()
	if n != 1 {
		t.Errorf("%d throttling lines:\n%s", n, logs.String())
	}

	// Outside the handler, Failed and Noted spend nothing and always log.
	if d := Failed(context.Background()); !d.Log || !d.Allow {
		t.Errorf("Failed without a ticket: %+v", d)
	}
	if d := Noted(context.Background()); !d.Log {
		t.Errorf("Noted without a ticket: %+v", d)
	}
}

// TestHold: a refused request is answered after Hold, so that a client waiting for each answer sends one
// a Hold per connection; past the bounds on held requests (per address, in all) the rest are answered at
// once, and a client that hangs up is let go at once.
func TestHold(t *testing.T) {
	const hold = 300 * time.Millisecond
	l := New(Config{Rate: 0.001, Burst: 1, Hold: hold, MaxHeldPerAddress: 2, MaxHeld: 3, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h := l.Handler(http.NotFoundHandler(), HandlerOptions{Name: "test"})
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	l.Failed(a)
	l.Failed(b)
	serve := func(ctx context.Context, remote string) (int, time.Duration) {
		r := httptest.NewRequestWithContext(ctx, "POST", "/", nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r)
		return w.Code, time.Since(start)
	}
	type result struct {
		code int
		took time.Duration
	}
	results := make(chan result, 5)
	for _, remote := range []string{"198.51.100.1:1", "198.51.100.1:2", "198.51.100.1:3", "198.51.100.2:1", "198.51.100.2:2"} {
		go func() {
			code, took := serve(context.Background(), remote)
			results <- result{code, took}
		}()
	}
	held, quick := 0, 0
	for range 5 {
		r := <-results
		if r.code != http.StatusTooManyRequests {
			t.Fatalf("code %d", r.code)
		}
		if r.took >= hold-10*time.Millisecond {
			held++
		} else {
			quick++
		}
	}
	// Two of a's three and one of b's two are held (three in all); the others are answered at once.
	if held != 3 || quick != 2 {
		t.Errorf("held %d, answered at once %d", held, quick)
	}
	if n := l.Held(); n != 0 {
		t.Errorf("%d still held", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if code, took := serve(ctx, "198.51.100.1:4"); code != http.StatusTooManyRequests || took >= hold {
		t.Errorf("a client that hung up: %d after %v", code, took)
	}
	// Hold < 0: at once.
	l = New(Config{Rate: 0.001, Burst: 1, Hold: -1, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h = l.Handler(http.NotFoundHandler(), HandlerOptions{Name: "test"})
	l.Failed(a)
	if code, took := serve(context.Background(), "198.51.100.1:1"); code != http.StatusTooManyRequests || took >= hold {
		t.Errorf("no hold: %d after %v", code, took)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}
