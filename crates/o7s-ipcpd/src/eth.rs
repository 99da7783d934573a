//! The eth-dix and eth-llc IPCPs: a layer over raw Ethernet frames on one interface. Names
//! are found by a broadcast name query answered by the node where the name is registered;
//! flows are set up with the prototype's flow request and reply on the management endpoint.
//! The two differ only in their [`Framing`].

use crate::dataplane::Egress;
use crate::shim::{lock, Bootstrap, Eid, Medium, Peer, Shim, ShimMsg};
use eth_mgmt::{Framing, BROADCAST};
use o7s::ctrl::msg::{IpcpResp, IrmError};
use o7s::ctrl::rpc::Rpc;
use o7s_proto::{HashAlgo, NameHash};
use o7s_shm::ShmError;
use rustix::fd::OwnedFd;
use rustix::net::sockopt::Timeout;
use std::collections::HashMap;
use std::io::ErrorKind;
use std::marker::PhantomData;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, info};

#[path = "eth/mgmt.rs"]
mod eth_mgmt;

pub use eth_mgmt::{Dix, Llc};

/// Receive buffer of the raw socket.
const RCVBUF: usize = 8 << 20;
/// Payloads from this size on go out on their own, straight from the flow's ring (the
/// header written into the headroom in front), instead of being copied into a batch: for
/// large frames the copy costs more than the system call it saves.
const DIRECT_SEND: usize = 4096;
/// How long a name query waits for an answer (the prototype's 2 s).
const QUERY_WAIT: Duration = Duration::from_secs(2);
/// How long the receiving thread waits for a frame before it checks whether the IPCP
/// stopped (a raw socket cannot be shut down to wake it).
const RX_IDLE: Duration = Duration::from_millis(250);

type Mac = [u8; 6];

/// A MAC address that prints as one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MacAddr(pub Mac);

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

type EthPeer = Peer<MacAddr>;

pub struct EthEgress<F: Framing> {
    sock: OwnedFd,
    /// Frames of the egress thread, sent with one system call per batch.
    batch: Mutex<o7s_shm::SendBatch>,
    mac: Mac,
    framing: F,
    eids: Arc<Mutex<HashMap<Eid, u64>>>,
}

impl<F: Framing> EthEgress<F> {
    fn send_frame(&self, dst: &Mac, payload: &[u8]) {
        let mut f = vec![0u8; F::HDR + payload.len()];
        let len = payload.len() as u16;
        self.framing.write_header(&mut f, dst, &self.mac, 0, 0, len);
        f[F::HDR..].copy_from_slice(payload);
        if let Err(e) = rustix::net::send(&self.sock, &f, rustix::net::SendFlags::empty()) {
            debug!("send frame: {e}");
        }
    }
}

impl<F: Framing> Egress for EthEgress<F> {
    type Peer = EthPeer;

    fn send(&self, peer: &EthPeer, buf: &mut [u8], off: usize) {
        let Ok(len16) = u16::try_from(buf.len() - off) else {
            return;
        };
        let mut batch = lock(&self.batch);
        if buf.len() - off >= DIRECT_SEND && off >= F::HDR {
            // Frames queued before go first.
            if !batch.is_empty() {
                batch.flush(&self.sock);
            }
            let frame = &mut buf[off - F::HDR..];
            self.framing.write_header(
                &mut frame[..F::HDR],
                &peer.addr.0,
                &self.mac,
                peer.local_eid as u16,
                peer.eid as u16,
                len16,
            );
            if let Err(e) = rustix::net::send(&self.sock, frame, rustix::net::SendFlags::empty()) {
                debug!("send frame: {e}");
            }
            return;
        }
        let payload = &buf[off..];
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
                &peer.addr.0,
                &self.mac,
                peer.local_eid as u16,
                peer.eid as u16,
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

    fn closed(&self, _flow_id: u64, peer: &EthPeer, _timed_out: bool) {
        lock(&self.eids).remove(&peer.local_eid);
    }
}

pub struct EthMedium<F: Framing> {
    egress: Arc<EthEgress<F>>,
    dev: String,
    dir: Mutex<HashMap<NameHash, MacAddr>>,
    dir_changed: Condvar,
    /// The IPCP stopped: name queries give up.
    stopped: AtomicBool,
}

impl<F: Framing> Medium for EthMedium<F> {
    type Addr = MacAddr;

    /// The cache, else a broadcast name query.
    fn resolve(&self, hash: &NameHash) -> Result<Option<MacAddr>, IrmError> {
        if let Some(m) = lock(&self.dir).get(hash) {
            return Ok(Some(*m));
        }
        self.send_mgmt(
            &MacAddr(BROADCAST),
            &ShimMsg::QueryReq { hash: hash.clone() },
        );
        let end = Instant::now() + QUERY_WAIT;
        let mut dir = lock(&self.dir);
        loop {
            if let Some(m) = dir.get(hash) {
                return Ok(Some(*m));
            }
            if self.stopped.load(Ordering::Relaxed) {
                return Err(IrmError::Internal("the IPCP stopped".into()));
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            dir = self
                .dir_changed
                .wait_timeout(dir, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    fn learned(&self, hash: NameHash, from: MacAddr) {
        lock(&self.dir).insert(hash, from);
        self.dir_changed.notify_all();
    }

    fn send_mgmt(&self, to: &MacAddr, m: &ShimMsg) {
        let b = self.egress.framing.encode(m);
        self.egress.send_frame(&to.0, &b);
    }

    fn eids(&self) -> RangeInclusive<Eid> {
        let r = self.egress.framing.eids();
        u32::from(*r.start())..=u32::from(*r.end())
    }

    fn show(&self) -> Vec<(String, String)> {
        let entries = lock(&self.dir).len();
        vec![
            ("device".into(), self.dev.clone()),
            ("address".into(), MacAddr(self.egress.mac).to_string()),
            ("directory entries".into(), entries.to_string()),
        ]
    }

    /// Wake the name queries; the receiving thread sees the stop within [`RX_IDLE`].
    fn stop(&self) {
        // Set under the lock, so a query about to wait cannot miss the wake-up.
        let dir = lock(&self.dir);
        self.stopped.store(true, Ordering::Relaxed);
        drop(dir);
        self.dir_changed.notify_all();
    }
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

/// Bootstraps an eth-dix (`F = Dix`) or eth-llc (`F = Llc`) IPCP.
pub struct EthBoot<F>(PhantomData<F>);

impl<F> EthBoot<F> {
    pub fn new() -> Self {
        EthBoot(PhantomData)
    }
}

impl<F: Framing> Bootstrap for EthBoot<F> {
    type M = EthMedium<F>;
    type E = EthEgress<F>;

    fn bootstrap(
        &self,
        name: &str,
        layer: String,
        params: Vec<(String, String)>,
        rpc: &Arc<Rpc>,
    ) -> Result<(Arc<Shim<EthMedium<F>, EthEgress<F>>>, IpcpResp), IrmError> {
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
        let (mac, if_mtu) = o7s_shm::link_info(&dev).map_err(|e| {
            // The reason alone ("interface X: no such interface"), not its category.
            let why = match e {
                ShmError::BadRegion(why) => why,
                e => e.to_string(),
            };
            bad("dev", &dev, why)
        })?;
        let open = |what: &str| {
            o7s_shm::packet_socket(&dev, framing.proto())
                .map(|(fd, _)| fd)
                .map_err(|e| {
                    let why = format!(
                        "cannot open a raw socket for {what} (root or CAP_NET_RAW needed): {e}"
                    );
                    bad("dev", &dev, why)
                })
        };
        let (tx, rx) = (open("sending")?, open("receiving")?);
        // A deep receive queue rides out bursts while the receive thread is descheduled
        // (the forced size needs CAP_NET_ADMIN; without it the system's maximum applies).
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&rx, RCVBUF).is_err() {
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&rx, RCVBUF);
        }
        rustix::net::sockopt::set_socket_timeout(&rx, Timeout::Recv, Some(RX_IDLE))
            .map_err(|e| IrmError::Internal(format!("receive timeout: {e}")))?;
        let mtu = framing.mtu(if_mtu);
        let eids = Arc::new(Mutex::new(HashMap::new()));
        let egress = Arc::new(EthEgress {
            sock: tx,
            batch: Mutex::new(o7s_shm::SendBatch::new(32, F::HDR + mtu as usize)),
            mac,
            framing,
            eids: eids.clone(),
        });
        let medium = EthMedium {
            egress: egress.clone(),
            dev: dev.clone(),
            dir: Mutex::new(HashMap::new()),
            dir_changed: Condvar::new(),
            stopped: AtomicBool::new(false),
        };
        let shim = Shim::new(medium, layer.clone(), hash, egress, eids, rpc)?;
        let r = shim.clone();
        std::thread::Builder::new()
            .name("eth-rx".into())
            .spawn(move || rx_loop(&r, &rx, mac, if_mtu as usize))
            .map_err(|e| {
                shim.stop();
                IrmError::Internal(e.to_string())
            })?;
        info!(
            "Bootstrapped {} IPCP {name} in layer {layer} on {dev} (MTU {mtu}).",
            F::KIND
        );
        Ok((shim, IpcpResp::Bootstrapped { layer, hash, mtu }))
    }
}

/// On interfaces with an MTU of at least this, frames are received straight into the ring
/// of the flow that got the last one (one copy less per frame: the kernel's into the ring,
/// instead of the kernel's into a buffer and ours into the ring), one system call each;
/// on smaller ones, where the system call costs more than the copy, in batches.
const DIRECT_RECV: usize = 8192;

type EthShim<F> = Shim<EthMedium<F>, EthEgress<F>>;
type EthPort = crate::dataplane::Port<EthPeer>;

/// What one attempt to receive a frame straight into a flow's ring found.
enum Direct {
    /// A frame of the flow, now in its ring.
    Got,
    /// Nothing queued on the socket.
    Empty,
    /// A frame for something else (another flow, management), copied into the scratch
    /// buffer; or one to drop (`false`).
    Other(bool),
    /// The ring has no room for a frame of the interface's MTU, or the flow is gone.
    NoRoom,
}

fn rx_loop<F: Framing>(shim: &Arc<EthShim<F>>, rx: &OwnedFd, mac: Mac, if_mtu: usize) {
    // Buffers for the device's largest frame (and a little more), not for 64 KiB: frames
    // received into 32 buffers of 64 KiB left hundreds of kB of them resident.
    let frame_max = (F::HDR + if_mtu + 64).max(2048);
    let mut batch = o7s_shm::RecvBatch::new(32, frame_max);
    let direct = if_mtu >= DIRECT_RECV;
    // The flow that got the last frame, which the next one most likely belongs to.
    let mut last: Option<Arc<EthPort>> = None;
    let mut scratch = Vec::new();
    // Frames delivered since the applications' answers were last waited for.
    let mut delivered = false;
    loop {
        if let Some(port) = last.as_ref().filter(|_| direct) {
            match recv_direct(shim, rx, port, frame_max - F::HDR, &mut scratch) {
                Direct::Got => {
                    shim.dp.delivered_in_place(port);
                    delivered = true;
                    continue;
                }
                Direct::Other(keep) => {
                    match keep.then(|| handle_frame(shim, &scratch, mac)).flatten() {
                        Some(to) => {
                            delivered = true;
                            last = Some(to);
                        }
                        // A stopped IPCP has no flows: its frames all end up here.
                        None if shim.dp.is_stopped() => return,
                        None => {}
                    }
                    continue;
                }
                Direct::Empty => {
                    if !shim.dp.rx_idle(rx, &mut delivered, &mut last) {
                        return;
                    }
                    continue;
                }
                Direct::NoRoom => last = None,
            }
        }
        let n = match batch.recv(rx) {
            Ok(n) => n,
            Err(e) => {
                if shim.dp.is_stopped() {
                    return;
                }
                let idle = matches!(&e, ShmError::Io(io) if io.kind() == ErrorKind::WouldBlock);
                // The receive timeout (RX_IDLE) expiring is no error.
                if !idle {
                    debug!("recv: {e}");
                }
                continue;
            }
        };
        for i in 0..n {
            if let Some(p) = handle_frame(shim, batch.get(i), mac) {
                delivered = true;
                if direct {
                    last = Some(p);
                }
            }
        }
        if delivered {
            delivered = false;
            shim.dp.catch_answers();
        } else if shim.dp.is_stopped() {
            return;
        }
    }
}

/// Deliver one frame received into a buffer of our own (or answer it, if it is a
/// management frame); returns the flow it went to.
fn handle_frame<F: Framing>(shim: &Arc<EthShim<F>>, buf: &[u8], mac: Mac) -> Option<Arc<EthPort>> {
    let framing = &shim.medium.egress.framing;
    let Some(f) = framing.parse_frame(buf) else {
        shim.drop_bad();
        return None;
    };
    if f.src == mac {
        return None;
    }
    let payload = &buf[f.payload.0..f.payload.1];
    let from = MacAddr(f.src);
    if f.eid != 0 {
        return shim.deliver_to(u32::from(f.eid), from, payload);
    }
    match framing.parse(payload, shim.hash.hash_len()) {
        Ok(m) => shim.mgmt(m, from),
        Err(e) => {
            debug!("bad management frame from {from}: {e}");
            shim.drop_bad();
        }
    }
    None
}

/// Receive the next frame, without waiting, straight into a record of `port`'s ring (the
/// Ethernet header into the record's headroom, the payload where the application reads
/// it). The record is kept if the frame is one of the flow's, from its peer; else it is
/// given back and the frame copied into `scratch`. `max_payload`: the largest payload a
/// frame of the interface carries.
fn recv_direct<F: Framing>(
    shim: &Arc<EthShim<F>>,
    rx: &OwnedFd,
    port: &Arc<EthPort>,
    max_payload: usize,
    scratch: &mut Vec<u8>,
) -> Direct {
    use rustix::net::RecvFlags;
    let hr = port.ep.headroom();
    if hr < F::HDR || max_payload > port.ep.max_packet() {
        return Direct::NoRoom;
    }
    let framing = &shim.medium.egress.framing;
    let mut res = Direct::Empty;
    let wrote = port.ep.try_write_with_opt(max_payload, |slot| {
        let frame = &mut slot[hr - F::HDR..];
        let cap = frame.len();
        let n = match rustix::net::recv(rx, &mut *frame, RecvFlags::DONTWAIT | RecvFlags::TRUNC) {
            Ok((_, n)) => n,
            Err(e) => {
                if e != rustix::io::Errno::AGAIN && e != rustix::io::Errno::INTR {
                    debug!("recv: {e}");
                }
                return None;
            }
        };
        if n > cap {
            // Larger than the interface's MTU allows: not ours to deliver.
            shim.drop_bad();
            res = Direct::Other(false);
            return None;
        }
        let frame = &frame[..n];
        if let Some(f) = framing.parse_frame(frame) {
            let from = MacAddr(f.src);
            let mine = f.eid != 0
                && f.payload.0 == F::HDR
                && f.payload.1 > f.payload.0
                && shim
                    .port_of(u32::from(f.eid), from)
                    .is_some_and(|p| Arc::ptr_eq(&p, port));
            if mine {
                res = Direct::Got;
                return Some(f.payload.1 - F::HDR);
            }
        }
        scratch.clear();
        scratch.extend_from_slice(frame);
        res = Direct::Other(true);
        None
    });
    match wrote {
        Ok(()) => res,
        Err(_) => Direct::NoRoom,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shim::testkit::{connect, request, until};
    use crate::shim::ShimIpcp;
    use crate::IpcpLogic;
    use eth_mgmt::DIX_HDR;
    use o7s::ctrl::msg::IpcpReq;
    use o7s_proto::QosSpec;
    use std::sync::atomic::AtomicBool;

    /// The test's peer (frames on the loopback interface carry its MAC, all zeros, as
    /// their source; the IPCP ignores its own).
    const PEER: Mac = [0x02, 0, 0, 0, 0, 0x99];

    /// As the udp test of stop, on the loopback interface: frames sent there come back to
    /// every raw socket bound to it, so it needs root (CAP_NET_RAW) but no veth, and without
    /// root it says so and passes. The peer goes on sending while the IPCP stops.
    #[test]
    fn stop_drops_flows_threads_and_socket() {
        // A random ethertype keeps concurrent runs of this test apart.
        let ethertype = 0x9000 + rand::random_range(0..0x1000u16);
        let Ok((peer, _)) = o7s_shm::packet_socket("lo", ethertype) else {
            eprintln!("skipped: raw sockets need root (CAP_NET_RAW)");
            return;
        };
        let framing = Dix { ethertype };
        let send = |eid: u16, payload: &[u8]| {
            let mut f = vec![0u8; DIX_HDR + payload.len()];
            let len = payload.len() as u16;
            framing.write_header(&mut f, &[0; 6], &PEER, 0, eid, len);
            f[DIX_HDR..].copy_from_slice(payload);
            let _ = rustix::net::send(&peer, &f, rustix::net::SendFlags::empty());
        };
        let bootstrap = |irmd: &Rpc| {
            let params = vec![
                ("dev".to_string(), "lo".to_string()),
                ("ethertype".to_string(), format!("{ethertype:#06x}")),
            ];
            let layer = "stop-test".to_string();
            request(irmd, IpcpReq::Bootstrap { layer, params })
        };
        let ipcp = Arc::new(ShimIpcp::new("e0", EthBoot::<Dix>::new()));
        let (irmd, apps) = connect(&ipcp);
        assert!(matches!(bootstrap(&irmd), IpcpResp::Bootstrapped { .. }));
        let hash = HashAlgo::default().hash("srv");
        let reg = IpcpReq::Reg {
            name: "srv".into(),
            hash: hash.clone(),
        };
        assert_eq!(request(&irmd, reg), IpcpResp::Ok);

        let req = ShimMsg::FlowReq {
            requester: 99,
            qos: QosSpec::RAW,
            hash,
        };
        send(0, &framing.encode(&req));
        let app = apps.recv_timeout(Duration::from_secs(5)).expect("flow");
        let timeout = rustix::net::sockopt::Timeout::Recv;
        rustix::net::sockopt::set_socket_timeout(&peer, timeout, Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = vec![0u8; 70_000];
        let responder = loop {
            let (_, n) = rustix::net::recv(&peer, &mut buf, rustix::net::RecvFlags::empty())
                .expect("the flow reply");
            let Some(f) = framing.parse_frame(&buf[..n]) else {
                continue;
            };
            let payload = &buf[f.payload.0..f.payload.1];
            if f.src == PEER || f.eid != 0 {
                continue;
            }
            match framing.parse(payload, HashAlgo::default().hash_len()) {
                Ok(ShimMsg::FlowReply {
                    requester: 99,
                    responder,
                    response: 0,
                }) => break responder as u16,
                other => panic!("not an accepting flow reply: {other:?}"),
            }
        };
        send(responder, b"ping");
        let deadline = Some(Instant::now() + Duration::from_secs(5));
        let n = app.read(&mut buf, deadline).expect("read");
        assert_eq!(&buf[..n], b"ping");

        let shim = Arc::downgrade(&ipcp.running().expect("running"));
        let dp = Arc::downgrade(&shim.upgrade().expect("shim").dp);
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    send(responder, b"more");
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            ipcp.stop();
            ipcp.stop();
            let next = Arc::new(ShimIpcp::new("e1", EthBoot::<Dix>::new()));
            let (irmd2, _apps2) = connect(&next);
            assert!(matches!(bootstrap(&irmd2), IpcpResp::Bootstrapped { .. }));
            until("the flow is down", || app.is_down());
            until("the shim is dropped", || shim.upgrade().is_none());
            until("the dataplane is dropped", || dp.upgrade().is_none());
            next.stop();
            done.store(true, Ordering::Relaxed);
            irmd2.shutdown();
        });
        irmd.shutdown();
    }
}
