//! The udp4 and udp6 IPCPs: a layer over UDP datagrams. Every datagram starts with the
//! destination's 4-byte endpoint id; endpoint id 0 carries flow requests and replies.
//! Names are found in a hosts file given at bootstrap, then either in the dynamic DNS
//! directory given with `dns` (see [`dns`]) or, without one, as the hex string of their hash
//! through the system resolver (`/etc/hosts`), as in the prototype.

use crate::dataplane::Egress;
use crate::shim::{lock, Bootstrap, Eid, Medium, Peer, Shim, ShimMsg};
use dns::DnsDir;
use o7s::ctrl::msg::{IpcpKind, IpcpResp, IrmError};
use o7s::ctrl::rpc::Rpc;
use o7s_proto::wire::dns::DnsName;
use o7s_proto::{HashAlgo, NameHash};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

mod dns;
mod hosts;
mod mgmt;

/// Receive buffer of the socket: deep enough to ride out bursts.
const RCVBUF: usize = 8 << 20;
/// The prototype's default port.
pub const DEFAULT_PORT: u16 = 3435;
/// The largest payload: a UDP datagram less our 4-byte header.
const MTU_V4: u32 = 65_507 - 4;
const MTU_V6: u32 = 65_487 - 4;
/// How long the receiving thread waits for a datagram before it checks whether the IPCP
/// stopped (in case shutting the socket down did not wake it).
const RX_IDLE: Duration = Duration::from_millis(250);
/// How long bootstrap waits for a port in use to be let go: an IPCP of this process just
/// stopped closes its socket moments later.
const BIND_WAIT: Duration = Duration::from_secs(1);
/// How long a DNS answer is used (at most its TTL): long enough that the IRMd's query and
/// the flow allocation after it ask the server once, short enough that a name unregistered
/// is gone at once.
const DNS_FRESH: Duration = Duration::from_secs(1);

type UdpPeer = Peer<SocketAddr>;

pub struct UdpEgress {
    sock: UdpSocket,
    eids: Arc<Mutex<HashMap<Eid, u64>>>,
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

    fn closed(&self, _flow_id: u64, peer: &UdpPeer, _timed_out: bool) {
        lock(&self.eids).remove(&peer.local_eid);
    }
}

pub struct UdpMedium {
    sock: UdpSocket,
    /// The IPCP's name, for errors.
    ipcp: String,
    /// The address bound, published in DNS.
    ip: IpAddr,
    port: u16,
    v6: bool,
    /// Names found so far: from the hosts file, and cached system resolver answers.
    dir: Mutex<HashMap<NameHash, SocketAddr>>,
    /// The dynamic DNS directory (`dns`), if any.
    dns: Option<DnsDir>,
    /// Recent DNS answers and until when they are used.
    dns_answers: Mutex<HashMap<NameHash, (SocketAddr, Instant)>>,
    /// Names registered here, for messages about their DNS records.
    names: Mutex<HashMap<NameHash, String>>,
}

impl UdpMedium {
    fn dns_failed(&self, e: dns::DnsError) -> IrmError {
        IrmError::IpcpFailed {
            name: self.ipcp.clone(),
            why: e.to_string(),
        }
    }

    /// The DNS server's record for `hash`, from a recent answer or asked now.
    fn dns_lookup(&self, d: &DnsDir, hash: &NameHash) -> Result<Option<SocketAddr>, IrmError> {
        let now = Instant::now();
        {
            let mut recent = lock(&self.dns_answers);
            recent.retain(|_, (_, until)| *until > now);
            if let Some((a, _)) = recent.get(hash) {
                return Ok(Some(*a));
            }
        }
        match d.lookup(hash, self.v6).map_err(|e| self.dns_failed(e))? {
            Some((ip, ttl)) => {
                let a = SocketAddr::new(ip, self.port);
                let keep = DNS_FRESH.min(Duration::from_secs(ttl.into()));
                lock(&self.dns_answers).insert(hash.clone(), (a, now + keep));
                debug!(
                    "{} is at {a} (DNS server {})",
                    d.record_name(hash),
                    d.server
                );
                Ok(Some(a))
            }
            None => {
                info!(
                    "DNS server {} has no record {}.",
                    d.server,
                    d.record_name(hash)
                );
                Ok(None)
            }
        }
    }
}

impl Medium for UdpMedium {
    type Addr = SocketAddr;

    /// The hosts file, then the DNS server if `dns` was given, else the system resolver
    /// (hex string of the hash), as the prototype.
    fn resolve(&self, hash: &NameHash) -> Result<Option<SocketAddr>, IrmError> {
        if let Some(a) = lock(&self.dir).get(hash) {
            return Ok(Some(*a));
        }
        if let Some(d) = &self.dns {
            return self.dns_lookup(d, hash);
        }
        let Ok(mut found) = (hash.to_string().as_str(), self.port).to_socket_addrs() else {
            return Ok(None);
        };
        let Some(found) = found.find(|a| a.is_ipv6() == self.v6) else {
            return Ok(None);
        };
        lock(&self.dir).insert(hash.clone(), found);
        Ok(Some(found))
    }

    /// With `dns`: add the record `<hash>.<zone>` for our address.
    fn reg(&self, name: &str, hash: &NameHash) -> Result<(), IrmError> {
        let Some(d) = &self.dns else {
            return Ok(());
        };
        d.publish(name, hash, self.ip)
            .map_err(|e| self.dns_failed(e))?;
        lock(&self.names).insert(hash.clone(), name.to_string());
        info!(
            "Published {name} as {} in DNS server {}.",
            d.record_name(hash),
            d.server
        );
        Ok(())
    }

    /// With `dns`: delete our record. A failure is logged (as the prototype does, the name
    /// is unregistered here all the same).
    fn unreg(&self, hash: &NameHash) {
        let Some(d) = &self.dns else {
            return;
        };
        let name = lock(&self.names)
            .remove(hash)
            .unwrap_or_else(|| hash.to_string());
        match d.withdraw(&name, hash, self.ip) {
            Ok(()) => info!("Withdrew {name} from DNS server {}.", d.server),
            Err(e) => warn!("{e}; the record stays until it is deleted there."),
        }
    }

    fn send_mgmt(&self, to: &SocketAddr, m: &ShimMsg) {
        if let Some(b) = mgmt::encode(m) {
            if let Err(e) = self.sock.send_to(&b, to) {
                debug!("management datagram to {to}: {e}");
            }
        }
    }

    fn eids(&self) -> RangeInclusive<Eid> {
        1..=Eid::MAX
    }

    fn show(&self) -> Vec<(String, String)> {
        let addr = self
            .sock
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let entries = lock(&self.dir).len();
        let mut v = vec![
            ("address".into(), addr),
            ("directory entries".into(), entries.to_string()),
        ];
        if let Some(d) = &self.dns {
            v.push(("DNS server".into(), d.server.to_string()));
            v.push(("DNS zone".into(), d.zone.to_string()));
        }
        v
    }

    /// Wake the receiving thread: a receive on a socket shut down for reading returns at
    /// once (Linux wakes the receivers even of an unconnected UDP socket, though it answers
    /// ENOTCONN).
    fn stop(&self) {
        let _ = rustix::net::shutdown(&self.sock, rustix::net::Shutdown::Read);
    }
}

/// Bind `addr`; while it is in use, try again for [`BIND_WAIT`].
fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let end = Instant::now() + BIND_WAIT;
    loop {
        match UdpSocket::bind(addr) {
            Err(e) if e.kind() == ErrorKind::AddrInUse && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(10));
            }
            res => return res,
        }
    }
}

fn bad(key: &str, value: &str, why: impl Into<String>) -> IrmError {
    IrmError::BadParam {
        key: key.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

/// Bootstraps a udp4 or udp6 IPCP.
pub struct UdpBoot {
    pub kind: IpcpKind,
}

impl Bootstrap for UdpBoot {
    type M = UdpMedium;
    type E = UdpEgress;

    fn bootstrap(
        &self,
        name: &str,
        layer: String,
        params: Vec<(String, String)>,
        rpc: &Arc<Rpc>,
    ) -> Result<(Arc<Shim<UdpMedium, UdpEgress>>, IpcpResp), IrmError> {
        let v6 = self.kind == IpcpKind::Udp6;
        let (mut ip, mut port, mut hosts_file) = (None, DEFAULT_PORT, None);
        let (mut dns_server, mut zone) = (None, None);
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
                "dns" => dns_server = Some(dns::parse_server(&v).map_err(|e| bad(&k, &v, e))?),
                "dns_zone" => {
                    let z = DnsName::new(&v).map_err(|e| {
                        bad(
                            &k,
                            &v,
                            format!("not a DNS zone name like o7s.example ({e})"),
                        )
                    })?;
                    zone = Some(z);
                }
                _ => {
                    return Err(bad(
                        &k,
                        &v,
                        "udp layers take ip, port, hosts, dns, dns_zone",
                    ))
                }
            }
        }
        let ip = ip.ok_or_else(|| bad("ip", "", "missing: bootstrap needs ip ADDR"))?;
        if dns_server.is_some() && ip.is_unspecified() {
            let why = "with dns, names are published at ip: give an address others reach";
            return Err(bad("ip", &ip.to_string(), why));
        }
        let dns = match (dns_server, zone) {
            (Some(server), zone) => Some(DnsDir::new(server, zone.unwrap_or_default())),
            (None, Some(z)) => {
                let why = "needs dns ADDR (a DNS server)";
                return Err(bad("dns_zone", &z.to_string(), why));
            }
            (None, None) => None,
        };
        let sock = bind(SocketAddr::new(ip, port))
            .map_err(|e| bad("ip", &format!("{ip}:{port}"), format!("cannot bind: {e}")))?;
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&sock, RCVBUF).is_err() {
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&sock, RCVBUF);
        }
        let internal = |e: std::io::Error| IrmError::Internal(e.to_string());
        sock.set_read_timeout(Some(RX_IDLE)).map_err(internal)?;
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
            sock: sock.try_clone().map_err(internal)?,
            eids: eids.clone(),
        });
        if let Some(d) = &dns {
            info!("Directory: DNS server {}, zone {}.", d.server, d.zone);
        }
        let medium = UdpMedium {
            sock: sock.try_clone().map_err(internal)?,
            ipcp: name.to_string(),
            ip,
            port,
            v6,
            dir: Mutex::new(dir),
            dns,
            dns_answers: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
        };
        let shim = Shim::new(medium, layer.clone(), hash, egress, eids, rpc)?;
        let rx = shim.clone();
        std::thread::Builder::new()
            .name("udp-rx".into())
            .spawn(move || rx_loop(&rx, &sock))
            .map_err(|e| {
                shim.stop();
                internal(e)
            })?;
        info!(
            "Bootstrapped {} IPCP {name} in layer {layer} on {ip}:{port}.",
            self.kind
        );
        let mtu = if v6 { MTU_V6 } else { MTU_V4 };
        Ok((shim, IpcpResp::Bootstrapped { layer, hash, mtu }))
    }
}

type UdpShim = Shim<UdpMedium, UdpEgress>;
type UdpPort = crate::dataplane::Port<UdpPeer>;

/// The largest datagram received (a datagram's payload can be no longer).
const MAX_DATAGRAM: usize = 65_536;

fn rx_loop(shim: &Arc<UdpShim>, sock: &UdpSocket) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    // The flow that got the last datagram, which the next one most likely belongs to: the
    // next datagram is received straight into its ring (a copy less per datagram).
    let mut last: Option<Arc<UdpPort>> = None;
    // Datagrams delivered since the applications' answers were last waited for.
    let mut delivered = false;
    loop {
        if let Some(port) = &last {
            match recv_direct(shim, sock, port, &mut buf) {
                Direct::Got => {
                    shim.dp.delivered_in_place(port);
                    delivered = true;
                }
                Direct::Other(d) => {
                    match d.and_then(|(n, from)| handle_datagram(shim, &buf[..n], from)) {
                        Some(to) => {
                            delivered = true;
                            last = Some(to);
                        }
                        // A stopped IPCP has no flows: its datagrams all end up here.
                        None if shim.dp.is_stopped() => return,
                        None => {}
                    }
                }
                Direct::Empty => {
                    if !shim.dp.rx_idle(sock, &mut delivered, &mut last) {
                        return;
                    }
                }
                Direct::NoRoom => last = None,
            }
            continue;
        }
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) => {
                if shim.dp.is_stopped() {
                    return;
                }
                // The receive timeout (RX_IDLE) expiring is no error.
                if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                    debug!("recv: {e}");
                }
                continue;
            }
        };
        match handle_datagram(shim, &buf[..n], from) {
            Some(p) => {
                last = Some(p);
                shim.dp.catch_answers();
            }
            None if shim.dp.is_stopped() => return,
            None => {}
        }
    }
}

/// Deliver one datagram received into a buffer of our own (or answer it, if it is a
/// management datagram); returns the flow it went to.
fn handle_datagram(shim: &Arc<UdpShim>, buf: &[u8], from: SocketAddr) -> Option<Arc<UdpPort>> {
    if buf.len() < 4 {
        shim.drop_bad();
        return None;
    }
    let eid = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if eid != 0 {
        return shim.deliver_to(eid, from, &buf[4..]);
    }
    match mgmt::parse(buf, shim.hash.hash_len()) {
        Ok(m) => shim.mgmt(m, from),
        Err(e) => {
            debug!("bad management datagram from {from}: {e}");
            shim.drop_bad();
        }
    }
    None
}

/// What one attempt to receive a datagram straight into a flow's ring found.
enum Direct {
    /// A datagram of the flow, now in its ring.
    Got,
    /// Nothing queued on the socket.
    Empty,
    /// A datagram for something else (another flow, management), copied into the buffer
    /// with its length and sender; or one to drop (`None`).
    Other(Option<(usize, SocketAddr)>),
    /// The ring has no room for the largest datagram, or the flow is gone.
    NoRoom,
}

/// Receive the next datagram, without waiting, straight into a record of `port`'s ring
/// (the endpoint id into the record's headroom, the payload where the application reads
/// it). The record is kept if the datagram is one of the flow's, from its peer; else it is
/// given back and the datagram copied into `buf`.
fn recv_direct(
    shim: &Arc<UdpShim>,
    sock: &UdpSocket,
    port: &Arc<UdpPort>,
    buf: &mut [u8],
) -> Direct {
    use rustix::net::RecvFlags;
    let hr = port.ep.headroom();
    let max_payload = MAX_DATAGRAM - 4;
    if hr < 4 || max_payload > port.ep.max_packet() {
        return Direct::NoRoom;
    }
    let mut res = Direct::Empty;
    let wrote = port.ep.try_write_with_opt(max_payload, |slot| {
        let dgram = &mut slot[hr - 4..];
        let cap = dgram.len();
        let flags = RecvFlags::DONTWAIT | RecvFlags::TRUNC;
        let (n, from) = match rustix::net::recvfrom(sock, &mut *dgram, flags) {
            Ok((_, n, from)) => (n, from.and_then(|a| SocketAddr::try_from(a).ok())),
            Err(e) => {
                if e != rustix::io::Errno::AGAIN && e != rustix::io::Errno::INTR {
                    debug!("recv: {e}");
                }
                return None;
            }
        };
        let Some(from) = from.filter(|_| n <= cap) else {
            shim.drop_bad();
            res = Direct::Other(None);
            return None;
        };
        let dgram = &dgram[..n];
        if n > 4 {
            let eid = u32::from_be_bytes([dgram[0], dgram[1], dgram[2], dgram[3]]);
            let mine = eid != 0
                && shim
                    .port_of(eid, from)
                    .is_some_and(|p| Arc::ptr_eq(&p, port));
            if mine {
                res = Direct::Got;
                return Some(n - 4);
            }
        }
        buf[..n].copy_from_slice(dgram);
        res = Direct::Other(Some((n, from)));
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
    use o7s::ctrl::msg::IpcpReq;
    use o7s_proto::QosSpec;

    fn bootstrap(irmd: &Rpc, port: u16) -> IpcpResp {
        let params = vec![
            ("ip".to_string(), "127.0.0.1".to_string()),
            ("port".to_string(), port.to_string()),
        ];
        let layer = "stop-test".to_string();
        request(irmd, IpcpReq::Bootstrap { layer, params })
    }

    fn free_port() -> u16 {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr").port()
    }

    fn new_ipcp(name: &str) -> Arc<ShimIpcp<UdpBoot>> {
        Arc::new(ShimIpcp::new(
            name,
            UdpBoot {
                kind: IpcpKind::Udp4,
            },
        ))
    }

    /// A flow comes in from a peer, then the IPCP is stopped: the application sees its flow
    /// go down, nothing holds the IPCP any more (so its threads are gone), and a new IPCP
    /// takes the same address and port at once.
    #[test]
    fn stop_drops_flows_threads_and_socket() {
        let port = free_port();
        let ipcp = new_ipcp("u0");
        let (irmd, apps) = connect(&ipcp);
        assert!(matches!(
            bootstrap(&irmd, port),
            IpcpResp::Bootstrapped { .. }
        ));
        let hash = HashAlgo::Md5.hash("srv");
        let reg = IpcpReq::Reg {
            name: "srv".into(),
            hash: hash.clone(),
        };
        assert_eq!(request(&irmd, reg), IpcpResp::Ok);

        // A peer asks for a flow to srv and sends a packet on it.
        let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
        peer.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let to = SocketAddr::from(([127, 0, 0, 1], port));
        let req = ShimMsg::FlowReq {
            requester: 99,
            qos: QosSpec::RAW,
            hash,
        };
        peer.send_to(&mgmt::encode(&req).expect("encode"), to)
            .expect("send");
        let app = apps.recv_timeout(Duration::from_secs(5)).expect("flow");
        let mut buf = [0u8; 128];
        let n = peer.recv(&mut buf).expect("reply");
        let ShimMsg::FlowReply {
            requester: 99,
            responder,
            response: 0,
        } = mgmt::parse(&buf[..n], 16).expect("parse")
        else {
            panic!("not an accepting flow reply");
        };
        let mut dgram = responder.to_be_bytes().to_vec();
        dgram.extend_from_slice(b"ping");
        peer.send_to(&dgram, to).expect("send");
        let deadline = Some(Instant::now() + Duration::from_secs(5));
        let n = app.read(&mut buf, deadline).expect("read");
        assert_eq!(&buf[..n], b"ping");

        let shim = Arc::downgrade(&ipcp.running().expect("running"));
        let dp = Arc::downgrade(&shim.upgrade().expect("shim").dp);
        ipcp.stop();
        ipcp.stop();
        // A new IPCP takes the port at once (bootstrap waits the moment it takes to be
        // let go).
        let next = new_ipcp("u1");
        let (irmd2, _apps2) = connect(&next);
        assert!(matches!(
            bootstrap(&irmd2, port),
            IpcpResp::Bootstrapped { .. }
        ));
        until("the flow is down", || app.is_down());
        until("the shim is dropped", || shim.upgrade().is_none());
        until("the dataplane is dropped", || dp.upgrade().is_none());

        next.stop();
        until("the port is free", || {
            UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], port))).is_ok()
        });
        irmd.shutdown();
        irmd2.shutdown();
    }

    /// Stop before bootstrap does nothing but refuse what follows; requests to a stopped
    /// IPCP are refused, not panicked on.
    #[test]
    fn requests_after_stop_are_refused() {
        let ipcp = new_ipcp("u2");
        let (irmd, _apps) = connect(&ipcp);
        ipcp.stop();
        let refused = |r: IpcpResp| matches!(r, IpcpResp::Err(IrmError::IpcpFailed { .. }));
        assert!(refused(bootstrap(&irmd, free_port())));
        irmd.shutdown();

        let ipcp = new_ipcp("u3");
        let (irmd, _apps) = connect(&ipcp);
        assert!(matches!(
            bootstrap(&irmd, free_port()),
            IpcpResp::Bootstrapped { .. }
        ));
        ipcp.stop();
        let hash = HashAlgo::Md5.hash("srv");
        let alloc = IpcpReq::FlowAlloc {
            flow_id: 1,
            hash: hash.clone(),
            qos: QosSpec::RAW,
            set: 0,
        };
        let reg = IpcpReq::Reg {
            name: "srv".into(),
            hash,
        };
        for req in [IpcpReq::Show, reg, alloc] {
            assert!(refused(request(&irmd, req)));
        }
        assert!(refused(bootstrap(&irmd, free_port())));
        irmd.shutdown();
    }
}
