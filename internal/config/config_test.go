package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestResolvePrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("region: eu-west-1\naccount-id: \"111111111111\"\nsession-end-grace: 3s\nmax-stages: 7\nlisten: 0.0.0.0:9000\nkeys:\n  - accessKeyId: A\n    secretAccessKey: B\n    actions: [\"ivs:Get*\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{"defaults", nil, nil, func(t *testing.T, c *Config) {
			if c.Listen != "127.0.0.1:8080" || c.Region != "us-east-1" || c.SessionEndGrace != 10*time.Second || c.MaxStages != 1000 {
				t.Fatalf("%+v", c)
			}
			if w, e := c.Endpoints(); w != "http://127.0.0.1:8080/whip" || e != "ws://127.0.0.1:8080/events" {
				t.Fatalf("endpoints %s %s", w, e)
			}
		}},
		{"file", []string{"--config", file}, nil, func(t *testing.T, c *Config) {
			if c.Region != "eu-west-1" || c.AccountID != "111111111111" || c.SessionEndGrace != 3*time.Second || c.MaxStages != 7 {
				t.Fatalf("%+v", c)
			}
			if len(c.Keys) != 1 || c.Keys[0].AccessKeyID != "A" || c.Keys[0].Actions[0] != "ivs:Get*" {
				t.Fatalf("keys %+v", c.Keys)
			}
			if c.BaseURL() != "http://127.0.0.1:9000" {
				t.Fatalf("wildcard listen gives %s", c.BaseURL())
			}
		}},
		{"env over file", []string{"--config", file}, map[string]string{"OPENSTAGE_REGION": "ap-south-1"}, func(t *testing.T, c *Config) {
			if c.Region != "ap-south-1" || c.AccountID != "111111111111" {
				t.Fatalf("%+v", c)
			}
		}},
		{"flag over env", []string{"--region", "sa-east-1"}, map[string]string{"OPENSTAGE_REGION": "ap-south-1", "OPENSTAGE_CONFIG": file}, func(t *testing.T, c *Config) {
			if c.Region != "sa-east-1" || c.MaxStages != 7 {
				t.Fatalf("%+v", c)
			}
		}},
		{"postgres", nil, map[string]string{"OPENSTAGE_DATABASE": "PostgreSQL://u:pw@db:5432/openstage?sslmode=disable&password=pw"}, func(t *testing.T, c *Config) {
			if !c.Postgres() {
				t.Fatalf("--database %s does not select PostgreSQL", c.DatabaseRedacted())
			}
			if r := c.DatabaseRedacted(); strings.Contains(r, "pw") || !strings.Contains(r, "db:5432/openstage") {
				t.Fatalf("redacted DSN %s", r)
			}
		}},
		{"embedded", nil, nil, func(t *testing.T, c *Config) {
			if c.Postgres() || c.Database != "" {
				t.Fatalf("the default store is not the embedded one: %q", c.Database)
			}
		}},
		{"public url", []string{"--public-url", "https://stage.example.com/"}, nil, func(t *testing.T, c *Config) {
			if w, e := c.Endpoints(); w != "https://stage.example.com/whip" || e != "wss://stage.example.com/events" {
				t.Fatalf("endpoints %s %s", w, e)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			c := Flags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if err := Resolve(fs, c, func(k string) string { return tc.env[k] }); err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestResolveRejects(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("regoin: x\n"), 0o600)
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--access-key-id", "x"}, nil, "go together"},
		{[]string{"--public-url", "ftp://x"}, nil, "public-url"},
		{[]string{"--public-url", "http://x/path"}, nil, "public-url"},
		{[]string{"--config", bad}, nil, "unknown setting"},
		{nil, map[string]string{"OPENSTAGE_MAX_STAGES": "lots"}, "OPENSTAGE_MAX_STAGES"},
		{[]string{"--max-stages", "0"}, nil, "quotas"},
		{[]string{"--database", "mysql://u:pw@h/db"}, nil, "postgres://"},
		{[]string{"--database", "host=h password=pw"}, nil, "postgresql://"},
		{[]string{"--database", "h:5432/db?password=pw"}, nil, "postgresql://"},
		{nil, map[string]string{"OPENSTAGE_DATABASE": "sqlite://u:pw@h/db?password=pw&sslpassword=pw"}, "want nothing"},
	}
	for _, tc := range cases {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		c := Flags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := Resolve(fs, c, func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v %v: got %v, want %q", tc.args, tc.env, err, tc.want)
		}
		if strings.Contains(err.Error(), "pw") {
			t.Fatalf("password in error: %v", err)
		}
	}
}
