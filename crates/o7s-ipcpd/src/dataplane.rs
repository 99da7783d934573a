//! The data path of an IPCP that carries application flows over a network: the IPCP's ends
//! of its flows, one thread that drains them towards the network, and delivery of what
//! arrives from the network into the flows. What a packet looks like on the wire is the
//! `Egress`'s business; this room only moves bytes between rings and the egress.

use o7s_shm::{Held, ParkStore, ShmError};
use rustix::event::epoll;
use rustix::fd::OwnedFd;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// The IPCP's end of a flow as the IRMd hands it over: the region set (0: none) and four fds,
/// or no fds for the end of that set parked here (see [`Dataplane::add`]).
pub type Handed = (u64, Vec<OwnedFd>);

/// A flow request for `hash` arrived from `from`: ask the IRMd for a process to accept it
/// (waiting at most `wait`). The flow's id and the IPCP's end of it, or None when nobody
/// takes it (logged).
pub fn ask_acceptor(
    rpc: &o7s::ctrl::rpc::Rpc,
    hash: o7s_proto::NameHash,
    qos: o7s_proto::QosSpec,
    from: &dyn std::fmt::Display,
    wait: Duration,
) -> Option<(u64, Handed)> {
    use o7s::ctrl::msg::{IpcpNote, IpcpResp};
    let note = IpcpNote::FlowReqArr {
        hash,
        qos,
        local_peer: None,
    };
    match rpc.notify(note, &[], Some(wait)) {
        Ok((IpcpResp::FlowAccepted { flow_id, set }, fds)) => Some((flow_id, (set, fds))),
        Ok((IpcpResp::Err(e), _)) => {
            tracing::info!("flow request from {from} refused: {e}");
            None
        }
        Ok(_) | Err(_) => {
            warn!("the IRMd did not answer a flow request");
            None
        }
    }
}

/// As [`ask_acceptor`] without waiting: `done` gets the answer on the control connection's
/// reader thread (so it must not block), or at once if the note cannot be sent.
pub fn ask_acceptor_then(
    rpc: &o7s::ctrl::rpc::Rpc,
    hash: o7s_proto::NameHash,
    qos: o7s_proto::QosSpec,
    from: String,
    done: impl FnOnce(Option<(u64, Handed)>) + Send + 'static,
) {
    use o7s::ctrl::msg::{IpcpNote, IpcpResp};
    let note = IpcpNote::FlowReqArr {
        hash,
        qos,
        local_peer: None,
    };
    // `done` goes either into the callback or, if sending fails, is called here.
    let done = Arc::new(std::sync::Mutex::new(Some(done)));
    let d = done.clone();
    let sent = rpc.notify_then(note, &[], move |answer| {
        let Some(done) = d.lock().ok().and_then(|mut d| d.take()) else {
            return;
        };
        match answer {
            Some((IpcpResp::FlowAccepted { flow_id, set }, fds)) => {
                done(Some((flow_id, (set, fds))))
            }
            Some((IpcpResp::Err(e), _)) => {
                tracing::info!("flow request from {from} refused: {e}");
                done(None)
            }
            _ => {
                warn!("the IRMd did not answer a flow request");
                done(None)
            }
        }
    });
    if let Err(e) = sent {
        warn!("cannot pass a flow request to the IRMd: {e}");
        if let Some(done) = done.lock().ok().and_then(|mut d| d.take()) {
            done(None);
        }
    }
}

/// Sends a flow's packets to its peer.
pub trait Egress: Send + Sync + 'static {
    /// Where a flow's packets go (address and the peer's endpoint id).
    type Peer: Send + Sync + Clone + std::fmt::Debug + 'static;
    /// Send one packet: the payload is `buf[off..]`, and `buf[..off]` is free headroom the
    /// egress may fill with its header.
    fn send(&self, peer: &Self::Peer, buf: &mut [u8], off: usize);
    /// A flow went away: locally (the application deallocated it or died), or its peer
    /// fell silent for longer than the flow's peer timeout (`timed_out`).
    fn closed(&self, _flow_id: u64, _peer: &Self::Peer, _timed_out: bool) {}
    /// Push out whatever `send` queued (called before the egress thread sleeps and after
    /// every round over the flows).
    fn flush(&self) {}
    /// Whether a packet to `peer` would find room below now. When it would not, the flow's
    /// packets stay in its ring, so that its writer feels the back-pressure instead of losing
    /// them one system further, and the flow is tried again after [`BLOCKED_RETRY`].
    fn ready(&self, _peer: &Self::Peer) -> bool {
        true
    }
    /// Congestion avoidance: a packet of `len` bytes of a flow to `peer` just went; the flow
    /// may send its next one not before the returned time (None: at once).
    fn pace(&self, _peer: &Self::Peer, _len: usize) -> Option<Instant> {
        None
    }
}

/// The IPCP's end of one application flow.
pub struct Port<P> {
    pub flow_id: u64,
    pub ep: Held,
    pub peer: P,
    /// The QoS peer timeout: silence for this long takes the flow down; an idle flow sends a
    /// keepalive (an empty packet, as the prototype) every quarter of it. Zero: never.
    timeout: Duration,
    /// When something last arrived from the peer / was sent to it (ms on the dataplane clock).
    last_rx: AtomicU64,
    last_tx: AtomicU64,
    /// Packets from the network that found the application's ring full.
    pub rx_drops: AtomicU64,
    pub rx_packets: AtomicU64,
    pub tx_packets: AtomicU64,
    /// Congestion avoidance holds the flow until this time (µs on the dataplane clock).
    hold_until: AtomicU64,
}

pub struct Dataplane<E: Egress> {
    egress: Arc<E>,
    ports: RwLock<HashMap<u64, Arc<Port<E::Peer>>>>,
    epoll: OwnedFd,
    epoch: Instant,
    spin_credit: std::sync::atomic::AtomicU32,
    spin_probe: std::sync::atomic::AtomicU32,
    /// Told the id of every flow whose peer timed out.
    on_timeout: std::sync::OnceLock<Box<dyn Fn(u64) + Send + Sync>>,
    /// Set by [`Dataplane::stop`]: the threads end, no flow is taken any more.
    stopped: AtomicBool,
    /// An eventfd in `epoll`, written once by [`Dataplane::stop`] to wake the egress thread.
    wake: OwnedFd,
    /// The IPCP's ends of ended flows, kept for the IRMd to reuse (see `o7s_shm::park`).
    parked: Arc<ParkStore>,
}

/// Most ends of ended flows an IPCP keeps for reuse.
const PARKED_MAX: usize = 256;

/// How long a receiving thread waits for an application's answer (see `catch_answers`).
const ANSWER_SPIN: Duration = Duration::from_micros(40);
/// How often peer timeouts and keepalives are checked.
const KEEPALIVE_TICK: Duration = Duration::from_millis(50);

/// How long a receiving thread that keeps a flow at hand (to receive into its ring) waits
/// for the network before it checks that the flow is still there: a flow taken down must
/// not be kept open by it.
const IDLE_CHECK: Duration = Duration::from_millis(50);

/// Wait until `fd` is readable, at most [`IDLE_CHECK`].
pub fn wait_readable(fd: impl rustix::fd::AsFd) {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let ts = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: IDLE_CHECK.as_nanos() as i64,
    };
    if let Err(e) = poll(&mut fds, Some(&ts)) {
        debug!("poll: {e}");
    }
}

/// The shortest congestion-avoidance hold worth a timer: a shorter one lets the packet go
/// now, as part of a small catch-up burst. The egress thread's epoll waits to the
/// microsecond (`epoll_pwait2`), and every hold costs it a wake-up.
const HOLD_MIN: Duration = Duration::from_micros(100);

/// How soon a flow whose packets found no room below ([`Egress::ready`]) is tried again.
const BLOCKED_RETRY: Duration = Duration::from_micros(200);

/// How many packets one flow may send in a row before the others get a turn.
const BURST: usize = 64;

impl<E: Egress> Dataplane<E> {
    pub fn new(egress: Arc<E>) -> std::io::Result<Arc<Self>> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let wake = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        // Not a flow's: the egress thread only wakes for it (see `stop`).
        let data = epoll::EventData::new_u64(u64::MAX);
        epoll::add(&epoll, &wake, data, epoll::EventFlags::IN)?;
        let dp = Arc::new(Dataplane {
            egress,
            ports: RwLock::new(HashMap::new()),
            epoll,
            epoch: Instant::now(),
            spin_credit: std::sync::atomic::AtomicU32::new(4),
            spin_probe: std::sync::atomic::AtomicU32::new(0),
            on_timeout: std::sync::OnceLock::new(),
            stopped: AtomicBool::new(false),
            wake,
            parked: ParkStore::new(PARKED_MAX),
        });
        let me = dp.clone();
        std::thread::Builder::new()
            .name("egress".into())
            .spawn(move || me.egress_loop())?;
        let me = Arc::downgrade(&dp);
        let keepalive = std::thread::Builder::new()
            .name("keepalive".into())
            .spawn(move || keepalive_loop(me));
        if let Err(e) = keepalive {
            dp.stop();
            return Err(e);
        }
        Ok(dp)
    }

    /// End the egress and keepalive threads (the egress at once, the keepalive within a
    /// tick) and drop every flow, which closes the IPCP's ends of them (their other ends see
    /// the flow go down) unless a receiving thread still holds one for a moment. Flows
    /// offered later are refused. Idempotent.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(e) = rustix::io::write(&self.wake, &1u64.to_ne_bytes()) {
            warn!("cannot wake the egress thread: {e}");
        }
        let ports: Vec<_> = self.write_ports().drain().map(|(_, p)| p).collect();
        for p in ports {
            self.unregister(&p);
            self.egress.closed(p.flow_id, &p.peer, false);
        }
    }

    /// Whether [`Dataplane::stop`] was called: threads that receive for the IPCP end.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Take over the IPCP's end of flow `flow_id`: the four fds the IRMd sent, or without
    /// fds the end of region set `set` parked here (see `o7s_shm::park`). The IPCP is side
    /// B of a flow an application allocates, side A of one that arrives from the network.
    pub fn add(
        &self,
        flow_id: u64,
        (set, fds): Handed,
        side: o7s_shm::Side,
        peer: E::Peer,
        timeout: Duration,
    ) -> Result<Arc<Port<E::Peer>>, String> {
        let ep = self
            .parked
            .open(set, side, fds)
            .map_err(|e| e.to_string())?;
        let now = self.now_ms();
        let port = Arc::new(Port {
            flow_id,
            ep,
            peer,
            timeout,
            last_rx: AtomicU64::new(now),
            last_tx: AtomicU64::new(now),
            rx_drops: AtomicU64::new(0),
            rx_packets: AtomicU64::new(0),
            tx_packets: AtomicU64::new(0),
            hold_until: AtomicU64::new(0),
        });
        let mut ports = self.write_ports();
        // Checked under the lock [`Dataplane::stop`] empties the flows with, so a flow is
        // either refused here or dropped there.
        if self.stopped.load(Ordering::SeqCst) {
            return Err("the IPCP is stopping".into());
        }
        // Registered and added under one lock: the egress thread, which lists the flows
        // under it, never gets an event for a flow it does not know (it cannot clear such
        // an event, and spun on it while this thread was off its core), and removing the
        // flow (which finds it only once added) cannot come between the two.
        if let Err(e) = self.register(&port) {
            self.unregister(&port);
            return Err(e);
        }
        ports.insert(flow_id, port.clone());
        Ok(port)
    }

    fn register(&self, port: &Port<E::Peer>) -> Result<(), String> {
        let data = epoll::EventData::new_u64(port.flow_id);
        epoll::add(&self.epoll, port.ep.wait_fd(), data, epoll::EventFlags::IN)
            .map_err(|e| e.to_string())?;
        let flags = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
        epoll::add(&self.epoll, port.ep.live_fd(), data, flags).map_err(|e| e.to_string())?;
        // The egress thread looks at the liveness fd when the epoll says so, not every round.
        port.ep.watch_live();
        // A packet written before we armed must not wait for the next one.
        let _ = port.ep.arm(true, None);
        // Nor an end the application closed before this one was taken (a reused region
        // whose peer parked while this end was still on its way here: it woke nobody).
        if port.ep.is_down() {
            port.ep.wake_self();
        }
        Ok(())
    }

    fn unregister(&self, port: &Port<E::Peer>) {
        let _ = epoll::delete(&self.epoll, port.ep.wait_fd());
        let _ = epoll::delete(&self.epoll, port.ep.live_fd());
    }

    fn write_ports(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, Arc<Port<E::Peer>>>> {
        self.ports.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, flow_id: u64) -> Option<Arc<Port<E::Peer>>> {
        self.ports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&flow_id)
            .cloned()
    }

    /// Forget a flow (its fds close with the last reference).
    pub fn remove(&self, flow_id: u64) -> Option<Arc<Port<E::Peer>>> {
        let port = self.write_ports().remove(&flow_id)?;
        self.unregister(&port);
        Some(port)
    }

    pub fn len(&self) -> usize {
        self.ports.read().map(|p| p.len()).unwrap_or(0)
    }

    /// Call `f` with the id of every flow whose peer times out (once; later calls are
    /// ignored).
    pub fn on_timeout(&self, f: impl Fn(u64) + Send + Sync + 'static) {
        let _ = self.on_timeout.set(Box::new(f));
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Congestion avoidance holds flow `p`: how long still (None: it may send).
    fn held(&self, p: &Port<E::Peer>) -> Option<Duration> {
        let until = p.hold_until.load(Ordering::Relaxed);
        let now = self.now_us();
        (until > now).then(|| Duration::from_micros(until - now))
    }

    /// Hand a packet from the network to the application. A full ring drops the packet (the
    /// network's loss, counted), so a slow reader never stalls the IPCP for other flows. An
    /// empty packet is a keepalive: it only proves the peer is there.
    pub fn deliver(&self, port: &Port<E::Peer>, payload: &[u8]) {
        port.last_rx.store(self.now_ms(), Ordering::Relaxed);
        if payload.is_empty() {
            return;
        }
        match port.ep.try_write(payload) {
            Ok(()) => {
                port.rx_packets.fetch_add(1, Ordering::Relaxed);
            }
            Err(ShmError::WouldBlock) | Err(ShmError::TooBig { .. }) => {
                port.rx_drops.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => debug!(flow = port.flow_id, "cannot deliver: {e}"),
        }
    }

    /// Whether `port` is still one of the flows (not removed since it was looked up).
    pub fn holds(&self, port: &Arc<Port<E::Peer>>) -> bool {
        self.get(port.flow_id)
            .is_some_and(|p| Arc::ptr_eq(&p, port))
    }

    /// A packet from the network was received straight into the application's ring of
    /// `port` (`Endpoint::try_write_with_opt`): count it as [`Self::deliver`] would.
    pub fn delivered_in_place(&self, port: &Port<E::Peer>) {
        port.last_rx.store(self.now_ms(), Ordering::Relaxed);
        port.rx_packets.fetch_add(1, Ordering::Relaxed);
    }

    /// Send up to [`BURST`] packets of flow `p`; returns how many went.
    fn drain_port(&self, p: &Arc<Port<E::Peer>>) -> usize {
        let mut n = 0;
        while n < BURST {
            if self.held(p).is_some() {
                break;
            }
            let peer = &p.peer;
            if !self.egress.ready(peer) {
                let until = self.now_us() + BLOCKED_RETRY.as_micros() as u64;
                p.hold_until.store(until, Ordering::Relaxed);
                break;
            }
            // The packet is handed to the egress while the ring is still held, so two
            // threads draining one flow cannot reorder it.
            let sent = p.ep.try_read_with(|buf, off| {
                let len = buf.len().saturating_sub(off);
                self.egress.send(peer, buf, off);
                self.egress.pace(peer, len)
            });
            match sent {
                Ok(hold) => {
                    n += 1;
                    // A hold shorter than the egress thread's timer resolution would delay
                    // the flow's next packet by a whole tick: let it go now, as a small
                    // catch-up burst, and hold only for longer gaps.
                    if let Some(t) = hold {
                        let wait = t.saturating_duration_since(Instant::now());
                        if wait >= HOLD_MIN {
                            let until = self.now_us() + wait.as_micros() as u64;
                            p.hold_until.store(until, Ordering::Relaxed);
                        }
                    }
                }
                Err(ShmError::WouldBlock) => break,
                Err(ShmError::Down) => {
                    self.closed(p);
                    break;
                }
                Err(e) => {
                    warn!(flow = p.flow_id, "flow broken: {e}");
                    self.closed(p);
                    break;
                }
            }
        }
        if n > 0 {
            p.tx_packets.fetch_add(n as u64, Ordering::Relaxed);
            p.last_tx.store(self.now_ms(), Ordering::Relaxed);
        } else if p.ep.is_down() && !p.ep.rx_ready() {
            self.closed(p);
        }
        n
    }

    /// A receiving thread that keeps flow `last` at hand found nothing queued on its socket
    /// `fd`: it sends the applications' answers if it just `delivered`, else waits for the
    /// network, then lets go of the flow if it was taken down meanwhile (its end must not
    /// stay open here). `false`: the IPCP stopped, the thread ends.
    pub fn rx_idle(
        &self,
        fd: impl rustix::fd::AsFd,
        delivered: &mut bool,
        last: &mut Option<Arc<Port<E::Peer>>>,
    ) -> bool {
        if std::mem::take(delivered) {
            self.catch_answers();
            return true;
        }
        wait_readable(fd);
        if self.is_stopped() {
            return false;
        }
        if last.as_ref().is_some_and(|p| !self.holds(p)) {
            *last = None;
        }
        true
    }

    /// After delivering packets, the receiving thread waits a moment for the applications'
    /// answers and sends them itself, which spares the egress thread a wake-up per answer
    /// (a request/response round trip through an IPCP then costs one wake-up per hop, not
    /// two). Adaptive like the rings' spinning: a wait that catches nothing spends credit.
    pub fn catch_answers(&self) {
        let credit = self.spin_credit.load(Ordering::Relaxed);
        if credit == 0
            && !self
                .spin_probe
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(16)
        {
            return;
        }
        let end = Instant::now() + ANSWER_SPIN;
        while Instant::now() < end {
            let ports: Vec<Arc<Port<E::Peer>>> = self
                .ports
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .filter(|p| p.ep.rx_ready())
                .cloned()
                .collect();
            let mut sent = 0;
            for p in &ports {
                sent += self.drain_port(p);
            }
            if sent > 0 {
                self.egress.flush();
                self.spin_credit.store(4, Ordering::Relaxed);
                return;
            }
            // The application we wait for may need this core (two cores, four busy
            // threads in a bulk transfer): yield instead of spinning on it.
            std::thread::yield_now();
        }
        self.spin_credit
            .store(credit.saturating_sub(1), Ordering::Relaxed);
    }

    /// Drain every flow with packets towards the network; sleep when all are empty.
    fn egress_loop(self: Arc<Self>) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
        // Flows whose eventfd or liveness fd the last wait reported: only theirs are read
        // and polled (the others' are quiet), which keeps a round over many idle flows free
        // of system calls.
        let mut hot: std::collections::HashSet<u64> = std::collections::HashSet::new();
        while !self.is_stopped() {
            let ports: Vec<Arc<Port<E::Peer>>> = self
                .ports
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned()
                .collect();
            let mut busy = false;
            // The soonest a flow held by congestion avoidance may send again.
            let mut wake: Option<Duration> = None;
            for p in &ports {
                p.ep.disarm();
                if hot.contains(&p.flow_id) {
                    p.ep.drain_wakeups();
                    p.ep.check_live();
                }
                if self.drain_port(p) == BURST {
                    busy = true;
                }
                if let Some(h) = self.held(p) {
                    wake = Some(wake.map_or(h, |w| w.min(h)));
                }
            }
            hot.clear();
            self.egress.flush();
            if busy {
                continue;
            }
            let mut idle = true;
            for p in &ports {
                // A held flow's packets wait for the timer, not for a wake-up.
                if self.held(p).is_some() {
                    continue;
                }
                if !p.ep.arm(true, None) {
                    idle = false;
                }
            }
            if !idle {
                continue;
            }
            // Hold no flow while asleep: a flow removed meanwhile must close at once.
            drop(ports);
            events.clear();
            let spare = rustix::buffer::spare_capacity(&mut events);
            let timeout = wake.map(|w| {
                rustix::time::Timespec::try_from(w.max(HOLD_MIN)).unwrap_or(
                    rustix::time::Timespec {
                        tv_sec: 1,
                        tv_nsec: 0,
                    },
                )
            });
            match epoll::wait(&self.epoll, spare, timeout.as_ref()) {
                Ok(_) => hot.extend(
                    events
                        .iter()
                        .map(|e| e.data.u64())
                        .filter(|&id| id != u64::MAX),
                ),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    warn!("egress epoll: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }

    fn closed(&self, p: &Arc<Port<E::Peer>>) {
        if self.remove(p.flow_id).is_some() {
            debug!(flow = p.flow_id, "flow closed locally");
            self.egress.closed(p.flow_id, &p.peer, false);
        }
    }

    /// Take down flows whose peer fell silent; send keepalives on idle ones.
    fn keepalives(&self) {
        let now = self.now_ms();
        let ports: Vec<Arc<Port<E::Peer>>> = self
            .ports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|p| !p.timeout.is_zero())
            .cloned()
            .collect();
        let mut sent = false;
        for p in ports {
            let t = p.timeout.as_millis() as u64;
            if now.saturating_sub(p.last_rx.load(Ordering::Relaxed)) > t {
                if self.remove(p.flow_id).is_some() {
                    warn!(flow = p.flow_id, "peer silent for {t} ms: flow down");
                    self.egress.closed(p.flow_id, &p.peer, true);
                    if let Some(f) = self.on_timeout.get() {
                        f(p.flow_id);
                    }
                }
                continue;
            }
            if now.saturating_sub(p.last_tx.load(Ordering::Relaxed)) > t / 4 {
                let mut buf = [0u8; 128];
                self.egress.send(&p.peer, &mut buf, 128);
                p.last_tx.store(now, Ordering::Relaxed);
                sent = true;
            }
        }
        if sent {
            self.egress.flush();
        }
    }
}

fn keepalive_loop<E: Egress>(dp: std::sync::Weak<Dataplane<E>>) {
    let mut ticks: u32 = 0;
    loop {
        std::thread::sleep(KEEPALIVE_TICK);
        match dp.upgrade() {
            Some(dp) if !dp.is_stopped() => {
                dp.keepalives();
                ticks = ticks.wrapping_add(1);
                // Parked ends nobody claims go within a second of their time.
                if ticks.is_multiple_of(20) {
                    dp.parked.expire();
                }
            }
            _ => return,
        }
    }
}
