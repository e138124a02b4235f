package media

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/openstage/openstage/internal/ivs"
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
	pc        *webrtc.PeerConnection
	hooks     SubscribeHooks
	connOnce  sync.Once
	closeOnce sync.Once
}

// trackWait bounds how long a subscribe waits for a publisher that has connected but whose tracks are
// not ready yet.
const trackWait = 5 * time.Second

// Subscribe negotiates a subscription to the publisher of participant publisher on stage, from the
// subscriber's recvonly offer, and returns the answer carrying the publisher's current audio and video.
func (s *SFU) Subscribe(ctx context.Context, stage ivs.StageID, publisher ivs.ParticipantID, offer string, hooks SubscribeHooks) (*Subscriber, string, error) {
	pub := s.publisher(stage, publisher)
	if pub == nil {
		return nil, "", ErrPublisherNotFound
	}
	wctx, cancel := context.WithTimeout(ctx, trackWait)
	tracks, err := pub.waitTracks(wctx)
	cancel()
	if err != nil {
		return nil, "", ErrPublisherNotFound
	}
	pc, err := s.subAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", fmt.Errorf("media: new peer connection: %w", err)
	}
	sub := &Subscriber{pub: pub, pc: pc, hooks: hooks}
	watchEnd(pc, sub.connected, func() { go sub.Close() })
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		_ = pc.Close()
		return nil, "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	for _, t := range tracks {
		// AddTrack reuses the transceiver the recvonly offer created for this kind.
		sender, err := pc.AddTrack(t)
		if err != nil {
			_ = pc.Close()
			return nil, "", fmt.Errorf("media: add track: %w", err)
		}
		s.wg.Add(1)
		go s.rtcpLoop(sender, pub.RequestKeyframe)
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
		// A subscriber that joins late needs a keyframe to start decoding.
		sub.pub.RequestKeyframe()
		if sub.hooks.OnConnected != nil {
			sub.hooks.OnConnected()
		}
	})
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
		_ = sub.pc.Close()
		if sub.hooks.OnClosed != nil {
			sub.hooks.OnClosed()
		}
	})
}

// AddICECandidate applies a trickled candidate (WHIP PATCH, RFC 9725 §4.3.1).
func (sub *Subscriber) AddICECandidate(c string) error {
	return sub.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c})
}

// AddICECandidate applies a trickled candidate (WHIP PATCH, RFC 9725 §4.3.1).
func (p *Publisher) AddICECandidate(c string) error {
	return p.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c})
}
