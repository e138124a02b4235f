package media

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/openstage/openstage/internal/ivs"
)

// Inspector looks at every packet a publisher sends, for the media policy (SPEC §4). It returns a
// non-empty code when the stream breaks the policy; the publisher is then stopped.
type Inspector interface {
	Inspect(kind webrtc.RTPCodecType, codec webrtc.RTPCodecParameters, p *rtp.Packet, now time.Time) (ivs.ErrorCode, string)
}

// PublishHooks report a publisher's life. They are called from pion's goroutines and must not block long.
type PublishHooks struct {
	// OnMedia is called once, when the publisher's first track is ready to forward.
	OnMedia func()
	// OnViolation is called when the inspector rejects the stream, before the publisher is closed.
	OnViolation func(code ivs.ErrorCode, msg string)
	// OnClosed is called once, when the publisher has ended for any reason.
	OnClosed func()
	// Inspector, if not nil, sees every packet.
	Inspector Inspector
}

// Publisher is one participant's published media.
type Publisher struct {
	sfu   *SFU
	key   pubKey
	pc    *webrtc.PeerConnection
	hooks PublishHooks

	mu        sync.Mutex
	tracks    []*fanout
	videoSSRC webrtc.SSRC
	subs      map[*Subscriber]struct{}
	ready     chan struct{} // closed when the first track exists
	all       chan struct{} // closed when every track the offer announced exists
	expected  int           // tracks the offer announced

	nsubs     atomic.Int32 // live subscriptions, for the forwarded counters
	lastPLI   atomic.Int64 // unix nanos of the last keyframe request sent
	mediaOnce sync.Once
	violation sync.Once // the first violation is reported; the stream is closing after it
	closeOnce sync.Once
	done      chan struct{}
}

// Publish negotiates a publisher from its offer and returns the answer. A participant publishes once per
// stage: an older publisher of the same participant is closed (its replacement is the newer connection).
func (s *SFU) Publish(ctx context.Context, stage ivs.StageID, id ivs.ParticipantID, offer string, hooks PublishHooks) (*Publisher, string, error) {
	if !sendsMedia(offer) {
		return nil, "", fmt.Errorf("%w: a publish offer must send media (no m-line is sendonly or sendrecv)", ErrBadOffer)
	}
	pc, err := s.pubAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", fmt.Errorf("media: new peer connection: %w", err)
	}
	p := &Publisher{sfu: s, key: pubKey{stage, id}, pc: pc, hooks: hooks, subs: map[*Subscriber]struct{}{},
		ready: make(chan struct{}), all: make(chan struct{}), done: make(chan struct{}), expected: announcedTracks(offer)}
	pc.OnTrack(p.onTrack)
	watchEnd(pc, nil, func() { go p.Close() })
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		_ = pc.Close()
		return nil, "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	var old *Publisher
	ans, err := answer(ctx, pc, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return ErrClosed
		}
		old = s.pubs[p.key]
		s.pubs[p.key] = p
		return nil
	})
	if err != nil {
		p.Close()
		return nil, "", err
	}
	if old != nil {
		old.Close()
	}
	return p, ans, nil
}

// ErrBadOffer: the SDP offer could not be applied.
var ErrBadOffer = errors.New("media: the offer cannot be used")

func (p *Publisher) onTrack(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	codec := remote.Codec()
	local, err := newFanout(codec.RTPCodecCapability, remote.Kind().String(), "openstage-"+string(p.key.id))
	if err != nil {
		p.sfu.log.Error("media: local track", "err", err)
		return
	}
	p.mu.Lock()
	select {
	case <-p.done:
		p.mu.Unlock()
		return
	default:
	}
	p.tracks = append(p.tracks, local)
	if remote.Kind() == webrtc.RTPCodecTypeVideo {
		p.videoSSRC = remote.SSRC()
	}
	first, all := len(p.tracks) == 1, len(p.tracks) == p.expected
	p.mu.Unlock()
	if first {
		close(p.ready)
	}
	if all {
		close(p.all)
	}
	p.sfu.wg.Add(1)
	go p.forward(remote, local, codec)
	p.mediaOnce.Do(func() {
		if p.hooks.OnMedia != nil {
			p.hooks.OnMedia()
		}
	})
}

// forward is the hot path: read each packet once, inspect it, write it to the local track, which sends it
// to every subscriber bound to that track.
func (p *Publisher) forward(remote *webrtc.TrackRemote, local *fanout, codec webrtc.RTPCodecParameters) {
	defer p.sfu.wg.Done()
	kind := remote.Kind()
	var pkt rtp.Packet
	buf := make([]byte, 1500)
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if p.hooks.Inspector != nil {
			if code, msg := p.hooks.Inspector.Inspect(kind, codec, &pkt, time.Now()); code != "" {
				p.violation.Do(func() {
					if p.hooks.OnViolation != nil {
						p.hooks.OnViolation(code, msg)
					}
					go p.Close()
				})
				return
			}
		}
		if local.write(&pkt) {
			// The subscribers' NACK responders keep the packet's bytes: the next one needs a buffer of its own.
			buf = make([]byte, 1500)
		}
		st := &p.sfu.stats
		st.ReceivedPackets.Add(1)
		st.ReceivedBytes.Add(uint64(n))
		if k := uint64(p.nsubs.Load()); k > 0 {
			st.ForwardedPackets.Add(k)
			st.ForwardedBytes.Add(k * uint64(n))
		}
	}
}

// RequestKeyframe asks the publisher for a keyframe (PLI, RFC 4585 §6.3.1), at most every 300 ms however
// many subscribers ask.
func (p *Publisher) RequestKeyframe() {
	now := time.Now().UnixNano()
	last := p.lastPLI.Load()
	if now-last < int64(300*time.Millisecond) || !p.lastPLI.CompareAndSwap(last, now) {
		return
	}
	p.mu.Lock()
	ssrc := p.videoSSRC
	p.mu.Unlock()
	if ssrc == 0 {
		return
	}
	_ = p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)}})
}

// trackSettle is how long a subscribe waits, after the publisher's first track, for the others the
// offer announced (audio usually arrives a moment before video).
const trackSettle = time.Second

// waitTracks waits until the publisher has its tracks (or ctx ends), then returns them. A track appears
// with the publisher's first packet on it, when pion knows its codec.
func (p *Publisher) waitTracks(ctx context.Context) ([]*fanout, error) {
	select {
	case <-p.ready:
	case <-p.done:
		return nil, ErrPublisherNotFound
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	settle := time.NewTimer(trackSettle)
	defer settle.Stop()
	select {
	case <-p.all:
	case <-settle.C:
	case <-p.done:
		return nil, ErrPublisherNotFound
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*fanout(nil), p.tracks...), nil
}

// Done is closed when the publisher has ended.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Close ends the publisher and every subscription to it.
func (p *Publisher) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		close(p.done)
		subs := make([]*Subscriber, 0, len(p.subs))
		for sub := range p.subs {
			subs = append(subs, sub)
		}
		p.mu.Unlock()
		s := p.sfu
		s.mu.Lock()
		if s.pubs[p.key] == p {
			delete(s.pubs, p.key)
		}
		s.mu.Unlock()
		for _, sub := range subs {
			sub.Close()
		}
		_ = p.pc.Close()
		if p.hooks.OnClosed != nil {
			p.hooks.OnClosed()
		}
	})
}

// announcedTracks counts the offer's media sections that will send us a track: sendrecv or sendonly with
// a media stream id or an SSRC (the IVS web SDK keeps an empty sendrecv video section for audio-only
// publishers).
func announcedTracks(offer string) int {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return 1
	}
	n := 0
	for _, m := range d.MediaDescriptions {
		send := true
		for _, a := range m.Attributes {
			if a.Key == "recvonly" || a.Key == "inactive" {
				send = false
			}
		}
		_, msid := m.Attribute("msid")
		_, ssrc := m.Attribute("ssrc")
		if send && (msid || ssrc) {
			n++
		}
	}
	if n == 0 {
		n = 1
	}
	return n
}

// sendsMedia reports whether an offer has a media section that sends (sendrecv, the default, or sendonly).
func sendsMedia(offer string) bool {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return true // let pion report what is wrong with it
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Port.Value == 0 {
			continue
		}
		send := true
		for _, a := range m.Attributes {
			if a.Key == "recvonly" || a.Key == "inactive" {
				send = false
			}
		}
		if send {
			return true
		}
	}
	return false
}
