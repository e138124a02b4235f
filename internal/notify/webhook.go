package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// Endpoint is one webhook receiver of the config file.
type Endpoint struct {
	// Name identifies the endpoint's delivery state in the store and its metrics' label: stable across
	// restarts and config reorderings.
	Name   string
	URL    string
	Secret string
	Kinds  map[Kind]bool        // nil = every kind
	Stages map[ivs.StageID]bool // nil = every stage
}

func (e Endpoint) wants(n store.Notification) bool {
	return (e.Kinds == nil || e.Kinds[Kind(n.Kind)]) && (e.Stages == nil || e.Stages[n.StageID])
}

// Observer receives the deliveries' measurements (internal/metrics).
type Observer interface {
	// Delivery counts one attempt's result: "delivered", "failed" (to be retried) or "dead"; lag is the time
	// from the notification to its delivery (for "delivered").
	Delivery(endpoint, result string, lag time.Duration)
	// Depth is how many notifications the endpoint has not yet dealt with.
	Depth(endpoint string, n int64)
}

type noObserver struct{}

func (noObserver) Delivery(string, string, time.Duration) {}
func (noObserver) Depth(string, int64)                    {}

// Config configures the webhooks' delivery.
type Config struct {
	Store     store.Store
	Account   ivs.Account
	Endpoints []Endpoint
	// Owner names this process in the delivery leases: one owner delivers an endpoint at a time, whatever
	// the number of nodes.
	Owner string
	Tail  *Tail

	MaxAttempts int           // attempts before a dead letter (10 when 0)
	RetryBase   time.Duration // the first retry's delay (1 s when 0), doubled per attempt, with jitter
	RetryMax    time.Duration // the longest delay between attempts (5 min when 0)
	Timeout     time.Duration // one attempt's time, connection to response (10 s when 0)
	LeaseTTL    time.Duration // how long a lease outlives a node that stopped renewing it (30 s when 0)

	Client   *http.Client // nil = one of its own
	Observer Observer
	Log      *slog.Logger
	Now      func() time.Time // nil = time.Now
}

// Webhooks delivers the notification log to the configured endpoints: one goroutine per endpoint, each
// with its own cursor in the store, so a slow or dead endpoint delays only itself, and nothing of it runs
// on the domain's or the API's path.
type Webhooks struct {
	cfg    Config
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start starts one deliverer per endpoint. Close stops them.
func Start(cfg Config) *Webhooks {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 30 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Webhooks{cfg: cfg, cancel: cancel}
	for _, e := range cfg.Endpoints {
		d := &deliverer{Config: &w.cfg, ep: e, log: cfg.Log.With("webhook", e.Name)}
		w.wg.Go(func() { d.run(ctx) })
	}
	return w
}

// Close stops the deliverers, waits for them, and gives up their leases for another node to take at once.
func (w *Webhooks) Close() {
	w.cancel()
	w.wg.Wait()
}

// deliverer delivers one endpoint.
type deliverer struct {
	*Config
	ep  Endpoint
	log *slog.Logger

	cursor     int64
	saved      int64     // the cursor as last stored
	leaseUntil time.Time // when our lease lapses, by our clock, counted from before the call that renewed it
}

var errLease = errors.New("notify: lease lost")

func (d *deliverer) run(ctx context.Context) {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if d.saved != d.cursor {
			_ = d.Store.AdvanceDelivery(rctx, d.ep.Name, d.Owner, d.cursor, d.LeaseTTL, nil, nil)
		}
		if err := d.Store.ReleaseDelivery(rctx, d.ep.Name, d.Owner); err != nil {
			d.log.Warn("webhook: release the lease", "err", err)
		}
	}()
	for ctx.Err() == nil {
		start := time.Now()
		cursor, ok, err := d.Store.AcquireDelivery(ctx, d.ep.Name, d.Owner, d.LeaseTTL)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				d.log.Warn("webhook: acquire the delivery lease", "err", err)
			}
		case ok:
			d.cursor, d.saved, d.leaseUntil = cursor, cursor, start.Add(d.LeaseTTL)
			err := d.deliverHeld(ctx)
			if ctx.Err() == nil {
				d.log.Warn("webhook: delivery stopped; taking the lease again", "err", err)
			}
		}
		sleep(ctx, d.LeaseTTL/3) // another node delivers it, or the store failed
	}
}

// renew stores the cursor and extends the lease.
func (d *deliverer) advance(ctx context.Context, dead []store.DeadLetter, done []int64) error {
	start := time.Now()
	if err := d.Store.AdvanceDelivery(ctx, d.ep.Name, d.Owner, d.cursor, d.LeaseTTL, dead, done); err != nil {
		if errors.Is(err, store.ErrLeaseLost) {
			return errLease
		}
		return err
	}
	d.saved, d.leaseUntil = d.cursor, start.Add(d.LeaseTTL)
	return nil
}

// holding renews the lease when it is half spent, and fails when it cannot be sure to still hold it: no
// request leaves unless the lease is ours.
func (d *deliverer) holding(ctx context.Context) error {
	if time.Until(d.leaseUntil) > d.LeaseTTL/2 {
		return nil
	}
	return d.advance(ctx, nil, nil)
}

// deliverHeld delivers while the lease is held.
func (d *deliverer) deliverHeld(ctx context.Context) error {
	const batch = 256
	lastSave := time.Now()
	for {
		if err := d.replays(ctx); err != nil {
			return err
		}
		changed := d.Tail.Changed()
		ns, err := d.Store.ListNotifications(ctx, d.cursor, batch)
		if err != nil {
			return err
		}
		if len(ns) > 0 {
			if last, err := d.Store.LastNotification(ctx); err == nil {
				d.Observer.Depth(d.ep.Name, last-d.cursor)
			}
		}
		for _, n := range ns {
			if !d.ep.wants(n) {
				d.cursor = n.Seq
				continue
			}
			attempts, err := d.deliver(ctx, n)
			if errors.Is(err, errLease) || ctx.Err() != nil {
				return err
			}
			d.cursor = n.Seq
			if err != nil {
				// Given up: a dead letter, stored with the cursor that moves past it.
				if err := d.advance(ctx, []store.DeadLetter{{Seq: n.Seq, Attempts: attempts, LastError: err.Error(), At: d.Now()}}, nil); err != nil {
					return err
				}
			}
		}
		// The cursor is stored at most every 100 ms: a crash delivers again what followed (at least once).
		if d.cursor != d.saved && (len(ns) < batch || time.Since(lastSave) > 100*time.Millisecond) {
			if err := d.advance(ctx, nil, nil); err != nil {
				return err
			}
			lastSave = time.Now()
			d.Observer.Depth(d.ep.Name, 0)
		}
		if len(ns) == batch {
			continue
		}
		if err := d.holding(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(min(d.LeaseTTL/3, time.Second)): // replays an operator asked for are looked for every second
		}
	}
}

// replays delivers the dead letters an operator asked for again.
func (d *deliverer) replays(ctx context.Context) error {
	dls, err := d.Store.DeadLetters(ctx, d.ep.Name)
	if err != nil {
		return err
	}
	for _, dl := range dls {
		if !dl.Replay {
			continue
		}
		n, err := d.Store.GetNotification(ctx, dl.Seq)
		if errors.Is(err, store.ErrNotFound) {
			// Retention deleted it: nothing left to send.
			if err := d.advance(ctx, nil, []int64{dl.Seq}); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		attempts, err := d.deliver(ctx, n)
		if errors.Is(err, errLease) || ctx.Err() != nil {
			return err
		}
		if err != nil {
			err = d.advance(ctx, []store.DeadLetter{{Seq: n.Seq, Attempts: attempts, LastError: err.Error(), At: d.Now()}}, nil)
		} else {
			err = d.advance(ctx, nil, []int64{n.Seq})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// deliver makes up to MaxAttempts attempts, with exponential backoff and jitter between them. It returns
// the attempts made and the last failure, nil once delivered.
func (d *deliverer) deliver(ctx context.Context, n store.Notification) (int, error) {
	body, err := Encode(n, d.Account)
	if err != nil {
		return 0, err
	}
	var last error
	for attempt := 1; attempt <= d.MaxAttempts; attempt++ {
		if err := d.holding(ctx); err != nil {
			return attempt - 1, err
		}
		last = d.post(ctx, n, body, attempt)
		if last == nil {
			d.Observer.Delivery(d.ep.Name, "delivered", d.Now().Sub(n.Time))
			return attempt, nil
		}
		if ctx.Err() != nil {
			return attempt, ctx.Err()
		}
		if attempt == d.MaxAttempts {
			break
		}
		d.Observer.Delivery(d.ep.Name, "failed", 0)
		d.log.Debug("webhook: attempt failed", "id", n.Seq, "attempt", attempt, "err", last)
		if err := d.backoff(ctx, attempt); err != nil {
			return attempt, err
		}
	}
	d.Observer.Delivery(d.ep.Name, "dead", 0)
	d.log.Warn("webhook: dead letter", "id", n.Seq, "attempts", d.MaxAttempts, "err", last)
	return d.MaxAttempts, last
}

// backoff waits before the attempt after attempt: RetryBase·2^(attempt-1), at most RetryMax, of which a
// random half to all (jitter, so that endpoints recovering together are not hit in step), renewing the
// lease meanwhile.
func (d *deliverer) backoff(ctx context.Context, attempt int) error {
	delay := d.RetryMax
	if attempt < 40 {
		delay = min(d.RetryMax, d.RetryBase<<(attempt-1))
	}
	delay = delay/2 + rand.N(delay/2+1)
	until := time.Now().Add(delay)
	for {
		left := time.Until(until)
		if left <= 0 {
			return nil
		}
		if !sleep(ctx, min(left, d.LeaseTTL/3)) {
			return ctx.Err()
		}
		if err := d.holding(ctx); err != nil {
			return err
		}
	}
}

// post makes one attempt: any 2xx is delivered, anything else (another status, a timeout, a refused
// connection) is retried.
func (d *deliverer) post(ctx context.Context, n store.Notification, body []byte, attempt int) error {
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.ep.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "openstage-webhooks")
	req.Header.Set(IDHeader, ID(n.Seq))
	req.Header.Set("X-Openstage-Attempt", strconv.Itoa(attempt))
	req.Header.Set(SignatureHeader, Sign(d.ep.Secret, d.Now(), body))
	resp, err := d.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// sleep waits d or until ctx is done; it reports whether it slept the whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
