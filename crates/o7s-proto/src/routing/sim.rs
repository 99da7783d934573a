//! A simulated layer: `LinkState` instances joined by a topology, a harness that carries
//! their `Output::Send`s to neighbours (optionally losing some), and a virtual clock.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::*;

/// xorshift64*: a small deterministic generator.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Node `i`'s address: not in index order, to catch code that assumes it.
pub(super) fn addr(i: usize) -> Addr {
    0x0a00_0000 + ((i as u64 * 7919) % 1000) * 16 + i as u64
}

pub(super) fn cfg(policy: Policy) -> LsConfig {
    LsConfig {
        policy,
        ..LsConfig::default()
    }
}

pub(super) struct Net {
    pub(super) t0: Instant,
    pub(super) now: Instant,
    pub(super) cfg: LsConfig,
    pub(super) nodes: BTreeMap<Addr, LinkState>,
    /// Adjacencies (data transfer and management), `a < b`.
    pub(super) edges: BTreeSet<(Addr, Addr)>,
    pub(super) rng: Rng,
    pub(super) loss_pct: u64,
    pub(super) table_changes: BTreeMap<Addr, u64>,
}

pub(super) fn edge(a: Addr, b: Addr) -> (Addr, Addr) {
    (a.min(b), a.max(b))
}

impl Net {
    pub(super) fn new(n: usize, cfg: LsConfig, seed: u64) -> Net {
        let t0 = Instant::now();
        let nodes = (0..n)
            .map(|i| (addr(i), LinkState::new(addr(i), cfg.clone(), t0)))
            .collect();
        Net {
            t0,
            now: t0,
            cfg,
            nodes,
            edges: BTreeSet::new(),
            rng: Rng::new(seed),
            loss_pct: 0,
            table_changes: BTreeMap::new(),
        }
    }

    pub(super) fn node(&self, a: Addr) -> &LinkState {
        &self.nodes[&a]
    }

    pub(super) fn connect(&mut self, a: Addr, b: Addr) {
        if a == b || !self.edges.insert(edge(a, b)) {
            return;
        }
        let now = self.now;
        for (x, y) in [(a, b), (b, a)] {
            if let Some(n) = self.nodes.get_mut(&x) {
                n.mgmt_up(y, now);
                n.link_up(y, now);
            }
        }
    }

    pub(super) fn cut(&mut self, a: Addr, b: Addr) {
        self.edges.remove(&edge(a, b));
        let now = self.now;
        for (x, y) in [(a, b), (b, a)] {
            if let Some(n) = self.nodes.get_mut(&x) {
                n.link_down(y, now);
                n.mgmt_down(y);
            }
        }
    }

    /// The node stops without a word: its neighbours are not told.
    pub(super) fn kill(&mut self, a: Addr) {
        self.nodes.remove(&a);
    }

    /// Deliver messages until nobody has anything to send.
    pub(super) fn pump(&mut self) {
        for _ in 0..100_000 {
            let mut wire = VecDeque::new();
            for (&a, n) in self.nodes.iter_mut() {
                while let Some(out) = n.poll_output() {
                    match out {
                        Output::Send { to, bytes } => {
                            assert!(n.mgmt_neighbours().any(|m| m == to));
                            wire.push_back((a, to, bytes));
                        }
                        Output::TableChanged => *self.table_changes.entry(a).or_default() += 1,
                    }
                }
            }
            if wire.is_empty() {
                return;
            }
            let now = self.now;
            for (from, to, bytes) in wire {
                if !self.edges.contains(&edge(from, to)) {
                    continue;
                }
                if self.loss_pct > 0 && self.rng.below(100) < self.loss_pct {
                    continue;
                }
                if let Some(n) = self.nodes.get_mut(&to) {
                    n.on_packet(from, &bytes, now);
                }
            }
        }
        panic!("flooding does not stop");
    }

    /// Follow every node's timers up to `until`, delivering what they send.
    pub(super) fn run_until(&mut self, until: Instant) {
        self.pump();
        loop {
            let next = self
                .nodes
                .values()
                .filter_map(LinkState::poll_timeout)
                .min();
            let Some(t) = next.filter(|&t| t <= until) else {
                break;
            };
            self.now = self.now.max(t);
            let now = self.now;
            for n in self.nodes.values_mut() {
                if n.poll_timeout().is_some_and(|x| x <= now) {
                    n.handle_timeout(now);
                    assert!(n.poll_timeout().unwrap() > now, "timer due after handling");
                }
            }
            self.pump();
        }
        self.now = until;
    }

    pub(super) fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Hop counts between live nodes over the adjacencies that really exist.
    pub(super) fn true_dist(&self) -> BTreeMap<Addr, BTreeMap<Addr, u64>> {
        let mut nbs: BTreeMap<Addr, Vec<Addr>> = BTreeMap::new();
        for &(a, b) in &self.edges {
            if self.nodes.contains_key(&a) && self.nodes.contains_key(&b) {
                nbs.entry(a).or_default().push(b);
                nbs.entry(b).or_default().push(a);
            }
        }
        let mut all = BTreeMap::new();
        for &s in self.nodes.keys() {
            let mut d = BTreeMap::from([(s, 0u64)]);
            let mut q = VecDeque::from([s]);
            while let Some(u) = q.pop_front() {
                for &v in nbs.get(&u).into_iter().flatten() {
                    if !d.contains_key(&v) {
                        d.insert(v, d[&u] + 1);
                        q.push_back(v);
                    }
                }
            }
            all.insert(s, d);
        }
        all
    }

    /// Every node routes to every node it can reach, and only to those; following preferred
    /// next hops gets there on a shortest path; every ECMP hop is on a shortest path and
    /// every LFA alternate satisfies the loop-free inequality.
    pub(super) fn check_routes(&self) {
        let dist = self.true_dist();
        for (&s, n) in &self.nodes {
            let t = n.table();
            let want: Vec<Addr> = dist[&s].keys().copied().filter(|&d| d != s).collect();
            let have: Vec<Addr> = t.iter().map(|(d, _)| d).collect();
            assert_eq!(have, want, "destinations of {s:#x}");
            for (d, hops) in t.iter() {
                let sd = dist[&s][&d];
                for (i, &h) in hops.iter().enumerate() {
                    assert!(
                        self.edges.contains(&edge(s, h)),
                        "{s:#x}: hop {h:#x} no link"
                    );
                    let hd = dist[&h][&d];
                    match (t.policy(), i) {
                        (_, 0) | (Policy::Ecmp, _) => assert_eq!(hd + 1, sd),
                        (Policy::Lfa, _) => assert!(hd < 1 + sd, "alternate loops"),
                        (Policy::LinkState, _) => panic!("two hops"),
                    }
                }
            }
        }
        for &s in self.nodes.keys() {
            for (&d, &sd) in &dist[&s] {
                let mut at = s;
                for _ in 0..sd {
                    at = self.node(at).table().lookup(d)[0];
                }
                assert_eq!(at, d, "{s:#x} -> {d:#x} takes more than {sd} hops");
            }
        }
    }

    /// Every live node holds exactly the adjacencies announced by the live nodes it can
    /// reach; with `strict`, nothing else either (announcements from nodes it cannot reach
    /// any more linger until they time out).
    pub(super) fn check_db(&self, strict: bool) {
        let dist = self.true_dist();
        for (&s, n) in &self.nodes {
            let reach = &dist[&s];
            let mut want = Vec::new();
            for &(a, b) in &self.edges {
                for (x, y) in [(a, b), (b, a)] {
                    if reach.contains_key(&x) {
                        want.push((x, y));
                    }
                }
            }
            want.sort_unstable();
            let have: Vec<(Addr, Addr)> = n
                .links()
                .map(|l| (l.src, l.dst))
                .filter(|(x, _)| strict || reach.contains_key(x))
                .collect();
            assert_eq!(have, want, "database of {s:#x}");
        }
    }
}

pub(super) fn ring(n: usize, policy: Policy) -> Net {
    let mut net = Net::new(n, cfg(policy), 1);
    for i in 0..n {
        net.connect(addr(i), addr((i + 1) % n));
    }
    net
}

/// A random connected graph: a random tree plus extra edges.
pub(super) fn random_net(n: usize, extra: &[(usize, usize)], seed: u64, c: LsConfig) -> Net {
    let mut net = Net::new(n, c, seed);
    for i in 1..n {
        let p = net.rng.below(i as u64) as usize;
        net.connect(addr(i), addr(p));
    }
    for &(a, b) in extra {
        net.connect(addr(a % n), addr(b % n));
    }
    net
}
