// Package api serves the IVS Real-Time control-plane API (AWS restJson1, SigV4) over the stage domain.
// It authenticates, validates every request against the model, calls the domain, and writes the model's
// output shapes and error types. It holds no rules of its own beyond the wire.
package api

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/openstage/openstage/internal/api/validate"
	"github.com/openstage/openstage/internal/awserr"
	"github.com/openstage/openstage/internal/sigv4"
	"github.com/openstage/openstage/internal/stage"
)

// MaxBodyBytes is the largest request body accepted (docs/DESIGN.md §2.3: 1 MiB).
const MaxBodyBytes = 1 << 20

// Config wires the handler.
type Config struct {
	Domain *stage.Service
	Keys   *Keys
	// Regions accepted in SigV4 credential scopes; empty accepts any.
	Regions []string
	// PageKey signs pagination tokens; nodes that share a store must share it.
	PageKey []byte
	Log     *slog.Logger
	Now     func() time.Time // for SigV4 clock checks; nil = time.Now
	// Observe, if set, is told of every call: the operation (one of Operations, or "" when the request
	// names none: never the client's string), the AWS error type ("" on success) and how long it took
	// (metrics).
	Observe func(op, errorType string, d time.Duration)
}

// modelOperations is every operation of the AWS model, the supported ones and those answered "not supported":
// the closed set of names Observe reports. metrics_labels_test.go checks it against the generated table.
var modelOperations = []string{
	"CreateEncoderConfiguration", "CreateIngestConfiguration", "CreateParticipantToken", "CreateStage",
	"CreateStorageConfiguration", "DeleteEncoderConfiguration", "DeleteIngestConfiguration", "DeletePublicKey",
	"DeleteStage", "DeleteStorageConfiguration", "DisconnectParticipant", "GetComposition",
	"GetEncoderConfiguration", "GetIngestConfiguration", "GetParticipant", "GetPublicKey", "GetStage",
	"GetStageSession", "GetStorageConfiguration", "ImportPublicKey", "ListCompositions",
	"ListEncoderConfigurations", "ListIngestConfigurations", "ListParticipantEvents", "ListParticipantReplicas",
	"ListParticipants", "ListPublicKeys", "ListStageSessions", "ListStages", "ListStorageConfigurations",
	"ListTagsForResource", "StartComposition", "StartParticipantReplication", "StopComposition",
	"StopParticipantReplication", "TagResource", "UntagResource", "UpdateIngestConfiguration", "UpdateStage",
}

// Operations returns every operation of the model: the names Config.Observe may report besides "".
func Operations() []string { return slices.Clone(modelOperations) }

// Handler is the API's http.Handler.
type Handler struct {
	domain   *stage.Service
	keys     *Keys
	verifier *sigv4.Verifier
	pager    pager
	log      *slog.Logger
	mux      *http.ServeMux
	observe  func(op, errorType string, d time.Duration)
}

// New makes the handler.
func New(cfg Config) *Handler {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	h := &Handler{
		domain:   cfg.Domain,
		keys:     cfg.Keys,
		verifier: &sigv4.Verifier{Keys: cfg.Keys, Service: "ivs", Regions: cfg.Regions, Now: cfg.Now},
		pager:    pager{key: cfg.PageKey},
		log:      cfg.Log,
		mux:      http.NewServeMux(),
		observe:  cfg.Observe,
	}
	// restJson1 routes of the model: POST /<Operation> for all but the tag operations, whose ARN label
	// arrives percent-encoded (a '/' as %2F), which ServeMux matches and decodes for PathValue.
	h.mux.HandleFunc("POST /{op}", func(w http.ResponseWriter, r *http.Request) {
		op := r.PathValue("op")
		if tagOperations[op] {
			op = "" // the tag operations live at /tags/{resourceArn} only
		}
		h.serve(w, r, op, nil)
	})
	h.mux.HandleFunc("GET /tags/{resourceArn}", h.tags("ListTagsForResource"))
	h.mux.HandleFunc("POST /tags/{resourceArn}", h.tags("TagResource"))
	h.mux.HandleFunc("DELETE /tags/{resourceArn}", h.tags("UntagResource"))
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, "", nil) })
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) tags(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		bound := map[string]any{"resourceArn": r.PathValue("resourceArn")}
		if op == "UntagResource" {
			keys := []any{}
			for _, k := range r.URL.Query()["tagKeys"] {
				keys = append(keys, k)
			}
			if len(keys) > 0 || r.URL.Query().Has("tagKeys") {
				bound["tagKeys"] = keys
			}
		}
		h.serve(w, r, op, bound)
	}
}

var tagOperations = map[string]bool{"ListTagsForResource": true, "TagResource": true, "UntagResource": true}

// request is one API call on its way through the handler.
type request struct {
	op    string
	body  []byte
	bound map[string]any // members bound from the URL (the tag operations)
}

// newRequestID is a random id in the form of a UUID (8-4-4-4-12 hex digits), as x-amzn-RequestId: one
// allocation, the string itself. It names a call in logs and answers and guards nothing, so the
// runtime's generator does (crypto/rand's getrandom call was 2.6% of a GetParticipant, profiled).
func newRequestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:16], rand.Uint64())
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	hex.Encode(out[9:13], b[4:6])
	hex.Encode(out[14:18], b[6:8])
	hex.Encode(out[19:23], b[8:10])
	hex.Encode(out[24:36], b[10:16])
	out[8], out[13], out[18], out[23] = '-', '-', '-', '-'
	return string(out[:])
}

// jsonContentType is every answer's Content-Type value, shared: nothing changes a header value in place
// (Header.Add appends, and the capacity of one makes that a copy).
var jsonContentType = []string{"application/json"}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, op string, bound map[string]any) {
	start := time.Now()
	rid := newRequestID()
	hdr := w.Header()
	// The answer's header values share one array (one allocation, not three); the names are canonical
	// already, where Header.Set would canonicalise them per request.
	vals := new([2]string)
	vals[0] = rid
	hdr["X-Amzn-Requestid"] = vals[0:1:1]
	ctx := r.Context()

	out, err := h.call(ctx, r, op, bound)
	if err != nil {
		logOp := op
		if !validate.Known(op) {
			logOp = "unknown" // the path is the client's: it is no more fit for a log than for a label
		}
		log := h.log.With("request_id", rid, "op", logOp)
		ae := toAWS(err, log)
		awserr.Write(w, ae)
		log.LogAttrs(ctx, levelFor(ae), "api call failed", slog.String("error_type", string(ae.Type)),
			slog.String("message", ae.Message), slog.Duration("took", time.Since(start)))
		h.report(op, string(ae.Type), start)
		return
	}
	var body []byte
	var buf *[]byte
	if a, ok := out.(jsonAppender); ok {
		buf = bodyBuffers.Get().(*[]byte)
		body = a.appendJSON((*buf)[:0])
	} else if body, err = json.Marshal(out); err != nil {
		awserr.Write(w, toAWS(err, h.log.With("request_id", rid, "op", op)))
		return
	}
	hdr["Content-Type"] = jsonContentType
	// A length up front: net/http would otherwise send answers over 2 KB (list pages) chunked.
	vals[1] = strconv.Itoa(len(body))
	hdr["Content-Length"] = vals[1:2:2]
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	if buf != nil && cap(body) <= maxPooledBody { // Write keeps nothing of body once it returns (io.Writer)
		*buf = body[:0]
		bodyBuffers.Put(buf)
	}
	// Successful calls are logged at debug level only; the logger is asked first, so that a call costs
	// no log record when debug is off (a logger per request was a few per cent of a GetParticipant).
	if h.log.Enabled(ctx, slog.LevelDebug) {
		h.log.LogAttrs(ctx, slog.LevelDebug, "api call", slog.String("request_id", rid), slog.String("op", op),
			slog.Duration("took", time.Since(start)))
	}
	h.report(op, "", start)
}

// report tells Observe of a call. op is what the path said, so anything the model does not name is
// reported as "": a client's bytes (possibly not even UTF-8) must never reach a metric label.
func (h *Handler) report(op, errorType string, start time.Time) {
	if h.observe == nil {
		return
	}
	if !validate.Known(op) {
		op = ""
	}
	h.observe(op, errorType, time.Since(start))
}

// levelFor is the level a failed call is logged at. Refused authentications are anyone's to send, as fast
// as they like: they are counted (metrics) and logged at debug only, so that they cannot fill the log.
func levelFor(e *awserr.Error) slog.Level {
	switch e.Type {
	case awserr.InternalServer:
		return slog.LevelError
	case awserr.MissingAuthenticationToken, awserr.UnrecognizedClient, awserr.InvalidSignature, awserr.IncompleteSignature:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// readBody reads the request body, at most MaxBodyBytes, into a buffer sized by Content-Length when the
// client sent one (io.ReadAll alone starts small and grows).
func readBody(r *http.Request) ([]byte, error) {
	rd := http.MaxBytesReader(nil, r.Body, MaxBodyBytes)
	if n := r.ContentLength; n > 0 && n <= MaxBodyBytes {
		buf := make([]byte, n)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		// Whatever follows a short Content-Length is read as well, as io.ReadAll would have; a probe on the
		// stack first, since io.ReadAll allocates even when nothing follows (profiled).
		var probe [1]byte
		k, err := rd.Read(probe[:])
		if k == 0 && err == io.EOF {
			return buf, nil
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		rest, err := io.ReadAll(rd)
		return append(append(buf, probe[:k]...), rest...), err
	}
	return io.ReadAll(rd)
}

// call runs the steps every request takes: read, authenticate, authorise, find the operation, validate, act.
func (h *Handler) call(ctx context.Context, r *http.Request, op string, bound map[string]any) (any, error) {
	body, err := readBody(r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, awserr.New(awserr.Validation, "request body is larger than %d bytes", MaxBodyBytes)
		}
		return nil, awserr.New(awserr.Validation, "could not read the request body: %v", err)
	}
	akid, err := h.verifier.Verify(r, body)
	if err != nil {
		return nil, err
	}
	if op == "" || !validate.Known(op) {
		return nil, awserr.New(awserr.UnknownOperation, "%s %s is not an operation of the IVS Real-Time API", r.Method, r.URL.Path)
	}
	if !h.keys.Allowed(akid, "ivs:"+op) {
		return nil, awserr.New(awserr.AccessDenied, "access key %s is not authorized to perform ivs:%s", akid, op)
	}
	handle, ok := operations[op]
	if !ok {
		return nil, awserr.New(awserr.Validation, "%s is not supported by openstage", op)
	}
	return handle(ctx, h, &request{op: op, body: body, bound: bound})
}
