package postgres

import "strconv"

// The store's SQL. pgx prepares each statement on first use on a connection and reuses it from its
// per-connection cache, so every query here is a fixed string (the participant filters are eight variants
// rather than one built per call).

const (
	stageCols       = `id, name, active_session_id, created_at, recording_storage_configuration_id, recording`
	sessionCols     = `stage_id, id, start_time, end_time`
	participantCols = `stage_id, session_id, id, user_id, state, first_join_time, attributes, published,
		isp_name, os_name, os_version, browser_name, browser_version, sdk_version, protocol`
	eventCols = `stage_id, session_id, participant_id, seq, name, time, remote_participant_id, error_code`
	keyCols   = `id, name, material, fingerprint, created_at`
	// What a participant read returns: the columns PutParticipant writes, and the recording (migration 0005).
	participantReadCols = participantCols + `, recording_bucket, recording_prefix, recording_state`
)

// A NULL LIMIT is no limit (Page.Limit <= 0).
const (
	qGetStage         = `SELECT ` + stageCols + ` FROM stages WHERE id = $1`
	qLockStage        = qGetStage + ` FOR UPDATE`
	qListStagesFirst  = `SELECT ` + stageCols + ` FROM stages ORDER BY created_at, id LIMIT $1`
	qListStagesAfter  = `SELECT ` + stageCols + ` FROM stages WHERE (created_at, id) > ($1, $2) ORDER BY created_at, id LIMIT $3`
	qCountStages      = `SELECT COUNT(*) FROM stages`
	qInsertStage      = `INSERT INTO stages (` + stageCols + `) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`
	qUpdateStage      = `UPDATE stages SET name = $1, active_session_id = $2, recording_storage_configuration_id = $3, recording = $4 WHERE id = $5` // created_at never changes
	qDeleteStage      = `DELETE FROM stages WHERE id = $1`
	qDeleteStageSess  = `DELETE FROM sessions WHERE stage_id = $1`
	qDeleteStageParts = `DELETE FROM participants WHERE stage_id = $1`
	qDeleteStageEvs   = `DELETE FROM events WHERE stage_id = $1`
	qDeleteStageSeqs  = `DELETE FROM event_seqs WHERE stage_id = $1`
	qDeleteStageRevs  = `DELETE FROM revocations WHERE stage_id = $1`

	qGetSession        = `SELECT ` + sessionCols + ` FROM sessions WHERE stage_id = $1 AND id = $2`
	qListSessionsFirst = `SELECT ` + sessionCols + ` FROM sessions WHERE stage_id = $1
		ORDER BY start_time DESC, id DESC LIMIT $2`
	qListSessionsAfter = `SELECT ` + sessionCols + ` FROM sessions WHERE stage_id = $1 AND (start_time, id) < ($2, $3)
		ORDER BY start_time DESC, id DESC LIMIT $4`
	qActiveSessions = `SELECT ` + sessionCols + ` FROM sessions WHERE end_time = 0 ORDER BY stage_id, start_time, id`
	qInsertSession  = `INSERT INTO sessions (` + sessionCols + `) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`
	qUpdateSession  = `UPDATE sessions SET end_time = $1 WHERE stage_id = $2 AND id = $3` // start_time never changes

	qGetParticipant        = `SELECT ` + participantReadCols + ` FROM participants WHERE stage_id = $1 AND session_id = $2 AND id = $3`
	qConnectedParticipants = `SELECT ` + participantReadCols + ` FROM participants WHERE state = 'CONNECTED'
		ORDER BY stage_id, session_id, first_join_time, id`
	qUnfinishedRecordings = `SELECT ` + participantReadCols + ` FROM participants
		WHERE recording_state IN ('STARTING', 'ACTIVE', 'STOPPING') ORDER BY stage_id, session_id, id`
	qSetParticipantRecording = `UPDATE participants SET recording_bucket = $1, recording_prefix = $2, recording_state = $3
		WHERE stage_id = $4 AND session_id = $5 AND id = $6`
	qPutParticipant = `INSERT INTO participants (` + participantCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (stage_id, session_id, id) DO UPDATE SET
			user_id = excluded.user_id, state = excluded.state, first_join_time = excluded.first_join_time,
			attributes = excluded.attributes, published = excluded.published, isp_name = excluded.isp_name,
			os_name = excluded.os_name, os_version = excluded.os_version, browser_name = excluded.browser_name,
			browser_version = excluded.browser_version, sdk_version = excluded.sdk_version, protocol = excluded.protocol`

	qListEvents = `SELECT ` + eventCols + ` FROM events
		WHERE stage_id = $1 AND session_id = $2 AND participant_id = $3 AND seq > $4 ORDER BY seq LIMIT $5`
	// One statement takes the participant's next Seq and stores the event. The counter row's upsert waits for
	// any other transaction holding it and then sees its number, so concurrent appenders get 1, 2, 3, ...
	// A counter that is missing while events exist (a purge that stopped midway) starts after the last one.
	qAppendEvent = `WITH next AS (
		INSERT INTO event_seqs AS c (stage_id, session_id, participant_id, last_seq)
		VALUES ($1, $2, $3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM events
			WHERE stage_id = $1 AND session_id = $2 AND participant_id = $3))
		ON CONFLICT (stage_id, session_id, participant_id) DO UPDATE SET last_seq = c.last_seq + 1
		RETURNING last_seq)
		INSERT INTO events (` + eventCols + `)
		SELECT $1, $2, $3, last_seq, $4, $5, $6, $7 FROM next
		RETURNING seq`

	qGetPublicKey        = `SELECT ` + keyCols + ` FROM public_keys WHERE id = $1`
	qListPublicKeysFirst = `SELECT ` + keyCols + ` FROM public_keys ORDER BY created_at, id LIMIT $1`
	qListPublicKeysAfter = `SELECT ` + keyCols + ` FROM public_keys WHERE (created_at, id) > ($1, $2) ORDER BY created_at, id LIMIT $3`
	qCountPublicKeys     = `SELECT COUNT(*) FROM public_keys`
	qInsertPublicKey     = `INSERT INTO public_keys (` + keyCols + `) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`
	qDeletePublicKey     = `DELETE FROM public_keys WHERE id = $1`

	qTags       = `SELECT key, value FROM tags WHERE arn = $1`
	qMergeTag   = `INSERT INTO tags (arn, key, value) VALUES ($1, $2, $3) ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value`
	qRemoveTag  = `DELETE FROM tags WHERE arn = $1 AND key = $2`
	qDeleteTags = `DELETE FROM tags WHERE arn = $1`

	qRevoked = `SELECT EXISTS (SELECT 1 FROM revocations WHERE stage_id = $1 AND participant_id = $2)`
	qRevoke  = `INSERT INTO revocations (stage_id, participant_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`

	qSecret       = `SELECT value FROM secrets WHERE name = $1`
	qInsertSecret = `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING`

	// Retention, a batch at a time: the session row goes last, so an interrupted purge resumes where it stopped.
	qEndedSessions       = `SELECT stage_id, id FROM sessions WHERE end_time < $1 AND end_time <> 0 ORDER BY end_time LIMIT $2`
	qDeleteSessionEvents = `DELETE FROM events WHERE (stage_id, session_id, participant_id, seq) IN (
		SELECT stage_id, session_id, participant_id, seq FROM events WHERE stage_id = $1 AND session_id = $2 LIMIT $3)`
	qDeleteSessionParticipants = `DELETE FROM participants WHERE (stage_id, session_id, id) IN (
		SELECT stage_id, session_id, id FROM participants WHERE stage_id = $1 AND session_id = $2 LIMIT $3)`
	qDeleteSessionSeqs = `DELETE FROM event_seqs WHERE stage_id = $1 AND session_id = $2`
	qDeleteSession     = `DELETE FROM sessions WHERE stage_id = $1 AND id = $2 AND end_time < $3 AND end_time <> 0`

	// Transaction-scoped advisory locks: (class, key). See tx.lock.
	qLock    = `SELECT pg_advisory_xact_lock($1, $2)`
	qLockArn = `SELECT pg_advisory_xact_lock($1, hashtext($2))`
)

// Participant filter kinds and the ListParticipants variant of each, without and with a cursor.
const (
	filterNone = iota
	filterUser
	filterPublished
	filterState
	filterRecordingState
)

var qListParticipants, qListParticipantSummaries [5][2]string

// What a participant summary reads (store.ParticipantSummary): the stage and session are the query's own, and
// every index of the list's orders includes these columns (migration 0006).
const participantSummaryCols = `id, user_id, state, first_join_time, published, recording_state`

func init() {
	for kind, cond := range []string{
		filterNone:           ``,
		filterUser:           ` AND user_id = $3`,
		filterPublished:      ` AND published = $3`,
		filterState:          ` AND state = $3`,
		filterRecordingState: ` AND recording_state = $3`,
	} {
		n := 3 // next parameter number
		if cond != "" {
			n = 4
		}
		for after := range 2 {
			q := ` FROM participants WHERE stage_id = $1 AND session_id = $2` + cond
			m := n
			if after == 1 {
				q += ` AND (first_join_time, id) > ($` + strconv.Itoa(m) + `, $` + strconv.Itoa(m+1) + `)`
				m += 2
			}
			q += ` ORDER BY first_join_time, id LIMIT $` + strconv.Itoa(m)
			qListParticipants[kind][after] = `SELECT ` + participantReadCols + q
			qListParticipantSummaries[kind][after] = `SELECT ` + participantSummaryCols + q
		}
	}
}
