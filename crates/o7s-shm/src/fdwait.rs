//! [`Wait`] over file descriptors: the own eventfd, the peer's eventfd, the liveness pipe,
//! and the region's "down" word.

use crate::duplex::{Slept, Wait};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// The region's "down" word (`layout::DOWN_OFF`), which the IRMd sets to take a flow down.
/// Where a region says its flow is down: the IRMd's down word, or the peer's park word
/// once the peer ended the flow (parked or let go its end, see `park`).
pub(crate) struct DownFlag {
    down: NonNull<AtomicU32>,
    peer_park: NonNull<AtomicU32>,
}

// SAFETY: pointers to atomics in a shared mapping that outlives the flag (see `new`);
// atomics may be used from any thread.
unsafe impl Send for DownFlag {}
// SAFETY: as for `Send`: the words are only accessed atomically.
unsafe impl Sync for DownFlag {}

impl DownFlag {
    /// # Safety
    /// `down` and `peer_park` must be 4-aligned, point into a shared mapping that outlives
    /// the flag, and be accessed by this process only atomically.
    pub(crate) unsafe fn new(down: NonNull<AtomicU32>, peer_park: NonNull<AtomicU32>) -> DownFlag {
        DownFlag { down, peer_park }
    }

    fn is_set(&self) -> bool {
        // SAFETY: valid and aligned for the flag's life (contract of `new`).
        let down = unsafe { self.down.as_ref() };
        // SAFETY: as above.
        let peer = unsafe { self.peer_park.as_ref() };
        if down.load(Ordering::SeqCst) != 0 {
            return true;
        }
        // A claimed region (the peer reopens it for the next flow) is not down. SeqCst: see
        // `park` (an end that reopened its end and looks here, against a peer parking).
        matches!(
            peer.load(Ordering::SeqCst),
            crate::park::PARKED | crate::park::GONE
        )
    }
}

pub(crate) struct FdWait {
    pub(crate) own: OwnedFd,
    /// Shared so that a parked end can wake its peer after handing itself to its store
    /// (`park`): the fd stays open while the waker holds it.
    pub(crate) peer: std::sync::Arc<OwnedFd>,
    pub(crate) live: OwnedFd,
    pub(crate) down: DownFlag,
    /// The owner watches `live` itself (see `Endpoint::watch_live`): a non-blocking check
    /// of the flow reads the region's words only, no system call.
    pub(crate) watched: std::sync::atomic::AtomicBool,
}

const DOWN: PollFlags = PollFlags::HUP
    .union(PollFlags::RDHUP)
    .union(PollFlags::ERR)
    .union(PollFlags::NVAL);

impl FdWait {
    /// Interpret the liveness fd's poll result; drains stray bytes (nobody should write any)
    /// so it is not readable again.
    fn live_says_down(&self, revents: PollFlags) -> bool {
        if revents.intersects(DOWN) {
            return true;
        }
        if revents.contains(PollFlags::IN) {
            let mut b = [0u8; 64];
            return match rustix::io::read(&self.live, &mut b) {
                Ok(0) => true,
                Ok(_) => false,
                Err(Errno::AGAIN | Errno::INTR) => false,
                Err(_) => true,
            };
        }
        false
    }
}

pub(crate) fn eventfd_add(fd: impl AsFd) {
    // EAGAIN means the counter is saturated: the sleeper will wake anyway.
    let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
}

impl Wait for FdWait {
    fn notify_peer(&self) {
        eventfd_add(&*self.peer);
    }

    fn notify_self(&self) {
        eventfd_add(&self.own);
    }

    fn sleep(&self, deadline: Option<Instant>) -> Slept {
        // Marked before we got here: the wake-up that came with it may be consumed already.
        if self.down.is_set() {
            return Slept::Down;
        }
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Slept::Timeout;
                }
                // Round up so we do not wake just before the deadline and spin.
                let ns = left.subsec_nanos() + 999;
                Some(Timespec {
                    tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX)
                        + i64::from(ns / 1_000_000_000),
                    tv_nsec: (ns % 1_000_000_000).into(),
                })
            }
        };
        let mut fds = [
            PollFd::new(&self.own, PollFlags::IN),
            PollFd::new(&self.live, PollFlags::IN | PollFlags::RDHUP),
        ];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(0) => Slept::Timeout,
            Ok(_) => {
                if self.down.is_set() || self.live_says_down(fds[1].revents()) {
                    Slept::Down
                } else {
                    Slept::Woken
                }
            }
            // EINTR: let the caller re-check and sleep again. Other errors cannot happen
            // with valid fds; report them as a wake-up for the same reason.
            Err(_) => Slept::Woken,
        }
    }

    fn drain(&self) -> u64 {
        let mut b = [0u8; 8];
        match rustix::io::read(&self.own, &mut b) {
            Ok(8) => u64::from_ne_bytes(b),
            _ => 0,
        }
    }

    fn poll_down(&self) -> bool {
        if self.down.is_set() {
            return true;
        }
        if self.watched.load(Ordering::Relaxed) {
            return false;
        }
        self.live_hung_up()
    }
}

impl FdWait {
    /// Whether the liveness fd says the peer is gone (a non-blocking poll).
    pub(crate) fn live_hung_up(&self) -> bool {
        let mut fds = [PollFd::new(&self.live, PollFlags::IN | PollFlags::RDHUP)];
        match poll(
            &mut fds,
            Some(&Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }),
        ) {
            Ok(0) => false,
            Ok(_) => self.live_says_down(fds[0].revents()),
            Err(_) => false,
        }
    }
}
