// Package admission bounds what anonymous clients cost: it limits, per source address, how many failed
// authentications the media plane's transports (WHIP, the stage events socket) will still examine. An
// address that has spent its budget of failures is refused (HTTP 429, Retry-After) without its request
// being read or its token verified, so that a client sending bad tokens as fast as it can no longer costs a
// P-384 verification and a log line per request; the refusal is held a moment before it is sent (Hold), so
// that a client waiting for each answer cannot make the server refuse it as fast as the network allows.
// Only failures spend budget: participants whose tokens are good are never refused unless their address is
// also the one failing.
//
// It also bounds the refusal logs: at most one line per address per LogInterval (carrying the count of
// what was not logged since) and at most LogRate lines a second in all. Metrics still count every refusal.
//
// The Limiter needs no goroutine: idle addresses are dropped as new failures arrive, and the table never
// holds more than MaxAddresses of them.
package admission

import (
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultMaxAddresses = 65536
	DefaultLogInterval  = 10 * time.Second
	DefaultLogRate      = 10
	DefaultLogBurst     = 50
	DefaultHold         = time.Second
	DefaultMaxHeld      = 1024
	DefaultMaxHeldPer   = 64
)

// Config configures a Limiter.
type Config struct {
	// Rate is the sustained number of failed authentications per second an address may make; Burst how
	// many it may make in a row. An address is refused while it has less than one failure left. Rate <= 0
	// or Burst <= 0 refuses nobody (refusal logs are still bounded).
	Rate  float64
	Burst int
	// MaxAddresses bounds the table of addresses with recent failures; when it is full, the address that
	// failed least recently is forgotten. Zero is DefaultMaxAddresses.
	MaxAddresses int
	// LogInterval is how often at most a refusal from one address is logged. Zero is DefaultLogInterval.
	LogInterval time.Duration
	// LogRate and LogBurst bound refusal log lines over all addresses. Zero is DefaultLogRate and
	// DefaultLogBurst.
	LogRate  float64
	LogBurst int
	// Hold is how long Handler holds a refused request before it answers 429, so that a client that
	// waits for each answer before its next request (as most do) sends one a Hold per connection instead
	// of as many as the server can refuse. Zero is DefaultHold; negative answers at once. At most
	// MaxHeldPerAddress requests of one address and MaxHeld in all are held (zero: DefaultMaxHeldPer,
	// DefaultMaxHeld); the others are answered at once.
	Hold              time.Duration
	MaxHeld           int
	MaxHeldPerAddress int
	// Log receives the limiter's own lines (an address being throttled). Nil is slog.Default().
	Log *slog.Logger
	// Now is the clock (tests inject one). Nil is time.Now.
	Now func() time.Time
}

// Limiter tracks failed authentications per source address. Its methods are safe for concurrent use.
type Limiter struct {
	rate        float64
	burst       float64
	enabled     bool
	max         int
	logInterval time.Duration
	logRate     float64
	logBurst    float64
	log         *slog.Logger
	now         func() time.Time
	hold        time.Duration
	maxHeld     int
	maxHeldPer  int

	mu         sync.Mutex
	held       int // requests being held, all addresses
	addrs      map[netip.Addr]*entry
	head, tail *entry // most and least recently touched
	logTokens  float64
	logAt      time.Time
}

// entry is one address with recent failures.
type entry struct {
	addr       netip.Addr
	tokens     float64   // failures it may still make
	at         time.Time // when tokens was last brought up to date
	touched    time.Time // last failure or refusal
	logged     time.Time // last line logged about it (zero: never)
	unlogged   uint64    // failures and refusals since that line
	throttled  bool      // refused since its budget was last full
	held       int       // its requests being held
	prev, next *entry
}

// New makes a Limiter.
func New(cfg Config) *Limiter {
	l := &Limiter{
		rate: cfg.Rate, burst: float64(cfg.Burst), enabled: cfg.Rate > 0 && cfg.Burst > 0,
		max: cfg.MaxAddresses, logInterval: cfg.LogInterval, logRate: cfg.LogRate, logBurst: float64(cfg.LogBurst),
		log: cfg.Log, now: cfg.Now, addrs: map[netip.Addr]*entry{},
		hold: cfg.Hold, maxHeld: cfg.MaxHeld, maxHeldPer: cfg.MaxHeldPerAddress,
	}
	if l.hold == 0 {
		l.hold = DefaultHold
	}
	if l.maxHeld <= 0 {
		l.maxHeld = DefaultMaxHeld
	}
	if l.maxHeldPer <= 0 {
		l.maxHeldPer = DefaultMaxHeldPer
	}
	if l.max <= 0 {
		l.max = DefaultMaxAddresses
	}
	if l.logInterval <= 0 {
		l.logInterval = DefaultLogInterval
	}
	if l.logRate <= 0 {
		l.logRate = DefaultLogRate
	}
	if l.logBurst <= 0 {
		l.logBurst = DefaultLogBurst
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.logTokens = l.logBurst
	return l
}

// Enabled reports whether the limiter refuses anyone.
func (l *Limiter) Enabled() bool { return l.enabled }

// Decision is what the Limiter says of one request.
type Decision struct {
	// Allow is false when the address has spent its failures: refuse the request unexamined.
	Allow bool
	// RetryAfter is when the address will have a failure to spend again (refused requests only).
	RetryAfter time.Duration
	// Log says whether to log this event; Unlogged is how many events of the address were not logged
	// since its last logged line.
	Log      bool
	Unlogged uint64
}

// Admit says whether a request from addr may be examined. It spends nothing.
func (l *Limiter) Admit(addr netip.Addr) Decision {
	if !l.enabled {
		return Decision{Allow: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.addrs[addr]
	if e == nil {
		return Decision{Allow: true}
	}
	now := l.now()
	l.refill(e, now)
	if e.tokens >= 1 {
		return Decision{Allow: true}
	}
	l.touch(e, now)
	d := Decision{RetryAfter: time.Duration(math.Ceil((1 - e.tokens) / l.rate * float64(time.Second)))}
	if !e.throttled {
		// The first refusal of an episode is always worth a line (within the overall bound).
		e.throttled = true
		if d.Log = l.spendLog(now); d.Log {
			d.Unlogged, e.unlogged, e.logged = e.unlogged, 0, now
		} else {
			e.unlogged++
		}
		return d
	}
	d.Log, d.Unlogged = l.note(e, now)
	return d
}

// Failed records a failed authentication from addr: it spends one of the address's failures. It returns
// whether to log the refusal.
func (l *Limiter) Failed(addr netip.Addr) Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.addrs[addr]
	if e == nil {
		l.sweep(now)
		e = &entry{addr: addr, tokens: l.burst, at: now}
		l.addrs[addr] = e
		l.push(e)
	} else {
		l.refill(e, now)
	}
	l.touch(e, now)
	if l.enabled {
		e.tokens = max(0, e.tokens-1)
	}
	d := Decision{Allow: true}
	d.Log, d.Unlogged = l.note(e, now)
	return d
}

// Noted asks whether to log a refusal from addr that spends no failure (a full stage, say): the same
// per-address and overall bounds apply. An address with no recent failures is always logged (within the
// overall bound).
func (l *Limiter) Noted(addr netip.Addr) Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	d := Decision{Allow: true}
	if e := l.addrs[addr]; e != nil {
		d.Log, d.Unlogged = l.note(e, now)
		return d
	}
	d.Log = l.spendLog(now)
	return d
}

// holdSlot reserves the holding of one refused request of addr, within the bounds; release gives it back.
func (l *Limiter) holdSlot(addr netip.Addr) (release func(), ok bool) {
	if l.hold <= 0 {
		return nil, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.addrs[addr]
	if e == nil || e.held >= l.maxHeldPer || l.held >= l.maxHeld {
		return nil, false
	}
	e.held++
	l.held++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		e.held-- // e may have left the table meanwhile: its count no longer matters then
		l.held--
	}, true
}

// Held is how many refused requests are being held.
func (l *Limiter) Held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// Tracked is how many addresses the table holds.
func (l *Limiter) Tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}

// refill brings e's failures up to date.
func (l *Limiter) refill(e *entry, now time.Time) {
	if dt := now.Sub(e.at).Seconds(); dt > 0 {
		e.tokens = min(l.burst, e.tokens+dt*l.rate)
	}
	e.at = now
	if e.tokens >= l.burst {
		e.throttled = false // back to a full budget: a later refusal starts a new episode
	}
}

// note decides whether an event of e is logged: once per logInterval per address, within the overall
// budget. The events not logged are counted and reported with the next line.
func (l *Limiter) note(e *entry, now time.Time) (bool, uint64) {
	if (e.logged.IsZero() || now.Sub(e.logged) >= l.logInterval) && l.spendLog(now) {
		n := e.unlogged
		e.logged, e.unlogged = now, 0
		return true, n
	}
	e.unlogged++
	return false, 0
}

func (l *Limiter) spendLog(now time.Time) bool {
	if dt := now.Sub(l.logAt).Seconds(); dt > 0 {
		l.logTokens = min(l.logBurst, l.logTokens+dt*l.logRate)
	}
	l.logAt = now
	if l.logTokens < 1 {
		return false
	}
	l.logTokens--
	return true
}

// idle reports whether e may be forgotten: its failures are back to full and its log interval is over,
// so a fresh entry would behave the same.
func (l *Limiter) idle(e *entry, now time.Time) bool {
	quiet := now.Sub(e.touched)
	if quiet < l.logInterval || e.held > 0 {
		return false
	}
	if !l.enabled {
		return true
	}
	return e.tokens+now.Sub(e.at).Seconds()*l.rate >= l.burst
}

// sweep makes room for one entry: it drops idle entries from the least recently touched end (a few at a
// time, so that the cost of a failure stays bounded), and the least recently touched one if the table is
// still full.
func (l *Limiter) sweep(now time.Time) {
	for i := 0; i < 4 && l.tail != nil && l.idle(l.tail, now); i++ {
		l.remove(l.tail)
	}
	if len(l.addrs) >= l.max && l.tail != nil {
		l.remove(l.tail)
	}
}

// touch marks e as the most recently touched.
func (l *Limiter) touch(e *entry, now time.Time) {
	e.touched = now
	if l.head == e {
		return
	}
	l.unlink(e)
	l.push(e)
}

func (l *Limiter) push(e *entry) {
	e.prev, e.next = nil, l.head
	if l.head != nil {
		l.head.prev = e
	}
	l.head = e
	if l.tail == nil {
		l.tail = e
	}
}

func (l *Limiter) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else if l.head == e {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else if l.tail == e {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (l *Limiter) remove(e *entry) {
	l.unlink(e)
	delete(l.addrs, e.addr)
}

// AddrOf is the address a request's RemoteAddr ("ip:port") is counted under: the IP for IPv4 (an IPv4
// address mapped into IPv6 is the IPv4 address), its /64 for IPv6, where one client usually holds a whole
// /64. A RemoteAddr that holds no IP (a Unix socket) gives the zero Addr, which is one address like any
// other.
func AddrOf(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	var a netip.Addr
	if err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(strings.Trim(remote, "[]")); err != nil {
		return netip.Addr{}
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
