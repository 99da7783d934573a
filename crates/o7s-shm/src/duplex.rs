//! Both directions of one flow endpoint plus the spin-then-sleep logic and the wake-up
//! handshake. Generic over [`Wait`] so the same code runs over eventfds (real) and over a
//! loom-checked condition variable (model).

use crate::ring::{Ring, RxState, TxState};
use crate::sync::{fence, lock, spin_hint, AtomicBool, AtomicU32, Mutex, Ordering};
use crate::ShmError;
use std::time::{Duration, Instant};

/// What ended a sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slept {
    /// Our wake object was signalled (or the sleep was interrupted).
    Woken,
    /// The deadline passed.
    Timeout,
    /// The liveness signal says the flow is down.
    Down,
}

/// The kernel side of waiting: the own wake object, the peer's, and the liveness signal.
pub trait Wait: Send + Sync {
    /// Signal the peer's wake object (the peer announced it sleeps).
    fn notify_peer(&self);
    /// Signal our own wake object (hand a consumed wake-up on to another sleeper).
    fn notify_self(&self);
    /// Block until our wake object is signalled, the flow is down, or `deadline`. Does not
    /// consume the signal.
    fn sleep(&self, deadline: Option<Instant>) -> Slept;
    /// Reset our wake object; returns the count it held.
    fn drain(&self) -> u64;
    /// Non-blocking liveness check.
    fn poll_down(&self) -> bool;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Rx,
    Tx,
}

/// How many successful non-blocking writes between two liveness checks.
const LIVENESS_EVERY: u32 = 1024;

/// Serialises blocking callers of one direction (only one of them spins or sleeps at a time,
/// so each shared sleep flag has one owner in this process).
struct Gate(AtomicBool);

struct GateGuard<'a>(&'a Gate);

impl Gate {
    fn enter(&self, deadline: Option<Instant>) -> Result<GateGuard<'_>, ShmError> {
        let mut backoff = Duration::from_micros(10);
        loop {
            if self
                .0
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(GateGuard(self));
            }
            // Contended: another thread of this process blocks on the same direction.
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(ShmError::Timeout);
            }
            #[cfg(loom)]
            {
                let _ = backoff;
                spin_hint();
            }
            #[cfg(not(loom))]
            {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(1));
            }
        }
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        self.0 .0.store(false, Ordering::Release);
    }
}

/// One endpoint's view of a flow: ring `tx` is written, ring `rx` is read.
pub struct Duplex<W: Wait> {
    tx: Ring,
    rx: Ring,
    tx_st: Mutex<TxState>,
    rx_st: Mutex<RxState>,
    tx_gate: Gate,
    rx_gate: Gate,
    /// A thread of this process is in `sleep(Rx)` / `sleep(Tx)`.
    rx_sleeper: AtomicBool,
    tx_sleeper: AtomicBool,
    down: AtomicBool,
    spin: Duration,
    /// Adaptive spinning: credit left for spinning before sleeping. A spin that finds work
    /// refills it; one that ends in sleep spends one. With no credit only every
    /// `SPIN_PROBE_EVERY`-th blocking call spins, so an idle flow stops burning a core (on a
    /// two-core machine a futile spinner also delays the very peer it waits for).
    spin_credit: AtomicU32,
    spin_probe: AtomicU32,
    wait: W,
}

/// Spins that may end in sleep before spinning stops.
const SPIN_CREDIT: u32 = 4;
/// With no credit left, one blocking call in this many still tries a spin.
const SPIN_PROBE_EVERY: u32 = 16;

impl<W: Wait> Duplex<W> {
    pub(crate) fn new(
        tx: Ring,
        rx: Ring,
        tx_st: TxState,
        rx_st: RxState,
        wait: W,
        spin: Duration,
    ) -> Self {
        Duplex {
            tx,
            rx,
            tx_st: Mutex::new(tx_st),
            rx_st: Mutex::new(rx_st),
            tx_gate: Gate(AtomicBool::new(false)),
            rx_gate: Gate(AtomicBool::new(false)),
            rx_sleeper: AtomicBool::new(false),
            tx_sleeper: AtomicBool::new(false),
            down: AtomicBool::new(false),
            spin,
            spin_credit: AtomicU32::new(SPIN_CREDIT),
            spin_probe: AtomicU32::new(0),
            wait,
        }
    }

    pub(crate) fn wait(&self) -> &W {
        &self.wait
    }

    /// Remember that the flow is down (the owner found out by itself).
    #[cfg(not(loom))]
    pub(crate) fn note_down(&self) {
        self.down.store(true, Ordering::Relaxed);
    }

    /// Give up the rings, keeping the waiter.
    #[cfg(not(loom))]
    pub(crate) fn into_wait(self) -> W {
        self.wait
    }

    /// The control block of the ring this end writes.
    #[cfg(not(loom))]
    pub(crate) fn tx_ctl(&self) -> &crate::ring::RingCtl {
        self.tx.ctl()
    }

    /// The control block of the ring this end reads.
    #[cfg(not(loom))]
    pub(crate) fn rx_ctl(&self) -> &crate::ring::RingCtl {
        self.rx.ctl()
    }

    /// See [`crate::Endpoint::set_spin`].
    pub(crate) fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// See [`crate::Endpoint::max_packet`].
    pub fn max_packet(&self) -> usize {
        self.tx.max_packet()
    }

    /// See [`crate::Endpoint::headroom`].
    pub fn headroom(&self) -> usize {
        self.tx.headroom()
    }

    fn fail<T>(&self, e: ShmError) -> Result<T, ShmError> {
        if matches!(e, ShmError::Corrupt(_) | ShmError::Down) {
            self.down.store(true, Ordering::Relaxed);
        }
        Err(e)
    }

    fn push(
        &self,
        max_len: usize,
        f: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<(), ShmError> {
        let mut st = lock(&self.tx_st);
        match self.tx.push(&mut st, max_len, f) {
            Ok(wake) => {
                let check = st.count.is_multiple_of(LIVENESS_EVERY);
                drop(st);
                if wake {
                    self.wait.notify_peer();
                }
                if check && self.is_down() {
                    // The packet is in the ring, but nobody will read it; say so now.
                    return Err(ShmError::Down);
                }
                Ok(())
            }
            Err(e) => self.fail(e),
        }
    }

    /// See [`crate::Endpoint::try_write_with_trim`].
    pub fn try_write_with_trim(
        &self,
        max_len: usize,
        f: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<(), ShmError> {
        self.try_write_with_opt(max_len, |b| Some(f(b)))
    }

    /// See [`crate::Endpoint::try_write_with_opt`].
    pub fn try_write_with_opt(
        &self,
        max_len: usize,
        f: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<(), ShmError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(ShmError::Down);
        }
        match self.push(max_len, f) {
            Err(ShmError::WouldBlock) if self.is_down() => Err(ShmError::Down),
            r => r,
        }
    }

    /// See [`crate::Endpoint::try_write_with`].
    pub fn try_write_with(&self, len: usize, f: impl FnOnce(&mut [u8])) -> Result<(), ShmError> {
        self.try_write_with_trim(len, |b| {
            f(b);
            len
        })
    }

    fn fill<'p>(&self, payload: &'p [u8]) -> impl FnOnce(&mut [u8]) -> Option<usize> + 'p {
        let hr = self.tx.headroom();
        move |b| {
            b[hr..].copy_from_slice(payload);
            Some(payload.len())
        }
    }

    /// See [`crate::Endpoint::try_write`].
    pub fn try_write(&self, payload: &[u8]) -> Result<(), ShmError> {
        self.try_write_with_opt(payload.len(), self.fill(payload))
    }

    /// See [`crate::Endpoint::write`].
    pub fn write(&self, payload: &[u8], deadline: Option<Instant>) -> Result<(), ShmError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(ShmError::Down);
        }
        match self.push(payload.len(), self.fill(payload)) {
            Err(ShmError::WouldBlock) => {}
            r => return r,
        }
        let _g = self.tx_gate.enter(deadline)?;
        let len = payload.len();
        self.block(Dir::Tx, deadline, len, || {
            self.push(len, self.fill(payload))
        })
    }

    /// Serve `attempt` until it stops saying `WouldBlock`: spin for `self.spin`, then sleep
    /// with the flag handshake. The caller holds the direction's gate.
    fn block<T>(
        &self,
        dir: Dir,
        deadline: Option<Instant>,
        tx_len: usize,
        mut attempt: impl FnMut() -> Result<T, ShmError>,
    ) -> Result<T, ShmError> {
        let mut spin_until: Option<Instant> = None;
        let mut spinning = !self.spin.is_zero()
            && (self.spin_credit.load(Ordering::Relaxed) > 0
                || self
                    .spin_probe
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(SPIN_PROBE_EVERY));
        loop {
            match attempt() {
                Err(ShmError::WouldBlock) => {}
                r => {
                    if spinning && spin_until.is_some() {
                        // The spin paid off.
                        self.spin_credit.store(SPIN_CREDIT, Ordering::Relaxed);
                    }
                    return r;
                }
            }
            if spinning {
                let now = Instant::now();
                let until = *spin_until.get_or_insert(now + self.spin);
                if now < until && deadline.is_none_or(|d| now < d) {
                    spin_hint();
                    continue;
                }
                // The spin ran out: spend credit, and don't spin again in this call.
                let c = self.spin_credit.load(Ordering::Relaxed);
                self.spin_credit
                    .store(c.saturating_sub(1), Ordering::Relaxed);
                spinning = false;
            }
            match self.sleep(dir, deadline, tx_len) {
                Ok(()) => {}
                Err(ShmError::Down) if dir == Dir::Rx => {
                    // Down, but deliver what is still queued.
                    return match attempt() {
                        Err(ShmError::WouldBlock) => Err(ShmError::Down),
                        r => r,
                    };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Announce sleep (flag, fence), re-check, then sleep on the own wake object.
    fn sleep(&self, dir: Dir, deadline: Option<Instant>, tx_len: usize) -> Result<(), ShmError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(ShmError::Down);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(ShmError::Timeout);
        }
        let (me, other, flag, other_flag): (&AtomicBool, &AtomicBool, &AtomicU32, &AtomicU32) =
            match dir {
                Dir::Rx => (
                    &self.rx_sleeper,
                    &self.tx_sleeper,
                    &self.rx.ctl().consumer_sleeping,
                    &self.tx.ctl().producer_waiting,
                ),
                Dir::Tx => (
                    &self.tx_sleeper,
                    &self.rx_sleeper,
                    &self.tx.ctl().producer_waiting,
                    &self.rx.ctl().consumer_sleeping,
                ),
            };
        me.store(true, Ordering::SeqCst);
        flag.store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let ready = match dir {
            Dir::Rx => self.rx.rx_ready(),
            Dir::Tx => self.tx_space(tx_len),
        };
        let r = if ready {
            Ok(())
        } else {
            let slept = self.wait.sleep(deadline);
            // Whatever woke us: reset our wake object. If another thread of ours sleeps on
            // the same object and the peer cleared that thread's flag, the count we just
            // consumed may have been meant for it: pass it on (at most once per wake-up).
            if self.wait.drain() > 0
                && other.load(Ordering::SeqCst)
                && other_flag.load(Ordering::SeqCst) == 0
            {
                self.wait.notify_self();
            }
            match slept {
                Slept::Woken => Ok(()),
                Slept::Timeout => Err(ShmError::Timeout),
                Slept::Down => {
                    self.down.store(true, Ordering::Relaxed);
                    // Another thread of ours may sleep on the same wake object, and the one
                    // signal of a flow taken down (`mark_down`) may be the one we drained.
                    self.wait.notify_self();
                    Err(ShmError::Down)
                }
            }
        };
        // Withdraw the announcement unless the peer already did (saves a shared-line write).
        if flag.load(Ordering::Relaxed) != 0 {
            flag.store(0, Ordering::Relaxed);
        }
        me.store(false, Ordering::SeqCst);
        r
    }

    fn pop<R>(
        &self,
        f: impl FnOnce(&crate::ring::Data, usize, usize) -> Result<R, ShmError>,
    ) -> Result<R, ShmError> {
        let mut st = lock(&self.rx_st);
        match self.rx.pop(&mut st, f) {
            Ok((r, wake)) => {
                drop(st);
                if wake {
                    self.wait.notify_peer();
                }
                Ok(r)
            }
            Err(e) => self.fail(e),
        }
    }

    fn pop_into(&self, buf: &mut [u8]) -> Result<usize, ShmError> {
        self.pop(|d, off, len| {
            let dst = buf
                .get_mut(..len)
                .ok_or(ShmError::BufferTooSmall { needed: len })?;
            d.copy_out(off, dst);
            Ok(len)
        })
    }

    fn empty(&self) -> ShmError {
        if self.is_down() {
            ShmError::Down
        } else {
            ShmError::WouldBlock
        }
    }

    /// See [`crate::Endpoint::try_read`].
    pub fn try_read(&self, buf: &mut [u8]) -> Result<usize, ShmError> {
        match self.pop_into(buf) {
            Err(ShmError::WouldBlock) => Err(self.empty()),
            r => r,
        }
    }

    /// See [`crate::Endpoint::read`].
    pub fn read(&self, buf: &mut [u8], deadline: Option<Instant>) -> Result<usize, ShmError> {
        match self.pop_into(buf) {
            Err(ShmError::WouldBlock) => {}
            r => return r,
        }
        let _g = self.rx_gate.enter(deadline)?;
        self.block(Dir::Rx, deadline, 0, || self.pop_into(buf))
    }

    /// See [`crate::Endpoint::try_read_with`].
    pub fn try_read_with<R>(&self, f: impl FnOnce(&mut [u8], usize) -> R) -> Result<R, ShmError> {
        let hr = self.rx.headroom();
        match self.pop(|d, off, len| Ok(d.with_mut(off - hr, hr + len, |s| f(s, hr)))) {
            Err(ShmError::WouldBlock) => Err(self.empty()),
            r => r,
        }
    }

    /// See [`crate::Endpoint::rx_ready`].
    pub fn rx_ready(&self) -> bool {
        self.rx.rx_ready()
    }

    /// See [`crate::Endpoint::tx_space`].
    pub fn tx_space(&self, len: usize) -> bool {
        let mut st = lock(&self.tx_st);
        len <= self.tx.max_packet() && self.tx.tx_fits(&mut st, len).unwrap_or(false)
    }

    /// See [`crate::Endpoint::tx_queued`].
    pub fn tx_queued(&self) -> usize {
        let st = lock(&self.tx_st);
        self.tx.queued(&st) as usize
    }

    /// See [`crate::Endpoint::is_down`].
    pub fn is_down(&self) -> bool {
        if self.down.load(Ordering::Relaxed) {
            return true;
        }
        let d = self.wait.poll_down();
        if d {
            self.down.store(true, Ordering::Relaxed);
        }
        d
    }

    /// See [`crate::Endpoint::arm`].
    pub fn arm(&self, rx: bool, tx_len: Option<usize>) -> bool {
        if rx {
            self.rx.ctl().consumer_sleeping.store(1, Ordering::SeqCst);
        }
        if tx_len.is_some() {
            self.tx.ctl().producer_waiting.store(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        let busy = (rx && self.rx.rx_ready()) || tx_len.is_some_and(|l| self.tx_space(l));
        if busy || self.down.load(Ordering::Relaxed) {
            if rx {
                self.rx.ctl().consumer_sleeping.store(0, Ordering::SeqCst);
            }
            if tx_len.is_some() {
                self.tx.ctl().producer_waiting.store(0, Ordering::SeqCst);
            }
            return false;
        }
        true
    }

    /// See [`crate::Endpoint::disarm`].
    pub fn disarm(&self) {
        self.rx.ctl().consumer_sleeping.store(0, Ordering::SeqCst);
        self.tx.ctl().producer_waiting.store(0, Ordering::SeqCst);
    }

    /// See [`crate::Endpoint::drain_wakeups`].
    pub fn drain_wakeups(&self) {
        self.wait.drain();
    }
}
