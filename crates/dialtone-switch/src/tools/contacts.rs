//! `lookup_contact(phone_number)`: who a number belongs to. The number is
//! normalised to E.164 (the account's default region for national forms),
//! then the account's contact sources are asked in order, behind one
//! trait: dialtone's own contacts (`dialtone contact add/import`), then an
//! HTTP/JSON source when the account has one (`account set --contact-url`,
//! a URL template with `{phone_number}`).

use std::future::Future;
use std::pin::Pin;

use dialtone_store::{phone, Account, Store};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    arguments, http, FnTool, ToolAnnotations, ToolContext, ToolError, ToolOutput, ToolSpec,
};
use crate::control::CallControl;

/// A contact as a source found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Found {
    pub name: String,
    pub numbers: Vec<String>,
    pub company: Option<String>,
    pub email: Option<String>,
    /// "contacts" (dialtone's own) or "http".
    pub source: String,
}

type Lookup<'a> = Pin<Box<dyn Future<Output = Result<Vec<Found>, String>> + Send + 'a>>;

/// Where contacts come from.
pub trait ContactSource: Send + Sync {
    fn lookup<'a>(&'a self, account: &'a Account, e164: &'a str) -> Lookup<'a>;
}

/// dialtone's own contacts.
pub struct NativeContacts<'s>(pub &'s Store);

impl ContactSource for NativeContacts<'_> {
    fn lookup<'a>(&'a self, account: &'a Account, e164: &'a str) -> Lookup<'a> {
        Box::pin(async move {
            let found = self
                .0
                .contacts()
                .find_by_number(&account.id, e164)
                .await
                .map_err(|e| format!("contacts unavailable: {e}"))?;
            Ok(found
                .into_iter()
                .map(|c| Found {
                    name: c.name,
                    numbers: c
                        .numbers
                        .into_iter()
                        .map(|n| n.e164.unwrap_or(n.number))
                        .collect(),
                    company: c.company,
                    email: c.email,
                    source: "contacts".into(),
                })
                .collect())
        })
    }
}

/// An HTTP/JSON source: GET the template with `{phone_number}` filled
/// (URL-encoded E.164). A 404 is "not found"; the body may be a contact
/// object, an array of them, or `{"contacts": [...]}`, each with `name`
/// and optionally `company`, `email`, and `numbers` or `phone`.
pub struct HttpContacts;

#[derive(Deserialize)]
struct HttpContact {
    name: String,
    #[serde(default)]
    company: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    numbers: Vec<String>,
    #[serde(default)]
    phone: Option<String>,
}

fn http_contacts(body: &str) -> Result<Vec<HttpContact>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let list = match v {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("contacts") {
            Some(Value::Array(a)) => a,
            _ => vec![Value::Object(o)],
        },
        _ => return Err("expected a JSON object or array".into()),
    };
    list.into_iter()
        .map(|c| serde_json::from_value(c).map_err(|e| format!("bad contact: {e}")))
        .collect()
}

impl ContactSource for HttpContacts {
    fn lookup<'a>(&'a self, account: &'a Account, e164: &'a str) -> Lookup<'a> {
        Box::pin(async move {
            let Some(template) = account.contact_url.as_deref() else {
                return Ok(Vec::new());
            };
            let url = template.replace("{phone_number}", &urlencode(e164));
            let resp = http::client()?
                .get(&url)
                .timeout(std::time::Duration::from_secs(5))
                .header("accept", "application/json")
                .send()
                .await
                .map_err(|e| format!("contact source unreachable: {e}"))?;
            if resp.status().as_u16() == 404 {
                return Ok(Vec::new());
            }
            if !resp.status().is_success() {
                return Err(format!(
                    "contact source answered HTTP {}",
                    resp.status().as_u16()
                ));
            }
            let (body, _) = http::body_text(resp).await?;
            Ok(http_contacts(&body)?
                .into_iter()
                .map(|c| Found {
                    name: c.name,
                    numbers: if c.numbers.is_empty() {
                        c.phone.into_iter().collect()
                    } else {
                        c.numbers
                    },
                    company: c.company,
                    email: c.email,
                    source: "http".into(),
                })
                .collect())
        })
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    phone_number: String,
}

pub fn lookup_contact() -> FnTool {
    FnTool::new(
        ToolSpec {
            name: "lookup_contact".into(),
            description: "Look up who a phone number belongs to in the company's contacts. \
            Any format works (\"(555) 010-0123\", \"+1 555 010 0123\"). Returns the \
            contact's name, numbers, company and email."
                .into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "phone_number": {"type": "string", "description": "The number to look up, in any format."}
                },
                "required": ["phone_number"],
                "additionalProperties": false
            }),
            output_schema: Some(json!({
                "type": "object",
                "properties": {
                    "phone_number": {"type": "string"},
                    "found": {"type": "boolean"},
                    "contacts": {"type": "array", "items": {"type": "object"}}
                },
                "required": ["phone_number", "found", "contacts"]
            })),
            annotations: ToolAnnotations {
                read_only: true,
                idempotent: true,
                open_world: true,
                ..Default::default()
            },
            call_bound: false,
        },
        |control, ctx, args| Box::pin(run(control, ctx, args)),
    )
}

fn describe(c: &Found) -> String {
    let mut s = c.name.clone();
    if let Some(co) = &c.company {
        s.push_str(&format!(" ({co})"));
    }
    if !c.numbers.is_empty() {
        s.push_str(&format!(", {}", c.numbers.join(", ")));
    }
    if let Some(e) = &c.email {
        s.push_str(&format!(", {e}"));
    }
    s
}

async fn run(
    control: &CallControl,
    ctx: &ToolContext,
    args: Value,
) -> Result<ToolOutput, ToolError> {
    let Args { phone_number } = arguments(args)?;
    let account = ctx.account_row(control).await?;
    let e164 = phone::normalize(&phone_number, &account.region).ok_or_else(|| {
        ToolError::InvalidArguments(format!(
            "{phone_number:?} is not a phone number (give it with its area code, e.g. +15550100123)"
        ))
    })?;
    let store = control.store();
    let sources: [&dyn ContactSource; 2] = [&NativeContacts(store), &HttpContacts];
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for source in sources {
        match source.lookup(&account, &e164).await {
            Ok(f) if !f.is_empty() => {
                found = f;
                break;
            }
            Ok(_) => {}
            Err(e) => failures.push(e),
        }
    }
    if found.is_empty() {
        if !failures.is_empty() {
            tracing::warn!(account = %account.name, errors = ?failures, "contact lookup");
        }
        let mut text = format!("no contact found for {e164}");
        if !failures.is_empty() {
            text.push_str(&format!(" ({})", failures.join("; ")));
        }
        return Ok(ToolOutput::with(
            text,
            json!({"phone_number": e164, "found": false, "contacts": []}),
        ));
    }
    let text = found.iter().map(describe).collect::<Vec<_>>().join("\n");
    Ok(ToolOutput::with(
        text,
        json!({"phone_number": e164, "found": true, "contacts": found}),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn http_bodies_in_three_shapes() {
        let one =
            http_contacts(r#"{"name":"Ann","phone":"+15550100123","company":"Acme"}"#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].company.as_deref(), Some("Acme"));
        let many = http_contacts(r#"[{"name":"A"},{"name":"B","numbers":["1"]}]"#).unwrap();
        assert_eq!(many.len(), 2);
        let wrapped = http_contacts(r#"{"contacts":[{"name":"C"}]}"#).unwrap();
        assert_eq!(wrapped[0].name, "C");
        assert!(http_contacts("nope").is_err());
        assert!(http_contacts(r#"{"nom":"x"}"#).is_err());
    }

    #[test]
    fn numbers_are_url_encoded() {
        assert_eq!(urlencode("+15550100123"), "%2B15550100123");
    }
}
