//! Relay benchmarks: the per-packet header work (classify + rewrite), and
//! packets/s through one bridge over loopback with a sender and a receiver
//! thread. Criterion's "time" is ns per packet (one element per iteration).

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dialtone_media::packet::{classify, Datagram};
use dialtone_media::rewrite::StreamRewriter;
use dialtone_media::{Bridge, MediaConfig, MediaEngine};

/// A 20 ms PCMU packet: 12-byte header + 160 bytes.
fn pcmu(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0xd5u8; 172];
    p[0] = 0x80;
    p[1] = 0;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p
}

fn rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("rewrite");
    g.throughput(Throughput::Elements(1));
    let now = Instant::now();

    // The steady state of a relay: same source, constant offsets.
    let mut rw = StreamRewriter::default();
    let mut pkt = pcmu(1, 160, 0x1111);
    let mut seq = 0u16;
    g.bench_function("classify+rewrite (same source)", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            pkt[2..4].copy_from_slice(&seq.to_be_bytes());
            if let Datagram::Rtp(_) = classify(black_box(&pkt)) {
                rw.rewrite(black_box(&mut pkt), now);
            }
        })
    });

    let mut rw = StreamRewriter::default();
    let mut pkt = pcmu(1, 160, 0x1111);
    g.bench_function("rewrite (same source)", |b| {
        b.iter(|| rw.rewrite(black_box(&mut pkt), now))
    });

    // Worst case: every packet is a new source (a splice computation each time).
    let mut rw = StreamRewriter::default();
    let mut pkts = [pcmu(1, 160, 0x1111), pcmu(9, 99, 0x2222)];
    let mut i = 0usize;
    g.bench_function("rewrite (splice every packet)", |b| {
        b.iter(|| {
            i ^= 1;
            rw.rewrite(black_box(&mut pkts[i]), now)
        })
    });
    g.finish();
}

/// Phone B's receiver: counts datagrams until told to stop.
fn receiver(
    sock: UdpSocket,
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if sock.recv(&mut buf).is_ok() {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

fn relay(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let eng = MediaEngine::new(MediaConfig {
        bind_ip: Ipv4Addr::LOCALHOST.into(),
        advertise_ip: Ipv4Addr::LOCALHOST.into(),
        ports: 33000..=33099,
        rtp_timeout: Duration::ZERO,
    })
    .expect("engine");
    let phone_a = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("phone a");
    let phone_b = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("phone b");
    phone_b
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let (ea, eb) = rt.block_on(async {
        let ea = eng.allocate().await.expect("a");
        let eb = eng.allocate().await.expect("b");
        (ea, eb)
    });
    ea.set_remote(Some(phone_a.local_addr().expect("addr")), None);
    eb.set_remote(Some(phone_b.local_addr().expect("addr")), None);
    let relay_addr: SocketAddr = ea.local();
    let direct_addr: SocketAddr = phone_b.local_addr().expect("addr");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let bridge = {
        let _guard = rt.enter();
        Bridge::start(ea, eb, tx)
    };

    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rx_thread = receiver(phone_b, Arc::clone(&received), Arc::clone(&stop));
    let mut lost = 0u64;
    let mut sent = 0u64;
    let mut pkt = pcmu(0, 0, 0xabcd);

    let mut g = c.benchmark_group("relay");
    g.throughput(Throughput::Elements(1));
    // `window` packets in flight: 1 measures one packet's trip through the
    // relay (latency), 32 the relay's throughput with the pipe kept full.
    // "direct" sends straight to phone B: the loopback baseline without relay.
    for (name, to, window) in [
        ("loopback one bridge, window 1", relay_addr, 1u64),
        ("loopback one bridge, window 32", relay_addr, 32),
        ("direct baseline (no relay), window 1", direct_addr, 1),
        ("direct baseline (no relay), window 32", direct_addr, 32),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let target = sent + iters;
                let mut stalled_since: Option<Instant> = None;
                while sent < target || received.load(Ordering::Relaxed) + lost < target {
                    let in_flight = sent - received.load(Ordering::Relaxed) - lost;
                    if sent < target && in_flight < window {
                        let seq = sent as u16;
                        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
                        pkt[4..8].copy_from_slice(&((sent as u32).wrapping_mul(160)).to_be_bytes());
                        if phone_a.send_to(&pkt, to).is_ok() {
                            sent += 1;
                        }
                        stalled_since = None;
                        continue;
                    }
                    // Waiting for the relay; a packet that never comes was
                    // lost (socket buffer overflow) — count it and move on.
                    let t = *stalled_since.get_or_insert_with(Instant::now);
                    if t.elapsed() > Duration::from_millis(200) {
                        lost += in_flight;
                        stalled_since = None;
                    }
                    thread::yield_now();
                }
                start.elapsed()
            })
        });
    }
    g.finish();
    stop.store(true, Ordering::Relaxed);
    let _ = rx_thread.join();
    let (sa, sb) = bridge.stats();
    eprintln!(
        "relay bench: sent {sent}, received at B {} (via relay: a.rtp_in {}, b.rtp_out {}), lost {lost}",
        received.load(Ordering::Relaxed),
        sa.rtp_in,
        sb.rtp_out
    );
    rt.block_on(bridge.stop());
}

criterion_group!(benches, rewrite, relay);
criterion_main!(benches);
