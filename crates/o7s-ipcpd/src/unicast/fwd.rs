//! Forwarding: the data transfer adjacencies to neighbours (lower flows), the forwarding
//! table routing computes, and moving a packet with its data transfer header one hop on.

use o7s::Flow;
use o7s_proto::wire::dt::{DtPacket, DtParams};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Which component an adjacency (a lower flow opened with a CEP exchange) serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comp {
    Dt,
    Mgmt,
}

impl Comp {
    pub fn parse(s: &str) -> Option<Comp> {
        match s {
            "dt" => Some(Comp::Dt),
            "mgmt" => Some(Comp::Mgmt),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Comp::Dt => "dt",
            Comp::Mgmt => "mgmt",
        }
    }
}

/// One lower flow to a neighbour.
pub struct Adj {
    pub flow: Flow,
    /// The neighbour's address (from its CEP message).
    pub nb: u64,
    pub comp: Comp,
    /// The QoS cube of the data transfer header this adjacency's flow suits (from the QoS it
    /// was connected with): packets of a cube prefer an adjacency of their own cube, so voice
    /// does not queue behind bulk data when the operator connected one for it.
    pub qc: u8,
    /// The name the flow was allocated to (empty for an accepted one).
    pub dst: String,
    pub up: AtomicBool,
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    /// Packets dropped because the lower flow was full.
    pub full: AtomicU64,
}

impl Adj {
    pub fn new(flow: Flow, nb: u64, comp: Comp, dst: &str) -> Arc<Adj> {
        let qc = super::fa::cube_of(&flow.qos());
        Arc::new(Adj {
            flow,
            nb,
            comp,
            qc,
            dst: dst.to_string(),
            up: AtomicBool::new(true),
            rx: AtomicU64::new(0),
            tx: AtomicU64::new(0),
            full: AtomicU64::new(0),
        })
    }

    /// Send one packet without waiting; a full lower flow drops it (counted).
    pub fn send(&self, pkt: &[u8]) -> bool {
        match self.flow.try_write(pkt) {
            Ok(_) => {
                self.tx.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(o7s::Error::WouldBlock) => {
                self.full.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(e) => {
                tracing::debug!(nb = self.nb, "lower flow: {e}");
                self.full.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// Packets queued on a lower flow that do not count as congestion: one batch of the IPCP
/// below (the shims send and receive up to 64 frames per system call).
const BATCH_ALLOWANCE: usize = 64;

/// Bytes queued on a lower flow beyond which this node's own applications' packets wait in
/// their flows instead of joining the queue (a quarter of the rings' default 1 MiB: ~180
/// packets of 1400 bytes, well past where marking starts, and room to spare for forwarded
/// traffic, which is dropped when the ring is full).
const LOCAL_QUEUE_LIMIT: usize = 256 * 1024;

/// Counters of the forwarding path.
#[derive(Default)]
pub struct FwdStats {
    pub forwarded: AtomicU64,
    pub ttl_drops: AtomicU64,
    pub no_route: AtomicU64,
    pub malformed: AtomicU64,
    pub unknown_eid: AtomicU64,
}

/// The forwarding state of one unicast IPCP.
pub struct Fwd {
    pub dtp: DtParams,
    pub max_ttl: u8,
    /// Several next hops are equal-cost paths to spread flows over (ECMP), not a primary
    /// and its loop-free alternates (LFA).
    ecmp: bool,
    /// Congestion avoidance: how packets are marked from the outgoing flow's queue.
    ca: o7s_proto::ca::Policy,
    adjs: RwLock<Vec<Arc<Adj>>>,
    /// Destination address -> next-hop neighbours, preferred first.
    table: RwLock<HashMap<u64, Vec<u64>>>,
    pub stats: FwdStats,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Fwd {
    pub fn new(dtp: DtParams, max_ttl: u8, ecmp: bool, ca: o7s_proto::ca::Policy) -> Fwd {
        Fwd {
            dtp,
            max_ttl,
            ecmp,
            ca,
            adjs: RwLock::new(Vec::new()),
            table: RwLock::new(HashMap::new()),
            stats: FwdStats::default(),
        }
    }

    pub fn add_adj(&self, a: Arc<Adj>) {
        write(&self.adjs).push(a);
    }

    /// Forget an adjacency; true if it was the last of its component to that neighbour.
    pub fn remove_adj(&self, a: &Arc<Adj>) -> bool {
        a.up.store(false, Ordering::Release);
        let mut adjs = write(&self.adjs);
        adjs.retain(|x| !Arc::ptr_eq(x, a));
        !adjs.iter().any(|x| x.nb == a.nb && x.comp == a.comp)
    }

    pub fn adjs(&self) -> Vec<Arc<Adj>> {
        read(&self.adjs).clone()
    }

    /// The live adjacencies of `comp`.
    pub fn adjs_of(&self, comp: Comp) -> Vec<Arc<Adj>> {
        read(&self.adjs)
            .iter()
            .filter(|a| a.comp == comp && a.up.load(Ordering::Acquire))
            .cloned()
            .collect()
    }

    pub fn set_table(&self, t: HashMap<u64, Vec<u64>>) {
        *write(&self.table) = t;
    }

    pub fn table(&self) -> HashMap<u64, Vec<u64>> {
        read(&self.table).clone()
    }

    /// The data transfer adjacency a packet to `dst` leaves on: the first next hop with a
    /// live one (a loop-free alternate when the primary is gone), or with equal-cost paths
    /// the one `spread` (the endpoint id) picks; a neighbour is reached directly
    /// even before routing knows it.
    fn next_hop(&self, dst: u64, qc: u8, spread: u64) -> Option<Arc<Adj>> {
        let adjs = read(&self.adjs);
        let live = |nb: u64| {
            let mut any = None;
            for a in adjs.iter() {
                if a.nb == nb && a.comp == Comp::Dt && a.up.load(Ordering::Relaxed) {
                    if a.qc == qc {
                        return Some(a.clone());
                    }
                    any.get_or_insert_with(|| a.clone());
                }
            }
            any
        };
        let hops: Vec<u64> = read(&self.table).get(&dst).cloned().unwrap_or_default();
        if self.ecmp && hops.len() > 1 {
            // Equal-cost next hops: one per flow, so a flow's packets stay in order.
            let n = hops.len() as u64;
            let first = (spread % n) as usize;
            for i in 0..hops.len() {
                if let Some(a) = live(hops[(first + i) % hops.len()]) {
                    return Some(a);
                }
            }
        }
        hops.iter().find_map(|&h| live(h)).or_else(|| live(dst))
    }

    /// Write the header of a packet to (`dst`, `eid`) in cube `qc` into `buf[off - hdr..off]`
    /// and send `buf[off - hdr..]` towards `dst`. False if there is no room for the header
    /// or no route.
    pub fn send(&self, dst: u64, qc: u8, eid: u64, buf: &mut [u8], off: usize) -> bool {
        let hdr = self.dtp.header_len();
        let Some(start) = off.checked_sub(hdr) else {
            return false;
        };
        let pkt = &mut buf[start..];
        {
            let mut p = DtPacket::new_unchecked(&mut pkt[..], self.dtp);
            p.set_dst_addr(dst);
            p.set_qc(qc);
            p.set_ttl(self.max_ttl);
            p.set_ecn(0);
            p.set_eid(eid);
        }
        self.route(dst, qc, eid, pkt)
    }

    /// A packet (header included) for another node: one hop less to live, then on.
    pub fn forward(&self, dst: u64, pkt: &mut [u8]) -> bool {
        let mut p = DtPacket::new_unchecked(&mut pkt[..], self.dtp);
        let (eid, qc) = (p.eid(), p.qc());
        match p.decrement_ttl() {
            Some(t) if t > 0 => {}
            _ => {
                self.stats.ttl_drops.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        let ok = self.route(dst, qc, eid, pkt);
        if ok {
            self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Whether the lower flow towards `dst` has room for this node's own packets: less than
    /// [`LOCAL_QUEUE_LIMIT`] queued (true without a route: the packet is then dropped and
    /// counted as before). Packets forwarded for others are never held back.
    pub fn has_room(&self, dst: u64, qc: u8, eid: u64) -> bool {
        self.next_hop(dst, qc, eid)
            .is_none_or(|a| a.flow.tx_queued() < LOCAL_QUEUE_LIMIT)
    }

    /// The congestion mark for a packet of `len` bytes joining a queue of `queued` bytes (an
    /// outgoing lower flow's, or an application's that the packet is delivered to). The
    /// queue counts in packets like this one. The IPCP below drains its flows in batches (up
    /// to BATCH_ALLOWANCE packets per system call), so a queue shorter than one batch is not
    /// congestion (o7s deviation: the prototype marks from the first 16 queued packets).
    pub fn queue_mark(&self, queued: usize, len: usize) -> u8 {
        let pkts = (queued / (len + 16).max(64)).saturating_sub(BATCH_ALLOWANCE);
        self.ca.calc_ecn(pkts)
    }

    fn route(&self, dst: u64, qc: u8, eid: u64, pkt: &mut [u8]) -> bool {
        match self.next_hop(dst, qc, eid) {
            Some(a) => {
                let mark = self.queue_mark(a.flow.tx_queued(), pkt.len());
                if mark > 0 {
                    DtPacket::new_unchecked(&mut pkt[..], self.dtp).mark_ecn(mark);
                }
                a.send(pkt)
            }
            None => {
                self.stats.no_route.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}
