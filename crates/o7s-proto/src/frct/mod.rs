//! FRCT, the end-to-end flow and retransmission control of an Ouroboros flow, as a sans-IO
//! state machine ([`Frcti`], one per flow endpoint).
//!
//! The caller feeds it application payloads ([`Frcti::send`]), packets from the peer
//! ([`Frcti::handle_packet`]) and the time (`now` on every call, [`Frcti::handle_timeout`] when
//! [`Frcti::poll_timeout`] is reached); it polls packets to put on the wire
//! ([`Frcti::poll_transmit`]: new data, retransmissions, pure acks, window updates and
//! rendez-vous) and payloads to hand to the application ([`Frcti::recv`]). This room may not
//! touch sockets, clocks, threads, random number generators or the flow tables: the initial
//! sequence number and every timer constant come in through [`FrctConfig`].
//!
//! Semantics follow the prototype (`src/lib/frct.c`): 32-bit sequence numbers, cumulative
//! acks naming the next sequence number expected, a right window edge of which 24 bits travel,
//! a data-run flag (DRF) that starts a new run at a receiver that has been inactive, and a
//! rendez-vous (RDVS) every 100 ms, for at most 1 s, while the sender's window is closed.
//!
//! Where this differs from the prototype (the bytes on the wire are the same):
//! - The initial sequence number is the caller's ([`FrctConfig::initial_seqno`]), and a sender
//!   that was inactive keeps counting instead of drawing a new random number; it still sets
//!   DRF whenever nothing is unacknowledged, so an inactive receiver starts a new run.
//! - The cumulative ack names the next sequence number *received* in order, not the next one
//!   *read* by the application; the window edge (read point + reorder queue size) does the
//!   flow control. A window update goes out once the edge has moved by half the queue.
//! - RTT samples follow Karn: an ack yields a sample only when every packet it covers went
//!   out exactly once (the prototype times one probe packet at a time). The back-off is
//!   undone when an ack shows progress; the RTO is bounded by `rto_min` and `rto_max`.
//! - Three duplicate pure acks trigger a fast retransmission of the oldest packet.
//! - Unreliable in-order flows hold out-of-order packets for up to `max_gap`, then skip the
//!   gap; the prototype delivers them as they come. Reliable flows always deliver in order.
//! - Fragmentation (FFGM / MFGM) is not done here; the flags are parsed and ignored.
//! - Delta-t's timers are approximated: `r` bounds the time a packet stays unacknowledged
//!   (the flow then fails), and `2·mpl + a + r` of silence ends a receiver's run.

mod rtt;
mod seq;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::wire::frct::{FrctFlags, FrctPacket, FrctRepr, HEADER_LEN, RWE_MASK};
use crate::wire::WireError;
use rtt::RttEstimator;
use seq::{after, before, dist};

/// Rendez-vous interval while the window is closed (prototype `DELT_RDV`).
pub const RDV_INTERVAL: Duration = Duration::from_millis(100);
/// Give up on a closed window after this long (prototype `MAX_RDV`).
pub const MAX_RDV: Duration = Duration::from_secs(1);

/// Duplicate pure acks that trigger a fast retransmission of the oldest packet.
pub const DUP_ACK_THRESHOLD: u32 = 3;

/// Longest single timer an endpoint arms (one day).
pub const MAX_TIMER: Duration = Duration::from_secs(86_400);

/// Per-flow FRCT parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrctConfig {
    /// Loss-free delivery: retransmit until acknowledged (the QoS asks for `loss == 0`).
    pub reliable: bool,
    /// Deliver in sequence order. Reliable flows always deliver in order.
    pub in_order: bool,
    /// Unreliable in-order flows wait this long for a missing packet before skipping it.
    pub max_gap: Duration,
    /// First sequence number this endpoint sends (the caller picks it at random).
    pub initial_seqno: u32,
    /// Send window before the peer's first window update (prototype `START_WINDOW`, 64).
    pub start_window: u32,
    /// Reorder queue size; the receive window this endpoint announces (prototype `RQ_SIZE`).
    pub rq_size: u32,
    /// RTO before the first RTT sample (prototype: 1 s).
    pub initial_rto: Duration,
    /// Lower bound of the RTO (prototype `RTO_MIN`, 250 µs).
    pub rto_min: Duration,
    /// Upper bound of the RTO after back-off.
    pub rto_max: Duration,
    /// Delay before a pure ack for in-order data (acks for duplicates and gaps go at once).
    pub ack_delay: Duration,
    /// Delta-t maximum packet lifetime.
    pub mpl: Duration,
    /// Delta-t maximum time to acknowledge.
    pub a: Duration,
    /// Delta-t maximum time to retransmit: a packet unacknowledged this long fails the flow.
    pub r: Duration,
    /// Rendez-vous interval while the send window is closed.
    pub rdv_interval: Duration,
    /// Give up on a closed window after this long.
    pub max_rdv: Duration,
}

impl Default for FrctConfig {
    fn default() -> Self {
        FrctConfig {
            reliable: true,
            in_order: true,
            max_gap: Duration::MAX,
            initial_seqno: 0,
            start_window: 64,
            rq_size: 256,
            initial_rto: Duration::from_secs(1),
            rto_min: Duration::from_micros(250),
            rto_max: Duration::from_secs(60),
            ack_delay: Duration::from_millis(1),
            mpl: Duration::from_secs(60),
            a: Duration::from_secs(10),
            r: Duration::from_secs(120),
            rdv_interval: RDV_INTERVAL,
            max_rdv: MAX_RDV,
        }
    }
}

/// Why FRCT refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrctError {
    /// The peer's receive window is full; try again after a window update.
    #[error("flow control window closed")]
    WindowClosed,
    /// The window stayed closed, rendez-vous unanswered, for longer than `max_rdv`.
    #[error("peer did not open the window")]
    PeerUnresponsive,
    /// A packet stayed unacknowledged for longer than `r`; the flow is dead.
    #[error("retransmission time exceeded")]
    RetransmitTimeout,
    /// FRCT carries no empty payloads.
    #[error("empty payload")]
    EmptyPayload,
    /// A packet from the peer did not decode.
    #[error("malformed packet: {0}")]
    Malformed(#[from] WireError),
}

/// Statistics of one endpoint (the prototype's `PROC_FLOW_STATS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrctCounters {
    pub retransmissions: u64,
    /// Retransmissions triggered by duplicate acks rather than by the RTO (included above).
    pub fast_retransmissions: u64,
    pub rtt_estimates: u64,
    pub duplicates: u64,
    pub rendezvous_sent: u64,
    pub out_of_window: u64,
    /// Sequence numbers given up on by an unreliable in-order receiver.
    pub skipped: u64,
    /// Smoothed RTT (zero before the first sample).
    pub srtt: Duration,
    /// RTT mean deviation.
    pub mdev: Duration,
    /// Current retransmission timeout.
    pub rto: Duration,
}

#[derive(Debug)]
struct Segment {
    seqno: u32,
    flags: FrctFlags,
    payload: Vec<u8>,
    first_tx: Option<Instant>,
    rtx_at: Option<Instant>,
    tx_count: u32,
}

#[derive(Debug)]
enum Slot {
    Empty,
    Full(Instant, Vec<u8>),
    Skipped,
}

/// One endpoint of FRCT on a flow.
#[derive(Debug)]
pub struct Frcti {
    cfg: FrctConfig,
    // Sender.
    snd_lwe: u32,
    snd_next: u32,
    snd_rwe: u32,
    snd_buf: VecDeque<Segment>,
    /// Leading segments of `snd_buf` transmitted at least once.
    snd_sent: usize,
    snd_act: Option<Instant>,
    rtt: RttEstimator,
    window_closed_at: Option<Instant>,
    last_rdv: Option<Instant>,
    failed: Option<FrctError>,
    dup_acks: u32,
    fast_rtx: bool,
    // Receiver.
    rcv_act: Option<Instant>,
    /// Next sequence number for the application.
    rcv_read: u32,
    /// Next sequence number not received (or skipped) contiguously: the cumulative ack.
    rcv_nxt: u32,
    rq: VecDeque<Slot>,
    unordered: VecDeque<Vec<u8>>,
    ack_due: Option<Instant>,
    fc_due: bool,
    last_ack_sent: u32,
    last_rwe_sent: u32,
    counters: FrctCounters,
}

impl Frcti {
    /// A new endpoint. Timer settings above [`MAX_TIMER`] are lowered to it, so that no
    /// deadline overflows an `Instant`.
    pub fn new(mut cfg: FrctConfig, now: Instant) -> Self {
        let _ = now;
        for d in [
            &mut cfg.initial_rto,
            &mut cfg.rto_min,
            &mut cfg.rto_max,
            &mut cfg.ack_delay,
            &mut cfg.rdv_interval,
        ] {
            *d = (*d).min(MAX_TIMER);
        }
        cfg.rq_size = cfg.rq_size.clamp(1, RWE_MASK >> 1);
        cfg.start_window = cfg.start_window.min(RWE_MASK >> 1);
        let isn = cfg.initial_seqno;
        let rtt = RttEstimator::new(cfg.initial_rto, cfg.rto_min, cfg.rto_max);
        Frcti {
            snd_lwe: isn,
            snd_next: isn,
            snd_rwe: isn.wrapping_add(cfg.start_window),
            snd_buf: VecDeque::new(),
            snd_sent: 0,
            snd_act: None,
            rtt,
            window_closed_at: None,
            last_rdv: None,
            failed: None,
            dup_acks: 0,
            fast_rtx: false,
            rcv_act: None,
            rcv_read: 0,
            rcv_nxt: 0,
            rq: VecDeque::new(),
            unordered: VecDeque::new(),
            ack_due: None,
            fc_due: false,
            last_ack_sent: 0,
            last_rwe_sent: 0,
            counters: FrctCounters::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &FrctConfig {
        &self.cfg
    }

    /// Statistics, with the current RTT estimate.
    pub fn counters(&self) -> FrctCounters {
        FrctCounters {
            srtt: self.rtt.srtt(),
            mdev: self.rtt.mdev(),
            rto: self.rtt.rto(),
            ..self.counters
        }
    }

    /// Why the flow failed, if it did.
    pub fn failure(&self) -> Option<FrctError> {
        self.failed
    }

    /// Whether [`Self::send`] would accept a packet now.
    pub fn is_window_open(&self) -> bool {
        before(self.snd_next, self.snd_rwe)
    }

    /// Packets held: (send buffer: unsent and unacknowledged, reorder queue + undelivered).
    pub fn queued(&self) -> (usize, usize) {
        (self.snd_buf.len(), self.rq.len() + self.unordered.len())
    }

    /// Whether everything sent has been acknowledged (reliable) or transmitted (unreliable).
    pub fn is_idle(&self) -> bool {
        self.snd_buf.is_empty()
    }

    fn rcv_synced(&self, now: Instant) -> bool {
        match self.rcv_act {
            Some(t) => now.saturating_duration_since(t) <= self.rcv_inact(),
            None => false,
        }
    }

    fn rcv_inact(&self) -> Duration {
        self.cfg
            .mpl
            .saturating_mul(2)
            .saturating_add(self.cfg.a)
            .saturating_add(self.cfg.r)
    }

    fn rcv_rwe(&self) -> u32 {
        self.rcv_read.wrapping_add(self.cfg.rq_size)
    }

    /// Queue `payload` for transmission under the next sequence number.
    pub fn send(&mut self, payload: &[u8], now: Instant) -> Result<(), FrctError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if payload.is_empty() {
            return Err(FrctError::EmptyPayload);
        }
        if !self.is_window_open() {
            match self.window_closed_at {
                None => {
                    self.window_closed_at = Some(now);
                    self.last_rdv = Some(now);
                }
                Some(t) if now.saturating_duration_since(t) > self.cfg.max_rdv => {
                    return Err(FrctError::PeerUnresponsive);
                }
                Some(_) => {}
            }
            return Err(FrctError::WindowClosed);
        }
        let mut flags = FrctFlags::DATA;
        if self.snd_next == self.snd_lwe {
            flags |= FrctFlags::DRF;
        }
        self.snd_buf.push_back(Segment {
            seqno: self.snd_next,
            flags,
            payload: payload.to_vec(),
            first_tx: None,
            rtx_at: None,
            tx_count: 0,
        });
        self.snd_next = self.snd_next.wrapping_add(1);
        if !self.cfg.reliable {
            self.snd_lwe = self.snd_next;
        }
        self.snd_act = Some(now);
        Ok(())
    }

    fn header(&mut self, mut flags: FrctFlags, seqno: u32, now: Instant) -> FrctRepr {
        let mut repr = FrctRepr {
            flags,
            rwe: 0,
            seqno,
            ackno: 0,
        };
        if self.rcv_synced(now) {
            flags |= FrctFlags::FC;
            repr.rwe = self.rcv_rwe() & RWE_MASK;
            self.last_rwe_sent = self.rcv_rwe();
            self.fc_due = false;
            if self.cfg.reliable {
                flags |= FrctFlags::ACK;
                repr.ackno = self.rcv_nxt;
                self.last_ack_sent = self.rcv_nxt;
                self.ack_due = None;
            }
        }
        repr.flags = flags;
        repr
    }

    fn encode(repr: &FrctRepr, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN + payload.len()];
        // Cannot fail: the buffer holds the header and rwe is masked to 24 bits.
        let _ = repr.emit(&mut out);
        out[HEADER_LEN..].copy_from_slice(payload);
        out
    }

    /// The next packet to put on the wire, if any is due at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.check_failure(now);
        if self.failed == Some(FrctError::RetransmitTimeout) {
            return None;
        }
        // Retransmissions first.
        if self.cfg.reliable {
            let fast = self.fast_rtx && self.snd_sent > 0;
            self.fast_rtx = false;
            let due = if fast {
                self.counters.fast_retransmissions += 1;
                Some(0)
            } else {
                self.snd_buf
                    .iter()
                    .take(self.snd_sent)
                    .position(|s| s.rtx_at.is_some_and(|t| t <= now))
            };
            if let Some(i) = due {
                if i == 0 && !fast {
                    // Timeout of the oldest packet: back off (RFC 6298 5.5). Each packet keeps
                    // its own timer, as in the prototype's retransmission wheel.
                    self.rtt.back_off();
                }
                let rto = self.rtt.rto();
                let seg = &mut self.snd_buf[i];
                seg.rtx_at = Some(now + rto);
                seg.tx_count += 1;
                let (flags, seqno) = (seg.flags, seg.seqno);
                self.counters.retransmissions += 1;
                let repr = self.header(flags, seqno, now);
                return Some(Self::encode(&repr, &self.snd_buf[i].payload));
            }
        }
        // New data.
        if self.snd_sent < self.snd_buf.len() {
            let i = self.snd_sent;
            let (flags, seqno) = (self.snd_buf[i].flags, self.snd_buf[i].seqno);
            let repr = self.header(flags, seqno, now);
            if self.cfg.reliable {
                let rto = self.rtt.rto();
                let seg = &mut self.snd_buf[i];
                seg.first_tx = Some(now);
                seg.rtx_at = Some(now + rto);
                seg.tx_count = 1;
                self.snd_sent += 1;
                return Some(Self::encode(&repr, &self.snd_buf[i].payload));
            }
            let seg = self.snd_buf.pop_front()?;
            return Some(Self::encode(&repr, &seg.payload));
        }
        // Rendez-vous while the window is closed.
        if let (Some(closed), Some(last)) = (self.window_closed_at, self.last_rdv) {
            let within = now.saturating_duration_since(closed) <= self.cfg.max_rdv;
            if within && now >= last + self.cfg.rdv_interval {
                self.last_rdv = Some(now);
                self.counters.rendezvous_sent += 1;
                let repr = FrctRepr {
                    flags: FrctFlags::RDVS,
                    ..FrctRepr::default()
                };
                return Some(Self::encode(&repr, &[]));
            }
        }
        // Pure ack and/or window update.
        let ack_now = self.ack_due.is_some_and(|t| t <= now);
        if (ack_now || self.fc_due) && self.rcv_synced(now) {
            let repr = self.header(FrctFlags::empty(), 0, now);
            return Some(Self::encode(&repr, &[]));
        }
        if ack_now {
            self.ack_due = None;
        }
        None
    }

    fn check_failure(&mut self, now: Instant) {
        if self.failed.is_some() || !self.cfg.reliable {
            return;
        }
        if let Some(t) = self.snd_buf.front().and_then(|s| s.first_tx) {
            if now.saturating_duration_since(t) > self.cfg.r {
                self.failed = Some(FrctError::RetransmitTimeout);
            }
        }
    }

    /// Process one packet from the peer.
    pub fn handle_packet(&mut self, bytes: &[u8], now: Instant) -> Result<(), FrctError> {
        let pkt = FrctPacket::new_checked(bytes)?;
        let repr = FrctRepr::parse(&pkt)?;
        let payload = pkt.payload();
        let flags = repr.flags;

        if !self.rcv_synced(now) {
            if flags.contains(FrctFlags::DRF) && flags.contains(FrctFlags::DATA) {
                self.rcv_read = repr.seqno;
                self.rcv_nxt = repr.seqno;
                self.last_ack_sent = repr.seqno;
                self.last_rwe_sent = repr.seqno.wrapping_add(self.cfg.rq_size);
                self.rq.clear();
            } else if flags.contains(FrctFlags::DATA) {
                return Ok(()); // Not the start of a run: wait for it.
            }
        }
        if flags.contains(FrctFlags::DATA) {
            // Only data keeps a run alive: a stray ack must not revive a stale one.
            self.rcv_act = Some(now);
        }

        if flags.contains(FrctFlags::RDVS) {
            // Answer with a window update at once.
            if self.rcv_synced(now) {
                self.fc_due = true;
            }
            return Ok(());
        }
        if flags.contains(FrctFlags::ACK) {
            self.on_ack(repr.ackno, !flags.contains(FrctFlags::DATA), now);
        }
        if flags.contains(FrctFlags::FC) {
            self.on_window(repr.rwe);
        }
        if !flags.contains(FrctFlags::DATA) || payload.is_empty() {
            return Ok(());
        }
        self.on_data(repr.seqno, payload, now);
        Ok(())
    }

    fn on_ack(&mut self, ackno: u32, pure: bool, now: Instant) {
        if !self.cfg.reliable {
            return;
        }
        if ackno == self.snd_lwe && pure && self.snd_sent > 0 {
            // Duplicate ack: the peer holds packets behind a hole.
            self.dup_acks += 1;
            if self.dup_acks == DUP_ACK_THRESHOLD {
                self.fast_rtx = true;
            }
            return;
        }
        if !after(ackno, self.snd_lwe) || after(ackno, self.snd_next) {
            return;
        }
        self.dup_acks = 0;
        // Karn: sample only when every packet this ack covers went out exactly once, so the
        // ack answers the newest of them and no hole held it back.
        let mut once = true;
        let mut newest_tx = None;
        while let Some(s) = self.snd_buf.front() {
            if !before(s.seqno, ackno) {
                break;
            }
            once &= s.tx_count == 1;
            newest_tx = s.first_tx;
            self.snd_buf.pop_front();
            self.snd_sent = self.snd_sent.saturating_sub(1);
        }
        self.snd_lwe = ackno;
        self.rtt.reset_back_off();
        if let (true, Some(t)) = (once, newest_tx) {
            self.rtt.sample(now.saturating_duration_since(t));
            self.counters.rtt_estimates += 1;
        }
    }

    fn on_window(&mut self, wire_rwe: u32) {
        let mut rwe = (wire_rwe & RWE_MASK) | (self.snd_rwe & !RWE_MASK);
        if before(rwe, self.snd_rwe) && self.snd_rwe.wrapping_sub(rwe) > RWE_MASK >> 1 {
            rwe = rwe.wrapping_add(RWE_MASK + 1);
        }
        // Only move forward, and never beyond what a reorder queue can announce.
        if after(rwe, self.snd_rwe) && dist(self.snd_lwe, rwe) <= RWE_MASK >> 1 {
            self.snd_rwe = rwe;
        }
        if self.is_window_open() {
            self.window_closed_at = None;
            self.last_rdv = None;
        }
    }

    fn on_data(&mut self, seqno: u32, payload: &[u8], now: Instant) {
        if !self.cfg.reliable && !self.cfg.in_order {
            if self.unordered.len() < self.cfg.rq_size as usize {
                self.unordered.push_back(payload.to_vec());
            } else {
                self.counters.out_of_window += 1;
            }
            return;
        }
        if before(seqno, self.rcv_nxt) {
            self.counters.duplicates += 1;
            self.want_ack(now);
            return;
        }
        let off = seqno.wrapping_sub(self.rcv_read) as usize;
        if !before(seqno, self.rcv_rwe()) {
            self.counters.out_of_window += 1;
            self.want_ack(now);
            return;
        }
        while self.rq.len() <= off {
            self.rq.push_back(Slot::Empty);
        }
        if !matches!(self.rq[off], Slot::Empty) {
            self.counters.duplicates += 1;
            self.want_ack(now);
            return;
        }
        self.rq[off] = Slot::Full(now, payload.to_vec());
        let in_order = seqno == self.rcv_nxt;
        self.advance_nxt();
        self.want_ack(if in_order {
            now + self.cfg.ack_delay
        } else {
            now
        });
    }

    /// Schedule a pure ack no later than `at` (reliable flows only).
    fn want_ack(&mut self, at: Instant) {
        if self.cfg.reliable {
            self.ack_due = Some(self.ack_due.map_or(at, |t| t.min(at)));
        }
    }

    fn advance_nxt(&mut self) {
        loop {
            let off = self.rcv_nxt.wrapping_sub(self.rcv_read) as usize;
            match self.rq.get(off) {
                Some(Slot::Full(..)) | Some(Slot::Skipped) => {
                    self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
                }
                _ => break,
            }
        }
    }

    /// The next payload for the application, in order.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        if let Some(p) = self.unordered.pop_front() {
            return Some(p);
        }
        loop {
            match self.rq.front() {
                Some(Slot::Full(..)) | Some(Slot::Skipped) => {}
                _ => return None,
            }
            let slot = self.rq.pop_front()?;
            self.rcv_read = self.rcv_read.wrapping_add(1);
            // Announce the window again once it has moved by half the reorder queue.
            if dist(self.last_rwe_sent, self.rcv_rwe()) >= self.cfg.rq_size / 2 {
                self.fc_due = true;
            }
            if let Slot::Full(_, p) = slot {
                return Some(p);
            }
        }
    }

    /// When an unreliable in-order receiver gives up on the first missing packet.
    fn gap_deadline(&self) -> Option<Instant> {
        if self.cfg.reliable || !self.cfg.in_order {
            return None;
        }
        let first_missing = self.rcv_nxt.wrapping_sub(self.rcv_read) as usize;
        self.rq
            .iter()
            .skip(first_missing)
            .filter_map(|s| match s {
                Slot::Full(t, _) => Some(*t),
                _ => None,
            })
            .min()
            .and_then(|t| t.checked_add(self.cfg.max_gap))
    }

    /// The earliest time at which [`Self::handle_timeout`] or [`Self::poll_transmit`] has
    /// something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut take = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if self.failed != Some(FrctError::RetransmitTimeout) {
            take(
                self.snd_buf
                    .iter()
                    .take(self.snd_sent)
                    .filter_map(|s| s.rtx_at)
                    .min(),
            );
        }
        take(self.ack_due);
        if let (Some(closed), Some(last)) = (self.window_closed_at, self.last_rdv) {
            let next = last + self.cfg.rdv_interval;
            if next.saturating_duration_since(closed) <= self.cfg.max_rdv {
                take(Some(next));
            }
        }
        take(self.gap_deadline());
        t
    }

    /// Advance timers to `now`: skip expired gaps and detect a dead flow. Due transmissions
    /// are then returned by [`Self::poll_transmit`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_failure(now);
        while let Some(d) = self.gap_deadline() {
            if d > now {
                break;
            }
            // Skip the missing run at rcv_nxt.
            loop {
                let off = self.rcv_nxt.wrapping_sub(self.rcv_read) as usize;
                match self.rq.get(off) {
                    Some(Slot::Empty) => {
                        self.rq[off] = Slot::Skipped;
                        self.counters.skipped += 1;
                        self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
                    }
                    _ => break,
                }
            }
            self.advance_nxt();
        }
    }
}
