//! The graph of usable adjacencies and the route computations on it: Dijkstra with a binary
//! heap, then next hops per destination for each [`Policy`].
//!
//! Every edge weighs [`WEIGHT`] (hop count, as in the prototype, which has no link weights
//! yet); the code takes weights as numbers so that QoS-dependent weights only change how
//! edges are added. Ties are broken deterministically: vertices are numbered by address and a
//! path is replaced only by a strictly shorter one, so the primary next hop is the one on the
//! first shortest path the search settles.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use super::{Addr, Policy};

/// The weight of every edge.
pub(crate) const WEIGHT: u64 = 1;

const INF: u64 = u64::MAX;
const NONE: u32 = u32::MAX;

/// An undirected graph in compressed adjacency form, vertices numbered in address order.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    addrs: Vec<Addr>,
    off: Vec<usize>,
    adj: Vec<(u32, u64)>,
}

/// A shortest-path tree from one source.
pub(crate) struct Spt {
    pub dist: Vec<u64>,
    /// The source's neighbour on the first shortest path found (`NONE` for the source and
    /// unreachable vertices).
    pub first: Vec<u32>,
    /// Vertices in the order they were settled (non-decreasing distance).
    pub order: Vec<u32>,
}

impl Graph {
    /// A graph from undirected edges; duplicates and self-loops are dropped.
    pub fn from_edges(edges: impl IntoIterator<Item = (Addr, Addr)>) -> Graph {
        let mut arcs: Vec<(Addr, Addr)> = Vec::new();
        for (a, b) in edges {
            if a != b {
                arcs.push((a, b));
                arcs.push((b, a));
            }
        }
        arcs.sort_unstable();
        arcs.dedup();
        let mut addrs: Vec<Addr> = arcs.iter().map(|&(a, _)| a).collect();
        addrs.dedup();
        let n = addrs.len();
        let mut off = Vec::with_capacity(n + 1);
        let mut adj = Vec::with_capacity(arcs.len());
        let mut v = 0;
        off.push(0);
        for &(a, b) in &arcs {
            while addrs[v] != a {
                v += 1;
                off.push(adj.len());
            }
            // Every arc's target is also an arc's source (arcs come in pairs).
            let to = addrs.binary_search(&b).unwrap_or_default() as u32;
            adj.push((to, WEIGHT));
        }
        while off.len() <= n {
            off.push(adj.len());
        }
        Graph { addrs, off, adj }
    }

    pub fn index(&self, addr: Addr) -> Option<u32> {
        self.addrs.binary_search(&addr).ok().map(|i| i as u32)
    }

    pub fn addr(&self, v: u32) -> Addr {
        self.addrs[v as usize]
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    fn arcs(&self, v: u32) -> &[(u32, u64)] {
        &self.adj[self.off[v as usize]..self.off[v as usize + 1]]
    }

    /// Shortest paths from `src`.
    pub fn dijkstra(&self, src: u32) -> Spt {
        let n = self.len();
        let mut dist = vec![INF; n];
        let mut first = vec![NONE; n];
        let mut done = vec![false; n];
        let mut order = Vec::with_capacity(n);
        let mut heap = BinaryHeap::new();
        dist[src as usize] = 0;
        heap.push(Reverse((0u64, src)));
        while let Some(Reverse((d, u))) = heap.pop() {
            if done[u as usize] {
                continue;
            }
            done[u as usize] = true;
            order.push(u);
            for &(v, w) in self.arcs(u) {
                let alt = d.saturating_add(w);
                if alt < dist[v as usize] {
                    dist[v as usize] = alt;
                    first[v as usize] = if u == src { v } else { first[u as usize] };
                    heap.push(Reverse((alt, v)));
                }
            }
        }
        Spt { dist, first, order }
    }
}

/// Next hops from `own` to every other reachable vertex under `policy`, as addresses; the
/// first next hop of each destination is the preferred one.
///
/// - [`Policy::LinkState`]: the first hop of one shortest path.
/// - [`Policy::Lfa`]: that, then every other neighbour `N` with
///   `dist(N, D) < dist(N, S) + dist(S, D)` (RFC 5286 inequality 1, link protection), the
///   cheapest alternate first.
/// - [`Policy::Ecmp`]: every neighbour on a shortest path, in address order.
pub(crate) fn routes(g: &Graph, own: Addr, policy: Policy) -> BTreeMap<Addr, Vec<Addr>> {
    let mut table = BTreeMap::new();
    let Some(s) = g.index(own) else {
        return table;
    };
    let spt = g.dijkstra(s);
    match policy {
        Policy::LinkState => {
            for &d in &spt.order[1..] {
                table.insert(g.addr(d), vec![g.addr(spt.first[d as usize])]);
            }
        }
        Policy::Ecmp => {
            // Settled in distance order, a vertex's shortest-path first hops are the union of
            // its predecessors' on shortest paths (or itself, next to the source).
            let mut hops: Vec<Vec<u32>> = vec![Vec::new(); g.len()];
            for &u in &spt.order {
                let du = spt.dist[u as usize];
                for &(v, w) in g.arcs(u) {
                    if du.saturating_add(w) != spt.dist[v as usize] {
                        continue;
                    }
                    if u == s {
                        merge(&mut hops[v as usize], &[v]);
                    } else {
                        let from = std::mem::take(&mut hops[u as usize]);
                        merge(&mut hops[v as usize], &from);
                        hops[u as usize] = from;
                    }
                }
            }
            for &d in &spt.order[1..] {
                let nh = hops[d as usize].iter().map(|&v| g.addr(v)).collect();
                table.insert(g.addr(d), nh);
            }
        }
        Policy::Lfa => {
            let nbs: Vec<(u32, u64, Vec<u64>)> = g
                .arcs(s)
                .iter()
                .map(|&(n, w)| (n, w, g.dijkstra(n).dist))
                .collect();
            for &d in &spt.order[1..] {
                let primary = spt.first[d as usize];
                let sd = spt.dist[d as usize];
                let mut alts: Vec<(u64, Addr)> = nbs
                    .iter()
                    .filter(|(n, _, dn)| {
                        *n != primary && dn[d as usize] < dn[s as usize].saturating_add(sd)
                    })
                    .map(|(n, w, dn)| (w.saturating_add(dn[d as usize]), g.addr(*n)))
                    .collect();
                alts.sort_unstable();
                let mut nh = Vec::with_capacity(1 + alts.len());
                nh.push(g.addr(primary));
                nh.extend(alts.into_iter().map(|(_, a)| a));
                table.insert(g.addr(d), nh);
            }
        }
    }
    table
}

/// `into ∪= from`, both sorted and without duplicates.
fn merge(into: &mut Vec<u32>, from: &[u32]) {
    for &x in from {
        if let Err(i) = into.binary_search(&x) {
            into.insert(i, x);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn ring(n: u64) -> Vec<(Addr, Addr)> {
        (1..=n).map(|i| (i, i % n + 1)).collect()
    }

    fn line(n: u64) -> Vec<(Addr, Addr)> {
        (1..n).map(|i| (i, i + 1)).collect()
    }

    fn mesh(n: u64) -> Vec<(Addr, Addr)> {
        let mut e = Vec::new();
        for a in 1..=n {
            for b in a + 1..=n {
                e.push((a, b));
            }
        }
        e
    }

    const DIAMOND: [(Addr, Addr); 4] = [(1, 2), (1, 3), (2, 4), (3, 4)];

    fn table(edges: &[(Addr, Addr)], own: Addr, p: Policy) -> Vec<(Addr, Vec<Addr>)> {
        routes(&Graph::from_edges(edges.iter().copied()), own, p)
            .into_iter()
            .collect()
    }

    fn dists(edges: &[(Addr, Addr)], own: Addr) -> Vec<(Addr, u64)> {
        let g = Graph::from_edges(edges.iter().copied());
        let spt = g.dijkstra(g.index(own).unwrap());
        (0..g.len() as u32)
            .map(|v| (g.addr(v), spt.dist[v as usize]))
            .collect()
    }

    #[test]
    fn dijkstra_small_graphs() {
        assert_eq!(dists(&line(4), 1), [(1, 0), (2, 1), (3, 2), (4, 3)]);
        assert_eq!(
            dists(&ring(6), 1),
            [(1, 0), (2, 1), (3, 2), (4, 3), (5, 2), (6, 1)]
        );
        assert_eq!(dists(&DIAMOND, 4), [(1, 2), (2, 1), (3, 1), (4, 0)]);
        // Two components: the other one is unreachable.
        let two = [(1, 2), (3, 4)];
        assert_eq!(dists(&two, 1), [(1, 0), (2, 1), (3, INF), (4, INF)]);
        assert_eq!(table(&two, 1, Policy::LinkState), [(2, vec![2])]);
        // Not in the graph at all: no routes.
        assert!(table(&two, 9, Policy::Ecmp).is_empty());
    }

    #[test]
    fn shortest_path_next_hops() {
        assert_eq!(
            table(&line(4), 2, Policy::LinkState),
            [(1, vec![1]), (3, vec![3]), (4, vec![3])]
        );
        // Ring of 6 seen from 1: the opposite node 4 ties; the lower address wins.
        assert_eq!(
            table(&ring(6), 1, Policy::LinkState),
            [
                (2, vec![2]),
                (3, vec![2]),
                (4, vec![2]),
                (5, vec![6]),
                (6, vec![6])
            ]
        );
        assert_eq!(
            table(&mesh(4), 1, Policy::LinkState),
            [(2, vec![2]), (3, vec![3]), (4, vec![4])]
        );
    }

    #[test]
    fn ecmp() {
        assert_eq!(
            table(&ring(6), 1, Policy::Ecmp),
            [
                (2, vec![2]),
                (3, vec![2]),
                (4, vec![2, 6]),
                (5, vec![6]),
                (6, vec![6])
            ]
        );
        assert_eq!(
            table(&DIAMOND, 1, Policy::Ecmp),
            [(2, vec![2]), (3, vec![3]), (4, vec![2, 3])]
        );
        // Two diamonds in a row: four paths to 7 through two first hops.
        let dd = [
            (1, 2),
            (1, 3),
            (2, 4),
            (3, 4),
            (4, 5),
            (4, 6),
            (5, 7),
            (6, 7),
        ];
        assert_eq!(table(&dd, 1, Policy::Ecmp).last(), Some(&(7, vec![2, 3])));
        assert_eq!(table(&dd, 4, Policy::Ecmp)[0], (1, vec![2, 3]));
        // A full mesh only uses the direct edges.
        assert_eq!(
            table(&mesh(4), 2, Policy::Ecmp),
            [(1, vec![1]), (3, vec![3]), (4, vec![4])]
        );
        assert_eq!(
            table(&line(3), 1, Policy::Ecmp),
            [(2, vec![2]), (3, vec![2])]
        );
    }

    #[test]
    fn lfa() {
        // Even ring: only the opposite node has an alternate.
        assert_eq!(
            table(&ring(6), 1, Policy::Lfa),
            [
                (2, vec![2]),
                (3, vec![2]),
                (4, vec![2, 6]),
                (5, vec![6]),
                (6, vec![6])
            ]
        );
        // Odd ring: the two far nodes have one.
        assert_eq!(
            table(&ring(5), 1, Policy::Lfa),
            [(2, vec![2]), (3, vec![2, 5]), (4, vec![5, 2]), (5, vec![5])]
        );
        assert_eq!(
            table(&DIAMOND, 1, Policy::Lfa),
            [(2, vec![2]), (3, vec![3]), (4, vec![2, 3])]
        );
        // Full mesh: every other neighbour protects every direct edge.
        assert_eq!(
            table(&mesh(4), 1, Policy::Lfa),
            [(2, vec![2, 3, 4]), (3, vec![3, 2, 4]), (4, vec![4, 2, 3])]
        );
        // A line has no alternates.
        assert_eq!(
            table(&line(4), 2, Policy::Lfa),
            [(1, vec![1]), (3, vec![3]), (4, vec![3])]
        );
        // Triangle with a tail: 1-2-3-1, 3-4. From 1 to 4: primary 3, alternate 2
        // (dist(2,4) = 2 < dist(2,1) + dist(1,4) = 1 + 2).
        let tt = [(1, 2), (2, 3), (3, 1), (3, 4)];
        assert_eq!(table(&tt, 1, Policy::Lfa).last(), Some(&(4, vec![3, 2])));
    }

    /// All-pairs hop counts by Floyd–Warshall, the oracle for the properties below.
    fn apsp(g: &Graph) -> Vec<Vec<u64>> {
        let n = g.len();
        let mut d = vec![vec![INF; n]; n];
        for (u, row) in d.iter_mut().enumerate() {
            row[u] = 0;
            for &(v, w) in g.arcs(u as u32) {
                row[v as usize] = w;
            }
        }
        for k in 0..n {
            for i in 0..n {
                for j in 0..n {
                    let via = d[i][k].saturating_add(d[k][j]);
                    if via < d[i][j] {
                        d[i][j] = via;
                    }
                }
            }
        }
        d
    }

    fn random_graph() -> impl Strategy<Value = Vec<(Addr, Addr)>> {
        proptest::collection::vec((1u64..16, 1u64..16), 0..40)
    }

    proptest! {
        #[test]
        fn routes_match_oracle(edges in random_graph(), own in 1u64..16) {
            let g = Graph::from_edges(edges.iter().copied());
            let Some(s) = g.index(own) else { return Ok(()) };
            let s = s as usize;
            let d = apsp(&g);
            let nbs: Vec<u32> = g.arcs(s as u32).iter().map(|&(n, _)| n).collect();
            let idx = |a: Addr| g.index(a).unwrap() as usize;
            for p in [Policy::LinkState, Policy::Lfa, Policy::Ecmp] {
                let t = routes(&g, own, p);
                let reachable = (0..g.len()).filter(|&v| v != s && d[s][v] != INF).count();
                prop_assert_eq!(t.len(), reachable);
                for (&dst, nh) in &t {
                    let v = idx(dst);
                    let p0 = idx(nh[0]);
                    // The preferred hop is a neighbour on a shortest path.
                    prop_assert!(nbs.contains(&(p0 as u32)));
                    prop_assert_eq!(d[p0][v] + WEIGHT, d[s][v]);
                    match p {
                        Policy::LinkState => prop_assert_eq!(nh.len(), 1),
                        Policy::Ecmp => {
                            let want: Vec<Addr> = nbs.iter()
                                .filter(|&&n| d[n as usize][v].saturating_add(WEIGHT) == d[s][v])
                                .map(|&n| g.addr(n)).collect();
                            prop_assert_eq!(nh, &want);
                        }
                        Policy::Lfa => {
                            let mut want: Vec<Addr> = nbs.iter()
                                .filter(|&&n| n as usize != p0 && d[n as usize][v] < d[n as usize][s] + d[s][v])
                                .map(|&n| g.addr(n)).collect();
                            want.sort_unstable();
                            let mut got = nh[1..].to_vec();
                            got.sort_unstable();
                            prop_assert_eq!(got, want);
                        }
                    }
                }
            }
        }
    }
}
