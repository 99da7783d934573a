//! Waiting on many flows at once (the prototype's `fset` and `fqueue`).

use crate::error::Error;
use crate::flow::{Flow, FlowId, FlowInner};
use rustix::event::epoll;
use rustix::fd::{AsFd, OwnedFd};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Something that happened on a flow of a [`FlowSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A message is waiting to be read.
    Packet(FlowId),
    /// A flow watched for writing has room again (the window opened).
    Writable(FlowId),
    /// The peer is gone: reads return what is left, then [`Error::FlowDown`].
    Down(FlowId),
    /// The flow was deallocated locally (its [`Flow`] was dropped); it left the set.
    Deallocated(FlowId),
    /// An allocation or accept started with [`FlowSet::alloc`] or [`FlowSet::accept`]
    /// finished; collect its result with [`FlowSet::take`].
    Allocated(PendingId),
}

/// Names an allocation or accept running in the background of a [`FlowSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PendingId(pub u64);

/// A finished background job.
type Done = (PendingId, Result<Flow, Error>);

/// Background allocations: results land here, and a write to `wake` tells the set.
struct Pending {
    wake: OwnedFd,
    next: u64,
    done: Arc<Mutex<Vec<Done>>>,
    ready: Vec<Done>,
}

/// The epoll key of the set's own wake-up eventfd (flow ids are random and never this).
const PENDING_KEY: u64 = 0;

struct Member {
    flow: Weak<FlowInner>,
    want_write: bool,
    down_reported: bool,
}

/// A set of flows to wait on with one call.
pub struct FlowSet {
    epoll: OwnedFd,
    members: HashMap<FlowId, Member>,
    pending: Option<Pending>,
}

impl FlowSet {
    pub fn new() -> Result<FlowSet, Error> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(std::io::Error::from)?;
        Ok(FlowSet {
            epoll,
            members: HashMap::new(),
            pending: None,
        })
    }

    /// Start allocating a flow to `name` without blocking; [`Event::Allocated`] reports
    /// when it is done.
    pub fn alloc(
        &mut self,
        name: &str,
        qos: o7s_proto::QosSpec,
        timeout: Option<Duration>,
    ) -> Result<PendingId, Error> {
        let name = name.to_string();
        self.start(move || Flow::alloc(&name, qos, timeout))
    }

    /// Start waiting for an incoming flow without blocking; [`Event::Allocated`] reports
    /// when one arrived (or the timeout passed).
    pub fn accept(&mut self, timeout: Option<Duration>) -> Result<PendingId, Error> {
        self.start(move || Flow::accept(timeout))
    }

    /// The result of a finished background allocation or accept, once.
    pub fn take(&mut self, id: PendingId) -> Option<Result<Flow, Error>> {
        let p = self.pending.as_mut()?;
        let i = p.ready.iter().position(|(x, _)| *x == id)?;
        Some(p.ready.swap_remove(i).1)
    }

    fn start(
        &mut self,
        job: impl FnOnce() -> Result<Flow, Error> + Send + 'static,
    ) -> Result<PendingId, Error> {
        if self.pending.is_none() {
            let wake = o7s_shm::new_eventfd()?;
            epoll::add(
                &self.epoll,
                &wake,
                epoll::EventData::new_u64(PENDING_KEY),
                epoll::EventFlags::IN,
            )
            .map_err(std::io::Error::from)?;
            self.pending = Some(Pending {
                wake,
                next: 1,
                done: Arc::new(Mutex::new(Vec::new())),
                ready: Vec::new(),
            });
        }
        let Some(p) = self.pending.as_mut() else {
            return Err(Error::Protocol("no pending state".into()));
        };
        let id = PendingId(p.next);
        p.next += 1;
        let done = p.done.clone();
        let wake = p.wake.try_clone()?;
        crate::ctrl::pool::spawn(move || {
            let r = job();
            done.lock().unwrap_or_else(|e| e.into_inner()).push((id, r));
            let _ = rustix::io::write(&wake, &1u64.to_ne_bytes());
        })?;
        Ok(id)
    }

    /// Move finished background jobs to `ready` and report them.
    fn collect_pending(&mut self, out: &mut Vec<Event>) {
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        let mut done = p.done.lock().unwrap_or_else(|e| e.into_inner());
        if done.is_empty() {
            return;
        }
        let mut b = [0u8; 8];
        let _ = rustix::io::read(&p.wake, &mut b);
        for (id, r) in done.drain(..) {
            out.push(Event::Allocated(id));
            p.ready.push((id, r));
        }
    }

    /// Watch `flow` for packets and for going down.
    pub fn add(&mut self, flow: &Flow) -> Result<(), Error> {
        self.insert(flow, false)
    }

    /// Watch `flow` for packets, going down, and room to write.
    pub fn add_writable(&mut self, flow: &Flow) -> Result<(), Error> {
        self.insert(flow, true)
    }

    fn insert(&mut self, flow: &Flow, want_write: bool) -> Result<(), Error> {
        let id = flow.id();
        if !self.members.contains_key(&id) {
            let ep = &flow.inner.ep;
            let flags = epoll::EventFlags::IN;
            epoll::add(
                &self.epoll,
                ep.wait_fd(),
                epoll::EventData::new_u64(id),
                flags,
            )
            .map_err(std::io::Error::from)?;
            let live_flags = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
            if let Err(e) = epoll::add(
                &self.epoll,
                ep.live_fd(),
                epoll::EventData::new_u64(id),
                live_flags,
            ) {
                let _ = epoll::delete(&self.epoll, ep.wait_fd());
                return Err(std::io::Error::from(e).into());
            }
        }
        if let (false, Some(r)) = (self.members.contains_key(&id), &flow.inner.frct) {
            r.watchers
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.members.insert(
            id,
            Member {
                flow: Arc::downgrade(&flow.inner),
                want_write,
                down_reported: false,
            },
        );
        Ok(())
    }

    /// Stop watching `flow`.
    pub fn remove(&mut self, flow: &Flow) {
        if self.members.remove(&flow.id()).is_some() {
            if let Some(r) = &flow.inner.frct {
                r.watchers
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
            let ep = &flow.inner.ep;
            let _ = epoll::delete(&self.epoll, ep.wait_fd());
            let _ = epoll::delete(&self.epoll, ep.live_fd());
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Collect what is ready now without sleeping.
    fn ready(&mut self, out: &mut Vec<Event>) {
        self.collect_pending(out);
        let mut gone = Vec::new();
        for (&id, m) in self.members.iter_mut() {
            let Some(f) = m.flow.upgrade() else {
                gone.push(id);
                continue;
            };
            if f.message_ready() {
                out.push(Event::Packet(id));
            } else if !m.down_reported
                && (f.ep.is_down() || f.frct.as_ref().is_some_and(|r| r.failed()))
            {
                // Level-triggered: stop watching the dead liveness pipe, or wait would spin.
                let _ = epoll::delete(&self.epoll, f.ep.live_fd());
                m.down_reported = true;
                out.push(Event::Down(id));
            }
            let room = f.ep.tx_space(1) && f.frct.as_ref().is_none_or(|r| r.poll_writable());
            if m.want_write && room {
                out.push(Event::Writable(id));
            }
        }
        for id in gone {
            // The fds were closed with the flow, which removed them from the epoll set.
            self.members.remove(&id);
            out.push(Event::Deallocated(id));
        }
    }

    /// Wait at most `timeout` (None: forever) until something happens; returns the events.
    /// An empty result means the timeout passed.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Vec<Event>, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut out = Vec::new();
        let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
        loop {
            self.ready(&mut out);
            if !out.is_empty() {
                return Ok(out);
            }
            // Announce sleep on every flow; one that already has work cancels the sleep.
            let mut busy = false;
            // FRCT flows wait for acks (window updates) on the receive side, not for ring room.
            let flows: Vec<(Arc<FlowInner>, bool)> = self
                .members
                .values()
                .filter_map(|m| {
                    m.flow
                        .upgrade()
                        .map(|f| (f.clone(), m.want_write && f.frct.is_none()))
                })
                .collect();
            for (f, ww) in &flows {
                if !f.ep.arm(true, ww.then_some(1)) {
                    busy = true;
                }
            }
            if !busy {
                let ts = match deadline {
                    None => None,
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            for (f, _) in &flows {
                                f.ep.disarm();
                            }
                            return Ok(out);
                        }
                        Some(rustix::time::Timespec {
                            tv_sec: left.as_secs() as i64,
                            tv_nsec: i64::from(left.subsec_nanos()),
                        })
                    }
                };
                events.clear();
                let spare = rustix::buffer::spare_capacity(&mut events);
                match epoll::wait(&self.epoll, spare, ts.as_ref()) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(std::io::Error::from(e).into()),
                }
            }
            for (f, _) in &flows {
                f.ep.disarm();
                f.ep.drain_wakeups();
            }
        }
    }
}

impl AsFd for FlowSet {
    /// The epoll fd: readable when some flow of the set may have an event (for embedding the
    /// set in another event loop). Call [`FlowSet::wait`] with a zero timeout to collect them.
    fn as_fd(&self) -> rustix::fd::BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}
