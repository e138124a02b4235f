-- 0006_participant_summaries: the indexes of ListParticipants' orders cover the participant summary
-- (store.ParticipantSummary: id, user_id, state, first_join_time, published, recording_state), so that a
-- page of summaries is read from the index alone instead of one table lookup per row (docs/BENCHMARKS.md,
-- issue 16). In a WITHOUT ROWID table every index entry also holds the primary key (stage_id, session_id,
-- id). The order of each index is unchanged: the key columns come first, the covered columns after them.
-- PutParticipant's upsert assigns every summary column, so it rewrote each of these entries already.

DROP INDEX participants_by_join;
CREATE INDEX participants_by_join ON participants
    (stage_id, session_id, first_join_time, id, user_id, state, published, recording_state);
DROP INDEX participants_by_user;
CREATE INDEX participants_by_user ON participants
    (stage_id, session_id, user_id, first_join_time, id, state, published, recording_state);
DROP INDEX participants_by_published;
CREATE INDEX participants_by_published ON participants
    (stage_id, session_id, published, first_join_time, id, user_id, state, recording_state);
DROP INDEX participants_by_state;
CREATE INDEX participants_by_state ON participants
    (stage_id, session_id, state, first_join_time, id, user_id, published, recording_state);
DROP INDEX participants_by_recording_state;
CREATE INDEX participants_by_recording_state ON participants
    (stage_id, session_id, recording_state, first_join_time, id, user_id, state, published);
