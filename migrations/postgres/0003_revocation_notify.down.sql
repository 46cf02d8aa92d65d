DROP TRIGGER access_tokens_notify_truncated ON access_tokens;
DROP FUNCTION authd_notify_truncated();
DROP TRIGGER access_tokens_notify_revoked ON access_tokens;
DROP FUNCTION authd_notify_revoked();
