//! `--max-calls` and `--max-cps`: the call limits of a user (`user add`,
//! `user update`), a trunk (`trunk add`, `trunk update`) and an account
//! (`account set`). The switch reads them for every new call and transfer.

use clap::Args;
use dialtone_store::{parse_max_calls, parse_max_cps, CallLimits};

/// One limit as given: a value, or None for "none" (no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting(pub Option<u32>);

fn calls(s: &str) -> Result<Setting, String> {
    parse_max_calls(s).map(Setting)
}

fn rate(s: &str) -> Result<Setting, String> {
    parse_max_cps(s).map(Setting)
}

#[derive(Args, Clone, Debug, Default)]
pub struct LimitArgs {
    /// Calls at once (0: no calls at all; "none": no limit). Over it a user
    /// or an account gets 403, a trunk 503.
    #[arg(long, value_name = "N", value_parser = calls)]
    pub max_calls: Option<Setting>,
    /// New calls per second (0.5, or 30/min; 0: none at all; "none": no
    /// limit). Over it: 503 with Retry-After.
    #[arg(long, value_name = "RATE", value_parser = rate)]
    pub max_cps: Option<Setting>,
}

impl LimitArgs {
    /// Whether any limit option was given.
    pub fn given(&self) -> bool {
        self.max_calls.is_some() || self.max_cps.is_some()
    }

    /// `current` with the limits given replacing its own.
    pub fn apply(&self, current: CallLimits) -> CallLimits {
        CallLimits {
            max_calls: self.max_calls.map_or(current.max_calls, |s| s.0),
            max_cps_milli: self.max_cps.map_or(current.max_cps_milli, |s| s.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_given_changes() {
        let current = CallLimits {
            max_calls: Some(4),
            max_cps_milli: Some(2000),
        };
        let args = LimitArgs {
            max_calls: None,
            max_cps: Some(Setting(None)),
        };
        assert!(args.given());
        assert_eq!(
            args.apply(current),
            CallLimits {
                max_calls: Some(4),
                max_cps_milli: None
            }
        );
        assert!(!LimitArgs::default().given());
        assert_eq!(LimitArgs::default().apply(current), current);
        assert_eq!(rate("30/min"), Ok(Setting(Some(500))));
        assert_eq!(calls("none"), Ok(Setting(None)));
        assert!(calls("x").is_err());
    }
}
