//! What an OpenAI Realtime server (or anything answering on its URL) sends
//! over the websocket: `RealtimeProtocol::decode` of each message, in order,
//! on one session's decoder (the session driver calls it for every text or
//! binary frame). The input holds one message per line, so a seed can be a
//! whole session. Never panics, whatever the input (the trait's promise),
//! and a function call is reported once per call id.

#![no_main]

use std::collections::HashSet;

use dialtone_ai::{OpenAiProtocol, RealtimeProtocol, ServerEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut p = OpenAiProtocol::new();
    let mut calls = HashSet::new();
    for msg in data.split(|&b| b == b'\n') {
        let Ok(events) = p.decode(msg) else {
            continue;
        };
        for ev in events {
            if let ServerEvent::ToolCall { call_id, .. } = &ev {
                assert!(
                    calls.insert(call_id.clone()),
                    "call {call_id:?} reported twice"
                );
            }
            let _ = format!("{ev:?}");
        }
    }
});
