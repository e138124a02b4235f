package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// stmter hands out prepared statements: the read pool's, or a write transaction's. detach gives the context
// the statements run with.
type stmter interface {
	stmt(ctx context.Context, id stmtID) *sql.Stmt
	detach(ctx context.Context) context.Context
}

type poolStmts struct {
	stmts *[numStmts]*sql.Stmt
	pages *pagePool // the list pages' own connections (pages.go)
}

func (p poolStmts) stmt(_ context.Context, id stmtID) *sql.Stmt { return p.stmts[id] }

// detach: a read outside a transaction may be interrupted when its caller gives up.
func (poolStmts) detach(ctx context.Context) context.Context { return ctx }

// reads implements store.Reader over a stmter; Store and tx embed it.
type reads struct{ q stmter }

func (r reads) query(ctx context.Context, id stmtID, args ...any) (*sql.Rows, error) {
	ctx = r.q.detach(ctx)
	return r.q.stmt(ctx, id).QueryContext(ctx, args...)
}

func (r reads) queryRow(ctx context.Context, id stmtID, args ...any) *sql.Row {
	ctx = r.q.detach(ctx)
	return r.q.stmt(ctx, id).QueryRowContext(ctx, args...)
}

// limit is how many rows a page reads: no more than Limit, all when Limit is not positive.
func limit(p store.Page) int {
	if p.Limit <= 0 {
		return -1
	}
	return p.Limit
}

type scanner interface{ Scan(dest ...any) error }

// The scanners read into plain strings and int64s, which database/sql assigns without reflection, and convert
// afterwards: scanning straight into the ivs named string types costs a reflect.Value.Set per column.

func scanStage(sc scanner) (ivs.Stage, error) {
	var id, name, active, recID, recDoc string
	var created int64
	if err := sc.Scan(&id, &name, &active, &created, &recID, &recDoc); err != nil {
		return ivs.Stage{}, err
	}
	rec, err := store.DecodeRecording(recID, recDoc)
	return ivs.Stage{ID: ivs.StageID(id), Name: name, ActiveSessionID: ivs.SessionID(active), CreatedAt: fromNanos(created),
		Recording: rec}, err
}

func scanSession(sc scanner) (ivs.Session, error) {
	var stage, id string
	var start, end int64
	err := sc.Scan(&stage, &id, &start, &end)
	return ivs.Session{StageID: ivs.StageID(stage), ID: ivs.SessionID(id), StartTime: fromNanos(start), EndTime: fromNanos(end)}, err
}

func scanParticipant(sc scanner) (ivs.Participant, error) {
	var stage, session, id, state, attrs, protocol string
	var joined, published int64
	var p ivs.Participant
	c := &p.Client
	var recState string
	err := sc.Scan(&stage, &session, &id, &p.UserID, &state, &joined, &attrs, &published,
		&c.ISPName, &c.OSName, &c.OSVersion, &c.BrowserName, &c.BrowserVersion, &c.SDKVersion, &protocol,
		&p.Recording.BucketName, &p.Recording.Prefix, &recState)
	if err != nil {
		return p, err
	}
	p.Recording.State = ivs.RecordingState(recState)
	if p.Recording.State == ivs.RecordingDisabled {
		p.Recording.State = "" // the zero value is DISABLED (ivs.ParticipantRecording)
	}
	p.StageID, p.SessionID, p.ID = ivs.StageID(stage), ivs.SessionID(session), ivs.ParticipantID(id)
	p.State, p.Published, c.Protocol = ivs.ParticipantState(state), published != 0, ivs.Protocol(protocol)
	p.FirstJoinTime = fromNanos(joined)
	p.Attributes = map[string]string{}
	if attrs != "" && attrs != "{}" {
		if err := json.Unmarshal([]byte(attrs), &p.Attributes); err != nil {
			return p, fmt.Errorf("participant %s attributes: %w", p.ID, err)
		}
	}
	return p, nil
}

func scanPublicKey(sc scanner) (ivs.PublicKey, error) {
	var id, name, material, fingerprint string
	var created int64
	err := sc.Scan(&id, &name, &material, &fingerprint, &created)
	return ivs.PublicKey{ID: ivs.PublicKeyID(id), Name: name, Material: material, Fingerprint: fingerprint, CreatedAt: fromNanos(created)}, err
}

// list runs a query and scans its rows, at most n of them (all when n < 0). Stopping early costs
// nothing: SQLite produces rows as they are stepped.
func list[T any](ctx context.Context, r reads, what string, n int, scan func(scanner) (T, error), id stmtID, args ...any) ([]T, error) {
	rows, err := r.query(ctx, id, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list %s: %w", what, err)
	}
	defer rows.Close()
	out := make([]T, 0, min(max(n, 0), 128))
	for (n < 0 || len(out) < n) && rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list %s: %w", what, err)
	}
	return out, nil
}

// listRows is list for a rowScanner: through the page pool outside a transaction (pages.go), through
// database/sql in one.
func listRows[T any](ctx context.Context, r reads, what string, n int, row rowScanner[T], id stmtID, args ...any) ([]T, error) {
	if ps, ok := r.q.(poolStmts); ok && ps.pages != nil {
		return listPage(ctx, ps.pages, what, n, row, id, args...)
	}
	vals := make([]driver.Value, row.columns())
	dest := make([]any, len(vals))
	for i := range dest {
		dest[i] = &vals[i] // database/sql assigns a driver.Value to a *driver.Value as it is (convertAssignRows)
	}
	return list(ctx, r, what, n, func(sc scanner) (T, error) {
		if err := sc.Scan(dest...); err != nil {
			var zero T
			return zero, err
		}
		return row.value(driverRow(vals))
	}, id, args...)
}

// get scans the one row a query returns, or reports ErrNotFound.
func get[T any](row *sql.Row, scan func(scanner) (T, error), what string) (T, error) {
	v, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("sqlite: get %s: %w", what, err)
	}
	return v, nil
}

func (r reads) GetStage(ctx context.Context, id ivs.StageID) (ivs.Stage, error) {
	return get(r.queryRow(ctx, qGetStage, id), scanStage, "stage "+string(id))
}

func (r reads) ListStages(ctx context.Context, p store.Page) ([]ivs.Stage, error) {
	if p.After == nil {
		return list(ctx, r, "stages", limit(p), scanStage, qListStagesFirst)
	}
	t, err := nanos(p.After.Time)
	if err != nil {
		return nil, err
	}
	return list(ctx, r, "stages", limit(p), scanStage, qListStagesAfter, t, p.After.ID)
}

func (r reads) CountStages(ctx context.Context) (int, error) {
	var n int
	if err := r.queryRow(ctx, qCountStages).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count stages: %w", err)
	}
	return n, nil
}

func (r reads) GetSession(ctx context.Context, stage ivs.StageID, id ivs.SessionID) (ivs.Session, error) {
	return get(r.queryRow(ctx, qGetSession, stage, id), scanSession, "session "+string(stage)+"/"+string(id))
}

func (r reads) ListSessions(ctx context.Context, stage ivs.StageID, p store.Page) ([]ivs.Session, error) {
	if p.After == nil {
		return list(ctx, r, "sessions", limit(p), scanSession, qListSessionsFirst, stage)
	}
	t, err := nanos(p.After.Time)
	if err != nil {
		return nil, err
	}
	return list(ctx, r, "sessions", limit(p), scanSession, qListSessionsAfter, stage, t, p.After.ID)
}

func (r reads) ActiveSessions(ctx context.Context) ([]ivs.Session, error) {
	return list(ctx, r, "active sessions", -1, scanSession, qActiveSessions)
}

func (r reads) GetParticipant(ctx context.Context, stage ivs.StageID, session ivs.SessionID, id ivs.ParticipantID) (ivs.Participant, error) {
	return get(r.queryRow(ctx, qGetParticipant, stage, session, id), scanParticipant,
		"participant "+string(stage)+"/"+string(session)+"/"+string(id))
}

func (r reads) ListParticipants(ctx context.Context, stage ivs.StageID, session ivs.SessionID, f store.ParticipantFilter, p store.Page) ([]ivs.Participant, error) {
	variant, args, err := participantQuery(stage, session, f, p)
	if err != nil {
		return nil, err
	}
	return list(ctx, r, "participants", limit(p), scanParticipant, qListParticipants+variant, args...)
}

func (r reads) ListParticipantSummaries(ctx context.Context, stage ivs.StageID, session ivs.SessionID, f store.ParticipantFilter, p store.Page) ([]store.ParticipantSummary, error) {
	variant, args, err := participantQuery(stage, session, f, p)
	if err != nil {
		return nil, err
	}
	return listRows(ctx, r, "participant summaries", limit(p), summaryRow{}, qListParticipantSummaries+variant, args...)
}

// A rowScanner makes a T of one row of its statement, read through a columnReader: the page pool's statement
// outside a transaction (liteRows, lite.go), the driver's values inside one (driverRow). A scan function's
// Scan(&local, ...) through an interface makes each local escape to the heap, an allocation per column and
// row (a third of a ListParticipants page's allocations, profiled), and database/sql assigns an int64 to an
// *int64 through reflection; reading the columns as values does neither.
type rowScanner[T any] interface {
	columns() int
	value(cols columnReader) (T, error)
}

// columnReader reads column i of the current row; column names the column for errors.
type columnReader interface {
	text(i int, column string) (string, error)
	// symbol is text for a column of few distinct values (a state, an event name), which a reader may intern.
	symbol(i int, column string) (string, error)
	integer(i int, column string) (int64, error)
}

// driverRow is a row as the driver gives it: a string for TEXT (the row's own copy), an int64 for INTEGER.
type driverRow []driver.Value

func (r driverRow) text(i int, column string) (string, error) {
	switch s := r[i].(type) {
	case string:
		return s, nil
	case []byte:
		return string(s), nil
	}
	return "", fmt.Errorf("column %s holds %T, not text", column, r[i])
}

func (r driverRow) symbol(i int, column string) (string, error) { return r.text(i, column) }

func (r driverRow) integer(i int, column string) (int64, error) {
	n, ok := r[i].(int64)
	if !ok {
		return 0, fmt.Errorf("column %s holds %T, not an integer", column, r[i])
	}
	return n, nil
}

// summaryRow reads a ParticipantSummary (participantSummaryCols).
type summaryRow struct{}

func (summaryRow) columns() int { return 6 }

func (summaryRow) value(cols columnReader) (store.ParticipantSummary, error) {
	var s store.ParticipantSummary
	id, err1 := cols.text(0, "id")
	user, err2 := cols.text(1, "user_id")
	state, err3 := cols.symbol(2, "state")
	joined, err4 := cols.integer(3, "first_join_time")
	published, err5 := cols.integer(4, "published")
	recState, err6 := cols.symbol(5, "recording_state")
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return s, err
	}
	s = store.ParticipantSummary{ID: ivs.ParticipantID(id), UserID: user, State: ivs.ParticipantState(state),
		FirstJoinTime: fromNanos(joined), Published: published != 0, RecordingState: ivs.RecordingState(recState)}
	if s.RecordingState == ivs.RecordingDisabled {
		s.RecordingState = "" // as scanParticipant
	}
	return s, nil
}

// participantQuery picks the ListParticipants variant of a filter and a page (0 to 9, an offset from
// qListParticipants or qListParticipantSummaries) and its arguments.
func participantQuery(stage ivs.StageID, session ivs.SessionID, f store.ParticipantFilter, p store.Page) (stmtID, []any, error) {
	args := make([]any, 2, 5)
	args[0], args[1] = string(stage), string(session)
	kind := filterNone
	switch {
	case f.UserID != nil:
		kind, args = filterUser, append(args, *f.UserID)
	case f.Published != nil:
		kind, args = filterPublished, append(args, *f.Published)
	case f.State != "":
		kind, args = filterState, append(args, string(f.State))
	case f.RecordingState != "":
		kind, args = filterRecordingState, append(args, string(f.RecordingState))
	}
	after := 0
	if p.After != nil {
		t, err := nanos(p.After.Time)
		if err != nil {
			return 0, nil, err
		}
		after, args = 1, append(args, t, p.After.ID)
	}
	return stmtID(2*kind + after), args, nil
}

func (r reads) ConnectedParticipants(ctx context.Context) ([]ivs.Participant, error) {
	return list(ctx, r, "connected participants", -1, scanParticipant, qConnectedParticipants)
}

func (r reads) UnfinishedRecordings(ctx context.Context) ([]ivs.Participant, error) {
	return list(ctx, r, "unfinished recordings", -1, scanParticipant, qUnfinishedRecordings)
}

func (r reads) ListEvents(ctx context.Context, stage ivs.StageID, session ivs.SessionID, participant ivs.ParticipantID, p store.Page) ([]ivs.Event, error) {
	var after int64
	if p.After != nil {
		after = p.After.Seq
	}
	return listRows(ctx, r, "events", limit(p), eventRow{stage, session, participant}, qListEvents,
		string(stage), string(session), string(participant), after)
}

// eventRow reads the events of one participant (eventPageCols): the stage, session and participant are the
// query's own, equal (binary TEXT comparison) to what the rows hold, so they are not read back.
type eventRow struct {
	stage       ivs.StageID
	session     ivs.SessionID
	participant ivs.ParticipantID
}

func (eventRow) columns() int { return 5 }

func (r eventRow) value(cols columnReader) (ivs.Event, error) {
	seq, err1 := cols.integer(0, "seq")
	name, err2 := cols.symbol(1, "name")
	t, err3 := cols.integer(2, "time")
	remote, err4 := cols.text(3, "remote_participant_id")
	code, err5 := cols.symbol(4, "error_code")
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return ivs.Event{}, err
	}
	return ivs.Event{StageID: r.stage, SessionID: r.session, ParticipantID: r.participant, Seq: seq,
		Name: ivs.EventName(name), Time: fromNanos(t), RemoteParticipantID: ivs.ParticipantID(remote),
		ErrorCode: ivs.ErrorCode(code)}, nil
}

func (r reads) GetPublicKey(ctx context.Context, id ivs.PublicKeyID) (ivs.PublicKey, error) {
	return get(r.queryRow(ctx, qGetPublicKey, id), scanPublicKey, "public key "+string(id))
}

func (r reads) ListPublicKeys(ctx context.Context, p store.Page) ([]ivs.PublicKey, error) {
	if p.After == nil {
		return list(ctx, r, "public keys", limit(p), scanPublicKey, qListPublicKeysFirst)
	}
	t, err := nanos(p.After.Time)
	if err != nil {
		return nil, err
	}
	return list(ctx, r, "public keys", limit(p), scanPublicKey, qListPublicKeysAfter, t, p.After.ID)
}

func (r reads) CountPublicKeys(ctx context.Context) (int, error) {
	var n int
	if err := r.queryRow(ctx, qCountPublicKeys).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count public keys: %w", err)
	}
	return n, nil
}

func (r reads) Tags(ctx context.Context, arn string) (map[string]string, error) {
	rows, err := r.query(ctx, qTags, arn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: tags: %w", err)
	}
	defer rows.Close()
	tags := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("sqlite: tags: %w", err)
		}
		tags[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: tags: %w", err)
	}
	return tags, nil
}

func (r reads) Revoked(ctx context.Context, stage ivs.StageID, id ivs.ParticipantID) (bool, error) {
	var revoked bool
	if err := r.queryRow(ctx, qRevoked, stage, id).Scan(&revoked); err != nil {
		return false, fmt.Errorf("sqlite: revoked: %w", err)
	}
	return revoked, nil
}
