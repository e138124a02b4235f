// Package cluster lets several openstage nodes share one PostgreSQL database (docs/DESIGN.md §6.2): each
// node registers and heartbeats through the database, each stage's live state is leased to one node (its
// owner), any node is a front door that forwards what belongs to an owner to it, and the survivors of a
// dead node end what it left. The database is the only shared component.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
)

// Store is what the cluster needs of the store: the registry and leases, and the secret nodes share.
type Store interface {
	store.Cluster
	Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error)
}

// Domain is what the cluster needs of the stage domain on this node.
type Domain interface {
	Holds(id ivs.StageID) bool
	Held() []ivs.StageID
	Adopt(ctx context.Context, id ivs.StageID) (int, error)
	Evict(ctx context.Context, id ivs.StageID) error
	DisconnectParticipant(ctx context.Context, stageARN string, pid ivs.ParticipantID, reason string) error
	DeleteStage(ctx context.Context, arn string) error
}

var (
	_ Domain          = (*stage.Service)(nil)
	_ stage.Placement = (*Cluster)(nil)
	_ stage.Peer      = (*peer)(nil)
)

// Config configures a node.
type Config struct {
	Store  Store
	Domain Domain
	// Self is this node: ID, URL (how the others reach it), PublicURL and MediaAddr.
	Self store.Node
	// TTL is how old a heartbeat may be before its node is dead (--node-ttl). Heartbeats go every TTL/3.
	TTL time.Duration
	Log *slog.Logger
	// Client calls the other nodes (forwarded requests and node-to-node calls); nil: a client of its own.
	Client *http.Client
}

// ErrUnavailable: the node cannot place the stage now (it lost contact with the database, or a forwarded
// request reached a node that is no longer the owner); the caller may retry shortly, through any node.
var ErrUnavailable = stage.NewKindError(stage.KindUnavailable, "the stage is moving between nodes; retry")

// Cluster is this node's membership: its heartbeat, the stages it owns, the sweep of dead nodes' stages, and
// the front door (frontdoor.go) and node-to-node calls (peer.go) built on them.
type Cluster struct {
	cfg    Config
	log    *slog.Logger
	key    []byte // shared by the nodes (a store secret): signs forwarded requests and node-to-node calls
	client *http.Client
	// transport carries forwarded requests and, by default, node-to-node calls; Close closes its idle
	// connections.
	transport *http.Transport

	mu     sync.Mutex
	stages map[ivs.StageID]*lease // stages this node owns or is placing
	fenced bool                   // heartbeats lapsed: this node may own nothing until one succeeds

	beat  atomic.Int64 // monotonic start of the last successful heartbeat (time.Since(epoch) in ns)
	epoch time.Time

	stats stats

	started atomic.Bool
	stop    chan struct{}
	done    chan struct{}
}

// lease is this node's view of one stage it owns or is placing. mu serialises the claim, the take-over and
// the release of the stage on this node; refs counts the callers using it (Place to release), during which
// the lease is never given up.
type lease struct {
	mu    sync.Mutex
	refs  int         // guarded by Cluster.mu
	owned atomic.Bool // written under mu: the database names this node the owner
}

type stats struct {
	heartbeats, heartbeatFailures atomic.Uint64
	takeovers, fences             atomic.Uint64
	forwarded                     [routeCount]atomic.Uint64
}

// New makes the node; Start registers it.
func New(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.TTL <= 0 {
		return nil, errors.New("cluster: the node ttl must be positive")
	}
	if cfg.Self.ID == "" || cfg.Self.URL == "" {
		return nil, errors.New("cluster: a node needs an id and a URL the other nodes reach it at")
	}
	key, err := cfg.Store.Secret(ctx, "cluster-key", randomKey)
	if err != nil {
		return nil, fmt.Errorf("cluster: shared key: %w", err)
	}
	c := &Cluster{cfg: cfg, log: cfg.Log, key: key, client: cfg.Client, stages: map[ivs.StageID]*lease{},
		epoch: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.transport = http.DefaultTransport.(*http.Transport).Clone()
	c.transport.ResponseHeaderTimeout = 30 * time.Second // a WHIP negotiation takes at most 15 s
	if c.client == nil {
		c.client = &http.Client{Timeout: 30 * time.Second, Transport: c.transport}
	}
	return c, nil
}

// Self is this node's id.
func (c *Cluster) Self() store.NodeID { return c.cfg.Self.ID }

// interval is the heartbeat period: three heartbeats fit in a ttl, so one late or lost one is not death.
func (c *Cluster) interval() time.Duration { return c.cfg.TTL / 3 }

// fenceAfter is how long after its last successful heartbeat began a node stops trusting its leases. The
// database stamps a heartbeat no earlier than it began, so the other nodes see this node dead no sooner than
// ttl after that start: giving the leases up at 0.9·ttl leaves no moment with two owners, as long as the
// database's clock and this node's run at about the same rate.
func (c *Cluster) fenceAfter() time.Duration { return c.cfg.TTL * 9 / 10 }

// Start registers the node, then does its start-up recovery: the stages it owned before a restart (nobody
// else may take them until its old heartbeat lapses, and it holds none of their connections now) and those
// of dead nodes are ended and freed. Live nodes' stages are not touched. Then the heartbeat runs until Close.
func (c *Cluster) Start(ctx context.Context) error {
	if err := c.heartbeat(ctx); err != nil {
		return fmt.Errorf("cluster: register: %w", err)
	}
	own, err := c.cfg.Store.Owned(ctx, c.cfg.Self.ID)
	if err != nil {
		return fmt.Errorf("cluster: recover: %w", err)
	}
	for _, id := range own {
		if err := c.takeOver(ctx, id); err != nil {
			return fmt.Errorf("cluster: recover stage %s: %w", id, err)
		}
	}
	if err := c.sweep(ctx); err != nil {
		return fmt.Errorf("cluster: recover: %w", err)
	}
	c.started.Store(true)
	go c.run()
	return nil
}

// SetMediaAddr sets the media address the registry shows for this node (before Start).
func (c *Cluster) SetMediaAddr(a string) { c.cfg.Self.MediaAddr = a }

// Close stops the heartbeat. Leave, after the domain has ended this node's stages, frees them at once.
func (c *Cluster) Close() {
	defer c.transport.CloseIdleConnections()
	if !c.started.Load() {
		return
	}
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// Leave removes the node and its leases from the registry: a graceful stop, after the domain's shutdown has
// ended its stages, so that the stages get a new owner at once rather than after the ttl.
func (c *Cluster) Leave(ctx context.Context) error {
	return c.cfg.Store.Leave(ctx, c.cfg.Self.ID)
}

func (c *Cluster) run() {
	defer close(c.done)
	t := time.NewTicker(c.interval())
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.interval())
		c.tick(ctx)
		cancel()
	}
}

// tick is one heartbeat period: renew, or fence when the leases can no longer be trusted; then give up the
// stages this node no longer uses and end those dead nodes left.
func (c *Cluster) tick(ctx context.Context) {
	if err := c.heartbeat(ctx); err != nil {
		c.stats.heartbeatFailures.Add(1)
		c.log.Warn("cluster: heartbeat failed", "err", err)
		if time.Since(c.epoch)-time.Duration(c.beat.Load()) > c.fenceAfter() {
			c.fence(ctx)
		}
		return
	}
	if err := c.releaseIdle(ctx); err != nil {
		c.log.Warn("cluster: releasing idle stages", "err", err)
	}
	if err := c.sweep(ctx); err != nil {
		c.log.Warn("cluster: ending dead nodes' stages", "err", err)
	}
}

func (c *Cluster) heartbeat(ctx context.Context) error {
	began := time.Since(c.epoch)
	if err := c.cfg.Store.Heartbeat(ctx, c.cfg.Self); err != nil {
		return err
	}
	c.beat.Store(int64(began))
	c.stats.heartbeats.Add(1)
	c.mu.Lock()
	if c.fenced {
		c.log.Info("cluster: heartbeats resumed; taking stages again")
	}
	c.fenced = false
	c.mu.Unlock()
	return nil
}

// fence gives up everything this node holds: past fenceAfter another node may already own its stages, so
// its connections there are ended (as a shutdown ends them) and it claims nothing until a heartbeat lands.
func (c *Cluster) fence(ctx context.Context) {
	c.mu.Lock()
	already := c.fenced
	c.fenced = true
	leases := make([]*lease, 0, len(c.stages))
	for _, l := range c.stages {
		leases = append(leases, l)
	}
	c.mu.Unlock()
	if already {
		return
	}
	c.stats.fences.Add(1)
	c.log.Error("cluster: no heartbeat for too long; ending this node's stages, which other nodes may now own",
		"since", time.Since(c.epoch)-time.Duration(c.beat.Load()))
	for _, l := range leases {
		l.mu.Lock()
		l.owned.Store(false)
		l.mu.Unlock()
	}
	for _, id := range c.cfg.Domain.Held() {
		if err := c.cfg.Domain.Evict(ctx, id); err != nil {
			c.log.Warn("cluster: ending a stage while fenced", "stage", id, "err", err)
		}
	}
}

// use returns the stage's lease entry with one more user.
func (c *Cluster) use(id ivs.StageID) *lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.stages[id]
	if l == nil {
		l = &lease{}
		c.stages[id] = l
	}
	l.refs++
	return l
}

func (c *Cluster) unuse(l *lease) {
	c.mu.Lock()
	l.refs--
	c.mu.Unlock()
}

// place makes sure a live node owns the stage, claiming it for this node when none does, and returns the
// owner's row when it is another node. When this node owns it, the caller holds a use of it until it calls
// release (nil when the owner is another node). A stage this node takes over is first rid of what its
// previous holder left (Adopt).
func (c *Cluster) place(ctx context.Context, id ivs.StageID) (other *store.Node, release func(), err error) {
	l := c.use(id)
	ok := false
	defer func() {
		if !ok {
			c.unuse(l)
		}
	}()
	l.mu.Lock()
	defer l.mu.Unlock()
	c.mu.Lock()
	fenced := c.fenced
	c.mu.Unlock()
	if fenced {
		return nil, nil, ErrUnavailable
	}
	if !l.owned.Load() {
		// Most requests for a stage another node owns are answered by a read: the claim is a write that
		// takes the stage's row lock, which the owner's own transactions on the stage need too.
		if o, ok, err := c.cfg.Store.Owner(ctx, id, c.cfg.TTL); err != nil {
			return nil, nil, err
		} else if ok && o.ID != c.cfg.Self.ID {
			return &o, nil, nil
		}
		claim, err := c.cfg.Store.Claim(ctx, id, c.cfg.Self.ID, c.cfg.TTL)
		if err != nil {
			return nil, nil, err // store.ErrNotFound for a stage that does not exist
		}
		if claim.Owner.ID != c.cfg.Self.ID {
			return &claim.Owner, nil, nil
		}
		if claim.Took {
			c.stats.takeovers.Add(1)
			c.log.InfoContext(ctx, "cluster: stage taken", "stage", id, "from", claim.Previous)
		}
		// Owned by this node, but not held here: whatever the store shows open on it was left by a gone
		// holder (the previous owner, or this node before a crash or a fence).
		if !c.cfg.Domain.Holds(id) {
			if _, err := c.cfg.Domain.Adopt(ctx, id); err != nil {
				return nil, nil, err
			}
		}
		l.owned.Store(true)
	}
	ok = true
	var once sync.Once
	return nil, func() { once.Do(func() { c.unuse(l) }) }, nil
}

// Place implements stage.Placement: the owner is this node (nil Peer) or the peer returned. A request that
// another node forwarded here must not be forwarded again (ownership moved while it travelled): it gets
// ErrUnavailable, and the client retries.
func (c *Cluster) Place(ctx context.Context, id ivs.StageID) (stage.Peer, func(), error) {
	other, release, err := c.place(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if other == nil {
		return nil, release, nil
	}
	if forwarded(ctx) {
		return nil, nil, ErrUnavailable
	}
	return &peer{c: c, node: *other}, func() {}, nil
}

// takeOver places a stage here (ending what its gone holder left) and gives it up again unless this node
// holds it: start-up recovery and the sweep of dead nodes' stages.
func (c *Cluster) takeOver(ctx context.Context, id ivs.StageID) error {
	other, release, err := c.place(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	if other != nil {
		return nil // a live node took it first
	}
	release()
	return c.releaseIfIdle(ctx, id)
}

// sweep ends the stages of dead nodes (and any stage left open without an owner). Every surviving node
// sweeps; the claim lets exactly one of them take each stage.
func (c *Cluster) sweep(ctx context.Context) error {
	ids, err := c.cfg.Store.Orphans(ctx, c.cfg.TTL)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if err := c.takeOver(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("stage %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// releaseIdle gives up the stages this node owns and neither holds live state for nor is placing.
func (c *Cluster) releaseIdle(ctx context.Context) error {
	c.mu.Lock()
	ids := make([]ivs.StageID, 0, len(c.stages))
	for id, l := range c.stages {
		if l.refs == 0 {
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := c.releaseIfIdle(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// releaseIfIdle gives the stage's lease up if nobody uses it here and the domain holds nothing of it. The
// lease's lock keeps a Place on this node from claiming it in between; a Place that then finds it released
// claims it again.
func (c *Cluster) releaseIfIdle(ctx context.Context, id ivs.StageID) error {
	c.mu.Lock()
	l := c.stages[id]
	c.mu.Unlock()
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c.mu.Lock()
	busy := l.refs > 0
	c.mu.Unlock()
	if busy || c.cfg.Domain.Holds(id) {
		return nil
	}
	if l.owned.Load() {
		if err := c.cfg.Store.Release(ctx, id, c.cfg.Self.ID); err != nil {
			return err
		}
		l.owned.Store(false)
	}
	c.mu.Lock()
	if l.refs == 0 && c.stages[id] == l {
		delete(c.stages, id)
	}
	c.mu.Unlock()
	return nil
}

// Owned counts the stages this node owns (metrics).
func (c *Cluster) Owned() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.stages {
		if l.owned.Load() {
			n++
		}
	}
	return n
}

// Stats are the node's cluster counters (metrics).
type Stats struct {
	Heartbeats, HeartbeatFailures uint64
	// Takeovers counts stages this node claimed, Fences the times it gave everything up for lack of heartbeats.
	Takeovers, Fences uint64
	Owned             int
	// Forwarded counts requests this front door forwarded to an owner, by route (Route.String).
	Forwarded map[string]uint64
}

// Stats reads the counters.
func (c *Cluster) Stats() Stats {
	s := Stats{Heartbeats: c.stats.heartbeats.Load(), HeartbeatFailures: c.stats.heartbeatFailures.Load(),
		Takeovers: c.stats.takeovers.Load(), Fences: c.stats.fences.Load(), Owned: c.Owned(), Forwarded: map[string]uint64{}}
	for r := range routeCount {
		s.Forwarded[r.String()] = c.stats.forwarded[r].Load()
	}
	return s
}

// Routes are the front door's routes (metrics labels).
func Routes() []string { return routeNames[:] }
