ALTER TABLE access_tokens DROP COLUMN pending;
ALTER TABLE access_tokens DROP COLUMN refresh_token_id;
DROP TABLE refresh_tokens;
