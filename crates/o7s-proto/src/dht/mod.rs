//! The unicast layer's directory: a Kademlia DHT from name hashes to addresses, as a sans-IO
//! state machine ([`Dht`], one per layer member). It speaks the prototype's messages
//! ([`wire::dht`](crate::wire::dht), endpoint 1 of every member) and may not touch sockets,
//! clocks, threads, the data transfer component or a global random number generator: the
//! caller gives it packets, the time (`Instant` for timers, wall-clock seconds for the `exp`
//! of stored values) and a random seed, and polls what to send, what happened and when to
//! call again.
//!
//! What it does, after the prototype (`src/ipcpd/unicast/dir/dht.c`):
//! - Node ids are random, as long as the layer's hashes; contacts sit in k-buckets by XOR
//!   distance; every valid message makes its sender a contact (a response only when it
//!   answers one of our requests).
//! - A lookup asks the `alpha` closest known nodes at a time (FIND_VALUE for a name, FIND_NODE
//!   to place a value or to refresh), each request with a fresh random cookie, and stops when
//!   a value comes back or the `k` closest nodes have answered. A response is accepted only
//!   for a request in progress with that key and cookie, from the address it went to; any
//!   other response changes nothing. A request unanswered within 2 s fails (a lookup for a
//!   name asks that node once more first); a contact that fails three times in a row is
//!   replaced by a spare.
//! - [`Dht::register`] publishes our address under a key: a STORE to the `k` closest nodes,
//!   expiring after `t_expire`, repeated every replication period until
//!   [`Dht::unregister`]. Values stored here for others are replicated to the `k` closest
//!   nodes each period unless a STORE for them arrived during it, so a value survives the
//!   loss of the nodes holding it as long as one holder is left. They expire at their `exp`.
//! - A registration whose publication reached no node (made before joining, or while no
//!   contact answered) is published again when the node joins or hears from its first
//!   contact, and otherwise after 1, 2, 4 … 64 s until a node holds it.
//! - [`Dht::lookup`] answers at once from what this node knows (its own registrations,
//!   values stored here, answers of the last 60 s) and otherwise asks the layer.
//! - [`Dht::bootstrap`] joins through the enrollment peer (its address is enough: its id is
//!   learnt from its answer) with a FIND_NODE for our own id, then fills the farther buckets.
//!   Until the peer has answered, and whenever no contact is left, it tries again: every
//!   second without contacts, otherwise after 1, 2, 4 … 64 s.
//!
//! Where it differs (the bytes on the wire are the same):
//! - Distances compare whole ids (the prototype compares the first 64 bits; this order
//!   refines it), buckets split per bit of shared prefix rather than per byte, answers hold
//!   the `k` contacts closest to the key, and lookups follow the answers iteratively (the
//!   prototype asks only its own closest contacts: the nodes an answer names are filtered out
//!   again before they are asked).
//! - A response must also come from the address the request went to (the prototype checks
//!   key and cookie only), and counts once.
//! - Contacts named in a response are asked, not trusted: they enter the buckets when they
//!   answer. Spares replace contacts that stop answering (the prototype keeps them unused).
//! - Joining succeeds when the enrollment peer answers, not when any node does: newcomers
//!   that joined through us while our own join was lost would otherwise form an island. A
//!   node that joined with fewer than `k` contacts (its peer was joining too) looks up its
//!   own id again after 1, 2, 4 … 64 s until it has `k`.
//! - A lookup for a name asks a node that did not answer once more before giving up on it:
//!   one lost packet must not make a name unknown to a node with few contacts.
//! - Our registrations are republished every replication period with a fresh `exp` (the
//!   prototype waits until they near expiry); the period is at most half of `t_expire`.
//! - Only address values (8 bytes, not 0) are stored; `exp` is capped at `t_expire` from now.
//! - Every table is bounded (see [`DhtShow`]) and what does not fit is counted in
//!   [`DhtStats`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use o7s_proto::dht::{Dht, DhtConfig, Event};
//! use o7s_proto::HashAlgo;
//!
//! let t0 = Instant::now();
//! let wall = 1_767_225_600;
//! let cfg = DhtConfig::default();
//! let mut a = Dht::new(vec![0x11; 32], 1, cfg.clone(), t0, wall, [1; 32]).unwrap();
//! let mut b = Dht::new(vec![0x22; 32], 2, cfg, t0, wall, [2; 32]).unwrap();
//! let key = HashAlgo::Sha3_256.hash("oping");
//! a.register(&key.0, t0).unwrap();
//! b.bootstrap(1, t0);
//! let q = b.lookup(&key.0, t0).unwrap();
//! // A toy network: deliver until nothing moves.
//! let mut moved = true;
//! while moved {
//!     moved = false;
//!     while let Some((dst, p)) = a.poll_transmit() {
//!         assert_eq!(dst, 2);
//!         b.on_packet(&p, t0, wall);
//!         moved = true;
//!     }
//!     while let Some((dst, p)) = b.poll_transmit() {
//!         assert_eq!(dst, 1);
//!         a.on_packet(&p, t0, wall);
//!         moved = true;
//!     }
//! }
//! // b had no contact when it asked: its first lookup answered at once, empty.
//! assert!(matches!(b.poll_event(), Some(Event::LookupDone { id, addrs, .. }) if id == q && addrs.is_empty()));
//! assert!(matches!(b.poll_event(), Some(Event::Joined { contacts: 1 })));
//! let q = b.lookup(&key.0, t0).unwrap();
//! while let Some((_, p)) = b.poll_transmit() {
//!     a.on_packet(&p, t0, wall);
//! }
//! while let Some((_, p)) = a.poll_transmit() {
//!     b.on_packet(&p, t0, wall);
//! }
//! assert_eq!(b.poll_event(), Some(Event::LookupDone { id: q, key, addrs: vec![1] }));
//! // b has one contact, fewer than k: in 1 s it looks for more.
//! assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_secs(1)));
//! ```

mod lookup;
mod node;
mod rng;
mod show;
mod store;
mod table;
mod tasks;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::time::{Duration, Instant};

use lookup::Lookup;
use rng::Rng;
use store::Store;
use table::Table;

pub use show::{BucketShow, ContactShow, DhtShow, DhtStats, EntryShow};

use crate::wire::dht::consts;
use crate::NameHash;

/// Most messages waiting for [`Dht::poll_transmit`].
pub const MAX_TX: usize = 4096;
/// Most events waiting for [`Dht::poll_event`].
pub const MAX_EVENTS: usize = 1024;
/// Lookups in progress for republication, replication and refresh, at most: the rest of
/// [`consts::MAX_REQS`] stays free for [`Dht::lookup`] and [`Dht::register`].
pub const MAX_BACKGROUND: usize = consts::MAX_REQS / 2;
/// Delay before joining again through the enrollment peer when it did not answer, or when
/// no contact is left. While some contacts are left, it doubles after each failure, up to
/// [`MAX_REJOIN`].
pub const REJOIN: Duration = Duration::from_secs(1);
/// Longest delay between joins while the enrollment peer does not answer.
pub const MAX_REJOIN: Duration = Duration::from_secs(64);
/// Most refresh lookups after joining.
const JOIN_REFRESH: usize = 16;

/// Kademlia parameters of a layer (carried in its configuration) and local table bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtConfig {
    /// Requests in flight per lookup, [`consts::ALPHA_MIN`]`..=`[`consts::ALPHA_MAX`].
    pub alpha: u32,
    /// Bucket size and number of replicas, [`consts::K_MIN`]`..=`[`consts::K_MAX`].
    pub k: u32,
    /// Seconds a published value lives.
    pub t_expire: u32,
    /// Seconds after which a bucket without lookups is refreshed.
    pub t_refresh: u32,
    /// Seconds between republications and replications (at most half of `t_expire` is used).
    pub t_replicate: u32,
    /// Most keys stored for others, and most names registered here.
    pub max_entries: usize,
    /// Most lookup answers cached.
    pub max_cache: usize,
}

impl Default for DhtConfig {
    /// The prototype's layer defaults.
    fn default() -> Self {
        DhtConfig {
            alpha: consts::ALPHA,
            k: consts::K,
            t_expire: consts::T_EXPIRE,
            t_refresh: consts::T_REFRESH,
            t_replicate: consts::T_REPLICATE,
            max_entries: 4096,
            max_cache: 1024,
        }
    }
}

impl DhtConfig {
    /// Check the parameters against the prototype's limits.
    pub fn validate(&self) -> Result<(), DhtError> {
        let check = |name, value: u32, min, max| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(DhtError::Param {
                    name,
                    value,
                    min,
                    max,
                })
            }
        };
        check("alpha", self.alpha, consts::ALPHA_MIN, consts::ALPHA_MAX)?;
        check("k", self.k, consts::K_MIN, consts::K_MAX)?;
        check(
            "t_expire",
            self.t_expire,
            consts::T_EXPIRE_MIN,
            consts::T_EXPIRE_MAX,
        )?;
        check(
            "t_refresh",
            self.t_refresh,
            consts::T_REFRESH_MIN,
            consts::T_REFRESH_MAX,
        )?;
        check(
            "t_replicate",
            self.t_replicate,
            consts::T_REPLICATE_MIN,
            consts::T_REPLICATE_MAX,
        )
    }

    /// The replication period: `t_replicate`, but at most half of `t_expire`.
    pub fn replication_period(&self) -> Duration {
        secs(self.t_replicate.min(self.t_expire / 2).max(1))
    }

    fn k(&self) -> usize {
        self.k as usize
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// Why a [`Dht`] refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhtError {
    #[error("DHT parameter {name} = {value} is out of range {min}..={max}")]
    Param {
        name: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
    #[error("DHT node id of {0} bytes; ids are as long as the layer's hashes (8 to 64 bytes)")]
    IdLength(usize),
    #[error("address 0 is invalid for a DHT node")]
    InvalidAddr,
    #[error("DHT key of {len} bytes in a layer whose hashes have {hash_len}")]
    KeyLength { len: usize, hash_len: usize },
    #[error("{0} names are registered in the DHT already; unregister one first")]
    TooManyRegistrations(usize),
}

/// Names a call to [`Dht::lookup`] in its [`Event::LookupDone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub u64);

/// What a [`Dht`] has to tell its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The answer to lookup `id`: the addresses where `key` is registered (at most
    /// [`consts::MAX_VALS`]; empty when it is not found).
    LookupDone {
        id: QueryId,
        key: NameHash,
        addrs: Vec<u64>,
    },
    /// The first join through the enrollment peer completed with `contacts` contacts.
    Joined { contacts: usize },
}

/// Why a lookup runs.
enum Purpose {
    Query(QueryId),
    Store(Vec<(u64, u64)>),
    Refresh,
    Bootstrap(u64),
}

/// The DHT of one layer member. See the [module documentation](self).
pub struct Dht {
    id: Vec<u8>,
    addr: u64,
    cfg: DhtConfig,
    rng: Rng,
    table: Table,
    store: Store,
    lookups: Vec<Lookup>,
    next_lid: u64,
    next_query: u64,
    /// The enrollment peer, and when to try joining through it again.
    peer: Option<u64>,
    rejoin_at: Option<Instant>,
    rejoin_delay: Duration,
    joined: bool,
    /// Joined with fewer than `k` contacts (the peer may have been joining itself): when
    /// to look for more, and the delay after that (1 s doubling up to [`MAX_REJOIN`]).
    fill_at: Option<Instant>,
    fill_delay: Duration,
    next_round: Instant,
    next_refresh: Instant,
    /// Wall-clock seconds at `wall_at`.
    wall_secs: u64,
    wall_at: Instant,
    /// Our registrations whose last publication reached no node (no contact yet, or none
    /// answered), when to publish them again, and the delay after that (1 s doubling up to
    /// [`MAX_REJOIN`]). Joining publishes them at once.
    unplaced: BTreeSet<Vec<u8>>,
    unplaced_at: Option<Instant>,
    unplaced_delay: Duration,
    /// Keys to republish or replicate once a lookup is free.
    jobs: VecDeque<Vec<u8>>,
    job_keys: HashSet<Vec<u8>>,
    tx: VecDeque<(u64, Vec<u8>)>,
    events: VecDeque<Event>,
    stats: DhtStats,
}
