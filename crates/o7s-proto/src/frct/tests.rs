//! Unit tests and a deterministic two-endpoint simulation with a virtual clock.

use super::*;
use crate::wire::frct::{FrctFlags, FrctPacket, FrctRepr};
use proptest::prelude::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const MS: Duration = Duration::from_millis(1);

fn hdr(bytes: &[u8]) -> FrctRepr {
    let p = FrctPacket::new_checked(bytes).expect("header");
    FrctRepr::parse(&p).expect("parse")
}

fn data_pkt(flags: FrctFlags, seqno: u32, payload: &[u8]) -> Vec<u8> {
    Frcti::encode(
        &FrctRepr {
            flags: FrctFlags::DATA | flags,
            rwe: 0,
            seqno,
            ackno: 0,
        },
        payload,
    )
}

/// xorshift64*: a small deterministic generator for the simulation.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True with probability `pct`%.
    fn chance(&mut self, pct: u32) -> bool {
        self.below(100) < u64::from(pct)
    }
}

#[derive(Debug, Clone, Copy)]
struct NetCfg {
    loss_pct: u32,
    dup_pct: u32,
    delay: Duration,
    jitter: Duration,
}

/// A packet in flight: (delivery time, tie-break, destination endpoint, bytes).
type InFlight = Reverse<(Instant, u64, usize, Vec<u8>)>;

/// A lossy, duplicating, reordering (through jitter) channel in both directions.
struct Net {
    cfg: NetCfg,
    rng: Rng,
    seq: u64,
    /// (delivery time, tie-break, destination, bytes)
    queue: BinaryHeap<InFlight>,
}

impl Net {
    fn push(&mut self, now: Instant, dst: usize, bytes: Vec<u8>) {
        let copies = if self.rng.chance(self.cfg.dup_pct) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            if self.rng.chance(self.cfg.loss_pct) {
                continue;
            }
            let jit = self.cfg.jitter.as_nanos() as u64;
            let j = if jit == 0 { 0 } else { self.rng.below(jit) };
            let at = now + self.cfg.delay + Duration::from_nanos(j);
            self.seq += 1;
            self.queue.push(Reverse((at, self.seq, dst, bytes.clone())));
        }
    }
}

struct Outcome {
    received: [Vec<Vec<u8>>; 2],
    end: Duration,
    max_queued: usize,
    max_net: usize,
    counters: [FrctCounters; 2],
}

fn msg(side: usize, i: usize, len: usize) -> Vec<u8> {
    let mut m = vec![side as u8; len.max(4)];
    m[..4].copy_from_slice(&(i as u32).to_be_bytes());
    m
}

/// Run both endpoints until each has delivered all of the other's messages and has nothing
/// unacknowledged, or `limit` virtual time passes.
fn simulate(
    cfgs: [FrctConfig; 2],
    net: NetCfg,
    seed: u64,
    n: [usize; 2],
    limit: Duration,
) -> Outcome {
    simulate_inner(cfgs, net, seed, n, limit, true)
}

fn simulate_inner(
    cfgs: [FrctConfig; 2],
    net: NetCfg,
    seed: u64,
    n: [usize; 2],
    limit: Duration,
    exact: bool,
) -> Outcome {
    let t0 = Instant::now();
    let mut now = t0;
    let mut ep = [
        Frcti::new(cfgs[0].clone(), now),
        Frcti::new(cfgs[1].clone(), now),
    ];
    let mut net = Net {
        cfg: net,
        rng: Rng::new(seed),
        seq: 0,
        queue: BinaryHeap::new(),
    };
    let mut sent = [0usize; 2];
    let mut received: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    let (mut max_queued, mut max_net) = (0, 0);
    let mut steps = 0u64;
    loop {
        steps += 1;
        assert!(steps < 5_000_000, "simulation does not progress");
        for s in 0..2 {
            while sent[s] < n[s] {
                let len = 4 + (sent[s] * 7) % 60;
                match ep[s].send(&msg(s, sent[s], len), now) {
                    Ok(()) => sent[s] += 1,
                    Err(FrctError::WindowClosed) => break,
                    Err(e) => panic!("send failed: {e}"),
                }
            }
            while let Some(p) = ep[s].poll_transmit(now) {
                if std::env::var("FRCT_TRACE").is_ok() {
                    let r = hdr(&p);
                    eprintln!(
                        "{:.4} tx {s} {:?} seq {} ack {} rwe {}",
                        (now - t0).as_secs_f64(),
                        r.flags,
                        r.seqno,
                        r.ackno,
                        r.rwe
                    );
                }
                net.push(now, 1 - s, p);
            }
            while let Some(m) = ep[s].recv() {
                received[s].push(m);
            }
            let (a, b) = ep[s].queued();
            max_queued = max_queued.max(a + b);
        }
        max_net = max_net.max(net.queue.len());
        let done = if exact {
            (0..2).all(|s| sent[s] == n[s] && received[1 - s].len() == n[s] && ep[s].is_idle())
        } else {
            let quiet = net.queue.is_empty() && ep.iter().all(|e| e.poll_timeout().is_none());
            sent == n && quiet
        };
        if done || now - t0 > limit {
            break;
        }
        let next = [
            net.queue.peek().map(|Reverse((t, ..))| *t),
            ep[0].poll_timeout(),
            ep[1].poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            for e in &ep {
                eprintln!(
                    "snd lwe {} next {} rwe {} sent {} buf {} front {:?} | rcv read {} nxt {} rq {} synced {} | {:?}",
                    e.snd_lwe, e.snd_next, e.snd_rwe, e.snd_sent, e.snd_buf.len(),
                    e.snd_buf.front().map(|s| (s.seqno, s.tx_count, s.rtx_at.map(|t| t - t0))),
                    e.rcv_read, e.rcv_nxt, e.rq.len(), e.rcv_synced(now), e.failure()
                );
            }
            panic!("deadlock at {:?}: sent {sent:?}", now - t0);
        };
        now = now.max(next);
        while net.queue.peek().is_some_and(|Reverse((t, ..))| *t <= now) {
            if let Some(Reverse((_, _, dst, bytes))) = net.queue.pop() {
                if std::env::var("FRCT_TRACE").is_ok() {
                    let r = hdr(&bytes);
                    eprintln!(
                        "{:.4} rx {dst} {:?} seq {} ack {} rwe {}",
                        (now - t0).as_secs_f64(),
                        r.flags,
                        r.seqno,
                        r.ackno,
                        r.rwe
                    );
                }
                ep[dst].handle_packet(&bytes, now).expect("well-formed");
            }
        }
        for e in &mut ep {
            if e.poll_timeout().is_some_and(|t| t <= now) {
                e.handle_timeout(now);
            }
        }
    }
    Outcome {
        received,
        end: now - t0,
        max_queued,
        max_net,
        counters: [ep[0].counters(), ep[1].counters()],
    }
}

/// Unreliable flows: run until everything was sent and the network and timers are quiet.
fn simulate_until_sent(
    cfgs: [FrctConfig; 2],
    net: NetCfg,
    seed: u64,
    n: [usize; 2],
    limit: Duration,
) -> Outcome {
    simulate_inner(cfgs, net, seed, n, limit, false)
}

fn reliable(isn: u32) -> FrctConfig {
    FrctConfig {
        initial_seqno: isn,
        rto_max: Duration::from_secs(2),
        max_rdv: Duration::from_secs(3600),
        ..FrctConfig::default()
    }
}

fn check_exact(o: &Outcome, n: [usize; 2]) {
    for (s, &ns) in n.iter().enumerate() {
        assert_eq!(o.received[1 - s].len(), ns, "side {s} delivered count");
        for (i, m) in o.received[1 - s].iter().enumerate() {
            let len = 4 + (i * 7) % 60;
            assert_eq!(m, &msg(s, i, len), "side {s} message {i}");
        }
    }
}

#[test]
fn clean_channel_delivers_in_order() {
    let net = NetCfg {
        loss_pct: 0,
        dup_pct: 0,
        delay: 5 * MS,
        jitter: Duration::ZERO,
    };
    let n = [500, 300];
    let o = simulate(
        [reliable(1), reliable(0xFFFF_FF00)],
        net,
        1,
        n,
        Duration::from_secs(60),
    );
    check_exact(&o, n);
    assert_eq!(o.counters[0].retransmissions, 0);
    assert!(o.counters[0].rtt_estimates > 0);
    let srtt = o.counters[0].srtt;
    assert!(srtt >= 10 * MS && srtt <= 12 * MS, "srtt {srtt:?}");
}

#[test]
fn lossy_reordering_duplicating_channel() {
    let net = NetCfg {
        loss_pct: 30,
        dup_pct: 10,
        delay: 5 * MS,
        jitter: 20 * MS,
    };
    let n = [400, 400];
    let o = simulate(
        [reliable(7), reliable(u32::MAX - 3)],
        net,
        42,
        n,
        Duration::from_secs(600),
    );
    check_exact(&o, n);
    eprintln!(
        "lossy: virtual {:?}, max queued {}, max in flight {}, counters {:?}",
        o.end, o.max_queued, o.max_net, o.counters
    );
    assert!(o.max_queued <= 2 * (256 + 256));
    assert!(o.counters[0].retransmissions > 0);
    assert!(o.counters[1].duplicates > 0);
}

#[test]
fn sequence_and_window_wrap_in_simulation() {
    // Crosses the 24-bit window edge boundary on one side and 2^32 on the other.
    let net = NetCfg {
        loss_pct: 10,
        dup_pct: 5,
        delay: 2 * MS,
        jitter: 5 * MS,
    };
    let n = [400, 400];
    let o = simulate(
        [reliable(0x00FF_FF80), reliable(0xFFFF_FF80)],
        net,
        9,
        n,
        Duration::from_secs(600),
    );
    check_exact(&o, n);
    assert!(o.max_queued <= 2 * (256 + 256));
}

/// A case proptest once found (a timer scheme that repaired one hole per RTO stalled).
#[test]
fn regression_slow_hole_repair() {
    let net = NetCfg {
        loss_pct: 16,
        dup_pct: 2,
        delay: 5 * MS,
        jitter: 18 * MS,
    };
    let n = [53, 25];
    let o = simulate(
        [reliable(0), reliable(0)],
        net,
        853_457_687_337_208_971,
        n,
        Duration::from_secs(600),
    );
    check_exact(&o, n);
    assert!(o.end < Duration::from_secs(30), "took {:?}", o.end);
}

#[test]
fn first_packet_lost_is_recovered() {
    let t = Instant::now();
    let mut a = Frcti::new(reliable(100), t);
    let mut b = Frcti::new(reliable(0), t);
    a.send(b"one", t).expect("open");
    a.send(b"two", t).expect("open");
    let _lost = a.poll_transmit(t).expect("first");
    let second = a.poll_transmit(t).expect("second");
    b.handle_packet(&second, t).expect("ok");
    assert_eq!(b.recv(), None, "no run yet: dropped");
    let rto = a.poll_timeout().expect("rtx timer");
    assert_eq!(rto - t, Duration::from_secs(1));
    a.handle_timeout(rto);
    let r1 = a.poll_transmit(rto).expect("retransmission");
    assert!(hdr(&r1).flags.contains(FrctFlags::DRF));
    b.handle_packet(&r1, rto).expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"one"[..]));
    let r2 = a.poll_transmit(rto).expect("second retransmission");
    b.handle_packet(&r2, rto).expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"two"[..]));
    assert_eq!(a.counters().retransmissions, 2);
    // Delayed pure ack.
    assert_eq!(b.poll_transmit(rto), None);
    assert_eq!(b.poll_timeout(), Some(rto + MS));
    let ack = b.poll_transmit(rto + MS).expect("delayed ack");
    let r = hdr(&ack);
    assert_eq!(r.flags, FrctFlags::ACK | FrctFlags::FC);
    assert_eq!((r.ackno, r.rwe), (102, 102 + 256));
    a.handle_packet(&ack, rto + MS).expect("ok");
    assert!(a.is_idle());
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn window_closes_and_rendezvous() {
    let t = Instant::now();
    let mut a = Frcti::new(reliable(0), t);
    for i in 0..64u32 {
        a.send(&i.to_be_bytes(), t).expect("window of 64");
    }
    assert_eq!(a.send(b"x", t), Err(FrctError::WindowClosed));
    assert!(!a.is_window_open());
    while a.poll_transmit(t).is_some() {}
    let t1 = t + RDV_INTERVAL;
    assert!(a.poll_timeout().is_some_and(|x| x <= t1));
    let rdv = a.poll_transmit(t1).expect("rendez-vous");
    assert_eq!(hdr(&rdv).flags, FrctFlags::RDVS);
    assert_eq!(a.counters().rendezvous_sent, 1);
    // The peer answers with a window update.
    let mut b = Frcti::new(reliable(0), t);
    b.handle_packet(&data_pkt(FrctFlags::DRF, 0, b"d"), t1)
        .expect("ok");
    b.handle_packet(&rdv, t1).expect("ok");
    let fc = b.poll_transmit(t1).expect("window update");
    let r = hdr(&fc);
    assert!(r.flags.contains(FrctFlags::FC));
    assert_eq!(r.rwe, 256);
    a.handle_packet(&fc, t1).expect("ok");
    assert!(a.is_window_open());
    a.send(b"x", t1).expect("window open again");
}

#[test]
fn peer_unresponsive_after_max_rdv() {
    let t = Instant::now();
    let mut a = Frcti::new(
        FrctConfig {
            start_window: 1,
            ..FrctConfig::default()
        },
        t,
    );
    a.send(b"a", t).expect("open");
    assert_eq!(a.send(b"b", t), Err(FrctError::WindowClosed));
    assert_eq!(
        a.send(b"b", t + MAX_RDV + MS),
        Err(FrctError::PeerUnresponsive)
    );
}

#[test]
fn gives_up_after_r() {
    let t = Instant::now();
    let cfg = FrctConfig {
        r: Duration::from_secs(5),
        ..FrctConfig::default()
    };
    let mut a = Frcti::new(cfg, t);
    a.send(b"a", t).expect("open");
    assert!(a.poll_transmit(t).is_some());
    let mut now = t;
    let mut n = 0;
    while let Some(next) = a.poll_timeout() {
        now = next;
        a.handle_timeout(now);
        while a.poll_transmit(now).is_some() {
            n += 1;
        }
        assert!(n < 100);
    }
    assert_eq!(a.failure(), Some(FrctError::RetransmitTimeout));
    assert!(now - t > Duration::from_secs(5));
    assert_eq!(a.send(b"b", now), Err(FrctError::RetransmitTimeout));
}

#[test]
fn duplicates_counted_and_acked_at_once() {
    let t = Instant::now();
    let mut b = Frcti::new(reliable(0), t);
    let p = data_pkt(FrctFlags::DRF, 10, b"x");
    b.handle_packet(&p, t).expect("ok");
    b.handle_packet(&p, t).expect("ok");
    assert_eq!(b.counters().duplicates, 1);
    let ack = b.poll_transmit(t).expect("immediate ack");
    let r = hdr(&ack);
    assert!(r.flags.contains(FrctFlags::ACK));
    assert_eq!(r.ackno, 11);
    assert_eq!(b.recv().as_deref(), Some(&b"x"[..]));
    assert_eq!(b.recv(), None);
}

#[test]
fn unreliable_in_order_skips_gap_after_max_gap() {
    let t = Instant::now();
    let cfg = FrctConfig {
        reliable: false,
        in_order: true,
        max_gap: 50 * MS,
        ..FrctConfig::default()
    };
    let mut b = Frcti::new(cfg, t);
    b.handle_packet(&data_pkt(FrctFlags::DRF, 0, b"0"), t)
        .expect("ok");
    b.handle_packet(&data_pkt(FrctFlags::DRF, 2, b"2"), t)
        .expect("ok");
    b.handle_packet(&data_pkt(FrctFlags::DRF, 4, b"4"), t + 10 * MS)
        .expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"0"[..]));
    assert_eq!(b.recv(), None);
    assert_eq!(b.poll_timeout(), Some(t + 50 * MS));
    b.handle_timeout(t + 50 * MS);
    assert_eq!(b.recv().as_deref(), Some(&b"2"[..]));
    assert_eq!(b.recv(), None);
    // Late arrival of 3 fills the next gap before its deadline.
    b.handle_packet(&data_pkt(FrctFlags::DRF, 3, b"3"), t + 55 * MS)
        .expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"3"[..]));
    assert_eq!(b.recv().as_deref(), Some(&b"4"[..]));
    // Late arrival of the skipped 1 is dropped.
    b.handle_packet(&data_pkt(FrctFlags::DRF, 1, b"1"), t + 60 * MS)
        .expect("ok");
    assert_eq!(b.recv(), None);
    assert_eq!(b.counters().skipped, 1);
}

#[test]
fn unreliable_sender_keeps_nothing() {
    let t = Instant::now();
    let cfg = FrctConfig {
        reliable: false,
        ..FrctConfig::default()
    };
    let mut a = Frcti::new(cfg, t);
    a.send(b"a", t).expect("open");
    let p = a.poll_transmit(t).expect("data");
    assert!(hdr(&p).flags.contains(FrctFlags::DATA | FrctFlags::DRF));
    assert!(a.is_idle());
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn window_edge_rolls_over_24_bits() {
    let t = Instant::now();
    let mut a = Frcti::new(reliable(0x00FF_FFC0), t);
    assert_eq!(a.snd_rwe, 0x0100_0000);
    let fc = |rwe: u32| {
        Frcti::encode(
            &FrctRepr {
                flags: FrctFlags::FC,
                rwe,
                seqno: 0,
                ackno: 0,
            },
            &[],
        )
    };
    a.handle_packet(&fc(0x0000_00C0), t).expect("ok");
    assert_eq!(a.snd_rwe, 0x0100_00C0);
    // A stale, smaller edge does not shrink the window.
    a.handle_packet(&fc(0x0000_0010), t).expect("ok");
    assert_eq!(a.snd_rwe, 0x0100_00C0);
}

#[test]
fn huge_timers_do_not_overflow() {
    let t = Instant::now();
    let cfg = FrctConfig {
        initial_rto: Duration::MAX,
        rto_max: Duration::MAX,
        ack_delay: Duration::MAX,
        rdv_interval: Duration::MAX,
        mpl: Duration::MAX,
        a: Duration::MAX,
        r: Duration::MAX,
        max_rdv: Duration::MAX,
        ..FrctConfig::default()
    };
    let mut a = Frcti::new(cfg.clone(), t);
    let mut b = Frcti::new(cfg, t);
    a.send(b"x", t).expect("open");
    let p = a.poll_transmit(t).expect("data");
    b.handle_packet(&p, t).expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"x"[..]));
    assert!(a.poll_timeout().is_some());
    assert!(b.poll_timeout().is_some());
}

#[test]
fn malformed_and_empty() {
    let t = Instant::now();
    let mut a = Frcti::new(FrctConfig::default(), t);
    assert!(matches!(
        a.handle_packet(&[0u8; 5], t),
        Err(FrctError::Malformed(_))
    ));
    assert_eq!(a.send(b"", t), Err(FrctError::EmptyPayload));
}

proptest! {
    // No regression file: this crate's tree is shared; failing seeds go into tests by hand.
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Reliable mode: every message arrives exactly once and in order, within bounded virtual
    /// time, with bounded memory, whatever the channel does.
    #[test]
    fn reliable_delivers_exactly_in_order(
        seed in any::<u64>(),
        loss_pct in 0u32..=30,
        dup_pct in 0u32..=20,
        delay_ms in 0u64..50,
        jitter_ms in 0u64..50,
        isn in any::<[u32; 2]>(),
        n0 in 0usize..120,
        n1 in 0usize..40,
    ) {
        let net = NetCfg {
            loss_pct,
            dup_pct,
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::from_millis(jitter_ms),
        };
        let n = [n0, n1];
        let limit = Duration::from_secs(600);
        let o = simulate([reliable(isn[0]), reliable(isn[1])], net, seed, n, limit);
        prop_assert!(o.end < limit, "took {:?}", o.end);
        for (s, &ns) in n.iter().enumerate() {
            prop_assert_eq!(o.received[1 - s].len(), ns);
            for (i, m) in o.received[1 - s].iter().enumerate() {
                let len = 4 + (i * 7) % 60;
                prop_assert_eq!(m, &msg(s, i, len));
            }
        }
        // Send buffer within the window, reorder queue within rq_size, per endpoint.
        prop_assert!(o.max_queued <= 2 * (256 + 256), "queued {}", o.max_queued);
        prop_assert!(o.max_net < 20_000, "in flight {}", o.max_net);
    }

    /// Unreliable in-order mode: what arrives is an increasing subsequence of what was sent,
    /// without duplicates, and nothing stays buffered at the end.
    #[test]
    fn unreliable_in_order_delivers_increasing_subsequence(
        seed in any::<u64>(),
        loss_pct in 0u32..=30,
        dup_pct in 0u32..=20,
        jitter_ms in 0u64..50,
        n0 in 0usize..200,
    ) {
        let cfg = FrctConfig {
            reliable: false,
            in_order: true,
            max_gap: 30 * MS,
            max_rdv: Duration::from_secs(3600),
            initial_seqno: seed as u32,
            ..FrctConfig::default()
        };
        let net = NetCfg { loss_pct, dup_pct, delay: 5 * MS, jitter: Duration::from_millis(jitter_ms) };
        let o = simulate_until_sent([cfg.clone(), cfg], net, seed, [n0, 0], Duration::from_secs(60));
        let ids: Vec<u32> = o.received[1]
            .iter()
            .map(|m| u32::from_be_bytes([m[0], m[1], m[2], m[3]]))
            .collect();
        prop_assert!(ids.windows(2).all(|w| w[0] < w[1]), "{:?}", ids);
        prop_assert!(ids.iter().all(|&i| (i as usize) < n0));
        if loss_pct == 0 && dup_pct == 0 && jitter_ms == 0 {
            prop_assert_eq!(ids.len(), n0);
        }
    }

    /// Arbitrary bytes fed to an endpoint never panic it.
    #[test]
    fn arbitrary_packets_never_panic(pkts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..30), 0..30)) {
        let t = Instant::now();
        let mut a = Frcti::new(FrctConfig::default(), t);
        for (i, p) in pkts.iter().enumerate() {
            let now = t + MS * i as u32;
            let _ = a.handle_packet(p, now);
            a.handle_timeout(now);
            while a.poll_transmit(now).is_some() {}
            while a.recv().is_some() {}
        }
    }
}
