//! The layer configuration an enrollment response carries (`ipcp_config_msg`, from the
//! prototype's `src/lib/pb/ipcp_config.proto` and `model.proto`, proto2): what a new member
//! needs to join — address and endpoint id sizes, TTL, routing and directory policies and
//! their timers, the name hash algorithm.
//!
//! ```text
//! message layer_info_msg     { required string name = 1; required uint32 dir_hash_algo = 2; }
//! message ls_config_msg      { required uint32 pol = 1; required uint32 t_recalc = 2;
//!                              required uint32 t_update = 3; required uint32 t_timeo = 4; }
//! message routing_config_msg { required uint32 pol = 1; optional ls_config_msg ls = 2; }
//! message dt_config_msg      { required uint32 addr_size = 1; required uint32 eid_size = 2;
//!                              required uint32 max_ttl = 3;
//!                              required routing_config_msg routing = 4; }
//! message dir_dht_config_msg { required uint32 alpha = 1; required uint32 k = 2;
//!                              required uint32 t_expire = 3; required uint32 t_refresh = 4;
//!                              required uint32 t_replicate = 5; required uint64 peer = 6; }
//! message dir_config_msg     { required uint32 pol = 1; optional dir_dht_config_msg dht = 2; }
//! message uni_config_msg     { required dt_config_msg dt = 1; required dir_config_msg dir = 2;
//!                              required uint32 addr_auth_type = 3;
//!                              required uint32 cong_avoid = 4; }
//! message eth_config_msg     { required string dev = 1; required uint32 ethertype = 2; }
//! message udp4_config_msg    { required uint32 ip_addr = 1; required uint32 port = 2;
//!                              required uint32 dns_addr = 3; }
//! message udp6_config_msg    { required bytes ip_addr = 1; required uint32 port = 2;
//!                              required bytes dns_addr = 3; }
//! message ipcp_config_msg    { required layer_info_msg layer_info = 1;
//!                              required uint32 ipcp_type = 2;
//!                              optional uni_config_msg unicast = 3;
//!                              optional udp4_config_msg udp4 = 4;
//!                              optional udp6_config_msg udp6 = 5;
//!                              optional eth_config_msg eth = 6; }
//! ```
//!
//! The prototype fills exactly the sub-message its type (or policy) needs and reads it back
//! without checking it is there; here a missing one is [`WireError::MissingField`], and those
//! another type would use are ignored. Numbers the prototype keeps in narrower C types
//! (sizes and TTL in `uint8_t`, ports and the ethertype in `uint16_t`) are refused when they
//! do not fit, as are unknown type and policy numbers. An IPv4 address travels as the
//! `s_addr` of a `struct in_addr` read as a host integer: on x86-64 the octets a.b.c.d are
//! the little-endian integer `d << 24 | c << 16 | b << 8 | a`.

use super::pb::{req, u8_of};
use super::{Result, WireError};
use crate::wire::{dht, lsu};
use crate::HashAlgo;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest layer name or device name the prototype holds (`LAYER_NAME_SIZE`, `DEV_NAME_SIZE`).
pub const NAME_SIZE: usize = 255;

/// The layer's name and how it hashes names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub name: String,
    /// One of the SHA3 variants (`dir_hash_algo` 0..=3: SHA3-224, -256, -384, -512).
    pub dir_hash_algo: HashAlgo,
}

/// What kind of IPCP, with its kind's configuration (`ipcp_type` 0..=6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpcpKind {
    Local,
    Unicast(UniConfig),
    Broadcast,
    EthLlc(EthConfig),
    EthDix(EthConfig),
    Udp4(Udp4Config),
    Udp6(Udp6Config),
}

/// A layer configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcpConfig {
    pub layer_info: LayerInfo,
    pub kind: IpcpKind,
}

/// A unicast layer's configuration. [`Default`] is the prototype's `default_uni_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniConfig {
    pub dt: DtConfig,
    pub dir: DirConfig,
    pub addr_auth: AddrAuth,
    pub cong_avoid: CongAvoid,
}

/// The data transfer configuration (`dt_config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtConfig {
    pub addr_size: u8,
    pub eid_size: u8,
    pub max_ttl: u8,
    pub routing: Routing,
}

/// The routing policy and its parameters (`routing_config`; `pol` 0 is link state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    LinkState(LsConfig),
}

/// Link-state routing parameters (`ls_config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsConfig {
    pub pol: LsPolicy,
    pub t_recalc: u32,
    pub t_update: u32,
    pub t_timeo: u32,
}

/// How forwarding tables are computed from the link-state graph (`pol_link_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LsPolicy {
    /// Shortest path.
    #[default]
    Simple = 0,
    /// Loop-free alternates.
    Lfa = 1,
    /// Equal-cost multipath.
    Ecmp = 2,
}

/// The directory policy and its parameters (`dir_config`; `pol` 0 is the DHT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirConfig {
    Dht(DhtConfig),
}

/// The DHT's Kademlia parameters (`dir_dht_config`), and a member to bootstrap from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtConfig {
    pub alpha: u32,
    pub k: u32,
    pub t_expire: u32,
    pub t_refresh: u32,
    pub t_replicate: u32,
    /// In an enrollment response: the enroller's address, the newcomer's first DHT contact.
    pub peer: u64,
}

/// Address authority policy (`pol_addr_auth`): only flat random addresses exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AddrAuth {
    #[default]
    FlatRandom = 0,
}

/// Congestion avoidance policy (`pol_cong_avoid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CongAvoid {
    None = 0,
    /// Multi-bit ECN, the default.
    #[default]
    MbEcn = 1,
}

/// An Ethernet shim's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthConfig {
    pub dev: String,
    /// Host order (eth-dix only; default 0xA000).
    pub ethertype: u16,
}

/// The udp4 shim's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udp4Config {
    pub ip_addr: Ipv4Addr,
    pub port: u16,
    /// 0.0.0.0 when unused.
    pub dns_addr: Ipv4Addr,
}

/// The udp6 shim's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udp6Config {
    pub ip_addr: Ipv6Addr,
    pub port: u16,
    pub dns_addr: Ipv6Addr,
}

impl Default for LsConfig {
    fn default() -> Self {
        LsConfig {
            pol: LsPolicy::Simple,
            t_recalc: lsu::consts::T_RECALC,
            t_update: lsu::consts::T_UPDATE,
            t_timeo: lsu::consts::T_TIMEO,
        }
    }
}

impl Default for DtConfig {
    fn default() -> Self {
        DtConfig {
            addr_size: super::dt::DEFAULT_ADDR_SIZE,
            eid_size: super::dt::EID_SIZE,
            max_ttl: super::dt::DEFAULT_MAX_TTL,
            routing: Routing::LinkState(LsConfig::default()),
        }
    }
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig {
            alpha: dht::consts::ALPHA,
            k: dht::consts::K,
            t_expire: dht::consts::T_EXPIRE,
            t_refresh: dht::consts::T_REFRESH,
            t_replicate: dht::consts::T_REPLICATE,
            peer: 0,
        }
    }
}

impl Default for UniConfig {
    fn default() -> Self {
        UniConfig {
            dt: DtConfig::default(),
            dir: DirConfig::Dht(DhtConfig::default()),
            addr_auth: AddrAuth::FlatRandom,
            cong_avoid: CongAvoid::MbEcn,
        }
    }
}

/// The prototype's schema, required scalars as `Option` to see their absence.
pub(crate) mod raw {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LayerInfoMsg {
        #[prost(string, optional, tag = "1")]
        pub name: Option<String>,
        #[prost(uint32, optional, tag = "2")]
        pub dir_hash_algo: Option<u32>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LsConfigMsg {
        #[prost(uint32, optional, tag = "1")]
        pub pol: Option<u32>,
        #[prost(uint32, optional, tag = "2")]
        pub t_recalc: Option<u32>,
        #[prost(uint32, optional, tag = "3")]
        pub t_update: Option<u32>,
        #[prost(uint32, optional, tag = "4")]
        pub t_timeo: Option<u32>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RoutingConfigMsg {
        #[prost(uint32, optional, tag = "1")]
        pub pol: Option<u32>,
        #[prost(message, optional, tag = "2")]
        pub ls: Option<LsConfigMsg>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DtConfigMsg {
        #[prost(uint32, optional, tag = "1")]
        pub addr_size: Option<u32>,
        #[prost(uint32, optional, tag = "2")]
        pub eid_size: Option<u32>,
        #[prost(uint32, optional, tag = "3")]
        pub max_ttl: Option<u32>,
        #[prost(message, optional, tag = "4")]
        pub routing: Option<RoutingConfigMsg>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DirDhtConfigMsg {
        #[prost(uint32, optional, tag = "1")]
        pub alpha: Option<u32>,
        #[prost(uint32, optional, tag = "2")]
        pub k: Option<u32>,
        #[prost(uint32, optional, tag = "3")]
        pub t_expire: Option<u32>,
        #[prost(uint32, optional, tag = "4")]
        pub t_refresh: Option<u32>,
        #[prost(uint32, optional, tag = "5")]
        pub t_replicate: Option<u32>,
        #[prost(uint64, optional, tag = "6")]
        pub peer: Option<u64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DirConfigMsg {
        #[prost(uint32, optional, tag = "1")]
        pub pol: Option<u32>,
        #[prost(message, optional, tag = "2")]
        pub dht: Option<DirDhtConfigMsg>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct UniConfigMsg {
        #[prost(message, optional, tag = "1")]
        pub dt: Option<DtConfigMsg>,
        #[prost(message, optional, tag = "2")]
        pub dir: Option<DirConfigMsg>,
        #[prost(uint32, optional, tag = "3")]
        pub addr_auth_type: Option<u32>,
        #[prost(uint32, optional, tag = "4")]
        pub cong_avoid: Option<u32>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EthConfigMsg {
        #[prost(string, optional, tag = "1")]
        pub dev: Option<String>,
        #[prost(uint32, optional, tag = "2")]
        pub ethertype: Option<u32>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Udp4ConfigMsg {
        #[prost(uint32, optional, tag = "1")]
        pub ip_addr: Option<u32>,
        #[prost(uint32, optional, tag = "2")]
        pub port: Option<u32>,
        #[prost(uint32, optional, tag = "3")]
        pub dns_addr: Option<u32>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Udp6ConfigMsg {
        #[prost(bytes = "vec", optional, tag = "1")]
        pub ip_addr: Option<Vec<u8>>,
        #[prost(uint32, optional, tag = "2")]
        pub port: Option<u32>,
        #[prost(bytes = "vec", optional, tag = "3")]
        pub dns_addr: Option<Vec<u8>>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IpcpConfigMsg {
        #[prost(message, optional, tag = "1")]
        pub layer_info: Option<LayerInfoMsg>,
        #[prost(uint32, optional, tag = "2")]
        pub ipcp_type: Option<u32>,
        #[prost(message, optional, tag = "3")]
        pub unicast: Option<UniConfigMsg>,
        #[prost(message, optional, tag = "4")]
        pub udp4: Option<Udp4ConfigMsg>,
        #[prost(message, optional, tag = "5")]
        pub udp6: Option<Udp6ConfigMsg>,
        #[prost(message, optional, tag = "6")]
        pub eth: Option<EthConfigMsg>,
    }
}

fn bad(field: &'static str, value: u64) -> WireError {
    WireError::BadValue { field, value }
}

fn name(v: Option<String>, field: &'static str) -> Result<String> {
    let s = req(v, field)?;
    check_name(&s, field)?;
    Ok(s)
}

fn check_name(s: &str, field: &'static str) -> Result<()> {
    if s.len() > NAME_SIZE {
        return Err(WireError::BadLength {
            field,
            value: s.len(),
        });
    }
    Ok(())
}

fn u16_of(v: Option<u32>, field: &'static str) -> Result<u16> {
    let v = req(v, field)?;
    u16::try_from(v).map_err(|_| bad(field, u64::from(v)))
}

fn hash_algo(v: u32) -> Result<HashAlgo> {
    Ok(match v {
        0 => HashAlgo::Sha3_224,
        1 => HashAlgo::Sha3_256,
        2 => HashAlgo::Sha3_384,
        3 => HashAlgo::Sha3_512,
        other => return Err(bad("dir_hash_algo", u64::from(other))),
    })
}

fn hash_algo_num(a: HashAlgo) -> Result<u32> {
    Ok(match a {
        HashAlgo::Sha3_224 => 0,
        HashAlgo::Sha3_256 => 1,
        HashAlgo::Sha3_384 => 2,
        HashAlgo::Sha3_512 => 3,
        HashAlgo::Md5 => return Err(bad("dir_hash_algo", 4)),
    })
}

fn ip6(v: Option<Vec<u8>>, field: &'static str) -> Result<Ipv6Addr> {
    let v = req(v, field)?;
    <[u8; 16]>::try_from(&v[..])
        .map(Ipv6Addr::from)
        .map_err(|_| WireError::BadLength {
            field,
            value: v.len(),
        })
}

fn ls_config(m: raw::LsConfigMsg) -> Result<LsConfig> {
    let pol = match req(m.pol, "ls pol")? {
        0 => LsPolicy::Simple,
        1 => LsPolicy::Lfa,
        2 => LsPolicy::Ecmp,
        other => return Err(bad("ls pol", u64::from(other))),
    };
    Ok(LsConfig {
        pol,
        t_recalc: req(m.t_recalc, "t_recalc")?,
        t_update: req(m.t_update, "t_update")?,
        t_timeo: req(m.t_timeo, "t_timeo")?,
    })
}

fn uni_config(m: raw::UniConfigMsg) -> Result<UniConfig> {
    let dt = req(m.dt, "dt")?;
    let routing = req(dt.routing, "routing")?;
    let routing = match req(routing.pol, "routing pol")? {
        0 => Routing::LinkState(ls_config(req(routing.ls, "ls")?)?),
        other => return Err(bad("routing pol", u64::from(other))),
    };
    let dir = req(m.dir, "dir")?;
    let dir = match req(dir.pol, "dir pol")? {
        0 => {
            let d = req(dir.dht, "dht")?;
            DirConfig::Dht(DhtConfig {
                alpha: req(d.alpha, "alpha")?,
                k: req(d.k, "k")?,
                t_expire: req(d.t_expire, "t_expire")?,
                t_refresh: req(d.t_refresh, "t_refresh")?,
                t_replicate: req(d.t_replicate, "t_replicate")?,
                peer: req(d.peer, "peer")?,
            })
        }
        other => return Err(bad("dir pol", u64::from(other))),
    };
    Ok(UniConfig {
        dt: DtConfig {
            addr_size: u8_of(dt.addr_size, "addr_size")?,
            eid_size: u8_of(dt.eid_size, "eid_size")?,
            max_ttl: u8_of(dt.max_ttl, "max_ttl")?,
            routing,
        },
        dir,
        addr_auth: match req(m.addr_auth_type, "addr_auth_type")? {
            0 => AddrAuth::FlatRandom,
            other => return Err(bad("addr_auth_type", u64::from(other))),
        },
        cong_avoid: match req(m.cong_avoid, "cong_avoid")? {
            0 => CongAvoid::None,
            1 => CongAvoid::MbEcn,
            other => return Err(bad("cong_avoid", u64::from(other))),
        },
    })
}

fn eth_config(m: Option<raw::EthConfigMsg>) -> Result<EthConfig> {
    let m = req(m, "eth")?;
    Ok(EthConfig {
        dev: name(m.dev, "dev")?,
        ethertype: u16_of(m.ethertype, "ethertype")?,
    })
}

impl IpcpConfig {
    pub(crate) fn from_raw(m: raw::IpcpConfigMsg) -> Result<IpcpConfig> {
        let li = req(m.layer_info, "layer_info")?;
        let layer_info = LayerInfo {
            name: name(li.name, "layer name")?,
            dir_hash_algo: hash_algo(req(li.dir_hash_algo, "dir_hash_algo")?)?,
        };
        let kind = match req(m.ipcp_type, "ipcp_type")? {
            0 => IpcpKind::Local,
            1 => IpcpKind::Unicast(uni_config(req(m.unicast, "unicast")?)?),
            2 => IpcpKind::Broadcast,
            3 => IpcpKind::EthLlc(eth_config(m.eth)?),
            4 => IpcpKind::EthDix(eth_config(m.eth)?),
            5 => {
                let u = req(m.udp4, "udp4")?;
                IpcpKind::Udp4(Udp4Config {
                    ip_addr: Ipv4Addr::from(req(u.ip_addr, "ip_addr")?.to_le_bytes()),
                    port: u16_of(u.port, "port")?,
                    dns_addr: Ipv4Addr::from(req(u.dns_addr, "dns_addr")?.to_le_bytes()),
                })
            }
            6 => {
                let u = req(m.udp6, "udp6")?;
                IpcpKind::Udp6(Udp6Config {
                    ip_addr: ip6(u.ip_addr, "ip_addr")?,
                    port: u16_of(u.port, "port")?,
                    dns_addr: ip6(u.dns_addr, "dns_addr")?,
                })
            }
            other => return Err(bad("ipcp_type", u64::from(other))),
        };
        Ok(IpcpConfig { layer_info, kind })
    }

    pub(crate) fn to_raw(&self) -> Result<raw::IpcpConfigMsg> {
        check_name(&self.layer_info.name, "layer name")?;
        let mut m = raw::IpcpConfigMsg {
            layer_info: Some(raw::LayerInfoMsg {
                name: Some(self.layer_info.name.clone()),
                dir_hash_algo: Some(hash_algo_num(self.layer_info.dir_hash_algo)?),
            }),
            ipcp_type: Some(self.type_num()),
            ..Default::default()
        };
        match &self.kind {
            IpcpKind::Local | IpcpKind::Broadcast => {}
            IpcpKind::Unicast(u) => m.unicast = Some(uni_raw(u)),
            IpcpKind::EthLlc(e) | IpcpKind::EthDix(e) => {
                check_name(&e.dev, "dev")?;
                m.eth = Some(raw::EthConfigMsg {
                    dev: Some(e.dev.clone()),
                    ethertype: Some(u32::from(e.ethertype)),
                });
            }
            IpcpKind::Udp4(u) => {
                m.udp4 = Some(raw::Udp4ConfigMsg {
                    ip_addr: Some(u32::from_le_bytes(u.ip_addr.octets())),
                    port: Some(u32::from(u.port)),
                    dns_addr: Some(u32::from_le_bytes(u.dns_addr.octets())),
                })
            }
            IpcpKind::Udp6(u) => {
                m.udp6 = Some(raw::Udp6ConfigMsg {
                    ip_addr: Some(u.ip_addr.octets().to_vec()),
                    port: Some(u32::from(u.port)),
                    dns_addr: Some(u.dns_addr.octets().to_vec()),
                })
            }
        }
        Ok(m)
    }

    /// The prototype's `ipcp_type` number.
    pub fn type_num(&self) -> u32 {
        match self.kind {
            IpcpKind::Local => 0,
            IpcpKind::Unicast(_) => 1,
            IpcpKind::Broadcast => 2,
            IpcpKind::EthLlc(_) => 3,
            IpcpKind::EthDix(_) => 4,
            IpcpKind::Udp4(_) => 5,
            IpcpKind::Udp6(_) => 6,
        }
    }
}

fn uni_raw(u: &UniConfig) -> raw::UniConfigMsg {
    let Routing::LinkState(ls) = &u.dt.routing;
    let DirConfig::Dht(d) = &u.dir;
    raw::UniConfigMsg {
        dt: Some(raw::DtConfigMsg {
            addr_size: Some(u32::from(u.dt.addr_size)),
            eid_size: Some(u32::from(u.dt.eid_size)),
            max_ttl: Some(u32::from(u.dt.max_ttl)),
            routing: Some(raw::RoutingConfigMsg {
                pol: Some(0),
                ls: Some(raw::LsConfigMsg {
                    pol: Some(ls.pol as u32),
                    t_recalc: Some(ls.t_recalc),
                    t_update: Some(ls.t_update),
                    t_timeo: Some(ls.t_timeo),
                }),
            }),
        }),
        dir: Some(raw::DirConfigMsg {
            pol: Some(0),
            dht: Some(raw::DirDhtConfigMsg {
                alpha: Some(d.alpha),
                k: Some(d.k),
                t_expire: Some(d.t_expire),
                t_refresh: Some(d.t_refresh),
                t_replicate: Some(d.t_replicate),
                peer: Some(d.peer),
            }),
        }),
        addr_auth_type: Some(u.addr_auth as u32),
        cong_avoid: Some(u.cong_avoid as u32),
    }
}

#[cfg(test)]
pub(crate) mod tests;
