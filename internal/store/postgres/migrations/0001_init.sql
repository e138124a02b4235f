-- 0001_init: the first schema of the PostgreSQL store.
--
-- It keeps what the embedded store keeps, the same way where it can: times are BIGINT unix nanoseconds in UTC
-- (0 = the zero time), there are no FOREIGN KEY constraints (DeleteStage and DeleteEndedBefore remove dependent
-- rows explicitly), and every key compares byte by byte, as Go strings and the keyset cursors do:
-- - identifiers the server makes or validates (stage, session and public key ids, ARNs, names, enums) are
--   TEXT COLLATE "C";
-- - strings a client chooses freely (participant ids, which are a self-signed token's jti as is, user ids,
--   client details, tag keys and values, key material) are BYTEA: PostgreSQL TEXT cannot hold NUL or
--   invalid UTF-8, which SQLite stores as given, and the two stores must accept the same values.

CREATE TABLE stages (
    id                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name              TEXT COLLATE "C" NOT NULL,
    active_session_id TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at        BIGINT           NOT NULL
);
-- ListStages: (created_at, id) ascending.
CREATE INDEX stages_by_created ON stages (created_at, id);

CREATE TABLE sessions (
    stage_id   TEXT COLLATE "C" NOT NULL,
    id         TEXT COLLATE "C" NOT NULL,
    start_time BIGINT           NOT NULL,
    end_time   BIGINT           NOT NULL DEFAULT 0,
    PRIMARY KEY (stage_id, id)
);
-- ListSessions: (start_time, id) descending within a stage.
CREATE INDEX sessions_by_start ON sessions (stage_id, start_time, id);
-- ActiveSessions (crash recovery) reads only the few open sessions; the retention job only the ended ones.
CREATE INDEX sessions_active ON sessions (stage_id, start_time, id) WHERE end_time = 0;
CREATE INDEX sessions_ended ON sessions (end_time) WHERE end_time <> 0;

CREATE TABLE participants (
    stage_id        TEXT COLLATE "C" NOT NULL,
    session_id      TEXT COLLATE "C" NOT NULL,
    id              BYTEA            NOT NULL,
    user_id         BYTEA            NOT NULL DEFAULT '',
    state           TEXT COLLATE "C" NOT NULL,
    first_join_time BIGINT           NOT NULL,
    attributes      TEXT             NOT NULL DEFAULT '{}', -- JSON object of strings (NUL is escaped in JSON)
    published       BOOLEAN          NOT NULL DEFAULT false,
    isp_name        BYTEA            NOT NULL DEFAULT '',
    os_name         BYTEA            NOT NULL DEFAULT '',
    os_version      BYTEA            NOT NULL DEFAULT '',
    browser_name    BYTEA            NOT NULL DEFAULT '',
    browser_version BYTEA            NOT NULL DEFAULT '',
    sdk_version     BYTEA            NOT NULL DEFAULT '',
    protocol        TEXT COLLATE "C" NOT NULL DEFAULT '',
    PRIMARY KEY (stage_id, session_id, id)
);
-- ListParticipants: (first_join_time, id) ascending within a session, unfiltered and per filter, so a page
-- costs the same at any depth whichever filter is used.
CREATE INDEX participants_by_join ON participants (stage_id, session_id, first_join_time, id);
CREATE INDEX participants_by_user ON participants (stage_id, session_id, user_id, first_join_time, id);
CREATE INDEX participants_by_published ON participants (stage_id, session_id, published, first_join_time, id);
CREATE INDEX participants_by_state ON participants (stage_id, session_id, state, first_join_time, id);
-- ConnectedParticipants (crash recovery): only the connected few are in this index.
CREATE INDEX participants_connected ON participants (stage_id, session_id, first_join_time, id) WHERE state = 'CONNECTED';

CREATE TABLE events (
    stage_id              TEXT COLLATE "C" NOT NULL,
    session_id            TEXT COLLATE "C" NOT NULL,
    participant_id        BYTEA            NOT NULL,
    seq                   BIGINT           NOT NULL,
    name                  TEXT COLLATE "C" NOT NULL,
    time                  BIGINT           NOT NULL,
    remote_participant_id BYTEA            NOT NULL DEFAULT '',
    error_code            TEXT COLLATE "C" NOT NULL DEFAULT '',
    PRIMARY KEY (stage_id, session_id, participant_id, seq)
);

-- The last Seq AppendEvent gave each participant. The upsert that takes the next number locks this row
-- until its transaction ends, so concurrent appenders for one participant queue instead of colliding.
CREATE TABLE event_seqs (
    stage_id       TEXT COLLATE "C" NOT NULL,
    session_id     TEXT COLLATE "C" NOT NULL,
    participant_id BYTEA            NOT NULL,
    last_seq       BIGINT           NOT NULL,
    PRIMARY KEY (stage_id, session_id, participant_id)
);

CREATE TABLE public_keys (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    material    BYTEA            NOT NULL,
    fingerprint TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT           NOT NULL
);
-- ListPublicKeys: (created_at, id) ascending.
CREATE INDEX public_keys_by_created ON public_keys (created_at, id);

CREATE TABLE tags (
    arn   TEXT COLLATE "C" NOT NULL,
    key   BYTEA            NOT NULL,
    value BYTEA            NOT NULL,
    PRIMARY KEY (arn, key)
);

CREATE TABLE revocations (
    stage_id       TEXT COLLATE "C" NOT NULL,
    participant_id BYTEA            NOT NULL,
    PRIMARY KEY (stage_id, participant_id)
);

-- Values made once and shared by every node (the token signing key).
CREATE TABLE secrets (
    name  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    value BYTEA            NOT NULL
);
