//! Region sets kept for reuse (see `o7s_shm::park`). A flow between an application and an
//! IPCP gets a numbered region set; when the flow ends, the IRMd keeps the set here (its
//! memfd, both eventfds and a mapping of the header page), and the next flow between the
//! same process and the same IPCP, of the same geometry and with the process on the same
//! side, takes it if both ends parked theirs: no fds are made, sent, mapped or closed.

use o7s_shm::park::PARK_TTL;
use o7s_shm::{Claim, RegionCtl};
use rustix::fd::{AsFd, OwnedFd};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tracing::debug;

/// Sets kept per process, IPCP and geometry.
const PER_KEY: usize = 64;
/// Sets kept in all.
const MAX: usize = 1024;
/// How long a set waits here: well within how long its ends keep their parked ends, so a
/// set is claimed only while they still have them.
const TTL: Duration = Duration::from_secs(PARK_TTL.as_secs() / 2);
/// Kept sets tried per flow (one an end still uses is skipped, not waited for).
const TRIES: usize = 4;

/// Who a set can be reused between.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// The application.
    pub pid: u32,
    /// The IPCP (by name; its sets go when it does).
    pub ipcp: String,
    /// The application's side of the region (0: A, 1: B).
    pub side: u8,
    pub headroom: u16,
    pub capacity: usize,
}

/// The set of a flow: its number, who it is between, and the IRMd's mapping of its header
/// page once it was kept.
#[derive(Debug)]
pub struct SetInfo {
    pub id: u64,
    pub key: PoolKey,
    pub ctl: Option<RegionCtl>,
}

impl SetInfo {
    /// A new set number.
    pub fn new(key: PoolKey) -> SetInfo {
        let id = loop {
            let id: u64 = rand::random();
            if id != 0 {
                break id;
            }
        };
        SetInfo { id, key, ctl: None }
    }
}

/// Drop a set for good: its ends need not keep their parked ends any longer.
fn let_go(mem: &OwnedFd) {
    if let Err(e) = o7s_shm::park::discard(mem.as_fd()) {
        debug!("cannot discard a region set: {e}");
    }
}

struct Kept {
    id: u64,
    ctl: RegionCtl,
    mem: OwnedFd,
    wake: Vec<OwnedFd>,
    since: Instant,
}

/// The sets kept for reuse.
#[derive(Default)]
pub struct Pool {
    sets: HashMap<PoolKey, VecDeque<Kept>>,
    len: usize,
    /// When every key's sets were last looked at for age.
    swept: Option<Instant>,
}

/// A set claimed for a new flow: its number and key, and the IRMd's handles (the memfd and
/// both eventfds).
pub type Claimed = (SetInfo, OwnedFd, Vec<OwnedFd>);

impl Pool {
    /// Sets kept now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no set is kept.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Claim a kept set of `key` whose ends both parked theirs, reset for a new flow.
    pub fn take(&mut self, key: &PoolKey) -> Option<Claimed> {
        let q = self.sets.get_mut(key)?;
        let now = Instant::now();
        let (mut i, mut tries) = (0, 0);
        let mut found = None;
        while i < q.len() && tries < TRIES {
            if now.saturating_duration_since(q[i].since) > TTL {
                if let Some(k) = q.remove(i) {
                    let_go(&k.mem);
                }
                self.len -= 1;
                continue;
            }
            tries += 1;
            match q[i].ctl.claim() {
                Claim::Claimed => {
                    found = q.remove(i);
                    self.len -= 1;
                    break;
                }
                Claim::NotYet => i += 1,
                Claim::Gone => {
                    if let Some(k) = q.remove(i) {
                        let_go(&k.mem);
                    }
                    self.len -= 1;
                }
            }
        }
        if q.is_empty() {
            self.sets.remove(key);
        }
        let k = found?;
        let info = SetInfo {
            id: k.id,
            key: key.clone(),
            ctl: Some(k.ctl),
        };
        Some((info, k.mem, k.wake))
    }

    /// The flow of set `info` ended (and was marked down): keep the set for the next flow
    /// between the same two. With `unclaim`, a set claimed for a flow that neither end
    /// took is given back to its ends first.
    pub fn put(&mut self, mut info: SetInfo, mem: OwnedFd, wake: Vec<OwnedFd>, unclaim: bool) {
        let now = Instant::now();
        if self.len >= MAX || self.swept.is_none_or(|t| now.duration_since(t) > TTL) {
            self.expire();
            self.swept = Some(now);
        }
        let q = self.sets.entry(info.key.clone()).or_default();
        if q.len() >= PER_KEY || self.len >= MAX {
            return let_go(&mem);
        }
        let ctl = match info.ctl.take() {
            Some(c) => c,
            None => match RegionCtl::new(mem.as_fd()) {
                Ok(c) => c,
                Err(e) => {
                    debug!("cannot keep region set {}: {e}", info.id);
                    return let_go(&mem);
                }
            },
        };
        // An end whose word still says claimed has yet to take the set for the flow that
        // just ended (the other end was quicker): kept all the same, it is claimed again
        // once that end has taken and parked it.
        if unclaim {
            ctl.unclaim();
        }
        q.push_back(Kept {
            id: info.id,
            ctl,
            mem,
            wake,
            since: Instant::now(),
        });
        self.len += 1;
    }

    /// Let go of the sets whose key `gone` says no longer exists.
    pub fn forget(&mut self, gone: impl Fn(&PoolKey) -> bool) {
        let before = self.len;
        self.sets.retain(|k, q| {
            let keep = !gone(k);
            if !keep {
                self.len -= q.len();
                q.iter().for_each(|k| let_go(&k.mem));
            }
            keep
        });
        if before != self.len {
            debug!("let go of {} region set(s)", before - self.len);
        }
    }

    /// Let go of sets kept longer than their ends keep theirs.
    fn expire(&mut self) {
        let now = Instant::now();
        let mut gone = 0;
        self.sets.retain(|_, q| {
            let n = q.len();
            q.retain(|k| {
                let keep = now.saturating_duration_since(k.since) <= TTL;
                if !keep {
                    let_go(&k.mem);
                }
                keep
            });
            gone += n - q.len();
            !q.is_empty()
        });
        self.len -= gone;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use o7s_shm::{ParkStore, Side};

    fn key(pid: u32) -> PoolKey {
        PoolKey {
            pid,
            ipcp: "u1".into(),
            side: 0,
            headroom: 64,
            capacity: 1 << 16,
        }
    }

    /// A new set as `new_flow_fds` makes it, opened by both ends (stores `a` and `b`): the
    /// IRMd's part and the two ends.
    fn open(
        k: PoolKey,
        a: &std::sync::Arc<ParkStore>,
        b: &std::sync::Arc<ParkStore>,
    ) -> (SetInfo, OwnedFd, Vec<OwnedFd>, o7s_shm::Held, o7s_shm::Held) {
        let f = crate::flows::set_fds(None, k).unwrap();
        let id = f.set.as_ref().unwrap().id;
        let ea = a.open(id, Side::A, f.a).unwrap();
        let eb = b.open(id, Side::B, f.b).unwrap();
        (f.set.unwrap(), f.mem, f.wake, ea, eb)
    }

    #[test]
    fn a_set_is_reused_once_both_ends_parked_it() {
        let (sa, sb) = (ParkStore::new(8), ParkStore::new(8));
        let mut pool = Pool::default();
        let (info, mem, wake, ea, eb) = open(key(1), &sa, &sb);
        let id = info.id;
        drop(ea);
        o7s_shm::mark_down(mem.as_fd(), &wake).unwrap();
        pool.put(info, mem, wake, false);
        assert_eq!(pool.len(), 1);
        // One end still has it: not taken, still kept.
        assert!(pool.take(&key(1)).is_none());
        assert_eq!(pool.len(), 1);
        drop(eb);
        // Not for another process.
        assert!(pool.take(&key(2)).is_none());
        let (info, _mem, _wake) = pool.take(&key(1)).unwrap();
        assert_eq!(info.id, id);
        assert!(pool.is_empty());
        let ea = sa.open(id, Side::A, Vec::new()).unwrap();
        let eb = sb.open(id, Side::B, Vec::new()).unwrap();
        assert!(!ea.is_down() && !eb.is_down());
    }

    #[test]
    fn sets_go_with_their_process_and_a_claim_not_taken_comes_back() {
        let (sa, sb) = (ParkStore::new(8), ParkStore::new(8));
        let mut pool = Pool::default();
        for pid in [1, 2] {
            let (info, mem, wake, ea, eb) = open(key(pid), &sa, &sb);
            drop((ea, eb));
            pool.put(info, mem, wake, false);
        }
        assert_eq!(pool.len(), 2);
        pool.forget(|k| k.pid == 2);
        assert_eq!(pool.len(), 1);
        assert!(pool.take(&key(2)).is_none());
        // Claimed for a flow that failed before either end took it: back with `unclaim`.
        let (info, mem, wake) = pool.take(&key(1)).unwrap();
        pool.put(info, mem, wake, true);
        let (info, mem, wake) = pool.take(&key(1)).unwrap();
        // Without it (the flow ended before its ends took their ends of the set), the set
        // is kept, and claimed again only once both took their ends and parked them.
        let id = info.id;
        pool.put(info, mem, wake, false);
        assert_eq!(pool.len(), 1);
        assert!(pool.take(&key(1)).is_none());
        let ea = sa.open(id, Side::A, Vec::new()).unwrap();
        assert!(pool.take(&key(1)).is_none());
        let eb = sb.open(id, Side::B, Vec::new()).unwrap();
        drop((ea, eb));
        assert_eq!(pool.take(&key(1)).map(|c| c.0.id), Some(id));
    }
}
