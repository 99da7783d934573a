//! Both-ways request/answer over one IRMd <-> IPCP connection. A reader thread routes answers
//! to their callers and hands each incoming request to the handler on a thread of the
//! process's [`pool`](super::pool) (an idle one, or a new one), so a request that waits (a flow
//! waiting for its acceptor) never stalls the connection or the requests behind it. A request
//! that can be answered without waiting may be answered on the reader itself (see
//! [`Rpc::start_with`]): no other thread wakes up for it.

use super::msg::{IpcpFrame, IpcpNote, IpcpReq, IpcpResp};
use super::wire::{self, WireError};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An incoming request on an [`Rpc`] connection.
#[derive(Debug)]
pub enum Inbound {
    Req {
        id: u64,
        body: IpcpReq,
        fds: Vec<OwnedFd>,
    },
    Note {
        id: u64,
        body: IpcpNote,
        fds: Vec<OwnedFd>,
    },
    /// The connection closed (peer exited or crashed).
    Closed,
}

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("connection closed")]
    Closed,
    #[error("timed out waiting for an answer")]
    Timeout,
}

/// An answer to a request, or `None` when the connection closed first.
pub type Answer = Option<(IpcpResp, Vec<OwnedFd>)>;

/// Called with the answer to a request, on the connection's reader thread (it must not block).
type Waiter = Box<dyn FnOnce(Answer) + Send + 'static>;

type Pending = HashMap<u64, Waiter>;

/// One end of a request/answer connection.
pub struct Rpc {
    sock: OwnedFd,
    next_id: AtomicU64,
    pending: Mutex<Pending>,
    closed: AtomicBool,
}

impl Rpc {
    /// Start serving `sock`; `handler` is called on a thread of the pool per inbound request
    /// and once with [`Inbound::Closed`] when the connection ends.
    pub fn start<H>(sock: OwnedFd, handler: H) -> std::io::Result<Arc<Rpc>>
    where
        H: Fn(&Arc<Rpc>, Inbound) + Send + Sync + 'static,
    {
        Rpc::start_with(sock, |_, inbound| Some(inbound), handler)
    }

    /// As [`Rpc::start`], but every inbound request and note goes to `quick` first, on the
    /// reader thread: it answers what it can without waiting (it must never block: the
    /// connection's answers wait behind it) and returns the rest, which `handler` gets on a
    /// thread of the pool.
    pub fn start_with<Q, H>(sock: OwnedFd, quick: Q, handler: H) -> std::io::Result<Arc<Rpc>>
    where
        Q: Fn(&Arc<Rpc>, Inbound) -> Option<Inbound> + Send + 'static,
        H: Fn(&Arc<Rpc>, Inbound) + Send + Sync + 'static,
    {
        let rpc = Arc::new(Rpc {
            sock,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        let reader = rpc.clone();
        let handler = Arc::new(handler);
        std::thread::Builder::new()
            .name("ctrl-rpc".into())
            .spawn(move || reader.read_loop(quick, handler))?;
        Ok(rpc)
    }

    fn read_loop<Q, H>(self: Arc<Self>, quick: Q, handler: Arc<H>)
    where
        Q: Fn(&Arc<Rpc>, Inbound) -> Option<Inbound> + Send + 'static,
        H: Fn(&Arc<Rpc>, Inbound) + Send + Sync + 'static,
    {
        loop {
            let frame = match wire::recv::<IpcpFrame>(self.sock.as_fd()) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(WireError::Decode(e)) => {
                    tracing::warn!("dropping malformed control frame: {e}");
                    continue;
                }
                Err(e) => {
                    tracing::warn!("control connection failed: {e}");
                    break;
                }
            };
            let (frame, fds) = frame;
            let inbound = match frame {
                IpcpFrame::Resp { id, body } => {
                    let waiter = self.lock_pending().remove(&id);
                    if let Some(w) = waiter {
                        w(Some((body, fds)));
                    }
                    continue;
                }
                IpcpFrame::Req { id, body } => Inbound::Req { id, body, fds },
                IpcpFrame::Note { id, body } => Inbound::Note { id, body, fds },
            };
            let Some(inbound) = quick(&self, inbound) else {
                continue;
            };
            let me = self.clone();
            let h = handler.clone();
            if let Err(e) = super::pool::spawn(move || h(&me, inbound)) {
                tracing::error!("cannot start a request thread: {e}");
            }
        }
        self.closed.store(true, Ordering::SeqCst);
        // Fail every caller still waiting.
        let waiters: Vec<Waiter> = self.lock_pending().drain().map(|(_, w)| w).collect();
        for w in waiters {
            w(None);
        }
        handler(&self, Inbound::Closed);
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Send the frame `make` builds with a fresh id; `done` gets its answer. Returns the id.
    fn send_with(
        &self,
        make: impl FnOnce(u64) -> IpcpFrame,
        fds: &[BorrowedFd<'_>],
        done: Waiter,
    ) -> Result<u64, RpcError> {
        if self.is_closed() {
            return Err(RpcError::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock_pending().insert(id, done);
        if let Err(e) = wire::send(self.sock.as_fd(), &make(id), fds) {
            self.lock_pending().remove(&id);
            return Err(e.into());
        }
        // Closed meanwhile: the reader may have failed the waiters before ours went in.
        if self.is_closed() {
            if let Some(w) = self.lock_pending().remove(&id) {
                w(None);
            }
        }
        Ok(id)
    }

    fn call(
        &self,
        make: impl FnOnce(u64) -> IpcpFrame,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<(IpcpResp, Vec<OwnedFd>), RpcError> {
        let (tx, rx) = sync_channel(1);
        let id = self.send_with(
            make,
            fds,
            Box::new(move |a| {
                let _ = tx.send(a);
            }),
        )?;
        let got = match timeout {
            Some(t) => rx.recv_timeout(t).map_err(|e| match e {
                RecvTimeoutError::Timeout => RpcError::Timeout,
                RecvTimeoutError::Disconnected => RpcError::Closed,
            }),
            None => rx.recv().map_err(|_| RpcError::Closed),
        };
        match got {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err(RpcError::Closed),
            Err(e) => {
                self.lock_pending().remove(&id);
                Err(e)
            }
        }
    }

    /// Send a request (IRMd -> IPCP) without waiting: `done` is called with its answer (or
    /// `None` if the connection closes first) on the connection's reader thread, so it must
    /// be quick. Returns the request's id, for [`Rpc::forget`].
    pub fn request_then(
        &self,
        body: IpcpReq,
        fds: &[BorrowedFd<'_>],
        done: impl FnOnce(Answer) + Send + 'static,
    ) -> Result<u64, RpcError> {
        self.send_with(|id| IpcpFrame::Req { id, body }, fds, Box::new(done))
    }

    /// Send a note (IPCP -> IRMd) without waiting; as [`Rpc::request_then`].
    pub fn notify_then(
        &self,
        body: IpcpNote,
        fds: &[BorrowedFd<'_>],
        done: impl FnOnce(Answer) + Send + 'static,
    ) -> Result<u64, RpcError> {
        self.send_with(|id| IpcpFrame::Note { id, body }, fds, Box::new(done))
    }

    /// Stop waiting for the answer to request `id` (its `done` is dropped uncalled).
    pub fn forget(&self, id: u64) {
        self.lock_pending().remove(&id);
    }

    /// Send a request (IRMd -> IPCP) without waiting: `done` gets its answer, or
    /// [`RpcError::Closed`] when the connection closes first, or [`RpcError::Timeout`] at
    /// `deadline` (on the process's [timer](super::timer) thread), or the error sending the
    /// request (here, at once). It is called exactly once, and must be quick: it may run on
    /// the reader or the timer thread.
    pub fn request_until(
        self: &Arc<Self>,
        body: IpcpReq,
        fds: &[BorrowedFd<'_>],
        deadline: std::time::Instant,
        done: impl FnOnce(Result<(IpcpResp, Vec<OwnedFd>), RpcError>) + Send + 'static,
    ) {
        self.until(|id| IpcpFrame::Req { id, body }, fds, deadline, done)
    }

    /// Send a note (IPCP -> IRMd) without waiting; as [`Rpc::request_until`].
    pub fn notify_until(
        self: &Arc<Self>,
        body: IpcpNote,
        fds: &[BorrowedFd<'_>],
        deadline: std::time::Instant,
        done: impl FnOnce(Result<(IpcpResp, Vec<OwnedFd>), RpcError>) + Send + 'static,
    ) {
        self.until(|id| IpcpFrame::Note { id, body }, fds, deadline, done)
    }

    fn until(
        self: &Arc<Self>,
        make: impl FnOnce(u64) -> IpcpFrame,
        fds: &[BorrowedFd<'_>],
        deadline: std::time::Instant,
        done: impl FnOnce(Result<(IpcpResp, Vec<OwnedFd>), RpcError>) + Send + 'static,
    ) {
        // The answer and the deadline race for `done`: whichever takes it first calls it.
        type Done = Box<dyn FnOnce(Result<(IpcpResp, Vec<OwnedFd>), RpcError>) + Send>;
        type Slot = Mutex<Option<(Done, Option<super::timer::TimerId>)>>;
        let slot: Arc<Slot> = Arc::new(Mutex::new(Some((Box::new(done), None))));
        let take = |s: &Slot| s.lock().unwrap_or_else(|e| e.into_inner()).take();
        let on_answer = slot.clone();
        let id = self.send_with(
            make,
            fds,
            Box::new(move |a| {
                if let Some((done, timer)) = take(&on_answer) {
                    if let Some(t) = timer {
                        super::timer::cancel(t);
                    }
                    done(a.ok_or(RpcError::Closed));
                }
            }),
        );
        let id = match id {
            Ok(id) => id,
            Err(e) => {
                if let Some((done, _)) = take(&slot) {
                    done(Err(e));
                }
                return;
            }
        };
        let me = Arc::downgrade(self);
        let on_timeout = slot.clone();
        let t = super::timer::at(deadline, move || {
            if let Some(rpc) = me.upgrade() {
                rpc.forget(id);
            }
            if let Some((done, _)) = take(&on_timeout) {
                done(Err(RpcError::Timeout));
            }
        });
        // Keep the timer's id for the answer to cancel it, unless the answer came already.
        let mut g = slot.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_mut() {
            Some((_, timer)) => *timer = Some(t),
            None => {
                drop(g);
                super::timer::cancel(t);
            }
        }
    }

    /// Send a request (IRMd -> IPCP) and wait for its answer.
    pub fn request(
        &self,
        body: IpcpReq,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<(IpcpResp, Vec<OwnedFd>), RpcError> {
        self.call(|id| IpcpFrame::Req { id, body }, fds, timeout)
    }

    /// Send a note (IPCP -> IRMd) and wait for its answer.
    pub fn notify(
        &self,
        body: IpcpNote,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<(IpcpResp, Vec<OwnedFd>), RpcError> {
        self.call(|id| IpcpFrame::Note { id, body }, fds, timeout)
    }

    /// Answer inbound request `id`.
    pub fn reply(&self, id: u64, body: IpcpResp, fds: &[BorrowedFd<'_>]) -> Result<(), RpcError> {
        wire::send(self.sock.as_fd(), &IpcpFrame::Resp { id, body }, fds)?;
        Ok(())
    }

    /// Close the connection for both directions (the peer sees EOF).
    pub fn shutdown(&self) {
        let _ = rustix::net::shutdown(&self.sock, rustix::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_note_both_ways() {
        let (a, b) = crate::ctrl::wire::pair().expect("socketpair");
        // Side b answers every request with Bool(true), and while doing so sends a note back.
        let ipcp = Rpc::start(b, |rpc, inb| {
            if let Inbound::Req { id, .. } = inb {
                let r = rpc.notify(IpcpNote::FlowDown { flow_id: 7 }, &[], None);
                assert!(matches!(r, Ok((IpcpResp::Ok, _))));
                rpc.reply(id, IpcpResp::Bool(true), &[]).expect("reply");
            }
        })
        .expect("start");
        let irmd = Rpc::start(a, |rpc, inb| {
            if let Inbound::Note { id, .. } = inb {
                rpc.reply(id, IpcpResp::Ok, &[]).expect("reply");
            }
        })
        .expect("start");
        let (resp, _) = irmd
            .request(
                IpcpReq::Query {
                    hash: o7s_proto::HashAlgo::default().hash("x"),
                },
                &[],
                Some(Duration::from_secs(5)),
            )
            .expect("answer");
        assert_eq!(resp, IpcpResp::Bool(true));
        ipcp.shutdown();
    }
}
