// Package media is openstage's media plane: a selective forwarding unit on pion/webrtc. Publishers send
// RTP once; every subscriber of a publisher gets it forwarded, with RTCP feedback (PLI/FIR relayed to the
// publisher, NACK answered from the fanouts' rings). All media share one UDP port (ICE UDP mux)
// and, for clients whose UDP is blocked, one TCP port (ICE-TCP, RFC 6544 passive candidates).
// The package knows nothing of tokens or stages' rules: its callers (the WHIP transport) decide who may
// publish and subscribe, and it reports back through hooks.
package media

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// ErrPublisherNotFound: nobody publishes as that participant on this node.
var ErrPublisherNotFound = errors.New("media: publisher not found")

// ErrClosed: the SFU is shut down.
var ErrClosed = errors.New("media: closed")

// Config sets up the SFU.
type Config struct {
	// UDPAddr is where all WebRTC media is received and sent (host:port; the port is --rtc-udp-port).
	UDPAddr string
	// TCPAddr, when set, is where ICE over TCP is accepted (host:port; the port is --rtc-tcp-port): every
	// answer then offers passive TCP candidates next to the UDP one (RFC 6544), so a client whose network
	// drops UDP connects over TCP with no change on its side (docs/DESIGN.md §4.9). Empty: UDP only.
	TCPAddr string
	// NATIP, when set, is the address announced in host candidates (behind NAT).
	NATIP string
	// IncludeLoopback offers loopback candidates (needed when clients are on the same host, as in tests).
	IncludeLoopback bool
	// ICE timeouts: a vanished peer is "disconnected" after DisconnectedTimeout and "failed", and so
	// gone, FailedTimeout later. Together they must stay under 10 s (docs/DESIGN.md §3.4). Zero values take 3 s and 5 s.
	DisconnectedTimeout, FailedTimeout time.Duration
	// PublishCodecs limits the video codecs a publisher may send, as MIME types (e.g. "video/H264");
	// empty allows every codec openstage forwards. The answer picks from these, whatever the offer's order.
	PublishCodecs []string
	// Inspector, if set, makes the packet inspector of each publisher (the media policy's checks).
	Inspector func() Inspector
	// SendPath is how subscriptions send: SendPathDirect (the default, "": direct.go, endpoint.go) or
	// SendPathPion.
	SendPath string
	Log      *slog.Logger
}

// SFU forwards media between publishers and subscribers.
type SFU struct {
	cfg Config
	log *slog.Logger
	udp net.PacketConn
	// udpConn is udp when it is a UDP socket (always, outside tests): the direct send path writes to it.
	udpConn *net.UDPConn
	// demux is what pion's ICE mux reads udpConn through: it takes the packets of detached subscriptions
	// (endpoint.go). nil when udp is no UDP socket.
	demux    *udpDemux
	stop     chan struct{} // closed by Close: ends the consent watch
	stopOnce sync.Once
	tcp      *tcpListener // nil without ICE-TCP
	tcpMux   io.Closer    // the ICE-TCP mux over tcp (its Close closes tcp)
	pubAPI   *webrtc.API
	subAPI   *webrtc.API // subscriptions with a simulcast video: pion's NACK responder and reports
	// subSE and subME make the own API of each other subscription (directSender.api, direct.go): no
	// interceptors, its directSender answers NACKs, sends the reports and takes its RTCP.
	subSE webrtc.SettingEngine
	subME *webrtc.MediaEngine

	certMu sync.Mutex
	cert   *webrtc.Certificate // of new peer connections (peerConfig)
	certAt time.Time

	mu     sync.Mutex
	pubs   map[*Publisher]struct{}
	closed bool
	wg     sync.WaitGroup // forwarding and RTCP loops

	stats Stats
}

// Stats count what the SFU moved. Forwarded counts one per subscriber a packet was written to.
type Stats struct {
	ReceivedPackets, ReceivedBytes   atomic.Uint64
	ForwardedPackets, ForwardedBytes atomic.Uint64
	// Connections counts the peer connections (publishers and subscribers) that connected, by the
	// transport of the candidate pair ICE selected: what share of clients needed ICE-TCP.
	Connections [numTransports]atomic.Uint64
	// LayerSwitches counts the times a subscriber moved from one simulcast layer to another.
	LayerSwitches atomic.Uint64
	// Detached counts the subscriptions that left pion's connection for openstage's own endpoint
	// (endpoint.go; the direct send path only).
	Detached atomic.Uint64
}

// Transport is how a peer connection's media travels: the protocol of ICE's selected candidate pair.
type Transport int

// The transports, a closed set (metrics label them by String).
const (
	TransportUDP Transport = iota
	TransportTCP
	numTransports
)

// Transports lists every Transport.
func Transports() []Transport { return []Transport{TransportUDP, TransportTCP} }

func (t Transport) String() string {
	if t == TransportTCP {
		return "tcp"
	}
	return "udp"
}

// Stats returns the SFU's counters (read them with Load).
func (s *SFU) Stats() *Stats { return &s.stats }

// Counts returns how many publishers and subscriptions are live on this node.
func (s *SFU) Counts() (publishers, subscribers int) {
	s.mu.Lock()
	pubs := make([]*Publisher, 0, len(s.pubs))
	for p := range s.pubs {
		pubs = append(pubs, p)
	}
	s.mu.Unlock()
	for _, p := range pubs {
		subscribers += int(p.nsubs.Load())
	}
	return len(pubs), subscribers
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
	if err := checkSendPath(cfg.SendPath); err != nil {
		return nil, err
	}
	udp, err := net.ListenPacket("udp", cfg.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("media: listen %s: %w", cfg.UDPAddr, err)
	}
	s := &SFU{cfg: cfg, log: cfg.Log, udp: udp, pubs: map[*Publisher]struct{}{}, stop: make(chan struct{})}
	s.udpConn, _ = udp.(*net.UDPConn)
	muxed := udp
	if s.udpConn != nil {
		s.demux = newUDPDemux(s.udpConn)
		muxed = s.demux
	}
	lf := newPionLogs(cfg.Log)
	mux := webrtc.NewICEUDPMux(lf.NewLogger("ice"), muxed)
	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetICEUDPMux(mux)
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	se.SetICETimeouts(cfg.DisconnectedTimeout, cfg.FailedTimeout, time.Second)
	// No mDNS: pion's default (query only) opens multicast sockets with four readers and a sweeper per
	// peer connection, to resolve clients' ".local" host candidates. A client that hides its address that
	// way still reaches the SFU, whose candidates are plain addresses: ICE learns the client's address
	// from its connectivity checks (a peer-reflexive candidate, RFC 8445 §7.3.1.3). Measured at about
	// 40 KB, six goroutines and four sockets per connection (docs/BENCHMARKS.md, memory per subscription).
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	netw, err := newSharedNet()
	if err != nil {
		_ = udp.Close()
		return nil, fmt.Errorf("media: network interfaces: %w", err)
	}
	se.SetNet(netw)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.TCPAddr != "" {
		ln, err := net.Listen("tcp", cfg.TCPAddr)
		if err != nil {
			_ = udp.Close()
			return nil, fmt.Errorf("media: listen tcp %s: %w", cfg.TCPAddr, err)
		}
		s.tcp = newTCPListener(ln)
		tcpMux := webrtc.NewICETCPMux(lf.NewLogger("ice-tcp"), s.tcp, tcpReadBuffer)
		s.tcpMux = tcpMux
		// Passive candidates only: the server never dials out (a client behind a firewall accepts nothing).
		se.SetICETCPMux(tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	if cfg.NATIP != "" {
		// Host candidates (UDP and TCP) announce the address clients reach instead of the local one.
		rule := webrtc.ICEAddressRewriteRule{External: []string{cfg.NATIP}, AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode: webrtc.ICEAddressRewriteReplace}
		if err := se.SetICEAddressRewriteRules(rule); err != nil {
			s.closeSockets()
			return nil, fmt.Errorf("media: --nat-ip %s: %w", cfg.NATIP, err)
		}
	}
	if s.pubAPI, _, err = newAPI(se, cfg.PublishCodecs, false); err != nil {
		s.closeSockets()
		return nil, err
	}
	if s.subAPI, s.subME, err = newAPI(se, nil, true); err != nil {
		s.closeSockets()
		return nil, err
	}
	s.subSE = se
	if s.demux != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.watchConsent()
		}()
	}
	return s, nil
}

// watchConsent ends the detached subscriptions whose subscriber has sent nothing that authenticates, no
// consent check and no SRTCP, for the disconnected and failed timeouts together: when pion's ICE agent
// would have given the connection up (RFC 7675 §5.1 allows 30 s; openstage ends sooner, docs/DESIGN.md
// §3.4). The browsers and pion check consent every few seconds, and receivers send reports every second.
func (s *SFU) watchConsent() {
	limit := s.cfg.DisconnectedTimeout + s.cfg.FailedTimeout
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-tick.C:
			for _, ep := range s.demux.stale(now.Add(-limit).UnixNano()) {
				s.log.Debug("media: a detached subscriber's consent expired", "addr", *ep.d.addr.Load())
				ep.d.end()
			}
		}
	}
}

// tcpReadBuffer is how many ICE-TCP packets the mux queues per peer connection before the peer connection
// reads them: a channel capacity in packets, not bytes, made for every answer whether or not the client
// ever uses TCP. At 64 << 10 it was a 3.5 MB channel per answer, which doubled the join time of 40 parallel
// subscribers (docs/BENCHMARKS.md); a burst of a few dozen packets is what a reader that keeps up sees.
const tcpReadBuffer = 64

// closeSockets releases the UDP port and the ICE-TCP listener.
func (s *SFU) closeSockets() error {
	err := s.udp.Close()
	if s.tcpMux != nil {
		// The mux closes the listener and the connections it adopted; the listener then closes those
		// still waiting for their first STUN message, which the mux would otherwise wait 30 s for.
		done := make(chan error, 1)
		go func() { done <- s.tcpMux.Close() }()
		s.tcp.closeAll()
		err = errors.Join(err, <-done)
	}
	return err
}

// Addr is the UDP address media uses.
func (s *SFU) Addr() net.Addr { return s.udp.LocalAddr() }

// TCPAddr is the address ICE-TCP listens on, nil without ICE-TCP.
func (s *SFU) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

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

// newAPI builds the engine of publishers' (subscribe false) or subscribers' peer connections.
func newAPI(se webrtc.SettingEngine, allowVideo []string, subscribe bool) (*webrtc.API, *webrtc.MediaEngine, error) {
	// A policy naming a codec the SFU cannot forward would silently narrow every answer: refuse it.
	for _, a := range allowVideo {
		known := false
		for _, c := range videoCodecs {
			known = known || equalFold(a, c.MimeType)
		}
		if !known {
			return nil, nil, fmt.Errorf("media: publish codec %q is not one the SFU forwards", a)
		}
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, nil, err
	}
	for _, c := range videoCodecs {
		if !allowed(c.MimeType, allowVideo) {
			continue
		}
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, nil, err
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
		return nil, nil, err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, nil, err
	}
	if err := webrtc.ConfigureTWCCSender(m, ir); err != nil {
		return nil, nil, err
	}
	if subscribe {
		// The media engine above is the same for both (the answers offer the same feedback); the
		// interceptors of a subscription are a sender's only.
		var err error
		if ir, err = sendInterceptors(); err != nil {
			return nil, nil, err
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), m, nil
}

// sendInterceptors are the interceptors of a subscription's peer connection, which sends media and
// receives none: the NACK responder and the sender reports. The NACK generator, the receiver reports and
// the TWCC feedback generator act on received streams only, and each ran a goroutine of its own per
// connection (docs/BENCHMARKS.md, memory per subscription).
func sendInterceptors() (*interceptor.Registry, error) {
	responder, err := nack.NewResponderInterceptor(nack.DisableCopy(), nack.ResponderSize(nackHistory))
	if err != nil {
		return nil, err
	}
	sender, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	ir.Add(responder)
	ir.Add(sender)
	return ir, nil
}

// nackHistory is how many of its last video packets a subscription to a simulcast publisher can have
// resent (the only subscriptions with pion's responder: the others are answered from their fanouts'
// rings); a power of two, as pion's responder requires. Each costs about 150 bytes per subscription
// (the subscriber's header and the responder's entry; the payload is shared), and pion's default of
// 1024 made the largest part of a subscription's memory once the ring was full, 40-60 s of a camera's
// video. A retransmission helps only while the receiver's jitter buffer waits for the packet, about a
// round trip or two: 256 packets are 0.3 s at the media policy's highest bitrate (8.5 Mbit/s, about 880
// packets/s), 1 s of a 720p camera at 2.5 Mbit/s, and 10 s of the 15 fps camera fixture.
const nackHistory = 256

// certLifetime is how long one DTLS certificate serves new peer connections before the next is made.
const certLifetime = 24 * time.Hour

// peerConfig is the configuration of a new peer connection: the SFU's current DTLS certificate. Without
// one, pion generates an ECDSA key and certificate for every connection, which costs each join its
// CPU and each connection a few KB; a WebRTC certificate only has to match the fingerprint the answer
// carries (RFC 8827 §6.5, RFC 8122 §5), so one serves every connection, as a browser's serves all of
// its own. A new one is made a day later, well before pion's certificates expire (a month).
func (s *SFU) peerConfig() (webrtc.Configuration, error) {
	s.certMu.Lock()
	defer s.certMu.Unlock()
	if s.cert == nil || time.Since(s.certAt) > certLifetime {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return webrtc.Configuration{}, fmt.Errorf("media: certificate key: %w", err)
		}
		cert, err := webrtc.GenerateCertificate(key)
		if err != nil {
			return webrtc.Configuration{}, fmt.Errorf("media: certificate: %w", err)
		}
		s.cert, s.certAt = cert, time.Now()
	}
	return webrtc.Configuration{Certificates: []webrtc.Certificate{*s.cert}}, nil
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
// never trickle (docs/DESIGN.md §4.4).
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
// connection closed. It counts the connection by its transport when it first connects.
func (s *SFU) watchEnd(pc *webrtc.PeerConnection, connected, end func()) {
	var count sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			count.Do(func() { s.countConnection(pc) })
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
	for p := range s.pubs {
		pubs = append(pubs, p)
	}
	s.mu.Unlock()
	for _, p := range pubs {
		p.Close()
	}
	s.stopOnce.Do(func() { close(s.stop) })
	err := s.closeSockets()
	s.wg.Wait()
	return err
}

// isClosed: Close has begun.
func (s *SFU) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// goTracked runs f in a goroutine that Close waits for; it reports false, running nothing, once Close
// has begun (a WaitGroup must not grow while Close waits on it).
func (s *SFU) goTracked(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// rtcpLoop drains a sender's RTCP so the interceptors (NACK responder, reports) run, and passes keyframe
// requests on.
// onFeedback, when set, sees the rest (receiver reports, REMB: a simulcast subscriber's congestion).
func (s *SFU) rtcpLoop(sender *webrtc.RTPSender, onKeyframeRequest func(), onFeedback func(rtcp.Packet)) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				onKeyframeRequest()
			default:
				if onFeedback != nil {
					onFeedback(p)
				}
			}
		}
	}
}
