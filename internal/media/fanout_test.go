package media

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/openstage/openstage/internal/ivstest"
)

// sent records what reaches the wire of one subscriber, as copies.
type sent struct {
	mu   sync.Mutex
	pkts []rtp.Packet
}

func (s *sent) Write(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
	p := rtp.Packet{Header: h.Clone(), Payload: bytes.Clone(payload)}
	s.mu.Lock()
	s.pkts = append(s.pkts, p)
	s.mu.Unlock()
	return len(payload), nil
}

func (s *sent) wait(t *testing.T, n int) []rtp.Packet {
	t.Helper()
	var p []rtp.Packet
	ivstest.Eventually(t, 5*time.Second, time.Millisecond, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.pkts) < n {
			return fmt.Errorf("%d packets sent, want %d", len(s.pkts), n)
		}
		p = append([]rtp.Packet(nil), s.pkts...)
		return nil
	})
	return p
}

// trackContext binds a fanout to one subscriber whose send path is pion's NACK responder as newAPI
// configures it (no copy).
type trackContext struct {
	id    string
	ssrc  webrtc.SSRC
	codec webrtc.RTPCodecParameters
	w     interceptor.RTPWriter
}

func (c *trackContext) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{c.codec}
}
func (c *trackContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (c *trackContext) SSRC() webrtc.SSRC                                      { return c.ssrc }
func (c *trackContext) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (c *trackContext) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (c *trackContext) ID() string                                             { return c.id }
func (c *trackContext) RTCPReader() interceptor.RTCPReader                     { return nil }
func (c *trackContext) WriteStream() webrtc.TrackLocalWriter                   { return c }
func (c *trackContext) Write(b []byte) (int, error)                            { return 0, fmt.Errorf("unused") }
func (c *trackContext) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	return c.w.Write(h, payload, nil)
}

// TestFanoutRetransmitsWhatItSent checks the contract that lets the NACK responder keep packets without
// copying them: every subscriber gets its own SSRC and payload type, and a packet resent on a NACK, after
// many more packets went through the publisher's reused rtp.Packet, is the packet that was sent.
func TestFanoutRetransmitsWhatItSent(t *testing.T) {
	f, err := newFanout(videoCodecs[0].RTPCodecCapability, "video", "openstage-p")
	if err != nil {
		t.Fatal(err)
	}
	type sub struct {
		ssrc  uint32
		pt    uint8
		out   *sent
		nacks chan []byte
	}
	var subs []*sub
	for i, pt := range []uint8{102, 108} {
		factory, err := nack.NewResponderInterceptor(nack.DisableCopy())
		if err != nil {
			t.Fatal(err)
		}
		ic, err := factory.NewInterceptor("")
		if err != nil {
			t.Fatal(err)
		}
		defer ic.Close()
		s := &sub{ssrc: uint32(1000 + i), pt: pt, out: &sent{}, nacks: make(chan []byte, 1)}
		codec := videoCodecs[0]
		codec.PayloadType = webrtc.PayloadType(pt)
		info := &interceptor.StreamInfo{SSRC: s.ssrc, PayloadType: pt, MimeType: codec.MimeType, ClockRate: codec.ClockRate,
			RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}}}
		w := ic.BindLocalStream(info, s.out)
		rtcpIn := ic.BindRTCPReader(interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
			p, ok := <-s.nacks
			if !ok {
				return 0, nil, io.EOF
			}
			return copy(b, p), a, nil
		}))
		var wg sync.WaitGroup
		defer wg.Wait()
		defer close(s.nacks)
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, 1500)
			for {
				if _, _, err := rtcpIn.Read(b, nil); err != nil {
					return
				}
			}
		}()
		if _, err := f.Bind(&trackContext{id: fmt.Sprint(i), ssrc: webrtc.SSRC(s.ssrc), codec: codec, w: w}); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}

	// As Publisher.forward: one rtp.Packet for every packet, a buffer of its own after each kept one.
	const n = 50
	var pkt rtp.Packet
	buf := make([]byte, 1500)
	want := make([][]byte, n)
	for i := range n {
		h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(100 + i), Timestamp: uint32(9000 * i), SSRC: 42,
			Marker: i%3 == 0}
		if err := h.SetExtension(1, []byte{byte(i), byte(i >> 8)}); err != nil {
			t.Fatal(err)
		}
		raw, err := (&rtp.Packet{Header: h, Payload: bytes.Repeat([]byte{byte(i)}, 200+i)}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		want[i] = raw
		m := copy(buf, raw)
		if err := pkt.Unmarshal(buf[:m]); err != nil {
			t.Fatal(err)
		}
		if k := f.write(&pkt); k == len(subs) {
			buf = make([]byte, 1500)
		} else {
			t.Fatalf("packet sent to %d subscribers of %d bound", k, len(subs))
		}
	}

	check := func(s *sub, got rtp.Packet, i int) {
		t.Helper()
		var orig rtp.Packet
		if err := orig.Unmarshal(want[i]); err != nil {
			t.Fatal(err)
		}
		if got.SSRC != s.ssrc || got.PayloadType != s.pt {
			t.Errorf("packet %d: SSRC %d PT %d, want %d %d", i, got.SSRC, got.PayloadType, s.ssrc, s.pt)
		}
		if got.SequenceNumber != orig.SequenceNumber || got.Timestamp != orig.Timestamp || got.Marker != orig.Marker ||
			!bytes.Equal(got.Payload, orig.Payload) || !bytes.Equal(got.GetExtension(1), orig.GetExtension(1)) {
			t.Errorf("packet %d differs from what the publisher sent", i)
		}
	}
	for _, s := range subs {
		for i, p := range s.out.wait(t, n) {
			check(s, p, i)
		}
	}
	// NACK packets 3 and 9..11 (RFC 4585 §6.2.1: a packet id and a bitmask of the 16 after it).
	for _, s := range subs {
		b, err := (&rtcp.TransportLayerNack{MediaSSRC: s.ssrc, Nacks: []rtcp.NackPair{{PacketID: 103, LostPackets: 0b1110_0000}}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s.nacks <- b
	}
	for _, s := range subs {
		resent := s.out.wait(t, n+4)[n:]
		for k, i := range []int{3, 9, 10, 11} {
			check(s, resent[k], i)
		}
	}

	// Unbound subscribers get nothing more, and nothing is kept once nobody is bound.
	for i := range subs {
		if err := f.Unbind(&trackContext{id: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if k := f.write(&pkt); k != 0 {
		t.Fatalf("a packet sent to %d with nobody bound", k)
	}
}

// TestFanoutKeepsNoUnboundWriter: once a subscription's bindings are gone, nothing of the fanout keeps
// their writers. pion's static track kept a copy of a removed binding, writer included, in its slice's
// spare capacity, and with it the ended subscription's whole peer connection (matchCodec).
func TestFanoutKeepsNoUnboundWriter(t *testing.T) {
	f, err := newFanout(videoCodecs[0].RTPCodecCapability, "video", "openstage-p")
	if err != nil {
		t.Fatal(err)
	}
	bound := bindContexts(t, f, 3)
	for _, w := range bound {
		unbindContext(t, f, w)
	}
	for try := 0; ; try++ {
		runtime.GC()
		left := 0
		for _, w := range bound {
			if w.Value() != nil {
				left++
			}
		}
		if left == 0 {
			break
		}
		if try == 10 {
			t.Fatalf("%d of 3 unbound writers still reachable", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.KeepAlive(f) // the fanout lives on, as its publisher's track does
}

func bindContexts(t *testing.T, f *fanout, n int) []weak.Pointer[trackContext] {
	t.Helper()
	var ws []weak.Pointer[trackContext]
	for i := 0; i < n; i++ {
		c := &trackContext{id: fmt.Sprint("binding-", i), ssrc: webrtc.SSRC(1000 + i), codec: videoCodecs[0]}
		if _, err := f.Bind(c); err != nil {
			t.Fatal(err)
		}
		ws = append(ws, weak.Make(c))
	}
	return ws
}

func unbindContext(t *testing.T, f *fanout, w weak.Pointer[trackContext]) {
	t.Helper()
	if err := f.Unbind(w.Value()); err != nil {
		t.Fatal(err)
	}
}
