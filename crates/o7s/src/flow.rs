//! A flow: a message-preserving channel to a named peer.

use crate::client::{self, ensure_session};
use crate::ctrl::msg::{FlowGrant, IrmReq, IrmResp};
use crate::error::Error;
use crate::frct::{self, Reliable, Timed};
use o7s_proto::QosSpec;
use o7s_shm::{Endpoint, Held, ParkStore, Side};
use rustix::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A flow's identifier, unique within one system.
pub type FlowId = u64;

pub(crate) struct FlowInner {
    pub(crate) id: FlowId,
    pub(crate) ep: Held,
    qos: QosSpec,
    name: String,
    layer: String,
    mtu: usize,
    /// Largest message that travels in one packet (FRCT's fragment size on FRCT flows).
    packet_payload: usize,
    nonblock: AtomicBool,
    read_timeout: Mutex<Option<Duration>>,
    write_timeout: Mutex<Option<Duration>>,
    released: AtomicBool,
    /// FRCT, for flows whose QoS asks for in-order delivery.
    pub(crate) frct: Option<Reliable>,
    /// The rest of a message read in part.
    partial: Mutex<Partial>,
    has_partial: AtomicBool,
    linger: Mutex<Duration>,
}

/// A message of which the application has read the first `off` bytes.
#[derive(Default)]
struct Partial {
    msg: Vec<u8>,
    off: usize,
}

impl Timed for FlowInner {
    fn reliable(&self) -> Option<&Reliable> {
        self.frct.as_ref()
    }
    fn endpoint(&self) -> &Endpoint {
        &self.ep
    }
}

/// A flow to a name. Reads and writes move whole messages. Dropping a flow deallocates it
/// (without waiting for the IRMd's answer).
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

/// Ends of flows this process parks for reuse (see `o7s_shm::park`): at most this many.
const PARKED_MAX: usize = 64;

/// This process's parked flow ends.
fn parked() -> &'static std::sync::Arc<ParkStore> {
    static STORE: std::sync::OnceLock<std::sync::Arc<ParkStore>> = std::sync::OnceLock::new();
    STORE.get_or_init(|| ParkStore::new(PARKED_MAX))
}

/// A sweep of the parked ends is scheduled.
static SWEEPING: AtomicBool = AtomicBool::new(false);

/// Make sure parked ends nobody claims are let go in time, also in a process that stops
/// allocating flows: a sweep on the timer thread while any are parked.
fn sweep_soon() {
    if !SWEEPING.swap(true, Ordering::AcqRel) {
        crate::ctrl::timer::at(std::time::Instant::now() + o7s_shm::park::PARK_TTL, sweep);
    }
}

fn sweep() {
    let store = parked();
    store.expire();
    SWEEPING.store(false, Ordering::Release);
    if !store.is_empty() {
        sweep_soon();
    }
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
        Flow::from_answer(client::call(&req)?)
    }

    /// Wait at most `timeout` (None: forever) for a flow to one of the names this process is
    /// bound to. [`Flow::qos`] then gives the QoS the peer asked for.
    pub fn accept(timeout: Option<Duration>) -> Result<Flow, Error> {
        ensure_session()?;
        let req = IrmReq::FlowAccept {
            timeout_ms: timeout_ms(timeout),
        };
        Flow::from_answer(client::call(&req)?)
    }

    /// Join the broadcast layer named `layer` on this system (the prototype's `flow_join`):
    /// every message written on the flow reaches every other member of the layer (other
    /// applications that joined it here and on the other systems of the layer), and every
    /// message one of them writes arrives here. Delivery is best effort (a full flow drops),
    /// so `qos` may not ask for in-order or loss-free delivery: there is no single peer to
    /// acknowledge. `timeout` bounds the IRMd's wait for the layer's IPCP.
    ///
    /// ```no_run
    /// use o7s::{Flow, QosSpec};
    /// let flow = Flow::join("bc", QosSpec::RAW, None)?;
    /// flow.write(b"to everyone")?;
    /// # Ok::<(), o7s::Error>(())
    /// ```
    pub fn join(layer: &str, qos: QosSpec, timeout: Option<Duration>) -> Result<Flow, Error> {
        ensure_session()?;
        let req = IrmReq::FlowJoin {
            layer: layer.to_string(),
            qos,
            timeout_ms: timeout_ms(timeout),
        };
        Flow::from_answer(client::call(&req)?)
    }

    fn from_answer((resp, fds): (IrmResp, Vec<OwnedFd>)) -> Result<Flow, Error> {
        match resp {
            IrmResp::Flow(grant) => {
                let id = grant.flow_id;
                Flow::from_grant(grant, fds).inspect_err(|_| {
                    // The IRMd counts the flow as ours: give it back.
                    client::send_quiet(&IrmReq::FlowRelease { flow_id: id });
                })
            }
            other => Err(Error::Protocol(format!("expected a flow, got {other:?}"))),
        }
    }

    fn from_grant(g: FlowGrant, fds: Vec<OwnedFd>) -> Result<Flow, Error> {
        let side = if g.side == 0 { Side::A } else { Side::B };
        let ep = parked().open(g.set, side, fds)?;
        if g.set != 0 {
            sweep_soon();
        }
        let packet_mtu = ep.max_packet().min(g.mtu as usize);
        let (reliable, mtu, packet_payload) = if frct::wants_frct(&g.qos) {
            // A flow through an IPCP (which reserves headroom for its headers) loses what
            // finds the receive ring full: the window must fit the ring.
            let rcv_buf = (ep.headroom() > 0).then(|| ep.rx_budget());
            let cfg = frct::config_for(&g.qos, packet_mtu, rcv_buf);
            let fragment = cfg.max_fragment;
            (Some(Reliable::new(cfg)), frct::MAX_MESSAGE, fragment)
        } else {
            (None, packet_mtu, packet_mtu)
        };
        let has_frct = reliable.is_some();
        let inner = Arc::new(FlowInner {
            id: g.flow_id,
            ep,
            qos: g.qos,
            name: g.name,
            layer: g.layer,
            mtu,
            packet_payload,
            nonblock: AtomicBool::new(false),
            read_timeout: Mutex::new(None),
            write_timeout: Mutex::new(None),
            released: AtomicBool::new(false),
            frct: reliable,
            partial: Mutex::new(Partial::default()),
            has_partial: AtomicBool::new(false),
            linger: Mutex::new(frct::DEFAULT_LINGER),
        });
        if has_frct {
            let weak: std::sync::Weak<dyn Timed> = Arc::downgrade(&inner) as _;
            frct::register(weak);
        }
        Ok(Flow { inner })
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

    /// Largest message this flow carries. Flows with FRCT (any QoS but `raw`) fragment
    /// messages to fit the layer, up to [`frct::MAX_MESSAGE`](crate::MAX_MESSAGE) bytes.
    pub fn mtu(&self) -> usize {
        self.inner.mtu
    }

    /// Largest message that travels in one packet of the layer; FRCT flows fragment larger
    /// ones (each fragment takes a place in the window), raw flows refuse them. A bulk writer
    /// moves the most per window with messages of a multiple of this size.
    pub fn packet_payload(&self) -> usize {
        self.inner.packet_payload
    }

    /// Whether FRCT runs on this flow (its QoS asks for in-order delivery).
    pub fn has_frct(&self) -> bool {
        self.inner.frct.is_some()
    }

    /// FRCT counters of this flow (None for `raw` flows).
    pub fn frct_stats(&self) -> Option<crate::FrctStats> {
        self.inner.frct.as_ref().map(|r| {
            let (c, malformed) = r.stats();
            crate::FrctStats {
                counters: c,
                malformed,
            }
        })
    }

    /// How long closing a reliable flow waits, at most, for its data to be acknowledged
    /// (default 10 s; it returns as soon as everything is acknowledged or the peer is gone).
    pub fn set_linger(&self, t: Duration) {
        *self.inner.linger.lock().unwrap_or_else(|e| e.into_inner()) = t;
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

    /// Read one message into `buf`; returns its length. If `buf` is too small the message
    /// stays queued and [`Error::BufferTooSmall`] says how much room it needs (or read it in
    /// pieces with [`Flow::read_part`]).
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let i = &self.inner;
        if i.has_partial.load(Ordering::Acquire) {
            let mut p = i.partial_lock();
            if !p.msg.is_empty() {
                let left = p.msg.len() - p.off;
                if left > buf.len() {
                    return Err(Error::BufferTooSmall { needed: left });
                }
                buf[..left].copy_from_slice(&p.msg[p.off..]);
                i.clear_partial(&mut p);
                return Ok(left);
            }
        }
        match &i.frct {
            None => {
                if i.nonblock.load(Ordering::Relaxed) {
                    return Ok(i.ep.try_read(buf)?);
                }
                Ok(i.ep.read(buf, Self::deadline(&i.read_timeout))?)
            }
            Some(r) => {
                let nonblock = i.nonblock.load(Ordering::Relaxed);
                let deadline = Self::deadline(&i.read_timeout);
                let msg = match r.read_into(&i.ep, buf, deadline, nonblock)? {
                    frct::Got::Into(n) => return Ok(n),
                    frct::Got::Msg(m) => m,
                };
                if msg.len() > buf.len() {
                    let needed = msg.len();
                    i.keep_partial(msg, 0);
                    return Err(Error::BufferTooSmall { needed });
                }
                buf[..msg.len()].copy_from_slice(&msg);
                Ok(msg.len())
            }
        }
    }

    /// Read the next piece of a message: up to `buf.len()` bytes of the message being read
    /// (or of the next one). Returns the bytes copied and whether that ended the message.
    pub fn read_part(&self, buf: &mut [u8]) -> Result<(usize, bool), Error> {
        let i = &self.inner;
        let mut p = i.partial_lock();
        if p.msg.is_empty() {
            drop(p);
            let msg = i.next_message()?;
            p = i.partial_lock();
            p.msg = msg;
            p.off = 0;
        }
        let n = (p.msg.len() - p.off).min(buf.len());
        buf[..n].copy_from_slice(&p.msg[p.off..p.off + n]);
        p.off += n;
        let end = p.off == p.msg.len();
        if end {
            i.clear_partial(&mut p);
        } else {
            i.has_partial.store(true, Ordering::Release);
        }
        Ok((n, end))
    }

    /// Read as a byte stream, ignoring message boundaries: wait (as [`Flow::read`] does) for
    /// data, then fill `buf` with what is queued without waiting again. Returns the bytes
    /// read; a message that does not fit is continued by the next call.
    pub fn read_stream(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut n = 0;
        while n < buf.len() {
            let r = if n == 0 {
                self.read_part(&mut buf[n..])
            } else {
                let i = &self.inner;
                let avail = i.has_partial.load(Ordering::Acquire) || i.message_ready();
                if !avail {
                    break;
                }
                self.read_part(&mut buf[n..])
            };
            match r {
                Ok((k, _)) => n += k,
                // What was read is returned; the error comes again with the next call.
                Err(_) if n > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Write `buf` as one message; returns its length. A full flow is backpressure: a
    /// blocking write waits for room (or for the peer's window to open), a non-blocking one
    /// returns [`Error::WouldBlock`].
    pub fn write(&self, buf: &[u8]) -> Result<usize, Error> {
        let i = &self.inner;
        if buf.len() > i.mtu {
            return Err(Error::TooBig {
                len: buf.len(),
                max: i.mtu,
            });
        }
        let nonblock = i.nonblock.load(Ordering::Relaxed);
        match &i.frct {
            None if nonblock => i.ep.try_write(buf)?,
            None => i.ep.write(buf, Self::deadline(&i.write_timeout))?,
            Some(_) if buf.is_empty() => {
                return Err(Error::Frct("FRCT flows carry no empty messages".into()))
            }
            Some(r) => r.write(&i.ep, buf, Self::deadline(&i.write_timeout), nonblock)?,
        }
        Ok(buf.len())
    }

    /// Write one message that `fill` writes in place: it gets a buffer of `max_len` bytes
    /// and returns how many of them make the message (at most `max_len`; none: nothing is
    /// sent). Returns the message's length. On a flow with FRCT, a message that fits one
    /// packet ([`Flow::packet_payload`]) is written straight into FRCT's send buffer, which
    /// spares the copy [`Flow::write`] makes of it; there `fill` is called once the flow
    /// accepts the message (after waiting for room, as `write` does), and not at all if the
    /// write fails. On other flows `fill` runs first, and its message is then written as by
    /// `write`. A bulk sender can thus read its input straight into the flow:
    ///
    /// ```no_run
    /// use o7s::{Flow, QosSpec};
    /// use std::io::Read;
    /// let flow = Flow::alloc("sink", QosSpec::DATA, None)?;
    /// let mut input = std::io::stdin();
    /// let n = flow.write_with(flow.packet_payload(), |b| input.read(b).unwrap_or(0))?;
    /// # Ok::<(), o7s::Error>(())
    /// ```
    pub fn write_with(
        &self,
        max_len: usize,
        mut fill: impl FnMut(&mut [u8]) -> usize,
    ) -> Result<usize, Error> {
        let i = &self.inner;
        if max_len > i.mtu {
            return Err(Error::TooBig {
                len: max_len,
                max: i.mtu,
            });
        }
        match &i.frct {
            Some(r) if max_len > 0 => {
                let nonblock = i.nonblock.load(Ordering::Relaxed);
                let deadline = Self::deadline(&i.write_timeout);
                r.write_with(&i.ep, max_len, &mut fill, deadline, nonblock)
            }
            _ => {
                // Raw flows (the ring takes the message as it is) and empty messages: in a
                // buffer of its own, written as `write` writes it.
                let mut b = vec![0u8; max_len];
                let n = fill(&mut b).min(max_len);
                if n == 0 {
                    return Ok(0);
                }
                self.write(&b[..n])
            }
        }
    }

    /// Write `buf` as one message without waiting, whatever the flow's blocking mode:
    /// [`Error::WouldBlock`] when the flow is full (a router drops rather than stall every
    /// other flow behind one slow next hop).
    pub fn try_write(&self, buf: &[u8]) -> Result<usize, Error> {
        let i = &self.inner;
        if buf.len() > i.mtu {
            return Err(Error::TooBig {
                len: buf.len(),
                max: i.mtu,
            });
        }
        match &i.frct {
            None => i.ep.try_write(buf)?,
            Some(_) if buf.is_empty() => {
                return Err(Error::Frct("FRCT flows carry no empty messages".into()))
            }
            Some(r) => r.write(&i.ep, buf, None, true)?,
        }
        Ok(buf.len())
    }

    /// Bytes written to the flow that its peer (the IPCP, or the other application of a
    /// local flow) has not taken yet.
    pub fn tx_queued(&self) -> usize {
        self.inner.ep.tx_queued()
    }

    /// True once the peer is gone (deallocated, exited, or the layer lost the flow).
    pub fn is_down(&self) -> bool {
        self.inner.ep.is_down() || self.inner.frct.as_ref().is_some_and(|r| r.failed())
    }

    /// Deallocate the flow now and report whether the IRMd agreed.
    pub fn dealloc(self) -> Result<(), Error> {
        self.inner.release(false)
    }
}

impl FlowInner {
    fn partial_lock(&self) -> std::sync::MutexGuard<'_, Partial> {
        self.partial.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn keep_partial(&self, msg: Vec<u8>, off: usize) {
        let mut p = self.partial_lock();
        p.msg = msg;
        p.off = off;
        self.has_partial.store(true, Ordering::Release);
    }

    fn clear_partial(&self, p: &mut Partial) {
        p.msg = Vec::new();
        p.off = 0;
        self.has_partial.store(false, Ordering::Release);
    }

    /// The next whole message, as the flow's blocking mode and timeout say.
    fn next_message(&self) -> Result<Vec<u8>, Error> {
        let nonblock = self.nonblock.load(Ordering::Relaxed);
        let deadline = Flow::deadline(&self.read_timeout);
        match &self.frct {
            Some(r) => r.read(&self.ep, deadline, nonblock),
            None => {
                let mut buf = vec![0u8; self.mtu];
                let n = if nonblock {
                    self.ep.try_read(&mut buf)?
                } else {
                    self.ep.read(&mut buf, deadline)?
                };
                buf.truncate(n);
                Ok(buf)
            }
        }
    }

    /// A whole message can be read without waiting.
    pub(crate) fn message_ready(&self) -> bool {
        if self.has_partial.load(Ordering::Acquire) {
            return true;
        }
        match &self.frct {
            Some(r) => r.poll_readable(&self.ep),
            None => self.ep.rx_ready(),
        }
    }

    /// Deallocate the flow; with `quiet`, without waiting for the IRMd's answer (when the
    /// process's main connection can carry it).
    fn release(&self, quiet: bool) -> Result<(), Error> {
        if self.released.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        if let Some(r) = &self.frct {
            let linger = *self.linger.lock().unwrap_or_else(|e| e.into_inner());
            r.close(&self.ep, linger);
        }
        if quiet && client::send_quiet(&IrmReq::FlowRelease { flow_id: self.id }) {
            return Ok(());
        }
        match client::call_ok(&IrmReq::FlowDealloc { flow_id: self.id }) {
            // The peer or the layer already took it down: the flow is gone either way.
            Err(Error::Irm(crate::IrmError::NoSuchFlow { .. })) => Ok(()),
            other => other,
        }
    }
}

impl Drop for Flow {
    /// Deallocates the flow without waiting for the IRMd (see [`Flow::dealloc`] to know
    /// whether it agreed).
    fn drop(&mut self) {
        if let Err(e) = self.inner.release(true) {
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
