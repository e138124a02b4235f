package server

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/openstage/openstage/internal/api"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/notify"
	"github.com/openstage/openstage/internal/sigv4"
)

// notifications is what pushes the notification log out (docs/DESIGN.md §5.6): the webhooks' deliverers
// and the event stream, fed by one tail of the log.
type notifications struct {
	tail      *notify.Tail
	stream    *notify.Stream
	endpoints []notify.Endpoint
	webhooks  *notify.Webhooks
	admin     *notify.Admin // dead letters and their replay, for operators
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// streamAction is what a key must be allowed to read the event stream: the participant events are what
// ListParticipantEvents shows.
const streamAction = "ivs:ListParticipantEvents"

func (s *Server) buildNotifications(keys *api.Keys, all []api.Key) error {
	acct := ivs.Account{Region: s.cfg.Region, ID: s.cfg.AccountID}
	n := &notifications{tail: notify.NewTail(s.store, 0, s.log)}
	for _, w := range s.cfg.Webhooks {
		ep := notify.Endpoint{Name: w.Name, URL: w.URL, Secret: w.Secret}
		for _, k := range w.Events {
			if !notify.Known(notify.Kind(k)) {
				return fmt.Errorf("server: webhook %s: unknown event kind %q (one of %v)", w.Name, k, notify.Kinds())
			}
			if ep.Kinds == nil {
				ep.Kinds = map[notify.Kind]bool{}
			}
			ep.Kinds[notify.Kind(k)] = true
		}
		for _, st := range w.Stages {
			id := ivs.StageID(st)
			if strings.HasPrefix(st, "arn:") {
				var ok bool
				if id, ok = acct.StageIDFromARN(st); !ok {
					return fmt.Errorf("server: webhook %s: %q is not a stage ARN of this server", w.Name, st)
				}
			}
			if ep.Stages == nil {
				ep.Stages = map[ivs.StageID]bool{}
			}
			ep.Stages[id] = true
		}
		n.endpoints = append(n.endpoints, ep)
	}
	verifier := &sigv4.Verifier{Keys: keys, Service: "ivs", Regions: []string{s.cfg.Region}}
	consoleKey := s.cfg.ConsoleKey
	// A key is accepted as SigV4 (what SDKs send), or as a bearer secret: the console key, or an API key's
	// secret access key whose actions allow the stream. EventSource cannot set headers, so the same value
	// is accepted as ?key= (for the console's pages on this origin; a URL is logged by proxies, a header
	// is not, so other clients should use the header).
	bearer := func(secret string) bool {
		if secret == "" {
			return false
		}
		ok := false
		if consoleKey != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(consoleKey)) == 1 {
			ok = true
		}
		for _, k := range all {
			if subtle.ConstantTimeCompare([]byte(secret), []byte(k.SecretAccessKey)) == 1 && keys.Allowed(k.AccessKeyID, streamAction) {
				ok = true
			}
		}
		return ok
	}
	n.stream = &notify.Stream{Store: s.store, Account: acct, Tail: n.tail, Log: s.log,
		Authorized: func(r *http.Request) bool {
			if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
				return bearer(strings.TrimPrefix(h, "Bearer "))
			}
			if r.Header.Get("Authorization") != "" || r.URL.Query().Get("X-Amz-Signature") != "" {
				id, err := verifier.Verify(r, nil)
				return err == nil && keys.Allowed(id, streamAction)
			}
			return bearer(r.URL.Query().Get("key"))
		}}
	names := make([]string, len(n.endpoints))
	for i, e := range n.endpoints {
		names[i] = e.Name
	}
	n.admin = &notify.Admin{Store: s.store, Endpoints: names, Authorized: func(r *http.Request, body []byte, action string) bool {
		id, err := verifier.Verify(r, body)
		return err == nil && keys.Allowed(id, action)
	}}
	s.notify = n
	return nil
}

// start runs the tail and the webhooks; stop ends them. The webhooks stop before the domain's shutdown:
// what it writes then (everyone LEFT) is delivered at the next start, from the store.
func (n *notifications) start(s *Server) {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Go(func() { n.tail.Run(ctx) })
	if len(n.endpoints) == 0 {
		return
	}
	owner := "local"
	if s.cluster != nil {
		owner = string(s.cluster.Self())
	}
	names := make([]string, len(n.endpoints))
	for i, e := range n.endpoints {
		names[i] = e.Name
	}
	n.webhooks = notify.Start(notify.Config{Store: s.store, Account: ivs.Account{Region: s.cfg.Region, ID: s.cfg.AccountID},
		Endpoints: n.endpoints, Owner: owner, Tail: n.tail, MaxAttempts: s.cfg.WebhookMaxAttempts,
		RetryBase: s.cfg.WebhookRetryBase, RetryMax: s.cfg.WebhookRetryMax, Timeout: s.cfg.WebhookTimeout,
		Observer: s.metrics.Webhooks(names), Log: s.log})
}

func (n *notifications) stop() {
	n.stream.Close()
	if n.webhooks != nil {
		n.webhooks.Close()
	}
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
}
