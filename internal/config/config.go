// Package config reads openstage's settings from flags, the environment (OPENSTAGE_ + the flag name in
// upper case with '_') and a YAML file (--config), in that order of precedence (docs/DESIGN.md §1).
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/openstage/openstage/internal/api"
)

// Config is everything `openstage serve` needs.
type Config struct {
	Listen          string
	RTCUDPPort      int
	DataDir         string
	Region          string
	AccountID       string
	PublicURL       string
	NATIP           string
	Database        string
	AccessKeyID     string
	SecretAccessKey string
	TLSCert         string
	TLSKey          string
	SessionEndGrace time.Duration
	Retention       time.Duration
	LogLevel        string
	LogFormat       string
	MediaPolicy     string
	// MediaSendPath is how subscriptions send media: direct (openstage's own SRTP context and UDP write,
	// and an established subscription on its own endpoint; docs/DESIGN.md §4.11-4.12) or pion (its
	// RTPSender, and pion's connection for as long as the subscription lasts).
	MediaSendPath string
	GeoIPDB       string

	// RTCTCPPort is the ICE-TCP port (docs/DESIGN.md §4.9): SameAsUDP (the flag's default) for the
	// --rtc-udp-port number, 0 for no ICE over TCP (as in a Config built in code).
	RTCTCPPort int

	// AuthFailureRate and AuthFailureBurst bound the failed participant authentications (bad tokens) each
	// source address may make on WHIP and the events socket: past them, its requests are answered 429
	// without being examined (internal/admission). Either at 0 (as in a Config built in code) disables it.
	AuthFailureRate  float64
	AuthFailureBurst int

	MaxStages              int
	MaxPublicKeys          int
	MaxPublishersPerStage  int
	MaxSubscribersPerStage int
	// MaxStorageConfigurations is the storage configuration quota (IVS's: 5); 0 is that default.
	MaxStorageConfigurations int

	// Where the buckets of storage configurations are (docs/DESIGN.md §7): with S3Endpoint "" they are
	// directories <DataDir>/recordings/<bucketName>; otherwise buckets on that S3-compatible server, signed
	// for S3Region with the S3 key or, without one, the standard AWS credentials chain.
	S3Endpoint        string
	S3Region          string
	S3PathStyle       bool
	S3AccessKeyID     string
	S3SecretAccessKey string

	// The HTTP listener's limits (one listener faces the internet with the API, WHIP, events and console).
	// A zero timeout or header size is the Default* value below, so that a Config built in code is as
	// safe as the flags' one (see HTTP).
	HTTPReadHeaderTimeout time.Duration
	HTTPReadTimeout       time.Duration
	HTTPWriteTimeout      time.Duration
	HTTPIdleTimeout       time.Duration
	HTTPMaxHeaderBytes    int
	HTTPMaxConns          int // 0 is unlimited

	// Several nodes on one PostgreSQL (docs/DESIGN.md §6.2). NodeID "" is the id kept in the data dir
	// (made on first start); NodeURL "" is the listen address (see NodeBaseURL).
	NodeID  string
	NodeURL string
	NodeTTL time.Duration

	// Keys are extra API keys from the config file, possibly limited to actions.
	Keys []api.Key

	// Webhooks are the config file's webhook endpoints (docs/DESIGN.md §5.6; webhooks.go), delivered with
	// the WebhookRetry* policy.
	Webhooks           []Webhook
	WebhookMaxAttempts int
	WebhookRetryBase   time.Duration
	WebhookRetryMax    time.Duration
	WebhookTimeout     time.Duration
	// ConsoleKey, from the config file, is a key accepted by GET /events/stream besides the API keys.
	ConsoleKey string
}

// The HTTP limits' defaults, for a listener open to anyone. Each bounds what one anonymous connection can
// hold, without cutting short any legitimate client.
const (
	// DefaultHTTPReadHeaderTimeout: a real client sends its headers (and its TLS handshake, which net/http
	// bounds by the same time) in one round trip or two; 10 s leaves a slow mobile link ample room and
	// frees the connection of a client that trickles its headers (slowloris).
	DefaultHTTPReadHeaderTimeout = 10 * time.Second
	// DefaultHTTPReadTimeout bounds a whole request, body included. The largest bodies are 1 MiB (API) and
	// 256 KiB (WHIP SDP offers): 30 s is 35 KB/s for the largest, and frees a connection stalled in a body.
	DefaultHTTPReadTimeout = 30 * time.Second
	// DefaultHTTPWriteTimeout runs from the end of the request's headers to the end of the response: it
	// covers WHIP's negotiation (at most 15 s) and the slowest API call with room, and frees a connection
	// whose client does not read its answer. The events socket, which lives for hours, is exempt.
	DefaultHTTPWriteTimeout = 30 * time.Second
	// DefaultHTTPIdleTimeout is how long a keep-alive connection may wait for its next request. It is
	// longer than the 90 s after which Go's and the AWS SDKs' HTTP clients drop an idle connection, so the
	// client is the one that closes it and never sends a request into the server's close.
	DefaultHTTPIdleTimeout = 120 * time.Second
	// DefaultHTTPMaxHeaderBytes: a SigV4-signed call's headers are 1-2 KB and a participant token sent as
	// the WebSocket subprotocol a few KB more; net/http's 1 MiB would let each connection buffer 16 times
	// what 64 KiB already allows.
	DefaultHTTPMaxHeaderBytes = 64 << 10
	// DefaultHTTPMaxConns bounds open connections, events sockets included, so a flood of connections
	// cannot exhaust file descriptors or memory (tens of KB each, so a few hundred MB at most); connections
	// beyond it wait in the kernel's accept queue until one closes. A node that serves more concurrent
	// participants (a full stage at --max-subscribers-per-stage 10000 has as many sockets) needs more.
	DefaultHTTPMaxConns = 10000
)

// Flags registers the serve flags with their defaults on fs and returns the Config they fill.
func Flags(fs *pflag.FlagSet) *Config {
	c := &Config{}
	fs.String("config", "", "YAML configuration file (flags and environment win over it)")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "HTTP listen address: API, WHIP, events, console, metrics")
	fs.IntVar(&c.RTCUDPPort, "rtc-udp-port", 7881, "UDP port for all WebRTC media (ICE UDP mux); 0 picks a free one")
	c.RTCTCPPort = SameAsUDP // before Var, which takes it as the default shown
	fs.Var(&tcpPort{&c.RTCTCPPort}, "rtc-tcp-port", "TCP port for ICE over TCP: passive TCP candidates next to the UDP one, for clients whose network blocks UDP (0: off)")
	fs.StringVar(&c.MediaSendPath, "media-send-path", "direct", "how subscriptions send media: direct (openstage seals and writes each packet to the subscriber's ICE pair, and carries an established subscription on its own endpoint) or pion (pion's RTPSender and connection throughout)")
	fs.StringVar(&c.MediaPolicy, "media-policy", "ivs", "what publishers may send: ivs (H.264 baseline + Opus, 720p, 8.5 Mbps, as IVS) or open (also VP8, VP9, AV1, audio-only)")
	fs.StringVar(&c.GeoIPDB, "geoip-db", "", "MaxMind-format ISP/ASN database for participants' ispName")
	fs.Float64Var(&c.AuthFailureRate, "auth-failure-rate", 10, "failed participant authentications (bad tokens) per second a source address may sustain on WHIP and the events socket; past that its requests get 429 without being examined (0: no limit)")
	fs.IntVar(&c.AuthFailureBurst, "auth-failure-burst", 50, "failed participant authentications a source address may make in a row before --auth-failure-rate applies (0: no limit)")
	fs.StringVar(&c.DataDir, "data-dir", "./openstage-data", "directory for the embedded store and the server's keys")
	fs.StringVar(&c.Region, "region", "us-east-1", "region in ARNs and accepted in SigV4 scopes")
	fs.StringVar(&c.AccountID, "account-id", "000000000000", "account id in ARNs")
	fs.StringVar(&c.PublicURL, "public-url", "", "base URL put in tokens and stage endpoints (default http://<listen address>)")
	fs.StringVar(&c.NATIP, "nat-ip", "", "IP address to announce as the ICE host candidate behind NAT")
	fs.StringVar(&c.Database, "database", "", "store: empty for the embedded SQLite store in the data dir, or postgres://user:password@host:5432/db for PostgreSQL (several nodes may share it)")
	fs.StringVar(&c.AccessKeyID, "access-key-id", "", "API access key id (default: generated on first start and kept in the data dir)")
	fs.StringVar(&c.SecretAccessKey, "secret-access-key", "", "API secret access key")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file: serve HTTPS and WSS")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file")
	fs.DurationVar(&c.SessionEndGrace, "session-end-grace", 10*time.Second, "how long a stage session outlives its last participant")
	fs.StringVar(&c.NodeID, "node-id", "", "PostgreSQL nodes: this node's id, lowercase letters, digits and '-' (default: made on first start and kept in the data dir)")
	fs.StringVar(&c.NodeURL, "node-url", "", "PostgreSQL nodes: the URL the other nodes reach this node at, without a path (default http(s)://<listen address>, a wildcard host being this machine's first non-loopback IP)")
	fs.DurationVar(&c.NodeTTL, "node-ttl", 10*time.Second, "PostgreSQL nodes: a node whose heartbeat is older than this is dead, and its stages move")
	fs.DurationVar(&c.Retention, "retention", 30*24*time.Hour, "delete sessions, participants and events older than this")
	fs.IntVar(&c.WebhookMaxAttempts, "webhook-max-attempts", 12, "webhook attempts per notification before it becomes a dead letter")
	fs.DurationVar(&c.WebhookRetryBase, "webhook-retry-base", time.Second, "webhook retry delay after the first failure, doubled per attempt (with jitter)")
	fs.DurationVar(&c.WebhookRetryMax, "webhook-retry-max", 10*time.Minute, "longest webhook retry delay")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", 10*time.Second, "one webhook attempt's timeout")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.IntVar(&c.MaxStages, "max-stages", 1000, "quota: stages")
	fs.IntVar(&c.MaxPublicKeys, "max-public-keys", 3, "quota: imported public keys")
	fs.IntVar(&c.MaxPublishersPerStage, "max-publishers-per-stage", 12, "quota: publishers per stage")
	fs.IntVar(&c.MaxSubscribersPerStage, "max-subscribers-per-stage", 10000, "quota: subscribers (participants) per stage")
	fs.IntVar(&c.MaxStorageConfigurations, "max-storage-configurations", 5, "quota: storage configurations")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", "", "S3-compatible server (AWS S3, MinIO, Ceph, R2, versitygw) holding the buckets of storage configurations (default: each bucket is the directory <data-dir>/recordings/<bucket>)")
	fs.StringVar(&c.S3Region, "s3-region", "", "region S3 requests are signed for (default: the AWS environment's, else us-east-1)")
	fs.BoolVar(&c.S3PathStyle, "s3-path-style", false, "address buckets as <s3-endpoint>/<bucket> rather than <bucket>.<host> (most servers but AWS S3 need it)")
	fs.StringVar(&c.S3AccessKeyID, "s3-access-key-id", "", "S3 access key id (default: the standard AWS credentials chain: environment, shared files, roles)")
	fs.StringVar(&c.S3SecretAccessKey, "s3-secret-access-key", "", "S3 secret access key")
	fs.DurationVar(&c.HTTPReadHeaderTimeout, "http-read-header-timeout", DefaultHTTPReadHeaderTimeout, "HTTP: time to read a request's headers (and the TLS handshake)")
	fs.DurationVar(&c.HTTPReadTimeout, "http-read-timeout", DefaultHTTPReadTimeout, "HTTP: time to read a whole request, body included")
	fs.DurationVar(&c.HTTPWriteTimeout, "http-write-timeout", DefaultHTTPWriteTimeout, "HTTP: time from a request's headers to the end of its response (WHIP negotiation takes up to 15s); the events socket is exempt")
	fs.DurationVar(&c.HTTPIdleTimeout, "http-idle-timeout", DefaultHTTPIdleTimeout, "HTTP: how long a keep-alive connection may wait for its next request")
	c.HTTPMaxHeaderBytes = DefaultHTTPMaxHeaderBytes // before Var, which takes it as the default shown
	fs.Var(&byteSize{&c.HTTPMaxHeaderBytes}, "http-max-header-bytes", "HTTP: largest request header block (bytes, or with KiB/MiB)")
	fs.IntVar(&c.HTTPMaxConns, "http-max-conns", DefaultHTTPMaxConns, "HTTP: most connections open at once, events sockets included; more wait to be accepted (0: unlimited)")
	return c
}

// EnvName is the environment variable of a flag.
func EnvName(flag string) string {
	return "OPENSTAGE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Resolve fills every flag the command line left unset from the environment, then from the config file,
// and checks the result. getenv is os.Getenv outside tests.
func Resolve(fs *pflag.FlagSet, c *Config, getenv func(string) string) error {
	file := map[string]any{}
	path := flagValue(fs, "config", getenv)
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return fmt.Errorf("config: %s: %w", path, err)
		}
		if raw, ok := file["keys"]; ok {
			b, _ := yaml.Marshal(raw)
			if err := yaml.Unmarshal(b, &c.Keys); err != nil {
				return fmt.Errorf("config: %s: keys: %w", path, err)
			}
			delete(file, "keys")
		}
		if err := c.fileWebhooks(file); err != nil {
			return fmt.Errorf("config: %s: %w", path, err)
		}
	}
	for name := range file {
		if fs.Lookup(name) == nil || name == "config" {
			return fmt.Errorf("config: %s: unknown setting %q", path, name)
		}
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("config: %s=%q: %w", EnvName(f.Name), v, err))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := f.Value.Set(scalar(v)); err != nil {
				errs = append(errs, fmt.Errorf("config: %s: %s: %w", path, f.Name, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.check()
}

func flagValue(fs *pflag.FlagSet, name string, getenv func(string) string) string {
	f := fs.Lookup(name)
	if f.Changed {
		return f.Value.String()
	}
	return getenv(EnvName(name))
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	default:
		return fmt.Sprint(x)
	}
}

func (c *Config) check() error {
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return errors.New("config: --access-key-id and --secret-access-key go together")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("config: --tls-cert and --tls-key go together")
	}
	if c.Database != "" && !c.Postgres() {
		return fmt.Errorf("config: --database %s: want nothing (the embedded SQLite store in --data-dir) or a PostgreSQL URL, postgres://user:password@host:5432/database (or postgresql://)", redact(c.Database))
	}
	if c.MaxStages < 1 || c.MaxPublicKeys < 0 || c.MaxPublishersPerStage < 1 || c.MaxSubscribersPerStage < 1 {
		return errors.New("config: quotas must be positive")
	}
	if err := c.checkS3(); err != nil {
		return err
	}
	if c.MediaSendPath != "pion" && c.MediaSendPath != "direct" {
		return fmt.Errorf("config: --media-send-path %q: want direct or pion", c.MediaSendPath)
	}
	if c.MediaPolicy != "ivs" && c.MediaPolicy != "open" {
		return fmt.Errorf("config: --media-policy %q: want ivs or open", c.MediaPolicy)
	}
	if c.RTCUDPPort < 0 || c.RTCUDPPort > 65535 {
		return fmt.Errorf("config: --rtc-udp-port %d is not a port", c.RTCUDPPort)
	}
	if c.RTCTCPPort < SameAsUDP || c.RTCTCPPort > 65535 {
		return fmt.Errorf("config: --rtc-tcp-port %d is not a port", c.RTCTCPPort)
	}
	if !(c.AuthFailureRate >= 0) || math.IsInf(c.AuthFailureRate, 0) || c.AuthFailureBurst < 0 {
		return errors.New("config: --auth-failure-rate and --auth-failure-burst must be finite and >= 0 (0: no limit)")
	}
	if c.SessionEndGrace < 0 || c.Retention <= 0 {
		return errors.New("config: --session-end-grace must be >= 0 and --retention > 0")
	}
	if err := c.checkHTTP(); err != nil {
		return err
	}
	if c.NodeID != "" && !ValidNodeID(c.NodeID) {
		return fmt.Errorf("config: --node-id %q: use 1 to 32 lowercase letters, digits and '-', starting with a letter or digit", c.NodeID)
	}
	if c.NodeTTL < 0 || (c.NodeTTL > 0 && c.NodeTTL < 300*time.Millisecond) {
		return errors.New("config: --node-ttl must be at least 300ms")
	}
	if c.NodeURL != "" {
		u, err := url.Parse(c.NodeURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.TrimSuffix(u.Path, "/") != "" {
			return fmt.Errorf("config: --node-url %q must be an http(s) URL without a path", c.NodeURL)
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.TrimSuffix(u.Path, "/") != "" {
			return fmt.Errorf("config: --public-url %q must be an http(s) URL without a path", c.PublicURL)
		}
	}
	return nil
}

// minHeaderBytes is below what a signed request with a participant token needs; a smaller value is more
// likely a unit mistake ("64" for 64 KiB) than a wish.
const minHeaderBytes = 4 << 10

func (c *Config) checkHTTP() error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"http-read-header-timeout", c.HTTPReadHeaderTimeout}, {"http-read-timeout", c.HTTPReadTimeout},
		{"http-write-timeout", c.HTTPWriteTimeout}, {"http-idle-timeout", c.HTTPIdleTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("config: --%s must be positive: a public listener needs every timeout", d.flag)
		}
	}
	if c.HTTPReadHeaderTimeout > c.HTTPReadTimeout {
		return errors.New("config: --http-read-header-timeout must not be longer than --http-read-timeout, which bounds the whole request")
	}
	if c.HTTPMaxHeaderBytes < minHeaderBytes {
		return fmt.Errorf("config: --http-max-header-bytes %d is less than %d (4KiB)", c.HTTPMaxHeaderBytes, minHeaderBytes)
	}
	if c.HTTPMaxConns < 0 {
		return errors.New("config: --http-max-conns must be >= 0 (0: unlimited)")
	}
	return nil
}

// HTTPLimits are the HTTP listener's limits, with a Config's zero timeouts and header size replaced by
// their defaults. MaxConns 0 is unlimited.
type HTTPLimits struct {
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes, MaxConns                                  int
}

// HTTP returns the listener's limits.
func (c *Config) HTTP() HTTPLimits {
	or := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	l := HTTPLimits{
		ReadHeaderTimeout: or(c.HTTPReadHeaderTimeout, DefaultHTTPReadHeaderTimeout),
		ReadTimeout:       or(c.HTTPReadTimeout, DefaultHTTPReadTimeout),
		WriteTimeout:      or(c.HTTPWriteTimeout, DefaultHTTPWriteTimeout),
		IdleTimeout:       or(c.HTTPIdleTimeout, DefaultHTTPIdleTimeout),
		MaxHeaderBytes:    c.HTTPMaxHeaderBytes,
		MaxConns:          c.HTTPMaxConns,
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = DefaultHTTPMaxHeaderBytes
	}
	return l
}

// SameAsUDP as RTCTCPPort puts ICE-TCP on the --rtc-udp-port number (when that is 0, any free port).
const SameAsUDP = -1

// tcpPort is the --rtc-tcp-port flag: a port, 0 for off, or by default the UDP port's number.
type tcpPort struct{ p *int }

func (t *tcpPort) Type() string { return "int" }

func (t *tcpPort) String() string {
	if t.p == nil || *t.p == SameAsUDP {
		return "the --rtc-udp-port number"
	}
	return strconv.Itoa(*t.p)
}

func (t *tcpPort) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q is not a port (0 turns ICE over TCP off)", s)
	}
	*t.p = n
	return nil
}

// byteSize is a flag of a size in bytes: a plain number, or one with a KiB or MiB suffix.
type byteSize struct{ p *int }

func (b *byteSize) Type() string { return "bytes" }

func (b *byteSize) String() string {
	if b.p == nil {
		return "0"
	}
	switch n := *b.p; {
	case n != 0 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	default:
		return strconv.Itoa(n)
	}
}

func (b *byteSize) Set(s string) error {
	num, mult := strings.TrimSpace(s), 1
	for suffix, m := range map[string]int{"KiB": 1 << 10, "MiB": 1 << 20} {
		if v, ok := strings.CutSuffix(num, suffix); ok {
			num, mult = strings.TrimSpace(v), m
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > (1<<30)/mult {
		return fmt.Errorf("%q is not a size: want bytes, or a number with KiB or MiB", s)
	}
	*b.p = n * mult
	return nil
}

// Postgres reports whether --database selects the PostgreSQL store.
func (c *Config) Postgres() bool {
	d := strings.ToLower(c.Database)
	return strings.HasPrefix(d, "postgres://") || strings.HasPrefix(d, "postgresql://")
}

// DatabaseRedacted is --database without its password, for messages and logs.
func (c *Config) DatabaseRedacted() string { return redact(c.Database) }

// redact gives a DSN without its password, which may be in the user info or in a password parameter. What
// is not a URL is not shown at all: it may be a key=value DSN with a password anywhere in it.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "(not shown: not a URL)"
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// ValidNodeID reports whether s can be a node id: it appears in WHIP resource ids ("<node>.<random>") and in
// the nodes' signature header, so it holds no '.', ';' or '='.
func ValidNodeID(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// NodeBaseURL is where the other nodes reach this one: --node-url, else the listen address, a wildcard host
// being this machine's first non-loopback IPv4 address (127.0.0.1 if it has none).
func (c *Config) NodeBaseURL() string {
	if c.NodeURL != "" {
		return strings.TrimSuffix(c.NodeURL, "/")
	}
	scheme := "http"
	if c.TLSCert != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return scheme + "://" + c.Listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = firstIPv4()
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

func firstIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// BaseURL is the public URL, defaulting to the listen address (a wildcard host becomes 127.0.0.1).
func (c *Config) BaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimSuffix(c.PublicURL, "/")
	}
	scheme := "http"
	if c.TLSCert != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return scheme + "://" + c.Listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// UDPAddr is where media is received: the listen host (all interfaces for a wildcard) and --rtc-udp-port.
func (c *Config) UDPAddr() string {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		host = ""
	}
	return net.JoinHostPort(host, strconv.Itoa(c.RTCUDPPort))
}

// TCPAddr is where ICE over TCP is accepted, like UDPAddr; "" when --rtc-tcp-port is 0 (off).
func (c *Config) TCPAddr() string {
	port := c.RTCTCPPort
	switch port {
	case 0:
		return ""
	case SameAsUDP:
		port = c.RTCUDPPort
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		host = ""
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Loopback reports whether the server listens on a loopback address only, where clients are local and
// ICE must offer loopback candidates.
func (c *Config) Loopback() bool {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// Endpoints are the stage endpoints derived from the public URL: WHIP at /whip, the events socket at /events.
func (c *Config) Endpoints() (whip, events string) {
	base := c.BaseURL()
	whip = base + "/whip"
	events = "ws" + strings.TrimPrefix(base, "http") + "/events"
	return whip, events
}

// checkS3 checks the --s3-* flags: an endpoint URL, and the rest only with one.
func (c *Config) checkS3() error {
	if c.MaxStorageConfigurations < 0 {
		return errors.New("config: --max-storage-configurations must be positive")
	}
	if (c.S3AccessKeyID == "") != (c.S3SecretAccessKey == "") {
		return errors.New("config: --s3-access-key-id and --s3-secret-access-key go together")
	}
	if c.S3Endpoint == "" {
		if c.S3Region != "" || c.S3PathStyle || c.S3AccessKeyID != "" {
			return errors.New("config: --s3-region, --s3-path-style and the S3 key need --s3-endpoint (without it, buckets are directories of the data dir)")
		}
		return nil
	}
	u, err := url.Parse(c.S3Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("config: --s3-endpoint %q must be an http(s) URL", c.S3Endpoint)
	}
	return nil
}
