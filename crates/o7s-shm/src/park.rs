//! Reusing flow regions between the same two processes.
//!
//! Setting a flow's region up and tearing it down (a memfd, two eventfds and a pipe made by
//! the IRMd, passed to both ends, mapped, unmapped and closed by each) costs more CPU than
//! the messages that allocate the flow. So when a flow between an application and an IPCP
//! ends, both ends may *park* their end of its region instead of letting it go, and the
//! IRMd, which keeps the region as a numbered set, may *claim* it for the next flow between
//! the same application and the same IPCP: it resets the region and names the set instead
//! of sending fds, and each end takes its parked end back ([`ParkStore::open`]).
//!
//! Each end has a park word in the region's header page (`layout::park_off`):
//!
//! | value | meaning | set by |
//! | --- | --- | --- |
//! | [`ACTIVE`] | the end uses the region | the end, when it reopens a claimed region |
//! | [`PARKED`] | the end is done and keeps its end for reuse | the end |
//! | [`GONE`] | the end let its end go (or will at once) | the end (from `PARKED` by CAS) |
//! | [`CLAIMED`] | the IRMd took the region for a new flow | the IRMd (from `PARKED` by CAS) |
//!
//! The IRMd claims only a region whose two words it moves from `PARKED` to `CLAIMED`, and
//! an end evicts a parked region only by moving its word from `PARKED` to `GONE`: one of the
//! two wins, so a region is never handed out that one end no longer has. A region is reused
//! only between the two processes that had it, so what an end could still do to it after
//! parking it, it could have done to the flow anyway.

use crate::endpoint::{Endpoint, Mapping};
use crate::layout::{ctl_off, park_off, stats_off, DISCARD_OFF, DOWN_OFF, STATS_WORDS};
use crate::{ShmError, Side};
use rustix::fd::{BorrowedFd, OwnedFd};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Park word: the end uses the region.
pub const ACTIVE: u32 = 0;
/// Park word: the end is done with the flow and keeps its end of the region for reuse.
pub const PARKED: u32 = 1;
/// Park word: the end let its end of the region go.
pub const GONE: u32 = 2;
/// Park word: the IRMd claimed the region for a new flow.
pub const CLAIMED: u32 = 3;

/// Most bytes a ring may have carried for its region to be parked: more would keep that
/// many pages of old data resident while parked. Short flows (a request and an answer)
/// are those whose set-up costs most against what they carry.
pub const PARK_MAX_POS: u64 = 8 << 10;

/// How long a parked end waits to be claimed before it is let go.
pub const PARK_TTL: Duration = Duration::from_secs(10);

/// How long a claimed end waits for the flow it was claimed for (an allocation that takes
/// longer finds it gone and fails).
pub const CLAIM_TTL: Duration = Duration::from_secs(60);

/// The ends of regions one process parked, for the IRMd to claim.
#[derive(Debug)]
pub struct ParkStore {
    max: usize,
    sets: Mutex<VecDeque<Parked>>,
}

#[derive(Debug)]
struct Parked {
    set: u64,
    since: Instant,
    ep: Endpoint,
}

impl ParkStore {
    /// A store that keeps at most `max` parked ends (0: never parks).
    pub fn new(max: usize) -> Arc<ParkStore> {
        Arc::new(ParkStore {
            max,
            sets: Mutex::new(VecDeque::new()),
        })
    }

    /// Parked ends held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Parked>> {
        self.sets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Become `side` of a flow the IRMd handed over: with four fds (region, own eventfd,
    /// peer's eventfd, liveness; see [`Endpoint::new`]) a fresh region, with none the
    /// parked end of set `set`, which the IRMd claimed and reset. `set` 0: a region that is
    /// never parked.
    pub fn open(
        self: &Arc<Self>,
        set: u64,
        side: Side,
        fds: Vec<OwnedFd>,
    ) -> Result<Held, ShmError> {
        let ep = match <[OwnedFd; 4]>::try_from(fds) {
            Ok([mem, own, peer, live]) => Endpoint::new(mem, side, own, peer, live)?,
            Err(fds) if fds.is_empty() && set != 0 => self.take(set, side)?,
            Err(fds) => {
                return Err(ShmError::BadRegion(format!(
                    "a flow comes with four fds or names a parked region, not {} fds for set {set}",
                    fds.len()
                )))
            }
        };
        Ok(Held {
            ep: Some(ep),
            park: (set != 0).then(|| (self.clone(), set)),
            pid: std::process::id(),
        })
    }

    /// The parked end of `set`, reopened as a fresh flow's.
    fn take(&self, set: u64, side: Side) -> Result<Endpoint, ShmError> {
        let ep = {
            let mut q = self.lock();
            let i = q.iter().position(|p| p.set == set).ok_or_else(|| {
                ShmError::BadRegion(format!("region set {set} is not parked here"))
            })?;
            q.remove(i).map(|p| p.ep)
        };
        let ep = ep.ok_or_else(|| ShmError::BadRegion(format!("region set {set} vanished")))?;
        let word = ep.header_word(park_off(side_index(ep.side())));
        if ep.side() != side {
            word.store(GONE, Ordering::Release);
            return Err(ShmError::BadRegion(format!(
                "region set {set} was parked as the other end"
            )));
        }
        // SeqCst, as the peer's park (which stores its word, then looks at ours) and our
        // look at the peer's word once registered: of the two, one sees the other.
        if word
            .compare_exchange(CLAIMED, ACTIVE, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            word.store(GONE, Ordering::Release);
            return Err(ShmError::BadRegion(format!(
                "region set {set} was not claimed by the IRMd"
            )));
        }
        ep.reopen()
    }

    /// The flow of `ep` (set `set`) ended here: keep its end for reuse if it carried little,
    /// else let it go.
    fn park(&self, set: u64, ep: Endpoint) {
        let word = ep.header_word(park_off(side_index(ep.side())));
        let small = ep.positions().iter().all(|&p| p <= PARK_MAX_POS);
        if !small || self.max == 0 || discarded(&ep) {
            word.store(GONE, Ordering::Release);
            return;
        }
        let peer = match ep.side() {
            Side::A => 1,
            Side::B => 0,
        };
        // To the peer a parked end is a closed one: it is woken once the end is parked, as
        // closing the liveness pipe would wake it (it sees the park word then). The wake
        // goes through the peer's eventfd, which the parked end keeps open.
        let wake = ep.peer_waker();
        let now = Instant::now();
        let (evicted, wake_peer) = {
            let mut q = self.lock();
            let mut out = evict(&mut q, self.max, now, false);
            if q.len() >= 2 * self.max {
                // Full of claimed ends (grants on their way, or a peer's scribbles): this
                // one goes, and closing it tells the peer.
                word.store(GONE, Ordering::Release);
                out.push(ep);
                (out, false)
            } else {
                // Parked only under the store's lock: the IRMd may claim it the moment the
                // word says so, and the next flow's grant may reach another thread of this
                // process at once, which must find it here. SeqCst: whatever this end did to
                // the region happens before the IRMd's reset, and a peer that reopens its
                // claimed end now is either seen active below (and woken) or sees this word
                // parked when it looks (`is_down`).
                word.store(PARKED, Ordering::SeqCst);
                let peer_active = ep.header_word(park_off(peer)).load(Ordering::SeqCst) == ACTIVE;
                q.push_back(Parked {
                    set,
                    since: now,
                    ep,
                });
                out.extend(evict(&mut q, self.max, now, false));
                (out, peer_active)
            }
        };
        // Waking, unmapping and closing outside the lock (other threads of the process park
        // and take ends meanwhile).
        if wake_peer {
            crate::fdwait::eventfd_add(&*wake);
        }
        drop(evicted);
    }

    /// Let go of every parked end older than [`PARK_TTL`]; how many went.
    pub fn expire(&self) -> usize {
        self.expire_at(Instant::now())
    }

    fn expire_at(&self, now: Instant) -> usize {
        let evicted = evict(&mut self.lock(), self.max, now, true);
        evicted.len()
    }
}

/// Whether the IRMd let the set of `ep`'s region go (see [`discard`]).
fn discarded(ep: &Endpoint) -> bool {
    ep.header_word(DISCARD_OFF).load(Ordering::Acquire) != 0
}

/// For the IRMd, which keeps no more region sets than it can use: the set of region `mem`
/// will not be claimed again, so its ends need not keep their parked ends (they let them go
/// at their next look, or do not park them at all).
pub fn discard(mem: BorrowedFd<'_>) -> Result<(), ShmError> {
    // One byte, so the ends' atomic loads of the word see it whole.
    let n = rustix::io::pwrite(mem, &[1], DISCARD_OFF as u64)?;
    if n != 1 {
        return Err(ShmError::BadRegion("region too small to discard".into()));
    }
    Ok(())
}

fn side_index(s: Side) -> usize {
    match s {
        Side::A => 0,
        Side::B => 1,
    }
}

/// Take out of `q` the ends beyond `max` (oldest first) and those older than [`PARK_TTL`],
/// except those the IRMd claimed meanwhile (their set is on its way here; they do not
/// count against `max`: a process with many allocations in flight has as many claimed
/// ends). The peer shares the park words, so it could make ends look claimed for ever:
/// past [`CLAIM_TTL`] an end goes whatever its word says, and a store holding twice `max`
/// ends parks no more ([`ParkStore::park`]).
fn evict(q: &mut VecDeque<Parked>, max: usize, now: Instant, discards: bool) -> Vec<Endpoint> {
    let mut out = Vec::new();
    // Those the IRMd let go, wherever they are (a look at each: a word apiece): on the
    // periodic sweep (`discards`), and whenever some must go anyway, those first.
    let discards = discards || q.len() > max;
    let mut i = 0;
    while discards && i < q.len() {
        let word = q[i].ep.header_word(park_off(side_index(q[i].ep.side())));
        let gone = discarded(&q[i].ep)
            && word
                .compare_exchange(PARKED, GONE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        match gone.then(|| q.remove(i)).flatten() {
            Some(p) => out.push(p.ep),
            None => i += 1,
        }
    }
    let mut i = 0;
    while i < q.len() {
        let age = now.saturating_duration_since(q[i].since);
        // `i` ends skipped so far are claimed.
        let over = q.len() - i > max;
        if !over && age <= PARK_TTL {
            // The queue is in parking order: nothing later is older.
            break;
        }
        let word = q[i].ep.header_word(park_off(side_index(q[i].ep.side())));
        let parked = word
            .compare_exchange(PARKED, GONE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if parked || age > CLAIM_TTL {
            if let Some(p) = q.remove(i) {
                out.push(p.ep);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// An end of a flow that, when dropped, parks itself in the store it came from (if it has
/// a set) instead of letting its region go. Dereferences to the [`Endpoint`].
#[derive(Debug)]
pub struct Held {
    ep: Option<Endpoint>,
    park: Option<(Arc<ParkStore>, u64)>,
    /// The process that opened it: a child forked since must not park (the flow is still
    /// its parent's).
    pid: u32,
}

impl Held {
    /// The region set this end belongs to (0: none).
    pub fn set(&self) -> u64 {
        self.park.as_ref().map_or(0, |(_, s)| *s)
    }

    fn ep(&self) -> &Endpoint {
        match &self.ep {
            Some(ep) => ep,
            // Only `drop` takes it.
            None => unreachable!("a held endpoint is present until dropped"),
        }
    }
}

impl std::ops::Deref for Held {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        self.ep()
    }
}

impl std::ops::DerefMut for Held {
    fn deref_mut(&mut self) -> &mut Endpoint {
        match &mut self.ep {
            Some(ep) => ep,
            None => unreachable!("a held endpoint is present until dropped"),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let (Some(ep), Some((store, set))) = (self.ep.take(), self.park.take()) {
            if std::process::id() == self.pid {
                store.park(set, ep);
            }
        }
    }
}

/// What [`RegionCtl::claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Both ends parked it; it is reset and claimed for a new flow.
    Claimed,
    /// An end still uses it (it may park it later).
    NotYet,
    /// An end let it go: the region is of no more use.
    Gone,
}

/// The IRMd's handle on a region set's header page, to claim it for reuse.
#[derive(Debug)]
pub struct RegionCtl {
    map: Mapping,
}

// SAFETY: the mapping is only accessed through atomics (`word`, `reset`), from any thread.
unsafe impl Send for RegionCtl {}
// SAFETY: as for `Send`.
unsafe impl Sync for RegionCtl {}

const PAGE: usize = 4096;

impl RegionCtl {
    /// Map the header page of region `mem` (a memfd the IRMd made with
    /// [`crate::create_flow_mem`], so at least a page long and sealed against shrinking).
    pub fn new(mem: BorrowedFd<'_>) -> Result<RegionCtl, ShmError> {
        // SAFETY: the first page of a region the caller made with `create_flow_mem`: longer
        // than a page and sealed so it cannot shrink under us.
        let map = unsafe { Mapping::shared(mem, PAGE)? };
        Ok(RegionCtl { map })
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        let p = self.map.ptr.as_ptr().cast::<u8>().wrapping_add(off);
        // SAFETY: `off` is a 4-aligned offset in the header page (the `layout` constants),
        // inside this page-aligned mapping, which lives as long as `self`; every process
        // accesses the word atomically only.
        unsafe { &*p.cast::<AtomicU32>() }
    }

    /// Claim the region for a new flow if both ends parked it, and reset it: empty rings,
    /// not down, no counters.
    pub fn claim(&self) -> Claim {
        let (a, b) = (self.word(park_off(0)), self.word(park_off(1)));
        // Claimed still: that end has not taken the region for the last flow yet (its grant
        // is on its way); it parks it when done with it.
        let verdict = |v: u32| {
            if v == ACTIVE || v == CLAIMED {
                Claim::NotYet
            } else {
                Claim::Gone
            }
        };
        if let Err(v) = a.compare_exchange(PARKED, CLAIMED, Ordering::AcqRel, Ordering::Acquire) {
            return verdict(v);
        }
        if let Err(v) = b.compare_exchange(PARKED, CLAIMED, Ordering::AcqRel, Ordering::Acquire) {
            a.store(PARKED, Ordering::Release);
            return verdict(v);
        }
        self.reset();
        Claim::Claimed
    }

    /// Take the flow of this region down, as [`crate::mark_down`] does through the file:
    /// mark the region down and signal the eventfds (`wake`: side A's, then side B's) of the
    /// ends that may wait on it: none once an end parked its end or let it go.
    pub fn mark_down(&self, wake: &[OwnedFd]) {
        self.word(DOWN_OFF).store(1, Ordering::Release);
        let done = |i: usize| {
            matches!(
                self.word(park_off(i)).load(Ordering::Acquire),
                PARKED | GONE
            )
        };
        let done = [done(0), done(1)];
        for (i, w) in wake.iter().enumerate().take(2) {
            // An end that is done waits on nothing; nor is one whose peer is done left
            // waiting: the peer woke it when it parked, or its liveness pipe did when it
            // let go (another wake-up would only cost it a switch).
            if done[i] || done[1 - i] {
                continue;
            }
            // EAGAIN: the counter is saturated, the sleeper wakes anyway.
            let _ = rustix::io::write(w, &1u64.to_ne_bytes());
        }
    }

    /// Give a claimed region back to its ends' stores (the new flow did not happen).
    pub fn unclaim(&self) {
        for i in 0..2 {
            let _ = self.word(park_off(i)).compare_exchange(
                CLAIMED,
                PARKED,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    /// Zero the rings' control blocks, the down word and the statistics slots. Only while
    /// claimed: neither end touches the region then.
    fn reset(&self) {
        let end = stats_off(1) + (2 + STATS_WORDS) * 8;
        let base = self.map.ptr.as_ptr().cast::<u8>();
        for off in (ctl_off(0)..end).step_by(8) {
            // SAFETY: 8-aligned offsets inside the header page of this mapping (asserted in
            // `layout`: the control blocks and statistics slots end before `DATA_OFF`); the
            // words are only accessed atomically by every process.
            let w = unsafe { &*base.wrapping_add(off).cast::<AtomicU64>() };
            w.store(0, Ordering::Relaxed);
        }
        self.word(DOWN_OFF).store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{create_flow_mem, liveness_pair, new_eventfd, RingConfig};

    fn end_fds() -> Vec<OwnedFd> {
        let mem = create_flow_mem(&RingConfig {
            capacity: 1 << 12,
            headroom: 0,
        })
        .unwrap();
        let (la, _lb) = liveness_pair().unwrap();
        vec![mem, new_eventfd().unwrap(), new_eventfd().unwrap(), la]
    }

    /// Parked ends nobody claims go once older than the TTL, claimed ones once older than
    /// the claim TTL (with a clock moved forward, not by waiting).
    #[test]
    fn parked_ends_expire() {
        let st = ParkStore::new(8);
        drop(st.open(1, Side::A, end_fds()).unwrap());
        drop(st.open(2, Side::A, end_fds()).unwrap());
        let now = Instant::now();
        assert_eq!(st.expire_at(now), 0);
        // Claimed by the IRMd meanwhile: stays past the TTL, not past the claim TTL.
        let q = st.lock();
        q[1].ep
            .header_word(park_off(0))
            .store(CLAIMED, Ordering::Release);
        drop(q);
        assert_eq!(st.expire_at(now + PARK_TTL + Duration::from_secs(1)), 1);
        assert_eq!(st.len(), 1);
        assert_eq!(st.expire_at(now + CLAIM_TTL + Duration::from_secs(1)), 1);
        assert!(st.is_empty());
    }
}
