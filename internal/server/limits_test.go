package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"

	"github.com/openstage/openstage/internal/config"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/stage"
)

// shortTimeouts gives every HTTP timeout d, so that tests see them act in a second or two.
func shortTimeouts(d time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.HTTPReadHeaderTimeout, c.HTTPReadTimeout, c.HTTPWriteTimeout, c.HTTPIdleTimeout = d, d, d, d
	}
}

// eventually polls cond until it holds, failing the test after within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	ivstest.Eventually(t, within, 10*time.Millisecond, func() error {
		if !cond() {
			return errors.New(what)
		}
		return nil
	})
}

// dialRaw opens a TCP connection to the server, closed when the test ends.
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedWithin reads and discards until the server closes c, for at most within. It reports how long
// that took and whether the server did close it (false: still open at within).
func closedWithin(c net.Conn, within time.Duration) (time.Duration, bool) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(within))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return time.Since(start), false
	}
	return time.Since(start), true // EOF (nil from io.Copy) or a reset
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// TestIdleKeepAliveConnectionClosed: a connection that made a request and then says nothing is closed
// after the idle timeout, not before.
func TestIdleKeepAliveConnectionClosed(t *testing.T) {
	const idle = time.Second
	ts := startServer(t, func(c *config.Config) {
		shortTimeouts(5 * time.Second)(c)
		c.HTTPIdleTimeout = idle
	})
	c := dialRaw(t, ts.addr)
	write(t, c, "POST /ListStages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Close {
		t.Fatalf("unsigned call: %d, close %v; want a 403 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	took, closed := closedWithin(c, idle+3*time.Second)
	if !closed || took < idle/2 {
		t.Fatalf("idle connection closed %v after %v; want closed after about %v", closed, took, idle)
	}
}

// TestStalledBodyClosed: a request whose body stops coming is ended at the read timeout, on the API and on
// WHIP alike.
func TestStalledBodyClosed(t *testing.T) {
	const read = time.Second
	ts := startServer(t, func(c *config.Config) {
		shortTimeouts(5 * time.Second)(c)
		c.HTTPReadHeaderTimeout, c.HTTPReadTimeout = read, read
	})
	for _, req := range []string{
		"POST /ListStages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"maxResults\":",
		"POST /whip HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\nContent-Type: application/sdp\r\nContent-Length: 100000\r\n\r\nv=0\r\n",
	} {
		c := dialRaw(t, ts.addr)
		write(t, c, req)
		if took, closed := closedWithin(c, read+3*time.Second); !closed {
			t.Errorf("%.20q...: still open after %v", req, took)
		}
	}
}

// TestSlowHeadersClosed: a client that trickles its headers (slowloris) is cut off at the header timeout,
// however steadily it sends.
func TestSlowHeadersClosed(t *testing.T) {
	const header = time.Second
	ts := startServer(t, func(c *config.Config) {
		shortTimeouts(5 * time.Second)(c)
		c.HTTPReadHeaderTimeout = header
	})
	c := dialRaw(t, ts.addr)
	write(t, c, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	type result struct {
		took   time.Duration
		closed bool
	}
	res := make(chan result, 1)
	go func() {
		took, closed := closedWithin(c, header+3*time.Second)
		res <- result{took, closed}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-res:
			if !r.closed || r.took < header/2 {
				t.Fatalf("trickling connection closed %v after %v; want closed after about %v", r.closed, r.took, header)
			}
			return
		case <-tick.C:
			_, _ = c.Write([]byte("a")) // fails once the server has closed: the reader reports it
		}
	}
}

// TestMaxConnsQueuesTheRest: with --http-max-conns full of silent connections, a new one waits to be
// accepted until the header timeout frees a slot, and is then served.
func TestMaxConnsQueuesTheRest(t *testing.T) {
	const limit, header = 5, time.Second
	ts := startServer(t, func(c *config.Config) {
		shortTimeouts(5 * time.Second)(c)
		c.HTTPReadHeaderTimeout, c.HTTPMaxConns = header, limit
	})
	for range limit {
		dialRaw(t, ts.addr) // says nothing: holds its slot until the header timeout
	}
	get := func() (time.Duration, *http.Response) {
		c := dialRaw(t, ts.addr) // the kernel completes the handshake; the server has not accepted it
		start := time.Now()
		write(t, c, "GET /console/join HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(header + 5*time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start), resp
	}
	took, resp := get()
	if resp.StatusCode != http.StatusOK || took < header/2 {
		t.Fatalf("with %d connections open: %d after %v; want served once the header timeout freed a slot (%v)", limit, resp.StatusCode, took, header)
	}
	if took, resp := get(); resp.StatusCode != http.StatusOK || took > header/2 {
		t.Fatalf("with the slots free: %d after %v", resp.StatusCode, took)
	}
}

// readType reads messages until one of type typ.
func readType(ctx context.Context, ws *websocket.Conn, typ string) error {
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", typ, err)
		}
		var m struct{ Type string }
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
		if m.Type == typ {
			return nil
		}
	}
}

// dialEvents opens the stage events socket with tok as its subprotocol and reads the first STAGE_STATE.
func dialEvents(t *testing.T, ts *testServer, stageID, tok string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	ws, _, err := websocket.Dial(ctx, "ws://"+ts.addr+"/events/"+stageID,
		&websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}, Subprotocols: []string{tok}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	if err := readType(ctx, ws, "STAGE_STATE"); err != nil {
		t.Fatal(err)
	}
	return ws
}

func ping(ws *websocket.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"PING"}`)); err != nil {
		return err
	}
	return readType(ctx, ws, "PONG")
}

// TestEventsSocketOutlivesServerDeadlines: the events socket is exempt from the server's read, write and
// idle timeouts (1 s here): silent for 3 s, it still answers PING.
func TestEventsSocketOutlivesServerDeadlines(t *testing.T) {
	ts := startServer(t, shortTimeouts(time.Second))
	v, toks, err := ts.Domain().CreateStage(context.Background(), "s", nil, []stage.TokenSpec{{}})
	if err != nil {
		t.Fatal(err)
	}
	ws := dialEvents(t, ts, ivs.LastSegment(v.ARN), toks[0].Token)
	time.Sleep(3 * time.Second) // past every server deadline, with nothing sent either way
	if err := ping(ws); err != nil {
		t.Fatalf("after 3 s: %v", err)
	}
}

// attack keeps n connections open in the ways a slowloris does (silent, trickled headers, a stalled body),
// opening another each time the server closes one, until the test ends. It returns how many the server
// has closed so far.
func attack(t *testing.T, addr string, n int) (closed func() int64) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		open       = map[net.Conn]bool{}
		nOpen, cut atomic.Int64
	)
	partial := []string{"",
		"POST /ListStages HTTP/1.1\r\nHost: x\r\nX-Slow: aaaa",
		"POST /ListStages HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{",
		"POST /whip HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 100000\r\n\r\nv=0",
	}
	for i := range n {
		wg.Go(func() {
			counted := false
			for ctx.Err() == nil {
				c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				if err != nil {
					return // only when the test is over (ctx), or the server is gone
				}
				mu.Lock()
				open[c] = true
				mu.Unlock()
				if !counted {
					nOpen.Add(1)
					counted = true
				}
				_, _ = io.WriteString(c, partial[i%len(partial)])
				_, _ = io.Copy(io.Discard, c) // until the server closes it, or cleanup does
				mu.Lock()
				delete(open, c)
				mu.Unlock()
				_ = c.Close()
				if ctx.Err() == nil {
					cut.Add(1)
				}
			}
		})
	}
	t.Cleanup(func() {
		cancel()
		mu.Lock()
		for c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	eventually(t, 10*time.Second, fmt.Sprintf("%d attacking connections open", n), func() bool { return nOpen.Load() == int64(n) })
	return cut.Load
}

// TestGoodClientServedDuringSlowloris: with 300 connections held open the slow ways, all the time, the AWS
// SDK is served and an events socket lives past every server timeout on pings.
func TestGoodClientServedDuringSlowloris(t *testing.T) {
	const attackers, timeout = 300, time.Second
	ts := startServer(t, func(c *config.Config) {
		shortTimeouts(timeout)(c)
		c.HTTPMaxConns = 1000
	})
	cut := attack(t, ts.addr, attackers)

	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := ivsrealtime.New(ivsrealtime.Options{BaseEndpoint: aws.String(ts.base), Region: "us-east-1", RetryMaxAttempts: 1,
		HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: ts.RootKey.AccessKeyID, SecretAccessKey: ts.RootKey.SecretAccessKey}, nil
		})})
	ctx := context.Background()
	out, err := client.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("good"),
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{{UserId: aws.String("good"),
			Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.ListStages(ctx, &ivsrealtime.ListStagesInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: out.Stage.Arn}); err != nil {
		t.Fatal(err)
	}

	ws := dialEvents(t, ts, ivs.LastSegment(*out.Stage.Arn), *out.ParticipantTokens[0].Token)
	for end := time.Now().Add(3 * timeout); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if err := ping(ws); err != nil {
			t.Fatalf("events socket: %v", err)
		}
	}
	// The SDK again, after the keep-alive connection it used has outlived the idle timeout.
	if _, err := client.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: out.Stage.Arn}); err != nil {
		t.Fatal(err)
	}
	// And the timeouts were what kept the attackers at bay: the server cut each of them at least once.
	eventually(t, 5*time.Second, "every attacking connection cut", func() bool { return cut() >= attackers })
}

// TestMetricsSeriesBoundedThroughTheServer sends made-up and invalid-UTF-8 operation paths, unsigned and
// signed, through the real server: each gets an AWS error, nothing panics, and the API series in /metrics
// do not grow with the number of distinct paths.
func TestMetricsSeriesBoundedThroughTheServer(t *testing.T) {
	ts := startServer(t, nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	send := func(path string, signed bool) (int, string) {
		t.Helper()
		body := []byte(`{}`)
		req, err := http.NewRequest("POST", ts.base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if signed {
			sum := sha256.Sum256(body)
			if err := v4.NewSigner().SignHTTP(req.Context(), aws.Credentials{AccessKeyID: ts.RootKey.AccessKeyID,
				SecretAccessKey: ts.RootKey.SecretAccessKey}, req, hex.EncodeToString(sum[:]), "ivs", "us-east-1", time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v (a panic in the handler drops the connection)", path, err)
		}
		defer resp.Body.Close()
		var e struct{ Message string }
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Message == "" {
			t.Fatalf("POST %s: %d without an AWS error body: %v", path, resp.StatusCode, err)
		}
		return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType")
	}
	apiSeries := func() (n int, text string) {
		t.Helper()
		resp, err := hc.Get(ts.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
		}
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, "openstage_api_requests_total{") || strings.HasPrefix(line, "openstage_api_request_duration_seconds_count{") {
				n++
			}
		}
		return n, string(b)
	}
	batch := func(from, to int) {
		for i := from; i < to; i++ {
			name := fmt.Sprintf("Op%06dx", i)
			if code, typ := send("/"+name, false); code != http.StatusForbidden || typ != "MissingAuthenticationTokenException" {
				t.Fatalf("unsigned %s: %d %s", name, code, typ)
			}
			if code, typ := send("/"+name, true); code != http.StatusNotFound || typ != "UnknownOperationException" {
				t.Fatalf("signed %s: %d %s", name, code, typ)
			}
			// Invalid UTF-8 once decoded: what used to panic the label code.
			raw := fmt.Sprintf("/%%FF%%FE%%%02X", 0x80+i%64)
			if code, typ := send(raw, i%2 == 0); code < 400 || typ == "" {
				t.Fatalf("%s: %d %q", raw, code, typ)
			}
		}
	}
	batch(0, 20)
	before, _ := apiSeries()
	batch(20, 320)
	after, text := apiSeries()
	if before == 0 || after != before {
		t.Fatalf("API series: %d after 20 made-up operations, %d after 320", before, after)
	}
	if strings.Contains(text, "Op0000") || !strings.Contains(text, `operation="unknown"`) {
		t.Fatalf("/metrics labels a client's path, or lacks the unknown operation:\n%s", text)
	}
}

// TestLongLivedClearsDeadlines: behind longLived, an upgrade request is not bound by the server's read and
// write timeouts even before (or without) a hijack, which clears them only at that moment; any other
// request still is. The handler reads a body that comes after both timeouts, then answers.
func TestLongLivedClearsDeadlines(t *testing.T) {
	const timeout = 300 * time.Millisecond
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		_, _ = io.WriteString(w, "got "+string(b))
	})
	srv := httptest.NewUnstartedServer(longLived(echo, slog.New(slog.NewTextHandler(io.Discard, nil))))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = timeout, timeout
	srv.Start()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	for _, c := range []struct {
		upgrade string
		served  bool
	}{{"websocket", true}, {"", false}} {
		conn := dialRaw(t, addr)
		hdr := "POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		if c.upgrade != "" {
			hdr += "Upgrade: " + c.upgrade + "\r\n"
		}
		write(t, conn, hdr+"\r\n")
		time.Sleep(3 * timeout) // past both deadlines, as a socket's first message may be
		_, _ = io.WriteString(conn, "hello")
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		served := false
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			served = resp.StatusCode == http.StatusOK && string(b) == "got hello"
		}
		if served != c.served {
			t.Errorf("Upgrade %q: served %v after the deadlines, want %v (%v)", c.upgrade, served, c.served, err)
		}
	}
}

func TestUpgradeToWebSocket(t *testing.T) {
	for v, want := range map[string]bool{"websocket": true, "WebSocket": true, "h2c, websocket": true, "": false, "h2c": false, "websockets": false} {
		r, _ := http.NewRequest("GET", "/events", nil)
		if v != "" {
			r.Header.Set("Upgrade", v)
		}
		if got := upgradeToWebSocket(r); got != want {
			t.Errorf("Upgrade: %q gives %v", v, got)
		}
	}
}
