//! Flows sharing a bottleneck under multi-bit ECN, simulated (see `sim.rs`).
//!
//! What is asserted, and why these bounds:
//! - Jain's fairness index of the per-flow goodput ≥ 0.9 and utilisation ≥ 70 %.
//! - The queue stays inside the range the marks can express. The mark is the queue length
//!   divided by 16, saturating at 255, i.e. at 4080 packets: beyond that the senders learn
//!   nothing more from a longer queue, so a queue that reaches it is out of control. The
//!   prototype's step (64 KiB per slot, ≈ 31 Mb/s more per slot and per flow) lets four flows
//!   overshoot a 100 Mb/s link by a whole link's worth within one slot, and the decrease
//!   (level / 8192 of the window per slot, the level settling at twice the queue length)
//!   needs a queue of several hundred packets to turn that round: the simulation's peaks are
//!   400–1100 packets (50–130 ms at 100 Mb/s). The bound is half the marking range,
//!   [`QUEUE_BOUND`] = 2048 packets.
//! - The queue does not ratchet up: after the warm-up it falls below the first mark (16
//!   packets) at least once a second ([`MAX_MARKING`]); measured cycles last about 250 ms.
//!
//! Regimes where the algorithm fails (kept out of the property test, see `regimes`):
//! a flow that starts while the others keep a queue of hundreds of packets (its slow start
//! is blind for that queue's delay and doubles its window every slot while its slots shrink,
//! so it overshoots to the access rate), bottlenecks of 50 Mb/s or less shared by 3–4 flows
//! (one additive step exceeds a flow's share), and round trips of 5 ms and more at 1 Gb/s
//! (utilisation falls to 30–70 %).

use std::time::Duration;

use proptest::prelude::*;

use super::sim::{run, FlowCfg, SimCfg, SimReport};

/// Longest queue allowed, packets: half of the marking range (255 << 4 = 4080).
const QUEUE_BOUND: usize = 2048;
/// Longest the queue may stay marking every packet after the warm-up.
const MAX_MARKING: Duration = Duration::from_secs(1);

/// `n` flows with round trip `rtt`, starting `stagger` apart, on access links `access`
/// times faster than a bottleneck of `mbps`, for `secs` seconds (the first one is warm-up).
fn scenario(n: usize, mbps: u64, rtt: Duration, stagger: Duration, access: u64) -> SimCfg {
    SimCfg {
        flows: (0..n)
            .map(|i| FlowCfg {
                rtt,
                start: stagger * i as u32,
                access_bps: mbps * access * 1_000_000,
            })
            .collect(),
        bottleneck_bps: mbps * 1_000_000,
        pkt_len: 1500,
        duration: Duration::from_secs(4),
        warmup: Duration::from_secs(1),
        prototype: false,
        trace: None,
    }
}

fn check(r: &SimReport, what: &str) {
    assert!(r.updates > 0, "{what}: no FLOW_UPDATE: {r:?}");
    assert!(r.jain >= 0.9, "{what}: unfair: {r:?}");
    assert!(r.utilisation >= 0.7, "{what}: link idle: {r:?}");
    assert!(r.max_queue <= QUEUE_BOUND, "{what}: queue too long: {r:?}");
    assert!(
        r.longest_marking <= MAX_MARKING,
        "{what}: queue does not drain: {r:?}"
    );
}

/// Start phases: all at once, and two offsets that are no fraction of a slot.
const STAGGERS_US: [u64; 3] = [0, 1237, 7000];

#[test]
fn two_flows_share_100mbps() {
    for us in STAGGERS_US {
        let c = scenario(
            2,
            100,
            Duration::from_millis(1),
            Duration::from_micros(us),
            10,
        );
        check(&run(&c), &format!("2 flows, {us} µs apart"));
    }
}

#[test]
fn four_flows_share_100mbps() {
    for us in STAGGERS_US {
        let c = scenario(
            4,
            100,
            Duration::from_millis(1),
            Duration::from_micros(us),
            10,
        );
        check(&run(&c), &format!("4 flows, {us} µs apart"));
    }
}

/// Why o7s paces (deviation 1): the prototype sends each window in one burst, the burst alone
/// gets marked, and the windows only shrink.
#[test]
fn prototype_bursts_leave_the_link_idle() {
    let mut c = scenario(
        2,
        100,
        Duration::from_millis(1),
        Duration::from_micros(1237),
        10,
    );
    c.prototype = true;
    let proto = run(&c);
    c.prototype = false;
    let o7s = run(&c);
    assert!(proto.utilisation < 0.5, "{proto:?}");
    assert!(o7s.utilisation > 0.9, "{o7s:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Fairness, utilisation and a bounded queue wherever the algorithm works: 100–400 Mb/s,
    /// 2–4 flows, round trips of 0.1–2 ms, starts up to 10 ms apart, access links 2–10 times
    /// the bottleneck.
    #[test]
    fn shares_fairly_with_a_bounded_queue(
        n in 2usize..=4,
        mbps in 100u64..=400,
        rtt_us in 100u64..=2000,
        stagger_us in 0u64..=10_000,
        access in 2u64..=10,
    ) {
        let c = scenario(
            n,
            mbps,
            Duration::from_micros(rtt_us),
            Duration::from_micros(stagger_us),
            access,
        );
        let r = run(&c);
        prop_assert!(r.jain >= 0.9, "unfair: {:?}", r);
        prop_assert!(r.utilisation >= 0.7, "link idle: {:?}", r);
        prop_assert!(r.max_queue <= QUEUE_BOUND, "queue too long: {:?}", r);
        prop_assert!(r.longest_marking <= MAX_MARKING, "queue does not drain: {:?}", r);
    }
}

/// Prints Jain / utilisation / longest queue / longest marking over a grid of regimes, for
/// o7s and for the prototype as is, then the slowest and fastest flow (Mb/s) and the queue
/// after the warm-up (longest / mean). Slow in debug builds:
/// `cargo test -p o7s-proto --release -- --ignored regimes --nocapture`.
#[test]
#[ignore]
fn regimes() {
    for prototype in [false, true] {
        println!("{}", if prototype { "prototype" } else { "o7s" });
        for mbps in [20u64, 50, 100, 200, 500, 1000] {
            for n in [2usize, 3, 4] {
                for rtt_us in [200u64, 1000, 2000, 5000] {
                    let mut line = format!("{mbps:>5} Mb/s {n} flows rtt {rtt_us:>4} µs:");
                    for stagger_us in [0u64, 1237, 7000, 50_000] {
                        let mut c = scenario(
                            n,
                            mbps,
                            Duration::from_micros(rtt_us),
                            Duration::from_micros(stagger_us),
                            10,
                        );
                        c.prototype = prototype;
                        let r = run(&c);
                        let slowest = r.rate_bps.iter().copied().fold(f64::MAX, f64::min);
                        let fastest = r.rate_bps.iter().copied().fold(0.0, f64::max);
                        line += &format!(
                            " {:.2}/{:.2}/{:>6}/{:>4}ms ({:.0}-{:.0}, {}/{:.0})",
                            r.jain,
                            r.utilisation,
                            r.max_queue,
                            r.longest_marking.as_millis(),
                            slowest / 1e6,
                            fastest / 1e6,
                            r.max_queue_steady,
                            r.mean_queue,
                        );
                    }
                    println!("{line}");
                }
            }
        }
    }
}
