-- 0005_recording_state: each participant's individual recording (docs/DESIGN.md §7): the bucket and prefix
-- it is written under (recordingS3BucketName, recordingS3Prefix) and how far it got (recordingState).
-- Participants stored before recording existed, and those of stages that do not record, are DISABLED.

ALTER TABLE participants ADD COLUMN recording_bucket TEXT NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN recording_prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN recording_state  TEXT NOT NULL DEFAULT 'DISABLED';
-- ListParticipants filterByRecordingState, in the list's order.
CREATE INDEX participants_by_recording_state ON participants (stage_id, session_id, recording_state, first_join_time, id);
-- UnfinishedRecordings (crash recovery): only the few recordings in progress.
CREATE INDEX participants_recording_unfinished ON participants (stage_id, session_id, id)
    WHERE recording_state IN ('STARTING', 'ACTIVE', 'STOPPING');
