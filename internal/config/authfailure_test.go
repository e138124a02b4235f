package config

import (
	"testing"

	"github.com/spf13/pflag"
)

// TestAuthFailureFlags: the per-address limit of failed participant authentications is on by default (10
// a second, 50 in a row), 0 turns it off, and nonsense is refused.
func TestAuthFailureFlags(t *testing.T) {
	for _, tt := range []struct {
		name  string
		args  []string
		env   map[string]string
		rate  float64
		burst int
		fails bool
	}{
		{"defaults", nil, nil, 10, 50, false},
		{"flags", []string{"--auth-failure-rate", "2.5", "--auth-failure-burst", "5"}, nil, 2.5, 5, false},
		{"off", []string{"--auth-failure-rate", "0"}, nil, 0, 50, false},
		{"environment", nil, map[string]string{"OPENSTAGE_AUTH_FAILURE_RATE": "1", "OPENSTAGE_AUTH_FAILURE_BURST": "0"}, 1, 0, false},
		{"negative rate", []string{"--auth-failure-rate", "-1"}, nil, 0, 0, true},
		{"negative burst", []string{"--auth-failure-burst", "-1"}, nil, 0, 0, true},
		{"NaN", []string{"--auth-failure-rate", "NaN"}, nil, 0, 0, true},
		{"infinite", []string{"--auth-failure-rate", "+Inf"}, nil, 0, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			c := Flags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := Resolve(fs, c, func(k string) string { return tt.env[k] })
			if tt.fails {
				if err == nil {
					t.Fatalf("accepted: rate %v burst %d", c.AuthFailureRate, c.AuthFailureBurst)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.AuthFailureRate != tt.rate || c.AuthFailureBurst != tt.burst {
				t.Fatalf("rate %v burst %d", c.AuthFailureRate, c.AuthFailureBurst)
			}
		})
	}
}
