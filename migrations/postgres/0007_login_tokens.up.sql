-- Login tokens (m.login.token): single-use, short-lived tokens that let a
-- new client log in as the user who asked for one. Stored only as the
-- SHA-256 of the token, like access tokens. device_id names the device that
-- asked for the token, only to record who asked: the token outlives it if
-- it is deleted, and the login makes a device of its own.
CREATE TABLE login_tokens (
    token_hash BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_tokens_user_id_idx ON login_tokens (user_id);
CREATE INDEX login_tokens_expires_at_idx ON login_tokens (expires_at);
