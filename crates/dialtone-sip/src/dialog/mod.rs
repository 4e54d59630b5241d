//! Dialogs, RFC 3261 §12: the dialog id (Call-ID and the two tags), the
//! route set, local and remote CSeq, and the remote target, created from
//! the request and response that establish a dialog (§12.1), used to
//! build requests inside it (§12.2.1.1) and to check and learn from
//! requests that arrive in it (§12.2.2).

mod route;

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response, Uri};

pub use route::split_list;

use crate::transaction::{tag_of, Party};

/// Identifies a dialog from one side's point of view.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

impl DialogId {
    /// The id of the dialog a received request belongs to (we are its UAS
    /// side for this request: our tag is in To, theirs in From).
    pub fn of_request(req: &Request) -> Option<DialogId> {
        Some(DialogId {
            call_id: call_id(&req.headers)?,
            local_tag: nonempty(tag_of(&req.headers, Party::To)?)?,
            remote_tag: nonempty(tag_of(&req.headers, Party::From)?)?,
        })
    }

    /// The id of the dialog a received response belongs to (we sent the
    /// request: our tag is in From, theirs in To).
    pub fn of_response(resp: &Response) -> Option<DialogId> {
        Some(DialogId {
            call_id: call_id(&resp.headers)?,
            local_tag: nonempty(tag_of(&resp.headers, Party::From)?)?,
            remote_tag: nonempty(tag_of(&resp.headers, Party::To)?)?,
        })
    }
}

fn nonempty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn call_id(headers: &Headers) -> Option<String> {
    headers.iter().find_map(|h| match h {
        Header::CallId(c) => Some(c.value().to_string()),
        _ => None,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    Terminated,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DialogError {
    #[error("message lacks {0} needed for a dialog")]
    Missing(&'static str),
    /// §12.2.2: a request with a CSeq lower than the last one (answer 500).
    #[error("CSeq {got} is lower than {last}")]
    OutOfOrder { got: u32, last: u32 },
}

/// One dialog's state (§12).
#[derive(Clone, Debug)]
pub struct Dialog {
    pub id: DialogId,
    pub state: DialogState,
    /// Our From/To value without the tag (name-addr).
    pub local_party: String,
    pub remote_party: String,
    pub local_seq: u32,
    pub remote_seq: Option<u32>,
    pub remote_target: Uri,
    /// Route values in the order requests carry them.
    pub route_set: Vec<String>,
    pub local_contact: String,
    pub secure: bool,
}

fn strip_tag(value: &str) -> String {
    // Drop a ";tag=…" parameter, keeping every other one.
    let mut out = String::new();
    let mut in_angle = false;
    let mut quoted = false;
    let mut parts: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => in_angle = true,
            '>' if !quoted => in_angle = false,
            ';' if !quoted && !in_angle => {
                parts.push((start, i));
                start = i;
            }
            _ => {}
        }
    }
    parts.push((start, value.len()));
    for (a, b) in parts {
        let seg = &value[a..b];
        let name = seg.trim_start_matches(';').trim().to_ascii_lowercase();
        if a > 0 && name.starts_with("tag=") {
            continue;
        }
        out.push_str(seg);
    }
    out.trim().to_string()
}

fn header_value(headers: &Headers, pick: fn(&Header) -> Option<String>) -> Option<String> {
    headers.iter().find_map(pick)
}

fn contact_uri(headers: &Headers) -> Option<Uri> {
    let value = header_value(headers, |h| match h {
        Header::Contact(c) => Some(c.value().to_string()),
        _ => None,
    })?;
    let first = split_list(&value).into_iter().next()?;
    route::uri_of(&first)
}

fn record_routes(headers: &Headers) -> Vec<String> {
    headers
        .iter()
        .filter_map(|h| match h {
            Header::RecordRoute(r) => Some(r.value().to_string()),
            _ => None,
        })
        .flat_map(|v| split_list(&v))
        .collect()
}

fn cseq_of(headers: &Headers) -> Option<u32> {
    headers.iter().find_map(|h| match h {
        Header::CSeq(c) => c.seq().ok(),
        _ => None,
    })
}

fn from_to(headers: &Headers) -> Option<(String, String)> {
    let from = header_value(headers, |h| match h {
        Header::From(f) => Some(f.value().to_string()),
        _ => None,
    })?;
    let to = header_value(headers, |h| match h {
        Header::To(t) => Some(t.value().to_string()),
        _ => None,
    })?;
    Some((from, to))
}

impl Dialog {
    /// §12.1.1: the UAS side, from the request and our response that
    /// carries the To tag (a 2xx, or a 101–199 for an early dialog).
    pub fn uas(req: &Request, resp: &Response, local_contact: &str) -> Result<Dialog, DialogError> {
        let id = DialogId {
            call_id: call_id(&req.headers).ok_or(DialogError::Missing("Call-ID"))?,
            local_tag: tag_of(&resp.headers, Party::To)
                .and_then(nonempty)
                .ok_or(DialogError::Missing("To tag"))?,
            remote_tag: tag_of(&req.headers, Party::From).unwrap_or_default(),
        };
        let (from, to) = from_to(&req.headers).ok_or(DialogError::Missing("From/To"))?;
        Ok(Dialog {
            id,
            state: state_for(resp),
            local_party: strip_tag(&to),
            remote_party: strip_tag(&from),
            local_seq: 0,
            remote_seq: cseq_of(&req.headers),
            remote_target: contact_uri(&req.headers).ok_or(DialogError::Missing("Contact"))?,
            route_set: record_routes(&req.headers),
            local_contact: local_contact.to_string(),
            secure: matches!(req.uri.scheme, Some(rsip::Scheme::Sips)),
        })
    }

    /// §12.1.2: the UAC side, from the request we sent and a response with
    /// a To tag. The route set is the Record-Route in reverse.
    pub fn uac(req: &Request, resp: &Response, local_contact: &str) -> Result<Dialog, DialogError> {
        let id = DialogId::of_response(resp).ok_or(DialogError::Missing("tags or Call-ID"))?;
        let (from, _) = from_to(&req.headers).ok_or(DialogError::Missing("From/To"))?;
        let (_, to) = from_to(&resp.headers).ok_or(DialogError::Missing("From/To"))?;
        let mut route_set = record_routes(&resp.headers);
        route_set.reverse();
        Ok(Dialog {
            id,
            state: state_for(resp),
            local_party: strip_tag(&from),
            remote_party: strip_tag(&to),
            local_seq: cseq_of(&req.headers).unwrap_or(0),
            remote_seq: None,
            remote_target: contact_uri(&resp.headers).ok_or(DialogError::Missing("Contact"))?,
            route_set,
            local_contact: local_contact.to_string(),
            secure: matches!(req.uri.scheme, Some(rsip::Scheme::Sips)),
        })
    }

    /// §12.2.1.1: a new request in this dialog, with the next local CSeq.
    /// The transaction layer adds the Via.
    pub fn request(&mut self, method: Method) -> Request {
        self.local_seq += 1;
        let seq = self.local_seq;
        self.request_with_seq(method, seq)
    }

    /// A request with a given CSeq number: the ACK for a 2xx takes the
    /// INVITE's (§13.2.2.4), so it does not advance the local CSeq.
    pub fn request_with_seq(&self, method: Method, seq: u32) -> Request {
        let (uri, routes) = route::request_target(&self.remote_target, &self.route_set);
        let mut headers = Headers::default();
        for r in routes {
            headers.push(Header::Route(rsip::headers::Route::new(r)));
        }
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        headers.push(Header::From(rsip::headers::From::new(format!(
            "{};tag={}",
            self.local_party, self.id.local_tag
        ))));
        let to = if self.id.remote_tag.is_empty() {
            self.remote_party.clone()
        } else {
            format!("{};tag={}", self.remote_party, self.id.remote_tag)
        };
        headers.push(Header::To(rsip::headers::To::new(to)));
        headers.push(Header::CallId(rsip::headers::CallId::new(
            self.id.call_id.clone(),
        )));
        headers.push(Header::CSeq(rsip::headers::CSeq::new(format!(
            "{seq} {method}"
        ))));
        if !matches!(method, Method::Bye | Method::Cancel | Method::Ack) {
            headers.push(Header::Contact(rsip::headers::Contact::new(
                self.local_contact.clone(),
            )));
        }
        headers.push(Header::ContentLength(rsip::headers::ContentLength::new(
            "0",
        )));
        Request {
            method,
            uri,
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        }
    }

    /// §12.2.2: checks a request received in this dialog and learns from
    /// it: the CSeq must not go down (ACK and CANCEL reuse their INVITE's),
    /// and a target refresh (re-INVITE, UPDATE) moves the remote target.
    pub fn on_request(&mut self, req: &Request) -> Result<(), DialogError> {
        let seq = cseq_of(&req.headers).ok_or(DialogError::Missing("CSeq"))?;
        if !matches!(req.method, Method::Ack | Method::Cancel) {
            if let Some(last) = self.remote_seq {
                if seq < last {
                    return Err(DialogError::OutOfOrder { got: seq, last });
                }
            }
            self.remote_seq = Some(seq);
        }
        if is_target_refresh(&req.method) {
            if let Some(uri) = contact_uri(&req.headers) {
                self.remote_target = uri;
            }
        }
        Ok(())
    }

    /// §12.2.1.2: a 2xx to our target refresh request moves the remote
    /// target; a 2xx to the dialog-creating INVITE confirms the dialog.
    pub fn on_response(&mut self, method: &Method, resp: &Response) {
        let code = resp.status_code.code();
        if (200..300).contains(&code) {
            if is_target_refresh(method) {
                if let Some(uri) = contact_uri(&resp.headers) {
                    self.remote_target = uri;
                }
            }
            if self.state == DialogState::Early {
                self.state = DialogState::Confirmed;
            }
        }
    }
}

fn is_target_refresh(m: &Method) -> bool {
    matches!(
        m,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
    )
}

fn state_for(resp: &Response) -> DialogState {
    if resp.status_code.code() < 200 {
        DialogState::Early
    } else {
        DialogState::Confirmed
    }
}

#[cfg(test)]
mod tests;
