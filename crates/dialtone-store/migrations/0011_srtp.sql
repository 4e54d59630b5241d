-- SRTP policy (RFC 3711 keyed by SDES, RFC 4568) of a user or a trunk:
-- 'off', 'optional' or 'required'. NULL: the configured default
-- (media.srtp), which is what every existing row gets. Same portable rules
-- as 0001-0010: plain ADD COLUMN, which SQLite and PostgreSQL both accept.
ALTER TABLE users ADD COLUMN srtp TEXT;
ALTER TABLE trunks ADD COLUMN srtp TEXT;
