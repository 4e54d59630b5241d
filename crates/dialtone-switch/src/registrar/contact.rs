//! Reading a REGISTER's Contact list (RFC 3261 §10.2.1, §20.10): the
//! wildcard `*`, and for each contact its URI, `expires` and `q` parameters
//! and the RFC 5626 `+sip.instance`.

use dialtone_sip::message::uri::format_uri;
use dialtone_sip::message::NameAddr;
use rsip::headers::UntypedHeader;
use rsip::{Header, Request};

#[derive(Debug, PartialEq)]
pub struct ContactEntry {
    /// The URI as the phone wrote it, without the header's parameters.
    pub uri: String,
    pub expires: Option<u32>,
    pub q: Option<f32>,
    pub instance: Option<String>,
}

#[derive(Debug, PartialEq)]
pub enum Contacts {
    /// No Contact header: a query for the current bindings.
    Query,
    /// `Contact: *` (valid only with `Expires: 0` and alone).
    Wildcard,
    List(Vec<ContactEntry>),
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ContactError(pub String);

pub fn contacts(req: &Request) -> Result<Contacts, ContactError> {
    let values: Vec<&str> = req
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Contact(c) => Some(c.value()),
            _ => None,
        })
        .collect();
    if values.is_empty() {
        return Ok(Contacts::Query);
    }
    if values.iter().any(|v| v.trim() == "*") {
        if values.len() > 1 {
            return Err(ContactError("Contact: * must be the only contact".into()));
        }
        return Ok(Contacts::Wildcard);
    }
    let mut out = Vec::new();
    for v in values {
        let list =
            NameAddr::parse_list(v).map_err(|e| ContactError(format!("malformed Contact: {e}")))?;
        for na in list {
            out.push(entry(&na)?);
        }
    }
    Ok(Contacts::List(out))
}

fn entry(na: &NameAddr) -> Result<ContactEntry, ContactError> {
    let q = match na.param("q").flatten() {
        None => None,
        Some(v) => {
            let q: f32 = v
                .parse()
                .map_err(|_| ContactError(format!("bad q value {v:?}")))?;
            if !(0.0..=1.0).contains(&q) {
                return Err(ContactError(format!("q value {v} outside 0..1")));
            }
            Some(q)
        }
    };
    Ok(ContactEntry {
        uri: format_uri(&na.uri),
        // A non-numeric expires is ignored (the default applies).
        expires: na
            .param("expires")
            .flatten()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|v| v.min(u64::from(u32::MAX)) as u32),
        q,
        instance: na
            .param("+sip.instance")
            .flatten()
            .map(|v| v.trim_matches('"').to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(contacts: &[&str]) -> Request {
        let mut raw = String::from(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1\r\n\
             From: <sip:1001@127.0.0.1>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\n",
        );
        for c in contacts {
            raw.push_str(&format!("Contact: {c}\r\n"));
        }
        raw.push_str("Content-Length: 0\r\n\r\n");
        Request::try_from(raw.as_str()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn no_contact_is_a_query() {
        assert_eq!(contacts(&register(&[])), Ok(Contacts::Query));
    }

    #[test]
    fn wildcard_alone() {
        assert_eq!(contacts(&register(&["*"])), Ok(Contacts::Wildcard));
        assert!(contacts(&register(&["*", "<sip:a@b>"])).is_err());
    }

    #[test]
    fn params_are_read_from_name_addr_and_addr_spec() {
        let c = contacts(&register(&[
            "\"Desk\" <sip:1001@10.0.0.1:5062;transport=udp>;expires=60;q=0.7;+sip.instance=\"<urn:uuid:1>\"",
            "sip:1001@10.0.0.2;expires=30",
        ]));
        let Ok(Contacts::List(list)) = c else {
            panic!("{c:?}")
        };
        assert_eq!(
            list[0].uri.to_ascii_lowercase(),
            "sip:1001@10.0.0.1:5062;transport=udp"
        );
        assert_eq!(list[0].expires, Some(60));
        assert_eq!(list[0].q, Some(0.7));
        assert_eq!(list[0].instance.as_deref(), Some("<urn:uuid:1>"));
        assert_eq!(list[1].uri, "sip:1001@10.0.0.2");
        assert_eq!(list[1].expires, Some(30));
    }

    #[test]
    fn comma_separated_contacts() {
        let Ok(Contacts::List(list)) = contacts(&register(&["<sip:a@h1>, <sip:b@h2>;expires=5"]))
        else {
            panic!()
        };
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].expires, Some(5));
    }

    #[test]
    fn ipv6_contact() {
        let Ok(Contacts::List(list)) = contacts(&register(&["<sip:oscar@[::1]:5062>;expires=60"]))
        else {
            panic!()
        };
        assert_eq!(list[0].uri, "sip:oscar@[::1]:5062");
        assert_eq!(list[0].expires, Some(60));
    }

    #[test]
    fn bad_q_is_an_error() {
        assert!(contacts(&register(&["<sip:a@h>;q=7"])).is_err());
    }
}
