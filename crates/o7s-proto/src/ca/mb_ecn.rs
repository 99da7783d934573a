//! Multi-bit ECN (`ca/mb-ecn.c`): one [`MbEcn`] per flow at the flow allocator, holding the
//! sender's window and the receiver's smoothed congestion level.
//!
//! **Sender.** Time is cut into slots of 2^`mul` ns (2^24 ns ≈ 16.8 ms at first). In each slot
//! the flow may send the window byte limit ([`CaStats::wnd_limit`]); the packet that goes over
//! it waits for the next slot. At every slot change the limit is updated:
//! - slow start, until the first FLOW_UPDATE: doubled when the last slot used it all;
//! - congestion avoidance with echo level `ece` > 0: cut by `limit · ece / 2^13`;
//! - congestion avoidance with `ece` = 0: the bytes sent in the last slot plus an additive
//!   step (64 KiB per 16.8 ms slot at first);
//!
//! then the slot is rescaled so that it carries between [`MIN_PKTS_PER_SLOT`] and
//! [`MAX_PKTS_PER_SLOT`] packets: doubling or halving the slot doubles or halves the limit and
//! the step, so the rate and its step per slot stay the same.
//!
//! **Receiver.** The ECN byte of each packet feeds a moving sum over about [`CA_WND`] packets
//! (`ece ← ece − ece/32 + ecn`). A FLOW_UPDATE goes back when congestion starts, every
//! [`CA_UPD`] marked packets while it lasts, and once, with 0, when it ends.
//!
//! **o7s deviations**, each found necessary in the simulation of `ca/sim.rs` (flows sharing
//! one bottleneck; the test `regimes` in `ca/sim_tests.rs` prints the prototype beside o7s):
//! 1. *Pacing.* The window is spread over its slot (the packet that completes a fraction of the
//!    window waits for that fraction of the slot) instead of leaving in one burst at the slot's
//!    start. The burst alone fills the forwarder's queue past the first mark (16 packets), so
//!    in the prototype every slot is marked and windows never grow past the size whose burst
//!    starts the marking: 37–48 % utilisation for two flows at 100 Mb/s, 4–24 % from 200 Mb/s
//!    up (o7s: 94–99 % with round trips up to 1 ms).
//! 2. *End of congestion at the first unmarked packet.* The prototype quarters the receiver's
//!    level per unmarked packet and reports the end only when it reaches 0, which takes about
//!    five unmarked packets in a row. A slow flow rarely has that many in the short dips of a
//!    shared queue, never hears that congestion ended, and starves: with pacing alone, four
//!    flows at 100 Mb/s that start 1–7 ms apart reach a Jain index of only 0.54–0.75.
//! 3. *Forgetting the echo takes time too.* The prototype's sender forgets the echo level
//!    after [`CA_WND`] packets without a FLOW_UPDATE. A sender much faster than its share of
//!    the bottleneck sends that many before its receiver has seen 8 marked packets, forgets,
//!    and keeps increasing: at 20 Mb/s the queue grew to 330 000 packets (2 100 with this
//!    rule). Here it also takes [`ECE_TIMEOUT`] without a FLOW_UPDATE, which only matters
//!    when the end-of-congestion update was lost.
//! 4. *Slots of a millisecond or more* ([`MIN_MUL`]; found on a veth, where the pacing is done
//!    by a real IPCP that cannot hold a packet for less than about 100 µs, not in the
//!    simulation, whose pacing is exact).
//!
//! The constants and every other rule are the prototype's; where its arithmetic can overflow
//! or wrap, this saturates and says so.

use std::time::{Duration, Instant};

/// Shift of the receiver's moving sum: it averages over 2^5 = 32 packets (`CA_SHFT`).
pub const CA_SHFT: u32 = 5;
/// Packets in the receiver's moving sum; also the packets after which a sender that heard no
/// FLOW_UPDATE forgets the echo level (`CA_WND`).
pub const CA_WND: u64 = 1 << CA_SHFT;
/// While congested, the receiver sends a FLOW_UPDATE every this many packets (`CA_UPD`).
pub const CA_UPD: u64 = 1 << (CA_SHFT - 2);
/// Initial slot shift: slots of 2^24 ns ≈ 16.8 ms (`CA_SLOT`).
pub const CA_SLOT: u32 = 24;
/// Initial additive increase per slot, bytes (`CA_INC`): 64 KiB per 16.8 ms ≈ 31 Mb/s more
/// per slot.
pub const CA_INC: u64 = 1 << 16;
/// Initial window byte limit per slot (`CA_IWL`): 64 KiB per 16.8 ms ≈ 31 Mb/s.
pub const CA_IWL: u64 = 1 << 16;
/// A slot that carried fewer packets is doubled until it would carry this many (`CA_MINPS`).
pub const MIN_PKTS_PER_SLOT: u64 = 8;
/// A slot that carried more packets is halved until it would carry this many (`CA_MAXPS`).
pub const MAX_PKTS_PER_SLOT: u64 = 64;
/// Shift from the echo level to the fraction of the window a slot gives up (`CA_SHFT + 8`):
/// the largest steady level, 32 · 255, takes off almost all of it.
pub const MD_SHFT: u32 = CA_SHFT + 8;
/// The longest a packet is held (the prototype's `mb_ecn_wnd_wait` never sleeps longer).
pub const MAX_WAIT: Duration = Duration::from_secs(1);
/// Largest slot shift: 2^30 ns ≈ 1.07 s. o7s: the prototype lets the slot of a flow that
/// sends little grow without bound (an almost idle flow soon has slots of hours, during which
/// it ignores congestion, and past 2^63 ns the shift overflows); a slot longer than
/// [`MAX_WAIT`] gains nothing.
pub const MAX_MUL: u32 = 30;
/// Smallest slot shift: 2^20 ns ≈ 1.05 ms (o7s deviation 4). The IPCP that paces the packets
/// holds a flow for 100 µs or more only (a shorter hold costs a wake-up per packet and lets
/// the packet go at once instead), so the window of a slot much shorter than that leaves
/// unpaced, and since a slot's limit follows what it carried, the window then runs away: on a
/// veth the prototype's rule shrank slots to 16 µs and the sender's rate swung between 2 Mb/s
/// and 12 Gb/s, its forwarder dropping half of what it sent. A fast flow carries more than
/// [`MAX_PKTS_PER_SLOT`] packets per slot instead, paced over the slot.
pub const MIN_MUL: u32 = 20;
/// A sender forgets the echo level only after [`CA_WND`] packets *and* this long without a
/// FLOW_UPDATE (o7s deviation 3; the prototype counts packets only).
pub const ECE_TIMEOUT: Duration = Duration::from_secs(1);

/// A snapshot of one flow's congestion avoidance state (the prototype's `print_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaStats {
    /// Congestion avoidance has started (a FLOW_UPDATE arrived); `false` in slow start.
    pub cav: bool,
    /// Window byte limit: the bytes the sender may send in the current slot.
    pub wnd_limit: u64,
    /// Bytes counted in the current window.
    pub wnd_bytes: u64,
    /// Packets counted in the current window.
    pub wnd_pkts: u64,
    /// Additive increase per slot, bytes.
    pub inc: u64,
    /// The slot size multiplier: a slot lasts 2^`mul` ns.
    pub mul: u32,
    /// The slot length, 2^`mul` ns.
    pub slot: Duration,
    /// Congestion level last echoed by the peer: what this side's sending obeys.
    pub snd_ece: u16,
    /// Packets sent since the last FLOW_UPDATE arrived.
    pub snd_pkts: u64,
    /// Smoothed congestion level of the packets arriving here: what this side echoes.
    pub rcv_ece: u16,
    /// Marked packets received since congestion started.
    pub rcv_pkts: u64,
}

/// One line for `irm ipcp show`: the sender's window as a rate, the echo levels and the
/// phase, e.g. `window 98304 B per 8.4ms (93.8 Mb/s), echo heard 0 sent 0, avoidance`.
impl std::fmt::Display for CaStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.slot.as_secs_f64();
        let bps = if secs > 0.0 {
            self.wnd_limit as f64 * 8.0 / secs
        } else {
            0.0
        };
        let (rate, unit) = if bps >= 1e9 {
            (bps / 1e9, "Gb/s")
        } else if bps >= 1e6 {
            (bps / 1e6, "Mb/s")
        } else {
            (bps / 1e3, "kb/s")
        };
        write!(
            f,
            "window {} B per {:.1?} ({rate:.1} {unit}), echo heard {} sent {}, {}",
            self.wnd_limit,
            self.slot,
            self.snd_ece,
            self.rcv_ece,
            if self.cav { "avoidance" } else { "slow start" }
        )
    }
}

/// Multi-bit ECN state of one flow, both directions: the sender's window (driven by
/// [`on_send`](Self::on_send) and [`on_update`](Self::on_update)) and the receiver's echo
/// level (driven by [`on_receive`](Self::on_receive)). Sans-IO: time comes in as `now`.
///
/// ```
/// use o7s_proto::ca::MbEcn;
/// use std::time::Instant;
///
/// let t0 = Instant::now();
/// let mut snd = MbEcn::new(t0);
/// let mut rcv = MbEcn::new(t0);
/// assert_eq!(snd.on_send(1500, t0), None); // the first packet of a window goes at once
/// let next = snd.on_send(1500, t0).expect("the window is paced over its slot");
/// assert!(next > t0);
/// // A marked packet at the receiver starts congestion: echo it at once.
/// let ece = rcv.on_receive(3, 1500).expect("the start of congestion is echoed");
/// snd.on_update(ece); // the sender leaves slow start
/// assert!(snd.stats().cav);
/// ```
#[derive(Debug, Clone)]
pub struct MbEcn {
    /// Time 0 of the slot clock.
    epoch: Instant,
    rcv_ece: u16,
    rcv_ctr: u64,
    snd_ece: u16,
    snd_ctr: u64,
    wnd_bytes: u64,
    wnd_pkts: u64,
    wnd_limit: u64,
    cav: bool,
    mul: u32,
    inc: u64,
    /// Number of the current slot, in units of 2^`mul` ns since `epoch`.
    slot: u64,
    /// When (ns since `epoch`) the counters of the current window were reset.
    wnd_start: u64,
    /// A FLOW_UPDATE arrived since the last `on_send`, which stamps `upd_ns`.
    upd_pending: bool,
    /// When (ns since `epoch`, to the next `on_send`) the last FLOW_UPDATE arrived.
    upd_ns: u64,
    /// Behave exactly as the prototype (no o7s deviation), for the simulation's comparison.
    proto: bool,
}

/// `x << n`, saturating at `u64::MAX` instead of losing the high bits.
fn shl_sat(x: u64, n: u32) -> u64 {
    if x == 0 {
        0
    } else if n >= x.leading_zeros() {
        u64::MAX
    } else {
        x << n
    }
}

/// `new` comes after `old` on the wrapping slot counter (the prototype's `_slot_after`).
fn slot_after(new: u64, old: u64) -> bool {
    (old.wrapping_sub(new) as i64) < 0
}

fn ns_of(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl MbEcn {
    /// A fresh context: slow start, a 64 KiB window in 16.8 ms slots, no congestion either way.
    /// Slots count from `now`.
    pub fn new(now: Instant) -> Self {
        MbEcn {
            epoch: now,
            rcv_ece: 0,
            rcv_ctr: 0,
            snd_ece: 0,
            snd_ctr: 0,
            wnd_bytes: 0,
            wnd_pkts: 0,
            wnd_limit: CA_IWL,
            cav: false,
            mul: CA_SLOT,
            inc: CA_INC,
            slot: 0,
            wnd_start: 0,
            upd_pending: false,
            upd_ns: 0,
            proto: false,
        }
    }

    /// The prototype's algorithm without the o7s deviations (still saturating), to measure
    /// them in the simulation.
    #[cfg(test)]
    pub(super) fn prototype(now: Instant) -> Self {
        MbEcn {
            proto: true,
            ..Self::new(now)
        }
    }

    /// Nanoseconds since the epoch (0 for an earlier `now`; saturating after 584 years).
    fn ns(&self, now: Instant) -> u64 {
        ns_of(now.saturating_duration_since(self.epoch))
    }

    /// Sender: a packet of `len` bytes is about to be sent on this flow. Returns when it may
    /// go: `None` now, `Some(t)` not before `t` (at most [`MAX_WAIT`] after `now`). The packet
    /// is counted either way: the caller holds it, and the flow's later packets, until `t`
    /// instead of sleeping, then sends it without asking again. Sending later than `t` is
    /// harmless: the pacing schedule is anchored to the window's start, not to the last send.
    pub fn on_send(&mut self, len: usize, now: Instant) -> Option<Instant> {
        let ns = self.ns(now);
        let slot = ns >> self.mul;

        self.snd_ctr = self.snd_ctr.saturating_add(1);
        self.wnd_pkts = self.wnd_pkts.saturating_add(1);
        self.wnd_bytes = self.wnd_bytes.saturating_add(len as u64);

        if self.upd_pending {
            self.upd_pending = false;
            self.upd_ns = ns;
        }
        let quiet = self.proto || ns.saturating_sub(self.upd_ns) >= ns_of(ECE_TIMEOUT);
        if self.snd_ctr > CA_WND && quiet {
            self.snd_ece = 0;
        }

        if slot_after(slot, self.slot) {
            self.next_slot(slot);
        }

        let end = shl_sat(self.slot.saturating_add(1), self.mul);
        let go = if self.wnd_bytes > self.wnd_limit {
            end
        } else if self.proto {
            return None;
        } else {
            // o7s deviation 1: the bytes before this packet take their share of the window.
            let before = u128::from(self.wnd_bytes.saturating_sub(len as u64));
            let span = u128::from(end.saturating_sub(self.wnd_start));
            let off = span * before / u128::from(self.wnd_limit.max(1));
            self.wnd_start
                .saturating_add(u64::try_from(off).unwrap_or(u64::MAX))
        };
        let wait = Duration::from_nanos(go.saturating_sub(ns)).min(MAX_WAIT);
        (!wait.is_zero()).then(|| now + wait)
    }

    /// The slot clock moved on to `slot`: update the limit for the new slot and rescale it.
    fn next_slot(&mut self, slot: u64) {
        self.slot = slot;

        if !self.cav {
            if self.wnd_bytes > self.wnd_limit {
                self.wnd_limit = shl_sat(self.wnd_limit, 1);
            }
        } else if self.snd_ece > 0 {
            // limit · ece fits in u128. An echo level above 2^13 (only a misbehaving peer
            // sends one) would take off more than the whole limit, where the prototype's
            // subtraction wraps: it saturates at 0.
            let cut = (u128::from(self.wnd_limit) * u128::from(self.snd_ece)) >> MD_SHFT;
            let cut = u64::try_from(cut).unwrap_or(u64::MAX);
            self.wnd_limit = self.wnd_limit.saturating_sub(cut);
        } else {
            self.wnd_limit = self.wnd_bytes.saturating_add(self.inc);
        }

        let mut carry = false;
        if self.wnd_pkts < MIN_PKTS_PER_SLOT {
            // Double the slot until it would have carried MIN_PKTS_PER_SLOT, up to MAX_MUL.
            let mut pkts = self.wnd_pkts.max(1);
            let mut fact = 0;
            while pkts < MIN_PKTS_PER_SLOT {
                pkts <<= 1;
                fact += 1;
            }
            let fact = fact.min(MAX_MUL.saturating_sub(self.mul));
            if fact > 0 {
                self.mul += fact;
                self.slot >>= fact;
                // The prototype's rule, kept as is: when the enlarged slot number has its low
                // `fact` bits clear, the counters carry on and the window ends one (enlarged)
                // slot later.
                if self.slot & ((1 << fact) - 1) == 0 {
                    carry = true;
                    self.slot += 1;
                }
                self.wnd_limit = shl_sat(self.wnd_limit, fact);
                self.inc = shl_sat(self.inc, fact);
            }
        } else if self.wnd_pkts > MAX_PKTS_PER_SLOT {
            // Halve the slot until it would have carried MAX_PKTS_PER_SLOT; the shift stops
            // at MIN_MUL (the prototype's at 0, 1 ns slots, where it would wrap).
            let mut pkts = self.wnd_pkts;
            let mut fact = 0;
            while pkts > MAX_PKTS_PER_SLOT {
                pkts >>= 1;
                fact += 1;
            }
            let floor = if self.proto { 0 } else { MIN_MUL };
            let fact = fact.min(self.mul.saturating_sub(floor));
            self.mul -= fact;
            self.slot <<= fact;
            self.wnd_limit >>= fact;
            self.inc >>= fact;
        }

        if !carry {
            self.wnd_bytes = 0;
            self.wnd_pkts = 0;
            self.wnd_start = shl_sat(self.slot, self.mul);
        }
    }

    /// Receiver: a packet of `len` bytes arrived on this flow with ECN byte `ecn`. Returns
    /// `Some(ece)` when a FLOW_UPDATE carrying `ece` must go to the sender: when congestion
    /// starts, every [`CA_UPD`] marked packets while it lasts, and once, with 0, at the first
    /// unmarked packet after it (o7s deviation 2).
    pub fn on_receive(&mut self, ecn: u8, len: usize) -> Option<u16> {
        let _ = len; // the prototype does not weigh packets by size
        if self.rcv_ece == 0 && ecn == 0 {
            return None;
        }
        if ecn == 0 {
            if self.proto {
                self.rcv_ece >>= 2;
            } else {
                self.rcv_ece = 0;
            }
            return (self.rcv_ece == 0).then_some(0);
        }
        if self.rcv_ece == 0 {
            self.rcv_ece = u16::from(ecn);
            self.rcv_ctr = 0;
            return Some(self.rcv_ece);
        }
        // The sum settles near 32 · ecn ≤ 8160, far from u16::MAX; saturate all the same.
        self.rcv_ece = (self.rcv_ece - (self.rcv_ece >> CA_SHFT)).saturating_add(u16::from(ecn));
        // The prototype compares the counter's low bits with `true`, i.e. 1: updates go out on
        // the 2nd, 10th, 18th, ... marked packet after the one that started congestion.
        let send = self.rcv_ctr & (CA_UPD - 1) == 1;
        self.rcv_ctr = self.rcv_ctr.wrapping_add(1);
        send.then_some(self.rcv_ece)
    }

    /// Sender: a FLOW_UPDATE with echo level `ece` arrived for this flow. Ends slow start.
    pub fn on_update(&mut self, ece: u16) {
        self.snd_ece = ece;
        self.snd_ctr = 0;
        self.upd_pending = true;
        self.cav = true;
    }

    /// A snapshot of the state, for statistics and tests.
    pub fn stats(&self) -> CaStats {
        CaStats {
            cav: self.cav,
            wnd_limit: self.wnd_limit,
            wnd_bytes: self.wnd_bytes,
            wnd_pkts: self.wnd_pkts,
            inc: self.inc,
            mul: self.mul,
            slot: Duration::from_nanos(1 << self.mul),
            snd_ece: self.snd_ece,
            snd_pkts: self.snd_ctr,
            rcv_ece: self.rcv_ece,
            rcv_pkts: self.rcv_ctr,
        }
    }
}
