//! The local IPCP: a layer of one host. It keeps the names registered in it and answers flow
//! requests; the two applications of a local flow then share one pair of rings directly, so a
//! packet costs one wake-up, and this process never sees it.

use crate::IpcpLogic;
use o7s::ctrl::msg::{IpcpNote, IpcpReq, IpcpResp, IrmError};
use o7s::ctrl::rpc::Rpc;
use o7s_proto::{HashAlgo, NameHash};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tracing::{info, warn};

struct State {
    layer: Option<String>,
    hash: HashAlgo,
    names: HashSet<NameHash>,
}

pub struct Local {
    name: String,
    st: Mutex<State>,
}

impl Local {
    pub fn new(name: &str) -> Local {
        Local {
            name: name.to_string(),
            st: Mutex::new(State {
                layer: None,
                hash: HashAlgo::default(),
                names: HashSet::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn answer(&self, req: IpcpReq, rpc: &Arc<Rpc>) -> Result<IpcpResp, IrmError> {
        match req {
            IpcpReq::Bootstrap { layer, params } => {
                let mut hash = HashAlgo::default();
                for (k, v) in params {
                    match k.as_str() {
                        "hash" => {
                            hash = v.parse().map_err(|e: o7s_proto::hash::UnknownHash| {
                                IrmError::BadParam {
                                    key: k.clone(),
                                    value: v.clone(),
                                    why: e.to_string(),
                                }
                            })?
                        }
                        _ => {
                            return Err(IrmError::BadParam {
                                key: k,
                                value: v,
                                why: "a local layer takes only `hash`".into(),
                            })
                        }
                    }
                }
                let mut st = self.lock();
                if let Some(l) = &st.layer {
                    return Err(IrmError::AlreadyBootstrapped {
                        name: self.name.clone(),
                        layer: l.clone(),
                    });
                }
                st.layer = Some(layer.clone());
                st.hash = hash;
                info!(
                    "Bootstrapped local IPCP {} in layer {layer} ({hash}).",
                    self.name
                );
                Ok(IpcpResp::Bootstrapped {
                    layer,
                    hash,
                    mtu: u32::MAX,
                })
            }
            IpcpReq::Reg { name, hash } => {
                self.operational()?;
                self.lock().names.insert(hash);
                info!("Registered {name}.");
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Unreg { hash } => {
                self.lock().names.remove(&hash);
                Ok(IpcpResp::Ok)
            }
            IpcpReq::Query { hash } => Ok(IpcpResp::Bool(self.lock().names.contains(&hash))),
            IpcpReq::FlowAlloc {
                flow_id, hash, qos, ..
            } => {
                self.operational()?;
                if !self.lock().names.contains(&hash) {
                    return Err(IrmError::NameNotFound {
                        name: hash.to_string(),
                    });
                }
                // The request arrives at this same layer: hand it to the IRMd's acceptor side,
                // naming the allocating flow so both ends share the rings.
                let note = IpcpNote::FlowReqArr {
                    hash,
                    qos,
                    local_peer: Some(flow_id),
                };
                match rpc.notify(note, &[], None) {
                    Ok((IpcpResp::FlowAccepted { .. }, _)) => Ok(IpcpResp::Ok),
                    Ok((IpcpResp::Err(e), _)) => Err(e),
                    Ok((other, _)) => Err(IrmError::Internal(format!("unexpected {other:?}"))),
                    Err(e) => Err(IrmError::Internal(e.to_string())),
                }
            }
            IpcpReq::FlowDealloc { .. } => Ok(IpcpResp::Ok),
            IpcpReq::Enroll { .. }
            | IpcpReq::Connect { .. }
            | IpcpReq::Disconnect { .. }
            | IpcpReq::FlowJoin { .. } => Err(req_refused(&req)),
            IpcpReq::Show => {
                let st = self.lock();
                Ok(IpcpResp::Show(vec![
                    ("layer".into(), st.layer.clone().unwrap_or_default()),
                    ("hash".into(), st.hash.to_string()),
                    ("names".into(), st.names.len().to_string()),
                ]))
            }
        }
    }

    fn operational(&self) -> Result<(), IrmError> {
        if self.lock().layer.is_none() {
            return Err(IrmError::NotBootstrapped {
                name: self.name.clone(),
            });
        }
        Ok(())
    }
}

fn req_refused(req: &IpcpReq) -> IrmError {
    req.not_for("local")
        .unwrap_or_else(|| IrmError::Internal("unexpected request".into()))
}

impl IpcpLogic for Local {
    fn handle(&self, rpc: &Arc<Rpc>, id: u64, req: IpcpReq, _fds: Vec<rustix::fd::OwnedFd>) {
        let answer = self.answer(req, rpc).unwrap_or_else(IpcpResp::Err);
        if let Err(e) = rpc.reply(id, answer, &[]) {
            warn!("cannot answer the IRMd: {e}");
        }
    }
}
