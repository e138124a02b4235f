package media

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// tcpListener is the ICE-TCP listener: the net.Listener pion's TCP mux accepts from, keeping every
// connection it handed out until that connection closes. pion's mux waits up to 30 s for an accepted
// connection's first STUN message and, when it closes, waits for those reads too; closeAll ends them at
// once, so that shutting the SFU down never waits on a client that connected and said nothing. The port is
// open to anyone, so at most maxICETCPConns connections are held at once: past that, new ones are closed
// as soon as they are accepted, and file descriptors stay bounded whatever a flood of connections does.
const maxICETCPConns = 8192

type tcpListener struct {
	net.Listener

	max int // maxICETCPConns; tests lower it

	mu     sync.Mutex
	conns  map[*tcpConn]struct{}
	closed bool
}

func newTCPListener(ln net.Listener) *tcpListener {
	return &tcpListener{Listener: ln, max: maxICETCPConns, conns: map[*tcpConn]struct{}{}}
}

// Accept returns the next connection. pion's mux stops accepting for good at the first error, so only
// the listener's closing is returned: a connection past the limit is closed and the next one awaited, and
// a failed accept (out of file descriptors) is retried after a pause, as net/http does.
func (l *tcpListener) Accept() (net.Conn, error) {
	var pause time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			time.Sleep(pause)
			continue
		}
		pause = 0
		if tc, ok := c.(*net.TCPConn); ok {
			// Media: no Nagle delay on small RTP frames.
			_ = tc.SetNoDelay(true)
		}
		conn := &tcpConn{Conn: c, l: l}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = c.Close()
			return nil, net.ErrClosed
		}
		if len(l.conns) >= l.max {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.conns[conn] = struct{}{}
		l.mu.Unlock()
		return conn, nil
	}
}

// closeAll closes every connection the listener accepted, and refuses those it accepts from now on (the
// mux closes the listener itself).
func (l *tcpListener) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := make([]*tcpConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

type tcpConn struct {
	net.Conn
	l    *tcpListener
	once sync.Once
}

func (c *tcpConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return err
}

// transportOf is the transport of pc's selected candidate pair (what it connected over), read when the
// peer connection has connected.
func transportOf(pc *webrtc.PeerConnection) (Transport, bool) {
	dt := pc.SCTP().Transport()
	if dt == nil {
		return 0, false
	}
	pair, err := dt.ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil {
		return 0, false
	}
	if pair.Local.Protocol == webrtc.ICEProtocolTCP {
		return TransportTCP, true
	}
	return TransportUDP, true
}

// countConnection counts a peer connection that connected by its transport (Stats.Connections).
func (s *SFU) countConnection(pc *webrtc.PeerConnection) {
	if t, ok := transportOf(pc); ok {
		s.stats.Connections[t].Add(1)
	}
}
