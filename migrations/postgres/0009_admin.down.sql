DROP TABLE registration_nonces;
DROP TABLE admin_tokens;
DROP TRIGGER users_notify_locked ON users;
DROP FUNCTION authd_notify_locked();
ALTER TABLE users DROP COLUMN locked_at;
ALTER TABLE users DROP COLUMN admin;
