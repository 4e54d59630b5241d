-- Several nodes on one database (issue 14). Same portable rules as
-- 0001-0009: TEXT ids, BIGINT times and booleans, plain ADD COLUMN.
--
-- nodes: one row per dialtone node that has run with [cluster] enabled.
-- heartbeat_at (unix ms) is refreshed every cluster.heartbeat_ms; a node
-- whose heartbeat is older than cluster.dead_after_ms is dead, and a
-- surviving node closes its live call rows (calls.node names the owner).
-- http is the URL the other nodes forward tool calls to.
CREATE TABLE nodes (
    id           TEXT   PRIMARY KEY,
    sip          TEXT   NOT NULL,
    http         TEXT   NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

-- The live calls of one node: what the reaper and "calls owned" read.
CREATE INDEX calls_node_open ON calls (node, ended_at);

-- RFC 3327: the Path header values of the REGISTER that wrote the binding,
-- as one comma-separated header value; NULL when it had none. A request to
-- the contact is sent with this route set, to its first hop.
ALTER TABLE registrations ADD COLUMN path TEXT;
