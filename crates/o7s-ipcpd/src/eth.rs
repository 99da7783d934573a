//! The eth-dix and eth-llc IPCPs: a layer over raw Ethernet frames on one interface. Names
//! are found by a broadcast name query answered by the node where the name is registered;
//! flows are set up with the prototype's flow request and reply on the management endpoint.
//! The two differ only in their [`Framing`].

use crate::dataplane::{Dataplane, Egress};
use crate::IpcpLogic;
use eth_mgmt::{Code, Framing, Mgmt, BROADCAST};
pub use eth_mgmt::{Dix, Llc};
use o7s::ctrl::msg::{IpcpNote, IpcpReq, IpcpResp, IrmError};
use o7s::ctrl::rpc::Rpc;
use o7s_proto::{HashAlgo, NameHash, QosSpec};
use rustix::fd::OwnedFd;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

#[path = "eth/mgmt.rs"]
mod eth_mgmt;

/// Receive buffer of the raw socket.
const RCVBUF: usize = 8 << 20;
/// How long a name query waits for an answer.
const QUERY_WAIT: Duration = Duration::from_secs(2);
/// How long a flow request waits for the far side's reply.
const REPLY_WAIT: Duration = Duration::from_secs(12);

type Mac = [u8; 6];

#[derive(Clone, Debug)]
pub struct EthPeer {
    mac: Mac,
    eid: u16,
    local_eid: u16,
}

struct EthEgress<F: Framing> {
    sock: OwnedFd,
    /// Frames of the egress thread, sent with one system call per batch.
    batch: Mutex<o7s_shm::SendBatch>,
    mac: Mac,
    framing: F,
    eids: Arc<Mutex<HashMap<u16, u64>>>,
}

impl<F: Framing> EthEgress<F> {
    fn send_frame(&self, dst: &Mac, local: u16, remote: u16, payload: &[u8]) {
        let mut f = vec![0u8; F::HDR + payload.len()];
        let len = payload.len() as u16;
        self.framing
            .write_header(&mut f, dst, &self.mac, local, remote, len);
        f[F::HDR..].copy_from_slice(payload);
        if let Err(e) = rustix::net::send(&self.sock, &f, rustix::net::SendFlags::empty()) {
            debug!("send frame: {e}");
        }
    }
}

impl<F: Framing> Egress for EthEgress<F> {
    type Peer = EthPeer;

    fn send(&self, peer: &EthPeer, buf: &mut [u8], off: usize) {
        let payload = &buf[off..];
        let Ok(len16) = u16::try_from(payload.len()) else {
            return;
        };
        let mut batch = lock(&self.batch);
        if batch.is_full() {
            batch.flush(&self.sock);
        }
        batch.push(|slot| {
            let n = F::HDR + payload.len();
            if n > slot.len() {
                return 0;
            }
            self.framing.write_header(
                &mut slot[..F::HDR],
                &peer.mac,
                &self.mac,
                peer.local_eid,
                peer.eid,
                len16,
            );
            slot[F::HDR..n].copy_from_slice(payload);
            n
        });
    }

    fn flush(&self) {
        let mut batch = lock(&self.batch);
        if !batch.is_empty() {
            batch.flush(&self.sock);
        }
    }

    fn closed(&self, _flow_id: u64, peer: &EthPeer) {
        lock(&self.eids).remove(&peer.local_eid);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Pending {
    mac: Mac,
    reply: SyncSender<(i32, u16)>,
}

struct Running<F: Framing> {
    layer: String,
    dev: String,
    hash: HashAlgo,
    mac: Mac,
    dir: Mutex<HashMap<NameHash, Mac>>,
    dir_changed: Condvar,
    registered: Mutex<HashSet<NameHash>>,
    dp: Arc<Dataplane<EthEgress<F>>>,
    egress: Arc<EthEgress<F>>,
    rx: OwnedFd,
    eids: Arc<Mutex<HashMap<u16, u64>>>,
    pending: Mutex<HashMap<u16, Pending>>,
    rpc: Arc<Rpc>,
    bad: AtomicU64,
}

pub struct Eth<F: Framing> {
    name: String,
    run: Mutex<Option<Arc<Running<F>>>>,
}

fn bad(key: &str, value: &str, why: impl Into<String>) -> IrmError {
    IrmError::BadParam {
        key: key.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

fn parse_ethertype(v: &str) -> Option<u16> {
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u16::from_str_radix(h, 16).ok()?,
        // The prototype's irm reads a bare ethertype as hex too.
        None => u16::from_str_radix(v, 16).ok()?,
    };
    (0x0600..=0xFFFE).contains(&n).then_some(n)
}

impl<F: Framing> Eth<F> {
    pub fn new(name: &str) -> Eth<F> {
        Eth {
            name: name.to_string(),
            run: Mutex::new(None),
        }
    }

    fn running(&self) -> Result<Arc<Running<F>>, IrmError> {
        lock(&self.run)
            .clone()
            .ok_or_else(|| IrmError::NotBootstrapped {
                name: self.name.clone(),
            })
    }

    fn bootstrap(
        &self,
        layer: String,
        params: Vec<(String, String)>,
        rpc: &Arc<Rpc>,
    ) -> Result<IpcpResp, IrmError> {
        if let Some(r) = lock(&self.run).as_ref() {
            return Err(IrmError::AlreadyBootstrapped {
                name: self.name.clone(),
                layer: r.layer.clone(),
            });
        }
        let (mut dev, mut ethertype, mut hash) = (None, None, HashAlgo::default());
        for (k, v) in params {
            match k.as_str() {
                "dev" => dev = Some(v),
                "ethertype" => {
                    ethertype = Some(
                        parse_ethertype(&v)
                            .ok_or_else(|| bad(&k, &v, "an ethertype is 0x0600-0xFFFE"))?,
                    )
                }
                "hash" => {
                    hash = v
                        .parse()
                        .map_err(|e: o7s_proto::hash::UnknownHash| bad(&k, &v, e.to_string()))?
                }
                _ => {
                    return Err(bad(
                        &k,
                        &v,
                        format!("{} layers take dev, ethertype (eth-dix), hash", F::KIND),
                    ))
                }
            }
        }
        let framing = F::configure(ethertype).map_err(|why| bad("ethertype", "", why))?;
        let dev = dev.ok_or_else(|| bad("dev", "", "missing: bootstrap needs dev IFACE"))?;
        let (mac, if_mtu) =
            o7s_shm::link_info(&dev).map_err(|e| bad("dev", &dev, e.to_string()))?;
        let open = |what: &str| {
            o7s_shm::packet_socket(&dev, framing.proto())
                .map(|(fd, _)| fd)
                .map_err(|e| {
                    bad(
                        "dev",
                        &dev,
                        format!(
                            "cannot open a raw socket for {what} (root or CAP_NET_RAW needed): {e}"
                        ),
                    )
                })
        };
        let (tx, rx) = (open("sending")?, open("receiving")?);
        // A deep receive queue rides out bursts while the receive thread is descheduled
        // (the forced size needs CAP_NET_ADMIN; without it the system's maximum applies).
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&rx, RCVBUF).is_err() {
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&rx, RCVBUF);
        }
        let mtu = framing.mtu(if_mtu);
        let eids = Arc::new(Mutex::new(HashMap::new()));
        let egress = Arc::new(EthEgress {
            sock: tx,
            batch: Mutex::new(o7s_shm::SendBatch::new(32, F::HDR + mtu as usize)),
            mac,
            framing,
            eids: eids.clone(),
        });
        let dp = Dataplane::new(egress.clone()).map_err(|e| IrmError::Internal(e.to_string()))?;
        let run = Arc::new(Running {
            layer: layer.clone(),
            dev: dev.clone(),
            hash,
            mac,
            dir: Mutex::new(HashMap::new()),
            dir_changed: Condvar::new(),
            registered: Mutex::new(HashSet::new()),
            dp,
            egress,
            rx,
            eids,
            pending: Mutex::new(HashMap::new()),
            rpc: rpc.clone(),
            bad: AtomicU64::new(0),
        });
        let r = run.clone();
        std::thread::Builder::new()
            .name("eth-rx".into())
            .spawn(move || r.rx_loop())
            .map_err(|e| IrmError::Internal(e.to_string()))?;
        *lock(&self.run) = Some(run);
        info!(
            "Bootstrapped {} IPCP {} in layer {layer} on {dev} (MTU {mtu}).",
            F::KIND,
            self.name
        );
        Ok(IpcpResp::Bootstrapped { layer, hash, mtu })
    }

    fn answer(
        &self,
        req: IpcpReq,
        fds: Vec<OwnedFd>,
        rpc: &Arc<Rpc>,
    ) -> Result<IpcpResp, IrmError> {
        match req {
            IpcpReq::Bootstrap { layer, params } => self.bootstrap(layer, params, rpc),
            IpcpReq::Reg { name, hash } => {
                lock(&self.running()?.registered).insert(hash);
                info!("Registered {name}.");
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Unreg { hash } => {
                lock(&self.running()?.registered).remove(&hash);
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Query { hash } => Ok(IpcpResp::Bool(self.running()?.query(&hash).is_some())),
            IpcpReq::FlowAlloc { flow_id, hash, qos } => {
                self.running()?.flow_alloc(flow_id, &hash, qos, fds)?;
                Ok(IpcpResp::Ok)
            }
            IpcpReq::FlowDealloc { flow_id } => {
                if let Ok(r) = self.running() {
                    r.dp.remove(flow_id);
                }
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Show => {
                let r = self.running()?;
                let entries = lock(&r.dir).len();
                Ok(IpcpResp::Show(vec![
                    ("layer".into(), r.layer.clone()),
                    ("device".into(), r.dev.clone()),
                    ("flows".into(), r.dp.len().to_string()),
                    ("directory entries".into(), entries.to_string()),
                    (
                        "dropped frames".into(),
                        r.bad.load(Ordering::Relaxed).to_string(),
                    ),
                ]))
            }
        }
    }
}

impl<F: Framing> IpcpLogic for Eth<F> {
    fn handle(&self, rpc: &Arc<Rpc>, id: u64, req: IpcpReq, fds: Vec<OwnedFd>) {
        let answer = self.answer(req, fds, rpc).unwrap_or_else(IpcpResp::Err);
        if let Err(e) = rpc.reply(id, answer, &[]) {
            warn!("cannot answer the IRMd: {e}");
        }
    }
}

impl<F: Framing> Running<F> {
    fn send_mgmt(&self, to: &Mac, m: &Mgmt) {
        self.egress
            .send_frame(to, 0, 0, &self.egress.framing.encode(m));
    }

    /// Find the node where `hash` is registered: the cache, else a broadcast query.
    fn query(&self, hash: &NameHash) -> Option<Mac> {
        if let Some(m) = lock(&self.dir).get(hash) {
            return Some(*m);
        }
        let q = Mgmt {
            code: Code::QueryReq,
            s_eid: 0,
            d_eid: 0,
            response: 0,
            qos: QosSpec::RAW,
            hash: hash.as_bytes().to_vec(),
        };
        self.send_mgmt(&BROADCAST, &q);
        let end = Instant::now() + QUERY_WAIT;
        let mut dir = lock(&self.dir);
        loop {
            if let Some(m) = dir.get(hash) {
                return Some(*m);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            dir = self
                .dir_changed
                .wait_timeout(dir, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// A free endpoint id (a random one on eth-dix, the lowest free SAP on eth-llc).
    fn new_eid(&self, flow_id: u64) -> Result<u16, IrmError> {
        let range = self.egress.framing.eids();
        let mut eids = lock(&self.eids);
        let pending = lock(&self.pending);
        let free = |e: &u16| !eids.contains_key(e) && !pending.contains_key(e);
        let size = usize::from(range.end() - range.start()) + 1;
        let found = if size > 1024 {
            std::iter::repeat_with(|| rand::random_range(range.clone()))
                .take(4 * size)
                .find(free)
        } else {
            range.clone().find(free)
        };
        drop(pending);
        let e = found.ok_or_else(|| IrmError::IpcpFailed {
            name: format!("layer {}", self.layer),
            why: format!("all {size} endpoints of the interface are in use"),
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
        let mac = self.query(hash).ok_or_else(|| IrmError::NameNotFound {
            name: hash.to_string(),
        })?;
        let eid = self.new_eid(flow_id)?;
        let (tx, rx) = sync_channel(1);
        lock(&self.pending).insert(eid, Pending { mac, reply: tx });
        let req = Mgmt {
            code: Code::FlowReq,
            s_eid: eid,
            d_eid: 0,
            response: 0,
            qos,
            hash: hash.as_bytes().to_vec(),
        };
        self.send_mgmt(&mac, &req);
        let reply = rx.recv_timeout(REPLY_WAIT).ok();
        lock(&self.pending).remove(&eid);
        let who = fmt_mac(&mac);
        let fail = |why: String| {
            lock(&self.eids).remove(&eid);
            IrmError::IpcpFailed {
                name: format!("layer {}", self.layer),
                why,
            }
        };
        match reply {
            None => Err(fail(format!("no answer from {who} to the flow request"))),
            Some((0, d_eid)) => {
                let peer = EthPeer {
                    mac,
                    eid: d_eid,
                    local_eid: eid,
                };
                self.dp
                    .add(flow_id, fds, o7s_shm::Side::B, peer)
                    .map_err(&fail)?;
                debug!(flow = flow_id, "flow on eids ({eid}, {d_eid}) with {who}");
                Ok(())
            }
            Some((code, _)) => Err(fail(format!("{who} refused the flow (response {code})"))),
        }
    }

    fn rx_loop(self: Arc<Self>) {
        let mut batch = o7s_shm::RecvBatch::new(32, 65_536 + F::HDR);
        loop {
            let n = match batch.recv(&self.rx) {
                Ok(n) => n,
                Err(e) => {
                    debug!("recv: {e}");
                    continue;
                }
            };
            for i in 0..n {
                self.frame(batch.get(i));
            }
        }
    }

    fn frame(self: &Arc<Self>, buf: &[u8]) {
        let Some(f) = self.egress.framing.parse_frame(buf) else {
            self.bad.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if f.src == self.mac {
            return;
        }
        let payload = &buf[f.payload.0..f.payload.1];
        if f.eid == 0 {
            match self.egress.framing.parse(payload, self.hash.hash_len()) {
                Ok(m) => self.mgmt(m, f.src),
                Err(e) => {
                    debug!("bad management frame from {}: {e}", fmt_mac(&f.src));
                    self.bad.fetch_add(1, Ordering::Relaxed);
                }
            }
            return;
        }
        let flow = lock(&self.eids).get(&f.eid).copied();
        match flow.and_then(|id| self.dp.get(id)) {
            Some(p) if p.peer.mac == f.src => self.dp.deliver(&p, payload),
            _ => {
                self.bad.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn mgmt(self: &Arc<Self>, m: Mgmt, from: Mac) {
        match m.code {
            Code::QueryReq => {
                if lock(&self.registered).contains(&NameHash(m.hash.clone())) {
                    let r = Mgmt {
                        code: Code::QueryReply,
                        ..m
                    };
                    self.send_mgmt(&from, &r);
                }
            }
            Code::QueryReply => {
                lock(&self.dir).insert(NameHash(m.hash), from);
                self.dir_changed.notify_all();
            }
            Code::FlowReq => {
                let me = self.clone();
                let spawned = std::thread::Builder::new()
                    .name("eth-flow-req".into())
                    .spawn(move || me.flow_req(m, from));
                if let Err(e) = spawned {
                    warn!("cannot handle a flow request: {e}");
                }
            }
            Code::FlowReply => {
                // On Ethernet the reply carries the responder's eid as source and ours as
                // destination (the udp layers do it the other way round).
                let pending = lock(&self.pending).remove(&m.d_eid);
                match pending {
                    Some(p) if p.mac == from => {
                        let _ = p.reply.send((m.response, m.s_eid));
                    }
                    Some(p) => {
                        lock(&self.pending).insert(m.d_eid, p);
                        self.bad.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        self.bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    fn flow_req(&self, m: Mgmt, from: Mac) {
        let hash = NameHash(m.hash.clone());
        let mut reply = Mgmt {
            code: Code::FlowReply,
            s_eid: 0,
            d_eid: m.s_eid,
            response: -1,
            qos: QosSpec::RAW,
            hash: Vec::new(),
        };
        if lock(&self.registered).contains(&hash) {
            let note = IpcpNote::FlowReqArr {
                hash,
                qos: m.qos,
                local_peer: None,
            };
            match self.rpc.notify(note, &[], Some(REPLY_WAIT)) {
                Ok((IpcpResp::FlowAccepted { flow_id }, fds)) => {
                    let eid = match self.new_eid(flow_id) {
                        Ok(e) => e,
                        Err(e) => {
                            warn!("cannot take flow {flow_id}: {e}");
                            self.send_mgmt(&from, &reply);
                            return;
                        }
                    };
                    let peer = EthPeer {
                        mac: from,
                        eid: m.s_eid,
                        local_eid: eid,
                    };
                    match self.dp.add(flow_id, fds, o7s_shm::Side::A, peer) {
                        Ok(_) => {
                            reply.s_eid = eid;
                            reply.response = 0;
                        }
                        Err(e) => {
                            warn!("cannot take flow {flow_id}: {e}");
                            lock(&self.eids).remove(&eid);
                        }
                    }
                }
                Ok((IpcpResp::Err(e), _)) => {
                    info!("flow request from {} refused: {e}", fmt_mac(&from))
                }
                Ok(_) | Err(_) => warn!("the IRMd did not answer a flow request"),
            }
        }
        self.send_mgmt(&from, &reply);
    }
}

fn fmt_mac(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
