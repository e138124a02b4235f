package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// memoryCgroup makes a child of this process's memory cgroup limited to limit bytes (cgroup v1's memory
// controller, or v2 where it is enabled) and returns its directory, removed when the test ends. It skips
// the test where this process cannot (not Linux, not root, no memory controller).
func memoryCgroup(t *testing.T, limit int64) string {
	t.Helper()
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		t.Skipf("no cgroups here: %v", err)
	}
	defer f.Close()
	var dir, limitFile string
	sc := bufio.NewScanner(f)
	for sc.Scan() { // "hierarchy-ID:controller-list:path"
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case strings.Contains(","+parts[1]+",", ",memory,"):
			dir, limitFile = filepath.Join("/sys/fs/cgroup/memory", parts[2]), "memory.limit_in_bytes"
		case parts[0] == "0" && dir == "":
			if c, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(string(c), "memory") {
				dir, limitFile = filepath.Join("/sys/fs/cgroup", parts[2]), "memory.max"
			}
		}
	}
	if dir == "" {
		t.Skip("no memory cgroup controller")
	}
	cg := filepath.Join(dir, fmt.Sprintf("openstage-test-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Skipf("cannot make a memory cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(cg); err != nil {
			t.Errorf("remove the test's cgroup: %v", err)
		}
	})
	if err := os.WriteFile(filepath.Join(cg, limitFile), []byte(fmt.Sprint(limit)), 0o644); err != nil {
		t.Skipf("cannot limit the test's cgroup: %v", err)
	}
	return cg
}

// TestMemoryLimitFromCgroup: a server in a container with a memory limit gives the Go runtime a soft limit
// of 90% of it, as its go_gc_gomemlimit_bytes metric shows; GOMEMLIMIT, when set, wins.
func TestMemoryLimitFromCgroup(t *testing.T) {
	const limit = 512 << 20
	cg := memoryCgroup(t, limit)
	for _, tc := range []struct {
		name, env string
		want      float64
	}{
		{"from the cgroup", "", math.Floor(0.9 * limit)},
		{"GOMEMLIMIT set", "300MiB", 300 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OPENSTAGE_TEST_CGROUP", cg)
			if tc.env != "" {
				t.Setenv("GOMEMLIMIT", tc.env)
			}
			p := start(t, t.TempDir())
			if got := metric(t, p, "go_gc_gomemlimit_bytes"); got != tc.want {
				t.Errorf("go_gc_gomemlimit_bytes = %.0f, want %.0f", got, tc.want)
			}
			if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			if err := p.wait(t); err != nil {
				t.Fatalf("server exit: %v\n%s", err, p.log())
			}
		})
	}
}
