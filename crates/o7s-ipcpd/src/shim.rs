//! What the Ethernet and UDP IPCPs share: names registered here, endpoint ids, flow
//! allocation with the prototype's request/reply exchange on the management endpoint, and
//! delivery of what arrives to the right flow. A [`Medium`] supplies the rest: how to find
//! a name, how to send a management message, and which endpoint ids exist.

use crate::dataplane::{Dataplane, Egress};
use crate::IpcpLogic;
use o7s::ctrl::msg::{IpcpNote, IpcpReq, IpcpResp, IrmError};
use o7s::ctrl::rpc::Rpc;
use o7s_proto::{HashAlgo, NameHash, QosSpec};
use rustix::fd::OwnedFd;
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{debug, info, warn};

/// An endpoint id of a shim layer (16 bits on eth-dix, a SAP on eth-llc, 32 bits on udp).
pub type Eid = u32;

/// How long a flow request waits for the far side's reply (which may first have to start
/// its server program).
pub const REPLY_WAIT: Duration = Duration::from_secs(12);

/// A management message of a shim layer, by role (each medium has its own wire layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShimMsg {
    FlowReq {
        requester: Eid,
        qos: QosSpec,
        hash: NameHash,
    },
    FlowReply {
        requester: Eid,
        responder: Eid,
        response: i32,
    },
    QueryReq {
        hash: NameHash,
    },
    QueryReply {
        hash: NameHash,
    },
}

/// Where a flow's packets go.
#[derive(Clone, Debug)]
pub struct Peer<A> {
    pub addr: A,
    /// The far side's endpoint id.
    pub eid: Eid,
    /// Ours.
    pub local_eid: Eid,
}

/// What differs between the shim layers.
pub trait Medium: Send + Sync + 'static {
    type Addr: Copy + PartialEq + Debug + std::fmt::Display + Send + Sync + 'static;
    /// Where `hash` is registered (may wait for a query to be answered); `None` if nobody
    /// has it, an error if the directory could not be asked.
    fn resolve(&self, hash: &NameHash) -> Result<Option<Self::Addr>, IrmError>;
    /// `name` was registered here: publish it where the medium has a directory to publish
    /// to. An error undoes the registration.
    fn reg(&self, _name: &str, _hash: &NameHash) -> Result<(), IrmError> {
        Ok(())
    }
    /// A name was unregistered here: withdraw what [`Medium::reg`] published.
    fn unreg(&self, _hash: &NameHash) {}
    /// A name query was answered by `from`.
    fn learned(&self, _hash: NameHash, _from: Self::Addr) {}
    fn send_mgmt(&self, to: &Self::Addr, m: &ShimMsg);
    /// The endpoint ids flows may use.
    fn eids(&self) -> RangeInclusive<Eid>;
    /// Labelled values for `irm ipcp show`.
    fn show(&self) -> Vec<(String, String)>;
}

struct Pending<A> {
    addr: A,
    reply: SyncSender<(i32, Eid)>,
}

/// A bootstrapped shim IPCP.
pub struct Shim<M: Medium, E: Egress<Peer = Peer<M::Addr>>> {
    pub medium: M,
    pub layer: String,
    pub hash: HashAlgo,
    registered: Mutex<HashSet<NameHash>>,
    /// Our endpoint ids and their flows (shared with the egress, which forgets closed ones).
    eids: Arc<Mutex<HashMap<Eid, u64>>>,
    pending: Mutex<HashMap<Eid, Pending<M::Addr>>>,
    pub dp: Arc<Dataplane<E>>,
    rpc: Arc<Rpc>,
    /// Frames or datagrams dropped: malformed, for unknown endpoints, from strangers.
    bad: AtomicU64,
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<M: Medium, E: Egress<Peer = Peer<M::Addr>>> Shim<M, E> {
    /// `eids` is the map the egress also holds.
    pub fn new(
        medium: M,
        layer: String,
        hash: HashAlgo,
        egress: Arc<E>,
        eids: Arc<Mutex<HashMap<Eid, u64>>>,
        rpc: &Arc<Rpc>,
    ) -> Result<Arc<Self>, IrmError> {
        let dp = Dataplane::new(egress).map_err(|e| IrmError::Internal(e.to_string()))?;
        // Tell the IRMd about flows whose peer fell silent, off the data path's threads.
        let weak = Arc::downgrade(rpc);
        dp.on_timeout(move |flow_id| {
            let Some(rpc) = weak.upgrade() else { return };
            let _ = std::thread::Builder::new()
                .name("flow-down".into())
                .spawn(move || {
                    let note = IpcpNote::FlowDown { flow_id };
                    if let Err(e) = rpc.notify(note, &[], Some(Duration::from_secs(5))) {
                        debug!(flow = flow_id, "cannot tell the IRMd: {e}");
                    }
                });
        });
        Ok(Arc::new(Shim {
            medium,
            layer,
            hash,
            registered: Mutex::new(HashSet::new()),
            eids,
            pending: Mutex::new(HashMap::new()),
            dp,
            rpc: rpc.clone(),
            bad: AtomicU64::new(0),
        }))
    }

    /// Count a dropped frame or datagram.
    pub fn drop_bad(&self) {
        self.bad.fetch_add(1, Ordering::Relaxed);
    }

    /// Answer the IRMd's requests once bootstrapped.
    pub fn answer(&self, req: IpcpReq, fds: Vec<OwnedFd>) -> Result<IpcpResp, IrmError> {
        match req {
            IpcpReq::Bootstrap { .. } => Err(IrmError::Internal("bootstrap twice".into())),
            IpcpReq::Reg { name, hash } => {
                // Registered before it is published, so a flow request that follows the
                // publication at once finds it.
                let new = lock(&self.registered).insert(hash.clone());
                if let Err(e) = self.medium.reg(&name, &hash) {
                    if new {
                        lock(&self.registered).remove(&hash);
                    }
                    return Err(e);
                }
                info!("Registered {name}.");
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Unreg { hash } => {
                lock(&self.registered).remove(&hash);
                self.medium.unreg(&hash);
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Query { hash } => Ok(IpcpResp::Bool(self.medium.resolve(&hash)?.is_some())),
            IpcpReq::FlowAlloc { flow_id, hash, qos } => {
                self.flow_alloc(flow_id, &hash, qos, fds)?;
                Ok(IpcpResp::Ok)
            }
            IpcpReq::FlowDealloc { flow_id } => {
                self.dp.remove(flow_id);
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Enroll { .. }
            | IpcpReq::Connect { .. }
            | IpcpReq::Disconnect { .. }
            | IpcpReq::FlowJoin { .. } => Err(req
                .not_for("shim")
                .unwrap_or_else(|| IrmError::Internal("unexpected request".into()))),
            IpcpReq::Show => {
                let mut v = vec![("layer".to_string(), self.layer.clone())];
                v.extend(self.medium.show());
                v.push(("flows".into(), self.dp.len().to_string()));
                v.push((
                    "dropped packets".into(),
                    self.bad.load(Ordering::Relaxed).to_string(),
                ));
                Ok(IpcpResp::Show(v))
            }
        }
    }

    /// A free endpoint id: random in a large space, the lowest free in a small one (SAPs).
    fn new_eid(&self, flow_id: u64) -> Result<Eid, IrmError> {
        let range = self.medium.eids();
        let mut eids = lock(&self.eids);
        let pending = lock(&self.pending);
        let free = |e: &Eid| !eids.contains_key(e) && !pending.contains_key(e);
        let size = u64::from(range.end() - range.start()) + 1;
        let found = if size > 1024 {
            std::iter::repeat_with(|| rand::random_range(range.clone()))
                .take(4096)
                .find(free)
        } else {
            range.clone().find(free)
        };
        drop(pending);
        let e = found.ok_or_else(|| IrmError::IpcpFailed {
            name: format!("layer {}", self.layer),
            why: format!("all {size} endpoint ids are in use"),
        })?;
        eids.insert(e, flow_id);
        Ok(e)
    }

    fn flow_alloc(
        &self,
        flow_id: u64,
        hash: &NameHash,
        qos: QosSpec,
        fds: Vec<OwnedFd>,
    ) -> Result<(), IrmError> {
        let addr = self
            .medium
            .resolve(hash)?
            .ok_or_else(|| IrmError::NameNotFound {
                name: hash.to_string(),
            })?;
        let eid = self.new_eid(flow_id)?;
        let (tx, rx) = sync_channel(1);
        lock(&self.pending).insert(eid, Pending { addr, reply: tx });
        let req = ShimMsg::FlowReq {
            requester: eid,
            qos,
            hash: hash.clone(),
        };
        self.medium.send_mgmt(&addr, &req);
        let reply = rx.recv_timeout(REPLY_WAIT).ok();
        lock(&self.pending).remove(&eid);
        let fail = |why: String| {
            lock(&self.eids).remove(&eid);
            IrmError::IpcpFailed {
                name: format!("layer {}", self.layer),
                why,
            }
        };
        match reply {
            None => Err(fail(format!("no answer from {addr} to the flow request"))),
            Some((0, d_eid)) => {
                let peer = Peer {
                    addr,
                    eid: d_eid,
                    local_eid: eid,
                };
                let timeout = Duration::from_millis(u64::from(qos.timeout));
                self.dp
                    .add(flow_id, fds, o7s_shm::Side::B, peer, timeout)
                    .map_err(&fail)?;
                debug!(flow = flow_id, "flow on eids ({eid}, {d_eid}) with {addr}");
                Ok(())
            }
            Some((code, _)) => Err(fail(format!("{addr} refused the flow (response {code})"))),
        }
    }

    /// A packet for our endpoint `eid` from `from`: only the flow's stored peer may send.
    /// The flow it went to, if any.
    pub fn deliver_to(&self, eid: Eid, from: M::Addr, payload: &[u8]) -> Option<Arc<PortOf<M>>> {
        match self.port_of(eid, from) {
            Some(p) => {
                self.dp.deliver(&p, payload);
                Some(p)
            }
            None => {
                self.drop_bad();
                None
            }
        }
    }

    /// The flow of our endpoint `eid`, if `from` is its peer (the only one who may send on
    /// it).
    pub fn port_of(&self, eid: Eid, from: M::Addr) -> Option<Arc<PortOf<M>>> {
        let flow = lock(&self.eids).get(&eid).copied()?;
        self.dp.get(flow).filter(|p| p.peer.addr == from)
    }

    /// A management message from `from`.
    pub fn mgmt(self: &Arc<Self>, m: ShimMsg, from: M::Addr) {
        match m {
            ShimMsg::QueryReq { hash } => {
                if lock(&self.registered).contains(&hash) {
                    self.medium.send_mgmt(&from, &ShimMsg::QueryReply { hash });
                }
            }
            ShimMsg::QueryReply { hash } => self.medium.learned(hash, from),
            ShimMsg::FlowReq {
                requester,
                qos,
                hash,
            } => {
                let me = self.clone();
                let spawned = std::thread::Builder::new()
                    .name("flow-req".into())
                    .spawn(move || me.flow_req(requester, qos, hash, from));
                if let Err(e) = spawned {
                    warn!("cannot handle a flow request: {e}");
                }
            }
            ShimMsg::FlowReply {
                requester,
                responder,
                response,
            } => {
                let pending = lock(&self.pending).remove(&requester);
                match pending {
                    // A reply only counts from the node we asked.
                    Some(p) if p.addr == from => {
                        let _ = p.reply.send((response, responder));
                    }
                    Some(p) => {
                        lock(&self.pending).insert(requester, p);
                        self.drop_bad();
                    }
                    None => self.drop_bad(),
                }
            }
        }
    }

    /// A flow request from `from`: ask the IRMd for an acceptor, then answer. A request for
    /// a name not registered here is refused at once (the prototype stays silent).
    fn flow_req(&self, requester: Eid, qos: QosSpec, hash: NameHash, from: M::Addr) {
        let mut response = -1;
        let mut responder = 0;
        if lock(&self.registered).contains(&hash) {
            if let Some((flow_id, fds)) =
                crate::dataplane::ask_acceptor(&self.rpc, hash, qos, &from, REPLY_WAIT)
            {
                match self.new_eid(flow_id) {
                    Ok(eid) => {
                        let peer = Peer {
                            addr: from,
                            eid: requester,
                            local_eid: eid,
                        };
                        let timeout = Duration::from_millis(u64::from(qos.timeout));
                        match self.dp.add(flow_id, fds, o7s_shm::Side::A, peer, timeout) {
                            Ok(_) => {
                                responder = eid;
                                response = 0;
                            }
                            Err(e) => {
                                warn!("cannot take flow {flow_id}: {e}");
                                lock(&self.eids).remove(&eid);
                            }
                        }
                    }
                    Err(e) => warn!("cannot take flow {flow_id}: {e}"),
                }
            }
        } else {
            debug!("flow request from {from} for a name not registered here");
        }
        let reply = ShimMsg::FlowReply {
            requester,
            responder,
            response,
        };
        self.medium.send_mgmt(&from, &reply);
    }
}

/// The IPCP's end of a flow of a shim layer over medium `M`.
pub type PortOf<M> = crate::dataplane::Port<Peer<<M as Medium>::Addr>>;

/// A running shim IPCP of bootstrap `B`.
pub type Running<B> = Arc<Shim<<B as Bootstrap>::M, <B as Bootstrap>::E>>;

/// Brings a shim IPCP up from its bootstrap parameters.
pub trait Bootstrap: Send + Sync + 'static {
    type M: Medium;
    type E: Egress<Peer = Peer<<Self::M as Medium>::Addr>>;
    /// Open the medium and start receiving; returns the running IPCP and the IRMd's answer.
    fn bootstrap(
        &self,
        name: &str,
        layer: String,
        params: Vec<(String, String)>,
        rpc: &Arc<Rpc>,
    ) -> Result<(Running<Self>, IpcpResp), IrmError>
    where
        Self: Sized;
}

/// A shim IPCP: its bootstrap, then the shared core.
pub struct ShimIpcp<B: Bootstrap> {
    name: String,
    boot: B,
    run: Mutex<Option<Running<B>>>,
}

impl<B: Bootstrap> ShimIpcp<B> {
    pub fn new(name: &str, boot: B) -> Self {
        ShimIpcp {
            name: name.to_string(),
            boot,
            run: Mutex::new(None),
        }
    }

    fn answer(
        &self,
        req: IpcpReq,
        fds: Vec<OwnedFd>,
        rpc: &Arc<Rpc>,
    ) -> Result<IpcpResp, IrmError> {
        if let IpcpReq::Bootstrap { layer, params } = req {
            if let Some(r) = lock(&self.run).as_ref() {
                return Err(IrmError::AlreadyBootstrapped {
                    name: self.name.clone(),
                    layer: r.layer.clone(),
                });
            }
            let (shim, answer) = self.boot.bootstrap(&self.name, layer, params, rpc)?;
            *lock(&self.run) = Some(shim);
            return Ok(answer);
        }
        let shim = lock(&self.run)
            .clone()
            .ok_or_else(|| IrmError::NotBootstrapped {
                name: self.name.clone(),
            })?;
        shim.answer(req, fds)
    }
}

impl<B: Bootstrap> IpcpLogic for ShimIpcp<B> {
    fn handle(&self, rpc: &Arc<Rpc>, id: u64, req: IpcpReq, fds: Vec<OwnedFd>) {
        let answer = self.answer(req, fds, rpc).unwrap_or_else(IpcpResp::Err);
        if let Err(e) = rpc.reply(id, answer, &[]) {
            warn!("cannot answer the IRMd: {e}");
        }
    }
}
