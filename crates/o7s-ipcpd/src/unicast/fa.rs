//! The flow allocator (endpoint 0): flow requests and replies between members, endpoint ids
//! of flows, and the egress that puts an application's packets on the layer.

use super::Uni;
use crate::dataplane::Egress;
use o7s::ctrl::msg::IrmError;
use o7s::ctrl::timer::{self, TimerId};
use o7s_proto::ca::CaCtx;
use o7s_proto::wire::dt::{Qc, FA_EID, RES_EIDS};
use o7s_proto::wire::fa::{FaPacket, FaRepr};
use o7s_proto::{NameHash, QosCube, QosSpec};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// How long a flow request waits for the reply (the far side may have to start a program).
pub const REPLY_WAIT: Duration = Duration::from_secs(12);

/// Where a flow's packets go: the peer's address and endpoint id, stored at allocation.
#[derive(Clone, Debug)]
pub struct UniPeer {
    pub addr: u64,
    pub eid: u64,
    pub local_eid: u64,
    pub qc: u8,
}

/// The flow allocator's state.
#[derive(Default)]
pub struct Fa {
    /// Our endpoint ids -> flow ids.
    pub eids: Mutex<HashMap<u64, u64>>,
    /// Requests waiting for a reply, by our endpoint id.
    pending: Mutex<HashMap<u64, Pending>>,
    pub refused: std::sync::atomic::AtomicU64,
    pub bad: std::sync::atomic::AtomicU64,
    /// Congestion avoidance state per flow, by our endpoint id.
    pub ca: Mutex<HashMap<u64, CaCtx>>,
    pub updates_rx: std::sync::atomic::AtomicU64,
    pub updates_tx: std::sync::atomic::AtomicU64,
}

/// A reply to a flow request: the response and the responder's endpoint id.
type FlowReply = (i32, u64);

/// A flow request waiting for its reply: what to do with the reply (`None` when none came
/// in time), and the deadline's timer.
struct Pending {
    done: Box<dyn FnOnce(Option<FlowReply>) + Send>,
    timer: Option<TimerId>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cube of the data transfer header for a flow of `qos`.
pub fn cube_of(qos: &QosSpec) -> u8 {
    match qos.cube() {
        Some(QosCube::Voice) => Qc::Voice as u8,
        Some(QosCube::Video) => Qc::Video as u8,
        _ => Qc::Be as u8,
    }
}

/// Replies refuse with these (negative errno values, as the prototype).
const REFUSE_NO_NAME: i32 = -2;
const REFUSE: i32 = -1;

impl Fa {
    /// A fresh random endpoint id above the reserved ones.
    fn new_eid(&self, flow_id: u64) -> u64 {
        let mut eids = lock(&self.eids);
        loop {
            let e: u64 = rand::random();
            if e >= RES_EIDS && !eids.contains_key(&e) {
                eids.insert(e, flow_id);
                return e;
            }
        }
    }
}

impl Uni {
    fn fa_send(self: &Arc<Self>, dst: u64, msg: &FaRepr<'_>) {
        let hdr = self.fwd.dtp.header_len();
        let mut buf = vec![0u8; hdr + msg.buffer_len()];
        if msg.emit(&mut buf[hdr..]).is_ok() {
            self.send_dt(dst, Qc::Be as u8, FA_EID, &mut buf, hdr);
        }
    }

    /// The IRMd asks for a flow to the name with `hash`: look it up (which may wait for
    /// the directory), then as [`Uni::flow_alloc_to`].
    pub fn flow_alloc(
        self: &Arc<Self>,
        flow_id: u64,
        hash: &NameHash,
        qos: QosSpec,
        fds: crate::dataplane::Handed,
        done: impl FnOnce(Result<(), IrmError>) + Send + 'static,
    ) {
        match self.resolve(hash) {
            Ok(addrs) => self.flow_alloc_to(&addrs, flow_id, hash, qos, fds, done),
            Err(e) => done(Err(e)),
        }
    }

    /// Send the flow request for `hash` to the first of `addrs` (where the name was found);
    /// `done` gets the outcome on the thread that receives the reply (or at the deadline,
    /// on the timer thread). Nothing waits here.
    pub fn flow_alloc_to(
        self: &Arc<Self>,
        addrs: &[u64],
        flow_id: u64,
        hash: &NameHash,
        qos: QosSpec,
        fds: crate::dataplane::Handed,
        done: impl FnOnce(Result<(), IrmError>) + Send + 'static,
    ) {
        let Some(&addr) = addrs.first() else {
            return done(Err(IrmError::NameNotFound {
                name: hash.to_string(),
            }));
        };
        let eid = self.fa.new_eid(flow_id);
        let me = self.clone();
        let h = hash.clone();
        let on_reply = move |reply: Option<(i32, u64)>| {
            let r = me.flow_replied(addr, eid, flow_id, &h, qos, fds, reply);
            done(r)
        };
        lock(&self.fa.pending).insert(
            eid,
            Pending {
                done: Box::new(on_reply),
                timer: None,
            },
        );
        let weak = Arc::downgrade(self);
        let t = timer::at(Instant::now() + REPLY_WAIT, move || {
            if let Some(me) = weak.upgrade() {
                let p = lock(&me.fa.pending).remove(&eid);
                if let Some(p) = p {
                    (p.done)(None);
                }
            }
        });
        match lock(&self.fa.pending).get_mut(&eid) {
            Some(p) => p.timer = Some(t),
            // Answered already.
            None => {
                timer::cancel(t);
            }
        }
        self.fa_send(
            addr,
            &FaRepr::FlowReq {
                s_addr: self.addr,
                s_eid: eid,
                qos,
                hash: hash.clone(),
                data: &[],
            },
        );
    }

    /// The reply (or none) to our flow request from endpoint `eid` to `addr`: the flow
    /// takes its place on the data path, or is refused.
    #[allow(clippy::too_many_arguments)]
    fn flow_replied(
        self: &Arc<Self>,
        addr: u64,
        eid: u64,
        flow_id: u64,
        hash: &NameHash,
        qos: QosSpec,
        fds: crate::dataplane::Handed,
        reply: Option<(i32, u64)>,
    ) -> Result<(), IrmError> {
        let fail = |why: String| {
            self.forget_eid(eid);
            IrmError::IpcpFailed {
                name: format!("layer {}", self.layer.name),
                why,
            }
        };
        match reply {
            None => Err(fail(format!(
                "no answer from address {addr:#x} to the flow request within {} s",
                REPLY_WAIT.as_secs()
            ))),
            Some((0, d_eid)) => {
                let peer = UniPeer {
                    addr,
                    eid: d_eid,
                    local_eid: eid,
                    qc: cube_of(&qos),
                };
                let timeout = Duration::from_millis(u64::from(qos.timeout));
                self.new_ca(eid);
                self.dp
                    .add(flow_id, fds, o7s_shm::Side::B, peer, timeout)
                    .map_err(|e| {
                        lock(&self.fa.ca).remove(&eid);
                        fail(e)
                    })?;
                debug!(
                    flow = flow_id,
                    "flow on eids ({eid:#x}, {d_eid:#x}) with {addr:#x}"
                );
                Ok(())
            }
            Some((REFUSE_NO_NAME, _)) => {
                self.forget_eid(eid);
                self.forget_resolved(hash);
                Err(IrmError::NameNotFound {
                    name: hash.to_string(),
                })
            }
            Some((code, _)) => Err(fail(format!(
                "address {addr:#x} refused the flow (response {code}): nobody accepted it there"
            ))),
        }
    }

    /// A flow allocator message for us.
    pub fn fa_packet(self: &Arc<Self>, payload: &[u8]) {
        let hash_len = self.layer.hash.hash_len();
        let parsed = FaPacket::new_checked(payload).and_then(|p| FaRepr::parse(&p, hash_len));
        let msg = match parsed {
            Ok(m) => m,
            Err(_) => {
                self.fa.bad.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        match msg {
            FaRepr::FlowReq {
                s_addr,
                s_eid,
                qos,
                hash,
                ..
            } => {
                if s_addr == 0 || s_eid < RES_EIDS {
                    self.fa.bad.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                self.flow_req(s_addr, s_eid, qos, hash);
            }
            FaRepr::FlowReply {
                r_eid,
                s_eid,
                response,
                ..
            } => {
                // Only a pending request's own (random, 64-bit) endpoint id matches: a forged
                // or late reply changes nothing. An acceptance must name a usable endpoint.
                let p = {
                    let mut pending = lock(&self.fa.pending);
                    match pending.get(&r_eid) {
                        Some(_) if response != 0 || s_eid >= RES_EIDS => pending.remove(&r_eid),
                        _ => None,
                    }
                };
                match p {
                    Some(p) => {
                        if let Some(t) = p.timer {
                            timer::cancel(t);
                        }
                        (p.done)(Some((response, s_eid)));
                    }
                    None => {
                        self.fa.bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            FaRepr::FlowUpdate { r_eid, ece } => {
                // Congestion feedback for a flow we send on; an unknown endpoint id changes
                // nothing.
                match lock(&self.fa.ca).get_mut(&r_eid) {
                    Some(ctx) => {
                        ctx.on_update(ece);
                        self.fa.updates_rx.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        self.fa.bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// A flow request from `s_addr`: ask the IRMd for an acceptor, then answer. The answer
    /// goes out from the control connection's reader thread when the IRMd has one: nothing
    /// waits here.
    fn flow_req(self: &Arc<Self>, s_addr: u64, s_eid: u64, qos: QosSpec, hash: NameHash) {
        if !lock(&self.registered).contains_key(&hash) {
            self.fa.refused.fetch_add(1, Ordering::Relaxed);
            debug!("flow request from {s_addr:#x} for a name not registered here");
            self.flow_reply(s_addr, s_eid, REFUSE_NO_NAME, 0);
            return;
        }
        let me = self.clone();
        let from = format!("{s_addr:#x}");
        crate::dataplane::ask_acceptor_then(&self.rpc, hash, qos, from, move |accepted| {
            let Some((flow_id, fds)) = accepted else {
                me.flow_reply(s_addr, s_eid, REFUSE, 0);
                return;
            };
            let eid = me.fa.new_eid(flow_id);
            let peer = UniPeer {
                addr: s_addr,
                eid: s_eid,
                local_eid: eid,
                qc: cube_of(&qos),
            };
            let timeout = Duration::from_millis(u64::from(qos.timeout));
            me.new_ca(eid);
            match me.dp.add(flow_id, fds, o7s_shm::Side::A, peer, timeout) {
                Ok(_) => me.flow_reply(s_addr, s_eid, 0, eid),
                Err(e) => {
                    warn!("cannot take flow {flow_id}: {e}");
                    me.forget_eid(eid);
                    me.flow_reply(s_addr, s_eid, REFUSE, 0);
                }
            }
        });
    }

    fn flow_reply(self: &Arc<Self>, s_addr: u64, s_eid: u64, response: i32, responder: u64) {
        self.fa_send(
            s_addr,
            &FaRepr::FlowReply {
                r_eid: s_eid,
                s_eid: responder,
                response,
                data: &[],
            },
        );
    }

    fn new_ca(&self, eid: u64) {
        let ctx = self.layer.uni.cong_avoid.new_ctx(Instant::now());
        lock(&self.fa.ca).insert(eid, ctx);
    }

    /// Forget our endpoint id `eid` and its congestion state.
    pub fn forget_eid(&self, eid: u64) {
        lock(&self.fa.eids).remove(&eid);
        lock(&self.fa.ca).remove(&eid);
    }

    /// Data for endpoint `eid` that arrived marked `ecn`: to its flow, or dropped without a
    /// word. Congestion seen on the way is echoed to the sender when the policy says so.
    pub fn to_flow(self: &Arc<Self>, eid: u64, ecn: u8, payload: &[u8]) {
        let flow = lock(&self.fa.eids).get(&eid).copied();
        let Some(p) = flow.and_then(|id| self.dp.get(id)) else {
            self.fwd.stats.unknown_eid.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // The application's ring is the last queue on the way: a reader slower than the
        // sender marks congestion as a forwarder's full lower flow does (o7s: the prototype
        // drops what the reader cannot take without telling the sender).
        let ecn = ecn | self.fwd.queue_mark(p.ep.tx_queued(), payload.len());
        self.dp.deliver(&p, payload);
        if payload.is_empty() {
            return;
        }
        let ece = lock(&self.fa.ca)
            .get_mut(&eid)
            .and_then(|c| c.on_receive(ecn, payload.len()));
        if let Some(ece) = ece {
            self.fa.updates_tx.fetch_add(1, Ordering::Relaxed);
            self.fa_send(
                p.peer.addr,
                &FaRepr::FlowUpdate {
                    r_eid: p.peer.eid,
                    ece,
                },
            );
        }
    }
}

/// Puts the packets of applications' flows on the layer.
#[derive(Default)]
pub struct UniEgress {
    pub uni: OnceLock<Weak<Uni>>,
}

impl Egress for UniEgress {
    type Peer = UniPeer;

    fn send(&self, peer: &UniPeer, buf: &mut [u8], off: usize) {
        if let Some(u) = self.uni.get().and_then(Weak::upgrade) {
            u.send_dt(peer.addr, peer.qc, peer.eid, buf, off);
        }
    }

    fn closed(&self, flow_id: u64, peer: &UniPeer, _timed_out: bool) {
        if let Some(u) = self.uni.get().and_then(Weak::upgrade) {
            let ours = lock(&u.fa.eids).get(&peer.local_eid) == Some(&flow_id);
            if ours {
                u.forget_eid(peer.local_eid);
            }
        }
    }

    fn ready(&self, peer: &UniPeer) -> bool {
        match self.uni.get().and_then(Weak::upgrade) {
            Some(u) => peer.addr == u.addr || u.fwd.has_room(peer.addr, peer.qc, peer.eid),
            None => true,
        }
    }

    fn pace(&self, peer: &UniPeer, len: usize) -> Option<Instant> {
        let u = self.uni.get().and_then(Weak::upgrade)?;
        let mut ca = lock(&u.fa.ca);
        ca.get_mut(&peer.local_eid)?.on_send(len, Instant::now())
    }
}
