//! What the Ethernet and UDP IPCPs share: names registered here, endpoint ids, flow
//! allocation with the prototype's request/reply exchange on the management endpoint, and
//! delivery of what arrives to the right flow. A [`Medium`] supplies the rest: how to find
//! a name, how to send a management message, and which endpoint ids exist.

use crate::dataplane::{Dataplane, Egress, Handed};
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
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// An endpoint id of a shim layer (16 bits on eth-dix, a SAP on eth-llc, 32 bits on udp).
pub type Eid = u32;

/// How long a flow request waits for the far side's reply (which may first have to start
/// its server program).
pub const REPLY_WAIT: Duration = Duration::from_secs(12);

/// An unanswered flow request is sent again after this, then after twice as long, up to
/// [`RESEND_MAX`] apart, until [`REPLY_WAIT`]: a lost request or reply (the medium may
/// lose either) costs a resend, not the allocation.
const RESEND_FIRST: Duration = Duration::from_millis(250);
const RESEND_MAX: Duration = Duration::from_secs(2);

/// Most flow requests remembered to recognise resends of (see [`Shim::seen_request`]).
const SEEN_MAX: usize = 1024;

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
    /// The IPCP stops: wake whatever waits on the medium (a receiver, a name query), so it
    /// sees [`Dataplane::is_stopped`] soon.
    fn stop(&self) {}
}

struct Pending<A> {
    addr: A,
    reply: SyncSender<(i32, Eid)>,
}

/// A flow request this side is answering or answered: a resend of it gets the same answer
/// instead of a second flow.
struct Seen<A> {
    from: A,
    requester: Eid,
    hash: NameHash,
    /// When it came, or when it was answered.
    at: Instant,
    reply: Option<ShimMsg>,
}

/// What to do with a flow request (see [`Shim::seen_request`]).
enum Request {
    New,
    /// Being answered: the answer goes to the first.
    Busy,
    /// Answered, and the answer did not arrive: send it again.
    Resend(ShimMsg),
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
    seen: Mutex<Vec<Seen<M::Addr>>>,
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
            seen: Mutex::new(Vec::new()),
            dp,
            rpc: rpc.clone(),
            bad: AtomicU64::new(0),
        }))
    }

    /// Stop (see [`IpcpLogic::stop`]): the data path's threads end, the flows are dropped,
    /// flow allocations waiting for a reply give up, and the receiving thread, woken by the
    /// medium, ends and lets go of the last reference to the medium's socket.
    pub fn stop(&self) {
        self.dp.stop();
        // Dropping the reply channels wakes the allocations waiting on them.
        lock(&self.pending).clear();
        self.medium.stop();
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
            IpcpReq::FlowAlloc {
                flow_id,
                hash,
                qos,
                set,
            } => {
                self.flow_alloc(flow_id, &hash, qos, (set, fds))?;
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
        fds: Handed,
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
        let end = Instant::now() + REPLY_WAIT;
        let mut resend = RESEND_FIRST;
        let reply = loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break None;
            }
            match rx.recv_timeout(resend.min(left)) {
                Ok(r) => break Some(r),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if end > Instant::now() {
                        debug!(
                            flow = flow_id,
                            "no answer from {addr} yet: flow request sent again"
                        );
                        self.medium.send_mgmt(&addr, &req);
                    }
                    resend = (resend * 2).min(RESEND_MAX);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break None,
            }
        };
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
        if self.dp.is_stopped() {
            return;
        }
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
                match self.seen_request(from, requester, &hash) {
                    Request::New => {}
                    Request::Busy => return,
                    Request::Resend(reply) => return self.medium.send_mgmt(&from, &reply),
                }
                // Weak: waiting for the IRMd must not keep a stopped IPCP alive.
                let me = Arc::downgrade(self);
                let spawned = std::thread::Builder::new()
                    .name("flow-req".into())
                    .spawn(move || Self::flow_req(&me, requester, qos, hash, from));
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
    fn flow_req(me: &Weak<Self>, requester: Eid, qos: QosSpec, hash: NameHash, from: M::Addr) {
        // Weak while the IRMd is asked: the wait must not keep a stopped IPCP alive.
        let Some(shim) = me.upgrade() else { return };
        let rpc = shim.rpc.clone();
        let known = lock(&shim.registered).contains(&hash);
        drop(shim);
        let accepted = if known {
            crate::dataplane::ask_acceptor(&rpc, hash.clone(), qos, &from, REPLY_WAIT)
        } else {
            debug!("flow request from {from} for a name not registered here");
            None
        };
        // Gone meanwhile (stopped): the flow closes with `accepted`, and no reply goes.
        let Some(shim) = me.upgrade() else { return };
        let responder =
            accepted.and_then(|(flow_id, fds)| shim.take_flow(flow_id, fds, requester, qos, from));
        let reply = ShimMsg::FlowReply {
            requester,
            responder: responder.unwrap_or(0),
            response: if responder.is_some() { 0 } else { -1 },
        };
        shim.answered(from, requester, &hash, &reply);
        shim.medium.send_mgmt(&from, &reply);
    }

    /// A flow request from `from`'s endpoint `requester` for `hash`: new, a resend of one
    /// being answered, or a resend of one accepted whose answer was lost. An accepted
    /// request counts as lost only while the flow it made lives and has had nothing from
    /// the requester: once it has, the requester has its answer, and a request with the same
    /// endpoint id is a new one (the requester reused the id for another flow).
    fn seen_request(&self, from: M::Addr, requester: Eid, hash: &NameHash) -> Request {
        let now = Instant::now();
        let mut seen = lock(&self.seen);
        // A requester resends for at most REPLY_WAIT, and the answer takes at most about as
        // long: what is older is no resend.
        seen.retain(|s| now.saturating_duration_since(s.at) < 2 * REPLY_WAIT);
        let i = seen
            .iter()
            .position(|s| s.from == from && s.requester == requester && s.hash == *hash);
        if let Some(i) = i {
            match &seen[i].reply {
                None => return Request::Busy,
                Some(r @ ShimMsg::FlowReply { responder, .. }) => {
                    let untouched = self.port_of(*responder, from).is_some_and(|p| {
                        p.rx_packets.load(std::sync::atomic::Ordering::Relaxed) == 0
                    });
                    if untouched {
                        return Request::Resend(r.clone());
                    }
                }
                Some(_) => {}
            }
            seen.swap_remove(i);
        }
        // Beyond the limit (a flood of requests) a resend may make a second flow, which
        // its acceptor then sees go down for silence.
        if seen.len() < SEEN_MAX {
            seen.push(Seen {
                from,
                requester,
                hash: hash.clone(),
                at: now,
                reply: None,
            });
        }
        Request::New
    }

    /// The answer to `from`'s request of `requester` for `hash`, for its resends. A refusal
    /// is not kept: the same request later is asked again (its server may have started
    /// meanwhile, and eth-llc reuses endpoint ids at once).
    fn answered(&self, from: M::Addr, requester: Eid, hash: &NameHash, reply: &ShimMsg) {
        let mut seen = lock(&self.seen);
        let Some(i) = seen
            .iter()
            .position(|s| s.from == from && s.requester == requester && s.hash == *hash)
        else {
            return;
        };
        if matches!(reply, ShimMsg::FlowReply { response: 0, .. }) {
            seen[i].at = Instant::now();
            seen[i].reply = Some(reply.clone());
        } else {
            seen.swap_remove(i);
        }
    }

    /// Take flow `flow_id` the IRMd accepted for a request of `from`'s endpoint `requester`;
    /// our endpoint id for it.
    fn take_flow(
        &self,
        flow_id: u64,
        fds: Handed,
        requester: Eid,
        qos: QosSpec,
        from: M::Addr,
    ) -> Option<Eid> {
        let eid = self
            .new_eid(flow_id)
            .map_err(|e| warn!("cannot take flow {flow_id}: {e}"))
            .ok()?;
        let peer = Peer {
            addr: from,
            eid: requester,
            local_eid: eid,
        };
        let timeout = Duration::from_millis(u64::from(qos.timeout));
        match self.dp.add(flow_id, fds, o7s_shm::Side::A, peer, timeout) {
            Ok(_) => Some(eid),
            Err(e) => {
                warn!("cannot take flow {flow_id}: {e}");
                lock(&self.eids).remove(&eid);
                None
            }
        }
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
    run: Mutex<State<B>>,
}

enum State<B: Bootstrap> {
    New,
    Running(Running<B>),
    /// [`IpcpLogic::stop`] was called: every request is refused.
    Stopped,
}

impl<B: Bootstrap> ShimIpcp<B> {
    pub fn new(name: &str, boot: B) -> Self {
        ShimIpcp {
            name: name.to_string(),
            boot,
            run: Mutex::new(State::New),
        }
    }

    fn answer(
        &self,
        req: IpcpReq,
        fds: Vec<OwnedFd>,
        rpc: &Arc<Rpc>,
    ) -> Result<IpcpResp, IrmError> {
        let shim = match &*lock(&self.run) {
            State::Running(r) => Some(r.clone()),
            State::New => None,
            State::Stopped => return Err(self.stopped()),
        };
        if let IpcpReq::Bootstrap { layer, params } = req {
            if let Some(r) = shim {
                return Err(self.already(&r));
            }
            let (shim, answer) = self.boot.bootstrap(&self.name, layer, params, rpc)?;
            // Stopped or bootstrapped by another request meanwhile: this one goes again.
            let mut run = lock(&self.run);
            let err = match &*run {
                State::New => {
                    *run = State::Running(shim);
                    return Ok(answer);
                }
                State::Running(r) => self.already(r),
                State::Stopped => self.stopped(),
            };
            drop(run);
            shim.stop();
            return Err(err);
        }
        let shim = shim.ok_or_else(|| IrmError::NotBootstrapped {
            name: self.name.clone(),
        })?;
        shim.answer(req, fds)
    }

    /// The running IPCP, if bootstrapped and not stopped.
    #[cfg(test)]
    pub fn running(&self) -> Option<Running<B>> {
        match &*lock(&self.run) {
            State::Running(r) => Some(r.clone()),
            _ => None,
        }
    }

    fn already(&self, r: &Running<B>) -> IrmError {
        IrmError::AlreadyBootstrapped {
            name: self.name.clone(),
            layer: r.layer.clone(),
        }
    }

    fn stopped(&self) -> IrmError {
        IrmError::IpcpFailed {
            name: self.name.clone(),
            why: "it is being destroyed".into(),
        }
    }
}

impl<B: Bootstrap> IpcpLogic for ShimIpcp<B> {
    fn handle(&self, rpc: &Arc<Rpc>, id: u64, req: IpcpReq, fds: Vec<OwnedFd>) {
        let answer = self.answer(req, fds, rpc).unwrap_or_else(IpcpResp::Err);
        if let Err(e) = rpc.reply(id, answer, &[]) {
            warn!("cannot answer the IRMd: {e}");
        }
    }

    fn stop(&self) {
        let was = std::mem::replace(&mut *lock(&self.run), State::Stopped);
        if let State::Running(shim) = was {
            shim.stop();
        }
    }
}

/// What the tests of the shim IPCPs share.
#[cfg(test)]
pub mod testkit {
    use super::{Bootstrap, ShimIpcp};
    use crate::IpcpLogic;
    use o7s::ctrl::msg::{IpcpNote, IpcpReq, IpcpResp};
    use o7s::ctrl::rpc::{Inbound, Rpc};
    use o7s_shm::{Endpoint, Side};
    use rustix::fd::AsFd;
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    /// The IRMd's and the IPCP's ends of a control connection, the IPCP's serving `ipcp`
    /// as the runtime does. The IRMd accepts every flow request: the application's end of
    /// each flow comes out of the channel.
    pub fn connect<B: Bootstrap>(ipcp: &Arc<ShimIpcp<B>>) -> (Arc<Rpc>, mpsc::Receiver<Endpoint>) {
        let (a, b) = o7s::ctrl::wire::pair().expect("socketpair");
        let logic = ipcp.clone();
        Rpc::start(b, move |rpc, inb| {
            if let Inbound::Req { id, body, fds } = inb {
                logic.handle(rpc, id, body, fds);
            }
        })
        .expect("ipcp side");
        let (tx, rx) = mpsc::channel();
        let irmd = Rpc::start(a, move |rpc, inb| {
            if let Inbound::Note {
                id,
                body: IpcpNote::FlowReqArr { .. },
                ..
            } = inb
            {
                let mem = o7s_shm::create_flow_mem(&Default::default()).expect("memfd");
                let (la, lb) = o7s_shm::liveness_pair().expect("liveness");
                let ea = o7s_shm::new_eventfd().expect("eventfd");
                let eb = o7s_shm::new_eventfd().expect("eventfd");
                let dup = |fd: &rustix::fd::OwnedFd| fd.try_clone().expect("dup");
                let app = Endpoint::new(dup(&mem), Side::B, dup(&eb), dup(&ea), lb).expect("app");
                let fds = [mem.as_fd(), ea.as_fd(), eb.as_fd(), la.as_fd()];
                let accepted = IpcpResp::FlowAccepted { flow_id: 7, set: 0 };
                rpc.reply(id, accepted, &fds).expect("reply");
                let _ = tx.send(app);
            }
        })
        .expect("irmd side");
        (irmd, rx)
    }

    pub fn request(irmd: &Rpc, req: IpcpReq) -> IpcpResp {
        let wait = Some(Duration::from_secs(5));
        irmd.request(req, &[], wait).expect("answer").0
    }

    pub fn until(what: &str, ok: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(2);
        while !ok() {
            assert!(Instant::now() < end, "not within 2 s: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
