//! The flow broker: allocation, acceptance and deallocation of flows.

use crate::irmd::{ok, rpc_err, Answer, Irmd, DEFAULT_ALLOC_TIMEOUT, IPCP_TIMEOUT};
use crate::registry::{Delivery, FlowRec, FlowState, PendingAlloc};
use o7s::ctrl::msg::{FlowGrant, IpcpKind, IpcpReq, IpcpResp, IrmError, IrmResp};
use o7s_proto::{NameHash, QosSpec};
use rustix::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info};

/// Preference among layers when a name is reachable through several: the cheapest first.
fn kind_rank(k: IpcpKind) -> u8 {
    match k {
        IpcpKind::Local => 0,
        IpcpKind::Unicast => 1,
        IpcpKind::Broadcast => 2,
        IpcpKind::EthDix | IpcpKind::EthLlc => 3,
        IpcpKind::Udp4 | IpcpKind::Udp6 => 4,
    }
}

/// Layers asked together when looking a name up (see `flow_alloc`).
fn query_stage(k: IpcpKind) -> u8 {
    match k {
        IpcpKind::Local => 0,
        IpcpKind::Unicast | IpcpKind::Broadcast => 1,
        IpcpKind::EthDix | IpcpKind::EthLlc | IpcpKind::Udp4 | IpcpKind::Udp6 => 2,
    }
}

/// How long the IPCP through which an application's flow to a name was allocated is asked
/// first for the next flow to that name, without looking the name up in every layer again
/// (a name it no longer reaches is looked up at once). A layer better than that IPCP's that
/// gets the name meanwhile is used once this passed.
const ROUTE_TTL: Duration = Duration::from_secs(1);

/// Most names with a route remembered.
const MAX_ROUTES: usize = 4096;

/// An IPCP to ask: its kind, name, layer, connection and the name's hash in its layer.
type Candidate = (IpcpKind, String, String, Arc<o7s::ctrl::rpc::Rpc>, NameHash);

fn internal(e: impl std::fmt::Display) -> IrmError {
    IrmError::Internal(e.to_string())
}

/// The fds of the two ends of a fresh flow, and the IRMd's handle on its liveness.
pub(crate) struct FlowFds {
    pub(crate) a: Vec<OwnedFd>,
    pub(crate) b: Vec<OwnedFd>,
    pub(crate) live: OwnedFd,
}

/// Headroom reserved in front of every packet of a flow through an IPCP, for the headers of
/// the layers below (Ethernet, the unicast DT header, FRCT, ...).
pub const IPCP_HEADROOM: u16 = 64;

pub(crate) fn new_flow_fds(headroom: u16) -> Result<FlowFds, IrmError> {
    let cfg = o7s_shm::RingConfig {
        headroom,
        ..Default::default()
    };
    let mem = o7s_shm::create_flow_mem(&cfg).map_err(internal)?;
    let wa = o7s_shm::new_eventfd().map_err(internal)?;
    let wb = o7s_shm::new_eventfd().map_err(internal)?;
    let (la, lb) = o7s_shm::liveness_pair().map_err(internal)?;
    let dup = |f: &OwnedFd| f.try_clone().map_err(internal);
    Ok(FlowFds {
        b: vec![dup(&mem)?, dup(&wb)?, dup(&wa)?, lb],
        live: dup(&la)?,
        a: vec![mem, wa, wb, la],
    })
}

/// The first candidate that said yes while no candidate of a better kind is still to answer
/// (`ranks`: the candidates' [`kind_rank`]s, ascending).
fn first_yes(ranks: &[u8], answers: &[Option<bool>]) -> Option<usize> {
    let mut waiting_rank = None;
    for (j, (a, &rank)) in answers.iter().zip(ranks).enumerate() {
        match (a, waiting_rank) {
            (Some(true), None) => return Some(j),
            (Some(true), Some(w)) if w >= rank => return Some(j),
            (None, None) => waiting_rank = Some(rank),
            _ => {}
        }
    }
    None
}

impl Irmd {
    /// Ask `cands` (in preference order) at once whether they reach `name`; the index of the
    /// most preferred that does, as soon as every one of a better kind said no (among layers
    /// of one kind the first to say yes wins: none is cheaper, and a miss in a directory costs
    /// a lookup over the network), and the first error any gave. The questions go out
    /// together and the answers come back on the connections' reader threads: no thread is
    /// started per question.
    fn query_stage(
        &self,
        name: &str,
        cands: &[Candidate],
        deadline: Instant,
    ) -> (Option<usize>, Option<IrmError>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut asked = Vec::with_capacity(cands.len());
        for (i, (_, _, _, rpc, hash)) in cands.iter().enumerate() {
            let t = tx.clone();
            let req = IpcpReq::Query { hash: hash.clone() };
            match rpc.request_then(req, &[], move |a| {
                let _ = t.send((i, a));
            }) {
                Ok(id) => asked.push((rpc.clone(), id)),
                Err(_) => {
                    let _ = tx.send((i, None));
                }
            }
        }
        drop(tx);
        let until = deadline.min(Instant::now() + IPCP_TIMEOUT);
        let mut answers: Vec<Option<bool>> = vec![None; cands.len()];
        let ranks: Vec<u8> = cands.iter().map(|c| kind_rank(c.0)).collect();
        let mut failed = None;
        let best = loop {
            let left = until.saturating_duration_since(Instant::now());
            let Ok((i, a)) = rx.recv_timeout(left) else {
                // Every answer is in, or the time is up: what did not answer has no route.
                break answers.iter().position(|a| *a == Some(true));
            };
            answers[i] = Some(matches!(a, Some((IpcpResp::Bool(true), _))));
            if let Some((IpcpResp::Err(e), _)) = a {
                info!("IPCP {} could not look up {name}: {e}", cands[i].1);
                failed.get_or_insert(e);
            }
            if let Some(j) = first_yes(&ranks, &answers) {
                break Some(j);
            }
        };
        for (rpc, id) in asked {
            rpc.forget(id);
        }
        (best, failed)
    }

    pub(crate) fn flow_alloc(
        self: &Arc<Self>,
        pid: u32,
        name: &str,
        qos: QosSpec,
        deadline: Instant,
    ) -> Answer {
        crate::irmd::check_name(name)?;
        let (mut ipcps, cacheable, cached) = {
            let g = self.lock();
            if !g.procs.contains_key(&pid) {
                return Err(IrmError::BadRequest {
                    why: format!("process {pid} has not announced itself"),
                });
            }
            // An IPCP allocating a flow (it is the application of the layers below it) never
            // gets one over its own layer or a layer stacked on it.
            let barred = g.layers_barred_for(pid);
            let ipcps: Vec<Candidate> = g
                .ipcps
                .values()
                .filter_map(|i| {
                    let layer = i.layer.clone().filter(|l| !barred.contains(l))?;
                    Some((
                        i.kind,
                        i.name.clone(),
                        layer,
                        i.rpc.clone(),
                        i.hash.hash(name),
                    ))
                })
                .collect();
            // The IPCP an application's flow to this name went through a moment ago.
            let cacheable = barred.is_empty();
            let cached = g
                .routes
                .get(name)
                .filter(|(_, at)| cacheable && at.elapsed() < ROUTE_TTL)
                .map(|(ipcp, _)| ipcp.clone());
            (ipcps, cacheable, cached)
        };
        if let Some(i) = cached.and_then(|c| ipcps.iter().position(|i| i.1 == c)) {
            let c = ipcps[i].clone();
            match self.alloc_through(pid, name, qos, deadline, c) {
                // Not there any more: forget the route and look the name up.
                Err(IrmError::NameNotFound { .. }) => {
                    self.lock().routes.remove(name);
                }
                r => return r,
            }
        }
        ipcps.sort_by_key(|i| kind_rank(i.0));
        // Ask layers stage by stage: the local layer, then the layers with a directory of
        // their own (unicast, broadcast: answered from memory or one lookup), then the shims,
        // whose misses can cost a whole query timeout (an Ethernet broadcast nobody answers):
        // those are asked all at once. Within a stage the most preferred layer that has the
        // name wins as soon as every more preferred one has answered.
        let mut chosen_at = None;
        // An IPCP that could not look the name up (its DNS server did not answer, say).
        let mut failed = None;
        let mut start = 0;
        while start < ipcps.len() && chosen_at.is_none() {
            let stage = query_stage(ipcps[start].0);
            let end = ipcps[start..]
                .iter()
                .position(|i| query_stage(i.0) != stage)
                .map_or(ipcps.len(), |n| start + n);
            let (found, err) = self.query_stage(name, &ipcps[start..end], deadline);
            chosen_at = found.map(|i| start + i);
            if let Some(e) = err {
                failed.get_or_insert(e);
            }
            start = end;
        }
        let chosen = chosen_at.map(|i| ipcps.swap_remove(i));
        // Found nowhere: if a layer could not tell, its reason says more than "not found".
        let Some(c) = chosen else {
            return Err(failed.unwrap_or_else(|| IrmError::NameNotFound {
                name: name.to_string(),
            }));
        };
        let ipcp = c.1.clone();
        let r = self.alloc_through(pid, name, qos, deadline, c);
        if cacheable {
            let mut g = self.lock();
            if r.is_ok() {
                if g.routes.len() >= MAX_ROUTES {
                    g.routes.retain(|_, (_, at)| at.elapsed() < ROUTE_TTL);
                }
                g.routes.insert(name.to_string(), (ipcp, Instant::now()));
            } else {
                g.routes.remove(name);
            }
        }
        r
    }

    /// Allocate a flow to `name` through the IPCP of `c`.
    fn alloc_through(
        &self,
        pid: u32,
        name: &str,
        qos: QosSpec,
        deadline: Instant,
        c: Candidate,
    ) -> Answer {
        let (kind, ipcp, layer, rpc, hash) = c;
        let flow_id = loop {
            let id: u64 = rand::random();
            if id != 0 && !self.lock().flows.contains_key(&id) {
                break id;
            }
        };
        // Through a local layer both applications share the rings, which the acceptor's side
        // creates; through any other layer the IPCP holds the other end, made here.
        let remote = if kind == IpcpKind::Local {
            None
        } else {
            Some(new_flow_fds(IPCP_HEADROOM)?)
        };
        let mtu = self.lock().ipcps.get(&ipcp).map_or(0, |i| i.mtu);
        let (ipcp_fds, app_grant, live) = match remote {
            None => (Vec::new(), None, None),
            Some(f) => {
                let grant = FlowGrant {
                    flow_id,
                    side: 0,
                    qos,
                    name: name.to_string(),
                    layer: layer.clone(),
                    mtu,
                };
                (f.b, Some(Delivery { grant, fds: f.a }), Some(f.live))
            }
        };
        {
            let mut g = self.lock();
            g.allocs.insert(
                flow_id,
                PendingAlloc {
                    pid,
                    name: name.to_string(),
                    deadline,
                    grant: app_grant,
                },
            );
            g.flows.insert(
                flow_id,
                FlowRec {
                    id: flow_id,
                    name: name.to_string(),
                    layer,
                    ipcp: ipcp.clone(),
                    qos,
                    alloc_pid: pid,
                    accept_pid: 0,
                    live,
                    state: FlowState::Pending,
                },
            );
        }
        let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
        let borrowed: Vec<_> = ipcp_fds.iter().map(|f| f.as_fd()).collect();
        let answer = rpc.request(
            IpcpReq::FlowAlloc { flow_id, hash, qos },
            &borrowed,
            Some(left),
        );
        drop(borrowed);
        drop(ipcp_fds);
        let mut g = self.lock();
        let pending = g.allocs.remove(&flow_id);
        let result = match answer {
            Ok((IpcpResp::Ok, _)) => match pending.and_then(|p| p.grant) {
                Some(d) if g.flows.contains_key(&flow_id) => {
                    if let Some(f) = g.flows.get_mut(&flow_id) {
                        f.state = FlowState::Allocated;
                    }
                    info!(
                        flow = flow_id,
                        "Allocated flow to {name} for process {pid}."
                    );
                    return Ok((IrmResp::Flow(d.grant), d.fds));
                }
                _ => Err(IrmError::IpcpFailed {
                    name: ipcp,
                    why: "the flow vanished during allocation".into(),
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

    /// Wait until a process accepts flows for `name` (starting an `auto` program if none
    /// runs), until `deadline` or until `still_wanted` says the requester gave up.
    fn wait_acceptor<'a>(
        &'a self,
        name: &str,
        deadline: Instant,
        still_wanted: impl Fn(&crate::registry::Registry) -> bool,
    ) -> Result<(u32, std::sync::MutexGuard<'a, crate::registry::Registry>), IrmError> {
        let mut spawned = false;
        let mut g = self.lock();
        loop {
            if !still_wanted(&g) {
                return Err(IrmError::Timeout);
            }
            if let Some(b) = g.pick_acceptor(name) {
                return Ok((b, g));
            }
            let Some(n) = g.names.get(name) else {
                return Err(IrmError::NoSuchName {
                    name: name.to_string(),
                });
            };
            if g.candidates(name).is_empty() {
                let auto = n.progs.iter().find(|p| p.auto).cloned();
                if n.progs.is_empty() && n.pids.is_empty() && n.ipcps.is_empty() {
                    return Err(IrmError::NoAcceptor {
                        name: name.to_string(),
                    });
                }
                if let (Some(prog), false) = (auto, spawned) {
                    drop(g);
                    let pid = self.spawner.start_program(&prog, &self.rundir)?;
                    info!("Started {} (pid {pid}) for name {name}.", prog.prog);
                    spawned = true;
                    g = self.lock();
                    continue;
                }
            }
            let (ng, alive) = self.wait_until(g, deadline);
            g = ng;
            if !alive {
                return Err(IrmError::NoAcceptor {
                    name: name.to_string(),
                });
            }
        }
    }

    /// A flow request for `hash` arrived at IPCP `ipcp`: find (or start) the process that
    /// accepts it and hand it its end. Returns the flow id and, for a flow from another
    /// system, the IPCP's end of the flow.
    pub(crate) fn flow_req_arr(
        self: &Arc<Self>,
        ipcp: &str,
        hash: &NameHash,
        qos: QosSpec,
        local_peer: Option<u64>,
    ) -> Result<(u64, Vec<OwnedFd>), IrmError> {
        let (name, layer, mtu, deadline) = {
            let g = self.lock();
            let name = g
                .name_of_hash(ipcp, hash)
                .ok_or_else(|| IrmError::NameNotFound {
                    name: hash.to_string(),
                })?;
            let (layer, mtu) = g
                .ipcps
                .get(ipcp)
                .map(|i| (i.layer.clone().unwrap_or_default(), i.mtu))
                .unwrap_or_default();
            let deadline = local_peer
                .and_then(|p| g.allocs.get(&p))
                .map_or(Instant::now() + DEFAULT_ALLOC_TIMEOUT, |p| p.deadline);
            (name, layer, mtu, deadline)
        };
        let Some(peer) = local_peer else {
            return self.remote_flow(ipcp, &name, &layer, mtu, qos, deadline);
        };
        let (acceptor, mut g) =
            self.wait_acceptor(&name, deadline, |g| g.allocs.contains_key(&peer))?;
        let fds = new_flow_fds(0)?;
        let Some(flow) = g.flows.get_mut(&peer) else {
            return Err(IrmError::Timeout);
        };
        flow.accept_pid = acceptor;
        flow.live = Some(fds.live);
        let grant = FlowGrant {
            flow_id: peer,
            side: 0,
            qos: flow.qos,
            name: name.clone(),
            layer: flow.layer.clone(),
            mtu: u32::MAX,
        };
        let accept_grant = FlowGrant {
            side: 1,
            qos,
            ..grant.clone()
        };
        if let Some(p) = g.allocs.get_mut(&peer) {
            p.grant = Some(Delivery { grant, fds: fds.a });
        }
        if let Some(p) = g.procs.get_mut(&acceptor) {
            p.deliver(Delivery {
                grant: accept_grant,
                fds: fds.b,
            });
        }
        drop(g);
        self.notify();
        debug!(
            flow = peer,
            "flow {peer} to {name} goes to process {acceptor}"
        );
        Ok((peer, Vec::new()))
    }

    /// A flow from another system: the acceptor gets side B, the IPCP side A.
    fn remote_flow(
        &self,
        ipcp: &str,
        name: &str,
        layer: &str,
        mtu: u32,
        qos: QosSpec,
        deadline: Instant,
    ) -> Result<(u64, Vec<OwnedFd>), IrmError> {
        let (acceptor, mut g) = self.wait_acceptor(name, deadline, |_| true)?;
        let flow_id = loop {
            let id: u64 = rand::random();
            if id != 0 && !g.flows.contains_key(&id) {
                break id;
            }
        };
        let fds = new_flow_fds(IPCP_HEADROOM)?;
        g.flows.insert(
            flow_id,
            FlowRec {
                id: flow_id,
                name: name.to_string(),
                layer: layer.to_string(),
                ipcp: ipcp.to_string(),
                qos,
                alloc_pid: 0,
                accept_pid: acceptor,
                live: Some(fds.live),
                state: FlowState::Allocated,
            },
        );
        let grant = FlowGrant {
            flow_id,
            side: 1,
            qos,
            name: name.to_string(),
            layer: layer.to_string(),
            mtu,
        };
        if let Some(p) = g.procs.get_mut(&acceptor) {
            p.deliver(Delivery { grant, fds: fds.b });
        }
        drop(g);
        info!(
            flow = flow_id,
            "Flow to {name} arrived over {layer} for process {acceptor}."
        );
        Ok((flow_id, fds.a))
    }

    pub(crate) fn flow_accept(&self, pid: u32, deadline: Option<Instant>) -> Answer {
        let mut g = self.lock();
        match g.procs.get_mut(&pid) {
            Some(p) => {
                p.accepting += 1;
                p.listener = true;
            }
            None => {
                return Err(IrmError::BadRequest {
                    why: format!("process {pid} has not announced itself"),
                })
            }
        }
        self.notify();
        loop {
            let Some(p) = g.procs.get_mut(&pid) else {
                return Err(IrmError::ShuttingDown);
            };
            if let Some(d) = p.inbox.pop_front() {
                p.accepting = p.accepting.saturating_sub(1);
                let id = d.grant.flow_id;
                info!(
                    flow = id,
                    "Flow to {} accepted by process {pid}.", d.grant.name
                );
                return Ok((IrmResp::Flow(d.grant), d.fds));
            }
            let wake = p.wake.clone();
            if g.shutting_down {
                return Err(IrmError::ShuttingDown);
            }
            let d = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let (ng, alive) = self.wait_on(&wake, g, d);
            g = ng;
            if !alive && deadline.is_some() {
                if let Some(p) = g.procs.get_mut(&pid) {
                    p.accepting = p.accepting.saturating_sub(1);
                }
                return Err(IrmError::Timeout);
            }
        }
    }

    pub(crate) fn flow_dealloc(&self, pid: u32, flow_id: u64) -> Answer {
        let mut g = self.lock();
        let Some(f) = g.flows.get(&flow_id) else {
            return Err(IrmError::NoSuchFlow { flow_id });
        };
        if f.alloc_pid != pid && f.accept_pid != pid {
            return Err(IrmError::Denied {
                why: format!("flow {flow_id} does not belong to process {pid}"),
            });
        }
        if let Some(mut f) = g.flows.remove(&flow_id) {
            f.kill();
            info!(flow = flow_id, "Deallocated flow to {}.", f.name);
        }
        drop(g);
        self.notify();
        ok()
    }

    /// A process's main connection closed.
    pub fn proc_gone(&self, pid: u32) {
        let ids = self.lock().remove_proc(pid);
        self.notify();
        if !ids.is_empty() {
            info!(
                "Process {pid} exited; deallocated its {} flow(s).",
                ids.len()
            );
        }
    }
}

impl Irmd {
    /// An IPCP reports the largest packet its layer now carries.
    pub fn ipcp_mtu(&self, ipcp: &str, mtu: u32) {
        if let Some(i) = self.lock().ipcps.get_mut(ipcp) {
            if i.mtu != mtu {
                debug!("IPCP {ipcp}: MTU {} -> {mtu}", i.mtu);
                i.mtu = mtu;
            }
        }
    }

    /// An IPCP reports a flow lost.
    pub fn flow_down(&self, flow_id: u64) {
        if let Some(mut f) = self.lock().flows.remove(&flow_id) {
            f.kill();
            info!(flow = flow_id, "Flow to {} went down.", f.name);
        }
        self.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Proc;
    use crate::testkit::{add, irmd};
    use o7s::ctrl::msg::IrmReq;

    fn announce(irmd: &Arc<Irmd>, pid: u32) {
        let req = IrmReq::Announce {
            prog: "/usr/sbin/ipcpd".into(),
        };
        assert!(irmd.handle(pid, req).is_ok());
        assert!(irmd
            .lock()
            .procs
            .get(&pid)
            .is_some_and(|p: &Proc| p.prog == "ipcpd"));
    }

    /// The next flow to a name goes straight to the IPCP the last one went through, without
    /// a query; a name it no longer reaches is looked up again.
    #[test]
    fn a_route_is_reused_until_the_name_is_gone() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let irmd = irmd();
        let gone = Arc::new(AtomicBool::new(false));
        let g = gone.clone();
        let u1 = add(
            &irmd,
            "u1",
            IpcpKind::Unicast,
            5_000_000,
            Some("net"),
            move |r| match (r, g.load(Ordering::SeqCst)) {
                (IpcpReq::Query { .. }, gone) => IpcpResp::Bool(!gone),
                (IpcpReq::FlowAlloc { .. }, false) => IpcpResp::Ok,
                _ => IpcpResp::Err(IrmError::NameNotFound { name: "srv".into() }),
            },
        );
        announce(&irmd, 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        let kinds = |v: Vec<IpcpReq>| -> Vec<&'static str> {
            v.iter()
                .map(|r| match r {
                    IpcpReq::Query { .. } => "query",
                    IpcpReq::FlowAlloc { .. } => "alloc",
                    _ => "other",
                })
                .collect()
        };
        assert!(irmd.flow_alloc(1, "srv", QosSpec::RAW, deadline).is_ok());
        assert!(irmd.flow_alloc(1, "srv", QosSpec::RAW, deadline).is_ok());
        assert_eq!(kinds(u1.seen()), ["query", "alloc", "alloc"]);
        gone.store(true, Ordering::SeqCst);
        let r = irmd.flow_alloc(1, "srv", QosSpec::RAW, deadline);
        assert!(
            matches!(r, Err(IrmError::NameNotFound { .. })),
            "{:?}",
            r.err()
        );
        assert_eq!(
            kinds(u1.seen()),
            ["query", "alloc", "alloc", "alloc", "query"]
        );
        assert!(irmd.lock().routes.is_empty());
    }

    /// Among layers of one kind the first yes wins; a better kind is waited for.
    #[test]
    fn first_yes_waits_only_for_better_kinds() {
        let (t, f) = (Some(true), Some(false));
        assert_eq!(first_yes(&[1, 1], &[None, t]), Some(1));
        assert_eq!(first_yes(&[1, 1], &[t, t]), Some(0));
        assert_eq!(first_yes(&[0, 1], &[None, t]), None);
        assert_eq!(first_yes(&[0, 1], &[f, t]), Some(1));
        assert_eq!(first_yes(&[0, 1, 1], &[f, None, t]), Some(2));
        assert_eq!(first_yes(&[1, 1, 2], &[None, f, t]), None);
        assert_eq!(first_yes(&[1, 1], &[f, f]), None);
    }

    /// An IPCP's own flows (it allocates them as an application) never run over its layer;
    /// an application's may. And no name has to exist here to allocate a flow to it.
    #[test]
    fn an_ipcp_does_not_allocate_over_its_own_layer() {
        let irmd = irmd();
        let ipcp_pid = 5_000_000;
        let lo = add(
            &irmd,
            "lo",
            IpcpKind::Local,
            ipcp_pid + 1,
            Some("lo"),
            |_| IpcpResp::Bool(false),
        );
        let u1 = add(
            &irmd,
            "u1",
            IpcpKind::Unicast,
            ipcp_pid,
            Some("net"),
            |r| match r {
                IpcpReq::Query { .. } => IpcpResp::Bool(true),
                _ => IpcpResp::Err(IrmError::NoAcceptor { name: "far".into() }),
            },
        );
        announce(&irmd, ipcp_pid);
        let deadline = Instant::now() + Duration::from_secs(5);
        let r = irmd.flow_alloc(ipcp_pid, "far", QosSpec::RAW, deadline);
        assert_eq!(r.err(), Some(IrmError::NameNotFound { name: "far".into() }));
        assert!(u1.seen().is_empty(), "{:?}", u1.seen());
        assert_eq!(lo.seen().len(), 1);
        announce(&irmd, 1);
        let r = irmd.flow_alloc(1, "far", QosSpec::RAW, deadline);
        assert_eq!(r.err(), Some(IrmError::NoAcceptor { name: "far".into() }));
        assert!(matches!(
            u1.seen().as_slice(),
            [IpcpReq::Query { .. }, IpcpReq::FlowAlloc { .. }]
        ));
        assert!(irmd.lock().names.is_empty());
        assert!(
            irmd.lock().flows.is_empty(),
            "a failed allocation leaves no flow"
        );
    }
}
