-- A counter per table that a process caches (issue 13): every write to the
-- table adds one, so a running switch notices changes made by another
-- process (the CLI) with one cheap read a second and drops what it cached.
CREATE TABLE generations (
    name  TEXT   PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO generations (name, value) VALUES ('users', 0);
