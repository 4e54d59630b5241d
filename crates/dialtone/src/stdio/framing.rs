//! The wire pieces of `dialtone mcp-stdio`, apart from any I/O they are
//! used with: newline-delimited JSON-RPC on stdin (lines bounded in
//! length, blank ones skipped), JSON-RPC error answers addressed to the
//! requests a message carried, an incremental parser for the SSE framing
//! Streamable HTTP answers may use, and where the proxy goes by default.

use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// What one stdin line was.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// A JSON value (a message, or a batch of them).
    Message(Value),
    /// Nothing but whitespace: ignored.
    Blank,
    /// Not JSON, or longer than allowed: answered with a parse error.
    Bad(String),
}

/// Reads the next line (at most `max` bytes; a longer one is consumed to
/// its end and reported as [`Line::Bad`]); None at end of input.
pub async fn next_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Line>> {
    buf.clear();
    let mut too_long = false;
    let mut seen = false;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            if !seen {
                return Ok(None);
            }
            break;
        }
        seen = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() + take > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        r.consume(take);
        if done {
            break;
        }
    }
    if too_long {
        return Ok(Some(Line::Bad(format!("message longer than {max} bytes"))));
    }
    Ok(Some(parse_line(buf)))
}

/// One line's meaning.
pub fn parse_line(bytes: &[u8]) -> Line {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Line::Blank;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => Line::Message(v),
        Ok(_) => Line::Bad("a JSON-RPC message is an object".into()),
        Err(e) => Line::Bad(format!("not JSON: {e}")),
    }
}

/// What kind of message a client sent, for how it is forwarded.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// `initialize`: forwarded alone, and its answer opens the session.
    Initialize,
    /// A request (not initialize): forwarded concurrently with others.
    Request,
    /// Notifications, responses to the server, batches: forwarded in order.
    Other,
}

pub fn kind(msg: &Value) -> Kind {
    let is_request = msg.get("id").is_some_and(|id| !id.is_null()) && msg.get("method").is_some();
    match msg.get("method").and_then(Value::as_str) {
        Some("initialize") if is_request => Kind::Initialize,
        _ if is_request => Kind::Request,
        _ => Kind::Other,
    }
}

/// The ids of the requests `msg` carries (one, or each of a batch's), the
/// ones that must get an answer whatever happens.
pub fn request_ids(msg: &Value) -> Vec<Value> {
    let one = |m: &Value| match (m.get("method"), m.get("id")) {
        (Some(_), Some(id)) if !id.is_null() => Some(id.clone()),
        _ => None,
    };
    match msg {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        m => one(m).into_iter().collect(),
    }
}

/// A JSON-RPC error answer.
pub fn error_response(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The id of a response (result or error) among the messages a server sent.
pub fn response_id(msg: &Value) -> Option<&Value> {
    if msg.get("method").is_some() {
        return None;
    }
    msg.get("id")
}

/// `/mcp` on the configured HTTP listener, reached on loopback when it
/// listens on every address.
pub fn default_url(listen: &str) -> String {
    let (host, port) = listen.rsplit_once(':').unwrap_or((listen, "8080"));
    let host = match host {
        "" | "0.0.0.0" | "*" => "127.0.0.1",
        "[::]" | "::" => "[::1]",
        h => h,
    };
    format!("http://{host}:{port}/mcp")
}

/// A `--header 'name: value'` argument.
pub fn parse_header(arg: &str) -> Result<(String, String), String> {
    let (name, value) = arg
        .split_once(':')
        .ok_or_else(|| format!("--header {arg:?}: expected \"name: value\""))?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() {
        return Err(format!("--header {arg:?}: the name is empty"));
    }
    Ok((name.to_string(), value.to_string()))
}

/// One server-sent event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

/// An incremental `text/event-stream` parser: feed it chunks as they come,
/// take the complete events.
#[derive(Default)]
pub struct SseParser {
    line: Vec<u8>,
    current: SseEvent,
    has_data: bool,
    /// The previous chunk ended in `\r`: a `\n` starting the next is part
    /// of the same line ending.
    after_cr: bool,
}

/// The most one event may hold, so a broken stream cannot grow memory.
pub const MAX_EVENT: usize = 16 * 1024 * 1024;

impl SseParser {
    /// The events `chunk` completed; Err when one grows past [`MAX_EVENT`].
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, String> {
        let mut out = Vec::new();
        for &b in chunk {
            let after_cr = std::mem::take(&mut self.after_cr);
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(e) = self.field(&line) {
                        out.push(e);
                    }
                }
                _ => {
                    if self.line.len() + self.current.data.len() >= MAX_EVENT {
                        return Err(format!("an event longer than {MAX_EVENT} bytes"));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(out)
    }

    /// Applies one line; a blank line completes the event.
    fn field(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            let e = std::mem::take(&mut self.current);
            let dispatch = std::mem::take(&mut self.has_data);
            return dispatch.then_some(e);
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            return None;
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match name {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.current.event = Some(value.to_string()),
            "id" => self.current.id = Some(value.to_string()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = input;
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(l) = next_line(&mut r, max, &mut buf).await.unwrap() {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn stdin_is_newline_delimited_json_bounded_per_line() {
        let input = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n\n  \r\nnot json\n[1]\n\"x\"\n{\"id\":2}";
        let got = lines(input, 1024).await;
        assert_eq!(got.len(), 7, "{got:?}");
        assert_eq!(
            got[0],
            Line::Message(json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
        );
        assert_eq!(got[1], Line::Blank);
        assert_eq!(got[2], Line::Blank);
        assert!(matches!(&got[3], Line::Bad(m) if m.starts_with("not JSON")));
        assert_eq!(got[4], Line::Message(json!([1])));
        assert!(matches!(&got[5], Line::Bad(m) if m.contains("object")));
        assert_eq!(got[6], Line::Message(json!({"id": 2})));
        // The last line needs no newline.
        let got = lines(b"{\"id\":2}", 1024).await;
        assert_eq!(got, vec![Line::Message(json!({"id": 2}))]);
        // A line past the limit is refused and skipped; the next one reads.
        let long = format!("{{\"p\":\"{}\"}}\n{{\"id\":3}}\n", "x".repeat(100));
        let got = lines(long.as_bytes(), 64).await;
        assert!(matches!(&got[0], Line::Bad(m) if m.contains("longer than 64")));
        assert_eq!(got[1], Line::Message(json!({"id": 3})));
        assert!(lines(b"", 64).await.is_empty());
    }

    #[test]
    fn messages_are_sorted_by_how_they_are_forwarded() {
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{}});
        assert_eq!(kind(&init), Kind::Initialize);
        assert_eq!(
            kind(&json!({"id":"a","method":"tools/list"})),
            Kind::Request
        );
        assert_eq!(
            kind(&json!({"method":"notifications/initialized"})),
            Kind::Other
        );
        assert_eq!(kind(&json!({"method":"initialize"})), Kind::Other);
        assert_eq!(kind(&json!({"id":5,"result":{}})), Kind::Other);
        assert_eq!(kind(&json!([init])), Kind::Other);
        assert_eq!(request_ids(&json!({"id":7,"method":"x"})), vec![json!(7)]);
        assert!(request_ids(&json!({"method":"n"})).is_empty());
        assert!(request_ids(&json!({"id":7,"result":{}})).is_empty());
        assert_eq!(
            request_ids(&json!([{"id":1,"method":"a"},{"method":"n"},{"id":"b","method":"c"}])),
            vec![json!(1), json!("b")]
        );
        assert_eq!(response_id(&json!({"id":3,"result":{}})), Some(&json!(3)));
        assert_eq!(response_id(&json!({"id":3,"method":"ping"})), None);
        let e = error_response(json!(4), -32001, "no");
        assert_eq!(e["id"], 4);
        assert_eq!(e["error"]["code"], -32001);
        assert_eq!(e["error"]["message"], "no");
    }

    #[test]
    fn sse_events_survive_any_chunking() {
        let text = ": keep-alive\n\nid: 0\nretry: 3000\ndata:\n\nevent: message\r\ndata: {\"id\":1,\r\ndata: \"result\":{}}\r\n\r\ndata:{\"id\":2}\n\n";
        let want = vec![
            SseEvent {
                event: None,
                data: String::new(),
                id: Some("0".into()),
            },
            SseEvent {
                event: Some("message".into()),
                data: "{\"id\":1,\n\"result\":{}}".into(),
                id: None,
            },
            SseEvent {
                event: None,
                data: "{\"id\":2}".into(),
                id: None,
            },
        ];
        for size in 1..=text.len() {
            let mut p = SseParser::default();
            let mut got = Vec::new();
            for chunk in text.as_bytes().chunks(size) {
                got.extend(p.push(chunk).unwrap());
            }
            assert_eq!(got, want, "chunks of {size}");
        }
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut p = SseParser::default();
        let big = vec![b'x'; 1024 * 1024];
        let mut failed = false;
        for _ in 0..20 {
            if p.push(&big).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }

    #[test]
    fn the_default_url_is_the_http_listener() {
        assert_eq!(default_url("127.0.0.1:8080"), "http://127.0.0.1:8080/mcp");
        assert_eq!(default_url("0.0.0.0:9000"), "http://127.0.0.1:9000/mcp");
        assert_eq!(default_url("[::]:9000"), "http://[::1]:9000/mcp");
        assert_eq!(default_url("[::1]:81"), "http://[::1]:81/mcp");
        assert_eq!(default_url("pbx.example:80"), "http://pbx.example:80/mcp");
    }

    #[test]
    fn header_arguments_are_name_colon_value() {
        assert_eq!(
            parse_header("persona_id: rec").unwrap(),
            ("persona_id".into(), "rec".into())
        );
        assert_eq!(
            parse_header("X-Call-Id:a:b").unwrap(),
            ("X-Call-Id".into(), "a:b".into())
        );
        assert!(parse_header("nocolon").is_err());
        assert!(parse_header(": v").is_err());
    }
}
