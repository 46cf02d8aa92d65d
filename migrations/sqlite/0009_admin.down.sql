DROP TABLE registration_nonces;
DROP TABLE admin_tokens;
DROP TRIGGER users_locked;
ALTER TABLE users DROP COLUMN locked_at;
ALTER TABLE users DROP COLUMN admin;
