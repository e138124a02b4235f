package media

import (
	"sync"
	"time"

	"github.com/pion/transport/v4"
	"github.com/pion/transport/v4/stdnet"
)

// sharedNet is the network of every peer connection's ICE agent: the standard library's, with one list
// of the local interfaces for all of them. Without it each agent makes its own (stdnet.NewNet): a
// netlink dump per join, and about 10 KB per connection for as long as it lives (the interfaces'
// hardware addresses point into the dump; profiled, docs/BENCHMARKS.md, memory per subscription). The
// list is read again at most every netRefresh, so that an address added later still gets ICE-TCP
// candidates (UDP candidates come from the UDP mux's socket, not from this list).
type sharedNet struct {
	*stdnet.Net // sockets, dialers and resolvers: none of them looks at the interfaces

	mu  sync.Mutex
	cur *stdnet.Net
	at  time.Time
}

const netRefresh = 30 * time.Second

var _ transport.Net = (*sharedNet)(nil)

func newSharedNet() (*sharedNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &sharedNet{Net: n, cur: n, at: time.Now()}, nil
}

// current is the latest list's holder; a list is never changed once made, agents may keep reading it.
func (n *sharedNet) current() *stdnet.Net {
	n.mu.Lock()
	defer n.mu.Unlock()
	if time.Since(n.at) > netRefresh {
		n.at = time.Now() // also after a failure: the old list serves until the next try
		if fresh, err := stdnet.NewNet(); err == nil {
			n.cur = fresh
		}
	}
	return n.cur
}

func (n *sharedNet) Interfaces() ([]*transport.Interface, error) { return n.current().Interfaces() }

func (n *sharedNet) InterfaceByIndex(i int) (*transport.Interface, error) {
	return n.current().InterfaceByIndex(i)
}

func (n *sharedNet) InterfaceByName(name string) (*transport.Interface, error) {
	return n.current().InterfaceByName(name)
}
