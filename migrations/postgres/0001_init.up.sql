-- Users, keyed by their canonical Matrix user ID. user_id_folded is the
-- case-insensitive login key (lower-cased whole MXID); it is not unique, because
-- historical IDs may differ only in case.
CREATE TABLE users (
    user_id        TEXT PRIMARY KEY,
    user_id_folded TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    deactivated_at TIMESTAMPTZ
);
CREATE INDEX users_user_id_folded_idx ON users (user_id_folded);

-- Third-party identifiers (medium + canonical address) bound to a user.
CREATE TABLE user_threepids (
    medium   TEXT NOT NULL,
    address  TEXT NOT NULL,
    user_id  TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    added_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (medium, address)
);
CREATE INDEX user_threepids_user_id_idx ON user_threepids (user_id);

CREATE TABLE devices (
    user_id      TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id    TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- Access tokens are stored only as the SHA-256 of the token. expires_at is
-- NULL for tokens that do not expire. Refresh tokens (a later migration) get
-- a table of their own that points at the device the same way.
CREATE TABLE access_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_device_idx ON access_tokens (user_id, device_id);
CREATE INDEX access_tokens_expires_at_idx ON access_tokens (expires_at) WHERE expires_at IS NOT NULL;
