//! The IRMd's socket: one thread serves every connection (epoll). Requests that never wait
//! (the flow calls, which are answered later by whichever thread completes them) are handled
//! on it; any other request goes to a thread of the pool, and its connection is not read
//! until that request is answered, so a connection's requests are handled in order.
//!
//! One thread rather than one per connection: with many processes allocating flows, each
//! request woke its connection's own thread, and the IRMd spent more time switching
//! between them than handling the requests; a single thread that finds several requests
//! ready handles them in one go.

use crate::irmd::{alloc_deadline, Irmd};
use crate::registry::Reply;
use o7s::ctrl::msg::{IrmError, IrmReq, IrmResp};
use o7s::ctrl::wire::{self, WireError};
use rustix::event::epoll;
use rustix::fd::{AsFd, OwnedFd};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// The listener's token in the epoll set (connections have the IRMd's ids, from 1).
const LISTENER: u64 = 0;

/// A client's connection.
struct Conn {
    sock: Arc<OwnedFd>,
    pid: u32,
    announced: bool,
}

/// Serve the listening socket and every connection on it, forever.
pub fn serve(irmd: Arc<Irmd>, listener: OwnedFd) -> std::io::Result<()> {
    rustix::io::ioctl_fionbio(&listener, true)?;
    let ep = Arc::new(epoll::create(epoll::CreateFlags::CLOEXEC)?);
    epoll::add(
        &ep,
        &listener,
        epoll::EventData::new_u64(LISTENER),
        epoll::EventFlags::IN,
    )?;
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut buf = vec![0u8; wire::MAX_MSG];
    let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
    loop {
        events.clear();
        match epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        for ev in &events {
            let token = ev.data.u64();
            if token == LISTENER {
                accept_all(&irmd, &ep, &listener, &mut conns);
                continue;
            }
            let Some(c) = conns.get_mut(&token) else {
                continue;
            };
            if !read_one(&irmd, &ep, token, c, &mut buf) {
                let _ = epoll::delete(&ep, c.sock.as_fd());
                irmd.conn_gone(c.pid, token);
                if c.announced {
                    irmd.proc_gone(c.pid);
                }
                conns.remove(&token);
            }
        }
    }
}

/// Take every pending connection.
fn accept_all(
    irmd: &Arc<Irmd>,
    ep: &Arc<OwnedFd>,
    listener: &OwnedFd,
    conns: &mut HashMap<u64, Conn>,
) {
    loop {
        let sock = match rustix::net::accept_with(listener, rustix::net::SocketFlags::CLOEXEC) {
            Ok(s) => s,
            Err(rustix::io::Errno::AGAIN) => return,
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::CONNABORTED) => continue,
            Err(e) if e == rustix::io::Errno::MFILE || e == rustix::io::Errno::NFILE => {
                warn!("out of file descriptors: {e}");
                // Nothing is taken meanwhile; the connections waiting are taken later.
                std::thread::sleep(Duration::from_millis(10));
                return;
            }
            Err(e) => {
                warn!("cannot accept a connection: {e}");
                return;
            }
        };
        let pid = match rustix::net::sockopt::socket_peercred(&sock) {
            Ok(c) => c.pid.as_raw_nonzero().get() as u32,
            Err(e) => {
                warn!("cannot identify a client: {e}");
                continue;
            }
        };
        let token = irmd.new_id();
        if let Err(e) = epoll::add(
            &**ep,
            &sock,
            epoll::EventData::new_u64(token),
            epoll::EventFlags::IN,
        ) {
            warn!("cannot serve process {pid}: {e}");
            continue;
        }
        conns.insert(
            token,
            Conn {
                sock: Arc::new(sock),
                pid,
                announced: false,
            },
        );
    }
}

/// Read and handle one request of connection `c` (`token`); false when the connection is
/// gone.
fn read_one(irmd: &Arc<Irmd>, ep: &Arc<OwnedFd>, token: u64, c: &mut Conn, buf: &mut [u8]) -> bool {
    let pid = c.pid;
    let req = match wire::recv_nowait::<IrmReq>(c.sock.as_fd(), buf) {
        Ok(Some((req, _fds))) => req,
        Ok(None) => return false,
        Err(WireError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
        Err(WireError::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => return true,
        Err(e @ (WireError::Decode(_) | WireError::Truncated | WireError::TooManyFds)) => {
            debug!("process {pid} sent a bad control message: {e}");
            let answer = IrmResp::Err(IrmError::BadRequest { why: e.to_string() });
            return wire::send_nowait(c.sock.as_fd(), &answer, &[]).is_ok();
        }
        Err(e) => {
            debug!("connection of process {pid}: {e}");
            return false;
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
        if c.announced {
            let answer = IrmResp::Err(IrmError::BadRequest {
                why: "already announced".into(),
            });
            return wire::send_nowait(c.sock.as_fd(), &answer, &[]).is_ok();
        }
        c.announced = true;
    }
    match req {
        IrmReq::FlowAlloc {
            name,
            qos,
            timeout_ms,
        } => {
            let reply = Reply::to_socket(c.sock.clone(), pid);
            irmd.flow_alloc_then(pid, &name, qos, alloc_deadline(timeout_ms), reply);
        }
        IrmReq::FlowAccept { timeout_ms } => {
            let deadline =
                timeout_ms.map(|ms| Instant::now() + Duration::from_millis(u64::from(ms)));
            let reply = Reply::to_socket(c.sock.clone(), pid);
            irmd.flow_accept_then(pid, token, deadline, reply);
        }
        // Nobody waits for an answer.
        IrmReq::FlowRelease { flow_id } => irmd.flows_released(pid, &[flow_id]),
        // Quick, and answered here.
        req @ (IrmReq::Announce { .. } | IrmReq::FlowDealloc { .. }) => {
            let (answer, _) = irmd
                .handle(pid, req)
                .unwrap_or_else(|e| (IrmResp::Err(e), Vec::new()));
            return wire::send_nowait(c.sock.as_fd(), &answer, &[]).is_ok();
        }
        // May wait (for an IPCP, a program, the network): on a thread of the pool, with the
        // connection out of the epoll set until it is answered.
        req => {
            if let Err(e) = epoll::delete(&**ep, c.sock.as_fd()) {
                debug!("connection of process {pid}: {e}");
                return false;
            }
            let (irmd, ep, sock) = (irmd.clone(), ep.clone(), c.sock.clone());
            let job = move || {
                let (answer, fds) = irmd
                    .handle(pid, req)
                    .unwrap_or_else(|e| (IrmResp::Err(e), Vec::new()));
                let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
                if let Err(e) = wire::send(sock.as_fd(), &answer, &borrowed) {
                    debug!("cannot answer process {pid}: {e}");
                }
                // Back in the set: the next request, or the connection's end (seen at once
                // if it closed meanwhile).
                let data = epoll::EventData::new_u64(token);
                if let Err(e) = epoll::add(&*ep, sock.as_fd(), data, epoll::EventFlags::IN) {
                    warn!("cannot serve process {pid} any more: {e}");
                    let _ = rustix::net::shutdown(&*sock, rustix::net::Shutdown::Both);
                }
            };
            if let Err(e) = o7s::ctrl::pool::spawn(job) {
                warn!("cannot start a request thread: {e}");
                return false;
            }
        }
    }
    true
}
