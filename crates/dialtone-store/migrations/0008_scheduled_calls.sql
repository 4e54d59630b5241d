-- Calls to place later: `create_call` with scheduledAt (MCP, REST) and
-- `dialtone call create` (CLI). The switch's scheduler claims due rows and
-- places them; a row is claimed once (status pending -> fired in one
-- statement or under row locks), so a call fires exactly once even when
-- several nodes share the database. Same portable rules as 0001-0007: TEXT
-- uuid ids, BIGINT times, no BOOLEAN, no AUTOINCREMENT/SERIAL, no
-- collations; SQL that SQLite and PostgreSQL both accept unchanged.
--
-- Times (due_at, created_at, claimed_at) are unix MILLISECONDS, like calls.
-- Who talks to the customer: persona_id (a persona's id) or username (a
-- user rung first, click-to-dial), exactly one of them; neither is a
-- foreign key, so removing a persona or user is not blocked: its pending
-- calls then fail when they come due, saying why.
-- customer: the number to call, as given (formatting removed).
-- variables: JSON object text of the persona's instruction variables.
-- status: 'pending' (waiting), 'fired' (claimed by claimed_by at claimed_at;
-- call_id set once placed), 'cancelled', 'failed' (error says why).
CREATE TABLE scheduled_calls (
    id            TEXT   PRIMARY KEY,
    account_id    TEXT   NOT NULL REFERENCES accounts (id),
    persona_id    TEXT,
    username      TEXT,
    customer      TEXT   NOT NULL,
    customer_name TEXT,
    from_number   TEXT,
    variables     TEXT   NOT NULL,
    due_at        BIGINT NOT NULL,
    status        TEXT   NOT NULL,
    call_id       TEXT,
    error         TEXT,
    created_at    BIGINT NOT NULL,
    claimed_by    TEXT,
    claimed_at    BIGINT
);

-- The scheduler's question, every 200 ms: pending rows due by now. A
-- partial index (both engines have them) keeps it proportional to what is
-- waiting, not to the history.
CREATE INDEX scheduled_calls_pending ON scheduled_calls (due_at) WHERE status = 'pending';
-- An account's listing.
CREATE INDEX scheduled_calls_account ON scheduled_calls (account_id, due_at);
