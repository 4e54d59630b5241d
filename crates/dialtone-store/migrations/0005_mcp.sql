-- What the MCP server and the call-bound tools need: per-account API keys,
-- office hours of personas, a do-not-disturb flag on users, leads with their
-- cases, and the account a call record belongs to. Same portable rules as
-- 0001-0004: TEXT uuid ids, BIGINT unix-second times, 0/1 BIGINT booleans, no
-- AUTOINCREMENT/SERIAL, no collations; SQL that SQLite and PostgreSQL both
-- accept unchanged.

-- An API key of an account. Only the hex SHA-256 of the whole key is kept;
-- prefix (its first 12 characters, e.g. "dtk_AbCdEfGh") tells keys apart in
-- listings. A revoked key stays, with revoked_at set, so listings show it.
CREATE TABLE api_keys (
    id           TEXT   PRIMARY KEY,
    account_id   TEXT   NOT NULL REFERENCES accounts (id),
    name         TEXT,
    prefix       TEXT   NOT NULL,
    hash         TEXT   NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE INDEX api_keys_account_id ON api_keys (account_id);

-- A persona's weekly opening hours: per weekday (0 = Monday ... 6 = Sunday)
-- its ranges in order (position 0, 1, ...), 'HH:MM' local time in the
-- persona's timezone; closes may be '24:00'. A weekday without rows is closed;
-- a persona without any rows (and no closures) has no office hours
-- configured. ON DELETE CASCADE: removing the persona removes its hours
-- (SQLite enforces it because sqlx opens every SQLite connection with
-- PRAGMA foreign_keys = ON).
CREATE TABLE office_hours (
    persona_id TEXT   NOT NULL REFERENCES personas (id) ON DELETE CASCADE,
    weekday    BIGINT NOT NULL,
    position   BIGINT NOT NULL,
    opens      TEXT   NOT NULL,
    closes     TEXT   NOT NULL,
    PRIMARY KEY (persona_id, weekday, position)
);

-- Days ('YYYY-MM-DD', in the persona's timezone) a persona's office is
-- closed whatever the weekly hours say: holidays.
CREATE TABLE office_closures (
    persona_id TEXT NOT NULL REFERENCES personas (id) ON DELETE CASCADE,
    day        TEXT NOT NULL,
    PRIMARY KEY (persona_id, day)
);

-- 1: the user does not want calls now (availability tools report it busy).
ALTER TABLE users ADD COLUMN dnd BIGINT NOT NULL DEFAULT 0;

-- Someone who called an account, by the number they called from (E.164 as
-- the caller of the store gave it): one lead per account and number.
CREATE TABLE leads (
    id           TEXT   PRIMARY KEY,
    account_id   TEXT   NOT NULL REFERENCES accounts (id),
    phone_number TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (account_id, phone_number)
);

-- One case per conversation that created or updated a lead. classification
-- is 'lead', 'customer', 'spam' or 'other'. seq numbers a lead's cases 1, 2,
-- ... in the order they were recorded (created_at is only seconds); the
-- unique index on (lead_id, seq) also serves lookups by lead_id.
CREATE TABLE lead_cases (
    id             TEXT   PRIMARY KEY,
    lead_id        TEXT   NOT NULL REFERENCES leads (id),
    seq            BIGINT NOT NULL,
    intent         TEXT   NOT NULL,
    classification TEXT   NOT NULL,
    summary        TEXT,
    notes          TEXT,
    call_id        TEXT,
    persona        TEXT,
    created_at     BIGINT NOT NULL,
    UNIQUE (lead_id, seq)
);

-- The account (tenant) a call belongs to; NULL when the switch could not tell.
ALTER TABLE calls ADD COLUMN account_id TEXT;
