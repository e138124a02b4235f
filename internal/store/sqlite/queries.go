package sqlite

import "fmt"

// stmtID names one of the fixed SQL statements of the store. Every statement is prepared once per pool at Open
// (the reads on both pools, the writes on the writer pool only) and bound to a write transaction on first use
// with Tx.StmtContext, which reuses the writer connection's prepared statement.
type stmtID int

const (
	// Reads: prepared on both pools.
	qGetStage stmtID = iota
	qListStagesFirst
	qListStagesAfter
	qCountStages
	qGetSession
	qListSessionsFirst
	qListSessionsAfter
	qActiveSessions
	qGetParticipant
	qListParticipants // + 2*filterKind + after: 10 statements
	_
	_
	_
	_
	_
	_
	_
	_
	_
	qListParticipantSummaries // + 2*filterKind + after: 10 statements
	_
	_
	_
	_
	_
	_
	_
	_
	_
	qConnectedParticipants
	qUnfinishedRecordings
	qListEvents
	qGetPublicKey
	qListPublicKeysFirst
	qListPublicKeysAfter
	qCountPublicKeys
	qTags
	qRevoked
	qSecret
	qGetStorageConfiguration
	qListStorageConfigurationsFirst
	qListStorageConfigurationsAfter
	qCountStorageConfigurations
	qStagesUsingStorageConfiguration

	// Writes: prepared on the writer pool only.
	qInsertStage
	qUpdateStage
	qDeleteStage
	qDeleteStageSessions
	qDeleteStageParticipants
	qDeleteStageEvents
	qDeleteStageRevocations
	qInsertSession
	qUpdateSession
	qPutParticipant
	qLastSeq
	qAppendEvent
	qInsertPublicKey
	qDeletePublicKey
	qMergeTag
	qRemoveTag
	qDeleteTags
	qRevoke
	qEndedSessions
	qDeleteSessionEvents
	qDeleteSessionParticipants
	qDeleteSession
	qInsertSecret
	qSavepoint
	qReleaseSavepoint
	qRollbackToSavepoint
	qDataVersion
	qInsertStorageConfiguration
	qDeleteStorageConfiguration
	qSetParticipantRecording
	qAppendChunk

	numStmts
	firstWrite = qInsertStage
)

// Participant filter kinds, in the order of the qListParticipants variants.
const (
	filterNone = iota
	filterUser
	filterPublished
	filterState
	filterRecordingState
)

// The list statements have no LIMIT: the reader stops stepping after the page's rows (read.go, list). A
// bound "LIMIT ?" makes SQLite (3.47+) re-prepare the statement on every execution, because the query
// planner takes the bound limit into account: a sixth of a page's cost, profiled. The orders are those of
// the indexes, so no plan sorts (TestListPlansUseIndexOrder).
const (
	stageCols       = `id, name, active_session_id, created_at, recording_storage_configuration_id, recording`
	sessionCols     = `stage_id, id, start_time, end_time`
	participantCols = `stage_id, session_id, id, user_id, state, first_join_time, attributes, published,
		isp_name, os_name, os_version, browser_name, browser_version, sdk_version, protocol`
	// What a participant read returns: the columns PutParticipant writes, and the recording (migration 0005).
	participantReadCols = participantCols + `, recording_bucket, recording_prefix, recording_state`
	// What a participant summary reads (store.ParticipantSummary): the stage and session are the query's own,
	// and every index of the list's orders holds these columns (migration 0006), so a page never reads the table.
	participantSummaryCols = `id, user_id, state, first_join_time, published, recording_state`
	eventCols              = `stage_id, session_id, participant_id, seq, name, time, remote_participant_id, error_code`
	// What an events page reads (read.go, eventRow): the stage, session and participant are the query's own.
	eventPageCols = `seq, name, time, remote_participant_id, error_code`
	keyCols       = `id, name, material, fingerprint, created_at`
	// Storage configurations.
	storageCols = `id, name, bucket_name, created_at`
)

var stmtSQL [numStmts]string

func init() {
	q := &stmtSQL
	q[qGetStage] = `SELECT ` + stageCols + ` FROM stages WHERE id = ?`
	q[qListStagesFirst] = `SELECT ` + stageCols + ` FROM stages ORDER BY created_at, id`
	q[qListStagesAfter] = `SELECT ` + stageCols + ` FROM stages WHERE (created_at, id) > (?, ?) ORDER BY created_at, id`
	q[qCountStages] = `SELECT COUNT(*) FROM stages`

	q[qGetSession] = `SELECT ` + sessionCols + ` FROM sessions WHERE stage_id = ? AND id = ?`
	q[qListSessionsFirst] = `SELECT ` + sessionCols + ` FROM sessions WHERE stage_id = ?
		ORDER BY start_time DESC, id DESC`
	q[qListSessionsAfter] = `SELECT ` + sessionCols + ` FROM sessions WHERE stage_id = ? AND (start_time, id) < (?, ?)
		ORDER BY start_time DESC, id DESC`
	q[qActiveSessions] = `SELECT ` + sessionCols + ` FROM sessions WHERE end_time = 0 ORDER BY stage_id, start_time, id`

	q[qGetParticipant] = `SELECT ` + participantReadCols + ` FROM participants WHERE stage_id = ? AND session_id = ? AND id = ?`
	for kind, cond := range []string{
		filterNone:           ``,
		filterUser:           ` AND user_id = ?`,
		filterPublished:      ` AND published = ?`,
		filterState:          ` AND state = ?`,
		filterRecordingState: ` AND recording_state = ?`,
	} {
		for after, keyset := range []string{``, ` AND (first_join_time, id) > (?, ?)`} {
			where := ` FROM participants WHERE stage_id = ? AND session_id = ?` + cond + keyset + ` ORDER BY first_join_time, id`
			q[qListParticipants+stmtID(2*kind+after)] = `SELECT ` + participantReadCols + where
			q[qListParticipantSummaries+stmtID(2*kind+after)] = `SELECT ` + participantSummaryCols + where
		}
	}
	q[qConnectedParticipants] = `SELECT ` + participantReadCols + ` FROM participants WHERE state = 'CONNECTED'
		ORDER BY stage_id, session_id, first_join_time, id`
	q[qUnfinishedRecordings] = `SELECT ` + participantReadCols + ` FROM participants
		WHERE recording_state IN ('STARTING', 'ACTIVE', 'STOPPING') ORDER BY stage_id, session_id, id`

	q[qListEvents] = `SELECT ` + eventPageCols + ` FROM events
		WHERE stage_id = ? AND session_id = ? AND participant_id = ? AND seq > ? ORDER BY seq`

	q[qGetPublicKey] = `SELECT ` + keyCols + ` FROM public_keys WHERE id = ?`
	q[qListPublicKeysFirst] = `SELECT ` + keyCols + ` FROM public_keys ORDER BY created_at, id`
	q[qListPublicKeysAfter] = `SELECT ` + keyCols + ` FROM public_keys WHERE (created_at, id) > (?, ?) ORDER BY created_at, id`
	q[qCountPublicKeys] = `SELECT COUNT(*) FROM public_keys`

	q[qTags] = `SELECT key, value FROM tags WHERE arn = ?`
	q[qRevoked] = `SELECT EXISTS (SELECT 1 FROM revocations WHERE stage_id = ? AND participant_id = ?)`
	q[qSecret] = `SELECT value FROM secrets WHERE name = ?`

	q[qInsertStage] = `INSERT INTO stages (` + stageCols + `) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	// The creation time is immutable: it is the stage's position in ListStages.
	q[qUpdateStage] = `UPDATE stages SET name = ?, active_session_id = ?, recording_storage_configuration_id = ?, recording = ?
		WHERE id = ?`
	q[qDeleteStage] = `DELETE FROM stages WHERE id = ?`
	q[qDeleteStageSessions] = `DELETE FROM sessions WHERE stage_id = ?`
	q[qDeleteStageParticipants] = `DELETE FROM participants WHERE stage_id = ?`
	q[qDeleteStageEvents] = `DELETE FROM events WHERE stage_id = ?`
	q[qDeleteStageRevocations] = `DELETE FROM revocations WHERE stage_id = ?`

	q[qInsertSession] = `INSERT INTO sessions (` + sessionCols + `) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`
	// The start time is immutable: it is the session's position in ListSessions.
	q[qUpdateSession] = `UPDATE sessions SET end_time = ? WHERE stage_id = ? AND id = ?`

	q[qPutParticipant] = `INSERT INTO participants (` + participantCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (stage_id, session_id, id) DO UPDATE SET
			user_id = excluded.user_id, state = excluded.state, first_join_time = excluded.first_join_time,
			attributes = excluded.attributes, published = excluded.published, isp_name = excluded.isp_name,
			os_name = excluded.os_name, os_version = excluded.os_version, browser_name = excluded.browser_name,
			browser_version = excluded.browser_version, sdk_version = excluded.sdk_version, protocol = excluded.protocol`
	q[qSetParticipantRecording] = `UPDATE participants SET recording_bucket = ?, recording_prefix = ?, recording_state = ?
		WHERE stage_id = ? AND session_id = ? AND id = ?`
	// The next Seq is the participant's last plus one: a b-tree seek to its last event, then a plain insert.
	// Both run inside the write transaction, which holds SQLite's write lock, so no other writer can
	// take the same Seq. (One INSERT ... SELECT MAX(seq) ... RETURNING costs more: SQLite runs an
	// INSERT that reads its own table, and a RETURNING, through temporary tables.)
	q[qLastSeq] = `SELECT COALESCE(MAX(seq), 0) FROM events WHERE stage_id = ? AND session_id = ? AND participant_id = ?`
	q[qAppendEvent] = `INSERT INTO events (` + eventCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

	q[qInsertPublicKey] = `INSERT INTO public_keys (` + keyCols + `) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	q[qDeletePublicKey] = `DELETE FROM public_keys WHERE id = ?`

	q[qMergeTag] = `INSERT INTO tags (arn, key, value) VALUES (?, ?, ?) ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value`
	q[qRemoveTag] = `DELETE FROM tags WHERE arn = ? AND key = ?`
	q[qDeleteTags] = `DELETE FROM tags WHERE arn = ?`
	q[qRevoke] = `INSERT INTO revocations (stage_id, participant_id) VALUES (?, ?) ON CONFLICT DO NOTHING`

	q[qEndedSessions] = `SELECT stage_id, id FROM sessions WHERE end_time < ? AND end_time <> 0 ORDER BY end_time LIMIT ?`
	q[qDeleteSessionEvents] = `DELETE FROM events WHERE (stage_id, session_id, participant_id, seq) IN (
		SELECT stage_id, session_id, participant_id, seq FROM events WHERE stage_id = ? AND session_id = ? LIMIT ?)`
	q[qDeleteSessionParticipants] = `DELETE FROM participants WHERE (stage_id, session_id, id) IN (
		SELECT stage_id, session_id, id FROM participants WHERE stage_id = ? AND session_id = ? LIMIT ?)`
	q[qDeleteSession] = `DELETE FROM sessions WHERE stage_id = ? AND id = ? AND end_time < ? AND end_time <> 0`
	q[qInsertSecret] = `INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING`
	// Each fn of a shared transaction but the first runs in this savepoint (group.go).
	q[qSavepoint] = `SAVEPOINT fn`
	q[qReleaseSavepoint] = `RELEASE fn`
	q[qRollbackToSavepoint] = `ROLLBACK TO fn`
	// Changes when another connection commits (seqcache.go).
	q[qDataVersion] = `PRAGMA data_version`

	q[qGetStorageConfiguration] = `SELECT ` + storageCols + ` FROM storage_configurations WHERE id = ?`
	q[qListStorageConfigurationsFirst] = `SELECT ` + storageCols + ` FROM storage_configurations ORDER BY created_at, id`
	q[qListStorageConfigurationsAfter] = `SELECT ` + storageCols + ` FROM storage_configurations
		WHERE (created_at, id) > (?, ?) ORDER BY created_at, id`
	q[qCountStorageConfigurations] = `SELECT COUNT(*) FROM storage_configurations`
	q[qStagesUsingStorageConfiguration] = `SELECT id FROM stages WHERE recording_storage_configuration_id = ? ORDER BY id`
	q[qInsertStorageConfiguration] = `INSERT INTO storage_configurations (` + storageCols + `) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`
	q[qDeleteStorageConfiguration] = `DELETE FROM storage_configurations WHERE id = ?`

	q[qAppendChunk] = appendChunkSQL // outbox.go

	for i, s := range q {
		if s == "" {
			panic(fmt.Sprintf("sqlite: statement %d has no SQL", i))
		}
	}
}
