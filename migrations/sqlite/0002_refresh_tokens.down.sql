-- DROP COLUMN works on refresh_token_id: its REFERENCES clause is part of
-- the column's own definition and goes with it (SQLite 3.35+). Only a
-- table-level FOREIGN KEY naming the column would stop it; do not add one.
DROP INDEX access_tokens_refresh_token_id_idx;
ALTER TABLE access_tokens DROP COLUMN pending;
ALTER TABLE access_tokens DROP COLUMN refresh_token_id;
DROP TABLE refresh_tokens;
