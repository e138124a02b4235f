package media

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
	"weak"

	"github.com/pion/rtp"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

// dropConn is a subscriber's UDP socket whose outgoing packets can be dropped: a subscriber that vanished
// without a word (its network gone), which only consent can tell.
type dropConn struct {
	*net.UDPConn
	drop atomic.Bool
}

func (c *dropConn) WriteTo(b []byte, to net.Addr) (int, error) {
	if c.drop.Load() {
		return len(b), nil
	}
	return c.UDPConn.WriteTo(b, to)
}

// detachedRig is a publisher sending one packet every 5 ms and a direct subscriber whose subscription left
// pion's connection.
type detachedRig struct {
	sfu    *SFU
	sub    *Subscriber
	subPC  *webrtc.PeerConnection
	sock   *dropConn
	closed chan struct{}                       // the subscription's OnClosed
	pion   weak.Pointer[webrtc.PeerConnection] // the subscription's connection before it left it
	offer  weak.Pointer[byte]                  // the subscriber's offer
}

func newDetachedRig(t *testing.T) *detachedRig {
	t.Helper()
	sfu, err := New(Config{UDPAddr: "127.0.0.1:0", IncludeLoopback: true, SendPath: SendPathDirect,
		DisconnectedTimeout: time.Second, FailedTimeout: time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sfu.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)

	pubPC, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pubPC.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "pub")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pubPC.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	pub, ans, err := sfu.Publish(ctx, "stage", "pub", offerOf(t, pubPC), PublishHooks{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	if err := pubPC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans}); err != nil {
		t.Fatal(err)
	}
	paceEvery5ms(t, func(i uint32) {
		_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: i * 240}, Payload: make([]byte, 80)})
	})

	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	rig := &detachedRig{sfu: sfu, sock: &dropConn{UDPConn: udp}, closed: make(chan struct{})}
	mux := webrtc.NewICEUDPMux(nil, rig.sock)
	t.Cleanup(func() { _ = mux.Close() })
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(mux)
	se.SetIncludeLoopbackCandidate(true)
	rig.subPC, err = webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rig.subPC.Close() })
	if _, err := rig.subPC.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	rig.subPC.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
		}
	})
	var once sync.Once
	offer := offerOf(t, rig.subPC)
	rig.offer = weak.Make(unsafe.StringData(offer))
	rig.sub, ans, err = sfu.Subscribe(ctx, pub, offer, "", SubscribeHooks{OnClosed: func() { once.Do(func() { close(rig.closed) }) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rig.sub.Close)
	rig.pion = weak.Make(rig.sub.peer())
	if err := rig.subPC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans}); err != nil {
		t.Fatal(err)
	}
	for rig.sub.direct.ep.Load() == nil {
		if ctx.Err() != nil {
			t.Fatal("the subscription never left pion's connection")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return rig
}

// TestDetachedConsent: a detached subscription lives on while its subscriber's consent checks and reports
// come, for longer than the timeouts (1 s + 1 s here), and ends when they stop, as pion's ICE agent ended it.
func TestDetachedConsent(t *testing.T) {
	rig := newDetachedRig(t)
	select {
	case <-rig.closed:
		t.Fatal("the subscription ended while its subscriber was there")
	case <-time.After(3 * time.Second):
	}
	if st := rig.subPC.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
		t.Fatalf("the subscriber's connection is %s", st)
	}
	rig.sock.drop.Store(true)
	select {
	case <-rig.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription outlived its subscriber's consent")
	}
}

// TestDetachedPeerClose: a subscriber that closes its connection sends a close_notify, which ends the
// subscription at once.
func TestDetachedPeerClose(t *testing.T) {
	rig := newDetachedRig(t)
	_ = rig.subPC.Close()
	select {
	case <-rig.closed:
	case <-time.After(time.Second): // well under the timeouts (2 s)
		t.Fatal("the subscriber's close_notify did not end the subscription")
	}
}

// TestDetachedBindingRequests: the endpoint answers a binding request that carries the answer's ICE
// credentials (RFC 8445 §7.3: MESSAGE-INTEGRITY with its password, XOR-MAPPED-ADDRESS of the sender), ignores
// one that does not, and follows the subscriber to the address a nomination comes from.
func TestDetachedBindingRequests(t *testing.T) {
	rig := newDetachedRig(t)
	// The pion subscriber falls silent, so that its own checks move nothing back: the test's socket is
	// the subscriber now, and its requests keep the consent.
	rig.sock.drop.Store(true)
	ep := rig.sub.direct.ep.Load()
	moved, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close()
	server := rig.sfu.Addr().(*net.UDPAddr).AddrPort()
	request := func(pwd string, nominate bool) *stun.Message {
		t.Helper()
		setters := []stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(ep.ufrag + ":" + ep.remote)}
		if nominate {
			setters = append(setters, stun.RawAttribute{Type: stun.AttrUseCandidate})
		}
		setters = append(setters, stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
		m, err := stun.Build(setters...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := moved.WriteToUDPAddrPort(m.Raw, server); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// readResponse returns the response to req, skipping media; nil when none came in 500 ms.
	readResponse := func(req *stun.Message) *stun.Message {
		t.Helper()
		buf := make([]byte, 1500)
		deadline := time.Now().Add(500 * time.Millisecond)
		for {
			_ = moved.SetReadDeadline(deadline)
			n, err := moved.Read(buf)
			if err != nil {
				return nil
			}
			if !stun.IsMessage(buf[:n]) {
				continue
			}
			m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if m.Decode() == nil && m.TransactionID == req.TransactionID {
				return m
			}
		}
	}

	if resp := readResponse(request("not the password", false)); resp != nil {
		t.Fatalf("a request with the wrong password was answered: %v", resp)
	}
	req := request(ep.pwd, false)
	resp := readResponse(req)
	if resp == nil {
		t.Fatal("no answer to a binding request with the answer's credentials")
	}
	if resp.Type != stun.BindingSuccess {
		t.Fatalf("answer %v", resp.Type)
	}
	if err := stun.NewShortTermIntegrity(ep.pwd).Check(resp); err != nil {
		t.Fatalf("the answer's MESSAGE-INTEGRITY: %v", err)
	}
	if err := stun.Fingerprint.Check(resp); err != nil {
		t.Fatalf("the answer's FINGERPRINT: %v", err)
	}
	var mapped stun.XORMappedAddress
	if err := mapped.GetFrom(resp); err != nil {
		t.Fatal(err)
	}
	self := moved.LocalAddr().(*net.UDPAddr)
	if !mapped.IP.Equal(self.IP) || mapped.Port != self.Port {
		t.Fatalf("XOR-MAPPED-ADDRESS %v, want %v", mapped, self)
	}
	if got := *rig.sub.direct.addr.Load(); got == self.AddrPort() {
		t.Fatal("a request without USE-CANDIDATE moved the subscription")
	}

	// A nomination from the new address: the media follows it.
	if readResponse(request(ep.pwd, true)) == nil {
		t.Fatal("no answer to the nomination")
	}
	if got := *rig.sub.direct.addr.Load(); got != self.AddrPort() {
		t.Fatalf("the subscription sends to %v after the nomination from %v", got, self)
	}
	buf := make([]byte, 1500)
	_ = moved.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, err := moved.Read(buf)
		if err != nil {
			t.Fatal("no media at the nominated address")
		}
		if n > 12 && buf[0]>>6 == 2 && (buf[1] < 192 || buf[1] > 223) { // SRTP (RFC 7983, RFC 5761 §4): not a STUN answer, not SRTCP
			break
		}
	}
}

// TestDemuxKeepsWritesThroughWriteDeadline: pion's UDP mux sets a write deadline on the shared socket to
// interrupt a closing agent's write; every other writer of the socket must go on (endpoint.go).
func TestDemuxKeepsWritesThroughWriteDeadline(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	u := newUDPDemux(conn)
	if err := u.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := conn.WriteToUDPAddrPort([]byte("direct"), to); err != nil {
		t.Fatalf("the direct path's write failed: %v", err)
	}
	if _, err := u.WriteToAddrPort([]byte("pion"), to); err != nil {
		t.Fatalf("pion's write failed: %v", err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	for _, want := range []string{"direct", "pion"} {
		n, _, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
		}
	}
}

// TestDetachedReleasesPion: once a subscription left pion's connection, nothing keeps that connection
// (its ICE agent, DTLS, SRTP sessions) or the descriptions, which is what the endpoint saves. pion's static
// track kept a removed binding's writer, and with it the connection, until matchCodec bound it without
// one; the mids and ICE credentials, slices of the descriptions, kept them whole until they were copied.
func TestDetachedReleasesPion(t *testing.T) {
	rig := newDetachedRig(t)
	deadline := time.Now().Add(5 * time.Second)
	for rig.pion.Value() != nil || rig.offer.Value() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("still reachable: pion's connection %v, the offer %v", rig.pion.Value() != nil, rig.offer.Value() != nil)
		}
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
}
