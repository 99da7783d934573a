//! Two FRCT endpoints joined by a channel the input controls (delivery order, loss,
//! duplication, packets injected from nowhere, arbitrary time steps), driven through an
//! arbitrary sequence of calls. Nothing may panic, and between calls:
//! - memory stays bounded: the receive side by its reorder queue and two messages, the send
//!   side by its window and one message;
//! - `has_message` says whether `recv` returns a message;
//! - after `handle_timeout(now)` and draining `poll_transmit(now)`, nothing is due at `now`
//!   any more (a caller waiting on `poll_timeout` would otherwise spin);
//! - what an endpoint delivers was sent by its peer, whole: on reliable flows exactly the
//!   messages sent, in order (a prefix); on unreliable in-order flows a subsequence; on
//!   unordered flows any of them. Packets injected into an endpoint void the checks on what
//!   it delivers, and weaken those on its peer to a subsequence.
//!
//! The channel drops packets older than the maximum packet lifetime, as delta-t assumes.
#![no_main]

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use o7s_proto::frct::{FrctConfig, FrctError, Frcti};
use o7s_proto::wire::frct::{FrctFlags, FrctRepr, HEADER_LEN};

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn ms(v: u8) -> Duration {
    Duration::from_millis(u64::from(v))
}

fn config(inp: &mut Input) -> FrctConfig {
    let mode = inp.byte();
    FrctConfig {
        reliable: mode & 1 != 0,
        in_order: mode & 2 != 0,
        max_gap: if mode & 4 != 0 {
            Duration::MAX
        } else {
            ms(inp.byte())
        },
        initial_seqno: if mode & 8 != 0 {
            inp.u32()
        } else {
            u32::MAX - 20
        },
        start_window: u32::from(inp.byte() % 80),
        rq_size: u32::from(inp.byte() % 40),
        initial_rto: ms(inp.byte()) + Duration::from_micros(100),
        rto_min: Duration::from_micros(u64::from(inp.byte()) * 10),
        rto_max: ms(inp.byte()) * 10,
        ack_delay: ms(inp.byte() % 8),
        mpl: ms(inp.byte()) * 10 + Duration::from_millis(1),
        a: ms(inp.byte()),
        r: ms(inp.byte()) * 10 + Duration::from_millis(1),
        rdv_interval: ms(inp.byte()) + Duration::from_millis(1),
        max_rdv: ms(inp.byte()) * 10,
        max_fragment: usize::from(inp.byte() % 64),
        max_message: usize::from(inp.u16() % 1024),
    }
}

/// Message `id` of `len` bytes: the id, then bytes derived from it.
fn message(id: u32, len: usize) -> Vec<u8> {
    let mut m: Vec<u8> = id.to_be_bytes().to_vec();
    let mut x = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while m.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m.push(x as u8);
    }
    m.truncate(len);
    m
}

struct Side {
    ep: Frcti,
    /// Messages `send` accepted, in order.
    sent: Vec<Vec<u8>>,
    sent_set: HashSet<Vec<u8>>,
    /// Messages of the peer's `sent` accounted for by what this side delivered.
    matched: usize,
    /// Packets were injected into this side.
    tainted: bool,
    /// Largest payload handed to `handle_packet`.
    max_payload: usize,
}

struct World {
    cfg: FrctConfig,
    sides: [Side; 2],
    /// (sent at, destination, packet)
    chan: VecDeque<(Instant, usize, Vec<u8>)>,
    now: Instant,
    next_id: u32,
    /// Packets left to transmit before the input ends early (keeps runs fast).
    budget: usize,
}

const MAX_CHAN: usize = 2048;
const BUDGET: usize = 50_000;

impl World {
    fn check(&mut self, s: usize) {
        let cfg = &self.cfg;
        let rq = cfg.rq_size.max(1) as usize;
        let mf = cfg.max_fragment.max(1);
        let mm = cfg.max_message.max(1);
        let side = &self.sides[s];
        let ep = &side.ep;
        let (snd, rcv) = ep.queued();
        let (snd_b, rcv_b) = ep.queued_bytes();
        let c = ep.counters();
        assert!(rcv <= rq + 2, "{rcv} packets held for {rq}");
        assert!(
            rcv_b <= rq * side.max_payload + 2 * mm,
            "{rcv_b} bytes held"
        );
        let frags = mm.div_ceil(mf);
        if cfg.reliable {
            assert!(
                snd <= c.window as usize + frags,
                "{snd} packets for window {}",
                c.window
            );
            assert!(c.in_flight as usize <= snd);
        } else {
            assert!(snd <= (1 << 23) + 80 + frags);
            assert_eq!(c.in_flight, 0);
        }
        assert!(snd_b <= snd * mf.min(mm));
        assert_eq!(snd == 0, ep.is_idle());
        if ep.has_message() {
            assert!(rcv > 0);
        }
    }

    fn deliver_msg(&mut self, d: usize, m: Vec<u8>) {
        let src = 1 - d;
        assert!(!m.is_empty() && m.len() <= self.cfg.max_message.max(1));
        if self.sides[d].tainted {
            return;
        }
        let peer_tainted = self.sides[src].tainted;
        let sent = &self.sides[src].sent;
        let matched = self.sides[d].matched;
        if !self.cfg.reliable && !self.cfg.in_order {
            assert!(
                self.sides[src].sent_set.contains(&m),
                "unordered: unknown message"
            );
        } else if self.cfg.reliable && !peer_tainted {
            assert!(matched < sent.len(), "more messages than sent");
            assert_eq!(
                m, sent[matched],
                "reliable: message {matched} out of order or damaged"
            );
            self.sides[d].matched += 1;
        } else {
            let pos = sent[matched..]
                .iter()
                .position(|x| *x == m)
                .expect("in order: a later message that was sent");
            self.sides[d].matched = matched + pos + 1;
        }
    }

    fn recv_all(&mut self, d: usize) {
        loop {
            let has = self.sides[d].ep.has_message();
            let m = self.sides[d].ep.recv();
            assert_eq!(has, m.is_some(), "has_message disagrees with recv");
            match m {
                Some(m) => self.deliver_msg(d, m),
                None => break,
            }
        }
    }

    /// Everything due at `now`: at most a retransmission and a first transmission of each
    /// packet held, a rendez-vous and an ack.
    fn transmit_all(&mut self, s: usize) {
        let bound = 2 * self.sides[s].ep.queued().0 + 2;
        for _ in 0..=bound {
            let Some(p) = self.sides[s].ep.poll_transmit(self.now) else {
                return;
            };
            assert!(p.len() >= HEADER_LEN);
            assert!(p.len() - HEADER_LEN <= self.cfg.max_fragment.max(1));
            self.budget = self.budget.saturating_sub(1);
            if self.chan.len() >= MAX_CHAN {
                self.chan.pop_front();
            }
            self.chan.push_back((self.now, 1 - s, p));
        }
        panic!("poll_transmit does not run dry");
    }

    fn handle(&mut self, d: usize, p: &[u8]) {
        self.sides[d].max_payload = self.sides[d]
            .max_payload
            .max(p.len().saturating_sub(HEADER_LEN));
        let r = self.sides[d].ep.handle_packet(p, self.now);
        assert!(r.is_ok() || p.len() < HEADER_LEN);
    }

    fn deliver(&mut self, i: usize, keep: bool) {
        if self.chan.is_empty() {
            return;
        }
        let i = i % self.chan.len();
        let (at, d, p) = if keep {
            self.chan[i].clone()
        } else {
            match self.chan.swap_remove_back(i) {
                Some(x) => x,
                None => return,
            }
        };
        if self.now.saturating_duration_since(at) <= self.cfg.mpl {
            self.handle(d, &p);
        }
    }

    /// handle_timeout and draining poll_transmit leave nothing due at `now`.
    fn timeout(&mut self, s: usize) {
        self.sides[s].ep.handle_timeout(self.now);
        self.transmit_all(s);
        if let Some(t) = self.sides[s].ep.poll_timeout() {
            assert!(
                t > self.now,
                "timer due at now after handle_timeout and poll_transmit"
            );
        }
    }

    /// A few rounds of a well-behaved network: deliver everything, follow the timers.
    fn run(&mut self, rounds: u8) {
        for _ in 0..rounds {
            for s in 0..2 {
                self.timeout(s);
            }
            let chan = std::mem::take(&mut self.chan);
            for (at, d, p) in chan {
                if self.now.saturating_duration_since(at) <= self.cfg.mpl {
                    self.handle(d, &p);
                }
            }
            for s in 0..2 {
                self.recv_all(s);
                self.check(s);
            }
            let next = self.sides.iter().filter_map(|x| x.ep.poll_timeout()).min();
            match next {
                Some(t) if self.chan.is_empty() => self.now = self.now.max(t),
                Some(_) => {}
                None if self.chan.is_empty() => return,
                None => {}
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let cfg = config(&mut inp);
    let t0 = Instant::now();
    let side = |isn_off: u32| {
        let c = FrctConfig {
            initial_seqno: cfg.initial_seqno.wrapping_add(isn_off),
            ..cfg.clone()
        };
        Side {
            ep: Frcti::new(c, t0),
            sent: Vec::new(),
            sent_set: HashSet::new(),
            matched: 0,
            tainted: false,
            max_payload: 0,
        }
    };
    let mut w = World {
        sides: [side(0), side(0x8000_0000)],
        cfg: Frcti::new(cfg.clone(), t0).config().clone(),
        chan: VecDeque::new(),
        now: t0,
        next_id: 0,
        budget: BUDGET,
    };
    let mut ops = 0;
    while !inp.is_empty() && ops < 2000 && w.budget > 0 {
        ops += 1;
        let op = inp.byte();
        let s = usize::from(op >> 7);
        match op & 0x0F {
            0 | 1 => {
                let len = usize::from(inp.u16()) % (w.cfg.max_message + 16);
                let m = message(w.next_id, len);
                w.next_id += 1;
                let max = w.sides[s].ep.max_send();
                match w.sides[s].ep.send(&m, w.now) {
                    Ok(()) => {
                        assert!(!m.is_empty() && m.len() <= max);
                        w.sides[s].sent_set.insert(m.clone());
                        w.sides[s].sent.push(m);
                    }
                    Err(FrctError::EmptyPayload) => assert!(m.is_empty()),
                    Err(FrctError::TooBig { len, max: m2 }) => {
                        assert_eq!((len, m2), (m.len(), max));
                        assert!(len > max);
                    }
                    Err(FrctError::WindowClosed) => assert!(!w.sides[s].ep.is_window_open()),
                    Err(FrctError::PeerUnresponsive) | Err(FrctError::RetransmitTimeout) => {}
                    Err(e) => panic!("send: {e}"),
                }
            }
            2 => w.transmit_all(s),
            3 | 4 => {
                let i = usize::from(inp.u16());
                w.deliver(i, op & 0x40 != 0);
            }
            5 => {
                if !w.chan.is_empty() {
                    let i = usize::from(inp.u16()) % w.chan.len();
                    w.chan.swap_remove_back(i);
                }
            }
            6 => {
                // Arbitrary bytes.
                let n = usize::from(inp.byte());
                let p = inp.bytes(n).to_vec();
                w.sides[s].tainted = true;
                w.handle(s, &p);
            }
            7 => {
                // A well-formed header with arbitrary fields near the peer's sequence numbers.
                let flags = FrctFlags(inp.byte());
                let base = w
                    .cfg
                    .initial_seqno
                    .wrapping_add(if s == 0 { 0x8000_0000 } else { 0 });
                let repr = FrctRepr {
                    flags,
                    rwe: u32::from(inp.u16()),
                    seqno: base.wrapping_add(u32::from(inp.byte())).wrapping_sub(20),
                    ackno: base.wrapping_add(u32::from(inp.byte())).wrapping_sub(20),
                };
                let n = usize::from(inp.byte() % 80);
                let mut p = vec![0u8; HEADER_LEN];
                repr.emit(&mut p).expect("room");
                p.extend_from_slice(inp.bytes(n));
                w.sides[s].tainted = true;
                w.handle(s, &p);
            }
            8 => w.recv_all(s),
            9 => {
                let v = u64::from(inp.u16());
                let d = match op & 0x30 {
                    0x00 => Duration::from_micros(v),
                    0x10 => Duration::from_millis(v),
                    0x20 => Duration::from_millis(v * 16),
                    _ => Duration::from_secs(v),
                };
                w.now += d;
            }
            10 => w.timeout(s),
            11 => w.sides[s].ep.ack_now(w.now),
            12 => {
                let _ = w.sides[s].ep.counters();
                let _ = w.sides[s].ep.failure();
            }
            _ => {
                let rounds = inp.byte() % 64;
                w.run(rounds);
            }
        }
        for s in 0..2 {
            w.check(s);
        }
    }
});
