package media

import (
	"testing"
	"time"
)

// TestSharedNetOneListForAll: every agent gets the same interface list (no netlink dump per peer
// connection), and a list older than netRefresh is read again.
func TestSharedNetOneListForAll(t *testing.T) {
	n, err := newSharedNet()
	if err != nil {
		t.Fatal(err)
	}
	a, err := n.Interfaces()
	if err != nil || len(a) == 0 {
		t.Fatalf("interfaces: %v, %v", a, err)
	}
	b, _ := n.Interfaces()
	if &a[0] != &b[0] {
		t.Fatal("a second agent got a list of its own")
	}
	n.mu.Lock()
	n.at = time.Now().Add(-2 * netRefresh)
	n.mu.Unlock()
	c, _ := n.Interfaces()
	if len(c) == 0 || &c[0] == &a[0] {
		t.Fatal("an old list was not read again")
	}
	if _, err := n.InterfaceByName(c[0].Name); err != nil {
		t.Fatal(err)
	}
}
