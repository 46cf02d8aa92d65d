DROP TRIGGER access_tokens_revoked;
DROP TABLE revocations;
