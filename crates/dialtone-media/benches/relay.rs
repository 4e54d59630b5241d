//! Relay benchmarks: the per-packet header work (classify + rewrite), the
//! SRTP work per packet (protect, unprotect), and packets/s through one
//! bridge over loopback with a sender and a receiver thread, plain and with
//! SRTP towards one side. Criterion's "time" is ns per packet (one element
//! per iteration).

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dialtone_media::packet::{classify, Datagram};
use dialtone_media::rewrite::StreamRewriter;
use dialtone_media::srtp::{MasterKey, SrtpContext, Suite};
use dialtone_media::{Bridge, MediaConfig, MediaEngine, SrtpMode};

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

/// Phone B: counts datagrams and wakes the sender when the count reaches
/// `target`, so neither thread spins while the relay works (on a small
/// machine a spinning thread would steal the relay's CPU).
struct Receiver {
    count: Arc<AtomicU64>,
    target: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    done: std::sync::mpsc::Receiver<()>,
    thread: thread::JoinHandle<()>,
}

impl Receiver {
    fn start(sock: UdpSocket) -> Receiver {
        let count = Arc::new(AtomicU64::new(0));
        let target = Arc::new(AtomicU64::new(u64::MAX));
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done) = std::sync::mpsc::channel();
        let thread = {
            let (count, target, stop) =
                (Arc::clone(&count), Arc::clone(&target), Arc::clone(&stop));
            thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if sock.recv(&mut buf).is_ok() {
                        let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                        if n == target.load(Ordering::Acquire) {
                            let _ = done_tx.send(());
                        }
                    }
                }
            })
        };
        Receiver {
            count,
            target,
            stop,
            done,
            thread,
        }
    }
}

/// What SRTP adds per packet: AES-CM over the payload and an HMAC-SHA1
/// tag, against copying the packet (the allocation the send path makes).
fn srtp(c: &mut Criterion) {
    let mut g = c.benchmark_group("srtp");
    g.throughput(Throughput::Elements(1));
    let key = MasterKey::random();
    let plain = pcmu(1, 160, 0x1111);
    g.bench_function("copy 172 bytes (baseline)", |b| {
        b.iter(|| black_box(black_box(&plain).to_vec()))
    });
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &key);
    let mut seq = 0u16;
    g.bench_function("protect_rtp PCMU 20 ms", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let mut p = plain.clone();
            p[2..4].copy_from_slice(&seq.to_be_bytes());
            tx.protect_rtp(&mut p).expect("protect");
            black_box(p)
        })
    });
    // Unprotect needs fresh packets (the replay window refuses repeats):
    // a batch protected beforehand, a new receiver per batch.
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &key);
    let batch: Vec<Vec<u8>> = (0..4096u16)
        .map(|s| {
            let mut p = pcmu(s, u32::from(s) * 160, 0x2222);
            tx.protect_rtp(&mut p).expect("protect");
            p
        })
        .collect();
    g.bench_function("unprotect_rtp PCMU 20 ms", |b| {
        b.iter_custom(|iters| {
            let mut left = iters;
            let mut took = Duration::ZERO;
            while left > 0 {
                let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &key);
                let n = left.min(batch.len() as u64) as usize;
                let mut work: Vec<Vec<u8>> = batch[..n].to_vec();
                let start = Instant::now();
                for p in &mut work {
                    black_box(rx.unprotect_rtp(p).expect("unprotect"));
                }
                took += start.elapsed();
                left -= n as u64;
            }
            took
        })
    });
    g.finish();
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

    let rx = Receiver::start(phone_b);
    let mut lost = 0u64;
    let mut sent = 0u64;
    let mut pkt = pcmu(0, 0, 0xabcd);

    let mut g = c.benchmark_group("relay");
    g.throughput(Throughput::Elements(1));
    // Bursts of `burst` packets, waiting for all of them at phone B before
    // the next: 1 measures one packet's trip (latency), 32 the relay's
    // throughput. "direct" sends straight to phone B: the loopback baseline.
    for (name, to, burst, secure) in [
        ("loopback one bridge, burst 1", relay_addr, 1u64, false),
        ("loopback one bridge, burst 32", relay_addr, 32, false),
        ("direct baseline (no relay), burst 1", direct_addr, 1, false),
        (
            "direct baseline (no relay), burst 32",
            direct_addr,
            32,
            false,
        ),
        // Phone B's leg on SRTP: every packet encrypted on its way out.
        (
            "loopback one bridge, plain in, SRTP out, burst 1",
            relay_addr,
            1,
            true,
        ),
        (
            "loopback one bridge, plain in, SRTP out, burst 32",
            relay_addr,
            32,
            true,
        ),
    ] {
        if secure {
            bridge.b().set_srtp(SrtpMode::On {
                suite: Suite::AesCm128HmacSha1_80,
                tx: MasterKey::random(),
                rx: MasterKey::random(),
            });
        }
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let end = sent + iters;
                while sent < end {
                    let target = (sent + burst).min(end);
                    rx.target.store(target - lost, Ordering::Release);
                    while sent < target {
                        pkt[2..4].copy_from_slice(&(sent as u16).to_be_bytes());
                        pkt[4..8].copy_from_slice(&((sent as u32).wrapping_mul(160)).to_be_bytes());
                        if phone_a.send_to(&pkt, to).is_ok() {
                            sent += 1;
                        }
                    }
                    // The receiver may have reached the target before it was
                    // published; then the count tells.
                    while rx.count.load(Ordering::Relaxed) + lost < target {
                        if rx.done.recv_timeout(Duration::from_millis(200)).is_err() {
                            // Lost (socket buffer overflow): count it, go on.
                            lost = target - rx.count.load(Ordering::Relaxed);
                        }
                    }
                    while rx.done.try_recv().is_ok() {}
                }
                start.elapsed()
            })
        });
    }
    g.finish();
    rx.stop.store(true, Ordering::Relaxed);
    let _ = rx.thread.join();
    let (sa, sb) = bridge.stats();
    eprintln!(
        "relay bench: sent {sent}, received at B {} (via relay: a.rtp_in {}, b.rtp_out {}), lost {lost}",
        rx.count.load(Ordering::Relaxed),
        sa.rtp_in,
        sb.rtp_out
    );
    rt.block_on(bridge.stop());
}

criterion_group!(benches, rewrite, srtp, relay);
criterion_main!(benches);
