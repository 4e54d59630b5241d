//! Message framing for stream transports (RFC 3261 §18.3): finds where the
//! header section ends and how long the body is (Content-Length, compact
//! `l` and folded values included), so the TCP reader knows where one message
//! stops and the next begins. Leading CRLFs are handled per RFC 5626 §3.5.1:
//! a double CRLF is a keepalive ping, a lone CRLF (a pong, or RFC 3261 §7.5
//! noise before a start line) is carried along with the next message, whose
//! parser skips it.

use super::compact::{find_crlf_crlf, header_lines};

/// Bodies larger than this are refused outright (no SIP message comes near).
pub const MAX_CONTENT_LENGTH: usize = 16 * 1024 * 1024;

/// What [`frame`] found at the front of a stream buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameResult {
    /// No complete message yet: read more.
    NeedMore,
    /// A CRLFCRLF keepalive ping of `len` bytes to consume (and answer).
    Keepalive { len: usize },
    /// A complete message in the first `len` bytes (leading lone CRLFs
    /// included; [`super::parse`] skips them).
    Complete { len: usize },
    /// The stream cannot be framed (no, negative, non-numeric, conflicting
    /// or absurd Content-Length): answer if possible, then close.
    Invalid(String),
}

/// Frames the message at the front of `buf`.
pub fn frame(buf: &[u8]) -> FrameResult {
    if buf.starts_with(b"\r\n\r\n") {
        return FrameResult::Keepalive { len: 4 };
    }
    // Skip lone CRLFs before the start line.
    let mut skip = 0;
    while buf[skip..].starts_with(b"\r\n") {
        skip += 2;
    }
    let rest = &buf[skip..];
    if rest.is_empty() || rest == b"\r" {
        return FrameResult::NeedMore;
    }
    // The header section ends at the first CRLFCRLF (the start line's CRLF
    // may be the first half when there are no headers).
    let Some(end) = find_crlf_crlf(rest) else {
        return FrameResult::NeedMore;
    };
    let body_start = end + 4;
    let section = match super::compact::find_crlf(rest) {
        // Headers run from after the start line up to the blank line.
        Some(sl) if sl + 2 <= end + 2 => &rest[sl + 2..end + 2],
        _ => &rest[..0],
    };
    match content_length(section) {
        Ok(Some(len)) => match skip
            .checked_add(body_start)
            .and_then(|n| n.checked_add(len))
        {
            Some(total) if buf.len() >= total => FrameResult::Complete { len: total },
            Some(_) => FrameResult::NeedMore,
            None => FrameResult::Invalid("Content-Length overflows".into()),
        },
        Ok(None) => FrameResult::Invalid("no Content-Length on a stream transport".into()),
        Err(e) => FrameResult::Invalid(e),
    }
}

/// The Content-Length of a header section: `Ok(None)` when absent, an error
/// when malformed or when several values disagree.
pub(crate) fn content_length(section: &[u8]) -> Result<Option<usize>, String> {
    let mut found: Option<usize> = None;
    for h in header_lines(section).flatten() {
        if !h.name.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        let n = parse_length(&h.value)?;
        match found {
            Some(prev) if prev != n => {
                return Err(format!("conflicting Content-Length values {prev} and {n}"));
            }
            _ => found = Some(n),
        }
    }
    Ok(found)
}

/// Parses a Content-Length value: 1*DIGIT, at most [`MAX_CONTENT_LENGTH`].
pub(crate) fn parse_length(v: &[u8]) -> Result<usize, String> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(format!(
            "bad Content-Length {:?}",
            String::from_utf8_lossy(v)
        ));
    }
    let mut n: usize = 0;
    for &d in v {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(d - b'0')))
            .filter(|&n| n <= MAX_CONTENT_LENGTH)
            .ok_or_else(|| "Content-Length too large".to_string())?;
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nl: 5\r\n\r\nhello";

    #[test]
    fn complete_and_partial() {
        assert_eq!(frame(MSG), FrameResult::Complete { len: MSG.len() });
        for cut in 0..MSG.len() {
            assert_eq!(frame(&MSG[..cut]), FrameResult::NeedMore, "cut at {cut}");
        }
        let mut two = MSG.to_vec();
        two.extend_from_slice(b"SIP/2.0 200 OK\r\n");
        assert_eq!(frame(&two), FrameResult::Complete { len: MSG.len() });
    }

    #[test]
    fn keepalives() {
        assert_eq!(frame(b"\r\n\r\n"), FrameResult::Keepalive { len: 4 });
        assert_eq!(frame(b"\r\n\r\nOPTIONS"), FrameResult::Keepalive { len: 4 });
        assert_eq!(frame(b"\r\n"), FrameResult::NeedMore);
        assert_eq!(frame(b"\r\n\r"), FrameResult::NeedMore);
        let mut m = b"\r\n".to_vec();
        m.extend_from_slice(MSG);
        assert_eq!(frame(&m), FrameResult::Complete { len: m.len() });
    }

    #[test]
    fn folded_and_compact_content_length() {
        let m = b"SIP/2.0 200 OK\r\nContent-Length :\r\n 2\r\n\r\nokEXTRA";
        assert_eq!(frame(m), FrameResult::Complete { len: m.len() - 5 });
        let m = b"SIP/2.0 200 OK\r\nL: 0\r\n\r\n";
        assert_eq!(frame(m), FrameResult::Complete { len: m.len() });
    }

    #[test]
    fn invalid_streams() {
        let cases: [&[u8]; 5] = [
            b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n",
            b"OPTIONS sip:a SIP/2.0\r\nContent-Length: -999\r\n\r\n",
            b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 13\r\nl: 5\r\n\r\n",
            b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 1x\r\n\r\n",
        ];
        for c in cases {
            assert!(
                matches!(frame(c), FrameResult::Invalid(_)),
                "{:?}",
                String::from_utf8_lossy(c)
            );
        }
        // The same value twice is not a conflict.
        let m = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\nl: 0\r\n\r\n";
        assert_eq!(frame(m), FrameResult::Complete { len: m.len() });
    }

    #[test]
    fn no_headers_at_all() {
        assert!(matches!(
            frame(b"OPTIONS sip:a SIP/2.0\r\n\r\n"),
            FrameResult::Invalid(_)
        ));
    }
}
