//! The broadcast IPCP: a flooding layer over flows of lower layers (a software hub), as the
//! prototype's `ipcpd/broadcast`.
//!
//! Members enroll through a member they can reach in a lower layer (which hands them the
//! layer's name and hash algorithm) and connect data transfer (`dt`) neighbours over lower
//! flows. Applications join the layer (`Flow::join`); their flows are carried by the shared
//! [`Dataplane`]. Every packet that arrives on one flow, a neighbour's or an application's,
//! is written unmodified to all the others ([`hub`]). There are no addresses, no names and no
//! directory in a broadcast layer, and no duplicate suppression: its connections must form a
//! tree.

mod conn;
mod hub;

use crate::common::enroll;
use crate::dataplane::{Dataplane, Egress};
use crate::IpcpLogic;
use conn::Nb;
use hub::{Hub, Outlet, PortId};
use o7s::ctrl::msg::{IpcpNote, IpcpReq, IpcpResp, IrmError};
use o7s::ctrl::rpc::Rpc;
use o7s_proto::wire::ipcp_config::{IpcpConfig, IpcpKind, LayerInfo};
use o7s_proto::HashAlgo;
use rustix::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;
use tracing::{info, warn};

/// The MTU of a member without neighbours (the prototype's `BROADCAST_MTU`).
const DEFAULT_MTU: u32 = 1400;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The dataplane's egress of a broadcast member: what an application writes goes to the hub.
#[derive(Default)]
pub struct BcEgress {
    bc: OnceLock<Weak<Bc>>,
}

impl Egress for BcEgress {
    /// The flow id of the application's flow.
    type Peer = u64;

    fn send(&self, flow_id: &u64, buf: &mut [u8], off: usize) {
        if let Some(bc) = self.bc.get().and_then(Weak::upgrade) {
            bc.hub.flood(PortId::Local(*flow_id), &buf[off..]);
        }
    }

    fn closed(&self, flow_id: u64, _peer: &u64, _timed_out: bool) {
        if let Some(bc) = self.bc.get().and_then(Weak::upgrade) {
            if bc.hub.remove(PortId::Local(flow_id)) {
                info!(flow = flow_id, "An application left layer {}.", bc.layer);
            }
        }
    }
}

/// An application's flow as a port of the hub: the IPCP's end of its rings.
struct Local {
    port: Arc<crate::dataplane::Port<u64>>,
}

impl Outlet for Local {
    fn port(&self) -> PortId {
        PortId::Local(self.port.flow_id)
    }

    fn offer(&self, pkt: &[u8]) -> bool {
        match self.port.ep.try_write(pkt) {
            Ok(()) => {
                self.port.rx_packets.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.port.rx_drops.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// A running member of a broadcast layer.
pub struct Bc {
    pub name: String,
    pub layer: String,
    rpc: Arc<Rpc>,
    pub hub: Hub,
    dp: Arc<Dataplane<BcEgress>>,
    nbs: RwLock<Vec<Arc<Nb>>>,
    next_nb: AtomicU64,
    mtu: AtomicU32,
}

impl Bc {
    fn start(name: &str, layer: &str, rpc: &Arc<Rpc>) -> Result<Arc<Bc>, IrmError> {
        let egress = Arc::new(BcEgress::default());
        let dp = Dataplane::new(egress.clone()).map_err(|e| IrmError::Internal(e.to_string()))?;
        let bc = Arc::new(Bc {
            name: name.to_string(),
            layer: layer.to_string(),
            rpc: rpc.clone(),
            hub: Hub::default(),
            dp,
            nbs: RwLock::new(Vec::new()),
            next_nb: AtomicU64::new(1),
            mtu: AtomicU32::new(DEFAULT_MTU),
        });
        let _ = egress.bc.set(Arc::downgrade(&bc));
        bc.accept_loop();
        info!("IPCP {name} is a member of broadcast layer {layer}.");
        Ok(bc)
    }

    fn bootstrapped(&self) -> IpcpResp {
        IpcpResp::Bootstrapped {
            layer: self.layer.clone(),
            hash: HashAlgo::Sha3_256,
            mtu: self.mtu.load(Ordering::Relaxed),
        }
    }

    /// What a member hands a newcomer: the layer's name and hash algorithm.
    fn config(&self) -> IpcpConfig {
        IpcpConfig {
            layer_info: LayerInfo {
                name: self.layer.clone(),
                dir_hash_algo: HashAlgo::Sha3_256,
            },
            kind: IpcpKind::Broadcast,
        }
    }

    fn nbs(&self) -> Vec<Arc<Nb>> {
        self.nbs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The MTU follows the neighbours: the smallest lower MTU (no header of our own).
    fn update_mtu(&self) {
        let lowest = self.nbs().iter().map(|n| n.flow.mtu()).min();
        let mtu = lowest.map_or(DEFAULT_MTU, |m| m.min(u32::MAX as usize) as u32);
        if self.mtu.swap(mtu, Ordering::Relaxed) != mtu {
            info!("MTU of layer {} is now {mtu}.", self.layer);
            let rpc = self.rpc.clone();
            let _ = std::thread::Builder::new()
                .name("mtu".into())
                .spawn(move || {
                    let _ = rpc.notify(IpcpNote::Mtu { mtu }, &[], Some(Duration::from_secs(5)));
                });
        }
    }

    /// A local application joins with flow `flow_id` (the IPCP's end in `fds`).
    fn join(
        &self,
        flow_id: u64,
        hash: &o7s_proto::NameHash,
        fds: Vec<OwnedFd>,
    ) -> Result<(), IrmError> {
        if *hash != HashAlgo::Sha3_256.hash(&self.layer) {
            return Err(IrmError::BadParam {
                key: "layer".into(),
                value: hash.to_string(),
                why: format!("this IPCP is a member of broadcast layer {}", self.layer),
            });
        }
        // No keepalives on an application's flow: the IRMd takes it down when the
        // application goes.
        let port = self
            .dp
            .add(flow_id, (0, fds), o7s_shm::Side::B, flow_id, Duration::ZERO)
            .map_err(IrmError::Internal)?;
        self.hub.add(Arc::new(Local { port }));
        info!(
            flow = flow_id,
            "An application joined layer {}.", self.layer
        );
        Ok(())
    }

    fn answer(self: &Arc<Self>, req: IpcpReq, fds: Vec<OwnedFd>) -> Result<IpcpResp, IrmError> {
        match req {
            IpcpReq::Bootstrap { .. } | IpcpReq::Enroll { .. } => {
                Err(IrmError::AlreadyBootstrapped {
                    name: self.name.clone(),
                    layer: self.layer.clone(),
                })
            }
            IpcpReq::Reg { name, .. } => Err(IrmError::BadRequest {
                why: format!(
                    "a broadcast layer has no names: {name} cannot be registered in {}; \
                     applications join the layer (obc -n {})",
                    self.layer, self.layer
                ),
            }),
            IpcpReq::Unreg { .. } => Ok(IpcpResp::Ok),
            IpcpReq::Query { .. } => Ok(IpcpResp::Bool(false)),
            IpcpReq::FlowAlloc { .. } => Err(IrmError::BadRequest {
                why: format!(
                    "flows to names do not run over broadcast layer {}; join it instead",
                    self.layer
                ),
            }),
            IpcpReq::FlowJoin { flow_id, hash, .. } => {
                self.join(flow_id, &hash, fds)?;
                Ok(IpcpResp::Ok)
            }
            IpcpReq::FlowDealloc { flow_id } => {
                self.dp.remove(flow_id);
                self.hub.remove(PortId::Local(flow_id));
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Connect {
                component,
                dst,
                qos,
            } => {
                self.connect(&component, &dst, qos.as_deref())?;
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Disconnect { component, dst } => {
                self.disconnect(&component, &dst)?;
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Show => Ok(IpcpResp::Show(self.show())),
        }
    }

    fn show(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = vec![
            ("layer".into(), self.layer.clone()),
            ("hash".into(), HashAlgo::Sha3_256.to_string()),
            ("mtu".into(), self.mtu.load(Ordering::Relaxed).to_string()),
        ];
        for n in self.nbs() {
            v.push((format!("neighbour {}", n.id), conn::describe(&n)));
        }
        for p in self.hub.ports() {
            let PortId::Local(flow_id) = p else { continue };
            if let Some(p) = self.dp.get(flow_id) {
                v.push((
                    format!("flow {flow_id}"),
                    format!(
                        "local rx {} tx {} dropped {}",
                        p.rx_packets.load(Ordering::Relaxed),
                        p.tx_packets.load(Ordering::Relaxed),
                        p.rx_drops.load(Ordering::Relaxed)
                    ),
                ));
            }
        }
        let s = &self.hub.stats;
        for (k, c) in [
            ("packets flooded", &s.packets),
            ("copies sent", &s.copies),
            ("copies dropped", &s.dropped),
        ] {
            v.push((k.into(), c.load(Ordering::Relaxed).to_string()));
        }
        v
    }
}

/// The IPCP before and after it joins a layer.
pub struct BroadcastIpcp {
    name: String,
    run: Mutex<Option<Arc<Bc>>>,
    /// Held while bootstrapping or enrolling, so two attempts cannot race.
    joining: Mutex<()>,
}

impl BroadcastIpcp {
    pub fn new(name: &str) -> BroadcastIpcp {
        BroadcastIpcp {
            name: name.to_string(),
            run: Mutex::new(None),
            joining: Mutex::new(()),
        }
    }

    fn already(&self) -> Option<IrmError> {
        lock(&self.run)
            .as_ref()
            .map(|b| IrmError::AlreadyBootstrapped {
                name: self.name.clone(),
                layer: b.layer.clone(),
            })
    }

    fn answer(
        &self,
        req: IpcpReq,
        fds: Vec<OwnedFd>,
        rpc: &Arc<Rpc>,
    ) -> Result<IpcpResp, IrmError> {
        if let Some(bc) = lock(&self.run).clone() {
            return bc.answer(req, fds);
        }
        match req {
            IpcpReq::Bootstrap { layer, params } => {
                let _j = lock(&self.joining);
                if let Some(e) = self.already() {
                    return Err(e);
                }
                check_params(&params)?;
                let bc = Bc::start(&self.name, &layer, rpc)?;
                let answer = bc.bootstrapped();
                *lock(&self.run) = Some(bc);
                Ok(answer)
            }
            IpcpReq::Enroll { dst } => {
                let _j = lock(&self.joining);
                if let Some(e) = self.already() {
                    return Err(e);
                }
                info!("Enrolling through {dst}.");
                let failed = |why: String| IrmError::IpcpFailed {
                    name: self.name.clone(),
                    why: format!("enrollment through {dst} failed: {why}"),
                };
                let e = enroll::request(&dst, "broadcast").map_err(failed)?;
                let conf = &e.conf;
                if conf.kind != IpcpKind::Broadcast {
                    enroll::acknowledge(&e.flow, e.id, false);
                    return Err(failed(format!(
                        "{dst} is a member of layer {}, which is not a broadcast layer",
                        conf.layer_info.name
                    )));
                }
                let started = Bc::start(&self.name, &conf.layer_info.name, rpc);
                enroll::acknowledge(&e.flow, e.id, started.is_ok());
                let bc = started?;
                info!("Enrolled in layer {} through {dst}.", bc.layer);
                let answer = bc.bootstrapped();
                *lock(&self.run) = Some(bc);
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

/// A broadcast layer takes no parameters but its hash, which is always SHA3-256 (as the
/// prototype's).
fn check_params(params: &[(String, String)]) -> Result<(), IrmError> {
    for (k, v) in params {
        let ok = k == "hash" && v.parse::<HashAlgo>().is_ok_and(|h| h == HashAlgo::Sha3_256);
        if !ok {
            return Err(IrmError::BadParam {
                key: k.clone(),
                value: v.clone(),
                why: "a broadcast layer takes no parameters (its hash is SHA3_256)".into(),
            });
        }
    }
    Ok(())
}

impl IpcpLogic for BroadcastIpcp {
    fn handle(&self, rpc: &Arc<Rpc>, id: u64, req: IpcpReq, fds: Vec<OwnedFd>) {
        let answer = self.answer(req, fds, rpc).unwrap_or_else(IpcpResp::Err);
        if let Err(e) = rpc.reply(id, answer, &[]) {
            warn!("cannot answer the IRMd: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_prototypes_hash_is_a_parameter() {
        let kv = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(check_params(&[]).is_ok());
        assert!(check_params(&kv("hash", "SHA3_256")).is_ok());
        for (k, v) in [("hash", "SHA3_512"), ("addr", "4"), ("hash", "md5")] {
            let e = check_params(&kv(k, v));
            assert!(
                matches!(&e, Err(IrmError::BadParam { key, .. }) if key == k),
                "{e:?}"
            );
        }
    }

    #[test]
    fn the_dt_cep_message_is_the_prototypes() {
        let m = conn::dt_cep();
        assert_eq!(m.comp_name, "Data Transfer");
        assert_eq!((m.protocol.as_str(), m.pref_version, m.address), ("", 0, 0));
        let back = o7s_proto::wire::cep::CepMsg::parse(&m.to_vec().unwrap_or_default());
        assert_eq!(back.ok(), Some(m));
    }
}
