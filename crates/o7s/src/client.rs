//! Talking to the IRMd: one request, one answer per call, over a `SOCK_SEQPACKET` connection
//! to `$O7S_RUNDIR/irmd.sock`.
//!
//! A process announces itself on one connection it keeps for its life (the IRMd deallocates
//! its flows when that closes); flow requests go over other connections, one per request at
//! a time, kept for the next request when done (see [`call`]): connecting costs the IRMd a
//! thread per connection.

use crate::ctrl::msg::{IrmReq, IrmResp};
use crate::ctrl::wire;
use crate::error::Error;
use crate::rundir;
use rustix::fd::{AsFd, OwnedFd};
use rustix::net::{connect, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use std::sync::{Arc, Mutex};

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

/// Send `req`, which gets no answer: on an idle request connection, which is idle again at
/// once (the thread's next request likely goes on it too, and the IRMd's thread of that
/// connection then reads both on one wake-up), else on the process's main connection. False
/// when it could not go.
pub(crate) fn send_quiet(req: &IrmReq) -> bool {
    let pid = my_pid();
    let reused = {
        let mut g = idle();
        if g.0 != pid {
            *g = (pid, Vec::new());
        }
        g.1.pop()
    };
    if let Some(irm) = reused {
        if wire::send(irm.sock.as_fd(), req, &[]).is_ok() {
            let mut g = idle();
            if g.0 == pid && g.1.len() < IDLE_CONNS {
                g.1.push(irm);
            }
            return true;
        }
    }
    let session = SESSION
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .filter(|(p, _)| *p == pid)
        .map(|(_, irm)| irm.clone());
    session.is_some_and(|irm| wire::send(irm.sock.as_fd(), req, &[]).is_ok())
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
        Some(irm) => match wire::send(irm.sock.as_fd(), req, &[]) {
            Ok(()) => irm,
            // The IRMd closed it (restarted, say): a fresh connection.
            Err(_) => {
                drop(irm);
                idle().1.clear();
                let irm = Irm::connect()?;
                wire::send(irm.sock.as_fd(), req, &[])?;
                irm
            }
        },
        None => {
            let irm = Irm::connect()?;
            wire::send(irm.sock.as_fd(), req, &[])?;
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
