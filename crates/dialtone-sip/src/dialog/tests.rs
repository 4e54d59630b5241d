use super::*;

fn req(raw: &str) -> Request {
    Request::try_from(raw).unwrap_or_else(|e| panic!("{e}"))
}

fn resp(raw: &str) -> Response {
    Response::try_from(raw).unwrap_or_else(|e| panic!("{e}"))
}

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
    Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n\
    From: \"Alice\" <sip:alice@atlanta.example.com>;tag=ali\r\n\
    To: <sip:bob@biloxi.example.com>\r\n\
    Call-ID: d1\r\nCSeq: 10 INVITE\r\n\
    Contact: <sip:alice@10.0.0.1:5062>\r\nContent-Length: 0\r\n\r\n";

const OK: &str = "SIP/2.0 200 OK\r\n\
    Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
    Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n\
    From: \"Alice\" <sip:alice@atlanta.example.com>;tag=ali\r\n\
    To: <sip:bob@biloxi.example.com>;tag=bob\r\n\
    Call-ID: d1\r\nCSeq: 10 INVITE\r\n\
    Contact: <sip:bob@10.0.0.9:5080>\r\nContent-Length: 0\r\n\r\n";

#[test]
fn uas_dialog_keeps_record_route_order_and_tags() {
    let d =
        Dialog::uas(&req(INVITE), &resp(OK), "<sip:sw@10.0.0.5>").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.id.local_tag, "bob");
    assert_eq!(d.id.remote_tag, "ali");
    assert_eq!(d.remote_seq, Some(10));
    assert_eq!(
        d.route_set,
        vec!["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    );
    assert_eq!(d.remote_target.to_string(), "sip:alice@10.0.0.1:5062");
    assert_eq!(d.state, DialogState::Confirmed);
}

#[test]
fn uac_dialog_reverses_route_set_and_builds_bye() {
    let mut d = Dialog::uac(&req(INVITE), &resp(OK), "<sip:alice@10.0.0.1:5062>")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        d.route_set,
        vec!["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    let bye = d.request(Method::Bye);
    let s = bye.to_string();
    assert!(
        s.starts_with("BYE sip:bob@10.0.0.9:5080 SIP/2.0\r\n"),
        "{s}"
    );
    assert!(s.contains("CSeq: 11 BYE"), "{s}");
    assert!(
        s.contains("From: \"Alice\" <sip:alice@atlanta.example.com>;tag=ali"),
        "{s}"
    );
    assert!(
        s.contains("To: <sip:bob@biloxi.example.com>;tag=bob"),
        "{s}"
    );
    let routes: Vec<_> = s.lines().filter(|l| l.starts_with("Route:")).collect();
    assert_eq!(
        routes,
        vec![
            "Route: <sip:p1.example.com;lr>",
            "Route: <sip:p2.example.com;lr>"
        ]
    );
}

#[test]
fn strict_router_takes_the_request_uri() {
    let target = Uri::try_from("sip:bob@10.0.0.9").unwrap_or_else(|e| panic!("{e}"));
    let (uri, routes) = route::request_target(&target, &["<sip:strict.example.com>".to_string()]);
    assert_eq!(uri.to_string(), "sip:strict.example.com");
    assert_eq!(routes, vec!["<sip:bob@10.0.0.9>"]);
}

#[test]
fn lower_cseq_is_out_of_order_and_reinvite_refreshes_target() {
    let mut d =
        Dialog::uas(&req(INVITE), &resp(OK), "<sip:sw@10.0.0.5>").unwrap_or_else(|e| panic!("{e}"));
    let old = req(&INVITE
        .replace("CSeq: 10 INVITE", "CSeq: 9 BYE")
        .replace("INVITE sip", "BYE sip"));
    assert_eq!(
        d.on_request(&old),
        Err(DialogError::OutOfOrder { got: 9, last: 10 })
    );
    let reinvite = req(&INVITE
        .replace("CSeq: 10 INVITE", "CSeq: 11 INVITE")
        .replace("sip:alice@10.0.0.1:5062", "sip:alice@10.0.0.77:5062"));
    assert_eq!(d.on_request(&reinvite), Ok(()));
    assert_eq!(d.remote_target.to_string(), "sip:alice@10.0.0.77:5062");
    assert_eq!(d.remote_seq, Some(11));
}

#[test]
fn early_dialog_confirms_on_2xx() {
    let ringing = OK.replace("200 OK", "180 Ringing");
    let mut d =
        Dialog::uac(&req(INVITE), &resp(&ringing), "<sip:a@h>").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.state, DialogState::Early);
    d.on_response(&Method::Invite, &resp(OK));
    assert_eq!(d.state, DialogState::Confirmed);
}

#[test]
fn dialog_ids_from_both_sides_agree() {
    let ok = resp(OK);
    let uac = DialogId::of_response(&ok).unwrap_or_else(|| panic!());
    let bye = req(&INVITE.replace(
        "To: <sip:bob@biloxi.example.com>",
        "To: <sip:bob@biloxi.example.com>;tag=bob",
    ));
    let uas = DialogId::of_request(&bye).unwrap_or_else(|| panic!());
    assert_eq!(uac.local_tag, "ali");
    assert_eq!(uas.local_tag, "bob");
    assert_eq!(uac.call_id, uas.call_id);
}

#[test]
fn split_list_respects_quotes_and_brackets() {
    let v = split_list("\"a, b\" <sip:x@y;p=1,2>;q=1, <sip:z@w>");
    assert_eq!(v, vec!["\"a, b\" <sip:x@y;p=1,2>;q=1", "<sip:z@w>"]);
}
