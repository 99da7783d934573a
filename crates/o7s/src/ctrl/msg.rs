//! The control messages between applications, `irm`, the IRMd and IPCPs.
//!
//! They are private to one host and one build (postcard over `SOCK_SEQPACKET`), so they need
//! no cross-version stability; every decode is still checked because any local process can
//! connect to the IRMd.

use o7s_proto::{NameHash, QosSpec};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds of IPC process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IpcpKind {
    Local,
    EthLlc,
    EthDix,
    Udp4,
    Udp6,
    Unicast,
    Broadcast,
}

impl IpcpReq {
    /// The refusal of an enrollment or connection request by an IPCP of a `kind` that is
    /// never enrolled (`kind` says which: the shims and `local` are only bootstrapped).
    pub fn not_for(&self, kind: &str) -> Option<IrmError> {
        let what = match self {
            IpcpReq::Enroll { .. } => "enrollment",
            IpcpReq::Connect { .. } | IpcpReq::Disconnect { .. } => "connecting components",
            IpcpReq::FlowJoin { .. } => {
                return Some(IrmError::BadRequest {
                    why: format!(
                        "only a broadcast layer is joined; a {kind} IPCP allocates flows to names"
                    ),
                })
            }
            _ => return None,
        };
        Some(IrmError::BadRequest {
            why: format!(
                "{what} is for unicast and broadcast IPCPs; a {kind} IPCP is only bootstrapped"
            ),
        })
    }
}

impl IpcpKind {
    pub const ALL: [IpcpKind; 7] = [
        IpcpKind::Local,
        IpcpKind::EthLlc,
        IpcpKind::EthDix,
        IpcpKind::Udp4,
        IpcpKind::Udp6,
        IpcpKind::Unicast,
        IpcpKind::Broadcast,
    ];

    pub fn name(self) -> &'static str {
        match self {
            IpcpKind::Local => "local",
            IpcpKind::EthLlc => "eth-llc",
            IpcpKind::EthDix => "eth-dix",
            IpcpKind::Udp4 => "udp4",
            IpcpKind::Udp6 => "udp6",
            IpcpKind::Unicast => "unicast",
            IpcpKind::Broadcast => "broadcast",
        }
    }

    /// Parse a type name as `irm` and the config file spell it.
    pub fn parse(s: &str) -> Option<IpcpKind> {
        IpcpKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl fmt::Display for IpcpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Load-balancing policy of a name over the processes bound to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LoadBalance {
    #[default]
    Spill,
    RoundRobin,
}

impl LoadBalance {
    pub fn name(self) -> &'static str {
        match self {
            LoadBalance::Spill => "spill",
            LoadBalance::RoundRobin => "round-robin",
        }
    }

    pub fn parse(s: &str) -> Option<LoadBalance> {
        match s {
            "spill" => Some(LoadBalance::Spill),
            "round-robin" | "rr" => Some(LoadBalance::RoundRobin),
            _ => None,
        }
    }
}

/// What a name is bound to, or unbound from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BindTarget {
    /// A program (path or name on `PATH`); `auto` starts it on demand with `args`.
    Program {
        prog: String,
        auto: bool,
        args: Vec<String>,
    },
    Process {
        pid: u32,
    },
    Ipcp {
        name: String,
    },
}

/// Where a name is registered: all IPCPs of a layer, or one IPCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegTarget {
    Layer(String),
    Ipcp(String),
}

/// A request from an application or `irm` to the IRMd. Each is answered by one [`IrmResp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IrmReq {
    /// Sent once on a process's main connection; the connection then stays open for the
    /// life of the process, and its close deallocates all flows of that process.
    Announce {
        prog: String,
    },
    IpcpCreate {
        kind: IpcpKind,
        name: String,
    },
    IpcpDestroy {
        name: String,
    },
    IpcpBootstrap {
        kind: IpcpKind,
        name: String,
        layer: String,
        params: Vec<(String, String)>,
        autobind: bool,
    },
    IpcpEnroll {
        name: String,
        kind: Option<IpcpKind>,
        dst: Option<String>,
        layer: Option<String>,
        autobind: bool,
    },
    IpcpConnect {
        name: String,
        component: String,
        dst: String,
        qos: Option<String>,
    },
    IpcpDisconnect {
        name: String,
        component: String,
        dst: String,
    },
    IpcpList,
    /// Details of one IPCP (layer, address, flows, counters), as the IPCP reports them.
    IpcpShow {
        name: String,
    },
    Bind {
        target: BindTarget,
        name: String,
    },
    Unbind {
        target: BindTarget,
        name: String,
    },
    NameCreate {
        name: String,
        lb: LoadBalance,
    },
    NameDestroy {
        name: String,
    },
    NameReg {
        name: String,
        targets: Vec<RegTarget>,
    },
    NameUnreg {
        name: String,
        targets: Vec<RegTarget>,
    },
    NameList,
    FlowList,
    /// Allocate a flow to `name`. Answered by [`IrmResp::Flow`] with the flow's fds.
    FlowAlloc {
        name: String,
        qos: QosSpec,
        timeout_ms: Option<u32>,
    },
    /// Wait for a flow to any name this process is bound to.
    FlowAccept {
        timeout_ms: Option<u32>,
    },
    FlowDealloc {
        flow_id: u64,
    },
    /// Deallocate a flow without an answer (an application dropped it; nothing waits).
    FlowRelease {
        flow_id: u64,
    },
    /// Join the broadcast layer named `layer` on this system (the prototype's `flow_join`):
    /// a flow on which every packet written reaches every other member of the layer.
    /// Answered by [`IrmResp::Flow`] with the flow's fds.
    FlowJoin {
        layer: String,
        qos: QosSpec,
        timeout_ms: Option<u32>,
    },
    /// Deallocate `flow_ids` as [`IrmReq::FlowRelease`] does, then handle `req` (answered as
    /// `req` is): the releases of flows a process dropped ride on its next request, so that
    /// the IRMd's thread of the connection wakes once for both.
    Released {
        flow_ids: Vec<u64>,
        req: FlowReq,
    },
}

/// The requests that carry releases along ([`IrmReq::Released`]); not an [`IrmReq`] itself,
/// so that no message nests without bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FlowReq {
    FlowAlloc {
        name: String,
        qos: QosSpec,
        timeout_ms: Option<u32>,
    },
    FlowAccept {
        timeout_ms: Option<u32>,
    },
    FlowDealloc {
        flow_id: u64,
    },
}

impl FlowReq {
    /// `req` as one that can carry releases, or back when it cannot.
    pub fn from_req(req: IrmReq) -> Result<FlowReq, IrmReq> {
        match req {
            IrmReq::FlowAlloc {
                name,
                qos,
                timeout_ms,
            } => Ok(FlowReq::FlowAlloc {
                name,
                qos,
                timeout_ms,
            }),
            IrmReq::FlowAccept { timeout_ms } => Ok(FlowReq::FlowAccept { timeout_ms }),
            IrmReq::FlowDealloc { flow_id } => Ok(FlowReq::FlowDealloc { flow_id }),
            other => Err(other),
        }
    }
}

impl From<FlowReq> for IrmReq {
    fn from(r: FlowReq) -> IrmReq {
        match r {
            FlowReq::FlowAlloc {
                name,
                qos,
                timeout_ms,
            } => IrmReq::FlowAlloc {
                name,
                qos,
                timeout_ms,
            },
            FlowReq::FlowAccept { timeout_ms } => IrmReq::FlowAccept { timeout_ms },
            FlowReq::FlowDealloc { flow_id } => IrmReq::FlowDealloc { flow_id },
        }
    }
}

/// The IRMd's answer to an [`IrmReq`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IrmResp {
    Ok,
    Err(IrmError),
    IpcpCreated {
        pid: u32,
    },
    Ipcps(Vec<IpcpInfo>),
    /// An IPCP's details: its list entry, then labelled values.
    IpcpShow(IpcpInfo, Vec<(String, String)>),
    Names(Vec<NameInfo>),
    Flows(Vec<FlowInfo>),
    /// A flow: four fds ride along, in this order: shared memory, own wait eventfd, peer's
    /// wait eventfd, liveness pipe end.
    Flow(FlowGrant),
}

/// One side of a flow, as the IRMd hands it to a process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowGrant {
    pub flow_id: u64,
    /// 0 = side A (writes ring 0), 1 = side B.
    pub side: u8,
    /// For an allocated flow the QoS agreed; for an accepted flow the peer's request.
    pub qos: QosSpec,
    /// The name the flow was allocated to.
    pub name: String,
    /// The layer the flow runs over.
    pub layer: String,
    /// Largest packet the layer carries.
    pub mtu: u32,
    /// The region set of the flow (0: none), which the process parks when the flow ends
    /// (see `o7s_shm::park`); a grant without fds names a set the process parked before.
    pub set: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpcpInfo {
    pub name: String,
    pub kind: IpcpKind,
    pub pid: u32,
    pub layer: Option<String>,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameInfo {
    pub name: String,
    pub lb: LoadBalance,
    pub programs: Vec<String>,
    pub processes: Vec<u32>,
    pub ipcps: Vec<String>,
    /// Layers the name is registered in.
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowInfo {
    pub flow_id: u64,
    pub name: String,
    pub layer: String,
    pub qos: String,
    /// Pid of the allocating side and of the accepting side (0 when that side is an IPCP).
    pub alloc_pid: u32,
    pub accept_pid: u32,
    pub state: String,
    /// FRCT counters of each application end that runs FRCT on this flow, as the library
    /// last published them in the flow's region (at most a millisecond old while it is busy).
    #[serde(default)]
    pub frct: Vec<FrctInfo>,
}

/// One end's FRCT counters, as `irm flow list` shows them (see `o7s_proto::frct::FrctCounters`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrctInfo {
    /// The process at this end.
    pub pid: u32,
    pub retransmissions: u64,
    pub fast_retransmissions: u64,
    pub duplicates: u64,
    pub rendezvous_sent: u64,
    pub rendezvous_received: u64,
    pub skipped: u64,
    pub messages_dropped: u64,
    pub out_of_window: u64,
    pub malformed: u64,
    pub window: u64,
    pub in_flight: u64,
    pub srtt_us: u64,
    pub mdev_us: u64,
    pub rto_us: u64,
}

impl FrctInfo {
    /// The counters as the words the library publishes in a flow region (same order as
    /// [`from_words`](Self::from_words); the pid travels separately).
    pub fn to_words(&self) -> [u64; 14] {
        [
            self.retransmissions,
            self.fast_retransmissions,
            self.duplicates,
            self.rendezvous_sent,
            self.rendezvous_received,
            self.skipped,
            self.messages_dropped,
            self.out_of_window,
            self.malformed,
            self.window,
            self.in_flight,
            self.srtt_us,
            self.mdev_us,
            self.rto_us,
        ]
    }

    /// The counters of `pid` from published words (missing words read as 0).
    pub fn from_words(pid: u32, w: &[u64]) -> FrctInfo {
        let g = |i: usize| w.get(i).copied().unwrap_or(0);
        FrctInfo {
            pid,
            retransmissions: g(0),
            fast_retransmissions: g(1),
            duplicates: g(2),
            rendezvous_sent: g(3),
            rendezvous_received: g(4),
            skipped: g(5),
            messages_dropped: g(6),
            out_of_window: g(7),
            malformed: g(8),
            window: g(9),
            in_flight: g(10),
            srtt_us: g(11),
            mdev_us: g(12),
            rto_us: g(13),
        }
    }
}

/// Everything that can go wrong in a control request, with what a user needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum IrmError {
    #[error("name \"{name}\" is not registered in any layer reachable from this system; register it where its server runs: irm name reg {name} layer LAYER")]
    NameNotFound { name: String },
    #[error("name \"{name}\" does not exist; create it with: irm name create {name}")]
    NoSuchName { name: String },
    #[error("name \"{name}\" already exists")]
    NameExists { name: String },
    #[error("no IPCP named \"{name}\"; see: irm ipcp list")]
    NoSuchIpcp { name: String },
    #[error("an IPCP named \"{name}\" already exists")]
    IpcpExists { name: String },
    #[error("IPCP \"{name}\" is a {actual} IPCP, not {wanted}")]
    IpcpKindMismatch {
        name: String,
        actual: String,
        wanted: String,
    },
    #[error("no IPCP in layer \"{layer}\"; bootstrap one: irm ipcp bootstrap type local name NAME layer {layer}")]
    NoSuchLayer { layer: String },
    #[error("IPCP \"{name}\" is already bootstrapped in layer \"{layer}\"")]
    AlreadyBootstrapped { name: String, layer: String },
    #[error("IPCP \"{name}\" is not bootstrapped or enrolled in a layer yet")]
    NotBootstrapped { name: String },
    #[error("no process with pid {pid} is known to the IRMd (it must use the o7s library)")]
    NoSuchProcess { pid: u32 },
    #[error("\"{name}\" is not bound to {target}")]
    NotBound { name: String, target: String },
    #[error("bad parameter {key}={value}: {why}")]
    BadParam {
        key: String,
        value: String,
        why: String,
    },
    #[error("{what} is not supported yet by this o7s build")]
    NotSupported { what: String },
    #[error("could not start {prog}: {why}")]
    SpawnFailed { prog: String, why: String },
    #[error("IPCP \"{name}\" failed: {why}")]
    IpcpFailed { name: String, why: String },
    #[error("timed out")]
    Timeout,
    #[error("no process accepted the flow to \"{name}\" (bind a program with auto, or start a server: irm bind program PROG name {name} auto)")]
    NoAcceptor { name: String },
    #[error(
        "this process is not bound to any name; bind it first: irm bind process PID name NAME"
    )]
    NotBoundToAnyName,
    #[error("flow {flow_id} does not exist")]
    NoSuchFlow { flow_id: u64 },
    #[error("permission denied: {why}")]
    Denied { why: String },
    #[error("malformed request: {why}")]
    BadRequest { why: String },
    #[error("no broadcast layer named \"{layer}\" on this system; join one: irm ipcp enroll name NAME type broadcast layer {layer} (or start it: irm ipcp bootstrap type broadcast name NAME layer {layer})")]
    NoBroadcastLayer { layer: String },
    #[error("IRMd is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
}

/// Requests the IRMd sends to an IPCP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IpcpReq {
    Bootstrap {
        layer: String,
        params: Vec<(String, String)>,
    },
    Reg {
        name: String,
        hash: NameHash,
    },
    Unreg {
        hash: NameHash,
    },
    /// Is `hash` reachable through this IPCP?
    Query {
        hash: NameHash,
    },
    /// Allocate a flow to `hash` for the application flow `flow_id`. The IPCP's end comes
    /// along as four fds, or, without fds, is the end of region set `set` it parked.
    FlowAlloc {
        flow_id: u64,
        hash: NameHash,
        qos: QosSpec,
        set: u64,
    },
    FlowDealloc {
        flow_id: u64,
    },
    Show,
    /// Join the layer of the member reachable as `dst` (an IPCP name or the layer's name),
    /// answered like a bootstrap.
    Enroll {
        dst: String,
    },
    /// Make an adjacency of `component` (`dt` or `mgmt`) to the member named `dst`.
    Connect {
        component: String,
        dst: String,
        qos: Option<String>,
    },
    Disconnect {
        component: String,
        dst: String,
    },
    /// A local application joins the IPCP's broadcast layer (`hash`: of the layer's name)
    /// with flow `flow_id`; the IPCP's end of the flow (four fds) rides along.
    FlowJoin {
        flow_id: u64,
        hash: NameHash,
        qos: QosSpec,
    },
}

/// Requests an IPCP sends to the IRMd.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IpcpNote {
    /// A flow request for `hash` arrived. For the local IPCP, `local_peer` names the
    /// allocating flow, so the IRMd joins both applications to one pair of rings.
    FlowReqArr {
        hash: NameHash,
        qos: QosSpec,
        local_peer: Option<u64>,
    },
    /// The IPCP lost a flow (peer gone).
    FlowDown { flow_id: u64 },
    /// The largest packet the IPCP's layer now carries changed (a unicast IPCP's MTU follows
    /// its lower flows); flows allocated from now on get it.
    Mtu { mtu: u32 },
}

/// Answers between IRMd and IPCP, in either direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IpcpResp {
    Ok,
    Err(IrmError),
    Bool(bool),
    /// Bootstrap answer: the layer and its hash algorithm, and the IPCP's MTU.
    Bootstrapped {
        layer: String,
        hash: o7s_proto::HashAlgo,
        mtu: u32,
    },
    /// A flow was accepted on the IRMd side (answer to `FlowReqArr`).
    /// The IPCP's end comes along as four fds or, without, is region set `set` (see
    /// `FlowAlloc`).
    FlowAccepted {
        flow_id: u64,
        set: u64,
    },
    Show(Vec<(String, String)>),
}

/// One datagram on an IRMd <-> IPCP connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IpcpFrame {
    Req { id: u64, body: IpcpReq },
    Note { id: u64, body: IpcpNote },
    Resp { id: u64, body: IpcpResp },
}

/// From the IRMd to a process that hosts several IPCPs (`ipcpd-shim --host`): start IPCP
/// `name` of `kind`, whose control connection comes with this datagram as its one fd. The
/// host answers nothing: the IPCP answers on that connection, and closing it (by the IRMd)
/// stops the IPCP again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStart {
    pub kind: IpcpKind,
    pub name: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The requests that can carry releases come back as they were; the others are refused.
    #[test]
    fn flow_requests_carry_releases_and_come_back_whole() {
        let reqs = [
            IrmReq::FlowAlloc {
                name: "srv".into(),
                qos: QosSpec::RAW,
                timeout_ms: Some(5),
            },
            IrmReq::FlowAccept { timeout_ms: None },
            IrmReq::FlowDealloc { flow_id: 7 },
        ];
        for r in reqs {
            let carried = FlowReq::from_req(r.clone()).unwrap();
            assert_eq!(IrmReq::from(carried), r);
        }
        let other = IrmReq::FlowRelease { flow_id: 7 };
        assert_eq!(FlowReq::from_req(other.clone()), Err(other));
    }
}
