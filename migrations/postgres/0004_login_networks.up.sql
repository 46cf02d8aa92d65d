-- The client networks each user has logged in from successfully, with the
-- time of the last success there. The network is an opaque key chosen by
-- the caller, at most 64 bytes. At most 16 rows per user are kept:
-- RecordLoginNetwork deletes the oldest.
CREATE TABLE login_networks (
    user_id         TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    network         TEXT NOT NULL CHECK (octet_length(network) <= 64),
    last_success_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, network)
);
