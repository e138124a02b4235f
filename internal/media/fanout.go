package media

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// fanout is a publisher's local track: each packet written to it goes to every subscriber bound to it.
// It does what webrtc.TrackLocalStaticRTP does, except for whom the memory is: every subscriber gets a
// header of its own (its SSRC and payload type), and all of them share the packet's bytes, which the
// caller hands over. That is what lets pion's NACK responder keep packets for retransmission without
// copying them (nack.DisableCopy in newAPI): with a copy, each packet was copied once per subscriber
// into a ring of 1024 per subscriber, tens of megabytes that no cache holds (profiled,
// docs/BENCHMARKS.md).
type fanout struct {
	// track negotiates the codec on Bind (pion's matching rules) and gives the track its identity; no
	// packet is written through it.
	track *webrtc.TrackLocalStaticRTP

	mu    sync.RWMutex
	binds []binding

	// ring keeps the last packets for the retransmissions of subscriptions with a directSender (all but
	// those to a simulcast publisher, which have pion's responder); nil until one binds.
	ring atomic.Pointer[packetRing]

	// seal is the direct subscriptions' scratch for the packet being sent, only touched by write (called
	// from one goroutine, the publisher's forwarding of this track).
	seal sealScratch
}

type binding struct {
	id     string
	ssrc   uint32
	pt     uint8
	w      webrtc.TrackLocalWriter
	direct *directStream // set: the subscription's own send path (direct.go) writes, not w
	gate   *gate         // nil: always forwarded
}

// gate is one subscriber's switch on one of its tracks (WHEP playback controls: a hidden tile's video is
// paused). While it is closed, packets are not sent and counted, and those sent after it reopens have
// their sequence numbers moved back by that count, so the subscriber sees a continuous stream and asks for
// no retransmission of what it was never meant to get.
type gate struct {
	video  bool
	paused atomic.Bool
	// skipped is only written by the track's writer (one goroutine, the publisher's forward loop); a
	// direct subscription's NACKs read it, and resumedAt, the first sequence number sent after the last
	// pause, to map the subscriber's sequence numbers back to the publisher's.
	skipped   atomic.Uint32
	resumedAt atomic.Uint32
	wasPaused bool // the writer's
}

// gatedTrack is one subscriber's binding of a fanout, with that subscriber's gate: what a Subscriber adds
// to its peer connection in place of the fanout itself.
type gatedTrack struct {
	*fanout
	gate   *gate
	direct *directSender // nil: pion's send path
}

func (t *gatedTrack) Bind(c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	return t.fanout.bind(c, t.gate, t.direct)
}

func newFanout(codec webrtc.RTPCodecCapability, id, streamID string) (*fanout, error) {
	t, err := webrtc.NewTrackLocalStaticRTP(codec, id, streamID)
	if err != nil {
		return nil, err
	}
	return &fanout{track: t}, nil
}

var _ webrtc.TrackLocal = (*fanout)(nil)

func (f *fanout) Bind(c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	return f.bind(c, nil, nil)
}

func (f *fanout) bind(c webrtc.TrackLocalContext, g *gate, d *directSender) (webrtc.RTPCodecParameters, error) {
	codec, err := matchCodec(f.track, c)
	if err != nil {
		return codec, err
	}
	b := binding{id: c.ID(), ssrc: uint32(c.SSRC()), pt: uint8(codec.PayloadType), w: c.WriteStream(), gate: g}
	if d != nil {
		// The stream keeps pion's writer, for as long as the subscription is on pion's connection.
		b.direct = d.newStream(f, g, b.id, b.ssrc, b.pt, codec.ClockRate, b.w)
		b.w = nil
		if f.ring.Load() == nil { // not a new 8 KB ring for every subscription, only to be dropped
			f.ring.CompareAndSwap(nil, &packetRing{})
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.binds = append(f.binds, b)
	return codec, nil
}

func (f *fanout) Unbind(c webrtc.TrackLocalContext) error {
	f.unbind(c.ID())
	return nil
}

// matchCodec is pion's codec negotiation for a track openstage writes itself: of the codecs the
// subscription negotiated, the one that matches track's (pion's fuzzy search, which the static track's
// Bind runs). The static track is never written, so it is bound without a writer and unbound at once:
// its Unbind (pion/webrtc v4.2.20, track_local_static.go) leaves a copy of a removed binding in the
// slice's spare capacity, and a writer kept there held a closed subscription's whole peer connection
// (ICE agent, DTLS, SRTP sessions, descriptions) for as long as the track lived.
func matchCodec(track *webrtc.TrackLocalStaticRTP, c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	nc := codecOnly{c}
	codec, err := track.Bind(nc)
	if err == nil {
		_ = track.Unbind(nc)
	}
	return codec, err
}

// codecOnly is a binding's context without its writer.
type codecOnly struct{ webrtc.TrackLocalContext }

func (codecOnly) WriteStream() webrtc.TrackLocalWriter { return nil }

// unbind stops writing to the binding id.
func (f *fanout) unbind(id string) {
	f.mu.Lock()
	f.binds = slices.DeleteFunc(f.binds, func(b binding) bool { return b.id == id })
	f.mu.Unlock()
}

// Unbind is pion's, when the subscription's connection closes. A subscription that left pion's connection
// for its own endpoint (endpoint.go) keeps its binding: its directSender unbinds it when it ends.
func (t *gatedTrack) Unbind(c webrtc.TrackLocalContext) error {
	if t.direct != nil && t.direct.ep.Load() != nil {
		return nil
	}
	return t.fanout.Unbind(c)
}

func (f *fanout) ID() string                { return f.track.ID() }
func (f *fanout) RID() string               { return f.track.RID() }
func (f *fanout) StreamID() string          { return f.track.StreamID() }
func (f *fanout) Kind() webrtc.RTPCodecType { return f.track.Kind() }

// write sends p to every bound subscriber that is not paused and returns how many it was sent to. Once it
// was sent to one, p's bytes (its payload and its header extensions' payloads) are kept: the caller must
// not reuse them, the NACK responders hold on to them. Errors are one subscriber's (a binding closing); the
// others still get the packet.
func (f *fanout) write(p *rtp.Packet) (sent int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if len(f.binds) == 0 {
		return 0
	}
	// Unmarshal reuses p's CSRC and extension arrays for the next packet: the kept headers get their own,
	// shared by all subscribers (nothing on pion's send path changes a header), and all the headers come
	// in one allocation per packet rather than one per subscriber.
	// A direct subscription seals the header at once: its header lives on the stack, and only pion's
	// bindings get one of hs.
	csrc, ext := slices.Clone(p.CSRC), slices.Clone(p.Extensions)
	var hs []rtp.Header
	for i, b := range f.binds {
		h := p.Header
		if g := b.gate; g != nil {
			if g.paused.Load() {
				g.skipped.Add(1)
				g.wasPaused = true
				continue
			}
			h.SequenceNumber -= uint16(g.skipped.Load())
			if g.wasPaused {
				g.resumedAt.Store(uint32(h.SequenceNumber))
				g.wasPaused = false
			}
		}
		h.CSRC, h.Extensions = csrc, ext
		h.SSRC, h.PayloadType = b.ssrc, b.pt
		if b.direct != nil {
			_ = b.direct.write(&h, p.Payload, &f.seal)
		} else {
			if hs == nil {
				hs = make([]rtp.Header, len(f.binds))
			}
			hs[i] = h
			_, _ = b.w.WriteRTP(&hs[i], p.Payload)
		}
		sent++
	}
	if r := f.ring.Load(); r != nil && sent > 0 {
		kept := &rtp.Packet{Header: p.Header, Payload: p.Payload}
		kept.CSRC, kept.Extensions = csrc, ext
		r.put(kept)
	}
	return sent
}
