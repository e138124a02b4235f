package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openstage/openstage/internal/config"
	"github.com/openstage/openstage/internal/ivs"
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
	for !s.Domain().Publishing(id, toks[0].ParticipantID) {
		if pctx.Err() != nil {
			t.Fatal("not publishing")
		}
		time.Sleep(20 * time.Millisecond)
	}
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
