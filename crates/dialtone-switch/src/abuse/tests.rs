use std::time::Duration;

use super::*;

fn request(method: &str, ua: &str) -> Request {
    let raw = format!(
        "{method} sip:alice@192.0.2.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@192.0.2.1>;tag=1\r\n\
         To: <sip:alice@192.0.2.1>\r\n\
         Call-ID: abc@192.0.2.9\r\n\
         CSeq: 1 {method}\r\n\
         User-Agent: {ua}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match dialtone_sip::message::parse(raw.as_bytes()) {
        Ok(rsip::SipMessage::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|_| panic!("{s}"))
}

fn shield(over_rate: OverRate) -> Shield {
    let mut rates = [Rate::UNLIMITED; 4];
    rates[Class::Register.index()] = Rate {
        per_sec: 2.0,
        burst: 3.0,
    };
    let cfg = AbuseConfig {
        trusted: Trusted::parse(&["10.0.0.0/8".into()]).unwrap_or_else(|e| panic!("{e}")),
        rates,
        over_rate,
        scanner_agents: vec!["friendly-scanner".into()],
    };
    let bans = Arc::new(Bans::new(BanConfig {
        max_failures: 2,
        window: Duration::from_secs(60),
        ban_for: Duration::from_secs(600),
    }));
    Shield::new(cfg, bans, Lockout::Forbidden)
}

#[test]
fn a_source_over_its_rate_is_limited_alone_and_recovers() {
    let s = shield(OverRate::Unavailable);
    let reg = request("REGISTER", "phone/1.0");
    let t0 = Instant::now();
    let flood = ip("192.0.2.66");
    for _ in 0..3 {
        assert_eq!(s.admit_at(&reg, flood, t0), Admit::Pass);
    }
    assert_eq!(
        s.admit_at(&reg, flood, t0),
        Admit::Reject {
            status: 503,
            reason: "Rate Limit Exceeded",
            retry_after: Some(1)
        }
    );
    // Another source, and another kind of request, are not affected.
    assert_eq!(s.admit_at(&reg, ip("192.0.2.5"), t0), Admit::Pass);
    assert_eq!(
        s.admit_at(&request("INVITE", "phone/1.0"), flood, t0),
        Admit::Pass
    );
    // Half a second later, one more at 2/s.
    let t1 = t0 + Duration::from_millis(500);
    assert_eq!(s.admit_at(&reg, flood, t1), Admit::Pass);
    let mut out = String::new();
    s.render(&mut out);
    assert!(
        out.contains("dialtone_abuse_refused_total{reason=\"rate\",method=\"register\"} 1"),
        "{out}"
    );
    assert!(out.contains("dialtone_abuse_limited_sources 1"), "{out}");
}

#[test]
fn silence_drops_and_trusted_sources_are_never_limited() {
    let s = shield(OverRate::Silence);
    let reg = request("REGISTER", "phone/1.0");
    let t0 = Instant::now();
    for _ in 0..3 {
        assert_eq!(s.admit_at(&reg, ip("192.0.2.66"), t0), Admit::Pass);
    }
    assert_eq!(s.admit_at(&reg, ip("192.0.2.66"), t0), Admit::Drop);
    for _ in 0..100 {
        assert_eq!(s.admit_at(&reg, ip("10.1.2.3"), t0), Admit::Pass);
    }
    s.set_trunks(vec!["198.51.100.0/24".into()]);
    for _ in 0..100 {
        assert_eq!(s.admit_at(&reg, ip("198.51.100.7"), t0), Admit::Pass);
    }
}

#[test]
fn scanners_are_dropped_and_banned_sources_refused() {
    let s = shield(OverRate::Silence);
    let t0 = Instant::now();
    let scan = request("OPTIONS", "friendly-scanner");
    assert_eq!(s.admit_at(&scan, ip("10.9.9.9"), t0), Admit::Drop);
    let who = ip("192.0.2.77");
    assert!(!s.bans.failed(who));
    assert!(s.bans.failed(who), "the second failure bans");
    assert_eq!(
        s.admit_at(&request("INVITE", "phone/1.0"), who, t0),
        Admit::Reject {
            status: 403,
            reason: "Too Many Failed Attempts",
            retry_after: None
        }
    );
    let mut out = String::new();
    s.render(&mut out);
    assert!(out.contains("dialtone_abuse_banned_sources 1"), "{out}");
    assert!(
        out.contains("dialtone_abuse_refused_total{reason=\"scanner\",method=\"options\"} 1"),
        "{out}"
    );
}
