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
    /// Largest sum of both parts of `queued()` of one endpoint.
    max_queued: usize,
    /// Per endpoint, the largest of each part of `queued()` and `queued_bytes()`.
    max_q: [(usize, usize); 2],
    max_bytes: [(usize, usize); 2],
    max_net: usize,
    counters: [FrctCounters; 2],
}

fn msg(side: usize, i: usize, len: usize) -> Vec<u8> {
    let mut m = vec![side as u8; len.max(4)];
    m[..4].copy_from_slice(&(i as u32).to_be_bytes());
    m
}

/// Message `i` of `side`, `len` bytes (at least 8): its index, its side, then bytes that
/// depend on the index and the position, so that a misplaced fragment shows.
fn big_msg(side: usize, i: usize, len: usize) -> Vec<u8> {
    let len = len.max(8);
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(i as u32).to_be_bytes());
    m.extend_from_slice(&[side as u8; 4]);
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ side as u64;
    while m.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m.push(x as u8);
    }
    m
}

/// The index a test message carries.
fn msg_id(m: &[u8]) -> usize {
    u32::from_be_bytes([m[0], m[1], m[2], m[3]]) as usize
}

/// The small messages of the first tests: `n` of lengths 4..64.
fn small_msgs(side: usize, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| msg(side, i, 4 + (i * 7) % 60)).collect()
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
    let msgs = [small_msgs(0, n[0]), small_msgs(1, n[1])];
    simulate_msgs(cfgs, net, seed, [&msgs[0], &msgs[1]], limit, true)
}

fn simulate_msgs(
    cfgs: [FrctConfig; 2],
    net: NetCfg,
    seed: u64,
    msgs: [&[Vec<u8>]; 2],
    limit: Duration,
    exact: bool,
) -> Outcome {
    let trace = std::env::var("FRCT_TRACE").is_ok();
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
    let n = [msgs[0].len(), msgs[1].len()];
    let mut sent = [0usize; 2];
    let mut received: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    let (mut max_queued, mut max_net) = (0, 0);
    let mut max_q = [(0, 0); 2];
    let mut max_bytes = [(0, 0); 2];
    let mut steps = 0u64;
    let mut handled = 0usize;
    loop {
        steps += 1;
        assert!(steps < 5_000_000, "simulation does not progress");
        for s in 0..2 {
            while sent[s] < n[s] {
                let m = &msgs[s][sent[s]];
                // Every other message is written in place, offered a little more room than
                // it takes (past `max_fragment` too: then it goes as `send` sends it).
                let r = if sent[s] % 2 == 1 {
                    let mut fill = |b: &mut [u8]| {
                        b[..m.len()].copy_from_slice(m);
                        m.len()
                    };
                    ep[s].send_with(m.len() + 3, now, &mut fill).map(|n| {
                        assert_eq!(n, m.len());
                    })
                } else {
                    ep[s].send(m, now)
                };
                match r {
                    Ok(()) => sent[s] += 1,
                    Err(FrctError::WindowClosed) => break,
                    Err(e) => panic!("send failed: {e}"),
                }
            }
            while let Some(p) = ep[s].poll_transmit(now) {
                if trace {
                    let r = hdr(&p);
                    eprintln!(
                        "{:.4} tx {s} {:?} seq {} ack {} rwe {} len {}",
                        (now - t0).as_secs_f64(),
                        r.flags,
                        r.seqno,
                        r.ackno,
                        r.rwe,
                        p.len()
                    );
                }
                net.push(now, 1 - s, p);
            }
            while let Some(m) = ep[s].recv() {
                received[s].push(m);
            }
            assert!(!ep[s].has_message());
            check_rtx_heap(&ep[s]);
            let (a, b) = ep[s].queued();
            max_queued = max_queued.max(a + b);
            max_q[s] = (max_q[s].0.max(a), max_q[s].1.max(b));
            let (a, b) = ep[s].queued_bytes();
            max_bytes[s] = (max_bytes[s].0.max(a), max_bytes[s].1.max(b));
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
                    e.snd_buf.front().map(|s| (s.seqno, s.tx_count)),
                    e.rcv_read, e.rcv_nxt, e.rq.len(), e.rcv_synced(now), e.failure()
                );
            }
            panic!("deadlock at {:?}: sent {sent:?}", now - t0);
        };
        now = now.max(next);
        while net.queue.peek().is_some_and(|Reverse((t, ..))| *t <= now) {
            if let Some(Reverse((_, _, dst, bytes))) = net.queue.pop() {
                if trace {
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
                // Packets are handled as a reader that waits with a buffer would (large
                // enough or not), or as one that does not.
                let mut out = vec![0u8; [0, 1 << 16, 16][handled % 3]];
                handled += 1;
                if out.is_empty() {
                    ep[dst].handle_packet(&bytes, now).expect("well-formed");
                } else if let Some(n) = ep[dst]
                    .handle_packet_into(&bytes, now, &mut out)
                    .expect("well-formed")
                {
                    received[dst].push(out[..n].to_vec());
                }
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
        max_q,
        max_bytes,
        max_net,
        counters: [ep[0].counters(), ep[1].counters()],
    }
}

/// The retransmission timer runs exactly when something sent is unacknowledged.
fn check_rtx_heap(e: &Frcti) {
    if e.snd_sent > 0 {
        assert!(
            e.snd_buf[0].rtx_at.is_some(),
            "the oldest packet has a timer"
        );
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
    let msgs = [small_msgs(0, n[0]), small_msgs(1, n[1])];
    simulate_msgs(cfgs, net, seed, [&msgs[0], &msgs[1]], limit, false)
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
    // The initial RTO plus the peer's ack delay.
    assert_eq!(
        rto - t,
        Duration::from_secs(1) + FrctConfig::default().ack_delay
    );
    a.handle_timeout(rto);
    let r1 = a.poll_transmit(rto).expect("retransmission");
    assert!(hdr(&r1).flags.contains(FrctFlags::DRF));
    // Only the oldest packet goes out again on a timeout.
    assert_eq!(a.poll_transmit(rto), None, "the second waits for the ack");
    b.handle_packet(&r1, rto).expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"one"[..]));
    // Delayed pure ack.
    assert_eq!(b.poll_transmit(rto), None);
    assert_eq!(b.poll_timeout(), Some(rto + MS));
    let ack = b.poll_transmit(rto + MS).expect("delayed ack");
    let r = hdr(&ack);
    assert_eq!(r.flags, FrctFlags::ACK | FrctFlags::FC);
    assert_eq!(r.ackno, 101);
    a.handle_packet(&ack, rto + MS).expect("ok");
    // A partial ack: the next packet's timer has expired, it goes out at once.
    let r2 = a.poll_transmit(rto + MS).expect("second retransmission");
    b.handle_packet(&r2, rto + MS).expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"two"[..]));
    assert_eq!(a.counters().retransmissions, 2);
    let ack = b.poll_transmit(rto + 2 * MS).expect("delayed ack");
    let r = hdr(&ack);
    assert_eq!((r.ackno, r.rwe), (102, 102 + 256));
    a.handle_packet(&ack, rto + 2 * MS).expect("ok");
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
    // The message waiting for b's application has left the reorder queue.
    assert!(b.has_message());
    assert_eq!(r.rwe, 257);
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
fn rendezvous_go_on_while_the_window_stays_closed() {
    let t = Instant::now();
    let mut a = Frcti::new(
        FrctConfig {
            start_window: 1,
            ..FrctConfig::default()
        },
        t,
    );
    a.send(b"a", t).expect("open");
    while a.poll_transmit(t).is_some() {}
    assert_eq!(a.send(b"b", t), Err(FrctError::WindowClosed));
    // Drive the timers for a minute: probes every 100 ms for a second, then every second.
    let mut now = t;
    let mut probes = Vec::new();
    while now < t + Duration::from_secs(60) {
        let Some(next) = a.poll_timeout() else { break };
        now = next;
        a.handle_timeout(now);
        while let Some(p) = a.poll_transmit(now) {
            if hdr(&p).flags.contains(FrctFlags::RDVS) {
                probes.push(now - t);
            }
        }
    }
    let early = probes.iter().filter(|d| **d <= MAX_RDV).count();
    assert!((9..=11).contains(&early), "{probes:?}");
    assert!(
        probes.len() > early + 50,
        "probing goes on: {}",
        probes.len()
    );
    let gaps: Vec<_> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().skip(early).all(|g| *g >= MAX_RDV), "{gaps:?}");
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

fn frag_cfg(reliable: bool, max_fragment: usize) -> FrctConfig {
    FrctConfig {
        reliable,
        max_fragment,
        max_gap: 50 * MS,
        ..FrctConfig::default()
    }
}

#[test]
fn fragments_on_the_wire() {
    let t = Instant::now();
    let mut a = Frcti::new(
        FrctConfig {
            initial_seqno: 10,
            ..frag_cfg(true, 1400)
        },
        t,
    );
    let mut b = Frcti::new(frag_cfg(true, 1400), t);
    let m = big_msg(0, 0, 3500);
    a.send(&m, t).expect("open");
    a.send(&m[..1400], t).expect("open");
    assert_eq!(a.queued(), (4, 0));
    assert_eq!(a.queued_bytes(), (4900, 0));
    let p: Vec<Vec<u8>> = std::iter::from_fn(|| a.poll_transmit(t)).collect();
    let h: Vec<(FrctFlags, u32, usize)> = p
        .iter()
        .map(|p| (hdr(p).flags, hdr(p).seqno, p.len() - HEADER_LEN))
        .collect();
    let d = FrctFlags::DATA;
    assert_eq!(
        h,
        [
            (
                d | FrctFlags::DRF | FrctFlags::FFGM | FrctFlags::MFGM,
                10,
                1400
            ),
            (d | FrctFlags::MFGM, 11, 1400),
            (d | FrctFlags::FFGM, 12, 700),
            (d, 13, 1400),
        ]
    );
    assert_eq!(p[0][0], 0x63);
    assert_eq!(p[1][0], 0x41);
    assert_eq!(p[2][0], 0x21);
    assert_eq!(p[3][0], 0x01, "unfragmented: the prototype's bytes");
    b.handle_packet(&p[0], t).expect("ok");
    b.handle_packet(&p[1], t).expect("ok");
    assert!(!b.has_message());
    assert_eq!(b.recv(), None);
    // Both fragments left the reorder queue: the window moved on.
    assert_eq!(b.queued(), (0, 1));
    assert_eq!(b.queued_bytes(), (0, 2800));
    assert_eq!(b.rcv_rwe(), 12 + 256);
    b.handle_packet(&p[3], t).expect("ok");
    assert!(!b.has_message());
    b.handle_packet(&p[2], t).expect("ok");
    assert!(b.has_message());
    assert_eq!(b.recv(), Some(m.clone()));
    assert_eq!(b.recv().as_deref(), Some(&m[..1400]));
    assert_eq!(b.recv(), None);
    assert_eq!(b.queued_bytes(), (0, 0));
    let c = b.counters();
    assert_eq!((c.messages_dropped, c.fragments_dropped), (0, 0));
}

#[test]
fn too_big() {
    let t = Instant::now();
    let mut a = Frcti::new(
        FrctConfig {
            max_message: 10,
            max_fragment: 3,
            ..FrctConfig::default()
        },
        t,
    );
    assert_eq!(a.max_send(), 10);
    assert_eq!(
        a.send(&[1; 11], t),
        Err(FrctError::TooBig { len: 11, max: 10 })
    );
    a.send(&[1; 10], t).expect("4 fragments");
    assert_eq!(a.queued(), (4, 0));
    // Neither reliable nor in order: no fragmentation.
    let cfg = FrctConfig {
        reliable: false,
        in_order: false,
        max_fragment: 100,
        ..FrctConfig::default()
    };
    let mut u = Frcti::new(cfg, t);
    assert_eq!(u.max_send(), 100);
    assert_eq!(
        u.send(&[1; 101], t),
        Err(FrctError::TooBig { len: 101, max: 100 })
    );
    u.send(&[1; 100], t).expect("one packet");
    let p = u.poll_transmit(t).expect("data");
    assert_eq!(hdr(&p).flags, FrctFlags::DATA | FrctFlags::DRF);
    // Defaults: no fragmentation, 16 MiB messages.
    let d = Frcti::new(FrctConfig::default(), t);
    assert_eq!(d.config().max_fragment, usize::MAX);
    assert_eq!(d.max_send(), 16 << 20);
}

#[test]
fn fragments_wait_for_the_window() {
    let t = Instant::now();
    let cfg = FrctConfig {
        start_window: 2,
        ..frag_cfg(true, 10)
    };
    let mut a = Frcti::new(cfg.clone(), t);
    let m = big_msg(0, 0, 50);
    a.send(&m, t).expect("window open for the first fragment");
    assert!(!a.is_window_open());
    let mut p: Vec<Vec<u8>> = std::iter::from_fn(|| a.poll_transmit(t)).collect();
    assert_eq!(p.len(), 2, "only what the window admits");
    assert_eq!(a.counters().in_flight, 2);
    assert_eq!(a.counters().window, 2);
    assert_eq!(a.send(b"x", t), Err(FrctError::WindowClosed));
    // Fragments wait beyond the window: rendez-vous.
    let t1 = t + RDV_INTERVAL;
    assert_eq!(a.poll_timeout(), Some(t1));
    let rdv = a.poll_transmit(t1).expect("rendez-vous");
    assert_eq!(hdr(&rdv).flags, FrctFlags::RDVS);
    let mut b = Frcti::new(cfg, t);
    for x in &p {
        b.handle_packet(x, t1).expect("ok");
    }
    b.handle_packet(&rdv, t1).expect("ok");
    assert_eq!(b.counters().rendezvous_received, 1);
    let fc = b.poll_transmit(t1).expect("window update");
    a.handle_packet(&fc, t1).expect("ok");
    assert_eq!(a.counters().in_flight, 0);
    assert!(a.is_window_open());
    p = std::iter::from_fn(|| a.poll_transmit(t1)).collect();
    assert_eq!(p.len(), 3);
    for x in &p {
        b.handle_packet(x, t1).expect("ok");
    }
    assert_eq!(b.recv(), Some(m));
    // After a whole run of rendez-vous without a window update: unresponsive.
    let mut c = Frcti::new(
        FrctConfig {
            start_window: 1,
            ..frag_cfg(true, 10)
        },
        t,
    );
    c.send(&[7; 30], t).expect("open");
    assert!(c.poll_transmit(t).is_some());
    assert_eq!(c.poll_transmit(t), None);
    let mut rdvs = 0;
    while let Some(now) = c.poll_timeout().filter(|&x| x < t + MAX_RDV + RDV_INTERVAL) {
        c.handle_timeout(now);
        while let Some(x) = c.poll_transmit(now) {
            rdvs += usize::from(hdr(&x).flags == FrctFlags::RDVS);
        }
    }
    assert_eq!(rdvs, 10);
    assert_eq!(
        c.send(b"y", t + MAX_RDV + MS),
        Err(FrctError::PeerUnresponsive)
    );
}

fn frag_pkt(flags: FrctFlags, seqno: u32, payload: &[u8]) -> Vec<u8> {
    data_pkt(FrctFlags::DRF | flags, seqno, payload)
}

const FIRST: FrctFlags = FrctFlags(0x60);
const MIDDLE: FrctFlags = FrctFlags::MFGM;
const LAST: FrctFlags = FrctFlags::FFGM;
const WHOLE: FrctFlags = FrctFlags(0);

#[test]
fn unreliable_drops_message_with_missing_fragment() {
    let t = Instant::now();
    let mut b = Frcti::new(frag_cfg(false, 1400), t);
    b.handle_packet(&frag_pkt(WHOLE, 0, b"a"), t).expect("ok");
    b.handle_packet(&frag_pkt(FIRST, 1, b"b1"), t).expect("ok");
    // 2 (MIDDLE) is lost.
    b.handle_packet(&frag_pkt(LAST, 3, b"b3"), t).expect("ok");
    b.handle_packet(&frag_pkt(FIRST, 4, b"c4"), t).expect("ok");
    b.handle_packet(&frag_pkt(LAST, 5, b"c5"), t).expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"a"[..]));
    assert_eq!(b.recv(), None);
    assert_eq!(b.poll_timeout(), Some(t + 50 * MS));
    b.handle_timeout(t + 50 * MS);
    assert_eq!(b.recv().as_deref(), Some(&b"c4c5"[..]));
    assert_eq!(b.recv(), None);
    let c = b.counters();
    assert_eq!(
        (c.skipped, c.messages_dropped, c.fragments_dropped),
        (1, 1, 2)
    );
    assert_eq!(b.queued_bytes(), (0, 0));
    // A lost last fragment: the next whole message resynchronises.
    b.handle_packet(&frag_pkt(FIRST, 6, b"d6"), t + 60 * MS)
        .expect("ok");
    b.handle_packet(&frag_pkt(WHOLE, 8, b"e"), t + 60 * MS)
        .expect("ok");
    b.handle_timeout(t + 110 * MS);
    assert_eq!(b.recv().as_deref(), Some(&b"e"[..]));
    let c = b.counters();
    assert_eq!(
        (c.skipped, c.messages_dropped, c.fragments_dropped),
        (2, 2, 3)
    );
}

#[test]
fn unreliable_tail_loss_up_to_the_edge_recovers_on_rendezvous() {
    let t = Instant::now();
    let cfg = FrctConfig {
        rq_size: 8,
        ..frag_cfg(false, 1400)
    };
    let mut b = Frcti::new(cfg, t);
    b.handle_packet(&frag_pkt(WHOLE, 0, b"a"), t).expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"a"[..]));
    let fc = b.poll_transmit(t).expect("window at the run start");
    assert_eq!(hdr(&fc).rwe, 9);
    // 1..=8 are lost: nothing behind the hole, the sender's window is shut.
    assert_eq!(b.poll_timeout(), None);
    let rdv = Frcti::encode(
        &FrctRepr {
            flags: FrctFlags::RDVS,
            ..FrctRepr::default()
        },
        &[],
    );
    let t1 = t + 100 * MS;
    b.handle_packet(&rdv, t1).expect("ok");
    assert_eq!(hdr(&b.poll_transmit(t1).expect("answer")).rwe, 9);
    assert_eq!(b.poll_timeout(), Some(t1 + 50 * MS));
    b.handle_timeout(t1 + 50 * MS);
    assert_eq!(b.counters().skipped, 8);
    let fc = b.poll_transmit(t1 + 50 * MS).expect("the window moves");
    assert_eq!(hdr(&fc).rwe, 17);
    b.handle_packet(&frag_pkt(WHOLE, 9, b"b"), t1 + 60 * MS)
        .expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"b"[..]));
    // A rendez-vous with nothing missing below the edge announced last changes nothing.
    for i in 10..17 {
        b.handle_packet(&frag_pkt(WHOLE, i, b"c"), t1 + 60 * MS)
            .expect("ok");
        assert_eq!(b.recv().as_deref(), Some(&b"c"[..]));
    }
    b.handle_packet(&rdv, t1 + 70 * MS).expect("ok");
    assert_eq!(b.poll_timeout(), None);
    assert_eq!(b.counters().skipped, 8);
}

#[test]
fn reassembly_resynchronises_at_a_run_start() {
    let t = Instant::now();
    let mut b = Frcti::new(frag_cfg(false, 1400), t);
    // The run starts in the middle of a message: its fragments are orphans.
    b.handle_packet(&frag_pkt(MIDDLE, 10, b"x"), t).expect("ok");
    b.handle_packet(&frag_pkt(LAST, 11, b"y"), t).expect("ok");
    b.handle_packet(&frag_pkt(FIRST, 12, b"z"), t).expect("ok");
    b.handle_packet(&frag_pkt(WHOLE, 13, b"w"), t).expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"w"[..]));
    let c = b.counters();
    assert_eq!((c.messages_dropped, c.fragments_dropped), (1, 3));
    // A new run (after inactivity) drops a partial message.
    b.handle_packet(&frag_pkt(FIRST, 14, b"p"), t).expect("ok");
    let later = t + Duration::from_secs(1000);
    b.handle_packet(&frag_pkt(WHOLE, 500, b"q"), later)
        .expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"q"[..]));
    assert_eq!(b.counters().messages_dropped, 2);
    assert_eq!(b.queued_bytes(), (0, 0));
}

#[test]
fn reassembly_bounded_by_max_message() {
    let t = Instant::now();
    let mut b = Frcti::new(
        FrctConfig {
            max_message: 5,
            ..reliable(0)
        },
        t,
    );
    b.handle_packet(&frag_pkt(FIRST, 0, b"abc"), t).expect("ok");
    b.handle_packet(&data_pkt(MIDDLE, 1, b"def"), t)
        .expect("ok");
    b.handle_packet(&data_pkt(LAST, 2, b"g"), t).expect("ok");
    b.handle_packet(&data_pkt(WHOLE, 3, b"123456"), t)
        .expect("ok");
    b.handle_packet(&data_pkt(FIRST, 4, b"12"), t).expect("ok");
    b.handle_packet(&data_pkt(LAST, 5, b"345"), t).expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"12345"[..]));
    assert_eq!(b.recv(), None);
    let c = b.counters();
    assert_eq!((c.messages_dropped, c.fragments_dropped), (2, 3));
}

#[test]
fn unordered_flow_drops_fragments() {
    let t = Instant::now();
    let cfg = FrctConfig {
        reliable: false,
        in_order: false,
        ..FrctConfig::default()
    };
    let mut b = Frcti::new(cfg, t);
    b.handle_packet(&frag_pkt(FIRST, 3, b"a"), t).expect("ok");
    b.handle_packet(&frag_pkt(WHOLE, 5, b"b"), t).expect("ok");
    b.handle_packet(&frag_pkt(LAST, 4, b"c"), t).expect("ok");
    assert!(b.has_message());
    assert_eq!(b.recv().as_deref(), Some(&b"b"[..]));
    assert!(!b.has_message());
    assert_eq!(b.counters().fragments_dropped, 2);
}

#[test]
fn ack_now_skips_the_ack_delay() {
    let t = Instant::now();
    let mut b = Frcti::new(reliable(0), t);
    b.ack_now(t);
    assert_eq!(b.poll_transmit(t), None, "nothing to acknowledge yet");
    b.handle_packet(&data_pkt(FrctFlags::DRF, 7, b"x"), t)
        .expect("ok");
    assert_eq!(b.poll_transmit(t), None, "ack delayed");
    assert_eq!(b.poll_timeout(), Some(t + MS));
    b.ack_now(t);
    let ack = b.poll_transmit(t).expect("ack at once");
    let r = hdr(&ack);
    assert_eq!(r.flags, FrctFlags::ACK | FrctFlags::FC);
    assert_eq!(r.ackno, 8);
    assert_eq!(b.poll_transmit(t), None);
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn idle_means_all_acknowledged() {
    let t = Instant::now();
    let mut a = Frcti::new(
        FrctConfig {
            initial_seqno: 5,
            ..frag_cfg(true, 2)
        },
        t,
    );
    let mut b = Frcti::new(frag_cfg(true, 2), t);
    assert!(a.is_idle());
    a.send(b"abcdef", t).expect("open");
    assert!(!a.is_idle());
    let p: Vec<Vec<u8>> = std::iter::from_fn(|| a.poll_transmit(t)).collect();
    assert_eq!(p.len(), 3);
    assert!(!a.is_idle());
    let c = a.counters();
    assert_eq!((c.window, c.in_flight), (64, 3));
    b.handle_packet(&p[0], t).expect("ok");
    b.handle_packet(&p[1], t).expect("ok");
    b.ack_now(t);
    let ack = b.poll_transmit(t).expect("ack");
    a.handle_packet(&ack, t).expect("ok");
    assert!(!a.is_idle(), "one fragment unacknowledged");
    let c = a.counters();
    assert_eq!((c.window, c.in_flight), (256, 1));
    b.handle_packet(&p[2], t).expect("ok");
    assert_eq!(b.recv().as_deref(), Some(&b"abcdef"[..]));
    b.ack_now(t);
    a.handle_packet(&b.poll_transmit(t).expect("ack"), t)
        .expect("ok");
    assert!(a.is_idle());
    assert_eq!(a.poll_timeout(), None);
}

fn lossy(loss_pct: u32) -> NetCfg {
    NetCfg {
        loss_pct,
        dup_pct: 5,
        delay: 5 * MS,
        jitter: 10 * MS,
    }
}

/// Memory bounds of an endpoint that sent messages of at most `max_len` bytes in fragments of
/// `mf` bytes, to a peer with the same reorder queue size.
fn check_bounds(o: &Outcome, cfg: &FrctConfig, max_len: usize) {
    let mf = cfg.max_fragment;
    let window = cfg.rq_size.max(cfg.start_window) as usize + 1;
    for s in 0..2 {
        let (snd, rcv) = o.max_q[s];
        assert!(
            snd <= window + max_len.div_ceil(mf),
            "side {s}: {snd} packets in the send buffer"
        );
        assert!(
            rcv <= cfg.rq_size as usize + 2,
            "side {s}: {rcv} packets received"
        );
        let (snd, rcv) = o.max_bytes[s];
        assert!(
            snd <= window * mf + max_len,
            "side {s}: {snd} bytes in the send buffer"
        );
        assert!(
            rcv <= cfg.rq_size as usize * mf + 2 * max_len,
            "side {s}: {rcv} bytes received"
        );
    }
}

#[test]
fn one_mib_message_with_rq_256_and_1400_byte_fragments() {
    let cfg = FrctConfig {
        max_fragment: 1400,
        ..reliable(0xFFFF_FE00)
    };
    let m0 = vec![big_msg(0, 0, 1 << 20), big_msg(0, 1, 100)];
    let m1 = vec![big_msg(1, 0, 1 << 20)];
    let o = simulate_msgs(
        [
            cfg.clone(),
            FrctConfig {
                initial_seqno: 0x00FF_FF00,
                ..cfg.clone()
            },
        ],
        lossy(10),
        5,
        [&m0, &m1],
        Duration::from_secs(600),
        true,
    );
    assert_eq!(o.received[1], m0);
    assert_eq!(o.received[0], m1);
    check_bounds(&o, &cfg, 1 << 20);
    eprintln!(
        "1 MiB: virtual {:?}, max queued {:?} / {:?} bytes, counters {:?}",
        o.end, o.max_q, o.max_bytes, o.counters
    );
    // The 749 fragments went through a 256-packet window: it kept advancing.
    assert!(o.counters[0].retransmissions > 0);
    assert_eq!(o.counters[1].messages_dropped, 0);
}

#[test]
fn one_mib_message_unreliable_clean() {
    let cfg = FrctConfig {
        max_fragment: 1400,
        max_rdv: Duration::from_secs(3600),
        ..frag_cfg(false, 1400)
    };
    let m0: Vec<Vec<u8>> = (0..3).map(|i| big_msg(0, i, (1 << 20) - i)).collect();
    let net = NetCfg {
        loss_pct: 0,
        dup_pct: 0,
        delay: 5 * MS,
        jitter: Duration::ZERO,
    };
    let o = simulate_msgs(
        [cfg.clone(), cfg.clone()],
        net,
        1,
        [&m0, &[]],
        Duration::from_secs(60),
        false,
    );
    assert_eq!(o.received[1], m0);
    check_bounds(&o, &cfg, 1 << 20);
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

/// Message lengths: mostly up to a few fragments, sometimes up to 1 MiB.
fn msg_len() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 8usize..5000, 1 => 8usize..=(1 << 20)]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Reliable flows with fragmentation: exactly the messages sent, in order, whole, with
    /// memory bounded by the window, the reorder queue and the largest message.
    #[test]
    fn reliable_fragmented_delivers_exactly(
        seed in any::<u64>(),
        loss_pct in 0u32..=30,
        dup_pct in 0u32..=20,
        delay_ms in 0u64..30,
        jitter_ms in 0u64..30,
        isn in any::<[u32; 2]>(),
        mf in 1000usize..1500,
        rq_size in prop_oneof![Just(64u32), Just(256)],
        lens0 in proptest::collection::vec(msg_len(), 0..5),
        lens1 in proptest::collection::vec(8usize..5000, 0..4),
    ) {
        let net = NetCfg {
            loss_pct,
            dup_pct,
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::from_millis(jitter_ms),
        };
        let cfg = |isn| FrctConfig { max_fragment: mf, rq_size, ..reliable(isn) };
        let m0: Vec<Vec<u8>> = lens0.iter().enumerate().map(|(i, &l)| big_msg(0, i, l)).collect();
        let m1: Vec<Vec<u8>> = lens1.iter().enumerate().map(|(i, &l)| big_msg(1, i, l)).collect();
        let limit = Duration::from_secs(3600);
        let o = simulate_msgs([cfg(isn[0]), cfg(isn[1])], net, seed, [&m0, &m1], limit, true);
        prop_assert!(o.end < limit, "took {:?}", o.end);
        prop_assert!(o.received[1] == m0, "side 0's messages");
        prop_assert!(o.received[0] == m1, "side 1's messages");
        let max_len = lens0.iter().chain(&lens1).copied().max().unwrap_or(0);
        check_bounds(&o, &cfg(0), max_len);
        prop_assert_eq!(o.counters[0].messages_dropped + o.counters[1].messages_dropped, 0);
    }

    /// Unreliable in-order flows with fragmentation: what arrives is an increasing
    /// subsequence of whole, intact messages; everything on a clean channel.
    #[test]
    fn unreliable_fragmented_delivers_whole_messages(
        seed in any::<u64>(),
        loss_pct in 0u32..=30,
        dup_pct in 0u32..=20,
        jitter_ms in 0u64..30,
        mf in 1000usize..1500,
        rq_size in prop_oneof![Just(8u32), Just(32), Just(256)],
        lens in proptest::collection::vec(msg_len(), 0..8),
    ) {
        let cfg = FrctConfig {
            max_fragment: mf,
            rq_size,
            start_window: rq_size,
            max_gap: 20 * MS,
            max_rdv: Duration::from_secs(3600),
            initial_seqno: seed as u32,
            ..frag_cfg(false, mf)
        };
        let net = NetCfg { loss_pct, dup_pct, delay: 5 * MS, jitter: Duration::from_millis(jitter_ms) };
        let m0: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &l)| big_msg(0, i, l)).collect();
        let limit = Duration::from_secs(600);
        let o = simulate_msgs([cfg.clone(), cfg.clone()], net, seed, [&m0, &[]], limit, false);
        // Everything went out: no window stayed shut.
        prop_assert!(o.end < limit, "took {:?}", o.end);
        let got = &o.received[1];
        let ids: Vec<usize> = got.iter().map(|m| msg_id(m)).collect();
        prop_assert!(ids.windows(2).all(|w| w[0] < w[1]), "{:?}", ids);
        for (m, &i) in got.iter().zip(&ids) {
            prop_assert!(i < m0.len() && *m == m0[i], "message {} damaged", i);
        }
        if loss_pct == 0 && dup_pct == 0 && jitter_ms == 0 {
            prop_assert_eq!(got.len(), m0.len());
        }
        let max_len = lens.iter().copied().max().unwrap_or(0);
        check_bounds(&o, &cfg, max_len);
    }
}

/// Cost per packet on an instant, lossless channel, both endpoints on this thread:
/// `cargo test --release -p o7s-proto perf_smoke -- --ignored --nocapture`.
#[test]
#[ignore]
fn perf_smoke() {
    for (reliable, mf, len) in [
        (true, usize::MAX, 1400),
        (true, 1400, 1 << 20),
        (false, 1400, 1 << 20),
    ] {
        let t0 = Instant::now();
        let cfg = FrctConfig {
            reliable,
            max_fragment: mf,
            rq_size: 4096,
            start_window: 4096,
            ..FrctConfig::default()
        };
        let mut a = Frcti::new(cfg.clone(), t0);
        let mut b = Frcti::new(cfg, t0);
        let m = vec![7u8; len];
        let total = 1usize << 29;
        let n = total / len;
        let (mut sent, mut got, mut pkts) = (0, 0, 0u64);
        let mut now = t0;
        let wall = std::time::Instant::now();
        while got < n {
            now += Duration::from_micros(10);
            while sent < n && a.send(&m, now).is_ok() {
                sent += 1;
            }
            while let Some(p) = a.poll_transmit(now) {
                pkts += 1;
                b.handle_packet(&p, now).expect("well-formed");
            }
            while let Some(r) = b.recv() {
                assert_eq!(r.len(), len);
                got += 1;
            }
            while let Some(p) = b.poll_transmit(now) {
                a.handle_packet(&p, now).expect("well-formed");
            }
        }
        let el = wall.elapsed();
        eprintln!(
            "reliable {reliable} msg {len}: {pkts} packets in {el:?}: {:.0} ns/packet, {:.1} Gb/s",
            el.as_nanos() as f64 / pkts as f64,
            total as f64 * 8.0 / el.as_secs_f64() / 1e9
        );
    }
}

#[test]
fn one_loss_costs_one_retransmission() {
    let t = Instant::now();
    let mut a = Frcti::new(reliable(0), t);
    let mut b = Frcti::new(reliable(0), t);
    let mut sent = Vec::new();
    for i in 0..50u32 {
        a.send(&i.to_be_bytes(), t).expect("open");
        sent.push(a.poll_transmit(t).expect("data"));
    }
    // Packet 10 is lost; everything else arrives, and b's acks reach a.
    for (i, p) in sent.iter().enumerate() {
        if i != 10 {
            b.handle_packet(p, t).expect("ok");
        }
        while let Some(ack) = b.poll_transmit(t) {
            a.handle_packet(&ack, t).expect("ok");
        }
    }
    let mut now;
    let mut delivered = 0;
    while !a.is_idle() {
        now = match (a.poll_timeout(), b.poll_timeout()) {
            (Some(x), Some(y)) => x.min(y),
            (x, y) => x.or(y).expect("a timer"),
        };
        a.handle_timeout(now);
        b.handle_timeout(now);
        while let Some(p) = a.poll_transmit(now) {
            b.handle_packet(&p, now).expect("ok");
        }
        while b.recv().is_some() {
            delivered += 1;
        }
        while let Some(ack) = b.poll_transmit(now) {
            a.handle_packet(&ack, now).expect("ok");
        }
        assert!(now - t < Duration::from_secs(10), "{:?}", now - t);
    }
    while b.recv().is_some() {
        delivered += 1;
    }
    assert_eq!(delivered, 50);
    assert_eq!(a.counters().retransmissions, 1, "{:?}", a.counters());
}

#[test]
fn a_window_update_is_not_a_duplicate_ack() {
    let t = Instant::now();
    let mut a = Frcti::new(reliable(0), t);
    let mut b = Frcti::new(reliable(0), t);
    for i in 0..4u32 {
        a.send(&i.to_be_bytes(), t).expect("open");
    }
    let p: Vec<_> = std::iter::from_fn(|| a.poll_transmit(t)).collect();
    b.handle_packet(&p[0], t).expect("ok");
    let ack = b.poll_transmit(t + MS).expect("ack");
    a.handle_packet(&ack, t + MS).expect("ok");
    // The reader takes the packet: window updates repeat the ack number 1.
    for _ in 0..5 {
        let _ = b.recv();
        b.ack_now(t + MS);
        if let Some(upd) = b.poll_transmit(t + MS) {
            a.handle_packet(&upd, t + MS).expect("ok");
        }
    }
    assert_eq!(a.counters().fast_retransmissions, 0);
}

#[test]
fn selective_acks_repair_every_hole_in_one_round_trip() {
    let t = Instant::now();
    let mut a = Frcti::new(reliable(0), t);
    let mut b = Frcti::new(reliable(0), t);
    let mut sent = Vec::new();
    for i in 0..60u32 {
        a.send(&i.to_be_bytes(), t).expect("open");
        sent.push(a.poll_transmit(t).expect("data"));
    }
    let lost = [10usize, 20, 30];
    let now = t + 10 * MS;
    for (i, p) in sent.iter().enumerate() {
        if !lost.contains(&i) {
            b.handle_packet(p, now).expect("ok");
        }
        while let Some(ack) = b.poll_transmit(now) {
            a.handle_packet(&ack, now).expect("ok");
        }
    }
    // One round: the three holes go out again, nothing else.
    let later = now + 5 * MS;
    let again: Vec<u32> = std::iter::from_fn(|| a.poll_transmit(later))
        .map(|p| hdr(&p).seqno)
        .collect();
    assert_eq!(again, vec![10, 20, 30]);
    let mut delivered = 0;
    for p in std::iter::from_fn(|| a.poll_transmit(later)).collect::<Vec<_>>() {
        b.handle_packet(&p, later).expect("ok");
    }
    for s in [10usize, 20, 30] {
        b.handle_packet(&sent[s], later).expect("ok");
    }
    while b.recv().is_some() {
        delivered += 1;
    }
    assert_eq!(delivered, 60);
    while let Some(ack) = b.poll_transmit(later + MS) {
        a.handle_packet(&ack, later + MS).expect("ok");
    }
    assert!(a.is_idle());
    assert_eq!(a.counters().retransmissions, 3, "{:?}", a.counters());
}

#[test]
fn sack_vector() {
    let t = Instant::now();
    let mut a = Frcti::new(reliable(0), t);
    let mut b = Frcti::new(reliable(0), t);
    let mut sent = Vec::new();
    for i in 0..16u32 {
        a.send(&i.to_be_bytes(), t).expect("open");
        sent.push(a.poll_transmit(t).expect("data"));
    }
    for p in &sent[..10] {
        b.handle_packet(p, t).expect("ok");
    }
    while b.recv().is_some() {}
    while b.poll_transmit(t + MS).is_some() {}
    let mut last = None;
    for i in [12usize, 13, 15] {
        b.handle_packet(&sent[i], t + MS).expect("ok");
        while let Some(p) = b.poll_transmit(t + MS) {
            last = Some(p);
        }
    }
    let ack = last.expect("an immediate ack");
    assert_eq!(
        ack,
        [
            0x0c, 0x00, 0x01, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0x53, 0x02, 0, 0, 0, 0x0c, 0, 0, 0,
            0x0e, 0, 0, 0, 0x0f, 0, 0, 0, 0x10
        ]
    );
    // The sender learns that 12, 13 and 15 arrived: only 10, 11 and 14 go out again.
    a.handle_packet(&ack, t + MS).expect("ok");
    let later = t + 50 * MS;
    let again: Vec<u32> = std::iter::from_fn(|| a.poll_transmit(later))
        .map(|p| hdr(&p).seqno)
        .collect();
    assert_eq!(again, vec![10, 11, 14]);
}

/// The edge a receiver announces in a window update after `pkts` from sequence number 0.
fn announced(b: &mut Frcti, pkts: &[Vec<u8>], t: Instant) -> u32 {
    for p in pkts {
        b.handle_packet(p, t).expect("ok");
        while b.recv().is_some() {}
    }
    b.ack_now(t);
    let mut rwe = None;
    while let Some(p) = b.poll_transmit(t) {
        let r = hdr(&p);
        if r.flags.contains(FrctFlags::FC) {
            rwe = Some(r.rwe);
        }
    }
    rwe.expect("a window update")
}

#[test]
fn a_receive_buffer_bounds_the_window_by_the_largest_packets() {
    let t = Instant::now();
    // A 1 MiB ring, 80 bytes per record, 64 KiB frames.
    let cfg = FrctConfig {
        rcv_buf: Some((1 << 20, 80)),
        max_fragment: 65_515,
        ..reliable(0)
    };
    let big = 65_515 + HEADER_LEN + 80;
    let fits = (1 << 20) / big - 1;
    // Small packets: the window is rq_size, as without the bound.
    let mut b = Frcti::new(cfg.clone(), t);
    let small: Vec<Vec<u8>> = (0..4u32)
        .map(|i| {
            data_pkt(
                if i == 0 {
                    FrctFlags::DRF
                } else {
                    FrctFlags::empty()
                },
                i,
                &[7; 1400],
            )
        })
        .collect();
    assert_eq!(announced(&mut b, &small, t), 4 + 256);
    // Full-size packets: only as many as the ring holds, less one, beyond the read point;
    // an edge announced before never moves back.
    let full = vec![data_pkt(FrctFlags::empty(), 4, &vec![7; 65_515])];
    assert_eq!(announced(&mut b, &full, t), 4 + 256);
    let mut c = Frcti::new(cfg.clone(), t);
    let first = vec![data_pkt(FrctFlags::DRF, 0, &vec![7; 65_515])];
    assert_eq!(announced(&mut c, &first, t), 1 + fits as u32);
    // Before any packet arrives, the largest is taken to be a full fragment.
    let mut d = Frcti::new(cfg.clone(), t);
    let tiny = vec![data_pkt(FrctFlags::DRF, 0, b"x")];
    assert_eq!(announced(&mut d, &tiny, t), 1 + 256);
    // Fragments of 64 KiB messages through a ring-sized window arrive whole, with no packet
    // beyond the window the receiver announced.
    let m0: Vec<Vec<u8>> = (0..20).map(|i| big_msg(0, i, 65_537)).collect();
    let o = simulate_msgs(
        [cfg.clone(), cfg.clone()],
        lossy(0),
        3,
        [&m0, &[]],
        Duration::from_secs(60),
        true,
    );
    assert_eq!(o.received[1], m0);
    assert_eq!(o.counters[1].out_of_window, 0);
    assert!(o.max_q[1].1 <= fits + 2, "{:?} packets queued", o.max_q[1]);
}

#[test]
fn whole_messages_in_order_go_straight_into_the_readers_buffer() {
    let t = Instant::now();
    let mut a = Frcti::new(
        FrctConfig {
            initial_seqno: 7,
            ..frag_cfg(true, 1400)
        },
        t,
    );
    let mut b = Frcti::new(frag_cfg(true, 1400), t);
    let mut fill = |buf: &mut [u8]| {
        buf[..3].copy_from_slice(b"one");
        3
    };
    assert_eq!(a.send_with(100, t, &mut fill), Ok(3));
    let mut nothing = |_: &mut [u8]| 0;
    assert_eq!(a.send_with(100, t, &mut nothing), Ok(0), "nothing sent");
    a.send(b"two", t).expect("open");
    a.send(&big_msg(0, 0, 2000), t).expect("open");
    a.send(b"four", t).expect("open");
    let p: Vec<Vec<u8>> = std::iter::from_fn(|| a.poll_transmit(t)).collect();
    assert_eq!(p.len(), 5, "three whole messages and two fragments");
    assert_eq!(&p[0][HEADER_LEN..], b"one");
    let mut out = [0u8; 64];
    // Whole and in order: into the buffer.
    assert_eq!(b.handle_packet_into(&p[0], t, &mut out), Ok(Some(3)));
    assert_eq!(&out[..3], b"one");
    // Out of order: kept in the reorder queue.
    assert_eq!(b.handle_packet_into(&p[2], t, &mut out), Ok(None));
    assert_eq!(b.handle_packet_into(&p[1], t, &mut out), Ok(Some(3)));
    assert_eq!(&out[..3], b"two");
    assert!(!b.has_message());
    // Fragments are reassembled as before, and nothing overtakes a message waiting for
    // `recv`.
    assert_eq!(b.handle_packet_into(&p[3], t, &mut out), Ok(None));
    assert!(b.has_message());
    assert_eq!(b.handle_packet_into(&p[4], t, &mut out), Ok(None));
    assert_eq!(b.recv(), Some(big_msg(0, 0, 2000)));
    assert_eq!(b.recv().as_deref(), Some(&b"four"[..]));
    // A buffer too small for a whole message leaves it to `recv`.
    a.send(b"five", t).expect("open");
    let p = a.poll_transmit(t).expect("data");
    assert_eq!(b.handle_packet_into(&p, t, &mut out[..2]), Ok(None));
    assert_eq!(b.recv().as_deref(), Some(&b"five"[..]));
    assert_eq!(b.queued_bytes(), (0, 0));
}
