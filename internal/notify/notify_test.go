package notify_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/notify"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/teststore"
)

// Every goroutine the deliverers, tails and streams start ends with them (checked once the tests' stores
// are closed too).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var acct = ivs.Account{Region: "us-east-1", ID: "000000000000"}

// receiver is a real HTTP endpoint that verifies every delivery's signature and keeps what it accepted.
type receiver struct {
	t      *testing.T
	secret string
	down   atomic.Bool // answer 503 to everything
	mu     sync.Mutex
	got    []notify.Event
	ids    map[string]string // idempotency header -> body id, per delivery
	srv    *httptest.Server
}

func newReceiver(t *testing.T, secret string) *receiver {
	rc := &receiver{t: t, secret: secret, ids: map[string]string{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify(rc.secret, r.Header.Get(notify.SignatureHeader), body, notify.ReplayWindow, time.Now()); err != nil {
			t.Errorf("receiver: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if rc.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var e notify.Event
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("receiver: %v", err)
			return
		}
		rc.mu.Lock()
		if prev, ok := rc.ids[r.Header.Get(notify.IDHeader)]; ok && prev != e.ID {
			t.Errorf("idempotency id %s names two events", prev)
		}
		rc.ids[r.Header.Get(notify.IDHeader)] = e.ID
		if r.Header.Get(notify.IDHeader) != e.ID {
			t.Errorf("header id %s, body id %s", r.Header.Get(notify.IDHeader), e.ID)
		}
		rc.got = append(rc.got, e)
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) events() []notify.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]notify.Event(nil), rc.got...)
}

// write appends participant events (and their notifications) the way the domain does: one transaction each.
func write(t testing.TB, s store.Store, stage ivs.StageID, names ...ivs.EventName) []int64 {
	t.Helper()
	var seqs []int64
	for _, name := range names {
		err := s.Update(t.Context(), func(tx store.Tx) error {
			e := ivs.Event{StageID: stage, SessionID: "st-AAAAAAAAAAAAA", ParticipantID: "pAAAAAAAAAAA", Name: name, Time: time.Now()}
			if err := tx.AppendEvent(t.Context(), &e); err != nil {
				return err
			}
			n, err := notify.FromEvent(e, "user-1")
			if err != nil {
				return err
			}
			if err := tx.AppendNotification(t.Context(), n); err != nil {
				return err
			}
			seqs = append(seqs, n.Seq)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return seqs
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// running starts a tail and the webhooks, stopped when the test ends.
func running(t testing.TB, s store.Store, cfg notify.Config) *notify.Webhooks {
	ctx, cancel := context.WithCancel(context.Background())
	tail := notify.NewTail(s, 10*time.Millisecond, nil)
	done := make(chan struct{})
	go func() { defer close(done); tail.Run(ctx) }()
	cfg.Store, cfg.Account, cfg.Tail = s, acct, tail
	if cfg.Owner == "" {
		cfg.Owner = "node1"
	}
	w := notify.Start(cfg)
	t.Cleanup(func() { w.Close(); cancel(); <-done })
	return w
}

func TestWebhookOrderSignatureAndOutage(t *testing.T) {
	s := teststore.Open(t)
	a, b := newReceiver(t, "secret-a"), newReceiver(t, "secret-b")
	b.down.Store(true) // b is down at first: a must not wait for it
	running(t, s, notify.Config{Endpoints: []notify.Endpoint{
		{Name: "a", URL: a.srv.URL, Secret: "secret-a"},
		{Name: "b", URL: b.srv.URL, Secret: "secret-b", Kinds: map[notify.Kind]bool{"PUBLISH_STARTED": true, "PUBLISH_STOPPED": true}},
	}, RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxAttempts: 1000})
	time.Sleep(100 * time.Millisecond) // the endpoints' rows exist: they start at the log's end

	names := []ivs.EventName{ivs.EventJoined, ivs.EventPublishStarted, ivs.EventSubscribeStarted, ivs.EventSubscribeStopped, ivs.EventPublishStopped, ivs.EventLeft}
	var want []int64
	for i := range 20 {
		want = append(want, write(t, s, ivs.StageID(fmt.Sprintf("stage%07d", i%3)), names...)...)
	}
	waitFor(t, "a's deliveries", 10*time.Second, func() bool { return len(a.events()) >= len(want) })
	if len(b.events()) != 0 {
		t.Fatalf("b is down but got %d", len(b.events()))
	}
	time.Sleep(300 * time.Millisecond) // b stays down a while, then comes back
	b.down.Store(false)
	waitFor(t, "b's deliveries", 10*time.Second, func() bool { return len(b.events()) >= 20*2 })

	got := a.events()
	for i, e := range got[:len(want)] {
		if e.ID != notify.ID(want[i]) {
			t.Fatalf("a's delivery %d is %s, want %d (in order)", i, e.ID, want[i])
		}
		if e.Source != "aws.ivs" || e.Version != "0" || e.Account != acct.ID || e.Region != acct.Region || len(e.Resources) != 1 ||
			!strings.HasPrefix(e.Resources[0], "arn:aws:ivs:us-east-1:000000000000:stage/stage") {
			t.Fatalf("envelope %+v", e)
		}
	}
	var d struct {
		EventName     string `json:"event_name"`
		ParticipantID string `json:"participant_id"`
		UserID        string `json:"user_id"`
		SessionID     string `json:"session_id"`
	}
	if err := json.Unmarshal(got[1].Detail, &d); err != nil || got[1].DetailType != "IVS Stage Update" || d.EventName != "Participant Published" ||
		d.ParticipantID != "pAAAAAAAAAAA" || d.UserID != "user-1" || d.SessionID != "st-AAAAAAAAAAAAA" {
		t.Fatalf("PUBLISH_STARTED is %s %s", got[1].DetailType, got[1].Detail)
	}
	if got[0].DetailType != "Openstage Stage Update" {
		t.Fatalf("JOINED is %s", got[0].DetailType)
	}
	// b: only its kinds, every one, in log order.
	var last int64
	for _, e := range b.events() {
		var n int64
		fmt.Sscan(e.ID, &n)
		if n <= last && n != last { // duplicates are allowed (at least once), going back is not
			t.Fatalf("b got %d after %d", n, last)
		}
		last = n
		if e.DetailType != "IVS Stage Update" {
			t.Fatalf("b got %s, filtered out", e.DetailType)
		}
	}
}

func TestWebhookDeadLetterAndReplay(t *testing.T) {
	s := teststore.Open(t)
	rc := newReceiver(t, "k")
	rc.down.Store(true)
	running(t, s, notify.Config{Endpoints: []notify.Endpoint{{Name: "r", URL: rc.srv.URL, Secret: "k"}},
		RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, MaxAttempts: 3})
	time.Sleep(100 * time.Millisecond)
	seqs := write(t, s, "stageAAAAAAA", ivs.EventJoined, ivs.EventLeft)
	var dls []store.DeadLetter
	waitFor(t, "dead letters", 10*time.Second, func() bool {
		dls, _ = s.DeadLetters(t.Context(), "r")
		return len(dls) == 2
	})
	if dls[0].Seq != seqs[0] || dls[0].Attempts != 3 || dls[0].LastError != "HTTP 503" || dls[0].Replay {
		t.Fatalf("dead letters %+v", dls)
	}
	// After the dead letters, delivery goes on: a later event is delivered once the endpoint is back.
	rc.down.Store(false)
	later := write(t, s, "stageAAAAAAA", ivs.EventJoined)
	waitFor(t, "the later event", 10*time.Second, func() bool { return len(rc.events()) == 1 })
	if n, err := s.ReplayDeadLetters(t.Context(), "r", nil); err != nil || n != 2 {
		t.Fatalf("ReplayDeadLetters = %d, %v", n, err)
	}
	waitFor(t, "the replays", 10*time.Second, func() bool { return len(rc.events()) == 3 })
	got := rc.events()
	if got[0].ID != notify.ID(later[0]) || got[1].ID != notify.ID(seqs[0]) || got[2].ID != notify.ID(seqs[1]) {
		t.Fatalf("deliveries %s %s %s", got[0].ID, got[1].ID, got[2].ID)
	}
	waitFor(t, "the dead letters forgotten", 10*time.Second, func() bool {
		dls, _ = s.DeadLetters(t.Context(), "r")
		return len(dls) == 0
	})
}

// TestWebhookOneOwner: two deliverers (two nodes) on one endpoint: each notification arrives once while
// both run, since only the lease holder sends.
func TestWebhookOneOwner(t *testing.T) {
	s1, s2 := teststore.OpenPair(t)
	rc := newReceiver(t, "k")
	ep := []notify.Endpoint{{Name: "r", URL: rc.srv.URL, Secret: "k"}}
	running(t, s1, notify.Config{Endpoints: ep, Owner: "node1"})
	running(t, s2, notify.Config{Endpoints: ep, Owner: "node2"})
	time.Sleep(100 * time.Millisecond)
	want := write(t, s1, "stageAAAAAAA", ivs.EventJoined, ivs.EventPublishStarted, ivs.EventPublishStopped, ivs.EventLeft)
	want = append(want, write(t, s2, "stageBBBBBBB", ivs.EventJoined, ivs.EventLeft)...)
	waitFor(t, "deliveries", 10*time.Second, func() bool { return len(rc.events()) >= len(want) })
	time.Sleep(200 * time.Millisecond)
	if got := rc.events(); len(got) != len(want) {
		t.Fatalf("%d deliveries of %d notifications", len(got), len(want))
	}
}

func TestSignature(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	h := notify.Sign("s3cret", now, []byte(`{"a":1}`))
	if err := notify.Verify("s3cret", h, []byte(`{"a":1}`), time.Minute, now.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		secret, body string
		at           time.Time
		want         error
	}{
		{"other", `{"a":1}`, now, notify.ErrBadSignature},
		{"s3cret", `{"a":2}`, now, notify.ErrBadSignature},
		{"s3cret", `{"a":1}`, now.Add(2 * time.Minute), notify.ErrStale},
	} {
		if err := notify.Verify(c.secret, h, []byte(c.body), time.Minute, c.at); err != c.want {
			t.Errorf("Verify(%s, %s, %v) = %v, want %v", c.secret, c.body, c.at, err, c.want)
		}
	}
}

// sse reads a stream's events until n arrived.
func sse(t *testing.T, url string, header http.Header, n int) (ids []string, kinds []string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	maps := header
	for k, v := range maps {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for data := 0; data < n && sc.Scan(); {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			ids = append(ids, v)
		}
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			kinds = append(kinds, v)
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			var e notify.Event
			if err := json.Unmarshal([]byte(v), &e); err != nil || e.ID != ids[len(ids)-1] {
				t.Fatalf("data %s", v)
			}
			data++
		}
	}
	return ids, kinds
}

func TestStream(t *testing.T) {
	s := teststore.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	tail := notify.NewTail(s, 10*time.Millisecond, nil)
	done := make(chan struct{})
	go func() { defer close(done); tail.Run(ctx) }()
	st := &notify.Stream{Store: s, Account: acct, Tail: tail, Heartbeat: 50 * time.Millisecond,
		Authorized: func(r *http.Request) bool { return r.URL.Query().Get("key") == "k" }}
	srv := httptest.NewServer(st)
	defer func() { st.Close(); srv.Close(); cancel(); <-done }()

	resp, err := http.Get(srv.URL + "/events/stream")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated: %s", resp.Status)
	}

	first := write(t, s, "stageAAAAAAA", ivs.EventJoined, ivs.EventPublishStarted)
	write(t, s, "stageBBBBBBB", ivs.EventJoined)
	// From the start of the log, stage A only: the client reads two, disconnects.
	ids, kinds := sse(t, srv.URL+"/events/stream?key=k&stage=stageAAAAAAA&lastEventId=0", nil, 2)
	if ids[0] != notify.ID(first[0]) || ids[1] != notify.ID(first[1]) || kinds[0] != "JOINED" || kinds[1] != "PUBLISH_STARTED" {
		t.Fatalf("ids %v kinds %v", ids, kinds)
	}
	// Meanwhile more happens; the client resumes after what it saw and misses nothing (ARN filter).
	more := write(t, s, "stageAAAAAAA", ivs.EventPublishStopped, ivs.EventLeft)
	write(t, s, "stageBBBBBBB", ivs.EventLeft)
	ids, _ = sse(t, srv.URL+"/events/stream?key=k&stage="+acct.StageARN("stageAAAAAAA"),
		http.Header{"Last-Event-Id": {ids[1]}}, 2)
	if len(ids) != 2 || ids[0] != notify.ID(more[0]) || ids[1] != notify.ID(more[1]) {
		t.Fatalf("resumed ids %v, want %v", ids, more)
	}
	// Live: a client without Last-Event-ID gets what happens after it connected.
	got := make(chan []string, 1)
	go func() { ids, _ := sse(t, srv.URL+"/events/stream?key=k", nil, 1); got <- ids }()
	time.Sleep(200 * time.Millisecond)
	live := write(t, s, "stageBBBBBBB", ivs.EventJoined)
	select {
	case ids := <-got:
		if ids[0] != notify.ID(live[0]) {
			t.Fatalf("live id %v, want %d", ids, live[0])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no live event")
	}
}
