-- Revocations, for the token cache of a running authd serve. SQLite has no
-- NOTIFY: a trigger records the user and device of every deleted access
-- token that could still be live, whichever process deletes it (serve, the
-- CLI's user passwd and user deactivate, an operator's DELETE), and serve
-- polls this table for rows newer than the last it read (see
-- internal/store/sqlite/revocations.go). A row is written in the deleting
-- transaction, so none commits without its row, and none is left by a
-- rollback.
--
-- AUTOINCREMENT: ids never go back, even once the sweeper has pruned every
-- row, so a poller's cursor never skips a new row. SQLite has one writer at
-- a time, so rows commit in id order.
--
-- revoked_at is, as elsewhere, INTEGER microseconds since the Unix epoch,
-- by SQLite's clock (to the millisecond). A row names a device; an operator
-- may insert one with an empty device_id to revoke every token of a user,
-- or an empty user_id to revoke every token.
CREATE TABLE revocations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    revoked_at INTEGER NOT NULL
);

-- Per row: SQLite has no statement-level triggers, so a device whose
-- several tokens go at once gets several rows (the poller reports it once).
-- Deletes cascaded from devices (logout, logout/all, deactivation, a
-- refresh-token replay) and from users fire it too. Tokens expired over an
-- hour ago are in no cache: the sweeper deletes them in bulk, and they must
-- not flood the table. julianday, not unixepoch('subsec'), so that an
-- operator's older sqlite3 (before 3.42) can still delete tokens; the
-- expression is the store's nowMicros.
CREATE TRIGGER access_tokens_revoked
    AFTER DELETE ON access_tokens
    FOR EACH ROW
    WHEN OLD.expires_at IS NULL
      OR OLD.expires_at > CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) * 1000 - 3600000000
BEGIN
    INSERT INTO revocations (user_id, device_id, revoked_at)
    VALUES (OLD.user_id, OLD.device_id, CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) * 1000);
END;
