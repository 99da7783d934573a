//! The IRMd's registry: IPCPs, names, processes and flows. Plain data; the locking and the
//! waiting live in `irmd.rs`.

use o7s::ctrl::msg::{
    FlowGrant, FlowInfo, IpcpInfo, IpcpKind, IrmError, IrmResp, LoadBalance, NameInfo,
};
use o7s::ctrl::rpc::Rpc;
use o7s_proto::{HashAlgo, NameHash, QosSpec};
use rustix::fd::{AsFd, OwnedFd};
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
    /// While an enrollment runs: the layer it joins, when known (`layer` given, or `dst` is
    /// the name of a layer), else the empty string.
    pub joining: Option<String>,
    pub hash: HashAlgo,
    pub mtu: u32,
    /// Runs in a process that hosts other IPCPs too (`pid` is that process): ending it
    /// closes its connection, which stops it there, instead of killing the process.
    pub hosted: bool,
}

impl Ipcp {
    /// End the IPCP: close its connection and kill its process, unless that process hosts
    /// others too (closing the connection stops the IPCP there).
    pub fn end(&self) {
        self.rpc.shutdown();
        if !self.hosted {
            let _ = crate::spawn::kill(self.pid);
        }
    }

    pub fn info(&self) -> IpcpInfo {
        IpcpInfo {
            name: self.name.clone(),
            kind: self.kind,
            pid: self.pid,
            layer: self.layer.clone(),
            state: match (&self.layer, &self.joining) {
                (Some(_), _) => "operational".into(),
                (None, Some(_)) => "enrolling".into(),
                (None, None) => "init".into(),
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

/// An accept call waiting for a flow: the answer goes straight to its connection from the
/// thread that finds the flow (no thread waits for it).
pub struct AcceptWaiter {
    pub id: u64,
    /// The connection the call came on.
    pub conn: u64,
    pub reply: Reply,
    /// The call's deadline, if it has one.
    pub timer: Option<o7s::ctrl::timer::TimerId>,
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
    /// The accept calls waiting, oldest first (`accepting` of them).
    pub waiters: VecDeque<AcceptWaiter>,
}

impl Proc {
    pub fn new(prog: &str) -> Proc {
        Proc {
            prog: prog.to_string(),
            accepting: 0,
            listener: false,
            inbox: VecDeque::new(),
            waiters: VecDeque::new(),
        }
    }

    /// Hand the process a flow: to its oldest waiting accept call, which the caller answers
    /// once the registry's lock is released (returned with the flow), else into its inbox
    /// for the next accept call.
    #[must_use]
    pub fn deliver(&mut self, d: Delivery) -> Option<(Reply, Delivery)> {
        match self.waiters.pop_front() {
            Some(w) => {
                self.accepting = self.accepting.saturating_sub(1);
                if let Some(t) = w.timer {
                    o7s::ctrl::timer::cancel(t);
                }
                Some((w.reply, d))
            }
            None => {
                self.inbox.push_back(d);
                None
            }
        }
    }

    /// Forget waiting accept calls that `drop` picks (their connection closed, their
    /// deadline passed); returns them.
    pub fn take_waiters(&mut self, pick: impl Fn(&AcceptWaiter) -> bool) -> Vec<AcceptWaiter> {
        let (gone, kept): (Vec<_>, Vec<_>) = self.waiters.drain(..).partition(|w| pick(w));
        self.waiters = kept.into();
        self.accepting = self.accepting.saturating_sub(gone.len());
        for w in &gone {
            if let Some(t) = w.timer {
                o7s::ctrl::timer::cancel(t);
            }
        }
        gone
    }
}

/// An answer to a request from a process: a flow, an error, ...
pub type Answer = Result<(IrmResp, Vec<OwnedFd>), IrmError>;

/// Where the answer to one request goes (the connection it came on, or a caller waiting
/// in this process), so a request can be answered by whichever thread completes it.
pub struct Reply(Box<dyn FnOnce(Answer) -> Result<(), Box<Answer>> + Send>);

impl Reply {
    /// Answer on the connection `sock` of process `pid`. The answer is not delivered when
    /// the process does not read its answers (its queue is full): the thread sending it
    /// serves other processes too.
    pub fn to_socket(sock: Arc<OwnedFd>, pid: u32) -> Reply {
        Reply(Box::new(move |a: Answer| {
            use rustix::fd::AsFd;
            let (resp, fds) = match &a {
                Ok((r, fds)) => (r.clone(), fds.iter().map(|f| f.as_fd()).collect()),
                Err(e) => (IrmResp::Err(e.clone()), Vec::new()),
            };
            match o7s::ctrl::wire::send_nowait(sock.as_fd(), &resp, &fds) {
                Ok(()) => Ok(()),
                Err(e) => {
                    tracing::debug!("cannot answer process {pid}: {e}");
                    drop(fds);
                    Err(Box::new(a))
                }
            }
        }))
    }

    /// An answer for a caller in this process, which waits on the receiver.
    pub fn channel() -> (Reply, std::sync::mpsc::Receiver<Answer>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let r = Reply(Box::new(move |a: Answer| {
            tx.send(a).map_err(|e| Box::new(e.0))
        }));
        (r, rx)
    }

    /// Send the answer; it comes back when it could not be delivered.
    pub fn send(self, a: Answer) -> Result<(), Box<Answer>> {
        (self.0)(a)
    }
}

/// The FRCT counters the ends of a flow published in its region `mem` (none for a flow
/// without FRCT, or one whose region cannot be read).
pub fn frct_of(mem: &OwnedFd) -> Vec<o7s::ctrl::msg::FrctInfo> {
    match o7s_shm::read_stats(rustix::fd::AsFd::as_fd(mem)) {
        Ok(ends) => ends
            .into_iter()
            .flatten()
            .map(|e| o7s::ctrl::msg::FrctInfo::from_words(e.pid, &e.words))
            .collect(),
        Err(e) => {
            tracing::debug!("cannot read a flow's counters: {e}");
            Vec::new()
        }
    }
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
    /// Both ends' eventfds, to wake them when the IRMd takes the flow down ([`Self::kill`]).
    pub wake: Vec<OwnedFd>,
    /// The flow's region (a dup of its memfd), where the ends publish their FRCT counters.
    pub mem: Option<OwnedFd>,
    pub state: FlowState,
    /// The flow's region set, kept for reuse when the flow ends (see `sets.rs`).
    pub set: Option<crate::sets::SetInfo>,
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
            frct: Vec::new(),
        }
    }

    /// A handle on the flow's region to read its ends' counters with [`frct_of`] (without
    /// holding the registry meanwhile).
    pub fn region(&self) -> Option<OwnedFd> {
        self.mem.as_ref().and_then(|m| m.try_clone().ok())
    }

    /// Take the flow down for both ends, even one that still holds its fds: marked down in
    /// the region, both ends woken (an end that closed its fds was seen going by the other
    /// already, through the liveness pipe).
    pub fn kill(&mut self) {
        self.kill_keeping_wake();
        self.wake.clear();
    }

    /// As [`Self::kill`], keeping the eventfds (for the region set's next flow).
    fn kill_keeping_wake(&mut self) {
        if let Some(ctl) = self.set.as_ref().and_then(|s| s.ctl.as_ref()) {
            // A reused set's header page is mapped here: no system call but the wake-ups.
            ctl.mark_down(&self.wake);
            return;
        }
        if let (Some(mem), false) = (&self.mem, self.wake.is_empty()) {
            if let Err(e) = o7s_shm::mark_down(mem.as_fd(), &self.wake) {
                tracing::warn!(flow = self.id, "cannot take the flow down: {e}");
            }
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
    /// Names applications allocated flows to recently: the IPCP the flow went through and
    /// when the name was looked up (see `flows.rs`).
    pub routes: HashMap<String, (String, std::time::Instant)>,
    /// Flow requests from other systems waiting for an accept call (see `flows.rs`), oldest
    /// first.
    pub arrivals: VecDeque<Arrival>,
    pub shutting_down: bool,
    /// Region sets of ended flows, kept for reuse.
    pub pool: crate::sets::Pool,
}

/// The IPCP's end of a flow as the IRMd hands it over: the flow id, the region set (0: none)
/// and the fds (none for a set the IPCP parked, see `sets.rs`).
pub type IpcpEnd = (u64, u64, Vec<OwnedFd>);

/// What a flow request from another system gets: the IPCP's end of the flow, or why not.
pub type ArrivalDone = Box<dyn FnOnce(Result<IpcpEnd, IrmError>) + Send>;

/// A flow request from another system that no process accepted yet: it waits here, not on a
/// thread, until an accept call of a process that may take it comes (or its deadline).
pub struct Arrival {
    pub id: u64,
    pub ipcp: String,
    pub name: String,
    pub layer: String,
    pub mtu: u32,
    pub qos: QosSpec,
    pub done: ArrivalDone,
    pub timer: Option<o7s::ctrl::timer::TimerId>,
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
        n.pids.contains(&pid)
            || self.bound_ipcp_pids(n).any(|i| i == pid)
            || n.progs.iter().any(|b| b.base() == p.prog)
    }

    /// The pids of the IPCPs bound to a name (an IPCP accepts flows as the application of
    /// the layers below it, once its process has announced itself).
    fn bound_ipcp_pids<'a>(&'a self, n: &'a Name) -> impl Iterator<Item = u32> + 'a {
        n.ipcps
            .iter()
            .filter_map(|i| self.ipcps.get(i).map(|i| i.pid))
    }

    /// Processes that may accept flows for `name`, in binding order: processes bound by pid,
    /// then the processes of bound IPCPs, then listening processes of bound programs.
    pub fn candidates(&self, name: &str) -> Vec<u32> {
        let Some(n) = self.names.get(name) else {
            return Vec::new();
        };
        let mut out: Vec<u32> = Vec::new();
        for p in n.pids.iter().copied().chain(self.bound_ipcp_pids(n)) {
            if self.procs.contains_key(&p) && !out.contains(&p) {
                out.push(p);
            }
        }
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
        if let Some(mut p) = self.procs.remove(&pid) {
            // Its accept calls have nobody to answer.
            p.take_waiters(|_| true);
        }
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
            if let Some(f) = self.flows.remove(id) {
                self.retire(f, false);
            }
        }
        self.pool.forget(|k| k.pid == pid);
        ids
    }

    /// Take flow `f` (removed from `flows`) down and keep its region set for reuse; see
    /// [`crate::sets::Pool::put`] for `unclaim`.
    pub fn retire(&mut self, mut f: FlowRec, unclaim: bool) {
        // A set kept for the first time: its header page mapped now, so the flow is taken
        // down through it (which wakes only the ends that need it) and kept with it.
        if let (Some(set), Some(mem)) = (f.set.as_mut(), f.mem.as_ref()) {
            if set.ctl.is_none() {
                set.ctl = o7s_shm::RegionCtl::new(mem.as_fd()).ok();
            }
        }
        f.kill_keeping_wake();
        if let (Some(set), Some(mem)) = (f.set.take(), f.mem.take()) {
            let wake = std::mem::take(&mut f.wake);
            self.pool.put(set, mem, wake, unclaim);
        }
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
            if let Some(f) = self.flows.remove(&id) {
                self.retire(f, false);
            }
        }
        self.pool.forget(|k| k.ipcp == name);
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

    /// The IPCP whose process is `pid`, if `pid` is an IPCP.
    pub fn ipcp_of_pid(&self, pid: u32) -> Option<&Ipcp> {
        if pid == 0 {
            return None;
        }
        // A process that hosts IPCPs is none of them, and never an application.
        self.ipcps.values().find(|i| i.pid == pid && !i.hosted)
    }

    /// The layer an IPCP is in, or is joining (when the enrollment knows which).
    fn layer_of(i: &Ipcp) -> Option<&str> {
        i.layer
            .as_deref()
            .or(i.joining.as_deref())
            .filter(|l| !l.is_empty())
    }

    /// The layers a flow allocated by process `pid` must not run over. For an application:
    /// none. For an IPCP: its own layer and every layer that depends on it, so a layer never
    /// runs over itself. Layer L depends on M when an IPCP of L holds a flow over M (it is
    /// the flow's allocating or accepting process), or over a layer that depends on M.
    pub fn layers_barred_for(&self, pid: u32) -> BTreeSet<String> {
        let mut barred = BTreeSet::new();
        let Some(own) = self.ipcp_of_pid(pid).and_then(Self::layer_of) else {
            return barred;
        };
        barred.insert(own.to_string());
        // (upper, lower): an IPCP of `upper` holds a flow over `lower`.
        let edges: BTreeSet<(&str, &str)> = self
            .flows
            .values()
            .flat_map(|f| [f.alloc_pid, f.accept_pid].map(|p| (p, f.layer.as_str())))
            .filter_map(|(p, lower)| Some((Self::layer_of(self.ipcp_of_pid(p)?)?, lower)))
            .collect();
        loop {
            let before = barred.len();
            for (upper, lower) in &edges {
                if barred.contains(*lower) && !barred.contains(*upper) {
                    barred.insert(upper.to_string());
                }
            }
            if barred.len() == before {
                return barred;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::fake_ipcp;
    use o7s::ctrl::msg::IpcpResp;

    /// Put an IPCP of `kind` with process `pid` into `r`, in `layer`.
    fn ipcp(r: &mut Registry, name: &str, kind: IpcpKind, pid: u32, layer: Option<&str>) {
        let (i, _) = fake_ipcp(name, kind, pid, layer, |_| IpcpResp::Ok);
        r.ipcps.insert(name.to_string(), i);
    }

    /// A flow over `layer` between processes `a` and `b` (0: the IPCP carrying it).
    fn flow(r: &mut Registry, id: u64, layer: &str, a: u32, b: u32) {
        r.flows.insert(
            id,
            FlowRec {
                id,
                name: format!("n{id}"),
                layer: layer.into(),
                ipcp: String::new(),
                qos: QosSpec::RAW,
                alloc_pid: a,
                accept_pid: b,
                wake: Vec::new(),
                mem: None,
                state: FlowState::Allocated,
                set: None,
            },
        );
    }

    fn proc(prog: &str) -> Proc {
        Proc {
            accepting: 1,
            listener: true,
            ..Proc::new(prog)
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

    #[test]
    fn flows_to_a_name_bound_to_an_ipcp_go_to_its_process() {
        let mut r = Registry::default();
        ipcp(&mut r, "u1", IpcpKind::Unicast, 50, Some("net"));
        ipcp(&mut r, "u2", IpcpKind::Unicast, 60, None);
        r.names.insert(
            "net".into(),
            Name {
                ipcps: vec!["u1".into(), "u2".into()],
                pids: vec![7],
                ..Default::default()
            },
        );
        // Not announced yet: not a candidate.
        assert!(r.candidates("net").is_empty());
        assert!(!r.may_accept(50, "net"));
        r.procs.insert(50, proc("ipcpd"));
        r.procs.insert(7, proc("x"));
        r.procs.insert(60, proc("ipcpd"));
        // Processes bound by pid first, then those of bound IPCPs in binding order.
        assert_eq!(r.candidates("net"), vec![7, 50, 60]);
        assert!(r.may_accept(50, "net") && r.may_accept(60, "net"));
        assert!(!r.may_accept(50, "other"));
        // Spill fills the first ready one; round-robin rotates over all of them.
        assert_eq!(r.pick_acceptor("net"), Some(7));
        if let Some(p) = r.procs.get_mut(&7) {
            p.accepting = 0;
        }
        assert_eq!(r.pick_acceptor("net"), Some(50));
        if let Some(n) = r.names.get_mut("net") {
            n.lb = LoadBalance::RoundRobin;
        }
        let picks: Vec<_> = (0..4).filter_map(|_| r.pick_acceptor("net")).collect();
        assert_eq!(picks, vec![50, 60, 50, 60]);
        // An IPCP that goes away is no candidate any more.
        r.remove_ipcp("u1");
        assert_eq!(r.candidates("net"), vec![7, 60]);
    }

    #[test]
    fn an_ipcp_never_allocates_over_its_layer_or_a_layer_above_it() {
        let mut r = Registry::default();
        ipcp(&mut r, "lo", IpcpKind::Local, 10, Some("lo"));
        ipcp(&mut r, "e", IpcpKind::EthDix, 11, Some("eth"));
        ipcp(&mut r, "u1", IpcpKind::Unicast, 20, Some("net"));
        ipcp(&mut r, "u2", IpcpKind::Unicast, 30, Some("top"));
        ipcp(&mut r, "u3", IpcpKind::Unicast, 40, Some("side"));
        // net runs over eth; top runs over net (u2 accepted that flow); an application
        // (pid 99) uses top; the IPCP carrying a flow shows as 0.
        flow(&mut r, 1, "eth", 20, 0);
        flow(&mut r, 2, "net", 0, 30);
        flow(&mut r, 3, "top", 99, 0);
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(r.layers_barred_for(20), set(&["net", "top"]));
        assert_eq!(r.layers_barred_for(30), set(&["top"]));
        assert_eq!(r.layers_barred_for(40), set(&["side"]));
        // Applications and shims may use any layer.
        assert!(r.layers_barred_for(99).is_empty());
        assert!(r.layers_barred_for(0).is_empty());
        // An IPCP being enrolled into a known layer is barred from it and what sits on it;
        // one that does not know its layer yet is barred from nothing.
        ipcp(&mut r, "u4", IpcpKind::Unicast, 50, None);
        assert!(r.layers_barred_for(50).is_empty());
        if let Some(i) = r.ipcps.get_mut("u4") {
            i.joining = Some("net".into());
        }
        assert_eq!(r.layers_barred_for(50), set(&["net", "top"]));
        // A cycle in the flow table (which this rule prevents) still ends.
        flow(&mut r, 4, "top", 20, 0);
        assert_eq!(r.layers_barred_for(30), set(&["net", "top"]));
    }
}
