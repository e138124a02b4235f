-- 0007_notification_chunks: the notification log as chunks, one row for the notifications a transaction
-- writes instead of one row each (internal/store/sqlite/chunks.go; docs/DESIGN.md §6.1). A chunk holds the
-- consecutive seqs first_seq..last_seq; its key is the last, an AUTOINCREMENT rowid, so sqlite_sequence
-- keeps the highest seq ever handed out, as the notifications table's did. time is the newest of its
-- notifications' times: retention deletes a chunk when all of it is older than the cut.
--
-- data is the notifications one after another, each five netstrings ("<byte length>:<bytes>,"): stage,
-- session, kind, time (Unix nanoseconds, decimal), detail. Each existing notification becomes a chunk of
-- its own, built here in that form.

CREATE TABLE notification_chunks (
    last_seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    first_seq INTEGER NOT NULL,
    time      INTEGER NOT NULL,
    data      BLOB    NOT NULL
);
CREATE INDEX notification_chunks_by_time ON notification_chunks (time);
-- A chunk never overlaps the log: it starts after the highest seq ever handed out. The writer numbers
-- notifications itself (seqcache.go), and a wrong number must fail the transaction, as it failed on the
-- primary key of the table this replaces (where each seq was a key; here only a chunk's last is).
CREATE TRIGGER notification_chunks_in_order BEFORE INSERT ON notification_chunks
WHEN NEW.first_seq > NEW.last_seq
    OR NEW.first_seq <= coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'notification_chunks'), 0)
BEGIN
    SELECT RAISE(ABORT, 'notification chunk overlaps the log');
END;

INSERT INTO notification_chunks (last_seq, first_seq, time, data)
SELECT seq, seq, time, CAST(
    length(CAST(stage_id AS BLOB)) || ':' || stage_id || ',' ||
    length(CAST(session_id AS BLOB)) || ':' || session_id || ',' ||
    length(CAST(kind AS BLOB)) || ':' || kind || ',' ||
    length(CAST(time AS TEXT)) || ':' || time || ',' ||
    length(CAST(detail AS BLOB)) || ':' || detail || ',' AS BLOB)
FROM notifications ORDER BY seq;

-- The highest seq handed out, even if its notification was deleted since. (The INSERT above gave
-- notification_chunks its sqlite_sequence row even if it copied nothing.)
UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'notifications'))
WHERE name = 'notification_chunks' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'notifications');

DROP TABLE notifications;
