//! A flow: a message-preserving channel to a named peer.

use crate::client::{ensure_session, Irm};
use crate::ctrl::msg::{FlowGrant, IrmReq, IrmResp};
use crate::error::Error;
use o7s_proto::QosSpec;
use o7s_shm::{Endpoint, Side};
use rustix::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A flow's identifier, unique within one system.
pub type FlowId = u64;

pub(crate) struct FlowInner {
    pub(crate) id: FlowId,
    pub(crate) ep: Endpoint,
    qos: QosSpec,
    name: String,
    layer: String,
    mtu: usize,
    nonblock: AtomicBool,
    read_timeout: Mutex<Option<Duration>>,
    write_timeout: Mutex<Option<Duration>>,
    released: AtomicBool,
}

/// A flow to a name. Reads and writes move whole messages. Dropping a flow deallocates it.
///
/// A `Flow` may be shared between threads (`&Flow` is enough to read and write): reads are
/// serialised among readers and writes among writers, and one reader and one writer run in
/// parallel.
pub struct Flow {
    pub(crate) inner: Arc<FlowInner>,
}

fn timeout_ms(t: Option<Duration>) -> Option<u32> {
    t.map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
}

impl Flow {
    /// Allocate a flow to `name` with QoS `qos`, waiting at most `timeout` (None: the IRMd's
    /// default) for the peer to accept.
    pub fn alloc(name: &str, qos: QosSpec, timeout: Option<Duration>) -> Result<Flow, Error> {
        ensure_session()?;
        let req = IrmReq::FlowAlloc {
            name: name.to_string(),
            qos,
            timeout_ms: timeout_ms(timeout),
        };
        Flow::from_answer(Irm::connect()?.call(&req)?)
    }

    /// Wait at most `timeout` (None: forever) for a flow to one of the names this process is
    /// bound to. [`Flow::qos`] then gives the QoS the peer asked for.
    pub fn accept(timeout: Option<Duration>) -> Result<Flow, Error> {
        ensure_session()?;
        let req = IrmReq::FlowAccept {
            timeout_ms: timeout_ms(timeout),
        };
        Flow::from_answer(Irm::connect()?.call(&req)?)
    }

    fn from_answer((resp, fds): (IrmResp, Vec<OwnedFd>)) -> Result<Flow, Error> {
        match resp {
            IrmResp::Flow(grant) => Flow::from_grant(grant, fds),
            other => Err(Error::Protocol(format!("expected a flow, got {other:?}"))),
        }
    }

    fn from_grant(g: FlowGrant, fds: Vec<OwnedFd>) -> Result<Flow, Error> {
        let Ok::<[OwnedFd; 4], _>([mem, own, peer, live]) = fds.try_into() else {
            return Err(Error::Protocol("a flow needs exactly four fds".into()));
        };
        let side = if g.side == 0 { Side::A } else { Side::B };
        let ep = Endpoint::new(mem, side, own, peer, live)?;
        let mtu = ep.max_packet().min(g.mtu as usize);
        Ok(Flow {
            inner: Arc::new(FlowInner {
                id: g.flow_id,
                ep,
                qos: g.qos,
                name: g.name,
                layer: g.layer,
                mtu,
                nonblock: AtomicBool::new(false),
                read_timeout: Mutex::new(None),
                write_timeout: Mutex::new(None),
                released: AtomicBool::new(false),
            }),
        })
    }

    pub fn id(&self) -> FlowId {
        self.inner.id
    }

    /// The QoS of the flow (for an accepted flow: what the peer asked for).
    pub fn qos(&self) -> QosSpec {
        self.inner.qos
    }

    /// The name the flow was allocated to.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The layer the flow runs over.
    pub fn layer(&self) -> &str {
        &self.inner.layer
    }

    /// Largest message this flow carries.
    pub fn mtu(&self) -> usize {
        self.inner.mtu
    }

    /// In non-blocking mode, reads and writes return [`Error::WouldBlock`] instead of waiting.
    pub fn set_nonblocking(&self, on: bool) {
        self.inner.nonblock.store(on, Ordering::Relaxed);
    }

    pub fn is_nonblocking(&self) -> bool {
        self.inner.nonblock.load(Ordering::Relaxed)
    }

    /// Bound how long a blocking read waits (None: forever).
    pub fn set_read_timeout(&self, t: Option<Duration>) {
        *self
            .inner
            .read_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = t;
    }

    /// Bound how long a blocking write waits for room (None: forever).
    pub fn set_write_timeout(&self, t: Option<Duration>) {
        *self
            .inner
            .write_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = t;
    }

    fn deadline(t: &Mutex<Option<Duration>>) -> Option<Instant> {
        let t = *t.lock().unwrap_or_else(|e| e.into_inner());
        t.map(|d| Instant::now() + d)
    }

    /// Read one message into `buf`; returns its length.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let i = &self.inner;
        if i.nonblock.load(Ordering::Relaxed) {
            return Ok(i.ep.try_read(buf)?);
        }
        Ok(i.ep.read(buf, Self::deadline(&i.read_timeout))?)
    }

    /// Write `buf` as one message; returns its length. A full flow is backpressure: a
    /// blocking write waits for room, a non-blocking one returns [`Error::WouldBlock`].
    pub fn write(&self, buf: &[u8]) -> Result<usize, Error> {
        let i = &self.inner;
        if buf.len() > i.mtu {
            return Err(Error::TooBig {
                len: buf.len(),
                max: i.mtu,
            });
        }
        if i.nonblock.load(Ordering::Relaxed) {
            i.ep.try_write(buf)?;
        } else {
            i.ep.write(buf, Self::deadline(&i.write_timeout))?;
        }
        Ok(buf.len())
    }

    /// True once the peer is gone (deallocated, exited, or the layer lost the flow).
    pub fn is_down(&self) -> bool {
        self.inner.ep.is_down()
    }

    /// Deallocate the flow now and report whether the IRMd agreed.
    pub fn dealloc(self) -> Result<(), Error> {
        self.inner.release()
    }
}

impl FlowInner {
    fn release(&self) -> Result<(), Error> {
        if self.released.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        match Irm::connect()?.call_ok(&IrmReq::FlowDealloc { flow_id: self.id }) {
            // The peer or the layer already took it down: the flow is gone either way.
            Err(Error::Irm(crate::IrmError::NoSuchFlow { .. })) => Ok(()),
            other => other,
        }
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        if let Err(e) = self.inner.release() {
            tracing::debug!(flow = self.inner.id, "dealloc on drop: {e}");
        }
    }
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("id", &self.inner.id)
            .field("name", &self.inner.name)
            .field("layer", &self.inner.layer)
            .field("qos", &self.inner.qos)
            .finish()
    }
}
