package postgres

import "github.com/jackc/pgx/v5/pgxpool"

// Test hooks for the external tests of this package.

var (
	WithMigrations    = withMigrations
	LoadMigrations    = loadMigrations
	DefaultMigrations = defaultMigrations
)

// Pools returns the write and read pools.
func (s *Store) Pools() (w, r *pgxpool.Pool) { return s.w, s.r }

// ListQueries are the keyset list queries, each with arguments that make it valid.
func ListQueries() map[string][]any {
	m := map[string][]any{
		qListStagesFirst:     {int64(10)},
		qListStagesAfter:     {int64(1), "x", int64(10)},
		qListSessionsFirst:   {"s", int64(10)},
		qListSessionsAfter:   {"s", int64(1), "x", int64(10)},
		qListEvents:          {"s", "x", []byte("p"), int64(1), int64(10)},
		qListPublicKeysFirst: {int64(10)},
		qListPublicKeysAfter: {int64(1), "x", int64(10)},
		qActiveSessions:      nil,
		qEndedSessions:       {int64(1), int64(10)},
	}
	filters := [][]any{filterNone: nil, filterUser: {[]byte("u")}, filterPublished: {true}, filterState: {"CONNECTED"}}
	for kind, f := range filters {
		args := append([]any{"s", "x"}, f...)
		m[qListParticipants[kind][0]] = append(append([]any{}, args...), int64(10))
		m[qListParticipants[kind][1]] = append(append([]any{}, args...), int64(1), []byte("p"), int64(10))
	}
	return m
}
