DROP TABLE uia_sessions;
