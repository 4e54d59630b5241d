//! SRTP on one leg, keyed by SDES (RFC 4568 over RFC 3711). dialtone
//! terminates SRTP per leg, as an SBC does: each party gets its own keys in
//! dialtone's SDP and sends with the key in its own, so a phone on SRTP can
//! talk to a plain trunk, an AI agent, or another SRTP phone with different
//! keys. Whether a party gets SRTP is its policy (the user's or trunk's
//! `srtp`, else `media.srtp`):
//!
//! - `off`: plain only; an RTP/SAVP offer is refused (488).
//! - `optional`: SRTP when the party offers it (RTP/SAVP, or a=crypto on
//!   RTP/AVP, "best effort"); dialtone's own offers to it are plain.
//! - `required`: dialtone offers RTP/SAVP with keys and refuses plain offers
//!   (488); an answer without keys leaves the media refused, never plain.

use dialtone_media::srtp::{MasterKey, Suite};
use dialtone_media::SrtpMode;
use dialtone_sip::sdp::{Crypto, Media, Sdp};
use dialtone_store::SrtpPolicy;

/// The suites dialtone offers, in its order of preference (RFC 4568 §6.2).
const SUITES: [Suite; 2] = [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32];

/// The SDES side of one leg.
#[derive(Debug)]
pub struct Sdes {
    pub policy: SrtpPolicy,
    /// dialtone's master key per suite toward this party, made when first
    /// needed and kept for the leg's life: a re-offer repeats it, so the
    /// SRTP state carries on (RFC 4568 §7.1.4 lets keys stay).
    keys: Vec<(Suite, MasterKey)>,
    /// dialtone's last description to this party carried keys.
    keyed: bool,
    /// The profile SRTP was agreed on with this party (RTP/SAVP, or
    /// RTP/AVP for best effort), while it is: a re-offer (hold, a
    /// transfer, a session refresh) keeps it secure even where the policy
    /// would not offer SRTP on its own.
    agreed: Option<String>,
}

impl Sdes {
    pub fn new(policy: SrtpPolicy) -> Sdes {
        Sdes {
            policy,
            keys: Vec::new(),
            keyed: false,
            agreed: None,
        }
    }

    fn key(&mut self, suite: Suite) -> MasterKey {
        if let Some((_, k)) = self.keys.iter().find(|(s, _)| *s == suite) {
            return k.clone();
        }
        let k = MasterKey::random();
        self.keys.push((suite, k.clone()));
        k
    }

    fn line(&mut self, tag: u32, suite: Suite) -> Crypto {
        Crypto {
            tag,
            suite: suite.sdp_name().to_string(),
            key: self.key(suite).as_bytes().to_vec(),
        }
    }

    /// Whether this party's offered stream is acceptable under its policy:
    /// the reason phrase of a 488 if not.
    pub fn check_offer(&self, offer: &Media) -> Result<(), &'static str> {
        if offer.proto.to_ascii_uppercase().starts_with("UDP/TLS") {
            return Err("DTLS-SRTP Not Supported");
        }
        let secure = offer.is_secure_profile();
        let usable = usable(offer).is_some();
        match self.policy {
            SrtpPolicy::Off if secure => Err("SRTP Not Allowed"),
            SrtpPolicy::Off => Ok(()),
            _ if secure && !usable => Err("No Usable SDES Crypto Suite"),
            SrtpPolicy::Required if !usable => Err("SRTP Required"),
            _ => Ok(()),
        }
    }

    /// [`check_offer`](Self::check_offer) for the first live audio stream
    /// of an offered description (the one dialtone relays).
    pub fn check_offer_sdp(&self, offer: &Sdp) -> Result<(), &'static str> {
        match offer
            .media
            .iter()
            .find(|m| m.kind.eq_ignore_ascii_case("audio") && m.port != 0)
        {
            Some(m) => self.check_offer(m),
            None => Ok(()),
        }
    }

    /// Our answer's stream `out` to this party's offered stream `offer`:
    /// the offer's profile, and a key for the first offered line whose
    /// suite dialtone speaks, under the same tag, unless the policy is off.
    pub fn answer(&mut self, offer: &Media, out: &mut Media) {
        out.proto = offer.proto.clone();
        let chosen = match self.policy {
            SrtpPolicy::Off => None,
            _ => usable(offer),
        };
        let lines = match chosen {
            Some((c, suite)) => vec![self.line(c.tag, suite)],
            None => Vec::new(),
        };
        self.keyed = !lines.is_empty();
        self.agreed = self.keyed.then(|| offer.proto.clone());
        out.set_cryptos(&lines);
    }

    /// Our offer's stream `out` to this party: RTP/SAVP with one key per
    /// suite when its policy requires SRTP; the same again when SRTP is
    /// already agreed with it (on the profile agreed); else plain RTP/AVP.
    pub fn offer(&mut self, out: &mut Media) {
        let required = self.policy == SrtpPolicy::Required;
        let agreed_savp = self
            .agreed
            .as_deref()
            .map(|p| p.to_ascii_uppercase().contains("SAVP"));
        let secure = required || agreed_savp.is_some();
        out.set_secure_profile(required || agreed_savp == Some(true));
        let lines: Vec<Crypto> = if secure {
            (1..)
                .zip(SUITES)
                .map(|(tag, s)| self.line(tag, s))
                .collect()
        } else {
            Vec::new()
        };
        self.keyed = secure;
        out.set_cryptos(&lines);
    }

    /// The party answered our offer with stream `answer`: SRTP is agreed
    /// when it took one of our keys.
    pub fn took_answer(&mut self, answer: Option<&Media>) {
        let taken = answer
            .filter(|_| self.keyed)
            .filter(|m| usable(m).is_some());
        self.agreed = taken.map(|m| m.proto.clone());
    }

    /// How the endpoint facing this party protects media, given the
    /// party's last description of its stream (the offer we answered, or
    /// its answer to ours).
    pub fn mode(&self, remote: Option<&Media>) -> SrtpMode {
        let agreed = remote.filter(|_| self.keyed).and_then(usable);
        let keys = agreed.and_then(|(c, suite)| {
            let tx = self.keys.iter().find(|(s, _)| *s == suite)?.1.clone();
            Some((suite, tx, MasterKey::from_bytes(&c.key)?))
        });
        match keys {
            Some((suite, tx, rx)) => SrtpMode::On { suite, tx, rx },
            None if self.policy == SrtpPolicy::Required => SrtpMode::Refuse,
            None => SrtpMode::Off,
        }
    }
}

/// The first crypto line of `m` dialtone can key an SRTP context with.
fn usable(m: &Media) -> Option<(Crypto, Suite)> {
    m.cryptos().into_iter().find_map(|c| {
        let suite = Suite::from_sdp(&c.suite)?;
        (c.key.len() == MasterKey::LEN).then_some((c, suite))
    })
}

#[cfg(test)]
#[path = "sdes_tests.rs"]
mod tests;
