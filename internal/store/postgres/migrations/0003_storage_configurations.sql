-- 0003_storage_configurations: storage configurations (where recordings go), and each stage's
-- autoParticipantRecordingConfiguration, kept as the embedded store keeps them.
--
-- A stage's recording configuration is kept as JSON (ivs.AutoRecording, whose zero value '{}' is the model's
-- defaults), except the storage configuration it names, which has a column of its own so that
-- DeleteStorageConfiguration can find the stages that name one ('' = not recording). Names and bucket names
-- are validated by the model's patterns ([a-zA-Z0-9-_]*, [a-z0-9-.]+): TEXT COLLATE "C" holds them.

CREATE TABLE storage_configurations (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    bucket_name TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT           NOT NULL
);
-- ListStorageConfigurations: (created_at, id) ascending.
CREATE INDEX storage_configurations_by_created ON storage_configurations (created_at, id);

ALTER TABLE stages ADD COLUMN recording_storage_configuration_id TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE stages ADD COLUMN recording TEXT NOT NULL DEFAULT '{}';
-- StagesUsingStorageConfiguration.
CREATE INDEX stages_by_storage_configuration ON stages (recording_storage_configuration_id, id);
