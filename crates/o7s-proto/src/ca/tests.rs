//! The rules of multi-bit ECN one by one, on a virtual clock.

use std::time::{Duration, Instant};

use super::*;

const PKT: usize = 1500;
/// The initial slot, ns.
const SLOT: u64 = 1 << CA_SLOT;

fn at(t0: Instant, ns: u64) -> Instant {
    t0 + Duration::from_nanos(ns)
}

/// Send `n` packets at `now`, ignoring when they may go (they are counted all the same).
fn burst(c: &mut MbEcn, n: usize, now: Instant) {
    for _ in 0..n {
        let _ = c.on_send(PKT, now);
    }
}

/// A sender that always has data: sends each packet as soon as it may, up to `until`
/// included.
fn saturate(c: &mut MbEcn, mut now: Instant, until: Instant) -> Instant {
    while now <= until {
        now = c.on_send(PKT, now).unwrap_or(now);
    }
    now
}

#[test]
fn a_fresh_context_is_in_slow_start_with_the_initial_window() {
    let t0 = Instant::now();
    let s = MbEcn::new(t0).stats();
    assert_eq!(
        s,
        CaStats {
            cav: false,
            wnd_limit: CA_IWL,
            wnd_bytes: 0,
            wnd_pkts: 0,
            inc: CA_INC,
            mul: CA_SLOT,
            slot: Duration::from_nanos(SLOT),
            snd_ece: 0,
            snd_pkts: 0,
            rcv_ece: 0,
            rcv_pkts: 0,
        }
    );
}

#[test]
fn the_window_is_paced_over_its_slot() {
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0);
    // 43 packets fit in 64 KiB: the k-th (from 0) waits k · 1500 / 65536 of the slot.
    for k in 0..43u64 {
        let want = (k > 0).then(|| at(t0, SLOT * k * 1500 / CA_IWL));
        assert_eq!(c.on_send(PKT, t0), want, "packet {k}");
    }
    // The 44th goes over the limit and waits for the next slot.
    assert_eq!(c.on_send(PKT, t0), Some(at(t0, SLOT)));
}

#[test]
fn a_late_sender_catches_up_with_the_schedule() {
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0);
    let half = at(t0, SLOT / 2);
    // Half a slot late: the packets that start in the first half (k · 1500 ≤ 32768) go at once.
    for k in 0..22 {
        assert_eq!(c.on_send(PKT, half), None, "packet {k}");
    }
    assert!(c.on_send(PKT, half).is_some_and(|t| t > half));
}

#[test]
fn the_prototype_sends_its_window_in_one_burst() {
    let t0 = Instant::now();
    let mut c = MbEcn::prototype(t0);
    for k in 0..43 {
        assert_eq!(c.on_send(PKT, t0), None, "packet {k}");
    }
    assert_eq!(c.on_send(PKT, t0), Some(at(t0, SLOT)));
}

#[test]
fn slow_start_doubles_a_window_that_was_used_up() {
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0);
    burst(&mut c, 44, t0);
    let _ = c.on_send(PKT, at(t0, SLOT));
    let s = c.stats();
    assert_eq!(s.wnd_limit, 2 * CA_IWL);
    assert_eq!((s.mul, s.wnd_pkts, s.wnd_bytes), (CA_SLOT, 0, 0));
}

#[test]
fn slow_start_keeps_a_window_that_was_not_used_up() {
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0);
    burst(&mut c, 10, t0);
    let _ = c.on_send(PKT, at(t0, SLOT));
    assert_eq!(c.stats().wnd_limit, CA_IWL);
}

#[test]
fn without_marks_the_window_is_what_was_sent_plus_the_step() {
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0);
    c.on_update(0);
    burst(&mut c, 20, t0);
    let _ = c.on_send(PKT, at(t0, SLOT)); // counted in slot 0, then the slot changes
    let s = c.stats();
    assert!(s.cav);
    assert_eq!(s.wnd_limit, 21 * PKT as u64 + CA_INC);
}

#[test]
fn without_marks_the_rate_grows_by_one_step_per_slot() {
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0);
    c.on_update(0);
    // Bytes per second that one step adds, whatever the slot's scale.
    let step = CA_INC as f64 * 1e9 / SLOT as f64;
    let rate = |s: CaStats| s.wnd_limit as f64 / s.slot.as_secs_f64();
    let mut now = t0;
    let mut last = rate(c.stats());
    for _ in 0..8 {
        let slot = c.stats().slot;
        now = saturate(&mut c, now, now + slot);
        let r = rate(c.stats());
        assert!(
            r >= last + step * 0.99,
            "{} -> {} ({:?})",
            last,
            r,
            c.stats()
        );
        last = r;
    }
    assert!(
        c.stats().mul < CA_SLOT,
        "a fast flow's slots shrink: {:?}",
        c.stats()
    );
}

#[test]
fn an_echo_cuts_the_window_by_its_share_of_2_13() {
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0);
    c.on_update(4096);
    burst(&mut c, 10, t0);
    let _ = c.on_send(PKT, at(t0, SLOT));
    assert_eq!(c.stats().wnd_limit, CA_IWL / 2);
    // And again at the next slot while the echo holds.
    burst(&mut c, 10, at(t0, SLOT));
    let _ = c.on_send(PKT, at(t0, 2 * SLOT));
    assert_eq!(c.stats().wnd_limit, CA_IWL / 4);
}

#[test]
fn an_echo_above_2_13_empties_the_window_without_wrapping() {
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0);
    c.on_update(u16::MAX);
    burst(&mut c, 10, t0);
    let _ = c.on_send(PKT, at(t0, SLOT));
    assert_eq!(c.stats().wnd_limit, 0);
    // Every packet now waits for a slot end, never more than MAX_WAIT.
    let now = at(t0, SLOT + 1);
    let t = c
        .on_send(PKT, now)
        .expect("an empty window holds the packet");
    assert!(t > now && t <= now + MAX_WAIT);
}

#[test]
fn the_echo_is_forgotten_after_32_packets_and_a_second_without_update() {
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0);
    c.on_update(100);
    burst(&mut c, 40, t0);
    assert_eq!(
        c.stats().snd_ece,
        100,
        "packets alone do not make it forget"
    );
    burst(&mut c, 1, t0 + ECE_TIMEOUT);
    assert_eq!(c.stats().snd_ece, 0);

    let mut p = MbEcn::prototype(t0);
    p.on_update(100);
    burst(&mut p, 32, t0);
    assert_eq!(p.stats().snd_ece, 100);
    burst(&mut p, 1, t0);
    assert_eq!(
        p.stats().snd_ece,
        0,
        "the prototype forgets after 32 packets"
    );
}

#[test]
fn a_slot_with_more_than_64_packets_is_halved() {
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0);
    burst(&mut c, 100, t0);
    let _ = c.on_send(PKT, at(t0, SLOT)); // 101 packets: halve once
    let s = c.stats();
    assert_eq!(s.mul, CA_SLOT - 1);
    assert_eq!(
        s.wnd_limit,
        2 * CA_IWL / 2,
        "doubled by slow start, then halved"
    );
    assert_eq!(s.inc, CA_INC / 2);
}

#[test]
fn a_slot_with_fewer_than_8_packets_is_doubled() {
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0);
    let _ = c.on_send(PKT, t0);
    let _ = c.on_send(PKT, at(t0, SLOT)); // 2 packets: 2 -> 4 -> 8, doubled twice
    let s = c.stats();
    assert_eq!(s.mul, CA_SLOT + 2);
    assert_eq!(s.wnd_limit, CA_IWL << 2);
    assert_eq!(s.inc, CA_INC << 2);
    // Slot 1 >> 2 = 0 has its low bits clear: the prototype carries the counters on.
    assert_eq!(s.wnd_pkts, 2);
}

#[test]
fn an_almost_idle_flow_stops_enlarging_its_slot_at_max_mul() {
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0);
    for i in 0..40u32 {
        let now = t0 + Duration::from_secs(10) * i;
        if let Some(t) = c.on_send(PKT, now) {
            assert!(t <= now + MAX_WAIT);
        }
    }
    assert_eq!(c.stats().mul, MAX_MUL);
    // A burst in a 1.07 s slot: held at most MAX_WAIT.
    let now = t0 + Duration::from_secs(400);
    for _ in 0..10_000 {
        if let Some(t) = c.on_send(PKT, now) {
            assert!(t <= now + MAX_WAIT);
        }
    }
}

#[test]
fn a_time_before_the_epoch_counts_as_the_epoch() {
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0 + Duration::from_secs(1));
    assert_eq!(c.on_send(PKT, t0), None);
}

#[test]
fn the_receiver_echoes_start_every_8_marked_packets_and_end() {
    let t0 = Instant::now();
    let mut r = MbEcn::new(t0);
    assert_eq!(r.on_receive(0, PKT), None, "no congestion, nothing to say");
    assert_eq!(r.on_receive(2, PKT), Some(2), "start of congestion");
    let sent: Vec<u32> = (1..=20)
        .filter(|_| r.on_receive(2, PKT).is_some())
        .collect();
    assert_eq!(sent, [2, 10, 18]);
    assert_eq!(
        r.on_receive(0, PKT),
        Some(0),
        "end at the first unmarked packet"
    );
    assert_eq!(r.on_receive(0, PKT), None);
    assert_eq!(r.on_receive(5, PKT), Some(5), "a new start");
}

#[test]
fn the_receiver_level_is_a_moving_sum_over_32_packets() {
    let t0 = Instant::now();
    let mut r = MbEcn::new(t0);
    for _ in 0..1000 {
        let _ = r.on_receive(8, PKT);
    }
    // Steady when level / 32 = 8.
    assert!((256..288).contains(&r.stats().rcv_ece), "{:?}", r.stats());
    for _ in 0..1000 {
        let _ = r.on_receive(255, PKT);
    }
    assert!((8160..8192).contains(&r.stats().rcv_ece), "{:?}", r.stats());
}

#[test]
fn the_prototype_receiver_quarters_the_level_per_unmarked_packet() {
    let t0 = Instant::now();
    let mut r = MbEcn::prototype(t0);
    assert_eq!(r.on_receive(255, PKT), Some(255));
    // 255 -> 63 -> 15 -> 3 -> 0: the end is echoed at the fourth unmarked packet.
    assert_eq!(r.on_receive(0, PKT), None);
    assert_eq!(r.on_receive(0, PKT), None);
    assert_eq!(r.on_receive(0, PKT), None);
    assert_eq!(r.on_receive(0, PKT), Some(0));
}

#[test]
fn calc_ecn_marks_every_16_queued_packets_and_saturates() {
    assert_eq!(calc_ecn(0), 0);
    assert_eq!(calc_ecn(15), 0);
    assert_eq!(calc_ecn(16), 1);
    assert_eq!(calc_ecn(31), 1);
    assert_eq!(calc_ecn(32), 2);
    assert_eq!(calc_ecn(255 << ECN_Q_SHFT), 255);
    assert_eq!(calc_ecn(4096), 255, "the prototype's cast would give 0");
    assert_eq!(calc_ecn(usize::MAX), 255);
    assert_eq!(Policy::MbEcn.calc_ecn(32), 2);
}

#[test]
fn policy_none_is_transparent() {
    let t0 = Instant::now();
    let mut ctx = Policy::None.new_ctx(t0);
    for i in 0..10_000 {
        assert_eq!(ctx.on_send(PKT, t0), None, "packet {i}");
    }
    ctx.on_update(u16::MAX);
    assert_eq!(ctx.on_send(PKT, t0), None);
    assert_eq!(ctx.on_receive(255, PKT), None);
    assert_eq!(ctx.on_receive(0, PKT), None);
    assert_eq!(ctx.stats(), None);
    assert_eq!(Policy::None.calc_ecn(100_000), 0);
}

#[test]
fn policy_mb_ecn_makes_a_multi_bit_ecn_context() {
    let t0 = Instant::now();
    let mut ctx = Policy::MbEcn.new_ctx(t0);
    assert_eq!(ctx.on_send(PKT, t0), None);
    assert!(ctx.on_send(PKT, t0).is_some());
    assert_eq!(ctx.on_receive(3, PKT), Some(3));
    ctx.on_update(7);
    let s = ctx.stats().expect("multi-bit ECN has statistics");
    assert_eq!((s.cav, s.snd_ece, s.rcv_ece), (true, 7, 3));
    assert_eq!(Policy::default(), Policy::MbEcn);
}

#[test]
fn stats_read_as_a_rate() {
    let t0 = Instant::now();
    let ctx = MbEcn::new(t0);
    // 64 KiB per 2^24 ns: 31.2 Mb/s, in slow start.
    let line = ctx.stats().to_string();
    assert_eq!(
        line,
        "window 65536 B per 16.8ms (31.2 Mb/s), echo heard 0 sent 0, slow start"
    );
}

#[test]
fn a_fast_flow_keeps_slots_of_a_millisecond() {
    // A flow sending 1500-byte packets every microsecond (12 Gb/s) would halve its slots down
    // to 64 packets (~64 µs) under the prototype's rule; here they stop at 2^MIN_MUL ns.
    let t0 = Instant::now();
    let mut c = MbEcn::new(t0);
    let mut t = t0;
    for _ in 0..200_000 {
        c.on_send(1500, t);
        t += Duration::from_micros(1);
    }
    assert_eq!(c.stats().mul, MIN_MUL);
    let mut p = MbEcn::prototype(t0);
    let mut t = t0;
    for _ in 0..200_000 {
        p.on_send(1500, t);
        t += Duration::from_micros(1);
    }
    assert!(p.stats().mul < MIN_MUL, "{:?}", p.stats());
}
