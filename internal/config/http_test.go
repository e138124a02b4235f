package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func resolve(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	c := Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return c, Resolve(fs, c, func(k string) string { return env[k] })
}

// TestHTTPLimits: the HTTP listener's limits have their defaults, and come from flags, the environment and
// the config file as every setting does.
func TestHTTPLimits(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("http-idle-timeout: 90s\nhttp-max-header-bytes: 32KiB\nhttp-max-conns: 500\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := resolve(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := HTTPLimits{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10, MaxConns: 10000}
	if got := c.HTTP(); got != want {
		t.Fatalf("defaults %+v, want %+v", got, want)
	}

	c, err = resolve(t, []string{"--config", file, "--http-read-timeout", "5s", "--http-read-header-timeout", "2s"},
		map[string]string{"OPENSTAGE_HTTP_WRITE_TIMEOUT": "1m", "OPENSTAGE_HTTP_MAX_CONNS": "0"})
	if err != nil {
		t.Fatal(err)
	}
	want = HTTPLimits{ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: time.Minute,
		IdleTimeout: 90 * time.Second, MaxHeaderBytes: 32 << 10, MaxConns: 0}
	if got := c.HTTP(); got != want {
		t.Fatalf("set %+v, want %+v", got, want)
	}

	// A Config built in code, without the flags, gets the default timeouts (and no connection limit).
	if got := (&Config{}).HTTP(); got.ReadHeaderTimeout != DefaultHTTPReadHeaderTimeout || got.IdleTimeout != DefaultHTTPIdleTimeout ||
		got.MaxHeaderBytes != DefaultHTTPMaxHeaderBytes || got.MaxConns != 0 {
		t.Fatalf("zero Config: %+v", got)
	}
}

func TestHTTPLimitsRejected(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http-read-timeout", "0s"}, "--http-read-timeout must be positive"},
		{[]string{"--http-idle-timeout", "-1s"}, "--http-idle-timeout must be positive"},
		{[]string{"--http-read-header-timeout", "1m"}, "must not be longer than --http-read-timeout"},
		{[]string{"--http-max-header-bytes", "64"}, "less than 4096"},
		{[]string{"--http-max-conns", "-1"}, "--http-max-conns"},
	} {
		if _, err := resolve(t, tc.args, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.args, err, tc.want)
		}
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	Flags(fs)
	for _, v := range []string{"lots", "1GiB", "-1", "2KB"} {
		if err := fs.Parse([]string{"--http-max-header-bytes", v}); err == nil {
			t.Errorf("--http-max-header-bytes %s accepted", v)
		}
	}
	if d := fs.Lookup("http-max-header-bytes").DefValue; d != "64KiB" {
		t.Errorf("--http-max-header-bytes shows its default as %q", d)
	}
}
