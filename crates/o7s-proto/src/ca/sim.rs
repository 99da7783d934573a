//! Discrete-event simulation of flows under multi-bit ECN sharing one bottleneck, on a virtual
//! clock.
//!
//! Each sender has unlimited data and a private access link (no queue of its own): it asks its
//! [`MbEcn`] before every packet, holds the packet until the time it is given, puts it on the
//! access link, and asks for the next packet when the access link is free. Packets join one
//! FIFO bottleneck queue that drains at a fixed rate and marks each arriving packet with
//! [`calc_ecn`] of the packets already in it (waiting or being sent), as the prototype's
//! forwarder marks with the packets queued on the outgoing flow. From the bottleneck a packet
//! reaches its receiver after half the flow's round trip; the receiver's
//! [`MbEcn::on_receive`] decides on FLOW_UPDATEs, which reach the sender's
//! [`MbEcn::on_update`] after the other half. Nothing is lost: the queue is unbounded, so its
//! length measures how well the senders are held back.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use super::{calc_ecn, MbEcn, ECN_Q_SHFT};

/// One flow of a simulation.
#[derive(Debug, Clone, Copy)]
pub(super) struct FlowCfg {
    /// Propagation round trip (sender → bottleneck is instantaneous; bottleneck → receiver
    /// and receiver → sender take half each).
    pub rtt: Duration,
    /// When the sender starts sending (and its context is created).
    pub start: Duration,
    /// Rate of the sender's access link, bits/s.
    pub access_bps: u64,
}

/// A simulation setup.
#[derive(Debug, Clone)]
pub(super) struct SimCfg {
    pub flows: Vec<FlowCfg>,
    /// Bottleneck rate, bits/s.
    pub bottleneck_bps: u64,
    /// Packet size, bytes (every packet is this size).
    pub pkt_len: usize,
    /// Total simulated time.
    pub duration: Duration,
    /// Throughput, fairness and queue statistics count from here.
    pub warmup: Duration,
    /// Run [`MbEcn::prototype`] (no o7s deviation) instead of [`MbEcn::new`].
    pub prototype: bool,
    /// Print the queue and every sender's state this often (for tuning; `None` in tests).
    pub trace: Option<Duration>,
}

/// What a run measured (after the warm-up unless said otherwise).
#[derive(Debug, Clone)]
pub(super) struct SimReport {
    /// Goodput of each flow, bits/s.
    pub rate_bps: Vec<f64>,
    /// Jain's fairness index of `rate_bps`.
    pub jain: f64,
    /// Delivered bits over bottleneck capacity.
    pub utilisation: f64,
    /// Longest queue over the whole run, slow start included.
    pub max_queue: usize,
    /// Longest queue after the warm-up.
    pub max_queue_steady: usize,
    /// Mean queue seen by arriving packets.
    pub mean_queue: f64,
    /// Longest time the queue stayed long enough to mark every packet (≥ 16).
    pub longest_marking: Duration,
    /// FLOW_UPDATEs sent.
    pub updates: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// Sender `0` may ask for its next packet.
    Ready(usize),
    /// A packet of flow `0` reaches the bottleneck.
    Enqueue(usize),
    /// The bottleneck finished sending its head packet.
    Dequeue,
    /// A packet of flow `0` with ECN byte `1` reaches its receiver.
    Deliver(usize, u8),
    /// A FLOW_UPDATE with `1` reaches sender `0`.
    Update(usize, u16),
    /// Print a trace line.
    Trace,
}

/// Jain's fairness index: (Σx)² / (n · Σx²); 1 when all are equal, 1/n when one takes all.
pub(super) fn jain(xs: &[f64]) -> f64 {
    let sum: f64 = xs.iter().sum();
    let sq: f64 = xs.iter().map(|x| x * x).sum();
    if sq == 0.0 {
        return 1.0;
    }
    sum * sum / (xs.len() as f64 * sq)
}

/// Time to send `len` bytes at `bps`, ns.
fn tx_ns(len: usize, bps: u64) -> u64 {
    (len as u64 * 8 * 1_000_000_000).div_ceil(bps.max(1))
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn trace_line(t: u64, queue: usize, snd: &[MbEcn]) -> String {
    let mut line = format!("{:>7.1} ms q {:>6}", t as f64 / 1e6, queue);
    for s in snd {
        let s = s.stats();
        let rate = s.wnd_limit as f64 * 8.0 / s.slot.as_secs_f64() / 1e6;
        line += &format!(
            " | {rate:>7.1} Mb/s mul {} ece {:>4}{}",
            s.mul,
            s.snd_ece,
            if s.cav { "" } else { " ss" }
        );
    }
    line
}

/// Run one simulation.
pub(super) fn run(cfg: &SimCfg) -> SimReport {
    let base = Instant::now();
    let at = |t: u64| base + Duration::from_nanos(t);
    let end = ns(cfg.duration);
    let warmup = ns(cfg.warmup);
    let n = cfg.flows.len();
    let service = tx_ns(cfg.pkt_len, cfg.bottleneck_bps);
    let marks_from = 1 << ECN_Q_SHFT;

    let new = |f: &FlowCfg| {
        let t = at(ns(f.start));
        if cfg.prototype {
            MbEcn::prototype(t)
        } else {
            MbEcn::new(t)
        }
    };
    let mut snd: Vec<MbEcn> = cfg.flows.iter().map(new).collect();
    let mut rcv: Vec<MbEcn> = cfg.flows.iter().map(new).collect();

    let mut events = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |events: &mut BinaryHeap<_>, t: u64, ev: Ev| {
        seq += 1;
        events.push(Reverse((t, seq, ev)));
    };
    for (i, f) in cfg.flows.iter().enumerate() {
        push(&mut events, ns(f.start), Ev::Ready(i));
    }
    if cfg.trace.is_some() {
        push(&mut events, 0, Ev::Trace);
    }

    let mut queue: VecDeque<(usize, u8)> = VecDeque::new();
    let mut delivered = vec![0u64; n];
    let (mut max_queue, mut max_queue_steady) = (0, 0);
    let (mut queue_sum, mut arrivals) = (0u64, 0u64);
    let (mut last_short, mut longest_marking) = (warmup, 0);
    let mut updates = 0;

    while let Some(Reverse((t, _, ev))) = events.pop() {
        if t > end {
            break;
        }
        match ev {
            Ev::Ready(i) => {
                let go = snd[i]
                    .on_send(cfg.pkt_len, at(t))
                    .map_or(t, |r| ns(r.duration_since(base)));
                assert!(go >= t, "on_send returned a time in the past");
                let sent = go + tx_ns(cfg.pkt_len, cfg.flows[i].access_bps);
                push(&mut events, sent, Ev::Enqueue(i));
                push(&mut events, sent, Ev::Ready(i));
            }
            Ev::Enqueue(i) => {
                let len = queue.len();
                queue.push_back((i, calc_ecn(len)));
                if len == 0 {
                    push(&mut events, t + service, Ev::Dequeue);
                }
                max_queue = max_queue.max(len + 1);
                if t >= warmup {
                    max_queue_steady = max_queue_steady.max(len + 1);
                    queue_sum += len as u64;
                    arrivals += 1;
                }
            }
            Ev::Dequeue => {
                let (i, ecn) = queue.pop_front().expect("a packet was being sent");
                push(
                    &mut events,
                    t + ns(cfg.flows[i].rtt) / 2,
                    Ev::Deliver(i, ecn),
                );
                if !queue.is_empty() {
                    push(&mut events, t + service, Ev::Dequeue);
                }
            }
            Ev::Deliver(i, ecn) => {
                if t >= warmup {
                    delivered[i] += cfg.pkt_len as u64;
                }
                if let Some(ece) = rcv[i].on_receive(ecn, cfg.pkt_len) {
                    updates += 1;
                    let rtt = ns(cfg.flows[i].rtt);
                    push(&mut events, t + rtt - rtt / 2, Ev::Update(i, ece));
                }
            }
            Ev::Update(i, ece) => snd[i].on_update(ece),
            Ev::Trace => {
                println!("{}", trace_line(t, queue.len(), &snd));
                push(&mut events, t + cfg.trace.map_or(end, ns), Ev::Trace);
            }
        }
        if t >= warmup {
            if queue.len() < marks_from {
                last_short = t;
            } else {
                longest_marking = longest_marking.max(t - last_short);
            }
        }
    }

    let secs = (end - warmup) as f64 / 1e9;
    let rate_bps: Vec<f64> = delivered.iter().map(|&b| b as f64 * 8.0 / secs).collect();
    let total: f64 = rate_bps.iter().sum();
    SimReport {
        jain: jain(&rate_bps),
        utilisation: total / cfg.bottleneck_bps as f64,
        rate_bps,
        max_queue,
        max_queue_steady,
        mean_queue: queue_sum as f64 / arrivals.max(1) as f64,
        longest_marking: Duration::from_nanos(longest_marking),
        updates,
    }
}
