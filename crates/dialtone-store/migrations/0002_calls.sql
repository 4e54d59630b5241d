-- What B2BUA calls need: trunks (SIP peers), numbers (DIDs) and where they
-- ring, outbound routes to trunks, and one record per call. Same portable
-- rules as 0001: TEXT uuid ids, BIGINT times, 0/1 BIGINT for booleans, no
-- AUTOINCREMENT/SERIAL, no collations.

-- A SIP peer calls go to and/or come from. host is "host:port" (or
-- "[v6]:port"); NULL means inbound-only. register is 0 or 1. The password is
-- kept as given, not hashed: dialtone is the digest client here and must
-- compute responses to the trunk's challenges from it.
CREATE TABLE trunks (
    id         TEXT   PRIMARY KEY,
    name       TEXT   NOT NULL UNIQUE,
    host       TEXT,
    transport  TEXT   NOT NULL,
    username   TEXT,
    password   TEXT,
    register   BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The source IPs (or CIDRs) a trunk's calls come from, in the order given.
-- A child table rather than a joined string, so no separator can collide
-- with an entry.
CREATE TABLE trunk_inbound_ips (
    trunk_id TEXT   NOT NULL REFERENCES trunks (id),
    position BIGINT NOT NULL,
    ip       TEXT   NOT NULL,
    PRIMARY KEY (trunk_id, position)
);

-- Dialled numbers (DIDs) and what they ring. target names a user, trunk,
-- persona or queue by name; only trunk targets are checked (on trunk removal).
CREATE TABLE numbers (
    id          TEXT   PRIMARY KEY,
    number      TEXT   NOT NULL UNIQUE,
    target_kind TEXT   NOT NULL,
    target      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Trunk removal looks for numbers pointing at the trunk.
CREATE INDEX numbers_target ON numbers (target_kind, target);

-- Named counters, bumped inside write transactions. Updating a counter's row
-- also serialises its writers on PostgreSQL (on SQLite BEGIN IMMEDIATE does).
CREATE TABLE counters (
    name  TEXT   PRIMARY KEY,
    value BIGINT NOT NULL
);

-- Outbound routes, tried by priority ascending, then creation order (seq,
-- from the "routes" counter: created_at is only seconds). pattern is a regex
-- the caller validated.
CREATE TABLE routes (
    id         TEXT   PRIMARY KEY,
    pattern    TEXT   NOT NULL,
    trunk_id   TEXT   NOT NULL REFERENCES trunks (id),
    strip      BIGINT NOT NULL,
    prepend    TEXT   NOT NULL,
    priority   BIGINT NOT NULL,
    seq        BIGINT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE INDEX routes_trunk_id ON routes (trunk_id);

-- One row per call, inserted when it starts and completed when it ends, so a
-- crash leaves an open row (ended_at NULL) rather than nothing. Times are
-- unix MILLISECONDS. legs and stats are JSON text written by the caller.
CREATE TABLE calls (
    id           TEXT   PRIMARY KEY,
    node         TEXT   NOT NULL,
    direction    TEXT   NOT NULL,
    from_uri     TEXT   NOT NULL,
    to_uri       TEXT   NOT NULL,
    caller       TEXT   NOT NULL,
    callee       TEXT   NOT NULL,
    started_at   BIGINT NOT NULL,
    answered_at  BIGINT,
    ended_at     BIGINT,
    outcome      TEXT,
    hangup_cause TEXT,
    hangup_side  TEXT,
    codecs       TEXT,
    legs         TEXT   NOT NULL,
    stats        TEXT
);

-- Newest-first listing.
CREATE INDEX calls_started_at ON calls (started_at);
-- A node's calls by end time (close_orphans: node = ? AND ended_at IS NULL).
CREATE INDEX calls_node_ended_at ON calls (node, ended_at);
-- Open calls only (a partial index both engines support), so count_active
-- stays proportional to the calls in progress, not to the whole history.
CREATE INDEX calls_open ON calls (node) WHERE ended_at IS NULL;
