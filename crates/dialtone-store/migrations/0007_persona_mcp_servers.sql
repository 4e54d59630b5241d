-- External MCP servers a persona's model may use mid-call (a company's CRM,
-- its calendar): their tools are offered beside dialtone's own, named
-- {server}__{tool}. Same portable rules as 0001-0006: TEXT uuid ids, BIGINT
-- unix-second times, no BOOLEAN, no AUTOINCREMENT/SERIAL, no collations; SQL
-- that SQLite and PostgreSQL both accept unchanged. A persona's servers go
-- with it (ON DELETE CASCADE).
--
-- name: ^[a-z0-9_]{1,32}$, unique per persona (the prefix of its tools).
-- transport: 'http' (Streamable HTTP) or 'sse' (the older HTTP+SSE), both
-- with url; or 'stdio' with command (the command line, split like a shell's
-- words, run as a child process of the switch).
-- headers: JSON object text, header name -> value, sent on every HTTP request;
-- a value may hold ${NAME} references to environment variables of the
-- running switch, resolved when the connection is made. Secrets belong in
-- ${NAME}: a literal value is stored as given.
-- allow: JSON array text of the server's tool names offered to the model;
-- [] offers them all.
-- timeout_ms: how long one tool call may take.
CREATE TABLE persona_mcp_servers (
    id         TEXT   PRIMARY KEY,
    persona_id TEXT   NOT NULL REFERENCES personas (id) ON DELETE CASCADE,
    name       TEXT   NOT NULL,
    transport  TEXT   NOT NULL,
    url        TEXT,
    command    TEXT,
    headers    TEXT   NOT NULL,
    allow      TEXT   NOT NULL,
    timeout_ms BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (persona_id, name)
);
