package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/teststore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeDomain records what the cluster asks of the domain; it holds the stages it is told to.
type fakeDomain struct {
	mu      sync.Mutex
	held    map[ivs.StageID]bool
	adopted []ivs.StageID
	evicted []ivs.StageID
	calls   []string
}

func newFakeDomain() *fakeDomain { return &fakeDomain{held: map[ivs.StageID]bool{}} }

func (d *fakeDomain) Holds(id ivs.StageID) bool { d.mu.Lock(); defer d.mu.Unlock(); return d.held[id] }
func (d *fakeDomain) Held() []ivs.StageID {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []ivs.StageID
	for id := range d.held {
		ids = append(ids, id)
	}
	return ids
}
func (d *fakeDomain) Adopt(_ context.Context, id ivs.StageID) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.adopted = append(d.adopted, id)
	return 0, nil
}
func (d *fakeDomain) Evict(_ context.Context, id ivs.StageID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.evicted = append(d.evicted, id)
	delete(d.held, id)
	return nil
}
func (d *fakeDomain) DisconnectParticipant(_ context.Context, arn string, pid ivs.ParticipantID, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "disconnect "+arn+" "+string(pid)+" "+reason)
	if pid == "missing" {
		return fmt.Errorf("%w: %s", stage.ErrParticipantNotFound, pid)
	}
	return nil
}
func (d *fakeDomain) DeleteStage(_ context.Context, arn string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "delete "+arn)
	return nil
}

// flakyStore fails heartbeats while down is set, as a node cut off from the database sees them.
type flakyStore struct {
	Store
	down atomic.Bool
}

func (f *flakyStore) Heartbeat(ctx context.Context, n store.Node) error {
	if f.down.Load() {
		return errors.New("database unreachable")
	}
	return f.Store.Heartbeat(ctx, n)
}

func newStage(t *testing.T, s store.Store) ivs.StageID {
	t.Helper()
	id := ivs.NewStageID()
	if err := s.Update(t.Context(), func(tx store.Tx) error {
		return tx.InsertStage(t.Context(), ivs.Stage{ID: id, Name: "s", CreatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

func newNode(t *testing.T, s Store, id store.NodeID, d Domain, ttl time.Duration) *Cluster {
	t.Helper()
	c, err := New(t.Context(), Config{Store: s, Domain: d, TTL: ttl, Self: store.Node{ID: id, URL: "http://127.0.0.1:1", StartedAt: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestFenceGivesUpStagesWhenHeartbeatsFail: a node that cannot heartbeat stops trusting its leases before
// the others may take them: it ends the stages it holds and places nothing until a heartbeat lands again;
// meanwhile another node takes the stage over.
func TestFenceGivesUpStagesWhenHeartbeatsFail(t *testing.T) {
	st := teststore.OpenPostgres(t, teststore.PostgresDSN(t))
	const ttl = 600 * time.Millisecond
	flaky := &flakyStore{Store: st}
	d1, d2 := newFakeDomain(), newFakeDomain()
	n1 := newNode(t, flaky, "n1", d1, ttl)
	n2 := newNode(t, st, "n2", d2, ttl)
	id := newStage(t, st)

	first, release, err := n1.Place(t.Context(), id)
	if err != nil || first != nil {
		t.Fatalf("first place: %v %v", first, err)
	}
	d1.mu.Lock()
	d1.held[id] = true // a participant joined
	d1.mu.Unlock()
	release()
	if pr, _, err := n2.Place(t.Context(), id); err != nil || pr == nil || pr.(*peer).node.ID != "n1" {
		t.Fatalf("n2 places a stage n1 owns: %v %v", pr, err)
	}

	flaky.down.Store(true)
	ivstest.Eventually(t, 3*ttl, 20*time.Millisecond, func() error {
		d1.mu.Lock()
		defer d1.mu.Unlock()
		if len(d1.evicted) != 1 || d1.evicted[0] != id {
			return fmt.Errorf("evicted %v", d1.evicted)
		}
		return nil
	})
	if _, _, err := n1.Place(t.Context(), id); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a fenced node places: %v", err)
	}
	// n2 takes the stage over once n1's heartbeat lapsed, ending what n1 left (Adopt).
	ivstest.Eventually(t, 3*ttl, 20*time.Millisecond, func() error {
		pr, release, err := n2.Place(t.Context(), id)
		if err != nil {
			return err
		}
		if pr != nil {
			return errors.New("still n1's")
		}
		d2.mu.Lock()
		d2.held[id] = true // someone joined there, so n2 keeps it
		d2.mu.Unlock()
		release()
		return nil
	})
	d2.mu.Lock()
	adopted := d2.adopted
	d2.mu.Unlock()
	if len(adopted) == 0 || adopted[len(adopted)-1] != id {
		t.Fatalf("n2 took the stage without ending what n1 left: adopted %v", adopted)
	}

	flaky.down.Store(false)
	ivstest.Eventually(t, 3*ttl, 20*time.Millisecond, func() error {
		pr, _, err := n1.Place(t.Context(), id)
		if err != nil {
			return err
		}
		if pr == nil || pr.(*peer).node.ID != "n2" {
			return fmt.Errorf("n1 after its heartbeats resumed: peer %v, want n2", pr)
		}
		return nil
	})
}

// TestNodeCalls: the other nodes' calls are served only when signed with the shared key, for the time
// window, the method, the path and the body they were signed for; the domain's error kind comes back.
func TestNodeCalls(t *testing.T) {
	st := teststore.OpenPostgres(t, teststore.PostgresDSN(t))
	owner, caller := newFakeDomain(), newFakeDomain()
	const ttl = 5 * time.Second
	n1 := newNode(t, st, "n1", owner, ttl)
	srv := httptest.NewServer(n1.Handler())
	defer srv.Close()
	n2 := newNode(t, st, "n2", caller, ttl)
	p := &peer{c: n2, node: store.Node{ID: "n1", URL: srv.URL}}

	if err := p.DisconnectParticipant(t.Context(), "arn:stage", "p1", "bye"); err != nil {
		t.Fatal(err)
	}
	err := p.DisconnectParticipant(t.Context(), "arn:stage", "missing", "bye")
	if stage.KindOf(err) != stage.KindNotFound || !strings.Contains(err.Error(), "participant not found") {
		t.Fatalf("a refused call: %v (kind %v)", err, stage.KindOf(err))
	}
	if err := p.DeleteStage(t.Context(), "arn:stage"); err != nil {
		t.Fatal(err)
	}
	owner.mu.Lock()
	calls := strings.Join(owner.calls, "; ")
	owner.mu.Unlock()
	if calls != "disconnect arn:stage p1 bye; disconnect arn:stage missing bye; delete arn:stage" {
		t.Fatalf("calls served: %s", calls)
	}

	body := `{"stageArn":"arn:stage"}`
	signed := func(mutate func(r *http.Request)) int {
		r, _ := http.NewRequest(http.MethodPost, srv.URL+InternalPrefix+"delete-stage", strings.NewReader(body))
		r.Header.Set(headerAuth, n2.authHeader("", http.MethodPost, InternalPrefix+"delete-stage", hashBody([]byte(body))))
		mutate(r)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name   string
		mutate func(r *http.Request)
		want   int
	}{
		{"as signed", func(*http.Request) {}, http.StatusNoContent},
		{"no signature", func(r *http.Request) { r.Header.Del(headerAuth) }, http.StatusForbidden},
		{"another body", func(r *http.Request) {
			r.Body = http.NoBody
			r.ContentLength = 0
		}, http.StatusForbidden},
		{"another path", func(r *http.Request) { r.URL.Path = InternalPrefix + "disconnect-participant" }, http.StatusForbidden},
		{"another key", func(r *http.Request) {
			other := &Cluster{cfg: Config{Self: store.Node{ID: "n2"}}, key: []byte("not the cluster's key")}
			r.Header.Set(headerAuth, other.authHeader("", http.MethodPost, InternalPrefix+"delete-stage", hashBody([]byte(body))))
		}, http.StatusForbidden},
		{"too old", func(r *http.Request) {
			old := time.Now().Add(-2 * authWindow).Unix()
			sig := n2.sign("n2", "", old, http.MethodPost, InternalPrefix+"delete-stage", hashBody([]byte(body)))
			r.Header.Set(headerAuth, fmt.Sprintf("node=n2;for=;t=%d;sig=%s", old, sig))
		}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := signed(tc.mutate); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}

// TestFrontDoorTrustsOnlyNodes: a client's own node-auth header is dropped (its request is served as any
// client's), while a node's vouches for the client's address.
func TestFrontDoorTrustsOnlyNodes(t *testing.T) {
	st := teststore.OpenPostgres(t, teststore.PostgresDSN(t))
	n1 := newNode(t, st, "n1", newFakeDomain(), 5*time.Second)
	var got struct {
		remote, auth string
		hop          bool
	}
	h := n1.FrontDoor(RouteResource, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.remote, got.auth, got.hop = r.RemoteAddr, r.Header.Get(headerAuth), forwarded(r.Context())
	}))
	mux := http.NewServeMux()
	mux.Handle("/whip/session/{id}", h)

	r := httptest.NewRequest(http.MethodDelete, "/whip/session/n1.abc", nil)
	r.RemoteAddr = "198.51.100.7:4000"
	r.Header.Set(headerAuth, "node=n2;for=203.0.113.9:1;t=1;sig=00")
	mux.ServeHTTP(httptest.NewRecorder(), r)
	if got.remote != "198.51.100.7:4000" || got.auth != "" || got.hop {
		t.Fatalf("a client's forged header: %+v", got)
	}

	r = httptest.NewRequest(http.MethodDelete, "/whip/session/n1.abc", nil)
	r.RemoteAddr = "10.0.0.2:5000" // the forwarding node
	r.Header.Set(headerAuth, n1.authHeader("203.0.113.9:1234", http.MethodDelete, "/whip/session/n1.abc", ""))
	mux.ServeHTTP(httptest.NewRecorder(), r)
	if got.remote != "203.0.113.9:1234" || got.auth != "" || !got.hop {
		t.Fatalf("a node's forwarded request: %+v", got)
	}
}

// TestRequestStage: the front door routes by the events path's stage, else the token's topic, read without
// verifying it (the owner verifies), whatever other claims the token has; no token, no stage.
func TestRequestStage(t *testing.T) {
	enc := func(claims string) string {
		b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		return b64(`{"alg":"ES384","typ":"JWT"}`) + "." + b64(claims) + "." + b64("not checked here")
	}
	for _, tc := range []struct {
		name  string
		route Route
		req   func() *http.Request
		want  ivs.StageID
	}{
		{"whip bearer", RouteWHIP, func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/whip", nil)
			r.Header.Set("Authorization", "Bearer "+enc(`{"topic":"AbCdEfGhIjKl","exp":1}`))
			return r
		}, "AbCdEfGhIjKl"},
		{"odd claim types", RouteWHIP, func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/whip", nil)
			r.Header.Set("Authorization", "bearer "+enc(`{"topic":"AbCdEfGhIjKl","exp":"soon","aud":7}`))
			return r
		}, "AbCdEfGhIjKl"},
		{"events subprotocol", RouteEvents, func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/events", nil)
			r.Header.Set("Sec-WebSocket-Protocol", enc(`{"topic":"ZyXwVuTsRqPo"}`)+", other")
			return r
		}, "ZyXwVuTsRqPo"},
		{"no token", RouteWHIP, func() *http.Request { return httptest.NewRequest(http.MethodPost, "/whip", nil) }, ""},
		{"not a JWT", RouteWHIP, func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/whip", nil)
			r.Header.Set("Authorization", "Bearer abc")
			return r
		}, ""},
		{"too long", RouteWHIP, func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/whip", nil)
			r.Header.Set("Authorization", "Bearer "+enc(`{"topic":"AbCdEfGhIjKl","pad":"`+strings.Repeat("x", maxToken)+`"}`))
			return r
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := requestStage(tc.req(), tc.route); got != tc.want {
				t.Fatalf("stage %q, want %q", got, tc.want)
			}
		})
	}
	// The events path's stage wins over the token's.
	mux := http.NewServeMux()
	var got ivs.StageID
	mux.HandleFunc("GET /events/{stageId}", func(_ http.ResponseWriter, r *http.Request) { got = requestStage(r, RouteEvents) })
	r := httptest.NewRequest(http.MethodGet, "/events/PathStage123", nil)
	r.Header.Set("Sec-WebSocket-Protocol", enc(`{"topic":"ZyXwVuTsRqPo"}`))
	mux.ServeHTTP(httptest.NewRecorder(), r)
	if got != "PathStage123" {
		t.Fatalf("stage %q, want the path's", got)
	}
}
