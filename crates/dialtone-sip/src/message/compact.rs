//! Header-section normalisation: compact header names (RFC 3261 §7.3.3 and
//! the extension RFCs: `i`, `m`, `v`, `f`, `t`, `l`, `c`, `k`, `s`, `e`, `o`,
//! `u`, `r`, `b`, `x`, `a`, `j`, `d`, `y`, `n`) are expanded to their full
//! names, folded lines (LWS continuation lines starting with SP/HTAB) are
//! unfolded into one, and whitespace between a header name and its colon is
//! dropped. Only the header section is touched; the start line and the body
//! are left as they are. Nothing is copied when nothing needs changing.
//!
//! [`header_lines`] does the same lazily, one logical header at a time, and
//! is what the parser, the framer and the error-response builder use.

use std::borrow::Cow;

use super::grammar::{find_byte, is_token_byte, is_wsp};

/// Full name for a compact header form (case-insensitive), or `None`.
pub fn expand(name: &str) -> Option<&'static str> {
    let [c] = name.as_bytes() else {
        return None;
    };
    Some(match c.to_ascii_lowercase() {
        b'i' => "Call-ID",
        b'm' => "Contact",
        b'v' => "Via",
        b'f' => "From",
        b't' => "To",
        b'l' => "Content-Length",
        b'c' => "Content-Type",
        b'k' => "Supported",
        b's' => "Subject",
        b'e' => "Content-Encoding",
        b'o' => "Event",
        b'u' => "Allow-Events",
        b'r' => "Refer-To",
        b'b' => "Referred-By",
        b'x' => "Session-Expires",
        b'a' => "Accept-Contact",
        b'j' => "Reject-Contact",
        b'd' => "Request-Disposition",
        b'y' => "Identity",
        b'n' => "Identity-Info",
        _ => return None,
    })
}

/// One logical header line: the name (compact forms expanded, trailing
/// whitespace removed) and the value (unfolded, trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader<'a> {
    pub name: &'a str,
    pub value: Cow<'a, [u8]>,
}

/// A header line that is not `name: value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedLine<'a>(pub &'a [u8]);

/// Iterates over the logical header lines of a header section (the bytes
/// between the start line's CRLF and the empty line, without either).
pub fn header_lines(section: &[u8]) -> HeaderLines<'_> {
    HeaderLines { rest: section }
}

/// Iterator returned by [`header_lines`].
pub struct HeaderLines<'a> {
    rest: &'a [u8],
}

/// Splits off one physical line (without its CRLF).
fn next_line(buf: &[u8]) -> (&[u8], &[u8]) {
    match find_crlf(buf) {
        Some(i) => (&buf[..i], &buf[i + 2..]),
        None => (buf, &[]),
    }
}

pub(crate) fn find_crlf(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = find_byte(b'\n', &buf[from..]) {
        let lf = from + i;
        if lf > 0 && buf[lf - 1] == b'\r' {
            return Some(lf - 1);
        }
        from = lf + 1;
    }
    None
}

fn trim_wsp(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if !is_wsp(*first) {
            break;
        }
        b = rest;
    }
    while let [rest @ .., last] = b {
        if !is_wsp(*last) {
            break;
        }
        b = rest;
    }
    b
}

impl<'a> Iterator for HeaderLines<'a> {
    type Item = Result<RawHeader<'a>, MalformedLine<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, mut rest) = next_line(self.rest);
        // Gather continuation lines.
        let mut folded: Option<Vec<u8>> = None;
        while rest.first().is_some_and(|&b| is_wsp(b)) {
            let (cont, after) = next_line(rest);
            let buf = folded.get_or_insert_with(|| line.to_vec());
            while buf.last().is_some_and(|&b| is_wsp(b)) {
                buf.pop();
            }
            buf.push(b' ');
            buf.extend_from_slice(trim_wsp(cont));
            rest = after;
        }
        self.rest = rest;
        if line.first().is_some_and(|&b| is_wsp(b)) {
            // A continuation with nothing to continue.
            return Some(Err(MalformedLine(line)));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Some(Err(MalformedLine(line)));
        };
        let name = trim_wsp(&line[..colon]);
        if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
            return Some(Err(MalformedLine(line)));
        }
        // Token bytes are ASCII, so this cannot fail.
        let Ok(name) = std::str::from_utf8(name) else {
            return Some(Err(MalformedLine(line)));
        };
        let name = expand(name).unwrap_or(name);
        let value = match folded {
            None => Cow::Borrowed(trim_wsp(&line[colon + 1..])),
            Some(buf) => {
                let v = trim_wsp(&buf[colon + 1..]);
                Cow::Owned(v.to_vec())
            }
        };
        Some(Ok(RawHeader { name, value }))
    }
}

/// Normalises a whole message (start line, headers, body): expands compact
/// names, unfolds continuation lines and removes whitespace before colons.
/// Borrows `msg` when it is already normal.
pub fn normalize(msg: &[u8]) -> Cow<'_, [u8]> {
    let Some(start_end) = find_crlf(msg) else {
        return Cow::Borrowed(msg);
    };
    let head_start = start_end + 2;
    let (section, tail_start) = match find_crlf_crlf(&msg[start_end..]) {
        Some(i) => (&msg[head_start..start_end + i + 2], start_end + i + 2),
        None => (&msg[head_start..], msg.len()),
    };
    if !needs_normalizing(section) {
        return Cow::Borrowed(msg);
    }
    let mut out = Vec::with_capacity(msg.len());
    out.extend_from_slice(&msg[..head_start]);
    for item in header_lines(section) {
        match item {
            Ok(h) => {
                out.extend_from_slice(h.name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(&h.value);
            }
            Err(MalformedLine(line)) => out.extend_from_slice(line),
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&msg[tail_start..]);
    Cow::Owned(out)
}

/// Index of the first CRLFCRLF in `buf`, if any.
pub(crate) fn find_crlf_crlf(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = find_crlf(&buf[from..]) {
        let at = from + i;
        if buf[at + 2..].starts_with(b"\r\n") {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

fn needs_normalizing(section: &[u8]) -> bool {
    let mut rest = section;
    while !rest.is_empty() {
        let (line, after) = next_line(rest);
        if line.first().is_some_and(|&b| is_wsp(b)) {
            return true; // folding
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = &line[..colon];
            if name.last().is_some_and(|&b| is_wsp(b)) {
                return true;
            }
            if name.len() == 1 && std::str::from_utf8(name).ok().and_then(expand).is_some() {
                return true;
            }
        }
        rest = after;
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<(String, String)> {
        header_lines(s.as_bytes())
            .map(|h| {
                let h = h.unwrap();
                (
                    h.name.to_string(),
                    String::from_utf8(h.value.into_owned()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn expands_every_compact_form() {
        let pairs = [
            ("i", "Call-ID"),
            ("m", "Contact"),
            ("v", "Via"),
            ("f", "From"),
            ("t", "To"),
            ("l", "Content-Length"),
            ("c", "Content-Type"),
            ("k", "Supported"),
            ("s", "Subject"),
            ("e", "Content-Encoding"),
            ("o", "Event"),
            ("u", "Allow-Events"),
            ("r", "Refer-To"),
            ("b", "Referred-By"),
            ("x", "Session-Expires"),
            ("a", "Accept-Contact"),
            ("j", "Reject-Contact"),
            ("d", "Request-Disposition"),
            ("y", "Identity"),
            ("n", "Identity-Info"),
        ];
        for (c, full) in pairs {
            assert_eq!(expand(c), Some(full));
            assert_eq!(expand(&c.to_uppercase()), Some(full));
        }
        assert_eq!(expand("q"), None);
        assert_eq!(expand("To"), None);
    }

    #[test]
    fn unfolds_and_trims() {
        let got = lines("TO :\r\n sip:a@b ;tag = 1\r\ncseq: 0009\r\n  INVITE\r\nXy: a,\r\n\t b \r\nv  : SIP/2.0/UDP h");
        assert_eq!(
            got,
            vec![
                ("TO".into(), "sip:a@b ;tag = 1".into()),
                ("cseq".into(), "0009 INVITE".into()),
                ("Xy".into(), "a, b".into()),
                ("Via".into(), "SIP/2.0/UDP h".into()),
            ]
        );
    }

    #[test]
    fn borrows_unfolded_values() {
        let mut it = header_lines(b"Via: SIP/2.0/UDP h\r\nl: 0");
        assert!(matches!(
            it.next(),
            Some(Ok(RawHeader {
                value: Cow::Borrowed(_),
                ..
            }))
        ));
        let h = it.next().unwrap().unwrap();
        assert_eq!(h.name, "Content-Length");
    }

    #[test]
    fn malformed_lines() {
        let mut it = header_lines(b" leading\r\nnocolon\r\nba d: x\r\n: x\r\nok:1");
        assert!(it.next().unwrap().is_err());
        assert!(it.next().unwrap().is_err());
        assert!(it.next().unwrap().is_err());
        assert!(it.next().unwrap().is_err());
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().is_none());
    }

    #[test]
    fn normalize_borrows_when_clean() {
        let m = b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\nCall-ID: y\r\n\r\nbody\r\n i: z";
        assert!(matches!(normalize(m), Cow::Borrowed(_)));
    }

    #[test]
    fn normalize_rewrites_only_the_header_section() {
        let m = b"OPTIONS sip:a SIP/2.0\r\ni: y\r\nSubject : a\r\n  b\r\n\r\nl: body\r\n x";
        let n = normalize(m);
        assert_eq!(
            std::str::from_utf8(&n).unwrap(),
            "OPTIONS sip:a SIP/2.0\r\nCall-ID: y\r\nSubject: a b\r\n\r\nl: body\r\n x"
        );
    }

    #[test]
    fn crlf_search() {
        assert_eq!(find_crlf(b"ab\r\ncd"), Some(2));
        assert_eq!(find_crlf(b"\r\r\n"), Some(1));
        assert_eq!(find_crlf(b"abc\r"), None);
        assert_eq!(find_crlf_crlf(b"a\r\nb\r\n\r\nc"), Some(4));
        assert_eq!(find_crlf_crlf(b"a\r\n\r"), None);
    }
}
