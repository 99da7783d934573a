//! The flow broker: allocation, acceptance and deallocation of flows.

use crate::irmd::{ok, rpc_err, Answer, Irmd, DEFAULT_ALLOC_TIMEOUT, IPCP_TIMEOUT};
use crate::registry::{
    AcceptWaiter, Arrival, ArrivalDone, Delivery, FlowRec, FlowState, IpcpEnd, PendingAlloc, Reply,
};
use crate::sets::{Claimed, PoolKey, SetInfo};
use o7s::ctrl::msg::{FlowGrant, IpcpKind, IpcpReq, IpcpResp, IrmError, IrmResp};
use o7s::ctrl::rpc::RpcError;
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

/// The fds of the two ends of a fresh flow, and the IRMd's handles to take it down.
pub(crate) struct FlowFds {
    pub(crate) a: Vec<OwnedFd>,
    pub(crate) b: Vec<OwnedFd>,
    /// Both ends' eventfds (see [`FlowRec::kill`]).
    pub(crate) wake: Vec<OwnedFd>,
    /// The region, kept to read the counters its ends publish (`irm flow list`).
    pub(crate) mem: OwnedFd,
    /// The region set (for flows through an IPCP); `a` and `b` are empty when the set is
    /// one both ends parked (they take their parked ends).
    pub(crate) set: Option<SetInfo>,
}

/// Headroom reserved in front of every packet of a flow through an IPCP, for the headers of
/// the layers below (Ethernet, the unicast DT header, FRCT, ...).
pub const IPCP_HEADROOM: u16 = 64;

/// Ring bytes per direction for a flow through an IPCP of a layer whose packets are up to
/// `mtu` bytes: room for about 64 of the largest, since FRCT's receive window on such a flow
/// is what the ring holds; at least the default 1 MiB, at most 4 MiB. Only jumbo-frame layers
/// get more than the default (64 KiB frames: 14 in a 1 MiB ring, 62 in 4 MiB, which took a
/// data flow over a 64 KiB veth from 0.42x to 0.62x of TCP).
pub(crate) fn ring_capacity(mtu: u32) -> usize {
    let packet = usize::try_from(mtu).unwrap_or(usize::MAX) + usize::from(IPCP_HEADROOM) + 16;
    packet
        .saturating_mul(64)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX)
        .clamp(1 << 20, 4 << 20)
}

pub(crate) fn new_flow_fds(headroom: u16, capacity: usize) -> Result<FlowFds, IrmError> {
    let cfg = o7s_shm::RingConfig { headroom, capacity };
    let mem = o7s_shm::create_flow_mem(&cfg).map_err(internal)?;
    let wa = o7s_shm::new_eventfd().map_err(internal)?;
    let wb = o7s_shm::new_eventfd().map_err(internal)?;
    let (la, lb) = o7s_shm::liveness_pair().map_err(internal)?;
    let dup = |f: &OwnedFd| f.try_clone().map_err(internal);
    Ok(FlowFds {
        b: vec![dup(&mem)?, dup(&wb)?, dup(&wa)?, lb],
        wake: vec![dup(&wa)?, dup(&wb)?],
        mem: dup(&mem)?,
        a: vec![mem, wa, wb, la],
        set: None,
    })
}

/// The fds of a new flow between a process and an IPCP (`key`): the region set of theirs
/// that both ends parked, `kept` (claimed from the pool and reset), or a new one.
pub(crate) fn set_fds(kept: Option<Claimed>, key: PoolKey) -> Result<FlowFds, IrmError> {
    if let Some((set, mem, wake)) = kept {
        return Ok(FlowFds {
            a: Vec::new(),
            b: Vec::new(),
            wake,
            mem,
            set: Some(set),
        });
    }
    let mut f = new_flow_fds(key.headroom, key.capacity)?;
    f.set = Some(SetInfo::new(key));
    Ok(f)
}

/// The number of a flow's region set (0: none).
fn set_id(f: &FlowFds) -> u64 {
    f.set.as_ref().map_or(0, |s| s.id)
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

/// Where a flow request from another system stands (see [`Irmd::flow_req_arr_then`]).
enum ArrivalState {
    /// This process takes it now.
    Ready(u32),
    /// Nobody can take it.
    Failed(IrmError),
    /// Processes that may accept it exist, none accepts right now.
    Wait,
    /// Only a program started for the name could take it.
    Spawn,
}

/// As [`Irmd::wait_acceptor`] decides, without waiting or starting anything.
fn arrival_state(g: &mut crate::registry::Registry, name: &str) -> ArrivalState {
    if let Some(b) = g.pick_acceptor(name) {
        return ArrivalState::Ready(b);
    }
    let Some(n) = g.names.get(name) else {
        return ArrivalState::Failed(IrmError::NoSuchName {
            name: name.to_string(),
        });
    };
    if !g.candidates(name).is_empty() {
        return ArrivalState::Wait;
    }
    if n.progs.is_empty() && n.pids.is_empty() && n.ipcps.is_empty() {
        return ArrivalState::Failed(IrmError::NoAcceptor {
            name: name.to_string(),
        });
    }
    if n.progs.iter().any(|p| p.auto) {
        ArrivalState::Spawn
    } else {
        ArrivalState::Wait
    }
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

    /// Allocate a flow to `name` for process `pid` and wait for the answer (see
    /// [`Irmd::flow_alloc_then`]).
    pub(crate) fn flow_alloc(
        self: &Arc<Self>,
        pid: u32,
        name: &str,
        qos: QosSpec,
        deadline: Instant,
    ) -> Answer {
        let (reply, rx) = Reply::channel();
        self.flow_alloc_then(pid, name, qos, deadline, reply);
        rx.recv()
            .unwrap_or_else(|_| Err(internal("a flow allocation ended without an answer")))
    }

    /// Allocate a flow to `name` for process `pid`; `reply` gets the answer. Nothing waits
    /// here: a name to look up is looked up on a thread of the pool, and the IPCP's answer
    /// to the allocation is passed on by the thread that receives it.
    pub(crate) fn flow_alloc_then(
        self: &Arc<Self>,
        pid: u32,
        name: &str,
        qos: QosSpec,
        deadline: Instant,
        reply: Reply,
    ) {
        if let Err(e) = crate::irmd::check_name(name) {
            let _ = reply.send(Err(e));
            return;
        }
        let (ipcps, cacheable, cached) = {
            let g = self.lock();
            if !g.procs.contains_key(&pid) {
                drop(g);
                let _ = reply.send(Err(IrmError::BadRequest {
                    why: format!("process {pid} has not announced itself"),
                }));
                return;
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
        let Some(i) = cached.and_then(|c| ipcps.iter().position(|i| i.1 == c)) else {
            // The lookup waits for the layers' answers: on a thread of the pool, not the
            // caller's (which serves every connection).
            let me = self.clone();
            let n = name.to_string();
            let job = move || me.alloc_looked_up(pid, &n, qos, deadline, ipcps, cacheable, reply);
            if let Err(e) = o7s::ctrl::pool::spawn(job) {
                tracing::warn!("cannot look up a name for a flow allocation: {e}");
            }
            return;
        };
        let c = ipcps[i].clone();
        let me = self.clone();
        let n = name.to_string();
        self.alloc_through(pid, name, qos, deadline, c, move |r| match r {
            // Not there any more: forget the route and look the name up (on a thread that
            // may wait for the lookup: this runs on a connection's reader).
            Err(IrmError::NameNotFound { .. }) => {
                me.lock().routes.remove(&n);
                let again = me.clone();
                let job =
                    move || again.alloc_looked_up(pid, &n, qos, deadline, ipcps, cacheable, reply);
                if let Err(e) = o7s::ctrl::pool::spawn(job) {
                    tracing::warn!("cannot look up a name for a flow allocation: {e}");
                }
            }
            r => me.answer_alloc(pid, r, reply),
        });
    }

    /// Send the answer to an allocation; a flow the process can no longer take is
    /// deallocated.
    fn answer_alloc(&self, pid: u32, r: Answer, reply: Reply) {
        let Err(undelivered) = reply.send(r) else {
            return;
        };
        if let Ok((IrmResp::Flow(g), _)) = *undelivered {
            debug!(flow = g.flow_id, "process {pid} is gone: flow deallocated");
            let mut reg = self.lock();
            if let Some(f) = reg.flows.remove(&g.flow_id) {
                reg.retire(f, false);
            }
            drop(reg);
            self.notify();
        }
    }

    /// Look `name` up in the layers of `ipcps` and allocate the flow through the best one.
    #[allow(clippy::too_many_arguments)]
    fn alloc_looked_up(
        self: &Arc<Self>,
        pid: u32,
        name: &str,
        qos: QosSpec,
        deadline: Instant,
        mut ipcps: Vec<Candidate>,
        cacheable: bool,
        reply: Reply,
    ) {
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
            let _ = reply.send(Err(failed.unwrap_or_else(|| IrmError::NameNotFound {
                name: name.to_string(),
            })));
            return;
        };
        let ipcp = c.1.clone();
        let me = self.clone();
        let n = name.to_string();
        self.alloc_through(pid, name, qos, deadline, c, move |r| {
            if cacheable {
                let mut g = me.lock();
                if r.is_ok() {
                    if g.routes.len() >= MAX_ROUTES {
                        g.routes.retain(|_, (_, at)| at.elapsed() < ROUTE_TTL);
                    }
                    g.routes.insert(n, (ipcp, Instant::now()));
                } else {
                    g.routes.remove(&n);
                }
            }
            me.answer_alloc(pid, r, reply)
        });
    }

    /// Allocate a flow to `name` through the IPCP of `c`; `done` gets the outcome, on the
    /// thread that receives the IPCP's answer (or at the deadline on the timer thread).
    fn alloc_through(
        self: &Arc<Self>,
        pid: u32,
        name: &str,
        qos: QosSpec,
        deadline: Instant,
        c: Candidate,
        done: impl FnOnce(Answer) + Send + 'static,
    ) {
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
            let mut g = self.lock();
            let key = PoolKey {
                pid,
                ipcp: ipcp.clone(),
                side: 0,
                headroom: IPCP_HEADROOM,
                capacity: ring_capacity(g.ipcps.get(&ipcp).map_or(0, |i| i.mtu)),
            };
            let kept = g.pool.take(&key);
            drop(g);
            match set_fds(kept, key) {
                Ok(f) => Some(f),
                Err(e) => return done(Err(e)),
            }
        };
        let set = remote.as_ref().map_or(0, set_id);
        let (ipcp_fds, app_grant, wake, mem, set_info) = match remote {
            None => (Vec::new(), None, Vec::new(), None, None),
            Some(f) => (f.b, Some(f.a), f.wake, Some(f.mem), f.set),
        };
        {
            let mut g = self.lock();
            let mtu = g.ipcps.get(&ipcp).map_or(0, |i| i.mtu);
            let grant = app_grant.map(|fds| Delivery {
                grant: FlowGrant {
                    flow_id,
                    side: 0,
                    qos,
                    name: name.to_string(),
                    layer: layer.clone(),
                    mtu,
                    set,
                },
                fds,
            });
            g.allocs.insert(
                flow_id,
                PendingAlloc {
                    pid,
                    name: name.to_string(),
                    deadline,
                    grant,
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
                    wake,
                    mem,
                    state: FlowState::Pending,
                    set: set_info,
                },
            );
        }
        let borrowed: Vec<_> = ipcp_fds.iter().map(|f| f.as_fd()).collect();
        let me = self.clone();
        let n = name.to_string();
        let i = ipcp.clone();
        // The IPCP waits for the far side until about the deadline; a second more for its
        // answer to come back.
        let until = deadline + Duration::from_secs(1);
        rpc.request_until(
            IpcpReq::FlowAlloc {
                flow_id,
                hash,
                qos,
                set,
            },
            &borrowed,
            until,
            move |answer| done(me.alloc_answered(pid, &n, flow_id, &i, answer)),
        );
    }

    /// The IPCP answered the allocation of flow `flow_id` (or did not, in time): the flow
    /// for the allocator, or why not (the flow is then gone).
    fn alloc_answered(
        &self,
        pid: u32,
        name: &str,
        flow_id: u64,
        ipcp: &str,
        answer: Result<(IpcpResp, Vec<OwnedFd>), RpcError>,
    ) -> Answer {
        let mut g = self.lock();
        let pending = g.allocs.remove(&flow_id);
        let result = match answer {
            Ok((IpcpResp::Ok, _)) => match pending.and_then(|p| p.grant) {
                Some(d) if g.flows.contains_key(&flow_id) => {
                    if let Some(f) = g.flows.get_mut(&flow_id) {
                        f.state = FlowState::Allocated;
                    }
                    drop(g);
                    info!(
                        flow = flow_id,
                        "Allocated flow to {name} for process {pid}."
                    );
                    return Ok((IrmResp::Flow(d.grant), d.fds));
                }
                _ => Err(IrmError::IpcpFailed {
                    name: ipcp.to_string(),
                    why: "the flow vanished during allocation".into(),
                }),
            },
            Ok((IpcpResp::Err(e), _)) => Err(e),
            Ok((other, _)) => Err(rpc_err(ipcp, format!("unexpected answer {other:?}"))),
            Err(e) => Err(rpc_err(ipcp, e)),
        };
        if let Some(f) = g.flows.remove(&flow_id) {
            // The application did not get the flow: its end of a reused set is still
            // parked, and the IPCP's too if it did not take it.
            g.retire(f, true);
        }
        drop(g);
        self.notify();
        result
    }

    /// Wait until a process accepts flows for `name` (starting an `auto` program if none
    /// runs), until `deadline` or until `still_wanted` says the requester gave up. Without a
    /// deadline nothing waits: `None` when no process accepts right now.
    fn wait_acceptor<'a>(
        &'a self,
        name: &str,
        deadline: Option<Instant>,
        still_wanted: impl Fn(&crate::registry::Registry) -> bool,
    ) -> Result<Option<(u32, std::sync::MutexGuard<'a, crate::registry::Registry>)>, IrmError> {
        let mut spawned = false;
        let mut g = self.lock();
        loop {
            if !still_wanted(&g) {
                return Err(IrmError::Timeout);
            }
            if let Some(b) = g.pick_acceptor(name) {
                return Ok(Some((b, g)));
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
                    if deadline.is_none() {
                        return Ok(None);
                    }
                    drop(g);
                    let pid = self.spawner.start_program(&prog, &self.rundir)?;
                    info!("Started {} (pid {pid}) for name {name}.", prog.prog);
                    spawned = true;
                    g = self.lock();
                    continue;
                }
            }
            let Some(deadline) = deadline else {
                return Ok(None);
            };
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
    /// system, the IPCP's end of the flow. With `wait` false nothing waits: `None` when no
    /// process accepts the flow right now (ask again with `wait`).
    pub(crate) fn flow_req_arr(
        self: &Arc<Self>,
        ipcp: &str,
        hash: &NameHash,
        qos: QosSpec,
        local_peer: Option<u64>,
        wait: bool,
    ) -> Result<Option<IpcpEnd>, IrmError> {
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
        let deadline = wait.then_some(deadline);
        let Some(peer) = local_peer else {
            return self.remote_flow(ipcp, &name, &layer, mtu, qos, deadline);
        };
        let Some((acceptor, mut g)) =
            self.wait_acceptor(&name, deadline, |g| g.allocs.contains_key(&peer))?
        else {
            return Ok(None);
        };
        let fds = new_flow_fds(0, o7s_shm::RingConfig::default().capacity)?;
        let Some(flow) = g.flows.get_mut(&peer) else {
            return Err(IrmError::Timeout);
        };
        flow.accept_pid = acceptor;
        flow.wake = fds.wake;
        flow.mem = Some(fds.mem);
        let grant = FlowGrant {
            flow_id: peer,
            side: 0,
            qos: flow.qos,
            name: name.clone(),
            layer: flow.layer.clone(),
            mtu: u32::MAX,
            set: 0,
        };
        let accept_grant = FlowGrant {
            side: 1,
            qos,
            ..grant.clone()
        };
        if let Some(p) = g.allocs.get_mut(&peer) {
            p.grant = Some(Delivery { grant, fds: fds.a });
        }
        let handed = g.procs.get_mut(&acceptor).and_then(|p| {
            p.deliver(Delivery {
                grant: accept_grant,
                fds: fds.b,
            })
        });
        drop(g);
        self.hand_over(acceptor, handed);
        debug!(
            flow = peer,
            "flow {peer} to {name} goes to process {acceptor}"
        );
        Ok(Some((peer, 0, Vec::new())))
    }

    /// A flow from another system: the acceptor gets side B, the IPCP side A.
    fn remote_flow(
        &self,
        ipcp: &str,
        name: &str,
        layer: &str,
        mtu: u32,
        qos: QosSpec,
        deadline: Option<Instant>,
    ) -> Result<Option<IpcpEnd>, IrmError> {
        let Some((acceptor, g)) = self.wait_acceptor(name, deadline, |_| true)? else {
            return Ok(None);
        };
        self.give_remote_flow(acceptor, g, ipcp, name, layer, mtu, qos)
            .map(Some)
    }

    /// Hand process `acceptor` side B of a new flow from another system (the registry's
    /// lock `g` is released on the way); the flow id and the IPCP's side A.
    #[allow(clippy::too_many_arguments)]
    fn give_remote_flow(
        &self,
        acceptor: u32,
        mut g: std::sync::MutexGuard<'_, crate::registry::Registry>,
        ipcp: &str,
        name: &str,
        layer: &str,
        mtu: u32,
        qos: QosSpec,
    ) -> Result<IpcpEnd, IrmError> {
        let flow_id = loop {
            let id: u64 = rand::random();
            if id != 0 && !g.flows.contains_key(&id) {
                break id;
            }
        };
        let key = PoolKey {
            pid: acceptor,
            ipcp: ipcp.to_string(),
            side: 1,
            headroom: IPCP_HEADROOM,
            capacity: ring_capacity(mtu),
        };
        let kept = g.pool.take(&key);
        let fds = set_fds(kept, key)?;
        let set = set_id(&fds);
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
                wake: fds.wake,
                mem: Some(fds.mem),
                state: FlowState::Allocated,
                set: fds.set,
            },
        );
        let grant = FlowGrant {
            flow_id,
            side: 1,
            qos,
            name: name.to_string(),
            layer: layer.to_string(),
            mtu,
            set,
        };
        let handed = g
            .procs
            .get_mut(&acceptor)
            .and_then(|p| p.deliver(Delivery { grant, fds: fds.b }));
        drop(g);
        debug!(
            flow = flow_id,
            "Flow to {name} arrived over {layer} for process {acceptor}."
        );
        self.hand_over(acceptor, handed);
        Ok((flow_id, set, fds.a))
    }

    /// A flow request for `hash` from another system arrived at IPCP `ipcp`; `done` gets
    /// the flow id and the IPCP's end of the flow, or why not. A flow that a process
    /// accepts right now goes to it here; one that must wait for a process's next accept
    /// call waits in the registry (see [`Irmd::serve_arrivals`]), not on a thread: a thread
    /// per waiting request, all woken by every change to the registry, cost the IRMd
    /// several wake-ups per flow when more requests came than accept calls. `done` comes
    /// back when the request must wait on a thread (a program to start).
    pub(crate) fn flow_req_arr_then(
        self: &Arc<Self>,
        ipcp: &str,
        hash: &NameHash,
        qos: QosSpec,
        done: ArrivalDone,
    ) -> Option<ArrivalDone> {
        let mut g = self.lock();
        let Some(name) = g.name_of_hash(ipcp, hash) else {
            drop(g);
            done(Err(IrmError::NameNotFound {
                name: hash.to_string(),
            }));
            return None;
        };
        let (layer, mtu) = g
            .ipcps
            .get(ipcp)
            .map(|i| (i.layer.clone().unwrap_or_default(), i.mtu))
            .unwrap_or_default();
        match arrival_state(&mut g, &name) {
            ArrivalState::Ready(acceptor) => {
                let r = self.give_remote_flow(acceptor, g, ipcp, &name, &layer, mtu, qos);
                done(r);
                None
            }
            ArrivalState::Failed(e) => {
                drop(g);
                done(Err(e));
                None
            }
            ArrivalState::Spawn => Some(done),
            ArrivalState::Wait => {
                let id = self.new_id();
                let me = Arc::downgrade(self);
                let timer =
                    o7s::ctrl::timer::at(Instant::now() + DEFAULT_ALLOC_TIMEOUT, move || {
                        if let Some(me) = me.upgrade() {
                            me.arrival_timed_out(id);
                        }
                    });
                g.arrivals.push_back(Arrival {
                    id,
                    ipcp: ipcp.to_string(),
                    name,
                    layer,
                    mtu,
                    qos,
                    done,
                    timer: Some(timer),
                });
                None
            }
        }
    }

    fn arrival_timed_out(&self, id: u64) {
        let mut g = self.lock();
        let Some(i) = g.arrivals.iter().position(|a| a.id == id) else {
            return;
        };
        let a = g.arrivals.remove(i);
        drop(g);
        if let Some(a) = a {
            debug!("a flow request for {} found no acceptor in time", a.name);
            (a.done)(Err(IrmError::NoAcceptor { name: a.name }));
        }
    }

    /// Give the flow requests waiting in the registry to the processes that accept them
    /// now, oldest first, and fail those that no process can take any more (the name or
    /// the IPCP is gone). Called after every change to the registry.
    pub(crate) fn serve_arrivals(&self) {
        let mut g = self.lock();
        if g.arrivals.is_empty() {
            return;
        }
        // Names no process takes a flow for now: handing flows over only ever makes fewer
        // ready, so the other requests for such a name wait too without looking again (with
        // hundreds waiting, a look at each on every change cost the IRMd more than the
        // flows themselves). A change that makes one ready serves the queue after it.
        let mut waiting: Vec<String> = Vec::new();
        let mut i = 0;
        while i < g.arrivals.len() {
            if waiting.contains(&g.arrivals[i].name) {
                i += 1;
                continue;
            }
            let (name, ipcp) = (g.arrivals[i].name.clone(), g.arrivals[i].ipcp.clone());
            let state = if g.ipcps.contains_key(&ipcp) {
                arrival_state(&mut g, &name)
            } else {
                ArrivalState::Failed(IrmError::NoSuchIpcp { name: ipcp })
            };
            // A program would have to be started: wait for a listener or the deadline.
            if matches!(state, ArrivalState::Wait | ArrivalState::Spawn) {
                waiting.push(name);
                i += 1;
                continue;
            }
            let Some(a) = g.arrivals.remove(i) else {
                break;
            };
            if let Some(t) = a.timer {
                o7s::ctrl::timer::cancel(t);
            }
            let r = match state {
                ArrivalState::Ready(acceptor) => {
                    self.give_remote_flow(acceptor, g, &a.ipcp, &a.name, &a.layer, a.mtu, a.qos)
                }
                ArrivalState::Failed(e) => {
                    drop(g);
                    Err(e)
                }
                ArrivalState::Wait | ArrivalState::Spawn => continue,
            };
            (a.done)(r);
            // The queue may have changed meanwhile: look again from the start.
            g = self.lock();
            i = 0;
        }
    }

    /// Answer the accept call a flow was handed to (see [`crate::registry::Proc::deliver`]).
    /// If its connection is gone, the flow goes to the process's next accept call.
    fn hand_over(&self, pid: u32, handed: Option<(Reply, Delivery)>) {
        let mut next = handed;
        while let Some((reply, d)) = next.take() {
            let id = d.grant.flow_id;
            let (name, layer) = (d.grant.name.clone(), d.grant.layer.clone());
            match reply
                .send(Ok((IrmResp::Flow(d.grant), d.fds)))
                .map_err(|a| *a)
            {
                Ok(()) => {
                    info!(
                        flow = id,
                        "Flow to {name} over {layer} accepted by process {pid}."
                    );
                }
                Err(Ok((IrmResp::Flow(grant), fds))) => {
                    let mut g = self.lock();
                    next = g
                        .procs
                        .get_mut(&pid)
                        .and_then(|p| p.deliver(Delivery { grant, fds }));
                }
                // Only a flow is ever sent here.
                Err(_) => {}
            }
        }
    }

    /// Wait for a flow to one of the names process `pid` accepts (see
    /// [`Irmd::flow_accept_then`]).
    pub(crate) fn flow_accept(self: &Arc<Self>, pid: u32, deadline: Option<Instant>) -> Answer {
        let (reply, rx) = Reply::channel();
        self.flow_accept_then(pid, 0, deadline, reply);
        rx.recv().unwrap_or_else(|_| Err(IrmError::ShuttingDown))
    }

    /// An accept call of process `pid` on its connection `conn`: `reply` gets the next flow
    /// for the process, from the thread that finds it, or [`IrmError::Timeout`] at
    /// `deadline`. Nothing waits here.
    pub(crate) fn flow_accept_then(
        self: &Arc<Self>,
        pid: u32,
        conn: u64,
        deadline: Option<Instant>,
        reply: Reply,
    ) {
        let mut g = self.lock();
        if g.shutting_down {
            drop(g);
            let _ = reply.send(Err(IrmError::ShuttingDown));
            return;
        }
        let Some(p) = g.procs.get_mut(&pid) else {
            drop(g);
            let _ = reply.send(Err(IrmError::BadRequest {
                why: format!("process {pid} has not announced itself"),
            }));
            return;
        };
        p.listener = true;
        if let Some(d) = p.inbox.pop_front() {
            drop(g);
            self.hand_over(pid, Some((reply, d)));
            return;
        }
        let id = self.new_id();
        let timer = deadline.map(|d| {
            let me = Arc::downgrade(self);
            o7s::ctrl::timer::at(d, move || {
                if let Some(me) = me.upgrade() {
                    me.accept_timed_out(pid, id);
                }
            })
        });
        p.accepting += 1;
        p.waiters.push_back(AcceptWaiter {
            id,
            conn,
            reply,
            timer,
        });
        drop(g);
        // A flow request may be waiting for an acceptor.
        self.notify();
    }

    fn accept_timed_out(&self, pid: u32, id: u64) {
        let gone = self
            .lock()
            .procs
            .get_mut(&pid)
            .map(|p| p.take_waiters(|w| w.id == id))
            .unwrap_or_default();
        for w in gone {
            let _ = w.reply.send(Err(IrmError::Timeout));
        }
    }

    /// Connection `conn` of process `pid` closed: its accept calls wait no more.
    pub(crate) fn conn_gone(&self, pid: u32, conn: u64) {
        if let Some(p) = self.lock().procs.get_mut(&pid) {
            p.take_waiters(|w| w.conn == conn);
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
        if let Some(f) = g.flows.remove(&flow_id) {
            info!(flow = flow_id, "Deallocated flow to {}.", f.name);
            g.retire(f, false);
        }
        drop(g);
        self.notify();
        ok()
    }

    /// Process `pid` dropped flows `ids` (nobody waits for an answer).
    pub(crate) fn flows_released(&self, pid: u32, ids: &[u64]) {
        for &flow_id in ids {
            if let Err(e) = self.flow_dealloc(pid, flow_id) {
                debug!("process {pid} released flow {flow_id}: {e}");
            }
        }
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
        let mut g = self.lock();
        if let Some(f) = g.flows.remove(&flow_id) {
            info!(flow = flow_id, "Flow to {} went down.", f.name);
            g.retire(f, false);
        }
        drop(g);
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

    /// A connected pair of unix seqpacket sockets, as a control connection.
    fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
        o7s::ctrl::wire::pair().expect("socketpair")
    }

    /// An IRMd with a unicast IPCP `u1` in layer `net` that answers everything with Ok, and
    /// the name `srv` registered in it and bound to this process: the IRMd, the IPCP's end
    /// (keep it), this process's pid and the name's hash.
    fn serving() -> (Arc<Irmd>, crate::testkit::FakeEnd, u32, NameHash) {
        let irmd = irmd();
        let u1 = add(
            &irmd,
            "u1",
            IpcpKind::Unicast,
            5_000_000,
            Some("net"),
            |_| IpcpResp::Ok,
        );
        let me = std::process::id();
        announce(&irmd, me);
        irmd.lock().names.insert(
            "srv".into(),
            crate::registry::Name {
                pids: vec![me],
                regs: ["u1".to_string()].into(),
                ..Default::default()
            },
        );
        let hash = o7s_proto::HashAlgo::default().hash("srv");
        (irmd, u1, me, hash)
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

    /// A flow from the network goes straight to a waiting accept call (in the order the
    /// calls came), from the thread that handles the flow request; accept calls time out,
    /// end with their connection, and a flow whose accept call cannot be answered any more
    /// waits for the process's next one.
    #[test]
    fn accept_calls_are_answered_by_the_flow_request() {
        let (irmd, _u1, me, hash) = serving();
        let arrive = || irmd.flow_req_arr("u1", &hash, QosSpec::RAW, None, false);
        let accepting = || irmd.lock().procs.get(&me).map_or(99, |p| p.accepting);
        // Nobody accepts yet: a flow request that may not wait is left for later.
        assert!(matches!(arrive(), Ok(None)));
        let (r1, rx1) = Reply::channel();
        let (r2, rx2) = Reply::channel();
        irmd.flow_accept_then(me, 1, None, r1);
        irmd.flow_accept_then(me, 2, None, r2);
        assert_eq!(accepting(), 2);
        let first = arrive().ok().flatten().map(|(id, _, fds)| (id, fds.len()));
        let Ok(Ok((IrmResp::Flow(g), fds))) = rx1.try_recv() else {
            panic!("the first accept call got no flow");
        };
        assert_eq!((Some((g.flow_id, 4)), g.side, fds.len()), (first, 1, 4));
        assert!(rx2.try_recv().is_err());
        assert_eq!(accepting(), 1);
        // The second call's connection closes: it waits no more.
        irmd.conn_gone(me, 2);
        assert_eq!(accepting(), 0);
        assert!(matches!(arrive(), Ok(None)));
        // A deadline ends a call.
        let (r3, rx3) = Reply::channel();
        irmd.flow_accept_then(me, 3, Some(Instant::now() + Duration::from_millis(30)), r3);
        let got = rx3.recv_timeout(Duration::from_secs(5));
        assert!(matches!(got, Ok(Err(IrmError::Timeout))), "{got:?}");
        assert_eq!(accepting(), 0);
        // An accept call whose connection is gone: the flow waits in the inbox for the next.
        let (a, b) = seqpacket_pair();
        drop(b);
        irmd.flow_accept_then(me, 4, None, Reply::to_socket(Arc::new(a), me));
        let Ok(Some((id, _, _))) = arrive() else {
            panic!("the flow was not taken");
        };
        assert_eq!(irmd.lock().procs.get(&me).map(|p| p.inbox.len()), Some(1));
        let got = irmd.flow_accept(me, Some(Instant::now() + Duration::from_secs(5)));
        assert!(
            matches!(&got, Ok((IrmResp::Flow(g), _)) if g.flow_id == id),
            "{got:?}"
        );
        // One that does not read its answers (its queue is full) does not stall the thread
        // handling the flow request: the flow waits in the inbox too.
        let (a, b) = seqpacket_pair();
        while o7s::ctrl::wire::send_nowait(a.as_fd(), &IrmResp::Ok, &[]).is_ok() {}
        irmd.flow_accept_then(me, 5, None, Reply::to_socket(Arc::new(a), me));
        let t = Instant::now();
        let Ok(Some((id, _, _))) = arrive() else {
            panic!("the flow was not taken");
        };
        assert!(t.elapsed() < Duration::from_secs(1));
        let got = irmd.flow_accept(me, Some(Instant::now() + Duration::from_secs(5)));
        assert!(
            matches!(&got, Ok((IrmResp::Flow(g), _)) if g.flow_id == id),
            "{got:?}"
        );
        drop(b);
        assert_eq!(irmd.lock().flows.len(), 3);
        // A process that goes takes its flows with it.
        irmd.proc_gone(me);
        assert!(irmd.lock().flows.is_empty());
    }

    /// A flow request from another system that no accept call waits for waits in the
    /// registry (no thread) and goes to the next accept call, in arrival order; one whose
    /// name goes away meanwhile fails at once.
    #[test]
    fn flow_requests_wait_for_the_next_accept_call() {
        use std::sync::mpsc::channel;
        let (irmd, _u1, me, hash) = serving();
        let (tx, rx) = channel();
        for n in 0..2 {
            let t = tx.clone();
            let done: ArrivalDone = Box::new(move |r| {
                let _ = t.send((n, r.map(|(id, _, fds)| (id, fds.len()))));
            });
            assert!(irmd
                .flow_req_arr_then("u1", &hash, QosSpec::RAW, done)
                .is_none());
        }
        assert!(rx.try_recv().is_err());
        assert_eq!(irmd.lock().arrivals.len(), 2);
        // Each accept call takes the oldest waiting request.
        for n in 0..2 {
            let (r, got) = Reply::channel();
            irmd.flow_accept_then(me, 1, None, r);
            let Ok((m, Ok((id, 4)))) = rx.try_recv() else {
                panic!("request {n} was not answered");
            };
            assert_eq!(m, n);
            let Ok(Ok((IrmResp::Flow(g), fds))) = got.try_recv() else {
                panic!("the accept call got no flow");
            };
            assert_eq!((g.flow_id, g.side, fds.len()), (id, 1, 4));
        }
        assert!(irmd.lock().arrivals.is_empty());
        // The name goes: a waiting request fails.
        let t = tx.clone();
        let done: ArrivalDone = Box::new(move |r| {
            let _ = t.send((9, r.map(|(id, _, fds)| (id, fds.len()))));
        });
        assert!(irmd
            .flow_req_arr_then("u1", &hash, QosSpec::RAW, done)
            .is_none());
        irmd.lock().names.remove("srv");
        irmd.notify();
        let got = rx.try_recv();
        assert!(
            matches!(got, Ok((9, Err(IrmError::NoSuchName { .. })))),
            "{got:?}"
        );
        assert!(irmd.lock().arrivals.is_empty());
    }

    /// Requests for a name no process accepts now wait behind, not in front of, a request
    /// another process takes: an accept call gets its flow past them.
    #[test]
    fn a_waiting_name_does_not_hold_up_another() {
        use std::sync::mpsc::channel;
        let (irmd, _u1, me, hash) = serving();
        announce(&irmd, 4242);
        irmd.lock().names.insert(
            "other".into(),
            crate::registry::Name {
                pids: vec![4242],
                regs: ["u1".to_string()].into(),
                ..Default::default()
            },
        );
        let other = o7s_proto::HashAlgo::default().hash("other");
        let (tx, rx) = channel();
        for (n, h) in [(0, &other), (1, &other), (2, &hash)] {
            let t = tx.clone();
            let done: ArrivalDone = Box::new(move |r| {
                let _ = t.send((n, r.is_ok()));
            });
            assert!(irmd
                .flow_req_arr_then("u1", h, QosSpec::RAW, done)
                .is_none());
        }
        let (r, got) = Reply::channel();
        irmd.flow_accept_then(me, 1, None, r);
        assert_eq!(rx.try_recv().ok(), Some((2, true)));
        assert!(matches!(got.try_recv(), Ok(Ok((IrmResp::Flow(_), _)))));
        assert_eq!(irmd.lock().arrivals.len(), 2);
        assert!(rx.try_recv().is_err());
    }

    /// Releases that ride on a request deallocate the process's flows before the request
    /// is handled; another process's flow is not touched.
    #[test]
    fn releases_ride_on_a_request() {
        let irmd = irmd();
        announce(&irmd, 1);
        for (id, pid) in [(11u64, 1u32), (12, 1), (13, 2)] {
            irmd.lock().flows.insert(
                id,
                FlowRec {
                    id,
                    name: "srv".into(),
                    layer: "net".into(),
                    ipcp: "u1".into(),
                    qos: QosSpec::RAW,
                    alloc_pid: pid,
                    accept_pid: 0,
                    wake: Vec::new(),
                    mem: None,
                    state: FlowState::Allocated,
                    set: None,
                },
            );
        }
        let req = IrmReq::Released {
            flow_ids: vec![11, 13],
            req: o7s::ctrl::msg::FlowReq::FlowDealloc { flow_id: 12 },
        };
        assert!(irmd.handle(1, req).is_ok());
        let left: Vec<u64> = irmd.lock().flows.keys().copied().collect();
        assert_eq!(left, [13]);
    }

    /// An IPCP that does not answer an allocation in time fails it at the deadline (and a
    /// second for its answer), with nothing left behind; its late answer changes nothing.
    #[test]
    fn an_allocation_the_ipcp_does_not_answer_times_out() {
        let irmd = irmd();
        let _u1 = add(
            &irmd,
            "u1",
            IpcpKind::Unicast,
            5_000_000,
            Some("net"),
            |r| match r {
                IpcpReq::Query { .. } => IpcpResp::Bool(true),
                _ => {
                    std::thread::sleep(Duration::from_millis(2500));
                    IpcpResp::Ok
                }
            },
        );
        announce(&irmd, 1);
        let t = Instant::now();
        let r = irmd.flow_alloc(1, "srv", QosSpec::RAW, t + Duration::from_millis(100));
        let took = t.elapsed();
        assert!(
            matches!(&r, Err(IrmError::IpcpFailed { why, .. }) if why.contains("timed out")),
            "{:?}",
            r.err()
        );
        assert!(
            took >= Duration::from_millis(1100) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert!(irmd.lock().flows.is_empty() && irmd.lock().allocs.is_empty());
        std::thread::sleep(Duration::from_millis(1600));
        assert!(irmd.lock().flows.is_empty());
    }

    #[test]
    fn rings_hold_64_of_a_layers_largest_packets_within_1_to_4_mib() {
        assert_eq!(ring_capacity(0), 1 << 20);
        assert_eq!(ring_capacity(1500), 1 << 20);
        assert_eq!(ring_capacity(9000), 1 << 20);
        assert_eq!(ring_capacity(16_000), 1 << 20);
        assert_eq!(ring_capacity(17_000), 2 << 20);
        assert_eq!(ring_capacity(65_535), 4 << 20);
        assert_eq!(ring_capacity(u32::MAX), 4 << 20);
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
