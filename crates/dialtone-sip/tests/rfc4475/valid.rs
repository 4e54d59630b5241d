//! RFC 4475 §3.1.1: valid messages parse, with their interesting fields
//! checked one by one.

use super::*;

#[test]
fn wsinv_whitespace_everywhere() {
    let r = request("wsinv");
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.uri.user(), Some("vivekg"));
    assert_eq!(
        one(&r.headers, "To"),
        "sip:vivekg@chair-dnrc.example.com;tag=1918181833n"
    );
    let from = NameAddr::parse(one(&r.headers, "From")).unwrap();
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(
        from.display_name_unquoted().as_deref(),
        Some("J Rosenberg \\\"")
    );
    assert_eq!(one(&r.headers, "Max-Forwards"), "0068");
    assert_eq!(one(&r.headers, "CSeq"), "0009 INVITE");
    assert_eq!(
        values(&r.headers, "Via"),
        [
            "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw",
            "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8",
            "SIP/2.0/UDP 192.168.255.111;branch=z9hG4bK30239",
        ]
    );
    let contact = NameAddr::parse(one(&r.headers, "Contact")).unwrap();
    assert_eq!(contact.param("newparam"), Some(Some("newvalue")));
    assert_eq!(contact.param("secondparam"), Some(None));
    assert_eq!(contact.param("q"), Some(Some("0.33")));
    assert_eq!(one(&r.headers, "Subject"), "");
    assert_eq!(
        one(&r.headers, "NewFangledHeader"),
        "newfangled value continued newfangled value"
    );
    assert_eq!(r.body.len(), 150);
    // rsip's typed views read the canonical values.
    use rsip::prelude::*;
    assert_eq!(r.cseq_header().unwrap().typed().unwrap().seq, 9);
    assert_eq!(r.max_forwards_header().unwrap().num().unwrap(), 68);
    assert_eq!(
        r.to_header().unwrap().tag().unwrap().unwrap().value(),
        "1918181833n"
    );
}

#[test]
fn intmeth_unknown_method_answered_501() {
    let (status, _, resp) = rejection("intmeth");
    assert_eq!(status, 501);
    assert!(resp.starts_with("SIP/2.0 501 Not Implemented\r\n"));
    assert!(resp.contains("\r\nCSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n"));
    assert!(resp.contains("\r\nCall-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n"));
    assert!(resp.contains("\r\nVia: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n"));
    // The To with BEL, NUL and DEL in its quoted display name is copied and tagged.
    assert!(resp.contains("To: \"BEL:\\\u{7} NUL:\\\u{0} DEL:\\\u{7f}\" <sip:"));
    assert!(resp.contains("@example.com>;tag="));
}

#[test]
fn esc01_escapes_stay_escaped() {
    let r = request("esc01");
    assert_eq!(r.uri.user(), Some("sips%3Auser%40example.com"));
    assert_eq!(r.uri.host().to_string(), "example.net");
    assert_eq!(
        one(&r.headers, "Contact"),
        "<sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>"
    );
    assert_eq!(one(&r.headers, "Content-Type"), "application/sdp");
    assert_eq!(
        one(&r.headers, "Call-ID"),
        "esc01.239409asdfakjkn23onasd0-3234"
    );
    let from = NameAddr::parse(one(&r.headers, "From")).unwrap();
    assert_eq!(from.uri.user(), Some("I%20have%20spaces"));
}

#[test]
fn escnull_escaped_nul() {
    let r = request("escnull");
    let to = NameAddr::parse(one(&r.headers, "To")).unwrap();
    assert_eq!(to.uri.user(), Some("null-%00-null"));
    assert_eq!(values(&r.headers, "Contact").len(), 2);
    assert_eq!(one(&r.headers, "Content-Length"), "0");
}

#[test]
fn esc02_percent_is_not_an_escape_in_methods() {
    let (status, _, resp) = rejection("esc02");
    assert_eq!(status, 501);
    assert!(resp.contains("\r\nCSeq: 29344 RE%47IST%45R\r\n"));
    assert!(resp.contains("\r\nTo: \"%Z%45\" <sip:resource@example.com>;tag="));
}

#[test]
fn lwsdisp_no_space_before_laquot() {
    let r = request("lwsdisp");
    let from = NameAddr::parse(one(&r.headers, "From")).unwrap();
    assert_eq!(from.display_name.as_deref(), Some("caller"));
    assert_eq!(from.tag(), Some("323"));
}

#[test]
fn longreq_long_values_and_many_vias() {
    let r = request("longreq");
    assert_eq!(r.headers.iter().count(), 43);
    assert_eq!(values(&r.headers, "Via").len(), 34);
    let to = NameAddr::parse(one(&r.headers, "To")).unwrap();
    assert_eq!(to.uri.port().map(|p| *p.value()), Some(6000));
    assert!(to
        .display_name_unquoted()
        .is_some_and(|d| d.ends_with("extreme proportion")));
    assert!(one(&r.headers, "Call-ID").ends_with("reallylongcallid"));
    assert_eq!(r.body.len(), 150);
}

#[test]
fn dblreq_first_message_only() {
    let bytes = fixture("dblreq");
    let r = request("dblreq");
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty());
    assert_eq!(
        one(&r.headers, "Call-ID"),
        "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    );
    // On a stream the same bytes frame as the REGISTER alone.
    match frame(&bytes) {
        FrameResult::Complete { len } => {
            assert!(String::from_utf8_lossy(&bytes[len..]).starts_with("\r\nINVITE sip:joe@"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn semiuri_semicolon_in_user_part() {
    let r = request("semiuri");
    assert_eq!(r.uri.user(), Some("user;par=u%40example.net"));
    assert_eq!(r.uri.host().to_string(), "example.com");
    assert!(r.uri.params.is_empty());
    assert_eq!(
        one(&r.headers, "Accept"),
        "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag"
    );
}

#[test]
fn transports_all_via_transports() {
    let r = request("transports");
    let transports: Vec<&str> = values(&r.headers, "Via")
        .iter()
        .map(|v| {
            v.split(' ')
                .next()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    assert_eq!(
        one(&r.headers, "Call-ID"),
        "transports.kijh4akdnaqjkwendsasfdj"
    );
}

#[test]
fn mpart01_binary_multipart_body_survives() {
    let bytes = fixture("mpart01");
    let r = request("mpart01");
    assert_eq!(r.method, Method::Message);
    assert_eq!(r.body.len(), 553);
    assert!(bytes.ends_with(&r.body));
    assert_eq!(
        one(&r.headers, "Content-Type"),
        "multipart/mixed;boundary=7a9cbec02ceef655"
    );
    let out = to_bytes(&SipMessage::Request(r.clone()));
    assert!(out.ends_with(&r.body), "body must be written byte for byte");
    let mut policy = UasPolicy::default();
    policy.accepted_content_types.push("multipart/mixed".into());
    assert!(uas_check(&r, &policy).is_ok());
}

#[test]
fn unreason_and_noreason_responses() {
    let r = response("unreason");
    assert_eq!(r.status_code, StatusCode::OK);
    assert_eq!(r.body.len(), 154);
    let r = response("noreason");
    assert_eq!(r.status_code, StatusCode::Trying);
    assert!(start_line(&SipMessage::Response(r)).starts_with("SIP/2.0 100 "));
}
