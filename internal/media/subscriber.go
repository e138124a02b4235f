package media

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// SubscribeHooks report a subscription's life. They are called from pion's goroutines.
type SubscribeHooks struct {
	// OnConnected is called once, when the subscriber's media connection is up.
	OnConnected func()
	// OnClosed is called once, when the subscription has ended for any reason.
	OnClosed func()
}

// Subscriber is one subscription to one publisher.
type Subscriber struct {
	pub       *Publisher
	pc        *webrtc.PeerConnection // without a directSender; with one, the directSender holds it (peer)
	hooks     SubscribeHooks
	gates     map[string]*gate // by the media section's mid; written before the answer, then only read
	sel       *selector        // the video of a simulcast publisher, nil without
	direct    *directSender    // the subscription's own send path (direct.go), nil on pion's
	videoMid  string
	connOnce  sync.Once
	closeOnce sync.Once
}

// ownMid is a transceiver's mid as a string of its own: pion's is a slice of the offer, which a
// subscription keeping it would keep whole (1-4 KB) after pion's connection is gone (endpoint.go).
func ownMid(tr *webrtc.RTPTransceiver) string { return strings.Clone(tr.Mid()) }

// trackWait bounds how long a subscribe waits for a publisher that has connected but whose tracks are
// not ready yet.
const trackWait = 5 * time.Second

// Subscribe negotiates a subscription to pub, from the subscriber's recvonly offer, and returns the answer
// carrying the publisher's current audio and video. Of a simulcast video the subscriber gets one layer,
// first the one layerPref names (LayerLowest, the default, or LayerHighest).
func (s *SFU) Subscribe(ctx context.Context, pub *Publisher, offer, layerPref string, hooks SubscribeHooks) (*Subscriber, string, error) {
	if pub == nil || pub.sfu != s {
		return nil, "", ErrPublisherNotFound
	}
	wctx, cancel := context.WithTimeout(ctx, trackWait)
	tracks, video, err := pub.waitTracks(wctx)
	cancel()
	if err != nil {
		return nil, "", ErrPublisherNotFound
	}
	api := s.subAPI
	var direct *directSender
	// A subscription whose tracks are all fanouts answers NACKs from the fanouts' shared rings and sends
	// its own sender reports, on either send path: pion's interceptors kept a ring per subscription and a
	// report goroutine (docs/BENCHMARKS.md, memory per subscription). Its RTCP is taken as pion's SRTCP
	// session decrypts it (rtcpSink, through its own API), not read by a goroutine per sender. A simulcast
	// video's selector rewrites headers per subscriber, so such a subscription keeps pion's interceptors
	// and writer, and the RTCP loops that drive them (docs/DESIGN.md §4.11).
	if video == nil {
		direct = &directSender{sfu: s, pion: s.cfg.SendPath == SendPathPion, keyframe: pub.RequestKeyframe}
		if api, err = direct.api(s.subSE, s.subME); err != nil {
			return nil, "", fmt.Errorf("media: subscription API: %w", err)
		}
	}
	conf, err := s.peerConfig()
	if err != nil {
		return nil, "", err
	}
	pc, err := api.NewPeerConnection(conf)
	if err != nil {
		return nil, "", fmt.Errorf("media: new peer connection: %w", err)
	}
	sub := &Subscriber{pub: pub, hooks: hooks, gates: map[string]*gate{}, direct: direct}
	// pion's connection ending ends the subscription, unless the subscription left it (endpoint.go).
	end := func() { go sub.Close() }
	if direct == nil {
		sub.pc = pc
	} else {
		direct.pc = pc
		direct.onEnd = sub.Close
		end = func() {
			if direct.ep.Load() == nil {
				go sub.Close()
			}
		}
	}
	if direct != nil && !direct.pion {
		if dt := pc.SCTP().Transport(); dt != nil {
			dt.ICETransport().OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) {
				direct.pairChanged(pair, end)
			})
		}
	}
	s.watchEnd(pc, sub.connected, end)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		_ = pc.Close()
		return nil, "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	for _, t := range tracks {
		// AddTrack reuses the transceiver the recvonly offer created for this kind.
		g := &gate{video: t.Kind() == webrtc.RTPCodecTypeVideo}
		sender, err := pc.AddTrack(&gatedTrack{fanout: t, gate: g, direct: direct})
		if err != nil {
			_ = pc.Close()
			return nil, "", fmt.Errorf("media: add track: %w", err)
		}
		for _, tr := range pc.GetTransceivers() {
			if tr.Sender() == sender && tr.Mid() != "" {
				sub.gates[ownMid(tr)] = g
			}
		}
		if direct != nil {
			continue // its RTCP goes to direct.feedback (rtcpSink)
		}
		if !s.goTracked(func() { s.rtcpLoop(sender, pub.RequestKeyframe, nil) }) {
			_ = pc.Close()
			return nil, "", ErrClosed
		}
	}
	if video != nil {
		sel := &selector{v: video, gate: &gate{video: true}, pref: layerPref, switches: &s.stats.LayerSwitches}
		sel.choose()
		sender, err := pc.AddTrack(selectorTrack{sel})
		if err != nil {
			_ = pc.Close()
			return nil, "", fmt.Errorf("media: add track: %w", err)
		}
		sub.sel = sel
		for _, tr := range pc.GetTransceivers() {
			if tr.Sender() == sender && tr.Mid() != "" {
				mid := ownMid(tr)
				sub.gates[mid], sub.videoMid = sel.gate, mid
			}
		}
		if !s.goTracked(func() { s.rtcpLoop(sender, sel.requestKeyframe, sel.feedback) }) {
			_ = pc.Close()
			return nil, "", ErrClosed
		}
	}
	if direct != nil && s.isClosed() { // the others learnt it from goTracked
		_ = pc.Close()
		return nil, "", ErrClosed
	}
	ans, err := answer(ctx, pc, func() error {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		select {
		case <-pub.done:
			return ErrPublisherNotFound
		default:
		}
		pub.subs[sub] = struct{}{}
		pub.nsubs.Add(1)
		return nil
	})
	if err != nil {
		sub.Close()
		return nil, "", err
	}
	return sub, ans, nil
}

func (sub *Subscriber) connected() {
	sub.connOnce.Do(func() {
		if sub.direct != nil {
			sub.direct.start() // before the keyframe is asked for, so that it is not dropped
		}
		// A subscriber that joins late needs a keyframe to start decoding.
		if sub.sel != nil {
			sub.sel.resumed() // the layer it is to receive, not every layer
		} else {
			sub.pub.RequestKeyframe()
		}
		if sub.hooks.OnConnected != nil {
			sub.hooks.OnConnected()
		}
	})
}

// ErrUnknownMid: a playback control named a media section the subscription does not forward.
var ErrUnknownMid = errors.New("media: no forwarded media section has that mid")

// SetPaused stops (paused) or restarts forwarding the media sections mids to this subscriber (the WHEP
// playback controls: a hidden tile's video costs nothing). A restarted video asks the publisher for a
// keyframe at once, since the subscriber's decoder cannot continue from where it stopped.
func (sub *Subscriber) SetPaused(mids []string, paused bool) error {
	for _, mid := range mids {
		if sub.gates[mid] == nil {
			return fmt.Errorf("%w: %q", ErrUnknownMid, mid)
		}
	}
	keyframe := false
	for _, mid := range mids {
		g := sub.gates[mid]
		if was := g.paused.Swap(paused); was && !paused && g.video {
			keyframe = true
		}
	}
	if keyframe {
		if sub.sel != nil {
			sub.sel.resumed()
		} else {
			sub.pub.requestKeyframe(true)
		}
	}
	return nil
}

// Layers lists the layers of the publisher's simulcast video, lowest first, with the one this subscriber
// receives marked; nil without simulcast.
func (sub *Subscriber) Layers() []LayerInfo {
	if sub.sel == nil {
		return nil
	}
	return sub.sel.layers()
}

// SelectLayer makes the subscriber receive the layer rid of the video section mid from the publisher's
// next keyframe on that layer (asked for at once); rid "" returns to the automatic choice. mid "" is the
// video section.
func (sub *Subscriber) SelectLayer(mid, rid string) error {
	if sub.sel == nil || (mid != "" && mid != sub.videoMid) {
		return fmt.Errorf("%w: the subscription has no simulcast video section %q", ErrUnknownLayer, mid)
	}
	return sub.sel.selectLayer(rid)
}

// Close ends the subscription.
func (sub *Subscriber) Close() {
	sub.closeOnce.Do(func() {
		sub.pub.mu.Lock()
		if _, ok := sub.pub.subs[sub]; ok {
			delete(sub.pub.subs, sub)
			sub.pub.nsubs.Add(-1)
		}
		sub.pub.mu.Unlock()
		if sub.sel != nil {
			sub.sel.detach()
		}
		if sub.direct != nil {
			sub.direct.close()
		}
		if pc := sub.peer(); pc != nil {
			_ = pc.Close()
		}
		if sub.hooks.OnClosed != nil {
			sub.hooks.OnClosed()
		}
	})
}

// peer is the subscription's pion connection, nil once it left it for its own endpoint.
func (sub *Subscriber) peer() *webrtc.PeerConnection {
	if sub.direct != nil {
		return sub.direct.peer()
	}
	return sub.pc
}

// AddICECandidate applies a trickled candidate (WHIP PATCH, RFC 9725 §4.3.1). A subscription on its own
// endpoint has its pair already: a late candidate changes nothing.
func (sub *Subscriber) AddICECandidate(c string) error {
	if pc := sub.peer(); pc != nil {
		return pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c})
	}
	return nil
}

// AddICECandidate applies a trickled candidate (WHIP PATCH, RFC 9725 §4.3.1).
func (p *Publisher) AddICECandidate(c string) error {
	return p.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c})
}
