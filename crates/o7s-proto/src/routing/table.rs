//! The forwarding table a [`LinkState`](super::LinkState) computes: next hops per destination.

use std::collections::BTreeMap;

use super::{Addr, Policy};

/// Next hops (neighbour addresses, the far ends of our data-transfer adjacencies) per
/// destination address; the first next hop of a destination is the preferred one. What the
/// rest mean depends on the [`Policy`]:
///
/// - [`Policy::LinkState`]: exactly one next hop.
/// - [`Policy::Lfa`]: the primary, then loop-free alternates, best first. Forward on the
///   first only; the [`LinkState`](super::LinkState) drops a neighbour from every entry as
///   soon as its adjacency goes down, which promotes the alternate.
/// - [`Policy::Ecmp`]: every first hop of a shortest path, in address order; spread flows
///   over them (see [`ForwardingTable::next_hop`]).
///
/// ```
/// use o7s_proto::routing::{ForwardingTable, Policy};
///
/// let t = ForwardingTable::new(Policy::Ecmp);
/// assert!(t.lookup(7).is_empty());
/// assert_eq!(t.next_hop(7, 0), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardingTable {
    policy: Policy,
    routes: BTreeMap<Addr, Vec<Addr>>,
}

impl ForwardingTable {
    /// An empty table for `policy`.
    pub fn new(policy: Policy) -> Self {
        ForwardingTable {
            policy,
            routes: BTreeMap::new(),
        }
    }

    pub(crate) fn from_routes(policy: Policy, routes: BTreeMap<Addr, Vec<Addr>>) -> Self {
        ForwardingTable { policy, routes }
    }

    /// The policy the table was computed with.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The next hops towards `dst`, preferred first; empty when there is no route.
    pub fn lookup(&self, dst: Addr) -> &[Addr] {
        self.routes.get(&dst).map_or(&[], Vec::as_slice)
    }

    /// The next hop for a packet to `dst`: under [`Policy::Ecmp`] the one `flow_key` picks
    /// (the same key always gets the same hop while the table stands, so a flow keeps its
    /// order; the prototype instead rotates per packet), otherwise the preferred one.
    pub fn next_hop(&self, dst: Addr, flow_key: u64) -> Option<Addr> {
        let hops = self.lookup(dst);
        match self.policy {
            Policy::Ecmp if !hops.is_empty() => {
                hops.get((flow_key % hops.len() as u64) as usize).copied()
            }
            _ => hops.first().copied(),
        }
    }

    /// Every destination with its next hops, in address order (for `irm ipcp show`).
    pub fn iter(&self) -> impl Iterator<Item = (Addr, &[Addr])> + '_ {
        self.routes.iter().map(|(&d, h)| (d, h.as_slice()))
    }

    /// Number of destinations with a route.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// No routes at all.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Drop `nb` from every entry (its adjacency went down); entries left without a next hop
    /// go. Returns whether anything changed.
    pub(crate) fn remove_next_hop(&mut self, nb: Addr) -> bool {
        let before = self.routes.len();
        let mut changed = false;
        self.routes.retain(|_, hops| {
            if let Some(i) = hops.iter().position(|&h| h == nb) {
                hops.remove(i);
                changed = true;
            }
            !hops.is_empty()
        });
        changed || self.routes.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_next_hop_and_removal() {
        let mut r = BTreeMap::new();
        r.insert(4, vec![2, 6]);
        r.insert(2, vec![2]);
        let mut t = ForwardingTable::from_routes(Policy::Ecmp, r.clone());
        assert_eq!(t.lookup(4), [2, 6]);
        assert_eq!(t.next_hop(4, 0), Some(2));
        assert_eq!(t.next_hop(4, 3), Some(6));
        assert_eq!(t.next_hop(5, 3), None);
        let lfa = ForwardingTable::from_routes(Policy::Lfa, r);
        assert_eq!(lfa.next_hop(4, 3), Some(2));
        assert!(t.remove_next_hop(2));
        assert_eq!(t.iter().collect::<Vec<_>>(), [(4, &[6][..])]);
        assert!(!t.remove_next_hop(2));
        assert_eq!(t.len(), 1);
    }
}
