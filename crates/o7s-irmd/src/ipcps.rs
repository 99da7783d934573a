//! The IPCP requests of the IRMd: create, destroy, bootstrap, enroll, connect, show. The IRMd
//! starts IPCPs, relays these requests to them and records what they answer (the layer, its
//! hash algorithm, the MTU); what bootstrapping or enrolling means is the IPCP's business.

use crate::irmd::{check_name, ok, rpc_err, Answer, Irmd, IPCP_TIMEOUT};
use o7s::ctrl::msg::{BindTarget, IpcpKind, IpcpReq, IpcpResp, IrmError, IrmResp};
use o7s::ctrl::rpc::{Rpc, RpcError};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// How long the IRMd waits for an enrollment: the IPCP allocates a flow to its peer in a
/// lower layer, exchanges the enrollment messages and may start its first connections.
pub const ENROLL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the IRMd waits for a connection (or disconnection) of a component: a flow
/// allocation to the peer and its component handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Unicast and broadcast IPCPs enroll, connect and are applications of the layers below;
/// the others (`local` and the shims) sit on a medium and are only bootstrapped.
pub fn is_layered(kind: IpcpKind) -> bool {
    matches!(kind, IpcpKind::Unicast | IpcpKind::Broadcast)
}

impl Irmd {
    /// Send `req` to IPCP `name` and wait at most `timeout` for its answer; an `Err` answer
    /// is returned as the error it carries.
    pub(crate) fn ask(
        &self,
        name: &str,
        req: IpcpReq,
        timeout: Duration,
    ) -> Result<IpcpResp, IrmError> {
        let rpc = self.rpc_of(name)?;
        match rpc.request(req, &[], Some(timeout)) {
            Ok((IpcpResp::Err(e), _)) => Err(e),
            Ok((resp, _)) => Ok(resp),
            Err(RpcError::Timeout) => Err(rpc_err(
                name,
                format!("no answer within {} s", timeout.as_secs()),
            )),
            Err(RpcError::Closed) => Err(rpc_err(name, "it exited (see the log of its ipcpd)")),
            Err(e) => Err(rpc_err(name, e)),
        }
    }

    pub(crate) fn ipcp_create(
        self: &Arc<Self>,
        kind: IpcpKind,
        name: &str,
    ) -> Result<u32, IrmError> {
        check_name(name)?;
        if self.lock().ipcps.contains_key(name) {
            return Err(IrmError::IpcpExists {
                name: name.to_string(),
            });
        }
        let ipcp = self.spawner.start_ipcp(self, kind, name)?;
        let pid = ipcp.pid;
        let mut g = self.lock();
        if g.ipcps.contains_key(name) {
            // Lost a race with another create of the same name.
            ipcp.end();
            return Err(IrmError::IpcpExists {
                name: name.to_string(),
            });
        }
        g.ipcps.insert(name.to_string(), ipcp);
        info!("Created IPCP {name} ({kind}) with pid {pid}.");
        Ok(pid)
    }

    pub(crate) fn ipcp_destroy(&self, name: &str) -> Answer {
        let ipcp = self
            .lock()
            .remove_ipcp(name)
            .ok_or_else(|| IrmError::NoSuchIpcp {
                name: name.to_string(),
            })?;
        ipcp.end();
        self.notify();
        info!("Destroyed IPCP {name}.");
        ok()
    }

    pub(crate) fn ipcp_show(&self, name: &str) -> Answer {
        let info = {
            let g = self.lock();
            let i = g.ipcps.get(name).ok_or_else(|| IrmError::NoSuchIpcp {
                name: name.to_string(),
            })?;
            i.info()
        };
        let mut details = Vec::new();
        if info.layer.is_some() {
            match self.ask(name, IpcpReq::Show, IPCP_TIMEOUT)? {
                IpcpResp::Show(v) => details = v,
                other => return Err(rpc_err(name, format!("unexpected {other:?}"))),
            }
        }
        let flows = self
            .lock()
            .flows
            .values()
            .filter(|f| f.ipcp == name)
            .count();
        details.push(("flows (IRMd)".into(), flows.to_string()));
        Ok((IrmResp::IpcpShow(info, details), Vec::new()))
    }

    /// An IPCP's control connection closed: it exited or was killed.
    /// IPCP `name` closed its connection `rpc` (its process exited, or, in a process that
    /// hosts several, it failed to start); a newer IPCP of the same name is left alone.
    pub fn ipcp_gone(&self, name: &str, pid: u32, rpc: &Arc<Rpc>) {
        let mut g = self.lock();
        if g.ipcps.get(name).is_some_and(|i| Arc::ptr_eq(&i.rpc, rpc)) {
            g.remove_ipcp(name);
            drop(g);
            self.notify();
            warn!("IPCP {name} (pid {pid}) exited; its flows are down.");
        }
    }

    pub(crate) fn rpc_of(&self, name: &str) -> Result<Arc<Rpc>, IrmError> {
        self.lock()
            .ipcps
            .get(name)
            .map(|i| i.rpc.clone())
            .ok_or_else(|| IrmError::NoSuchIpcp {
                name: name.to_string(),
            })
    }

    /// The IPCP a bootstrap or enrollment is for: IPCP `name` if it exists with this `kind`
    /// and is in no layer yet, else a new one. True when it was created here.
    fn ipcp_to_place(self: &Arc<Self>, kind: IpcpKind, name: &str) -> Result<bool, IrmError> {
        let existing = self
            .lock()
            .ipcps
            .get(name)
            .map(|i| (i.kind, i.layer.clone(), i.joining.is_some()));
        match existing {
            None => {
                self.ipcp_create(kind, name)?;
                Ok(true)
            }
            Some((k, _, _)) if k != kind => Err(IrmError::IpcpKindMismatch {
                name: name.to_string(),
                actual: k.to_string(),
                wanted: kind.to_string(),
            }),
            Some((_, Some(l), _)) => Err(IrmError::AlreadyBootstrapped {
                name: name.to_string(),
                layer: l,
            }),
            Some((_, None, true)) => Err(enrolling(name)),
            Some(_) => Ok(false),
        }
    }

    pub(crate) fn ipcp_bootstrap(
        self: &Arc<Self>,
        kind: IpcpKind,
        name: &str,
        layer: &str,
        params: Vec<(String, String)>,
        autobind: bool,
    ) -> Answer {
        check_name(layer)?;
        let created = self.ipcp_to_place(kind, name)?;
        let req = IpcpReq::Bootstrap {
            layer: layer.to_string(),
            params,
        };
        let answer = self
            .ask(name, req, IPCP_TIMEOUT)
            .and_then(|resp| self.joined(name, resp, autobind, "Bootstrapped"));
        if answer.is_err() && created {
            // `bootstrap` created this IPCP: a failed bootstrap leaves nothing behind.
            let _ = self.ipcp_destroy(name);
        }
        answer
    }

    /// Enroll IPCP `name` (created if missing, as a unicast IPCP unless `kind` says
    /// otherwise) into the layer of the member reachable as `dst`, or as `layer` (a layer's
    /// name is a valid destination). With `layer`, the layer joined must be that one.
    pub(crate) fn ipcp_enroll(
        self: &Arc<Self>,
        name: &str,
        kind: Option<IpcpKind>,
        dst: Option<String>,
        layer: Option<String>,
        autobind: bool,
    ) -> Answer {
        check_name(name)?;
        let kind = kind.unwrap_or(IpcpKind::Unicast);
        let dst = match (dst, &layer) {
            (Some(d), _) => d,
            (None, Some(l)) => l.clone(),
            (None, None) => {
                return Err(IrmError::BadParam {
                    key: "dst".into(),
                    value: String::new(),
                    why: format!(
                        "enrollment needs a member of the layer to enroll through (its IPCP \
                         name) or the layer's name: irm ipcp enroll name {name} dst DST"
                    ),
                })
            }
        };
        check_name(&dst)?;
        if let Some(l) = &layer {
            check_name(l)?;
        }
        let req = IpcpReq::Enroll { dst: dst.clone() };
        if !is_layered(kind) {
            return Err(not_for(&req, kind));
        }
        let created = self.ipcp_to_place(kind, name)?;
        {
            // The layer being joined, when known (given, or dst is a layer or an IPCP of
            // this system), is barred to the IPCP's own flows at once: it must not enroll
            // over its future layer.
            let mut g = self.lock();
            let known = match g.ipcps.get(&dst) {
                Some(peer) => peer.layer.clone(),
                None => (!g.layer_members(&dst).is_empty()).then(|| dst.clone()),
            };
            let hint = layer.clone().or(known).unwrap_or_default();
            match g.ipcps.get_mut(name) {
                None => {
                    return Err(IrmError::NoSuchIpcp {
                        name: name.to_string(),
                    })
                }
                Some(i) if i.joining.is_some() => return Err(enrolling(name)),
                Some(i) => i.joining = Some(hint),
            }
        }
        info!("Enrolling IPCP {name} through {dst}.");
        let answer = self.ask(name, req, ENROLL_TIMEOUT);
        if let Some(i) = self.lock().ipcps.get_mut(name) {
            i.joining = None;
        }
        let answer = answer.and_then(|resp| match (&resp, &layer) {
            (IpcpResp::Bootstrapped { layer: got, .. }, Some(want)) if got != want => {
                let mut why = format!("{dst} is a member of layer \"{got}\", not \"{want}\"");
                if !created {
                    self.record_layer(name, &resp);
                    why += &format!(
                        "; IPCP {name} is in layer \"{got}\" now (undo: irm ipcp destroy name \
                         {name})"
                    );
                }
                Err(IrmError::BadParam {
                    key: "layer".into(),
                    value: want.clone(),
                    why,
                })
            }
            _ => self.joined(name, resp, autobind, &format!("Enrolled (through {dst})")),
        });
        if answer.is_err() && created {
            // As for bootstrap: a failed enrollment leaves no IPCP behind.
            let _ = self.ipcp_destroy(name);
        }
        answer
    }

    /// Record an IPCP's layer, hash algorithm and MTU from its bootstrap or enrollment
    /// answer; the layer name, or None for another answer.
    fn record_layer(&self, name: &str, resp: &IpcpResp) -> Option<String> {
        let IpcpResp::Bootstrapped { layer, hash, mtu } = resp else {
            return None;
        };
        let mut g = self.lock();
        if let Some(i) = g.ipcps.get_mut(name) {
            i.layer = Some(layer.clone());
            i.hash = *hash;
            i.mtu = *mtu;
        }
        Some(layer.clone())
    }

    /// IPCP `name` answered a bootstrap or enrollment with `resp`: record its layer and, with
    /// `autobind`, bind it to its own name and to the layer's name, so flows to either reach it.
    fn joined(self: &Arc<Self>, name: &str, resp: IpcpResp, autobind: bool, how: &str) -> Answer {
        let Some(layer) = self.record_layer(name, &resp) else {
            return Err(rpc_err(name, format!("unexpected answer {resp:?}")));
        };
        info!("{how} IPCP {name} in layer {layer}.");
        self.notify();
        if !autobind {
            return ok();
        }
        let kind = self.lock().ipcps.get(name).map(|i| i.kind);
        if !kind.is_some_and(is_layered) {
            // The prototype's scripts pass autobind to every type; an IPCP that is not an
            // application of other layers accepts no flows, so there is nothing to bind.
            debug!("IPCP {name}: autobind ignored, it accepts no flows");
            return ok();
        }
        for n in [name, layer.as_str()] {
            self.bind(
                BindTarget::Ipcp {
                    name: name.to_string(),
                },
                n,
            )?;
        }
        ok()
    }

    /// Make (or, with `connect` false, take down) the adjacency of `component` of IPCP `name`
    /// to the member `dst`.
    pub(crate) fn ipcp_connect(
        &self,
        name: &str,
        component: &str,
        dst: &str,
        qos: Option<String>,
        connect: bool,
    ) -> Answer {
        if component != "dt" && component != "mgmt" {
            return Err(IrmError::BadParam {
                key: "component".into(),
                value: component.to_string(),
                why: "components: dt (data transfer), mgmt (management)".into(),
            });
        }
        check_name(dst)?;
        if let Some(q) = &qos {
            if let Err(e) = q.parse::<o7s::QosCube>() {
                return Err(IrmError::BadParam {
                    key: "qos".into(),
                    value: q.clone(),
                    why: e.to_string(),
                });
            }
        }
        let req = if connect {
            IpcpReq::Connect {
                component: component.to_string(),
                dst: dst.to_string(),
                qos,
            }
        } else {
            IpcpReq::Disconnect {
                component: component.to_string(),
                dst: dst.to_string(),
            }
        };
        {
            let g = self.lock();
            let i = g.ipcps.get(name).ok_or_else(|| IrmError::NoSuchIpcp {
                name: name.to_string(),
            })?;
            if !is_layered(i.kind) {
                return Err(not_for(&req, i.kind));
            }
            if i.layer.is_none() {
                return Err(IrmError::NotBootstrapped {
                    name: name.to_string(),
                });
            }
        }
        match self.ask(name, req, CONNECT_TIMEOUT)? {
            IpcpResp::Ok => {
                info!(
                    "{} {component} of IPCP {name} {} {dst}.",
                    if connect { "Connected" } else { "Disconnected" },
                    if connect { "to" } else { "from" },
                );
                ok()
            }
            other => Err(rpc_err(name, format!("unexpected answer {other:?}"))),
        }
    }
}

/// The refusal of an enrollment or connection for an IPCP of a kind that does neither.
fn not_for(req: &IpcpReq, kind: IpcpKind) -> IrmError {
    req.not_for(kind.name())
        .unwrap_or_else(|| IrmError::Internal(format!("{req:?} refused for a {kind} IPCP")))
}

fn enrolling(name: &str) -> IrmError {
    IrmError::BadRequest {
        why: format!("IPCP \"{name}\" is enrolling already; wait for it (irm ipcp list)"),
    }
}

#[cfg(test)]
#[path = "ipcps_tests.rs"]
mod tests;
