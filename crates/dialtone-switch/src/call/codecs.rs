//! Codec negotiation across the two legs of a call (RFC 3264 offer/answer,
//! done twice: once with each party).
//!
//! The policy, as a telecom engineer expects of a B2BUA that can transcode:
//! - An offer relayed to the other party keeps the offerer's codecs first,
//!   in its order, then adds the codecs dialtone can transcode that are
//!   missing (Opus, G.722, PCMU, PCMA), each with telephone-event at its clock rate
//!   when the offerer does DTMF. So the far end picks a shared codec when
//!   it has one (relayed untouched), and a transcodable one otherwise,
//!   instead of failing with 488.
//! - The answer to the offerer names the codec the far end chose when the
//!   offerer offered it (pass-through), else the offerer's most preferred
//!   codec dialtone can transcode; plus the offerer's telephone-event at
//!   that codec's rate.
//! - Each leg keeps its own payload type numbers: Opus may be 111 towards
//!   the phone and 96 towards the trunk; the media engine renumbers.

use dialtone_media::codec::{Codec, OpusParams};
use dialtone_media::StreamFormat;
use dialtone_sip::sdp::{append_formats, Format, Media};

/// The events we relay or convert: the 16 DTMF events (RFC 4733 §3.2).
const EVENTS_FMTP: &str = "0-16";

/// What we want to receive in Opus: in-band FEC (we decode it), mono.
fn opus_fmtp() -> String {
    OpusParams {
        inband_fec: true,
        ..OpusParams::default()
    }
    .to_fmtp()
}

/// The codecs dialtone transcodes, in the order it adds them to an offer.
fn transcodable() -> Vec<Format> {
    vec![
        Format::new(111, "opus", 48000, Some(2)).with_fmtp(opus_fmtp()),
        Format::new(9, "G722", 8000, None),
        Format::new(0, "PCMU", 8000, None),
        Format::new(8, "PCMA", 8000, None),
    ]
}

fn is_transcodable(f: &Format) -> bool {
    codec_of(f).is_some()
}

fn codec_of(f: &Format) -> Option<Codec> {
    Codec::from_rtpmap(&f.encoding, f.clock_rate, f.channels, f.fmtp.as_deref())
}

/// The formats of an offer relayed from a party whose description offered
/// `source` (see the module docs). Unchanged when `source` has no codec
/// dialtone can transcode: there would be nothing to transcode from.
pub fn offer_formats(source: &[Format]) -> Vec<Format> {
    if !source.iter().any(is_transcodable) {
        return source.to_vec();
    }
    let mut list = append_formats(source, &transcodable());
    if source.iter().any(Format::is_telephone_event) {
        let mut rates: Vec<u32> = Vec::new();
        for f in list.iter().filter(|f| f.is_voice()) {
            if !rates.contains(&f.clock_rate) {
                rates.push(f.clock_rate);
            }
        }
        let events: Vec<Format> = rates
            .into_iter()
            .map(|rate| Format::new(101, "telephone-event", rate, None).with_fmtp(EVENTS_FMTP))
            .collect();
        list = append_formats(&list, &events);
    }
    list
}

/// The formats of our answer to an offer of `offered`, given the voice codec
/// the other party settled on (`chosen`, in its own numbering). `None` when
/// nothing in the offer can carry the call.
pub fn answer_formats(offered: &[Format], chosen: &Format) -> Option<Vec<Format>> {
    let same = offered
        .iter()
        .find(|f| f.is_voice() && f.same_codec(chosen))
        .map(|f| Format {
            // Pass-through: the parameters are the far end's receiving ones.
            fmtp: chosen.fmtp.clone(),
            ..f.clone()
        });
    let voice = match same {
        Some(v) => v,
        None if is_transcodable(chosen) => {
            let mut v = offered
                .iter()
                .find(|f| f.is_voice() && is_transcodable(f))?
                .clone();
            v.fmtp = v.encoding.eq_ignore_ascii_case("opus").then(opus_fmtp);
            v
        }
        None => return None,
    };
    let mut out = vec![voice.clone()];
    if let Some(te) = offered
        .iter()
        .find(|f| f.is_telephone_event() && f.clock_rate == voice.clock_rate)
    {
        out.push(te.clone());
    }
    Some(out)
}

/// The formats of our answer to an offer of `offered` when dialtone itself
/// takes the call (an AI agent): the offerer's most preferred codec that
/// dialtone decodes and encodes (our Opus parameters for Opus), plus its
/// telephone-event at that rate; `keep` (the codec in use) wins when the
/// offer still has it. `None` when the offer has no such codec.
pub fn agent_answer(offered: &[Format], keep: Option<&Format>) -> Option<Vec<Format>> {
    let kept = keep.and_then(|k| offered.iter().find(|f| f.is_voice() && f.same_codec(k)));
    let mut voice = kept
        .or_else(|| offered.iter().find(|f| f.is_voice() && is_transcodable(f)))?
        .clone();
    if voice.encoding.eq_ignore_ascii_case("opus") {
        voice.fmtp = Some(opus_fmtp());
    }
    let mut out = vec![voice.clone()];
    if let Some(te) = offered
        .iter()
        .find(|f| f.is_telephone_event() && f.clock_rate == voice.clock_rate)
    {
        out.push(te.clone());
    }
    Some(out)
}

/// The voice codec an answer settled on: its first voice format.
pub fn chosen(answer: &Media) -> Option<Format> {
    answer.formats().into_iter().find(Format::is_voice)
}

/// How the media engine is to treat a party whose description is `peer`
/// (its offer or its answer), the voice codec agreed being `chosen`: the
/// payload types are the party's own, the Opus parameters those it asked
/// for (what it wants to receive).
pub fn stream_format(peer: &Media, chosen: &Format) -> Option<StreamFormat> {
    let formats = peer.formats();
    let voice = formats
        .iter()
        .find(|f| f.is_voice() && f.same_codec(chosen))?;
    let mut sf = match codec_of(voice) {
        Some(codec) => StreamFormat::of(codec, voice.pt),
        None => StreamFormat {
            pt: voice.pt,
            encoding: voice.encoding.clone(),
            clock_rate: voice.clock_rate,
            channels: voice.channels.unwrap_or(1),
            codec: None,
            dtmf: None,
        },
    };
    let te = formats
        .iter()
        .filter(|f| f.is_telephone_event())
        .find(|f| f.clock_rate == voice.clock_rate);
    if let Some(te) = te {
        sf = sf.with_dtmf(te.pt, te.clock_rate);
    }
    Some(sf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    fn opus(pt: u8) -> Format {
        Format::new(pt, "opus", 48000, Some(2)).with_fmtp("useinbandfec=1")
    }
    fn pcmu() -> Format {
        Format::new(0, "PCMU", 8000, None)
    }
    fn te(pt: u8, rate: u32) -> Format {
        Format::new(pt, "telephone-event", rate, None).with_fmtp("0-16")
    }

    fn names(list: &[Format]) -> Vec<String> {
        list.iter()
            .map(|f| format!("{} {}/{}", f.pt, f.encoding, f.clock_rate))
            .collect()
    }

    #[test]
    fn offer_keeps_callers_codecs_first_and_adds_transcodable_ones() {
        let offer = offer_formats(&[opus(96), te(97, 48000)]);
        assert_eq!(
            names(&offer),
            [
                "96 opus/48000",
                "97 telephone-event/48000",
                "9 G722/8000",
                "0 PCMU/8000",
                "8 PCMA/8000",
                "101 telephone-event/8000"
            ]
        );
        // Opus kept its own PT 96; ours (111) was not added twice.
        assert_eq!(offer.iter().filter(|f| f.encoding == "opus").count(), 1);
    }

    #[test]
    fn offer_of_only_unknown_codecs_is_left_alone() {
        let g729 = Format::new(18, "G729", 8000, None);
        assert_eq!(offer_formats(std::slice::from_ref(&g729)), vec![g729]);
    }

    #[test]
    fn no_telephone_event_added_when_the_offerer_has_none() {
        let offer = offer_formats(&[pcmu()]);
        assert_eq!(
            names(&offer),
            [
                "0 PCMU/8000",
                "111 opus/48000",
                "9 G722/8000",
                "8 PCMA/8000"
            ]
        );
    }

    #[test]
    fn answer_passes_through_a_shared_codec_in_the_offerers_numbering() {
        // The phone offered opus as 111; the far end answered it as 96.
        let offered = [opus(111), pcmu(), te(101, 48000)];
        let chosen = Format::new(96, "OPUS", 48000, Some(2)).with_fmtp("maxplaybackrate=16000");
        let ans = answer_formats(&offered, &chosen).unwrap();
        assert_eq!(names(&ans), ["111 opus/48000", "101 telephone-event/48000"]);
        assert_eq!(ans[0].fmtp.as_deref(), Some("maxplaybackrate=16000"));
    }

    #[test]
    fn answer_transcodes_to_the_offerers_best_codec() {
        let offered = [opus(111), te(101, 48000)];
        let ans = answer_formats(&offered, &pcmu()).unwrap();
        assert_eq!(names(&ans), ["111 opus/48000", "101 telephone-event/48000"]);
        assert!(ans[0].fmtp.as_deref().unwrap().contains("useinbandfec=1"));
        // Nothing transcodable on offer, and the far end chose something else.
        let g729 = Format::new(18, "G729", 8000, None);
        assert!(answer_formats(std::slice::from_ref(&g729), &pcmu()).is_none());
        assert!(answer_formats(&[pcmu()], &g729).is_none());
        // A G.722 phone whose call the far end took in PCMU keeps G.722.
        let g722 = Format::new(9, "G722", 8000, None);
        let ans = answer_formats(&[g722, te(101, 8000)], &pcmu()).unwrap();
        assert_eq!(names(&ans), ["9 G722/8000", "101 telephone-event/8000"]);
    }

    #[test]
    fn an_agent_answers_with_the_callers_first_codec_it_can_carry() {
        let g729 = Format::new(18, "G729", 8000, None);
        let ans = agent_answer(&[g729.clone(), pcmu(), te(101, 8000), opus(111)], None).unwrap();
        assert_eq!(names(&ans), ["0 PCMU/8000", "101 telephone-event/8000"]);
        let ans = agent_answer(&[opus(96), pcmu(), te(97, 48000)], None).unwrap();
        assert_eq!(names(&ans), ["96 opus/48000", "97 telephone-event/48000"]);
        assert!(ans[0].fmtp.as_deref().unwrap().contains("useinbandfec=1"));
        // A re-offer keeps the codec in use when it still has it.
        let ans = agent_answer(&[opus(96), pcmu()], Some(&pcmu())).unwrap();
        assert_eq!(names(&ans), ["0 PCMU/8000"]);
        assert!(agent_answer(&[g729], None).is_none());
    }

    #[test]
    fn stream_format_uses_the_peers_numbers_and_parameters() {
        let sdp = dialtone_sip::sdp::Sdp::parse(
            b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
              m=audio 4000 RTP/AVP 111 0 101\r\na=rtpmap:111 opus/48000/2\r\n\
              a=fmtp:111 useinbandfec=1;maxplaybackrate=16000\r\n\
              a=rtpmap:101 telephone-event/48000\r\n",
        )
        .unwrap();
        let sf = stream_format(&sdp.media[0], &opus(96)).unwrap();
        assert_eq!(sf.pt, 111);
        let codec = sf.codec.clone().unwrap();
        assert!(codec.opus.inband_fec);
        assert_eq!(codec.opus.max_playback_rate, 16000);
        assert_eq!(sf.dtmf.map(|d| (d.pt, d.clock_rate)), Some((101, 48000)));
        let sf = stream_format(&sdp.media[0], &pcmu()).unwrap();
        assert_eq!((sf.pt, sf.dtmf), (0, None));
    }
}
