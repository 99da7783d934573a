//! The work behind the calls of a [`Dht`]: running lookups (launching, asking, finishing
//! them for their purposes), replication rounds, bucket refreshes and joining.

use std::time::Instant;

use super::lookup::{Kind, Lookup, MAX_QUERIES};
use super::*;
use crate::wire::dht::{addr_value, consts, DhtBody};
use crate::NameHash;

impl Dht {
    /// Whether a lookup for (`key`, `kind`) can run now.
    pub(super) fn can_launch(&self, key: &[u8], kind: Kind, background: bool) -> bool {
        if self.lookups.iter().any(|l| l.key == key && l.kind == kind) {
            return true;
        }
        let quiet = self.lookups.iter().filter(|l| l.queries.is_empty()).count();
        self.lookups.len() < consts::MAX_REQS && (!background || quiet < MAX_BACKGROUND)
    }

    /// Start a lookup for `purpose`, or join the one in progress for the same key and kind.
    /// False when too many are in progress.
    pub(super) fn launch(
        &mut self,
        key: &[u8],
        kind: Kind,
        purpose: Purpose,
        background: bool,
        now: Instant,
    ) -> bool {
        if !self.can_launch(key, kind, background) {
            return false;
        }
        let k = self.cfg.k();
        let i = match self
            .lookups
            .iter()
            .position(|l| l.key == key && l.kind == kind)
        {
            Some(i) => i,
            None => {
                let seeds = self.table.closest(key, k, 0);
                self.table.touch(key, now);
                let max_cands = 3 * k + self.cfg.alpha as usize;
                self.lookups
                    .push(Lookup::new(self.next_lid, key, kind, seeds, max_cands));
                self.next_lid += 1;
                self.lookups.len() - 1
            }
        };
        let l = &mut self.lookups[i];
        match purpose {
            Purpose::Query(q) => {
                if l.queries.len() >= MAX_QUERIES {
                    return false;
                }
                l.queries.push(q);
            }
            Purpose::Store(vals) => {
                for (a, exp) in vals {
                    match l.stores.iter_mut().find(|(x, _)| *x == a) {
                        Some(s) => s.1 = s.1.max(exp),
                        None => l.stores.push((a, exp)),
                    }
                }
            }
            Purpose::Refresh => {}
            Purpose::Bootstrap(peer) => l.add_peer(peer),
        }
        let lid = l.lid;
        self.step(lid, now);
        true
    }

    /// Send what lookup `lid` may send now, or finish it.
    pub(super) fn step(&mut self, lid: u64, now: Instant) {
        let Some(i) = self.lookups.iter().position(|l| l.lid == lid) else {
            return;
        };
        let k = self.cfg.k();
        if self.lookups[i].is_done(k) {
            let l = self.lookups.swap_remove(i);
            self.finish(l, now);
            return;
        }
        let alpha = self.cfg.alpha as usize;
        let t_resp = secs(consts::T_RESP);
        let l = &mut self.lookups[i];
        let reqs = l.next(alpha, k, now, t_resp, &mut self.rng);
        let (key, kind) = (NameHash(l.key.clone()), l.kind);
        for (addr, cookie) in reqs {
            let key = key.clone();
            let body = match kind {
                Kind::Node => DhtBody::FindNodeReq { cookie, key },
                Kind::Value => DhtBody::FindValueReq { cookie, key },
            };
            self.send(addr, body);
        }
    }

    pub(super) fn finish(&mut self, l: Lookup, now: Instant) {
        if !l.queries.is_empty() {
            if !l.values.is_empty() {
                self.store.cache(&l.key, &l.values, now);
            }
            for q in &l.queries {
                self.answer(*q, &l.key, l.values.clone());
            }
        }
        if !l.stores.is_empty() {
            let targets = l.closest_answered(self.cfg.k());
            if targets.is_empty() {
                self.stats.stores_unplaced += l.stores.len() as u64;
            }
            if self.store.is_local(&l.key) && l.stores.iter().any(|(a, _)| *a == self.addr) {
                self.placed(&l.key, !targets.is_empty(), now);
            }
            for dst in targets {
                for &(a, exp) in &l.stores {
                    let body = DhtBody::Store {
                        key: NameHash(l.key.clone()),
                        val: addr_value(a).to_vec(),
                        exp: u32::try_from(exp).unwrap_or(u32::MAX),
                    };
                    self.stats.stores_tx += 1;
                    self.send(dst, body);
                }
            }
        }
        if l.bootstrap.is_some() {
            // Joined when the enrollment peer answered: contacts that reached us meanwhile
            // may be an island of newcomers that joined through us.
            if !l.peer_answered || self.table.is_empty() {
                // Without contacts, keep trying every second or so, as the prototype does.
                if self.table.is_empty() {
                    self.rejoin_delay = REJOIN;
                }
                self.rejoin_at = Some(now + self.rejoin_delay);
                self.rejoin_delay = (2 * self.rejoin_delay).min(MAX_REJOIN);
            } else if !self.joined {
                self.rejoin_delay = REJOIN;
                self.joined = true;
                self.event(Event::Joined {
                    contacts: self.table.len(),
                });
                self.publish_unplaced();
                self.refresh_far(now);
                self.fill_delay = REJOIN;
                self.fill_at = (self.table.len() < self.cfg.k()).then(|| now + REJOIN);
            }
        }
    }

    /// The publication of our registration `key` reached a node (`ok`) or none: in that
    /// case it is tried again later, or as soon as we have a contact.
    fn placed(&mut self, key: &[u8], ok: bool, now: Instant) {
        if ok {
            self.unplaced.remove(key);
            if self.unplaced.is_empty() {
                self.unplaced_at = None;
                self.unplaced_delay = REJOIN;
            }
            return;
        }
        self.unplaced.insert(key.to_vec());
        // Without contacts, the first one to appear triggers the next try (see `heard`).
        if self.unplaced_at.is_none() && !self.table.is_empty() {
            self.unplaced_at = Some(now + self.unplaced_delay);
            self.unplaced_delay = (2 * self.unplaced_delay).min(MAX_REJOIN);
        }
    }

    /// Queue the registrations that no node holds yet for publication.
    pub(super) fn publish_unplaced(&mut self) {
        let keys: Vec<Vec<u8>> = self.unplaced.iter().cloned().collect();
        for key in keys {
            if self.store.is_local(&key) {
                self.enqueue(key);
            } else {
                self.unplaced.remove(&key);
            }
        }
    }

    /// After joining: look up an id in each bucket farther than our closest contact that
    /// has room, to fill them.
    pub(super) fn refresh_far(&mut self, now: Instant) {
        let Some(closest) = self.table.closest_bucket() else {
            return;
        };
        let k = self.cfg.k();
        let sparse: Vec<usize> = (0..closest)
            .filter(|&i| self.table.buckets()[i].contacts.len() < k)
            .take(JOIN_REFRESH)
            .collect();
        for i in sparse {
            self.refresh_bucket(i, now);
        }
    }

    /// Joined, but with fewer than `k` contacts: a peer that was itself still joining
    /// could name nobody, and the buckets' refresh is minutes away. Look up our own id and
    /// the sparse buckets again, less often each time, until the table holds `k` (a layer
    /// smaller than that costs one lookup per [`MAX_REJOIN`]).
    pub(super) fn fill(&mut self, now: Instant) {
        if !self.joined || self.table.is_empty() || self.table.len() >= self.cfg.k() {
            self.fill_at = None;
            return;
        }
        let id = self.id.clone();
        self.launch(&id, Kind::Node, Purpose::Refresh, true, now);
        self.refresh_far(now);
        self.fill_delay = (2 * self.fill_delay).min(MAX_REJOIN);
        self.fill_at = Some(now + self.fill_delay);
    }

    pub(super) fn refresh_bucket(&mut self, i: usize, now: Instant) {
        let mut rnd = vec![0; self.id.len()];
        self.rng.fill(&mut rnd);
        let id = self.table.id_in_bucket(i, &rnd);
        self.launch(&id, Kind::Node, Purpose::Refresh, true, now);
    }

    /// Buckets without a lookup for `t_refresh` get one, for a random id in them.
    pub(super) fn refresh(&mut self, now: Instant) {
        let t = secs(self.cfg.t_refresh);
        let stale: Vec<usize> = self
            .table
            .buckets()
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.contacts.is_empty() && b.touched + t <= now)
            .map(|(i, _)| i)
            .collect();
        for i in stale {
            self.refresh_bucket(i, now);
        }
    }

    /// A replication round: drop what expired, queue our registrations for republication
    /// and the values not replicated during the last period for replication.
    pub(super) fn round(&mut self, now: Instant) {
        let wall = self.wall(now);
        self.stats.values_expired += self.store.purge(now, wall) as u64;
        let period = self.cfg.replication_period();
        let mut keys: Vec<Vec<u8>> = self.store.local_keys().cloned().collect();
        keys.extend(self.store.due_keys(now, period, wall));
        for key in keys {
            self.enqueue(key);
        }
    }

    pub(super) fn enqueue(&mut self, key: Vec<u8>) {
        if self.job_keys.contains(&key) {
            return;
        }
        if self.jobs.len() >= 2 * self.cfg.max_entries {
            self.stats.jobs_dropped += 1;
            return;
        }
        self.job_keys.insert(key.clone());
        self.jobs.push_back(key);
    }

    /// Start the queued republications and replications that fit.
    pub(super) fn drain_jobs(&mut self, now: Instant) {
        while let Some(key) = self.jobs.front() {
            if !self.can_launch(key, Kind::Node, true) {
                return;
            }
            let Some(key) = self.jobs.pop_front() else {
                return;
            };
            self.job_keys.remove(&key);
            let wall = self.wall(now);
            let mut vals = Vec::new();
            if self.store.is_local(&key) {
                vals.push((self.addr, self.expiry(now)));
            }
            let period = self.cfg.replication_period();
            vals.extend(self.store.due(&key, now, period, wall));
            if !vals.is_empty() {
                self.launch(&key, Kind::Node, Purpose::Store(vals), true, now);
            }
        }
    }

    /// When to join (again): a known enrollment peer, not joined yet or no contact left,
    /// no join in progress.
    pub(super) fn join_due(&self) -> Option<Instant> {
        if self.peer.is_none()
            || (self.joined && !self.table.is_empty())
            || self.lookups.iter().any(|l| l.bootstrap.is_some())
        {
            return None;
        }
        Some(self.rejoin_at.unwrap_or(self.wall_at))
    }

    pub(super) fn check_join(&mut self, now: Instant) {
        let (Some(t), Some(peer)) = (self.join_due(), self.peer) else {
            return;
        };
        if t > now {
            return;
        }
        self.rejoin_at = Some(now + REJOIN);
        let id = self.id.clone();
        self.launch(&id, Kind::Node, Purpose::Bootstrap(peer), false, now);
    }
}
