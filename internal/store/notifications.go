package store

import (
	"context"
	"errors"
	"time"

	"github.com/openstage/openstage/internal/ivs"
)

// ErrLeaseLost: another node holds the delivery lease of a webhook endpoint (Outbox.AdvanceDelivery).
var ErrLeaseLost = errors.New("store: delivery lease held by another node")

// Notification is one entry of the notification log (docs/DESIGN.md §5.6): what a participant event or a
// session's start or end tells the webhooks and the event stream. The domain appends it in the transaction
// that writes what it tells, so a committed event always has its notification.
type Notification struct {
	// Seq is the notification's place in the log, global and increasing, set by AppendNotification. It is
	// the notification's id on the wire.
	Seq       int64
	StageID   ivs.StageID
	SessionID ivs.SessionID
	Kind      string // internal/notify's kinds: JOINED, PUBLISH_STARTED, SESSION_ENDED, ...
	Time      time.Time
	// Detail is the JSON object sent as the EventBridge event's detail.
	Detail []byte
}

// DeadLetter is a notification a webhook endpoint did not accept after every attempt.
type DeadLetter struct {
	Endpoint  string
	Seq       int64
	Attempts  int
	LastError string
	At        time.Time // when it was given up (or last replayed and given up again)
	// Replay: an operator asked for it again; the endpoint's deliverer retries it and forgets it once
	// delivered.
	Replay bool
}

// Outbox is the notification log's readers and the webhook deliveries' state.
type Outbox interface {
	// ListNotifications returns at most limit notifications with Seq > after, in Seq order. It never returns
	// a notification while one with a lower Seq may still commit: a reader that pages by the last Seq it got
	// misses none, however the writers' commits interleave.
	ListNotifications(ctx context.Context, after int64, limit int) ([]Notification, error)
	// GetNotification returns one notification (ErrNotFound).
	GetNotification(ctx context.Context, seq int64) (Notification, error)
	// LastNotification returns the highest committed Seq (0 when the log is empty).
	LastNotification(ctx context.Context) (int64, error)

	// AcquireDelivery gives owner the delivery lease of endpoint for ttl unless another owner holds an
	// unexpired one, and returns the endpoint's cursor (the last Seq it is done with). An endpoint seen for
	// the first time starts at the log's end: a new endpoint receives what happens from then on.
	AcquireDelivery(ctx context.Context, endpoint, owner string, ttl time.Duration) (cursor int64, ok bool, err error)
	// AdvanceDelivery moves the endpoint's cursor forward to cursor (never back), records dead letters and
	// forgets the replayed ones in done, and renews the lease, all at once; ErrLeaseLost if owner no longer
	// holds the lease.
	AdvanceDelivery(ctx context.Context, endpoint, owner string, cursor int64, ttl time.Duration, dead []DeadLetter, done []int64) error
	// ReleaseDelivery gives up owner's lease (nothing if another owner holds it).
	ReleaseDelivery(ctx context.Context, endpoint, owner string) error
	// DeadLetters lists the endpoint's dead letters ("" = every endpoint's), oldest notification first.
	DeadLetters(ctx context.Context, endpoint string) ([]DeadLetter, error)
	// ReplayDeadLetters marks the endpoint's dead letters seqs (all when seqs is empty) for another
	// delivery and returns how many it marked.
	ReplayDeadLetters(ctx context.Context, endpoint string, seqs []int64) (int, error)
}
