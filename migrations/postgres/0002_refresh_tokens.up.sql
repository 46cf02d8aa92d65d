-- Refresh tokens (spec v1.3 /refresh, and the seed's r0.2.0 /tokenrefresh),
-- stored only as SHA-256 hashes like access tokens, and bound to a device.
--   pending      the unused half of a pair issued by /refresh: the refresh
--                token it was issued for stays valid until this pair is used
--   exchanged_at first time the token was exchanged for a new pair
--   revoked_at   superseded after it was exchanged; the row is kept only to
--                recognise a replay, which revokes the whole session
CREATE TABLE refresh_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash   BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    user_id      TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    pending      BOOLEAN NOT NULL DEFAULT FALSE,
    exchanged_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_device_idx ON refresh_tokens (user_id, device_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX refresh_tokens_revoked_at_idx ON refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL;

-- An access token issued with a refresh token points at it (its pair).
ALTER TABLE access_tokens ADD COLUMN refresh_token_id BIGINT REFERENCES refresh_tokens (id) ON DELETE SET NULL;
ALTER TABLE access_tokens ADD COLUMN pending BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX access_tokens_refresh_token_id_idx ON access_tokens (refresh_token_id);
