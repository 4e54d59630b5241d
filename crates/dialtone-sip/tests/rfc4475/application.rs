//! RFC 4475 §3.2–3.4: the application's verdicts (`uas_check`) and
//! RFC 2543 compatibility.

use super::*;

#[test]
fn badbranch_bare_magic_cookie() {
    let r = request("badbranch");
    assert_eq!(
        one(&r.headers, "Via"),
        "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK"
    );
}

#[test]
fn application_verdict_details() {
    let r = request("unkscm");
    assert_eq!(
        r.uri.scheme,
        Some(Scheme::Other("nobodyKnowsThisScheme".into()))
    );
    assert_eq!(
        start_line(&SipMessage::Request(r)),
        "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0"
    );
    let r = request("novelsc");
    assert_eq!(
        start_line(&SipMessage::Request(r.clone())),
        "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0"
    );
    let mut policy = UasPolicy::default();
    policy.supported_schemes.push("soap.beep".into());
    assert!(uas_check(&r, &policy).is_ok());

    let r = request("unksm2");
    let to = NameAddr::parse(one(&r.headers, "To")).unwrap();
    assert_eq!(to.uri.scheme, Some(Scheme::Other("isbn".into())));
    assert!(NameAddr::parse(one(&r.headers, "Contact")).is_ok());

    let r = request("bext01");
    let rej = uas_check(&r, &UasPolicy::default()).unwrap_err();
    assert_eq!(rej.headers.len(), 1);
    assert_eq!(
        header_name_value(&rej.headers[0]),
        (
            "Unsupported",
            "nothingSupportsThis, nothingSupportsThisEither"
        )
    );
    let resp = rej.response(&r);
    assert_eq!(resp.status_code.code(), 420);
    assert_eq!(
        one(&resp.headers, "Unsupported"),
        "nothingSupportsThis, nothingSupportsThisEither"
    );

    let r = request("invut");
    let rej = uas_check(&r, &UasPolicy::default()).unwrap_err();
    assert!(
        matches!(&rej.headers[..], [Header::Accept(a)] if a.value().contains("application/sdp"))
    );

    let r = request("regaut01");
    assert_eq!(
        one(&r.headers, "Authorization"),
        "NoOneKnowsThisScheme opaque-data=here"
    );

    let r = request("multi01");
    assert_eq!(values(&r.headers, "CSeq").len(), 2);
    let r = request("mcl01");
    assert_eq!(values(&r.headers, "Content-Length"), ["13", "5"]);
    assert_eq!(r.body, b"There's no wa");

    let r = response("bcast");
    assert_eq!(values(&r.headers, "Via").len(), 2);

    let r = request("zeromf");
    assert_eq!(one(&r.headers, "Max-Forwards"), "0");

    let r = request("cparam01");
    let c = NameAddr::parse(one(&r.headers, "Contact")).unwrap();
    assert_eq!(
        c.param("unknownparam"),
        Some(None),
        "addr-spec: a header parameter"
    );
    assert!(c.uri.params.is_empty());
    let r = request("cparam02");
    let c = NameAddr::parse(one(&r.headers, "Contact")).unwrap();
    assert!(c.params.is_empty(), "inside <>: a URI parameter");
    assert_eq!(
        c.uri.params,
        [rsip::Param::Other("unknownparam".into(), None)]
    );
    let r = request("regescrt");
    let c = NameAddr::parse(one(&r.headers, "Contact")).unwrap();
    assert_eq!(
        c.uri_headers.as_deref(),
        Some("Route=%3Csip:sip.example.com%3E")
    );
    assert_eq!(
        c.to_string(),
        "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"
    );

    let r = request("sdp01");
    let rej = uas_check(&r, &UasPolicy::default()).unwrap_err();
    assert_eq!(rej.status, 406);
}

#[test]
fn inv2543_rfc2543_syntax() {
    let r = request("inv2543");
    assert!(values(&r.headers, "Max-Forwards").is_empty());
    assert_eq!(one(&r.headers, "Via"), "SIP/2.0/UDP iftgw.example.com");
    let from = NameAddr::parse(one(&r.headers, "From")).unwrap();
    assert_eq!(from.tag(), None);
    // No Content-Length on a datagram: the body is the rest of it.
    assert!(r.body.starts_with(b"v=0\r\n"));
    assert!(r.body.ends_with(b"RTP/AVP 0\r\n"));
}
