-- 0003_storage_configurations: storage configurations (where recordings go), and each stage's
-- autoParticipantRecordingConfiguration.
--
-- A stage's recording configuration is kept as JSON (ivs.AutoRecording, whose zero value '{}' is the model's
-- defaults), except the storage configuration it names, which has a column of its own so that
-- DeleteStorageConfiguration can find the stages that name one ('' = not recording).

CREATE TABLE storage_configurations (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    bucket_name TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
-- ListStorageConfigurations: (created_at, id) ascending.
CREATE INDEX storage_configurations_by_created ON storage_configurations (created_at, id);

ALTER TABLE stages ADD COLUMN recording_storage_configuration_id TEXT NOT NULL DEFAULT '';
ALTER TABLE stages ADD COLUMN recording TEXT NOT NULL DEFAULT '{}';
-- StagesUsingStorageConfiguration.
CREATE INDEX stages_by_storage_configuration ON stages (recording_storage_configuration_id, id);
