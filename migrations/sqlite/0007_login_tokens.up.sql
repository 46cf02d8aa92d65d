-- The same as postgres/0007_login_tokens.up.sql; times are INTEGER
-- microseconds since the Unix epoch.
CREATE TABLE login_tokens (
    token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX login_tokens_user_id_idx ON login_tokens (user_id);
CREATE INDEX login_tokens_expires_at_idx ON login_tokens (expires_at);
