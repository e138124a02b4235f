package media

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestTCPListenerBoundsConnections: past its limit the ICE-TCP listener closes new connections and keeps
// accepting (pion's mux would stop for good on an Accept error); closeAll ends the ones it holds.
func TestTCPListenerBoundsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newTCPListener(ln)
	l.max = 2
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	closedByServer := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return errors.Is(err, io.EOF)
	}
	a, b := dial(), dial()
	first, second := <-accepted, <-accepted
	if c := dial(); !closedByServer(c) {
		t.Fatal("a connection past the limit was not closed")
	}
	if closedByServer(a) || closedByServer(b) {
		t.Fatal("a connection within the limit was closed")
	}
	_ = first.Close() // one place frees up: the listener still accepts
	d := dial()
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("the listener stopped accepting after refusing one")
	}
	_ = second
	_ = ln.Close()
	l.closeAll()
	<-done
	if !closedByServer(b) || !closedByServer(d) {
		t.Fatal("closeAll left connections open")
	}
}
