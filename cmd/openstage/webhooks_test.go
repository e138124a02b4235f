package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
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
	"github.com/coder/websocket"

	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/peer"
)

// receiver is a webhook endpoint: a real HTTP server that checks every delivery's signature the way the
// README tells users to (HMAC-SHA256 of "t.body" with the endpoint's secret), and can be down.
type receiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu   sync.Mutex
	down bool
	got  map[string][]byte // notification id → body (a redelivery must carry the same body)
	seq  []string          // ids in arrival order, first arrivals only
	bad  []string
}

func newReceiver(t *testing.T, secret string) *receiver {
	rc := &receiver{t: t, secret: secret, got: map[string][]byte{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if err := verifySignature(rc.secret, r.Header.Get("X-Openstage-Signature"), body, 5*time.Minute); err != nil {
		rc.bad = append(rc.bad, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.ID != r.Header.Get("X-Openstage-Event-Id") {
		rc.bad = append(rc.bad, fmt.Sprintf("id %q, header %q", ev.ID, r.Header.Get("X-Openstage-Event-Id")))
		http.Error(w, "bad id", http.StatusBadRequest)
		return
	}
	if prev, dup := rc.got[ev.ID]; dup {
		if !bytes.Equal(prev, body) {
			rc.bad = append(rc.bad, "notification "+ev.ID+" redelivered with another body")
		}
	} else {
		rc.got[ev.ID] = body
		rc.seq = append(rc.seq, ev.ID)
	}
	w.WriteHeader(http.StatusNoContent)
}

// verifySignature is the README's receiver check, written independently of the server's code.
func verifySignature(secret, header string, body []byte, window time.Duration) error {
	var ts, v1 string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || v1 == "" {
		return fmt.Errorf("malformed signature header %q", header)
	}
	if d := time.Since(time.Unix(t, 0)); d > window || d < -window {
		return fmt.Errorf("signature time %s outside the window", time.Unix(t, 0))
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(v1)) {
		return fmt.Errorf("bad signature")
	}
	return nil
}

func (rc *receiver) setDown(d bool) { rc.mu.Lock(); rc.down = d; rc.mu.Unlock() }

// delivered returns the deliveries so far, in arrival order, decoded.
func (rc *receiver) delivered() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		rc.t.Fatalf("bad deliveries: %v", rc.bad)
	}
	var out []delivery
	for _, id := range rc.seq {
		var d delivery
		if err := json.Unmarshal(rc.got[id], &d); err != nil {
			rc.t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

type delivery struct {
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Resources  []string `json:"resources"`
	Detail     struct {
		SessionID     string `json:"session_id"`
		EventName     string `json:"event_name"`
		ParticipantID string `json:"participant_id"`
		Remote        string `json:"remote_participant_id"`
	} `json:"detail"`
}

// ivsEventNames maps ListParticipantEvents' names to the notifications' event_name.
var ivsEventNames = map[string]string{
	"JOINED": "Participant Joined", "LEFT": "Participant Left", "PUBLISH_STARTED": "Participant Published",
	"PUBLISH_STOPPED": "Participant Unpublished", "SUBSCRIBE_STARTED": "Participant Subscribed",
	"SUBSCRIBE_STOPPED": "Participant Unsubscribed",
}

// TestWebhooksSurviveAKillAndADownEndpoint: a real server process delivers to a real receiver that is down
// while participants join, publish, subscribe and leave; the server is killed (-9) with all of it undelivered
// and restarted; once the receiver is up, every notification arrives, signed, in the order of each
// participant's ListParticipantEvents and of the stage (session start first, session end last). Then the
// event stream serves the same notifications and resumes after a Last-Event-ID.
func TestWebhooksSurviveAKillAndADownEndpoint(t *testing.T) {
	const secret = "a-webhook-secret-of-32-characters"
	rc := newReceiver(t, secret)
	rc.setDown(true)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "openstage.yaml")
	conf := fmt.Sprintf("webhooks:\n  - name: receiver\n    url: %s/hook\n    secret: %s\nconsoleKey: a-console-key-for-tests\n", rc.srv.URL, secret)
	if err := os.WriteFile(cfgFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", cfgFile, "--session-end-grace", "300ms", "--webhook-retry-base", "100ms", "--webhook-retry-max", "500ms",
		"--webhook-max-attempts", "1000"}
	p := start(t, dir, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := p.client()
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("hooks"),
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{
			{UserId: aws.String("host")},
			{UserId: aws.String("viewer"), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	arn, stageID := out.Stage.Arn, ivsID(*out.Stage.Arn)
	host, viewer := out.ParticipantTokens[0], out.ParticipantTokens[1]
	ws, _, err := websocket.Dial(ctx, *out.Stage.Endpoints.Events+"?topic="+stageID+"/publishers",
		&websocket.DialOptions{Subprotocols: []string{*viewer.Token}})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := peer.Publish(ctx, peer.Options{WHIPURL: *out.Stage.Endpoints.Whip, Token: *host.Token})
	if err != nil {
		t.Fatal(err)
	}
	waitState(ctx, t, ws, *host.ParticipantId)
	sub, err := peer.Subscribe(ctx, peer.Options{WHIPURL: *out.Stage.Endpoints.Whip, Token: *viewer.Token}, *host.ParticipantId)
	if err != nil {
		t.Fatal(err)
	}
	ivstest.Eventually(t, ivstest.Until(ctx, 30*time.Second), 20*time.Millisecond, func() error {
		if sub.VideoPackets.Load() == 0 {
			return fmt.Errorf("no media")
		}
		return nil
	})
	sub.Close()
	if err := pub.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	session := ivstest.WaitSessionEnded(ctx, t, c, arn, 1)
	if got := rc.delivered(); len(got) != 0 {
		t.Fatalf("delivered while the receiver was down: %v", got)
	}

	// kill -9 with everything undelivered; restart; the receiver comes back.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.wait(t)
	p = start(t, dir, args...)
	c = p.client()
	rc.setDown(false)

	want := []string{"Session Started"}
	perParticipant := map[string][]string{}
	total := 2 // session start and end
	for _, pid := range []string{*host.ParticipantId, *viewer.ParticipantId} {
		for _, e := range ivstest.Events(ctx, t, c, arn, session, pid) {
			name, _, _ := strings.Cut(e, ">")
			perParticipant[pid] = append(perParticipant[pid], ivsEventNames[name])
			total++
		}
	}
	var got []delivery
	ivstest.Eventually(t, ivstest.Until(ctx, 30*time.Second), 50*time.Millisecond, func() error {
		got = rc.delivered()
		if len(got) < total {
			return fmt.Errorf("%d of %d notifications delivered", len(got), total)
		}
		return nil
	})
	byParticipant := map[string][]string{}
	var kinds []string
	for _, d := range got {
		if d.Source != "aws.ivs" || len(d.Resources) != 1 || d.Resources[0] != *arn || d.Detail.SessionID != session {
			t.Fatalf("delivery %+v", d)
		}
		kinds = append(kinds, d.Detail.EventName)
		if d.Detail.ParticipantID != "" {
			byParticipant[d.Detail.ParticipantID] = append(byParticipant[d.Detail.ParticipantID], d.Detail.EventName)
		}
	}
	t.Logf("%d notifications delivered after the restart: %v", len(got), kinds)
	if kinds[0] != want[0] || kinds[len(kinds)-1] != "Session Ended" {
		t.Fatalf("the stage's notifications, in order: %v", kinds)
	}
	for pid, w := range perParticipant {
		if !slices.Equal(byParticipant[pid], w) {
			t.Fatalf("participant %s: delivered %v, ListParticipantEvents %v", pid, byParticipant[pid], w)
		}
	}
	// Delivery order is the log's: ids rise.
	for i := 1; i < len(got); i++ {
		a, _ := strconv.ParseInt(got[i-1].ID, 10, 64)
		b, _ := strconv.ParseInt(got[i].ID, 10, 64)
		if b <= a {
			t.Fatalf("delivered out of order: %s after %s", got[i].ID, got[i-1].ID)
		}
	}

	// The event stream: everything of the stage from the start, then resumed after the third.
	read := func(lastID string, n int) []string {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		req, _ := http.NewRequestWithContext(sctx, http.MethodGet, p.url+"/events/stream?stage="+stageID, nil)
		req.Header.Set("Authorization", "Bearer a-console-key-for-tests")
		req.Header.Set("Last-Event-ID", lastID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
		}
		var ids []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() && len(ids) < n {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				ids = append(ids, id)
			}
		}
		return ids
	}
	all := read("0", total)
	var deliveredIDs []string
	for _, d := range got[:total] {
		deliveredIDs = append(deliveredIDs, d.ID)
	}
	if !slices.Equal(all, deliveredIDs) {
		t.Fatalf("the stream's ids %v, the webhook's %v", all, deliveredIDs)
	}
	if rest := read(all[2], total-3); !slices.Equal(rest, all[3:]) {
		t.Fatalf("resumed after %s: %v, want %v", all[2], rest, all[3:])
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/events/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the stream without a key: %s", resp.Status)
	}
}

// TestWebhookDeadLettersReplayedWithTheCommand: an endpoint that refuses everything turns notifications into
// dead letters after --webhook-max-attempts; `openstage webhooks dead-letters` lists them and `openstage
// webhooks replay` has them delivered once the endpoint accepts.
func TestWebhookDeadLettersReplayedWithTheCommand(t *testing.T) {
	const secret = "another-webhook-secret-32-chars!!"
	rc := newReceiver(t, secret)
	rc.setDown(true)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "openstage.yaml")
	conf := fmt.Sprintf("webhooks:\n  - name: flaky\n    url: %s/hook\n    secret: %s\n", rc.srv.URL, secret)
	if err := os.WriteFile(cfgFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, dir, "--config", cfgFile, "--session-end-grace", "200ms", "--webhook-retry-base", "20ms", "--webhook-retry-max", "50ms",
		"--webhook-max-attempts", "2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := p.client().CreateStage(ctx, &ivsrealtime.CreateStageInput{
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{{Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}}}})
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.Dial(ctx, *out.Stage.Endpoints.Events, &websocket.DialOptions{Subprotocols: []string{*out.ParticipantTokens[0].Token}})
	if err != nil {
		t.Fatal(err)
	}
	waitStageState(ctx, t, ws, *out.ParticipantTokens[0].ParticipantId)
	ws.Close(websocket.StatusNormalClosure, "")
	ivstest.WaitSessionEnded(ctx, t, p.client(), out.Stage.Arn, 1)

	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^$", "--", "webhooks", "--endpoint-url", p.url}, args...)...)
		cmd.Env = append(os.Environ(), "OPENSTAGE_TEST_MAIN=1", "AWS_ACCESS_KEY_ID=AKOSTEST", "AWS_SECRET_ACCESS_KEY=secret",
			"AWS_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openstage webhooks %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	var listed string
	ivstest.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		listed = cli("dead-letters", "--endpoint", "flaky")
		if n := strings.Count(listed, "\nflaky "); n < 4 { // session start, JOINED, LEFT, session end
			return fmt.Errorf("%d dead letters listed:\n%s", n, listed)
		}
		return nil
	})
	if got := rc.delivered(); len(got) != 0 {
		t.Fatalf("delivered to a refusing endpoint: %v", got)
	}
	rc.setDown(false)
	if msg := cli("replay", "--endpoint", "flaky"); !strings.Contains(msg, "4 dead letters of flaky will be delivered again") {
		t.Fatalf("replay: %s", msg)
	}
	ivstest.Eventually(t, 20*time.Second, 50*time.Millisecond, func() error {
		if n := len(rc.delivered()); n != 4 {
			return fmt.Errorf("%d of 4 replayed", n)
		}
		return nil
	})
	ivstest.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		if rest := cli("dead-letters"); strings.Count(rest, "\n") != 1 { // the header only
			return fmt.Errorf("dead letters left after the replay:\n%s", rest)
		}
		return nil
	})
}
