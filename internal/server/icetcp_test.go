package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/config"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
)

// TestICETCPConnectsClientsWithoutUDP: with ICE over TCP on (--rtc-tcp-port's default, the UDP port's
// number), every answer offers a passive TCP candidate next to the UDP one, and a publisher and a
// subscriber that cannot use UDP at all (pion restricted to TCP, as a client whose network drops UDP)
// publish and receive real media over TCP; the metrics count both connections as TCP, and a UDP client
// beside them still connects over UDP.
func TestICETCPConnectsClientsWithoutUDP(t *testing.T) {
	cfg := testConfig(t)
	cfg.RTCTCPPort = config.SameAsUDP
	r := runServer(t, cfg, nil)
	udpPort := r.Server.sfu.Addr().(*net.UDPAddr).Port
	tcpAddr, ok := r.Server.sfu.TCPAddr().(*net.TCPAddr)
	if !ok {
		t.Fatal("ICE-TCP is not listening")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, toks, err := r.Server.Domain().CreateStage(ctx, "tcp", nil, []stage.TokenSpec{{}, {Capabilities: []stage.Capability{stage.CapSubscribe}}, {}})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := peer.Publish(ctx, peer.Options{WHIPURL: r.whip, Token: toks[0].Token, ICE: peer.ICETCP})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	answer := pub.AnswerSDP()
	for _, want := range []string{
		fmt.Sprintf(" udp 2130706431 127.0.0.1 %d typ host", udpPort), // pion's priority for a UDP host candidate
		fmt.Sprintf(" 127.0.0.1 %d typ host tcptype passive", tcpAddr.Port),
	} {
		if !strings.Contains(answer, want) {
			t.Errorf("the answer lacks a candidate with %q:\n%s", want, answer)
		}
	}
	if cfg.RTCUDPPort != 0 && tcpAddr.Port != udpPort {
		t.Errorf("TCP port %d, want the UDP port's number %d", tcpAddr.Port, udpPort)
	}
	if tr := pub.Transport(); tr != "tcp" {
		t.Fatalf("the publisher connected over %q", tr)
	}
	id := ivs.StageID(ivs.LastSegment(v.ARN))
	ivstest.Eventually(t, ivstest.Until(ctx, 10*time.Second), 20*time.Millisecond, func() error {
		if !r.Server.Domain().Publishing(id, toks[0].ParticipantID) {
			return errors.New("not publishing")
		}
		return nil
	})
	sub, err := peer.Subscribe(ctx, peer.Options{WHIPURL: r.whip, Token: toks[1].Token, ICE: peer.ICETCP}, string(toks[0].ParticipantID))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := sub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if tr := sub.Transport(); tr != "tcp" {
		t.Fatalf("the subscriber connected over %q", tr)
	}
	ivstest.Eventually(t, ivstest.Until(ctx, 10*time.Second), 20*time.Millisecond, func() error {
		if v, a, k := sub.VideoPackets.Load(), sub.AudioPackets.Load(), sub.Keyframes.Load(); v < 30 || a < 25 || k == 0 {
			return fmt.Errorf("the TCP subscriber got %d video packets, %d audio, %d keyframes", v, a, k)
		}
		return nil
	})
	// A client with UDP beside them: ICE prefers UDP, and TCP changed nothing for it.
	sub2, err := peer.Subscribe(ctx, peer.Options{WHIPURL: r.whip, Token: toks[2].Token, ICE: peer.ICEAny}, string(toks[0].ParticipantID))
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	if err := sub2.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if tr := sub2.Transport(); tr != "udp" {
		t.Errorf("a client with UDP and TCP connected over %q, want udp", tr)
	}
	ivstest.Eventually(t, ivstest.Until(ctx, 10*time.Second), 50*time.Millisecond, func() error {
		m := r.metrics(t)
		for _, want := range []string{`openstage_media_connections_total{transport="tcp"} 2`, `openstage_media_connections_total{transport="udp"} 1`} {
			if !strings.Contains(m, want+"\n") {
				return fmt.Errorf("/metrics lacks %q", want)
			}
		}
		return nil
	})
	// The domain saw an ordinary publish and subscription.
	sv, err := r.Server.Domain().GetStage(ctx, v.ARN)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pub.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   ivs.ParticipantID
		want string
	}{
		{toks[0].ParticipantID, "JOINED PUBLISH_STARTED PUBLISH_STOPPED LEFT"},
		{toks[1].ParticipantID, "JOINED SUBSCRIBE_STARTED SUBSCRIBE_STOPPED LEFT"},
	} {
		ivstest.Eventually(t, ivstest.Until(ctx, 10*time.Second), 50*time.Millisecond, func() error {
			evs, err := r.Server.Domain().ListEvents(ctx, v.ARN, sv.ActiveSessionID, c.id, store.Page{Limit: 100})
			if err != nil {
				return err
			}
			var names []string
			for _, e := range evs {
				names = append(names, string(e.Name))
			}
			if got := strings.Join(names, " "); got != c.want {
				return fmt.Errorf("events of %s: %s, want %s", c.id, got, c.want)
			}
			return nil
		})
	}
}

// TestICETCPSilentClientsDoNotHoldShutdown: a TCP connection to the ICE-TCP port that never sends its
// first STUN message (pion's mux waits 30 s for one) does not delay the server's shutdown, and the port
// is released.
func TestICETCPSilentClientsDoNotHoldShutdown(t *testing.T) {
	cfg := testConfig(t)
	cfg.RTCTCPPort = config.SameAsUDP
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
	addr := s.sfu.TCPAddr().String()
	var silent []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	time.Sleep(100 * time.Millisecond) // accepted
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown waited on silent ICE-TCP connections")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	for _, c := range silent {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("a silent connection is still open after shutdown: %v", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the ICE-TCP port is still held: %v", err)
	}
	_ = ln.Close()
}

// TestICETCPOff: --rtc-tcp-port 0 offers no TCP candidate.
func TestICETCPOff(t *testing.T) {
	cfg := testConfig(t) // RTCTCPPort 0, as in any Config built in code
	r := runServer(t, cfg, nil)
	if r.Server.sfu.TCPAddr() != nil {
		t.Fatal("ICE-TCP listening with --rtc-tcp-port 0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, toks, err := r.Server.Domain().CreateStage(ctx, "udp", nil, []stage.TokenSpec{{}})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := peer.Publish(ctx, peer.Options{WHIPURL: r.whip, Token: toks[0].Token})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(pub.AnswerSDP(), " tcp ") {
		t.Fatalf("a TCP candidate with ICE-TCP off:\n%s", pub.AnswerSDP())
	}
}
