//! What a Gemini Live server (or anything answering on its URL) sends over
//! the websocket: `RealtimeProtocol::decode` of each message, in order, on
//! one session's decoder (the session driver calls it for every text or
//! binary frame; Gemini sends its JSON in binary frames). The input holds
//! one message per line, so a seed can be a whole session. Never panics,
//! whatever the input (the trait's promise).

#![no_main]

use dialtone_ai::{GeminiProtocol, RealtimeProtocol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut p = GeminiProtocol::new();
    for msg in data.split(|&b| b == b'\n') {
        let Ok(events) = p.decode(msg) else {
            continue;
        };
        for ev in events {
            let _ = format!("{ev:?}");
        }
    }
});
