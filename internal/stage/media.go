package stage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/token"
)

// The domain drives the media plane (docs/DESIGN.md §9): a publish or a subscription is a connection of
// the participant (a Presence) plus the media the domain negotiated for it (a MediaSession). The domain
// alone decides who may publish and subscribe, which connection wins, and what the history says; the media
// plane only moves media and reports back through MediaHooks. Transports (WHIP today) decode a request,
// call Publish or Subscribe, and encode the answer.

// MediaHooks report a media connection's life to the domain. The media plane calls them from its own
// goroutines; they may call back into the domain, so the media plane holds none of its locks meanwhile.
type MediaHooks struct {
	// OnConnected is called once, when media flows: a publisher's first track, a subscriber's connection.
	OnConnected func()
	// OnViolation is called when a published stream breaks the media policy, before the media closes.
	OnViolation func(code ivs.ErrorCode, msg string)
	// OnClosed is called once, when the media has ended for any reason (also when negotiation fails).
	OnClosed func()
}

// MediaConn is one negotiated media connection.
type MediaConn interface {
	// Close ends the media; OnClosed follows.
	Close()
	// AddICECandidate applies a trickled candidate (RFC 9725 §4.3.1).
	AddICECandidate(candidate string) error
}

// PlaybackControl is what a subscription's MediaConn may also offer: stopping and restarting the
// forwarding of some of its media sections, named by mid (the WHEP playback controls, docs/DESIGN.md §4.5).
type PlaybackControl interface {
	SetPaused(mids []string, paused bool) error
}

// Layer is one simulcast layer of a publisher's video, as a subscription sees it.
type Layer struct {
	EncodingID      string // the RID
	Bitrate         int    // bits per second
	Width, Height   int    // 0 when unknown
	FramesPerSecond float64
	Selected        bool // the layer the subscription receives
}

// LayerControl is what a subscription's MediaConn may also offer: the publisher's simulcast layers, and
// choosing the one it receives (the layer link, docs/DESIGN.md §4.5, §4.9).
type LayerControl interface {
	Layers() []Layer
	// SelectLayer chooses the layer rid of the video section mid ("" for the video); rid "" returns to the
	// automatic choice.
	SelectLayer(mid, rid string) error
}

// MediaPlane negotiates media connections. Errors: ErrBadOffer, ErrPublisherNotFound (the publisher's
// media ended meanwhile), ErrShutdown.
type MediaPlane interface {
	Publish(ctx context.Context, stage ivs.StageID, id ivs.ParticipantID, offer string, h MediaHooks) (MediaConn, string, error)
	// Subscribe receives publisher, a MediaConn its Publish returned. layerPref names the first simulcast
	// layer ("lowest", the default, or "highest").
	Subscribe(ctx context.Context, publisher MediaConn, offer, layerPref string, h MediaHooks) (MediaConn, string, error)
}

// OfferPolicy vets SDP offers before any negotiation (the media policy, docs/DESIGN.md §4). A refusal is
// the IVS error code recorded in the participant's PUBLISH_ERROR or SUBSCRIBE_ERROR and a message.
type OfferPolicy interface {
	VetPublish(offer string) (ivs.ErrorCode, string)
	// VetSubscribe sees the publisher's offer too: a subscription asks for at most what it sends.
	VetSubscribe(offer, publisherOffer string) (ivs.ErrorCode, string)
}

// ErrBadOffer: the media plane cannot use the offer (it does not parse, or offers nothing it can answer).
var ErrBadOffer = newError(KindInvalid, "the offer cannot be used")

// SetMedia gives the domain its media plane and offer policy (nil accepts every offer). Until it is
// called, Publish and Subscribe answer ErrNoMedia.
func (s *Service) SetMedia(plane MediaPlane, offers OfferPolicy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.media, s.offers = plane, offers
}

func (s *Service) mediaPlane() (MediaPlane, OfferPolicy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.media, s.offers
}

// spawn runs f in a goroutine the Service owns (Shutdown waits for it), or at once after Shutdown.
func (s *Service) spawn(f func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		f()
		return
	}
	s.closing.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.closing.Done()
		f()
	}()
}

// MediaSession is one publish or subscription: the participant's connection and its media. It ends when
// its media ends (the client closed it, ICE failed, DELETE), when the domain ends the connection
// (displaced by a newer one with the same token, DisconnectParticipant, DeleteStage, shutdown), or when a
// refusal ends it before any media flowed.
type MediaSession struct {
	s      *Service
	pr     *Presence
	remote ivs.ParticipantID // the publisher, for a subscription
	onEnd  func()

	mu     sync.Mutex // a leaf: may be taken under liveStage.mu
	conn   MediaConn
	offer  string // the publish offer, for VetSubscribe
	closed bool
	// published: the domain took this publish as the participant's (StartPublish); recorded: the
	// participant's recording takes its packets (recording.go).
	published, recorded bool

	endOnce sync.Once
	ended   atomic.Bool
}

// Ended reports whether the session has ended (OnEnd has been or is being called).
func (m *MediaSession) Ended() bool { return m.ended.Load() }

// Participant is the session's participant and stage.
func (m *MediaSession) Participant() (ivs.StageID, ivs.ParticipantID) { return m.pr.Stage, m.pr.ID }

// Subscribed is the publisher a subscription receives ("" for a publish).
func (m *MediaSession) Subscribed() ivs.ParticipantID { return m.remote }

// Close ends the session (WHIP DELETE): the media closes, then the connection's stops and, if it was the
// participant's last connection, its LEFT are recorded.
func (m *MediaSession) Close() {
	m.mu.Lock()
	m.closed = true
	conn := m.conn
	m.mu.Unlock()
	if conn != nil {
		conn.Close()
		return
	}
	m.end() // nothing negotiated yet: the negotiation will see closed and give up
}

// closeMedia is the domain ending the connection (a closer): the media closes in a goroutine of the
// Service, since closing a peer connection takes a while and the caller may be an API request.
func (m *MediaSession) closeMedia() {
	m.mu.Lock()
	m.closed = true
	conn := m.conn
	m.mu.Unlock()
	if conn != nil {
		m.s.spawn(conn.Close)
	}
}

// AddICECandidate applies a trickled candidate.
func (m *MediaSession) AddICECandidate(c string) error {
	m.mu.Lock()
	conn := m.conn
	m.mu.Unlock()
	if conn == nil {
		return errors.New("stage: the session has no media")
	}
	return conn.AddICECandidate(c)
}

// ErrNotPlayback: pause, resume and layer choice apply to a live subscription's media only.
var ErrNotPlayback = newError(KindInvalid, "playback controls and layers apply to the media of a live subscription")

// SetPaused pauses or resumes the forwarding of a subscription's media sections (mids) to its
// participant, who alone may ask (the transport checks the session is the caller's, as for Close).
// Pausing touches no history: the subscription stays started.
func (m *MediaSession) SetPaused(mids []string, paused bool) error {
	m.mu.Lock()
	conn, closed := m.conn, m.closed
	m.mu.Unlock()
	pc, ok := conn.(PlaybackControl)
	if m.remote == "" || closed || !ok || m.Ended() {
		return ErrNotPlayback
	}
	if err := pc.SetPaused(mids, paused); err != nil {
		return fmt.Errorf("%w: %v", ErrNotPlayback, err)
	}
	return nil
}

// Layers lists the simulcast layers of a subscription's publisher (none without simulcast).
func (m *MediaSession) Layers() ([]Layer, error) {
	lc, err := m.layerControl()
	if err != nil {
		return nil, err
	}
	return lc.Layers(), nil
}

// SelectLayer chooses the layer a subscription receives (rid "" returns to the automatic choice); only the
// subscription's participant may (the transport checks the session is the caller's).
func (m *MediaSession) SelectLayer(mid, rid string) error {
	lc, err := m.layerControl()
	if err != nil {
		return err
	}
	if err := lc.SelectLayer(mid, rid); err != nil {
		return fmt.Errorf("%w: %v", ErrNoLayer, err)
	}
	return nil
}

// ErrNoLayer: the layer named is not one of the publisher's.
var ErrNoLayer = newError(KindInvalid, "no such simulcast layer")

func (m *MediaSession) layerControl() (LayerControl, error) {
	m.mu.Lock()
	conn, closed := m.conn, m.closed
	m.mu.Unlock()
	lc, ok := conn.(LayerControl)
	if m.remote == "" || closed || !ok || m.Ended() {
		return nil, ErrNotPlayback
	}
	return lc, nil
}

// attach binds the negotiated media; it fails, closing conn, if the session was closed meanwhile.
func (m *MediaSession) attach(conn MediaConn, offer string) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		conn.Close()
		return false
	}
	m.conn, m.offer = conn, offer
	m.mu.Unlock()
	return true
}

// end records the connection's end once: its stops, and LEFT if it was the participant's last.
func (m *MediaSession) end() {
	m.endOnce.Do(func() {
		m.ended.Store(true)
		m.s.unrecordPublish(m)
		if m.pr != nil {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			if err := m.pr.Leave(ctx); err != nil {
				m.s.log.Error("stage: record the end of a media session", "stage", m.pr.Stage, "participant", m.pr.ID, "err", err)
			}
			cancel()
		}
		if m.onEnd != nil {
			m.onEnd()
		}
	})
}

// storeTimeout bounds the store writes made for a connection that has no request context any more.
const storeTimeout = 10 * time.Second

// hookContext is the context of a hook's store writes: the media plane's goroutines have none.
func hookContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeTimeout)
}

// MediaRequest is a publish or a subscription a transport received: a verified token, what the request
// tells of the client, and the SDP offer.
type MediaRequest struct {
	Claims token.Claims
	Client ivs.ClientInfo
	Offer  string
	// LayerPref is a subscription's first simulcast layer: "lowest" (the default) or "highest" (the IVS
	// SDK's X-Stages-Initial-Layer-Pref).
	LayerPref string
	// OnEnd is called once when the session has ended, for the transport to forget it.
	OnEnd func()
}

// Publish is a participant's publish: its publishing connection joins (displacing an older one of the
// same token), the token, the quota and the offer are checked (a refusal is a PUBLISH_ERROR event), and
// the media is negotiated. PUBLISH_STARTED is recorded when media flows, PUBLISH_STOPPED when it ends. It
// returns the session and the SDP answer.
func (s *Service) Publish(ctx context.Context, req MediaRequest) (*MediaSession, string, error) {
	plane, offers := s.mediaPlane()
	if plane == nil {
		return nil, "", ErrNoMedia
	}
	m := &MediaSession{s: s, onEnd: req.OnEnd}
	pr, err := s.Join(ctx, JoinRequest{Claims: req.Claims, Client: req.Client, Kind: ConnPublish, media: m})
	if err != nil {
		return nil, "", err
	}
	m.pr = pr
	if err := s.CheckPublish(ctx, pr); err != nil {
		m.end()
		return nil, "", err
	}
	if offers != nil {
		if code, msg := offers.VetPublish(req.Offer); code != "" {
			if err := s.RecordError(ctx, pr, ivs.EventPublishError, code, ""); err != nil {
				s.log.ErrorContext(ctx, "stage: record publish error", "err", err)
			}
			m.end()
			return nil, "", &OfferError{Code: string(code), Message: msg}
		}
	}
	conn, answer, err := plane.Publish(ctx, pr.Stage, pr.ID, req.Offer, MediaHooks{
		OnConnected: func() {
			ctx, cancel := hookContext()
			defer cancel()
			if err := s.StartPublish(ctx, pr); err != nil {
				s.log.Info("stage: publish refused when media started", "stage", pr.Stage, "participant", pr.ID, "err", err)
				m.Close()
				return
			}
			m.mu.Lock()
			m.published = true
			m.mu.Unlock()
			s.recordPublish(m)
		},
		OnViolation: func(code ivs.ErrorCode, msg string) {
			s.log.Info("stage: media policy violation", "stage", pr.Stage, "participant", pr.ID, "code", code, "detail", msg)
			ctx, cancel := hookContext()
			defer cancel()
			if err := s.RecordError(ctx, pr, ivs.EventPublishError, code, ""); err != nil && !errors.Is(err, ErrNotJoined) {
				s.log.Error("stage: record publish error", "err", err)
			}
		},
		OnClosed: m.end,
	})
	if err != nil {
		m.end()
		return nil, "", err
	}
	if !m.attach(conn, req.Offer) {
		return nil, "", ErrDisplaced
	}
	s.recordPublish(m) // if its media started before it was attached
	return m, answer, nil
}

// SubscribeRequest is a MediaRequest for the media of one publisher.
type SubscribeRequest struct {
	MediaRequest
	Publisher ivs.ParticipantID
}

// Subscribe is a participant's subscription to a publisher: its subscribing connection joins (displacing
// an older one of the same token to the same publisher), the token, the publisher, the quota and the offer
// are checked (a refusal is a SUBSCRIBE_ERROR event), and the media is negotiated. SUBSCRIBE_STARTED is
// recorded when media flows, SUBSCRIBE_STOPPED when it ends.
func (s *Service) Subscribe(ctx context.Context, req SubscribeRequest) (*MediaSession, string, error) {
	plane, offers := s.mediaPlane()
	if plane == nil {
		return nil, "", ErrNoMedia
	}
	remote := req.Publisher
	m := &MediaSession{s: s, remote: remote, onEnd: req.OnEnd}
	pr, err := s.Join(ctx, JoinRequest{Claims: req.Claims, Client: req.Client, Kind: ConnSubscribe, Remote: remote, media: m})
	if err != nil {
		return nil, "", err
	}
	m.pr = pr
	source, sourceOffer, err := s.subscribeSource(ctx, pr, remote)
	if err != nil {
		m.end()
		return nil, "", err
	}
	if offers != nil {
		if code, msg := offers.VetSubscribe(req.Offer, sourceOffer); code != "" {
			if err := s.RecordError(ctx, pr, ivs.EventSubscribeError, code, remote); err != nil {
				s.log.ErrorContext(ctx, "stage: record subscribe error", "err", err)
			}
			m.end()
			return nil, "", &OfferError{Code: string(code), Message: msg}
		}
	}
	conn, answer, err := plane.Subscribe(ctx, source, req.Offer, req.LayerPref, MediaHooks{
		OnConnected: func() {
			ctx, cancel := hookContext()
			defer cancel()
			if err := s.StartSubscribe(ctx, pr, remote); err != nil {
				s.log.Info("stage: subscribe refused when media started", "stage", pr.Stage, "participant", pr.ID, "err", err)
				m.Close()
			}
		},
		OnClosed: m.end,
	})
	if errors.Is(err, ErrPublisherNotFound) {
		// The publisher's media ended between the check and the negotiation.
		if rerr := s.RecordError(ctx, pr, ivs.EventSubscribeError, ivs.ErrPublisherNotFound, remote); rerr != nil {
			s.log.ErrorContext(ctx, "stage: record subscribe error", "err", rerr)
		}
	}
	if err != nil {
		m.end()
		return nil, "", err
	}
	if !m.attach(conn, "") {
		return nil, "", ErrDisplaced
	}
	return m, answer, nil
}

// subscribeSource checks the subscription (CheckSubscribe) and returns the publisher's media and offer.
func (s *Service) subscribeSource(ctx context.Context, pr *Presence, remote ivs.ParticipantID) (MediaConn, string, error) {
	var conn MediaConn
	var offer string
	err := s.withParticipant(pr, func(ls *liveStage, lp *liveParticipant) ([]closer, error) {
		via, err := s.checkSubscribeLocked(ctx, ls, lp, pr.ID, remote)
		if err != nil {
			return nil, err
		}
		if via.media != nil {
			via.media.mu.Lock()
			conn, offer = via.media.conn, via.media.offer
			via.media.mu.Unlock()
		}
		if conn == nil {
			// Publishing through a connection with no media of the domain's (a tool's): nothing to receive.
			return nil, s.refuseLocked(ctx, ls, pr.ID, ivs.EventSubscribeError, remote, ivs.ErrPublisherNotFound,
				ErrPublisherNotFound)
		}
		return nil, nil
	})
	return conn, offer, err
}
