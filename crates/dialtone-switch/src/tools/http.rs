//! The one HTTP client tools use to reach other systems (an account's
//! contact source, a persona's API-request tools): rustls with the ring
//! provider, as the realtime sessions use, a short connect timeout, no
//! redirects to other schemes, and responses cut to a safe size.

use std::sync::OnceLock;
use std::time::Duration;

/// The most of a response body a tool reads (and hands to a model).
pub const MAX_BODY: usize = 8 * 1024;

/// The shared client, built on first use.
pub fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // Only the first install in the process takes effect.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .redirect(reqwest::redirect::Policy::limited(3))
                .user_agent(concat!("dialtone/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("HTTP client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Reads at most [`MAX_BODY`] bytes of a response body, as text (lossy);
/// the bool says whether it was cut.
pub async fn body_text(mut resp: reqwest::Response) -> Result<(String, bool), String> {
    let mut buf: Vec<u8> = Vec::new();
    let mut cut = false;
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        let room = MAX_BODY.saturating_sub(buf.len());
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            cut = true;
            break;
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((String::from_utf8_lossy(&buf).into_owned(), cut))
}
