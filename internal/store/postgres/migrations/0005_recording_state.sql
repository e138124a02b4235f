-- 0005_recording_state: each participant's individual recording (docs/DESIGN.md §7): the bucket and prefix
-- it is written under (recordingS3BucketName, recordingS3Prefix) and how far it got (recordingState), kept
-- as the embedded store keeps them. The prefix holds the participant id, which a self-signed token chooses
-- (any bytes, as participants.id): BYTEA. Participants stored before recording existed, and those of stages
-- that do not record, are DISABLED.

ALTER TABLE participants ADD COLUMN recording_bucket TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN recording_prefix BYTEA            NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN recording_state  TEXT COLLATE "C" NOT NULL DEFAULT 'DISABLED';
-- ListParticipants filterByRecordingState, in the list's order.
CREATE INDEX participants_by_recording_state ON participants (stage_id, session_id, recording_state, first_join_time, id);
-- UnfinishedRecordings (crash recovery): only the few recordings in progress.
CREATE INDEX participants_recording_unfinished ON participants (stage_id, session_id, id)
    WHERE recording_state IN ('STARTING', 'ACTIVE', 'STOPPING');
