-- 0006_participant_summaries: the indexes of ListParticipants' orders cover the participant summary
-- (store.ParticipantSummary: id, user_id, state, first_join_time, published, recording_state), so that a
-- page of summaries can be an index-only scan instead of one heap fetch per row (docs/BENCHMARKS.md,
-- issue 16), as the embedded store's 0006. The keys, and so the orders, are unchanged; the covered columns
-- are INCLUDEd.

DROP INDEX participants_by_join;
CREATE INDEX participants_by_join ON participants (stage_id, session_id, first_join_time, id)
    INCLUDE (user_id, state, published, recording_state);
DROP INDEX participants_by_user;
CREATE INDEX participants_by_user ON participants (stage_id, session_id, user_id, first_join_time, id)
    INCLUDE (state, published, recording_state);
DROP INDEX participants_by_published;
CREATE INDEX participants_by_published ON participants (stage_id, session_id, published, first_join_time, id)
    INCLUDE (user_id, state, recording_state);
DROP INDEX participants_by_state;
CREATE INDEX participants_by_state ON participants (stage_id, session_id, state, first_join_time, id)
    INCLUDE (user_id, published, recording_state);
DROP INDEX participants_by_recording_state;
CREATE INDEX participants_by_recording_state ON participants (stage_id, session_id, recording_state, first_join_time, id)
    INCLUDE (user_id, state, published);
