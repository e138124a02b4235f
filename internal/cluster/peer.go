package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
)

// Node-to-node calls: the API operations that act on a stage's live state (DisconnectParticipant,
// DeleteStage), answered by a node that is not the owner, are made on the owner before the answer
// (docs/DESIGN.md §6.2). They travel as small JSON requests under InternalPrefix, signed with the key the
// nodes share, and carry the domain error's kind back so that the API answers as the owner would have.

// InternalPrefix is where a node serves the other nodes' calls.
const InternalPrefix = "/_openstage/cluster/v1/"

// headerAuth carries a node's signature on a forwarded request or a node-to-node call:
// "node=<id>;for=<client address>;t=<unix seconds>;sig=<hex HMAC-SHA256>".
const headerAuth = "X-Openstage-Node-Auth"

// authWindow is how far a signature's time may be from the receiver's clock (clock skew and transit).
const authWindow = time.Minute

func randomKey() ([]byte, error) {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	return b, err
}

type forwardedKey struct{}

// withForwarded marks a context as serving a request another node sent here.
func withForwarded(ctx context.Context) context.Context {
	return context.WithValue(ctx, forwardedKey{}, true)
}

func forwarded(ctx context.Context) bool { v, _ := ctx.Value(forwardedKey{}).(bool); return v }

// sign computes the signature of a request: who sends it, for which client, when, and what (method, the
// request URI and a hash of the body, empty for a streamed body).
func (c *Cluster) sign(node store.NodeID, client string, t int64, method, uri string, bodyHash string) string {
	m := hmac.New(sha256.New, c.key)
	fmt.Fprintf(m, "openstage node auth v1\n%s\n%s\n%d\n%s\n%s\n%s", node, client, t, method, uri, bodyHash)
	return hex.EncodeToString(m.Sum(nil))
}

// authHeader is this node's signature header for a request.
func (c *Cluster) authHeader(client, method, uri, bodyHash string) string {
	t := time.Now().Unix()
	return fmt.Sprintf("node=%s;for=%s;t=%d;sig=%s", c.cfg.Self.ID, client, t, c.sign(c.cfg.Self.ID, client, t, method, uri, bodyHash))
}

// verified checks r's signature header; it returns the signing node and the client address it vouches for.
func (c *Cluster) verified(r *http.Request, bodyHash string) (node store.NodeID, client string, ok bool) {
	h := r.Header.Get(headerAuth)
	if h == "" {
		return "", "", false
	}
	var sig string
	var t int64
	for part := range strings.SplitSeq(h, ";") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "node":
			node = store.NodeID(v)
		case "for":
			client = v
		case "t":
			t, _ = strconv.ParseInt(v, 10, 64)
		case "sig":
			sig = v
		}
	}
	if d := time.Since(time.Unix(t, 0)); d > authWindow || d < -authWindow {
		return "", "", false
	}
	want := c.sign(node, client, t, r.Method, r.URL.RequestURI(), bodyHash)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return "", "", false
	}
	return node, client, true
}

func hashBody(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// call is one node-to-node call's body.
type call struct {
	StageARN      string `json:"stageArn"`
	ParticipantID string `json:"participantId,omitempty"`
	Reason        string `json:"reason,omitempty"`
}

// callError is a refused call's answer: the domain error's kind and text.
type callError struct {
	Kind    stage.Kind `json:"kind"`
	Message string     `json:"message"`
}

// peer is another node, as the domain calls it (stage.Peer).
type peer struct {
	c    *Cluster
	node store.Node
}

func (p *peer) DisconnectParticipant(ctx context.Context, stageARN string, pid ivs.ParticipantID, reason string) error {
	return p.do(ctx, "disconnect-participant", call{StageARN: stageARN, ParticipantID: string(pid), Reason: reason})
}

func (p *peer) DeleteStage(ctx context.Context, stageARN string) error {
	return p.do(ctx, "delete-stage", call{StageARN: stageARN})
}

func (p *peer) do(ctx context.Context, op string, body call) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	u := strings.TrimRight(p.node.URL, "/") + InternalPrefix + op
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("cluster: call %s: %w", p.node.ID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerAuth, p.c.authHeader("", http.MethodPost, req.URL.RequestURI(), hashBody(b)))
	resp, err := p.c.client.Do(req)
	if err != nil {
		// The owner is unreachable: it may be dying, and its stages will move once its lease lapses.
		return fmt.Errorf("%w (node %s: %v)", ErrUnavailable, p.node.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	var ce callError
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &ce) == nil && ce.Message != "" {
		return stage.NewKindError(ce.Kind, ce.Message)
	}
	return fmt.Errorf("%w (node %s answered %s)", ErrUnavailable, p.node.ID, resp.Status)
}

// Handler serves the other nodes' calls at InternalPrefix. Calls not signed with the nodes' key are
// refused (403) before their body is used.
func (c *Cluster) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		if _, _, ok := c.verified(r, hashBody(b)); !ok {
			http.Error(w, "not a node of this cluster", http.StatusForbidden)
			return
		}
		var in call
		if err := json.Unmarshal(b, &in); err != nil {
			http.Error(w, "bad call", http.StatusBadRequest)
			return
		}
		ctx := withForwarded(r.Context())
		switch strings.TrimPrefix(r.URL.Path, InternalPrefix) {
		case "disconnect-participant":
			err = c.cfg.Domain.DisconnectParticipant(ctx, in.StageARN, ivs.ParticipantID(in.ParticipantID), in.Reason)
		case "delete-stage":
			err = c.cfg.Domain.DeleteStage(ctx, in.StageARN)
		default:
			http.NotFound(w, r)
			return
		}
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(callError{Kind: stage.KindOf(err), Message: err.Error()})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
