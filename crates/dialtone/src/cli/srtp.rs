//! `--srtp`: the SRTP policy of a user (`user add`, `user update`) or a
//! trunk (`trunk add`, `trunk update`). The switch reads it for every leg it
//! sets up with that party; "default" hands the party back to `media.srtp`.

use clap::Args;
use dialtone_store::SrtpPolicy;

/// A policy as given: one of the three, or None for "default".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting(pub Option<SrtpPolicy>);

fn policy(s: &str) -> Result<Setting, String> {
    if s.trim().eq_ignore_ascii_case("default") {
        return Ok(Setting(None));
    }
    s.parse()
        .map(|p| Setting(Some(p)))
        .map_err(|e: String| format!("{e}, or default (media.srtp)"))
}

#[derive(Args, Clone, Debug, Default)]
pub struct SrtpArgs {
    /// Media encryption: "required" (SRTP with SDES keys offered, plain
    /// offers refused with 488), "optional" (SRTP when the party offers
    /// it), "off" (plain only), or "default" (media.srtp).
    #[arg(long, value_name = "POLICY", value_parser = policy)]
    pub srtp: Option<Setting>,
}

impl SrtpArgs {
    /// The policy to store, if `--srtp` was given.
    pub fn given(&self) -> Option<Option<SrtpPolicy>> {
        self.srtp.map(|s| s.0)
    }
}

/// "srtp=required", or "srtp=default" for a party without its own.
pub fn describe(policy: Option<SrtpPolicy>) -> String {
    format!("srtp={}", policy.map_or("default", SrtpPolicy::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_policies_and_default() {
        assert_eq!(policy("required"), Ok(Setting(Some(SrtpPolicy::Required))));
        assert_eq!(policy("OFF"), Ok(Setting(Some(SrtpPolicy::Off))));
        assert_eq!(policy("default"), Ok(Setting(None)));
        let err = policy("sometimes").err().unwrap_or_default();
        assert!(
            err.contains("off, optional or required") && err.contains("default"),
            "{err}"
        );
        assert_eq!(describe(None), "srtp=default");
        assert_eq!(describe(Some(SrtpPolicy::Optional)), "srtp=optional");
    }
}
