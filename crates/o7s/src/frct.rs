//! FRCT on a flow: the library side of [`o7s_proto::frct::Frcti`].
//!
//! A flow whose QoS asks for in-order delivery carries an FRCT header in every packet. The
//! state machine lives in the application's process, between the flow's API and its rings:
//! a write hands the message to the machine and puts what it emits on the ring; a read takes
//! packets off the ring, feeds them to the machine and returns what it delivers.
//!
//! Who drives the machine:
//! - **The calling threads.** Every `read`/`write` first *pumps* (drains the receive ring into
//!   the machine, runs due timers, flushes what the machine emits). A thread that must wait
//!   becomes the *leader* and sleeps on the ring's eventfd (after a short spin), bounded by
//!   the machine's next timer; other threads wait on a condition variable and are woken
//!   when the leader or anyone else makes progress.
//! - **One timer thread per process** (started with the first FRCT flow) for flows nobody is
//!   calling on: retransmissions, delayed acks and window updates still go out while the
//!   application does something else, and a closing flow lingers until its data is acked.
//!
//! Liveness is the layer's business: the IPCPs' keepalives and peer timeout take a silent
//! flow down, which the ring reports; FRCT adds the retransmission timeout `r`.

use crate::error::Error;
use o7s_proto::frct::{FrctConfig, FrctCounters, FrctError, Frcti};
use o7s_proto::wire::frct::HEADER_LEN;
use o7s_proto::QosSpec;
use o7s_shm::{Endpoint, ShmError};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Largest message an FRCT flow carries (fragmented into packets that fit the layer).
pub const MAX_MESSAGE: usize = 4 << 20;

/// How long a closing reliable flow waits, at most, for its data to be acknowledged.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(10);

/// Gap an unreliable in-order flow waits for when the QoS leaves it open.
const DEFAULT_MAX_GAP: Duration = Duration::from_millis(100);
/// Longest gap an unreliable in-order flow waits for, whatever the QoS says.
const MAX_MAX_GAP: Duration = Duration::from_secs(1);

/// The timer thread's granularity: it wakes at most this often. Threads inside a call run
/// their flow's timers exactly; only flows nobody is calling on wait for the tick.
const TICK: Duration = Duration::from_millis(1);

/// Packets drained from the ring per pump before the caller gets a turn.
const PUMP_BATCH: usize = 512;

/// Whether a flow with this QoS runs FRCT: it asks for in-order or loss-free delivery.
pub fn wants_frct(qos: &QosSpec) -> bool {
    qos.in_order != 0 || qos.loss == 0
}

/// The FRCT parameters for a flow with QoS `qos` whose layer carries `mtu` bytes per packet.
///
/// `rcv_buf`: when the flow's receive ring is filled by an IPCP, which drops what finds the
/// ring full, the ring's bytes and its cost per packet (`Endpoint::rx_budget`): the receive
/// window then holds no more packets than the ring does (see
/// [`FrctConfig::rcv_buf`]): over a layer with 64 KiB frames, the prototype's 256 packets in
/// flight overflowed a 1 MiB ring and came back as retransmissions. None (a flow between
/// two applications, whose full ring only blocks the writer): 256 packets.
pub fn config_for(qos: &QosSpec, mtu: usize, rcv_buf: Option<(usize, usize)>) -> FrctConfig {
    let max_gap = match qos.max_gap {
        u32::MAX => DEFAULT_MAX_GAP,
        ms => Duration::from_millis(u64::from(ms)).min(MAX_MAX_GAP),
    };
    // Data unacknowledged for the peer timeout means the peer is gone, as silence does.
    let r = match qos.timeout {
        0 => FrctConfig::default().r,
        ms => Duration::from_millis(u64::from(ms)).max(Duration::from_secs(1)),
    };
    FrctConfig {
        reliable: qos.loss == 0,
        r,
        in_order: true,
        max_gap,
        initial_seqno: rand::random(),
        max_fragment: mtu.saturating_sub(HEADER_LEN).max(1),
        max_message: MAX_MESSAGE,
        rcv_buf,
        ..FrctConfig::default()
    }
}

struct State {
    frcti: Frcti,
    /// A packet the machine emitted that did not fit the ring yet.
    stuck: Option<Vec<u8>>,
    /// The ring had no room for the longest packet the machine may emit next (so it was
    /// not asked for one): the bytes to wait for.
    blocked: Option<usize>,
    /// The ring reported the flow down (and empty).
    down: bool,
    /// A thread sleeps on the ring's eventfd for this flow.
    leader: bool,
    /// Threads waiting on the condition variable.
    followers: u32,
    /// Threads inside a read, write or close of this flow (the timer thread then keeps out).
    callers: u32,
    /// Packets from the peer that did not decode.
    malformed: u64,
    /// When the counters were last published in the flow's region (for `irm flow list`).
    published: Option<Instant>,
}

/// How often a busy flow publishes its FRCT counters in its region.
const PUBLISH_EVERY: Duration = Duration::from_millis(1);

/// FRCT state of one flow.
pub(crate) struct Reliable {
    st: Mutex<State>,
    cond: Condvar,
    /// The machine's next timer, in ns since [`epoch`] (`u64::MAX`: none).
    timer: AtomicU64,
    /// Event sets watching this flow: progress made off their thread must wake them.
    pub(crate) watchers: AtomicUsize,
    reliable: bool,
}

/// What a pump found.
#[derive(Default)]
struct Pumped {
    /// Packets taken off the ring.
    consumed: usize,
    /// The length of the message it put straight into the reader's buffer.
    into: Option<usize>,
}

/// What [`Reliable::read_into`] got.
pub(crate) enum Got {
    /// A message of this length, in the caller's buffer.
    Into(usize),
    /// A message in a buffer of its own (it came in fragments, or did not fit).
    Msg(Vec<u8>),
}

/// Put the flow's counters where the IRMd reads them for `irm flow list`.
fn publish(st: &State, ep: &Endpoint) {
    let c = st.frcti.counters();
    let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let info = crate::ctrl::msg::FrctInfo {
        pid: 0,
        retransmissions: c.retransmissions,
        fast_retransmissions: c.fast_retransmissions,
        duplicates: c.duplicates,
        rendezvous_sent: c.rendezvous_sent,
        rendezvous_received: c.rendezvous_received,
        skipped: c.skipped,
        messages_dropped: c.messages_dropped,
        out_of_window: c.out_of_window,
        malformed: st.malformed,
        window: u64::from(c.window),
        in_flight: u64::from(c.in_flight),
        srtt_us: us(c.srtt),
        mdev_us: us(c.mdev),
        rto_us: us(c.rto),
    };
    ep.publish_stats(&info.to_words());
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn to_ns(t: Option<Instant>) -> u64 {
    match t {
        None => u64::MAX,
        Some(t) => {
            u64::try_from(t.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX - 1)
        }
    }
}

fn from_ns(ns: u64) -> Option<Instant> {
    (ns != u64::MAX).then(|| epoch() + Duration::from_nanos(ns))
}

fn min_deadline(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (x, None) | (None, x) => x,
    }
}

fn frct_error(e: FrctError) -> Error {
    match e {
        FrctError::RetransmitTimeout => Error::FlowDown,
        FrctError::TooBig { len, max } => Error::TooBig { len, max },
        other => Error::Frct(other.to_string()),
    }
}

impl Reliable {
    pub(crate) fn new(cfg: FrctConfig) -> Reliable {
        let reliable = cfg.reliable;
        Reliable {
            st: Mutex::new(State {
                frcti: Frcti::new(cfg, Instant::now()),
                stuck: None,
                blocked: None,
                down: false,
                leader: false,
                followers: 0,
                callers: 0,
                malformed: 0,
                published: None,
            }),
            cond: Condvar::new(),
            timer: AtomicU64::new(u64::MAX),
            watchers: AtomicUsize::new(0),
            reliable,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drain the ring into the machine, run due timers, flush what it emits. A `reader`
    /// stops draining once a whole message waits for it: the packets behind stay in the
    /// ring (where the machine takes them without copying them into its reorder queue).
    /// With `into` (the reader's buffer), a packet that is the next message whole goes
    /// straight from the ring into it (`Pumped::into`), and draining stops there.
    fn pump(
        &self,
        st: &mut State,
        ep: &Endpoint,
        now: Instant,
        reader: bool,
        mut into: Option<&mut [u8]>,
    ) -> Result<Pumped, Error> {
        let mut p = Pumped::default();
        while p.consumed < PUMP_BATCH
            && !st.down
            && p.into.is_none()
            && !(reader && st.frcti.has_message())
        {
            let frcti = &mut st.frcti;
            let out = into.as_deref_mut();
            let got = ep.try_read_with(|b, off| match out {
                Some(out) => frcti.handle_packet_into(&b[off..], now, out),
                None => frcti.handle_packet(&b[off..], now).map(|()| None),
            });
            match got {
                Ok(Ok(n)) => {
                    p.consumed += 1;
                    p.into = n;
                }
                Ok(Err(_)) => {
                    p.consumed += 1;
                    st.malformed += 1;
                }
                Err(ShmError::WouldBlock) => break,
                Err(ShmError::Down) => st.down = true,
                Err(e) => {
                    st.down = true;
                    return Err(e.into());
                }
            }
        }
        if st.frcti.poll_timeout().is_some_and(|t| t <= now) {
            st.frcti.handle_timeout(now);
        }
        self.flush(st, ep, now)?;
        if st
            .published
            .is_none_or(|t| now.saturating_duration_since(t) >= PUBLISH_EVERY)
        {
            st.published = Some(now);
            publish(st, ep);
        }
        Ok(p)
    }

    /// Put what the machine emits on the ring, until the ring is full. Packets go from the
    /// machine's send buffer straight into the ring: it is asked for one only when the ring
    /// has room for the longest it may emit.
    fn flush(&self, st: &mut State, ep: &Endpoint, now: Instant) -> Result<(), Error> {
        st.blocked = None;
        if st.down {
            st.stuck = None;
            return Ok(());
        }
        let room = st.frcti.max_packet_len().min(ep.max_packet());
        loop {
            let r = match st.stuck.take() {
                Some(pkt) => match ep.try_write(&pkt) {
                    Err(ShmError::WouldBlock) => {
                        st.stuck = Some(pkt);
                        break;
                    }
                    r => r,
                },
                None => {
                    if !ep.tx_space(room) {
                        st.blocked = Some(room);
                        break;
                    }
                    let State { frcti, stuck, .. } = &mut *st;
                    let sent = frcti.poll_transmit_with(now, |pkt| match ep.try_write(pkt) {
                        // Only this flow writes the ring, and it had room: not expected,
                        // but then the packet waits for room as one of its own.
                        Err(ShmError::WouldBlock) => {
                            *stuck = Some(pkt.to_vec());
                            Ok(())
                        }
                        r => r,
                    });
                    match sent {
                        Some(r) => r,
                        None => break,
                    }
                }
            };
            match r {
                Ok(()) => {}
                Err(ShmError::Down) => {
                    st.down = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut next = st.frcti.poll_timeout();
        if st.stuck.is_some() || st.blocked.is_some() {
            // Retry a full ring soon even if nobody waits on it.
            next = min_deadline(next, Some(now + Duration::from_millis(1)));
        }
        self.set_timer(next);
        Ok(())
    }

    fn set_timer(&self, t: Option<Instant>) {
        let ns = to_ns(t);
        let old = self.timer.swap(ns, Ordering::AcqRel);
        if ns < old {
            timers().poke(ns);
        }
    }

    /// After progress: wake whoever waits for this flow on another thread.
    fn wake_others(&self, st: &State, ep: &Endpoint, i_lead: bool, p: &Pumped) {
        if p.consumed == 0 {
            return;
        }
        if st.followers > 0 {
            self.cond.notify_all();
        }
        let leader_elsewhere = st.leader && !i_lead;
        if leader_elsewhere || self.watchers.load(Ordering::Relaxed) > 0 {
            // The leader and event sets sleep on the ring's eventfd: kick it.
            let _ = rustix::io::write(ep.wait_fd(), &1u64.to_ne_bytes());
        }
    }

    /// Wait until something may have changed: the ring, a timer, `deadline` or another thread.
    /// Returns the guard again; the caller re-checks its condition.
    fn wait<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        ep: &Endpoint,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, State> {
        let until = min_deadline(deadline, st.frcti.poll_timeout());
        let until = if st.stuck.is_some() || st.blocked.is_some() {
            min_deadline(until, Some(Instant::now() + Duration::from_millis(1)))
        } else {
            until
        };
        if until.is_some_and(|u| u <= Instant::now()) {
            return st;
        }
        if st.leader {
            st.followers += 1;
            st = match until {
                None => self.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(u) => {
                    let left = u.saturating_duration_since(Instant::now());
                    self.cond
                        .wait_timeout(st, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            st.followers -= 1;
            return st;
        }
        st.leader = true;
        let tx_len = st.stuck.as_ref().map(Vec::len).or(st.blocked);
        drop(st);
        let spin_until = Instant::now() + spin_time();
        let mut ready = false;
        loop {
            if ep.rx_ready() || tx_len.is_some_and(|l| ep.tx_space(l)) {
                ready = true;
                break;
            }
            let now = Instant::now();
            if now >= spin_until || until.is_some_and(|u| now >= u) {
                break;
            }
            // Yield rather than spin on the core: the peer we wait for (the IPCP, or the
            // other application) may need it. A bulk receiver on two cores that spun here
            // took a core's share from the processes feeding it (8.1-8.6 Gb/s over a
            // 64 KiB-MTU veth against 8.9-9.5 without spinning); with nothing else to run,
            // yielding returns at once and the wait is as short as a spin.
            std::thread::yield_now();
        }
        if !ready && ep.arm(true, tx_len) {
            sleep_on(ep, until);
        }
        ep.disarm();
        ep.drain_wakeups();
        let mut st = self.lock();
        st.leader = false;
        if st.followers > 0 {
            self.cond.notify_all();
        }
        st
    }

    /// Enter a call: the timer thread keeps out until [`Self::leave`].
    fn enter(&self) -> MutexGuard<'_, State> {
        let mut st = self.lock();
        st.callers += 1;
        st
    }

    fn leave(&self, mut st: MutexGuard<'_, State>) {
        st.callers -= 1;
        if st.followers > 0 {
            // One of them may have to take over as leader.
            self.cond.notify_all();
        }
    }

    /// Send one message (fragmented if it must be). Waits for the window unless `nonblock`.
    pub(crate) fn write(
        &self,
        ep: &Endpoint,
        msg: &[u8],
        deadline: Option<Instant>,
        nonblock: bool,
    ) -> Result<(), Error> {
        self.send_loop(ep, deadline, nonblock, |f, now| f.send(msg, now))
    }

    /// Send one message that `fill` writes in place (see [`Frcti::send_with`]): it gets
    /// room for `max_len` bytes once the window admits the message, and returns how many it
    /// wrote (none: nothing is sent). Returns that length. Waits for the window unless
    /// `nonblock`; `fill` is not called if the write fails.
    pub(crate) fn write_with(
        &self,
        ep: &Endpoint,
        max_len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
        deadline: Option<Instant>,
        nonblock: bool,
    ) -> Result<usize, Error> {
        self.send_loop(ep, deadline, nonblock, |f, now| {
            f.send_with(max_len, now, &mut *fill)
        })
    }

    /// Pump, then hand FRCT one message with `send` once nothing holds the flow back, and
    /// flush what it queued; wait for the window in between unless `nonblock`.
    fn send_loop<T>(
        &self,
        ep: &Endpoint,
        deadline: Option<Instant>,
        nonblock: bool,
        mut send: impl FnMut(&mut Frcti, Instant) -> Result<T, FrctError>,
    ) -> Result<T, Error> {
        let mut st = self.enter();
        let r = loop {
            let now = Instant::now();
            let p = match self.pump(&mut st, ep, now, false, None) {
                Ok(p) => p,
                Err(e) => break Err(e),
            };
            self.wake_others(&st, ep, false, &p);
            if st.down {
                break Err(Error::FlowDown);
            }
            if st.stuck.is_none() && st.blocked.is_none() {
                match send(&mut st.frcti, now) {
                    Ok(v) => break self.flush(&mut st, ep, now).map(|()| v),
                    // Closed windows are waited for; a peer that stays silent is judged by
                    // the layer's peer timeout, not here.
                    Err(FrctError::WindowClosed | FrctError::PeerUnresponsive) => {}
                    Err(e) => break Err(frct_error(e)),
                }
            }
            if nonblock {
                break Err(Error::WouldBlock);
            }
            if deadline.is_some_and(|d| now >= d) {
                break Err(Error::Timeout);
            }
            st = self.wait(st, ep, deadline);
        };
        self.leave(st);
        r
    }

    /// The next whole message: copied into `buf` when it arrives whole (one packet) and
    /// fits, so it is copied once on its way from the ring to the application, else in a
    /// buffer of its own. Waits unless `nonblock`.
    pub(crate) fn read_into(
        &self,
        ep: &Endpoint,
        buf: &mut [u8],
        deadline: Option<Instant>,
        nonblock: bool,
    ) -> Result<Got, Error> {
        self.read_loop(ep, Some(buf), deadline, nonblock)
    }

    /// The next whole message, in a buffer of its own. Waits unless `nonblock`.
    pub(crate) fn read(
        &self,
        ep: &Endpoint,
        deadline: Option<Instant>,
        nonblock: bool,
    ) -> Result<Vec<u8>, Error> {
        match self.read_loop(ep, None, deadline, nonblock)? {
            Got::Msg(m) => Ok(m),
            // Only a caller's buffer is filled in place, and there is none.
            Got::Into(_) => Ok(Vec::new()),
        }
    }

    /// [`Self::read_into`], or without a buffer of the caller's ([`Self::read`]).
    fn read_loop(
        &self,
        ep: &Endpoint,
        mut buf: Option<&mut [u8]>,
        deadline: Option<Instant>,
        nonblock: bool,
    ) -> Result<Got, Error> {
        let mut st = self.enter();
        let r = loop {
            let now = Instant::now();
            if let Some(m) = st.frcti.recv() {
                // The window may have moved: announce it.
                break self.flush(&mut st, ep, now).map(|()| Got::Msg(m));
            }
            let p = match self.pump(&mut st, ep, now, true, buf.as_deref_mut()) {
                Ok(p) => p,
                Err(e) => break Err(e),
            };
            self.wake_others(&st, ep, false, &p);
            if let Some(n) = p.into {
                // `pump` flushed after it: the window update, if due, is out.
                break Ok(Got::Into(n));
            }
            if let Some(m) = st.frcti.recv() {
                break self.flush(&mut st, ep, now).map(|()| Got::Msg(m));
            }
            if st.down {
                break Err(Error::FlowDown);
            }
            if let Some(e) = st.frcti.failure() {
                if e == FrctError::RetransmitTimeout {
                    break Err(Error::FlowDown);
                }
            }
            if nonblock {
                break Err(Error::WouldBlock);
            }
            if deadline.is_some_and(|d| now >= d) {
                break Err(Error::Timeout);
            }
            st = self.wait(st, ep, deadline);
        };
        self.leave(st);
        r
    }

    /// On close: acknowledge what arrived, then (reliable flows) wait until what was sent is
    /// acknowledged, the peer is gone, or `linger` passes.
    pub(crate) fn close(&self, ep: &Endpoint, linger: Duration) {
        let deadline = Instant::now() + linger;
        let mut st = self.enter();
        let now = Instant::now();
        st.frcti.ack_now(now);
        loop {
            let now = Instant::now();
            if self.pump(&mut st, ep, now, false, None).is_err() || st.down {
                break;
            }
            let done = !self.reliable || st.frcti.is_idle() || st.frcti.failure().is_some();
            if (done && st.stuck.is_none() && st.blocked.is_none()) || now >= deadline {
                break;
            }
            st = self.wait(st, ep, Some(deadline));
        }
        self.set_timer(None);
        self.leave(st);
    }

    /// Whether a read would return a message now (after pumping what arrived).
    pub(crate) fn poll_readable(&self, ep: &Endpoint) -> bool {
        let Ok(mut st) = self.st.try_lock() else {
            // Someone is in a call; it will wake the set when it makes progress.
            return false;
        };
        let _ = self.pump(&mut st, ep, Instant::now(), true, None);
        st.frcti.has_message()
    }

    /// Whether a write would be accepted now.
    pub(crate) fn poll_writable(&self) -> bool {
        let Ok(st) = self.st.try_lock() else {
            return false;
        };
        st.stuck.is_none() && st.blocked.is_none() && st.frcti.is_window_open() && !st.down
    }

    /// Whether the flow is down as far as FRCT is concerned (retransmissions gave up).
    pub(crate) fn failed(&self) -> bool {
        self.lock().frcti.failure() == Some(FrctError::RetransmitTimeout)
    }

    /// The machine's counters, and packets that did not decode.
    pub(crate) fn stats(&self) -> (FrctCounters, u64) {
        let st = self.lock();
        (st.frcti.counters(), st.malformed)
    }

    /// Timer thread: run the machine if it is due and nobody else is.
    fn on_timer(&self, ep: &Endpoint, now: Instant) {
        let Ok(mut st) = self.st.try_lock() else {
            self.timer.store(
                to_ns(Some(now + Duration::from_millis(1))),
                Ordering::Release,
            );
            return;
        };
        if st.callers > 0 {
            // A caller runs the timers itself (its wait is bounded by them).
            self.timer.store(
                to_ns(Some(now + Duration::from_millis(5))),
                Ordering::Release,
            );
            return;
        }
        match self.pump(&mut st, ep, now, false, None) {
            Ok(p) => self.wake_others(&st, ep, false, &p),
            Err(_) => self.set_timer(None),
        }
        if st.down {
            self.timer.store(u64::MAX, Ordering::Release);
        }
    }
}

fn spin_time() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(o7s_shm::default_spin)
}

/// Sleep on the ring's eventfd and liveness fd until one fires or `until`.
fn sleep_on(ep: &Endpoint, until: Option<Instant>) {
    use rustix::event::{poll, PollFd, PollFlags};
    let (wait, live) = (ep.wait_fd(), ep.live_fd());
    let mut fds = [
        PollFd::new(&wait, PollFlags::IN),
        PollFd::new(&live, PollFlags::IN | PollFlags::RDHUP),
    ];
    let ts = until.map(|u| {
        let left = u.saturating_duration_since(Instant::now());
        rustix::time::Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        }
    });
    let _ = poll(&mut fds, ts.as_ref());
}

/// Something the timer thread drives: a flow with FRCT.
pub(crate) trait Timed: Send + Sync {
    fn reliable(&self) -> Option<&Reliable>;
    fn endpoint(&self) -> &Endpoint;
}

struct TimerList {
    flows: Vec<Weak<dyn Timed>>,
}

struct Timers {
    list: Mutex<TimerList>,
    cond: Condvar,
    /// When the thread plans to wake next (ns since [`epoch`]).
    planned: AtomicU64,
}

fn timers() -> &'static Timers {
    static T: OnceLock<Timers> = OnceLock::new();
    T.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("o7s-frct".into())
            .spawn(timer_thread);
        if let Err(e) = spawned {
            tracing::warn!(
                "cannot start the FRCT timer thread: {e}; idle flows retransmit only when called"
            );
        }
        Timers {
            list: Mutex::new(TimerList { flows: Vec::new() }),
            cond: Condvar::new(),
            planned: AtomicU64::new(u64::MAX),
        }
    })
}

impl Timers {
    /// A flow's timer moved earlier, to `ns`: wake the thread if it sleeps past it.
    fn poke(&self, ns: u64) {
        let planned = self.planned.load(Ordering::Acquire);
        let tick = TICK.as_nanos() as u64;
        if planned == 0 || ns.saturating_add(tick) < planned {
            let _l = self.list.lock().unwrap_or_else(|e| e.into_inner());
            self.planned.store(ns, Ordering::Release);
            self.cond.notify_one();
        }
    }
}

/// Let the timer thread drive `flow`.
pub(crate) fn register(flow: Weak<dyn Timed>) {
    let t = timers();
    t.list
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .flows
        .push(flow);
    t.cond.notify_one();
}

fn timer_thread() {
    let t = timers();
    let mut due: Vec<Arc<dyn Timed>> = Vec::new();
    loop {
        let mut l = t.list.lock().unwrap_or_else(|e| e.into_inner());
        // While scanning and working, every earlier timer pokes (and waits for the lock).
        t.planned.store(0, Ordering::Release);
        let now = Instant::now();
        let now_ns = to_ns(Some(now));
        let mut earliest = u64::MAX;
        l.flows.retain(|w| {
            let Some(f) = w.upgrade() else { return false };
            let Some(r) = f.reliable() else { return false };
            let ns = r.timer.load(Ordering::Acquire);
            if ns <= now_ns {
                due.push(f);
            } else {
                earliest = earliest.min(ns);
            }
            true
        });
        if due.is_empty() {
            let sleep = from_ns(earliest)
                .map_or(Duration::from_secs(1), |e| e.saturating_duration_since(now))
                .clamp(TICK, Duration::from_secs(1));
            t.planned.store(to_ns(Some(now + sleep)), Ordering::Release);
            let _ = t.cond.wait_timeout(l, sleep);
            continue;
        }
        drop(l);
        for f in due.drain(..) {
            if let Some(r) = f.reliable() {
                r.on_timer(f.endpoint(), Instant::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_an_ipcp_fills_bounds_the_receive_window() {
        let qos = QosSpec::DATA;
        let c = config_for(&qos, 1496, Some((1 << 20, 79)));
        assert_eq!((c.rq_size, c.rcv_buf), (256, Some((1 << 20, 79))));
        assert_eq!(c.max_fragment, 1496 - HEADER_LEN);
        assert_eq!(config_for(&qos, 1496, None).rcv_buf, None);
    }
}
