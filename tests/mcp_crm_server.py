"""A small MCP server for tests/test_persona_mcp.py: a company CRM with
crm_lookup(customer_id) and crm_notes(customer_id), built with the pinned
Python SDK (mcp.server.mcpserver.MCPServer, FastMCP's successor) and served
over Streamable HTTP (/mcp), the older HTTP+SSE transport (/sse, messages
POSTed to /messages/), or stdio.

    python mcp_crm_server.py http|sse PORT [--token T] [--log FILE]
    python mcp_crm_server.py stdio [--log FILE]

With --token every HTTP request must carry `Authorization: Bearer T`
(401 otherwise). --log appends one line per tool call (the tool and its
arguments as JSON) so a test can see what reached the server; a stdio
server first logs {"tool": "started", "pid": N}."""

from __future__ import annotations

import argparse
import json
import os

import uvicorn
from mcp.server.mcpserver import MCPServer

LOG: str | None = None

crm = MCPServer("test-crm")


def _log(tool: str, **args) -> None:
    if LOG:
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps({"tool": tool, **args}) + "\n")


@crm.tool()
def crm_lookup(customer_id: str) -> str:
    """Look a customer up in the CRM by their customer id."""
    _log("crm_lookup", customer_id=customer_id)
    return f"customer {customer_id}: gold customer"


@crm.tool()
def crm_notes(customer_id: str) -> str:
    """The account manager's notes about a customer."""
    _log("crm_notes", customer_id=customer_id)
    return f"notes for {customer_id}: prefers mornings"


def bearer(app, token: str | None):
    """Refuses HTTP requests without the token (lifespan passes through)."""
    if token is None:
        return app
    want = f"Bearer {token}".encode()

    async def wrapped(scope, receive, send):
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != want:
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await app(scope, receive, send)

    return wrapped


def main() -> None:
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("transport", choices=["http", "sse", "stdio"])
    ap.add_argument("port", type=int, nargs="?", default=0)
    ap.add_argument("--token")
    ap.add_argument("--log")
    a = ap.parse_args()
    LOG = a.log
    if a.transport == "stdio":
        _log("started", pid=os.getpid())
        crm.run("stdio")
        return
    app = crm.streamable_http_app() if a.transport == "http" else crm.sse_app()
    uvicorn.run(bearer(app, a.token), host="127.0.0.1", port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
