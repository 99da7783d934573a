//! The unicast IPCP: a routed layer over flows of lower layers (a software router).
//!
//! Members enroll through a member they can reach in a lower layer, connect data transfer
//! (`dt`) and management (`mgmt`) adjacencies over lower flows, flood link-state updates on
//! the management adjacencies, keep a DHT directory of names, and forward packets with the
//! data transfer header hop by hop. Applications' flows are made by the flow allocator
//! (endpoint 0) and carried by the shared [`Dataplane`].

mod conn;
mod ctl;
mod enroll;
mod fa;
mod fwd;
mod params;

use crate::dataplane::Dataplane;
use crate::IpcpLogic;
use ctl::Ctl;
use fa::{Fa, UniEgress};
use fwd::{Comp, Fwd};
use o7s::ctrl::msg::{IpcpNote, IpcpReq, IpcpResp, IrmError};
use o7s::ctrl::rpc::Rpc;
use o7s_proto::wire::dt::{DtPacket, DHT_EID, FA_EID, RES_EIDS};
use o7s_proto::NameHash;
use params::Layer;
use rustix::fd::OwnedFd;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{info, warn};

/// The MTU a member reports before it has any data transfer adjacency.
const DEFAULT_MTU: usize = 1400;

/// How long a name lookup in the directory may take.
const LOOKUP_WAIT: Duration = Duration::from_secs(4);

/// How long a name's address found in the directory is reused (the IRMd's query and the
/// allocation that follows it, or a burst of allocations to one server, cost one lookup).
/// A refused flow request forgets it at once.
const RESOLVED_TTL: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running member of a unicast layer.
pub struct Uni {
    pub name: String,
    pub layer: Layer,
    pub addr: u64,
    rpc: Arc<Rpc>,
    pub fwd: Fwd,
    pub fa: Fa,
    pub dp: Arc<Dataplane<UniEgress>>,
    pub ctl: Ctl,
    /// Names registered here, by hash.
    pub registered: Mutex<HashMap<NameHash, String>>,
    /// Recent directory answers: where a name was found, and when.
    resolved: Mutex<HashMap<NameHash, (Vec<u64>, std::time::Instant)>>,
    mtu: AtomicU32,
}

impl Uni {
    fn start(
        name: &str,
        layer: Layer,
        rpc: &Arc<Rpc>,
        member: Option<u64>,
        mtu: usize,
    ) -> Result<Arc<Uni>, IrmError> {
        let dtp = layer.dt_params();
        let addr = loop {
            let a: u64 = rand::random::<u64>() & dtp.max_addr();
            if a != 0 {
                break a;
            }
        };
        let egress = Arc::new(UniEgress::default());
        let dp = Dataplane::new(egress.clone()).map_err(|e| IrmError::Internal(e.to_string()))?;
        let weak = Arc::downgrade(rpc);
        dp.on_timeout(move |flow_id| {
            let Some(rpc) = weak.upgrade() else { return };
            let _ = std::thread::Builder::new()
                .name("flow-down".into())
                .spawn(move || {
                    let _ = rpc.notify(
                        IpcpNote::FlowDown { flow_id },
                        &[],
                        Some(Duration::from_secs(5)),
                    );
                });
        });
        let ctl = Ctl::new(&layer, addr, member)?;
        let uni = Arc::new(Uni {
            name: name.to_string(),
            fwd: Fwd::new(
                dtp,
                layer.uni.dt.max_ttl,
                layer.policy() == o7s_proto::wire::ipcp_config::LsPolicy::Ecmp,
                layer.uni.cong_avoid,
            ),
            layer,
            addr,
            rpc: rpc.clone(),
            fa: Fa::default(),
            dp,
            ctl,
            registered: Mutex::new(HashMap::new()),
            resolved: Mutex::new(HashMap::new()),
            mtu: AtomicU32::new(mtu as u32),
        });
        let _ = egress.uni.set(Arc::downgrade(&uni));
        uni.ctl.start(&uni);
        uni.accept_loop();
        info!(
            "IPCP {name} is member {addr:#x} of layer {} ({} routing).",
            uni.layer.name,
            uni.layer.policy_name()
        );
        Ok(uni)
    }

    fn bootstrapped(&self) -> IpcpResp {
        IpcpResp::Bootstrapped {
            layer: self.layer.name.clone(),
            hash: self.layer.hash,
            mtu: self.mtu.load(Ordering::Relaxed),
        }
    }

    /// Send a packet whose payload is `buf[off..]` to (`dst`, `eid`): to ourselves directly,
    /// else with the header in `buf[off - hdr..off]` on the way to `dst`.
    pub fn send_dt(self: &Arc<Self>, dst: u64, qc: u8, eid: u64, buf: &mut [u8], off: usize) {
        if dst == self.addr {
            // A flow between two applications on this node, or a message to ourselves.
            let payload = buf[off..].to_vec();
            self.deliver_local(eid, 0, &payload);
            return;
        }
        self.fwd.send(dst, qc, eid, buf, off);
    }

    /// A packet (header included) from a data transfer adjacency.
    pub fn receive(self: &Arc<Self>, pkt: &mut [u8]) {
        let dtp = self.fwd.dtp;
        let Ok(p) = DtPacket::new_checked(&pkt[..], dtp) else {
            self.fwd.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let dst = p.dst_addr();
        if dst != self.addr {
            if dst == 0 || p.qc() > 2 {
                self.fwd.stats.malformed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            self.fwd.forward(dst, pkt);
            return;
        }
        let (eid, ecn) = (p.eid(), p.ecn());
        let hdr = dtp.header_len();
        self.deliver_local(eid, ecn, &pkt[hdr..]);
    }

    fn deliver_local(self: &Arc<Self>, eid: u64, ecn: u8, payload: &[u8]) {
        match eid {
            FA_EID => self.fa_packet(payload),
            DHT_EID => self.ctl.dht_packet(self, payload),
            e if e < RES_EIDS => {
                self.fwd.stats.unknown_eid.fetch_add(1, Ordering::Relaxed);
            }
            e => self.to_flow(e, ecn, payload),
        }
    }

    /// Where `hash` is, if that is known without a directory lookup: registered here, or
    /// found a moment ago.
    pub fn resolve_known(&self, hash: &NameHash) -> Option<Vec<u64>> {
        if lock(&self.registered).contains_key(hash) {
            return Some(vec![self.addr]);
        }
        let now = std::time::Instant::now();
        let mut cache = lock(&self.resolved);
        match cache.get(hash) {
            Some((addrs, at)) if now.duration_since(*at) < RESOLVED_TTL => Some(addrs.clone()),
            Some(_) => {
                cache.remove(hash);
                None
            }
            None => None,
        }
    }

    /// Look `hash` up: our own registrations first, then the directory.
    pub fn resolve(self: &Arc<Self>, hash: &NameHash) -> Result<Vec<u64>, IrmError> {
        if let Some(addrs) = self.resolve_known(hash) {
            return Ok(addrs);
        }
        let now = std::time::Instant::now();
        let mut addrs = self.ctl.resolve(self, hash, LOOKUP_WAIT)?;
        // Our own address for a name no longer registered here is stale.
        addrs.retain(|a| *a != self.addr);
        if !addrs.is_empty() {
            let mut cache = lock(&self.resolved);
            if cache.len() >= 4096 {
                cache.retain(|_, (_, at)| now.duration_since(*at) < RESOLVED_TTL);
            }
            cache.insert(hash.clone(), (addrs.clone(), now));
        }
        Ok(addrs)
    }

    /// Forget where `hash` was found (the node there refused a flow to it).
    pub fn forget_resolved(&self, hash: &NameHash) {
        lock(&self.resolved).remove(hash);
    }

    /// The MTU follows the data transfer adjacencies: the smallest lower MTU less our header.
    pub fn update_mtu(&self) {
        let hdr = self.fwd.dtp.header_len();
        let lowest = self
            .fwd
            .adjs_of(Comp::Dt)
            .iter()
            .map(|a| a.flow.mtu())
            .min();
        let Some(lowest) = lowest else { return };
        let mtu = lowest.saturating_sub(hdr).min(u32::MAX as usize) as u32;
        if self.mtu.swap(mtu, Ordering::Relaxed) != mtu {
            info!("MTU of layer {} is now {mtu}.", self.layer.name);
            let rpc = self.rpc.clone();
            let _ = std::thread::Builder::new()
                .name("mtu".into())
                .spawn(move || {
                    let _ = rpc.notify(IpcpNote::Mtu { mtu }, &[], Some(Duration::from_secs(5)));
                });
        }
    }

    fn answer(self: &Arc<Self>, req: IpcpReq) -> Result<IpcpResp, IrmError> {
        match req {
            IpcpReq::Bootstrap { .. } | IpcpReq::Enroll { .. } => {
                Err(IrmError::AlreadyBootstrapped {
                    name: self.name.clone(),
                    layer: self.layer.name.clone(),
                })
            }
            IpcpReq::Reg { name, hash } => {
                lock(&self.registered).insert(hash.clone(), name.clone());
                self.ctl.register(self, &hash);
                info!("Registered {name} in layer {}.", self.layer.name);
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Unreg { hash } => {
                if let Some(name) = lock(&self.registered).remove(&hash) {
                    self.ctl.unregister(self, &hash);
                    info!("Unregistered {name} from layer {}.", self.layer.name);
                }
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Query { hash } => Ok(IpcpResp::Bool(!self.resolve(&hash)?.is_empty())),
            // Answered when the reply comes (see `UnicastIpcp::handle`).
            IpcpReq::FlowAlloc { .. } => Err(IrmError::Internal(
                "a flow allocation is not answered here".into(),
            )),
            IpcpReq::FlowDealloc { flow_id } => {
                if let Some(p) = self.dp.remove(flow_id) {
                    self.forget_eid(p.peer.local_eid);
                }
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Connect {
                component,
                dst,
                qos,
            } => {
                let comp = comp_of(&component)?;
                self.connect(comp, &dst, crate::common::adj_qos(qos.as_deref())?)?;
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Disconnect { component, dst } => {
                self.disconnect(comp_of(&component)?, &dst)?;
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Show => Ok(IpcpResp::Show(self.show())),
            r @ IpcpReq::FlowJoin { .. } => Err(r
                .not_for("unicast")
                .unwrap_or_else(|| IrmError::Internal("unexpected request".into()))),
        }
    }

    fn show(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = vec![
            ("layer".into(), self.layer.name.clone()),
            ("address".into(), format!("{:#x}", self.addr)),
            ("routing".into(), self.layer.policy_name().into()),
            ("hash".into(), self.layer.hash.to_string()),
            ("mtu".into(), self.mtu.load(Ordering::Relaxed).to_string()),
            (
                "congestion".into(),
                match self.layer.uni.cong_avoid {
                    o7s_proto::ca::Policy::None => "none".into(),
                    o7s_proto::ca::Policy::MbEcn => "mb-ecn".into(),
                },
            ),
        ];
        for a in self.fwd.adjs() {
            v.push((
                format!("neighbour {:#x}", a.nb),
                format!(
                    "{}{} rx {} tx {} dropped {}",
                    a.comp.name(),
                    if a.dst.is_empty() {
                        String::new()
                    } else {
                        format!(" via {}", a.dst)
                    },
                    a.rx.load(Ordering::Relaxed),
                    a.tx.load(Ordering::Relaxed),
                    a.full.load(Ordering::Relaxed)
                ),
            ));
        }
        let mut table: Vec<_> = self.fwd.table().into_iter().collect();
        table.sort();
        for (dst, hops) in table {
            let hops: Vec<String> = hops.iter().map(|h| format!("{h:#x}")).collect();
            v.push((format!("route {dst:#x}"), hops.join(" ")));
        }
        let mut names: Vec<_> = lock(&self.registered).values().cloned().collect();
        names.sort();
        for n in names {
            v.push(("registered".into(), n));
        }
        v.extend(self.ctl.show());
        let mut flows: Vec<(u64, u64)> =
            lock(&self.fa.eids).iter().map(|(e, f)| (*f, *e)).collect();
        flows.sort();
        for (flow_id, _) in flows {
            if let Some(p) = self.dp.get(flow_id) {
                let ca = lock(&self.fa.ca)
                    .get(&p.peer.local_eid)
                    .and_then(|c| c.stats())
                    .map(|s| format!(", congestion {s}"))
                    .unwrap_or_default();
                v.push((
                    format!("flow {flow_id}"),
                    format!(
                        "to {:#x} eid {:#x} rx {} tx {} dropped {}{ca}",
                        p.peer.addr,
                        p.peer.eid,
                        p.rx_packets.load(Ordering::Relaxed),
                        p.tx_packets.load(Ordering::Relaxed),
                        p.rx_drops.load(Ordering::Relaxed)
                    ),
                ));
            }
        }
        let s = &self.fwd.stats;
        for (k, c) in [
            ("forwarded", &s.forwarded),
            ("ttl drops", &s.ttl_drops),
            ("no route drops", &s.no_route),
            ("malformed drops", &s.malformed),
            ("unknown endpoint drops", &s.unknown_eid),
            ("flow allocator drops", &self.fa.bad),
            ("flow requests refused", &self.fa.refused),
            ("congestion updates sent", &self.fa.updates_tx),
            ("congestion updates received", &self.fa.updates_rx),
        ] {
            v.push((k.into(), c.load(Ordering::Relaxed).to_string()));
        }
        v
    }
}

fn comp_of(s: &str) -> Result<Comp, IrmError> {
    Comp::parse(s).ok_or_else(|| IrmError::BadParam {
        key: "component".into(),
        value: s.into(),
        why: "use dt or mgmt".into(),
    })
}

/// The IPCP before and after it joins a layer.
pub struct UnicastIpcp {
    name: String,
    run: Mutex<Option<Arc<Uni>>>,
    /// Held while bootstrapping or enrolling, so two attempts cannot race.
    joining: Mutex<()>,
}

impl UnicastIpcp {
    pub fn new(name: &str) -> UnicastIpcp {
        UnicastIpcp {
            name: name.to_string(),
            run: Mutex::new(None),
            joining: Mutex::new(()),
        }
    }

    fn answer(&self, req: IpcpReq, rpc: &Arc<Rpc>) -> Result<IpcpResp, IrmError> {
        if let Some(uni) = lock(&self.run).clone() {
            return uni.answer(req);
        }
        match req {
            IpcpReq::Bootstrap { layer, params } => {
                let _j = lock(&self.joining);
                if let Some(u) = lock(&self.run).as_ref() {
                    return Err(IrmError::AlreadyBootstrapped {
                        name: self.name.clone(),
                        layer: u.layer.name.clone(),
                    });
                }
                let l = Layer::from_params(&layer, &params)?;
                let uni = Uni::start(&self.name, l, rpc, None, DEFAULT_MTU)?;
                let answer = uni.bootstrapped();
                *lock(&self.run) = Some(uni);
                Ok(answer)
            }
            IpcpReq::Enroll { dst } => {
                let _j = lock(&self.joining);
                if let Some(u) = lock(&self.run).as_ref() {
                    return Err(IrmError::AlreadyBootstrapped {
                        name: self.name.clone(),
                        layer: u.layer.name.clone(),
                    });
                }
                info!("Enrolling through {dst}.");
                let e = enroll::request(&dst).map_err(|why| IrmError::IpcpFailed {
                    name: self.name.clone(),
                    why: format!("enrollment through {dst} failed: {why}"),
                })?;
                let mtu = e
                    .lower_mtu
                    .saturating_sub(e.layer.dt_params().header_len())
                    .min(DEFAULT_MTU);
                let started = Uni::start(&self.name, e.layer.clone(), rpc, Some(e.member), mtu);
                enroll::acknowledge(e, started.is_ok());
                let uni = started?;
                info!("Enrolled in layer {} through {dst}.", uni.layer.name);
                let answer = uni.bootstrapped();
                *lock(&self.run) = Some(uni);
                Ok(answer)
            }
            IpcpReq::Show => Ok(IpcpResp::Show(vec![(
                "state".into(),
                "not in a layer".into(),
            )])),
            _ => Err(IrmError::NotBootstrapped {
                name: self.name.clone(),
            }),
        }
    }
}

/// Answer the IRMd's flow allocation `id` once its outcome is known.
fn reply_alloc(rpc: &Arc<Rpc>, id: u64) -> impl FnOnce(Result<(), IrmError>) + Send + 'static {
    let rpc = rpc.clone();
    move |r| {
        let answer = r.map_or_else(IpcpResp::Err, |()| IpcpResp::Ok);
        if let Err(e) = rpc.reply(id, answer, &[]) {
            warn!("cannot answer the IRMd: {e}");
        }
    }
}

impl IpcpLogic for UnicastIpcp {
    fn handle(&self, rpc: &Arc<Rpc>, id: u64, req: IpcpReq, fds: Vec<OwnedFd>) {
        if let IpcpReq::FlowAlloc {
            flow_id,
            hash,
            qos,
            set,
        } = &req
        {
            if let Some(uni) = lock(&self.run).clone() {
                // The name may need a directory lookup (this thread may wait for it); the
                // answer goes out when the far side replies.
                uni.flow_alloc(*flow_id, hash, *qos, (*set, fds), reply_alloc(rpc, id));
                return;
            }
        }
        drop(fds);
        let answer = self.answer(req, rpc).unwrap_or_else(IpcpResp::Err);
        if let Err(e) = rpc.reply(id, answer, &[]) {
            warn!("cannot answer the IRMd: {e}");
        }
    }

    /// A flow allocation to a name whose place is known, and a query about one, are
    /// answered from the control connection's reader (no lookup to wait for).
    fn quick(
        &self,
        rpc: &Arc<Rpc>,
        req: crate::runtime::Request,
    ) -> Option<crate::runtime::Request> {
        let Some(uni) = lock(&self.run).clone() else {
            return Some(req);
        };
        let (id, body, fds) = req;
        match &body {
            IpcpReq::FlowAlloc {
                flow_id,
                hash,
                qos,
                set,
            } => match uni.resolve_known(hash) {
                Some(addrs) => {
                    let end = (*set, fds);
                    uni.flow_alloc_to(&addrs, *flow_id, hash, *qos, end, reply_alloc(rpc, id));
                    None
                }
                None => Some((id, body, fds)),
            },
            IpcpReq::Query { hash } => match uni.resolve_known(hash) {
                Some(addrs) => {
                    if let Err(e) = rpc.reply(id, IpcpResp::Bool(!addrs.is_empty()), &[]) {
                        warn!("cannot answer the IRMd: {e}");
                    }
                    None
                }
                None => Some((id, body, fds)),
            },
            _ => Some((id, body, fds)),
        }
    }
}
