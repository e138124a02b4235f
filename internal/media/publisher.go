package media

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/openstage/openstage/internal/ivs"
)

// Inspector looks at every packet a publisher sends, for the media policy (docs/DESIGN.md §4.8). It returns a
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
}

// Publisher is one participant's published media.
type Publisher struct {
	sfu       *SFU
	stage     ivs.StageID
	id        ivs.ParticipantID
	pc        *webrtc.PeerConnection
	hooks     PublishHooks
	inspector Inspector // nil inspects nothing

	mu     sync.Mutex
	tracks []*fanout // audio, and video without simulcast
	// videoSSRC is the SSRC of the video without simulcast, where keyframe requests go; a simulcast
	// video's layers each have theirs.
	videoSSRC webrtc.SSRC
	video     *layered // the simulcast video (RID layers), nil without
	rids      []string // the offer's simulcast RIDs, lowest first
	subs      map[*Subscriber]struct{}
	ready     chan struct{} // closed when the first track exists
	all       chan struct{} // closed when every track the offer announced exists
	expected  int           // tracks the offer announced (each simulcast layer is one)
	arrived   int           // tracks that arrived

	nsubs     atomic.Int32 // live subscriptions, for the forwarded counters
	tap       atomic.Pointer[tapHolder]
	lastPLI   atomic.Int64 // unix nanos of the last keyframe request sent
	mediaOnce sync.Once
	violation sync.Once // the first violation is reported; the stream is closing after it
	closeOnce sync.Once
	done      chan struct{}
}

// Publish negotiates a publisher from its offer and returns the answer. The SFU keeps no rule about who
// publishes: its caller (the stage domain) decides which publisher of a participant is current, closes the
// others, and hands the current one to Subscribe.
func (s *SFU) Publish(ctx context.Context, stage ivs.StageID, id ivs.ParticipantID, offer string, hooks PublishHooks) (*Publisher, string, error) {
	if !sendsMedia(offer) {
		return nil, "", fmt.Errorf("%w: a publish offer must send media (no m-line is sendonly or sendrecv)", ErrBadOffer)
	}
	conf, err := s.peerConfig()
	if err != nil {
		return nil, "", err
	}
	pc, err := s.pubAPI.NewPeerConnection(conf)
	if err != nil {
		return nil, "", fmt.Errorf("media: new peer connection: %w", err)
	}
	expected, rids := announcedTracks(offer)
	p := &Publisher{sfu: s, stage: stage, id: id, pc: pc, hooks: hooks, subs: map[*Subscriber]struct{}{},
		ready: make(chan struct{}), all: make(chan struct{}), done: make(chan struct{}), expected: expected, rids: rids}
	if s.cfg.Inspector != nil {
		p.inspector = s.cfg.Inspector()
	}
	pc.OnTrack(p.onTrack)
	s.watchEnd(pc, nil, func() { go p.Close() })
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		_ = pc.Close()
		return nil, "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	ans, err := answer(ctx, pc, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return ErrClosed
		}
		s.pubs[p] = struct{}{}
		return nil
	})
	if err != nil {
		p.Close()
		return nil, "", err
	}
	return p, ans, nil
}

// ErrBadOffer: the SDP offer could not be applied.
var ErrBadOffer = errors.New("media: the offer cannot be used")

func (p *Publisher) onTrack(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	codec := remote.Codec()
	if remote.Kind() == webrtc.RTPCodecTypeVideo && remote.RID() != "" {
		p.onLayer(remote, codec)
		return
	}
	local, err := newFanout(codec.RTPCodecCapability, remote.Kind().String(), "openstage-"+string(p.id))
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
	first, all := p.arrivedLocked()
	p.mu.Unlock()
	p.announce(first, all)
	if !p.sfu.goTracked(func() { p.forward(remote, codec, local.write, nil) }) {
		return // the SFU is closing: it closes this publisher too
	}
	p.mediaOnce.Do(func() {
		if p.hooks.OnMedia != nil {
			p.hooks.OnMedia()
		}
	})
}

// arrivedLocked counts a track's arrival: whether it is the first, and whether it is the last announced.
func (p *Publisher) arrivedLocked() (first, all bool) {
	p.arrived++
	return p.arrived == 1, p.arrived == p.expected
}

func (p *Publisher) announce(first, all bool) {
	if first {
		close(p.ready)
	}
	if all {
		close(p.all)
	}
}

// onLayer takes one RID layer of a simulcast video: the first makes the publisher's layered video, and
// every subscriber's selector may move to the new layer.
func (p *Publisher) onLayer(remote *webrtc.TrackRemote, codec webrtc.RTPCodecParameters) {
	p.mu.Lock()
	select {
	case <-p.done:
		p.mu.Unlock()
		return
	default:
	}
	if p.video == nil {
		v, err := newLayered(codec.RTPCodecCapability, "openstage-"+string(p.id))
		if err != nil {
			p.mu.Unlock()
			p.sfu.log.Error("media: local track", "err", err)
			return
		}
		p.video = v
	}
	v := p.video
	v.mu.Lock()
	if len(v.layers) >= maxLayers {
		v.mu.Unlock()
		p.mu.Unlock()
		return // not read: pion drops what nobody reads
	}
	l := &layer{rid: remote.RID(), order: len(p.rids), pub: p}
	if i := slices.Index(p.rids, l.rid); i >= 0 {
		l.order = i
	}
	l.ssrc.Store(uint32(remote.SSRC()))
	v.layers = append(v.layers, l)
	sels := slices.Clone(v.sels)
	v.mu.Unlock()
	first, all := p.arrivedLocked()
	p.mu.Unlock()
	p.announce(first, all)
	for _, s := range sels {
		s.choose() // a better match for its preference may have arrived
	}
	write := func(pkt *rtp.Packet) int { return v.write(l, pkt) }
	if !p.sfu.goTracked(func() { p.forward(remote, codec, write, l) }) {
		return
	}
	p.mediaOnce.Do(func() {
		if p.hooks.OnMedia != nil {
			p.hooks.OnMedia()
		}
	})
}

// forward is the hot path: read each packet once, inspect it, write it to the local track, which sends it
// to every subscriber bound to that track (write: a fanout's, or a simulcast layer's, which also measures
// the layer l; it returns how many subscribers it sent the packet to).
func (p *Publisher) forward(remote *webrtc.TrackRemote, codec webrtc.RTPCodecParameters, write func(*rtp.Packet) int, l *layer) {
	kind := remote.Kind()
	// A tap gets H.264 and Opus only, the codecs a recording holds (IVS ingests no other; under a media
	// policy that lets VP8 through, its video is not recorded).
	tappable := strings.EqualFold(codec.MimeType, webrtc.MimeTypeH264) || strings.EqualFold(codec.MimeType, webrtc.MimeTypeOpus)
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
		if p.inspector != nil {
			if code, msg := p.inspector.Inspect(kind, codec, &pkt, time.Now()); code != "" {
				p.violation.Do(func() {
					if p.hooks.OnViolation != nil {
						p.hooks.OnViolation(code, msg)
					}
					go p.Close()
				})
				return
			}
		}
		if l != nil {
			l.measure(&pkt, n, time.Now())
		}
		if t := p.tap.Load(); t != nil && tappable && (l == nil || l.order >= len(p.rids)-1) {
			t.TapRTP(kind == webrtc.RTPCodecTypeVideo, buf[:n])
		}
		st := &p.sfu.stats
		st.ReceivedPackets.Add(1)
		st.ReceivedBytes.Add(uint64(n))
		// Counted as sent, not as subscribed: a simulcast subscriber gets one layer of three, a paused one
		// nothing.
		if k := uint64(write(&pkt)); k > 0 {
			// The subscribers' NACK responders keep the packet's bytes: the next one needs a buffer of its own.
			buf = make([]byte, 1500)
			st.ForwardedPackets.Add(k)
			st.ForwardedBytes.Add(k * uint64(n))
		}
	}
}

// Tap receives a copy of every packet a publisher publishes: a recorder (docs/DESIGN.md §7) is one more
// consumer of the media, beside the subscribers. TapRTP is called on the forwarding goroutine with the
// packet as received (raw is only valid during the call); it must copy what it keeps and never block, or
// it would slow every subscriber of the publisher. Of a simulcast video it gets the highest layer.
type Tap interface {
	TapRTP(video bool, raw []byte)
}

type tapHolder struct{ Tap }

// SetTap makes t the publisher's tap (nil removes it). The forwarding loop reads it once per packet with
// one atomic load.
func (p *Publisher) SetTap(t Tap) {
	if t == nil {
		p.tap.Store(nil)
		return
	}
	p.tap.Store(&tapHolder{t})
}

// RequestKeyframe asks the publisher for a keyframe (PLI, RFC 4585 §6.3.1), at most every 300 ms however
// many subscribers ask. With simulcast it asks every layer; subscribers' own requests go to their layer
// only (selector).
func (p *Publisher) RequestKeyframe() { p.requestKeyframe(false) }

// requestKeyframe sends a PLI; now sends it whatever the rate limit says (a subscriber resuming after a
// pause needs a keyframe made after its resumption, not one already on its way).
func (p *Publisher) requestKeyframe(now bool) {
	t := time.Now().UnixNano()
	last := p.lastPLI.Load()
	if !now && (t-last < int64(300*time.Millisecond) || !p.lastPLI.CompareAndSwap(last, t)) {
		return
	}
	if now {
		p.lastPLI.Store(t)
	}
	p.mu.Lock()
	ssrc, v := p.videoSSRC, p.video
	p.mu.Unlock()
	if v != nil {
		v.mu.RLock()
		ls := slices.Clone(v.layers)
		v.mu.RUnlock()
		for _, l := range ls {
			l.requestKeyframe(false)
		}
	}
	if ssrc == 0 {
		return
	}
	_ = p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)}})
}

// trackSettle is how long a subscribe waits, after the publisher's first track, for the others the
// offer announced (audio usually arrives a moment before video).
const trackSettle = time.Second

// waitTracks waits until the publisher has its tracks (or ctx ends), then returns them: the fanouts, and the
// simulcast video if there is one. A track appears with the publisher's first packet on it, when pion
// knows its codec.
func (p *Publisher) waitTracks(ctx context.Context) ([]*fanout, *layered, error) {
	select {
	case <-p.ready:
	case <-p.done:
		return nil, nil, ErrPublisherNotFound
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	settle := time.NewTimer(trackSettle)
	defer settle.Stop()
	select {
	case <-p.all:
	case <-settle.C:
	case <-p.done:
		return nil, nil, ErrPublisherNotFound
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*fanout(nil), p.tracks...), p.video, nil
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
		delete(s.pubs, p)
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

// announcedTracks counts the tracks the offer's media sections will send us: one per section that is
// sendrecv or sendonly with a media stream id or an SSRC (the IVS web SDK keeps an empty sendrecv video
// section for audio-only publishers), or one per RID layer of a simulcast section (at most maxLayers). It
// also returns the first simulcast section's RIDs, in the offer's order (lowest quality first).
func announcedTracks(offer string) (int, []string) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return 1, nil
	}
	n := 0
	var rids []string
	for _, m := range d.MediaDescriptions {
		send := true
		for _, a := range m.Attributes {
			if a.Key == "recvonly" || a.Key == "inactive" {
				send = false
			}
		}
		_, msid := m.Attribute("msid")
		_, ssrc := m.Attribute("ssrc")
		if r := simulcastRIDs(m); send && len(r) > 0 && m.MediaName.Media == "video" {
			r = r[:min(len(r), maxLayers)]
			n += len(r)
			if rids == nil {
				rids = r
			}
			continue
		}
		if send && (msid || ssrc) {
			n++
		}
	}
	if n == 0 {
		n = 1
	}
	return n, rids
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
