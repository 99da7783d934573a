//! The IRMd's socket: one thread per connection, one answer per request (flow allocations
//! and accept calls answered by whichever thread completes them).

use crate::irmd::{alloc_deadline, Irmd};
use crate::registry::Reply;
use o7s::ctrl::msg::{IrmError, IrmReq, IrmResp};
use o7s::ctrl::wire::{self, WireError};
use rustix::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// Accept connections forever.
pub fn serve(irmd: Arc<Irmd>, listener: OwnedFd) -> std::io::Result<()> {
    loop {
        let sock = match rustix::net::accept_with(&listener, rustix::net::SocketFlags::CLOEXEC) {
            Ok(s) => s,
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::CONNABORTED) => continue,
            Err(e) if e == rustix::io::Errno::MFILE || e == rustix::io::Errno::NFILE => {
                warn!("out of file descriptors: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let irmd = irmd.clone();
        let spawned = std::thread::Builder::new()
            .name("irm-conn".into())
            .stack_size(256 * 1024)
            .spawn(move || connection(&irmd, sock));
        if let Err(e) = spawned {
            warn!("cannot start a connection thread: {e}");
        }
    }
}

fn connection(irmd: &Arc<Irmd>, sock: OwnedFd) {
    let pid = match rustix::net::sockopt::socket_peercred(&sock) {
        Ok(c) => c.pid.as_raw_nonzero().get() as u32,
        Err(e) => {
            warn!("cannot identify a client: {e}");
            return;
        }
    };
    // Allocations and accept calls are answered by the thread that completes them (the one
    // that gets the IPCP's answer, the one that finds the flow), straight on this
    // connection; this thread goes back to reading. A process sends its next request on a
    // connection only once the last one is answered.
    let sock = Arc::new(sock);
    let conn = irmd.new_id();
    let mut announced = false;
    loop {
        let req = match wire::recv::<IrmReq>(sock.as_fd()) {
            Ok(Some((req, _fds))) => req,
            Ok(None) => break,
            Err(e @ (WireError::Decode(_) | WireError::Truncated | WireError::TooManyFds)) => {
                debug!("process {pid} sent a bad control message: {e}");
                let answer = IrmResp::Err(IrmError::BadRequest { why: e.to_string() });
                if wire::send(sock.as_fd(), &answer, &[]).is_err() {
                    break;
                }
                continue;
            }
            Err(e) => {
                debug!("connection of process {pid}: {e}");
                break;
            }
        };
        // Releases of dropped flows that came with this request.
        let req = match req {
            IrmReq::Released { flow_ids, req } => {
                irmd.flows_released(pid, &flow_ids);
                req.into()
            }
            req => req,
        };
        if matches!(req, IrmReq::Announce { .. }) {
            if announced {
                let answer = IrmResp::Err(IrmError::BadRequest {
                    why: "already announced".into(),
                });
                let _ = wire::send(sock.as_fd(), &answer, &[]);
                continue;
            }
            announced = true;
        }
        let req = match req {
            IrmReq::FlowAlloc {
                name,
                qos,
                timeout_ms,
            } => {
                let reply = Reply::to_socket(sock.clone(), pid);
                irmd.flow_alloc_then(pid, &name, qos, alloc_deadline(timeout_ms), reply);
                continue;
            }
            IrmReq::FlowAccept { timeout_ms } => {
                let deadline =
                    timeout_ms.map(|ms| Instant::now() + Duration::from_millis(u64::from(ms)));
                let reply = Reply::to_socket(sock.clone(), pid);
                irmd.flow_accept_then(pid, conn, deadline, reply);
                continue;
            }
            // Nobody waits for an answer.
            IrmReq::FlowRelease { flow_id } => {
                irmd.flows_released(pid, &[flow_id]);
                continue;
            }
            req => req,
        };
        let (answer, fds) = match irmd.handle(pid, req) {
            Ok(a) => a,
            Err(e) => (IrmResp::Err(e), Vec::new()),
        };
        let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        if let Err(e) = wire::send(sock.as_fd(), &answer, &borrowed) {
            debug!("cannot answer process {pid}: {e}");
            break;
        }
    }
    irmd.conn_gone(pid, conn);
    if announced {
        irmd.proc_gone(pid);
    }
}
