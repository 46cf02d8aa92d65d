DROP TABLE login_tokens;
