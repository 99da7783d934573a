//! The real endpoint: maps a flow's memfd and runs a [`Duplex`] over eventfds.

use crate::data::{CtlRef, Data};
use crate::duplex::Duplex;
use crate::fdwait::{DownFlag, FdWait};
use crate::layout::{
    ctl_off, park_off, stats_off, Geometry, DATA_OFF, DOWN_OFF, HEADER_LEN, STATS_WORDS,
};
use crate::ring::{Ring, RingCtl, RxState, TxState};
use crate::sync::Ordering;
use crate::{RingConfig, ShmError, Side};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};
use std::ffi::c_void;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

/// Create and initialise a new flow region; returns the memfd (close-on-exec).
///
/// The region is sealed against shrinking and growing, so a process it is handed to cannot
/// make the other's mapping fault.
pub fn create_flow_mem(cfg: &RingConfig) -> Result<OwnedFd, ShmError> {
    let g = Geometry::from_config(cfg)?;
    let fd = rustix::fs::memfd_create("o7s-flow", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    rustix::fs::ftruncate(&fd, g.total_len() as u64)?;
    let h = g.encode();
    let n = rustix::io::pwrite(&fd, &h, 0)?;
    if n != h.len() {
        return Err(ShmError::Io(std::io::Error::other(
            "short write of flow header",
        )));
    }
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
    Ok(fd)
}

/// A new eventfd for an endpoint to sleep on (`EFD_NONBLOCK | EFD_CLOEXEC`).
pub fn new_eventfd() -> Result<OwnedFd, ShmError> {
    use rustix::event::{eventfd, EventfdFlags};
    Ok(eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?)
}

/// A liveness pair, one end per endpoint: closing one (the process exits, or drops its
/// endpoint) makes the other report the flow down. A pipe (close-on-exec, non-blocking) that
/// nobody writes: its read end reports hang-up when the write end is gone, the write end an
/// error when the read end is. Not a socket pair: a unix socket sent with `SCM_RIGHTS` makes
/// the kernel queue its socket garbage collector on every later close of a unix socket,
/// which cost about a sixth of the CPU of allocating flows.
pub fn liveness_pair() -> Result<(OwnedFd, OwnedFd), ShmError> {
    use rustix::pipe::{pipe_with, PipeFlags};
    Ok(pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?)
}

/// Take the flow of region `mem` down for both ends, whatever they still hold: mark it down
/// in the region and signal both ends' eventfds (`wake`), so a sleeper wakes and sees it.
/// For whoever holds the region's memfd and the ends' eventfds: the IRMd.
pub fn mark_down(mem: BorrowedFd<'_>, wake: &[OwnedFd]) -> Result<(), ShmError> {
    // One byte, so the ends' atomic loads of the word see it whole.
    let n = rustix::io::pwrite(mem, &[1], DOWN_OFF as u64)?;
    if n != 1 {
        return Err(ShmError::BadRegion("region too small to mark down".into()));
    }
    for w in wake {
        // EAGAIN: the counter is saturated, the sleeper wakes anyway.
        let _ = rustix::io::write(w, &1u64.to_ne_bytes());
    }
    Ok(())
}

/// The spin time before sleeping: `O7S_SPIN_US` (microseconds, 0 disables) or 50 µs.
pub fn default_spin() -> Duration {
    // Read once: every flow's endpoint asks.
    static SPIN: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *SPIN.get_or_init(|| {
        let us = std::env::var("O7S_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(50);
        Duration::from_micros(us)
    })
}

/// The three fds of an endpoint besides its region.
struct FdWaitFds {
    own: OwnedFd,
    peer: std::sync::Arc<OwnedFd>,
    live: OwnedFd,
}

/// An owned `MAP_SHARED` mapping, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    pub(crate) ptr: NonNull<c_void>,
    pub(crate) len: usize,
}

impl Mapping {
    /// A fresh read-write shared mapping of the first `len` bytes of `fd`, at an address
    /// the kernel picks.
    ///
    /// # Safety
    /// The file must be at least `len` bytes long and unable to shrink while mapped (sealed),
    /// or touching the mapping may raise SIGBUS.
    pub(crate) unsafe fn shared(fd: BorrowedFd<'_>, len: usize) -> Result<Mapping, ShmError> {
        // SAFETY: a new mapping (null hint) that replaces nothing; the caller vouches for the
        // file's length (contract above).
        let p = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let ptr =
            NonNull::new(p).ok_or_else(|| ShmError::BadRegion("mmap returned null".into()))?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` came from a successful mmap and are unmapped exactly once, here;
        // `Endpoint` drops its `Duplex` (every pointer into the mapping) before the mapping.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr(), self.len) };
    }
}

/// What one end of a flow last published with [`Endpoint::publish_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndStats {
    /// The publishing process.
    pub pid: u32,
    /// The counters, in the order the publisher gave them (zero past what it gave).
    pub words: [u64; STATS_WORDS],
}

/// Read what each end of the flow region `mem` published ([`Endpoint::publish_stats`]):
/// side A's and side B's, `None` for an end that never published. Maps the header page
/// read-only for the time of the call.
pub fn read_stats(mem: BorrowedFd<'_>) -> Result<[Option<EndStats>; 2], ShmError> {
    use std::sync::atomic::{fence, AtomicU64, Ordering as O};
    let st = rustix::fs::fstat(mem)?;
    if st.st_size < DATA_OFF as i64 {
        return Err(ShmError::BadRegion("region smaller than its header".into()));
    }
    // SAFETY: a fresh read-only shared mapping of the file's first page, which exists (size
    // checked above; flow regions are sealed against shrinking).
    let p = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            DATA_OFF,
            ProtFlags::READ,
            MapFlags::SHARED,
            mem,
            0,
        )?
    };
    let map = Mapping {
        ptr: NonNull::new(p).ok_or_else(|| ShmError::BadRegion("mmap returned null".into()))?,
        len: DATA_OFF,
    };
    let mut out = [None, None];
    for (i, o) in out.iter_mut().enumerate() {
        let q = map
            .ptr
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(stats_off(i))
            .cast::<AtomicU64>();
        // SAFETY: in the mapped page, 8-aligned (see `Endpoint::stats_slot`); only read, and
        // only atomically; `map` outlives the slice.
        let slot = unsafe { std::slice::from_raw_parts(q, 2 + STATS_WORDS) };
        for _ in 0..1000 {
            let s1 = slot[0].load(O::Acquire);
            if s1 == 0 {
                break;
            }
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let pid = slot[1].load(O::Relaxed);
            let mut words = [0u64; STATS_WORDS];
            for (w, a) in words.iter_mut().zip(&slot[2..]) {
                *w = a.load(O::Relaxed);
            }
            fence(O::Acquire);
            if slot[0].load(O::Relaxed) == s1 {
                *o = Some(EndStats {
                    pid: u32::try_from(pid).unwrap_or(0),
                    words,
                });
                break;
            }
        }
    }
    drop(map);
    Ok(out)
}

/// One end of a flow: writes one ring of the shared region, reads the other.
///
/// `Send + Sync`: reads from several threads are serialised among themselves, so are writes;
/// one thread may read while another writes.
///
/// ```
/// use o7s_shm::*;
/// let mem = create_flow_mem(&RingConfig::default())?;
/// let (la, lb) = liveness_pair()?;
/// let (ea, eb) = (new_eventfd()?, new_eventfd()?);
/// let a = Endpoint::new(mem.try_clone()?, Side::A, ea.try_clone()?, eb.try_clone()?, la)?;
/// let b = Endpoint::new(mem, Side::B, eb, ea, lb)?;
/// a.write(b"hello", None)?;
/// let mut buf = [0u8; 64];
/// let n = b.read(&mut buf, None)?;
/// assert_eq!(&buf[..n], b"hello");
/// # Ok::<(), o7s_shm::ShmError>(())
/// ```
pub struct Endpoint {
    // Field order matters: `inner` points into `_map` and must be dropped first.
    inner: Duplex<FdWait>,
    _map: Mapping,
    geometry: Geometry,
    side: Side,
}

// SAFETY: the raw pointers in `Duplex`'s rings point into `_map`, which lives as long as the
// endpoint and is never remapped; every access to the shared bytes goes through atomics or is
// serialised by the per-direction mutexes (see `Duplex`).
unsafe impl Send for Endpoint {}
// SAFETY: as for `Send`: shared access is atomic or behind the per-direction mutexes.
unsafe impl Sync for Endpoint {}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("capacity", &self.geometry.capacity)
            .field("headroom", &self.geometry.headroom)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Map the region and become `side` of the flow.
    ///
    /// The memfd may come from an untrusted process: the header is checked against the file
    /// size and the memfd must be sealed against shrinking; a bad region is `BadRegion`.
    /// `own_wait` is the eventfd this endpoint sleeps on, `peer_wait` the peer's, `live` this
    /// endpoint's end of the liveness pair.
    pub fn new(
        mem: OwnedFd,
        side: Side,
        own_wait: OwnedFd,
        peer_wait: OwnedFd,
        live: OwnedFd,
    ) -> Result<Endpoint, ShmError> {
        let st = rustix::fs::fstat(&mem)?;
        let file_len =
            u64::try_from(st.st_size).map_err(|_| ShmError::BadRegion("negative size".into()))?;
        let mut h = [0u8; HEADER_LEN];
        let n = rustix::io::pread(&mem, &mut h, 0)?;
        if n != HEADER_LEN {
            return Err(ShmError::BadRegion(format!(
                "region of {file_len} bytes has no header"
            )));
        }
        let g = Geometry::decode(&h, file_len)?;
        let seals = rustix::fs::fcntl_get_seals(&mem)
            .map_err(|e| ShmError::BadRegion(format!("not a sealed memfd: {e}")))?;
        if !seals.contains(SealFlags::SHRINK) {
            return Err(ShmError::BadRegion(
                "memfd is not sealed against shrinking".into(),
            ));
        }
        // SAFETY: we just checked the file to be exactly `total_len` bytes and sealed so it
        // cannot shrink under us (no SIGBUS).
        let map = unsafe { Mapping::shared(mem.as_fd(), g.total_len())? };
        drop(mem);
        Endpoint::build(
            map,
            g,
            side,
            FdWaitFds {
                own: own_wait,
                peer: std::sync::Arc::new(peer_wait),
                live,
            },
        )
    }

    /// The endpoint over mapping `map` of a region of geometry `g`, continuing from the
    /// positions the region holds.
    fn build(map: Mapping, g: Geometry, side: Side, fds: FdWaitFds) -> Result<Endpoint, ShmError> {
        let base = map.ptr.as_ptr().cast::<u8>();
        let at = |off: usize| {
            // In bounds (`off < len`), so never null; `wrapping_add` keeps this safe code.
            NonNull::new(base.wrapping_add(off)).ok_or_else(|| ShmError::BadRegion("null".into()))
        };
        let ring = |i: usize| -> Result<Ring, ShmError> {
            let ctl = at(ctl_off(i))?.cast::<RingCtl>();
            // SAFETY: `ctl_off(i)` is 128-byte aligned and `ctl_off(1) + size_of::<RingCtl>()`
            // is below `DATA_OFF`, inside the page-aligned mapping; it outlives the ring
            // (field order of `Endpoint`).
            let ctl = unsafe { CtlRef::new(ctl) };
            let data = at(g.data_off(i))?;
            // SAFETY: data area `i` is `capacity` bytes at a page-aligned offset, inside the
            // mapping of `DATA_OFF + 2 * capacity` bytes, disjoint from the other ring's area.
            let data = unsafe { Data::new(data, g.capacity) };
            Ok(Ring::new(ctl, data, g.headroom))
        };
        let (tx, rx) = match side {
            Side::A => (ring(0)?, ring(1)?),
            Side::B => (ring(1)?, ring(0)?),
        };
        // Our own positions: zero in a fresh region; loaded so that a re-mapped endpoint
        // continues. They must be record-aligned; everything else is checked at use.
        let tail = tx.ctl().tail.0.load(Ordering::Acquire);
        let head = rx.ctl().head.0.load(Ordering::Acquire);
        if !tail.is_multiple_of(8) || !head.is_multiple_of(8) {
            return Err(ShmError::BadRegion("misaligned ring position".into()));
        }
        let peer = match side {
            Side::A => 1,
            Side::B => 0,
        };
        // SAFETY: `DOWN_OFF` and `park_off` are 4-aligned in the header page of the mapping,
        // which outlives the `FdWait` (field order of `Endpoint`); the words are only
        // accessed atomically here, the down word written by the IRMd through the file
        // (`mark_down`), the park word by the peer and the IRMd atomically (`park`).
        let down = unsafe { DownFlag::new(at(DOWN_OFF)?.cast(), at(park_off(peer))?.cast()) };
        let wait = FdWait {
            own: fds.own,
            peer: fds.peer,
            live: fds.live,
            down,
            watched: std::sync::atomic::AtomicBool::new(false),
        };
        Ok(Endpoint {
            inner: Duplex::new(
                tx,
                rx,
                TxState::new(tail),
                RxState::new(head),
                wait,
                default_spin(),
            ),
            _map: map,
            geometry: g,
            side,
        })
    }

    /// The same end of the same region as a fresh flow, after the IRMd reset the region
    /// (see [`crate::park`]): new ring states from the region's (zeroed) positions, the
    /// default spin.
    pub(crate) fn reopen(self) -> Result<Endpoint, ShmError> {
        let Endpoint {
            inner,
            _map,
            geometry,
            side,
        } = self;
        let FdWait {
            own, peer, live, ..
        } = inner.into_wait();
        // A wake-up left over is only a spurious one: not drained, so none that the peer
        // sent for the new flow is lost.
        Endpoint::build(_map, geometry, side, FdWaitFds { own, peer, live })
    }

    /// The word of region state `word` (`layout::park_off`) of this endpoint's mapping.
    pub(crate) fn header_word(&self, off: usize) -> &std::sync::atomic::AtomicU32 {
        let p = self._map.ptr.as_ptr().cast::<u8>().wrapping_add(off);
        // SAFETY: `off` is one of the header page's 4-aligned u32 words (asserted in
        // `layout`), inside the page-aligned mapping that lives as long as `self`; the
        // word is only ever accessed atomically, by every process that maps it.
        unsafe { &*p.cast::<std::sync::atomic::AtomicU32>() }
    }

    /// The positions of both rings (bytes ever written and released of each), as the
    /// region holds them now.
    pub(crate) fn positions(&self) -> [u64; 4] {
        let (t, r) = (self.inner.tx_ctl(), self.inner.rx_ctl());
        [
            t.tail.0.load(Ordering::Acquire),
            t.head.0.load(Ordering::Acquire),
            r.tail.0.load(Ordering::Acquire),
            r.head.0.load(Ordering::Acquire),
        ]
    }

    /// The caller watches [`live_fd`](Self::live_fd) with its own epoll and calls
    /// [`check_live`](Self::check_live) when it fires: from now on the non-blocking calls
    /// ([`is_down`](Self::is_down), an empty [`try_read`](Self::try_read)) read the region's
    /// words only, without a system call each (a thread that serves many flows would
    /// otherwise poll every flow's liveness fd on every round).
    pub fn watch_live(&self) {
        self.inner
            .wait()
            .watched
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Look at the liveness fd now (one non-blocking poll): whether the peer is gone, which
    /// the endpoint then remembers.
    pub fn check_live(&self) -> bool {
        if self.inner.wait().live_hung_up() {
            self.inner.note_down();
            return true;
        }
        self.inner.is_down()
    }

    /// The peer's eventfd, to signal it after this endpoint is handed on.
    pub(crate) fn peer_waker(&self) -> std::sync::Arc<OwnedFd> {
        self.inner.wait().peer.clone()
    }

    /// Which end of the flow this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// This end's statistics slot in the header page: sequence, pid, counters.
    fn stats_slot(&self) -> &[std::sync::atomic::AtomicU64] {
        let i = match self.side {
            Side::A => 0,
            Side::B => 1,
        };
        let p = self
            ._map
            .ptr
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(stats_off(i))
            .cast::<std::sync::atomic::AtomicU64>();
        // SAFETY: the slot lies in the header page of the mapping (asserted in `layout`),
        // 8-aligned (page-aligned mapping, 128-byte-aligned offset), touched by nothing but
        // the stats functions, which access it atomically only; it lives as long as `self`.
        unsafe { std::slice::from_raw_parts(p, 2 + STATS_WORDS) }
    }

    /// Publish up to [`STATS_WORDS`] counters of this end (with this process's pid) in the
    /// region's header page, where whoever holds the region's memfd (the IRMd) reads them
    /// with [`read_stats`] without touching the rings. One writer per end at a time (the
    /// caller serialises); a reader sees one whole snapshot (a sequence word, as a seqlock).
    pub fn publish_stats(&self, words: &[u64]) {
        use std::sync::atomic::{fence, Ordering as O};
        let slot = self.stats_slot();
        let seq = slot[0].load(O::Relaxed);
        slot[0].store(seq.wrapping_add(1) | 1, O::Relaxed);
        fence(O::Release);
        slot[1].store(u64::from(std::process::id()), O::Relaxed);
        for (i, w) in slot[2..].iter().enumerate() {
            w.store(words.get(i).copied().unwrap_or(0), O::Relaxed);
        }
        slot[0].store((seq | 1).wrapping_add(1), O::Release);
    }

    /// Set how long a blocking call spins before it sleeps (default: [`default_spin`]).
    pub fn set_spin(&mut self, spin: Duration) {
        self.inner.set_spin(spin);
    }

    /// Ring capacity in bytes (per direction).
    pub fn capacity(&self) -> usize {
        self.geometry.capacity
    }

    /// Largest payload accepted (a quarter of the ring minus record overhead).
    pub fn max_packet(&self) -> usize {
        self.inner.max_packet()
    }

    /// Bytes reserved in front of each payload for lower-layer headers.
    pub fn headroom(&self) -> usize {
        self.inner.headroom()
    }

    /// What the ring this endpoint reads holds, for a peer that drops what does not fit
    /// (an IPCP delivering from the network): (bytes, bytes per packet besides its
    /// payload). Packets whose payloads and per-packet bytes sum to no more than the bytes
    /// minus one more packet (the room a record may lose to the skip at the buffer's end)
    /// always fit, wherever the ring's positions stand.
    pub fn rx_budget(&self) -> (usize, usize) {
        let per_packet = crate::layout::REC_HDR + self.geometry.headroom + 7;
        (self.geometry.capacity, per_packet)
    }

    /// Write one packet without blocking: `WouldBlock` if the ring is full (backpressure, the
    /// packet is not queued), `TooBig` above [`max_packet`](Self::max_packet), `Down` if the
    /// flow is down (checked from a cached flag, and by polling every 1024 packets or when full).
    pub fn try_write(&self, payload: &[u8]) -> Result<(), ShmError> {
        self.inner.try_write(payload)
    }

    /// Write one packet, blocking (spin, then sleep) until there is space, the flow is
    /// down, or `deadline` passes (`Timeout`).
    pub fn write(&self, payload: &[u8], deadline: Option<Instant>) -> Result<(), ShmError> {
        self.inner.write(payload, deadline)
    }

    /// Zero-copy write: reserve a record for `len` payload bytes and let `f` fill it.
    ///
    /// `f` gets `headroom() + len` bytes: the headroom (writable, e.g. for a lower-layer
    /// header) followed by the payload at offset [`headroom`](Self::headroom). With the default
    /// headroom of 0 that is exactly the payload. The record is committed when `f` returns.
    pub fn try_write_with(&self, len: usize, f: impl FnOnce(&mut [u8])) -> Result<(), ShmError> {
        self.inner.try_write_with(len, f)
    }

    /// Like [`try_write_with`](Self::try_write_with), but `f` returns how many payload bytes
    /// it used (at most `max_len`), e.g. after receiving a datagram straight into the ring.
    pub fn try_write_with_trim(
        &self,
        max_len: usize,
        f: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<(), ShmError> {
        self.inner.try_write_with_trim(max_len, f)
    }

    /// Like [`try_write_with_trim`](Self::try_write_with_trim), but `f` may also decline
    /// (`None`): then no record is written and the ring is as before (`Ok(())`). For a
    /// receiver that reserves room in the flow it expects a packet for, receives, and finds
    /// the packet belongs elsewhere (or that nothing came).
    pub fn try_write_with_opt(
        &self,
        max_len: usize,
        f: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<(), ShmError> {
        self.inner.try_write_with_opt(max_len, f)
    }

    /// Read one packet without blocking: its length, `WouldBlock` if none is queued,
    /// `BufferTooSmall { needed }` (the packet stays queued), `Down` only when empty and down,
    /// `Corrupt` if the peer broke the ring (the endpoint is then down).
    pub fn try_read(&self, buf: &mut [u8]) -> Result<usize, ShmError> {
        self.inner.try_read(buf)
    }

    /// Read one packet, blocking (spin, then sleep on the own eventfd and the liveness fd)
    /// until one arrives, the flow is down and drained (`Down`), or `deadline` (`Timeout`).
    pub fn read(&self, buf: &mut [u8], deadline: Option<Instant>) -> Result<usize, ShmError> {
        self.inner.read(buf, deadline)
    }

    /// Zero-copy read: `f` gets the record's headroom and payload (mutable, e.g. to prepend a
    /// header in place) and the payload offset in it; the packet is released when `f` returns.
    /// The bytes come from the peer: treat them as untrusted input.
    pub fn try_read_with<R>(&self, f: impl FnOnce(&mut [u8], usize) -> R) -> Result<R, ShmError> {
        self.inner.try_read_with(f)
    }

    /// A packet is waiting (a hint; a concurrent reader may take it).
    pub fn rx_ready(&self) -> bool {
        self.inner.rx_ready()
    }

    /// A packet of `len` payload bytes would fit now.
    pub fn tx_space(&self, len: usize) -> bool {
        self.inner.tx_space(len)
    }

    /// Bytes this endpoint wrote that the peer has not read yet (the send queue's length,
    /// record headers included): what a forwarder's congestion marking looks at.
    pub fn tx_queued(&self) -> usize {
        self.inner.tx_queued()
    }

    /// The flow is down: the liveness fd reports hang-up (the peer closed its end), the IRMd
    /// marked the region down ([`mark_down`]), or the ring was found corrupt. Non-blocking.
    pub fn is_down(&self) -> bool {
        self.inner.is_down()
    }

    /// For callers that wait on [`wait_fd`](Self::wait_fd) with their own epoll: announce that
    /// we are about to sleep waiting for a packet (`rx`) and/or for room for `tx_len` bytes.
    /// Returns `false` if that is already available (then do not sleep). After waking call
    /// [`drain_wakeups`](Self::drain_wakeups) and retry. Do not mix with blocking
    /// [`read`](Self::read)/[`write`](Self::write) of the same endpoint on other threads.
    pub fn arm(&self, rx: bool, tx_len: Option<usize>) -> bool {
        self.inner.arm(rx, tx_len)
    }

    /// Signal this end's own eventfd, as the peer does: whoever waits on
    /// [`wait_fd`](Self::wait_fd) (an epoll) wakes and looks at the flow.
    pub fn wake_self(&self) {
        use crate::duplex::Wait;
        self.inner.wait().notify_self();
    }

    /// Withdraw an [`arm`](Self::arm).
    pub fn disarm(&self) {
        self.inner.disarm()
    }

    /// Reset the own eventfd counter (non-blocking).
    pub fn drain_wakeups(&self) {
        self.inner.drain_wakeups()
    }

    /// The own eventfd, readable when the peer woke us.
    pub fn wait_fd(&self) -> BorrowedFd<'_> {
        self.inner.wait().own.as_fd()
    }

    /// This endpoint's liveness fd (an end of a pipe): hang-up or error (`POLLHUP`,
    /// `POLLERR`, or readable with EOF) means the peer is gone. Callers that wait on it
    /// themselves check [`is_down`](Self::is_down) after a wake-up, which also sees a flow the
    /// IRMd took down (it signals the eventfd then).
    pub fn live_fd(&self) -> BorrowedFd<'_> {
        self.inner.wait().live.as_fd()
    }
}
