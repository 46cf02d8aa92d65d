-- The same as postgres/0002_refresh_tokens.up.sql; times are INTEGER
-- microseconds since the Unix epoch, booleans INTEGER 0/1.
CREATE TABLE refresh_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    user_id      TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    pending      INTEGER NOT NULL DEFAULT 0,
    exchanged_at INTEGER,
    revoked_at   INTEGER,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_device_idx ON refresh_tokens (user_id, device_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX refresh_tokens_revoked_at_idx ON refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL;

ALTER TABLE access_tokens ADD COLUMN refresh_token_id INTEGER REFERENCES refresh_tokens (id) ON DELETE SET NULL;
ALTER TABLE access_tokens ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX access_tokens_refresh_token_id_idx ON access_tokens (refresh_token_id);
