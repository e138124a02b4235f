package media

import (
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

	"github.com/openstage/openstage/internal/media/policy"
)

// Simulcast (docs/DESIGN.md §4.9): a publisher may send up to three RID layers of its video section, as
// browsers and the IVS web SDK do with simulcast on (rids low, mid, hi). Each subscriber gets one layer
// through a selector of its own, which switches layers only at a keyframe of the layer it moves to (a
// decoder cannot start anywhere else) and rewrites sequence numbers and timestamps so that the subscriber
// sees one continuous stream. Keyframe requests go to the layer the subscriber receives, or is about to.

// maxLayers is how many RID layers of one video section are forwarded; more are not read.
const maxLayers = 3

// Layer preferences for a subscription's first layer (the IVS SDK's X-Stages-Initial-Layer-Pref).
const (
	LayerLowest  = "lowest"
	LayerHighest = "highest"
)

// ErrUnknownLayer: a layer selection named no layer of the publisher's video.
var ErrUnknownLayer = errors.New("media: no such layer")

// LayerInfo describes one layer as the layer link lists it.
type LayerInfo struct {
	RID             string
	Bitrate         int // bits per second, measured over the last second or so; 0 once the layer stopped
	Width, Height   int // from the layer's H.264 SPS; 0 when unknown
	FramesPerSecond float64
	Selected        bool // the layer the subscriber receives
}

// layer is one RID layer a publisher sends.
type layer struct {
	rid   string
	order int // position in the offer's a=simulcast send list: lowest quality first, as the SDKs send them
	ssrc  atomic.Uint32
	pub   *Publisher

	lastPLI       atomic.Int64
	width, height atomic.Int32
	bitrate       atomic.Int64
	fps           atomic.Uint64 // frames per second × 1000
	lastAt        atomic.Int64  // when its last packet came, in Unix nanoseconds

	// The measuring window, touched only by the layer's forward loop.
	winStart        time.Time
	winBytes, winFr int
}

// layerIdle: a layer that sent nothing for this long has stopped. A browser turns its higher layers off
// when its bandwidth estimate or its CPU falls short (Chromium under load, seen in the tests), and on again
// later; a layer at one frame a second is still sending.
const layerIdle = 2 * time.Second

// measure counts one packet of the layer in its bitrate and frame rate (frames end with the RTP marker).
// Padding-only packets are not counted: a browser that turns a layer off for want of bandwidth may go on
// sending padding on it, to probe for more, and a layer of padding has no picture to offer.
func (l *layer) measure(p *rtp.Packet, n int, now time.Time) {
	if len(p.Payload) == 0 {
		return
	}
	l.lastAt.Store(now.UnixNano())
	if l.winStart.IsZero() {
		l.winStart = now
	}
	l.winBytes += n
	if p.Marker {
		l.winFr++
	}
	if d := now.Sub(l.winStart); d >= time.Second {
		l.bitrate.Store(int64(float64(l.winBytes*8) / d.Seconds()))
		l.fps.Store(uint64(float64(l.winFr) * 1000 / d.Seconds()))
		l.winStart, l.winBytes, l.winFr = now, 0, 0
	}
}

// rate is the layer's measured bitrate, 0 once it has stopped sending: the last measure of a layer the
// publisher turned off is no layer to move to, nor to list as one.
func (l *layer) rate() int64 {
	if l.stopped() {
		return 0
	}
	return l.bitrate.Load()
}

// stopped: the layer sent media and then nothing for layerIdle.
func (l *layer) stopped() bool {
	last := l.lastAt.Load()
	return last != 0 && time.Now().UnixNano()-last > int64(layerIdle)
}

// requestKeyframe sends the layer a PLI, at most every 300 ms unless now.
func (l *layer) requestKeyframe(now bool) {
	t := time.Now().UnixNano()
	last := l.lastPLI.Load()
	if !now && (t-last < int64(300*time.Millisecond) || !l.lastPLI.CompareAndSwap(last, t)) {
		return
	}
	l.lastPLI.Store(t)
	if ssrc := l.ssrc.Load(); ssrc != 0 && l.pub != nil {
		_ = l.pub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
	}
}

// layered is a publisher's simulcast video: its layers and the selectors of its subscribers.
type layered struct {
	codec webrtc.RTPCodecCapability
	// track negotiates the codec on each selector's Bind (pion's matching rules); no packet is written
	// through it.
	track *webrtc.TrackLocalStaticRTP

	mu     sync.RWMutex
	layers []*layer
	sels   []*selector
}

func newLayered(codec webrtc.RTPCodecCapability, streamID string) (*layered, error) {
	t, err := webrtc.NewTrackLocalStaticRTP(codec, "video", streamID)
	if err != nil {
		return nil, err
	}
	return &layered{codec: codec, track: t}, nil
}

// ordered returns the layers from the lowest quality to the highest: by picture size once every layer's is
// known, by the offer's order until then.
func (v *layered) ordered() []*layer {
	v.mu.RLock()
	ls := slices.Clone(v.layers)
	v.mu.RUnlock()
	sized := true
	for _, l := range ls {
		sized = sized && l.width.Load() > 0
	}
	slices.SortStableFunc(ls, func(a, b *layer) int {
		if sized {
			if pa, pb := a.width.Load()*a.height.Load(), b.width.Load()*b.height.Load(); pa != pb {
				return int(pa - pb)
			}
		}
		return a.order - b.order
	})
	return ls
}

// pick is the layer a preference names.
func (v *layered) pick(pref string) *layer {
	ls := v.ordered()
	if len(ls) == 0 {
		return nil
	}
	if strings.EqualFold(pref, LayerHighest) {
		return ls[len(ls)-1]
	}
	return ls[0]
}

// write hands one packet of layer l to every selector and returns how many forwarded it (each of them
// keeps the packet's bytes).
func (v *layered) write(l *layer, p *rtp.Packet) (sent int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if len(v.sels) == 0 {
		return 0
	}
	key := isKeyframeStart(v.codec.MimeType, p.Payload)
	if key && strings.EqualFold(v.codec.MimeType, webrtc.MimeTypeH264) {
		l.readSize(p.Payload)
	}
	// The CSRCs are shared by the headers the subscribers' NACK responders keep (nothing changes them).
	csrc := slices.Clone(p.CSRC)
	for _, s := range v.sels {
		if s.write(l, p, key, csrc) {
			sent++
		}
	}
	return sent
}

// readSize takes the layer's picture size from an SPS at the start of a keyframe.
func (l *layer) readSize(payload []byte) {
	for _, nal := range leadingNALs(payload) {
		if len(nal) > 0 && nal[0]&0x1f == 7 {
			if sps, err := policy.ParseSPS(nal); err == nil {
				l.width.Store(int32(sps.Width))
				l.height.Store(int32(sps.Height))
			}
			return
		}
	}
}

// selector is one subscriber's video from a simulcast publisher: the layer it forwards, the layer it
// moves to at that layer's next keyframe, and the rewriting that makes the switches seamless.
type selector struct {
	v    *layered
	gate *gate // pause and resume (playback controls)

	mu      sync.Mutex
	bound   bool
	ssrc    uint32
	pt      uint8
	w       webrtc.TrackLocalWriter
	cur     *layer // forwarded; nil before the first keyframe and after a pause
	target  *layer // wanted
	manual  bool   // target chosen by the client (the layer link) rather than automatically
	pref    string // the first choice: LayerLowest or LayerHighest
	started bool
	lastSeq uint16
	lastTS  uint32
	lastAt  time.Time
	seqOff  uint16
	tsOff   uint32
	askedAt time.Time // the last keyframe request write made for the target while waiting for its keyframe

	// Congestion, from the subscriber's RTCP.
	lossy     int       // receiver reports in a row with more than lossDown lost
	cleanFrom time.Time // since when no report said more than lossUp lost
	holdUntil time.Time // no automatic move before this (the last one's effect is not measured yet)

	switches *atomic.Uint64 // the SFU's count of layer switches
}

// selectorTrack is what a subscriber's peer connection sends: the selector, as a pion TrackLocal.
type selectorTrack struct{ s *selector }

var _ webrtc.TrackLocal = selectorTrack{}

func (t selectorTrack) Bind(c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	s := t.s
	codec, err := matchCodec(s.v.track, c)
	if err != nil {
		return codec, err
	}
	s.mu.Lock()
	s.bound, s.ssrc, s.pt, s.w = true, uint32(c.SSRC()), uint8(codec.PayloadType), c.WriteStream()
	s.mu.Unlock()
	s.v.mu.Lock()
	s.v.sels = append(s.v.sels, s)
	s.v.mu.Unlock()
	return codec, nil
}

func (t selectorTrack) Unbind(c webrtc.TrackLocalContext) error {
	t.s.detach()
	return nil
}

func (t selectorTrack) ID() string                { return t.s.v.track.ID() }
func (t selectorTrack) RID() string               { return "" }
func (t selectorTrack) StreamID() string          { return t.s.v.track.StreamID() }
func (t selectorTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeVideo }

// detach stops the selector's forwarding (its subscription ends).
func (s *selector) detach() {
	s.v.mu.Lock()
	s.v.sels = slices.DeleteFunc(s.v.sels, func(x *selector) bool { return x == s })
	s.v.mu.Unlock()
	s.mu.Lock()
	s.bound = false
	s.mu.Unlock()
}

// keyframeRetry is how long a selector waits for the keyframe of the layer it is to move to before it asks
// again. The request or the keyframe may be lost, and a publisher may drop a request: Chromium ignores one
// that comes within 300 ms of the last it took, for whichever of its layers (so two subscribers that want
// two layers at once get one keyframe). A decoder waiting for a keyframe asks again in the same way.
const keyframeRetry = 500 * time.Millisecond

// write forwards p, a packet of layer l, if l is the selector's layer, or switches to l first when l is
// the wanted layer and p starts a keyframe.
func (s *selector) write(l *layer, p *rtp.Packet, key bool, csrc []uint32) bool {
	s.mu.Lock()
	sent, ask := s.writeLocked(l, p, key, csrc)
	s.mu.Unlock()
	if ask {
		l.requestKeyframe(false)
	}
	return sent
}

// writeLocked is write with s.mu held; ask: the keyframe l is waited for is overdue, ask for it again.
func (s *selector) writeLocked(l *layer, p *rtp.Packet, key bool, csrc []uint32) (sent, ask bool) {
	if !s.bound || s.gate.paused.Load() {
		if s.bound {
			s.cur = nil // resuming starts again at a keyframe (SetPaused asks for one)
		}
		return false, false
	}
	if l != s.cur {
		if l != s.target {
			return false, false
		}
		if !key {
			if now := time.Now(); now.Sub(s.askedAt) >= keyframeRetry {
				s.askedAt = now
				return false, true
			}
			return false, false
		}
		now := time.Now()
		if s.started {
			// Continue the subscriber's stream: the next sequence number, and the timestamp moved on by the
			// time since the last packet sent (90 kHz, at least one tick).
			ticks := uint32(now.Sub(s.lastAt).Seconds()*90000) + 1
			s.seqOff = p.SequenceNumber - (s.lastSeq + 1)
			s.tsOff = p.Timestamp - (s.lastTS + ticks)
		}
		if s.cur != nil && s.switches != nil {
			s.switches.Add(1)
		}
		s.cur, s.started = l, true
	}
	h := new(rtp.Header) // kept by the subscriber's NACK responder: one of its own
	*h = p.Header
	h.Extension, h.Extensions = false, nil // the publisher's RID and MID extensions mean nothing here
	h.CSRC = csrc
	h.SSRC, h.PayloadType = s.ssrc, s.pt
	h.SequenceNumber -= s.seqOff
	h.Timestamp -= s.tsOff
	s.lastSeq, s.lastTS, s.lastAt = h.SequenceNumber, h.Timestamp, time.Now()
	_, _ = s.w.WriteRTP(h, p.Payload)
	return true, false
}

// The automatic choice (docs/DESIGN.md §4.9): a subscription that has not chosen a layer itself starts on
// its preference and then follows its link, from the loss its receiver reports tell (RFC 3550 §6.4.2,
// what every client sends) and the REMB estimate of clients that send one. Two reports in a row with more
// than lossDown of the packets lost move it one layer down; lossUpAfter without a report above lossUp move
// it one layer up; REMB caps it at the highest layer whose measured bitrate fits the estimate. A layer the
// publisher stops sending moves it down too, at its next report.
const (
	lossDown    = 0.10
	lossUp      = 0.02
	lossUpAfter = 15 * time.Second
	moveHold    = 2 * time.Second
)

// feedback is the subscription's RTCP other than keyframe requests.
func (s *selector) feedback(p rtcp.Packet) {
	now := time.Now()
	switch p := p.(type) {
	case *rtcp.ReceiverReport:
		for _, r := range p.Reports {
			if r.SSRC == s.boundSSRC() {
				s.onLoss(float64(r.FractionLost)/256, now)
			}
		}
	case *rtcp.ReceiverEstimatedMaximumBitrate:
		s.onREMB(float64(p.Bitrate), now)
	}
}

func (s *selector) boundSSRC() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ssrc
}

// onLoss takes one receiver report's fraction lost.
func (s *selector) onLoss(lost float64, now time.Time) {
	s.mu.Lock()
	if s.cleanFrom.IsZero() || lost > lossUp {
		s.cleanFrom = now
	}
	if lost > lossDown {
		s.lossy++
	} else {
		s.lossy = 0
	}
	dir, carried := 0, 0.0
	switch {
	case now.Before(s.holdUntil):
	case s.target != nil && s.target.stopped():
		dir = -1 // the publisher turned the layer off: the highest one below that still sends
	case s.lossy >= 2:
		s.lossy, dir = 0, -1
		if s.target != nil {
			carried = float64(s.target.rate()) * (1 - lost)
		}
	case now.Sub(s.cleanFrom) >= lossUpAfter:
		dir = +1 // the clean stretch starts again from the move, if there is a layer to move up to
	}
	s.mu.Unlock()
	if dir != 0 {
		s.step(dir, carried, now)
	}
}

// onREMB caps the layer at what the estimate carries (moving down at once, up only when the loss allows).
func (s *selector) onREMB(bps float64, now time.Time) {
	ls := s.v.ordered()
	s.mu.Lock()
	i := slices.Index(ls, s.target)
	hold := now.Before(s.holdUntil)
	s.mu.Unlock()
	if hold {
		return
	}
	if i > 0 && float64(ls[i].rate()) > 0.9*bps {
		s.step(-1, bps, now)
	}
}

// step moves the automatic choice up (+1) one layer, or down (-1) to the highest layer that fits in
// carried bits per second (what the link was seen to carry; 0: unknown, one layer down), at least the
// lowest. Layers that send nothing are skipped: a layer the publisher turned off is moved up to at the
// first report after it sends again.
func (s *selector) step(dir int, carried float64, now time.Time) {
	ls := s.v.ordered()
	s.mu.Lock()
	if s.manual || s.target == nil {
		s.mu.Unlock()
		return
	}
	i := slices.Index(ls, s.target)
	var to *layer
	for j := i + dir; i >= 0 && j >= 0 && j < len(ls); j += dir {
		if ls[j].rate() <= 0 {
			continue
		}
		to = ls[j]
		if dir > 0 || carried <= 0 || float64(ls[j].rate()) <= 0.9*carried {
			break
		}
	}
	if to == nil {
		s.mu.Unlock()
		return
	}
	s.target, s.holdUntil = to, now.Add(moveHold)
	if dir > 0 {
		s.cleanFrom = now
	}
	switching := to != s.cur
	s.mu.Unlock()
	if switching {
		to.requestKeyframe(true)
	}
}

// requestKeyframe asks for a keyframe of the layer the subscriber receives or is moving to.
func (s *selector) requestKeyframe() {
	s.mu.Lock()
	l := s.target
	if l == nil {
		l = s.cur
	}
	s.mu.Unlock()
	if l != nil {
		l.requestKeyframe(false)
	}
}

// choose sets the wanted layer from the preference, unless the client chose one, and asks it for a
// keyframe when the subscriber must move to it.
func (s *selector) choose() {
	l := s.v.pick(s.pref)
	s.mu.Lock()
	if l == nil || (s.manual && s.target != nil) || l == s.target {
		s.mu.Unlock()
		return
	}
	s.target = l
	s.cleanFrom, s.holdUntil = time.Now(), time.Now().Add(moveHold) // the automatic choice starts again from here
	switching := l != s.cur
	s.mu.Unlock()
	if switching {
		l.requestKeyframe(true)
	}
}

// resumed asks for the keyframe a resumed subscriber starts again with.
func (s *selector) resumed() {
	s.mu.Lock()
	l := s.target
	s.mu.Unlock()
	if l != nil {
		l.requestKeyframe(true)
	}
}

// selectLayer makes rid the wanted layer ("" returns to the preference).
func (s *selector) selectLayer(rid string) error {
	if rid == "" {
		s.mu.Lock()
		s.manual, s.target = false, nil // back to the preference, then to what the link carries
		s.mu.Unlock()
		s.choose()
		return nil
	}
	var l *layer
	for _, x := range s.v.ordered() {
		if x.rid == rid {
			l = x
		}
	}
	if l == nil {
		return fmt.Errorf("%w: %q", ErrUnknownLayer, rid)
	}
	s.mu.Lock()
	s.manual, s.target = true, l
	switching := l != s.cur
	s.mu.Unlock()
	if switching {
		l.requestKeyframe(true)
	}
	return nil
}

// layers lists the publisher's layers, lowest first, marking the one this subscriber receives.
func (s *selector) layers() []LayerInfo {
	s.mu.Lock()
	cur := s.cur
	if cur == nil {
		cur = s.target
	}
	s.mu.Unlock()
	var out []LayerInfo
	for _, l := range s.v.ordered() {
		info := LayerInfo{RID: l.rid, Bitrate: int(l.rate()), Width: int(l.width.Load()), Height: int(l.height.Load()), Selected: l == cur}
		if info.Bitrate > 0 {
			info.FramesPerSecond = float64(l.fps.Load()) / 1000
		}
		out = append(out, info)
	}
	return out
}

// isKeyframeStart reports whether an RTP payload starts a keyframe a decoder can begin with: for H.264 an
// SPS or an IDR slice (RFC 6184: single NAL unit, STAP-A, or the start of an FU-A); for VP8 the first
// packet of a key frame (RFC 7741 §4.3, RFC 6386 §9.1). Other codecs: every packet, so a switch waits for
// nothing (and may show artefacts until the keyframe it requested arrives).
func isKeyframeStart(mime string, p []byte) bool {
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeH264):
		for _, nal := range leadingNALs(p) {
			if len(nal) > 0 {
				if t := nal[0] & 0x1f; t == 5 || t == 7 {
					return true
				}
			}
		}
		if len(p) >= 2 && p[0]&0x1f == 28 { // FU-A start of an IDR slice
			return p[1]&0x80 != 0 && p[1]&0x1f == 5
		}
		return false
	case strings.EqualFold(mime, webrtc.MimeTypeVP8):
		return vp8KeyframeStart(p)
	}
	return true
}

// leadingNALs are the whole NAL units of an H.264 payload: the unit itself, or a STAP-A's units.
func leadingNALs(p []byte) [][]byte {
	if len(p) < 1 {
		return nil
	}
	switch t := p[0] & 0x1f; {
	case t >= 1 && t <= 23:
		return [][]byte{p}
	case t == 24:
		var out [][]byte
		for i := 1; i+2 <= len(p); {
			n := int(p[i])<<8 | int(p[i+1])
			i += 2
			if n == 0 || i+n > len(p) {
				break
			}
			out = append(out, p[i:i+n])
			i += n
		}
		return out
	}
	return nil
}

// vp8KeyframeStart: the payload descriptor's S bit and partition 0, then a frame tag whose P bit is 0.
func vp8KeyframeStart(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	x, s, pid := p[0]&0x80 != 0, p[0]&0x10 != 0, p[0]&0x07
	i := 1
	if x {
		if len(p) < 2 {
			return false
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 { // I: picture id
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K
			i++
		}
	}
	return s && pid == 0 && len(p) > i && p[i]&0x01 == 0
}

// simulcastRIDs lists, for each media section of an offer, the RIDs it sends (a=simulcast send, RFC 8853),
// in the offer's order, without the paused ones (~); nil for a section without simulcast.
func simulcastRIDs(m *sdp.MediaDescription) []string {
	v, ok := m.Attribute("simulcast")
	if !ok {
		return nil
	}
	f := strings.Fields(v)
	for i := 0; i+1 < len(f); i += 2 {
		if f[i] != "send" {
			continue
		}
		var rids []string
		for _, alt := range strings.Split(f[i+1], ";") {
			first, _, _ := strings.Cut(alt, ",")
			if first = strings.TrimSpace(first); first != "" && !strings.HasPrefix(first, "~") {
				rids = append(rids, first)
			}
		}
		return rids
	}
	return nil
}

// LayerSubscribers counts the subscriptions to simulcast publishers by the rank of the layer each receives
// (or is moving to): the lowest layer, one in between, the highest.
func (s *SFU) LayerSubscribers() (low, mid, high int) {
	s.mu.Lock()
	pubs := make([]*Publisher, 0, len(s.pubs))
	for p := range s.pubs {
		pubs = append(pubs, p)
	}
	s.mu.Unlock()
	for _, p := range pubs {
		p.mu.Lock()
		v := p.video
		p.mu.Unlock()
		if v == nil {
			continue
		}
		ls := v.ordered()
		v.mu.RLock()
		sels := slices.Clone(v.sels)
		v.mu.RUnlock()
		for _, sel := range sels {
			sel.mu.Lock()
			l := sel.cur
			if l == nil {
				l = sel.target
			}
			sel.mu.Unlock()
			switch i := slices.Index(ls, l); {
			case i < 0:
			case i == 0:
				low++
			case i == len(ls)-1:
				high++
			default:
				mid++
			}
		}
	}
	return low, mid, high
}
