// Package events serves the stage events WebSocket: the socket at a token's events_url through which IVS
// client SDKs and AWS's sample clients join a stage, learn who is in it and publishing (STAGE_STATE), keep
// the connection alive (PING/PONG) and report their mute state (SET_STATE).
//
// The protocol is undocumented by AWS. What this package speaks follows the observations in
// docs/DESIGN.md §4.3 and §4.4 (the web broadcast SDK 1.41.0, and aws-samples' Python client):
//
//   - GET <events_url>/<stageId> (the samples) and GET <events_url>?topic=<stageId>/publishers&... (the web
//     SDK), with the participant token as the only Sec-WebSocket-Protocol entry, echoed back;
//   - a refused join is reported inside the socket (aws:ivs:JOIN_ERROR) and never as an HTTP status,
//     because the SDK retries an HTTP 401 silently and its join() never settles (docs/DESIGN.md §4.4, refusing a join);
//   - the domain ending a connection is announced with aws:ivs:DISCONNECT before the close, because a bare
//     close makes the SDK reconnect instead of leaving (docs/DESIGN.md §4.4, ending a connection).
//
// Mount the handler on the path of events_url and below it, for example
//
//	mux.Handle("GET /events", h)
//	mux.Handle("GET /events/{stageId}", h)
package events

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/openstage/openstage/internal/admission"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/token"
)

// Defaults of Config.
const (
	// DefaultIdleTimeout is three of the web SDK's 15 s PING intervals (docs/DESIGN.md §4.4): a client
	// that misses three in a row is gone, and so is its participant.
	DefaultIdleTimeout = 45 * time.Second
	// DefaultWriteTimeout bounds one message written to a client that does not read.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultPrefix is the path of openstage's events_url (<public>/events).
	DefaultPrefix = "/events"
)

// maxMessage bounds one client message. The client sends small JSON (PING, SET_STATE; an SDP offer only
// when the server advertises "xdp", which openstage does not), so 64 KiB is generous.
const maxMessage = 64 << 10

// closeGrace is how long a closing socket waits for the client's close frame. A client that reads answers
// within a round trip.
const closeGrace = time.Second

// storeTimeout bounds the domain calls made after the request has ended (recording the leave).
const storeTimeout = 10 * time.Second

// Config configures a Handler.
type Config struct {
	// Domain is the stage domain the sockets join. Required.
	Domain *stage.Service
	// ClientInfo tells the domain what the upgrade request says of the client (User-Agent, ...). Nil gives
	// ivs.ClientInfo{Protocol: ivs.ProtocolUnknown}.
	ClientInfo func(*http.Request) ivs.ClientInfo
	// IdleTimeout closes a socket whose client has sent nothing for this long. Zero is DefaultIdleTimeout.
	IdleTimeout time.Duration
	// WriteTimeout bounds each message written to a client. Zero is DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Prefix is the path of events_url, so that "<Prefix>/<stageId>" can be told from "<Prefix>". Empty is
	// DefaultPrefix. A request path without it (a handler behind http.StripPrefix) is read as the rest.
	Prefix string
	// Log receives the handler's logs. Nil is slog.Default(). Tokens are never logged.
	Log *slog.Logger
	// OnRejected, if set, is called once for every refused join with a short, fixed label: the token.Reason
	// of an invalid token ("malformed", "expired", "bad_signature", ...), or one of "missing_token",
	// "stage_not_found", "revoked", "stage_mismatch", "quota_exceeded", "internal". It must not block.
	OnRejected func(reason string)
}

// Handler serves the stage events WebSocket. Its zero value is not usable; use New.
type Handler struct {
	domain       *stage.Service
	clientInfo   func(*http.Request) ivs.ClientInfo
	idle         time.Duration
	writeTimeout time.Duration
	prefix       string
	log          *slog.Logger
	onRejected   func(string)

	mu     sync.Mutex // guards closed and wg.Add against Close
	closed bool
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup
}

// New makes a Handler.
func New(cfg Config) *Handler {
	h := &Handler{
		domain: cfg.Domain, clientInfo: cfg.ClientInfo, idle: cfg.IdleTimeout, writeTimeout: cfg.WriteTimeout,
		prefix: cfg.Prefix, log: cfg.Log, onRejected: cfg.OnRejected, done: make(chan struct{}),
	}
	if h.clientInfo == nil {
		h.clientInfo = func(*http.Request) ivs.ClientInfo { return ivs.ClientInfo{Protocol: ivs.ProtocolUnknown} }
	}
	if h.idle <= 0 {
		h.idle = DefaultIdleTimeout
	}
	if h.writeTimeout <= 0 {
		h.writeTimeout = DefaultWriteTimeout
	}
	if h.prefix == "" {
		h.prefix = DefaultPrefix
	}
	h.prefix = "/" + strings.Trim(h.prefix, "/")
	if h.log == nil {
		h.log = slog.Default()
	}
	return h
}

// Close closes every socket and waits until their handlers have returned, each having recorded its leave;
// later upgrades are answered 503. The sockets are closed with status 1001 (going away) and no
// aws:ivs:DISCONNECT: a bare close makes the SDK reconnect (docs/DESIGN.md §4.4), which is what its user wants
// when the server restarts. (The domain's Shutdown, by contrast, ends each connection through OnClose with
// CloseShutdown, which is announced.) Close is idempotent.
func (h *Handler) Close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// enter registers a request as running; it fails once Close has begun.
func (h *Handler) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

func (h *Handler) closing() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// ServeHTTP upgrades the request and runs the socket until it closes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.enter() {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.wg.Done()

	raw := offeredToken(r)
	var protos []string
	if raw != "" {
		// The browser fails the handshake unless its one subprotocol, the token, is selected (docs/DESIGN.md §4.4).
		protos = []string{raw}
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: protos,
		// Any origin: customers' pages on their own origins open this socket, and the token, not a cookie,
		// is the credential (docs/DESIGN.md §4.7), so cross-site requests carry no ambient authority.
		InsecureSkipVerify: true,
	})
	if err != nil {
		// Accept has answered (426 for a request that is no upgrade, 400 for a bad handshake).
		h.log.DebugContext(r.Context(), "events: not a websocket handshake", "remote", r.RemoteAddr, "err", err)
		return
	}
	ws.SetReadLimit(maxMessage)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	log := h.log.With("remote", r.RemoteAddr)

	claims, ref := h.authenticate(ctx, r, raw)
	if ref != nil {
		h.refuse(ctx, ws, log, ref)
		return
	}
	log = log.With("stage", claims.Topic, "participant", claims.ParticipantID)
	if h.closing() {
		closeUnread(ctx, ws, websocket.StatusGoingAway, "server shutting down")
		return
	}
	s := &socket{h: h, ws: ws, log: log, stage: ivs.StageID(claims.Topic), kicked: make(chan stage.CloseReason, 1)}
	// Watch before Join, so that no change between the join and the first snapshot goes unseen.
	watch := h.domain.Watch(ctx, s.stage)
	pr, err := h.domain.Join(ctx, stage.JoinRequest{
		Claims: claims, Client: h.clientInfo(r), Kind: stage.ConnEvents, OnClose: s.onClose,
	})
	if err != nil {
		h.refuse(ctx, ws, log, refusalOf(err))
		return
	}
	s.pr = pr
	log.InfoContext(ctx, "events: socket joined", "session", pr.Session)
	why := s.run(ctx, watch)

	// The leave is recorded even though the request's context may be over: the socket is gone either way.
	lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer lcancel()
	if err := pr.Leave(lctx); err != nil {
		log.ErrorContext(ctx, "events: record leave", "err", err)
	}
	log.InfoContext(ctx, "events: socket closed", "why", why)
}

// offeredToken is the first Sec-WebSocket-Protocol entry: the IVS clients send the token as the only one.
// Only the first header line is read: a token in a later one is not the client's first choice.
func offeredToken(r *http.Request) string {
	for _, p := range strings.Split(r.Header.Get("Sec-WebSocket-Protocol"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			return p
		}
	}
	return ""
}

// refusal is a refused join as the client and the operator see it.
type refusal struct {
	code   string // the aws:ivs:JOIN_ERROR code
	msg    string // told to the client; it is about its own token or request only
	label  string // for OnRejected
	status websocket.StatusCode
	err    error // for the log
}

// authenticate verifies the token and that it is for the stage the request names.
func (h *Handler) authenticate(ctx context.Context, r *http.Request, raw string) (token.Claims, *refusal) {
	if raw == "" {
		return token.Claims{}, &refusal{code: "TOKEN_MISSING", msg: "no participant token: send it as the WebSocket subprotocol",
			label: "missing_token", status: websocket.StatusPolicyViolation}
	}
	claims, err := h.domain.Authenticate(ctx, raw)
	if err != nil {
		return token.Claims{}, refusalOf(err)
	}
	for _, named := range []string{h.pathStage(r), topicStage(r)} {
		if named != "" && named != claims.Topic {
			return token.Claims{}, &refusal{code: "BAD_REQUEST", msg: "the participant token is for stage " + claims.Topic + ", not " + named,
				label: "stage_mismatch", status: websocket.StatusPolicyViolation,
				err: errors.New("the request names stage " + named + ", the token " + claims.Topic)}
		}
	}
	return claims, nil
}

// pathStage is the stage of the samples' form <events_url>/<stageId>, "" for the bare <events_url>.
func (h *Handler) pathStage(r *http.Request) string {
	if v := r.PathValue("stageId"); v != "" {
		return v
	}
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok {
		rest = r.URL.Path
	}
	rest = strings.Trim(rest, "/")
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// topicStage is the stage of the web SDK's form ?topic=<stageId>/publishers (docs/DESIGN.md §4.4).
func topicStage(r *http.Request) string {
	id, _, _ := strings.Cut(r.URL.Query().Get("topic"), "/")
	return id
}

// refusalOf maps an Authenticate or Join error to the JOIN_ERROR codes the web SDK knows (docs/DESIGN.md §4.4
// "Messages the client understands"). A store outage is INTERNAL, which the SDK treats as retryable.
func refusalOf(err error) *refusal {
	policy := websocket.StatusPolicyViolation
	if reason, ok := token.ReasonOf(err); ok {
		code := "TOKEN_INVALID"
		switch reason {
		case token.Expired:
			code = "TOKEN_EXPIRED"
		case token.BadSignature, token.UnknownKey:
			code = "TOKEN_INVALID_SIGNATURE"
		}
		return &refusal{code: code, msg: err.Error(), label: string(reason), status: policy, err: err}
	}
	if r, ok := joinRefusals[stage.KindOf(err)]; ok {
		r.err = err
		if r.msg == "" {
			r.msg = err.Error()
		}
		return &r
	}
	return &refusal{code: "INTERNAL", msg: "internal error; try again", label: "internal", status: websocket.StatusInternalError, err: err}
}

// joinRefusals maps the domain's error kinds to the JOIN_ERROR codes the web SDK knows (docs/DESIGN.md §4):
// the one table of this transport. A kind missing here is INTERNAL, which the SDK retries.
var joinRefusals = map[stage.Kind]refusal{
	// The token's stage does not exist (deleted since the token was made).
	stage.KindNotFound: {code: "STAGE_DELETED", msg: "the stage does not exist", label: "stage_not_found", status: websocket.StatusPolicyViolation},
	// DisconnectParticipant barred this participant.
	stage.KindForbidden: {code: "PARTICIPANT_DISCONNECTED", msg: "this participant was disconnected and cannot join again",
		label: "revoked", status: websocket.StatusPolicyViolation},
	// Not a code the SDK knows: it reports a fatal "Failed to join" with this message, which is right.
	stage.KindQuota: {code: "STAGE_AT_CAPACITY", label: "quota_exceeded", status: websocket.StatusPolicyViolation},
	// The server is going away: a bare going-away close makes the SDK reconnect, to another node if any.
	stage.KindUnavailable: {code: "INTERNAL", msg: "the server is shutting down; try again", label: "unavailable", status: websocket.StatusGoingAway},
}

// refuse reports a refused join in the socket, then closes it. A refusal that is the client's doing (a
// missing, invalid or expired token, a deleted stage, ...) spends one of its address's failed
// authentications (admission: past its budget, its upgrades are refused before they get here). Refusals
// are logged at most once an interval per address, with the count of those that were not, because a log
// line per refusal would let anyone fill the disk; a failure of the server's own is always logged.
func (h *Handler) refuse(ctx context.Context, ws *websocket.Conn, log *slog.Logger, ref *refusal) {
	var d admission.Decision
	switch ref.label {
	case "internal":
		log.ErrorContext(ctx, "events: join failed", "code", ref.code, "err", ref.err)
	case "quota_exceeded", "unavailable": // the stage's or the server's state, not the client's doing
		d = admission.Noted(ctx)
	default:
		d = admission.Failed(ctx)
	}
	if d.Log {
		log.InfoContext(ctx, "events: join refused", "code", ref.code, "reason", ref.label, "err", ref.err, "not_logged", d.Unlogged)
	}
	if h.onRejected != nil {
		h.onRejected(ref.label)
	}
	wctx, cancel := context.WithTimeout(ctx, h.writeTimeout)
	defer cancel()
	if err := writeJSON(wctx, ws, outbound{Type: typeJoinError, Payload: joinError{Code: ref.code, Message: ref.msg}}); err != nil {
		log.DebugContext(ctx, "events: write JOIN_ERROR", "err", err)
		_ = ws.CloseNow()
		return
	}
	closeUnread(ctx, ws, ref.status, ref.code)
}

// closeUnread closes a socket nobody reads, waiting closeGrace at most for the client's close frame (see
// socket.close): a reader started for the purpose takes the client's frame, and stopping it cuts the wait.
func closeUnread(ctx context.Context, ws *websocket.Conn, code websocket.StatusCode, reason string) {
	rctx, stop := context.WithTimeout(ctx, closeGrace)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := ws.Read(rctx); err != nil {
				return
			}
		}
	}()
	_ = ws.Close(code, reason)
	stop()
	<-done
}
