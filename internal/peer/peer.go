// Package peer is a WebRTC client of openstage's media plane, on pion: it publishes over WHIP and
// subscribes, the way the IVS samples and SDKs do. Tests use it as a real remote participant, and the
// load test uses it at scale. The media it sends are real: an H.264 constrained-baseline stream and Opus,
// looped from small embedded files (made once with ffmpeg/libx264; see testdata/README).
package peer

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/openstage/openstage/internal/media/policy"
)

//go:embed testdata/cbp-320x180.h264
var h264Fixture []byte

//go:embed testdata/sine.ogg
var opusFixture []byte

// Options say where and how to connect.
type Options struct {
	// WHIPURL is the token's whip_url.
	WHIPURL string
	Token   string
	// Header is added to every request (User-Agent, X-Stages-SDK ...).
	Header http.Header
	HTTP   *http.Client
	// NoVideo publishes audio only (and offers no video m-line).
	NoVideo bool
	// VideoCodec is the publisher's video MIME type (default H.264 constrained baseline).
	VideoCodec string
	// PublishPath is appended to WHIPURL for a publish: "" (plain WHIP) or "/publish/<participantId>".
	PublishPath string
	// SDKLike shapes the publish offer as the IVS web SDK does (docs/DESIGN.md §4.4 "Offers"): VP8 listed
	// before H.264, no candidates (the offer goes out before gathering, and nothing is trickled), and the
	// Opus fmtp starting with ';'. The media sent is still H.264, as the answer must pick it.
	SDKLike bool
	// PacketRate, when above 0, replaces the 15 fps fixture video with a synthetic H.264 stream of
	// PacketRate RTP packets per second, each PacketSize bytes (default 1200) before SRTP: the fixture's
	// frames packetized at that size, filled up to the rate with filler-data NAL units (type 12, which
	// decoders discard). It is real media through pion and SRTP, only more of it: the load test uses it to
	// push the SFU towards its forwarding ceiling, far past what a 150 kbps camera sends.
	PacketRate int
	PacketSize int
	// LocalAddr is the IP the peer's UDP socket binds (default 127.0.0.1, loopback; 0.0.0.0 to reach a
	// server on another host).
	// H264 replaces the embedded video with another Annex-B H.264 stream (one slice per picture), looped
	// at 15 fps: tests of the media policy send streams that break it.
	H264      []byte
	LocalAddr string
	// ICE is what the peer connects over: ICEUDP (the default), ICETCP (a client whose network drops UDP:
	// no UDP candidates, only active ICE-TCP connections to the server's passive candidates, RFC 6544), or
	// ICEAny (both, as browsers do: a network that drops UDP leaves TCP).
	ICE string
	// Simulcast, when set, publishes the video as these RID layers of one video section (RFC 8853), lowest
	// first, as browsers do with simulcast on. Every layer carries the fixture's frames; layer i adds
	// i×SimulcastPad packets of filler data per frame (default 2, of 1200 bytes), so that the layers differ
	// in bitrate as real ones do and a subscriber can tell which one it receives.
	Simulcast    []string
	SimulcastPad int
}

// The ICE transports a peer may use (Options.ICE).
const (
	ICEUDP = ""
	ICETCP = "tcp"
	ICEAny = "udp+tcp"
)

func (o *Options) client() *http.Client {
	if o.HTTP != nil {
		return o.HTTP
	}
	return http.DefaultClient
}

// newPC makes a peer connection on its own UDP socket, so a test can make the peer vanish from the network
// (Vanish) without the DTLS close a normal Close sends. extra interceptors go after pion's defaults. A
// TCPOnly peer has no UDP socket (nil): pion dials the server's TCP candidates itself.
func newPC(o *Options, codecs []webrtc.RTPCodecParameters, extra ...interceptor.Factory) (*webrtc.PeerConnection, net.PacketConn, error) {
	local := o.LocalAddr
	m := &webrtc.MediaEngine{}
	for _, c := range codecs {
		typ := webrtc.RTPCodecTypeVideo
		if strings.HasPrefix(c.MimeType, "audio/") {
			typ = webrtc.RTPCodecTypeAudio
		}
		if err := m.RegisterCodec(c, typ); err != nil {
			return nil, nil, err
		}
	}
	ir := &interceptor.Registry{}
	// pion's defaults without the statistics interceptor (nothing here calls GetStats): a load test runs
	// hundreds of these peers beside the server, and every packet it saves them is CPU the server keeps.
	// A missing packet is NACKed at most maxNACKs times, as browsers bound their retries: pion's default
	// NACKs it every 100 ms until it comes, and on a link that loses packets for want of bandwidth (a test's
	// shaped veth) the retransmissions that asks for fill the link and lose more (a 300 kbit/s link dropped
	// over 3000 packets a second with a 150 kbit/s layer on it).
	if err := webrtc.ConfigureNackWithOptions(m, ir, []nack.GeneratorOption{nack.GeneratorMaxNacksPerPacket(maxNACKs)}); err != nil {
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
	for _, f := range extra {
		ir.Add(f)
	}
	if local == "" {
		local = "127.0.0.1"
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetIncludeLoopbackCandidate(true)
	var udp net.PacketConn
	var networks []webrtc.NetworkType
	switch o.ICE {
	case ICEUDP, ICEAny:
		var err error
		if udp, err = net.ListenPacket("udp4", net.JoinHostPort(local, "0")); err != nil {
			return nil, nil, err
		}
		se.SetICEUDPMux(webrtc.NewICEUDPMux(lf.NewLogger("ice"), udp))
		networks = append(networks, webrtc.NetworkTypeUDP4)
	case ICETCP:
	default:
		return nil, nil, fmt.Errorf("peer: ICE %q: want %q, %q or %q", o.ICE, ICEUDP, ICETCP, ICEAny)
	}
	if o.ICE != ICEUDP {
		networks = append(networks, webrtc.NetworkTypeTCP4)
		if ip := net.ParseIP(local); ip != nil && !ip.IsUnspecified() {
			// Dial TCP from the peer's own address only (in a test's network namespace, its veth).
			se.SetIPFilter(func(a net.IP) bool { return a.Equal(ip) })
		}
	}
	se.SetNetworkTypes(networks)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		if udp != nil {
			_ = udp.Close()
		}
		return nil, nil, err
	}
	return pc, udp, nil
}

// Transport is the protocol of the peer connection's selected ICE candidate pair ("udp" or "tcp"), ""
// before it has one.
func (c *conn) Transport() string {
	dt := c.pc.SCTP().Transport()
	if dt == nil {
		return ""
	}
	pair, err := dt.ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil {
		return ""
	}
	return pair.Local.Protocol.String()
}

// maxNACKs is how many times a peer asks for one missing packet (newPC).
const maxNACKs = 3

var fb = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}

// H264 is the codec the peer publishes by default: constrained baseline, as IVS requires.
var H264 = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
	SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: fb}, PayloadType: 102}

// VP8 is offered by subscribers and by publishers that ask for it.
var VP8 = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96}

// Opus is the audio codec.
var Opus = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}

// HTTPError is a non-2xx answer to a WHIP request.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("peer: HTTP %d: %s", e.Status, e.Body) }

// exchange POSTs the offer and applies the answer; it returns the session resource URL (Location) and
// the answer's Link rels (RFC 8288), as absolute URLs by rel.
func exchange(ctx context.Context, o *Options, pc *webrtc.PeerConnection, target string) (string, map[string]string, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", nil, err
	}
	sdp := offer.SDP // before gathering: no candidates
	if o.SDKLike {
		sdp = strings.ReplaceAll(sdp, "a=fmtp:111 minptime=10;useinbandfec=1", "a=fmtp:111 ;maxaveragebitrate=64000;minptime=10;sprop-stereo=0;stereo=0;useinbandfec=1")
	} else {
		select {
		case <-gathered:
		case <-ctx.Done():
			return "", nil, ctx.Err()
		}
		sdp = pc.LocalDescription().SDP
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(sdp))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+o.Token)
	for k, v := range o.Header {
		req.Header[k] = v
	}
	resp, err := o.client().Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return "", nil, &HTTPError{Status: resp.StatusCode, Body: string(body)}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return "", nil, err
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", nil, err
	}
	links := map[string]string{}
	for _, v := range resp.Header.Values("Link") {
		for _, l := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(l), ";")
			target = strings.TrimSpace(target)
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			u, err := resp.Request.URL.Parse(target[1 : len(target)-1])
			if err != nil {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "rel") {
					links[strings.Trim(v, `"`)] = u.String()
				}
			}
		}
	}
	return loc.String(), links, nil
}

// conn is what publishers and subscribers share: the peer connection and its WHIP session.
type conn struct {
	o         Options
	pc        *webrtc.PeerConnection
	udp       net.PacketConn
	location  string
	links     map[string]string
	state     atomic.Value // webrtc.PeerConnectionState
	connected chan struct{}
	closed    chan struct{}
	connOnce  sync.Once
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newConn(o Options, pc *webrtc.PeerConnection, udp net.PacketConn) *conn {
	c := &conn{o: o, pc: pc, udp: udp, connected: make(chan struct{}), closed: make(chan struct{})}
	c.state.Store(webrtc.PeerConnectionStateNew)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		c.state.Store(s)
		if s == webrtc.PeerConnectionStateConnected {
			c.connOnce.Do(func() { close(c.connected) })
		}
	})
	return c
}

// State is the peer connection's state.
func (c *conn) State() webrtc.PeerConnectionState { return c.state.Load().(webrtc.PeerConnectionState) }

// WaitConnected waits for the media connection.
func (c *conn) WaitConnected(ctx context.Context) error {
	select {
	case <-c.connected:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("peer: not connected (state %s): %w", c.State(), ctx.Err())
	}
}

// AnswerSDP is the server's answer.
func (c *conn) AnswerSDP() string {
	if d := c.pc.RemoteDescription(); d != nil {
		return d.SDP
	}
	return ""
}

// Location is the WHIP session URL.
func (c *conn) Location() string { return c.location }

// Link is the URL the answer's Link header gave for rel ("" without one).
func (c *conn) Link(rel string) string { return c.links[rel] }

// Delete ends the session politely: DELETE on its resource (RFC 9725 §4.2), then closes.
func (c *conn) Delete(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.location, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.o.Token)
	resp, err := c.o.client().Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	c.Close()
	if resp.StatusCode/100 != 2 {
		return &HTTPError{Status: resp.StatusCode}
	}
	return nil
}

// Close closes the peer connection (a DTLS close reaches the server), as AWS's samples do, with no DELETE.
func (c *conn) Close() {
	c.closeOnce.Do(func() {
		close(c.closed)
		_ = c.pc.Close()
		if c.udp != nil {
			_ = c.udp.Close()
		}
		c.wg.Wait()
	})
}

// Vanish drops off the network without a word: the socket closes first, so the server only learns of it
// from ICE timeouts (a closed laptop, a killed tab).
func (c *conn) Vanish() {
	if c.udp != nil {
		_ = c.udp.Close()
	}
	c.Close()
}

// Publisher publishes H.264 (or VP8: black frames are not needed, the fixture is H.264 only, so VP8 is
// offered but unsent) and Opus.
type Publisher struct {
	*conn
	SentVideo atomic.Int64 // video frames (access units) written
	SentAudio atomic.Int64 // audio frames written
	// VideoRTP and AudioRTP count the RTP packets sent, retransmissions not included: what a subscriber
	// should receive.
	VideoRTP atomic.Int64
	AudioRTP atomic.Int64
	// KeyframeRequests counts the PLIs and FIRs the server sent for the video.
	KeyframeRequests atomic.Int64
	// LayerKeyframeRequests counts them per simulcast layer (by RID).
	LayerKeyframeRequests map[string]*atomic.Int64

	stopSend     chan struct{}
	stopSendOnce sync.Once
}

// StopSending stops the media (the connection stays up), so that a measurement can let what is in flight
// arrive before it counts.
func (p *Publisher) StopSending() { p.stopSendOnce.Do(func() { close(p.stopSend) }) }

// Publish connects a publisher and starts sending media once connected.
func Publish(ctx context.Context, o Options) (*Publisher, error) {
	codec := H264
	if o.VideoCodec != "" && !strings.EqualFold(o.VideoCodec, webrtc.MimeTypeH264) {
		codec = VP8
	}
	codecs := []webrtc.RTPCodecParameters{codec, Opus}
	if o.SDKLike {
		codecs = []webrtc.RTPCodecParameters{VP8, H264, Opus}
	}
	p := &Publisher{stopSend: make(chan struct{})}
	pc, udp, err := newPC(&o, codecs, &sendCounter{video: &p.VideoRTP, audio: &p.AudioRTP})
	if err != nil {
		return nil, err
	}
	p.conn = newConn(o, pc, udp)
	audio, err := webrtc.NewTrackLocalStaticSample(Opus.RTPCodecCapability, "audio", "peer")
	if err != nil {
		return nil, err
	}
	if _, err := pc.AddTrack(audio); err != nil {
		p.Close()
		return nil, err
	}
	var video *webrtc.TrackLocalStaticSample
	var synthetic *webrtc.TrackLocalStaticRTP
	var layers []*ridTrack
	var layerSender *webrtc.RTPSender
	if !o.NoVideo && len(o.Simulcast) > 0 {
		if layers, layerSender, err = p.addSimulcast(pc, codec, o.Simulcast); err != nil {
			p.Close()
			return nil, err
		}
	} else if !o.NoVideo {
		var track webrtc.TrackLocal
		if o.PacketRate > 0 && codec.MimeType == webrtc.MimeTypeH264 {
			synthetic, err = webrtc.NewTrackLocalStaticRTP(codec.RTPCodecCapability, "video", "peer")
			track = synthetic
		} else {
			video, err = webrtc.NewTrackLocalStaticSample(codec.RTPCodecCapability, "video", "peer")
			track = video
		}
		if err != nil {
			p.Close()
			return nil, err
		}
		sender, err := pc.AddTrack(track)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.wg.Add(1)
		go func() { // drain RTCP so PLIs reach the interceptors
			defer p.wg.Done()
			for {
				pkts, _, err := sender.ReadRTCP()
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						p.KeyframeRequests.Add(1)
					}
				}
			}
		}()
	}
	target := strings.TrimSuffix(o.WHIPURL, "/") + o.PublishPath
	if p.location, p.links, err = exchange(ctx, &o, pc, target); err != nil {
		p.Close()
		return nil, err
	}
	p.wg.Add(1)
	go p.sendAudio(audio)
	if len(layers) > 0 {
		pad := o.SimulcastPad
		if pad == 0 {
			pad = 2
		}
		p.wg.Add(1)
		go p.sendLayers(layerSender, layers, pad)
	}
	if video != nil && codec.MimeType == webrtc.MimeTypeH264 {
		src := h264Fixture
		if o.H264 != nil {
			src = o.H264
		}
		p.wg.Add(1)
		go p.sendVideo(video, src)
	}
	if synthetic != nil {
		p.wg.Add(1)
		go p.sendSynthetic(synthetic, o.PacketRate, o.PacketSize)
	}
	return p, nil
}

// ridTrack is one simulcast layer: pion sends what is written as it is, so the layer marks its packets
// itself with the MID and RID header extensions (RFC 8843, RFC 8852) a receiver sorts layers by, with the
// ids negotiated for them.
type ridTrack struct {
	*webrtc.TrackLocalStaticRTP
	midID, ridID atomic.Uint32
}

func (t *ridTrack) Bind(c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, e := range c.HeaderExtensions() {
		switch e.URI {
		case "urn:ietf:params:rtp-hdrext:sdes:mid":
			t.midID.Store(uint32(e.ID))
		case "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id":
			t.ridID.Store(uint32(e.ID))
		}
	}
	return t.TrackLocalStaticRTP.Bind(c)
}

// addSimulcast adds one video sender with an encoding per RID, and drains each encoding's RTCP, counting
// keyframe requests per layer.
func (p *Publisher) addSimulcast(pc *webrtc.PeerConnection, codec webrtc.RTPCodecParameters, rids []string) ([]*ridTrack, *webrtc.RTPSender, error) {
	p.LayerKeyframeRequests = map[string]*atomic.Int64{}
	var tracks []*ridTrack
	var sender *webrtc.RTPSender
	for i, rid := range rids {
		rt, err := webrtc.NewTrackLocalStaticRTP(codec.RTPCodecCapability, "video", "peer", webrtc.WithRTPStreamID(rid))
		if err != nil {
			return nil, nil, err
		}
		t := &ridTrack{TrackLocalStaticRTP: rt}
		if i == 0 {
			sender, err = pc.AddTrack(t)
		} else {
			err = sender.AddEncoding(t)
		}
		if err != nil {
			return nil, nil, err
		}
		tracks = append(tracks, t)
		p.LayerKeyframeRequests[rid] = new(atomic.Int64)
	}
	for _, rid := range rids {
		n := p.LayerKeyframeRequests[rid]
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				pkts, _, err := sender.ReadSimulcastRTCP(rid)
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						n.Add(1)
						p.KeyframeRequests.Add(1)
					}
				}
			}
		}()
	}
	return tracks, sender, nil
}

// sendLayers loops the fixture at 15 fps on every simulcast layer, layer i padded with i×pad packets of
// filler data (H.264 filler NAL units, which decoders drop) before each frame.
func (p *Publisher) sendLayers(sender *webrtc.RTPSender, tracks []*ridTrack, pad int) {
	defer p.wg.Done()
	if !p.waitToSend() {
		return
	}
	mid := ""
	for _, tr := range p.pc.GetTransceivers() {
		if tr.Sender() == sender {
			mid = tr.Mid()
		}
	}
	payloader := &codecs.H264Payloader{}
	seqs := make([]uint16, len(tracks))
	for i := range seqs {
		seqs[i] = uint16(rand.Uint32())
	}
	tsBase := rand.Uint32()
	start := time.Now()
	aus := fixtureAccessUnits()
	if len(aus) == 0 {
		return
	}
	filler := make([]byte, 1200-rtpHeaderSize)
	filler[0] = fillerNAL
	for i := 1; i < len(filler)-1; i++ {
		filler[i] = 0xff
	}
	filler[len(filler)-1] = 0x80 // rbsp_trailing_bits
	const frame = time.Second / 15
	tick := time.NewTicker(frame)
	defer tick.Stop()
	for i := 0; ; i = (i + 1) % len(aus) {
		select {
		case <-p.closed:
			return
		case <-p.stopSend:
			return
		case <-tick.C:
		}
		ts := tsBase + uint32(time.Since(start).Seconds()*90000)
		for l, t := range tracks {
			payloads := payloader.Payload(1200-rtpHeaderSize, aus[i])
			for range l * pad {
				payloads = append([][]byte{filler}, payloads...)
			}
			for k, pl := range payloads {
				pkt := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seqs[l], Timestamp: ts, Marker: k == len(payloads)-1}, Payload: pl}
				seqs[l]++
				if id := t.midID.Load(); id != 0 {
					_ = pkt.Header.SetExtension(uint8(id), []byte(mid))
				}
				if id := t.ridID.Load(); id != 0 {
					_ = pkt.Header.SetExtension(uint8(id), []byte(t.RID()))
				}
				if err := t.WriteRTP(&pkt); err != nil {
					return
				}
			}
		}
		p.SentVideo.Add(1)
	}
}

func (p *Publisher) waitToSend() bool {
	select {
	case <-p.connected:
		return true
	case <-p.closed:
		return false
	case <-p.stopSend:
		return false
	}
}

// sendVideo loops the H.264 fixture at its 15 fps, one access unit per tick.
func (p *Publisher) sendVideo(track *webrtc.TrackLocalStaticSample, src []byte) {
	defer p.wg.Done()
	if !p.waitToSend() {
		return
	}
	aus := splitAccessUnits(src)
	if len(aus) == 0 {
		return
	}
	const frame = time.Second / 15
	tick := time.NewTicker(frame)
	defer tick.Stop()
	for i := 0; ; i = (i + 1) % len(aus) {
		select {
		case <-p.closed:
			return
		case <-p.stopSend:
			return
		case <-tick.C:
		}
		if err := track.WriteSample(media.Sample{Data: aus[i], Duration: frame}); err != nil {
			return
		}
		p.SentVideo.Add(1)
	}
}

// sendAudio loops the Opus fixture, one 20 ms page at a time.
func (p *Publisher) sendAudio(track *webrtc.TrackLocalStaticSample) {
	defer p.wg.Done()
	if !p.waitToSend() {
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ogg, _, err := oggreader.NewWith(bytes.NewReader(opusFixture))
		if err != nil {
			return
		}
		var last uint64
		for {
			page, hdr, err := ogg.ParseNextPage()
			if err != nil {
				break
			}
			d := time.Duration(hdr.GranulePosition-last) * time.Second / 48000
			last = hdr.GranulePosition
			if d <= 0 || d > time.Second {
				continue // header pages
			}
			select {
			case <-p.closed:
				return
			case <-p.stopSend:
				return
			case <-tick.C:
			}
			if err := track.WriteSample(media.Sample{Data: page, Duration: d}); err != nil {
				return
			}
			p.SentAudio.Add(1)
		}
	}
}

// Subscriber receives one publisher's media and counts it.
type Subscriber struct {
	*conn
	VideoPackets atomic.Int64
	AudioPackets atomic.Int64
	Keyframes    atomic.Int64 // H.264 IDR slices seen (RFC 6184 single NAL, STAP-A, FU-A start)
	VideoCodec   atomic.Value // string MIME type

	audio, video atomic.Pointer[seqTracker]
	videoSSRC    atomic.Uint32
	videoSize    atomic.Uint64 // width<<32 | height, from the last H.264 SPS received
	media        chan struct{} // closed at the first RTP packet
	mediaOnce    sync.Once
}

// Stats returns what was measured on the audio and the video stream so far.
func (s *Subscriber) Stats() (audio, video StreamStats) {
	if t := s.audio.Load(); t != nil {
		audio = t.snapshot()
	}
	if t := s.video.Load(); t != nil {
		video = t.snapshot()
	}
	return audio, video
}

// RequestKeyframe sends the server a PLI for the received video, as a decoder that lost its reference
// does; it reports whether there was a video to ask for.
func (s *Subscriber) RequestKeyframe() bool {
	ssrc := s.videoSSRC.Load()
	if ssrc == 0 {
		return false
	}
	return s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}) == nil
}

// Media is closed when the first RTP packet arrives.
func (s *Subscriber) Media() <-chan struct{} { return s.media }

// Subscribe subscribes to publisherID at <whip_url>/subscribe/<publisherID> with a recvonly offer.
func Subscribe(ctx context.Context, o Options, publisherID string) (*Subscriber, error) {
	pc, udp, err := newPC(&o, []webrtc.RTPCodecParameters{VP8, H264, Opus})
	if err != nil {
		return nil, err
	}
	s := &Subscriber{conn: newConn(o, pc, udp), media: make(chan struct{})}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			s.Close()
			return nil, err
		}
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		s.wg.Add(1)
		go s.read(t)
	})
	target := strings.TrimSuffix(o.WHIPURL, "/") + "/subscribe/" + url.PathEscape(publisherID)
	if s.location, s.links, err = exchange(ctx, &o, pc, target); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Subscriber) read(t *webrtc.TrackRemote) {
	defer s.wg.Done()
	video := t.Kind() == webrtc.RTPCodecTypeVideo
	tr := newSeqTracker(t.Codec().ClockRate)
	if video {
		s.videoSSRC.Store(uint32(t.SSRC()))
		s.VideoCodec.Store(t.Codec().MimeType)
		s.video.Store(tr)
	} else {
		s.audio.Store(tr)
	}
	var pkt rtp.Packet
	buf := make([]byte, 1500)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		now := time.Now()
		s.mediaOnce.Do(func() { close(s.media) })
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		tr.update(&pkt.Header, now)
		if !video {
			s.AudioPackets.Add(1)
			continue
		}
		s.VideoPackets.Add(1)
		if isH264Keyframe(pkt.Payload) {
			s.Keyframes.Add(1)
		}
		if w, h, ok := spsSize(pkt.Payload); ok {
			s.videoSize.Store(uint64(w)<<32 | uint64(h))
		}
	}
}

// VideoSize is the picture size of the H.264 video received, from the last sequence parameter set that
// came with it (0, 0 before one): what a decoder would show, so a test can tell which simulcast layer
// arrives.
func (s *Subscriber) VideoSize() (width, height int) {
	v := s.videoSize.Load()
	return int(v >> 32), int(uint32(v))
}

// spsSize reads the picture size from an RTP payload that carries an H.264 SPS: as a single NAL unit or
// inside a STAP-A (RFC 6184 §5.6, §5.7.1), as encoders send it ahead of each IDR picture.
func spsSize(p []byte) (w, h int, ok bool) {
	if len(p) < 1 {
		return 0, 0, false
	}
	var nals [][]byte
	switch p[0] & 0x1f {
	case 7:
		nals = [][]byte{p}
	case 24:
		for i := 1; i+2 <= len(p); {
			n := int(p[i])<<8 | int(p[i+1])
			i += 2
			if n == 0 || i+n > len(p) {
				break
			}
			nals = append(nals, p[i:i+n])
			i += n
		}
	}
	for _, nal := range nals {
		if nal[0]&0x1f != 7 {
			continue
		}
		if sps, err := policy.ParseSPS(nal); err == nil {
			return sps.Width, sps.Height, true
		}
	}
	return 0, 0, false
}

// isH264Keyframe reports whether an RTP payload starts an IDR slice (RFC 6184 §5.6-5.8).
func isH264Keyframe(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch typ := p[0] & 0x1f; typ {
	case 5:
		return true
	case 24: // STAP-A: 2-byte sizes then NAL units
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			if i+2 < len(p) && p[i+2]&0x1f == 5 {
				return true
			}
			i += 2 + size
		}
	case 28: // FU-A: start bit and the fragmented type
		return p[1]&0x80 != 0 && p[1]&0x1f == 5
	}
	return false
}
