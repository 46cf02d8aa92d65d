-- The same as postgres/0005_uia_sessions.up.sql; times are INTEGER
-- microseconds since the Unix epoch. session_hash says NOT NULL because
-- SQLite lets a PRIMARY KEY column that is not an INTEGER PRIMARY KEY hold
-- NULL.
CREATE TABLE uia_sessions (
    session_hash BLOB NOT NULL PRIMARY KEY CHECK (length(session_hash) = 32),
    user_id      TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    body_hash    BLOB NOT NULL CHECK (length(body_hash) = 32),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX uia_sessions_device_idx ON uia_sessions (user_id, device_id);
CREATE INDEX uia_sessions_expires_at_idx ON uia_sessions (expires_at);
