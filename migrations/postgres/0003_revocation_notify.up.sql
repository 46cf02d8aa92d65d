-- Revocation notices. authd replicas cache access-token lookups for a few
-- seconds; a replica that revokes a token drops it from its own cache, and
-- the others learn of it from these notices on the channel authd_revoked
-- (LISTEN authd_revoked). The database sends them, not authd, so that every
-- revocation is broadcast, whoever commits it (a replica, the CLI, an
-- operator's DELETE), and so that none commits without its notice: NOTIFY is
-- delivered at commit, and not at all on rollback.
--
-- A payload is a JSON array of strings:
--   [user_id, device_id]  every access token of that device was revoked
--   [user_id]             every access token of the user (a device ID too
--                         long for a payload)
--   []                    every access token of every user (TRUNCATE)
-- pg_notify fails on a payload of 8000 bytes or more, and would then fail
-- the revoking statement: a logout must never fail for its notice, so a
-- payload over 7000 bytes is widened rather than sent.

CREATE FUNCTION authd_notify_revoked() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    d RECORD;
    payload TEXT;
BEGIN
    -- One notice per device, whatever the number of its tokens deleted.
    -- Tokens expired over an hour ago (by the database's clock; the hour
    -- covers a replica's clock running behind it) are in no cache: the
    -- sweeper deletes them in bulk, and they must not flood the channel.
    FOR d IN
        SELECT DISTINCT user_id, device_id FROM revoked
        WHERE expires_at IS NULL OR expires_at > now() - interval '1 hour'
    LOOP
        payload := json_build_array(d.user_id, d.device_id)::text;
        IF octet_length(payload) > 7000 THEN
            payload := json_build_array(d.user_id)::text;
        END IF;
        IF octet_length(payload) > 7000 THEN
            payload := '[]';
        END IF;
        PERFORM pg_notify('authd_revoked', payload);
    END LOOP;
    RETURN NULL;
END;
$$;

-- Statement-level, with the deleted rows as a transition table: one call
-- per DELETE, however many rows it removes. Deletes cascaded from devices
-- (logout, logout/all, deactivation, a refresh-token replay) and from users
-- fire it too.
CREATE TRIGGER access_tokens_notify_revoked
    AFTER DELETE ON access_tokens
    REFERENCING OLD TABLE AS revoked
    FOR EACH STATEMENT EXECUTE FUNCTION authd_notify_revoked();

-- TRUNCATE fires no DELETE trigger and names no rows: revoke everything.
CREATE FUNCTION authd_notify_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authd_revoked', '[]');
    RETURN NULL;
END;
$$;

CREATE TRIGGER access_tokens_notify_truncated
    AFTER TRUNCATE ON access_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION authd_notify_truncated();
