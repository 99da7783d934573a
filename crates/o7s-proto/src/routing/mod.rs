//! Link-state routing of the unicast layer (the prototype's `routing/link-state.c`,
//! `graph.c` and the `pff` policies) as a sans-IO state machine, [`LinkState`]: it keeps the
//! database of announced adjacencies, floods link-state updates over the management
//! adjacencies, and computes the [`ForwardingTable`] (next hops per destination address).
//!
//! The caller reports its adjacencies ([`LinkState::link_up`] / [`LinkState::link_down`] for
//! data-transfer flows, [`LinkState::mgmt_up`] / [`LinkState::mgmt_down`] for management
//! flows), hands in what arrives on management flows ([`LinkState::on_packet`]) and the time
//! ([`LinkState::handle_timeout`] when [`LinkState::poll_timeout`] is reached), and polls
//! [`Output`]s: bytes to send to a management neighbour, and a notice that the table changed.
//! This room may not touch sockets, flows, clocks or threads; it never learns file
//! descriptors, only addresses.
//!
//! What it does, as the prototype does:
//! - A node announces each of its data-transfer adjacencies as a 24-byte update
//!   `(d_addr = neighbour, s_addr = itself, seqno)` to all its management neighbours: seqno 0
//!   when the adjacency comes up, then every `t_update` again with seqno + 1.
//! - A receiver stores an update only for an unknown adjacency or with a higher seqno, and
//!   floods exactly those to its other management neighbours. A new management neighbour is
//!   sent the whole database. Entries not refreshed for `t_timeo` are removed.
//! - An edge is used only when **both** ends announce it (`A → B` and `B → A` both in the
//!   database); every edge weighs one hop.
//! - [`Policy::LinkState`]: one shortest-path next hop; [`Policy::Lfa`]: plus loop-free
//!   alternates (RFC 5286); [`Policy::Ecmp`]: all equal-cost next hops.
//!
//! Where o7s differs (all wire-compatible with prototype nodes):
//! - **Withdrawal.** When an adjacency goes down its owner floods a 25-byte withdrawal
//!   ([`LsMsg::Withdraw`], the update with seqno + 1 and a tag byte) that receivers apply like
//!   a newer update: the edge goes at once instead of after `t_timeo`, and the remembered
//!   seqno keeps older copies from bringing it back. The owner repeats it every `t_update`
//!   for `t_timeo` (against loss) and remembers the seqno for `3 · t_timeo`, so an adjacency
//!   that comes back is announced above every copy still around. Prototype nodes drop the
//!   25-byte packet and time the edge out as before.
//! - **Own adjacencies are authoritative.** An update about one of our own adjacencies with a
//!   higher seqno than ours (a previous life of this node) is answered with the truth at
//!   seqno + 1 (the prototype re-announces from that seqno at its next `t_update`, and keeps
//!   announcing an adjacency it does not have). At most a few such answers go out per
//!   `t_update` (the rest wait for the next one), so two nodes that share an address cannot
//!   flood the layer.
//! - **Recalculation** is rate-limited to once per `t_recalc` (the first change after a quiet
//!   period is applied at once), except that a change of one of our own adjacencies (ours or
//!   the neighbour's announcement of it) is applied at once when
//!   [`LsConfig::recalc_on_link_change`] is set. The prototype recalculates on every new
//!   adjacency, every `t_recalc` after a removal, and not at all after a timeout.
//! - A link going down is removed from the table at once (promoting LFA alternates), even
//!   before the recalculation.
//! - Updates with `s_addr == d_addr` or address 0 are counted as malformed and dropped;
//!   the database is capped at [`LsConfig::max_links`] entries and the output queue at
//!   four times that, with counted drops.

mod graph;
mod link_state;
mod lsdb;
mod msg;
mod table;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod sim_tests;

use std::time::{Duration, Instant};

use crate::wire::lsu::consts;

pub use link_state::LinkState;
pub use msg::{LsMsg, WITHDRAW_LEN, WITHDRAW_TAG};
pub use table::ForwardingTable;

/// An address in the unicast layer.
pub type Addr = u64;

/// How next hops are chosen (`ls pol` in the layer configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Policy {
    /// One shortest-path next hop per destination (`simple`, 0).
    #[default]
    LinkState,
    /// Shortest path plus loop-free alternates for fast reroute (`lfa`, 1).
    Lfa,
    /// Every equal-cost shortest-path next hop (`ecmp`, 2).
    Ecmp,
}

impl Policy {
    /// The policy for its number in the layer configuration ([`consts::POL_SIMPLE`] …).
    pub fn from_wire(pol: u32) -> Option<Policy> {
        match pol {
            consts::POL_SIMPLE => Some(Policy::LinkState),
            consts::POL_LFA => Some(Policy::Lfa),
            consts::POL_ECMP => Some(Policy::Ecmp),
            _ => None,
        }
    }

    /// Its number in the layer configuration.
    pub fn to_wire(self) -> u32 {
        match self {
            Policy::LinkState => consts::POL_SIMPLE,
            Policy::Lfa => consts::POL_LFA,
            Policy::Ecmp => consts::POL_ECMP,
        }
    }
}

/// Parameters of a [`LinkState`]. Durations are clamped to 1 ms … 365 days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsConfig {
    /// Next-hop policy.
    pub policy: Policy,
    /// Least time between two recalculations of the table (default 4 s).
    pub t_recalc: Duration,
    /// Time between re-announcements of our own adjacencies (default 15 s).
    pub t_update: Duration,
    /// An adjacency not re-announced for this long is removed (default 60 s).
    pub t_timeo: Duration,
    /// Most entries in the database (default 65536); updates for more adjacencies are counted
    /// in [`LsStats::db_full`] and dropped. Our own adjacencies are always stored.
    pub max_links: usize,
    /// Recalculate at once when one of our own adjacencies changes (default true), instead of
    /// at the next `t_recalc`.
    pub recalc_on_link_change: bool,
}

impl Default for LsConfig {
    fn default() -> Self {
        LsConfig {
            policy: Policy::LinkState,
            t_recalc: Duration::from_secs(u64::from(consts::T_RECALC)),
            t_update: Duration::from_secs(u64::from(consts::T_UPDATE)),
            t_timeo: Duration::from_secs(u64::from(consts::T_TIMEO)),
            max_links: 65536,
            recalc_on_link_change: true,
        }
    }
}

/// What a [`LinkState`] asks of its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes, as one packet, on the management adjacency to `to`.
    Send { to: Addr, bytes: Vec<u8> },
    /// The forwarding table ([`LinkState::table`]) changed; reprogram the forwarding function.
    TableChanged,
}

/// One live entry of the database: `src` announced an adjacency to `dst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkEntry {
    /// The node announcing the adjacency.
    pub src: Addr,
    /// Its far end.
    pub dst: Addr,
    /// The sequence number of the newest announcement.
    pub seqno: u64,
    /// When that was stored (the entry's age is `now - updated`).
    pub updated: Instant,
}

/// Counters of a [`LinkState`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LsStats {
    /// Well-formed messages received (updates and withdrawals).
    pub received: u64,
    /// Of those, withdrawals.
    pub withdrawals_received: u64,
    /// Well-formed messages not newer than what the database holds (not stored, not flooded).
    pub ignored: u64,
    /// Packets that are not a message (wrong length or tag, address 0, `s_addr == d_addr`).
    pub malformed: u64,
    /// Messages handed out by [`LinkState::poll_output`].
    pub sent: u64,
    /// Of those, withdrawals.
    pub withdrawals_sent: u64,
    /// Updates for new adjacencies dropped because the database was full.
    pub db_full: u64,
    /// Messages dropped because the output queue was full (the caller is not polling).
    pub queue_full: u64,
    /// Adjacencies removed because they were not re-announced within `t_timeo`.
    pub timeouts: u64,
    /// Recalculations of the forwarding table.
    pub recalculations: u64,
    /// Newer copies of our own adjacencies answered with the truth.
    pub corrections: u64,
}
