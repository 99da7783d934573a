//! One DHT node driven by an arbitrary sequence of packets and calls: arbitrary bytes,
//! well-formed requests and STOREs from a few peers, answers to the requests it sent (with
//! the right cookie, or a mutated key, sender or code), forged answers, registrations,
//! lookups, joins, unreachable peers and time steps. Nothing may panic, and between calls:
//! - every table stays within its bound (buckets, spares, stored keys and values,
//!   registrations, cache, lookups and their candidates, queues);
//! - every message it sends parses, carries its own contact and goes to another address;
//! - a response with a cookie it never sent changes nothing but the counters, and is not
//!   answered;
//! - every lookup is answered once, with at most `MAX_VALS` addresses;
//! - after `handle_timeout(now)`, nothing is due at `now`.
#![no_main]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use o7s_proto::dht::{Dht, DhtConfig, DhtError, DhtShow, DhtStats, Event, QueryId, MAX_EVENTS, MAX_TX};
use o7s_proto::wire::dht::{addr_value, consts, Contact, DhtBody, DhtMsg};
use o7s_proto::NameHash;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.byte();
        }
        u64::from_be_bytes(b)
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

const WALL: u64 = 1_767_225_600;
const PEERS: u64 = 8;

/// A request the node sent: (destination, code, cookie, key).
type Sent = (u64, u8, u64, NameHash);

struct World {
    d: Dht,
    hash_len: usize,
    cfg: DhtConfig,
    now: Instant,
    t0: Instant,
    sent: Vec<Sent>,
    cookies: HashSet<u64>,
    pending: HashSet<QueryId>,
    answered: HashSet<QueryId>,
}

impl World {
    fn wall(&self) -> u64 {
        WALL + (self.now - self.t0).as_secs()
    }

    /// Peer `i` (addresses 2..): ids that spread over the buckets.
    fn peer(&self, i: u8) -> Contact {
        let i = u64::from(i) % PEERS;
        let mut id = vec![0u8; self.hash_len];
        let x = (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        id[..8].copy_from_slice(&x.to_be_bytes());
        Contact { id, addr: i + 2 }
    }

    fn key(&self, i: u8) -> NameHash {
        let mut k = vec![0u8; self.hash_len];
        k[0] = i % 6;
        k[1] = 0x5a;
        if i % 6 == 5 {
            // Our own id: the key bootstrap looks up.
            k = self.d.id().to_vec();
        }
        NameHash(k)
    }

    fn check(&self) {
        let s: DhtShow = self.d.show();
        let k = self.cfg.k as usize;
        let alpha = self.cfg.alpha as usize;
        assert!(s.buckets.iter().all(|b| b.index < 8 * self.hash_len));
        assert!(s.buckets.iter().all(|b| b.contacts.len() <= k && b.spares <= k));
        assert!(s.entries.len() <= self.cfg.max_entries);
        assert!(s.entries.iter().all(|e| e.values.len() <= consts::MAX_VALS));
        assert!(s.registered.len() <= self.cfg.max_entries);
        assert!(s.cached <= self.cfg.max_cache);
        assert!(s.lookups <= consts::MAX_REQS);
        assert!(s.candidates <= s.lookups * (3 * k + alpha));
        assert!(s.queued_tx <= MAX_TX);
        assert!(s.queued_events <= MAX_EVENTS);
        assert!(s.queued_jobs <= 2 * self.cfg.max_entries);
    }

    fn state(&self) -> DhtShow {
        let mut s = self.d.show();
        s.stats = DhtStats::default();
        s
    }

    fn drain_tx(&mut self) {
        while let Some((dst, p)) = self.d.poll_transmit() {
            assert!(dst != 0 && dst != self.d.addr());
            let m = DhtMsg::parse(&p, self.hash_len).expect("sent message parses");
            assert_eq!(m.src.id, self.d.id());
            assert_eq!(m.src.addr, self.d.addr());
            match m.body {
                DhtBody::FindNodeReq { cookie, key } => {
                    assert_ne!(cookie, consts::INVALID_COOKIE);
                    self.cookies.insert(cookie);
                    self.sent.push((dst, 1, cookie, key));
                }
                DhtBody::FindValueReq { cookie, key } => {
                    assert_ne!(cookie, consts::INVALID_COOKIE);
                    self.cookies.insert(cookie);
                    self.sent.push((dst, 3, cookie, key));
                }
                DhtBody::FindNodeRsp { contacts, .. } => {
                    assert!(contacts.len() <= self.cfg.k as usize);
                }
                DhtBody::FindValueRsp {
                    contacts, values, ..
                } => {
                    assert!(contacts.len() <= self.cfg.k as usize);
                    assert!(values.len() <= consts::MAX_VALS);
                }
                DhtBody::Store { val, .. } => assert_eq!(val.len(), 8),
            }
            if self.sent.len() > 256 {
                self.sent.remove(0);
            }
        }
    }

    fn drain_events(&mut self) {
        while let Some(e) = self.d.poll_event() {
            if let Event::LookupDone { id, addrs, key } = e {
                assert_eq!(key.0.len(), self.hash_len);
                assert!(addrs.len() <= consts::MAX_VALS);
                assert!(self.pending.remove(&id), "answer to an unknown lookup");
                assert!(self.answered.insert(id), "lookup answered twice");
            }
        }
    }

    fn packet(&mut self, p: &[u8]) {
        let (now, wall) = (self.now, self.wall());
        self.d.on_packet(p, now, wall);
    }

    fn contacts(&mut self, inp: &mut Input) -> Vec<Contact> {
        let n = usize::from(inp.byte() % 26);
        (0..n)
            .map(|_| {
                let b = inp.byte();
                let mut c = self.peer(b);
                if b & 0x80 != 0 {
                    // Someone new, or ourselves.
                    c.id[self.hash_len - 1] ^= b;
                    c.addr = u64::from(b & 0x1f);
                }
                c
            })
            .collect()
    }

    fn values(inp: &mut Input) -> Vec<Vec<u8>> {
        let n = usize::from(inp.byte() % 13);
        (0..n)
            .map(|_| {
                let b = inp.byte();
                if b == 0xff {
                    vec![1, 2, 3]
                } else {
                    addr_value(u64::from(b % 16)).to_vec()
                }
            })
            .collect()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let mode = inp.byte();
    let hash_len = if mode & 1 == 0 { 32 } else { 16 };
    let cfg = DhtConfig {
        alpha: u32::from(inp.byte() % 10) + 1,
        k: u32::from(inp.byte() % 20) + 1,
        t_expire: u32::from(inp.byte()) + 10,
        t_refresh: u32::from(inp.byte()) + 3,
        t_replicate: u32::from(inp.byte()) + 3,
        max_entries: usize::from(inp.byte() % 32) + 1,
        max_cache: usize::from(inp.byte() % 8),
    };
    let t0 = Instant::now();
    let mut id = vec![0u8; hash_len];
    for b in &mut id {
        *b = inp.byte();
    }
    let mut seed = [0u8; 32];
    seed[0] = inp.byte();
    let Ok(d) = Dht::new(id, 1, cfg.clone(), t0, WALL, seed) else {
        return;
    };
    let mut w = World {
        d,
        hash_len,
        cfg,
        now: t0,
        t0,
        sent: Vec::new(),
        cookies: HashSet::new(),
        pending: HashSet::new(),
        answered: HashSet::new(),
    };
    let mut ops = 0;
    while !inp.is_empty() && ops < 3000 {
        ops += 1;
        let op = inp.byte();
        match op % 16 {
            0 => {
                let n = usize::from(inp.u16() % 512);
                let p = inp.bytes(n).to_vec();
                w.packet(&p);
            }
            1 | 2 => {
                // A request or STORE from a peer.
                let src = w.peer(inp.byte());
                let key = w.key(inp.byte());
                let body = match op >> 6 {
                    0 => DhtBody::FindNodeReq {
                        cookie: inp.u64(),
                        key,
                    },
                    1 => DhtBody::FindValueReq {
                        cookie: inp.u64(),
                        key,
                    },
                    _ => {
                        let v = inp.byte();
                        let exp = w.wall() as i64 + i64::from(inp.u16()) - 64;
                        DhtBody::Store {
                            key,
                            val: if v == 0xff {
                                vec![7; 3]
                            } else {
                                addr_value(u64::from(v % 16)).to_vec()
                            },
                            exp: exp.max(0) as u32,
                        }
                    }
                };
                let p = DhtMsg { src, body }.to_vec();
                w.packet(&p);
            }
            3..=5 => {
                // An answer to a request it sent, perhaps mutated.
                if w.sent.is_empty() {
                    continue;
                }
                let i = usize::from(inp.u16()) % w.sent.len();
                let (dst, code, cookie, mut key) = w.sent[i].clone();
                let flags = inp.byte();
                let mut src = match (2..2 + PEERS).contains(&dst) {
                    true => w.peer((dst - 2) as u8),
                    false => {
                        let mut c = w.peer(0);
                        c.addr = dst;
                        c
                    }
                };
                if flags & 1 != 0 {
                    src = w.peer(inp.byte());
                }
                if flags & 2 != 0 {
                    key = w.key(inp.byte());
                }
                let contacts = w.contacts(&mut inp);
                let value = (code == 3) != (flags & 4 != 0);
                let body = if value {
                    DhtBody::FindValueRsp {
                        cookie,
                        key,
                        contacts,
                        values: World::values(&mut inp),
                    }
                } else {
                    DhtBody::FindNodeRsp {
                        cookie,
                        key,
                        contacts,
                    }
                };
                let p = DhtMsg { src, body }.to_vec();
                w.packet(&p);
                if flags & 8 != 0 {
                    // Replayed.
                    w.packet(&p);
                }
            }
            6 => {
                // A forged answer: a cookie it never sent.
                let cookie = inp.u64();
                if w.cookies.contains(&cookie) {
                    continue;
                }
                w.drain_tx();
                w.drain_events();
                let src = w.peer(inp.byte());
                let key = w.key(inp.byte());
                let contacts = w.contacts(&mut inp);
                let body = if op & 0x80 != 0 {
                    DhtBody::FindValueRsp {
                        cookie,
                        key,
                        contacts,
                        values: World::values(&mut inp),
                    }
                } else {
                    DhtBody::FindNodeRsp {
                        cookie,
                        key,
                        contacts,
                    }
                };
                let before = w.state();
                let p = DhtMsg { src, body }.to_vec();
                w.packet(&p);
                assert_eq!(w.d.poll_transmit(), None, "forged answer answered");
                assert_eq!(w.d.poll_event(), None, "forged answer accepted");
                assert_eq!(w.state(), before, "forged answer changed state");
            }
            7 => {
                let v = u64::from(inp.u16());
                w.now += match op >> 6 {
                    0 => Duration::from_millis(v),
                    1 => Duration::from_millis(v * 16),
                    _ => Duration::from_secs(v),
                };
            }
            8 | 9 => {
                // To the next timer, and handle it.
                if op & 0x80 != 0 {
                    if let Some(t) = w.d.poll_timeout() {
                        w.now = w.now.max(t);
                    }
                }
                let (now, wall) = (w.now, w.wall());
                w.d.handle_timeout(now, wall);
                w.drain_tx();
                if let Some(t) = w.d.poll_timeout() {
                    assert!(t > now, "timer due at now after handle_timeout");
                }
            }
            10 => {
                let key = w.key(inp.byte());
                let now = w.now;
                match w.d.register(&key.0, now) {
                    Ok(()) => {}
                    Err(DhtError::TooManyRegistrations(n)) => {
                        assert_eq!(n, w.cfg.max_entries);
                        assert_eq!(w.d.show().registered.len(), n);
                    }
                    Err(e) => panic!("register: {e}"),
                }
            }
            11 => {
                let key = w.key(inp.byte());
                w.d.unregister(&key.0);
            }
            12 => {
                let key = w.key(inp.byte());
                let now = w.now;
                let q = w.d.lookup(&key.0, now).expect("key of the right length");
                assert!(w.pending.insert(q));
            }
            13 => {
                let now = w.now;
                let peer = u64::from(inp.byte() % 12);
                if op & 0x80 != 0 {
                    w.d.peer_gone(peer, now);
                } else {
                    w.d.bootstrap(peer, now);
                }
            }
            14 => w.drain_tx(),
            _ => w.drain_events(),
        }
        w.check();
    }
    w.drain_events();
});
