//! The MCP server handler: one per session (or per stateless request). It
//! answers tools/list and tools/call from the switch's tool registry — the
//! same registry the in-call agent uses, so the tool set is dynamic per
//! persona and call and no tool logic lives here — and serves live calls
//! as resources, with subscriptions.
//!
//! Every request is read in its own HTTP context: the key the middleware
//! authenticated (in the request's extensions) and the context headers
//! (account, persona, call, caller number) of that very POST. A session is
//! bound to the account of its first request; another account's key
//! cannot use it.

use std::sync::OnceLock;

use axum::http::request::Parts;
use dialtone_switch::control::{CallControl, Scope};
use dialtone_switch::tools::ToolContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorCode, Implementation,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ServerCapabilities,
    ServerConfig, SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;

use crate::auth::Authenticated;
use crate::context::{ContextError, ContextHeaders};
use crate::resources::{self, Subscriptions};
use crate::tools;

/// JSON-RPC code for "not allowed" (the same as the HTTP 401 body's).
pub const UNAUTHORIZED: ErrorCode = ErrorCode(-32001);

const INSTRUCTIONS: &str = "dialtone: a phone system. Tools act for the account of your API \
key; call-bound tools (transfer_call, hangup_call) act on the call named by the call_id \
header. Live calls are resources call://ID; subscribe to one to hear when it changes or ends.";

/// The handler of one MCP session.
pub struct DialtoneMcp {
    control: CallControl,
    /// A stateless request has no session to send notifications to later.
    stateless: bool,
    /// The account whose key opened the session.
    owner: OnceLock<String>,
    subscriptions: Subscriptions,
}

fn context_error(e: ContextError) -> ErrorData {
    match e {
        ContextError::NoAccess(_) => ErrorData::new(UNAUTHORIZED, e.to_string(), None),
        ContextError::Unavailable(_) => ErrorData::internal_error(e.to_string(), None),
        _ => ErrorData::invalid_params(e.to_string(), None),
    }
}

impl DialtoneMcp {
    pub fn new(control: CallControl, stateless: bool) -> DialtoneMcp {
        DialtoneMcp {
            control,
            stateless,
            owner: OnceLock::new(),
            subscriptions: Subscriptions::default(),
        }
    }

    /// The HTTP request behind `ctx` and the key it authenticated with.
    fn request<'a>(
        &self,
        ctx: &'a RequestContext<RoleServer>,
    ) -> Result<(&'a Parts, &'a Authenticated), ErrorData> {
        let parts = ctx
            .extensions
            .get::<Parts>()
            .ok_or_else(|| ErrorData::internal_error("a request without its HTTP context", None))?;
        let who = parts
            .extensions
            .get::<Authenticated>()
            .ok_or_else(|| ErrorData::new(UNAUTHORIZED, "not authenticated", None))?;
        let owner = self.owner.get_or_init(|| who.account_id.clone());
        if *owner != who.account_id {
            return Err(ErrorData::new(
                UNAUTHORIZED,
                "this session belongs to another account: initialize a new one",
                None,
            ));
        }
        Ok((parts, who))
    }

    /// The tool context of this request's headers.
    async fn tool_context(
        &self,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<ToolContext, ErrorData> {
        let (parts, who) = self.request(ctx)?;
        ContextHeaders::parse(&parts.headers)
            .map_err(context_error)?
            .resolve(self.control.store(), who)
            .await
            .map_err(context_error)
    }

    /// The call a resource URI names, if this account sees it.
    fn call_of(
        &self,
        uri: &str,
        who: &Authenticated,
    ) -> Result<dialtone_switch::call::CallHandle, ErrorData> {
        let id = resources::call_id_of(uri).ok_or_else(|| {
            ErrorData::resource_not_found(format!("not a call resource: {uri:?}"), None)
        })?;
        self.control
            .find(id, Scope::Account(&who.account_id))
            .map_err(|_| ErrorData::resource_not_found(format!("no such call: {id}"), None))
    }
}

impl ServerHandler for DialtoneMcp {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        ServerConfig::new(caps)
            .with_server_info(Implementation::new("dialtone", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tctx = self.tool_context(&ctx).await?;
        let specs = self.control.tools().list(&self.control, &tctx).await;
        Ok(ListToolsResult::with_all_items(
            specs.iter().map(tools::mcp_tool).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tctx = self.tool_context(&ctx).await?;
        let args = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let name = request.name.as_ref();
        let outcome = self
            .control
            .tools()
            .call(&self.control, &tctx, name, args)
            .await;
        tracing::info!(
            tool = name,
            account = tctx.account_id.as_deref().unwrap_or(""),
            call_id = tctx.call_id.as_deref().unwrap_or(""),
            ok = outcome.is_ok(),
            "MCP tool call"
        );
        let result = match outcome {
            Ok(out) => tools::success(out),
            Err(e) => tools::failure(e)?,
        };
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let (_, who) = self.request(&ctx)?;
        let calls = self.control.list(Scope::Account(&who.account_id));
        Ok(ListResourcesResult::with_all_items(
            calls.iter().map(resources::resource).collect(),
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.request(&ctx)?;
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            resources::template(),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let (_, who) = self.request(&ctx)?;
        let call = self.call_of(&request.uri, who)?;
        let contents = resources::contents(&request.uri, &call.snapshot());
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let (_, who) = self.request(&ctx)?;
        if self.stateless {
            return Err(ErrorData::invalid_request(
                "resources/subscribe needs a session: send initialize first",
                None,
            ));
        }
        let call = self.call_of(&request.uri, who)?;
        self.subscriptions
            .subscribe(request.uri, &call, ctx.peer.clone());
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.request(&ctx)?;
        self.subscriptions.unsubscribe(&request.uri);
        Ok(())
    }
}
