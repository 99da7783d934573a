//! Talking to the IRMd: one request, one answer per call, over a `SOCK_SEQPACKET` connection
//! to `$O7S_RUNDIR/irmd.sock`.
//!
//! A process announces itself on one connection it keeps for its life (the IRMd deallocates
//! its flows when that closes); flow requests go over other connections, one per request at
//! a time, kept for the next request when done (see [`call`]): connecting costs the IRMd a
//! thread per connection.

use crate::ctrl::msg::{FlowReq, IrmReq, IrmResp};
use crate::ctrl::wire;
use crate::error::Error;
use crate::rundir;
use rustix::fd::{AsFd, OwnedFd};
use rustix::net::{connect, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Idle request connections kept for the next request.
const IDLE_CONNS: usize = 16;

/// A control connection to the IRMd.
pub struct Irm {
    sock: OwnedFd,
}

impl Irm {
    /// Connect to the IRMd of this system (see [`rundir::rundir`]).
    pub fn connect() -> Result<Irm, Error> {
        let path = rundir::irmd_socket();
        let no_irmd = |e: std::io::Error| Error::NoIrmd {
            path: path.display().to_string(),
            source: e,
        };
        let addr = SocketAddrUnix::new(&path).map_err(|e| no_irmd(e.into()))?;
        let sock = socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| no_irmd(e.into()))?;
        connect(&sock, &addr).map_err(|e| no_irmd(e.into()))?;
        Ok(Irm { sock })
    }

    /// Send `req`; return the answer and any fds that came with it. An `IrmResp::Err` is
    /// returned as `Error::Irm`.
    pub fn call(&self, req: &IrmReq) -> Result<(IrmResp, Vec<OwnedFd>), Error> {
        wire::send(self.sock.as_fd(), req, &[])?;
        match wire::recv::<IrmResp>(self.sock.as_fd())? {
            Some((IrmResp::Err(e), _)) => Err(Error::Irm(e)),
            Some(answer) => Ok(answer),
            None => Err(Error::Protocol(
                "the IRMd closed the connection without an answer".into(),
            )),
        }
    }

    /// Send `req` and expect a plain `Ok`.
    pub fn call_ok(&self, req: &IrmReq) -> Result<(), Error> {
        match self.call(req)?.0 {
            IrmResp::Ok => Ok(()),
            other => Err(Error::Protocol(format!("expected Ok, got {other:?}"))),
        }
    }
}

/// The process's main connection (and the pid of the process that opened it): opened on
/// first use of a flow, kept for the life of the process; the IRMd deallocates the process's
/// flows when it closes. Requests that need no answer ([`IrmReq::FlowRelease`]) go over it
/// too.
static SESSION: Mutex<Option<(u32, Arc<Irm>)>> = Mutex::new(None);

fn my_pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// Make sure this process has announced itself to the IRMd (a forked child announces
/// itself: the connection it inherited is its parent's).
pub(crate) fn ensure_session() -> Result<(), Error> {
    let mut guard = SESSION.lock().unwrap_or_else(|e| e.into_inner());
    let pid = my_pid();
    if guard.as_ref().is_some_and(|(p, _)| *p == pid) {
        return Ok(());
    }
    let irm = Irm::connect()?;
    let prog = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    irm.call_ok(&IrmReq::Announce { prog })?;
    *guard = Some((pid, Arc::new(irm)));
    Ok(())
}

/// Send `req`, which gets no answer. A flow's release ([`IrmReq::FlowRelease`]) waits (see
/// [`RELEASE_DELAY`]) for the next request of any thread of the process, which carries it in
/// the same message ([`IrmReq::Released`]): the IRMd's thread of that connection then wakes
/// once for both instead of once for each. Anything else goes at once, on an idle request
/// connection, which is idle again at once, else on the process's main connection. False when
/// it could not go (or, for a release, when the process has no main connection to fall back
/// on).
pub(crate) fn send_quiet(req: &IrmReq) -> bool {
    let pid = my_pid();
    if let IrmReq::FlowRelease { flow_id } = req {
        return session_of(pid).is_some() && defer_release(pid, *flow_id);
    }
    send_now(pid, std::slice::from_ref(req))
}

/// Send `reqs` in order on an idle request connection (idle again at once), else on the
/// process's main connection; false when they could not go.
fn send_now(pid: u32, reqs: &[IrmReq]) -> bool {
    let reused = {
        let mut g = idle();
        if g.0 != pid {
            *g = (pid, Vec::new());
        }
        g.1.pop()
    };
    if let Some(irm) = reused {
        if reqs
            .iter()
            .all(|r| wire::send(irm.sock.as_fd(), r, &[]).is_ok())
        {
            let mut g = idle();
            if g.0 == pid && g.1.len() < IDLE_CONNS {
                g.1.push(irm);
            }
            return true;
        }
    }
    session_of(pid).is_some_and(|irm| {
        reqs.iter()
            .all(|r| wire::send(irm.sock.as_fd(), r, &[]).is_ok())
    })
}

fn session_of(pid: u32) -> Option<Arc<Irm>> {
    SESSION
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .filter(|(p, _)| *p == pid)
        .map(|(_, irm)| irm.clone())
}

/// How long a dropped flow's release may wait for a request to go out with: a process that
/// makes no other request sends it from its timer thread after this. (An application that
/// drops a flow and allocates or accepts the next one saves the IRMd a wake-up per flow; the
/// timer thread wakes about twice per period while flows are dropped, so a shorter period
/// costs more wake-ups than it saves at a few hundred flows a second.)
const RELEASE_DELAY: Duration = Duration::from_millis(10);

/// Releases waiting to go, the process they belong to (a forked child does not send its
/// parent's), and whether the timer that sends them is set.
struct Releases {
    pid: u32,
    ids: Vec<u64>,
    timer: bool,
}

static RELEASES: Mutex<Releases> = Mutex::new(Releases {
    pid: 0,
    ids: Vec::new(),
    timer: false,
});

fn releases() -> std::sync::MutexGuard<'static, Releases> {
    RELEASES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Queue the release of flow `flow_id`; the timer sends it if no request takes it first.
fn defer_release(pid: u32, flow_id: u64) -> bool {
    let mut g = releases();
    if g.pid != pid {
        *g = Releases {
            pid,
            ids: Vec::new(),
            timer: false,
        };
    }
    g.ids.push(flow_id);
    if !g.timer {
        g.timer = true;
        drop(g);
        crate::ctrl::timer::at(Instant::now() + RELEASE_DELAY, flush_releases);
    }
    true
}

/// The releases waiting to go (none for a forked child: they are its parent's).
fn take_releases(pid: u32) -> Vec<u64> {
    let mut g = releases();
    if g.pid != pid {
        return Vec::new();
    }
    std::mem::take(&mut g.ids)
}

/// The timer's job: send what no request took.
fn flush_releases() {
    let pid = my_pid();
    let reqs = {
        let mut g = releases();
        g.timer = false;
        if g.pid != pid {
            return;
        }
        g.ids
            .drain(..)
            .map(|flow_id| IrmReq::FlowRelease { flow_id })
            .collect::<Vec<_>>()
    };
    if reqs.is_empty() {
        return;
    }
    if send_now(pid, &reqs) {
        return;
    }
    // Neither an idle connection nor the main one took them (the IRMd restarted, say): a
    // fresh connection, kept for the next request.
    let sent = Irm::connect().ok().filter(|irm| {
        reqs.iter()
            .all(|r| wire::send(irm.sock.as_fd(), r, &[]).is_ok())
    });
    match sent {
        Some(irm) => {
            let mut g = idle();
            if g.0 == pid && g.1.len() < IDLE_CONNS {
                g.1.push(irm);
            }
        }
        None => tracing::debug!("cannot release {} dropped flow(s)", reqs.len()),
    }
}

/// Send the releases waiting to go, then `req`, on `irm`: in one message when `req` can
/// carry them ([`IrmReq::Released`]), else each in its own message first. On failure the
/// releases wait for the next try.
fn send_after_releases(irm: &Irm, pid: u32, req: &IrmReq) -> Result<(), Error> {
    let ids = take_releases(pid);
    if ids.is_empty() {
        wire::send(irm.sock.as_fd(), req, &[])?;
        return Ok(());
    }
    let sent = match FlowReq::from_req(req.clone()) {
        Ok(then) => {
            let with = IrmReq::Released {
                flow_ids: ids.clone(),
                req: then,
            };
            wire::send(irm.sock.as_fd(), &with, &[])
        }
        Err(_) => ids
            .iter()
            .try_for_each(|&flow_id| {
                wire::send(irm.sock.as_fd(), &IrmReq::FlowRelease { flow_id }, &[])
            })
            .and_then(|()| wire::send(irm.sock.as_fd(), req, &[])),
    };
    if let Err(e) = sent {
        // Sent again with the next try (a release the IRMd got twice is refused quietly).
        let mut g = releases();
        if g.pid == pid {
            g.ids.extend(ids);
        }
        return Err(e.into());
    }
    Ok(())
}

/// Request connections not in use, and the process they belong to (a child forked after
/// they were opened must not use them: the IRMd knows a connection by its opener's pid).
static IDLE: Mutex<(u32, Vec<Irm>)> = Mutex::new((0, Vec::new()));

fn idle() -> std::sync::MutexGuard<'static, (u32, Vec<Irm>)> {
    IDLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Send `req` on a connection of this process's own and return the answer (as [`Irm::call`]):
/// a connection left idle by an earlier request, else a new one. A connection that failed
/// before the request went out is replaced once; one that carried a request is never used
/// again unless the request was answered.
pub(crate) fn call(req: &IrmReq) -> Result<(IrmResp, Vec<OwnedFd>), Error> {
    let pid = my_pid();
    let reused = {
        let mut g = idle();
        if g.0 != pid {
            *g = (pid, Vec::new());
        }
        g.1.pop()
    };
    let irm = match reused {
        Some(irm) => match send_after_releases(&irm, pid, req) {
            Ok(()) => irm,
            // The IRMd closed it (restarted, say): a fresh connection.
            Err(_) => {
                drop(irm);
                idle().1.clear();
                let irm = Irm::connect()?;
                send_after_releases(&irm, pid, req)?;
                irm
            }
        },
        None => {
            let irm = Irm::connect()?;
            send_after_releases(&irm, pid, req)?;
            irm
        }
    };
    let answer = match wire::recv::<IrmResp>(irm.sock.as_fd())? {
        Some((IrmResp::Err(e), _)) => Err(Error::Irm(e)),
        Some(answer) => Ok(answer),
        None => {
            return Err(Error::Protocol(
                "the IRMd closed the connection without an answer".into(),
            ))
        }
    };
    let mut g = idle();
    if g.0 == pid && g.1.len() < IDLE_CONNS {
        g.1.push(irm);
    }
    answer
}

/// As [`call`], expecting a plain `Ok`.
pub(crate) fn call_ok(req: &IrmReq) -> Result<(), Error> {
    match call(req)?.0 {
        IrmResp::Ok => Ok(()),
        other => Err(Error::Protocol(format!("expected Ok, got {other:?}"))),
    }
}
