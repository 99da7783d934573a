//! FRCT, the end-to-end flow and retransmission control of an Ouroboros flow, as a sans-IO
//! state machine ([`Frcti`], one per flow endpoint).
//!
//! The caller feeds it application messages ([`Frcti::send`]), packets from the peer
//! ([`Frcti::handle_packet`]) and the time (`now` on every call, [`Frcti::handle_timeout`] when
//! [`Frcti::poll_timeout`] is reached); it polls packets to put on the wire
//! ([`Frcti::poll_transmit`]: new data, retransmissions, pure acks, window updates and
//! rendez-vous) and messages to hand to the application ([`Frcti::recv`]). This room may not
//! touch sockets, clocks, threads, random number generators or the flow tables: the initial
//! sequence number and every timer constant come in through [`FrctConfig`].
//!
//! Semantics follow the prototype (`src/lib/frct.c`): 32-bit sequence numbers, cumulative
//! acks naming the next sequence number expected, a right window edge of which 24 bits travel,
//! a data-run flag (DRF) that starts a new run at a receiver that has been inactive, and a
//! rendez-vous (RDVS) while the sender's window is closed: every 100 ms in the prototype,
//! which stops after 1 s; here every two round trips (at most 100 ms), and every second
//! after the first (see below).
//!
//! Where this differs from the prototype (the bytes on the wire are the same):
//! - The initial sequence number is the caller's ([`FrctConfig::initial_seqno`]), and a sender
//!   that was inactive keeps counting instead of drawing a new random number; it still sets
//!   DRF whenever nothing is unacknowledged, so an inactive receiver starts a new run.
//! - The cumulative ack names the next sequence number *received* in order, not the next one
//!   *read* by the application; the window edge does the flow control. It is the receiver's
//!   read point plus the reorder queue size, where the read point moves when a packet leaves
//!   the reorder queue: into the reassembly buffer, or as the one complete message held for
//!   the application. A window update goes out once the edge has moved by half the queue.
//! - RTT samples follow Karn per packet: an ack yields a sample from the newest packet it
//!   covers when that packet went out exactly once and after every retransmission the ack
//!   covers (the prototype times one probe packet at a time). The back-off is undone when an
//!   ack shows progress; the RTO is bounded by `rto_min` and `rto_max`, and a packet waits
//!   RTO + `ack_delay` for its ack, since the peer may hold the ack back that long.
//! - Rendez-vous never stop while the window is closed: after `max_rdv` they slow to one per
//!   `max_rdv`. Whether a silent peer is dead is the layer's call (its peer timeout); a slow
//!   reader must not leave a sender stuck when one window update is lost.
//! - Three duplicate acks (no data, no new window) trigger a fast retransmission of the
//!   oldest packet. Only the oldest unacknowledged packet is ever retransmitted: one timer,
//!   as RFC 6298, and after a partial ack the next hole goes out at once (NewReno); the
//!   prototype keeps a timer per packet, so every packet behind a hole goes out again.
//! - A packet that fills a hole is acked at once, not after the ack delay.
//! - Selective acks (our extension, wire-compatible): a pure ack from a receiver holding
//!   packets behind a hole carries their ranges in its payload (`SACK_TAG`, a count, then
//!   (first, end) pairs of big-endian sequence numbers, at most 16). The prototype ignores
//!   the payload of packets without DATA. The sender marks what the peer holds and sends
//!   each hole again at most once per round trip, without waiting for timers.
//! - Unreliable in-order flows hold out-of-order packets for up to `max_gap`, then skip the
//!   gap; the prototype delivers them as they come. A rendez-vous stands for a packet at the
//!   window edge, so that losing everything up to the edge does not shut the window for
//!   good. Reliable flows always deliver in order.
//! - Messages longer than [`FrctConfig::max_fragment`] travel as fragments, one sequence
//!   number each, marked with FFGM / MFGM (the prototype defines the flags but never sets
//!   them): first `FFGM|MFGM`, middle `MFGM`, last `FFGM`, unfragmented neither. Only in-order
//!   flows fragment. See `docs/wire.md`.
//! - Delta-t's timers are approximated: `r` bounds the time a packet stays unacknowledged
//!   (the flow then fails), and `2·mpl + a + r` of silence ends a receiver's run.
//!
//! Costs per packet are O(1) amortised (O(log n) for the retransmission timers): no call
//! scans the send buffer or the reorder queue.

mod rtt;
mod seq;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
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

/// First byte of the selective-ack ranges in a pure ack's payload (our extension).
pub const SACK_TAG: u8 = b'S';
/// Most selective-ack ranges in one pure ack.
pub const MAX_SACK_RANGES: usize = 16;

/// Longest single timer an endpoint arms (one day).
pub const MAX_TIMER: Duration = Duration::from_secs(86_400);

/// Shortest retransmission timeout and rendez-vous interval (one microsecond).
pub const MIN_TIMER: Duration = Duration::from_micros(1);

/// Default [`FrctConfig::max_message`]: 16 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 16 << 20;

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
    /// Bytes the buffer in front of this receiver holds, where packets wait before
    /// [`Frcti::handle_packet`] sees them and whose writer drops what does not fit (the ring
    /// an IPCP fills), and the bytes it spends per packet besides the packet itself. The
    /// window announced is then at most as many packets as fit, less one (a ring may lose
    /// a record's room to the skip at its end), judged by the largest
    /// packet received lately (before any, by `max_fragment`), and at least two: counted in
    /// packets, a window of `rq_size` full-size packets may overflow a buffer that small
    /// ones never fill. `None`: `rq_size` whatever the packets' size. With a bound, the
    /// peer's buffer is taken to be alike: `start_window` is at most the window this
    /// endpoint would announce for full-size packets.
    pub rcv_buf: Option<(usize, usize)>,
    /// RTO before the first RTT sample (prototype: 1 s).
    pub initial_rto: Duration,
    /// Lower bound of the RTO (prototype `RTO_MIN`, 250 µs).
    pub rto_min: Duration,
    /// Upper bound of the RTO after back-off (10 s: a flow whose acks keep getting lost keeps
    /// trying several times within `r`, since only the oldest packet is retransmitted).
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
    /// Largest payload of one FRCT packet (header excluded): a longer message goes out as
    /// fragments of this size, the last one shorter. `usize::MAX`, the default, never
    /// fragments. Zero counts as one. Flows that are neither reliable nor in order do not
    /// fragment: [`Frcti::send`] refuses messages longer than this with
    /// [`FrctError::TooBig`].
    pub max_fragment: usize,
    /// Largest message [`Frcti::send`] accepts and the receiver delivers (reassembled or
    /// not); longer ones are refused with [`FrctError::TooBig`] or dropped on receipt
    /// ([`FrctCounters::messages_dropped`]). Default [`DEFAULT_MAX_MESSAGE`].
    pub max_message: usize,
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
            rcv_buf: None,
            initial_rto: Duration::from_secs(1),
            rto_min: Duration::from_micros(250),
            rto_max: Duration::from_secs(10),
            ack_delay: Duration::from_millis(1),
            mpl: Duration::from_secs(60),
            a: Duration::from_secs(10),
            r: Duration::from_secs(120),
            rdv_interval: RDV_INTERVAL,
            max_rdv: MAX_RDV,
            max_fragment: usize::MAX,
            max_message: DEFAULT_MAX_MESSAGE,
        }
    }
}

/// Why FRCT refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrctError {
    /// The peer's receive window is full; try again after a window update.
    #[error("flow control window closed")]
    WindowClosed,
    /// The window stayed closed, rendez-vous unanswered, for longer than `max_rdv`. Not a
    /// failure: rendez-vous go on (every `max_rdv`) and the window may still open.
    #[error("peer did not open the window")]
    PeerUnresponsive,
    /// A packet stayed unacknowledged for longer than `r`; the flow is dead.
    #[error("retransmission time exceeded")]
    RetransmitTimeout,
    /// FRCT carries no empty payloads.
    #[error("empty payload")]
    EmptyPayload,
    /// The message is longer than the flow carries ([`Frcti::max_send`]).
    #[error("message of {len} bytes exceeds the flow's maximum of {max}")]
    TooBig { len: usize, max: usize },
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
    /// Rendez-vous packets received from the peer.
    pub rendezvous_received: u64,
    pub out_of_window: u64,
    /// Sequence numbers given up on by an unreliable in-order receiver.
    pub skipped: u64,
    /// Messages the receiver gave up on: partly reassembled when a fragment went missing
    /// (skipped) or a new message began, or longer than `max_message`.
    pub messages_dropped: u64,
    /// Fragments received but never delivered: those of the messages dropped above, those
    /// that arrive without their first fragment (after a loss or at the start of a run), and
    /// any at all on a flow that is neither reliable nor in order.
    pub fragments_dropped: u64,
    /// Current send window: sequence numbers the peer accepts from the oldest
    /// unacknowledged packet (unreliable flows: from the next one) on.
    pub window: u32,
    /// Packets transmitted and not yet acknowledged (reliable flows; 0 otherwise).
    pub in_flight: u32,
    /// Smoothed RTT (zero before the first sample).
    pub srtt: Duration,
    /// RTT mean deviation.
    pub mdev: Duration,
    /// Current retransmission timeout.
    pub rto: Duration,
}

/// Where a packet sits in its message (FFGM / MFGM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frag {
    /// Neither flag: a message of its own.
    Whole,
    /// FFGM | MFGM.
    First,
    /// MFGM.
    Middle,
    /// FFGM.
    Last,
}

impl Frag {
    fn of(flags: FrctFlags) -> Frag {
        match (
            flags.contains(FrctFlags::FFGM),
            flags.contains(FrctFlags::MFGM),
        ) {
            (false, false) => Frag::Whole,
            (true, true) => Frag::First,
            (false, true) => Frag::Middle,
            (true, false) => Frag::Last,
        }
    }

    fn flags(self) -> FrctFlags {
        match self {
            Frag::Whole => FrctFlags::empty(),
            Frag::First => FrctFlags::FFGM | FrctFlags::MFGM,
            Frag::Middle => FrctFlags::MFGM,
            Frag::Last => FrctFlags::FFGM,
        }
    }
}

#[derive(Debug)]
struct Segment {
    seqno: u32,
    flags: FrctFlags,
    /// [`HEADER_LEN`] bytes of room for the header, then the payload.
    buf: Vec<u8>,
    first_tx: Option<Instant>,
    /// When it last went out (first transmission or retransmission).
    last_tx: Option<Instant>,
    /// When it is due again if still unacknowledged (only the oldest packet's counts).
    rtx_at: Option<Instant>,
    tx_count: u32,
    /// The peer reported it received (selective ack): never retransmitted.
    sacked: bool,
}

impl Segment {
    fn payload_len(&self) -> usize {
        self.buf.len() - HEADER_LEN
    }
}

/// A packet [`Frcti::next_out`] hands out.
enum Out {
    /// `snd_buf[i]`, its header written in place.
    Seg(usize),
    /// A packet of its own (acks, rendez-vous, data of unreliable flows).
    Owned(Vec<u8>),
}

/// Packets over which a receiver with a `rcv_buf` remembers the largest one it got.
const SIZE_PERIOD: u32 = 256;

/// Send buffers of acknowledged packets kept for new ones, at most (fresh 64 KiB buffers
/// page-fault, and the allocator gives large ones back to the system).
const SPARE_BUFS: usize = 32;

#[derive(Debug)]
enum Slot {
    Empty,
    Full(Frag, Vec<u8>),
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
    /// Reliable: unacknowledged and unsent packets, `snd_buf[i].seqno == snd_lwe + i`.
    /// Unreliable: unsent packets.
    snd_buf: VecDeque<Segment>,
    /// Payload bytes in `snd_buf`.
    snd_bytes: usize,
    /// Leading segments of `snd_buf` transmitted at least once.
    snd_sent: usize,
    snd_act: Option<Instant>,
    rtt: RttEstimator,
    window_closed_at: Option<Instant>,
    last_rdv: Option<Instant>,
    failed: Option<FrctError>,
    /// Buffers of acknowledged segments, for new ones.
    spare: Vec<Vec<u8>>,
    /// Where [`Self::send_with`] has a message that takes several packets written.
    scratch: Vec<u8>,
    dup_acks: u32,
    fast_rtx: bool,
    /// Selective acks: the end of the highest range the peer reported received, and where
    /// the search for holes below it resumes (sequence numbers).
    sack_high: Option<u32>,
    sack_scan: u32,
    // Receiver.
    rcv_act: Option<Instant>,
    /// Sequence number at the front of the reorder queue: packets before it were handed to
    /// reassembly or to the application.
    rcv_read: u32,
    /// Next sequence number not received (or skipped) contiguously: the cumulative ack.
    rcv_nxt: u32,
    rq: VecDeque<Slot>,
    /// Payload bytes in `rq`.
    rq_bytes: usize,
    /// Unreliable in-order flows: (arrival, seqno) of each packet that arrived beyond a hole,
    /// in arrival order. Entries before `rcv_nxt` are stale; the front one never is between
    /// calls, so it names the oldest packet waiting behind the hole at `rcv_nxt`.
    gaps: VecDeque<(Instant, u32)>,
    /// The message being reassembled, and how many fragments it holds.
    asm: Option<Vec<u8>>,
    asm_frags: u64,
    /// Length of the last message reassembled: room a new one starts with, so that it is
    /// not copied again as it grows.
    asm_hint: usize,
    /// The next complete message for the application. While it waits, nothing leaves the
    /// reorder queue.
    ready: Option<Vec<u8>>,
    /// Flows neither reliable nor in order: messages as they came.
    unordered: VecDeque<Vec<u8>>,
    unordered_bytes: usize,
    ack_due: Option<Instant>,
    fc_due: bool,
    last_ack_sent: u32,
    last_rwe_sent: u32,
    /// Largest data packet received in the current and in the previous period of
    /// [`SIZE_PERIOD`] packets, and how many the current one has seen (for `rcv_buf`).
    rcv_big: (usize, usize, u32),
    counters: FrctCounters,
}

impl Frcti {
    /// A new endpoint. Timer settings above [`MAX_TIMER`] are lowered to it, so that no
    /// deadline overflows an `Instant`; `rto_min` and `rdv_interval` are at least
    /// [`MIN_TIMER`], so that a packet sent at `now` is not due again at `now`.
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
        cfg.rto_min = cfg.rto_min.max(MIN_TIMER);
        cfg.rdv_interval = cfg.rdv_interval.max(MIN_TIMER);
        cfg.rq_size = cfg.rq_size.clamp(1, RWE_MASK >> 1);
        cfg.start_window = cfg.start_window.min(RWE_MASK >> 1);
        cfg.max_fragment = cfg.max_fragment.max(1);
        cfg.max_message = cfg.max_message.max(1);
        let isn = cfg.initial_seqno;
        let rtt = RttEstimator::new(cfg.initial_rto, cfg.rto_min, cfg.rto_max);
        let mut f = Frcti {
            snd_lwe: isn,
            snd_next: isn,
            snd_rwe: isn.wrapping_add(cfg.start_window),
            snd_buf: VecDeque::new(),
            snd_bytes: 0,
            snd_sent: 0,
            snd_act: None,
            rtt,
            window_closed_at: None,
            last_rdv: None,
            failed: None,
            spare: Vec::new(),
            scratch: Vec::new(),
            dup_acks: 0,
            fast_rtx: false,
            sack_high: None,
            sack_scan: 0,
            rcv_act: None,
            rcv_read: 0,
            rcv_nxt: 0,
            rq: VecDeque::new(),
            rq_bytes: 0,
            gaps: VecDeque::new(),
            asm: None,
            asm_frags: 0,
            asm_hint: 0,
            ready: None,
            unordered: VecDeque::new(),
            unordered_bytes: 0,
            ack_due: None,
            fc_due: false,
            last_ack_sent: 0,
            last_rwe_sent: 0,
            rcv_big: (0, 0, 0),
            counters: FrctCounters::default(),
            cfg,
        };
        if f.cfg.rcv_buf.is_some() {
            // The peer's buffer is taken to be like ours: send no more full-size packets
            // before its first window update than ours would take.
            f.cfg.start_window = f.cfg.start_window.min(f.rcv_window());
            f.snd_rwe = isn.wrapping_add(f.cfg.start_window);
        }
        f
    }

    pub fn config(&self) -> &FrctConfig {
        &self.cfg
    }

    /// Statistics, with the current RTT estimate and window.
    pub fn counters(&self) -> FrctCounters {
        FrctCounters {
            srtt: self.rtt.srtt(),
            mdev: self.rtt.mdev(),
            rto: self.rtt.rto(),
            window: dist(self.snd_lwe, self.snd_rwe),
            in_flight: u32::try_from(self.snd_sent).unwrap_or(u32::MAX),
            ..self.counters
        }
    }

    /// Why the flow failed, if it did.
    pub fn failure(&self) -> Option<FrctError> {
        self.failed
    }

    /// Whether [`Self::send`] would accept a message now: the window is open for the next
    /// sequence number (the first fragment of a fragmented message).
    pub fn is_window_open(&self) -> bool {
        before(self.snd_next, self.snd_rwe)
    }

    /// Longest message [`Self::send`] accepts: `max_message`, or on flows that are neither
    /// reliable nor in order (which do not fragment) the smaller of it and `max_fragment`.
    pub fn max_send(&self) -> usize {
        if !self.cfg.reliable && !self.cfg.in_order {
            self.cfg.max_fragment.min(self.cfg.max_message)
        } else {
            self.cfg.max_message
        }
    }

    /// What this endpoint holds, in packets: (send buffer: unsent and unacknowledged
    /// packets; receive side: packets in the reorder queue, plus one for a message in
    /// reassembly, plus undelivered messages).
    pub fn queued(&self) -> (usize, usize) {
        (
            self.snd_buf.len(),
            self.rq.len()
                + usize::from(self.asm.is_some())
                + usize::from(self.ready.is_some())
                + self.unordered.len(),
        )
    }

    /// What this endpoint holds, in payload bytes: (send buffer; reorder queue, reassembly
    /// buffer and undelivered messages). The receive side stays below about
    /// `rq_size` packets plus twice `max_message`.
    pub fn queued_bytes(&self) -> (usize, usize) {
        (
            self.snd_bytes,
            self.rq_bytes
                + self.asm.as_ref().map_or(0, Vec::len)
                + self.ready.as_ref().map_or(0, Vec::len)
                + self.unordered_bytes,
        )
    }

    /// Whether the send side is done: reliable flows have nothing unacknowledged (and
    /// nothing unsent), unreliable flows have transmitted everything. Says nothing about
    /// the receive side (see [`Self::has_message`]) or a pending ack (see [`Self::ack_now`]).
    pub fn is_idle(&self) -> bool {
        self.snd_buf.is_empty()
    }

    /// Whether [`Self::recv`] would return a message.
    pub fn has_message(&self) -> bool {
        self.ready.is_some() || !self.unordered.is_empty()
    }

    /// Make the next [`Self::poll_transmit`] carry this endpoint's current ack (reliable
    /// flows) and window edge at once instead of after the ack delay: a pure ack if nothing
    /// else is due. For a flow about to close, so that the peer is not left waiting.
    /// Does nothing while no run from the peer is active (there is nothing to acknowledge).
    pub fn ack_now(&mut self, now: Instant) {
        if self.rcv_synced(now) {
            self.fc_due = true;
            if self.cfg.reliable {
                self.ack_due = Some(now);
            }
        }
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

    /// The right window edge: `rcv_window` beyond the read point, and never before the edge
    /// announced last (packets up to it may be on their way).
    fn rcv_rwe(&self) -> u32 {
        let rwe = self.rcv_read.wrapping_add(self.rcv_window());
        if before(rwe, self.last_rwe_sent) && dist(rwe, self.last_rwe_sent) <= RWE_MASK >> 1 {
            self.last_rwe_sent
        } else {
            rwe
        }
    }

    /// The receive window in packets: `rq_size`, or as many of the largest packets seen
    /// lately as `rcv_buf` holds.
    fn rcv_window(&self) -> u32 {
        let Some((bytes, per_packet)) = self.cfg.rcv_buf else {
            return self.cfg.rq_size;
        };
        let big = match self.rcv_big.0.max(self.rcv_big.1) {
            0 => self.cfg.max_fragment.saturating_add(HEADER_LEN),
            b => b,
        };
        // One packet's room less: a ring may lose up to a record to the skip at its end.
        let n = (bytes / big.saturating_add(per_packet).max(1)).saturating_sub(1);
        u32::try_from(n)
            .unwrap_or(u32::MAX)
            .clamp(2.min(self.cfg.rq_size), self.cfg.rq_size)
    }

    /// A data packet of `len` bytes arrived: keep track of the largest ones.
    fn note_size(&mut self, len: usize) {
        if self.cfg.rcv_buf.is_none() {
            return;
        }
        let (cur, _, seen) = &mut self.rcv_big;
        *cur = (*cur).max(len);
        *seen += 1;
        if *seen >= SIZE_PERIOD {
            self.rcv_big = (0, self.rcv_big.0, 0);
        }
    }

    /// Queue a message for transmission: under the next sequence number, or, when longer
    /// than `max_fragment`, as fragments under consecutive sequence numbers. The window
    /// must be open for the first one; the others wait in the send buffer until the
    /// peer's window admits them.
    pub fn send(&mut self, payload: &[u8], now: Instant) -> Result<(), FrctError> {
        if payload.is_empty() {
            return Err(FrctError::EmptyPayload);
        }
        self.may_send(payload.len(), now)?;
        let drf = self.snd_next == self.snd_lwe;
        let mf = self.cfg.max_fragment;
        if payload.len() <= mf {
            self.push_segment(Frag::Whole, payload, drf);
        } else {
            let n = payload.len().div_ceil(mf);
            self.snd_buf.reserve(n);
            for (i, chunk) in payload.chunks(mf).enumerate() {
                let frag = match i {
                    0 => Frag::First,
                    i if i + 1 == n => Frag::Last,
                    _ => Frag::Middle,
                };
                // Nothing is ever unacknowledged on an unreliable flow: every packet
                // carries DRF, as in the prototype.
                self.push_segment(frag, chunk, drf && (i == 0 || !self.cfg.reliable));
            }
        }
        self.sent(now);
        Ok(())
    }

    /// As [`Self::send`], for a message the caller writes in place: `fill` gets room for
    /// `max_len` bytes in the send buffer (when they fit one packet; else in a buffer of
    /// its own, sent as by [`Self::send`]) and returns how many it wrote, at most
    /// `max_len`. It is called only once the message is accepted (failed flows, messages
    /// too long and closed windows are refused before); if it writes nothing, nothing is
    /// sent. Returns the length of the message sent. Spares a copy of each message for a
    /// caller that produces it (reads it from a file, say) into a buffer anyway.
    pub fn send_with(
        &mut self,
        max_len: usize,
        now: Instant,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) -> Result<usize, FrctError> {
        if max_len == 0 {
            return Err(FrctError::EmptyPayload);
        }
        self.may_send(max_len, now)?;
        if max_len > self.cfg.max_fragment {
            // Fragments: filled in a buffer kept for the purpose, then sent as `send` does.
            let mut v = std::mem::take(&mut self.scratch);
            if v.len() < max_len {
                v.resize(max_len, 0);
            }
            let n = fill(&mut v[..max_len]).min(max_len);
            let r = if n > 0 {
                self.send(&v[..n], now)
            } else {
                Ok(())
            };
            self.scratch = v;
            return r.map(|()| n);
        }
        let mut buf = self.seg_buf(HEADER_LEN + max_len);
        // A spare buffer keeps its old contents: only what it lacks is zeroed.
        buf.resize(HEADER_LEN + max_len, 0);
        let n = fill(&mut buf[HEADER_LEN..]).min(max_len);
        if n == 0 {
            self.recycle_seg_buf(buf);
            return Ok(0);
        }
        buf.truncate(HEADER_LEN + n);
        let drf = self.snd_next == self.snd_lwe;
        self.push_buf(Frag::Whole, buf, drf);
        self.sent(now);
        Ok(n)
    }

    /// Whether a message of `len` bytes may be sent now (the checks of [`Self::send`]).
    fn may_send(&mut self, len: usize, now: Instant) -> Result<(), FrctError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let max = self.max_send();
        if len > max {
            return Err(FrctError::TooBig { len, max });
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
        Ok(())
    }

    /// A message went into the send buffer.
    fn sent(&mut self, now: Instant) {
        if !self.cfg.reliable {
            self.snd_lwe = self.snd_next;
        }
        self.snd_act = Some(now);
    }

    fn push_segment(&mut self, frag: Frag, payload: &[u8], drf: bool) {
        let mut buf = self.seg_buf(HEADER_LEN + payload.len());
        buf.clear();
        buf.extend_from_slice(&[0; HEADER_LEN]);
        buf.extend_from_slice(payload);
        self.push_buf(frag, buf, drf);
    }

    /// Queue `buf` ([`HEADER_LEN`] bytes of room for the header, then the payload) under
    /// the next sequence number.
    fn push_buf(&mut self, frag: Frag, buf: Vec<u8>, drf: bool) {
        let payload_len = buf.len() - HEADER_LEN;
        let mut flags = FrctFlags::DATA | frag.flags();
        if drf {
            flags |= FrctFlags::DRF;
        }
        self.snd_buf.push_back(Segment {
            seqno: self.snd_next,
            flags,
            buf,
            first_tx: None,
            last_tx: None,
            rtx_at: None,
            tx_count: 0,
            sacked: false,
        });
        self.snd_bytes += payload_len;
        self.snd_next = self.snd_next.wrapping_add(1);
    }

    /// A buffer with room for `len` bytes: a spare one that is large enough (with whatever
    /// it held), else a new, empty one.
    fn seg_buf(&mut self, len: usize) -> Vec<u8> {
        match self.spare.iter().rposition(|b| b.capacity() >= len) {
            Some(i) => self.spare.swap_remove(i),
            None => Vec::with_capacity(len),
        }
    }

    /// Keep the buffer of a segment that is gone, for a new one.
    fn recycle_seg_buf(&mut self, b: Vec<u8>) {
        // Small ones (acks) are cheap to allocate and would only take the places.
        if self.spare.len() < SPARE_BUFS && b.capacity() >= 1024 {
            self.spare.push(b);
        }
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

    /// Write `repr` over the first [`HEADER_LEN`] bytes of `buf`.
    fn put_header(repr: &FrctRepr, buf: &mut [u8]) {
        // Cannot fail: the buffer holds the header and rwe is masked to 24 bits.
        let _ = repr.emit(buf);
    }

    #[cfg(test)]
    fn encode(repr: &FrctRepr, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN + payload.len()];
        Self::put_header(repr, &mut out);
        out[HEADER_LEN..].copy_from_slice(payload);
        out
    }

    /// The next packet to put on the wire, if any is due at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        match self.next_out(now)? {
            Out::Seg(i) => Some(self.snd_buf[i].buf.clone()),
            Out::Owned(v) => Some(v),
        }
    }

    /// As [`Self::poll_transmit`], but hands the packet to `emit` as a slice instead of a
    /// new buffer: data packets of reliable flows are given straight from the send buffer,
    /// without the copy `poll_transmit` makes of them. The packet counts as sent whatever
    /// `emit` does with it (a packet the caller cannot send is a packet the layer lost).
    /// No packet is longer than [`Self::max_packet_len`].
    pub fn poll_transmit_with<R>(
        &mut self,
        now: Instant,
        emit: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        match self.next_out(now)? {
            Out::Seg(i) => Some(emit(&self.snd_buf[i].buf)),
            Out::Owned(v) => {
                let r = emit(&v);
                self.recycle_seg_buf(v);
                Some(r)
            }
        }
    }

    /// The longest packet [`Self::poll_transmit`] emits: a header and a whole fragment, or a
    /// pure ack with every selective-ack range, whichever is longer (`usize::MAX` when the
    /// flow does not fragment).
    pub fn max_packet_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.cfg.max_fragment.max(2 + 8 * MAX_SACK_RANGES))
    }

    fn next_out(&mut self, now: Instant) -> Option<Out> {
        self.check_failure(now);
        if self.failed == Some(FrctError::RetransmitTimeout) {
            return None;
        }
        // Retransmissions first.
        if self.cfg.reliable {
            if let Some(i) = self.poll_retransmit(now) {
                return Some(Out::Seg(i));
            }
        }
        // New data, as far as the peer's window goes.
        if let Some(seg) = self.snd_buf.get(self.snd_sent) {
            if before(seg.seqno, self.snd_rwe) {
                return Some(self.transmit_new(now));
            }
            // Fragments wait beyond the window: ask for a window update.
            if self.window_closed_at.is_none() {
                self.window_closed_at = Some(now);
                self.last_rdv = Some(now);
            }
        }
        // Rendez-vous while the window is closed (the one due at `next` goes out even if
        // the caller comes late, as poll_timeout announced it).
        if let Some(next) = self.next_rdv() {
            if now >= next {
                self.last_rdv = Some(now);
                self.counters.rendezvous_sent += 1;
                let mut out = vec![0u8; HEADER_LEN];
                let repr = FrctRepr {
                    flags: FrctFlags::RDVS,
                    ..FrctRepr::default()
                };
                Self::put_header(&repr, &mut out);
                return Some(Out::Owned(out));
            }
        }
        // Pure ack and/or window update.
        let ack_now = self.ack_due.is_some_and(|t| t <= now);
        if (ack_now || self.fc_due) && self.rcv_synced(now) {
            let repr = self.header(FrctFlags::empty(), 0, now);
            let mut out = vec![0u8; HEADER_LEN];
            Self::put_header(&repr, &mut out);
            if self.cfg.reliable {
                self.put_sack(&mut out);
            }
            return Some(Out::Owned(out));
        }
        if ack_now {
            self.ack_due = None;
        }
        None
    }

    /// First transmission of `snd_buf[snd_sent]`, which the window admits.
    fn transmit_new(&mut self, now: Instant) -> Out {
        let i = self.snd_sent;
        let (flags, seqno) = (self.snd_buf[i].flags, self.snd_buf[i].seqno);
        let repr = self.header(flags, seqno, now);
        if !self.cfg.reliable {
            // Nothing to keep: the segment's buffer goes out as it is.
            let mut seg = self.snd_buf.pop_front().expect("segment at snd_sent == 0");
            self.snd_bytes -= seg.payload_len();
            Self::put_header(&repr, &mut seg.buf);
            return Out::Owned(seg.buf);
        }
        let rto = self.rtx_timeout();
        let seg = &mut self.snd_buf[i];
        seg.first_tx = Some(now);
        seg.last_tx = Some(now);
        seg.rtx_at = Some(now + rto);
        seg.tx_count = 1;
        // The header goes in front of the kept payload: the packet leaves from the send
        // buffer itself (a retransmission rewrites it).
        Self::put_header(&repr, &mut seg.buf);
        self.snd_sent += 1;
        Out::Seg(i)
    }

    /// How long a packet waits for its ack: the RTO plus the peer's ack delay, which holds
    /// back the ack of the last packet of a burst (as QUIC's PTO adds `max_ack_delay`).
    fn rtx_timeout(&self) -> Duration {
        self.rtt.rto().saturating_add(self.cfg.ack_delay)
    }

    /// When the next rendez-vous is due while the window is closed: every two round trips
    /// (at most every `rdv_interval`) for `max_rdv`, then every `max_rdv` for as long as it
    /// stays closed. The prototype
    /// gives up after `max_rdv`; here a silent peer is the layer's to judge (peer timeout),
    /// and a slow reader must not leave the window closed for good when an update is lost.
    fn next_rdv(&self) -> Option<Instant> {
        let (closed, last) = (self.window_closed_at?, self.last_rdv?);
        let iv = if last.saturating_duration_since(closed) < self.cfg.max_rdv {
            // A window update lost on a fast path should not cost 100 ms: probe after two
            // round trips when the RTT is known, never later than `rdv_interval`.
            let srtt = self.rtt.srtt();
            if srtt.is_zero() {
                self.cfg.rdv_interval
            } else {
                (srtt * 2).max(self.cfg.rto_min).min(self.cfg.rdv_interval)
            }
        } else {
            self.cfg.max_rdv.max(self.cfg.rdv_interval)
        };
        Some(last + iv)
    }

    /// Append selective-ack ranges to a pure ack: the runs of packets held beyond the hole
    /// at `rcv_nxt`, as `SACK_TAG`, a count, then (first, end) pairs of big-endian sequence
    /// numbers. Only pure acks (no DATA) carry them; the prototype ignores the payload of
    /// such packets, so they stay wire-compatible.
    fn put_sack(&self, out: &mut Vec<u8>) {
        let from = self.rcv_nxt.wrapping_sub(self.rcv_read) as usize;
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        let mut run: Option<u32> = None;
        for (off, slot) in self.rq.iter().enumerate().skip(from) {
            let seq = self.rcv_read.wrapping_add(off as u32);
            match (slot, run) {
                (Slot::Full(..), None) => run = Some(seq),
                (Slot::Full(..), Some(_)) => {}
                (_, Some(first)) => {
                    ranges.push((first, seq));
                    run = None;
                }
                (_, None) => {}
            }
            if ranges.len() == MAX_SACK_RANGES {
                break;
            }
        }
        if let (Some(first), true) = (run, ranges.len() < MAX_SACK_RANGES) {
            ranges.push((first, self.rcv_read.wrapping_add(self.rq.len() as u32)));
        }
        if ranges.is_empty() {
            return;
        }
        out.push(SACK_TAG);
        out.push(ranges.len() as u8);
        for (a, b) in ranges {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&b.to_be_bytes());
        }
    }

    /// Selective-ack ranges from the peer: mark what it holds, and look for holes below.
    fn on_sack(&mut self, payload: &[u8], now: Instant) {
        if !self.cfg.reliable {
            return;
        }
        let [tag, n, rest @ ..] = payload else { return };
        if *tag != SACK_TAG || rest.len() != usize::from(*n) * 8 {
            return;
        }
        let mut newest_once: Option<Instant> = None;
        for r in rest.chunks_exact(8) {
            let first = u32::from_be_bytes([r[0], r[1], r[2], r[3]]);
            let end = u32::from_be_bytes([r[4], r[5], r[6], r[7]]);
            // Only ranges inside what was sent count.
            if !after(end, first) || before(first, self.snd_lwe) || after(end, self.snd_next) {
                continue;
            }
            let lo = first.wrapping_sub(self.snd_lwe) as usize;
            let hi = (end.wrapping_sub(self.snd_lwe) as usize).min(self.snd_sent);
            for seg in self.snd_buf.range_mut(lo..hi.max(lo)) {
                if !seg.sacked && seg.tx_count == 1 {
                    // Newly reported, sent once: the immediate ack its arrival caused.
                    newest_once = newest_once.max(seg.first_tx);
                }
                seg.sacked = true;
            }
            if self.sack_high.is_none_or(|h| after(end, h)) {
                self.sack_high = Some(end);
            }
        }
        if let Some(t) = newest_once {
            self.rtt.sample(now.saturating_duration_since(t));
            self.counters.rtt_estimates += 1;
        }
        // New information: look for holes from the start again; they are then repaired
        // by `poll_retransmit` instead of by duplicate acks.
        self.sack_scan = self.snd_lwe;
        self.fast_rtx = false;
        self.dup_acks = 0;
    }

    /// The next hole below the highest selectively acked packet that has not gone out
    /// within the last RTO: its index in `snd_buf`.
    fn next_sack_hole(&mut self, now: Instant) -> Option<usize> {
        let high = self.sack_high?;
        if !after(high, self.snd_lwe) {
            self.sack_high = None;
            return None;
        }
        if before(self.sack_scan, self.snd_lwe) {
            self.sack_scan = self.snd_lwe;
        }
        let guard = self.rtx_timeout();
        while before(self.sack_scan, high) {
            let i = self.sack_scan.wrapping_sub(self.snd_lwe) as usize;
            if i >= self.snd_sent {
                return None;
            }
            self.sack_scan = self.sack_scan.wrapping_add(1);
            let seg = &self.snd_buf[i];
            // Not again within about a round trip of its last transmission.
            let wait = guard.min(self.rtt.srtt().max(self.cfg.rto_min));
            let stale = seg
                .last_tx
                .is_none_or(|t| now.saturating_duration_since(t) >= wait);
            if !seg.sacked && stale {
                return Some(i);
            }
        }
        None
    }

    /// A retransmission due at `now` (fast, or on its timer), if any.
    ///
    /// Only the oldest unacknowledged packet is ever retransmitted, and only when its timer
    /// expires or three duplicate acks ask for it: the acks are cumulative, so nothing shows
    /// that a later packet is missing rather than held behind the hole. When the retransmitted
    /// hole is acked and the ack stops at the next hole (a partial ack), that packet's timer
    /// has long expired and it goes out at once: one hole repaired per round trip
    /// (NewReno), instead of every packet after a hole timing out and going out again.
    fn poll_retransmit(&mut self, now: Instant) -> Option<usize> {
        if self.snd_sent == 0 {
            self.fast_rtx = false;
            return None;
        }
        if let Some(i) = self.next_sack_hole(now) {
            return Some(self.retransmit(i, now));
        }
        let fast = std::mem::take(&mut self.fast_rtx);
        let due = self.snd_buf[0].rtx_at.is_some_and(|t| t <= now);
        if !fast && !due {
            return None;
        }
        if fast {
            self.counters.fast_retransmissions += 1;
        } else if self.snd_buf[0].tx_count > 1 {
            // A retransmission timed out in turn: back off (RFC 6298 5.5). The back-off is
            // undone by the next ack that shows progress.
            self.rtt.back_off();
        }
        Some(self.retransmit(0, now))
    }

    /// Send `snd_buf[i]` again: its header is rewritten in place; returns `i`.
    fn retransmit(&mut self, i: usize, now: Instant) -> usize {
        let rto = self.rtx_timeout();
        let seg = &mut self.snd_buf[i];
        seg.tx_count += 1;
        seg.last_tx = Some(now);
        seg.rtx_at = Some(now + rto);
        let (flags, seqno) = (seg.flags, seg.seqno);
        self.counters.retransmissions += 1;
        let repr = self.header(flags, seqno, now);
        Self::put_header(&repr, &mut self.snd_buf[i].buf);
        i
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
        self.handle(bytes, now, None).map(|_| ())
    }

    /// As [`Self::handle_packet`], for a reader waiting with the buffer `out`: a data
    /// packet that is the next message whole (unfragmented, in order, no message before
    /// it waiting for [`Self::recv`], and it fits `out`) is copied into `out` and its
    /// length returned, as if [`Self::recv`] had returned it. Spares the copy into a
    /// buffer of the machine's own.
    pub fn handle_packet_into(
        &mut self,
        bytes: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Result<Option<usize>, FrctError> {
        self.handle(bytes, now, Some(out))
    }

    fn handle(
        &mut self,
        bytes: &[u8],
        now: Instant,
        out: Option<&mut [u8]>,
    ) -> Result<Option<usize>, FrctError> {
        let pkt = FrctPacket::new_checked(bytes)?;
        let repr = FrctRepr::parse(&pkt)?;
        let payload = pkt.payload();
        let flags = repr.flags;

        if !self.rcv_synced(now) {
            if flags.contains(FrctFlags::DRF) && flags.contains(FrctFlags::DATA) {
                self.start_run(repr.seqno);
            } else if flags.contains(FrctFlags::DATA) {
                return Ok(None); // Not the start of a run: wait for it.
            }
        }
        if flags.contains(FrctFlags::DATA) {
            // Only data keeps a run alive: a stray ack must not revive a stale one.
            self.rcv_act = Some(now);
            self.note_size(bytes.len());
        }

        if flags.contains(FrctFlags::RDVS) {
            self.counters.rendezvous_received += 1;
            // Answer with a window update at once.
            if self.rcv_synced(now) {
                self.fc_due = true;
                self.rdv_gap(now);
            }
            return Ok(None);
        }
        if flags.contains(FrctFlags::ACK) {
            // A duplicate ack carries no data and no new window (as in TCP): a window update
            // repeats the ack number but says nothing about a hole.
            let new_window = flags.contains(FrctFlags::FC) && self.moves_window(repr.rwe);
            let pure = !(flags.contains(FrctFlags::DATA) || new_window);
            self.on_ack(repr.ackno, pure, now);
        }
        if flags.contains(FrctFlags::FC) {
            self.on_window(repr.rwe);
        }
        if !flags.contains(FrctFlags::DATA) {
            if flags.contains(FrctFlags::ACK) && !payload.is_empty() {
                self.on_sack(payload, now);
            }
            return Ok(None);
        }
        if payload.is_empty() {
            return Ok(None);
        }
        Ok(self.on_data(repr.seqno, Frag::of(flags), payload, now, out))
    }

    /// A receiver that was inactive starts a new run at `seqno`.
    fn start_run(&mut self, seqno: u32) {
        self.rcv_read = seqno;
        self.rcv_nxt = seqno;
        self.last_ack_sent = seqno;
        self.last_rwe_sent = seqno.wrapping_add(self.rcv_window());
        self.rq.clear();
        self.rq_bytes = 0;
        self.gaps.clear();
        self.drop_partial();
        if !self.cfg.reliable {
            // No acks will carry the window: announce it, or the sender stalls at its
            // start window until a rendez-vous.
            self.fc_due = true;
        }
    }

    /// A rendez-vous tells an unreliable in-order receiver that the sender has sent
    /// everything below its window edge, which is at most the one announced last. If
    /// packets are missing with none behind them (all lost up to the edge), no arrival would
    /// ever start the `max_gap` wait and the window would stay shut: let the rendez-vous
    /// stand for a packet at the edge.
    fn rdv_gap(&mut self, now: Instant) {
        if self.cfg.reliable || !self.cfg.in_order || !self.gaps.is_empty() {
            return;
        }
        let edge = self.last_rwe_sent.wrapping_sub(1);
        if !before(edge, self.rcv_nxt) && before(edge, self.rcv_rwe()) {
            self.gaps.push_back((now, edge));
        }
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
        // Karn, per packet: sample from the newest packet this ack covers if it went out
        // exactly once and after every retransmission the ack also covers, so the ack
        // answers that packet and no hole filled later held it back. (Requiring every
        // covered packet to have gone out once starves the estimator under steady loss.)
        let mut once = true;
        let mut newest_tx = None;
        let mut last_rtx: Option<Instant> = None;
        while let Some(s) = self.snd_buf.front() {
            if !before(s.seqno, ackno) {
                break;
            }
            once = s.tx_count == 1;
            newest_tx = s.first_tx;
            if s.tx_count > 1 {
                last_rtx = last_rtx.max(s.last_tx);
            }
            self.snd_bytes -= s.payload_len();
            if let Some(s) = self.snd_buf.pop_front() {
                self.recycle_seg_buf(s.buf);
            }
            self.snd_sent = self.snd_sent.saturating_sub(1);
        }
        self.snd_lwe = ackno;
        self.rtt.reset_back_off();
        let after_rtx = match (newest_tx, last_rtx) {
            (Some(t), Some(r)) => t >= r,
            _ => true,
        };
        if let (true, true, Some(t)) = (once, after_rtx, newest_tx) {
            self.rtt.sample(now.saturating_duration_since(t));
            self.counters.rtt_estimates += 1;
        }
    }

    /// The right window edge a peer's 24-bit `wire_rwe` stands for.
    fn full_rwe(&self, wire_rwe: u32) -> u32 {
        let mut rwe = (wire_rwe & RWE_MASK) | (self.snd_rwe & !RWE_MASK);
        if before(rwe, self.snd_rwe) && self.snd_rwe.wrapping_sub(rwe) > RWE_MASK >> 1 {
            rwe = rwe.wrapping_add(RWE_MASK + 1);
        }
        rwe
    }

    /// Whether the peer's window edge `wire_rwe` is ahead of the one we know.
    fn moves_window(&self, wire_rwe: u32) -> bool {
        let rwe = self.full_rwe(wire_rwe);
        after(rwe, self.snd_rwe) && dist(self.snd_lwe, rwe) <= RWE_MASK >> 1
    }

    fn on_window(&mut self, wire_rwe: u32) {
        let mut rwe = (wire_rwe & RWE_MASK) | (self.snd_rwe & !RWE_MASK);
        if before(rwe, self.snd_rwe) && self.snd_rwe.wrapping_sub(rwe) > RWE_MASK >> 1 {
            rwe = rwe.wrapping_add(RWE_MASK + 1);
        }
        // Only move forward, and never beyond what a reorder queue can announce.
        if after(rwe, self.snd_rwe) && dist(self.snd_lwe, rwe) <= RWE_MASK >> 1 {
            self.snd_rwe = rwe;
            // The peer answers: a window still closed (fragments waiting beyond it) starts
            // a new rendez-vous period when the sender next finds it so.
            self.window_closed_at = None;
            self.last_rdv = None;
        }
        if self.is_window_open() {
            self.window_closed_at = None;
            self.last_rdv = None;
        }
    }

    /// A data packet; with `out`, one that is the next message whole is copied there and
    /// its length returned (see [`Self::handle_packet_into`]).
    fn on_data(
        &mut self,
        seqno: u32,
        frag: Frag,
        payload: &[u8],
        now: Instant,
        out: Option<&mut [u8]>,
    ) -> Option<usize> {
        if !self.cfg.reliable && !self.cfg.in_order {
            if frag != Frag::Whole {
                // Nothing to reassemble with: such flows do not fragment.
                self.counters.fragments_dropped += 1;
            } else if payload.len() > self.cfg.max_message {
                self.counters.messages_dropped += 1;
            } else if self.unordered.len() < self.cfg.rq_size as usize {
                self.unordered_bytes += payload.len();
                self.unordered.push_back(payload.to_vec());
            } else {
                self.counters.out_of_window += 1;
            }
            return None;
        }
        if before(seqno, self.rcv_nxt) {
            self.counters.duplicates += 1;
            self.want_ack(now);
            return None;
        }
        if !before(seqno, self.rcv_rwe()) {
            self.counters.out_of_window += 1;
            self.want_ack(now);
            return None;
        }
        let off = seqno.wrapping_sub(self.rcv_read) as usize;
        let in_order = seqno == self.rcv_nxt;
        let mut delivered = None;
        if off == 0 && self.ready.is_none() {
            // At the read point (so in order, and the front slot, if any, is empty): straight
            // into reassembly or to the application, without a stop in the reorder queue.
            self.rq.pop_front();
            self.rcv_read = self.rcv_read.wrapping_add(1);
            self.rcv_nxt = self.rcv_read;
            let whole = frag == Frag::Whole && payload.len() <= self.cfg.max_message;
            match out {
                Some(out) if whole && payload.len() <= out.len() => {
                    // The next message, whole: into the reader's buffer at once.
                    self.drop_partial();
                    out[..payload.len()].copy_from_slice(payload);
                    delivered = Some(payload.len());
                }
                _ => self.consume(frag, Cow::Borrowed(payload)),
            }
        } else {
            while self.rq.len() <= off {
                self.rq.push_back(Slot::Empty);
            }
            if !matches!(self.rq[off], Slot::Empty) {
                self.counters.duplicates += 1;
                self.want_ack(now);
                return None;
            }
            self.rq[off] = Slot::Full(frag, payload.to_vec());
            self.rq_bytes += payload.len();
            if !in_order && !self.cfg.reliable {
                self.gaps.push_back((now, seqno));
            }
        }
        let nxt_before = self.rcv_nxt;
        self.advance_nxt();
        self.pump();
        // In order and nothing held behind it: the ack may wait. Out of order (a hole), or
        // filling a hole that held later packets: ack at once, so the sender learns of the
        // hole, or of its repair, without waiting for the delay.
        let filled_hole = dist(nxt_before, self.rcv_nxt) > 1;
        self.want_ack(if in_order && !filled_hole {
            now + self.cfg.ack_delay
        } else {
            now
        });
        delivered
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
        while self
            .gaps
            .front()
            .is_some_and(|&(_, s)| before(s, self.rcv_nxt))
        {
            self.gaps.pop_front();
        }
    }

    /// Move in-order packets from the front of the reorder queue into reassembly, until a
    /// complete message waits for the application; then schedule a window update if the
    /// edge moved far enough.
    fn pump(&mut self) {
        while self.ready.is_none() {
            if !matches!(self.rq.front(), Some(Slot::Full(..)) | Some(Slot::Skipped)) {
                break;
            }
            let Some(slot) = self.rq.pop_front() else {
                break;
            };
            self.rcv_read = self.rcv_read.wrapping_add(1);
            match slot {
                Slot::Full(frag, p) => {
                    self.rq_bytes -= p.len();
                    self.consume(frag, Cow::Owned(p));
                }
                Slot::Skipped => self.drop_partial(),
                Slot::Empty => {}
            }
        }
        // Announce the window again once it has moved by half the reorder queue.
        if dist(self.last_rwe_sent, self.rcv_rwe()) >= (self.rcv_window() / 2).max(1) {
            self.fc_due = true;
        }
    }

    /// The next in-order packet, taken off the reorder queue.
    fn consume(&mut self, frag: Frag, data: Cow<'_, [u8]>) {
        let max = self.cfg.max_message;
        match frag {
            Frag::Whole | Frag::First => {
                self.drop_partial();
                if data.len() > max {
                    self.counters.messages_dropped += 1;
                    if frag == Frag::First {
                        self.counters.fragments_dropped += 1;
                    }
                } else if frag == Frag::Whole {
                    self.ready = Some(data.into_owned());
                } else {
                    let want = self.asm_hint.max(data.len()).min(max);
                    let asm = match data {
                        Cow::Owned(v) if v.capacity() >= want => v,
                        data => {
                            let mut v = Vec::with_capacity(want);
                            v.extend_from_slice(&data);
                            v
                        }
                    };
                    self.asm = Some(asm);
                    self.asm_frags = 1;
                }
            }
            Frag::Middle | Frag::Last => {
                let Some(asm) = self.asm.as_mut() else {
                    // Its first fragment is gone (lost, or before this run).
                    self.counters.fragments_dropped += 1;
                    return;
                };
                if asm.len() + data.len() > max {
                    self.drop_partial();
                    self.counters.fragments_dropped += 1;
                    return;
                }
                asm.extend_from_slice(&data);
                self.asm_frags += 1;
                if frag == Frag::Last {
                    self.asm_hint = asm.len();
                    self.ready = self.asm.take();
                    self.asm_frags = 0;
                }
            }
        }
    }

    /// Give up on the message in reassembly, if any.
    fn drop_partial(&mut self) {
        if self.asm.take().is_some() {
            self.counters.messages_dropped += 1;
            self.counters.fragments_dropped += self.asm_frags;
            self.asm_frags = 0;
        }
    }

    /// The next message for the application: in order (reassembled if it came in
    /// fragments), or as it came on flows that are neither reliable nor in order.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        if let Some(p) = self.unordered.pop_front() {
            self.unordered_bytes -= p.len();
            return Some(p);
        }
        let m = self.ready.take()?;
        self.pump();
        Some(m)
    }

    /// When an unreliable in-order receiver gives up on the first missing packet.
    fn gap_deadline(&self) -> Option<Instant> {
        if self.cfg.reliable || !self.cfg.in_order {
            return None;
        }
        self.gaps
            .front()
            .and_then(|&(t, _)| t.checked_add(self.cfg.max_gap))
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
        // A flow failed on `r` transmits nothing more: only reception has timers left.
        if self.failed != Some(FrctError::RetransmitTimeout) {
            if self.snd_sent > 0 {
                take(self.snd_buf[0].rtx_at);
            }
            take(self.ack_due);
            take(self.next_rdv());
        }
        take(self.gap_deadline());
        t
    }

    /// Advance timers to `now`: skip expired gaps and detect a dead flow. Due transmissions
    /// are then returned by [`Self::poll_transmit`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_failure(now);
        let mut skipped = false;
        while let Some(d) = self.gap_deadline() {
            if d > now {
                break;
            }
            // Skip the missing run at rcv_nxt, up to the packet the deadline belongs to (or
            // through the edge a rendez-vous stands for). The front entry is not before
            // rcv_nxt, so each round moves rcv_nxt on.
            let until = self.gaps.front().map_or(self.rcv_nxt, |&(_, s)| s);
            while !after(self.rcv_nxt, until) {
                let off = self.rcv_nxt.wrapping_sub(self.rcv_read) as usize;
                while self.rq.len() <= off {
                    self.rq.push_back(Slot::Empty);
                }
                if !matches!(self.rq[off], Slot::Empty) {
                    break;
                }
                self.rq[off] = Slot::Skipped;
                self.counters.skipped += 1;
                self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
            }
            self.advance_nxt();
            skipped = true;
        }
        if skipped {
            self.pump();
        }
    }
}
