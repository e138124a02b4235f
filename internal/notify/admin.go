package notify

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/openstage/openstage/internal/store"
)

// Admin is the operators' side of the webhooks (README, "Webhooks"): the dead letters, and their replay.
//
//	GET  /webhooks/dead-letters[?endpoint=<name>]   {"deadLetters": [{endpoint, id, attempts, lastError, at, replay}]}
//	POST /webhooks/replay  {"endpoint": <name>, "ids": ["12", ...]} (no ids: all of the endpoint's)   {"replayed": n}
//
// `openstage webhooks` is its command-line client.
type Admin struct {
	Store     store.Outbox
	Endpoints []string // the configured endpoints' names
	// Authorized reports whether the request (with its body) carries a key allowed the action: ActionList
	// or ActionReplay.
	Authorized func(r *http.Request, body []byte, action string) bool
}

// The admin actions, as an API key's `actions` name them (a key without actions may do everything).
const (
	ActionList   = "openstage:ListWebhookDeadLetters"
	ActionReplay = "openstage:ReplayWebhookDeadLetters"
)

// DeadLetterView is a dead letter on the wire.
type DeadLetterView struct {
	Endpoint  string    `json:"endpoint"`
	ID        string    `json:"id"` // the notification's id, as delivered
	Attempts  int       `json:"attempts"`
	LastError string    `json:"lastError"`
	At        time.Time `json:"at"`
	Replay    bool      `json:"replay"` // replay asked, not yet delivered
}

// ReplayRequest is POST /webhooks/replay's body.
type ReplayRequest struct {
	Endpoint string   `json:"endpoint"`
	IDs      []string `json:"ids,omitempty"`
}

// Routes mounts the admin on mux.
func (a *Admin) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /webhooks/dead-letters", a.list)
	mux.HandleFunc("POST /webhooks/replay", a.replay)
}

func (a *Admin) list(w http.ResponseWriter, r *http.Request) {
	if !a.Authorized(r, nil, ActionList) {
		adminError(w, http.StatusForbidden, "sign the request with SigV4 with a key allowed "+ActionList)
		return
	}
	endpoint := r.URL.Query().Get("endpoint")
	if endpoint != "" && !slices.Contains(a.Endpoints, endpoint) {
		adminError(w, http.StatusNotFound, "no webhook endpoint named "+strconv.Quote(endpoint))
		return
	}
	dls, err := a.Store.DeadLetters(r.Context(), endpoint)
	if err != nil {
		adminError(w, http.StatusInternalServerError, "reading the dead letters failed")
		return
	}
	out := struct {
		DeadLetters []DeadLetterView `json:"deadLetters"`
	}{DeadLetters: []DeadLetterView{}}
	for _, d := range dls {
		out.DeadLetters = append(out.DeadLetters, DeadLetterView{Endpoint: d.Endpoint, ID: ID(d.Seq), Attempts: d.Attempts,
			LastError: d.LastError, At: d.At.UTC(), Replay: d.Replay})
	}
	writeAdmin(w, http.StatusOK, out)
}

func (a *Admin) replay(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		adminError(w, http.StatusBadRequest, "unreadable body")
		return
	}
	if !a.Authorized(r, body, ActionReplay) {
		adminError(w, http.StatusForbidden, "sign the request with SigV4 with a key allowed "+ActionReplay)
		return
	}
	var in ReplayRequest
	if err := json.Unmarshal(body, &in); err != nil || in.Endpoint == "" {
		adminError(w, http.StatusBadRequest, `the body must be {"endpoint": "<name>", "ids": [...]}`)
		return
	}
	if !slices.Contains(a.Endpoints, in.Endpoint) {
		adminError(w, http.StatusNotFound, "no webhook endpoint named "+strconv.Quote(in.Endpoint))
		return
	}
	seqs := make([]int64, 0, len(in.IDs))
	for _, id := range in.IDs {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 {
			adminError(w, http.StatusBadRequest, "not a notification id: "+strconv.Quote(id))
			return
		}
		seqs = append(seqs, n)
	}
	n, err := a.Store.ReplayDeadLetters(r.Context(), in.Endpoint, seqs)
	if err != nil {
		adminError(w, http.StatusInternalServerError, "marking the dead letters for replay failed")
		return
	}
	writeAdmin(w, http.StatusOK, struct {
		Replayed int `json:"replayed"`
	}{n})
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeAdmin(w, status, struct {
		Message string `json:"message"`
	}{msg})
}

func writeAdmin(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
