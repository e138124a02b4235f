package sigv4

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEndToEndAWSCLI runs the AWS CLI (botocore's signer) against the verifier. Skipped when `aws` is
// not on PATH.
func TestEndToEndAWSCLI(t *testing.T) {
	awsPath, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("aws CLI not on PATH")
	}
	if testing.Short() {
		t.Skip("starts Python processes")
	}
	v := &Verifier{
		Keys:    keys{testAKID: testSecret},
		Service: "ivs",
		Regions: []string{"us-east-1"},
	}
	srv := newAuthServer(t, v)

	// An environment with nothing of the user's AWS configuration: empty config files, no profile,
	// no endpoint overrides, no instance metadata lookups.
	dir := t.TempDir()
	emptyConfig := filepath.Join(dir, "config")
	emptyCreds := filepath.Join(dir, "credentials")
	for _, f := range []string{emptyConfig, emptyCreds} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	baseEnv := []string{}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") {
			continue
		}
		baseEnv = append(baseEnv, kv)
	}
	baseEnv = append(baseEnv,
		"AWS_CONFIG_FILE="+emptyConfig,
		"AWS_SHARED_CREDENTIALS_FILE="+emptyCreds,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=1",
		"AWS_RETRY_MODE=standard",
		"AWS_PAGER=",
	)

	run := func(t *testing.T, secret string, args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		full := append([]string{"ivs-realtime"}, args...)
		full = append(full, "--endpoint-url", srv.URL, "--output", "json")
		cmd := exec.CommandContext(ctx, awsPath, full...)
		cmd.Env = append(append([]string(nil), baseEnv...),
			"AWS_ACCESS_KEY_ID="+testAKID,
			"AWS_SECRET_ACCESS_KEY="+secret,
		)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("aws %v: timed out", args)
		}
		return string(out), err
	}

	calls := []struct {
		name       string
		args       []string
		uriPrefix  string
		wantMethod string
		wantURI    string // canonical URI line
		wantQuery  string // canonical query line
	}{
		{"list-stages", []string{"list-stages"}, "/ListStages", "POST", "/ListStages", ""},
		{"create-stage", []string{"create-stage", "--name", "my stage"}, "/CreateStage", "POST", "/CreateStage", ""},
		{"list-tags-for-resource", []string{"list-tags-for-resource", "--resource-arn", testARN},
			"/tags/" + encodedARN, "GET", "/tags/" + doubleEncodedARN, ""},
		{"tag-resource", []string{"tag-resource", "--resource-arn", testARN, "--tags", "team=video streaming,env=ci"},
			"/tags/" + encodedARN, "POST", "/tags/" + doubleEncodedARN, ""},
		{"untag-resource", []string{"untag-resource", "--resource-arn", testARN, "--tag-keys", "team", "env", "a b"},
			"/tags/" + encodedARN + "?tagKeys=", "DELETE", "/tags/" + doubleEncodedARN, "tagKeys=a%20b&tagKeys=env&tagKeys=team"},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			before := len(srv.requests())
			out, err := run(t, testSecret, c.args...)
			if err != nil {
				t.Fatalf("aws %v: %v\n%s", c.args, err, out)
			}
			reqs := srv.requests()[before:]
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests", len(reqs))
			}
			r := reqs[0]
			if r.err != nil || r.akid != testAKID {
				t.Fatalf("verifier: akid %q, err %v", r.akid, r.err)
			}
			if r.method != c.wantMethod || !strings.HasPrefix(r.requestURI, c.uriPrefix) {
				t.Fatalf("request %s %s, want %s %s...", r.method, r.requestURI, c.wantMethod, c.uriPrefix)
			}
			if got := canonicalLine(r.canonical, 1); got != c.wantURI {
				t.Errorf("canonical URI %q, want %q", got, c.wantURI)
			}
			if got := canonicalLine(r.canonical, 2); got != c.wantQuery {
				t.Errorf("canonical query %q, want %q", got, c.wantQuery)
			}
			t.Logf("%s %s\ncanonical request:\n%s", r.method, r.requestURI, r.canonical)
		})
	}

	t.Run("wrong secret", func(t *testing.T) {
		out, err := run(t, "wrong-secret", "list-tags-for-resource", "--resource-arn", testARN)
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			t.Fatalf("want a failing exit, got %v\n%s", err, out)
		}
		if !strings.Contains(out, string(InvalidSignature)) {
			t.Fatalf("output does not name %s:\n%s", InvalidSignature, out)
		}
	})
}
