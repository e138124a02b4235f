package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/peer"
)

// These tests drive the real binary with clients that are not ours: aiortc (Python, Debian's
// python3-aiortc) over WHIP and subscribe, and the AWS SDK for JavaScript v3. They are what "third-party
// clients work unchanged" means in practice. scripts/ci-deps-clients.sh installs both.

// systemPython is Debian's interpreter: python3-aiortc installs for it, not for a pyenv or venv python
// that may come first on the PATH.
const systemPython = "/usr/bin/python3"

// needClient skips a test whose third-party client is missing on a developer's machine, and fails it in
// CI, where scripts/ci-deps-clients.sh must have installed it.
func needClient(t *testing.T, missing string) {
	t.Helper()
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: scripts/ci-deps-clients.sh should have installed it)", missing)
	}
	t.Skipf("%s; run scripts/ci-deps-clients.sh to install it", missing)
}

var aiortcCheck = sync.OnceValue(func() string {
	out, err := exec.Command(systemPython, "-c", "import aiortc").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s cannot import aiortc (%v: %s)", systemPython, err, bytes.TrimSpace(out))
	}
	return ""
})

func clientScript(t *testing.T, parts ...string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(append([]string{"..", "..", "scripts", "clients"}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// script is a client program running as a subprocess, its output collected.
type script struct {
	name string
	cmd  *exec.Cmd
	out  ivstest.Buffer
	done chan error
}

// runScript starts a client; it is killed when ctx ends or the test does.
func runScript(ctx context.Context, t *testing.T, name string, env []string, prog string, args ...string) *script {
	t.Helper()
	s := &script{name: name, cmd: exec.CommandContext(ctx, prog, args...), done: make(chan error, 1)}
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
		s.done <- nil // a later wait() must not block
	})
	return s
}

// wait waits for the client to exit and fails the test, with its output, unless it exited 0.
func (s *script) wait(t *testing.T) {
	t.Helper()
	err := <-s.done
	s.done <- err
	if err != nil {
		t.Fatalf("%s failed: %v\n%s", s.name, err, s.out.String())
	}
	t.Logf("%s output:\n%s", s.name, s.out.String())
}

// pythonEnv keeps the scripts from writing __pycache__ into the source tree.
var pythonEnv = []string{"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"}

// waitPublishing polls the API until participant pid publishes in the stage's active session, and returns
// that session's id.
func waitPublishing(ctx context.Context, t *testing.T, c *ivsrealtime.Client, arn *string, pid string, s *script) string {
	t.Helper()
	var session string
	ivstest.Eventually(t, ivstest.Until(ctx, time.Minute), 50*time.Millisecond, func() error {
		st, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
		if err != nil {
			t.Fatal(err)
		}
		if sid := st.Stage.ActiveSessionId; sid != nil {
			p, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: arn, SessionId: sid, ParticipantId: &pid})
			var nf *types.ResourceNotFoundException
			if err != nil && !errors.As(err, &nf) {
				t.Fatal(err)
			}
			if err == nil && p.Participant.Published {
				session = *sid
				return nil
			}
		}
		out := ""
		if s != nil {
			out = s.out.String()
		}
		return fmt.Errorf("participant %s never published\n%s", pid, out)
	})
	return session
}

// waitDisconnected polls until the participant is DISCONNECTED and returns it.
func waitDisconnected(ctx context.Context, t *testing.T, c *ivsrealtime.Client, arn *string, session, pid string) *types.Participant {
	t.Helper()
	var got *types.Participant
	ivstest.Eventually(t, ivstest.Until(ctx, time.Minute), 50*time.Millisecond, func() error {
		p, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: arn, SessionId: &session, ParticipantId: &pid})
		if err != nil {
			t.Fatal(err)
		}
		if p.Participant.State != types.ParticipantStateDisconnected {
			return fmt.Errorf("participant %s still %s", pid, p.Participant.State)
		}
		got = p.Participant
		return nil
	})
	return got
}

// clientAttribute is the model's ParticipantClientAttribute: GetParticipant must never return anything else.
var clientAttribute = regexp.MustCompile(`^[a-zA-Z0-9-_.,:;\s]{0,128}$`)

// TestAiortcPublish: two aiortc publishers, one at the token's whip_url and one at the bare host root (which
// answers 307, as IVS's global endpoint does, and the script re-POSTs with its Authorization header), each
// send H.264 and Opus; a pion subscriber receives both; the scripts DELETE their sessions and exit; the AWS
// SDK then reads what the server recorded.
func TestAiortcPublish(t *testing.T) {
	needClient(t, aiortcCheck())
	p := start(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.client()
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("aiortc"),
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{
			{UserId: aws.String("aiortc-direct"), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish}},
			{UserId: aws.String("aiortc-root"), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish}},
			{UserId: aws.String("viewer"), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	arn, whipURL := out.Stage.Arn, *out.Stage.Endpoints.Whip
	pubs := []struct {
		tok types.ParticipantToken
		url string
	}{{out.ParticipantTokens[0], whipURL}, {out.ParticipantTokens[1], p.url + "/"}}
	viewer := out.ParticipantTokens[2]

	began := time.Now()
	var scripts []*script
	for _, pub := range pubs {
		scripts = append(scripts, runScript(ctx, t, "aiortc_publish.py "+*pub.tok.UserId, pythonEnv, systemPython,
			clientScript(t, "aiortc_publish.py"), pub.url, *pub.tok.Token, "--seconds", "6"))
	}
	var session string
	for i, pub := range pubs {
		session = waitPublishing(ctx, t, c, arn, *pub.tok.ParticipantId, scripts[i])
	}
	t.Logf("both aiortc publishers publishing after %v", time.Since(began).Round(time.Millisecond))

	// pion subscribes to each while the scripts keep sending.
	for i, pub := range pubs {
		sub, err := peer.Subscribe(ctx, peer.Options{WHIPURL: whipURL, Token: *viewer.Token}, *pub.tok.ParticipantId)
		if err != nil {
			t.Fatalf("subscribe to %s: %v", *pub.tok.UserId, err)
		}
		ivstest.Eventually(t, ivstest.Until(ctx, time.Minute), 20*time.Millisecond, func() error {
			if sub.VideoPackets.Load() < 30 || sub.AudioPackets.Load() < 25 || sub.Keyframes.Load() == 0 {
				return fmt.Errorf("media from %s did not flow: video %d audio %d keyframes %d\n%s", *pub.tok.UserId,
					sub.VideoPackets.Load(), sub.AudioPackets.Load(), sub.Keyframes.Load(), scripts[i].out.String())
			}
			return nil
		})
		if codec, _ := sub.VideoCodec.Load().(string); !strings.EqualFold(codec, "video/H264") {
			t.Fatalf("video from %s is %q, not H.264", *pub.tok.UserId, codec)
		}
		t.Logf("from %s: %d video packets (%d with an IDR), %d audio packets", *pub.tok.UserId,
			sub.VideoPackets.Load(), sub.Keyframes.Load(), sub.AudioPackets.Load())
		sub.Close()
	}

	for _, s := range scripts {
		s.wait(t)
	}
	if !strings.Contains(scripts[1].out.String(), "-> 307, following to "+whipURL) {
		t.Fatalf("the root URL's publisher did not follow a 307 to %s:\n%s", whipURL, scripts[1].out.String())
	}
	for i, pub := range pubs {
		if !strings.Contains(scripts[i].out.String(), "-> 200") {
			t.Fatalf("%s did not DELETE its session:\n%s", *pub.tok.UserId, scripts[i].out.String())
		}
		pid := *pub.tok.ParticipantId
		part := waitDisconnected(ctx, t, c, arn, session, pid)
		if !part.Published || part.Protocol != types.ParticipantProtocolWhip || aws.ToString(part.UserId) != *pub.tok.UserId {
			t.Fatalf("%s: %+v", *pub.tok.UserId, part)
		}
		// The scripts' HTTP client is the standard library's, which User-Agent parsers know as Python-urllib.
		if aws.ToString(part.BrowserName) != "Python-urllib" || !strings.HasPrefix(aws.ToString(part.BrowserVersion), "3.") {
			t.Fatalf("%s: browser %q %q", *pub.tok.UserId, aws.ToString(part.BrowserName), aws.ToString(part.BrowserVersion))
		}
		for _, v := range []*string{part.BrowserName, part.BrowserVersion, part.OsName, part.OsVersion, part.SdkVersion, part.IspName} {
			if !clientAttribute.MatchString(aws.ToString(v)) {
				t.Fatalf("%s: client attribute %q is outside the model", *pub.tok.UserId, aws.ToString(v))
			}
		}
		want := []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"}
		if got := ivstest.Events(ctx, t, c, arn, session, pid); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("events of %s\n got %q\nwant %q", *pub.tok.UserId, got, want)
		}
	}
}

var subscribeResult = regexp.MustCompile(`aiortc-subscribe: result video_frames=(\d+) audio_frames=(\d+) video_size=(\d+x\d+)`)

// TestAiortcSubscribe: a pion publisher sends H.264 and Opus; aiortc subscribes at
// <whip_url>/subscribe/<publisherId> with a recvonly offer and decodes both, for 12 s on the direct send
// path (the default): the subscription leaves pion's connection for openstage's endpoint (docs/DESIGN.md
// §4.12) and outlives the 8 s after which it ends a subscriber whose consent stopped, so aiortc's consent
// checks and reports are understood.
func TestAiortcSubscribe(t *testing.T) { aiortcSubscribe(t, "direct", 12) }

// TestAiortcSubscribePionSendPath is the same with --media-send-path pion, for 3 s.
func TestAiortcSubscribePionSendPath(t *testing.T) { aiortcSubscribe(t, "pion", 3) }

func aiortcSubscribe(t *testing.T, sendPath string, seconds int) {
	needClient(t, aiortcCheck())
	p := start(t, t.TempDir(), "--media-send-path", sendPath)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.client()
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("aiortc-sub"),
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{
			{UserId: aws.String("host")},
			{UserId: aws.String("aiortc-viewer"), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	arn, whipURL := out.Stage.Arn, *out.Stage.Endpoints.Whip
	host, viewer := out.ParticipantTokens[0], out.ParticipantTokens[1]
	pub, err := peer.Publish(ctx, peer.Options{WHIPURL: whipURL, Token: *host.Token})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	session := waitPublishing(ctx, t, c, arn, *host.ParticipantId, nil)

	s := runScript(ctx, t, "aiortc_subscribe.py", pythonEnv, systemPython, clientScript(t, "aiortc_subscribe.py"),
		whipURL, *viewer.Token, *host.ParticipantId, "--seconds", strconv.Itoa(seconds))
	if sendPath == "direct" {
		// The subscription leaves pion's connection within seconds of connecting; then it stays alive on
		// what aiortc sends for the rest of the run (checked by the frames below).
		ivstest.Eventually(t, 15*time.Second, 200*time.Millisecond, func() error {
			if n := ivstest.Metric(t, p.url, "openstage_media_subscriptions_detached_total"); n != 1 {
				return fmt.Errorf("%v subscriptions detached, want 1", n)
			}
			return nil
		})
	}
	s.wait(t)
	m := subscribeResult.FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("no result line:\n%s", s.out.String())
	}
	video, _ := strconv.Atoi(m[1])
	audio, _ := strconv.Atoi(m[2])
	// The pion publisher loops a 320x180 H.264 file at 15 fps and Opus in 20 ms frames; after waiting for
	// the first IDR (at most a second) aiortc must have decoded a good part of the run's seconds of it.
	if video < 10*seconds/3 || audio < 50*seconds/3 || m[3] != "320x180" {
		t.Fatalf("aiortc decoded video %d (%s), audio %d in %d s\n%s", video, m[3], audio, seconds, s.out.String())
	}

	part := waitDisconnected(ctx, t, c, arn, session, *viewer.ParticipantId)
	if part.Published || part.Protocol != types.ParticipantProtocolWhip {
		t.Fatalf("viewer %+v", part)
	}
	want := []string{"JOINED", "SUBSCRIBE_STARTED>" + *host.ParticipantId, "SUBSCRIBE_STOPPED>" + *host.ParticipantId, "LEFT"}
	if got := ivstest.Events(ctx, t, c, arn, session, *viewer.ParticipantId); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events of the aiortc viewer\n got %q\nwant %q", got, want)
	}
}

// jsDir is where the AWS SDK for JavaScript session lives, with its package-lock.json.
func jsDir(t *testing.T) string { return clientScript(t, "js") }

// jsSDKReady finds node and the SDK, running `npm ci` once if node_modules is missing; it returns why
// not, or "".
func jsSDKReady(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		return "node is not on the PATH"
	}
	dir := jsDir(t)
	sdk := filepath.Join(dir, "node_modules", "@aws-sdk", "client-ivs-realtime", "package.json")
	if _, err := os.Stat(sdk); err == nil {
		return ""
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Sprintf("%s has no node_modules and npm is not on the PATH", dir)
	}
	// npm ci installs exactly the lockfile; it needs only the npm registry.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	began := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Sprintf("npm ci in %s failed: %v\n%s", dir, err, out)
	}
	t.Logf("npm ci in %s took %v (%s)", dir, time.Since(began).Round(time.Millisecond), node)
	return ""
}

// TestJSSDKSession runs scripts/clients/js/session.mjs, the AWS SDK for JavaScript v3 against the real
// binary: every implemented operation, the paginators, typed errors with instanceof, Date timestamps, a
// read-only key from the config file, and the history of a session that pion peers populated here first.
func TestJSSDKSession(t *testing.T) {
	needClient(t, jsSDKReady(t))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "openstage.yaml")
	if err := os.WriteFile(cfg, []byte("keys:\n  - accessKeyId: AKOSREADONLY\n    secretAccessKey: ro-secret\n    actions: [\"ivs:Get*\", \"ivs:List*\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, filepath.Join(dir, "data"), "--config", cfg, "--session-end-grace", "300ms")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.client()
	began := time.Now()

	// Two sessions on one stage: a publisher alone, then two publishers and a subscriber.
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("populated"),
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{
			{UserId: aws.String("alice")}, {UserId: aws.String("bob")},
			{UserId: aws.String("carol"), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	arn, whipURL := out.Stage.Arn, *out.Stage.Endpoints.Whip
	alice, bob, carol := out.ParticipantTokens[0], out.ParticipantTokens[1], out.ParticipantTokens[2]
	publish := func(tok types.ParticipantToken) (*peer.Publisher, string) {
		t.Helper()
		pub, err := peer.Publish(ctx, peer.Options{WHIPURL: whipURL, Token: *tok.Token})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pub.Close)
		return pub, waitPublishing(ctx, t, c, arn, *tok.ParticipantId, nil)
	}
	a1, _ := publish(alice)
	if err := a1.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	ivstest.WaitSessionEnded(ctx, t, c, arn, 1)
	a2, session := publish(alice)
	b, _ := publish(bob)
	sub, err := peer.Subscribe(ctx, peer.Options{WHIPURL: whipURL, Token: *carol.Token}, *alice.ParticipantId)
	if err != nil {
		t.Fatal(err)
	}
	ivstest.Eventually(t, ivstest.Until(ctx, time.Minute), 20*time.Millisecond, func() error {
		if v, a := sub.VideoPackets.Load(), sub.AudioPackets.Load(); v < 10 || a < 10 {
			return fmt.Errorf("media did not reach the subscriber: video %d audio %d", v, a)
		}
		return nil
	})
	if err := sub.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pub := range []*peer.Publisher{a2, b} {
		if err := pub.Delete(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ivstest.WaitSessionEnded(ctx, t, c, arn, 2)
	t.Logf("two sessions populated in %v", time.Since(began).Round(time.Millisecond))
	began = time.Now()

	env := []string{
		"OPENSTAGE_ENDPOINT=" + p.url, "AWS_ACCESS_KEY_ID=AKOSTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=us-east-1",
		"OPENSTAGE_READONLY_KEY_ID=AKOSREADONLY", "OPENSTAGE_READONLY_SECRET=ro-secret",
		"OPENSTAGE_SESSION_STAGE_ARN=" + *arn, "OPENSTAGE_SESSION_ID=" + session, "OPENSTAGE_SESSION_COUNT=2",
		"OPENSTAGE_SESSION_PARTICIPANTS=" + strings.Join([]string{*alice.ParticipantId, *bob.ParticipantId, *carol.ParticipantId}, ","),
		"OPENSTAGE_SESSION_PUBLISHERS=" + *alice.ParticipantId + "," + *bob.ParticipantId,
		// The pinned SDK supports this Node; its notice about releases after January 2027 is noise here.
		"AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true",
		// Nothing from the developer's own AWS setup may leak into the session.
		"AWS_PROFILE=", "AWS_SESSION_TOKEN=", "AWS_ENDPOINT_URL=", "AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
	}
	s := runScript(ctx, t, "node session.mjs", env, "node", filepath.Join(jsDir(t), "session.mjs"))
	s.wait(t)
	t.Logf("the JS session took %v", time.Since(began).Round(time.Millisecond))
	if !strings.Contains(s.out.String(), "js-sdk: ok\n") {
		t.Fatalf("no \"js-sdk: ok\":\n%s", s.out.String())
	}
}
