//! Persona MCP servers: the external MCP servers (a company's CRM, its
//! calendar) whose tools a persona's model may call mid-call, beside
//! dialtone's own. A server has a name unique within its persona (its tools
//! are offered as `{name}__{tool}`), a transport (Streamable HTTP, the older
//! HTTP+SSE, or a child process speaking stdio), headers sent on every HTTP
//! request, the tools offered (all when the allow list is empty), and a
//! timeout per tool call. Secrets are not meant to be stored: a header value
//! says `${NAME}` and the switch reads the environment variable when it
//! connects (a literal value is kept as given). Everything is checked before
//! it is stored (`check`). Removing a persona removes its servers.

mod check;

use std::fmt;
use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::error::{is_foreign_key_violation, is_unique_violation};
use crate::persona_tools::{headers_from_json, headers_json};
use crate::store::unix_now;
use crate::{Store, StoreError};

pub use check::{
    check_mcp_server, check_mcp_server_name, header_env_names, split_command, MCP_TIMEOUT_MS_RANGE,
};

/// How the switch talks to an MCP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum McpTransport {
    /// Streamable HTTP (MCP 2025-03-26 and later).
    Http,
    /// The HTTP+SSE transport of MCP 2024-11-05.
    Sse,
    /// A child process reading requests on stdin and answering on stdout.
    Stdio,
}

impl McpTransport {
    /// Every transport's name, for messages that list them.
    pub const NAMES: [&'static str; 3] = ["http", "sse", "stdio"];

    /// "http", "sse" or "stdio" (also how it is stored).
    pub fn as_str(self) -> &'static str {
        match self {
            McpTransport::Http => "http",
            McpTransport::Sse => "sse",
            McpTransport::Stdio => "stdio",
        }
    }
}

impl fmt::Display for McpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for McpTransport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "http" => Ok(McpTransport::Http),
            "sse" => Ok(McpTransport::Sse),
            "stdio" => Ok(McpTransport::Stdio),
            other => Err(format!(
                "unknown MCP transport {other:?} (expected one of {})",
                McpTransport::NAMES.join(", ")
            )),
        }
    }
}

/// An external MCP server of a persona.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonaMcpServer {
    pub id: String,
    pub persona_id: String,
    /// `^[a-z0-9_]{1,32}$`, unique within the persona; its tools are
    /// offered as `{name}__{tool}`.
    pub name: String,
    pub transport: McpTransport,
    /// http and sse: the endpoint.
    pub url: Option<String>,
    /// stdio: the command line (see [`split_command`]).
    pub command: Option<String>,
    /// Header name and value, in order; values may hold `${NAME}`.
    pub headers: Vec<(String, String)>,
    /// The server's tools offered to the model; empty: all.
    pub allow: Vec<String>,
    /// How long one tool call may take.
    pub timeout_ms: u32,
    /// Unix seconds.
    pub created_at: i64,
}

/// What [`PersonaMcpServers::create`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMcpServer {
    pub name: String,
    pub transport: McpTransport,
    pub url: Option<String>,
    pub command: Option<String>,
    pub headers: Vec<(String, String)>,
    pub allow: Vec<String>,
    pub timeout_ms: u32,
}

/// The persona_mcp_servers table. Obtained from [`Store::persona_mcp_servers`].
#[derive(Debug, Clone, Copy)]
pub struct PersonaMcpServers<'a> {
    store: &'a Store,
}

const SELECT_SERVERS: &str = "SELECT id, persona_id, name, transport, url, command, headers, \
     allow, timeout_ms, created_at FROM persona_mcp_servers";

impl<'a> PersonaMcpServers<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        PersonaMcpServers { store }
    }

    /// Adds an MCP server to the persona (by id). [`StoreError::Invalid`]
    /// when it is refused (see [`check_mcp_server`]), [`StoreError::Conflict`]
    /// when the persona has a server of that name, [`StoreError::NotFound`]
    /// when the persona does not exist.
    pub async fn create(
        &self,
        persona_id: &str,
        new: NewMcpServer,
    ) -> Result<PersonaMcpServer, StoreError> {
        check_mcp_server(&new).map_err(|reason| StoreError::Invalid { reason })?;
        let server = PersonaMcpServer {
            id: Uuid::new_v4().to_string(),
            persona_id: persona_id.to_owned(),
            name: new.name,
            transport: new.transport,
            url: new.url,
            command: new.command,
            headers: new.headers,
            allow: new.allow,
            timeout_ms: new.timeout_ms,
            created_at: unix_now(),
        };
        let allow = serde_json::to_string(&server.allow).map_err(|e| StoreError::Invalid {
            reason: format!("cannot encode the allow list as JSON: {e}"),
        })?;
        let inserted = sqlx::query(
            "INSERT INTO persona_mcp_servers (id, persona_id, name, transport, url, command, \
             headers, allow, timeout_ms, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(server.id.as_str())
        .bind(persona_id)
        .bind(server.name.as_str())
        .bind(server.transport.as_str())
        .bind(server.url.as_deref())
        .bind(server.command.as_deref())
        .bind(headers_json(&server.headers)?)
        .bind(allow)
        .bind(i64::from(server.timeout_ms))
        .bind(server.created_at)
        .execute(self.store.pool())
        .await;
        match inserted {
            Ok(_) => Ok(server),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
                what: format!("MCP server {:?}", server.name),
            }),
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound {
                what: format!("persona {persona_id:?}"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The persona's MCP servers, ordered by name.
    pub async fn list_for_persona(
        &self,
        persona_id: &str,
    ) -> Result<Vec<PersonaMcpServer>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT_SERVERS} WHERE persona_id = $1"))
            .bind(persona_id)
            .fetch_all(self.store.pool())
            .await?;
        let mut servers = rows
            .iter()
            .map(server_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted in Rust so both backends agree (see `Accounts::list`).
        servers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(servers)
    }

    /// The persona's MCP server with that name, if any.
    pub async fn get(
        &self,
        persona_id: &str,
        name: &str,
    ) -> Result<Option<PersonaMcpServer>, StoreError> {
        let row = sqlx::query(&format!(
            "{SELECT_SERVERS} WHERE persona_id = $1 AND name = $2"
        ))
        .bind(persona_id)
        .bind(name)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.as_ref().map(server_from_row).transpose()?)
    }

    /// Removes the persona's MCP server; Ok(false) when there was none.
    pub async fn remove(&self, persona_id: &str, name: &str) -> Result<bool, StoreError> {
        let deleted =
            sqlx::query("DELETE FROM persona_mcp_servers WHERE persona_id = $1 AND name = $2")
                .bind(persona_id)
                .bind(name)
                .execute(self.store.pool())
                .await?
                .rows_affected();
        Ok(deleted > 0)
    }
}

fn decode_error(column: &str, message: String) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.into(),
        source: message.into(),
    }
}

fn server_from_row(row: &AnyRow) -> Result<PersonaMcpServer, sqlx::Error> {
    let transport: String = row.try_get("transport")?;
    let headers: String = row.try_get("headers")?;
    let allow: String = row.try_get("allow")?;
    let timeout: i64 = row.try_get("timeout_ms")?;
    Ok(PersonaMcpServer {
        id: row.try_get("id")?,
        persona_id: row.try_get("persona_id")?,
        name: row.try_get("name")?,
        transport: transport
            .parse()
            .map_err(|e| decode_error("transport", e))?,
        url: row.try_get("url")?,
        command: row.try_get("command")?,
        headers: headers_from_json(&headers).map_err(|e| decode_error("headers", e.to_string()))?,
        allow: serde_json::from_str(&allow).map_err(|e| decode_error("allow", e.to_string()))?,
        timeout_ms: u32::try_from(timeout)
            .map_err(|e| decode_error("timeout_ms", e.to_string()))?,
        created_at: row.try_get("created_at")?,
    })
}
