// Package buckettest runs a real S3 server for tests: versitygw, whose posix backend serves a directory
// over the S3 protocol (scripts/ci-deps-s3.sh installs it).
package buckettest

import (
	"bytes"
	"go/build"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// S3Server is a running versitygw.
type S3Server struct {
	URL       string // http://127.0.0.1:<port>
	Root      string // the directory it serves: each subdirectory is a bucket
	AccessKey string
	SecretKey string
}

// MakeBucket makes a bucket as an operator would, outside openstage: the posix backend's buckets are the
// directories of its root.
func (s S3Server) MakeBucket(t testing.TB, name string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(s.Root, name), 0o755); err != nil {
		t.Fatal(err)
	}
}

// versityGWPath finds versitygw: $VERSITYGW, the PATH, or where scripts/ci-deps-s3.sh puts it (go install's
// $GOPATH/bin).
func versityGWPath() string {
	if p := os.Getenv("VERSITYGW"); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	p := filepath.Join(build.Default.GOPATH, "bin", "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// StartS3 runs versitygw's posix backend on a temporary directory at a loopback port for the test's
// duration. Without the binary the test skips, except under CI=true, where scripts/ci-deps-s3.sh must have
// installed it.
func StartS3(t testing.TB) S3Server {
	t.Helper()
	bin := versityGWPath()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("versitygw not found (CI=true: scripts/ci-deps-s3.sh should have installed it)")
		}
		t.Skip("versitygw not found; run scripts/ci-deps-s3.sh to install it")
	}
	s := S3Server{Root: t.TempDir(), AccessKey: "AKOSTESTS3ROOT00", SecretKey: "s3-test-secret"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // versitygw takes an address, not a listener: the port is free again for it
	cmd := exec.Command(bin, "--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey, "--quiet", "posix", s.Root)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	s.URL = "http://" + addr
	for deadline := time.Now().Add(15 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return s
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("versitygw exited: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s within 15s\n%s", addr, out.String())
		}
	}
}
