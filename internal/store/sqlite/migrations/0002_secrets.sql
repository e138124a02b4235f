-- 0002_secrets: values the server makes once and keeps with its data, such as the token signing key (until
-- now a file in the data directory), so that every process on this database uses the same one.

CREATE TABLE secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
