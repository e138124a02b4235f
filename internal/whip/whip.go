// Package whip is the HTTP side of the media plane: WHIP publish (RFC 9725), the IVS subscribe endpoint,
// session DELETE and trickle PATCH, CORS for browser apps on other origins, and the 307 from the host root.
// It authenticates tokens and asks the stage domain what is allowed; the SFU moves the media.
package whip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/media"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/token"
)

// OfferCheck vets an SDP offer against the media policy before any media flows (SPEC §4). It returns the
// event error code and a message, or "" to accept.
type OfferCheck func(offer string) (ivs.ErrorCode, string)

// Config wires the handler.
type Config struct {
	Domain *stage.Service
	SFU    *media.SFU
	// WHIPURL is the stages' whip endpoint (absolute); session URLs are made under it.
	WHIPURL string
	// CheckOffer vets publish offers; nil accepts every offer the SFU can negotiate.
	CheckOffer OfferCheck
	// Inspector makes a per-publisher packet inspector for the media policy; nil inspects nothing.
	Inspector func() media.Inspector
	// ClientInfo tells what the request says of the client; nil records only the protocol.
	ClientInfo func(r *http.Request, p ivs.Protocol) ivs.ClientInfo
	// OnRejected counts refused tokens by reason (metrics).
	OnRejected func(reason string)
	Log        *slog.Logger
}

// Handler serves the WHIP endpoints. Mount it at the path of WHIPURL (e.g. "/whip") and at "POST /".
type Handler struct {
	cfg  Config
	log  *slog.Logger
	base string // path prefix of WHIPURL, e.g. "/whip"
	mux  *http.ServeMux

	mu       sync.Mutex
	sessions map[string]*session
}

// session is one WHIP resource: a publish or a subscription.
type session struct {
	id       string
	claims   token.Claims
	presence *stage.Presence
	pub      *media.Publisher
	sub      *media.Subscriber
}

func (s *session) close() {
	if s.pub != nil {
		s.pub.Close()
	}
	if s.sub != nil {
		s.sub.Close()
	}
}

// New makes the handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	base, err := pathOf(cfg.WHIPURL)
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, log: cfg.Log, base: base, mux: http.NewServeMux(), sessions: map[string]*session{}}
	h.mux.HandleFunc("POST "+base, h.publish)
	h.mux.HandleFunc("POST "+base+"/publish/{participantId}", h.publish)
	h.mux.HandleFunc("POST "+base+"/subscribe/{publisherId}", h.subscribe)
	h.mux.HandleFunc("DELETE "+base+"/session/{id}", h.delete)
	h.mux.HandleFunc("PATCH "+base+"/session/{id}", h.patch)
	h.mux.HandleFunc("OPTIONS "+base+"/", preflight)
	h.mux.HandleFunc("OPTIONS "+base, preflight)
	return h, nil
}

func pathOf(raw string) (string, error) {
	i := strings.Index(raw, "://")
	if i < 0 {
		return "", errors.New("whip: WHIPURL must be absolute")
	}
	rest := raw[i+3:]
	j := strings.IndexByte(rest, '/')
	if j < 0 || rest[j:] == "/" {
		return "", errors.New("whip: WHIPURL needs a path (e.g. /whip): the root redirects to it")
	}
	return strings.TrimSuffix(rest[j:], "/"), nil
}

// Base is the path the handler serves under.
func (h *Handler) Base() string { return h.base }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cors(w, r)
	h.mux.ServeHTTP(w, r)
}

// Redirect answers a WHIP POST at the host root with 307 to the stage WHIP URL, as IVS's global endpoint
// does; clients keep the method, body and Authorization header.
func (h *Handler) Redirect(w http.ResponseWriter, r *http.Request) {
	cors(w, r)
	w.Header().Set("Location", h.cfg.WHIPURL)
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// cors lets web apps on any origin call these endpoints: the bearer token, not a cookie, is the
// credential (SPEC §4). Preflights get whatever headers they ask for (the IVS SDK sends eight X-Stages-*).
func cors(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = "*"
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "Location, ETag, Link")
}

func preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	} else {
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// IVS's numeric error codes in WHIP error bodies, as the IVS SDKs read them (ivs-web-sdk-protocol.md §3).
const (
	codeGeneric       = 2001
	codeTokenExpired  = 2002
	codeNoPermission  = 2003
	codeNotFound      = 2004
	codeAtCapacity    = 2005
	codeInternal      = 2006
	codeNoMatchCodec  = 2014
	maxOfferBytes     = 256 << 10
	negotiateDeadline = 15 * time.Second
)

func fail(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg})
}

func bearer(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "Bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// authenticate verifies the request's token; on failure it has answered.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (token.Claims, bool) {
	raw := bearer(r)
	if raw == "" {
		h.reject(w, r, "missing", http.StatusUnauthorized, codeNoPermission, "an Authorization: Bearer <participant token> header is required")
		return token.Claims{}, false
	}
	c, err := h.cfg.Domain.Authenticate(r.Context(), raw)
	if err == nil {
		return c, true
	}
	var te *token.Error
	switch {
	case errors.As(err, &te) && te.Reason == token.Expired:
		h.reject(w, r, string(te.Reason), http.StatusUnauthorized, codeTokenExpired, "the participant token has expired")
	case errors.As(err, &te):
		h.reject(w, r, string(te.Reason), http.StatusUnauthorized, codeNoPermission, "the participant token is not valid: "+te.Error())
	case errors.Is(err, stage.ErrStageNotFound):
		h.reject(w, r, "stage_not_found", http.StatusForbidden, codeNoPermission, "the token's stage does not exist")
	case errors.Is(err, stage.ErrRevoked):
		h.reject(w, r, "revoked", http.StatusForbidden, codeNoPermission, "this participant was disconnected and cannot join again")
	default:
		h.log.ErrorContext(r.Context(), "whip: authenticate", "err", err)
		fail(w, http.StatusInternalServerError, codeInternal, "internal error")
	}
	return token.Claims{}, false
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, reason string, status, code int, msg string) {
	h.log.InfoContext(r.Context(), "whip: token refused", "reason", reason, "path", r.URL.Path, "remote", r.RemoteAddr)
	if h.cfg.OnRejected != nil {
		h.cfg.OnRejected(reason)
	}
	fail(w, status, code, msg)
}

// readOffer reads an application/sdp body.
func readOffer(w http.ResponseWriter, r *http.Request) (string, bool) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/sdp" {
		fail(w, http.StatusUnsupportedMediaType, codeGeneric, "Content-Type must be application/sdp")
		return "", false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOfferBytes))
	if err != nil || len(b) == 0 {
		fail(w, http.StatusBadRequest, codeGeneric, "the body must be an SDP offer of at most 256 KiB")
		return "", false
	}
	return string(b), true
}

func (h *Handler) clientInfo(r *http.Request) ivs.ClientInfo {
	if h.cfg.ClientInfo != nil {
		return h.cfg.ClientInfo(r, ivs.ProtocolWHIP)
	}
	return ivs.ClientInfo{Protocol: ivs.ProtocolWHIP}
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (h *Handler) add(s *session) {
	h.mu.Lock()
	h.sessions[s.id] = s
	h.mu.Unlock()
}

func (h *Handler) remove(id string) {
	h.mu.Lock()
	delete(h.sessions, id)
	h.mu.Unlock()
}

func (h *Handler) lookup(id string) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[id]
}

// created answers 201 with the SDP answer and the session's absolute Location (the IVS SDK resolves
// relative ones wrongly).
func (h *Handler) created(w http.ResponseWriter, s *session, answer string) {
	w.Header().Set("Location", h.cfg.WHIPURL+"/session/"+s.id)
	w.Header().Set("ETag", `"`+s.id+`"`)
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// bg is the context of the hooks that run after the request is answered.
func bg() context.Context { return context.Background() }

// publish handles POST <whip> and POST <whip>/publish/<participantId>.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request) {
	claims, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	if id := r.PathValue("participantId"); id != "" && id != claims.ParticipantID {
		fail(w, http.StatusForbidden, codeNoPermission, "the path's participant id is not the token's")
		return
	}
	offer, ok := readOffer(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), negotiateDeadline)
	defer cancel()
	s := &session{id: newSessionID(), claims: claims}
	pr, err := h.cfg.Domain.Join(ctx, stage.JoinRequest{Claims: claims, Client: h.clientInfo(r), Kind: stage.ConnPublish,
		OnClose: func(stage.CloseReason) { go s.close() }})
	if err != nil {
		h.joinFailed(w, r, err)
		return
	}
	s.presence = pr
	leave := func() { _ = pr.Leave(bg()) }
	if err := h.cfg.Domain.CheckPublish(ctx, pr); err != nil {
		leave()
		h.refused(w, r, err)
		return
	}
	if h.cfg.CheckOffer != nil {
		if code, msg := h.cfg.CheckOffer(offer); code != "" {
			if err := h.cfg.Domain.RecordError(ctx, pr, ivs.EventPublishError, code, ""); err != nil {
				h.log.ErrorContext(ctx, "whip: record publish error", "err", err)
			}
			leave()
			status, c := http.StatusBadRequest, codeNoMatchCodec
			if code != ivs.ErrInvalidVideoCodec && code != ivs.ErrInvalidAudioCodec {
				c = codeGeneric
			}
			fail(w, status, c, string(code)+": "+msg)
			return
		}
	}
	hooks := media.PublishHooks{
		OnMedia: func() {
			if err := h.cfg.Domain.StartPublish(bg(), pr); err != nil {
				h.log.Info("whip: publish refused when media started", "participant", pr.ID, "err", err)
				go s.close()
			}
		},
		OnViolation: func(code ivs.ErrorCode, msg string) {
			h.log.Info("whip: media policy violation", "participant", pr.ID, "code", code, "detail", msg)
			if err := h.cfg.Domain.RecordError(bg(), pr, ivs.EventPublishError, code, ""); err != nil {
				h.log.Error("whip: record publish error", "err", err)
			}
		},
		OnClosed: func() {
			h.remove(s.id)
			if err := h.cfg.Domain.StopPublish(bg(), pr); err != nil {
				h.log.Error("whip: stop publish", "err", err)
			}
			leave()
		},
	}
	if h.cfg.Inspector != nil {
		hooks.Inspector = h.cfg.Inspector()
	}
	pub, answer, err := h.cfg.SFU.Publish(ctx, pr.Stage, pr.ID, offer, hooks)
	if err != nil {
		leave()
		h.negotiationFailed(w, r, err)
		return
	}
	s.pub = pub
	h.add(s)
	h.created(w, s, answer)
}

// subscribe handles POST <whip>/subscribe/<publisherId>.
func (h *Handler) subscribe(w http.ResponseWriter, r *http.Request) {
	claims, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	offer, ok := readOffer(w, r)
	if !ok {
		return
	}
	remote := ivs.ParticipantID(r.PathValue("publisherId"))
	ctx, cancel := context.WithTimeout(r.Context(), negotiateDeadline)
	defer cancel()
	s := &session{id: newSessionID(), claims: claims}
	pr, err := h.cfg.Domain.Join(ctx, stage.JoinRequest{Claims: claims, Client: h.clientInfo(r), Kind: stage.ConnSubscribe, Remote: remote,
		OnClose: func(stage.CloseReason) { go s.close() }})
	if err != nil {
		h.joinFailed(w, r, err)
		return
	}
	s.presence = pr
	leave := func() { _ = pr.Leave(bg()) }
	if err := h.cfg.Domain.CheckSubscribe(ctx, pr, remote); err != nil {
		leave()
		h.refused(w, r, err)
		return
	}
	sub, answer, err := h.cfg.SFU.Subscribe(ctx, pr.Stage, remote, offer, media.SubscribeHooks{
		OnConnected: func() {
			if err := h.cfg.Domain.StartSubscribe(bg(), pr, remote); err != nil {
				h.log.Info("whip: subscribe refused when media started", "participant", pr.ID, "err", err)
				go s.close()
			}
		},
		OnClosed: func() {
			h.remove(s.id)
			if err := h.cfg.Domain.StopSubscribe(bg(), pr, remote); err != nil {
				h.log.Error("whip: stop subscribe", "err", err)
			}
			leave()
		},
	})
	if errors.Is(err, media.ErrPublisherNotFound) {
		// The domain thought remote was publishing but no media is here (it just stopped).
		if rerr := h.cfg.Domain.RecordError(ctx, pr, ivs.EventSubscribeError, ivs.ErrPublisherNotFound, remote); rerr != nil {
			h.log.ErrorContext(ctx, "whip: record subscribe error", "err", rerr)
		}
		leave()
		fail(w, http.StatusNotFound, codeNotFound, "participant "+string(remote)+" is not publishing")
		return
	}
	if err != nil {
		leave()
		h.negotiationFailed(w, r, err)
		return
	}
	s.sub = sub
	h.add(s)
	h.created(w, s, answer)
}

func (h *Handler) joinFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, stage.ErrQuotaExceeded):
		fail(w, http.StatusForbidden, codeAtCapacity, err.Error())
	case errors.Is(err, stage.ErrRevoked):
		fail(w, http.StatusForbidden, codeNoPermission, err.Error())
	case errors.Is(err, stage.ErrStageNotFound):
		fail(w, http.StatusForbidden, codeNoPermission, err.Error())
	default:
		h.log.ErrorContext(r.Context(), "whip: join", "err", err)
		fail(w, http.StatusInternalServerError, codeInternal, "internal error")
	}
}

// refused answers a publish or subscribe the domain refused (it has recorded the error event).
func (h *Handler) refused(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, stage.ErrInsufficientCapabilities):
		fail(w, http.StatusForbidden, codeNoPermission, "the participant token does not allow this")
	case errors.Is(err, stage.ErrQuotaExceeded):
		fail(w, http.StatusForbidden, codeAtCapacity, err.Error())
	case errors.Is(err, stage.ErrPublisherNotFound):
		fail(w, http.StatusNotFound, codeNotFound, err.Error())
	default:
		h.joinFailed(w, r, err)
	}
}

func (h *Handler) negotiationFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, media.ErrBadOffer) {
		fail(w, http.StatusBadRequest, codeNoMatchCodec, err.Error())
		return
	}
	h.log.ErrorContext(r.Context(), "whip: negotiate", "err", err)
	fail(w, http.StatusInternalServerError, codeInternal, "could not negotiate the session")
}

// ownSession finds the session and checks the request's token is the session's participant's.
func (h *Handler) ownSession(w http.ResponseWriter, r *http.Request) *session {
	s := h.lookup(r.PathValue("id"))
	if s == nil {
		fail(w, http.StatusNotFound, codeNotFound, "no such session")
		return nil
	}
	claims, ok := h.authenticate(w, r)
	if !ok {
		return nil
	}
	if claims.ParticipantID != s.claims.ParticipantID || claims.Topic != s.claims.Topic {
		fail(w, http.StatusForbidden, codeNoPermission, "the session belongs to another participant")
		return nil
	}
	return s
}

// delete ends a session (RFC 9725 §4.2).
func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	s := h.ownSession(w, r)
	if s == nil {
		return
	}
	s.close()
	w.WriteHeader(http.StatusOK)
}

// patch applies trickled ICE candidates (RFC 9725 §4.3.1, application/trickle-ice-sdpfrag, RFC 8840).
// ICE restarts are not offered: a fragment with new credentials is refused.
func (h *Handler) patch(w http.ResponseWriter, r *http.Request) {
	s := h.ownSession(w, r)
	if s == nil {
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/trickle-ice-sdpfrag" {
		fail(w, http.StatusUnsupportedMediaType, codeGeneric, "Content-Type must be application/trickle-ice-sdpfrag")
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		fail(w, http.StatusBadRequest, codeGeneric, "body too large")
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "a=ice-ufrag:") || strings.HasPrefix(line, "a=ice-pwd:") {
			continue // the same credentials are allowed; pion checks them on the candidate pair
		}
		if !strings.HasPrefix(line, "a=candidate:") {
			continue
		}
		c := strings.TrimPrefix(line, "a=")
		if s.pub != nil {
			err = s.pub.AddICECandidate(c)
		} else if s.sub != nil {
			err = s.sub.AddICECandidate(c)
		}
		if err != nil {
			fail(w, http.StatusBadRequest, codeGeneric, "bad candidate: "+err.Error())
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// Close ends every session (shutdown).
func (h *Handler) Close() {
	h.mu.Lock()
	all := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}
