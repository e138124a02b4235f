package media

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/ciphersuite"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/alert"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"github.com/pion/stun/v4"
)

// A subscription on the direct send path leaves pion once its connection is established (docs/DESIGN.md
// §4.12): pion's peer connection made the ICE, DTLS and SDP exchange, and after it openstage's own
// endpoint carries what is left of a subscription, on the SFU's UDP socket, with no goroutine of its own:
//   - ICE consent (RFC 7675): it answers the subscriber's binding requests, checked against the answer's
//     ICE password (RFC 8445 §7.3), and ends the subscription when none has come, nor any SRTCP, for the
//     SFU's disconnected and failed timeouts together, as pion's ICE agent did;
//   - SRTCP in (RFC 3711): decrypted with the subscriber's keys, its PLIs and FIRs go to the publisher and
//     its NACKs are answered from the fanouts' rings, as before;
//   - SRTP and SRTCP out: the forwarded packets, already sealed by the direct path, and the sender reports;
//   - DTLS's end (RFC 5246 §7.2.1): a close_notify from the subscriber ends the subscription at once, and
//     one is sent to it when openstage ends the subscription, sealed with the record keys the handshake
//     made (RFC 5246 §6.3), so that the subscriber learns it at once too.
// pion's connection is then closed, with every buffer, goroutine and timer it held: what a subscription
// costs at rest is its SRTP contexts and its streams (docs/BENCHMARKS.md, "Sixth pass").

// udpDemux is the SFU's UDP socket as pion's ICE UDP mux sees it: packets from the address of a detached
// subscription go to its endpoint, on the mux's one read goroutine, and never reach pion; pion's writes to
// such an address are dropped (the closing pion connection's own close_notify above all: the subscription
// goes on). Everything else passes through unchanged.
type udpDemux struct {
	conn *net.UDPConn

	n       atomic.Int32 // len(byAddr): the common case, no detached subscription, takes no lock
	mu      sync.RWMutex
	byAddr  map[netip.AddrPort]*endpoint
	byUfrag map[string]*endpoint // by the answer's ICE username fragment: a subscriber that moves
}

var (
	_ net.PacketConn           = (*udpDemux)(nil)
	_ ice.AddrPortReaderWriter = (*udpDemux)(nil)
)

// unmapped is a as the demux keys it: an IPv4-mapped IPv6 address (a dual-stack socket's) as IPv4.
func unmapped(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

func newUDPDemux(c *net.UDPConn) *udpDemux {
	return &udpDemux{conn: c, byAddr: map[netip.AddrPort]*endpoint{}, byUfrag: map[string]*endpoint{}}
}

// ReadFromAddrPort returns the next packet that is pion's.
func (u *udpDemux) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := u.conn.ReadFromUDPAddrPort(b)
		if err != nil || u.n.Load() == 0 {
			return n, from, err
		}
		if ep := u.lookup(from, b[:n]); ep != nil {
			ep.receive(b[:n], from)
			continue
		}
		return n, from, nil
	}
}

// lookup finds the endpoint a packet is for: by its source address, or, for a binding request from an
// address no endpoint has, by the username fragment it names.
func (u *udpDemux) lookup(from netip.AddrPort, b []byte) *endpoint {
	key := unmapped(from)
	u.mu.RLock()
	ep := u.byAddr[key]
	u.mu.RUnlock()
	if ep != nil || len(b) == 0 || b[0] > 3 || !stun.IsMessage(b) {
		return ep
	}
	// RFC 5389 §15.3: USERNAME is "<the answer's ufrag>:<the offer's ufrag>" in a request to the answerer.
	var m stun.Message
	m.Raw = b
	if m.Decode() != nil {
		return nil
	}
	name, err := m.Get(stun.AttrUsername)
	if err != nil {
		return nil
	}
	local, _, _ := bytes.Cut(name, []byte{':'})
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.byUfrag[string(local)]
}

// WriteToAddrPort writes pion's packets, except to a detached subscription.
func (u *udpDemux) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if u.n.Load() != 0 {
		key := unmapped(to)
		u.mu.RLock()
		ep := u.byAddr[key]
		u.mu.RUnlock()
		if ep != nil {
			return len(b), nil
		}
	}
	return u.conn.WriteToUDPAddrPort(b, to)
}

func (u *udpDemux) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := u.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

func (u *udpDemux) WriteTo(b []byte, to net.Addr) (int, error) {
	ua, ok := to.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("media: not a UDP address")
	}
	return u.WriteToAddrPort(b, ua.AddrPort())
}

func (u *udpDemux) Close() error                      { return u.conn.Close() }
func (u *udpDemux) LocalAddr() net.Addr               { return u.conn.LocalAddr() }
func (u *udpDemux) SetReadDeadline(t time.Time) error { return u.conn.SetReadDeadline(t) }
func (u *udpDemux) SetDeadline(t time.Time) error     { return u.conn.SetReadDeadline(t) }

// SetWriteDeadline does nothing: the socket is every connection's. pion's UDP mux sets a write deadline
// of now on it to interrupt one closing ICE agent's write, and every other write in that moment fails
// with it, the direct path's packets and other subscribers' DTLS flights among them (a join then waits
// for DTLS's 1 s retransmission; docs/BENCHMARKS.md, "Sixth pass", where each subscription leaving pion
// closed a connection). A UDP write waits at most for room in the send buffer, so nothing needs it.
func (u *udpDemux) SetWriteDeadline(time.Time) error { return nil }

func (u *udpDemux) add(ep *endpoint) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.byAddr[ep.addr] = ep
	u.byUfrag[ep.ufrag] = ep
	u.n.Store(int32(len(u.byAddr)))
}

func (u *udpDemux) remove(ep *endpoint) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byAddr[ep.addr] == ep {
		delete(u.byAddr, ep.addr)
	}
	if u.byUfrag[ep.ufrag] == ep {
		delete(u.byUfrag, ep.ufrag)
	}
	u.n.Store(int32(len(u.byAddr)))
}

// move follows a subscriber to a new address it was nominated from (RFC 8445 §7.3.1.5: the controlled
// agent takes the pair the controlling one nominates). Only the read goroutine moves an endpoint.
func (u *udpDemux) move(ep *endpoint, to netip.AddrPort) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byAddr[ep.addr] != ep {
		return // removed meanwhile
	}
	delete(u.byAddr, ep.addr)
	ep.addr = to
	u.byAddr[to] = ep
	ep.d.addr.Store(&to)
}

// stale lists the endpoints that have heard nothing authenticated from their subscriber since before.
func (u *udpDemux) stale(before int64) []*endpoint {
	u.mu.RLock()
	defer u.mu.RUnlock()
	var out []*endpoint
	for _, ep := range u.byAddr {
		if ep.seen.Load() < before {
			out = append(out, ep)
		}
	}
	return out
}

// endpoint is a detached subscription's state beyond its directSender's: what answers the subscriber's
// consent checks, opens its SRTCP and ends its DTLS association. Its fields are written before the demux
// has it and, for addr and the decryption scratch, then only by the mux's read goroutine (addr also under
// the demux's lock).
type endpoint struct {
	d                  *directSender
	addr               netip.AddrPort // unmapped, as the demux keys it
	ufrag, pwd, remote string         // the answer's ICE credentials and the offer's username fragment
	in                 *srtp.Context  // the subscriber's SRTCP
	dtls               dtlsRecordKeys
	seen               atomic.Int64 // unix nanoseconds of the last authenticated packet
	scratch            []byte
}

// dtlsRecordKeys are what seals and opens the association's records once the handshake is over (RFC
// 5246 §6.3's key block): kept as keys, the cipher is only made to end the association.
type dtlsRecordKeys struct {
	local, localIV, remote, remoteIV []byte
}

func (k dtlsRecordKeys) cipher() (*ciphersuite.GCM, error) {
	return ciphersuite.NewGCM(k.local, k.localIV, k.remote, k.remoteIV)
}

// closeSeq is the sequence number of the close_notify openstage sends in epoch 1: above any pion's DTLS
// used there (the Finished message and its retransmissions; a subscription has no data channel), so the
// subscriber's replay window takes it (RFC 6347 §4.1.2.6).
const closeSeq = 1 << 32

// recordKeys derives the server's and the client's record keys from the handshake's secrets, for the AES
// GCM suites (RFC 5288: no MAC key, a 4-byte implicit IV); the others are not detached.
func (k *dtlsSecrets) recordKeys() (dtlsRecordKeys, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	keyLen := 0
	h := prf.HashFunc(nil)
	switch k.suite {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:
		keyLen, h = 16, sha256.New
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		keyLen, h = 32, sha512.New384
	default:
		return dtlsRecordKeys{}, errors.New("media: the DTLS cipher suite is not AES-GCM")
	}
	if k.master == nil {
		return dtlsRecordKeys{}, errNoSecrets
	}
	keys, err := prf.GenerateEncryptionKeys(k.master, k.clientRandom, k.serverRandom, 0, keyLen, 4, h)
	if err != nil {
		return dtlsRecordKeys{}, err
	}
	// openstage is the server (SetAnsweringDTLSRole).
	return dtlsRecordKeys{local: keys.ServerWriteKey, localIV: keys.ServerWriteIV, remote: keys.ClientWriteKey, remoteIV: keys.ClientWriteIV}, nil
}

// srtcpIn is the context that opens the subscriber's SRTCP, with replay protection (a replayed PLI would
// cost the publisher a keyframe).
func (k *dtlsSecrets) srtcpIn() (*srtp.Context, error) {
	cfg, err := k.srtpConfig()
	if err != nil {
		return nil, err
	}
	return srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile, srtp.SRTCPReplayProtection(64))
}

// iceCredentials reads the ICE username fragment and password of a description (RFC 8839 §5.4), from its
// first media section or the session.
func iceCredentials(desc string) (ufrag, pwd string, err error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(desc); err != nil {
		return "", "", err
	}
	ufrag, _ = d.Attribute("ice-ufrag")
	pwd, _ = d.Attribute("ice-pwd")
	if len(d.MediaDescriptions) > 0 {
		if u, ok := d.MediaDescriptions[0].Attribute("ice-ufrag"); ok {
			ufrag = u
		}
		if p, ok := d.MediaDescriptions[0].Attribute("ice-pwd"); ok {
			pwd = p
		}
	}
	if ufrag == "" {
		return "", "", errors.New("media: no ICE credentials in the description")
	}
	// Copies: the attributes are slices of desc, which a detached subscription would otherwise keep whole.
	return strings.Clone(ufrag), strings.Clone(pwd), nil
}

// receive handles one packet from the subscriber, on the mux's read goroutine: by its first byte (RFC
// 7983 §7), STUN, DTLS or SRTCP (RFC 5761 §4: RTCP packet types 192-223). Anything else, or anything that
// does not authenticate, is dropped.
func (ep *endpoint) receive(b []byte, from netip.AddrPort) {
	switch {
	case b[0] <= 3:
		ep.stun(b, from)
	case unmapped(from) != ep.addr:
		// DTLS and SRTCP only from the selected address.
	case b[0] >= 20 && b[0] <= 63:
		ep.dtlsRecord(b)
	case b[0] >= 128 && b[0] <= 191 && len(b) >= 2 && b[1] >= 192 && b[1] <= 223:
		ep.srtcp(b)
	}
}

func (ep *endpoint) stun(b []byte, from netip.AddrPort) {
	var m stun.Message
	m.Raw = b
	if m.Decode() != nil || m.Type != stun.BindingRequest {
		return
	}
	name, err := m.Get(stun.AttrUsername)
	if err != nil || string(name) != ep.ufrag+":"+ep.remote {
		return
	}
	integrity := stun.NewShortTermIntegrity(ep.pwd)
	if integrity.Check(&m) != nil {
		return
	}
	ep.seen.Store(time.Now().UnixNano())
	if to := unmapped(from); to != ep.addr && m.Contains(stun.AttrUseCandidate) {
		ep.d.sfu.demux.move(ep, to)
	}
	resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())}, integrity, stun.Fingerprint)
	if err != nil {
		return
	}
	_, _ = ep.d.sfu.udpConn.WriteToUDPAddrPort(resp.Raw, from)
}

// dtlsRecord ends the subscription on an alert from the subscriber that opens with the association's
// keys (its close_notify, or a fatal alert: either way it is gone).
func (ep *endpoint) dtlsRecord(b []byte) {
	if protocol.ContentType(b[0]) != protocol.ContentTypeAlert {
		return
	}
	var h recordlayer.Header
	if h.Unmarshal(b) != nil || h.Epoch == 0 {
		return
	}
	c, err := ep.dtls.cipher()
	if err != nil {
		return
	}
	if _, err := c.Decrypt(h, b); err != nil {
		return
	}
	ep.d.sfu.log.Debug("media: a detached subscriber closed its connection")
	ep.d.end()
}

func (ep *endpoint) srtcp(b []byte) {
	out, err := ep.in.DecryptRTCP(ep.scratch[:0], b, nil)
	if err != nil {
		return
	}
	ep.scratch = out[:0]
	ep.seen.Store(time.Now().UnixNano())
	pkts, err := rtcp.Unmarshal(out)
	if err != nil {
		return
	}
	ep.d.feedbackDetached(pkts)
}

// closeNotify tells the subscriber that openstage ended the association (RFC 5246 §7.2.1).
func (ep *endpoint) closeNotify() {
	c, err := ep.dtls.cipher()
	if err != nil {
		return
	}
	rec := recordlayer.RecordLayer{
		Header:  recordlayer.Header{Version: protocol.Version1_2, Epoch: 1, SequenceNumber: closeSeq},
		Content: &alert.Alert{Level: alert.Warning, Description: alert.CloseNotify},
	}
	raw, err := rec.Marshal()
	if err != nil {
		return
	}
	sealed, err := c.Encrypt(&rec, raw)
	if err != nil {
		return
	}
	_, _ = ep.d.sfu.udpConn.WriteToUDPAddrPort(sealed, *ep.d.addr.Load())
}
