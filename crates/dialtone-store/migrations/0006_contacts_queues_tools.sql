-- Contacts (an account's address book, looked up by the caller's number),
-- call queues, and the custom tools of personas. Same portable rules as
-- 0001-0005: TEXT uuid ids, BIGINT unix-second times, 0/1 BIGINT booleans, no
-- AUTOINCREMENT/SERIAL, no collations; SQL that SQLite and PostgreSQL both
-- accept unchanged. Child rows go with their parent (ON DELETE CASCADE; sqlx
-- opens every SQLite connection with PRAGMA foreign_keys = ON).

-- The ISO 3166 region national numbers of the account are read in (its
-- contacts' numbers are normalised to E.164 with it).
ALTER TABLE accounts ADD COLUMN region TEXT NOT NULL DEFAULT 'US';

-- An HTTP/JSON contact source: a URL template with {phone_number} (the
-- caller's E.164 number), asked when the address book has no match. NULL:
-- none.
ALTER TABLE accounts ADD COLUMN contact_url TEXT;

-- A person or company an account knows, by name.
CREATE TABLE contacts (
    id         TEXT   PRIMARY KEY,
    account_id TEXT   NOT NULL REFERENCES accounts (id),
    name       TEXT   NOT NULL,
    company    TEXT,
    email      TEXT,
    created_at BIGINT NOT NULL
);

CREATE INDEX contacts_account_id ON contacts (account_id);

-- A contact's numbers in the order given: number as written, e164 normalised
-- in the account's region (NULL when it cannot be, e.g. an extension).
CREATE TABLE contact_numbers (
    contact_id TEXT   NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    position   BIGINT NOT NULL,
    number     TEXT   NOT NULL,
    e164       TEXT,
    PRIMARY KEY (contact_id, position)
);

-- Caller lookup: by normalised number.
CREATE INDEX contact_numbers_e164 ON contact_numbers (e164);

-- A call queue: a number routed to queue:NAME rings its members by strategy
-- ('ring-all', 'round-robin' or 'longest-idle') for timeout_secs, then goes
-- to fallback ('user:NAME', 'number:N' or 'persona:NAME'; NULL: hang up).
-- rr_next is the round-robin cursor, bumped by one UPDATE per call.
CREATE TABLE queues (
    id           TEXT   PRIMARY KEY,
    account_id   TEXT   NOT NULL REFERENCES accounts (id),
    name         TEXT   NOT NULL UNIQUE,
    strategy     TEXT   NOT NULL,
    timeout_secs BIGINT NOT NULL,
    fallback     TEXT,
    rr_next      BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);

CREATE INDEX queues_account_id ON queues (account_id);

-- A queue's members (users, by username) in order. No foreign key to users:
-- the switch skips a member that no longer exists. last_call_ended_at (unix
-- seconds) orders members for 'longest-idle'; NULL: never had a queue call.
CREATE TABLE queue_members (
    queue_id           TEXT   NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    position           BIGINT NOT NULL,
    username           TEXT   NOT NULL,
    last_call_ended_at BIGINT,
    PRIMARY KEY (queue_id, position)
);

-- A persona's own tool, offered to its model beside the global ones.
-- kind: 'transfer_user' / 'transfer_queue' (target: the user or queue name)
-- or 'api_request' (method, url, headers, body, variables, timeout_ms).
-- headers: JSON object text, header name -> value template; body: template.
-- Templates use {variable} (filled from the model's arguments) and ${NAME}
-- (an environment variable, read when the request is made: secrets are never
-- stored, only the names of the variables that hold them). variables: JSON
-- array text of {"name", "type": "text"|"number"|"options", "description"?,
-- "options"?: [...], "required": bool}.
CREATE TABLE persona_tools (
    id          TEXT   PRIMARY KEY,
    persona_id  TEXT   NOT NULL REFERENCES personas (id) ON DELETE CASCADE,
    name        TEXT   NOT NULL,
    description TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    target      TEXT,
    method      TEXT,
    url         TEXT,
    headers     TEXT,
    body        TEXT,
    variables   TEXT,
    timeout_ms  BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (persona_id, name)
);

-- Queue removal looks for tools that transfer to it.
CREATE INDEX persona_tools_target ON persona_tools (kind, target);
