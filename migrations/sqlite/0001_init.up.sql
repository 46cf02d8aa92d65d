-- The same schema as postgres/0001_init.up.sql. Times are INTEGER
-- microseconds since the Unix epoch (UTC); NULL where the Postgres column is NULL.
-- users.user_id says NOT NULL because SQLite, unlike Postgres, lets a PRIMARY
-- KEY column that is not an INTEGER PRIMARY KEY hold NULL.
CREATE TABLE users (
    user_id        TEXT NOT NULL PRIMARY KEY,
    user_id_folded TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    deactivated_at INTEGER
);
CREATE INDEX users_user_id_folded_idx ON users (user_id_folded);

CREATE TABLE user_threepids (
    medium   TEXT NOT NULL,
    address  TEXT NOT NULL,
    user_id  TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (medium, address)
);
CREATE INDEX user_threepids_user_id_idx ON user_threepids (user_id);

CREATE TABLE devices (
    user_id      TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id    TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE access_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_device_idx ON access_tokens (user_id, device_id);
CREATE INDEX access_tokens_expires_at_idx ON access_tokens (expires_at) WHERE expires_at IS NOT NULL;
