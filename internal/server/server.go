// Package server assembles openstage from its parts (store, keys, stage domain, API) and runs it: start,
// serve, and the graceful stop of docs/DESIGN.md §1.
package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"github.com/openstage/openstage/internal/admission"
	"github.com/openstage/openstage/internal/api"
	"github.com/openstage/openstage/internal/clientinfo"
	"github.com/openstage/openstage/internal/clock"
	"github.com/openstage/openstage/internal/cluster"
	"github.com/openstage/openstage/internal/config"
	"github.com/openstage/openstage/internal/console"
	"github.com/openstage/openstage/internal/events"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/media"
	"github.com/openstage/openstage/internal/media/policy"
	"github.com/openstage/openstage/internal/metrics"
	"github.com/openstage/openstage/internal/recording"
	"github.com/openstage/openstage/internal/recording/bucket"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/postgres"
	"github.com/openstage/openstage/internal/store/readcache"
	"github.com/openstage/openstage/internal/store/sqlite"
	"github.com/openstage/openstage/internal/token"
	"github.com/openstage/openstage/internal/whip"
)

// Server is a running openstage.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	store   store.Store
	domain  *stage.Service
	handler http.Handler
	sfu     *media.SFU
	whip    *whip.Handler
	events  *events.Handler
	clients *clientinfo.Resolver
	metrics *metrics.Metrics
	cluster *cluster.Cluster // nil on one node (SQLite)
	// RootKey is the API key that may do everything (configured or generated).
	RootKey   api.Key
	generated bool
	ln        net.Listener
	buckets   bucket.Store // where storage configurations' buckets are (docs/DESIGN.md §7)
	recording *recording.Metrics
	notify    *notifications // webhooks and the event stream (notify.go)
}

// New opens the store and builds the server. It repairs what an earlier crash left behind before it
// returns, so the API never shows a participant CONNECTED who is not.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Server, error) {
	// With PostgreSQL the data dir still holds the generated API key.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data dir: %w", err)
	}
	root, generated, err := rootKey(cfg)
	if err != nil {
		return nil, err
	}
	keys, err := api.NewKeys(append([]api.Key{root}, cfg.Keys...))
	if err != nil {
		return nil, err
	}
	// Listen first: with port 0 the public URL, and so the stages' endpoints, need the port chosen.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("server: listen: %w", err)
	}
	cfg.Listen = ln.Addr().String()
	st, err := openStore(ctx, cfg)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("server: open store: %w", err)
	}
	key, err := signingKey(ctx, st, cfg.DataDir, log)
	if err != nil {
		_ = st.Close()
		_ = ln.Close()
		return nil, fmt.Errorf("server: token signing key: %w", err)
	}
	signer, err := token.NewSigner(key, token.KeyIDFor(&key.PublicKey))
	if err != nil {
		_ = st.Close()
		_ = ln.Close()
		return nil, err
	}
	buckets, err := openBuckets(ctx, cfg)
	if err != nil {
		_ = st.Close()
		_ = ln.Close()
		return nil, fmt.Errorf("server: recordings: %w", err)
	}
	// Thumbnails are made by ffmpeg (docs/DESIGN.md §7): without it, recordings have none, and say so.
	ffmpeg := recording.LookFFmpeg()
	if ffmpeg == "" {
		log.Warn("ffmpeg not found: recordings of stages that ask for thumbnails are made without them (apt-get install ffmpeg)")
	}
	recMetrics := &recording.Metrics{}
	whip, eventsURL := cfg.Endpoints()
	domain := stage.New(stage.Config{
		Account:         ivs.Account{Region: cfg.Region, ID: cfg.AccountID},
		WHIPURL:         whip,
		EventsURL:       eventsURL,
		SessionEndGrace: cfg.SessionEndGrace,
		Quotas: stage.Quotas{Stages: cfg.MaxStages, PublicKeys: cfg.MaxPublicKeys,
			PublishersPerStage: cfg.MaxPublishersPerStage, SubscribersPerStage: cfg.MaxSubscribersPerStage,
			StorageConfigurations: cfg.MaxStorageConfigurations},
		Buckets:   buckets,
		Recorders: stage.NewRecorders(buckets, ffmpeg, recMetrics, log),
	}, st, clock.Real{}, signer, log)
	// On one node, crash recovery ends whatever the store shows open. Nodes sharing PostgreSQL recover in
	// the cluster's start (below): only their own stages and dead nodes'.
	if !cfg.Postgres() {
		if err := domain.Recover(ctx); err != nil {
			_ = st.Close()
			_ = ln.Close()
			return nil, fmt.Errorf("server: crash recovery: %w", err)
		}
	}
	// Pagination tokens are signed with a key derived from the token signing key, so every node that
	// shares that key also accepts the others' nextTokens.
	scalar, err := key.Bytes()
	if err != nil {
		_ = st.Close()
		_ = ln.Close()
		return nil, fmt.Errorf("server: token signing key: %w", err)
	}
	// Without its leading zero bytes, as big.Int's Bytes gave it: the nextTokens already issued stay valid.
	m := hmac.New(sha256.New, bytes.TrimLeft(scalar, "\x00"))
	m.Write([]byte("openstage pagination tokens v1"))
	s := &Server{cfg: cfg, log: log, store: st, domain: domain, RootKey: root, generated: generated, ln: ln}
	s.buckets, s.recording = buckets, recMetrics
	if cfg.Postgres() {
		if err := s.joinCluster(ctx); err != nil {
			_ = s.close(context.Background())
			return nil, err
		}
	}
	if err := s.mediaPlane(whip); err != nil {
		_ = s.close(context.Background())
		return nil, err
	}
	if s.cluster != nil {
		s.cluster.SetMediaAddr(s.sfu.Addr().String())
		if err := s.cluster.Start(ctx); err != nil {
			_ = s.close(context.Background())
			return nil, err
		}
	}
	h := api.New(api.Config{Domain: domain, Keys: keys, Regions: []string{cfg.Region}, PageKey: m.Sum(nil), Log: log,
		Observe: s.metrics.ObserveAPI})
	if err := s.buildNotifications(keys, append([]api.Key{root}, cfg.Keys...)); err != nil {
		_ = s.close(context.Background())
		return nil, err
	}
	s.handler = s.routes(h)
	return s, nil
}

// nodeIDFile keeps a node's id between starts, so that a restarted node knows its own stages.
const nodeIDFile = "node-id"

// joinCluster makes this node one of the nodes sharing the PostgreSQL store (docs/DESIGN.md §6.2); Start,
// once the media plane exists, registers it and recovers.
func (s *Server) joinCluster(ctx context.Context) error {
	cs, ok := s.store.(cluster.Store)
	if !ok {
		return errors.New("server: this store cannot be shared by nodes")
	}
	id, err := nodeID(s.cfg)
	if err != nil {
		return err
	}
	ttl := s.cfg.NodeTTL
	if ttl == 0 {
		ttl = 10 * time.Second // the flag's default, for a Config built in code
	}
	s.cluster, err = cluster.New(ctx, cluster.Config{Store: cs, Domain: s.domain, TTL: ttl, Log: s.log,
		Self: store.Node{ID: id, URL: s.cfg.NodeBaseURL(), PublicURL: s.cfg.BaseURL(), MediaAddr: s.cfg.UDPAddr(), StartedAt: time.Now()}})
	if err != nil {
		return err
	}
	s.domain.SetPlacement(s.cluster)
	return nil
}

// nodeID is --node-id, or the id kept in the data dir (made on first start).
func nodeID(cfg *config.Config) (store.NodeID, error) {
	if cfg.NodeID != "" {
		return store.NodeID(cfg.NodeID), nil
	}
	path := filepath.Join(cfg.DataDir, nodeIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if !config.ValidNodeID(id) {
			return "", fmt.Errorf("server: %s holds no valid node id; delete it to make a new one", path)
		}
		return store.NodeID(id), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	id := strings.ToLower(randomUpper(12)) // [a-z2-7]: a valid node id
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("server: keep the node id: %w", err)
	}
	return store.NodeID(id), nil
}

// openStore opens the store --database names: PostgreSQL for a postgres:// URL (config accepts nothing
// else), or by default the embedded SQLite file in the data dir.
func openStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	if cfg.Postgres() {
		return postgres.Open(ctx, cfg.Database)
	}
	// The server holds the file exclusively, so that it can answer GetParticipant from memory: every write
	// to the file is then one of its own, which the cache sees (readcache).
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "openstage.db"), sqlite.Exclusive())
	if err != nil {
		return nil, err
	}
	if !st.Exclusive() {
		return st, nil // no flock on this platform: another process could write the file behind a cache
	}
	return readcache.New(st, 0), nil
}

const (
	// signingKeySecret is the store secret that holds the token signing key (PKCS#8 PEM). It lives in the
	// store so that every node on a shared database signs and verifies with the same key.
	signingKeySecret = "token-signing-key"
	// legacyKeyFile is where the key was kept in the data dir before it moved into the store.
	legacyKeyFile = "token-signing-key.pem"
)

// signingKey returns the token signing key from the store, making it on first start. A data dir from before
// the key moved into the store has it in legacyKeyFile: that key is imported, so the tokens it signed stay
// valid. When several nodes start at once, the first to store a key wins and all use it.
func signingKey(ctx context.Context, st store.Store, dataDir string, log *slog.Logger) (*ecdsa.PrivateKey, error) {
	legacy := filepath.Join(dataDir, legacyKeyFile)
	imported := false
	b, err := st.Secret(ctx, signingKeySecret, func() ([]byte, error) {
		b, err := os.ReadFile(legacy)
		if errors.Is(err, fs.ErrNotExist) {
			k, err := token.GenerateKey()
			if err != nil {
				return nil, err
			}
			return token.MarshalPrivateKeyPEM(k)
		}
		if err != nil {
			return nil, err
		}
		k, err := token.ParsePrivateKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", legacy, err)
		}
		imported = true
		return token.MarshalPrivateKeyPEM(k)
	})
	if err != nil {
		return nil, err
	}
	key, err := token.ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("the stored key: %w", err)
	}
	if imported {
		log.Info("token signing key imported into the store; the data dir's copy is no longer read", "file", legacy)
	}
	return key, nil
}

// mediaPlane builds the SFU and its HTTP transports (WHIP, the events socket).
func (s *Server) mediaPlane(whipURL string) error {
	var err error
	if s.clients, err = clientinfo.New(s.cfg.GeoIPDB); err != nil {
		return fmt.Errorf("server: --geoip-db: %w", err)
	}
	pol, err := policy.ByName(s.cfg.MediaPolicy)
	if err != nil {
		return fmt.Errorf("server: --media-policy: %w", err)
	}
	s.sfu, err = media.New(media.Config{UDPAddr: s.cfg.UDPAddr(), TCPAddr: s.cfg.TCPAddr(), NATIP: s.cfg.NATIP, IncludeLoopback: s.cfg.Loopback(),
		PublishCodecs: pol.AllowedVideo, // the answer picks from these, whatever the offer lists first
		Inspector:     func() media.Inspector { return policy.NewStreamInspector(pol) }, SendPath: s.cfg.MediaSendPath, Log: s.log})
	if err != nil {
		return fmt.Errorf("server: media: %w", err)
	}
	if a := s.sfu.TCPAddr(); a != nil {
		s.log.Info("media: ICE over TCP", "addr", a.String())
	}
	s.domain.SetMedia(stage.SFUPlane(s.sfu), pol)
	src := metrics.Sources{Operations: api.Operations(), SFU: s.sfu, Live: s.domain.LiveCounts, Stages: func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, _ := s.store.CountStages(ctx)
		return n
	}}
	if c, ok := s.store.(*readcache.Store); ok {
		src.ParticipantCache = c.Stats
	}
	src.Recording = s.recording
	if s.cluster != nil {
		src.Cluster = s.cluster.Stats
	}
	s.metrics = metrics.New(src)
	var node string
	if s.cluster != nil {
		node = string(s.cluster.Self())
	}
	s.whip, err = whip.New(whip.Config{Domain: s.domain, WHIPURL: whipURL, ClientInfo: s.clients.FromRequest,
		OnRejected: s.metrics.Rejected("whip"), Log: s.log, Node: node})
	if err != nil {
		return err
	}
	s.events = events.New(events.Config{Domain: s.domain, Log: s.log, OnRejected: s.metrics.Rejected("events"),
		ClientInfo: func(r *http.Request) ivs.ClientInfo { return s.clients.FromRequest(r, ivs.ProtocolUnknown) }})
	return nil
}

// routes puts everything on one listener: WHIP under its path, the events socket under its path, the
// 307 at the root, and the AWS API (POST /<Operation>, /tags/...) for the rest. Every route but the events
// socket lives within the server's read and write timeouts (Run), which fit them all: API calls, WHIP
// offers (256 KiB at most) and negotiation (15 s at most), /metrics and the console's files.
func (s *Server) routes(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", api)
	// An address that keeps failing to authenticate on WHIP or the events socket is refused (429) before
	// its token is even parsed (internal/admission); refusals still count in openstage_rejected_tokens_total,
	// as "throttled".
	adm := admission.New(admission.Config{Rate: s.cfg.AuthFailureRate, Burst: s.cfg.AuthFailureBurst, Log: s.log})
	whipRejected, eventsRejected := s.metrics.Rejected("whip"), s.metrics.Rejected("events")
	whipRoutes := adm.Handler(s.whip, admission.HandlerOptions{Name: "whip", Code: 2001, // IVS's generic WHIP error code
		OnRefused: func() { whipRejected("throttled") },
		// A bad offer (wrong type, unparsable, refused by the media policy) is a failure too: it is answered
		// after the token's verification.
		FailStatus: func(r *http.Request, status int) bool {
			return r.Method == http.MethodPost && (status == http.StatusBadRequest || status == http.StatusUnsupportedMediaType)
		}})
	mux.Handle(s.whip.Base(), whipRoutes)
	mux.Handle(s.whip.Base()+"/", whipRoutes)
	mux.HandleFunc("POST /{$}", s.whip.Redirect)
	events := adm.Handler(s.events, admission.HandlerOptions{Name: "events", Code: "TOO_MANY_REQUESTS",
		OnRefused: func() { eventsRejected("throttled") }})
	if s.cluster != nil {
		// Any node is a front door: what belongs to a stage another node owns is forwarded there, before
		// admission, which the owner applies with the client's own address.
		base := s.whip.Base()
		publish := s.cluster.FrontDoor(cluster.RouteWHIP, whipRoutes)
		for _, p := range []string{"POST " + base, "POST " + base + "/publish/{participantId}", "POST " + base + "/subscribe/{publisherId}"} {
			mux.Handle(p, publish)
		}
		resource := s.cluster.FrontDoor(cluster.RouteResource, whipRoutes)
		mux.Handle(base+"/session/{id}", resource)
		mux.Handle(base+"/session/{id}/{rest...}", resource)
		events = s.cluster.FrontDoor(cluster.RouteEvents, events)
		mux.Handle("POST "+cluster.InternalPrefix, s.cluster.Handler())
	}
	events = longLived(events, s.log)
	mux.Handle("GET /events", events)
	mux.Handle("GET /events/{stageId}", events)
	// The notification stream: a literal segment, so it wins over /events/{stageId} (stage ids are 12
	// characters, never "stream"). It clears its own write deadline.
	mux.Handle("GET /events/stream", s.notify.stream)
	s.notify.admin.Routes(mux)
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.Handle(console.Prefix, console.Handler()) // the join page and the browser client
	return mux
}

// longLived exempts a WebSocket from the server's read and write deadlines, which are sized for requests:
// the events socket lives for hours and keeps its own (the idle timeout its pings reset, a timeout per
// message written). net/http clears an HTTP/1 connection's deadlines when it is hijacked, but only then:
// clearing them here, before the upgrade, also covers the time the handler spends first and an upgrade
// that is not a hijack (HTTP/2 streams keep per-request deadlines). A request that is not an upgrade keeps
// them: it is answered like any other.
func longLived(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if upgradeToWebSocket(r) {
			rc := http.NewResponseController(w)
			if err := errors.Join(rc.SetReadDeadline(time.Time{}), rc.SetWriteDeadline(time.Time{})); err != nil {
				// Only a ResponseWriter without deadlines (tests, a wrapper) gets here: nothing to clear.
				log.DebugContext(r.Context(), "events: clearing the connection's deadlines", "err", err)
			}
		}
		h.ServeHTTP(w, r)
	})
}

// upgradeToWebSocket reports whether r asks for a WebSocket (Upgrade is a list of tokens, any case).
func upgradeToWebSocket(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "websocket") {
				return true
			}
		}
	}
	return false
}

// Handler is the HTTP handler of everything openstage serves.
func (s *Server) Handler() http.Handler { return s.handler }

// Domain is the stage domain (for in-process transports and tests).
func (s *Server) Domain() *stage.Service { return s.domain }

// credentialsFile keeps a generated root key between starts (mode 0600).
const credentialsFile = "credentials.json"

func rootKey(cfg *config.Config) (api.Key, bool, error) {
	if cfg.AccessKeyID != "" {
		return api.Key{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey}, false, nil
	}
	path := filepath.Join(cfg.DataDir, credentialsFile)
	var k api.Key
	b, err := os.ReadFile(path)
	if err == nil {
		var stored struct{ AccessKeyID, SecretAccessKey string }
		if err := json.Unmarshal(b, &stored); err != nil || stored.AccessKeyID == "" {
			return k, false, fmt.Errorf("server: %s is damaged; delete it to generate a new key", path)
		}
		return api.Key{AccessKeyID: stored.AccessKeyID, SecretAccessKey: stored.SecretAccessKey}, true, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return k, false, err
	}
	k = api.Key{AccessKeyID: "AKOS" + randomUpper(16), SecretAccessKey: randomSecret(40)}
	b, _ = json.MarshalIndent(struct{ AccessKeyID, SecretAccessKey string }{k.AccessKeyID, k.SecretAccessKey}, "", "  ")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return k, false, err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return k, false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return k, false, err
	}
	return k, true, f.Close()
}

func randomFrom(alphabet string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)] // bias is irrelevant for a 40-char secret over 64 symbols
	}
	return string(b)
}

func randomUpper(n int) string { return randomFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", n) }
func randomSecret(n int) string {
	return randomFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", n)
}

// Run serves until ctx is cancelled, then drains: participants leave, sessions end, the store closes.
// ready, if not nil, receives the bound address once the listener is open.
func (s *Server) Run(ctx context.Context, out io.Writer, ready func(addr net.Addr)) error {
	lim := s.cfg.HTTP()
	ln := s.ln
	if lim.MaxConns > 0 {
		// Beyond the limit, Accept waits: new connections queue in the kernel until one closes, and the
		// timeouts below make sure that an anonymous one does, soon.
		ln = netutil.LimitListener(ln, lim.MaxConns)
	}
	srv := &http.Server{Handler: s.handler,
		ReadHeaderTimeout: lim.ReadHeaderTimeout, ReadTimeout: lim.ReadTimeout, WriteTimeout: lim.WriteTimeout,
		IdleTimeout: lim.IdleTimeout, MaxHeaderBytes: lim.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.banner(out, ln.Addr())
	if ready != nil {
		ready(ln.Addr())
	}

	var wg sync.WaitGroup
	jobs, stopJobs := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); s.retentionLoop(jobs) }()
	s.notify.start(s)
	srv.RegisterOnShutdown(s.notify.stream.Close) // the streams end when Shutdown begins, not after it

	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLSCert != "" {
			errc <- srv.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.log.Info("shutting down")
	stopJobs()
	wg.Wait()
	s.notify.stop()
	drain, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Stop taking requests first, then record everyone as gone, then close the store.
	if err := srv.Shutdown(drain); err != nil {
		s.log.Warn("http shutdown", "err", err)
	}
	if serveErr == nil {
		<-errc
	}
	err := s.close(drain)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return err
}

// close stops in dependency order: the domain records everyone as gone (which closes their connections
// with SERVER_SHUTDOWN), then the transports and the SFU release what is left, then the store closes.
func (s *Server) close(ctx context.Context) error {
	errs := []error{s.domain.Shutdown(ctx)}
	if s.cluster != nil {
		// This node's stages have ended: leaving frees them at once for the other nodes.
		s.cluster.Close()
		errs = append(errs, s.cluster.Leave(ctx))
	}
	if s.events != nil {
		s.events.Close()
	}
	if s.whip != nil {
		s.whip.Close()
	}
	if s.sfu != nil {
		errs = append(errs, s.sfu.Close())
	}
	if s.clients != nil {
		errs = append(errs, s.clients.Close())
	}
	errs = append(errs, s.store.Close(), s.buckets.Close())
	_ = s.ln.Close() // already closed by http.Server.Shutdown when serving
	return errors.Join(errs...)
}

// retentionLoop deletes history older than --retention, at start and hourly.
func (s *Server) retentionLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := s.store.DeleteEndedBefore(ctx, time.Now().Add(-s.cfg.Retention))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("retention", "err", err)
		case n > 0:
			s.log.Info("retention deleted old sessions", "sessions", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) banner(out io.Writer, addr net.Addr) {
	base := s.cfg.BaseURL()
	whip, events := s.cfg.Endpoints()
	fmt.Fprintf(out, "openstage listening on %s (API, WHIP, events); media on udp %s\n", addr, s.sfu.Addr())
	fmt.Fprintf(out, "  public URL %s   whip %s   events %s\n", base, whip, events)
	fmt.Fprintf(out, "  data dir %s   region %s   account %s\n", s.cfg.DataDir, s.cfg.Region, s.cfg.AccountID)
	if s.cfg.Postgres() {
		fmt.Fprintf(out, "  store PostgreSQL %s\n", s.cfg.DatabaseRedacted())
	}
	if s.generated {
		fmt.Fprintf(out, "\nAPI key (generated, kept in %s):\n", filepath.Join(s.cfg.DataDir, credentialsFile))
		fmt.Fprintf(out, "  export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s\n",
			s.RootKey.AccessKeyID, s.RootKey.SecretAccessKey, s.cfg.Region)
		fmt.Fprintf(out, "  aws ivs-realtime create-stage --name demo --endpoint-url %s\n\n", base)
	}
}
