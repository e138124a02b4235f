package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
)

// run runs the binary with args (a client command, not a server) and returns its stdout.
func run(t *testing.T, env []string, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "OPENSTAGE_TEST_MAIN=1"), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("openstage %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// TestLoadtestCommand runs `openstage loadtest` as a user would, credentials from the AWS environment
// variables, against a server process: media flows, the report says so in JSON, and the stage is gone
// afterwards.
func TestLoadtestCommand(t *testing.T) {
	p := start(t, t.TempDir())
	out, progress := run(t, []string{"AWS_ACCESS_KEY_ID=AKOSTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_DEFAULT_REGION=us-east-1"},
		"loadtest", "--endpoint", p.url, "--publishers", "2", "--subscribers-per-publisher", "2", "--packet-rate", "100",
		"--duration", "2s", "--warmup", "300ms", "--json")
	var r struct {
		Publishers int   `json:"publishers"`
		Expected   int64 `json:"expectedPackets"`
		Delivered  int64 `json:"deliveredPackets"`
		Join       struct {
			N int `json:"n"`
		} `json:"subscriberJoinMs"`
		JoinRate float64 `json:"subscriberJoinsPerSecond"`
		Server   *struct {
			ForwardedPackets float64 `json:"forwardedPackets"`
			CPUPerPacket     float64 `json:"cpuSecondsPerForwardedPacket"`
		} `json:"server"`
		Memory *struct {
			Subscriptions   int      `json:"subscriptions"`
			RSSAfter        float64  `json:"rssAfterBytes"`
			Goroutines      *float64 `json:"goroutinesPerSubscription"`
			GoroutinesAfter float64  `json:"goroutinesAfter"`
		} `json:"serverMemory"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Publishers != 2 || r.Join.N != 4 || r.Delivered == 0 || r.Expected == 0 || r.Server == nil || r.Server.ForwardedPackets == 0 ||
		r.Server.CPUPerPacket <= 0 || r.JoinRate <= 0 {
		t.Fatalf("report %s", out)
	}
	// Goroutines per subscription are reported, but may be 0 or even below: on the direct send path (the
	// default) a subscription that left pion's connection has none of its own (docs/DESIGN.md §4.12), and
	// the count before the subscribers joined holds the publishers' passing ones.
	if m := r.Memory; m == nil || m.Subscriptions != 4 || m.RSSAfter <= 0 || m.Goroutines == nil || m.GoroutinesAfter < 1 {
		t.Fatalf("server memory in the report %s", out)
	}
	if strings.Contains(progress, "pkt/s") {
		t.Errorf("progress lines with --json: %s", progress)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stages, err := p.client().ListStages(ctx, &ivsrealtime.ListStagesInput{})
	if err != nil || len(stages.Stages) != 0 {
		t.Fatalf("stages left behind: %+v %v", stages, err)
	}

	// Without --json: the text report, and a progress line a second on stderr.
	out, progress = run(t, []string{"AWS_ACCESS_KEY_ID=AKOSTEST", "AWS_SECRET_ACCESS_KEY=secret"},
		"loadtest", "--endpoint", p.url, "--duration", "2s", "--warmup", "0s")
	if !strings.Contains(out, "delivered/expected") || !strings.Contains(out, "per forwarded packet") || !strings.Contains(out, "server memory per subscription") ||
		strings.Count(progress, "pkt/s") < 2 {
		t.Fatalf("text report:\n%s\nprogress:\n%s", out, progress)
	}
}

// TestLoadtestFloodCommand runs `openstage loadtest --flood` at a tiny size against a server process with
// its default limits: the attackers (from 127.0.0.2) are refused 429 once their address has spent its
// failures, the real participants join in both phases, and what the test made (stages, the imported
// public key) is gone afterwards. The numbers mean nothing at this size.
func TestLoadtestFloodCommand(t *testing.T) {
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("127.0.0.2 is not usable here: %v", err)
	} else {
		ln.Close()
	}
	p := start(t, t.TempDir())
	out, _ := run(t, []string{"AWS_ACCESS_KEY_ID=AKOSTEST", "AWS_SECRET_ACCESS_KEY=secret"},
		"loadtest", "--endpoint", p.url, "--flood", "4", "--flood-rate", "300", "--flood-rounds", "1", "--duration", "2s", "--warmup", "200ms", "--json")
	var r struct {
		Attackers int `json:"attackers"`
		Quiet     struct {
			SubscriberJoin struct{ N int } `json:"subscriberJoinMs"`
			Expected       int64           `json:"expectedPackets"`
			GetStage       struct{ N int } `json:"getStageMs"`
			ServerCores    float64         `json:"serverCores"`
		} `json:"quiet"`
		Flooded struct {
			SubscriberJoin struct{ N int } `json:"subscriberJoinMs"`
			Delivered      int64           `json:"deliveredPackets"`
			Attack         *struct {
				Sent     int64            `json:"sent"`
				Outcomes map[string]int64 `json:"outcomes"`
			} `json:"attack"`
		} `json:"flooded"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Attackers != 4 || r.Quiet.SubscriberJoin.N == 0 || r.Quiet.Expected == 0 || r.Quiet.GetStage.N == 0 || r.Quiet.ServerCores <= 0 ||
		r.Flooded.SubscriberJoin.N == 0 || r.Flooded.Delivered == 0 || r.Flooded.Attack == nil || r.Flooded.Attack.Sent == 0 {
		t.Fatalf("report %s", out)
	}
	// Which transport's request first meets the spent budget depends on timing: the address is throttled on both.
	if o := r.Flooded.Attack.Outcomes; o["whip 429"]+o["events 429"] == 0 || o["whip 401"] == 0 || o["error"] != 0 {
		t.Errorf("outcomes %v", o)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings %v", r.Warnings)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stages, err := p.client().ListStages(ctx, &ivsrealtime.ListStagesInput{})
	if err != nil || len(stages.Stages) != 0 {
		t.Fatalf("stages left behind: %+v %v", stages, err)
	}
	keys, err := p.client().ListPublicKeys(ctx, &ivsrealtime.ListPublicKeysInput{})
	if err != nil || len(keys.PublicKeys) != 0 {
		t.Fatalf("public keys left behind: %+v %v", keys, err)
	}
	// The server refused the flood without logging each refusal.
	if n := strings.Count(p.log(), "token refused"); n > 2 {
		t.Errorf("%d refusal lines in the server's log", n)
	}

	// A flood is never sent off this machine.
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "loadtest", "--endpoint", "http://192.0.2.1:8080", "--flood", "1")
	cmd.Env = append(os.Environ(), "OPENSTAGE_TEST_MAIN=1", "AWS_ACCESS_KEY_ID=AKOSTEST", "AWS_SECRET_ACCESS_KEY=secret")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "loopback") {
		t.Errorf("a flood to a non-loopback endpoint: %v\n%s", err, b)
	}
}

// TestBenchCommandTiny runs `openstage bench --tiny`: every part of the benchmark, the forwarding part
// against a server process started from this binary, so that the one command that makes the table keeps
// working.
func TestBenchCommandTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	prof := t.TempDir()
	out, _ := run(t, nil, "bench", "--tiny", "--dir", t.TempDir(), "--profile", prof)
	for _, want := range []string{"## Ceilings", "## API", "## Store reads", "## Durable event ingest", "## Media forwarding", "## Targets", "forward-1.pprof"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if fi, err := os.Stat(prof + "/forward-1.pprof"); err != nil || fi.Size() == 0 {
		t.Errorf("the server's profile: %v %v", fi, err)
	}
}
