//! A leg: one SIP dialog between dialtone and one party, with the RTP slot
//! that faces that party and the SDP state of that side (our o= line, the
//! party's last description). The caller's leg is a UAS leg (its INVITE
//! came to us); every leg dialtone places is a UAC leg.

use std::net::SocketAddr;

use dialtone_media::{SrtpMode, StreamFormat};
use dialtone_sip::dialog::Dialog;
use dialtone_sip::sdp::{anchor, Direction, Format, Media, OriginState, Sdp};
use dialtone_sip::transaction::ServerTransaction;
use dialtone_sip::transport::Peer;
use rsip::{Header, Request, Response};

use super::codecs;
use super::media::Slot;
use super::sdes::Sdes;
use crate::router::Caller;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Uas,
    Uac,
}

impl Role {
    /// "uas" (its INVITE came to us) or "uac" (we placed it), as listings
    /// and call records name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Uas => "uas",
            Role::Uac => "uac",
        }
    }
}

/// RFC 3261 dialog life of one leg, as the call sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegState {
    /// INVITE sent (UAC) or received (UAS), nothing back yet.
    Calling,
    /// A provisional response with a To tag: an early dialog.
    Early,
    /// 2xx sent or received.
    Connected,
    /// BYE or CANCEL sent, waiting for the answer.
    Ending,
    Ended,
}

pub struct Leg {
    pub role: Role,
    pub state: LegState,
    /// Where this leg's requests go: the address the INVITE came from (UAS)
    /// or was sent to (UAC). Using it rather than the Contact keeps phones
    /// behind NAT reachable.
    pub peer: Peer,
    pub sip_call_id: String,
    pub dialog: Option<Dialog>,
    /// UAC: the INVITE as sent (with our Via), for CANCEL.
    pub invite: Option<Request>,
    /// UAC: the INVITE before our Via, to resend with credentials.
    pub invite_template: Option<Request>,
    pub got_provisional: bool,
    /// UAC: a CANCEL is wanted but must wait for a provisional (§9.1).
    pub cancel_wanted: bool,
    /// UAC: our INVITE has had no final response yet, so a CANCEL (or the
    /// ACK and BYE for a 2xx that crossed it) may still be owed.
    pub invite_pending: bool,
    pub auth_tried: bool,
    /// Credentials for a trunk's digest challenge.
    pub credentials: Option<(String, String)>,
    /// UAS: the INVITE transaction, answered through this.
    pub uas: Option<ServerTransaction>,
    pub slot: Slot,
    pub origin: OriginState,
    pub remote_sdp: Option<Sdp>,
    /// For records and logs: "user:1001", "trunk:carrier", "caller".
    pub label: String,
    /// The final status this leg's INVITE got (UAC), for the call's outcome.
    pub final_status: Option<(u16, String)>,
    /// This dialog's RFC 4028 session timer, once negotiated.
    pub session: Option<super::session_timer::SessionTimer>,
    /// Late offer: this leg's 2xx carried the offer, and its ACK waits for
    /// the caller's answer (RFC 3261 §13.2.2.4).
    pub awaiting_answer: bool,
    /// The SDP our ACK for this leg's 2xx carries (late offer).
    pub ack_body: Option<Vec<u8>>,
    /// The voice codec this leg's last offer/answer settled on, in the
    /// party's numbering (see [`codecs`](super::codecs)).
    pub codec: Option<Format>,
    /// Who this leg's party is, for the transfers it asks for (REFER): a
    /// user dials with its own rights, a trunk's party reaches numbers only.
    pub who: Caller,
    /// How many REFERs this leg's party has sent in its dialog: from the
    /// second on, their NOTIFYs carry an Event id (RFC 3515 §2.4.6).
    pub refers: u32,
    /// SRTP with this party: its policy and dialtone's keys toward it.
    pub sdes: Sdes,
}

/// Whether dialtone's description to a party offers or answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Exchange {
    Offer,
    Answer,
}

impl Leg {
    pub fn new(
        role: Role,
        peer: Peer,
        sip_call_id: String,
        slot: Slot,
        local_ip: std::net::IpAddr,
        label: String,
        who: Caller,
    ) -> Leg {
        Leg {
            role,
            state: LegState::Calling,
            peer,
            sip_call_id,
            dialog: None,
            invite: None,
            invite_template: None,
            got_provisional: false,
            cancel_wanted: false,
            invite_pending: false,
            auth_tried: false,
            credentials: None,
            uas: None,
            slot,
            origin: OriginState::new(local_ip),
            remote_sdp: None,
            label,
            final_status: None,
            session: None,
            awaiting_answer: false,
            ack_body: None,
            codec: None,
            who,
            refers: 0,
            sdes: Sdes::new(dialtone_store::SrtpPolicy::default()),
        }
    }

    /// Moves this leg out (to hand it to another call), leaving an ended stub.
    pub fn detach(&mut self) -> Leg {
        let ip = self
            .origin
            .origin()
            .address
            .parse()
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let mut stub = Leg::new(
            self.role,
            self.peer,
            self.sip_call_id.clone(),
            self.slot,
            ip,
            self.label.clone(),
            self.who.clone(),
        );
        stub.state = LegState::Ended;
        std::mem::replace(self, stub)
    }

    /// An offer to this leg's party made from `source` (the other party's
    /// description): its codecs plus the ones dialtone can transcode
    /// ([`codecs::offer_formats`]), our address and this leg's port, and our
    /// o= line.
    pub fn offer_from(&mut self, source: &Sdp, local: SocketAddr) -> Vec<u8> {
        let mut s = source.clone();
        if let Some(m) = first_audio_mut(&mut s) {
            m.set_formats(&codecs::offer_formats(&m.formats()));
        }
        self.anchored(&s, local, Exchange::Offer)
    }

    /// Our answer to this leg's offer (its `remote_sdp`), made from the
    /// other party's answer `source`: the codec that party chose when this
    /// one offered it too, else this one's best transcodable codec
    /// ([`codecs::answer_formats`]). Records the codec agreed with this leg.
    /// Without an offer on record (a late offer), `source` is an offer and
    /// this makes one.
    pub fn answer_from(&mut self, source: &Sdp, local: SocketAddr) -> Vec<u8> {
        let offered = self
            .remote_sdp
            .as_ref()
            .and_then(first_audio)
            .map(Media::formats);
        let chosen = first_audio(source).and_then(codecs::chosen);
        let (Some(offered), Some(chosen)) = (offered, chosen) else {
            return self.offer_from(source, local);
        };
        let mut s = source.clone();
        match codecs::answer_formats(&offered, &chosen) {
            Some(formats) => {
                self.codec = formats.first().cloned();
                if let Some(m) = first_audio_mut(&mut s) {
                    m.set_formats(&formats);
                }
            }
            None => {
                // Nothing we can do for this offer: reject the stream.
                tracing::warn!(leg = %self.label, codec = %chosen.encoding,
                    "no codec in common and none to transcode; rejecting the audio stream");
                if let Some(m) = first_audio_mut(&mut s) {
                    m.port = 0;
                }
            }
        }
        self.anchored(&s, local, Exchange::Answer)
    }

    /// Our answer to this leg's offer when dialtone itself is the other
    /// party (an AI agent): the offerer's most preferred codec dialtone can
    /// decode and encode, with its telephone-event, the direction mirrored.
    /// None when the offer has none (488).
    pub fn answer_alone(&mut self, local: SocketAddr) -> Option<Vec<u8>> {
        self.answer_alone_keeping(local, None)
    }

    /// Like [`answer_alone`](Self::answer_alone), keeping codec `keep` when
    /// the offer still has it (a re-INVITE mid-call).
    pub fn answer_alone_keeping(
        &mut self,
        local: SocketAddr,
        keep: Option<&Format>,
    ) -> Option<Vec<u8>> {
        let offer = self.remote_sdp.as_ref()?;
        self.sdes.check_offer(first_audio(offer)?).ok()?;
        let mut s = offer.clone();
        let m = first_audio_mut(&mut s)?;
        let formats = codecs::agent_answer(&m.formats(), keep)?;
        self.codec = formats.first().cloned();
        let dir = m.direction(offer).reversed();
        m.set_formats(&formats);
        m.set_direction(dir);
        Some(self.anchored(&s, local, Exchange::Answer))
    }

    /// This leg's party answered our offer with `answer`.
    pub fn took_answer(&mut self, answer: &Sdp) {
        self.sdes.took_answer(first_audio(answer));
        self.codec = first_audio(answer).and_then(codecs::chosen);
    }

    /// How the endpoint facing this leg's party is to behave, from its last
    /// description and the codec agreed with it.
    pub fn media_plan(&self) -> Option<MediaPlan> {
        let sdp = self.remote_sdp.as_ref()?;
        let mut plan = MediaPlan::of(sdp, self.codec.as_ref());
        plan.srtp = Some(self.sdes.mode(first_audio(sdp)));
        Some(plan)
    }

    /// Why this party's offer `sdp` is refused (the reason of a 488), if it
    /// is: its audio stream's security goes against its SRTP policy.
    pub fn refuses_offer(&self, sdp: &Sdp) -> Option<&'static str> {
        self.sdes.check_offer_sdp(sdp).err()
    }

    /// `source` with our address and this leg's port, and our o= line; the
    /// audio stream's profile and keys are this leg's own (see
    /// [`Sdes`]), never the other party's. Only the first audio stream is
    /// relayed; other streams are refused (port 0) since no endpoint
    /// carries them.
    fn anchored(&mut self, source: &Sdp, local: SocketAddr, exchange: Exchange) -> Vec<u8> {
        let mut first = true;
        let ports: Vec<u16> = source
            .media
            .iter()
            .map(|m| {
                if m.kind.eq_ignore_ascii_case("audio") && m.port != 0 && first {
                    first = false;
                    local.port()
                } else {
                    0
                }
            })
            .collect();
        let mut sdp = anchor(source, local.ip(), &ports);
        for m in sdp.media.iter_mut().filter(|m| m.port == 0) {
            m.set_cryptos(&[]);
        }
        if let Some(m) = first_audio_mut(&mut sdp) {
            let offer = self.remote_sdp.as_ref().and_then(first_audio);
            match (exchange, offer) {
                (Exchange::Answer, Some(offer)) => self.sdes.answer(offer, m),
                _ => self.sdes.offer(m),
            }
        }
        self.origin.stamp(&mut sdp);
        sdp.to_bytes()
    }

    /// Like [`offer_from`](Self::offer_from), with the stream direction set.
    pub fn offer_with_direction(
        &mut self,
        source: &Sdp,
        local: SocketAddr,
        dir: Direction,
    ) -> Vec<u8> {
        let mut s = source.clone();
        if let Some(m) = s
            .media
            .iter_mut()
            .find(|m| m.kind.eq_ignore_ascii_case("audio"))
        {
            m.set_direction(dir);
        }
        self.offer_from(&s, local)
    }
}

fn first_audio(sdp: &Sdp) -> Option<&Media> {
    sdp.media
        .iter()
        .find(|m| m.kind.eq_ignore_ascii_case("audio") && m.port != 0)
}

fn first_audio_mut(sdp: &mut Sdp) -> Option<&mut Media> {
    sdp.media
        .iter_mut()
        .find(|m| m.kind.eq_ignore_ascii_case("audio") && m.port != 0)
}

/// How the party's description tells the endpoint facing it to behave.
pub struct MediaPlan {
    pub rtp: Option<SocketAddr>,
    pub rtcp: Option<SocketAddr>,
    /// We send to the party (it receives).
    pub send: bool,
    /// The party sends to us.
    pub expect_rtp: bool,
    pub clock_rate: u32,
    pub codec: Option<String>,
    /// The codec and payload types for the media engine.
    pub format: Option<StreamFormat>,
    /// How media with the party is protected; `None` leaves it as it is.
    pub srtp: Option<SrtpMode>,
}

impl MediaPlan {
    /// From the party's description `sdp` and the voice codec agreed with
    /// it; `None` (no answer yet, or `sdp` is itself the answer) takes the
    /// description's first codec.
    pub fn of(sdp: &Sdp, agreed: Option<&Format>) -> MediaPlan {
        let audio = first_audio(sdp);
        match audio {
            None => MediaPlan {
                rtp: None,
                rtcp: None,
                send: false,
                expect_rtp: false,
                clock_rate: 8000,
                codec: None,
                format: None,
                srtp: None,
            },
            Some(m) => {
                let dir = m.direction(sdp);
                let voice = agreed.cloned().or_else(|| codecs::chosen(m));
                let format = voice.as_ref().and_then(|v| codecs::stream_format(m, v));
                MediaPlan {
                    rtp: m.rtp_addr(sdp),
                    rtcp: m.rtcp_addr(sdp),
                    send: dir.receives(),
                    expect_rtp: dir.sends(),
                    clock_rate: voice.as_ref().map(|r| r.clock_rate).unwrap_or(8000),
                    codec: voice.map(|r| format!("{}/{}", r.encoding, r.clock_rate)),
                    format,
                    srtp: None,
                }
            }
        }
    }
}

/// The SDP body of a message, if it has one.
pub fn sdp_of(headers: &rsip::Headers, body: &[u8]) -> Option<Result<Sdp, String>> {
    if body.is_empty() {
        return None;
    }
    let is_sdp = headers.iter().any(|h| match h {
        Header::ContentType(ct) => {
            use rsip::headers::UntypedHeader;
            ct.value()
                .to_ascii_lowercase()
                .starts_with("application/sdp")
        }
        _ => false,
    });
    if !is_sdp {
        return None;
    }
    Some(Sdp::parse(body).map_err(|e| e.to_string()))
}

pub fn request_sdp(req: &Request) -> Option<Result<Sdp, String>> {
    sdp_of(&req.headers, &req.body)
}

pub fn response_sdp(resp: &Response) -> Option<Result<Sdp, String>> {
    sdp_of(&resp.headers, &resp.body)
}

/// Puts an SDP body (and its Content-Type) on a message's headers.
pub fn set_sdp_body(headers: &mut rsip::Headers, body: &mut Vec<u8>, sdp: Vec<u8>) {
    headers.retain(|h| !matches!(h, Header::ContentType(_)));
    headers.push(Header::ContentType(rsip::headers::ContentType::from(
        "application/sdp",
    )));
    *body = sdp;
}
