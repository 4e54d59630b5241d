//! The template language of API-request tools (URL, header values, body):
//! `{name}` is replaced by the model's argument `name`, `${NAME}` by the
//! environment variable NAME when the request is made (how secrets reach a
//! request without being stored), and everything else is literal — so a JSON
//! body's own braces (`{"id": {id}}`) need no escaping. A `{` not followed by
//! an identifier and `}` is literal; a `${` must be a complete `${NAME}`.

/// One piece of a parsed template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplatePart<'a> {
    /// Copied as is.
    Text(&'a str),
    /// `{name}`: the tool argument `name`.
    Variable(&'a str),
    /// `${NAME}`: the environment variable NAME, read at call time.
    Env(&'a str),
}

/// The template in pieces, in order; Err says what is malformed (an
/// unclosed or invalid `${…}`).
pub fn parse_template(template: &str) -> Result<Vec<TemplatePart<'_>>, String> {
    let mut parts = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    let bytes = template.as_bytes();
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                let name_start = i + 2;
                let Some(len) = identifier_len(&template[name_start..]) else {
                    return Err(format!(
                        "\"${{\" at byte {i} must be followed by an environment variable name \
                         (letters, digits, _) and \"}}\""
                    ));
                };
                if bytes.get(name_start + len) != Some(&b'}') {
                    return Err(format!(
                        "\"${{{}\" is not closed with \"}}\"",
                        &template[name_start..name_start + len]
                    ));
                }
                push_text(&mut parts, &template[text_start..i]);
                parts.push(TemplatePart::Env(&template[name_start..name_start + len]));
                i = name_start + len + 1;
                text_start = i;
            }
            b'{' => match identifier_len(&template[i + 1..]) {
                Some(len) if bytes.get(i + 1 + len) == Some(&b'}') => {
                    push_text(&mut parts, &template[text_start..i]);
                    parts.push(TemplatePart::Variable(&template[i + 1..i + 1 + len]));
                    i += len + 2;
                    text_start = i;
                }
                _ => i += 1,
            },
            _ => i += 1,
        }
    }
    push_text(&mut parts, &template[text_start..]);
    Ok(parts)
}

/// Whether `name` is an identifier: a letter or '_', then letters, digits, '_'.
pub(crate) fn is_identifier(name: &str) -> bool {
    identifier_len(name) == Some(name.len())
}

/// The length of the identifier `s` starts with, if it starts with one.
fn identifier_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {}
        _ => return None,
    }
    Some(
        bytes
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count(),
    )
}

fn push_text<'a>(parts: &mut Vec<TemplatePart<'a>>, text: &'a str) {
    if !text.is_empty() {
        parts.push(TemplatePart::Text(text));
    }
}

#[cfg(test)]
mod tests {
    use super::TemplatePart::{Env, Text, Variable};
    use super::*;

    #[test]
    fn variables_env_and_literal_braces() {
        assert_eq!(
            parse_template("https://crm.example/orders/{order_id}?key=${CRM_KEY}"),
            Ok(vec![
                Text("https://crm.example/orders/"),
                Variable("order_id"),
                Text("?key="),
                Env("CRM_KEY"),
            ])
        );
        assert_eq!(
            parse_template(r#"{"id": {id}, "note": "{ not a var }", "$": 1}"#),
            Ok(vec![
                Text(r#"{"id": "#),
                Variable("id"),
                Text(r#", "note": "{ not a var }", "$": 1}"#),
            ])
        );
        assert_eq!(
            parse_template("Bearer ${TOKEN}"),
            Ok(vec![Text("Bearer "), Env("TOKEN")])
        );
        assert_eq!(parse_template(""), Ok(vec![]));
        assert_eq!(
            parse_template("{a}{b}"),
            Ok(vec![Variable("a"), Variable("b")])
        );
    }

    #[test]
    fn malformed_env_references() {
        for bad in ["${", "${TOKEN", "${1X}", "${}", "x ${A-B}"] {
            assert!(parse_template(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("order_id"));
        assert!(is_identifier("_x1"));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier(""));
    }
}
