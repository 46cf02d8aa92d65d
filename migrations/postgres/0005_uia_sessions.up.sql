-- User-Interactive Authentication sessions. The session ID is a random
-- secret only the client holds; the row keeps its SHA-256. A session
-- authorises one operation, once: the one it is bound to (the user and the
-- device that asked, the HTTP method, the escaped path and the SHA-256 of
-- the request body in canonical form). The operation deletes the row in its
-- own transaction, so two requests carrying one session cannot both run it.
-- Deleting the device (logout, a refresh-token replay, deactivation) takes
-- its sessions with it.
CREATE TABLE uia_sessions (
    session_hash BYTEA PRIMARY KEY CHECK (octet_length(session_hash) = 32),
    user_id      TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    body_hash    BYTEA NOT NULL CHECK (octet_length(body_hash) = 32),
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX uia_sessions_device_idx ON uia_sessions (user_id, device_id);
-- For the sweep, which deletes sessions that expired before its cutoff.
CREATE INDEX uia_sessions_expires_at_idx ON uia_sessions (expires_at);
