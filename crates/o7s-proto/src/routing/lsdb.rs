//! The link-state database: one entry per announced directed adjacency `(src, dst)`, live
//! (announced) or withdrawn (a tombstone that remembers the withdrawal's sequence number), with
//! an index of expiry times so that timing out costs O(log n) per entry. Its size is capped;
//! the caller counts what the cap refuses.

use std::collections::{btree_map, BTreeMap, BTreeSet};
use std::time::Instant;

use super::Addr;

/// `(src, dst)`: `src` announced an adjacency to `dst`.
pub(crate) type Key = (Addr, Addr);

/// What the database holds about one directed adjacency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Highest sequence number seen (or, for our own adjacencies, last sent).
    pub seqno: u64,
    /// Announced (true) or withdrawn (false).
    pub live: bool,
    /// When the entry was last stored or refreshed.
    pub updated: Instant,
    /// When it is removed unless refreshed; `None` never (our own live adjacencies).
    pub expires: Option<Instant>,
}

pub(crate) struct Lsdb {
    entries: BTreeMap<Key, Entry>,
    expiry: BTreeSet<(Instant, Key)>,
    max: usize,
}

impl Lsdb {
    pub fn new(max: usize) -> Self {
        Lsdb {
            entries: BTreeMap::new(),
            expiry: BTreeSet::new(),
            max,
        }
    }

    pub fn get(&self, key: Key) -> Option<&Entry> {
        self.entries.get(&key)
    }

    pub fn is_live(&self, key: Key) -> bool {
        self.entries.get(&key).is_some_and(|e| e.live)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Store `entry` under `key`, replacing what was there. A new key is refused (false) when
    /// the database holds its maximum, unless `force` (our own adjacencies, which the caller
    /// bounds).
    pub fn set(&mut self, key: Key, entry: Entry, force: bool) -> bool {
        let full = !force && self.entries.len() >= self.max;
        match self.entries.entry(key) {
            btree_map::Entry::Occupied(mut o) => {
                if let Some(t) = o.get().expires {
                    self.expiry.remove(&(t, key));
                }
                o.insert(entry);
            }
            btree_map::Entry::Vacant(v) => {
                if full {
                    return false;
                }
                v.insert(entry);
            }
        }
        if let Some(t) = entry.expires {
            self.expiry.insert((t, key));
        }
        true
    }

    /// Remove and return every entry that expires at or before `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<(Key, Entry)> {
        let mut out = Vec::new();
        while let Some(&(t, key)) = self.expiry.first() {
            if t > now {
                break;
            }
            self.expiry.pop_first();
            if let Some(e) = self.entries.remove(&key) {
                out.push((key, e));
            }
        }
        out
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiry.first().map(|&(t, _)| t)
    }

    /// All entries, ordered by `(src, dst)`.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &Entry)> + '_ {
        self.entries.iter().map(|(&k, e)| (k, e))
    }

    /// The entries announced by `src`, ordered by `dst`.
    pub fn announced_by(&self, src: Addr) -> impl Iterator<Item = (Key, &Entry)> + '_ {
        self.entries
            .range((src, Addr::MIN)..=(src, Addr::MAX))
            .map(|(&k, e)| (k, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn e(seqno: u64, at: Instant, expires: Option<Instant>) -> Entry {
        Entry {
            seqno,
            live: true,
            updated: at,
            expires,
        }
    }

    #[test]
    fn cap_expiry_and_refresh() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut db = Lsdb::new(2);
        assert!(db.set((1, 2), e(0, t0, Some(t0 + s)), false));
        assert!(db.set((2, 1), e(0, t0, Some(t0 + 2 * s)), false));
        assert!(!db.set((2, 3), e(0, t0, None), false), "full");
        assert!(db.set((1, 3), e(0, t0, None), true), "forced");
        assert_eq!(db.len(), 3);
        // Refreshing moves the deadline.
        assert!(db.set((1, 2), e(1, t0, Some(t0 + 3 * s)), false));
        assert_eq!(db.next_expiry(), Some(t0 + 2 * s));
        assert_eq!(db.expire(t0 + 2 * s).len(), 1);
        assert!(db.get((2, 1)).is_none());
        assert_eq!(db.announced_by(1).count(), 2);
        assert_eq!(db.get((1, 2)).map(|x| x.seqno), Some(1));
        assert_eq!(db.next_expiry(), Some(t0 + 3 * s));
        assert_eq!(db.expire(t0 + 3 * s).len(), 1);
        assert_eq!(db.next_expiry(), None);
        assert!(db.expire(t0 + 100 * s).is_empty());
        assert!(db.is_live((1, 3)));
    }
}
