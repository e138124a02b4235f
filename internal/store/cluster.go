package store

import (
	"context"
	"time"

	"github.com/openstage/openstage/internal/ivs"
)

// NodeID names one openstage process among the nodes sharing a database. It is kept in the node's data dir,
// so a node that restarts is the same node and takes back its own stages at once (docs/DESIGN.md §6.2).
type NodeID string

// Node is a node's row in the registry: where it is, and its last heartbeat as the database's clock saw it.
type Node struct {
	ID        NodeID
	URL       string // how the other nodes reach it (--node-url): proxied requests and node-to-node calls
	PublicURL string // what its clients are given (--public-url); one load balancer address may serve all
	MediaAddr string // its ICE address (UDP, and TCP when on)
	StartedAt time.Time
	Heartbeat time.Time
	Alive     bool // its heartbeat is younger than the ttl asked with (the database's clock decides)
}

// Claim is the answer of Cluster.Claim: the stage's owner after the call.
type Claim struct {
	Owner Node
	// Took: the caller became the owner with this call. Previous is the owner it took the stage from (a node
	// whose heartbeat lapsed), "" when the stage had none.
	Took     bool
	Previous NodeID
}

// Cluster is the registry of nodes and stage leases that several nodes on one database coordinate through
// (docs/DESIGN.md §6.2); the database is the only shared component. Liveness is judged by the database's
// clock, so the nodes' clocks need not agree: a node is alive while its last heartbeat is younger than ttl.
// A lease has no expiry of its own: it lasts as long as its node's heartbeat, and lapses with it.
type Cluster interface {
	// Heartbeat registers n or renews its row, stamping it with the database's current time.
	Heartbeat(ctx context.Context, n Node) error
	// Leave deletes n's row and its leases (a graceful stop, after its stages ended).
	Leave(ctx context.Context, id NodeID) error
	// Nodes lists the registry, oldest first, with liveness judged against ttl.
	Nodes(ctx context.Context, ttl time.Duration) ([]Node, error)
	// Node returns one node's row (ErrNotFound).
	Node(ctx context.Context, id NodeID, ttl time.Duration) (Node, error)

	// Claim makes self the owner of the stage unless a live node other than self owns it, atomically against
	// every other claim: of concurrent claims on an unowned stage exactly one takes it. A stage that does
	// not exist is ErrNotFound.
	Claim(ctx context.Context, stage ivs.StageID, self NodeID, ttl time.Duration) (Claim, error)
	// Owner returns the stage's owner if it has a live one.
	Owner(ctx context.Context, stage ivs.StageID, ttl time.Duration) (Node, bool, error)
	// Release gives up self's lease on the stage (nothing if another node holds it).
	Release(ctx context.Context, stage ivs.StageID, self NodeID) error
	// Owned lists the stages whose lease names the node.
	Owned(ctx context.Context, id NodeID) ([]ivs.StageID, error)
	// Orphans lists the stages that need a new owner to end what they left: leased to a node whose
	// heartbeat lapsed, or with an active session and no lease at all (a store from before leases).
	Orphans(ctx context.Context, ttl time.Duration) ([]ivs.StageID, error)
}
