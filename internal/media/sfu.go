// Package media is openstage's media plane: a selective forwarding unit on pion/webrtc. Publishers send
// RTP once; every subscriber of a publisher gets it forwarded, with RTCP feedback (PLI/FIR relayed to the
// publisher, NACK answered from the interceptors' buffers). All media share one UDP port (ICE UDP mux).
// The package knows nothing of tokens or stages' rules: its callers (the WHIP transport) decide who may
// publish and subscribe, and it reports back through hooks.
package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/openstage/openstage/internal/ivs"
)

// ErrPublisherNotFound: nobody publishes as that participant on this node.
var ErrPublisherNotFound = errors.New("media: publisher not found")

// ErrClosed: the SFU is shut down.
var ErrClosed = errors.New("media: closed")

// Config sets up the SFU.
type Config struct {
	// UDPAddr is where all WebRTC media is received and sent (host:port; the port is --rtc-udp-port).
	UDPAddr string
	// NATIP, when set, is the address announced in host candidates (behind NAT).
	NATIP string
	// IncludeLoopback offers loopback candidates (needed when clients are on the same host, as in tests).
	IncludeLoopback bool
	// ICE timeouts: a vanished peer is "disconnected" after DisconnectedTimeout and "failed", and so
	// gone, FailedTimeout later. Together they must stay under 10 s (SPEC §3). Zero values take 3 s and 5 s.
	DisconnectedTimeout, FailedTimeout time.Duration
	// PublishCodecs limits the video codecs a publisher may send, as MIME types (e.g. "video/H264");
	// empty allows every codec openstage forwards. The answer picks from these, whatever the offer's order.
	PublishCodecs []string
	Log           *slog.Logger
}

// SFU forwards media between publishers and subscribers.
type SFU struct {
	cfg    Config
	log    *slog.Logger
	udp    net.PacketConn
	pubAPI *webrtc.API
	subAPI *webrtc.API

	mu     sync.Mutex
	pubs   map[pubKey]*Publisher
	closed bool
	wg     sync.WaitGroup // forwarding and RTCP loops

	stats Stats
}

// Stats count what the SFU moved. Forwarded counts one per subscriber a packet was written to.
type Stats struct {
	ReceivedPackets, ReceivedBytes   atomic.Uint64
	ForwardedPackets, ForwardedBytes atomic.Uint64
}

// Stats returns the SFU's counters (read them with Load).
func (s *SFU) Stats() *Stats { return &s.stats }

// Counts returns how many publishers and subscriptions are live on this node.
func (s *SFU) Counts() (publishers, subscribers int) {
	s.mu.Lock()
	pubs := make([]*Publisher, 0, len(s.pubs))
	for _, p := range s.pubs {
		pubs = append(pubs, p)
	}
	s.mu.Unlock()
	for _, p := range pubs {
		subscribers += int(p.nsubs.Load())
	}
	return len(pubs), subscribers
}

type pubKey struct {
	stage ivs.StageID
	id    ivs.ParticipantID
}

// New opens the UDP port and builds the WebRTC engines.
func New(cfg Config) (*SFU, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.DisconnectedTimeout == 0 {
		cfg.DisconnectedTimeout = 3 * time.Second
	}
	if cfg.FailedTimeout == 0 {
		cfg.FailedTimeout = 5 * time.Second
	}
	udp, err := net.ListenPacket("udp", cfg.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("media: listen %s: %w", cfg.UDPAddr, err)
	}
	s := &SFU{cfg: cfg, log: cfg.Log, udp: udp, pubs: map[pubKey]*Publisher{}}
	lf := pionLogs{cfg.Log}
	mux := webrtc.NewICEUDPMux(lf.NewLogger("ice"), udp)
	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetICEUDPMux(mux)
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	se.SetICETimeouts(cfg.DisconnectedTimeout, cfg.FailedTimeout, time.Second)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if cfg.NATIP != "" {
		se.SetNAT1To1IPs([]string{cfg.NATIP}, webrtc.ICECandidateTypeHost)
	}
	if s.pubAPI, err = newAPI(se, cfg.PublishCodecs); err != nil {
		_ = udp.Close()
		return nil, err
	}
	if s.subAPI, err = newAPI(se, nil); err != nil {
		_ = udp.Close()
		return nil, err
	}
	return s, nil
}

// Addr is the UDP address media uses.
func (s *SFU) Addr() net.Addr { return s.udp.LocalAddr() }

var rtcpFeedback = []webrtc.RTCPFeedback{
	{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "transport-cc"},
}

// videoCodecs are the video codecs openstage forwards, H.264 first. Payload types follow Chromium's
// numbering, which keeps answers readable; they are only defaults, pion maps to the offer's numbers.
var videoCodecs = []webrtc.RTPCodecParameters{
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: rtcpFeedback}, PayloadType: 108},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", RTCPFeedback: rtcpFeedback}, PayloadType: 106},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f", RTCPFeedback: rtcpFeedback}, PayloadType: 109},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f", RTCPFeedback: rtcpFeedback}, PayloadType: 107},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: rtcpFeedback}, PayloadType: 96},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: rtcpFeedback}, PayloadType: 98},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000, RTCPFeedback: rtcpFeedback}, PayloadType: 45},
}

var opus = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}

func newAPI(se webrtc.SettingEngine, allowVideo []string) (*webrtc.API, error) {
	// A policy naming a codec the SFU cannot forward would silently narrow every answer: refuse it.
	for _, a := range allowVideo {
		known := false
		for _, c := range videoCodecs {
			known = known || equalFold(a, c.MimeType)
		}
		if !known {
			return nil, fmt.Errorf("media: publish codec %q is not one the SFU forwards", a)
		}
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	for _, c := range videoCodecs {
		if !allowed(c.MimeType, allowVideo) {
			continue
		}
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	ir := &interceptor.Registry{}
	// NACK generator and responder, RTCP sender and receiver reports, TWCC feedback to publishers: the
	// feedback viewers and publishers need (RFC 4585, RFC 3550). pion's defaults add a statistics
	// interceptor that records every packet for GetStats, which openstage never calls: left out, it saves
	// its work on every forwarded packet (profiled, docs/BENCHMARKS.md).
	// The NACK responder keeps the packets it may resend as they are written, without a copy: the only
	// local tracks are fanouts, which give every subscriber its own header and never reuse a kept payload.
	if err := webrtc.ConfigureNackWithOptions(m, ir, nil, nack.DisableCopy()); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSender(m, ir); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

func allowed(mime string, list []string) bool {
	if len(list) == 0 {
		return true
	}
	for _, a := range list {
		if equalFold(a, mime) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// answer applies the offer to pc and returns the complete answer, every candidate included: the IVS SDKs
// never trickle (ivs-web-sdk-protocol.md §3).
func answer(ctx context.Context, pc *webrtc.PeerConnection, before func() error) (string, error) {
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("media: create answer: %w", err)
	}
	if before != nil {
		if err := before(); err != nil {
			return "", err
		}
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", fmt.Errorf("media: set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}

// watchEnd calls end once when the peer is gone: ICE failed, DTLS closed by the peer, or the
// connection closed.
func watchEnd(pc *webrtc.PeerConnection, connected, end func()) {
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			if connected != nil {
				connected()
			}
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			end()
		}
	})
	// A peer that closes its PeerConnection sends a DTLS close_notify: end at once, not after ICE timeouts.
	if dt := pc.SCTP().Transport(); dt != nil {
		dt.OnStateChange(func(st webrtc.DTLSTransportState) {
			if st == webrtc.DTLSTransportStateClosed || st == webrtc.DTLSTransportStateFailed {
				end()
			}
		})
	}
}

// Close ends every publisher and subscriber and releases the UDP port.
func (s *SFU) Close() error {
	s.mu.Lock()
	s.closed = true
	pubs := make([]*Publisher, 0, len(s.pubs))
	for _, p := range s.pubs {
		pubs = append(pubs, p)
	}
	s.mu.Unlock()
	for _, p := range pubs {
		p.Close()
	}
	err := s.udp.Close()
	s.wg.Wait()
	return err
}

// Publisher looks up the publisher of participant id on stage.
func (s *SFU) publisher(stage ivs.StageID, id ivs.ParticipantID) *Publisher {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pubs[pubKey{stage, id}]
}

// rtcpLoop drains a sender's RTCP so the interceptors (NACK responder, reports) run, and passes keyframe
// requests on.
func (s *SFU) rtcpLoop(sender *webrtc.RTPSender, onKeyframeRequest func()) {
	defer s.wg.Done()
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				onKeyframeRequest()
			}
		}
	}
}
