-- 0004_notifications: the notification log (docs/DESIGN.md §5.6) and the webhooks' delivery state.
--
-- seq is an AUTOINCREMENT rowid: global, increasing, never reused even after the newest rows are deleted.
-- SQLite runs one write transaction at a time, so notifications commit in seq order and a reader paging by
-- seq skips none.

CREATE TABLE notifications (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    stage_id   TEXT    NOT NULL,
    session_id TEXT    NOT NULL DEFAULT '',
    kind       TEXT    NOT NULL,
    time       INTEGER NOT NULL,
    detail     TEXT    NOT NULL -- the EventBridge event's detail, a JSON object
);
-- Retention (DeleteEndedBefore) deletes by time.
CREATE INDEX notifications_by_time ON notifications (time);

-- One row per webhook endpoint (its name in the config): the last seq it is done with, and which process
-- delivers it until when.
CREATE TABLE webhook_deliveries (
    endpoint    TEXT    NOT NULL PRIMARY KEY,
    cursor      INTEGER NOT NULL,
    owner       TEXT    NOT NULL DEFAULT '',
    lease_until INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE webhook_dead_letters (
    endpoint   TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    last_error TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    replay     INTEGER NOT NULL DEFAULT 0, -- 0 or 1
    PRIMARY KEY (endpoint, seq)
) WITHOUT ROWID;
