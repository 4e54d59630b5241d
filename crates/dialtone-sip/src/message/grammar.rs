//! Low-level RFC 3261 §25 grammar helpers shared by the parser and the typed
//! headers: character classes, quoted strings, the LWS squeeze that turns
//! `a ; b = c` into `a;b=c`, top-level list splitting and `;name=value`
//! parameter lists. Everything here works on `&str` and only ever slices at
//! ASCII bytes, so it cannot split a UTF-8 character.

use std::borrow::Cow;

/// `token` characters (RFC 3261 §25.1), as a lookup table.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// `token` characters (RFC 3261 §25.1).
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// Byte index of the ASCII byte `c` in a (short) string; cheaper than
/// `str::find` for the few dozen bytes of a header field.
pub(crate) fn pos(s: &str, c: u8) -> Option<usize> {
    s.bytes().position(|b| b == c)
}

/// `s` split at the first ASCII byte `c` (which is dropped).
pub(crate) fn split_at_byte(s: &str, c: u8) -> Option<(&str, &str)> {
    pos(s, c).map(|i| (&s[..i], &s[i + 1..]))
}

/// Index of the first `needle` in `hay`, eight bytes at a time.
pub(crate) fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| base + i)
}

/// Whether `s` is a non-empty `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// SP or HTAB.
pub(crate) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Whether `s` contains whitespace or control characters (never allowed in
/// URIs, tokens or Call-IDs).
pub(crate) fn has_ws_or_ctl(s: &str) -> bool {
    s.bytes().any(|b| b <= b' ' || b == 0x7f)
}

/// Given `s` starting with `"`, returns the byte index just past the closing
/// quote, honouring `\` quoted-pairs. `None` when the quote is unbalanced.
pub(crate) fn quoted_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Separators around which LWS carries no meaning (SEMI, EQUAL, COMMA, SLASH
/// are all defined with surrounding SWS in RFC 3261 §25.1).
fn is_squeeze_sep(b: u8) -> bool {
    matches!(b, b';' | b'=' | b',' | b'/')
}

/// Removes LWS that RFC 3261 makes insignificant: at both ends and around
/// `; = , /`, and collapses any other run to one SP. Quoted strings and
/// `<...>` are copied untouched (whitespace inside `<>` stays, so that the
/// URI parser can reject it). Borrows when nothing changes.
pub(crate) fn squeeze(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    // Fast path: does anything need to change?
    if !needs_squeeze(b) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut angle = false;
    let mut last: Option<u8> = None; // last byte pushed outside quotes/angles
    while i < b.len() {
        let c = b[i];
        if c == b'"' && !angle {
            let end = quoted_end(&s[i..]).map_or(b.len(), |e| i + e);
            out.push_str(&s[i..end]);
            last = Some(b'"');
            i = end;
            continue;
        }
        if angle {
            let end = s[i..].find('>').map_or(b.len(), |e| i + e + 1);
            out.push_str(&s[i..end]);
            angle = false;
            last = Some(b'>');
            i = end;
            continue;
        }
        if is_wsp(c) {
            while i < b.len() && is_wsp(b[i]) {
                i += 1;
            }
            let next = b.get(i).copied();
            let drop = last.is_none()
                || next.is_none()
                || last.is_some_and(is_squeeze_sep)
                || next.is_some_and(is_squeeze_sep);
            if !drop {
                out.push(' ');
            }
            continue;
        }
        if c == b'<' {
            angle = true;
        }
        // Copy one (possibly multi-byte) character.
        let ch_len = utf8_len(c);
        let end = (i + ch_len).min(b.len());
        out.push_str(s.get(i..end).unwrap_or(""));
        last = Some(c);
        i = end.max(i + 1);
    }
    Cow::Owned(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn needs_squeeze(b: &[u8]) -> bool {
    if b.first().is_some_and(|&c| is_wsp(c)) || b.last().is_some_and(|&c| is_wsp(c)) {
        return true;
    }
    let mut i = 0;
    let mut angle = false;
    let mut quoted = false;
    while i < b.len() {
        let c = b[i];
        if quoted {
            match c {
                b'\\' => i += 1,
                b'"' => quoted = false,
                _ => {}
            }
        } else if angle {
            if c == b'>' {
                angle = false;
            }
        } else {
            match c {
                b'"' => quoted = true,
                b'<' => angle = true,
                b'\t' => return true,
                b' ' => {
                    let prev = b[i - 1]; // i > 0: b[0] is not WSP
                    let next = b.get(i + 1).copied().unwrap_or(b' ');
                    if is_wsp(next) || is_squeeze_sep(prev) || is_squeeze_sep(next) {
                        return true;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    false
}

/// Splits `s` at `sep` bytes that are outside quoted strings and `<...>`.
pub(crate) fn split_top_level(s: &str, sep: u8) -> Vec<&str> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut angle = false;
    while i < b.len() {
        let c = b[i];
        if c == b'"' && !angle {
            i = quoted_end(&s[i..]).map_or(b.len(), |e| i + e);
            continue;
        }
        if angle {
            if c == b'>' {
                angle = false;
            }
        } else if c == b'<' {
            angle = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}

/// A generic parameter `name[=value]` as it appeared (value keeps quotes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericParam {
    pub name: String,
    pub value: Option<String>,
}

impl GenericParam {
    pub fn new(name: impl Into<String>, value: Option<String>) -> Self {
        Self {
            name: name.into(),
            value,
        }
    }
}

impl std::fmt::Display for GenericParam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(v) => write!(f, ";{}={}", self.name, v),
            None => write!(f, ";{}", self.name),
        }
    }
}

/// Parses `;name[=value]...` (already squeezed) where value is a token, a
/// host (with `[`, `]`, `:`) or a quoted string. `s` must be empty or start
/// with `;`.
pub(crate) fn parse_params(s: &str) -> Result<Vec<(&str, Option<&str>)>, String> {
    let mut out = Vec::new();
    for_each_param(s, |n, v| out.push((n, v)))?;
    Ok(out)
}

/// Checks parameters like [`parse_params`] without collecting them.
pub(crate) fn check_params(s: &str) -> Result<(), String> {
    for_each_param(s, |_, _| {})
}

fn for_each_param<'a>(
    s: &'a str,
    mut f: impl FnMut(&'a str, Option<&'a str>),
) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b';' {
            return Err(format!(
                "unexpected {:?} before parameter",
                char::from(b[i])
            ));
        }
        i += 1;
        let name_start = i;
        while i < b.len() && is_token_byte(b[i]) {
            i += 1;
        }
        let name = &s[name_start..i];
        if name.is_empty() {
            return Err("empty parameter".into());
        }
        let mut value = None;
        if b.get(i) == Some(&b'=') {
            i += 1;
            let v_start = i;
            if b.get(i) == Some(&b'"') {
                let end = quoted_end(&s[i..]).ok_or("unbalanced quote in parameter")?;
                i += end;
            } else {
                while i < b.len() && (is_token_byte(b[i]) || matches!(b[i], b'[' | b']' | b':')) {
                    i += 1;
                }
            }
            let v = &s[v_start..i];
            if v.is_empty() {
                return Err(format!("parameter {name} has an empty value"));
            }
            value = Some(v);
        }
        if i < b.len() && b[i] != b';' {
            return Err(format!(
                "bad character {:?} in parameter {name}",
                char::from(b[i])
            ));
        }
        f(name, value);
    }
    Ok(())
}

/// Decodes `%HH` escapes (RFC 3261 §25.1 `escaped`); invalid escapes are
/// kept literally. Returns bytes since `%00` and non-UTF-8 are possible.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn squeeze_removes_lws_around_separators() {
        assert_eq!(squeeze("a ; b = c"), "a;b=c");
        assert_eq!(
            squeeze("  SIP  /  2.0 / UDP   host ;branch = x , SIP/2.0/TCP h"),
            "SIP/2.0/UDP host;branch=x,SIP/2.0/TCP h"
        );
        assert_eq!(
            squeeze("\"a  b\"    <sip:x>  ;  tag = 1"),
            "\"a  b\" <sip:x>;tag=1"
        );
        assert_eq!(squeeze("< sip:x >"), "< sip:x >");
        assert_eq!(squeeze("0009   INVITE"), "0009 INVITE");
        assert!(matches!(squeeze("sip:a@b;tag=1"), Cow::Borrowed(_)));
        assert!(matches!(squeeze("\"J R\" <sip:a@b>"), Cow::Borrowed(_)));
        assert_eq!(
            squeeze("\"J Rosenberg \\\\\\\"\"       <sip:a@b> ; tag = 98"),
            "\"J Rosenberg \\\\\\\"\" <sip:a@b>;tag=98"
        );
        assert_eq!(squeeze("ä  ö"), "ä ö");
        assert_eq!(squeeze(" \t"), "");
    }

    #[test]
    fn top_level_split_respects_quotes_and_angles() {
        assert_eq!(
            split_top_level("\"a,b\" <sip:x;a=1,2>, <sip:y>", b','),
            vec!["\"a,b\" <sip:x;a=1,2>", " <sip:y>"]
        );
        assert_eq!(split_top_level("a", b','), vec!["a"]);
    }

    #[test]
    fn params() {
        assert_eq!(
            parse_params(";a=1;b;c=\"x;y\";d=[::1]").unwrap(),
            vec![
                ("a", Some("1")),
                ("b", None),
                ("c", Some("\"x;y\"")),
                ("d", Some("[::1]"))
            ]
        );
        assert!(parse_params(";;").is_err());
        assert!(parse_params(";a=").is_err());
        assert!(parse_params(";a=\"x").is_err());
        assert!(parse_params("x").is_err());
        assert_eq!(parse_params("").unwrap(), vec![]);
    }

    #[test]
    fn quoted() {
        assert_eq!(quoted_end("\"ab\\\"c\" x"), Some(7));
        assert_eq!(quoted_end("\"abc"), None);
        assert_eq!(quoted_end("\"a\\"), None);
    }

    #[test]
    fn byte_search() {
        let hay: Vec<u8> = (0..100u8).collect();
        for n in 0..100u8 {
            assert_eq!(find_byte(n, &hay), Some(usize::from(n)));
        }
        assert_eq!(find_byte(200, &hay), None);
        assert_eq!(find_byte(b'x', b""), None);
        assert_eq!(find_byte(0x80, &[0x7f, 0x81, 0x00, 0x80]), Some(3));
        assert_eq!(find_byte(1, &[0u8, 0, 0, 0, 0, 0, 0, 0, 1]), Some(8));
        assert_eq!(find_byte(0, &[1u8, 0, 0, 0, 0, 0, 0, 0]), Some(1));
    }

    #[test]
    fn decode() {
        assert_eq!(percent_decode("a%40b%zz%4"), b"a@b%zz%4".to_vec());
        assert_eq!(percent_decode("%00"), vec![0]);
    }
}
