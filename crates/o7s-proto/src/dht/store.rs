//! What the DHT knows about keys: the values other nodes stored here (each with its absolute
//! expiry in wall-clock seconds, the prototype's `exp`), the names registered on this node
//! (the prototype's local values, whose value is our own address) and the answers of recent
//! lookups (cached [`T_CACHE`](consts::T_CACHE) seconds). Every table is bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::wire::dht::consts;

/// A value another node stored here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value {
    pub(crate) addr: u64,
    /// Expiry, seconds since the epoch.
    pub(crate) exp: u64,
    /// When it was last replicated, by us or by a STORE that reached us.
    pub(crate) repl: Instant,
}

/// What [`Store::store`] did with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    New,
    Refreshed,
    /// Already expired: refused, as by the prototype.
    Expired,
    /// Our own registration: not kept twice (the prototype refuses local values too).
    Local,
    /// No room: too many keys, or [`consts::MAX_VALS`] values under this key.
    Full,
}

pub(crate) struct Store {
    max_entries: usize,
    max_cache: usize,
    entries: BTreeMap<Vec<u8>, Vec<Value>>,
    /// Keys registered here.
    local: BTreeSet<Vec<u8>>,
    /// Lookup answers: addresses, and when they go stale.
    cache: BTreeMap<Vec<u8>, (Vec<u64>, Instant)>,
}

impl Store {
    pub(crate) fn new(max_entries: usize, max_cache: usize) -> Store {
        Store {
            max_entries,
            max_cache,
            entries: BTreeMap::new(),
            local: BTreeSet::new(),
            cache: BTreeMap::new(),
        }
    }

    pub(crate) fn entries(&self) -> &BTreeMap<Vec<u8>, Vec<Value>> {
        &self.entries
    }

    pub(crate) fn local_keys(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.local.iter()
    }

    pub(crate) fn is_local(&self, key: &[u8]) -> bool {
        self.local.contains(key)
    }

    pub(crate) fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Register `key` here. False when the table of registrations is full.
    pub(crate) fn add_local(&mut self, key: &[u8]) -> bool {
        if !self.local.contains(key) && self.local.len() >= self.max_entries {
            return false;
        }
        self.local.insert(key.to_vec());
        true
    }

    /// Unregister `key`; our own address, if another node stored it back here under that
    /// key, goes too. Returns whether it was registered.
    pub(crate) fn remove_local(&mut self, key: &[u8], own: u64) -> bool {
        if let Some(vals) = self.entries.get_mut(key) {
            vals.retain(|v| v.addr != own);
            if vals.is_empty() {
                self.entries.remove(key);
            }
        }
        self.local.remove(key)
    }

    /// A STORE of `addr` under `key` until `exp` arrived (or we hold it after `now`).
    pub(crate) fn store(
        &mut self,
        key: &[u8],
        addr: u64,
        exp: u64,
        own: u64,
        now: Instant,
        wall: u64,
    ) -> Stored {
        if exp < wall {
            return Stored::Expired;
        }
        if addr == own && self.is_local(key) {
            return Stored::Local;
        }
        if !self.entries.contains_key(key) && self.entries.len() >= self.max_entries {
            return Stored::Full;
        }
        let vals = self.entries.entry(key.to_vec()).or_default();
        if let Some(v) = vals.iter_mut().find(|v| v.addr == addr) {
            v.exp = v.exp.max(exp);
            v.repl = now;
            return Stored::Refreshed;
        }
        // Make room by dropping what has expired.
        vals.retain(|v| v.exp >= wall);
        if vals.len() >= consts::MAX_VALS {
            return Stored::Full;
        }
        vals.push(Value {
            addr,
            exp,
            repl: now,
        });
        Stored::New
    }

    /// The addresses known for `key`, at most [`consts::MAX_VALS`]: ours first when the
    /// key is registered here, then those stored here that have not expired.
    pub(crate) fn retrieve(&self, key: &[u8], own: u64, wall: u64) -> Vec<u64> {
        let mut out = Vec::new();
        if self.is_local(key) {
            out.push(own);
        }
        if let Some(vals) = self.entries.get(key) {
            for v in vals {
                if v.exp >= wall && !out.contains(&v.addr) {
                    out.push(v.addr);
                }
            }
        }
        out.truncate(consts::MAX_VALS);
        out
    }

    /// Drop expired values and cache entries; returns the number of values dropped.
    pub(crate) fn purge(&mut self, now: Instant, wall: u64) -> usize {
        let mut n = 0;
        self.entries.retain(|_, vals| {
            let before = vals.len();
            vals.retain(|v| v.exp >= wall);
            n += before - vals.len();
            !vals.is_empty()
        });
        self.cache.retain(|_, (_, t)| *t > now);
        n
    }

    /// The values not replicated for `period`, now marked replicated.
    pub(crate) fn due(
        &mut self,
        key: &[u8],
        now: Instant,
        period: Duration,
        wall: u64,
    ) -> Vec<(u64, u64)> {
        let Some(vals) = self.entries.get_mut(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for v in vals.iter_mut() {
            if v.exp >= wall && v.repl + period <= now {
                v.repl = now;
                out.push((v.addr, v.exp));
            }
        }
        out
    }

    /// Keys with values to replicate at `now`.
    pub(crate) fn due_keys(&self, now: Instant, period: Duration, wall: u64) -> Vec<Vec<u8>> {
        self.entries
            .iter()
            .filter(|(_, vals)| vals.iter().any(|v| v.exp >= wall && v.repl + period <= now))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// A fresh lookup answer for `key`.
    pub(crate) fn cached(&self, key: &[u8], now: Instant) -> Option<&[u64]> {
        match self.cache.get(key) {
            Some((addrs, t)) if *t > now => Some(addrs),
            _ => None,
        }
    }

    /// Remember a lookup answer; when the cache is full, the entry closest to going stale
    /// makes room.
    pub(crate) fn cache(&mut self, key: &[u8], addrs: &[u64], now: Instant) {
        if self.max_cache == 0 || addrs.is_empty() {
            return;
        }
        if !self.cache.contains_key(key) && self.cache.len() >= self.max_cache {
            self.cache.retain(|_, (_, t)| *t > now);
            if self.cache.len() >= self.max_cache {
                let oldest = self
                    .cache
                    .iter()
                    .min_by_key(|(_, (_, t))| *t)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.cache.remove(&k);
                }
            }
        }
        let t = now + Duration::from_secs(u64::from(consts::T_CACHE));
        self.cache.insert(key.to_vec(), (addrs.to_vec(), t));
    }

    /// `addr` is unreachable: lookup answers no longer name it.
    pub(crate) fn uncache_addr(&mut self, addr: u64) {
        self.cache.retain(|_, (addrs, _)| {
            addrs.retain(|a| *a != addr);
            !addrs.is_empty()
        });
    }
}
