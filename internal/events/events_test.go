package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/openstage/openstage/internal/clock"
	"github.com/openstage/openstage/internal/events"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/teststore"
	"github.com/openstage/openstage/internal/token"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

var testSigner = func() *token.Signer {
	k, err := token.GenerateKey()
	if err != nil {
		panic(err)
	}
	s, err := token.NewSigner(k, token.KeyIDFor(&k.PublicKey))
	if err != nil {
		panic(err)
	}
	return s
}()

// env is a stage domain on SQLite with the events handler served over HTTP.
type env struct {
	t        *testing.T
	ctx      context.Context
	svc      *stage.Service
	clk      *clock.Fake
	h        *events.Handler
	srv      *httptest.Server
	client   *http.Client
	arn      string
	stage    string
	mu       sync.Mutex
	rejected []string
}

type envOpts struct {
	quotas stage.Quotas
	idle   time.Duration
	mux    bool // mount with method and path patterns, as the server does, instead of the bare handler
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	st := teststore.Open(t) // SQLite, or PostgreSQL when OPENSTAGE_TEST_DATABASE is set
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("EVENTS_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e := &env{t: t, ctx: ctx, clk: clock.NewFake(t0)}
	e.svc = stage.New(stage.Config{
		Account: ivs.Account{Region: "us-east-1", ID: "000000000000"},
		WHIPURL: "http://127.0.0.1/whip", EventsURL: "ws://127.0.0.1/events",
		SessionEndGrace: 10 * time.Second, Quotas: o.quotas,
	}, st, e.clk, testSigner, log)
	e.h = events.New(events.Config{
		Domain: e.svc,
		ClientInfo: func(r *http.Request) ivs.ClientInfo {
			return ivs.ClientInfo{Protocol: ivs.ProtocolUnknown, SDKVersion: r.Header.Get("X-Test-SDK")}
		},
		IdleTimeout: o.idle,
		Log:         log,
		OnRejected: func(reason string) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.rejected = append(e.rejected, reason)
		},
	})
	var handler http.Handler = e.h
	if o.mux {
		mux := http.NewServeMux()
		mux.Handle("GET /events", e.h)
		mux.Handle("GET /events/{stageId}", e.h)
		handler = mux
	}
	e.srv = httptest.NewServer(handler)
	e.client = &http.Client{Transport: &http.Transport{}}
	// Cleanups run last-registered first: sockets (registered by dial), handler, server, domain, store.

	t.Cleanup(func() { _ = e.svc.Shutdown(ctx) })
	t.Cleanup(func() { e.srv.Close(); e.client.CloseIdleConnections() })
	t.Cleanup(e.h.Close)
	v, _, err := e.svc.CreateStage(ctx, "s", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.arn, e.stage = v.ARN, string(v.ID)
	return e
}

func (e *env) token(sp stage.TokenSpec) stage.ParticipantToken {
	e.t.Helper()
	tok, err := e.svc.CreateParticipantToken(e.ctx, e.arn, sp)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) url(path string) string { return "ws" + strings.TrimPrefix(e.srv.URL, "http") + path }

func (e *env) rejections() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.rejected)
}

// client is a test's end of a socket. It checks that STAGE_STATE sequence numbers rise by one from 1.
type client struct {
	t   *testing.T
	ws  *websocket.Conn
	seq int64
}

type msg struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

type state struct {
	StageID        string            `json:"stageId"`
	SequenceNumber int64             `json:"sequenceNumber"`
	Participants   []participantJSON `json:"participants"`
	Disconnected   []json.RawMessage `json:"disconnected"`
	ServerFeatures []string          `json:"serverFeatures"`
}

type participantJSON struct {
	ID           string             `json:"id"`
	UserID       string             `json:"userId"`
	Attributes   *map[string]string `json:"attributes"`
	IsPublishing bool               `json:"isPublishing"`
	AudioMuted   bool               `json:"audioMuted"`
	VideoStopped bool               `json:"videoStopped"`
}

func (s state) find(id ivs.ParticipantID) (participantJSON, bool) {
	for _, p := range s.Participants {
		if p.ID == string(id) {
			return p, true
		}
	}
	return participantJSON{}, false
}

func (e *env) dial(tok, path string, header http.Header) *client {
	e.t.Helper()
	c, resp, err := e.tryDial(tok, path, header)
	if err != nil {
		e.t.Fatalf("dial %s: %v", path, err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tok {
		e.t.Fatalf("selected subprotocol %.20q..., want the token", got)
	}
	if c.ws.Subprotocol() != tok {
		e.t.Fatal("the client did not negotiate the token as subprotocol")
	}
	return c
}

func (e *env) tryDial(tok, path string, header http.Header) (*client, *http.Response, error) {
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{HTTPClient: e.client, HTTPHeader: header}
	if tok != "" {
		opts.Subprotocols = []string{tok}
	}
	ws, resp, err := websocket.Dial(ctx, e.url(path), opts)
	if err != nil {
		return nil, resp, err
	}
	e.t.Cleanup(func() { _ = ws.CloseNow() })
	return &client{t: e.t, ws: ws}, resp, nil
}

// read returns the next message; STAGE_STATE's sequence number must be the last one plus one.
func (c *client) read() (msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return msg{}, err
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("server sent no JSON: %q", b)
	}
	if m.Type == "STAGE_STATE" {
		var s state
		if err := json.Unmarshal(m.Payload, &s); err != nil {
			c.t.Fatal(err)
		}
		if s.SequenceNumber != c.seq+1 {
			c.t.Fatalf("sequenceNumber %d after %d", s.SequenceNumber, c.seq)
		}
		c.seq = s.SequenceNumber
		if s.Disconnected == nil || s.ServerFeatures == nil {
			c.t.Fatalf("disconnected or serverFeatures missing: %s", m.Payload)
		}
		for _, p := range s.Participants {
			if p.Attributes == nil {
				c.t.Fatalf("attributes null: %s", m.Payload)
			}
		}
	}
	return m, nil
}

// next returns the next message of type typ, skipping others.
func (c *client) next(typ string) msg {
	c.t.Helper()
	for {
		m, err := c.read()
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if m.Type == typ {
			return m
		}
	}
}

// waitState returns the first stage state that satisfies ok, skipping other messages.
func (c *client) waitState(what string, ok func(state) bool) state {
	c.t.Helper()
	for {
		m, err := c.read()
		if err != nil {
			c.t.Fatalf("waiting for a state where %s: %v", what, err)
		}
		if m.Type != "STAGE_STATE" {
			continue
		}
		var s state
		_ = json.Unmarshal(m.Payload, &s)
		if ok(s) {
			return s
		}
	}
}

// closed reads until the socket ends; it returns the messages of the given type seen and the close status.
func (c *client) closed(typ string) ([]msg, websocket.StatusCode) {
	c.t.Helper()
	var got []msg
	for {
		m, err := c.read()
		if err != nil {
			return got, websocket.CloseStatus(err)
		}
		if m.Type == typ {
			got = append(got, m)
		}
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	ivstest.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		if !ok() {
			return errors.New("waiting until " + what)
		}
		return nil
	})
}

func (e *env) activeSession() ivs.SessionID {
	e.t.Helper()
	v, err := e.svc.GetStage(e.ctx, e.arn)
	if err != nil {
		e.t.Fatal(err)
	}
	return v.ActiveSessionID
}

func (e *env) events(session ivs.SessionID, pid ivs.ParticipantID) []string {
	e.t.Helper()
	evs, err := e.svc.ListEvents(e.ctx, e.arn, session, pid, store.Page{Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, string(ev.Name))
	}
	return out
}

func (e *env) participant(session ivs.SessionID, pid ivs.ParticipantID) ivs.Participant {
	e.t.Helper()
	p, err := e.svc.GetParticipant(e.ctx, e.arn, session, pid)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func TestURLFormsAndFirstState(t *testing.T) {
	forms := []struct {
		name string
		path func(stageID string) string
	}{
		{"samples path", func(id string) string { return "/events/" + id }},
		{"web SDK query", func(id string) string {
			return "/events?error_over_ws=1&topic=" + id + "/publishers&traceid=1-6b0255d6-1277dbb52c252a91cff5a5ab"
		}},
		{"bare events_url", func(string) string { return "/events" }},
		{"path and query", func(id string) string { return "/events/" + id + "?topic=" + id + "/publishers" }},
	}
	for _, mux := range []bool{false, true} {
		for _, f := range forms {
			name := f.name
			if mux {
				name += " via mux patterns"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, envOpts{mux: mux})
				tok := e.token(stage.TokenSpec{UserID: "alice"})
				c := e.dial(tok.Token, f.path(e.stage), nil)
				m := c.next("STAGE_STATE")
				var s state
				if err := json.Unmarshal(m.Payload, &s); err != nil {
					t.Fatal(err)
				}
				if s.StageID != e.stage || s.SequenceNumber != 1 || len(s.Participants) != 1 {
					t.Fatalf("first state: %s", m.Payload)
				}
				p := s.Participants[0]
				if p.ID != string(tok.ParticipantID) || p.UserID != "alice" || len(*p.Attributes) != 0 ||
					p.IsPublishing || p.AudioMuted || p.VideoStopped {
					t.Fatalf("own entry: %s", m.Payload)
				}
				if !strings.Contains(string(m.Payload), `"attributes":{}`) || !strings.Contains(string(m.Payload), `"disconnected":[]`) {
					t.Fatalf("empty attributes and lists must be {} and []: %s", m.Payload)
				}
			})
		}
	}
}

func TestSequenceNumbersPerSocket(t *testing.T) {
	e := newEnv(t, envOpts{})
	ta := e.token(stage.TokenSpec{UserID: "a", Attributes: map[string]string{"role": "host"}})
	tb := e.token(stage.TokenSpec{UserID: "b"})
	a := e.dial(ta.Token, "/events/"+e.stage, nil)
	if s := a.waitState("A is in", func(s state) bool { _, ok := s.find(ta.ParticipantID); return ok }); s.SequenceNumber != 1 {
		t.Fatalf("A's first state is number %d", s.SequenceNumber)
	}
	b := e.dial(tb.Token, "/events/"+e.stage, nil)
	sb := b.next("STAGE_STATE")
	var s state
	_ = json.Unmarshal(sb.Payload, &s)
	if s.SequenceNumber != 1 || len(s.Participants) != 2 {
		t.Fatalf("B's first state: %s", sb.Payload)
	}
	if pa, _ := s.find(ta.ParticipantID); pa.UserID != "a" || (*pa.Attributes)["role"] != "host" {
		t.Fatalf("B sees A as %+v", pa)
	}
	sa := a.waitState("B is in", func(s state) bool { _, ok := s.find(tb.ParticipantID); return ok })
	if sa.SequenceNumber < 2 {
		t.Fatalf("A's state with B is number %d", sa.SequenceNumber)
	}
	_ = b.ws.Close(websocket.StatusNormalClosure, "")
	a.waitState("B is gone", func(s state) bool { _, ok := s.find(tb.ParticipantID); return !ok && len(s.Participants) == 1 })
	// read() has checked every number on both sockets: 1, 2, 3... each on its own.
}

func TestPublisherShowsUp(t *testing.T) {
	e := newEnv(t, envOpts{})
	ta := e.token(stage.TokenSpec{UserID: "viewer"})
	a := e.dial(ta.Token, "/events/"+e.stage, nil)
	a.next("STAGE_STATE")

	// The publisher joins through the media plane only: a WHIP publish, no events socket.
	tp := e.token(stage.TokenSpec{UserID: "pub", Attributes: map[string]string{"k": "v"}})
	claims, err := e.svc.Authenticate(e.ctx, tp.Token)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := e.svc.Join(e.ctx, stage.JoinRequest{Claims: claims, Kind: stage.ConnPublish,
		Client: ivs.ClientInfo{Protocol: ivs.ProtocolWHIP}})
	if err != nil {
		t.Fatal(err)
	}
	s := a.waitState("the publisher is in", func(s state) bool { _, ok := s.find(tp.ParticipantID); return ok })
	if p, _ := s.find(tp.ParticipantID); p.IsPublishing {
		// Joined but media not connected yet: the SDK must not subscribe.
		t.Fatalf("publishing before StartPublish: %+v", p)
	}
	if err := e.svc.StartPublish(e.ctx, pr); err != nil {
		t.Fatal(err)
	}
	s = a.waitState("the publisher publishes", func(s state) bool { p, _ := s.find(tp.ParticipantID); return p.IsPublishing })
	if p, _ := s.find(tp.ParticipantID); p.UserID != "pub" || (*p.Attributes)["k"] != "v" {
		t.Fatalf("publisher entry %+v", p)
	}
	if err := e.svc.StopPublish(e.ctx, pr); err != nil {
		t.Fatal(err)
	}
	a.waitState("the publisher stopped", func(s state) bool { p, ok := s.find(tp.ParticipantID); return ok && !p.IsPublishing })
	if err := pr.Leave(e.ctx); err != nil {
		t.Fatal(err)
	}
	a.waitState("the publisher left", func(s state) bool { _, ok := s.find(tp.ParticipantID); return !ok })
}

func TestSetStateBothForms(t *testing.T) {
	e := newEnv(t, envOpts{})
	ta := e.token(stage.TokenSpec{UserID: "a"})
	tb := e.token(stage.TokenSpec{UserID: "b"})
	a := e.dial(ta.Token, "/events/"+e.stage, nil)
	b := e.dial(tb.Token, "/events?topic="+e.stage+"/publishers", nil)
	b.waitState("A and B are in", func(s state) bool { return len(s.Participants) == 2 })

	// V1, as the default web SDK sends it: no reply.
	a.send(map[string]any{"type": "SET_STATE", "version": "0", "audioMuted": true, "videoStopped": false})
	b.waitState("A is muted", func(s state) bool { p, _ := s.find(ta.ParticipantID); return p.AudioMuted && !p.VideoStopped })

	// V2: in the payload, acknowledged with requestId and traceId.
	a.send(map[string]any{"type": "aws:ivs:SET_STATE", "payload": map[string]any{
		"audioMuted": false, "videoStopped": true, "requestId": "req-7", "traceId": "trace-7"}})
	ack := a.next("aws:ivs:SET_STATE")
	var ids struct{ RequestID, TraceID string }
	if err := json.Unmarshal(ack.Payload, &ids); err != nil || ids.RequestID != "req-7" || ids.TraceID != "trace-7" {
		t.Fatalf("ack payload %s", ack.Payload)
	}
	s := b.waitState("A's video is stopped", func(s state) bool { p, _ := s.find(ta.ParticipantID); return p.VideoStopped })
	if p, _ := s.find(ta.ParticipantID); p.AudioMuted {
		t.Fatalf("A should be unmuted: %+v", p)
	}
	if p, _ := s.find(tb.ParticipantID); p.AudioMuted || p.VideoStopped {
		t.Fatalf("B's state changed: %+v", p)
	}

	// One field alone changes that field only.
	a.send(map[string]any{"type": "SET_STATE", "version": "0", "audioMuted": true})
	b.waitState("A muted, video still stopped", func(s state) bool {
		p, _ := s.find(ta.ParticipantID)
		return p.AudioMuted && p.VideoStopped
	})
}

func TestPingPongAndJunk(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.token(stage.TokenSpec{})
	c := e.dial(tok.Token, "/events/"+e.stage, nil)
	c.next("STAGE_STATE")

	// Junk is ignored and does not end the socket.
	c.send([]byte("not json"))
	c.send([]byte(`{"type":"SOMETHING_NEW","payload":{"x":1}}`))
	c.send([]byte(`{"type":42}`))
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, ping, want string
	}{
		{"bare", `{"type":"PING"}`, `{"type":"PONG"}`},
		{"V2 with ids", `{"type":"PING","payload":{"requestId":"r-1","traceId":"t-1"}}`, `{"type":"PONG","payload":{"requestId":"r-1"}}`},
		{"numeric id", `{"type":"PING","payload":{"requestId":17}}`, `{"type":"PONG","payload":{"requestId":17}}`},
		{"payload not an object", `{"type":"PING","payload":"x"}`, `{"type":"PONG"}`},
		{"null id", `{"type":"PING","payload":{"requestId":null}}`, `{"type":"PONG"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.send([]byte(tc.ping))
			for {
				ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
				_, b, err := c.ws.Read(ctx)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(b), `"STAGE_STATE"`) {
					continue
				}
				if string(b) != tc.want {
					t.Fatalf("got %s, want %s", b, tc.want)
				}
				return
			}
		})
	}

	// Token exchange is refused at once rather than left to the SDK's 5 s timeout.
	c.send([]byte(`{"type":"aws:ivs:EXCHANGE_TOKEN","payload":{"oldToken":"a","newToken":"b","requestId":"x-1","traceId":"x-2"}}`))
	m := c.next("aws:ivs:EXCHANGE_TOKEN")
	var r struct {
		RequestID, TraceID string
		Error              struct{ Message string }
	}
	if err := json.Unmarshal(m.Payload, &r); err != nil || r.RequestID != "x-1" || r.TraceID != "x-2" || r.Error.Message == "" {
		t.Fatalf("exchange reply %s", m.Payload)
	}
}

func TestJoinErrors(t *testing.T) {
	otherStage := "AbCdEfGhIjKl"
	cases := []struct {
		name   string
		quotas stage.Quotas
		// prepare returns the token and the path to dial.
		prepare func(e *env) (tok, path string)
		code    string
		label   string
	}{
		{"expired", stage.Quotas{}, func(e *env) (string, string) {
			d := 1
			tok := e.token(stage.TokenSpec{Duration: &d})
			e.clk.Advance(2 * time.Minute)
			return tok.Token, "/events/" + e.stage
		}, "TOKEN_EXPIRED", "expired"},
		{"garbage", stage.Quotas{}, func(e *env) (string, string) {
			return "garbage", "/events?error_over_ws=1&topic=" + e.stage + "/publishers"
		}, "TOKEN_INVALID", "malformed"},
		{"bad signature", stage.Quotas{}, func(e *env) (string, string) {
			tok := e.token(stage.TokenSpec{}).Token
			dot := strings.LastIndexByte(tok, '.')
			sig := []byte(tok[dot+1:])
			i := len(sig) / 2
			if sig[i] == 'A' {
				sig[i] = 'B'
			} else {
				sig[i] = 'A'
			}
			return tok[:dot+1] + string(sig), "/events/" + e.stage
		}, "TOKEN_INVALID_SIGNATURE", "bad_signature"},
		{"missing", stage.Quotas{}, func(e *env) (string, string) { return "", "/events/" + e.stage }, "TOKEN_MISSING", "missing_token"},
		{"deleted stage", stage.Quotas{}, func(e *env) (string, string) {
			tok := e.token(stage.TokenSpec{})
			if err := e.svc.DeleteStage(e.ctx, e.arn); err != nil {
				e.t.Fatal(err)
			}
			return tok.Token, "/events/" + e.stage
		}, "STAGE_DELETED", "stage_not_found"},
		{"revoked", stage.Quotas{}, func(e *env) (string, string) {
			tok := e.token(stage.TokenSpec{})
			if err := e.svc.DisconnectParticipant(e.ctx, e.arn, tok.ParticipantID, "bye"); err != nil {
				e.t.Fatal(err)
			}
			return tok.Token, "/events/" + e.stage
		}, "PARTICIPANT_DISCONNECTED", "revoked"},
		{"other stage in path", stage.Quotas{}, func(e *env) (string, string) {
			return e.token(stage.TokenSpec{}).Token, "/events/" + otherStage
		}, "BAD_REQUEST", "stage_mismatch"},
		{"other stage in topic", stage.Quotas{}, func(e *env) (string, string) {
			return e.token(stage.TokenSpec{}).Token, "/events?topic=" + otherStage + "/publishers"
		}, "BAD_REQUEST", "stage_mismatch"},
		{"stage full", stage.Quotas{Stages: 10, PublicKeys: 3, PublishersPerStage: 12, SubscribersPerStage: 1}, func(e *env) (string, string) {
			first := e.token(stage.TokenSpec{})
			c := e.dial(first.Token, "/events/"+e.stage, nil)
			c.next("STAGE_STATE")
			return e.token(stage.TokenSpec{}).Token, "/events/" + e.stage
		}, "STAGE_AT_CAPACITY", "quota_exceeded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{quotas: tc.quotas})
			tok, path := tc.prepare(e)
			c, resp, err := e.tryDial(tok, path, nil)
			if err != nil {
				t.Fatalf("the upgrade must be accepted even for a refused join: %v", err)
			}
			if tok != "" && resp.Header.Get("Sec-WebSocket-Protocol") != tok {
				t.Fatal("subprotocol not echoed on a refused join")
			}
			got, status := c.closed("aws:ivs:JOIN_ERROR")
			if len(got) != 1 {
				t.Fatalf("%d JOIN_ERROR messages", len(got))
			}
			var p struct{ Code, Message string }
			if err := json.Unmarshal(got[0].Payload, &p); err != nil || p.Code != tc.code || p.Message == "" {
				t.Fatalf("JOIN_ERROR %s, want code %s", got[0].Payload, tc.code)
			}
			if status != websocket.StatusPolicyViolation {
				t.Fatalf("close status %d", status)
			}
			if c.seq != 0 {
				t.Fatal("a refused socket got a stage state")
			}
			if r := e.rejections(); !slices.Equal(r, []string{tc.label}) {
				t.Fatalf("OnRejected got %q, want %q", r, tc.label)
			}
			if tc.code == "STAGE_DELETED" {
				return
			}
			// A refused token makes no participant and no event (docs/DESIGN.md §3.3, as IVS); only the stage-full case
			// has a session, made by its first participant.
			sessions, err := e.svc.ListSessions(e.ctx, e.arn, store.Page{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if tc.label != "quota_exceeded" && len(sessions) != 0 {
				t.Fatalf("a refused join made a session: %+v", sessions)
			}
		})
	}
}

func TestNotAnUpgrade(t *testing.T) {
	e := newEnv(t, envOpts{})
	resp, err := e.client.Get(e.srv.URL + "/events/" + e.stage)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired && resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if len(e.rejections()) != 0 {
		t.Fatal("a plain GET counted as a rejected join")
	}
}

func TestDomainClosesWithDisconnect(t *testing.T) {
	cases := []struct {
		name string
		do   func(e *env, tok stage.ParticipantToken)
		code string
	}{
		{"DisconnectParticipant", func(e *env, tok stage.ParticipantToken) {
			if err := e.svc.DisconnectParticipant(e.ctx, e.arn, tok.ParticipantID, "kick"); err != nil {
				e.t.Fatal(err)
			}
		}, "PARTICIPANT_DISCONNECTED"},
		{"DeleteStage", func(e *env, _ stage.ParticipantToken) {
			if err := e.svc.DeleteStage(e.ctx, e.arn); err != nil {
				e.t.Fatal(err)
			}
		}, "STAGE_DELETED"},
		{"Shutdown", func(e *env, _ stage.ParticipantToken) {
			if err := e.svc.Shutdown(e.ctx); err != nil {
				e.t.Fatal(err)
			}
		}, "SERVER_SHUTDOWN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			tok := e.token(stage.TokenSpec{})
			c := e.dial(tok.Token, "/events/"+e.stage, nil)
			c.next("STAGE_STATE")
			tc.do(e, tok)
			got, status := c.closed("aws:ivs:DISCONNECT")
			if len(got) != 1 {
				t.Fatalf("%d DISCONNECT messages", len(got))
			}
			var p struct{ Code, Reason string }
			if err := json.Unmarshal(got[0].Payload, &p); err != nil || p.Code != tc.code || p.Reason == "" {
				t.Fatalf("DISCONNECT %s, want %s", got[0].Payload, tc.code)
			}
			if status != websocket.StatusNormalClosure {
				t.Fatalf("close status %d", status)
			}
		})
	}
}

func TestTokenReuse(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.token(stage.TokenSpec{})
	first := e.dial(tok.Token, "/events/"+e.stage, nil)
	first.next("STAGE_STATE")
	sess := e.activeSession()
	second := e.dial(tok.Token, "/events?topic="+e.stage+"/publishers", nil)
	s := second.waitState("the participant is in", func(s state) bool { _, ok := s.find(tok.ParticipantID); return ok })
	if s.SequenceNumber != 1 {
		t.Fatalf("second socket's first state is number %d", s.SequenceNumber)
	}
	got, _ := first.closed("aws:ivs:DISCONNECT")
	if len(got) != 1 || !strings.Contains(string(got[0].Payload), `"code":"TOKEN_REUSED"`) {
		t.Fatalf("first socket got %v", got)
	}
	// The second stays, and the participant never left.
	second.send(map[string]any{"type": "PING", "payload": map[string]any{"requestId": "still-here"}})
	if m := second.next("PONG"); !strings.Contains(string(m.Payload), "still-here") {
		t.Fatalf("PONG %s", m.Payload)
	}
	if ev := e.events(sess, tok.ParticipantID); !slices.Equal(ev, []string{"JOINED"}) {
		t.Fatalf("events after reuse %q", ev)
	}
}

func TestSocketCloseMakesParticipantLeft(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.token(stage.TokenSpec{UserID: "u"})
	c := e.dial(tok.Token, "/events/"+e.stage, http.Header{"X-Test-SDK": {"1.41.0"}})
	c.next("STAGE_STATE")
	sess := e.activeSession()
	if sess == "" {
		t.Fatal("no session after join")
	}
	p := e.participant(sess, tok.ParticipantID)
	if p.State != ivs.StateConnected || p.Client.SDKVersion != "1.41.0" || p.Client.Protocol != ivs.ProtocolUnknown {
		t.Fatalf("participant while connected %+v", p)
	}
	_ = c.ws.Close(websocket.StatusGoingAway, "page unload")
	eventually(t, "the participant is DISCONNECTED", func() bool {
		return e.participant(sess, tok.ParticipantID).State == ivs.StateDisconnected
	})
	if ev := e.events(sess, tok.ParticipantID); !slices.Equal(ev, []string{"JOINED", "LEFT"}) {
		t.Fatalf("events %q", ev)
	}
	if len(e.svc.StageState(ivs.StageID(e.stage)).Participants) != 0 {
		t.Fatal("participant still live")
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	e := newEnv(t, envOpts{idle: idle})
	tk := e.token(stage.TokenSpec{})
	keep := e.dial(tk.Token, "/events/"+e.stage, nil)
	keep.next("STAGE_STATE")
	ts := e.token(stage.TokenSpec{})
	silent := e.dial(ts.Token, "/events/"+e.stage, nil)
	silent.next("STAGE_STATE")
	sess := e.activeSession()
	start := time.Now()

	// A client that PINGs more often than the timeout stays, well past it.
	for range 8 {
		time.Sleep(idle / 3)
		keep.send(map[string]any{"type": "PING"})
		keep.next("PONG")
	}

	// The silent one was closed meanwhile, and its participant left.
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	for {
		if _, _, err := silent.ws.Read(ctx); err != nil {
			break // the server closed it (states about the other socket may come first)
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("silent socket still open after %v", time.Since(start))
	}
	eventually(t, "the silent participant LEFT", func() bool {
		return slices.Equal(e.events(sess, ts.ParticipantID), []string{"JOINED", "LEFT"})
	})
	if ev := e.events(sess, tk.ParticipantID); !slices.Equal(ev, []string{"JOINED"}) {
		t.Fatalf("the pinging participant's events %q", ev)
	}
}

func TestHandlerClose(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.token(stage.TokenSpec{})
	c := e.dial(tok.Token, "/events/"+e.stage, nil)
	c.next("STAGE_STATE")
	sess := e.activeSession()
	e.h.Close()
	// Close has waited for the socket's leave.
	if ev := e.events(sess, tok.ParticipantID); !slices.Equal(ev, []string{"JOINED", "LEFT"}) {
		t.Fatalf("events after Close %q", ev)
	}
	got, status := c.closed("aws:ivs:DISCONNECT")
	if len(got) != 0 || status != websocket.StatusGoingAway {
		t.Fatalf("after Close: DISCONNECT %v, status %d (want a bare 1001 so the SDK reconnects)", got, status)
	}
	if _, resp, err := e.tryDial(tok.Token, "/events/"+e.stage, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after Close: %v", err)
	}
}

// A client that does not read holds up nothing: the domain's changes go on, and the socket later
// delivers the latest state, coalesced, with numbers still rising by one.
func TestSlowReaderCoalesces(t *testing.T) {
	e := newEnv(t, envOpts{})
	ts := e.token(stage.TokenSpec{})
	slow := e.dial(ts.Token, "/events/"+e.stage, nil)

	tp := e.token(stage.TokenSpec{})
	claims, err := e.svc.Authenticate(e.ctx, tp.Token)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := e.svc.Join(e.ctx, stage.JoinRequest{Claims: claims, Kind: stage.ConnPublish})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const n = 500
	for i := range n {
		if err := e.svc.SetMediaState(pr, stage.MediaState{AudioMuted: i%2 == 0, VideoStopped: i == n-1}); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("%d changes took %v", n, d)
	}
	s := slow.waitState("the last change is shown", func(s state) bool { p, _ := s.find(tp.ParticipantID); return p.VideoStopped })
	if s.SequenceNumber > n+2 {
		t.Fatalf("sequence %d for %d changes", s.SequenceNumber, n)
	}
	if err := pr.Leave(e.ctx); err != nil {
		t.Fatal(err)
	}
}

// On a large stage (docs/DESIGN.md §4.3): participants who may publish are listed to everyone; subscribe-only
// viewers are not listed to the others, only counted in aws:ivs:SUBSCRIBER_COUNT, at most once per second.
// A viewer sees the hosts and itself.
func TestViewersAreCountedNotListed(t *testing.T) {
	e := newEnv(t, envOpts{})
	viewer := func(name string) stage.ParticipantToken {
		return e.token(stage.TokenSpec{UserID: name, Capabilities: []stage.Capability{stage.CapSubscribe}})
	}
	th := e.token(stage.TokenSpec{UserID: "host"})
	host := e.dial(th.Token, "/events/"+e.stage, nil)
	host.next("STAGE_STATE")

	tv := viewer("v1")
	v1 := e.dial(tv.Token, "/events?topic="+e.stage+"/publishers", nil)
	var s state
	_ = json.Unmarshal(v1.next("STAGE_STATE").Payload, &s)
	if len(s.Participants) != 2 {
		t.Fatalf("the viewer's first state: %+v", s.Participants)
	}
	if p, ok := s.find(th.ParticipantID); !ok || p.UserID != "host" {
		t.Fatalf("the viewer does not see the host: %+v", s.Participants)
	}
	if p, ok := s.find(tv.ParticipantID); !ok || p.UserID != "v1" || p.IsPublishing {
		t.Fatalf("the viewer does not see itself: %+v", s.Participants)
	}
	more := []*client{}
	var first ivs.ParticipantID
	for i := range 3 {
		tok := viewer(fmt.Sprintf("v%d", i+2))
		if i == 0 {
			first = tok.ParticipantID
		}
		more = append(more, e.dial(tok.Token, "/events/"+e.stage, nil))
		more[i].next("STAGE_STATE")
	}
	// The count is due a second after the last wake-up: the fake clock moves it.
	e.clk.Advance(time.Second)
	count := func(c *client, want int) {
		t.Helper()
		for {
			m := c.next("aws:ivs:SUBSCRIBER_COUNT")
			var p struct {
				SequenceNumber int64 `json:"sequenceNumber"`
				Count          int   `json:"count"`
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil || p.SequenceNumber < 1 {
				t.Fatalf("SUBSCRIBER_COUNT %s", m.Payload)
			}
			if p.Count == want {
				return
			}
		}
	}
	count(host, 4)
	count(v1, 4)
	// Nothing the viewers did changed the host's list: its next state comes with the next host change.
	if err := host.ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	s = v1.waitState("the host left", func(s state) bool { _, ok := s.find(th.ParticipantID); return !ok })
	if len(s.Participants) != 1 || s.Participants[0].ID != string(tv.ParticipantID) {
		t.Fatalf("the viewer's state after the host left: %+v", s.Participants)
	}
	if s.SequenceNumber != 2 {
		t.Fatalf("the viewer was sent %d states; the viewers' joins must send none", s.SequenceNumber)
	}
	_ = more[0].ws.Close(websocket.StatusNormalClosure, "")
	session := e.activeSession()
	eventually(t, "the viewer left", func() bool { return e.participant(session, first).State == ivs.StateDisconnected })
	// The stored leave commits before the domain counts it and arms the count's timer (under the stage
	// lock, which LiveCounts takes): the fake clock moves only once that is done, or the timer is armed
	// after the advance and never fires (seen in CI).
	eventually(t, "the domain counted the leave", func() bool { _, n, _ := e.svc.LiveCounts(); return n == 3 })
	e.clk.Advance(time.Second)
	count(v1, 3)
}
