-- Events for the homeserver, written in the transaction of the change they
-- report (a device deleted, an account deactivated) and deleted once
-- delivered. id orders delivery; event_id is the random name a receiver
-- deduplicates on. A failed delivery counts an attempt and names the kind of
-- failure (never a body or a secret) and when to try again. No foreign key:
-- an event outlives the device it names.
CREATE TABLE outbox_events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        TEXT NOT NULL UNIQUE,
    type            TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    last_error      TEXT
);

-- Who delivers the outbox: one row at most, held by one process until
-- expires_at and renewed while it delivers, so that of several replicas
-- only one sends at a time.
CREATE TABLE outbox_lease (
    singleton  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
