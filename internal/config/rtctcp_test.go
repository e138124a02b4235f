package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
)

// TestRTCTCPPort: ICE over TCP is on by default on the UDP port's number, follows --rtc-udp-port, may be
// moved (443 behind a TCP load balancer) from a flag, the environment or the file, and 0 turns it off.
func TestRTCTCPPort(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("rtc-tcp-port: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args    []string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{nil, nil, "127.0.0.1:7881", false},
		{[]string{"--rtc-udp-port", "9000"}, nil, "127.0.0.1:9000", false},
		{[]string{"--rtc-udp-port", "0"}, nil, "127.0.0.1:0", false},
		{[]string{"--listen", "0.0.0.0:8080", "--rtc-tcp-port", "443"}, nil, "0.0.0.0:443", false},
		{nil, map[string]string{"OPENSTAGE_RTC_TCP_PORT": "0"}, "", false},
		{[]string{"--config", file}, nil, "", false},
		{[]string{"--config", file, "--rtc-tcp-port", "7000"}, nil, "127.0.0.1:7000", false},
		{[]string{"--rtc-tcp-port", "-1"}, nil, "", true},
		{[]string{"--rtc-tcp-port", "70000"}, nil, "", true},
		{nil, map[string]string{"OPENSTAGE_RTC_TCP_PORT": "tcp"}, "", true},
	}
	for _, c := range cases {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		cfg := Flags(fs)
		err := fs.Parse(c.args)
		if err == nil {
			err = Resolve(fs, cfg, func(k string) string { return c.env[k] })
		}
		if (err != nil) != c.wantErr {
			t.Errorf("%v %v: err %v, want error %v", c.args, c.env, err, c.wantErr)
			continue
		}
		if err == nil && cfg.TCPAddr() != c.want {
			t.Errorf("%v %v: TCPAddr %q, want %q", c.args, c.env, cfg.TCPAddr(), c.want)
		}
	}
	if (&Config{Listen: "127.0.0.1:0"}).TCPAddr() != "" {
		t.Error("a Config built in code has ICE-TCP on")
	}
}
