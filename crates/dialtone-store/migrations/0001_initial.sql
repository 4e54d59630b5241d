-- dialtone's initial schema. Written to run unchanged on SQLite and PostgreSQL:
-- TEXT ids (UUIDs generated in Rust), BIGINT unix-second timestamps, no
-- AUTOINCREMENT/SERIAL, no BOOLEAN (the sqlx Any driver cannot decode SQLite
-- booleans), no collations (sorting happens in Rust so both backends agree).

CREATE TABLE accounts (
    id         TEXT   PRIMARY KEY,
    name       TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- Usernames are unique across the whole switch: the username is the AOR.
CREATE TABLE users (
    id         TEXT   PRIMARY KEY,
    account_id TEXT   NOT NULL REFERENCES accounts (id),
    username   TEXT   NOT NULL UNIQUE,
    realm      TEXT   NOT NULL,
    ha1_md5    TEXT   NOT NULL,
    ha1_sha256 TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX users_account_id ON users (account_id);

-- One row per address of record that has registered. It carries no data the
-- API returns: writers upsert it first in their transaction so that its row
-- lock serialises concurrent REGISTERs for the same AOR on PostgreSQL (on
-- SQLite, BEGIN IMMEDIATE already serialises all writers).
CREATE TABLE aors (
    aor        TEXT   PRIMARY KEY,
    updated_at BIGINT NOT NULL
);

-- Contact bindings (RFC 3261 section 10). No foreign key to users: the
-- registrar decides who may register, the store only keeps the bindings.
-- q is stored as an integer of q * 1000 so it round-trips exactly.
CREATE TABLE registrations (
    aor        TEXT   NOT NULL,
    contact    TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    q_milli    BIGINT,
    call_id    TEXT   NOT NULL,
    cseq       BIGINT NOT NULL,
    source     TEXT   NOT NULL,
    user_agent TEXT,
    instance   TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (aor, contact)
);

-- purge_expired scans by expiry across all AORs.
CREATE INDEX registrations_expires_at ON registrations (expires_at);
