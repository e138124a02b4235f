// Package config reads openstage's settings from flags, the environment (OPENSTAGE_ + the flag name in
// upper case with '_') and a YAML file (--config), in that order of precedence (SPEC §1).
package config

import (
	"errors"
	"fmt"
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
	GeoIPDB         string

	MaxStages              int
	MaxPublicKeys          int
	MaxPublishersPerStage  int
	MaxSubscribersPerStage int

	// Keys are extra API keys from the config file, possibly limited to actions.
	Keys []api.Key
}

// Flags registers the serve flags with their defaults on fs and returns the Config they fill.
func Flags(fs *pflag.FlagSet) *Config {
	c := &Config{}
	fs.String("config", "", "YAML configuration file (flags and environment win over it)")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "HTTP listen address: API, WHIP, events, console, metrics")
	fs.IntVar(&c.RTCUDPPort, "rtc-udp-port", 7881, "UDP port for all WebRTC media (ICE UDP mux); 0 picks a free one")
	fs.StringVar(&c.MediaPolicy, "media-policy", "ivs", "what publishers may send: ivs (H.264 baseline + Opus, 720p, 8.5 Mbps, as IVS) or open (also VP8, VP9, AV1, audio-only)")
	fs.StringVar(&c.GeoIPDB, "geoip-db", "", "MaxMind-format ISP/ASN database for participants' ispName")
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
	fs.DurationVar(&c.Retention, "retention", 30*24*time.Hour, "delete sessions, participants and events older than this")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.IntVar(&c.MaxStages, "max-stages", 1000, "quota: stages")
	fs.IntVar(&c.MaxPublicKeys, "max-public-keys", 3, "quota: imported public keys")
	fs.IntVar(&c.MaxPublishersPerStage, "max-publishers-per-stage", 12, "quota: publishers per stage")
	fs.IntVar(&c.MaxSubscribersPerStage, "max-subscribers-per-stage", 10000, "quota: subscribers (participants) per stage")
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
		return fmt.Errorf("config: --database %s: want nothing (the embedded SQLite store in --data-dir) or a PostgreSQL URL, postgres://user:password@host:5432/database or postgresql://...", redact(c.Database))
	}
	if c.MaxStages < 1 || c.MaxPublicKeys < 0 || c.MaxPublishersPerStage < 1 || c.MaxSubscribersPerStage < 1 {
		return errors.New("config: quotas must be positive")
	}
	if c.MediaPolicy != "ivs" && c.MediaPolicy != "open" {
		return fmt.Errorf("config: --media-policy %q: want ivs or open", c.MediaPolicy)
	}
	if c.RTCUDPPort < 0 || c.RTCUDPPort > 65535 {
		return fmt.Errorf("config: --rtc-udp-port %d is not a port", c.RTCUDPPort)
	}
	if c.SessionEndGrace < 0 || c.Retention <= 0 {
		return errors.New("config: --session-end-grace must be >= 0 and --retention > 0")
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.TrimSuffix(u.Path, "/") != "" {
			return fmt.Errorf("config: --public-url %q must be an http(s) URL without a path", c.PublicURL)
		}
	}
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
