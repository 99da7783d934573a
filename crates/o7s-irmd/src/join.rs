//! Joining a broadcast layer (the prototype's `flow_join`): an application asks for a flow to
//! the layer itself, not to a name in it. The IRMd finds the broadcast IPCP of that layer on
//! this system, makes the flow's rings and hands one end to the application and the other to
//! the IPCP, which floods what the application writes and delivers what the layer carries.

use crate::flows::{new_flow_fds, ring_capacity, IPCP_HEADROOM};
use crate::irmd::{check_name, rpc_err, Answer, Irmd, IPCP_TIMEOUT};
use crate::registry::{FlowRec, FlowState};
use o7s::ctrl::msg::{FlowGrant, IpcpKind, IpcpReq, IpcpResp, IrmError, IrmResp};
use o7s_proto::QosSpec;
use rustix::fd::AsFd;
use std::sync::Arc;
use std::time::Instant;
use tracing::info;

/// Why `qos` cannot be the QoS of a broadcast flow, if it cannot: FRCT needs one peer to
/// acknowledge, and a broadcast flow has many.
pub fn join_qos_refusal(qos: &QosSpec) -> Option<IrmError> {
    (qos.in_order != 0 || qos.loss == 0).then(|| IrmError::BadParam {
        key: "qos".into(),
        value: qos.to_string(),
        why: "a broadcast flow is best effort (no in-order or loss-free delivery); \
              use the raw or best cube"
            .into(),
    })
}

impl Irmd {
    /// Process `pid` joins the broadcast layer `layer`.
    pub(crate) fn flow_join(
        self: &Arc<Self>,
        pid: u32,
        layer: &str,
        qos: QosSpec,
        deadline: Instant,
    ) -> Answer {
        check_name(layer)?;
        if let Some(e) = join_qos_refusal(&qos) {
            return Err(e);
        }
        let (ipcp, rpc, hash, mtu, flow_id) = {
            let g = self.lock();
            if !g.procs.contains_key(&pid) {
                return Err(IrmError::BadRequest {
                    why: format!("process {pid} has not announced itself"),
                });
            }
            let i = g
                .ipcps
                .values()
                .find(|i| i.kind == IpcpKind::Broadcast && i.layer.as_deref() == Some(layer))
                .ok_or_else(|| IrmError::NoBroadcastLayer {
                    layer: layer.to_string(),
                })?;
            let flow_id = loop {
                let id: u64 = rand::random();
                if id != 0 && !g.flows.contains_key(&id) {
                    break id;
                }
            };
            (
                i.name.clone(),
                i.rpc.clone(),
                i.hash.hash(layer),
                i.mtu,
                flow_id,
            )
        };
        let fds = new_flow_fds(IPCP_HEADROOM, ring_capacity(mtu))?;
        self.lock().flows.insert(
            flow_id,
            FlowRec {
                id: flow_id,
                name: layer.to_string(),
                layer: layer.to_string(),
                ipcp: ipcp.clone(),
                qos,
                alloc_pid: pid,
                accept_pid: 0,
                wake: fds.wake,
                mem: Some(fds.mem),
                state: FlowState::Pending,
                set: None,
            },
        );
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(IPCP_TIMEOUT);
        let borrowed: Vec<_> = fds.b.iter().map(|f| f.as_fd()).collect();
        let answer = rpc.request(
            IpcpReq::FlowJoin { flow_id, hash, qos },
            &borrowed,
            Some(wait),
        );
        drop(borrowed);
        drop(fds.b);
        let mut g = self.lock();
        let result = match answer {
            Ok((IpcpResp::Ok, _)) => match g.flows.get_mut(&flow_id) {
                Some(f) => {
                    f.state = FlowState::Allocated;
                    info!(
                        flow = flow_id,
                        "Process {pid} joined broadcast layer {layer}."
                    );
                    let grant = FlowGrant {
                        set: 0,
                        flow_id,
                        side: 0,
                        qos,
                        name: layer.to_string(),
                        layer: layer.to_string(),
                        mtu,
                    };
                    return Ok((IrmResp::Flow(grant), fds.a));
                }
                None => Err(IrmError::IpcpFailed {
                    name: ipcp,
                    why: "the flow vanished while joining".into(),
                }),
            },
            Ok((IpcpResp::Err(e), _)) => Err(e),
            Ok((other, _)) => Err(rpc_err(&ipcp, format!("unexpected answer {other:?}"))),
            Err(e) => Err(rpc_err(&ipcp, e)),
        };
        if let Some(mut f) = g.flows.remove(&flow_id) {
            f.kill();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{add, irmd};
    use o7s::ctrl::msg::IrmReq;
    use std::time::Duration;

    fn announce(irmd: &Arc<Irmd>, pid: u32) {
        let req = IrmReq::Announce {
            prog: "/usr/bin/obc".into(),
        };
        assert!(irmd.handle(pid, req).is_ok());
    }

    #[test]
    fn a_join_goes_to_the_broadcast_ipcp_of_the_layer() {
        let irmd = irmd();
        let lo = add(&irmd, "lo", IpcpKind::Local, 7_000_001, Some("bc"), |_| {
            IpcpResp::Ok
        });
        let b = add(
            &irmd,
            "b",
            IpcpKind::Broadcast,
            7_000_002,
            Some("bc"),
            |_| IpcpResp::Ok,
        );
        announce(&irmd, 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        let (resp, fds) = match irmd.flow_join(1, "bc", QosSpec::RAW, deadline) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(fds.len(), 4);
        let IrmResp::Flow(g) = resp else {
            panic!("{resp:?}")
        };
        assert_eq!((g.layer.as_str(), g.side), ("bc", 0));
        assert!(
            lo.seen().is_empty(),
            "the local layer named bc is no broadcast layer"
        );
        assert!(
            matches!(b.seen().as_slice(), [IpcpReq::FlowJoin { flow_id, .. }] if *flow_id == g.flow_id)
        );
        assert!(irmd.lock().flows.contains_key(&g.flow_id));
    }

    #[test]
    fn joins_that_cannot_work_say_why() {
        let irmd = irmd();
        announce(&irmd, 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        let e = irmd.flow_join(1, "nope", QosSpec::RAW, deadline).err();
        assert_eq!(
            e,
            Some(IrmError::NoBroadcastLayer {
                layer: "nope".into()
            })
        );
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("no broadcast layer named \"nope\" on this system"),
            "{msg}"
        );
        let e = irmd.flow_join(1, "nope", QosSpec::DATA, deadline).err();
        assert!(matches!(e, Some(IrmError::BadParam { key, .. }) if key == "qos"));
        let _b = add(
            &irmd,
            "b",
            IpcpKind::Broadcast,
            7_000_003,
            Some("bc"),
            |_| IpcpResp::Err(IrmError::Internal("boom".into())),
        );
        let e = irmd.flow_join(1, "bc", QosSpec::RAW, deadline).err();
        assert_eq!(e, Some(IrmError::Internal("boom".into())));
        assert!(irmd.lock().flows.is_empty(), "a failed join leaves no flow");
    }
}
