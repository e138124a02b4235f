package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openstage/openstage/internal/config"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig(t *testing.T) *config.Config {
	return &config.Config{Listen: "127.0.0.1:0", RTCUDPPort: 0, DataDir: t.TempDir(), Region: "us-east-1", AccountID: "000000000000",
		SessionEndGrace: 100 * time.Millisecond, Retention: time.Hour, MediaPolicy: "ivs",
		MaxStages: 10, MaxPublicKeys: 3, MaxPublishersPerStage: 12, MaxSubscribersPerStage: 100}
}

// testServer is a whole server serving on its configured address, stopped when the test ends.
type testServer struct {
	*Server
	cfg  *config.Config
	addr string // host:port it listens on
	base string // its public URL: http://host:port unless cfg.PublicURL says otherwise
	whip string // its stages' whip_url
}

// runServer starts a server from cfg, logging to log (nil: nowhere, or stderr with -v). It stops when the
// test ends; cleanups registered after it (connections) run before it stops.
func runServer(t *testing.T, cfg *config.Config, log *slog.Logger) *testServer {
	t.Helper()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
		if testing.Verbose() {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, io.Discard, func(a net.Addr) { ready <- a }) }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the server did not stop within 30 s")
		}
	})
	whip, _ := cfg.Endpoints()
	return &testServer{Server: s, cfg: cfg, addr: addr.String(), base: strings.TrimSuffix(whip, "/whip"), whip: whip}
}

// startServer runs a server with testConfig changed by tune.
func startServer(t *testing.T, tune func(*config.Config)) *testServer {
	t.Helper()
	cfg := testConfig(t)
	if tune != nil {
		tune(cfg)
	}
	return runServer(t, cfg, nil)
}

// metrics reads /metrics.
func (ts *testServer) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(ts.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestShutdownDisconnectsEveryoneAndLeaksNothing runs a whole server in-process with a live publisher,
// stops it, and checks the publisher was recorded as gone and no goroutine outlived the server.
func TestShutdownDisconnectsEveryoneAndLeaksNothing(t *testing.T) {
	cfg := testConfig(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, io.Discard, func(a net.Addr) { ready <- a }) }()
	<-ready

	v, toks, err := s.Domain().CreateStage(ctx, "s", nil, []stage.TokenSpec{{}})
	if err != nil {
		t.Fatal(err)
	}
	whip, _ := cfg.Endpoints()
	if !strings.Contains(whip, "127.0.0.1:") || strings.HasSuffix(whip, ":0/whip") {
		t.Fatalf("whip endpoint %s", whip)
	}
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	p, err := peer.Publish(pctx, peer.Options{WHIPURL: whip, Token: toks[0].Token})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.WaitConnected(pctx); err != nil {
		t.Fatal(err)
	}
	id := ivs.StageID(ivs.LastSegment(v.ARN))
	ivstest.Eventually(t, ivstest.Until(pctx, 10*time.Second), 20*time.Millisecond, func() error {
		if !s.Domain().Publishing(id, toks[0].ParticipantID) {
			return errors.New("not publishing")
		}
		return nil
	})
	// GetParticipant twice: the second comes from the participant cache (SQLite, held by this server).
	sv, err := s.Domain().GetStage(ctx, v.ARN)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Domain().GetParticipant(ctx, v.ARN, sv.ActiveSessionID, toks[0].ParticipantID); err != nil {
			t.Fatal(err)
		}
	}
	// The media and process metrics the load test reads are served.
	resp, err := http.Get(strings.TrimSuffix(whip, "/whip") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"openstage_received_packets_total ", "openstage_forwarded_packets_total ", "process_cpu_seconds_total ",
		"openstage_publishers 1", "openstage_participants_connected 1", "openstage_stages 1",
		"openstage_participant_cache_hits_total ", "openstage_participant_cache_misses_total "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(body), "openstage_participant_cache_hits_total 0\n") {
		t.Error("the second GetParticipant did not come from the cache")
	}
	if strings.Contains(string(body), "openstage_received_packets_total 0\n") {
		t.Error("no packets counted")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p.Close()

	st, err := sqlite.Open(context.Background(), filepath.Join(cfg.DataDir, "openstage.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sess, err := st.ListSessions(context.Background(), id, store.Page{Limit: 5})
	if err != nil || len(sess) != 1 || sess[0].Active() {
		t.Fatalf("sessions after shutdown %+v %v", sess, err)
	}
	evs, err := st.ListEvents(context.Background(), id, sess[0].ID, toks[0].ParticipantID, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range evs {
		names = append(names, string(e.Name))
	}
	if strings.Join(names, " ") != "JOINED PUBLISH_STARTED PUBLISH_STOPPED LEFT" {
		t.Fatalf("events %v", names)
	}
}
