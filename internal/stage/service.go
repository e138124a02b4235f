// Package stage is the stage domain: stages, participant tokens, stage sessions, participants and their
// events. It is the one place where the lifecycle rules of docs/DESIGN.md §5 live; transports (the API, and the media
// plane) call it, and it calls the store.
package stage

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openstage/openstage/internal/clock"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/token"
)

// Quotas are the resource limits of docs/DESIGN.md §2.6 (IVS's defaults unless configured).
type Quotas struct {
	Stages              int // stages per server (region)
	PublicKeys          int
	PublishersPerStage  int
	SubscribersPerStage int // also the cap on participants connected to one stage
	// StorageConfigurations per server (region); 0 takes the default, so that Quotas written before this
	// field existed keep meaning what they did.
	StorageConfigurations int
}

// DefaultQuotas are IVS's.
var DefaultQuotas = Quotas{Stages: 1000, PublicKeys: 3, PublishersPerStage: 12, SubscribersPerStage: 10000,
	StorageConfigurations: 5}

// Config is what the domain needs to know about its deployment.
type Config struct {
	Account   ivs.Account
	WHIPURL   string // the stages' whip endpoint, put in tokens as whip_url
	EventsURL string // the stages' events endpoint, put in tokens as events_url
	// SessionEndGrace is how long a session outlives its last participant, so a reconnect stays in it.
	SessionEndGrace time.Duration
	Quotas          Quotas
	// Buckets checks the buckets of new storage configurations; nil refuses storage configurations.
	Buckets Buckets
	// Recorders records the publishers of recording stages (docs/DESIGN.md §7); nil records nobody.
	Recorders Recorders
}

// Service is the stage domain.
type Service struct {
	cfg      Config
	store    store.Store
	clock    clock.Clock
	signer   *token.Signer
	verifier *token.Verifier
	log      *slog.Logger

	mu       sync.Mutex // guards live, watchers, closed, media, offers
	live     map[ivs.StageID]*liveStage
	watchers map[ivs.StageID]map[chan struct{}]struct{}
	closed   bool
	timers   sync.WaitGroup // running session-end callbacks
	versions atomic.Uint64  // the last stage state version handed out (changedLocked)
	closing  sync.WaitGroup // media closes the domain started (spawn)
	media    MediaPlane     // nil until SetMedia
	offers   OfferPolicy
	// placement: where stages' live state is when nodes share the store (nil: here). Guarded by mu.
	placement Placement

	keyMu    sync.Mutex
	keyCache map[string]*ecdsa.PublicKey // public key ARN -> parsed key

	// recMu guards recs, this node's recordings in progress (recording.go). It is taken before mu, never
	// under liveStage.mu.
	recMu sync.Mutex
	recs  map[recordingKey]*liveRecording
}

// New makes the domain over st. signer mints server tokens; its key also verifies them.
func New(cfg Config, st store.Store, clk clock.Clock, signer *token.Signer, log *slog.Logger) *Service {
	if clk == nil {
		clk = clock.Real{}
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.Quotas == (Quotas{}) {
		cfg.Quotas = DefaultQuotas
	}
	if cfg.Quotas.StorageConfigurations == 0 {
		cfg.Quotas.StorageConfigurations = DefaultQuotas.StorageConfigurations
	}
	s := &Service{
		cfg: cfg, store: st, clock: clk, signer: signer, log: log,
		live: map[ivs.StageID]*liveStage{}, watchers: map[ivs.StageID]map[chan struct{}]struct{}{},
		keyCache: map[string]*ecdsa.PublicKey{}, recs: map[recordingKey]*liveRecording{},
	}
	s.verifier = &token.Verifier{Keys: s, Now: clk.Now}
	return s
}

// Account is the region and account of every ARN this service makes.
func (s *Service) Account() ivs.Account { return s.cfg.Account }

// Endpoints returns the stage endpoints of the model's StageEndpoints shape.
func (s *Service) Endpoints() (events, whip string) { return s.cfg.EventsURL, s.cfg.WHIPURL }

func (s *Service) now() time.Time { return s.clock.Now().UTC() }

// stageID parses a stage ARN of this account; an ARN of another account or region names no stage here.
func (s *Service) stageID(arn string) (ivs.StageID, error) {
	id, ok := s.cfg.Account.StageIDFromARN(arn)
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrStageNotFound, arn)
	}
	return id, nil
}

func notFound(err error, sentinel error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", sentinel, what)
	}
	return err
}

// attributesSize counts the 1 KB budget of the model's attributes doc: keys and values, in bytes.
func attributesSize(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

const maxAttributesBytes = 1024

func checkAttributes(path string, m map[string]string) error {
	if n := attributesSize(m); n > maxAttributesBytes {
		return fmt.Errorf("%w: %s are %d bytes; the maximum is 1 KB (%d bytes of keys and values)", ErrInvalid, path, n, maxAttributesBytes)
	}
	return nil
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
