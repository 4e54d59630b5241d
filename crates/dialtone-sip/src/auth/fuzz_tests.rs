//! Fuzzing of the auth parsers and of `DigestServer::credentials`/`verify`
//! with random and mutated header strings: errors are expected, panics and
//! false accepts are not.

use super::tests::{challenge_response, ha1_for, request_with, ruri, server, PASS, RURI, USER};
use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsip::Header;

/// Random strings over an alphabet heavy in delimiters, and mutations of valid
/// headers, through every parser: errors are fine, panics are not.
#[test]
fn fuzz_parsers_never_panic() {
    let (srv, _) = server(vec![]);
    let resp = challenge_response(&srv, ChallengeKind::Www);
    let auth = answer(&resp, &rsip::Method::Register, &ruri(), USER, PASS, 1).unwrap();
    // Use the genuine answer once, so a mutation that leaves it semantically
    // intact is a replay rather than a pass.
    let genuine = srv.credentials(&request_with(RURI, &auth), ChallengeKind::Www);
    let genuine = genuine.unwrap().unwrap();
    assert_eq!(
        srv.verify(&genuine, &rsip::Method::Register, &ha1_for(&genuine)),
        Ok(())
    );
    let seeds: Vec<String> = srv
        .challenge(ChallengeKind::Www, false)
        .iter()
        .map(|h| h.to_string().split_once(": ").unwrap().1.to_string())
        .chain([auth.to_string().split_once(": ").unwrap().1.to_string()])
        .collect();
    let alphabet: Vec<char> = "Digest rea=\",\\ \t nonce qop auth 0fé\r\n=\"\"\\,,"
        .chars()
        .collect();
    let mut rng = StdRng::seed_from_u64(7616);
    let mut errors = 0;
    for i in 0..6000 {
        let s: String = if i % 2 == 0 {
            let len = rng.gen_range(0..60);
            (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect()
        } else {
            let mut cs: Vec<char> = seeds[rng.gen_range(0..seeds.len())].chars().collect();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..=cs.len());
                match rng.gen_range(0..3) {
                    0 => cs.truncate(at),
                    1 => cs.insert(at, alphabet[rng.gen_range(0..alphabet.len())]),
                    _ if at < cs.len() => {
                        cs.remove(at);
                    }
                    _ => {}
                }
            }
            cs.into_iter().collect()
        };
        let c = Challenge::parse(&s);
        let cr = Credentials::parse(&s);
        if c.is_err() && cr.is_err() {
            errors += 1;
        }
        if let Ok(cr) = cr {
            // A mutated header must never verify.
            let r = srv.verify(&cr, &rsip::Method::Register, &ha1_for(&cr));
            assert!(r.is_err(), "{s:?} verified");
        }
        let h = Header::Authorization(s.clone().into());
        let req = rsip::Request {
            method: rsip::Method::Register,
            uri: ruri(),
            version: rsip::Version::V2,
            headers: vec![h].into(),
            body: vec![],
        };
        let _ = srv.credentials(&req, ChallengeKind::Www);
    }
    assert!(
        errors > 3000,
        "fuzz inputs should mostly be rejected ({errors})"
    );
}
