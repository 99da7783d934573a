//! The control plane of a member: link-state routing over the management adjacencies and
//! the DHT directory over the layer, both sans-IO state machines (`o7s_proto::routing`,
//! `o7s_proto::dht`) driven here by the adjacencies' reader threads, the IRMd's requests and
//! one timer thread. Their output is collected under the lock and sent after it is released.

use super::fwd::Comp;
use super::params::Layer;
use super::Uni;
use o7s::ctrl::msg::IrmError;
use o7s_proto::dht::{Dht, DhtConfig as DhtParams, Event, QueryId};
use o7s_proto::routing::{LinkState, LsConfig, Output, Policy};
use o7s_proto::wire::dt::{Qc, DHT_EID};
use o7s_proto::wire::ipcp_config::{DirConfig, LsPolicy, Routing};
use o7s_proto::NameHash;
use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{info, warn};

struct Inner {
    ls: LinkState,
    dht: Dht,
    /// Destinations in the forwarding table at its last change.
    known: usize,
    /// Publish our names again at this time: the layer grew, and the members now closest to
    /// a name's hash may not hold it (a name registered while this member knew few others).
    republish_at: Option<Instant>,
    /// Lookups waiting for their answer.
    waiters: HashMap<QueryId, SyncSender<Vec<u64>>>,
}

/// What the state machines asked for, sent once the lock is released.
#[derive(Default)]
struct Outbox {
    lsus: Vec<(u64, Vec<u8>)>,
    dht: Vec<(u64, Vec<u8>)>,
    table: Option<HashMap<u64, Vec<u64>>>,
}

pub struct Ctl {
    inner: Mutex<Inner>,
    wake: Condvar,
}

fn wall_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Ctl {
    pub fn new(layer: &Layer, addr: u64, member: Option<u64>) -> Result<Ctl, IrmError> {
        let now = Instant::now();
        let Routing::LinkState(ls) = &layer.uni.dt.routing;
        let cfg = LsConfig {
            policy: match ls.pol {
                LsPolicy::Simple => Policy::LinkState,
                LsPolicy::Lfa => Policy::Lfa,
                LsPolicy::Ecmp => Policy::Ecmp,
            },
            t_recalc: Duration::from_secs(u64::from(ls.t_recalc)),
            t_update: Duration::from_secs(u64::from(ls.t_update)),
            t_timeo: Duration::from_secs(u64::from(ls.t_timeo)),
            ..LsConfig::default()
        };
        let DirConfig::Dht(d) = &layer.uni.dir;
        let dcfg = DhtParams {
            alpha: d.alpha,
            k: d.k,
            t_expire: d.t_expire,
            t_refresh: d.t_refresh,
            t_replicate: d.t_replicate,
            ..DhtParams::default()
        };
        let id: Vec<u8> = (0..layer.hash.hash_len()).map(|_| rand::random()).collect();
        let mut dht = Dht::new(id, addr, dcfg, now, wall_secs(), rand::random()).map_err(|e| {
            IrmError::BadParam {
                key: "directory".into(),
                value: "DHT".into(),
                why: e.to_string(),
            }
        })?;
        if let Some(m) = member {
            // The DHT retries joining until the member answers (once routing reaches it).
            dht.bootstrap(m, now);
        }
        Ok(Ctl {
            inner: Mutex::new(Inner {
                ls: LinkState::new(addr, cfg, now),
                dht,
                known: 0,
                republish_at: None,
                waiters: HashMap::new(),
            }),
            wake: Condvar::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` on the state machines, then send what they produced.
    fn with(&self, uni: &Arc<Uni>, f: impl FnOnce(&mut Inner, Instant)) {
        let out = {
            let mut g = self.lock();
            let now = Instant::now();
            f(&mut g, now);
            // A recalculation may be due at once (our own links changed).
            if g.ls.poll_timeout().is_some_and(|t| t <= now) {
                g.ls.handle_timeout(now);
            }
            collect(&mut g)
        };
        self.dispatch(uni, out);
        self.wake.notify_one();
    }

    fn dispatch(&self, uni: &Arc<Uni>, out: Outbox) {
        if let Some(t) = out.table {
            let n = t.len();
            uni.fwd.set_table(t);
            let mut g = self.lock();
            if n > g.known {
                g.republish_at = Some(Instant::now() + REPUBLISH_SETTLE);
            }
            g.known = n;
        }
        if !out.lsus.is_empty() {
            let mgmt = uni.fwd.adjs_of(Comp::Mgmt);
            for (to, bytes) in out.lsus {
                if let Some(a) = mgmt.iter().find(|a| a.nb == to) {
                    a.send(&bytes);
                }
            }
        }
        let hdr = uni.fwd.dtp.header_len();
        for (to, bytes) in out.dht {
            let mut buf = vec![0u8; hdr + bytes.len()];
            buf[hdr..].copy_from_slice(&bytes);
            uni.send_dt(to, Qc::Be as u8, DHT_EID, &mut buf, hdr);
        }
    }

    /// Start the timer thread.
    pub fn start(&self, uni: &Arc<Uni>) {
        let weak: Weak<Uni> = Arc::downgrade(uni);
        let _ = std::thread::Builder::new()
            .name("ctl-timers".into())
            .spawn(move || timers(weak));
    }

    pub fn link_up(&self, uni: &Arc<Uni>, nb: u64) {
        self.with(uni, |i, now| i.ls.link_up(nb, now));
    }

    pub fn link_down(&self, uni: &Arc<Uni>, nb: u64) {
        self.with(uni, |i, now| {
            i.ls.link_down(nb, now);
            i.dht.peer_gone(nb, now);
        });
    }

    pub fn mgmt_up(&self, uni: &Arc<Uni>, nb: u64) {
        self.with(uni, |i, now| i.ls.mgmt_up(nb, now));
    }

    pub fn mgmt_down(&self, uni: &Arc<Uni>, nb: u64) {
        self.with(uni, |i, _| i.ls.mgmt_down(nb));
    }

    pub fn mgmt_packet(&self, uni: &Arc<Uni>, from: u64, bytes: &[u8]) {
        self.with(uni, |i, now| i.ls.on_packet(from, bytes, now));
    }

    pub fn dht_packet(&self, uni: &Arc<Uni>, bytes: &[u8]) {
        self.with(uni, |i, now| i.dht.on_packet(bytes, now, wall_secs()));
    }

    pub fn register(&self, uni: &Arc<Uni>, hash: &NameHash) {
        self.with(uni, |i, now| {
            if let Err(e) = i.dht.register(hash.as_bytes(), now) {
                warn!("cannot publish {hash}: {e}");
            }
        });
    }

    pub fn unregister(&self, uni: &Arc<Uni>, hash: &NameHash) {
        self.with(uni, |i, _| {
            i.dht.unregister(hash.as_bytes());
        });
    }

    /// The addresses where `hash` is registered, by a directory lookup of at most `wait`.
    pub fn resolve(
        &self,
        uni: &Arc<Uni>,
        hash: &NameHash,
        wait: Duration,
    ) -> Result<Vec<u64>, IrmError> {
        let (tx, rx) = sync_channel(1);
        let mut id = None;
        let mut err = None;
        self.with(uni, |i, now| match i.dht.lookup(hash.as_bytes(), now) {
            Ok(q) => {
                i.waiters.insert(q, tx);
                id = Some(q);
            }
            Err(e) => err = Some(e),
        });
        if let Some(e) = err {
            return Err(IrmError::Internal(format!("directory lookup: {e}")));
        }
        // A lookup may finish inside `lookup` itself (the answer is then queued already).
        let out = {
            let mut g = self.lock();
            collect(&mut g)
        };
        self.dispatch(uni, out);
        match rx.recv_timeout(wait) {
            Ok(addrs) => Ok(addrs),
            Err(_) => {
                if let Some(q) = id {
                    self.lock().waiters.remove(&q);
                }
                info!("Directory lookup of {hash} timed out.");
                Ok(Vec::new())
            }
        }
    }

    pub fn show(&self) -> Vec<(String, String)> {
        let g = self.lock();
        let mut v = Vec::new();
        let now = Instant::now();
        let s = g.ls.stats();
        v.push((
            "link-state updates".into(),
            format!(
                "received {} sent {} withdrawals {}/{} ignored {} malformed {} recalculations {}",
                s.received,
                s.sent,
                s.withdrawals_received,
                s.withdrawals_sent,
                s.ignored,
                s.malformed,
                s.recalculations
            ),
        ));
        for l in g.ls.links() {
            v.push((
                format!("link {:#x}", l.src),
                format!(
                    "-> {:#x} seqno {} age {} s",
                    l.dst,
                    l.seqno,
                    now.saturating_duration_since(l.updated).as_secs()
                ),
            ));
        }
        let d = g.dht.show();
        v.push(("directory id".into(), d.id.to_string()));
        v.push((
            "directory".into(),
            format!(
                "{} contacts, {} entries, joined {}, lookups {} found {} not found {}",
                d.contacts(),
                d.entries.len(),
                d.joined,
                d.stats.lookups,
                d.stats.lookups_found,
                d.stats.lookups_not_found
            ),
        ));
        for e in &d.entries {
            let vals: Vec<String> = e.values.iter().map(|(a, _)| format!("{a:#x}")).collect();
            v.push((format!("entry {}", e.key), vals.join(" ")));
        }
        let st = &d.stats;
        v.push((
            "directory messages".into(),
            format!(
                "received {} sent {} unmatched {} timeouts {} stores received {} sent {} \
                 refused {} unplaced {}",
                st.rx,
                st.tx,
                st.rx_unmatched,
                st.req_timeouts,
                st.stores_rx,
                st.stores_tx,
                st.stores_refused,
                st.stores_unplaced
            ),
        ));
        v.push(("directory drops".into(), d.stats.rx_invalid.to_string()));
        v
    }
}

/// The hashes of the names registered at this member.
fn lock_names(u: &Uni) -> Vec<NameHash> {
    u.registered
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .cloned()
        .collect()
}

/// Drain the state machines' output.
fn collect(i: &mut Inner) -> Outbox {
    let mut out = Outbox::default();
    while let Some(o) = i.ls.poll_output() {
        match o {
            Output::Send { to, bytes } => out.lsus.push((to, bytes)),
            Output::TableChanged => {
                let t =
                    i.ls.table()
                        .iter()
                        .map(|(d, hops)| (d, hops.to_vec()))
                        .collect();
                out.table = Some(t);
            }
        }
    }
    while let Some(t) = i.dht.poll_transmit() {
        out.dht.push(t);
    }
    while let Some(e) = i.dht.poll_event() {
        if let Event::LookupDone { id, addrs, .. } = e {
            if let Some(w) = i.waiters.remove(&id) {
                let _ = w.send(addrs);
            }
        }
    }
    out
}

/// How long the layer must stop growing before our names are published again.
const REPUBLISH_SETTLE: Duration = Duration::from_secs(2);

fn timers(uni: Weak<Uni>) {
    loop {
        let Some(u) = uni.upgrade() else { return };
        let ctl = &u.ctl;
        let names: Vec<NameHash> = lock_names(&u);
        let (out, wait) = {
            let mut g = ctl.lock();
            let now = Instant::now();
            let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
            if due(g.republish_at) {
                g.republish_at = None;
                for h in &names {
                    if let Err(e) = g.dht.register(h.as_bytes(), now) {
                        warn!("cannot publish {h} again: {e}");
                    }
                }
            }
            if due(g.ls.poll_timeout()) {
                g.ls.handle_timeout(now);
            }
            if due(g.dht.poll_timeout()) {
                g.dht.handle_timeout(now, wall_secs());
            }
            let out = collect(&mut g);
            let next = [g.ls.poll_timeout(), g.dht.poll_timeout(), g.republish_at]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_secs(1));
            (
                out,
                next.saturating_duration_since(now)
                    .min(Duration::from_secs(1)),
            )
        };
        ctl.dispatch(&u, out);
        let g = ctl.lock();
        let _ = ctl.wake.wait_timeout(g, wait.max(Duration::from_millis(1)));
    }
}
