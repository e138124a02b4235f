// Package store defines what openstage keeps and how it is read back: the Store interface the stage domain
// calls, and the errors every implementation returns. Implementations live in subpackages: sqlite (embedded,
// a file in the data dir) and postgres (shared by several openstage nodes). storetest is the conformance
// suite they all pass; teststore opens the store the tests of other packages run on.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/openstage/openstage/internal/ivs"
)

var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: an insert collided with an existing primary key.
	ErrExists = errors.New("store: already exists")
)

// Cursor is the keyset position after which a page starts: the sort key of the last row of the previous page.
// Which fields matter depends on the list: stages and public keys (Time=creation, ID), sessions (Time=start,
// ID), participants (Time=firstJoinTime, ID), events (Seq).
type Cursor struct {
	Time time.Time
	ID   string
	Seq  int64
}

// Page asks for at most Limit rows after After (from the start when After is nil).
type Page struct {
	After *Cursor
	Limit int
}

// ParticipantFilter narrows ListParticipants; at most one field is set (the API enforces it).
type ParticipantFilter struct {
	UserID    *string
	Published *bool
	State     ivs.ParticipantState // "" = any
	// RecordingState matches participant.Recording.State ("" = any; DISABLED also matches a participant
	// whose recording was never set).
	RecordingState ivs.RecordingState
}

// ParticipantSummary is a participant as a list shows it (the model's ParticipantSummary): the members of
// ivs.Participant of the same names.
type ParticipantSummary struct {
	ID             ivs.ParticipantID
	UserID         string
	State          ivs.ParticipantState
	FirstJoinTime  time.Time
	Published      bool
	RecordingState ivs.RecordingState // "" = DISABLED, as ivs.ParticipantRecording.State
}

// Summary is p as a list shows it.
func Summary(p ivs.Participant) ParticipantSummary {
	return ParticipantSummary{ID: p.ID, UserID: p.UserID, State: p.State, FirstJoinTime: p.FirstJoinTime, Published: p.Published,
		RecordingState: p.Recording.State}
}

// Reader is every read the API and the domain make. Lists are keyset-paginated in the orders of
// docs/DESIGN.md §2.4: stages and public keys by creation (oldest first), sessions newest first,
// participants by firstJoinTime, events in the order they happened (Seq).
type Reader interface {
	GetStage(ctx context.Context, id ivs.StageID) (ivs.Stage, error)
	ListStages(ctx context.Context, p Page) ([]ivs.Stage, error)
	CountStages(ctx context.Context) (int, error)

	GetSession(ctx context.Context, stage ivs.StageID, id ivs.SessionID) (ivs.Session, error)
	ListSessions(ctx context.Context, stage ivs.StageID, p Page) ([]ivs.Session, error)
	// ActiveSessions returns every session without an end time, on every stage (crash recovery).
	ActiveSessions(ctx context.Context) ([]ivs.Session, error)

	GetParticipant(ctx context.Context, stage ivs.StageID, session ivs.SessionID, id ivs.ParticipantID) (ivs.Participant, error)
	ListParticipants(ctx context.Context, stage ivs.StageID, session ivs.SessionID, f ParticipantFilter, p Page) ([]ivs.Participant, error)
	// ListParticipantSummaries is ListParticipants with only what the model's ParticipantSummary shows:
	// the same rows in the same order, read from a covering index without the rest of each row (the
	// API's ListParticipants; docs/BENCHMARKS.md, issue 16).
	ListParticipantSummaries(ctx context.Context, stage ivs.StageID, session ivs.SessionID, f ParticipantFilter, p Page) ([]ParticipantSummary, error)
	// ConnectedParticipants returns every participant in state CONNECTED, on every stage (crash recovery).
	ConnectedParticipants(ctx context.Context) ([]ivs.Participant, error)
	// UnfinishedRecordings returns every participant whose recording state is STARTING, ACTIVE or STOPPING,
	// on every stage (crash recovery: a recording that a stopped process left unfinished).
	UnfinishedRecordings(ctx context.Context) ([]ivs.Participant, error)

	ListEvents(ctx context.Context, stage ivs.StageID, session ivs.SessionID, participant ivs.ParticipantID, p Page) ([]ivs.Event, error)

	GetPublicKey(ctx context.Context, id ivs.PublicKeyID) (ivs.PublicKey, error)
	ListPublicKeys(ctx context.Context, p Page) ([]ivs.PublicKey, error)
	CountPublicKeys(ctx context.Context) (int, error)

	// Tags returns the tags of a resource ARN (empty map, not an error, when it has none).
	Tags(ctx context.Context, arn string) (map[string]string, error)

	// Revoked reports whether DisconnectParticipant barred this participant id on this stage.
	Revoked(ctx context.Context, stage ivs.StageID, id ivs.ParticipantID) (bool, error)

	GetStorageConfiguration(ctx context.Context, id ivs.StorageConfigurationID) (ivs.StorageConfiguration, error)
	// ListStorageConfigurations pages storage configurations by creation (Cursor Time=creation, ID).
	ListStorageConfigurations(ctx context.Context, p Page) ([]ivs.StorageConfiguration, error)
	CountStorageConfigurations(ctx context.Context) (int, error)
	// StagesUsingStorageConfiguration returns at most limit stages (all when limit <= 0) whose recording
	// configuration names the storage configuration, in id order: what DeleteStorageConfiguration refuses on.
	StagesUsingStorageConfiguration(ctx context.Context, id ivs.StorageConfigurationID, limit int) ([]ivs.StageID, error)
}

// Tx is one read-write transaction: all its writes land together or not at all.
//
// Decisions a transaction takes on what it read hold against every other writer, in this process or in
// another node on the same database: LockStage serialises the transactions on one stage, and CountStages,
// CountPublicKeys, ListPublicKeys, CountStorageConfigurations and Tags read through a Tx wait for the other
// transactions that made the same read to end, so that a quota or a limit checked before an insert is not
// exceeded by a concurrent one.
// (SQLite gets all of this by running one write transaction at a time; PostgreSQL by row and advisory locks.)
type Tx interface {
	Reader

	// LockStage reads a stage and holds it against concurrent writers until the transaction ends, so
	// that decisions taken on it (start a session, count publishers) are serialised per stage.
	LockStage(ctx context.Context, id ivs.StageID) (ivs.Stage, error)
	InsertStage(ctx context.Context, s ivs.Stage) error // ErrExists
	// UpdateStage writes Name, ActiveSessionID and Recording; CreatedAt is the stage's list position and
	// never changes.
	UpdateStage(ctx context.Context, s ivs.Stage) error // ErrNotFound
	// DeleteStage removes the stage with its sessions, participants, events and revocations (ErrNotFound).
	DeleteStage(ctx context.Context, id ivs.StageID) error

	InsertSession(ctx context.Context, s ivs.Session) error // ErrExists
	// UpdateSession writes EndTime; StartTime never changes.
	UpdateSession(ctx context.Context, s ivs.Session) error // ErrNotFound

	// PutParticipant inserts or replaces the participant (stage, session, id), except its Recording: a new
	// participant's is DISABLED with no bucket or prefix, and an existing one's stays as it is.
	PutParticipant(ctx context.Context, p ivs.Participant) error
	// SetParticipantRecording sets the participant's Recording (ErrNotFound when there is no such
	// participant). The recorder is its one writer, apart from PutParticipant's.
	SetParticipantRecording(ctx context.Context, stage ivs.StageID, session ivs.SessionID, id ivs.ParticipantID, r ivs.ParticipantRecording) error
	// AppendEvent stores e after every earlier event of the same participant and sets e.Seq: 1, 2, 3, ...
	// per (stage, session, participant), without gaps or duplicates even when transactions append at once.
	AppendEvent(ctx context.Context, e *ivs.Event) error

	InsertPublicKey(ctx context.Context, k ivs.PublicKey) error // ErrExists
	DeletePublicKey(ctx context.Context, id ivs.PublicKeyID) error

	// MergeTags adds or overwrites tags; RemoveTags deletes the named keys; DeleteTags deletes them all.
	MergeTags(ctx context.Context, arn string, tags map[string]string) error
	RemoveTags(ctx context.Context, arn string, keys []string) error
	DeleteTags(ctx context.Context, arn string) error

	Revoke(ctx context.Context, stage ivs.StageID, id ivs.ParticipantID) error

	InsertStorageConfiguration(ctx context.Context, c ivs.StorageConfiguration) error    // ErrExists
	DeleteStorageConfiguration(ctx context.Context, id ivs.StorageConfigurationID) error // ErrNotFound
	// LockStorageConfiguration reads a storage configuration and holds it until the transaction ends
	// against a concurrent delete (ErrNotFound when there is none): a stage that starts naming it in this
	// transaction and a DeleteStorageConfiguration that checks no stage names it are serialised.
	LockStorageConfiguration(ctx context.Context, id ivs.StorageConfigurationID) (ivs.StorageConfiguration, error)

	// AppendNotification adds n to the notification log (Outbox) and sets n.Seq. It commits with the
	// transaction, so a notification exists exactly when what it tells was written.
	AppendNotification(ctx context.Context, n *Notification) error
}

// Store is a durable store. Update runs fn in a transaction and commits when fn returns nil; a commit that
// returns nil is durable (it survives a crash of the process). fn must not call Update, and reads made
// through the Store (not the Tx) inside fn do not see fn's writes. IDs order by byte value in ties. Strings
// are stored as given, NUL and invalid UTF-8 included where a client chooses them (participant ids from
// self-signed tokens, user ids, client details, tags, key material); attributes are kept as JSON, so invalid
// UTF-8 in them reads back as U+FFFD. Several Stores may be open on one database (nodes sharing PostgreSQL,
// or processes sharing a SQLite file); each sees the others' commits.
type Store interface {
	Reader
	Update(ctx context.Context, fn func(Tx) error) error
	// DeleteEndedBefore deletes sessions that ended before t, with their participants and events
	// (the retention job). It returns how many sessions it deleted.
	DeleteEndedBefore(ctx context.Context, t time.Time) (int, error)
	// Secret returns the value stored under name or, if there is none, stores the value create makes and
	// returns it. When several callers race (several nodes starting at once), the first to store wins and
	// every caller gets the winner's value. An error from create is returned and stores nothing. It is how
	// nodes share what the server makes once, such as the token signing key.
	Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error)
	Close() error
	// Outbox reads the notification log and keeps the webhooks' deliveries (notifications.go).
	Outbox
}
