//! Talking to the IRMd: one request, one answer per call, over a `SOCK_SEQPACKET` connection
//! to `$O7S_RUNDIR/irmd.sock`.

use crate::ctrl::msg::{IrmReq, IrmResp};
use crate::ctrl::wire;
use crate::error::Error;
use crate::rundir;
use rustix::fd::{AsFd, OwnedFd};
use rustix::net::{connect, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use std::sync::{Mutex, OnceLock};

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

/// The process's main connection: opened on first use of a flow, kept for the life of the
/// process; the IRMd deallocates the process's flows when it closes.
static SESSION: OnceLock<Mutex<Option<Irm>>> = OnceLock::new();

/// Make sure this process has announced itself to the IRMd.
pub(crate) fn ensure_session() -> Result<(), Error> {
    let cell = SESSION.get_or_init(|| Mutex::new(None));
    let mut guard = cell.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_some() {
        return Ok(());
    }
    let irm = Irm::connect()?;
    let prog = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    irm.call_ok(&IrmReq::Announce { prog })?;
    *guard = Some(irm);
    Ok(())
}
