//! The link-state state machine: database, flooding, timers and recalculation.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::graph::{routes, Graph};
use super::lsdb::{Entry, Key, Lsdb};
use super::{Addr, ForwardingTable, LinkEntry, LsConfig, LsMsg, LsStats, Output};
use crate::wire::lsu::LsuRepr;

const MIN_PERIOD: Duration = Duration::from_millis(1);
const MAX_PERIOD: Duration = Duration::from_secs(365 * 24 * 3600);

/// Answers to newer copies of our own adjacencies allowed per `t_update`, besides two per
/// adjacency of ours.
const CORRECTIONS: usize = 16;

/// The link-state routing of one unicast IPCP: see the [module documentation](super).
///
/// ```
/// use std::time::{Duration, Instant};
/// use o7s_proto::routing::{LinkState, LsConfig, LsMsg, Output};
///
/// let t0 = Instant::now();
/// let mut a = LinkState::new(1, LsConfig::default(), t0);
/// let mut b = LinkState::new(2, LsConfig::default(), t0);
/// for (x, nb) in [(&mut a, 2), (&mut b, 1)] {
///     x.mgmt_up(nb, t0);
///     x.link_up(nb, t0);
/// }
/// // Shuttle the updates both ways, as the management flows would.
/// loop {
///     let mut quiet = true;
///     for (from, to) in [(1, 2), (2, 1)] {
///         let (src, dst) = if from == 1 { (&mut a, &mut b) } else { (&mut b, &mut a) };
///         while let Some(out) = src.poll_output() {
///             if let Output::Send { to: t, bytes } = out {
///                 assert_eq!(t, to);
///                 assert!(matches!(LsMsg::parse(&bytes), Ok(LsMsg::Update(_))));
///                 dst.on_packet(from, &bytes, t0);
///                 quiet = false;
///             }
///         }
///     }
///     if quiet {
///         break;
///     }
/// }
/// // Both directions are announced: the recalculation is due at once.
/// assert_eq!(a.poll_timeout(), Some(t0));
/// a.handle_timeout(t0);
/// b.handle_timeout(t0);
/// assert_eq!(a.poll_output(), Some(Output::TableChanged));
/// assert_eq!(a.table().lookup(2), [2]);
/// assert_eq!(b.table().lookup(1), [1]);
/// assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(15)));
/// ```
pub struct LinkState {
    own: Addr,
    cfg: LsConfig,
    db: Lsdb,
    /// Neighbours over data-transfer adjacencies that are up.
    links: BTreeSet<Addr>,
    /// Neighbours over management adjacencies.
    mgmt: BTreeSet<Addr>,
    queue: VecDeque<(Addr, LsMsg)>,
    max_queue: usize,
    table: ForwardingTable,
    table_changed: bool,
    recalc_at: Option<Instant>,
    last_recalc: Option<Instant>,
    next_update: Instant,
    corrections_left: usize,
    stats: LsStats,
}

fn lsu((s_addr, d_addr): Key, seqno: u64) -> LsuRepr {
    LsuRepr {
        d_addr,
        s_addr,
        seqno,
    }
}

fn message(live: bool, key: Key, seqno: u64) -> LsMsg {
    if live {
        LsMsg::Update(lsu(key, seqno))
    } else {
        LsMsg::Withdraw(lsu(key, seqno))
    }
}

impl LinkState {
    /// Routing for the IPCP with address `own`, started at `now`.
    pub fn new(own: Addr, cfg: LsConfig, now: Instant) -> Self {
        let clamp = |d: Duration| d.clamp(MIN_PERIOD, MAX_PERIOD);
        let cfg = LsConfig {
            t_recalc: clamp(cfg.t_recalc),
            t_update: clamp(cfg.t_update),
            t_timeo: clamp(cfg.t_timeo),
            ..cfg
        };
        LinkState {
            own,
            db: Lsdb::new(cfg.max_links),
            links: BTreeSet::new(),
            mgmt: BTreeSet::new(),
            queue: VecDeque::new(),
            max_queue: cfg.max_links.saturating_mul(4).max(1024),
            table: ForwardingTable::new(cfg.policy),
            table_changed: false,
            recalc_at: None,
            last_recalc: None,
            next_update: now + cfg.t_update,
            corrections_left: CORRECTIONS,
            stats: LsStats::default(),
            cfg,
        }
    }

    /// Our address.
    pub fn own(&self) -> Addr {
        self.own
    }

    /// The configuration in use (durations clamped).
    pub fn config(&self) -> &LsConfig {
        &self.cfg
    }

    /// A data-transfer adjacency (our own link) to `nb` came up: announce it (seqno 0, or one
    /// above a withdrawal of it we still remember) to every management neighbour. Ignored
    /// for our own address, address 0 and adjacencies already up.
    pub fn link_up(&mut self, nb: Addr, now: Instant) {
        if nb == self.own || nb == 0 || !self.links.insert(nb) {
            return;
        }
        let key = (self.own, nb);
        let seqno = self.db.get(key).map_or(0, |e| e.seqno.saturating_add(1));
        let entry = Entry {
            seqno,
            live: true,
            updated: now,
            expires: None,
        };
        self.db.set(key, entry, true);
        self.flood(LsMsg::Update(lsu(key, seqno)), None);
        self.own_changed(now);
    }

    /// The data-transfer adjacency to `nb` went down: flood a withdrawal, drop `nb` from the
    /// table at once (an LFA alternate takes over) and recalculate (at once if
    /// [`LsConfig::recalc_on_link_change`]).
    pub fn link_down(&mut self, nb: Addr, now: Instant) {
        if !self.links.remove(&nb) {
            return;
        }
        let key = (self.own, nb);
        let seqno = self.db.get(key).map_or(0, |e| e.seqno.saturating_add(1));
        let entry = Entry {
            seqno,
            live: false,
            updated: now,
            expires: Some(now + 3 * self.cfg.t_timeo),
        };
        self.db.set(key, entry, true);
        self.flood(LsMsg::Withdraw(lsu(key, seqno)), None);
        if self.table.remove_next_hop(nb) {
            self.table_changed = true;
        }
        self.own_changed(now);
    }

    /// A management adjacency to `nb` came up: send it the whole database (withdrawals
    /// included). `now` is not needed today; it is taken for symmetry with the other events.
    pub fn mgmt_up(&mut self, nb: Addr, _now: Instant) {
        if nb == self.own {
            return;
        }
        self.mgmt.insert(nb);
        for (key, e) in self.db.iter() {
            if self.queue.len() >= self.max_queue {
                self.stats.queue_full += 1;
                continue;
            }
            self.queue.push_back((nb, message(e.live, key, e.seqno)));
        }
    }

    /// The management adjacency to `nb` went down: stop flooding to it (messages for it
    /// still queued are dropped).
    pub fn mgmt_down(&mut self, nb: Addr) {
        if self.mgmt.remove(&nb) {
            self.queue.retain(|&(to, _)| to != nb);
        }
    }

    /// A packet arrived on the management adjacency from `from`. Anything that is not a
    /// message is counted in [`LsStats::malformed`] and ignored.
    pub fn on_packet(&mut self, from: Addr, bytes: &[u8], now: Instant) {
        let Ok(msg) = LsMsg::parse(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        let l = msg.lsu();
        if l.s_addr == l.d_addr || l.s_addr == 0 || l.d_addr == 0 {
            self.stats.malformed += 1;
            return;
        }
        self.stats.received += 1;
        if msg.is_withdraw() {
            self.stats.withdrawals_received += 1;
        }
        let key = (l.s_addr, l.d_addr);
        let live = !msg.is_withdraw();
        let held = self.db.get(key).copied();
        if held.is_some_and(|e| l.seqno <= e.seqno) {
            self.stats.ignored += 1;
            return;
        }
        if l.s_addr == self.own && live != self.links.contains(&l.d_addr) {
            self.correct_own(key, l.seqno, held, now);
            return;
        }
        let expires = if key.0 != self.own {
            now + self.cfg.t_timeo
        } else if live {
            // Ours and true: announced from here on at each t_update.
            self.adopt_own(key, l.seqno, now);
            self.flood(msg, Some(from));
            return;
        } else {
            held.and_then(|e| e.expires)
                .unwrap_or(now + 3 * self.cfg.t_timeo)
        };
        let entry = Entry {
            seqno: l.seqno,
            live,
            updated: now,
            expires: Some(expires),
        };
        if !self.db.set(key, entry, false) {
            self.stats.db_full += 1;
            return;
        }
        if held.is_some_and(|e| e.live) != live {
            self.graph_changed(key, now);
        }
        self.flood(msg, Some(from));
    }

    /// A newer copy of our live adjacency `key` that is true: take its seqno.
    fn adopt_own(&mut self, key: Key, seqno: u64, now: Instant) {
        let entry = Entry {
            seqno,
            live: true,
            updated: now,
            expires: None,
        };
        self.db.set(key, entry, true);
    }

    /// Someone holds a newer copy of our adjacency `key` that is false: announce the truth
    /// above it, now if the budget allows, else at the next `t_update`.
    fn correct_own(&mut self, key: Key, seqno: u64, held: Option<Entry>, now: Instant) {
        let Some(seqno) = seqno.checked_add(1) else {
            self.stats.ignored += 1;
            return;
        };
        let live = self.links.contains(&key.1);
        let expires = if live {
            None
        } else {
            // A fresh withdrawal window, so that the next t_update repeats it.
            Some(now + 3 * self.cfg.t_timeo)
        };
        let entry = Entry {
            seqno,
            live,
            updated: now,
            expires,
        };
        if !self.db.set(key, entry, live) {
            self.stats.db_full += 1;
            return;
        }
        self.stats.corrections += 1;
        if held.is_some_and(|e| e.live) != live {
            self.graph_changed(key, now);
        }
        if self.corrections_left > 0 {
            self.corrections_left -= 1;
            self.flood(message(live, key, seqno), None);
        }
    }

    /// The next output, if any: a notice that the table changed comes before queued sends.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.table_changed {
            self.table_changed = false;
            return Some(Output::TableChanged);
        }
        let (to, msg) = self.queue.pop_front()?;
        self.stats.sent += 1;
        if msg.is_withdraw() {
            self.stats.withdrawals_sent += 1;
        }
        Some(Output::Send {
            to,
            bytes: msg.to_bytes(),
        })
    }

    /// When [`Self::handle_timeout`] next has work: a re-announcement, an expiry or a
    /// recalculation (which may be due at once after an event).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            Some(self.next_update),
            self.db.next_expiry(),
            self.recalc_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Do what is due at `now`: re-announce our adjacencies every `t_update`, remove entries
    /// that timed out, recalculate the table. Harmless to call early.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_update {
            self.reannounce(now);
            self.next_update += self.cfg.t_update;
            if self.next_update <= now {
                self.next_update = now + self.cfg.t_update;
            }
        }
        for (key, e) in self.db.expire(now) {
            if e.live {
                self.stats.timeouts += 1;
                self.graph_changed(key, now);
            }
        }
        if self.recalc_at.is_some_and(|t| t <= now) {
            self.recalc(now);
        }
    }

    /// Re-announce our adjacencies with seqno + 1, and our withdrawals during their first
    /// `t_timeo`.
    fn reannounce(&mut self, now: Instant) {
        self.corrections_left = CORRECTIONS + 2 * self.links.len();
        let window = 2 * self.cfg.t_timeo;
        let own: Vec<(Key, Entry)> = self
            .db
            .announced_by(self.own)
            .filter(|(_, e)| {
                e.live
                    || e.expires
                        .is_some_and(|t| t.saturating_duration_since(now) > window)
            })
            .map(|(k, e)| (k, *e))
            .collect();
        for (key, e) in own {
            let Some(seqno) = e.seqno.checked_add(1) else {
                continue;
            };
            self.db.set(
                key,
                Entry {
                    seqno,
                    updated: now,
                    ..e
                },
                true,
            );
            self.flood(message(e.live, key, seqno), None);
        }
    }

    fn own_changed(&mut self, now: Instant) {
        if self.cfg.recalc_on_link_change {
            self.recalc(now);
        } else {
            self.mark_dirty(now, false);
        }
    }

    /// Whether the edge of `key` exists changed.
    fn graph_changed(&mut self, key: Key, now: Instant) {
        let ours = key.0 == self.own || key.1 == self.own;
        self.mark_dirty(now, ours && self.cfg.recalc_on_link_change);
    }

    fn mark_dirty(&mut self, now: Instant, at_once: bool) {
        let at = match self.last_recalc {
            Some(t) if !at_once => (t + self.cfg.t_recalc).max(now),
            _ => now,
        };
        self.recalc_at = Some(self.recalc_at.map_or(at, |r| r.min(at)));
    }

    pub(super) fn recalc(&mut self, now: Instant) {
        let db = &self.db;
        let edges = db
            .iter()
            .filter(|&((s, d), e)| e.live && s < d && db.is_live((d, s)))
            .map(|(k, _)| k);
        let graph = Graph::from_edges(edges);
        let table = ForwardingTable::from_routes(
            self.cfg.policy,
            routes(&graph, self.own, self.cfg.policy),
        );
        if table != self.table {
            self.table = table;
            self.table_changed = true;
        }
        self.last_recalc = Some(now);
        self.recalc_at = None;
        self.stats.recalculations += 1;
    }

    /// Queue `msg` for every management neighbour but `except`.
    fn flood(&mut self, msg: LsMsg, except: Option<Addr>) {
        for &nb in &self.mgmt {
            if Some(nb) == except {
                continue;
            }
            if self.queue.len() >= self.max_queue {
                self.stats.queue_full += 1;
                continue;
            }
            self.queue.push_back((nb, msg));
        }
    }

    /// Next hops per destination (see [`ForwardingTable`]).
    pub fn table(&self) -> &ForwardingTable {
        &self.table
    }

    /// The live entries of the database, ordered by `(src, dst)`, for introspection.
    pub fn links(&self) -> impl Iterator<Item = LinkEntry> + '_ {
        self.db
            .iter()
            .filter(|(_, e)| e.live)
            .map(|((src, dst), e)| LinkEntry {
                src,
                dst,
                seqno: e.seqno,
                updated: e.updated,
            })
    }

    /// Entries in the database, withdrawals included (at most [`LsConfig::max_links`] plus
    /// our own).
    pub fn db_len(&self) -> usize {
        self.db.len()
    }

    /// Messages waiting in [`Self::poll_output`].
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Neighbours over data-transfer adjacencies that are up, in address order.
    pub fn dt_neighbours(&self) -> impl Iterator<Item = Addr> + '_ {
        self.links.iter().copied()
    }

    /// Neighbours over management adjacencies, in address order.
    pub fn mgmt_neighbours(&self) -> impl Iterator<Item = Addr> + '_ {
        self.mgmt.iter().copied()
    }

    /// Counters.
    pub fn stats(&self) -> LsStats {
        self.stats
    }
}
