package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/stage"
)

// attackerAddr is the loopback address the bad client connects from; the good participants use 127.0.0.1.
var attackerAddr = net.IPv4(127, 0, 0, 2)

// clientFrom is an HTTP client whose connections come from ip.
func clientFrom(t *testing.T, ip net.IP) *http.Client {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Skipf("cannot use %s as a source address here: %v", ip, err)
	}
	ln.Close()
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFailedAuthenticationsAreLimitedPerAddress runs the real server: a client at 127.0.0.2 sending
// forged tokens to WHIP is refused 429 once its address has spent its failures, and from then on its
// requests, WHIP and events socket alike, are refused without their tokens being verified (the refusals
// counted after a verification stop growing; the throttled ones grow instead). Meanwhile a participant at
// 127.0.0.1 publishes and joins the events socket. Refusals are logged once, not once each.
func TestFailedAuthenticationsAreLimitedPerAddress(t *testing.T) {
	const burst = 5
	cfg := testConfig(t)
	cfg.AuthFailureRate, cfg.AuthFailureBurst = 0.01, burst // one failure earned back every 100 s: none in the test
	var logs syncBuffer
	s := runServer(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	base := s.base
	bad := clientFrom(t, attackerAddr)

	v, toks, err := s.Domain().CreateStage(ctx, "s", nil, []stage.TokenSpec{{}, {}})
	if err != nil {
		t.Fatal(err)
	}
	stageID := v.ARN[strings.LastIndexByte(v.ARN, '/')+1:]
	parts := strings.Split(toks[0].Token, ".")
	forged := func() string { // valid claims, a fresh signature: each would cost a P-384 verification
		sig := make([]byte, 96)
		_, _ = rand.Read(sig)
		return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	post := func(c *http.Client, tok string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/whip", strings.NewReader("v=0\r\n"))
		req.Header.Set("Content-Type", "application/sdp")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	// The budget, then 429 without a verification.
	for i := range burst {
		if resp := post(bad, forged()); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, resp.StatusCode)
		}
	}
	verified := rejected(t, base, "whip", "bad_signature")
	if verified != burst {
		t.Fatalf("%v verifications refused, want %d", verified, burst)
	}
	resp := post(bad, forged())
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after the budget: %d", resp.StatusCode)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	// More of the same, WHIP subscribe, the events socket and even a good token, from the same address, at
	// once (a refused request is held a second before its answer): all refused before anything is read
	// (the socket is not upgraded).
	statuses := make(chan int, 32)
	var wg sync.WaitGroup
	send := func(method, url, tok string) {
		defer wg.Done()
		req, _ := http.NewRequest(method, url, strings.NewReader("v=0\r\n"))
		req.Header.Set("Content-Type", "application/sdp")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := bad.Do(req)
		if err != nil {
			statuses <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses <- resp.StatusCode
	}
	for range 20 {
		wg.Add(1)
		go send(http.MethodPost, base+"/whip", forged())
	}
	wg.Add(2)
	go send(http.MethodPost, base+"/whip/subscribe/someone", forged())
	go send(http.MethodPost, base+"/whip", toks[1].Token) // the limit is the address's
	var wsResp *http.Response
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, wsResp, err = websocket.Dial(ctx, "ws://"+s.addr+"/events/"+stageID,
			&websocket.DialOptions{HTTPClient: bad, Subprotocols: []string{forged()}})
	}()
	wg.Wait()
	close(statuses)
	for code := range statuses {
		if code != http.StatusTooManyRequests {
			t.Errorf("a request from the throttled address: %d", code)
		}
	}
	if err == nil || wsResp == nil || wsResp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("events socket from the throttled address: %v %v", wsResp, err)
	}
	if n := rejected(t, base, "whip", "bad_signature"); n != verified {
		t.Errorf("throttled requests were verified: %v refusals after verification, want %v", n, verified)
	}
	if n := rejected(t, base, "events", "bad_signature"); n != 0 {
		t.Errorf("events: %v verifications", n)
	}
	if n := rejected(t, base, "whip", "throttled"); n != 23 {
		t.Errorf("whip throttled %v, want 23", n)
	}
	if n := rejected(t, base, "events", "throttled"); n != 1 {
		t.Errorf("events throttled %v, want 1", n)
	}

	// Meanwhile, from 127.0.0.1: a publisher and an events socket join.
	whipURL, _ := cfg.Endpoints()
	pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
	defer pcancel()
	p, err := peer.Publish(pctx, peer.Options{WHIPURL: whipURL, Token: toks[0].Token})
	if err != nil {
		t.Fatalf("the good publisher: %v", err)
	}
	defer p.Close()
	if err := p.WaitConnected(pctx); err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.Dial(pctx, "ws://"+s.addr+"/events/"+stageID, &websocket.DialOptions{Subprotocols: []string{toks[1].Token}})
	if err != nil {
		t.Fatalf("the good events socket: %v", err)
	}
	_, msg, err := ws.Read(pctx)
	if err != nil || !bytes.Contains(msg, []byte("STAGE_STATE")) {
		t.Fatalf("the good events socket: %s %v", msg, err)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	p.Close()

	// The log: one refusal line and one throttling line for the whole flood.
	out := logs.String()
	if n := strings.Count(out, "whip: token refused"); n != 1 {
		t.Errorf("%d refusal lines:\n%s", n, out)
	}
	if n := strings.Count(out, "refusing the address's requests unexamined"); n != 1 {
		t.Errorf("%d throttling lines:\n%s", n, out)
	}
}

// TestRefusalLogsBoundedWithoutLimit: with the limit off (--auth-failure-rate 0), every bad token is
// verified and refused, but the log still gets one line per address per interval.
func TestRefusalLogsBoundedWithoutLimit(t *testing.T) {
	cfg := testConfig(t) // AuthFailureRate 0: no limit
	var logs syncBuffer
	base := runServer(t, cfg, slog.New(slog.NewTextHandler(&logs, nil))).base
	c := clientFrom(t, attackerAddr)
	for range 60 {
		req, _ := http.NewRequest(http.MethodPost, base+"/whip", strings.NewReader("v=0\r\n"))
		req.Header.Set("Authorization", "Bearer garbage")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%d", resp.StatusCode)
		}
	}
	if n := rejected(t, base, "whip", "malformed"); n != 60 {
		t.Errorf("%v refusals counted, want 60", n)
	}
	if n := strings.Count(logs.String(), "whip: token refused"); n != 1 {
		t.Errorf("%d refusal lines", n)
	}
}

// rejected reads openstage_rejected_tokens_total{transport, reason} from /metrics.
func rejected(t *testing.T, base, transport, reason string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "openstage_rejected_tokens_total{") ||
			!strings.Contains(line, `transport="`+transport+`"`) || !strings.Contains(line, `reason="`+reason+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatal(errors.New(line))
		}
		return v
	}
	return 0
}
