//! The configuration file (`config/dialtone.toml`), its defaults, and the
//! environment overrides: every key `section.key` can be set by
//! `DIALTONE_SECTION__KEY`, the value read as TOML when it parses as TOML
//! (numbers, booleans, arrays) and as a plain string otherwise.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

mod sections;

pub use sections::*;

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub sip: Sip,
    pub registrar: Registrar,
    pub auth: Auth,
    pub abuse: Abuse,
    pub calls: Calls,
    pub media: Media,
    pub recording: Recording,
    pub ai: Ai,
    pub database: Database,
    pub http: Http,
    pub mcp: Mcp,
    pub cluster: Cluster,
    pub tls: Tls,
    pub log: Log,
}

const ENV_PREFIX: &str = "DIALTONE_";

impl Config {
    /// Reads `path` (a missing file is an error unless `optional`), then
    /// applies the environment overrides.
    pub fn load(path: &Path, optional: bool) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading config {}", path.display())),
        };
        let mut doc: toml::Table = text
            .parse()
            .with_context(|| format!("parsing config {}", path.display()))?;
        apply_env(&mut doc, std::env::vars())?;
        let cfg: Config = toml::Value::Table(doc)
            .try_into()
            .with_context(|| format!("in config {} (or a DIALTONE_ variable)", path.display()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        if self.sip.listen.is_empty() {
            bail!("sip.listen is empty: nothing to listen on");
        }
        if !matches!(self.auth.lockout.as_str(), "403" | "silence") {
            bail!(
                "auth.lockout must be \"403\" or \"silence\", not {:?}",
                self.auth.lockout
            );
        }
        if !matches!(self.abuse.over_rate.as_str(), "503" | "silence") {
            bail!(
                "abuse.over_rate must be \"503\" or \"silence\", not {:?}",
                self.abuse.over_rate
            );
        }
        dialtone_switch::abuse::Trusted::parse(&self.abuse.trusted)
            .map_err(|e| anyhow::anyhow!("abuse.trusted: {e}"))?;
        dialtone_switch::abuse::Trusted::parse(&self.sip.front_proxies)
            .map_err(|e| anyhow::anyhow!("sip.front_proxies: {e}"))?;
        self.cluster
            .validate(&self.database.url, &self.http.listen)?;
        self.tls.validate(&self.sip.listen)?;
        if !self.sip.advertise.is_empty() && self.sip.advertise.parse::<std::net::IpAddr>().is_err()
        {
            bail!(
                "sip.advertise must be an IP address, not {:?}",
                self.sip.advertise
            );
        }
        let rates = [
            (
                "register",
                self.abuse.register_rate,
                self.abuse.register_burst,
            ),
            ("invite", self.abuse.invite_rate, self.abuse.invite_burst),
            ("options", self.abuse.options_rate, self.abuse.options_burst),
            ("other", self.abuse.other_rate, self.abuse.other_burst),
        ];
        for (name, rate, burst) in rates {
            if !(rate.is_finite() && rate >= 0.0 && burst.is_finite() && burst >= 0.0) {
                bail!("abuse.{name}_rate and abuse.{name}_burst must be 0 or more");
            }
        }
        if self.abuse.tcp_message_timeout_secs == 0 || self.abuse.tcp_idle_timeout_secs == 0 {
            bail!("abuse.tcp_message_timeout_secs and abuse.tcp_idle_timeout_secs must be above 0");
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            bail!(
                "log.format must be \"text\" or \"json\", not {:?}",
                self.log.format
            );
        }
        if self.auth.algorithms.is_empty() {
            bail!("auth.algorithms is empty: offer at least one of MD5, SHA-256");
        }
        for a in &self.auth.algorithms {
            a.parse::<dialtone_sip::auth::Algorithm>().map_err(|_| {
                anyhow::anyhow!("auth.algorithms: unknown algorithm {a:?} (MD5 or SHA-256)")
            })?;
        }
        self.media.port_range()?;
        if self.calls.session_expires_secs != 0
            && self.calls.min_se_secs > self.calls.session_expires_secs
        {
            bail!("calls.min_se_secs is above calls.session_expires_secs");
        }
        self.media
            .advertise_ip
            .parse::<std::net::IpAddr>()
            .map_err(|_| {
                anyhow::anyhow!(
                    "media.advertise_ip must be an IP address, not {:?}",
                    self.media.advertise_ip
                )
            })?;
        if self.ai.connect_timeout_ms == 0 || self.ai.tool_timeout_secs == 0 {
            bail!("ai.connect_timeout_ms and ai.tool_timeout_secs must be above 0");
        }
        if self.ai.renew_after_secs == 0 {
            bail!("ai.renew_after_secs must be above 0");
        }
        if self.registrar.min_expires > self.registrar.max_expires {
            bail!("registrar.min_expires is above registrar.max_expires");
        }
        for o in &self.mcp.allowed_origins {
            // rmcp matches origins by scheme, host and port: an entry
            // without a scheme would silently never match.
            if o != "null" && !o.contains("://") {
                bail!("mcp.allowed_origins: {o:?} needs a scheme, e.g. \"http://localhost:*\"");
            }
        }
        Ok(())
    }
}

/// Applies `DIALTONE_SECTION__KEY=value` overrides to the document.
fn apply_env(doc: &mut toml::Table, vars: impl Iterator<Item = (String, String)>) -> Result<()> {
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let parsed = parse_value(&value);
        let table = doc
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(table) = table.as_table_mut() else {
            bail!("{name}: config section {section} is not a table");
        };
        table.insert(key, parsed);
    }
    Ok(())
}

fn parse_value(s: &str) -> toml::Value {
    // Parse as the right-hand side of a TOML assignment.
    match format!("v = {s}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(s.into())),
        Err(_) => toml::Value::String(s.to_string()),
    }
}

#[cfg(test)]
mod tests;
