//! What `irm ipcp show` prints about the directory: counters and a snapshot of the tables.

use super::DhtConfig;
use crate::NameHash;

/// Counters of a [`Dht`](super::Dht); every message or entry dropped is counted here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhtStats {
    /// Packets handed to `on_packet`.
    pub rx: u64,
    /// Packets that did not parse (or came from our own id or address): ignored.
    pub rx_invalid: u64,
    /// Responses that answer no request of ours (unknown key, cookie or sender): ignored.
    pub rx_unmatched: u64,
    /// Messages queued for sending.
    pub tx: u64,
    /// Messages dropped because the transmit queue was full.
    pub tx_dropped: u64,
    /// Requests that got no answer in time.
    pub req_timeouts: u64,
    /// STOREs accepted (new or refreshed values).
    pub stores_rx: u64,
    /// STOREs refused: expired, not an address, or our own registration.
    pub stores_refused: u64,
    /// STOREs dropped: too many keys, or too many values under the key.
    pub stores_dropped: u64,
    /// STOREs sent (publication, republication, replication).
    pub stores_tx: u64,
    /// Values to publish or replicate that found no node to hold them.
    pub stores_unplaced: u64,
    /// Values dropped at their expiry.
    pub values_expired: u64,
    /// Calls to `lookup`.
    pub lookups: u64,
    /// Lookups answered with at least one address.
    pub lookups_found: u64,
    /// Lookups answered with none.
    pub lookups_not_found: u64,
    /// Lookups answered with none at once because too many were in progress.
    pub lookups_dropped: u64,
    /// Contacts dropped: a full bucket's replacement list overflowed.
    pub contacts_dropped: u64,
    /// Contacts removed after unanswered requests or `peer_gone`.
    pub contacts_evicted: u64,
    /// Events dropped because nobody polled them.
    pub events_dropped: u64,
    /// Republications or replications dropped because too many were waiting.
    pub jobs_dropped: u64,
}

/// A contact in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactShow {
    pub id: NameHash,
    pub addr: u64,
    /// Requests it left unanswered since we last heard from it.
    pub fails: u32,
}

/// A non-empty k-bucket: the contacts whose ids share `index` leading bits with ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketShow {
    pub index: usize,
    /// Least recently heard from first.
    pub contacts: Vec<ContactShow>,
    /// Replacements waiting for a place.
    pub spares: usize,
}

/// A key stored here for other nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryShow {
    pub key: NameHash,
    /// (address, expiry in seconds since the epoch).
    pub values: Vec<(u64, u64)>,
}

/// A snapshot of a [`Dht`](super::Dht) (see [`Dht::show`](super::Dht::show)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtShow {
    pub id: NameHash,
    pub addr: u64,
    pub config: DhtConfig,
    pub buckets: Vec<BucketShow>,
    pub entries: Vec<EntryShow>,
    /// Names registered on this node (published with our address).
    pub registered: Vec<NameHash>,
    /// Lookups in progress (at most [`MAX_REQS`](crate::wire::dht::consts::MAX_REQS)).
    pub lookups: usize,
    /// Candidates held by all lookups in progress.
    pub candidates: usize,
    /// Lookup answers cached.
    pub cached: usize,
    /// Messages waiting for `poll_transmit`.
    pub queued_tx: usize,
    /// Events waiting for `poll_event`.
    pub queued_events: usize,
    /// Keys waiting to be republished or replicated.
    pub queued_jobs: usize,
    /// Joined through an enrollment peer (or never needed to).
    pub joined: bool,
    pub stats: DhtStats,
}

impl DhtShow {
    /// Number of contacts in all buckets.
    pub fn contacts(&self) -> usize {
        self.buckets.iter().map(|b| b.contacts.len()).sum()
    }
}
