package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/store/teststore"
)

// The test binary doubles as the openstage binary: with OPENSTAGE_TEST_MAIN=1 it runs main() with the
// arguments after "--", so these tests start, kill and restart real server processes.
func TestMain(m *testing.M) {
	if os.Getenv("OPENSTAGE_TEST_MAIN") == "1" {
		if cg := os.Getenv("OPENSTAGE_TEST_CGROUP"); cg != "" { // TestMemoryLimitFromCgroup: join it before main runs
			if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "join cgroup:", err)
				os.Exit(2)
			}
		}
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"openstage"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type proc struct {
	cmd  *exec.Cmd
	url  string
	out  *ivstest.Buffer // the server's stderr
	done chan error
}

var listenRE = regexp.MustCompile(`openstage listening on (\S+)`)

// dsns holds the PostgreSQL DSN of each data dir the tests start servers on, so that a restart on the same
// data dir finds its data again.
var dsns sync.Map

// storeArgs is the --database flag of a server on dataDir: none (the embedded store in the data dir), or
// with OPENSTAGE_TEST_DATABASE set, one fresh PostgreSQL schema per data dir.
func storeArgs(t testing.TB, dataDir string) []string {
	if !teststore.Postgres() {
		return nil
	}
	dsn, ok := dsns.Load(dataDir)
	if !ok {
		dsn, _ = dsns.LoadOrStore(dataDir, teststore.PostgresDSN(t))
	}
	return []string{"--database", dsn.(string)}
}

// start runs `openstage serve` on a free port and waits until it listens.
func start(t testing.TB, dataDir string, extra ...string) *proc {
	t.Helper()
	if !slices.Contains(extra, "--database") {
		extra = append(storeArgs(t, dataDir), extra...)
	}
	args := append([]string{"-test.run=^$", "--", "serve", "--listen", "127.0.0.1:0", "--rtc-udp-port", "0", "--data-dir", dataDir,
		"--access-key-id", "AKOSTEST", "--secret-access-key", "secret"}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "OPENSTAGE_TEST_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: &ivstest.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("server did not start: %s", p.log())
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) log() string { return p.out.String() }

func (p *proc) client() *ivsrealtime.Client {
	return ivsrealtime.New(ivsrealtime.Options{BaseEndpoint: aws.String(p.url), Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKOSTEST", SecretAccessKey: "secret"}, nil
		})})
}

func (p *proc) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("server did not exit")
		return nil
	}
}

// TestKillMidWriteLosesNothingAcknowledged: stages are created as fast as the server takes them while the
// process is SIGKILLed; after a restart every stage whose CreateStage was answered 200 exists.
func TestKillMidWriteLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	c := p.client()
	ctx := context.Background()
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Tags: map[string]string{"k": "v"}})
				if err != nil {
					return // the server died under us
				}
				mu.Lock()
				acked = append(acked, *out.Stage.Arn)
				mu.Unlock()
			}
		}()
	}
	// Kill it once 150 stages are acknowledged, or after 10 s in any case (fewer than 150 is no failure).
	_ = ivstest.Poll(10*time.Second, 5*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 150 {
			return fmt.Errorf("%d stages acknowledged", len(acked))
		}
		return nil
	})
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	close(stop)
	wg.Wait()
	_ = p.wait(t)
	if len(acked) < 20 {
		t.Fatalf("only %d stages acknowledged before the kill", len(acked))
	}

	p2 := start(t, dir)
	c2 := p2.client()
	for _, arn := range acked {
		out, err := c2.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(arn)})
		if err != nil {
			t.Fatalf("acknowledged stage %s lost: %v", arn, err)
		}
		if out.Stage.Tags["k"] != "v" {
			t.Fatalf("acknowledged stage %s lost its tags", arn)
		}
	}
	t.Logf("%d acknowledged stages survived SIGKILL", len(acked))
}

func TestGracefulShutdownAndRestart(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	ctx := context.Background()
	out, err := p.client().CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("kept")})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.log())
	}
	if !strings.Contains(p.log(), "shutting down") {
		t.Fatalf("no drain logged:\n%s", p.log())
	}
	p2 := start(t, dir)
	got, err := p2.client().GetStage(ctx, &ivsrealtime.GetStageInput{Arn: out.Stage.Arn})
	if err != nil || *got.Stage.Name != "kept" {
		t.Fatalf("after restart %+v %v", got, err)
	}
}

func TestGeneratedCredentials(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "serve", "--listen", "127.0.0.1:0", "--rtc-udp-port", "0", "--data-dir", dir)
	cmd.Env = append(os.Environ(), "OPENSTAGE_TEST_MAIN=1")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	var id, secret, url string
	re := regexp.MustCompile(`AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)`)
	for sc.Scan() {
		line := sc.Text()
		if m := listenRE.FindStringSubmatch(line); m != nil {
			url = "http://" + m[1]
		}
		if m := re.FindStringSubmatch(line); m != nil {
			id, secret = m[1], m[2]
		}
		if strings.Contains(line, "aws ivs-realtime create-stage") {
			break
		}
	}
	if id == "" || url == "" {
		t.Fatal("no generated key or address printed")
	}
	fi, err := os.Stat(filepath.Join(dir, "credentials.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", fi, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "credentials.json"))
	var stored struct{ AccessKeyID, SecretAccessKey string }
	if err := json.Unmarshal(b, &stored); err != nil || stored.AccessKeyID != id || stored.SecretAccessKey != secret {
		t.Fatalf("stored credentials %s", b)
	}
	c := ivsrealtime.New(ivsrealtime.Options{BaseEndpoint: aws.String(url), Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, nil
		})})
	if _, err := c.ListStages(context.Background(), &ivsrealtime.ListStagesInput{}); err != nil {
		t.Fatalf("the printed key does not work: %v", err)
	}
}

func TestConfigFileKeysAndPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "openstage.yaml")
	err := os.WriteFile(cfg, []byte(`region: eu-west-1
account-id: "111122223333"
max-stages: 1
keys:
  - accessKeyId: AKOSREADER
    secretAccessKey: reader-secret
    actions: ["ivs:Get*", "ivs:List*"]
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// The environment wins over the file for the account id.
	t.Setenv("OPENSTAGE_ACCOUNT_ID", "444455556666")
	p := start(t, filepath.Join(dir, "data"), "--config", cfg)
	ctx := context.Background()
	c := ivsrealtime.New(ivsrealtime.Options{BaseEndpoint: aws.String(p.url), Region: "eu-west-1", RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKOSTEST", SecretAccessKey: "secret"}, nil
		})})
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(*out.Stage.Arn, "arn:aws:ivs:eu-west-1:444455556666:stage/") {
		t.Fatalf("arn %s", *out.Stage.Arn)
	}
	var q *types.ServiceQuotaExceededException
	if _, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{}); !errors.As(err, &q) {
		t.Fatalf("max-stages from the file: %v", err)
	}
	reader := ivsrealtime.New(ivsrealtime.Options{BaseEndpoint: aws.String(p.url), Region: "eu-west-1", RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKOSREADER", SecretAccessKey: "reader-secret"}, nil
		})})
	if _, err := reader.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: out.Stage.Arn}); err != nil {
		t.Fatal(err)
	}
	var ad *types.AccessDeniedException
	if _, err := reader.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: out.Stage.Arn}); !errors.As(err, &ad) {
		t.Fatalf("reader deleting: %v", err)
	}
}
