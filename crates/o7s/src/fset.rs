//! Waiting on many flows at once (the prototype's `fset` and `fqueue`).

use crate::error::Error;
use crate::flow::{Flow, FlowId, FlowInner};
use rustix::event::epoll;
use rustix::fd::{AsFd, OwnedFd};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
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
}

struct Member {
    flow: Weak<FlowInner>,
    want_write: bool,
    down_reported: bool,
}

/// A set of flows to wait on with one call.
pub struct FlowSet {
    epoll: OwnedFd,
    members: HashMap<FlowId, Member>,
}

impl FlowSet {
    pub fn new() -> Result<FlowSet, Error> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(std::io::Error::from)?;
        Ok(FlowSet {
            epoll,
            members: HashMap::new(),
        })
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
        let mut gone = Vec::new();
        for (&id, m) in self.members.iter_mut() {
            let Some(f) = m.flow.upgrade() else {
                gone.push(id);
                continue;
            };
            if f.ep.rx_ready() {
                out.push(Event::Packet(id));
            } else if !m.down_reported && f.ep.is_down() {
                // Level-triggered: stop watching the dead liveness socket, or wait would spin.
                let _ = epoll::delete(&self.epoll, f.ep.live_fd());
                m.down_reported = true;
                out.push(Event::Down(id));
            }
            if m.want_write && f.ep.tx_space(1) {
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
            let flows: Vec<(Arc<FlowInner>, bool)> = self
                .members
                .values()
                .filter_map(|m| m.flow.upgrade().map(|f| (f, m.want_write)))
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
