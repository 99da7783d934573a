//! The IRMd's registry: IPCPs, names, processes and flows. Plain data; the locking and the
//! waiting live in `irmd.rs`.

use o7s::ctrl::msg::{FlowGrant, FlowInfo, IpcpInfo, IpcpKind, LoadBalance, NameInfo};
use o7s::ctrl::rpc::Rpc;
use o7s_proto::{HashAlgo, NameHash, QosSpec};
use rustix::fd::OwnedFd;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

/// An IPC process started by this IRMd.
pub struct Ipcp {
    pub name: String,
    pub kind: IpcpKind,
    pub pid: u32,
    pub rpc: Arc<Rpc>,
    /// Set once bootstrapped or enrolled.
    pub layer: Option<String>,
    pub hash: HashAlgo,
    pub mtu: u32,
}

impl Ipcp {
    pub fn info(&self) -> IpcpInfo {
        IpcpInfo {
            name: self.name.clone(),
            kind: self.kind,
            pid: self.pid,
            layer: self.layer.clone(),
            state: if self.layer.is_some() {
                "operational".into()
            } else {
                "init".into()
            },
        }
    }
}

/// A program bound to a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgBind {
    pub prog: String,
    pub auto: bool,
    pub args: Vec<String>,
}

impl ProgBind {
    /// The file name a running process of this program announces.
    pub fn base(&self) -> &str {
        base_name(&self.prog)
    }
}

pub fn base_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// A name and what it is bound to and registered in.
#[derive(Default)]
pub struct Name {
    pub lb: LoadBalance,
    pub progs: Vec<ProgBind>,
    pub pids: Vec<u32>,
    pub ipcps: Vec<String>,
    /// IPCPs the name is registered with.
    pub regs: BTreeSet<String>,
    /// Next acceptor for round-robin.
    pub rr: usize,
}

/// A flow handed to a process, waiting for it to pick it up with an accept.
pub struct Delivery {
    pub grant: FlowGrant,
    pub fds: Vec<OwnedFd>,
}

/// A process that announced itself.
pub struct Proc {
    pub prog: String,
    /// Accept calls waiting right now.
    pub accepting: usize,
    /// Has called accept at least once: only such processes of a bound program are servers
    /// (a client run of the same program is not).
    pub listener: bool,
    /// Flows waiting for an accept.
    pub inbox: VecDeque<Delivery>,
}

/// A flow the IRMd set up.
pub struct FlowRec {
    pub id: u64,
    pub name: String,
    pub layer: String,
    pub ipcp: String,
    pub qos: QosSpec,
    pub alloc_pid: u32,
    pub accept_pid: u32,
    /// The IRMd's handle on the flow's liveness socket: shutting it down takes the flow down
    /// for both ends.
    pub live: Option<OwnedFd>,
    pub state: FlowState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowState {
    /// Asked of the IPCP, no answer yet.
    Pending,
    Allocated,
}

impl FlowRec {
    pub fn info(&self) -> FlowInfo {
        FlowInfo {
            flow_id: self.id,
            name: self.name.clone(),
            layer: self.layer.clone(),
            qos: self.qos.to_string(),
            alloc_pid: self.alloc_pid,
            accept_pid: self.accept_pid,
            state: match self.state {
                FlowState::Pending => "pending".into(),
                FlowState::Allocated => "allocated".into(),
            },
        }
    }

    /// Take the flow down for both ends.
    pub fn kill(&mut self) {
        if let Some(live) = self.live.take() {
            let _ = rustix::net::shutdown(&live, rustix::net::Shutdown::Both);
        }
    }
}

/// A flow allocation in progress: where the allocator's side ends up once the IPCP has
/// found the acceptor.
pub struct PendingAlloc {
    pub pid: u32,
    pub name: String,
    pub deadline: std::time::Instant,
    pub grant: Option<Delivery>,
}

/// Everything the IRMd knows.
#[derive(Default)]
pub struct Registry {
    pub ipcps: BTreeMap<String, Ipcp>,
    pub names: BTreeMap<String, Name>,
    pub procs: HashMap<u32, Proc>,
    pub flows: HashMap<u64, FlowRec>,
    pub allocs: HashMap<u64, PendingAlloc>,
    pub shutting_down: bool,
}

impl Registry {
    pub fn name_info(&self) -> Vec<NameInfo> {
        self.names
            .iter()
            .map(|(n, e)| NameInfo {
                name: n.clone(),
                lb: e.lb,
                programs: e.progs.iter().map(|p| p.prog.clone()).collect(),
                processes: e.pids.clone(),
                ipcps: e.ipcps.clone(),
                layers: e
                    .regs
                    .iter()
                    .filter_map(|i| self.ipcps.get(i).and_then(|i| i.layer.clone()))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            })
            .collect()
    }

    /// The name an IPCP's hash stands for, among the names registered with that IPCP.
    pub fn name_of_hash(&self, ipcp: &str, hash: &NameHash) -> Option<String> {
        let algo = self.ipcps.get(ipcp)?.hash;
        self.names
            .iter()
            .find(|(n, e)| e.regs.contains(ipcp) && algo.hash(n) == *hash)
            .map(|(n, _)| n.clone())
    }

    /// Can process `pid` accept flows for `name`?
    pub fn may_accept(&self, pid: u32, name: &str) -> bool {
        let (Some(p), Some(n)) = (self.procs.get(&pid), self.names.get(name)) else {
            return false;
        };
        n.pids.contains(&pid) || n.progs.iter().any(|b| b.base() == p.prog)
    }

    /// Processes that may accept flows for `name`, in binding order.
    pub fn candidates(&self, name: &str) -> Vec<u32> {
        let Some(n) = self.names.get(name) else {
            return Vec::new();
        };
        let mut out: Vec<u32> = n
            .pids
            .iter()
            .copied()
            .filter(|p| self.procs.contains_key(p))
            .collect();
        let mut by_prog: Vec<u32> = self
            .procs
            .iter()
            .filter(|(pid, p)| {
                !out.contains(pid) && p.listener && n.progs.iter().any(|b| b.base() == p.prog)
            })
            .map(|(pid, _)| *pid)
            .collect();
        by_prog.sort_unstable();
        out.extend(by_prog);
        out
    }

    /// Pick the process that gets the next flow for `name`, by the name's load balancing:
    /// a process waiting in accept first; `spill` fills the first such process, `round-robin`
    /// rotates over them.
    pub fn pick_acceptor(&mut self, name: &str) -> Option<u32> {
        let cands = self.candidates(name);
        let ready: Vec<u32> = cands
            .iter()
            .copied()
            .filter(|p| {
                self.procs
                    .get(p)
                    .is_some_and(|p| p.accepting > p.inbox.len())
            })
            .collect();
        let n = self.names.get_mut(name)?;
        match (n.lb, ready.is_empty()) {
            (_, true) => None,
            (LoadBalance::Spill, false) => ready.first().copied(),
            (LoadBalance::RoundRobin, false) => {
                let p = ready[n.rr % ready.len()];
                n.rr = n.rr.wrapping_add(1);
                Some(p)
            }
        }
    }

    /// Forget a process and take its flows down.
    pub fn remove_proc(&mut self, pid: u32) -> Vec<u64> {
        self.procs.remove(&pid);
        for n in self.names.values_mut() {
            n.pids.retain(|p| *p != pid);
        }
        let ids: Vec<u64> = self
            .flows
            .values()
            .filter(|f| f.alloc_pid == pid || f.accept_pid == pid)
            .map(|f| f.id)
            .collect();
        for id in &ids {
            if let Some(mut f) = self.flows.remove(id) {
                f.kill();
            }
        }
        ids
    }

    /// Forget an IPCP, its registrations and take the flows through it down.
    pub fn remove_ipcp(&mut self, name: &str) -> Option<Ipcp> {
        let ipcp = self.ipcps.remove(name)?;
        for n in self.names.values_mut() {
            n.regs.remove(name);
            n.ipcps.retain(|i| i != name);
        }
        let ids: Vec<u64> = self
            .flows
            .values()
            .filter(|f| f.ipcp == name)
            .map(|f| f.id)
            .collect();
        for id in ids {
            if let Some(mut f) = self.flows.remove(&id) {
                f.kill();
            }
        }
        Some(ipcp)
    }

    /// IPCPs that are members of `layer`.
    pub fn layer_members(&self, layer: &str) -> Vec<String> {
        self.ipcps
            .values()
            .filter(|i| i.layer.as_deref() == Some(layer))
            .map(|i| i.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(prog: &str) -> Proc {
        Proc {
            prog: prog.into(),
            accepting: 1,
            listener: true,
            inbox: VecDeque::new(),
        }
    }

    #[test]
    fn spill_and_round_robin() {
        let mut r = Registry::default();
        r.names.insert(
            "srv".into(),
            Name {
                progs: vec![ProgBind {
                    prog: "/usr/bin/oping".into(),
                    auto: false,
                    args: vec![],
                }],
                ..Default::default()
            },
        );
        r.procs.insert(10, proc("oping"));
        r.procs.insert(11, proc("oping"));
        r.procs.insert(12, proc("other"));
        assert_eq!(r.candidates("srv"), vec![10, 11]);
        assert_eq!(r.pick_acceptor("srv"), Some(10));
        assert_eq!(r.pick_acceptor("srv"), Some(10));
        if let Some(n) = r.names.get_mut("srv") {
            n.lb = LoadBalance::RoundRobin;
        }
        let a = r.pick_acceptor("srv");
        let b = r.pick_acceptor("srv");
        assert_ne!(a, b);
        assert!(r.may_accept(11, "srv"));
        assert!(!r.may_accept(12, "srv"));
    }

    #[test]
    fn removing_a_process_unbinds_it() {
        let mut r = Registry::default();
        r.names.insert(
            "srv".into(),
            Name {
                pids: vec![7],
                ..Default::default()
            },
        );
        r.procs.insert(7, proc("x"));
        r.remove_proc(7);
        assert!(r.names["srv"].pids.is_empty());
        assert!(r.candidates("srv").is_empty());
    }
}
