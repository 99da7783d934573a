//! A simulated layer: DHT nodes at addresses 1..=N, a network that delivers what
//! `poll_transmit` returns after a fixed latency and may lose it, and a virtual clock that
//! jumps to the next delivery or timer. Scenarios: joining one by one, every key found from
//! every node, unregistration, a holder killed, expiry.
#![allow(clippy::unwrap_used)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::wire::dht::consts;
use crate::HashAlgo;

const WALL0: u64 = 1_767_225_600;

/// Timers short enough for a test: republication every 10 s, values live 40 s.
fn test_config() -> DhtConfig {
    DhtConfig {
        t_expire: 40,
        t_refresh: 20,
        t_replicate: 10,
        ..DhtConfig::default()
    }
}

/// A packet on its way: (delivery time, sequence, destination, bytes).
type InFlight = (Instant, u64, u64, Vec<u8>);

pub(super) struct Net {
    /// Node with address `a` at index `a - 1`; `None` once killed.
    pub(super) nodes: Vec<Option<Dht>>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    pub(super) now: Instant,
    t0: Instant,
    rng: u64,
    loss_permille: u64,
    latency: Duration,
    /// Events of each node, in order.
    pub(super) events: Vec<Vec<Event>>,
    pub(super) delivered: u64,
}

impl Net {
    pub(super) fn new(seed: u64, loss_permille: u64) -> Net {
        let t0 = Instant::now();
        Net {
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            now: t0,
            t0,
            rng: seed | 1,
            loss_permille,
            latency: Duration::from_millis(5),
            events: Vec::new(),
            delivered: 0,
        }
    }

    pub(super) fn rand(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn wall(&self) -> u64 {
        WALL0 + (self.now - self.t0).as_secs()
    }

    pub(super) fn node(&mut self, addr: u64) -> &mut Dht {
        self.nodes[addr as usize - 1].as_mut().unwrap()
    }

    pub(super) fn alive(&self) -> Vec<u64> {
        (1..=self.nodes.len() as u64)
            .filter(|a| self.nodes[*a as usize - 1].is_some())
            .collect()
    }

    /// A new node with a random id; returns its address.
    pub(super) fn add(&mut self, cfg: DhtConfig) -> u64 {
        let mut id = vec![0u8; 32];
        for b in id.iter_mut() {
            *b = self.rand() as u8;
        }
        let mut seed = [0u8; 32];
        for b in seed.iter_mut() {
            *b = self.rand() as u8;
        }
        let addr = self.nodes.len() as u64 + 1;
        let d = Dht::new(id, addr, cfg, self.now, self.wall(), seed).unwrap();
        self.nodes.push(Some(d));
        self.events.push(Vec::new());
        addr
    }

    pub(super) fn kill(&mut self, addr: u64) {
        self.nodes[addr as usize - 1] = None;
    }

    /// Collect what every node sends and its events.
    fn flush(&mut self) {
        for i in 0..self.nodes.len() {
            let Some(n) = self.nodes[i].as_mut() else {
                continue;
            };
            let mut out = Vec::new();
            while let Some(p) = n.poll_transmit() {
                out.push(p);
            }
            while let Some(e) = n.poll_event() {
                self.events[i].push(e);
            }
            for (dst, p) in out {
                assert_ne!(dst, i as u64 + 1, "sent to itself");
                if self.rand() % 1000 < self.loss_permille {
                    continue;
                }
                self.seq += 1;
                self.queue
                    .push(Reverse((self.now + self.latency, self.seq, dst, p)));
            }
        }
    }

    /// Run the layer for `d` of virtual time.
    pub(super) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.flush();
            let mut next = self.queue.peek().map(|Reverse(x)| x.0);
            for n in self.nodes.iter().flatten() {
                if let Some(t) = n.poll_timeout() {
                    next = Some(next.map_or(t, |x: Instant| x.min(t)));
                }
            }
            match next {
                Some(t) if t <= end => self.now = self.now.max(t),
                _ => {
                    self.now = end;
                    return;
                }
            }
            let wall = self.wall();
            while let Some(Reverse(x)) = self.queue.peek() {
                if x.0 > self.now {
                    break;
                }
                let Some(Reverse((_, _, dst, p))) = self.queue.pop() else {
                    break;
                };
                let now = self.now;
                if let Some(Some(n)) = self.nodes.get_mut(dst as usize - 1) {
                    n.on_packet(&p, now, wall);
                    self.delivered += 1;
                }
            }
            let now = self.now;
            for n in self.nodes.iter_mut().flatten() {
                if n.poll_timeout().is_some_and(|t| t <= now) {
                    n.handle_timeout(now, wall);
                    if let Some(t) = n.poll_timeout() {
                        assert!(t > now, "timer still due after handle_timeout");
                    }
                }
            }
        }
    }

    /// Look `key` up from `from`; the addresses found, and how long it took.
    pub(super) fn lookup(&mut self, from: u64, key: &[u8]) -> (Vec<u64>, Duration) {
        let start = self.now;
        let now = self.now;
        let q = self.node(from).lookup(key, now).unwrap();
        for _ in 0..6000 {
            self.flush();
            let i = from as usize - 1;
            let found = self.events[i]
                .iter()
                .position(|e| matches!(e, Event::LookupDone { id, .. } if *id == q));
            if let Some(pos) = found {
                let Event::LookupDone { addrs, key: k, .. } = self.events[i].remove(pos) else {
                    unreachable!()
                };
                assert_eq!(k.0, key);
                return (addrs, self.now - start);
            }
            self.run_for(Duration::from_millis(10));
        }
        panic!("lookup from {from} never answered");
    }

    /// Nodes holding a value for `key` (stored for others).
    pub(super) fn holders(&self, key: &[u8]) -> Vec<u64> {
        (1..=self.nodes.len() as u64)
            .filter(|a| {
                self.nodes[*a as usize - 1]
                    .as_ref()
                    .is_some_and(|n| n.show().entries.iter().any(|e| e.key.0 == key))
            })
            .collect()
    }

    /// N nodes joining one by one, each through a random earlier one.
    pub(super) fn layer(n: usize, seed: u64, loss_permille: u64) -> Net {
        let mut net = Net::new(seed, loss_permille);
        net.add(test_config());
        for _ in 1..n {
            let peer = net.rand() % net.nodes.len() as u64 + 1;
            let a = net.add(test_config());
            let now = net.now;
            net.node(a).bootstrap(peer, now);
            net.run_for(Duration::from_millis(200));
        }
        net.run_for(Duration::from_secs(10));
        net
    }
}

fn key(i: usize) -> Vec<u8> {
    HashAlgo::Sha3_256.hash(&format!("name-{i}")).0
}

/// Register `nkeys` names at random nodes; returns (key, owner).
fn register(net: &mut Net, nkeys: usize) -> Vec<(Vec<u8>, u64)> {
    let mut out = Vec::new();
    for i in 0..nkeys {
        let owner = net.rand() % net.nodes.len() as u64 + 1;
        let now = net.now;
        net.node(owner).register(&key(i), now).unwrap();
        out.push((key(i), owner));
    }
    // A publication is a lookup and STOREs: wait for every key to be placed (a lost
    // request costs the 2 s response timeout).
    for _ in 0..200 {
        net.run_for(Duration::from_millis(100));
        if net.nodes.len() == 1 || out.iter().all(|(k, _)| !net.holders(k).is_empty()) {
            break;
        }
    }
    net.run_for(Duration::from_millis(100));
    out
}

fn all_found(net: &mut Net, keys: &[(Vec<u8>, u64)]) {
    for (k, owner) in keys {
        for from in net.alive() {
            let (addrs, _) = net.lookup(from, k);
            assert!(
                addrs.contains(owner),
                "key of {owner} not found from {from}: {addrs:?}"
            );
        }
    }
}

fn scenario(n: usize, loss_permille: u64, seed: u64, nkeys: usize) {
    let mut net = Net::layer(n, seed, loss_permille);
    for a in net.alive() {
        assert!(
            net.node(a).contacts() > 0 || n == 1,
            "node {a} has no contact"
        );
    }
    let keys = register(&mut net, nkeys);
    all_found(&mut net, &keys);

    // Kill a node holding a replica of the first key (one that registered nothing): after
    // a replication period every key is still found from every node.
    let owners: Vec<u64> = keys.iter().map(|(_, o)| *o).collect();
    let victim = net
        .holders(&keys[0].0)
        .into_iter()
        .find(|h| !owners.contains(h));
    if let Some(v) = victim {
        net.kill(v);
        let period = test_config().replication_period();
        net.run_for(period + Duration::from_secs(5));
        all_found(&mut net, &keys);
    }

    // Unregister everything: once the stored copies expired and the answers cached
    // elsewhere went stale, no lookup finds the names and no node holds them.
    for (k, owner) in &keys {
        assert!(net.node(*owner).unregister(k));
    }
    let cfg = test_config();
    net.run_for(secs(cfg.t_expire) + secs(consts::T_CACHE) + 2 * cfg.replication_period());
    for (k, _) in &keys {
        assert!(net.holders(k).is_empty(), "expired values still held");
        for from in net.alive() {
            let (addrs, _) = net.lookup(from, k);
            assert!(addrs.is_empty(), "unregistered key found from {from}");
        }
    }
    for a in net.alive() {
        let s = net.node(a).show();
        assert!(s.lookups <= consts::MAX_REQS);
        for b in &s.buckets {
            assert!(b.contacts.len() <= cfg.k as usize && b.spares <= cfg.k as usize);
        }
    }
}

#[test]
fn layer_of_20_lossless() {
    scenario(20, 0, 7, 5);
}

#[test]
fn layer_of_30_lossy() {
    scenario(30, 100, 11, 4);
}

#[test]
fn single_node_layer() {
    scenario(1, 0, 3, 2);
}

/// Lossless: a lookup answers within a few round trips, and a killed holder's replica is
/// replaced within one replication period.
#[test]
fn lookup_latency_and_replica_count() {
    let mut net = Net::layer(24, 5, 0);
    let keys = register(&mut net, 3);
    let k = test_config().k as usize;
    let mut worst = Duration::ZERO;
    for (key, owner) in &keys {
        for from in net.alive() {
            let (addrs, t) = net.lookup(from, key);
            assert!(addrs.contains(owner));
            worst = worst.max(t);
        }
    }
    // 5 ms each way: a lookup is a few sequential round trips, and the harness polls
    // every 10 ms.
    assert!(
        worst <= Duration::from_millis(100),
        "slow lookup: {worst:?}"
    );
    let (key, owner) = keys[0].clone();
    let before = net.holders(&key);
    assert!(before.len() >= k - 1, "{} holders", before.len());
    let victim = before.iter().copied().find(|h| *h != owner).unwrap();
    net.kill(victim);
    net.run_for(test_config().replication_period() + Duration::from_secs(3));
    let after = net.holders(&key);
    assert!(!after.contains(&victim));
    assert!(
        after.len() >= before.len() - 1 && after.len() >= k - 1,
        "{before:?} -> {after:?}"
    );
}

/// A value whose publisher is gone expires everywhere.
#[test]
fn stores_expire() {
    let mut net = Net::layer(12, 9, 0);
    let keys = register(&mut net, 2);
    let (key, owner) = keys[0].clone();
    assert!(!net.holders(&key).is_empty());
    net.kill(owner);
    let cfg = test_config();
    net.run_for(secs(cfg.t_expire) + 2 * cfg.replication_period());
    assert!(net.holders(&key).is_empty());
    let expired: u64 = net
        .alive()
        .iter()
        .map(|a| {
            net.nodes[*a as usize - 1]
                .as_ref()
                .unwrap()
                .stats()
                .values_expired
        })
        .sum();
    assert!(expired > 0);
    // The other key, whose owner lives, is still found.
    let (k2, o2) = keys[1].clone();
    if o2 != owner {
        let from = net.alive()[0];
        assert!(net.lookup(from, &k2).0.contains(&o2));
    }
}

/// Cases proptest found: newcomers that joined through a node whose own join was lost
/// formed an island; a publication slowed by lost requests; a join lost three times; a
/// newcomer that joined through a node still joining (one contact), whose lookup then lost
/// its request to that contact.
#[test]
fn past_failures() {
    scenario(9, 65, 1_199_779_728_842_954_068, 1);
    scenario(17, 35, 6_580_012_179_493_542_764, 3);
    scenario(18, 62, 13_810_589_278_288_843_442, 1);
    scenario(23, 83, 4_729_277_064_984_435_320, 1);
    scenario(24, 90, 7_573_970_477_138_455_868, 2);
}

/// Eight layers per run (about 10 s); `PROPTEST_CASES` asks for more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn every_key_found(n in 2usize..=30, loss in 0u64..=100, seed in any::<u64>(), nkeys in 1usize..5) {
        scenario(n, loss, seed, nkeys);
    }
}
