-- Call limits (admission control): how many calls a user, a trunk or an
-- account may have at once, and how fast it may start new ones. NULL: no
-- limit (what every existing row gets). Same portable rules as 0001-0008:
-- BIGINT, no BOOLEAN; plain ADD COLUMN, which SQLite and PostgreSQL both
-- accept unchanged.
--
-- max_calls: concurrent calls (0 = none at all).
-- max_cps_milli: new calls per second, times 1000, so a rate below one a
-- second (30 a minute = 500) is stored exactly (0 = none at all).
ALTER TABLE users ADD COLUMN max_calls BIGINT;
ALTER TABLE users ADD COLUMN max_cps_milli BIGINT;
ALTER TABLE trunks ADD COLUMN max_calls BIGINT;
ALTER TABLE trunks ADD COLUMN max_cps_milli BIGINT;
ALTER TABLE accounts ADD COLUMN max_calls BIGINT;
ALTER TABLE accounts ADD COLUMN max_cps_milli BIGINT;
