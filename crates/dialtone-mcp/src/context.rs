//! The context headers an MCP request may carry — `account_id`,
//! `persona_id`, `call_id`, `caller_id_number`, each also with an `X-`
//! prefix and with `-` for `_` (names are case-insensitive) — and how they
//! become the registry's [`ToolContext`]. They are read on every request,
//! not once per session, so one session can act on several calls.
//!
//! The account always comes from the API key: an `account_id` header may
//! only name that same account (by id or name). A persona (name or id)
//! must belong to it. The call id is passed through as given: the registry
//! finds the call with the account's scope, so another account's call is
//! "no such call" exactly as an unknown id is.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use dialtone_store::{Store, StoreError};
use dialtone_switch::tools::ToolContext;

use crate::auth::Authenticated;

/// The context headers of one request, as sent (trimmed; blank = absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextHeaders {
    pub account_id: Option<String>,
    pub persona_id: Option<String>,
    pub call_id: Option<String>,
    pub caller_id_number: Option<String>,
}

/// Why a request's context was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("conflicting values in the {0} headers")]
    Conflict(&'static str),
    #[error("the {0} header is not valid text")]
    NotText(&'static str),
    #[error("no access to account {0:?}")]
    NoAccess(String),
    #[error("unknown persona {0:?}")]
    UnknownPersona(String),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for ContextError {
    fn from(e: StoreError) -> Self {
        ContextError::Unavailable(e.to_string())
    }
}

/// The header names `name` may arrive under.
fn aliases(name: &str) -> [String; 4] {
    let dashed = name.replace('_', "-");
    [
        name.to_string(),
        format!("x-{name}"),
        format!("x-{dashed}"),
        dashed,
    ]
}

/// The one value of context header `name` under any of its aliases;
/// differing values are a conflict.
fn header(headers: &HeaderMap, name: &'static str) -> Result<Option<String>, ContextError> {
    let mut found: Option<String> = None;
    for alias in aliases(name) {
        for v in headers.get_all(alias.as_str()) {
            let v = v.to_str().map_err(|_| ContextError::NotText(name))?.trim();
            if v.is_empty() {
                continue;
            }
            match &found {
                Some(f) if f != v => return Err(ContextError::Conflict(name)),
                Some(_) => {}
                None => found = Some(v.to_string()),
            }
        }
    }
    Ok(found)
}

impl ContextHeaders {
    pub fn parse(headers: &HeaderMap) -> Result<ContextHeaders, ContextError> {
        Ok(ContextHeaders {
            account_id: header(headers, "account_id")?,
            persona_id: header(headers, "persona_id")?,
            call_id: header(headers, "call_id")?,
            caller_id_number: header(headers, "caller_id_number")?,
        })
    }

    /// Adds to `headers` the context headers they lack, with this set's
    /// values: the legacy SSE door takes the `GET /sse` request's context
    /// as the session's defaults, and each POST's own headers override
    /// them. Headers that do not parse are left alone, so the handler
    /// reports the problem on that request.
    pub fn fill_in(&self, headers: &mut HeaderMap) {
        let Ok(own) = ContextHeaders::parse(headers) else {
            return;
        };
        let pairs = [
            ("account_id", own.account_id, &self.account_id),
            ("persona_id", own.persona_id, &self.persona_id),
            ("call_id", own.call_id, &self.call_id),
            (
                "caller_id_number",
                own.caller_id_number,
                &self.caller_id_number,
            ),
        ];
        for (name, own, default) in pairs {
            if let (None, Some(v)) = (own, default) {
                if let Ok(v) = HeaderValue::from_str(v) {
                    headers.insert(HeaderName::from_static(name), v);
                }
            }
        }
    }

    /// The tool context for a request authenticated as `who`.
    pub async fn resolve(
        self,
        store: &Store,
        who: &Authenticated,
    ) -> Result<ToolContext, ContextError> {
        if let Some(a) = &self.account_id {
            if *a != who.account_id {
                let same = store
                    .accounts()
                    .get_by_name(a)
                    .await?
                    .is_some_and(|acc| acc.id == who.account_id);
                if !same {
                    return Err(ContextError::NoAccess(a.clone()));
                }
            }
        }
        let persona = match &self.persona_id {
            None => None,
            Some(p) => {
                let personas = store.personas();
                let row = match personas.get(p).await? {
                    Some(row) => Some(row),
                    None => personas.get_by_id(p).await?,
                };
                match row {
                    Some(row) if row.account_id == who.account_id => Some(row.name),
                    // Another account's persona is as unknown as a missing one.
                    _ => return Err(ContextError::UnknownPersona(p.clone())),
                }
            }
        };
        Ok(ToolContext {
            account_id: Some(who.account_id.clone()),
            persona,
            call_id: self.call_id,
            caller_number: self.caller_id_number,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn every_alias_and_case_is_read() {
        let c = ContextHeaders::parse(&headers(&[
            ("Account_Id", "acc"),
            ("X-Persona_ID", "receptionist"),
            ("x-call-id", "c1"),
            ("CALLER-ID-NUMBER", " +15550100 "),
        ]))
        .unwrap();
        assert_eq!(
            c,
            ContextHeaders {
                account_id: Some("acc".into()),
                persona_id: Some("receptionist".into()),
                call_id: Some("c1".into()),
                caller_id_number: Some("+15550100".into()),
            }
        );
        let c = ContextHeaders::parse(&headers(&[("X-Call_Id", "c2")])).unwrap();
        assert_eq!(c.call_id.as_deref(), Some("c2"));
    }

    #[test]
    fn absent_and_blank_headers_are_none() {
        assert_eq!(
            ContextHeaders::parse(&HeaderMap::new()).unwrap(),
            ContextHeaders::default()
        );
        let c = ContextHeaders::parse(&headers(&[("call_id", "  ")])).unwrap();
        assert_eq!(c.call_id, None);
    }

    #[test]
    fn the_same_value_twice_is_fine_two_values_conflict() {
        let c = ContextHeaders::parse(&headers(&[("call_id", "a"), ("x-call_id", "a")])).unwrap();
        assert_eq!(c.call_id.as_deref(), Some("a"));
        assert_eq!(
            ContextHeaders::parse(&headers(&[("call_id", "a"), ("X-Call-Id", "b")])),
            Err(ContextError::Conflict("call_id"))
        );
        assert_eq!(
            ContextHeaders::parse(&headers(&[("persona_id", "a"), ("persona_id", "b")])),
            Err(ContextError::Conflict("persona_id"))
        );
    }

    #[test]
    fn defaults_fill_in_only_what_a_request_lacks() {
        let defaults =
            ContextHeaders::parse(&headers(&[("persona_id", "rec"), ("call_id", "c-get")]))
                .unwrap();
        let mut h = headers(&[("X-Call-Id", "c-post"), ("x-api-key", "k")]);
        defaults.fill_in(&mut h);
        let c = ContextHeaders::parse(&h).unwrap();
        assert_eq!(c.persona_id.as_deref(), Some("rec"));
        assert_eq!(c.call_id.as_deref(), Some("c-post"));
        assert_eq!(c.account_id, None);
        // A request whose own headers conflict is left for the handler to refuse.
        let mut h = headers(&[("call_id", "a"), ("x-call-id", "b")]);
        defaults.fill_in(&mut h);
        assert!(!h.contains_key("persona_id"));
        assert_eq!(
            ContextHeaders::parse(&h),
            Err(ContextError::Conflict("call_id"))
        );
    }

    #[test]
    fn non_text_values_are_refused() {
        let mut h = HeaderMap::new();
        h.insert("call_id", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(
            ContextHeaders::parse(&h),
            Err(ContextError::NotText("call_id"))
        );
    }
}
