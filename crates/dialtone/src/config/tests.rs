//! The configuration's loading, environment overrides and validation.

use super::*;

fn load_with(text: &str, vars: &[(&str, &str)]) -> Result<Config> {
    let mut doc: toml::Table = text.parse()?;
    apply_env(
        &mut doc,
        vars.iter().map(|(a, b)| (a.to_string(), b.to_string())),
    )?;
    let cfg: Config = toml::Value::Table(doc).try_into()?;
    cfg.validate()?;
    Ok(cfg)
}

#[test]
fn the_shipped_config_parses_and_matches_defaults() -> Result<()> {
    let text = include_str!("../../../../config/dialtone.toml");
    let cfg = load_with(text, &[])?;
    let def = Config::default();
    assert_eq!(cfg.sip.listen, def.sip.listen);
    assert_eq!(cfg.database.url, def.database.url);
    assert_eq!(cfg.http.listen, def.http.listen);
    assert_eq!(cfg.registrar.min_expires, def.registrar.min_expires);
    assert_eq!(cfg.mcp.enabled, def.mcp.enabled);
    assert_eq!(cfg.mcp.allowed_hosts, def.mcp.allowed_hosts);
    assert_eq!(cfg.mcp.allowed_origins, def.mcp.allowed_origins);
    assert_eq!(cfg.auth.algorithms, def.auth.algorithms);
    Ok(())
}

#[test]
fn digest_is_md5_unless_configured() -> Result<()> {
    assert_eq!(load_with("", &[])?.auth.algorithms, vec!["MD5"]);
    let sha = load_with("[auth]\nalgorithms = [\"SHA-256\", \"MD5\"]\n", &[])?;
    assert_eq!(sha.auth.algorithms, vec!["SHA-256", "MD5"]);
    let env = load_with("", &[("DIALTONE_AUTH__ALGORITHMS", "[\"SHA-256\"]")])?;
    assert_eq!(env.auth.algorithms, vec!["SHA-256"]);
    assert!(load_with("[auth]\nalgorithms = []\n", &[]).is_err());
    assert!(load_with("[auth]\nalgorithms = [\"SHA-512\"]\n", &[]).is_err());
    Ok(())
}

#[test]
fn env_overrides_strings_numbers_and_arrays() -> Result<()> {
    let cfg = load_with(
        "[sip]\ndomain = \"a\"\n",
        &[
            ("DIALTONE_SIP__DOMAIN", "example.com"),
            ("DIALTONE_SIP__T1_MS", "250"),
            ("DIALTONE_SIP__LISTEN", "[\"udp:[::1]:5070\"]"),
            ("DIALTONE_HTTP__LISTEN", "127.0.0.1:9000"),
            ("OTHER_VAR", "x"),
        ],
    )?;
    assert_eq!(cfg.sip.domain, "example.com");
    assert_eq!(cfg.sip.t1_ms, 250);
    assert_eq!(cfg.sip.listen, vec!["udp:[::1]:5070"]);
    assert_eq!(cfg.http.listen, "127.0.0.1:9000");
    Ok(())
}

#[test]
fn unknown_keys_and_bad_values_are_errors() {
    assert!(load_with("[sip]\nlisten_typo = []\n", &[]).is_err());
    assert!(load_with("", &[("DIALTONE_AUTH__LOCKOUT", "maybe")]).is_err());
    assert!(load_with("", &[("DIALTONE_SIP__T1_MS", "fast")]).is_err());
    assert!(load_with("", &[("DIALTONE_MCP__ALLOWED_ORIGINS", "[\"localhost\"]")]).is_err());
}

#[test]
fn mcp_lists_come_from_the_environment() -> Result<()> {
    let cfg = load_with(
        "",
        &[
            ("DIALTONE_MCP__ALLOWED_HOSTS", "[\"a\",\"b:8080\"]"),
            (
                "DIALTONE_MCP__ALLOWED_ORIGINS",
                "[\"https://app.example:*\"]",
            ),
            ("DIALTONE_MCP__ENABLED", "false"),
        ],
    )?;
    assert_eq!(cfg.mcp.allowed_hosts, vec!["a", "b:8080"]);
    assert_eq!(cfg.mcp.allowed_origins, vec!["https://app.example:*"]);
    assert!(!cfg.mcp.enabled);
    Ok(())
}

#[test]
fn a_cluster_needs_a_secret_postgres_and_a_reachable_address() -> Result<()> {
    let pg = ("DIALTONE_DATABASE__URL", "postgres://127.0.0.1/test");
    let on = ("DIALTONE_CLUSTER__ENABLED", "true");
    let secret = ("DIALTONE_CLUSTER__SECRET", "0123456789abcdef");
    let cfg = load_with(
        "",
        &[
            pg,
            on,
            secret,
            ("DIALTONE_SIP__FRONT_PROXIES", "[\"10.0.0.10\"]"),
        ],
    )?;
    assert!(cfg.cluster.enabled);
    assert_eq!(cfg.sip.front_proxies, vec!["10.0.0.10"]);
    let err = |vars: &[(&str, &str)]| match load_with("", vars) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    assert!(err(&[pg, on]).contains("cluster.secret"));
    assert!(err(&[on, secret]).contains("postgres"));
    assert!(
        err(&[pg, on, secret, ("DIALTONE_CLUSTER__DEAD_AFTER_MS", "3000")])
            .contains("dead_after_ms")
    );
    assert!(
        err(&[pg, on, secret, ("DIALTONE_HTTP__LISTEN", "0.0.0.0:8080")])
            .contains("advertise_http")
    );
    assert!(err(&[("DIALTONE_SIP__FRONT_PROXIES", "[\"kamailio\"]")]).contains("front_proxies"));
    // Off, none of it is needed.
    load_with("", &[("DIALTONE_HTTP__LISTEN", "0.0.0.0:8080")])?;
    Ok(())
}

#[test]
fn a_tls_listener_needs_a_certificate_and_key() -> Result<()> {
    let tls_listen = ("DIALTONE_SIP__LISTEN", "[\"tls:127.0.0.1:5061\"]");
    let err = |vars: &[(&str, &str)]| match load_with("", vars) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    assert!(err(&[tls_listen]).contains("tls.certificate"));
    assert!(err(&[("DIALTONE_TLS__CERTIFICATE", "/etc/c.pem")]).contains("go together"));
    let cfg = load_with(
        "",
        &[
            tls_listen,
            ("DIALTONE_TLS__CERTIFICATE", "/etc/c.pem"),
            ("DIALTONE_TLS__PRIVATE_KEY", "/etc/k.pem"),
        ],
    )?;
    assert_eq!(cfg.tls.private_key, "/etc/k.pem");
    Ok(())
}
