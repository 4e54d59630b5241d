//! Test helpers: phones made of real UDP sockets on 127.0.0.1, RTP packet
//! building and parsing, and engines on per-test port ranges (below the
//! kernel's ephemeral range, so the phones' own sockets never collide).
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use dialtone_media::{Endpoint, MediaConfig, MediaEngine};
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use tokio::net::UdpSocket;

pub const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Generous: these are behaviour checks, not speed checks.
pub const WAIT: Duration = Duration::from_secs(3);

pub fn engine(ports: RangeInclusive<u16>, rtp_timeout: Duration) -> MediaEngine {
    MediaEngine::new(MediaConfig {
        bind_ip: LOCALHOST.into(),
        advertise_ip: LOCALHOST.into(),
        ports,
        rtp_timeout,
    })
    .expect("valid config")
}

/// A phone: an RTP socket and an RTCP socket on the next port.
pub struct Phone {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

impl Phone {
    pub async fn new() -> Phone {
        for _ in 0..100 {
            let rtp = UdpSocket::bind((LOCALHOST, 0)).await.expect("bind");
            let port = rtp.local_addr().expect("addr").port();
            if let Some(next) = port.checked_add(1) {
                if let Ok(rtcp) = UdpSocket::bind((LOCALHOST, next)).await {
                    return Phone { rtp, rtcp };
                }
            }
        }
        panic!("no consecutive port pair for a phone");
    }

    pub fn rtp_addr(&self) -> SocketAddr {
        self.rtp.local_addr().expect("addr")
    }

    pub fn rtcp_addr(&self) -> SocketAddr {
        self.rtcp.local_addr().expect("addr")
    }

    pub async fn send(&self, to: SocketAddr, pkt: &[u8]) {
        self.rtp.send_to(pkt, to).await.expect("send");
    }

    /// Next RTP-socket datagram within `wait`.
    pub async fn recv(&self, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        recv_on(&self.rtp, wait).await
    }

    /// Up to `n` datagrams, each within WAIT of the previous one.
    pub async fn recv_n(&self, n: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        while got.len() < n {
            match self.recv(WAIT).await {
                Some((p, _)) => got.push(p),
                None => break,
            }
        }
        got
    }
}

pub async fn recv_on(sock: &UdpSocket, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 2048];
    match tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) => {
            buf.truncate(n);
            Some((buf, from))
        }
        _ => None,
    }
}

pub fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    RtpPacketBuilder::new()
        .payload_type(pt)
        .marked(marker)
        .sequence(Seq::from(seq))
        .timestamp(ts)
        .ssrc(ssrc)
        .payload(payload)
        .build()
        .expect("build rtp")
}

/// A PCMU-looking packet whose payload encodes `seq` (so it can be checked).
pub fn audio(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut payload = [0xffu8; 160];
    payload[..2].copy_from_slice(&seq.to_be_bytes());
    payload[2..6].copy_from_slice(&ssrc.to_be_bytes());
    rtp(0, false, seq, ts, ssrc, &payload)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hdr {
    pub marker: bool,
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
}

pub fn hdr(pkt: &[u8]) -> Hdr {
    let r = RtpReader::new(pkt).expect("valid rtp");
    Hdr {
        marker: r.mark(),
        pt: r.payload_type(),
        seq: r.sequence_number().into(),
        ts: r.timestamp(),
        ssrc: r.ssrc(),
    }
}

pub fn payload(pkt: &[u8]) -> Vec<u8> {
    RtpReader::new(pkt).expect("valid rtp").payload().to_vec()
}

/// A receiver report (RTCP RR, no report blocks) from `ssrc`.
pub fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

/// Allocates two endpoints facing phones `a` and `b` (SDP addresses = the
/// phones' real sockets).
pub async fn legs(engine: &MediaEngine, a: &Phone, b: &Phone) -> (Endpoint, Endpoint) {
    let ea = engine.allocate().await.expect("allocate a");
    let eb = engine.allocate().await.expect("allocate b");
    ea.set_remote(Some(a.rtp_addr()), None);
    eb.set_remote(Some(b.rtp_addr()), None);
    (ea, eb)
}
