//! The arguments of a call action as an MCP client, an LLM's function call
//! or the REST API send them: the JSON object `CallCommand::from_action`
//! reads for every action (hangup, hold, resume, dtmf, transfer, bridge),
//! `Destination::parse` (what `transfer_call` and a persona's transfer tools
//! read their destination with), and the phone-number normalisation the
//! contact and lead tools apply (`dialtone_store::phone::normalize`).
//!
//! Input: text, tried as a destination, as a phone number in every region,
//! and (when it is JSON) as the arguments of every action. No panics; a
//! destination prints as text that parses again; a normalised number is
//! E.164 and normalises to itself.

#![no_main]

use dialtone_store::phone;
use dialtone_switch::call::{Authority, CallCommand, Destination};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const ACTIONS: [&str; 7] = [
    "hangup", "hold", "resume", "dtmf", "transfer", "bridge", "park",
];

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(d) = Destination::parse(s) {
        let text = d.to_string();
        if let Err(e) = Destination::parse(&text) {
            panic!("{d:?} from {s:?} prints as {text:?}, which does not parse: {e}");
        }
    }

    let regions: Vec<&str> = phone::regions().chain(["", "ZZ", "us"]).collect();
    for region in regions {
        let Some(e164) = phone::normalize(s, region) else {
            continue;
        };
        let digits = e164
            .strip_prefix('+')
            .unwrap_or_else(|| panic!("{e164:?} from {s:?}"));
        assert!(
            (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
            "{e164:?} from {s:?} in {region}"
        );
        assert_eq!(
            phone::normalize(&e164, region).as_deref(),
            Some(e164.as_str()),
            "normalising {e164:?} (from {s:?} in {region}) again"
        );
    }

    if let Ok(args) = serde_json::from_str::<Value>(s) {
        for action in ACTIONS {
            let _ = CallCommand::from_action(action, &args, Authority::Operator);
        }
    }
});
