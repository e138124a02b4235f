// Package whip is the HTTP side of the media plane: WHIP publish (RFC 9725), the IVS subscribe endpoint,
// session DELETE and trickle PATCH, CORS for browser apps on other origins, and the 307 from the host root.
// It is a transport: it authenticates the token, decodes the request, calls one stage domain operation
// (Publish, Subscribe, or a session's Close and AddICECandidate), and encodes the answer. Every rule about
// who may publish or subscribe, which connection wins, and what the history says lives in the domain.
package whip

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
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

	"github.com/openstage/openstage/internal/admission"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/token"
)

// Config wires the handler.
type Config struct {
	Domain *stage.Service
	// WHIPURL is the stages' whip endpoint (absolute); session URLs are made under it.
	WHIPURL string
	// ClientInfo tells what the request says of the client; nil records only the protocol.
	ClientInfo func(r *http.Request, p ivs.Protocol) ivs.ClientInfo
	// OnRejected counts refused tokens by reason (metrics).
	OnRejected func(reason string)
	Log        *slog.Logger
	// Node, when several nodes share the store, is this node's id: session resource ids begin with it and a
	// dot ("<node>.<random>"), so that any node receiving a request for the resource knows where it lives
	// (internal/cluster forwards it there).
	Node string
}

// Handler serves the WHIP endpoints. Mount it at the path of WHIPURL (e.g. "/whip") and at "POST /".
type Handler struct {
	cfg  Config
	log  *slog.Logger
	base string // path prefix of WHIPURL, e.g. "/whip"
	mux  *http.ServeMux

	mu       sync.Mutex
	sessions map[string]*resource
}

// resource is one WHIP session resource (RFC 9725 §4.1): its URL's id, the token's participant, and
// the domain's media session. secret is in the URLs of its Link rels only (the unload beacon and the
// playback controls, which browsers call in ways that cannot carry an Authorization header), and
// tokenHash identifies the token that made the session, which those requests must show when they carry one.
type resource struct {
	id        string
	secret    string
	tokenHash [sha256.Size]byte
	claims    token.Claims
	ms        *stage.MediaSession
	subscribe bool
}

// The Link rels the IVS web SDK reads on WHIP answers (docs/DESIGN.md §4.5).
const (
	relSessionDelete    = "urn:ietf:params:whip:ivs-stages:session-delete"
	relPlaybackControls = "urn:ietf:params:whep:core:playback-controls"
	relLayer            = "urn:ietf:params:whep:ext:core:layer"
)

// New makes the handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	base, err := pathOf(cfg.WHIPURL)
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, log: cfg.Log, base: base, mux: http.NewServeMux(), sessions: map[string]*resource{}}
	h.mux.HandleFunc("POST "+base, h.publish)
	h.mux.HandleFunc("POST "+base+"/publish/{participantId}", h.publish)
	h.mux.HandleFunc("POST "+base+"/subscribe/{publisherId}", h.subscribe)
	h.mux.HandleFunc("DELETE "+base+"/session/{id}", h.delete)
	h.mux.HandleFunc("PATCH "+base+"/session/{id}", h.patch)
	h.mux.HandleFunc("POST "+base+"/session/{id}/end/{secret}", h.beacon)
	h.mux.HandleFunc("POST "+base+"/session/{id}/playback/{secret}", h.playback)
	h.mux.HandleFunc("GET "+base+"/session/{id}/layer/{secret}", h.layers)
	h.mux.HandleFunc("POST "+base+"/session/{id}/layer/{secret}", h.selectLayer)
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
// credential (docs/DESIGN.md §4.7). Preflights get whatever headers they ask for (the IVS SDK sends eight X-Stages-*).
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
	h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, GET, OPTIONS")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	} else {
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// IVS's numeric error codes in WHIP error bodies, as the IVS SDKs read them (docs/DESIGN.md §4.5).
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

// reject answers a refused token. The request's address spends one of its failed authentications
// (admission: past its budget, its requests are refused before they get here), and the refusal is logged
// at most once an interval per address, with the count of those that were not: a log line per refusal
// would let anyone fill the disk.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, reason string, status, code int, msg string) {
	if d := admission.Failed(r.Context()); d.Log {
		h.log.InfoContext(r.Context(), "whip: token refused", "reason", reason, "path", r.URL.Path, "remote", r.RemoteAddr,
			"not_logged", d.Unlogged)
	}
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

// newResource makes a resource and the domain request for it: the resource is forgotten when its session
// ends, however it ends.
func (h *Handler) newResource(r *http.Request, claims token.Claims, offer string) (*resource, stage.MediaRequest) {
	id := newSessionID()
	if h.cfg.Node != "" {
		id = h.cfg.Node + "." + id
	}
	res := &resource{id: id, secret: newSessionID(), tokenHash: sha256.Sum256([]byte(bearer(r))), claims: claims}
	return res, stage.MediaRequest{Claims: claims, Client: h.clientInfo(r), Offer: offer, OnEnd: func() { h.remove(res.id) }}
}

func (h *Handler) add(res *resource) {
	h.mu.Lock()
	h.sessions[res.id] = res
	h.mu.Unlock()
}

func (h *Handler) remove(id string) {
	h.mu.Lock()
	delete(h.sessions, id)
	h.mu.Unlock()
}

func (h *Handler) lookup(id string) *resource {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[id]
}

// created registers the resource and answers 201 with the SDP answer and the session's absolute Location
// (the IVS SDK resolves relative ones wrongly). A session that ended before it was registered is not kept:
// its OnEnd may have run first.
func (h *Handler) created(w http.ResponseWriter, res *resource, answer string) {
	h.add(res)
	if res.ms.Ended() {
		h.remove(res.id)
	}
	session := h.cfg.WHIPURL + "/session/" + res.id
	w.Header().Set("Location", session)
	w.Header().Set("ETag", `"`+res.id+`"`)
	w.Header().Add("Link", "<"+session+"/end/"+res.secret+`>; rel="`+relSessionDelete+`"`)
	if res.subscribe {
		w.Header().Add("Link", "<"+session+"/playback/"+res.secret+`>; rel="`+relPlaybackControls+`"`)
		w.Header().Add("Link", "<"+session+"/layer/"+res.secret+`>; rel="`+relLayer+`"`)
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

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
	res, req := h.newResource(r, claims, offer)
	ms, answer, err := h.cfg.Domain.Publish(ctx, req)
	if err != nil {
		h.failFor(w, r, err)
		return
	}
	res.ms = ms
	h.created(w, res, answer)
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
	ctx, cancel := context.WithTimeout(r.Context(), negotiateDeadline)
	defer cancel()
	res, req := h.newResource(r, claims, offer)
	res.subscribe = true
	// The IVS SDK's first-layer hint for a simulcast publisher: "lowest" (its default) or "highest".
	if pref := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Stages-Initial-Layer-Pref"))); pref == "highest" || pref == "lowest" {
		req.LayerPref = pref
	}
	ms, answer, err := h.cfg.Domain.Subscribe(ctx, stage.SubscribeRequest{MediaRequest: req, Publisher: ivs.ParticipantID(r.PathValue("publisherId"))})
	if err != nil {
		h.failFor(w, r, err)
		return
	}
	res.ms = ms
	h.created(w, res, answer)
}

// answers is this transport's one table of the domain's error kinds: the HTTP status and the IVS code
// the SDKs read (docs/DESIGN.md §4). A kind missing here is a 500.
var answers = map[stage.Kind]struct{ status, code int }{
	stage.KindNotFound:    {http.StatusNotFound, codeNotFound},
	stage.KindForbidden:   {http.StatusForbidden, codeNoPermission},
	stage.KindQuota:       {http.StatusForbidden, codeAtCapacity},
	stage.KindInvalid:     {http.StatusBadRequest, codeGeneric},
	stage.KindConflict:    {http.StatusConflict, codeGeneric},
	stage.KindUnavailable: {http.StatusServiceUnavailable, codeInternal},
}

// failFor answers a domain error by its kind. An offer the media policy refuses for its codecs answers
// the IVS SDK's "no matching codec" code, which it reports as such.
func (h *Handler) failFor(w http.ResponseWriter, r *http.Request, err error) {
	a, ok := answers[stage.KindOf(err)]
	if !ok {
		h.log.ErrorContext(r.Context(), "whip: request failed", "path", r.URL.Path, "err", err)
		fail(w, http.StatusInternalServerError, codeInternal, "internal error")
		return
	}
	var oe *stage.OfferError
	if errors.As(err, &oe) && (oe.Code == string(ivs.ErrInvalidVideoCodec) || oe.Code == string(ivs.ErrInvalidAudioCodec)) ||
		errors.Is(err, stage.ErrBadOffer) {
		a.code = codeNoMatchCodec
	}
	if a.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	fail(w, a.status, a.code, err.Error())
}

// ownSession finds the session and checks the request's token is the session's participant's.
func (h *Handler) ownSession(w http.ResponseWriter, r *http.Request) *resource {
	res := h.lookup(r.PathValue("id"))
	if res == nil {
		fail(w, http.StatusNotFound, codeNotFound, "no such session")
		return nil
	}
	claims, ok := h.authenticate(w, r)
	if !ok {
		return nil
	}
	if claims.ParticipantID != res.claims.ParticipantID || claims.Topic != res.claims.Topic {
		fail(w, http.StatusForbidden, codeNoPermission, "the session belongs to another participant")
		return nil
	}
	return res
}

// delete ends a session (RFC 9725 §4.2).
func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	res := h.ownSession(w, r)
	if res == nil {
		return
	}
	res.ms.Close()
	w.WriteHeader(http.StatusOK)
}

// linked finds the session of a Link rel's URL: its id and its secret must match. The answer to anything
// else is a 404, whichever part was wrong.
func (h *Handler) linked(w http.ResponseWriter, r *http.Request) *resource {
	res := h.lookup(r.PathValue("id"))
	if res == nil || subtle.ConstantTimeCompare([]byte(r.PathValue("secret")), []byte(res.secret)) != 1 {
		fail(w, http.StatusNotFound, codeNotFound, "no such session")
		return nil
	}
	return res
}

// sameToken reports whether raw (a bearer token, possibly with its "Bearer " prefix) is the token that
// made the session. It is compared, not verified again: the session was made with it, and a token that
// expired since then still ends or controls its own session (IVS checks expiry at join only).
func (res *resource) sameToken(raw string) bool {
	raw = strings.TrimSpace(raw)
	if len(raw) > 7 && strings.EqualFold(raw[:7], "Bearer ") {
		raw = strings.TrimSpace(raw[7:])
	}
	sum := sha256.Sum256([]byte(raw))
	return subtle.ConstantTimeCompare(sum[:], res.tokenHash[:]) == 1
}

// beacon ends a session on its client's page unload: the IVS web SDK POSTs its session-delete link with
// navigator.sendBeacon, a text/plain body {"authorization":"<token>"} and no Authorization header (a
// beacon cannot set one). The URL's secret and the token that made the session authenticate it; the
// session then ends as on DELETE.
func (h *Handler) beacon(w http.ResponseWriter, r *http.Request) {
	res := h.linked(w, r)
	if res == nil {
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		fail(w, http.StatusBadRequest, codeGeneric, "body too large")
		return
	}
	var body struct {
		Authorization string `json:"authorization"`
	}
	raw := r.Header.Get("Authorization")
	if json.Unmarshal(b, &body) == nil && body.Authorization != "" {
		raw = body.Authorization
	}
	if !res.sameToken(raw) {
		h.reject(w, r, "missing", http.StatusForbidden, codeNoPermission, "the session-delete beacon must carry the session's participant token")
		return
	}
	res.ms.Close()
	w.WriteHeader(http.StatusNoContent)
}

// playback pauses and resumes a subscription's media (the WHEP playback-controls link): a JSON body
// {"pause":[mid,...]} or {"play":[mid,...]}, as the IVS web SDK sends for a hidden or shown tile. The URL's
// secret authenticates it; a bearer token, when the request carries one, must be the session's.
func (h *Handler) playback(w http.ResponseWriter, r *http.Request) {
	res := h.controlled(w, r)
	if res == nil {
		return
	}
	var body struct {
		Pause []json.RawMessage `json:"pause"`
		Play  []json.RawMessage `json:"play"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&body); err != nil {
		fail(w, http.StatusBadRequest, codeGeneric, `the body must be {"pause":[mid...]} or {"play":[mid...]}`)
		return
	}
	for _, op := range []struct {
		mids   []json.RawMessage
		paused bool
	}{{body.Pause, true}, {body.Play, false}} {
		if len(op.mids) == 0 {
			continue
		}
		mids, ok := midsOf(op.mids)
		if !ok {
			fail(w, http.StatusBadRequest, codeGeneric, "a mid is a string or a number")
			return
		}
		if err := res.ms.SetPaused(mids, op.paused); err != nil {
			h.failFor(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// controlled finds the session of a control link (playback, layer) and checks a bearer token, if the
// request carries one, is the session's; on failure it has answered.
func (h *Handler) controlled(w http.ResponseWriter, r *http.Request) *resource {
	res := h.linked(w, r)
	if res == nil {
		return nil
	}
	if a := r.Header.Get("Authorization"); a != "" && !res.sameToken(a) {
		h.reject(w, r, "missing", http.StatusForbidden, codeNoPermission, "the session belongs to another participant")
		return nil
	}
	return res
}

// layers answers GET on the layer link: the publisher's simulcast layers, lowest first, as the IVS web
// SDK polls them: {"layers":[{"encodingId","bitrate","width","height","framesPerSecond","selected"}]}.
func (h *Handler) layers(w http.ResponseWriter, r *http.Request) {
	res := h.controlled(w, r)
	if res == nil {
		return
	}
	ls, err := res.ms.Layers()
	if err != nil {
		h.failFor(w, r, err)
		return
	}
	type layer struct {
		EncodingID      string  `json:"encodingId"`
		Bitrate         int     `json:"bitrate"`
		Width           int     `json:"width"`
		Height          int     `json:"height"`
		FramesPerSecond float64 `json:"framesPerSecond"`
		Selected        bool    `json:"selected"`
	}
	out := struct {
		Layers []layer `json:"layers"`
	}{Layers: []layer{}}
	for _, l := range ls {
		out.Layers = append(out.Layers, layer(l))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// selectLayer answers POST on the layer link: {"mediaId":mid,"encodingId":rid} makes the subscription
// receive that layer (from its next keyframe); {} returns to the automatic choice.
func (h *Handler) selectLayer(w http.ResponseWriter, r *http.Request) {
	res := h.controlled(w, r)
	if res == nil {
		return
	}
	var body struct {
		MediaID    json.RawMessage `json:"mediaId"`
		EncodingID string          `json:"encodingId"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&body); err != nil {
		fail(w, http.StatusBadRequest, codeGeneric, `the body must be {"mediaId":mid,"encodingId":rid} or {}`)
		return
	}
	mid := ""
	if len(body.MediaID) > 0 && string(body.MediaID) != "null" {
		m, ok := midsOf([]json.RawMessage{body.MediaID})
		if !ok {
			fail(w, http.StatusBadRequest, codeGeneric, "mediaId is a string or a number")
			return
		}
		mid = m[0]
	}
	if err := res.ms.SelectLayer(mid, body.EncodingID); err != nil {
		h.failFor(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// midsOf reads mids written as JSON strings ("1") or numbers (1).
func midsOf(raw []json.RawMessage) ([]string, bool) {
	mids := make([]string, 0, len(raw))
	for _, m := range raw {
		var s string
		if json.Unmarshal(m, &s) == nil {
			mids = append(mids, s)
			continue
		}
		var n json.Number
		if json.Unmarshal(m, &n) != nil {
			return nil, false
		}
		mids = append(mids, n.String())
	}
	return mids, true
}

// patch applies trickled ICE candidates (RFC 9725 §4.3.1, application/trickle-ice-sdpfrag, RFC 8840).
// ICE restarts are not offered: a fragment with new credentials is refused.
func (h *Handler) patch(w http.ResponseWriter, r *http.Request) {
	res := h.ownSession(w, r)
	if res == nil {
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
		if err := res.ms.AddICECandidate(strings.TrimPrefix(line, "a=")); err != nil {
			fail(w, http.StatusBadRequest, codeGeneric, "bad candidate: "+err.Error())
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// Close ends every session (shutdown).
func (h *Handler) Close() {
	h.mu.Lock()
	all := make([]*resource, 0, len(h.sessions))
	for _, res := range h.sessions {
		all = append(all, res)
	}
	h.mu.Unlock()
	for _, res := range all {
		res.ms.Close()
	}
}
