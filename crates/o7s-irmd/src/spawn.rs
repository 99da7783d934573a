//! Starting and reaping child processes: IPCPs and auto-started programs.

use crate::irmd::Irmd;
use crate::registry::{ArrivalDone, Ipcp, ProgBind};
use o7s::ctrl::msg::{HostStart, IpcpKind, IpcpNote, IpcpResp, IrmError};
use o7s::ctrl::rpc::{Inbound, Rpc};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use tracing::{info, warn};

/// The environment variable through which an IPCP learns its control socket.
pub const IPCP_FD_ENV: &str = "O7S_IPCP_FD";

/// glibc's limit on malloc arenas, set for IPCPs unless the IRMd's environment sets it.
const MALLOC_ARENA_MAX: &str = "MALLOC_ARENA_MAX";

/// Set to `0` (or `no`, `off`, `false`), every IPCP runs in a process of its own; by default
/// the IPCPs of the link kinds share one.
pub const SHIM_HOST_ENV: &str = "O7S_SHIM_HOST";

pub struct Spawner {
    ipcpd: PathBuf,
    /// `ipcpd-shim` (the shims and the local IPCP without the normal layers' code, so less
    /// of it mapped by the link IPCPs' host and local IPCPs) when it sits beside `ipcpd`.
    shim: Option<PathBuf>,
    /// Held while a child is being started, so a control socket meant for one child is never
    /// inherited by another.
    lock: Mutex<()>,
    /// Whether the IPCPs of the link kinds (eth-dix, eth-llc, udp4, udp6) run in one process
    /// (see [`Host`]).
    hosting: bool,
    /// That process, once started.
    host: Arc<Mutex<Option<Host>>>,
}

/// The process that hosts the IPCPs of the link kinds: a node has one of those per link,
/// and a process of its own for each cost about 3 MB of resident memory (mostly the code of
/// the binary and of libc, mapped again in every process), so a node with many links took
/// more than the IRMd and its unicast IPCP together. One process holds them all; each still
/// has its own control connection, and closing it stops that IPCP alone.
struct Host {
    pid: u32,
    /// Where [`HostStart`] requests go.
    sock: OwnedFd,
}

/// Kill a child by pid.
pub fn kill(pid: u32) -> std::io::Result<()> {
    let pid =
        rustix::process::Pid::from_raw(pid as i32).ok_or_else(|| std::io::Error::other("pid 0"))?;
    rustix::process::kill_process(pid, rustix::process::Signal::KILL)?;
    Ok(())
}

fn reap(child: Child, what: String) {
    reap_then(child, what, || {});
}

/// Wait for `child` on a thread of its own, log how it ended, then run `then`.
fn reap_then(mut child: Child, what: String, then: impl FnOnce() + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || {
            match child.wait() {
                Ok(st) if st.success() => info!("{what} exited."),
                Ok(st) => warn!("{what} ended: {st}."),
                Err(e) => warn!("waiting for {what}: {e}"),
            }
            then();
        });
    if let Err(e) = spawned {
        warn!("cannot start a reaper thread: {e}");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Spawner {
    /// Find `ipcpd`: `$O7S_IPCPD` (then it runs every kind), else beside this executable
    /// (with `ipcpd-shim` if it is there too), else on `PATH`.
    pub fn new() -> Spawner {
        let hosting = !std::env::var(SHIM_HOST_ENV).is_ok_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "0" | "no" | "off" | "false"
            )
        });
        let spawner = |ipcpd: PathBuf, shim: Option<PathBuf>| Spawner {
            ipcpd,
            shim,
            lock: Mutex::new(()),
            hosting,
            host: Arc::new(Mutex::new(None)),
        };
        if let Some(p) = std::env::var_os("O7S_IPCPD") {
            return spawner(PathBuf::from(p), None);
        }
        let dir = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf));
        let beside = |name: &str| {
            let p = dir.as_ref()?.join(name);
            p.is_file().then_some(p)
        };
        match beside("ipcpd") {
            Some(ipcpd) => spawner(ipcpd, beside("ipcpd-shim")),
            None => spawner(PathBuf::from("ipcpd"), None),
        }
    }

    /// Whether an IPCP of `kind` goes into the [`Host`].
    fn hosts(&self, kind: IpcpKind) -> bool {
        self.hosting
            && matches!(
                kind,
                IpcpKind::EthDix | IpcpKind::EthLlc | IpcpKind::Udp4 | IpcpKind::Udp6
            )
    }

    /// Kill the host process (the IRMd shuts down).
    pub fn shutdown(&self) {
        if let Some(h) = lock(&self.host).take() {
            let _ = kill(h.pid);
        }
    }

    /// Start IPCP `name` of `kind` in the host, on control connection `theirs`; the host's
    /// pid. Starts the host first if it is not running (or no longer).
    fn start_hosted(
        &self,
        kind: IpcpKind,
        name: &str,
        theirs: &OwnedFd,
        rundir: &Path,
    ) -> std::io::Result<u32> {
        let mut host = lock(&self.host);
        let msg = HostStart {
            kind,
            name: name.to_string(),
        };
        // A host that went away is started again, once.
        for _ in 0..2 {
            if host.is_none() {
                *host = Some(self.start_host(kind, rundir)?);
            }
            if let Some(h) = host.as_ref() {
                match o7s::ctrl::wire::send(h.sock.as_fd(), &msg, &[theirs.as_fd()]) {
                    Ok(()) => return Ok(h.pid),
                    Err(e) => {
                        // Not killed: its reaper may have freed the pid already. Dropping our
                        // end of its connection ends a host that somehow still runs.
                        warn!("the host of IPCPs (pid {}) is gone: {e}", h.pid);
                        *host = None;
                    }
                }
            }
        }
        Err(std::io::Error::other("the host of IPCPs does not start"))
    }

    fn start_host(&self, kind: IpcpKind, rundir: &Path) -> std::io::Result<Host> {
        let (ours, theirs) = o7s::ctrl::wire::pair()?;
        let mut cmd = Command::new(self.program(kind));
        cmd.arg("--host")
            .env(IPCP_FD_ENV, theirs.as_raw_fd().to_string())
            .env(o7s::rundir::ENV, rundir)
            .stdin(Stdio::null());
        if std::env::var_os(MALLOC_ARENA_MAX).is_none() {
            cmd.env(MALLOC_ARENA_MAX, "1");
        }
        let child = self.start(&mut cmd, Some(&theirs))?;
        let pid = child.id();
        info!("Started the host of link IPCPs (pid {pid}).");
        // Forget it when it ends, so the next IPCP starts a new one.
        let slot = Arc::downgrade(&self.host);
        reap_then(child, format!("host of IPCPs (pid {pid})"), move || {
            if let Some(slot) = slot.upgrade() {
                let mut h = lock(&slot);
                if h.as_ref().is_some_and(|h| h.pid == pid) {
                    *h = None;
                }
            }
        });
        Ok(Host { pid, sock: ours })
    }

    /// The program that runs an IPCP of `kind`.
    fn program(&self, kind: IpcpKind) -> &Path {
        match (kind, &self.shim) {
            (
                IpcpKind::Local
                | IpcpKind::EthDix
                | IpcpKind::EthLlc
                | IpcpKind::Udp4
                | IpcpKind::Udp6,
                Some(shim),
            ) => shim,
            _ => &self.ipcpd,
        }
    }

    fn start(&self, cmd: &mut Command, inherit: Option<&OwnedFd>) -> std::io::Result<Child> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fd) = inherit {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
        }
        cmd.spawn()
    }

    /// Start an IPCP of `kind` named `name`, talking to `irmd` over a fresh socket pair.
    pub fn start_ipcp(
        &self,
        irmd: &Arc<Irmd>,
        kind: IpcpKind,
        name: &str,
    ) -> Result<Ipcp, IrmError> {
        let prog = self.program(kind);
        let fail = |why: String| IrmError::SpawnFailed {
            prog: format!("{} (IPCP {name})", prog.display()),
            why,
        };
        let (ours, theirs) = o7s::ctrl::wire::pair().map_err(|e| fail(e.to_string()))?;
        let hosted = self.hosts(kind);
        let pid = if hosted {
            self.start_hosted(kind, name, &theirs, &irmd.rundir)
                .map_err(|e| fail(e.to_string()))?
        } else {
            let mut cmd = Command::new(prog);
            cmd.arg("--type")
                .arg(kind.name())
                .arg("--name")
                .arg(name)
                .env(IPCP_FD_ENV, theirs.as_raw_fd().to_string())
                .env(o7s::rundir::ENV, &irmd.rundir)
                .stdin(Stdio::null());
            // glibc gives every thread that allocates an arena of its own (up to 8 per
            // core), each 60-130 kB resident; an IPCP's threads allocate little, one arena
            // serves them.
            if std::env::var_os(MALLOC_ARENA_MAX).is_none() {
                cmd.env(MALLOC_ARENA_MAX, "1");
            }
            let child = self
                .start(&mut cmd, Some(&theirs))
                .map_err(|e| fail(e.to_string()))?;
            let pid = child.id();
            reap(child, format!("IPCP {name} (pid {pid})"));
            pid
        };
        drop(theirs);
        let weak = Arc::downgrade(irmd);
        let ipcp_name = name.to_string();
        let quick_weak = weak.clone();
        let quick_name = ipcp_name.clone();
        let rpc = Rpc::start_with(
            ours,
            move |rpc, inb| ipcp_quick(&quick_weak, &quick_name, rpc, inb),
            move |rpc, inb| on_ipcp(&weak, &ipcp_name, pid, rpc, inb),
        )
        .map_err(|e| fail(e.to_string()))?;
        Ok(Ipcp {
            name: name.to_string(),
            kind,
            pid,
            rpc,
            layer: None,
            joining: None,
            hash: Default::default(),
            mtu: 0,
            hosted,
        })
    }

    /// Start a program bound with `auto`.
    pub fn start_program(&self, prog: &ProgBind, rundir: &Path) -> Result<u32, IrmError> {
        let mut cmd = Command::new(&prog.prog);
        cmd.args(&prog.args)
            .env(o7s::rundir::ENV, rundir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = self
            .start(&mut cmd, None)
            .map_err(|e| IrmError::SpawnFailed {
                prog: prog.prog.clone(),
                why: e.to_string(),
            })?;
        let pid = child.id();
        reap(child, format!("{} (pid {pid})", prog.prog));
        Ok(pid)
    }
}

impl Default for Spawner {
    fn default() -> Self {
        Spawner::new()
    }
}

/// Notes from an IPCP answered on its connection's reader: whatever needs no waiting (a
/// flow request some process accepts right now, a flow down, an MTU). The rest goes to
/// [`on_ipcp`] on a thread of the pool.
fn ipcp_quick(irmd: &Weak<Irmd>, name: &str, rpc: &Arc<Rpc>, inb: Inbound) -> Option<Inbound> {
    let Some(irmd) = irmd.upgrade() else {
        return Some(inb);
    };
    let Inbound::Note { id, body, fds } = inb else {
        return Some(inb);
    };
    let (answer, fds) = match body {
        // From another system: answered by whichever thread finds the acceptor.
        IpcpNote::FlowReqArr {
            ref hash,
            qos,
            local_peer: None,
        } => {
            let (r, n) = (rpc.clone(), name.to_string());
            let done: ArrivalDone = Box::new(move |res| {
                let (answer, fds) = match res {
                    Ok((flow_id, set, fds)) => (IpcpResp::FlowAccepted { flow_id, set }, fds),
                    Err(e) => (IpcpResp::Err(e), Vec::new()),
                };
                reply(&r, &n, id, answer, &fds);
            });
            // Back when a program must be started: on a thread of the pool.
            return irmd
                .flow_req_arr_then(name, hash, qos, done)
                .map(|_| Inbound::Note { id, body, fds });
        }
        _ => match answer_note(&irmd, name, &body, false) {
            Some(a) => a,
            None => return Some(Inbound::Note { id, body, fds }),
        },
    };
    reply(rpc, name, id, answer, &fds);
    None
}

/// The answer to a note from IPCP `name`; `wait`: a flow request may wait for an acceptor
/// (on a thread of the pool), else None when it would have to.
fn answer_note(
    irmd: &Arc<Irmd>,
    name: &str,
    body: &IpcpNote,
    wait: bool,
) -> Option<(IpcpResp, Vec<OwnedFd>)> {
    Some(match *body {
        IpcpNote::FlowReqArr {
            ref hash,
            qos,
            local_peer,
        } => match irmd.flow_req_arr(name, hash, qos, local_peer, wait) {
            Ok(Some((flow_id, set, fds))) => (IpcpResp::FlowAccepted { flow_id, set }, fds),
            Ok(None) if wait => (IpcpResp::Err(IrmError::Timeout), Vec::new()),
            Ok(None) => return None,
            Err(e) => (IpcpResp::Err(e), Vec::new()),
        },
        IpcpNote::FlowDown { flow_id } => {
            irmd.flow_down(flow_id);
            (IpcpResp::Ok, Vec::new())
        }
        IpcpNote::Mtu { mtu } => {
            irmd.ipcp_mtu(name, mtu);
            (IpcpResp::Ok, Vec::new())
        }
    })
}

/// Answer note `id` of IPCP `name` on its connection.
fn reply(rpc: &Rpc, name: &str, id: u64, answer: IpcpResp, fds: &[OwnedFd]) {
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    if let Err(e) = rpc.reply(id, answer, &borrowed) {
        warn!("IPCP {name}: cannot answer: {e}");
    }
}

/// Requests and notes from an IPCP.
fn on_ipcp(irmd: &Weak<Irmd>, name: &str, pid: u32, rpc: &Arc<Rpc>, inb: Inbound) {
    let Some(irmd) = irmd.upgrade() else {
        return;
    };
    match inb {
        Inbound::Closed => irmd.ipcp_gone(name, pid, rpc),
        Inbound::Note { id, body, .. } => {
            if let Some((answer, fds)) = answer_note(&irmd, name, &body, true) {
                reply(rpc, name, id, answer, &fds);
            }
        }
        Inbound::Req { id, .. } => {
            let e = IrmError::BadRequest {
                why: "IPCPs send notes, not requests".into(),
            };
            let _ = rpc.reply(id, IpcpResp::Err(e), &[]);
        }
    }
}
