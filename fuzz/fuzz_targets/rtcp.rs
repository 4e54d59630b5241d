//! One datagram on an RTCP port (or RTCP multiplexed on the RTP port):
//! `rtcp::parse` of a compound packet, as the transcoding path reads the
//! peer's reports, and the classification the relay makes first. Tolerant
//! by design: it must stop at what is malformed, never panic, and never
//! report more than the packet can hold.

#![no_main]

use dialtone_media::packet::{classify, is_rtcp, Datagram};
use dialtone_media::rtcp::{self, RtcpItem};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if is_rtcp(data) {
        assert_eq!(classify(data), Datagram::Rtcp);
    }
    let items = rtcp::parse(data);
    // Every item comes from at least 4 bytes of the packet (a BYE's SSRC;
    // an SR's sender info and a report block take more).
    assert!(
        items.len() <= data.len() / 4,
        "{} items from {} bytes",
        items.len(),
        data.len()
    );
    for item in items {
        if let RtcpItem::ReportBlock(b) = item {
            let _ = (b.fraction_lost, b.cumulative_lost, b.lsr, b.dlsr);
        }
    }
});
