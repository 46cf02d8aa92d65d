-- Operators' controls: the admin flag (who may use the admin API with an
-- ordinary access token) and the account lock (spec v1.18, Account locking:
-- a locked account keeps its sessions but every request but logout is
-- refused until it is unlocked).
ALTER TABLE users ADD COLUMN admin BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN locked_at TIMESTAMPTZ;

-- A lock is announced like a revocation, on the same channel, so that every
-- replica drops the user's cached tokens at once, whoever locks (the admin
-- API on any replica, the CLI, an operator's UPDATE). The payload [user_id]
-- names every token of the user (see 0003). An unlock needs no notice: a
-- locked user's tokens are never cached.
CREATE FUNCTION authd_notify_locked() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payload TEXT;
BEGIN
    payload := json_build_array(NEW.user_id)::text;
    IF octet_length(payload) > 7000 THEN
        payload := '[]';
    END IF;
    PERFORM pg_notify('authd_revoked', payload);
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_notify_locked
    AFTER UPDATE OF locked_at ON users
    FOR EACH ROW
    WHEN (OLD.locked_at IS NULL AND NEW.locked_at IS NOT NULL)
    EXECUTE FUNCTION authd_notify_locked();

-- Tokens for automation, issued by the CLI (authd admin token issue): they
-- belong to no user and no device, authorise the admin API only, and are
-- stored as the SHA-256 of the token. id is the public name the CLI lists
-- and revokes them by.
CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    name       TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ
);

-- Nonces of shared-secret registration (GET /_synapse/admin/v1/register),
-- single use: a registration deletes its nonce in its transaction.
CREATE TABLE registration_nonces (
    nonce      TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX registration_nonces_expires_at_idx ON registration_nonces (expires_at);
