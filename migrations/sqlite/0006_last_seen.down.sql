ALTER TABLE devices DROP COLUMN last_seen_ip;
