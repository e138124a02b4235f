package main

import (
	"context"
	"encoding/json"
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
		Server *struct {
			ForwardedPackets float64 `json:"forwardedPackets"`
			CPUPerPacket     float64 `json:"cpuSecondsPerForwardedPacket"`
		} `json:"server"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Publishers != 2 || r.Join.N != 4 || r.Delivered == 0 || r.Expected == 0 || r.Server == nil || r.Server.ForwardedPackets == 0 ||
		r.Server.CPUPerPacket <= 0 {
		t.Fatalf("report %s", out)
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
	if !strings.Contains(out, "delivered/expected") || !strings.Contains(out, "per forwarded packet") || strings.Count(progress, "pkt/s") < 2 {
		t.Fatalf("text report:\n%s\nprogress:\n%s", out, progress)
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
