package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// offerOf gathers pc's whole offer.
func offerOf(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-done
	return pc.LocalDescription().SDP
}

// TestDirectSendPath subscribes a pion client over the direct send path: it decrypts every packet with
// the keys its own DTLS handshake made (so openstage derived the same ones), gets sender reports that
// count what it received, and gets a NACKed packet again, from the fanout's ring.
func TestDirectSendPath(t *testing.T) { testOwnFeedback(t, SendPathDirect) }

// TestPionSendPathFeedback is the same on pion's send path, whose subscriptions of fanouts have no
// interceptors: openstage's directSender answers the NACK from the fanout's ring and sends the reports,
// through pion's writer.
func TestPionSendPathFeedback(t *testing.T) { testOwnFeedback(t, SendPathPion) }

func testOwnFeedback(t *testing.T, path string) {
	sfu, err := New(Config{UDPAddr: "127.0.0.1:0", IncludeLoopback: true, SendPath: path,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer sfu.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The publisher: a pion client sending numbered H.264-typed packets.
	pubPC, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pubPC.Close()
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "pub")
	if err != nil {
		t.Fatal(err)
	}
	pubTr, err := pubPC.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	plis := make(chan struct{}, 64) // the keyframe requests the publisher gets
	go func() {
		for {
			ps, _, err := pubTr.Sender().ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range ps {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					select {
					case plis <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	pub, ans, err := sfu.Publish(ctx, "stage", "pub", offerOf(t, pubPC), PublishHooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pubPC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans}); err != nil {
		t.Fatal(err)
	}
	paceEvery5ms(t, func(i uint32) {
		payload := make([]byte, 200)
		payload[0] = 0x65 // an IDR slice's NAL header, every packet a keyframe of one packet
		binary.BigEndian.PutUint32(payload[1:], i)
		_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: i * 450}, Payload: payload})
	})

	// The subscriber: replay protection off, so a retransmission of a packet it has is delivered again.
	se := webrtc.SettingEngine{}
	se.DisableSRTPReplayProtection(true)
	subPC, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer subPC.Close()
	if _, err := subPC.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	type got struct {
		seq uint16
		n   uint32
	}
	pkts := make(chan got, 4096)
	srs := make(chan *rtcp.SenderReport, 16)
	ssrc := make(chan webrtc.SSRC, 1)
	subPC.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		ssrc <- tr.SSRC()
		go func() {
			for {
				ps, _, err := recv.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range ps {
					if sr, ok := p.(*rtcp.SenderReport); ok {
						select {
						case srs <- sr:
						default:
						}
					}
				}
			}
		}()
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if len(p.Payload) == 200 && p.Payload[0] == 0x65 {
				select {
				case pkts <- got{p.SequenceNumber, binary.BigEndian.Uint32(p.Payload[1:])}:
				default:
				}
			}
		}
	})
	sub, ans, err := sfu.Subscribe(ctx, pub, offerOf(t, subPC), "", SubscribeHooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if sub.direct == nil || sub.direct.pion != (path == SendPathPion) {
		t.Fatalf("the subscription's own sender: %+v", sub.direct)
	}
	if path == SendPathDirect && !bytes.Contains([]byte(ans), []byte("a=setup:passive")) {
		t.Fatal("openstage must be the DTLS server of a direct subscription (its answer's setup:passive)")
	}
	if err := subPC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans}); err != nil {
		t.Fatal(err)
	}

	// Packets decrypt, in order, with the publisher's payloads and the subscriber's sequence numbers.
	var first got
	for i := 0; i < 50; i++ {
		select {
		case g := <-pkts:
			if i == 0 {
				first = g
			} else if g.seq-first.seq != uint16(g.n-first.n) {
				t.Fatalf("packet %d: sequence number %d for payload %d (first %+v)", i, g.seq, g.n, first)
			}
		case <-ctx.Done():
			t.Fatalf("%d packets reached the subscriber", i)
		}
	}
	want := directOwn
	if path == SendPathPion {
		want = directPion
	}
	if m := sub.direct.mode.Load(); m != want {
		t.Fatalf("send mode %d, want %d", m, want)
	}
	sender := <-ssrc
	if path == SendPathDirect {
		// The subscription leaves pion's connection once the subscriber's SRTCP came (endpoint.go):
		// what follows is the endpoint's work. The subscriber never heard of it (the closing
		// connection's close_notify was dropped) and keeps receiving.
		for sub.direct.ep.Load() == nil {
			if ctx.Err() != nil {
				t.Fatal("the subscription never left pion's connection")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if sub.peer() != nil {
			t.Fatal("the Subscriber still holds pion's connection")
		}
		time.Sleep(500 * time.Millisecond)
		for len(pkts) > 0 {
			<-pkts
		}
		select {
		case <-pkts:
		case <-ctx.Done():
			t.Fatal("no packet after the subscription left pion")
		}
		if st := subPC.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
			t.Fatalf("the subscriber's connection is %s after the detach", st)
		}
		for len(srs) > 0 {
			<-srs
		}
	}

	// A NACK for a packet it has is answered with the same packet.
	if err := subPC.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: uint32(sender),
		Nacks: []rtcp.NackPair{{PacketID: first.seq + 10}}}}); err != nil {
		t.Fatal(err)
	}
	for again := false; !again; {
		select {
		case g := <-pkts:
			again = g.seq == first.seq+10 && g.n == first.n+10 && g.seq != 0
		case <-ctx.Done():
			t.Fatal("no retransmission of the NACKed packet")
		}
	}

	// Sender reports come from openstage, for the subscriber's SSRC, counting what was sent.
	select {
	case sr := <-srs:
		if sr.SSRC != uint32(sender) || sr.PacketCount < 50 || sr.OctetCount < 50*200 {
			t.Fatalf("sender report %+v", sr)
		}
	case <-ctx.Done():
		t.Fatal("no sender report")
	}

	// A PLI from the subscriber reaches the publisher: the SFU's own request when the subscriber
	// connected came first, and the next one is let through 300 ms later (requestKeyframe).
	select {
	case <-plis:
	case <-ctx.Done():
		t.Fatal("no keyframe request when the subscriber connected")
	}
	time.Sleep(400 * time.Millisecond)
	for len(plis) > 0 {
		<-plis
	}
	if err := subPC.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(sender)}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-plis:
	case <-ctx.Done():
		t.Fatal("the subscriber's PLI did not reach the publisher")
	}
	if path != SendPathDirect {
		return
	}

	// openstage ending the subscription tells the subscriber at once: the endpoint's close_notify.
	closed := make(chan struct{})
	var once sync.Once
	subPC.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateClosed || st == webrtc.PeerConnectionStateFailed {
			once.Do(func() { close(closed) })
		}
	})
	sub.Close()
	select {
	case <-closed:
	case <-time.After(2 * time.Second): // pion's ICE would take 5 s or more to notice
		t.Fatalf("the subscriber's connection is %s 2 s after openstage ended the subscription", subPC.ConnectionState())
	}
}

// BenchmarkDirectWrite is the direct send path's whole per-packet work for ten subscribers of one fanout
// (header, SRTP seal, sendto on loopback to a socket a reader drains), without pion: what remains of the
// server's CPU per forwarded packet beyond it is receive, RTCP, scheduling and the kernel's wake-ups.
func BenchmarkDirectWrite(b *testing.B) {
	const subs = 10
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			if _, _, err := rx.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	defer wg.Wait()
	defer rx.Close()
	ctx, err := srtp.CreateContext(make([]byte, 16), make([]byte, 12), srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		b.Fatal(err)
	}
	ds := &directSender{sfu: &SFU{udpConn: tx}, ctx: ctx}
	ds.mode.Store(directOwn)
	ap := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	ds.addr.Store(&ap)
	f, err := newFanout(videoCodecs[0].RTPCodecCapability, "video", "openstage-p")
	if err != nil {
		b.Fatal(err)
	}
	for i := range subs {
		g := &gate{video: true}
		if _, err := f.bind(&trackContext{id: fmt.Sprint(i), ssrc: webrtc.SSRC(5000 + i), codec: videoCodecs[0], w: &discard{}}, g, ds); err != nil {
			b.Fatal(err)
		}
	}
	payload := make([]byte, 1100)
	payload[0] = 0x41
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 100}, Payload: payload}
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		p.SequenceNumber = uint16(i)
		n += f.write(p)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/forwarded")
}

// paceEvery5ms calls send with 0, 1, 2, ... every 5 ms, a publisher's packets, until the test ends.
func paceEvery5ms(t *testing.T, send func(i uint32)) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := uint32(0); ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			send(i)
		}
	}()
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { close(stop) })
}
