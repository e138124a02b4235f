package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Credentials of the servers the benchmarks start.
const (
	benchKeyID  = "AKOSBENCH"
	benchSecret = "bench-secret"
	benchRegion = "us-east-1"
)

// Launcher starts an openstage server process on a free loopback port with its data in dataDir, writing a
// CPU profile to cpuprofile when it is not "". stop ends it (SIGTERM) and waits, so the profile is
// complete when stop returns.
type Launcher func(ctx context.Context, dataDir, cpuprofile string) (url string, stop func() error, err error)

var listenRE = regexp.MustCompile(`openstage listening on (\S+)`)

// ExecServer launches bin with args followed by the serve flags; `openstage bench server` takes the
// flags of serve and --cpuprofile.
func ExecServer(bin string, args ...string) Launcher {
	return func(ctx context.Context, dataDir, cpuprofile string) (string, func() error, error) {
		a := append(append([]string(nil), args...), "--listen", "127.0.0.1:0", "--rtc-udp-port", "0", "--data-dir", dataDir,
			"--access-key-id", benchKeyID, "--secret-access-key", benchSecret, "--region", benchRegion,
			"--log-level", "warn", "--max-stages", "100000")
		if cpuprofile != "" {
			a = append(a, "--cpuprofile", cpuprofile)
		}
		cmd := exec.Command(bin, a...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return "", nil, err
		}
		var stderr strings.Builder
		var mu sync.Mutex
		cmd.Stderr = writerFunc(func(b []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			if stderr.Len() < 64<<10 {
				stderr.Write(b)
			}
			return len(b), nil
		})
		if err := cmd.Start(); err != nil {
			return "", nil, err
		}
		addr := make(chan string, 1)
		exited := make(chan error, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
					select {
					case addr <- m[1]:
					default:
					}
				}
			}
			exited <- cmd.Wait()
		}()
		stop := func() error {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				return err
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				return fmt.Errorf("bench: the server did not stop within 30 s")
			}
		}
		select {
		case a := <-addr:
			return "http://" + a, stop, nil
		case err := <-exited:
			mu.Lock()
			defer mu.Unlock()
			return "", nil, fmt.Errorf("bench: the server exited: %v\n%s", err, stderr.String())
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			return "", nil, fmt.Errorf("bench: the server did not start")
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return "", nil, ctx.Err()
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

var _ io.Writer = writerFunc(nil)

// scratchDir makes a temporary directory under dir (default os.TempDir()). The report names its
// filesystem: fsyncs on a tmpfs cost nothing.
func scratchDir(dir string) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(dir, "openstage-bench-")
}

// InProcess runs the server in this process (no profile): for tests, where the server's CPU figures
// then include the load generator's.
func InProcess() Launcher {
	return func(ctx context.Context, dataDir, _ string) (string, func() error, error) {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return "", nil, err
		}
		addr, stop, err := apiServer(ctx, dataDir)
		if err != nil {
			return "", nil, err
		}
		return "http://" + addr, func() error { stop(); return nil }, nil
	}
}
