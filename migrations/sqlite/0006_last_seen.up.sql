-- The client address a device was last seen from, beside last_seen_at
-- (the time of that sighting). '' when unknown: never seen since this
-- column was added, or recorded with addresses turned off.
ALTER TABLE devices ADD COLUMN last_seen_ip TEXT NOT NULL DEFAULT '';
