//! The agent's function calls into the tool registry: each runs with the
//! call's context (the persona's account, the persona, this call, the
//! caller's number), so the LLM door reaches exactly the tools and
//! outcomes the MCP door does. Errors become text the model can act on.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use dialtone_ai::agent::{ToolDispatcher, ToolReply};
use dialtone_store::Persona;

use super::super::CallContext;
use crate::control::CallControl;
use crate::tools::ToolContext;

pub struct CallTools {
    control: CallControl,
    ctx: ToolContext,
}

impl CallTools {
    pub fn new(call: Arc<CallContext>, persona: &Persona, call_id: &str, caller: &str) -> Self {
        CallTools {
            control: CallControl::new(call),
            ctx: ToolContext {
                account_id: Some(persona.account_id.clone()),
                persona: Some(persona.name.clone()),
                call_id: Some(call_id.to_string()),
                caller_number: Some(caller.to_string()),
            },
        }
    }
}

impl ToolDispatcher for CallTools {
    fn call(
        &self,
        name: &str,
        arguments: &str,
    ) -> Pin<Box<dyn Future<Output = ToolReply> + Send + 'static>> {
        let control = self.control.clone();
        let ctx = self.ctx.clone();
        let name = name.to_string();
        let args = if arguments.trim().is_empty() {
            Ok(serde_json::Value::Null)
        } else {
            serde_json::from_str::<serde_json::Value>(arguments)
        };
        Box::pin(async move {
            let args = match args {
                Ok(a) => a,
                Err(e) => {
                    return ToolReply {
                        output: format!("error: the arguments are not valid JSON: {e}"),
                        ok: false,
                    }
                }
            };
            let tools = Arc::clone(control.tools());
            match tools.call(&control, &ctx, &name, args).await {
                Ok(out) => ToolReply {
                    output: out.text,
                    ok: true,
                },
                Err(e) => ToolReply {
                    output: format!("error: {e}"),
                    ok: false,
                },
            }
        })
    }
}
