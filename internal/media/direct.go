package media

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v4/packetio"
	"github.com/pion/webrtc/v4"
)

// The send paths of subscriptions (--media-send-path; docs/DESIGN.md §4.11).
const (
	// SendPathDirect (the default) seals forwarded packets with the subscription's own SRTP context and
	// writes them to the selected candidate pair's address on the SFU's UDP socket; pion does ICE, DTLS
	// and SDP, openstage answers NACKs from the fanout's packet ring and sends the sender reports, and an
	// established subscription leaves pion's connection for its own endpoint (endpoint.go).
	SendPathDirect = "direct"
	// SendPathPion writes every forwarded packet through pion's RTPSender: its SRTP session, its mux and
	// ICE layers, for as long as the subscription lasts.
	SendPathPion = "pion"
)

// SendPaths lists the valid --media-send-path values.
func SendPaths() []string { return []string{SendPathDirect, SendPathPion} }

// The direct send path takes the SRTP keys of a subscription from pion's public DTLS options only
// (docs/DESIGN.md §4.11): the subscription's own API (one per subscription, sharing the SFU's media
// engine) has a key log writer, which dtls gives the client random and the master secret, and a
// ServerHello hook, which shows the server random, the cipher suite and the SRTP profile the handshake
// chose. openstage is the DTLS server of these connections (SetAnsweringDTLSRole) so that it writes the
// ServerHello it needs to see. With those, the keying material is RFC 5705's exporter (RFC 5764 §4.2's
// label), computed with dtls's public PRF, and srtp's public ExtractSessionKeysFromDTLS splits it.

// dtlsSecrets collects what one handshake revealed. Written by dtls's handshake goroutine, read after
// the connection reports connected.
type dtlsSecrets struct {
	mu                                 sync.Mutex
	clientRandom, serverRandom, master []byte
	suite                              dtls.CipherSuiteID
	profile                            extension.SRTPProtectionProfile
	sawHello                           bool
}

// Write takes the key log line of NSS's format, "CLIENT_RANDOM <client random> <master secret>".
func (k *dtlsSecrets) Write(p []byte) (int, error) {
	f := bytes.Fields(p)
	if len(f) != 3 || string(f[0]) != "CLIENT_RANDOM" {
		return len(p), nil
	}
	cr, err1 := hex.DecodeString(string(f[1]))
	ms, err2 := hex.DecodeString(string(f[2]))
	if err1 != nil || err2 != nil {
		return len(p), nil
	}
	k.mu.Lock()
	k.clientRandom, k.master = cr, ms
	k.mu.Unlock()
	return len(p), nil
}

// serverHello sees the ServerHello openstage sends, unchanged.
func (k *dtlsSecrets) serverHello(m handshake.MessageServerHello) handshake.Message {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := m.Random.MarshalFixed()
	k.serverRandom = r[:]
	if m.CipherSuiteID != nil {
		k.suite = dtls.CipherSuiteID(*m.CipherSuiteID)
	}
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			k.profile = u.ProtectionProfiles[0]
		}
	}
	k.sawHello = true
	return &m
}

var errNoSecrets = errors.New("media: the DTLS handshake revealed no SRTP keys (openstage was not its server)")

// ExportKeyingMaterial is RFC 5705 §4 without a context: the TLS 1.2 PRF (RFC 5246 §5) of the master
// secret over the label and both randoms, with the hash of the negotiated cipher suite.
func (k *dtlsSecrets) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	if len(context) != 0 {
		return nil, errors.New("media: keying material with a context")
	}
	var h func() hash.Hash = sha256.New
	switch k.suite {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		h = sha512.New384
	}
	seed := append(append([]byte(label), k.clientRandom...), k.serverRandom...)
	return prf.PHash(k.master, seed, length, h)
}

// srtpConfig is the SRTP profile and both sides' keys the handshake made (RFC 5764 §4.2), seen from the
// server's side.
func (k *dtlsSecrets) srtpConfig() (srtp.Config, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.sawHello || k.master == nil || k.profile == 0 {
		return srtp.Config{}, errNoSecrets
	}
	cfg := srtp.Config{Profile: srtp.ProtectionProfile(k.profile)}
	err := cfg.ExtractSessionKeysFromDTLS(k, false)
	return cfg, err
}

// srtpContext is the outbound SRTP context of the server side of the handshake.
func (k *dtlsSecrets) srtpContext() (*srtp.Context, error) {
	cfg, err := k.srtpConfig()
	if err != nil {
		return nil, err
	}
	return srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, cfg.Profile)
}

// The output a direct sender settled on when its connection came up.
const (
	directPending int32 = iota // not connected yet: packets are dropped, as pion drops them before SRTP starts
	directOwn                  // sealed here, written to the selected pair
	directPion                 // the pair is not on the UDP socket (ICE-TCP) or the keys are unknown: pion's writer
)

// directSender is one subscription's send path on the direct path (the default): one SRTP context for
// all its streams, the address of ICE's selected pair, and the streams' sender report accounting and
// NACK answers.
//
// With pion set, the subscription is on pion's send path (its writer, SRTP session and mux) and the
// directSender only answers NACKs from the fanouts' rings and sends the reports, in place of pion's
// interceptors: the connection never has its SRTP keys.
//
// On either path it takes the subscription's incoming RTCP as pion's SRTCP session decrypts it
// (rtcpSink), so no goroutine of its own reads the senders' RTCP.
type directSender struct {
	sfu      *SFU
	pion     bool
	keyframe func() // a PLI or FIR from the subscriber: the publisher's RequestKeyframe
	secrets  dtlsSecrets
	mode     atomic.Int32
	addr     atomic.Pointer[netip.AddrPort]

	// The subscription's own endpoint once it left pion (endpoint.go), nil before; onEnd ends the
	// subscription.
	ep      atomic.Pointer[endpoint]
	sawRTCP atomic.Bool // the subscriber's SRTCP came through pion: its side of DTLS is done
	ending  atomic.Bool
	onEnd   func()

	ctxMu sync.Mutex // the SRTP context keeps per-SSRC rollover state
	ctx   *srtp.Context

	mu          sync.Mutex
	pc          *webrtc.PeerConnection // nil once detached
	streams     []*directStream
	timer       *time.Timer // the next sender report; nil once closed
	closed      bool
	connectedAt time.Time
	detaching   bool
	pionReports uint32 // the SRTCP packets pion's session sealed: the first index the endpoint may use
}

// api builds the subscription's own API: the SFU's settings and codecs, this sender's read streams
// (readStream), no interceptors (this sender answers NACKs and sends the reports; a subscription
// receives no media, so nothing else of pion's defaults applies; an interceptor added here would see no
// RTCP, since pion runs its RTCP chain when a stream is read and the sinks are only written), and on the
// direct path openstage as DTLS server with the secrets' hooks.
func (d *directSender) api(se webrtc.SettingEngine, m *webrtc.MediaEngine) (*webrtc.API, error) {
	se.BufferFactory = d.readStream
	if !d.pion {
		se.SetDTLSKeyLogWriter(&d.secrets)
		se.SetDTLSServerHelloMessageHook(d.secrets.serverHello)
		if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
			return nil, err
		}
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(&interceptor.Registry{})), nil
}

// srtpReadLimit is what pion's SRTP session keeps of an RTP stream nobody reads (srtp's own default).
const srtpReadLimit = 1000 * 1000

// readStream makes the buffer behind each of the subscription's SRTP and SRTCP read streams, one per
// SSRC (pion's SettingEngine.BufferFactory). An RTCP stream's is an rtcpSink, which acts on what pion's
// SRTCP session writes to it: without it, pion buffered each SSRC's RTCP (2 KB and more per stream,
// up to 100 KB for one nobody reads, such as the SDES of a browser's own SSRC) and openstage ran a
// goroutine per sender to read it (docs/BENCHMARKS.md, memory per subscription). RTP streams, which a
// subscriber has no reason to send, keep pion's buffer.
func (d *directSender) readStream(t packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
	if t == packetio.RTCPBufferPacket {
		return &rtcpSink{d: d, ssrc: ssrc}
	}
	b := packetio.NewBuffer()
	b.SetLimitSize(srtpReadLimit)
	return b
}

// rtcpSink is the read stream of one SSRC of a subscription's RTCP: pion's SRTCP session writes each
// packet addressed to that SSRC to it, from the session's read loop, and nothing reads it.
type rtcpSink struct {
	d    *directSender
	ssrc uint32
}

// Write passes one decrypted RTCP packet on. It always succeeds: an error would only make pion's
// session log it.
func (r *rtcpSink) Write(b []byte) (int, error) {
	r.d.sawRTCP.Store(true)
	if pkts, err := rtcp.Unmarshal(b); err == nil {
		r.d.feedback(r.ssrc, pkts)
	}
	return len(b), nil
}

// Read reports the end at once: the stream is only ever written (its sender's ReadRTCP is not called).
func (r *rtcpSink) Read([]byte) (int, error) { return 0, io.EOF }

func (r *rtcpSink) Close() error { return nil }

// feedback acts on the RTCP pion's session addressed to ssrc (srtp splits a compound packet by the SSRCs
// its parts name): keyframe requests go to the publisher, NACKs are answered. RTCP addressed to an SSRC
// that is none of this subscription's streams (a browser's SDES of its own SSRC, a report on an unknown
// stream) is dropped, as pion's unread stream dropped it.
//
// It runs on pion's SRTCP read loop, which the connection's Close waits for: the keyframe request writes
// to the publisher's connection and a retransmission to this one, each at most a blocked write long (over
// ICE-TCP, until ICE gives up on a peer that stopped reading), as in the goroutine per sender before.
func (d *directSender) feedback(ssrc uint32, pkts []rtcp.Packet) {
	if !d.hasStream(ssrc) {
		return
	}
	for _, p := range pkts {
		d.act(p, d.keyframe)
	}
}

// hasStream reports whether one of ssrcs is one of the subscription's streams.
func (d *directSender) hasStream(ssrcs ...uint32) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.streams {
		if slices.Contains(ssrcs, s.ssrc) {
			return true
		}
	}
	return false
}

// act answers one RTCP packet addressed to the subscription: a keyframe request goes to the publisher
// through keyframe, the rest to onRTCP (NACKs).
func (d *directSender) act(p rtcp.Packet, keyframe func()) {
	switch p.(type) {
	case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
		keyframe()
	default:
		d.onRTCP(p)
	}
}

// srInterval is how often sender reports go out (RFC 3550 §6.2 for a small session: about 5 s is the
// minimum it recommends; pion's report interceptor sends every second, which openstage keeps).
const srInterval = time.Second

// start decides the output once the connection is up (DTLS done, so the secrets are complete).
func (d *directSender) start() {
	mode := directPion // pion's send path: its writer, always
	if !d.pion {
		mode = d.ownOutput()
	}
	d.mode.Store(mode)
	d.mu.Lock()
	d.connectedAt = time.Now()
	if !d.closed && d.timer == nil {
		d.timer = time.AfterFunc(srInterval, d.report)
	}
	d.mu.Unlock()
}

// ownOutput sets up openstage's own output when it can: the keys are known and the pair is on the UDP socket.
func (d *directSender) ownOutput() int32 {
	ctx, err := d.secrets.srtpContext()
	ap, ok := d.selectedAddr()
	switch {
	case err != nil: // unusual (a client that insisted on being the DTLS server): said at Info
		d.sfu.log.Info("media: direct send path unavailable, pion's writer used", "err", err)
	case !ok || d.sfu.udpConn == nil: // ICE-TCP: expected behind UDP-blocking networks
		d.sfu.log.Debug("media: direct send path unavailable, pion's writer used", "err", "the selected candidate pair is not on the UDP socket")
	default:
		d.ctxMu.Lock()
		d.ctx = ctx
		d.ctxMu.Unlock()
		d.addr.Store(&ap)
		return directOwn
	}
	return directPion
}

// peer is the subscription's pion connection, nil once it left it for its own endpoint.
func (d *directSender) peer() *webrtc.PeerConnection {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pc
}

// selectedAddr is the remote address of ICE's selected pair when that pair is UDP, and so on the SFU's
// UDP socket (the ICE UDP mux owns every UDP host candidate; openstage gathers no other kind).
func (d *directSender) selectedAddr() (netip.AddrPort, bool) {
	pc := d.peer()
	if pc == nil {
		return netip.AddrPort{}, false
	}
	dt := pc.SCTP().Transport()
	if dt == nil {
		return netip.AddrPort{}, false
	}
	pair, err := dt.ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return netip.AddrPort{}, false
	}
	return pairAddr(pair)
}

func pairAddr(pair *webrtc.ICECandidatePair) (netip.AddrPort, bool) {
	if pair.Local == nil || pair.Remote == nil || pair.Local.Protocol != webrtc.ICEProtocolUDP || pair.Remote.Protocol != webrtc.ICEProtocolUDP {
		return netip.AddrPort{}, false
	}
	ip, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), pair.Remote.Port), true
}

// pairChanged follows ICE to a new selected pair. A move off UDP cannot be followed (the SRTP context is
// this sender's, pion's own would restart the streams' rollover counts): it ends the subscription, and
// the client subscribes again.
func (d *directSender) pairChanged(pair *webrtc.ICECandidatePair, end func()) {
	if d.mode.Load() != directOwn || d.ep.Load() != nil {
		return
	}
	if ap, ok := pairAddr(pair); ok {
		d.addr.Store(&ap)
		return
	}
	end()
}

// close stops the reports; a detached subscription also leaves the demux, tells the subscriber, and
// unbinds its streams from the fanouts (pion's connection, which unbinds the others, is gone).
func (d *directSender) close() {
	d.mu.Lock()
	d.closed = true
	if d.timer != nil {
		d.timer.Stop()
	}
	ep, streams := d.ep.Load(), d.streams
	d.mu.Unlock()
	if ep == nil {
		return
	}
	d.sfu.demux.remove(ep)
	ep.closeNotify()
	for _, s := range streams {
		s.f.unbind(s.id)
	}
}

// end ends the subscription, once, from a goroutine the SFU waits for: the callers are the mux's read
// goroutine and the consent watch, which must not wait for the subscription's hooks.
func (d *directSender) end() {
	if !d.ending.Swap(true) {
		d.sfu.goTracked(d.onEnd)
	}
}

// detachWait is how long after the connection came up a subscription that pion's session got no SRTCP
// from leaves pion anyway. The SRTCP proves the subscriber's side of DTLS done; without it, a
// subscriber whose last handshake flight from openstage was lost retransmits its own, and only pion's
// DTLS can answer: its retransmissions come within the first seconds (RFC 6347 §4.2.4.1: 1 s, doubling).
const detachWait = 5 * time.Second

// detachDue reports, at a sender report's tick, whether the subscription should leave pion now. d.mu is held.
func (d *directSender) detachDue() bool {
	if d.detaching || d.pc == nil || d.mode.Load() != directOwn || d.sfu.demux == nil {
		return false
	}
	return d.sawRTCP.Load() || time.Since(d.connectedAt) > detachWait
}

// detach moves the subscription from pion's connection to its own endpoint (endpoint.go) and closes the
// connection. A subscription whose secrets do not allow it (a DTLS suite other than AES-GCM) stays on pion.
func (d *directSender) detach() {
	pc := d.peer()
	if pc == nil {
		return
	}
	keys, err := d.secrets.recordKeys()
	if err != nil {
		d.sfu.log.Info("media: subscription stays on pion's connection", "err", err)
		return
	}
	in, err := d.secrets.srtcpIn()
	if err != nil {
		d.sfu.log.Info("media: subscription stays on pion's connection", "err", err)
		return
	}
	local, remote := pc.CurrentLocalDescription(), pc.CurrentRemoteDescription()
	if local == nil || remote == nil {
		return
	}
	ufrag, pwd, err := iceCredentials(local.SDP)
	if err != nil {
		return
	}
	remoteUfrag, _, err := iceCredentials(remote.SDP)
	if err != nil {
		return
	}
	addr := *d.addr.Load()
	ep := &endpoint{d: d, addr: addr, ufrag: ufrag, pwd: pwd, remote: remoteUfrag, in: in, dtls: keys}
	ep.seen.Store(time.Now().UnixNano())
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	// pion's SRTCP session sealed the reports so far with the same keys: the endpoint's indexes follow
	// them, or the subscriber's replay check drops its first reports (RFC 3711 §3.3.2).
	d.ctxMu.Lock()
	for _, s := range d.streams {
		d.ctx.SetIndex(s.ssrc, d.pionReports)
	}
	d.ctxMu.Unlock()
	d.ep.Store(ep) // before the demux has it, and before pion closes: its end is not the subscription's
	d.sfu.demux.add(ep)
	d.pc = nil
	streams := d.streams
	d.mu.Unlock()
	_ = pc.Close() // its close_notify to the subscriber is dropped by the demux
	for _, s := range streams {
		s.mu.Lock()
		s.w = nil // pion's writer, and with it the connection
		s.mu.Unlock()
	}
	d.sfu.stats.Detached.Add(1)
	d.sfu.log.Debug("media: subscription detached from pion's connection", "addr", addr)
}

// feedbackDetached acts on the RTCP a detached subscriber sent, as feedback does on pion's: only what is
// addressed to one of the subscription's streams. It runs on the mux's read goroutine: the keyframe
// request, which writes to the publisher's connection, goes to a goroutine of its own.
func (d *directSender) feedbackDetached(pkts []rtcp.Packet) {
	for _, p := range pkts {
		if d.hasStream(p.DestinationSSRC()...) {
			d.act(p, d.keyframeAsync)
		}
	}
}

// keyframeAsync asks the publisher for a keyframe from a goroutine the SFU waits for (feedbackDetached).
func (d *directSender) keyframeAsync() { d.sfu.goTracked(d.keyframe) }

// newStream is one bound track of the subscription.
func (d *directSender) newStream(f *fanout, g *gate, id string, ssrc uint32, pt uint8, clock uint32, w webrtc.TrackLocalWriter) *directStream {
	s := &directStream{d: d, f: f, gate: g, id: id, ssrc: ssrc, pt: pt, clock: clock, w: w}
	d.mu.Lock()
	d.streams = append(d.streams, s)
	d.mu.Unlock()
	return s
}

// report sends a sender report for each stream that has sent (RFC 3550 §6.4.1): the NTP time of now and
// the RTP time it corresponds to, from the last packet's timestamp and the time it was sent.
func (d *directSender) report() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	streams, pc := d.streams, d.pc
	d.timer.Reset(srInterval)
	if d.detachDue() {
		d.detaching = true
		d.sfu.goTracked(d.detach)
	}
	d.mu.Unlock()
	now := time.Now()
	var pkts []rtcp.Packet
	for _, s := range streams {
		if sr := s.senderReport(now); sr != nil {
			pkts = append(pkts, sr)
		}
	}
	if len(pkts) == 0 {
		return
	}
	if pc != nil {
		d.mu.Lock()
		d.pionReports++
		d.mu.Unlock()
		_ = pc.WriteRTCP(pkts)
		return
	}
	d.writeRTCP(pkts)
}

// writeRTCP seals RTCP with the subscription's context and sends it, once detached.
func (d *directSender) writeRTCP(pkts []rtcp.Packet) {
	raw, err := rtcp.Marshal(pkts)
	if err != nil {
		return
	}
	d.ctxMu.Lock()
	out, err := d.ctx.EncryptRTCP(nil, raw, nil)
	d.ctxMu.Unlock()
	if err != nil {
		return
	}
	_, _ = d.sfu.udpConn.WriteToUDPAddrPort(out, *d.addr.Load())
}

// onRTCP answers a subscriber's NACKs (RFC 4585 §6.2.1) from the fanouts' packet rings.
func (d *directSender) onRTCP(p rtcp.Packet) {
	n, ok := p.(*rtcp.TransportLayerNack)
	if !ok {
		return
	}
	d.mu.Lock()
	streams := d.streams
	d.mu.Unlock()
	for _, s := range streams {
		if s.ssrc != n.MediaSSRC {
			continue
		}
		for _, pair := range n.Nacks {
			pair.Range(func(seq uint16) bool {
				s.retransmit(seq)
				return true
			})
		}
	}
}

// directStream is one track of a direct subscription, written by its fanout's goroutine and, for
// retransmissions, by pion's SRTCP read loop of the subscription (rtcpSink).
type directStream struct {
	d     *directSender
	f     *fanout
	gate  *gate
	id    string // the binding's, in the fanout
	ssrc  uint32
	pt    uint8
	clock uint32
	w     webrtc.TrackLocalWriter // pion's, for the directPion output

	mu       sync.Mutex
	pionHdr  rtp.Header
	packets  uint32
	octets   uint32
	lastTS   uint32
	lastTime time.Time
}

// sealScratch holds one packet while it is sealed. The fanout's writer has one for all its direct
// subscriptions, since it seals one packet at a time; a retransmission takes one from sealPool. Buffers
// per stream were 4.5 KB a subscription at rest (docs/BENCHMARKS.md, "Seventh pass").
type sealScratch struct {
	plain, sealed []byte
	hdr           rtp.Header // srtp's
}

var sealPool = sync.Pool{New: func() any { return new(sealScratch) }}

// write sends one packet: h is the subscriber's header, payload the shared bytes, sc the writer's scratch.
func (s *directStream) write(h *rtp.Header, payload []byte, sc *sealScratch) error {
	switch s.d.mode.Load() {
	case directPending:
		return nil
	case directPion:
		s.mu.Lock()
		defer s.mu.Unlock()
		s.account(h, len(payload))
		// A copy the stream owns: h stays on the fanout's stack (pion's writer may keep what it is given).
		s.pionHdr = *h
		_, err := s.w.WriteRTP(&s.pionHdr, payload)
		return err
	}
	s.mu.Lock()
	s.account(h, len(payload))
	s.mu.Unlock()
	return s.sealAndSend(h, payload, sc)
}

func (s *directStream) account(h *rtp.Header, n int) {
	s.packets++
	s.octets += uint32(n)
	s.lastTS, s.lastTime = h.Timestamp, time.Now()
}

// sealAndSend is the whole per-packet work of the direct path: marshal, SRTP seal, one sendto.
func (s *directStream) sealAndSend(h *rtp.Header, payload []byte, sc *sealScratch) error {
	size := h.MarshalSize() + len(payload)
	if cap(sc.plain) < size {
		sc.plain = make([]byte, size, max(size, 1500))
	}
	buf := sc.plain[:size]
	n, err := h.MarshalTo(buf)
	if err != nil {
		return err
	}
	copy(buf[n:], payload)
	d := s.d
	d.ctxMu.Lock()
	out, err := d.ctx.EncryptRTP(sc.sealed[:0], buf, &sc.hdr)
	d.ctxMu.Unlock()
	if err != nil {
		return err
	}
	sc.sealed = out
	_, err = d.sfu.udpConn.WriteToUDPAddrPort(out, *d.addr.Load())
	return err
}

func (s *directStream) senderReport(now time.Time) *rtcp.SenderReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.packets == 0 {
		return nil
	}
	return &rtcp.SenderReport{
		SSRC:        s.ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     s.lastTS + uint32(now.Sub(s.lastTime).Seconds()*float64(s.clock)),
		PacketCount: s.packets,
		OctetCount:  s.octets,
	}
}

// retransmit resends the packet the subscriber knows as seq, if the fanout's ring still has it.
func (s *directStream) retransmit(seq uint16) {
	pub := seq
	if g := s.gate; g != nil {
		skipped := uint16(g.skipped.Load())
		// A NACK from before the last resumption would map through the wrong offset: not answered.
		if skipped != 0 && int16(seq-uint16(g.resumedAt.Load())) < 0 {
			return
		}
		pub += skipped
	}
	p := s.f.ring.Load().get(pub)
	if p == nil {
		return
	}
	h := p.Header
	h.SequenceNumber, h.SSRC, h.PayloadType = seq, s.ssrc, s.pt
	if s.d.mode.Load() == directPion {
		_, _ = s.w.WriteRTP(&h, p.Payload)
		return
	}
	if s.d.mode.Load() != directOwn {
		return
	}
	sc := sealPool.Get().(*sealScratch)
	_ = s.sealAndSend(&h, p.Payload, sc)
	sealPool.Put(sc)
}

// ntpTime is t as a 64-bit NTP timestamp (RFC 5905 §6: seconds since 1900 and a 32-bit fraction).
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	ns := t.UnixNano()
	sec := uint64(ns/1e9) + unixToNTP
	frac := uint64(ns%1e9) << 32 / 1e9
	return sec<<32 | frac
}

// ringSize is how many of a track's last packets a subscription of its fanout can have resent: as many as
// pion's NACK responder keeps by default, about 1.7 s of a 600 packets/s video.
const ringSize = 1024

// packetRing is a fanout's last packets by sequence number, shared by all its subscribers on either
// send path (docs/DESIGN.md §4.11): written by the forwarding goroutine, read by the subscriptions' SRTCP
// read loops (rtcpSink).
type packetRing struct {
	slots [ringSize]atomic.Pointer[rtp.Packet]
}

func (r *packetRing) put(p *rtp.Packet) { r.slots[p.SequenceNumber%ringSize].Store(p) }

func (r *packetRing) get(seq uint16) *rtp.Packet {
	if r == nil {
		return nil
	}
	p := r.slots[seq%ringSize].Load()
	if p == nil || p.SequenceNumber != seq {
		return nil
	}
	return p
}

// checkSendPath validates a --media-send-path value.
func checkSendPath(p string) error {
	switch p {
	case "", SendPathPion, SendPathDirect:
		return nil
	}
	return fmt.Errorf("media: send path %q is not one of %v", p, SendPaths())
}
