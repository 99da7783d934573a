//! The IRMd's core: the registry behind one lock, and the handlers of every request.

use crate::registry::{base_name, Name, Proc, ProgBind, Registry};
use crate::spawn::Spawner;
use o7s::ctrl::msg::{BindTarget, IpcpReq, IpcpResp, IrmError, IrmReq, IrmResp, RegTarget};
use o7s::ctrl::rpc::Rpc;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tracing::info;

/// How long a flow allocation waits for its acceptor when the caller gives no timeout.
pub const DEFAULT_ALLOC_TIMEOUT: Duration = Duration::from_secs(10);

/// When an allocation asked now with `timeout_ms` (none: the default) gives up.
pub fn alloc_deadline(timeout_ms: Option<u32>) -> Instant {
    Instant::now()
        + timeout_ms.map_or(DEFAULT_ALLOC_TIMEOUT, |ms| {
            Duration::from_millis(u64::from(ms))
        })
}
/// How long the IRMd waits for an IPCP's answer to a management request.
pub const IPCP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Irmd {
    pub rundir: PathBuf,
    reg: Mutex<Registry>,
    changed: Condvar,
    /// Threads waiting on `changed` (counted under the registry's lock): with none, a change
    /// wakes nobody and costs no system call.
    sleepers: std::sync::atomic::AtomicUsize,
    pub spawner: Spawner,
    /// Ids of waiting accept calls and of connections.
    next_id: std::sync::atomic::AtomicU64,
}

pub(crate) use crate::registry::Answer;

pub(crate) fn ok() -> Answer {
    Ok((IrmResp::Ok, Vec::new()))
}

pub(crate) fn rpc_err(ipcp: &str, e: impl std::fmt::Display) -> IrmError {
    IrmError::IpcpFailed {
        name: ipcp.to_string(),
        why: e.to_string(),
    }
}

impl Irmd {
    pub fn new(rundir: PathBuf, spawner: Spawner) -> Arc<Irmd> {
        Arc::new(Irmd {
            rundir,
            reg: Mutex::new(Registry::default()),
            changed: Condvar::new(),
            sleepers: std::sync::atomic::AtomicUsize::new(0),
            spawner,
            next_id: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// A fresh id for an accept call or a connection.
    pub(crate) fn new_id(&self) -> u64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn lock(&self) -> MutexGuard<'_, Registry> {
        self.reg.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The registry changed: wake what waits on it, and give waiting flow requests to the
    /// processes that now accept them. Called without the registry's lock.
    pub(crate) fn notify(&self) {
        // A waiter counts itself under the lock before it checks what it waits for, and the
        // change was made under the lock before this: it either saw the change or counts.
        if self.sleepers.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            self.changed.notify_all();
        }
        self.serve_arrivals();
    }

    /// Wait on the registry until `deadline`; false when it passed.
    pub(crate) fn wait_until<'a>(
        &self,
        g: MutexGuard<'a, Registry>,
        deadline: Instant,
    ) -> (MutexGuard<'a, Registry>, bool) {
        use std::sync::atomic::Ordering::SeqCst;
        self.sleepers.fetch_add(1, SeqCst);
        let r = self.wait_on(&self.changed, g, deadline);
        self.sleepers.fetch_sub(1, SeqCst);
        r
    }

    /// Wait on `cv` (notified with the registry's lock held or after a change to it) until
    /// `deadline`; false when it passed.
    pub(crate) fn wait_on<'a>(
        &self,
        cv: &Condvar,
        g: MutexGuard<'a, Registry>,
        deadline: Instant,
    ) -> (MutexGuard<'a, Registry>, bool) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (g, false);
        }
        let (g, _) = cv.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner());
        (g, true)
    }

    /// Sleep until `t`, or until the IRMd shuts down: false then.
    pub(crate) fn sleep_until(&self, t: Instant) -> bool {
        let mut g = self.lock();
        loop {
            if g.shutting_down {
                return false;
            }
            if Instant::now() >= t {
                return true;
            }
            g = self.wait_until(g, t).0;
        }
    }

    /// Handle one request from process `pid`.
    pub fn handle(self: &Arc<Self>, pid: u32, req: IrmReq) -> Answer {
        match req {
            IrmReq::Announce { prog } => {
                let mut g = self.lock();
                g.procs
                    .entry(pid)
                    .or_insert_with(|| Proc::new(base_name(&prog)));
                drop(g);
                self.notify();
                ok()
            }
            IrmReq::IpcpCreate { kind, name } => self
                .ipcp_create(kind, &name)
                .map(|pid| (IrmResp::IpcpCreated { pid }, Vec::new())),
            IrmReq::IpcpDestroy { name } => self.ipcp_destroy(&name),
            IrmReq::IpcpBootstrap {
                kind,
                name,
                layer,
                params,
                autobind,
            } => self.ipcp_bootstrap(kind, &name, &layer, params, autobind),
            IrmReq::IpcpEnroll {
                name,
                kind,
                dst,
                layer,
                autobind,
            } => self.ipcp_enroll(&name, kind, dst, layer, autobind),
            IrmReq::IpcpConnect {
                name,
                component,
                dst,
                qos,
            } => self.ipcp_connect(&name, &component, &dst, qos, true),
            IrmReq::IpcpDisconnect {
                name,
                component,
                dst,
            } => self.ipcp_connect(&name, &component, &dst, None, false),
            IrmReq::IpcpList => {
                let g = self.lock();
                let list = g.ipcps.values().map(|i| i.info()).collect();
                Ok((IrmResp::Ipcps(list), Vec::new()))
            }
            IrmReq::IpcpShow { name } => self.ipcp_show(&name),
            IrmReq::Bind { target, name } => self.bind(target, &name),
            IrmReq::Unbind { target, name } => self.unbind(target, &name),
            IrmReq::NameCreate { name, lb } => {
                check_name(&name)?;
                let mut g = self.lock();
                if g.names.contains_key(&name) {
                    return Err(IrmError::NameExists { name });
                }
                info!("Created name {name}.");
                g.names.insert(
                    name,
                    Name {
                        lb,
                        ..Default::default()
                    },
                );
                ok()
            }
            IrmReq::NameDestroy { name } => self.name_destroy(&name),
            IrmReq::NameReg { name, targets } => self.name_reg(&name, &targets, true),
            IrmReq::NameUnreg { name, targets } => self.name_reg(&name, &targets, false),
            IrmReq::NameList => Ok((IrmResp::Names(self.lock().name_info()), Vec::new())),
            IrmReq::FlowList => {
                let mut list: Vec<_> = {
                    let g = self.lock();
                    g.flows.values().map(|f| (f.info(), f.region())).collect()
                };
                for (info, mem) in &mut list {
                    if let Some(m) = mem {
                        info.frct = crate::registry::frct_of(m);
                    }
                }
                let mut list: Vec<_> = list.into_iter().map(|(i, _)| i).collect();
                list.sort_by_key(|f| f.flow_id);
                Ok((IrmResp::Flows(list), Vec::new()))
            }
            IrmReq::FlowAlloc {
                name,
                qos,
                timeout_ms,
            } => self.flow_alloc(pid, &name, qos, alloc_deadline(timeout_ms)),
            IrmReq::FlowAccept { timeout_ms } => {
                let deadline =
                    timeout_ms.map(|ms| Instant::now() + Duration::from_millis(u64::from(ms)));
                self.flow_accept(pid, deadline)
            }
            IrmReq::FlowDealloc { flow_id } | IrmReq::FlowRelease { flow_id } => {
                self.flow_dealloc(pid, flow_id)
            }
            IrmReq::Released { flow_ids, req } => {
                self.flows_released(pid, &flow_ids);
                self.handle(pid, req.into())
            }
            IrmReq::FlowJoin {
                layer,
                qos,
                timeout_ms,
            } => {
                let t = timeout_ms.map_or(IPCP_TIMEOUT, |ms| Duration::from_millis(u64::from(ms)));
                self.flow_join(pid, &layer, qos, Instant::now() + t)
            }
        }
    }

    // ---- names ---------------------------------------------------------------------------

    pub(crate) fn bind(&self, target: BindTarget, name: &str) -> Answer {
        check_name(name)?;
        let mut g = self.lock();
        match &target {
            BindTarget::Process { pid } => {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    return Err(IrmError::NoSuchProcess { pid: *pid });
                }
            }
            BindTarget::Ipcp { name: i } => {
                if !g.ipcps.contains_key(i) {
                    return Err(IrmError::NoSuchIpcp { name: i.clone() });
                }
            }
            BindTarget::Program { prog, .. } => {
                if prog.is_empty() {
                    return Err(IrmError::BadRequest {
                        why: "empty program name".into(),
                    });
                }
            }
        }
        let e = g.names.entry(name.to_string()).or_default();
        match target {
            BindTarget::Program { prog, auto, args } => {
                let prog = resolve_program(&prog);
                e.progs.retain(|p| p.prog != prog);
                info!(
                    "Bound program {prog} to name {name}{}.",
                    if auto { " (auto)" } else { "" }
                );
                e.progs.push(ProgBind { prog, auto, args });
            }
            BindTarget::Process { pid } => {
                if !e.pids.contains(&pid) {
                    e.pids.push(pid);
                }
                info!("Bound process {pid} to name {name}.");
            }
            BindTarget::Ipcp { name: i } => {
                if !e.ipcps.contains(&i) {
                    e.ipcps.push(i.clone());
                }
                info!("Bound IPCP {i} to name {name}.");
            }
        }
        drop(g);
        self.notify();
        ok()
    }

    fn unbind(&self, target: BindTarget, name: &str) -> Answer {
        let mut g = self.lock();
        let e = g.names.get_mut(name).ok_or_else(|| IrmError::NoSuchName {
            name: name.to_string(),
        })?;
        let (found, what) = match &target {
            BindTarget::Program { prog, .. } => {
                let before = e.progs.len();
                e.progs
                    .retain(|p| p.prog != *prog && p.base() != base_name(prog));
                (e.progs.len() != before, format!("program {prog}"))
            }
            BindTarget::Process { pid } => {
                let before = e.pids.len();
                e.pids.retain(|p| p != pid);
                (e.pids.len() != before, format!("process {pid}"))
            }
            BindTarget::Ipcp { name: i } => {
                let before = e.ipcps.len();
                e.ipcps.retain(|x| x != i);
                (e.ipcps.len() != before, format!("IPCP {i}"))
            }
        };
        if !found {
            return Err(IrmError::NotBound {
                name: name.to_string(),
                target: what,
            });
        }
        ok()
    }

    fn name_destroy(&self, name: &str) -> Answer {
        let regs: Vec<(Arc<Rpc>, o7s_proto::NameHash)> = {
            let mut g = self.lock();
            let Some(n) = g.names.remove(name) else {
                return Err(IrmError::NoSuchName {
                    name: name.to_string(),
                });
            };
            n.regs
                .iter()
                .filter_map(|i| g.ipcps.get(i))
                .map(|i| (i.rpc.clone(), i.hash.hash(name)))
                .collect()
        };
        for (rpc, hash) in regs {
            let _ = rpc.request(IpcpReq::Unreg { hash }, &[], Some(IPCP_TIMEOUT));
        }
        info!("Destroyed name {name}.");
        ok()
    }

    fn name_reg(&self, name: &str, targets: &[RegTarget], reg: bool) -> Answer {
        check_name(name)?;
        if targets.is_empty() {
            return Err(IrmError::BadRequest {
                why: "name reg needs at least one `layer LAYER` or `ipcp IPCP`".into(),
            });
        }
        // Resolve the targets to IPCPs first, so a bad target changes nothing.
        let ipcps: Vec<(String, Arc<Rpc>, o7s_proto::NameHash)> = {
            let mut g = self.lock();
            if !reg && !g.names.contains_key(name) {
                return Err(IrmError::NoSuchName {
                    name: name.to_string(),
                });
            }
            let mut out = Vec::new();
            for t in targets {
                let members = match t {
                    RegTarget::Layer(l) => {
                        let m = g.layer_members(l);
                        if m.is_empty() {
                            return Err(IrmError::NoSuchLayer { layer: l.clone() });
                        }
                        m
                    }
                    RegTarget::Ipcp(i) => match g.ipcps.get(i) {
                        None => return Err(IrmError::NoSuchIpcp { name: i.clone() }),
                        Some(x) if x.layer.is_none() => {
                            return Err(IrmError::NotBootstrapped { name: i.clone() })
                        }
                        Some(_) => vec![i.clone()],
                    },
                };
                for m in members {
                    if let Some(i) = g.ipcps.get(&m) {
                        out.push((m.clone(), i.rpc.clone(), i.hash.hash(name)));
                    }
                }
            }
            if reg {
                g.names.entry(name.to_string()).or_default();
            }
            out
        };
        for (ipcp, rpc, hash) in ipcps {
            let req = if reg {
                IpcpReq::Reg {
                    name: name.to_string(),
                    hash,
                }
            } else {
                IpcpReq::Unreg { hash }
            };
            match rpc.request(req, &[], Some(IPCP_TIMEOUT)) {
                Ok((IpcpResp::Ok, _)) => {}
                Ok((IpcpResp::Err(e), _)) => return Err(e),
                Ok((other, _)) => return Err(rpc_err(&ipcp, format!("unexpected {other:?}"))),
                Err(e) => return Err(rpc_err(&ipcp, e)),
            }
            let mut g = self.lock();
            if let Some(n) = g.names.get_mut(name) {
                if reg {
                    n.regs.insert(ipcp.clone());
                } else {
                    n.regs.remove(&ipcp);
                }
            }
            info!(
                "{} name {name} {} IPCP {ipcp}.",
                if reg { "Registered" } else { "Unregistered" },
                if reg { "with" } else { "from" }
            );
        }
        ok()
    }
}

/// Names are non-empty and free of whitespace and control characters.
pub fn check_name(name: &str) -> Result<(), IrmError> {
    if name.is_empty()
        || name.len() > 256
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(IrmError::BadRequest {
            why: format!("invalid name {name:?}: names are 1-256 characters without spaces"),
        });
    }
    Ok(())
}

/// A program given without a path is looked up on `PATH`, so `irm bind program oping` binds
/// the same file the shell would run.
fn resolve_program(prog: &str) -> String {
    if prog.contains('/') {
        return prog.to_string();
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(prog);
            if p.is_file() {
                return p.display().to_string();
            }
        }
    }
    prog.to_string()
}

impl Irmd {
    /// Stop every IPCP and take every flow down.
    pub fn shutdown(&self) {
        let mut g = self.lock();
        g.shutting_down = true;
        let arrivals: Vec<_> = g.arrivals.drain(..).collect();
        let waiters: Vec<_> = g
            .procs
            .values_mut()
            .flat_map(|p| p.take_waiters(|_| true))
            .collect();
        let names: Vec<String> = g.ipcps.keys().cloned().collect();
        for n in names {
            if let Some(i) = g.remove_ipcp(&n) {
                i.end();
            }
        }
        self.spawner.shutdown();
        for f in g.flows.values_mut() {
            f.kill();
        }
        g.flows.clear();
        drop(g);
        for w in waiters {
            let _ = w.reply.send(Err(IrmError::ShuttingDown));
        }
        for a in arrivals {
            if let Some(t) = a.timer {
                o7s::ctrl::timer::cancel(t);
            }
            (a.done)(Err(IrmError::ShuttingDown));
        }
        self.notify();
    }
}
