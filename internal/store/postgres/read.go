package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// querier is what reads need: a pool (reads outside a transaction) or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// reads implements store.Reader over a querier; Store and tx embed it.
type reads struct{ q querier }

// limit maps Page.Limit to SQL: LIMIT NULL is no limit.
func limit(p store.Page) any {
	if p.Limit <= 0 {
		return nil
	}
	return int64(p.Limit)
}

// pageCap is the capacity to allocate for a page's rows.
func pageCap(p store.Page) int { return min(max(p.Limit, 0), 128) }

type scanner interface{ Scan(dest ...any) error }

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
	var stage, session, state, attrs, protocol string
	var id, user, isp, osName, osVersion, browser, browserVersion, sdk, recPrefix []byte
	var recBucket, recState string
	var joined int64
	var p ivs.Participant
	err := sc.Scan(&stage, &session, &id, &user, &state, &joined, &attrs, &p.Published,
		&isp, &osName, &osVersion, &browser, &browserVersion, &sdk, &protocol, &recBucket, &recPrefix, &recState)
	if err != nil {
		return p, err
	}
	p.Recording = ivs.ParticipantRecording{BucketName: recBucket, Prefix: string(recPrefix), State: ivs.RecordingState(recState)}
	if p.Recording.State == ivs.RecordingDisabled {
		p.Recording.State = "" // the zero value is DISABLED (ivs.ParticipantRecording)
	}
	p.StageID, p.SessionID, p.ID = ivs.StageID(stage), ivs.SessionID(session), ivs.ParticipantID(id)
	p.UserID, p.State, p.FirstJoinTime = string(user), ivs.ParticipantState(state), fromNanos(joined)
	p.Client = ivs.ClientInfo{ISPName: string(isp), OSName: string(osName), OSVersion: string(osVersion),
		BrowserName: string(browser), BrowserVersion: string(browserVersion), SDKVersion: string(sdk), Protocol: ivs.Protocol(protocol)}
	p.Attributes = map[string]string{}
	if attrs != "" && attrs != "{}" {
		if err := json.Unmarshal([]byte(attrs), &p.Attributes); err != nil {
			return p, fmt.Errorf("participant %s attributes: %w", p.ID, err)
		}
	}
	return p, nil
}

func scanEvent(sc scanner) (ivs.Event, error) {
	var stage, session, name, code string
	var participant, remote []byte
	var seq, t int64
	err := sc.Scan(&stage, &session, &participant, &seq, &name, &t, &remote, &code)
	return ivs.Event{
		StageID: ivs.StageID(stage), SessionID: ivs.SessionID(session), ParticipantID: ivs.ParticipantID(participant),
		Seq: seq, Name: ivs.EventName(name), Time: fromNanos(t), RemoteParticipantID: ivs.ParticipantID(remote),
		ErrorCode: ivs.ErrorCode(code),
	}, err
}

func scanPublicKey(sc scanner) (ivs.PublicKey, error) {
	var id, name, fingerprint string
	var material []byte
	var created int64
	err := sc.Scan(&id, &name, &material, &fingerprint, &created)
	return ivs.PublicKey{ID: ivs.PublicKeyID(id), Name: name, Material: string(material), Fingerprint: fingerprint, CreatedAt: fromNanos(created)}, err
}

// list runs a query and scans every row.
func list[T any](ctx context.Context, r reads, what string, capHint int, scan func(scanner) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := r.q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list %s: %w", what, err)
	}
	defer rows.Close()
	out := make([]T, 0, capHint)
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list %s: %w", what, err)
	}
	return out, nil
}

// get scans the one row a query returns, or reports ErrNotFound.
func get[T any](row pgx.Row, scan func(scanner) (T, error), what string) (T, error) {
	v, err := scan(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("postgres: get %s: %w", what, err)
	}
	return v, nil
}

func (r reads) count(ctx context.Context, what, sql string) (int, error) {
	var n int64
	if err := r.q.QueryRow(ctx, sql).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count %s: %w", what, err)
	}
	return int(n), nil
}

func (r reads) GetStage(ctx context.Context, id ivs.StageID) (ivs.Stage, error) {
	return get(r.q.QueryRow(ctx, qGetStage, string(id)), scanStage, "stage "+string(id))
}

func (r reads) ListStages(ctx context.Context, p store.Page) ([]ivs.Stage, error) {
	if p.After == nil {
		return list(ctx, r, "stages", pageCap(p), scanStage, qListStagesFirst, limit(p))
	}
	t, err := nanos(p.After.Time)
	if err != nil {
		return nil, err
	}
	return list(ctx, r, "stages", pageCap(p), scanStage, qListStagesAfter, t, p.After.ID, limit(p))
}

func (r reads) CountStages(ctx context.Context) (int, error) {
	return r.count(ctx, "stages", qCountStages)
}

func (r reads) GetSession(ctx context.Context, stage ivs.StageID, id ivs.SessionID) (ivs.Session, error) {
	return get(r.q.QueryRow(ctx, qGetSession, string(stage), string(id)), scanSession, "session "+string(stage)+"/"+string(id))
}

func (r reads) ListSessions(ctx context.Context, stage ivs.StageID, p store.Page) ([]ivs.Session, error) {
	if p.After == nil {
		return list(ctx, r, "sessions", pageCap(p), scanSession, qListSessionsFirst, string(stage), limit(p))
	}
	t, err := nanos(p.After.Time)
	if err != nil {
		return nil, err
	}
	return list(ctx, r, "sessions", pageCap(p), scanSession, qListSessionsAfter, string(stage), t, p.After.ID, limit(p))
}

func (r reads) ActiveSessions(ctx context.Context) ([]ivs.Session, error) {
	return list(ctx, r, "active sessions", 0, scanSession, qActiveSessions)
}

func (r reads) GetParticipant(ctx context.Context, stage ivs.StageID, session ivs.SessionID, id ivs.ParticipantID) (ivs.Participant, error) {
	return get(r.q.QueryRow(ctx, qGetParticipant, string(stage), string(session), bin(string(id))), scanParticipant,
		"participant "+string(stage)+"/"+string(session)+"/"+string(id))
}

func (r reads) ListParticipants(ctx context.Context, stage ivs.StageID, session ivs.SessionID, f store.ParticipantFilter, p store.Page) ([]ivs.Participant, error) {
	kind, after, args, err := participantQuery(stage, session, f, p)
	if err != nil {
		return nil, err
	}
	return list(ctx, r, "participants", pageCap(p), scanParticipant, qListParticipants[kind][after], args...)
}

func (r reads) ListParticipantSummaries(ctx context.Context, stage ivs.StageID, session ivs.SessionID, f store.ParticipantFilter, p store.Page) ([]store.ParticipantSummary, error) {
	kind, after, args, err := participantQuery(stage, session, f, p)
	if err != nil {
		return nil, err
	}
	return list(ctx, r, "participant summaries", pageCap(p), scanParticipantSummary, qListParticipantSummaries[kind][after], args...)
}

func scanParticipantSummary(sc scanner) (store.ParticipantSummary, error) {
	var id, user []byte
	var state, recState string
	var joined int64
	var s store.ParticipantSummary
	if err := sc.Scan(&id, &user, &state, &joined, &s.Published, &recState); err != nil {
		return s, err
	}
	s.ID, s.UserID, s.State, s.FirstJoinTime = ivs.ParticipantID(id), string(user), ivs.ParticipantState(state), fromNanos(joined)
	if s.RecordingState = ivs.RecordingState(recState); s.RecordingState == ivs.RecordingDisabled {
		s.RecordingState = "" // as scanParticipant
	}
	return s, nil
}

// participantQuery picks the ListParticipants variant of a filter and a page and its arguments.
func participantQuery(stage ivs.StageID, session ivs.SessionID, f store.ParticipantFilter, p store.Page) (kind, after int, args []any, err error) {
	args = []any{string(stage), string(session)}
	kind = filterNone
	switch {
	case f.UserID != nil:
		kind, args = filterUser, append(args, bin(*f.UserID))
	case f.Published != nil:
		kind, args = filterPublished, append(args, *f.Published)
	case f.State != "":
		kind, args = filterState, append(args, string(f.State))
	case f.RecordingState != "":
		kind, args = filterRecordingState, append(args, string(f.RecordingState))
	}
	if p.After != nil {
		t, err := nanos(p.After.Time)
		if err != nil {
			return 0, 0, nil, err
		}
		after, args = 1, append(args, t, bin(p.After.ID))
	}
	return kind, after, append(args, limit(p)), nil
}

func (r reads) ConnectedParticipants(ctx context.Context) ([]ivs.Participant, error) {
	return list(ctx, r, "connected participants", 0, scanParticipant, qConnectedParticipants)
}

func (r reads) UnfinishedRecordings(ctx context.Context) ([]ivs.Participant, error) {
	return list(ctx, r, "unfinished recordings", 0, scanParticipant, qUnfinishedRecordings)
}

func (r reads) ListEvents(ctx context.Context, stage ivs.StageID, session ivs.SessionID, participant ivs.ParticipantID, p store.Page) ([]ivs.Event, error) {
	var after int64
	if p.After != nil {
		after = p.After.Seq
	}
	return list(ctx, r, "events", pageCap(p), scanEvent, qListEvents, string(stage), string(session), bin(string(participant)), after, limit(p))
}

func (r reads) GetPublicKey(ctx context.Context, id ivs.PublicKeyID) (ivs.PublicKey, error) {
	return get(r.q.QueryRow(ctx, qGetPublicKey, string(id)), scanPublicKey, "public key "+string(id))
}

func (r reads) ListPublicKeys(ctx context.Context, p store.Page) ([]ivs.PublicKey, error) {
	if p.After == nil {
		return list(ctx, r, "public keys", pageCap(p), scanPublicKey, qListPublicKeysFirst, limit(p))
	}
	t, err := nanos(p.After.Time)
	if err != nil {
		return nil, err
	}
	return list(ctx, r, "public keys", pageCap(p), scanPublicKey, qListPublicKeysAfter, t, p.After.ID, limit(p))
}

func (r reads) CountPublicKeys(ctx context.Context) (int, error) {
	return r.count(ctx, "public keys", qCountPublicKeys)
}

func (r reads) Tags(ctx context.Context, arn string) (map[string]string, error) {
	rows, err := r.q.Query(ctx, qTags, arn)
	if err != nil {
		return nil, fmt.Errorf("postgres: tags: %w", err)
	}
	defer rows.Close()
	tags := map[string]string{}
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("postgres: tags: %w", err)
		}
		tags[string(k)] = string(v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: tags: %w", err)
	}
	return tags, nil
}

func (r reads) Revoked(ctx context.Context, stage ivs.StageID, id ivs.ParticipantID) (bool, error) {
	var revoked bool
	if err := r.q.QueryRow(ctx, qRevoked, string(stage), bin(string(id))).Scan(&revoked); err != nil {
		return false, fmt.Errorf("postgres: revoked: %w", err)
	}
	return revoked, nil
}
