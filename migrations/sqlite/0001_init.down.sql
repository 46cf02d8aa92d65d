DROP TABLE access_tokens;
DROP TABLE devices;
DROP TABLE user_threepids;
DROP TABLE users;
