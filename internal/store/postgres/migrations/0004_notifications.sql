-- 0004_notifications: the notification log (docs/DESIGN.md §5.6) and the webhooks' delivery state.
--
-- seq comes from an identity sequence: global and increasing, but transactions commit in any order, so a
-- reader may see seq 7 committed while 6 is still in flight. Each row keeps the id of the transaction that
-- wrote it (xid, taken before its seq), which is what ListNotifications needs to tell a hole that will fill
-- from one that never will (a rollback): see outbox.go.

CREATE TABLE notifications (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid        xid8             NOT NULL,
    stage_id   TEXT COLLATE "C" NOT NULL,
    session_id TEXT COLLATE "C" NOT NULL DEFAULT '',
    kind       TEXT             NOT NULL,
    time       BIGINT           NOT NULL,
    detail     TEXT             NOT NULL -- the EventBridge event's detail, a JSON object
);
-- Retention (DeleteEndedBefore) deletes by time.
CREATE INDEX notifications_by_time ON notifications (time);

-- One row per webhook endpoint (its name in the config): the last seq it is done with, and which node
-- delivers it until when (the database's clock).
CREATE TABLE webhook_deliveries (
    endpoint    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    cursor      BIGINT           NOT NULL,
    owner       TEXT COLLATE "C" NOT NULL DEFAULT '',
    lease_until TIMESTAMPTZ      NOT NULL DEFAULT '-infinity'
);

CREATE TABLE webhook_dead_letters (
    endpoint   TEXT COLLATE "C" NOT NULL,
    seq        BIGINT           NOT NULL,
    attempts   INTEGER          NOT NULL,
    last_error TEXT             NOT NULL,
    at         BIGINT           NOT NULL,
    replay     BOOLEAN          NOT NULL DEFAULT false,
    PRIMARY KEY (endpoint, seq)
);
