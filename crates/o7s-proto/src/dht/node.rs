//! The calls of a [`Dht`]: construction, packets in and out, registrations, lookups,
//! timers and the snapshot, with the handling of each message.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::time::Instant;

use super::lookup::Kind;
use super::rng::Rng;
use super::store::{Store, Stored};
use super::table::{Seen, Table};
use super::*;
use crate::wire::dht::{addr_value, consts, value_addr, Contact, DhtBody, DhtMsg};
use crate::NameHash;

impl Dht {
    /// A DHT node with id `id` (random, as long as the layer's hashes) at address `addr`.
    /// `seed` feeds the cookies and refresh ids: draw it from the operating system.
    pub fn new(
        id: Vec<u8>,
        addr: u64,
        cfg: DhtConfig,
        now: Instant,
        wall_secs: u64,
        seed: [u8; 32],
    ) -> Result<Dht, DhtError> {
        cfg.validate()?;
        if !(8..=64).contains(&id.len()) {
            return Err(DhtError::IdLength(id.len()));
        }
        if addr == 0 {
            return Err(DhtError::InvalidAddr);
        }
        Ok(Dht {
            table: Table::new(id.clone(), addr, cfg.k(), now),
            store: Store::new(cfg.max_entries, cfg.max_cache),
            id,
            addr,
            rng: Rng::new(seed),
            lookups: Vec::new(),
            next_lid: 0,
            next_query: 0,
            peer: None,
            rejoin_at: None,
            rejoin_delay: REJOIN,
            fill_at: None,
            fill_delay: REJOIN,
            joined: false,
            next_round: now + cfg.replication_period(),
            next_refresh: now + secs(cfg.t_refresh),
            cfg,
            wall_secs,
            wall_at: now,
            unplaced: BTreeSet::new(),
            unplaced_at: None,
            unplaced_delay: REJOIN,
            jobs: VecDeque::new(),
            job_keys: HashSet::new(),
            tx: VecDeque::new(),
            events: VecDeque::new(),
            stats: DhtStats::default(),
        })
    }

    pub fn id(&self) -> &[u8] {
        &self.id
    }

    pub fn addr(&self) -> u64 {
        self.addr
    }

    pub fn config(&self) -> &DhtConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &DhtStats {
        &self.stats
    }

    /// Number of contacts.
    pub fn contacts(&self) -> usize {
        self.table.len()
    }

    /// Join the layer through the member at `peer` (the enrollment peer; its id is learnt
    /// from its answer): a FIND_NODE for our own id, then refreshes of the buckets farther
    /// than our closest contact. [`Event::Joined`] follows once `peer` answered; until then,
    /// and whenever no contact is left, the DHT asks `peer` again (see [`REJOIN`]).
    pub fn bootstrap(&mut self, peer: u64, now: Instant) {
        if peer == self.addr || peer == 0 {
            return;
        }
        self.peer = Some(peer);
        self.rejoin_at = Some(now + REJOIN);
        let id = self.id.clone();
        if !self.launch(&id, Kind::Node, Purpose::Bootstrap(peer), false, now) {
            self.stats.lookups_dropped += 1;
        }
    }

    /// A DHT message arrived (the payload of a packet to endpoint 1). Invalid messages, and
    /// responses to no request of ours, are counted and change nothing else.
    pub fn on_packet(&mut self, bytes: &[u8], now: Instant, wall_secs: u64) {
        self.sync(now, wall_secs);
        self.stats.rx += 1;
        let msg = match DhtMsg::parse(bytes, self.id.len()) {
            Ok(m) if m.src.addr != self.addr && m.src.id != self.id => m,
            _ => {
                self.stats.rx_invalid += 1;
                return;
            }
        };
        let src = msg.src;
        let k = self.cfg.k();
        match msg.body {
            DhtBody::Store { key, val, exp } => {
                self.heard(&src, now);
                self.on_store(&key.0, &val, exp, now);
            }
            DhtBody::FindNodeReq { cookie, key } => {
                self.heard(&src, now);
                let contacts = self.table.closest(&key.0, k, src.addr);
                self.send(
                    src.addr,
                    DhtBody::FindNodeRsp {
                        cookie,
                        key,
                        contacts,
                    },
                );
            }
            DhtBody::FindValueReq { cookie, key } => {
                self.heard(&src, now);
                let contacts = self.table.closest(&key.0, k, src.addr);
                let wall = self.wall(now);
                let values = self
                    .store
                    .retrieve(&key.0, self.addr, wall)
                    .into_iter()
                    .map(|a| addr_value(a).to_vec())
                    .collect();
                self.send(
                    src.addr,
                    DhtBody::FindValueRsp {
                        cookie,
                        key,
                        contacts,
                        values,
                    },
                );
            }
            DhtBody::FindNodeRsp {
                cookie,
                key,
                contacts,
            } => self.on_response(&src, Kind::Node, cookie, &key.0, &contacts, &[], now),
            DhtBody::FindValueRsp {
                cookie,
                key,
                contacts,
                values,
            } => self.on_response(&src, Kind::Value, cookie, &key.0, &contacts, &values, now),
        }
        self.drain_jobs(now);
    }

    /// Publish that `key` (a name hash) is registered here: our address is stored at the `k`
    /// nodes closest to it, and again every replication period until [`Self::unregister`].
    pub fn register(&mut self, key: &[u8], now: Instant) -> Result<(), DhtError> {
        self.check_key(key)?;
        if !self.store.add_local(key) {
            return Err(DhtError::TooManyRegistrations(self.cfg.max_entries));
        }
        let exp = self.expiry(now);
        if !self.launch(
            key,
            Kind::Node,
            Purpose::Store(vec![(self.addr, exp)]),
            false,
            now,
        ) {
            self.enqueue(key.to_vec());
        }
        Ok(())
    }

    /// Stop publishing `key`. The copies other nodes hold expire within `t_expire`; lookups
    /// elsewhere may find them until then (and answers cached for 60 s). Returns whether it
    /// was registered.
    pub fn unregister(&mut self, key: &[u8]) -> bool {
        self.unplaced.remove(key);
        self.store.remove_local(key, self.addr)
    }

    /// Find the addresses of `key`. The answer comes as [`Event::LookupDone`] with the
    /// returned id, queued at once when this node knows them (a name registered here, a
    /// value stored here, a recent answer) or has no contact to ask.
    pub fn lookup(&mut self, key: &[u8], now: Instant) -> Result<QueryId, DhtError> {
        self.check_key(key)?;
        let q = QueryId(self.next_query);
        self.next_query += 1;
        self.stats.lookups += 1;
        let wall = self.wall(now);
        let mut addrs = self.store.retrieve(key, self.addr, wall);
        if addrs.is_empty() {
            if let Some(c) = self.store.cached(key, now) {
                addrs = c.to_vec();
            }
        }
        if !addrs.is_empty() || self.table.is_empty() {
            self.answer(q, key, addrs);
        } else if !self.launch(key, Kind::Value, Purpose::Query(q), false, now) {
            self.stats.lookups_dropped += 1;
            self.answer(q, key, Vec::new());
        }
        Ok(q)
    }

    /// The next message to send: (destination address, DHT message for its endpoint 1).
    pub fn poll_transmit(&mut self) -> Option<(u64, Vec<u8>)> {
        self.tx.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] is due: a request timing out, the next replication
    /// round or bucket refresh, or joining again.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_round.min(self.next_refresh);
        for l in &self.lookups {
            if let Some(d) = l.deadline() {
                t = t.min(d);
            }
        }
        if let Some(j) = self.join_due() {
            t = t.min(j);
        }
        for u in [self.unplaced_at, self.fill_at].into_iter().flatten() {
            t = t.min(u);
        }
        Some(t)
    }

    pub fn handle_timeout(&mut self, now: Instant, wall_secs: u64) {
        self.sync(now, wall_secs);
        let mut failed = Vec::new();
        for l in &mut self.lookups {
            let (timed_out, gone) = l.expire(now);
            self.stats.req_timeouts += timed_out as u64;
            failed.extend(gone);
        }
        for a in failed {
            if self.table.failed(a, consts::R_PING) {
                self.stats.contacts_evicted += 1;
            }
        }
        let lids: Vec<u64> = self.lookups.iter().map(|l| l.lid).collect();
        for lid in lids {
            self.step(lid, now);
        }
        if now >= self.next_round {
            self.next_round = now + self.cfg.replication_period();
            self.round(now);
        }
        if now >= self.next_refresh {
            self.next_refresh = now + secs(self.cfg.t_refresh);
            self.refresh(now);
        }
        if self.unplaced_at.is_some_and(|t| t <= now) {
            self.unplaced_at = None;
            self.publish_unplaced();
        }
        if self.fill_at.is_some_and(|t| t <= now) {
            self.fill(now);
        }
        self.check_join(now);
        self.drain_jobs(now);
    }

    /// Routing says `addr` is unreachable: forget it as a contact, stop waiting for it, and
    /// drop it from cached lookup answers.
    pub fn peer_gone(&mut self, addr: u64, now: Instant) {
        self.stats.contacts_evicted += self.table.remove_addr(addr) as u64;
        self.store.uncache_addr(addr);
        let mut hit = Vec::new();
        for l in &mut self.lookups {
            if l.fail_addr(addr) {
                hit.push(l.lid);
            }
        }
        for lid in hit {
            self.step(lid, now);
        }
        self.drain_jobs(now);
    }

    /// A snapshot for `irm ipcp show`.
    pub fn show(&self) -> DhtShow {
        let buckets = self
            .table
            .buckets()
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.contacts.is_empty() || !b.spares.is_empty())
            .map(|(index, b)| BucketShow {
                index,
                contacts: b
                    .contacts
                    .iter()
                    .map(|c| ContactShow {
                        id: NameHash(c.id.clone()),
                        addr: c.addr,
                        fails: c.fails,
                    })
                    .collect(),
                spares: b.spares.len(),
            })
            .collect();
        let entries = self
            .store
            .entries()
            .iter()
            .map(|(k, vals)| EntryShow {
                key: NameHash(k.clone()),
                values: vals.iter().map(|v| (v.addr, v.exp)).collect(),
            })
            .collect();
        DhtShow {
            id: NameHash(self.id.clone()),
            addr: self.addr,
            config: self.cfg.clone(),
            buckets,
            entries,
            registered: self
                .store
                .local_keys()
                .map(|k| NameHash(k.clone()))
                .collect(),
            lookups: self.lookups.len(),
            candidates: self.lookups.iter().map(Lookup::len).sum(),
            cached: self.store.cache_len(),
            queued_tx: self.tx.len(),
            queued_events: self.events.len(),
            queued_jobs: self.jobs.len(),
            joined: self.joined,
            stats: self.stats.clone(),
        }
    }

    // --- internals ---

    pub(super) fn check_key(&self, key: &[u8]) -> Result<(), DhtError> {
        if key.len() == self.id.len() {
            Ok(())
        } else {
            Err(DhtError::KeyLength {
                len: key.len(),
                hash_len: self.id.len(),
            })
        }
    }

    pub(super) fn sync(&mut self, now: Instant, wall_secs: u64) {
        self.wall_at = now;
        self.wall_secs = wall_secs;
    }

    /// Wall-clock seconds at `now`.
    pub(super) fn wall(&self, now: Instant) -> u64 {
        self.wall_secs
            .saturating_add(now.saturating_duration_since(self.wall_at).as_secs())
    }

    /// The expiry of a value published at `now`.
    pub(super) fn expiry(&self, now: Instant) -> u64 {
        self.wall(now).saturating_add(u64::from(self.cfg.t_expire))
    }

    pub(super) fn send(&mut self, dst: u64, body: DhtBody) {
        if dst == self.addr || dst == 0 {
            return;
        }
        if self.tx.len() >= MAX_TX {
            self.stats.tx_dropped += 1;
            return;
        }
        let msg = DhtMsg {
            src: Contact {
                id: self.id.clone(),
                addr: self.addr,
            },
            body,
        };
        self.stats.tx += 1;
        self.tx.push_back((dst, msg.to_vec()));
    }

    pub(super) fn event(&mut self, e: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.stats.events_dropped += 1;
        } else {
            self.events.push_back(e);
        }
    }

    pub(super) fn answer(&mut self, id: QueryId, key: &[u8], addrs: Vec<u64>) {
        if addrs.is_empty() {
            self.stats.lookups_not_found += 1;
        } else {
            self.stats.lookups_found += 1;
        }
        self.event(Event::LookupDone {
            id,
            key: NameHash(key.to_vec()),
            addrs,
        });
    }

    /// We heard from `src`.
    pub(super) fn heard(&mut self, src: &Contact, now: Instant) {
        if self.table.is_empty() && !self.unplaced.is_empty() {
            // Our first contact: publish what nobody holds yet (once this message is handled).
            self.publish_unplaced();
        }
        if self.table.seen(&src.id, src.addr, now) == Seen::SpareDropped {
            self.stats.contacts_dropped += 1;
        }
    }

    pub(super) fn on_store(&mut self, key: &[u8], val: &[u8], exp: u32, now: Instant) {
        let Some(addr) = value_addr(val).filter(|a| *a != 0) else {
            self.stats.stores_refused += 1;
            return;
        };
        let wall = self.wall(now);
        let exp = u64::from(exp).min(self.expiry(now));
        match self.store.store(key, addr, exp, self.addr, now, wall) {
            Stored::New | Stored::Refreshed => self.stats.stores_rx += 1,
            Stored::Expired | Stored::Local => self.stats.stores_refused += 1,
            Stored::Full => self.stats.stores_dropped += 1,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_response(
        &mut self,
        src: &Contact,
        kind: Kind,
        cookie: u64,
        key: &[u8],
        contacts: &[Contact],
        values: &[Vec<u8>],
        now: Instant,
    ) {
        let Some(i) = self
            .lookups
            .iter()
            .position(|l| l.kind == kind && l.key == key && l.is_pending(cookie, src.addr))
        else {
            self.stats.rx_unmatched += 1;
            return;
        };
        self.heard(src, now);
        let k = self.cfg.k();
        let l = &mut self.lookups[i];
        l.answered(cookie, src.addr, &src.id);
        l.add(&contacts[..contacts.len().min(k)], &self.id, self.addr);
        for a in values.iter().filter_map(|v| value_addr(v)) {
            if a != 0 && !l.values.contains(&a) && l.values.len() < consts::MAX_VALS {
                l.values.push(a);
            }
        }
        let lid = l.lid;
        self.step(lid, now);
    }
}
