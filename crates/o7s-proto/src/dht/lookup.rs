//! One iterative lookup: the candidates for the `k` nodes closest to a key, closest first,
//! asked `alpha` at a time, each request with a cookie of its own. A response counts only if
//! it names the key, a cookie we sent and comes from the address we sent it to.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::rng::Rng;
use super::table::cmp_distance;
use super::QueryId;
use crate::wire::dht::Contact;

/// Most requests one lookup sends; bounds its work when answers keep naming new nodes.
pub(crate) const MAX_ASKED: usize = 64;
/// Most lookup calls waiting on one lookup.
pub(crate) const MAX_QUERIES: usize = 64;
/// Requests to one candidate of a FIND_VALUE lookup before it counts as failed: one lost
/// request or response (a few percent of them on a lossy layer) must not drop a node from
/// a lookup that a caller waits on, or a newcomer that knows a handful of contacts finds
/// nothing. FIND_NODE lookups (joining, publishing, refreshing) ask once: they are tried
/// again as a whole, later (`REJOIN`, unplaced publications, the refresh period).
pub(crate) const VALUE_TRIES: u8 = 2;

/// FIND_NODE or FIND_VALUE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Node,
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Fresh,
    Asked { cookie: u64, deadline: Instant },
    Answered,
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    /// Unknown for the enrollment peer until it answers.
    id: Option<Vec<u8>>,
    addr: u64,
    state: State,
    /// Requests sent to it so far.
    tries: u8,
}

#[derive(Debug)]
pub(crate) struct Lookup {
    pub(crate) lid: u64,
    pub(crate) key: Vec<u8>,
    pub(crate) kind: Kind,
    cands: Vec<Candidate>,
    max_cands: usize,
    /// Every address that was ever a candidate: none is asked twice.
    known: HashSet<u64>,
    asked: usize,
    /// Addresses found (FIND_VALUE), at most [`consts::MAX_VALS`](crate::wire::dht::consts::MAX_VALS).
    pub(crate) values: Vec<u64>,
    /// Calls to [`Dht::lookup`](super::Dht::lookup) waiting for the answer.
    pub(crate) queries: Vec<QueryId>,
    /// Values to STORE at the closest nodes found: (address, expiry in seconds).
    pub(crate) stores: Vec<(u64, u64)>,
    /// This lookup joins the layer through the enrollment peer at this address.
    pub(crate) bootstrap: Option<u64>,
    /// The enrollment peer answered.
    pub(crate) peer_answered: bool,
}

fn closer(key: &[u8], a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (&a.id, &b.id) {
        (None, None) => Equal,
        (None, Some(_)) => Less,
        (Some(_), None) => Greater,
        (Some(x), Some(y)) => cmp_distance(key, x, y),
    }
}

impl Lookup {
    pub(crate) fn new(
        lid: u64,
        key: &[u8],
        kind: Kind,
        seeds: Vec<Contact>,
        max_cands: usize,
    ) -> Lookup {
        let mut l = Lookup {
            lid,
            key: key.to_vec(),
            kind,
            cands: Vec::new(),
            max_cands,
            known: HashSet::new(),
            asked: 0,
            values: Vec::new(),
            queries: Vec::new(),
            stores: Vec::new(),
            bootstrap: None,
            peer_answered: false,
        };
        l.add(&seeds, &[], 0);
        l
    }

    /// Join through the enrollment peer at `addr`: ask it first, whatever its distance (its
    /// id is not known, or not trusted to be current).
    pub(crate) fn add_peer(&mut self, addr: u64) {
        self.bootstrap = Some(addr);
        let state = match self.cands.iter().position(|c| c.addr == addr) {
            Some(i) => self.cands.remove(i).state,
            None => State::Fresh,
        };
        self.known.insert(addr);
        self.cands.insert(
            0,
            Candidate {
                id: None,
                addr,
                state,
                tries: 0,
            },
        );
        self.trim();
    }

    /// New candidates from a response (never ourselves, never an address seen before).
    pub(crate) fn add(&mut self, contacts: &[Contact], own_id: &[u8], own_addr: u64) {
        for c in contacts {
            if c.addr == own_addr || c.addr == 0 || c.id == own_id || !self.known.insert(c.addr) {
                continue;
            }
            self.cands.push(Candidate {
                id: Some(c.id.clone()),
                addr: c.addr,
                state: State::Fresh,
                tries: 0,
            });
        }
        let key = &self.key;
        self.cands.sort_by(|a, b| closer(key, a, b));
        self.trim();
    }

    /// Drop the farthest candidates not waiting for an answer beyond `max_cands`.
    fn trim(&mut self) {
        while self.cands.len() > self.max_cands {
            let far = self
                .cands
                .iter()
                .rposition(|c| !matches!(c.state, State::Asked { .. }));
            match far {
                Some(i) => {
                    self.cands.remove(i);
                }
                None => break,
            }
        }
    }

    /// Whether a response with `cookie` from `src` answers a request of this lookup.
    pub(crate) fn is_pending(&self, cookie: u64, src: u64) -> bool {
        self.cands.iter().any(|c| {
            c.addr == src && matches!(c.state, State::Asked { cookie: x, .. } if x == cookie)
        })
    }

    /// The request with `cookie` to `src` was answered by node `id`.
    pub(crate) fn answered(&mut self, cookie: u64, src: u64, id: &[u8]) {
        for c in &mut self.cands {
            if c.addr == src && matches!(c.state, State::Asked { cookie: x, .. } if x == cookie) {
                c.state = State::Answered;
                c.id = Some(id.to_vec());
                if self.bootstrap == Some(src) {
                    self.peer_answered = true;
                }
            }
        }
        let key = &self.key;
        self.cands.sort_by(|a, b| closer(key, a, b));
    }

    /// Requests that were not answered by `now`: a candidate of a FIND_VALUE lookup asked
    /// fewer than [`VALUE_TRIES`] times is asked again (its place among the closest kept),
    /// else it fails. Returns how many requests timed out and the addresses that failed.
    pub(crate) fn expire(&mut self, now: Instant) -> (usize, Vec<u64>) {
        let tries = match self.kind {
            Kind::Value => VALUE_TRIES,
            Kind::Node => 1,
        };
        let (mut timed_out, mut failed) = (0, Vec::new());
        for c in &mut self.cands {
            if let State::Asked { deadline, .. } = c.state {
                if deadline <= now {
                    timed_out += 1;
                    if c.tries < tries {
                        c.state = State::Fresh;
                    } else {
                        c.state = State::Failed;
                        failed.push(c.addr);
                    }
                }
            }
        }
        (timed_out, failed)
    }

    /// `addr` is unreachable. Returns whether this lookup was waiting for it or would have
    /// asked it.
    pub(crate) fn fail_addr(&mut self, addr: u64) -> bool {
        let mut hit = false;
        for c in &mut self.cands {
            if c.addr == addr && matches!(c.state, State::Fresh | State::Asked { .. }) {
                c.state = State::Failed;
                hit = true;
            }
        }
        hit
    }

    /// The `k` closest candidates still in the running.
    fn window(&self, k: usize) -> impl Iterator<Item = &Candidate> {
        self.cands
            .iter()
            .filter(|c| c.state != State::Failed)
            .take(k)
    }

    fn in_flight(&self) -> usize {
        self.cands
            .iter()
            .filter(|c| matches!(c.state, State::Asked { .. }))
            .count()
    }

    /// Found a value, or the `k` closest candidates answered, or nothing is left to ask.
    pub(crate) fn is_done(&self, k: usize) -> bool {
        if self.kind == Kind::Value && !self.values.is_empty() {
            return true;
        }
        if self.window(k).all(|c| c.state == State::Answered) {
            return true;
        }
        let fresh = self.window(k).any(|c| c.state == State::Fresh);
        self.in_flight() == 0 && (!fresh || self.asked >= MAX_ASKED)
    }

    /// The requests to send now, keeping `alpha` in flight: (address, cookie).
    pub(crate) fn next(
        &mut self,
        alpha: usize,
        k: usize,
        now: Instant,
        t_resp: Duration,
        rng: &mut Rng,
    ) -> Vec<(u64, u64)> {
        let mut in_flight = self.in_flight();
        let mut out = Vec::new();
        let mut seen = 0;
        for c in self.cands.iter_mut() {
            if in_flight >= alpha || self.asked >= MAX_ASKED || seen >= k {
                break;
            }
            if c.state == State::Failed {
                continue;
            }
            seen += 1;
            if c.state == State::Fresh {
                let cookie = rng.cookie();
                c.state = State::Asked {
                    cookie,
                    deadline: now + t_resp,
                };
                c.tries += 1;
                out.push((c.addr, cookie));
                in_flight += 1;
                self.asked += 1;
            }
        }
        out
    }

    /// When the first unanswered request times out.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.cands
            .iter()
            .filter_map(|c| match c.state {
                State::Asked { deadline, .. } => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// Addresses of the `k` closest nodes that answered.
    pub(crate) fn closest_answered(&self, k: usize) -> Vec<u64> {
        self.cands
            .iter()
            .filter(|c| c.state == State::Answered)
            .take(k)
            .map(|c| c.addr)
            .collect()
    }

    /// Candidates held (bounded by `max_cands` plus those waiting for an answer).
    pub(crate) fn len(&self) -> usize {
        self.cands.len()
    }
}
