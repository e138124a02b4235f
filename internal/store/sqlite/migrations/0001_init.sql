-- 0001_init: the first schema of the embedded store.
--
-- Times are INTEGER unix nanoseconds in UTC (0 = the zero time). Text identifiers compare with the BINARY
-- collation, which is what keyset cursors assume. No FOREIGN KEY constraints: DeleteStage and
-- DeleteEndedBefore remove dependent rows explicitly, and the domain decides which rows exist (for example an
-- event for a participant that never got a record), so the store imposes no write order.

CREATE TABLE stages (
    id                TEXT    NOT NULL PRIMARY KEY,
    name              TEXT    NOT NULL,
    active_session_id TEXT    NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL
) WITHOUT ROWID;
-- ListStages: (created_at, id) ascending.
CREATE INDEX stages_by_created ON stages (created_at, id);

CREATE TABLE sessions (
    stage_id   TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    start_time INTEGER NOT NULL,
    end_time   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (stage_id, id)
) WITHOUT ROWID;
-- ListSessions: (start_time, id) descending within a stage.
CREATE INDEX sessions_by_start ON sessions (stage_id, start_time, id);
-- ActiveSessions (end_time = 0) and the retention job (end_time <> 0 AND end_time < t).
CREATE INDEX sessions_by_end ON sessions (end_time);

CREATE TABLE participants (
    stage_id        TEXT    NOT NULL,
    session_id      TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    user_id         TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL,
    first_join_time INTEGER NOT NULL,
    attributes      TEXT    NOT NULL DEFAULT '{}', -- JSON object of strings
    published       INTEGER NOT NULL DEFAULT 0,    -- 0 or 1
    isp_name        TEXT    NOT NULL DEFAULT '',
    os_name         TEXT    NOT NULL DEFAULT '',
    os_version      TEXT    NOT NULL DEFAULT '',
    browser_name    TEXT    NOT NULL DEFAULT '',
    browser_version TEXT    NOT NULL DEFAULT '',
    sdk_version     TEXT    NOT NULL DEFAULT '',
    protocol        TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (stage_id, session_id, id)
) WITHOUT ROWID;
-- ListParticipants: (first_join_time, id) ascending within a session, unfiltered and per filter, so a page
-- costs the same at any depth whichever filter is used.
CREATE INDEX participants_by_join ON participants (stage_id, session_id, first_join_time, id);
CREATE INDEX participants_by_user ON participants (stage_id, session_id, user_id, first_join_time, id);
CREATE INDEX participants_by_published ON participants (stage_id, session_id, published, first_join_time, id);
CREATE INDEX participants_by_state ON participants (stage_id, session_id, state, first_join_time, id);
-- ConnectedParticipants (crash recovery): only the connected few are in this index.
CREATE INDEX participants_connected ON participants (stage_id, session_id, first_join_time, id) WHERE state = 'CONNECTED';

CREATE TABLE events (
    stage_id              TEXT    NOT NULL,
    session_id            TEXT    NOT NULL,
    participant_id        TEXT    NOT NULL,
    seq                   INTEGER NOT NULL,
    name                  TEXT    NOT NULL,
    time                  INTEGER NOT NULL,
    remote_participant_id TEXT    NOT NULL DEFAULT '',
    error_code            TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (stage_id, session_id, participant_id, seq)
) WITHOUT ROWID;

CREATE TABLE public_keys (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    material    TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
-- ListPublicKeys: (created_at, id) ascending.
CREATE INDEX public_keys_by_created ON public_keys (created_at, id);

CREATE TABLE tags (
    arn   TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (arn, key)
) WITHOUT ROWID;

CREATE TABLE revocations (
    stage_id       TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    PRIMARY KEY (stage_id, participant_id)
) WITHOUT ROWID;
