-- Call recording, switched on per number and per route, and where a call's
-- recording went. Same portable rules as 0001/0002: 0/1 BIGINT for booleans,
-- SQL both SQLite and PostgreSQL accept unchanged (ADD COLUMN with a constant
-- default, so rows that exist already get record = 0).

-- 1: calls to this number are recorded.
ALTER TABLE numbers ADD COLUMN record BIGINT NOT NULL DEFAULT 0;

-- 1: calls leaving through this route are recorded.
ALTER TABLE routes ADD COLUMN record BIGINT NOT NULL DEFAULT 0;

-- The recording's WAV file path; NULL when the call was not recorded.
ALTER TABLE calls ADD COLUMN recording TEXT;
