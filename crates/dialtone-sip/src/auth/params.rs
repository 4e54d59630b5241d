//! The `Digest k=v, k="v"` syntax shared by challenges (WWW-/Proxy-Authenticate)
//! and credentials (Authorization/Proxy-Authorization): a tolerant parser and the
//! quoting helper used when we write these headers. We do not use rsip's typed
//! auth headers because their tokenizer cannot handle escaped quotes or commas
//! inside quoted strings and they spell SHA-256 as "SHA256".

use super::AuthError;

/// A parsed `scheme param, param, ...` header value. Parameter names are
/// lowercased (they are case-insensitive); values are unquoted and unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthParams {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl AuthParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }
}

fn malformed(why: &str) -> AuthError {
    AuthError::Malformed(why.to_string())
}

// RFC 7230 tchar.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

// Header values may still carry folding whitespace depending on who parsed them.
fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Parses `scheme 1*SP auth-param *(OWS "," OWS auth-param)`.
///
/// Tolerances (all seen in the wild): empty list elements (`a=1,,b=2`),
/// whitespace around `=`, and unquoted values that are not strict tokens
/// (e.g. `uri=sip:bob@example.com`), which run up to the next comma or
/// whitespace. Duplicate parameters are refused (RFC 7235 §2.1).
pub(crate) fn parse(input: &str) -> Result<AuthParams, AuthError> {
    let mut it = input.char_indices().peekable();
    skip_ws(&mut it);
    let scheme = take_while(input, &mut it, is_tchar);
    if scheme.is_empty() {
        return Err(malformed("missing auth scheme"));
    }
    if !it.peek().is_some_and(|&(_, c)| is_ws(c)) {
        return Err(malformed("missing parameters after scheme"));
    }
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        // Skip separators: whitespace and empty list elements.
        while it.peek().is_some_and(|&(_, c)| is_ws(c) || c == ',') {
            it.next();
        }
        if it.peek().is_none() {
            break;
        }
        let name = take_while(input, &mut it, is_tchar).to_ascii_lowercase();
        if name.is_empty() {
            return Err(malformed("expected parameter name"));
        }
        skip_ws(&mut it);
        if it.next().map(|(_, c)| c) != Some('=') {
            return Err(malformed("expected '=' after parameter name"));
        }
        skip_ws(&mut it);
        let value = match it.peek() {
            Some(&(_, '"')) => {
                it.next();
                quoted(&mut it)?
            }
            _ => {
                let v = take_while(input, &mut it, |c| !is_ws(c) && c != ',' && c != '"');
                if v.is_empty() {
                    return Err(malformed("empty parameter value"));
                }
                v.to_string()
            }
        };
        if params.iter().any(|(k, _)| *k == name) {
            return Err(AuthError::Malformed(format!("duplicate parameter {name}")));
        }
        params.push((name, value));
        skip_ws(&mut it);
        match it.next() {
            None => break,
            Some((_, ',')) => {}
            Some(_) => return Err(malformed("expected ',' between parameters")),
        }
    }
    if params.is_empty() {
        return Err(malformed("no parameters"));
    }
    Ok(AuthParams {
        scheme: scheme.to_string(),
        params,
    })
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

fn skip_ws(it: &mut Chars<'_>) {
    while it.peek().is_some_and(|&(_, c)| is_ws(c)) {
        it.next();
    }
}

fn take_while<'a>(input: &'a str, it: &mut Chars<'_>, pred: impl Fn(char) -> bool) -> &'a str {
    let start = it.peek().map_or(input.len(), |&(i, _)| i);
    let mut end = start;
    while let Some(&(i, c)) = it.peek() {
        if !pred(c) {
            break;
        }
        end = i + c.len_utf8();
        it.next();
    }
    input.get(start..end).unwrap_or("")
}

// Body of a quoted-string after the opening quote; handles quoted-pair.
fn quoted(it: &mut Chars<'_>) -> Result<String, AuthError> {
    let mut out = String::new();
    loop {
        match it.next() {
            None => return Err(malformed("unterminated quoted string")),
            Some((_, '"')) => return Ok(out),
            Some((_, '\\')) => match it.next() {
                Some((_, c)) => out.push(c),
                None => return Err(malformed("unterminated quoted string")),
            },
            Some((_, c)) => out.push(c),
        }
    }
}

/// Renders `s` as a quoted-string, escaping `\` and `"`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_and_token_values() {
        let p =
            parse(r#"Digest realm="a, \"b\"", qop="auth,auth-int" ,algorithm=SHA-256,NONCE = "x""#)
                .unwrap();
        assert!(p.is_digest());
        assert_eq!(p.get("realm"), Some(r#"a, "b""#));
        assert_eq!(p.get("qop"), Some("auth,auth-int"));
        assert_eq!(p.get("algorithm"), Some("SHA-256"));
        assert_eq!(p.get("nonce"), Some("x"));
        assert_eq!(p.params.len(), 4);
    }

    #[test]
    fn tolerates_empty_elements_and_unquoted_uri() {
        let p = parse("Digest a=1,, uri=sip:bob@example.com;transport=tcp ,b=\"\"").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("uri"), Some("sip:bob@example.com;transport=tcp"));
        assert_eq!(p.get("b"), Some(""));
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            "",
            "Digest",
            "Digest ",
            "Digestrealm=\"x\"",
            "Digest realm=\"unterminated",
            "Digest realm=\"x\\",
            "Digest realm=",
            "Digest realm",
            "Digest =x",
            "Digest realm=\"x\" nonce=\"y\"",
            "Digest realm=x, realm=y",
            "Digest realm=x\"y\"",
            "\"Digest\" realm=x",
        ] {
            assert!(
                matches!(parse(bad), Err(AuthError::Malformed(_))),
                "accepted {bad:?}"
            );
        }
    }

    #[test]
    fn quote_round_trips() {
        for s in [
            "plain",
            "with \"quotes\"",
            "back\\slash",
            "comma, inside",
            "",
        ] {
            let p = parse(&format!("Digest v={}", quote(s))).unwrap();
            assert_eq!(p.get("v"), Some(s));
        }
    }
}
