//! The udp4 and udp6 IPCPs: a layer over UDP datagrams. Every datagram starts with the
//! destination's 4-byte endpoint id; endpoint id 0 carries flow requests and replies.
//! Names are found in a hosts file given at bootstrap, or as the hex string of their hash
//! through the system resolver (`/etc/hosts`), as in the prototype.

use crate::dataplane::{Dataplane, Egress};
use crate::IpcpLogic;
use o7s::ctrl::msg::{IpcpKind, IpcpNote, IpcpReq, IpcpResp, IrmError};
use o7s::ctrl::rpc::Rpc;
use o7s_proto::{HashAlgo, NameHash, QosSpec};
use rustix::fd::OwnedFd;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{debug, info, warn};

mod hosts;
mod mgmt;

use mgmt::{Mgmt, MgmtCode};

/// Receive buffer of the socket: deep enough to ride out bursts.
const RCVBUF: usize = 8 << 20;
/// The prototype's default port.
pub const DEFAULT_PORT: u16 = 3435;
/// How long a flow request waits for the reply of the far side (which may first have to
/// start its server program).
const REPLY_WAIT: Duration = Duration::from_secs(12);
/// The largest payload: a UDP datagram less our 4-byte header.
const MTU_V4: u32 = 65_507 - 4;
const MTU_V6: u32 = 65_487 - 4;

#[derive(Clone, Debug)]
pub struct UdpPeer {
    addr: SocketAddr,
    /// The far side's endpoint id.
    eid: u32,
    /// Ours.
    local_eid: u32,
}

struct UdpEgress {
    sock: UdpSocket,
    eids: Arc<Mutex<HashMap<u32, u64>>>,
}

impl Egress for UdpEgress {
    type Peer = UdpPeer;

    fn send(&self, peer: &UdpPeer, buf: &mut [u8], off: usize) {
        let res = if off >= 4 {
            buf[off - 4..off].copy_from_slice(&peer.eid.to_be_bytes());
            self.sock.send_to(&buf[off - 4..], peer.addr)
        } else {
            let mut v = Vec::with_capacity(buf.len() - off + 4);
            v.extend_from_slice(&peer.eid.to_be_bytes());
            v.extend_from_slice(&buf[off..]);
            self.sock.send_to(&v, peer.addr)
        };
        if let Err(e) = res {
            debug!("send to {}: {e}", peer.addr);
        }
    }

    fn closed(&self, _flow_id: u64, peer: &UdpPeer) {
        lock(&self.eids).remove(&peer.local_eid);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A flow request of ours waiting for its reply.
struct Pending {
    addr: SocketAddr,
    reply: SyncSender<(i32, u32)>,
}

struct Running {
    layer: String,
    hash: HashAlgo,
    v6: bool,
    port: u16,
    sock: UdpSocket,
    /// Names found so far: from the hosts file, and cached resolver answers.
    dir: Mutex<HashMap<NameHash, SocketAddr>>,
    registered: Mutex<HashSet<NameHash>>,
    dp: Arc<Dataplane<UdpEgress>>,
    /// Our endpoint ids and their flows.
    eids: Arc<Mutex<HashMap<u32, u64>>>,
    pending: Mutex<HashMap<u32, Pending>>,
    rpc: Arc<Rpc>,
    bad: std::sync::atomic::AtomicU64,
}

pub struct Udp {
    name: String,
    kind: IpcpKind,
    run: Mutex<Option<Arc<Running>>>,
}

fn bad(key: &str, value: &str, why: impl Into<String>) -> IrmError {
    IrmError::BadParam {
        key: key.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

impl Udp {
    pub fn new(name: &str, kind: IpcpKind) -> Udp {
        Udp {
            name: name.to_string(),
            kind,
            run: Mutex::new(None),
        }
    }

    fn running(&self) -> Result<Arc<Running>, IrmError> {
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
        let v6 = self.kind == IpcpKind::Udp6;
        let (mut ip, mut port, mut hosts_file) = (None, DEFAULT_PORT, None);
        // The prototype's udp layers hash names with MD5, whatever is configured.
        let hash = HashAlgo::Md5;
        for (k, v) in params {
            match k.as_str() {
                "ip" => {
                    let a: IpAddr = v.parse().map_err(|_| bad(&k, &v, "not an IP address"))?;
                    if a.is_ipv6() != v6 {
                        return Err(bad(
                            &k,
                            &v,
                            format!(
                                "a {} layer needs an IPv{} address",
                                self.kind,
                                if v6 { 6 } else { 4 }
                            ),
                        ));
                    }
                    ip = Some(a);
                }
                "port" => {
                    port = v
                        .parse()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| bad(&k, &v, "ports are 1-65535"))?;
                }
                "hash" if v.eq_ignore_ascii_case("MD5") => {}
                "hash" => {
                    return Err(bad(
                        &k,
                        &v,
                        "udp layers hash names with MD5, as the prototype does; leave hash out",
                    ))
                }
                "hosts" => hosts_file = Some(v),
                "dns" => {
                    return Err(IrmError::NotSupported {
                        what: "the dynamic DNS directory (dns)".into(),
                    })
                }
                _ => return Err(bad(&k, &v, "udp layers take ip, port, hash, hosts, dns")),
            }
        }
        let ip = ip.ok_or_else(|| bad("ip", "", "missing: bootstrap needs ip ADDR"))?;
        let sock = UdpSocket::bind(SocketAddr::new(ip, port))
            .map_err(|e| bad("ip", &format!("{ip}:{port}"), format!("cannot bind: {e}")))?;
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&sock, RCVBUF).is_err() {
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&sock, RCVBUF);
        }
        let mut dir = HashMap::new();
        if let Some(f) = &hosts_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| bad("hosts", f, format!("cannot read: {e}")))?;
            for (addr, names) in hosts::parse(&text, port).map_err(|e| bad("hosts", f, e))? {
                if addr.is_ipv6() != v6 {
                    continue;
                }
                for n in names {
                    dir.insert(hash.hash(&n), addr);
                }
            }
        }
        let eids = Arc::new(Mutex::new(HashMap::new()));
        let egress = Arc::new(UdpEgress {
            sock: sock
                .try_clone()
                .map_err(|e| IrmError::Internal(e.to_string()))?,
            eids: eids.clone(),
        });
        let dp = Dataplane::new(egress).map_err(|e| IrmError::Internal(e.to_string()))?;
        let mtu = if v6 { MTU_V6 } else { MTU_V4 };
        let run = Arc::new(Running {
            layer: layer.clone(),
            hash,
            v6,
            port,
            sock,
            dir: Mutex::new(dir),
            registered: Mutex::new(HashSet::new()),
            dp,
            eids,
            pending: Mutex::new(HashMap::new()),
            rpc: rpc.clone(),
            bad: Default::default(),
        });
        let rx = run.clone();
        std::thread::Builder::new()
            .name("udp-rx".into())
            .spawn(move || rx.rx_loop())
            .map_err(|e| IrmError::Internal(e.to_string()))?;
        *lock(&self.run) = Some(run);
        info!(
            "Bootstrapped {} IPCP {} in layer {layer} on {ip}:{port}.",
            self.kind, self.name
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
            IpcpReq::Query { hash } => Ok(IpcpResp::Bool(self.running()?.resolve(&hash).is_some())),
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
                    (
                        "address".into(),
                        r.sock
                            .local_addr()
                            .map(|a| a.to_string())
                            .unwrap_or_default(),
                    ),
                    ("flows".into(), r.dp.len().to_string()),
                    ("directory entries".into(), entries.to_string()),
                    (
                        "dropped datagrams".into(),
                        r.bad.load(std::sync::atomic::Ordering::Relaxed).to_string(),
                    ),
                ]))
            }
        }
    }
}

impl IpcpLogic for Udp {
    fn handle(&self, rpc: &Arc<Rpc>, id: u64, req: IpcpReq, fds: Vec<OwnedFd>) {
        let answer = self.answer(req, fds, rpc).unwrap_or_else(IpcpResp::Err);
        if let Err(e) = rpc.reply(id, answer, &[]) {
            warn!("cannot answer the IRMd: {e}");
        }
    }
}

impl Running {
    /// Where `hash` lives: the hosts file, then the system resolver (hex string of the hash).
    fn resolve(&self, hash: &NameHash) -> Option<SocketAddr> {
        if let Some(a) = lock(&self.dir).get(hash) {
            return Some(*a);
        }
        let found = (hash.to_string().as_str(), self.port)
            .to_socket_addrs()
            .ok()?
            .find(|a| a.is_ipv6() == self.v6)?;
        lock(&self.dir).insert(hash.clone(), found);
        Some(found)
    }

    fn new_eid(&self, flow_id: u64) -> u32 {
        let mut eids = lock(&self.eids);
        loop {
            let e: u32 = rand_u32();
            if e != 0 && !eids.contains_key(&e) && !lock(&self.pending).contains_key(&e) {
                eids.insert(e, flow_id);
                return e;
            }
        }
    }

    fn flow_alloc(
        &self,
        flow_id: u64,
        hash: &NameHash,
        qos: QosSpec,
        fds: Vec<OwnedFd>,
    ) -> Result<(), IrmError> {
        let addr = self.resolve(hash).ok_or_else(|| IrmError::NameNotFound {
            name: hash.to_string(),
        })?;
        let eid = self.new_eid(flow_id);
        let (tx, rx) = sync_channel(1);
        lock(&self.pending).insert(eid, Pending { addr, reply: tx });
        let req = Mgmt {
            code: MgmtCode::FlowReq,
            s_eid: eid,
            d_eid: 0,
            response: 0,
            qos,
            hash: hash.as_bytes().to_vec(),
        };
        let sent = self.sock.send_to(&req.to_bytes(), addr);
        let reply = match sent {
            Ok(_) => rx.recv_timeout(REPLY_WAIT).ok(),
            Err(e) => {
                warn!("flow request to {addr}: {e}");
                None
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
                let peer = UdpPeer {
                    addr,
                    eid: d_eid,
                    local_eid: eid,
                };
                self.dp
                    .add(flow_id, fds, o7s_shm::Side::B, peer)
                    .map_err(|e| fail(e.to_string()))?;
                debug!(flow = flow_id, "flow on eids ({eid}, {d_eid}) with {addr}");
                Ok(())
            }
            Some((code, _)) => Err(fail(format!("{addr} refused the flow (response {code})"))),
        }
    }

    fn rx_loop(self: Arc<Self>) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, from) = match self.sock.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) => {
                    debug!("recv: {e}");
                    continue;
                }
            };
            if n < 4 {
                self.drop_bad();
                continue;
            }
            let eid = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            if eid == 0 {
                match Mgmt::parse(&buf[..n], self.hash.hash_len()) {
                    Ok(m) => self.mgmt(m, from),
                    Err(e) => {
                        debug!("bad management datagram from {from}: {e}");
                        self.drop_bad();
                    }
                }
                continue;
            }
            let flow = lock(&self.eids).get(&eid).copied();
            let port = flow.and_then(|f| self.dp.get(f));
            match port {
                // Only the stored peer may send on a flow.
                Some(p) if p.peer.addr == from => self.dp.deliver(&p, &buf[4..n]),
                _ => self.drop_bad(),
            }
        }
    }

    fn drop_bad(&self) {
        self.bad.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn mgmt(self: &Arc<Self>, m: Mgmt, from: SocketAddr) {
        match m.code {
            MgmtCode::FlowReq => {
                let me = self.clone();
                let spawned = std::thread::Builder::new()
                    .name("udp-flow-req".into())
                    .spawn(move || me.flow_req(m, from));
                if let Err(e) = spawned {
                    warn!("cannot handle a flow request: {e}");
                }
            }
            MgmtCode::FlowReply => {
                let pending = lock(&self.pending).remove(&m.s_eid);
                match pending {
                    // A reply only counts from the node we asked.
                    Some(p) if p.addr == from => {
                        let _ = p.reply.send((m.response, m.d_eid));
                    }
                    Some(p) => {
                        warn!(
                            "flow reply for eid {} from {from}, expected {}",
                            m.s_eid, p.addr
                        );
                        lock(&self.pending).insert(m.s_eid, p);
                        self.drop_bad();
                    }
                    None => self.drop_bad(),
                }
            }
        }
    }

    /// A flow request from `from`: ask the IRMd for an acceptor, then answer.
    fn flow_req(&self, m: Mgmt, from: SocketAddr) {
        let hash = NameHash(m.hash.clone());
        let mut reply = Mgmt {
            code: MgmtCode::FlowReply,
            s_eid: m.s_eid,
            d_eid: 0,
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
                    let eid = self.new_eid(flow_id);
                    let peer = UdpPeer {
                        addr: from,
                        eid: m.s_eid,
                        local_eid: eid,
                    };
                    match self.dp.add(flow_id, fds, o7s_shm::Side::A, peer) {
                        Ok(_) => {
                            reply.d_eid = eid;
                            reply.response = 0;
                        }
                        Err(e) => {
                            warn!("cannot take flow {flow_id}: {e}");
                            lock(&self.eids).remove(&eid);
                        }
                    }
                }
                Ok((IpcpResp::Err(e), _)) => info!("flow request from {from} refused: {e}"),
                Ok(_) | Err(_) => warn!("the IRMd did not answer a flow request"),
            }
        } else {
            debug!("flow request from {from} for a name not registered here");
        }
        if let Err(e) = self.sock.send_to(&reply.to_bytes(), from) {
            debug!("flow reply to {from}: {e}");
        }
    }
}

fn rand_u32() -> u32 {
    rand::random()
}
