//! The auth and context logic against a real (in-memory SQLite) store:
//! keys verified, revoked, rate-limited; context headers resolved to the
//! key's account and its personas only.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use dialtone_mcp::{AuthError, Authenticated, ContextError, ContextHeaders, KeyAuth};
use dialtone_store::{NewPersona, Store};

async fn store() -> Store {
    Store::connect("sqlite::memory:").await.unwrap()
}

fn persona(account_id: &str, name: &str) -> NewPersona {
    NewPersona {
        account_id: account_id.to_owned(),
        name: name.to_owned(),
        provider: "openai".to_owned(),
        url: "ws://127.0.0.1:9/realtime".to_owned(),
        model: None,
        voice: None,
        instructions: "x".to_owned(),
        greeting: None,
        api_key_env: None,
        timezone: "UTC".to_owned(),
        turn_detection: "server_vad".to_owned(),
        vad_threshold: None,
        vad_prefix_padding_ms: None,
        vad_silence_ms: None,
        vad_eagerness: None,
        barge_in_min_ms: 0,
        max_duration_secs: 0,
        idle_timeout_secs: 0,
        fallback: None,
        transcription_model: None,
    }
}

fn with_key(key: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-api-key", HeaderValue::from_str(key).unwrap());
    h
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

#[tokio::test]
async fn keys_are_verified_revoked_and_failures_limited() {
    let store = store().await;
    let acc = store.accounts().ensure("acme").await.unwrap();
    let (key, plain) = store.api_keys().create(&acc.id, Some("t")).await.unwrap();
    let auth = KeyAuth::with_limit(store.clone(), 3, Duration::from_secs(60));
    let peer: SocketAddr = "127.0.0.5:4000".parse().unwrap();
    let other: SocketAddr = "127.0.0.6:4000".parse().unwrap();

    let who = auth
        .authenticate(&with_key(&plain), Some(peer))
        .await
        .unwrap();
    assert_eq!(
        who,
        Authenticated {
            key_id: key.id.clone(),
            account_id: acc.id.clone()
        }
    );
    // The use is written in the background.
    let mut used = None;
    for _ in 0..50 {
        used = store
            .api_keys()
            .get(&key.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at;
        if used.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(used.is_some());

    assert_eq!(
        auth.authenticate(&HeaderMap::new(), Some(peer)).await,
        Err(AuthError::Missing)
    );
    assert_eq!(
        auth.authenticate(&with_key("dtk_nope"), Some(peer)).await,
        Err(AuthError::Invalid)
    );
    // Successes do not count: still one failure left.
    auth.authenticate(&with_key(&plain), Some(peer))
        .await
        .unwrap();
    assert_eq!(
        auth.authenticate(&with_key("dtk_nope"), Some(peer)).await,
        Err(AuthError::Invalid)
    );
    // Three failures: refused without looking, even with the good key.
    assert_eq!(
        auth.authenticate(&with_key(&plain), Some(peer)).await,
        Err(AuthError::Limited)
    );
    // Another address is not affected.
    auth.authenticate(&with_key(&plain), Some(other))
        .await
        .unwrap();

    assert!(store.api_keys().revoke(&key.id).await.unwrap());
    assert_eq!(
        auth.authenticate(&with_key(&plain), Some(other)).await,
        Err(AuthError::Invalid)
    );
}

#[tokio::test]
async fn context_is_the_keys_account_and_its_personas_only() {
    let store = store().await;
    let acme = store.accounts().ensure("acme").await.unwrap();
    let globex = store.accounts().ensure("globex").await.unwrap();
    let ours = store
        .personas()
        .create(persona(&acme.id, "reception"))
        .await
        .unwrap();
    store
        .personas()
        .create(persona(&globex.id, "theirs"))
        .await
        .unwrap();
    let who = Authenticated {
        key_id: "k".into(),
        account_id: acme.id.clone(),
    };
    let resolve = |pairs: &[(&'static str, &str)]| {
        let h = headers(pairs);
        let store = store.clone();
        let who = who.clone();
        async move {
            ContextHeaders::parse(&h)
                .unwrap()
                .resolve(&store, &who)
                .await
        }
    };

    let ctx = resolve(&[]).await.unwrap();
    assert_eq!(ctx.account_id.as_deref(), Some(acme.id.as_str()));
    assert_eq!(
        (ctx.persona, ctx.call_id, ctx.caller_number),
        (None, None, None)
    );

    let ctx = resolve(&[
        ("call_id", "c1"),
        ("x-caller-id-number", "+15550100"),
        ("persona_id", "reception"),
        ("account_id", "acme"),
    ])
    .await
    .unwrap();
    assert_eq!(ctx.call_id.as_deref(), Some("c1"));
    assert_eq!(ctx.caller_number.as_deref(), Some("+15550100"));
    assert_eq!(ctx.persona.as_deref(), Some("reception"));

    // A persona by id, and the account by id.
    let ctx = resolve(&[("persona_id", &ours.id), ("x-account_id", &acme.id)])
        .await
        .unwrap();
    assert_eq!(ctx.persona.as_deref(), Some("reception"));

    assert_eq!(
        resolve(&[("account_id", "globex")]).await,
        Err(ContextError::NoAccess("globex".into()))
    );
    assert_eq!(
        resolve(&[("account_id", &globex.id)]).await,
        Err(ContextError::NoAccess(globex.id.clone()))
    );
    assert_eq!(
        resolve(&[("account_id", "nobody")]).await,
        Err(ContextError::NoAccess("nobody".into()))
    );
    // Another account's persona is as unknown as a missing one.
    assert_eq!(
        resolve(&[("persona_id", "theirs")]).await,
        Err(ContextError::UnknownPersona("theirs".into()))
    );
    assert_eq!(
        resolve(&[("persona_id", "ghost")]).await,
        Err(ContextError::UnknownPersona("ghost".into()))
    );
}
