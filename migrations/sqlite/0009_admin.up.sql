-- The same schema as postgres/0009_admin.up.sql. admin is 0 or 1; times
-- are INTEGER microseconds since the Unix epoch, as elsewhere.
ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1));
ALTER TABLE users ADD COLUMN locked_at INTEGER;

-- A lock is announced like a revocation (see 0003): a row with an empty
-- device_id names every token of the user, so that serve's poller drops
-- them from its token cache, whoever locks. An unlock needs no row: a
-- locked user's tokens are never cached.
CREATE TRIGGER users_locked
    AFTER UPDATE OF locked_at ON users
    FOR EACH ROW
    WHEN OLD.locked_at IS NULL AND NEW.locked_at IS NOT NULL
BEGIN
    INSERT INTO revocations (user_id, device_id, revoked_at)
    VALUES (NEW.user_id, '', CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) * 1000);
END;

CREATE TABLE admin_tokens (
    id         TEXT NOT NULL PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    name       TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);

CREATE TABLE registration_nonces (
    nonce      TEXT NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX registration_nonces_expires_at_idx ON registration_nonces (expires_at);
