//! Serializing an [`Sdp`] to the bytes that go in a SIP body: CRLF line ends
//! and the line order RFC 8866 §5 prescribes (strict peers reject anything
//! else). The kept-verbatim `other` lines are placed by their type letter,
//! keeping their relative order, so t=/r= pairs stay together.

use super::{Attribute, Connection, Media, Sdp};

/// Where a kept line goes among the lines around it; c= sits between the
/// ranks below 4 and the rest, a= after all of them. t= and r= share a rank
/// because each r= belongs to the t= before it.
fn rank(kind: char) -> u8 {
    match kind {
        'i' => 0,
        'u' => 1,
        'e' => 2,
        'p' => 3,
        'b' => 4,
        't' | 'r' => 5,
        'z' => 6,
        'k' => 7,
        _ => 8,
    }
}

/// Ranks below this go before c=.
const BEFORE_C: u8 = 4;

pub(super) fn to_bytes(sdp: &Sdp) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    line(&mut out, 'v', &sdp.version.to_string());
    let o = &sdp.origin;
    line(
        &mut out,
        'o',
        &format!(
            "{} {} {} {} {} {}",
            o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
        ),
    );
    // RFC 8866 §5.3: a session without a name says "s= ", never "s=".
    let name = if sdp.session_name.is_empty() {
        " "
    } else {
        &sdp.session_name
    };
    line(&mut out, 's', name);

    let other = ordered(&sdp.other);
    let (early, late) = other.split_at(other.partition_point(|(k, _)| rank(*k) < BEFORE_C));
    kept(&mut out, early);
    connection(&mut out, sdp.connection.as_ref());
    // RFC 8866 requires a t= line; "t=0 0" (unbounded) is what every SIP
    // agent means, so supply it rather than send an invalid body.
    if late.iter().any(|(k, _)| *k == 't') {
        kept(&mut out, late);
    } else {
        let (before_t, after_t) =
            late.split_at(late.partition_point(|(k, _)| rank(*k) < rank('t')));
        kept(&mut out, before_t);
        line(&mut out, 't', "0 0");
        kept(&mut out, after_t);
    }
    attributes(&mut out, &sdp.attributes);

    for m in &sdp.media {
        media(&mut out, m);
    }
    out.into_bytes()
}

fn media(out: &mut String, m: &Media) {
    let mut value = format!("{} {}", m.kind, m.port);
    if let Some(count) = m.port_count {
        value.push_str(&format!("/{count}"));
    }
    value.push(' ');
    value.push_str(&m.proto);
    for f in &m.formats {
        value.push(' ');
        value.push_str(f);
    }
    line(out, 'm', &value);
    let other = ordered(&m.other);
    let (early, late) = other.split_at(other.partition_point(|(k, _)| rank(*k) < BEFORE_C));
    kept(out, early);
    connection(out, m.connection.as_ref());
    kept(out, late);
    attributes(out, &m.attributes);
}

/// The kept lines, stably sorted into RFC order.
fn ordered(other: &[(char, String)]) -> Vec<&(char, String)> {
    let mut v: Vec<&(char, String)> = other.iter().collect();
    v.sort_by_key(|(k, _)| rank(*k));
    v
}

fn kept(out: &mut String, lines: &[&(char, String)]) {
    for (k, v) in lines {
        line(out, *k, v);
    }
}

fn connection(out: &mut String, c: Option<&Connection>) {
    if let Some(c) = c {
        line(
            out,
            'c',
            &format!("{} {} {}", c.net_type, c.addr_type, c.address),
        );
    }
}

fn attributes(out: &mut String, attrs: &[Attribute]) {
    for a in attrs {
        match &a.value {
            Some(v) => line(out, 'a', &format!("{}:{v}", a.name)),
            None => line(out, 'a', &a.name),
        }
    }
}

fn line(out: &mut String, kind: char, value: &str) {
    out.push(kind);
    out.push('=');
    out.push_str(value);
    out.push_str("\r\n");
}
