//! The contacts: XOR distance and k-buckets, one per length of the prefix a node id shares
//! with ours (bucket 0 holds the ids that differ from ours in the first bit, the farthest
//! half of the id space). Each bucket keeps at most `k` contacts, least recently heard from
//! first, and up to `k` spares that replace contacts which stop answering.

use std::cmp::Ordering;
use std::time::Instant;

use crate::wire::dht::Contact;

/// Compare the XOR distances of `a` and `b` to `key` (big-endian, so the first differing
/// bit decides). The prototype compares only the first 64 bits; this order refines it.
pub(crate) fn cmp_distance(key: &[u8], a: &[u8], b: &[u8]) -> Ordering {
    let n = key.len().min(a.len()).min(b.len());
    for i in 0..n {
        let (x, y) = (a[i] ^ key[i], b[i] ^ key[i]);
        if x != y {
            return x.cmp(&y);
        }
    }
    a.len().cmp(&b.len())
}

/// The XOR distance of two ids (as long as the shorter one).
#[cfg(test)]
pub(crate) fn distance(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Number of leading bits `own` and `id` share: the index of the bucket for `id`, or `None`
/// when `id` is `own` (or a prefix of it).
pub(crate) fn bucket_index(own: &[u8], id: &[u8]) -> Option<usize> {
    for (i, (x, y)) in own.iter().zip(id).enumerate() {
        let d = x ^ y;
        if d != 0 {
            return Some(i * 8 + d.leading_zeros() as usize);
        }
    }
    None
}

/// A contact in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: Vec<u8>,
    pub(crate) addr: u64,
    /// Requests that went unanswered since it was last heard from.
    pub(crate) fails: u32,
    pub(crate) seen: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    /// Least recently heard from first.
    pub(crate) contacts: Vec<Entry>,
    /// Newest last.
    pub(crate) spares: Vec<Entry>,
    /// Last lookup of an id in this bucket.
    pub(crate) touched: Instant,
}

impl Bucket {
    /// Drop `addr`; the newest spare takes the place of a contact. Returns the number of
    /// contacts removed.
    fn forget(&mut self, addr: u64) -> usize {
        self.spares.retain(|c| c.addr != addr);
        let before = self.contacts.len();
        self.contacts.retain(|c| c.addr != addr);
        let n = before - self.contacts.len();
        for _ in 0..n {
            if let Some(s) = self.spares.pop() {
                self.contacts.push(s);
            }
        }
        n
    }
}

/// What [`Table::seen`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    Added,
    Refreshed,
    Spare,
    /// Spare, and the oldest spare was dropped to make room.
    SpareDropped,
    Ignored,
}

pub(crate) struct Table {
    own: Vec<u8>,
    own_addr: u64,
    k: usize,
    buckets: Vec<Bucket>,
}

impl Table {
    pub(crate) fn new(own: Vec<u8>, own_addr: u64, k: usize, now: Instant) -> Table {
        let bucket = Bucket {
            contacts: Vec::new(),
            spares: Vec::new(),
            touched: now,
        };
        Table {
            buckets: vec![bucket; own.len() * 8],
            own,
            own_addr,
            k,
        }
    }

    pub(crate) fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    pub(crate) fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.contacts.len()).sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.contacts.is_empty())
    }

    /// We heard from node `id` at `addr`: it becomes the most recent contact of its bucket,
    /// or a spare when the bucket is full. An address now used by another id drops the
    /// old contact.
    pub(crate) fn seen(&mut self, id: &[u8], addr: u64, now: Instant) -> Seen {
        if addr == self.own_addr || addr == 0 || id.len() != self.own.len() {
            return Seen::Ignored;
        }
        let Some(i) = bucket_index(&self.own, id) else {
            return Seen::Ignored;
        };
        for (j, b) in self.buckets.iter_mut().enumerate() {
            if j != i {
                b.forget(addr);
            }
        }
        let k = self.k;
        let b = &mut self.buckets[i];
        b.spares.retain(|c| c.addr != addr && c.id != id);
        let entry = Entry {
            id: id.to_vec(),
            addr,
            fails: 0,
            seen: now,
        };
        let before = b.contacts.len();
        b.contacts.retain(|c| c.id != id && c.addr != addr);
        if b.contacts.len() < before {
            b.contacts.push(entry);
            return Seen::Refreshed;
        }
        if b.contacts.len() < k {
            b.contacts.push(entry);
            return Seen::Added;
        }
        b.spares.push(entry);
        if b.spares.len() > k {
            b.spares.remove(0);
            return Seen::SpareDropped;
        }
        Seen::Spare
    }

    /// A request to `addr` went unanswered. Returns whether the contact was evicted (after
    /// more than `max_fails` in a row), its place taken by the newest spare.
    pub(crate) fn failed(&mut self, addr: u64, max_fails: u32) -> bool {
        for b in &mut self.buckets {
            b.spares.retain(|c| c.addr != addr);
            if let Some(pos) = b.contacts.iter().position(|c| c.addr == addr) {
                b.contacts[pos].fails += 1;
                if b.contacts[pos].fails > max_fails {
                    b.contacts.remove(pos);
                    if let Some(s) = b.spares.pop() {
                        b.contacts.push(s);
                    }
                    return true;
                }
                return false;
            }
        }
        false
    }

    /// Forget `addr` (unreachable). Returns the number of contacts removed.
    pub(crate) fn remove_addr(&mut self, addr: u64) -> usize {
        self.buckets.iter_mut().map(|b| b.forget(addr)).sum()
    }

    /// The `n` contacts closest to `key`, closest first, leaving out `except`.
    pub(crate) fn closest(&self, key: &[u8], n: usize, except: u64) -> Vec<Contact> {
        let mut all: Vec<&Entry> = self
            .buckets
            .iter()
            .flat_map(|b| &b.contacts)
            .filter(|c| c.addr != except)
            .collect();
        all.sort_by(|a, b| cmp_distance(key, &a.id, &b.id));
        all.into_iter()
            .take(n)
            .map(|c| Contact {
                id: c.id.clone(),
                addr: c.addr,
            })
            .collect()
    }

    /// A lookup for `key` visits its bucket.
    pub(crate) fn touch(&mut self, key: &[u8], now: Instant) {
        if let Some(i) = bucket_index(&self.own, key) {
            if let Some(b) = self.buckets.get_mut(i) {
                b.touched = now;
            }
        }
    }

    /// Index of the bucket of the closest contact, if any.
    pub(crate) fn closest_bucket(&self) -> Option<usize> {
        self.buckets.iter().rposition(|b| !b.contacts.is_empty())
    }

    /// A random id in bucket `i`: our first `i` bits, bit `i` flipped, the rest from `rnd`.
    pub(crate) fn id_in_bucket(&self, i: usize, rnd: &[u8]) -> Vec<u8> {
        let mut id = self.own.clone();
        for (j, b) in id.iter_mut().enumerate() {
            let r = rnd.get(j).copied().unwrap_or(0);
            // Bits of byte j that come after bit i keep from `rnd`.
            let keep_own: u8 = match (i / 8).cmp(&j) {
                Ordering::Greater => 0xff,
                Ordering::Equal => !(0xffu8 >> (i % 8)),
                Ordering::Less => 0,
            };
            *b = (*b & keep_own) | (r & !keep_own);
            if i / 8 == j {
                let bit = 0x80u8 >> (i % 8);
                *b = (*b & !bit) | (!self.own[j] & bit);
            }
        }
        id
    }
}
