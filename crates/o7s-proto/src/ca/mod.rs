//! Congestion avoidance of the unicast layer (`src/ipcpd/unicast/ca/`), sans-IO.
//!
//! Three places take part, all in the IPCP:
//! - the **forwarder** (data transfer) ORs [`Policy::calc_ecn`] of the outgoing lower flow's
//!   queue length into the ECN byte of every packet it writes, its own included;
//! - the **receiving flow allocator** feeds each arriving packet's ECN byte to the flow's
//!   context ([`CaCtx::on_receive`]) and, when told to, sends a FLOW_UPDATE whose `ece` field
//!   is the returned level, to the flow's remote endpoint;
//! - the **sending flow allocator** asks the flow's context before each packet
//!   ([`CaCtx::on_send`]) and holds the packet until the returned time; a FLOW_UPDATE that
//!   arrives goes to [`CaCtx::on_update`].
//!
//! The policy is the layer's (`cong_avoid` in its configuration): [`Policy::MbEcn`], the
//! multi-bit ECN of the prototype ([`MbEcn`]), or [`Policy::None`], which never holds a packet,
//! never marks one and never asks for an update. This room keeps state per flow and computes;
//! it may not touch clocks, queues, flows or the wire: the caller passes the time, the queue
//! length and the ECN byte, and sends the FLOW_UPDATEs.

mod mb_ecn;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;

use std::time::Instant;

/// The layer's congestion avoidance policy (`pol_cong_avoid`): the same enum the layer
/// configuration carries, so a configuration's `cong_avoid` is used as is.
pub use crate::wire::ipcp_config::CongAvoid as Policy;
pub use mb_ecn::{
    CaStats, MbEcn, CA_INC, CA_IWL, CA_SHFT, CA_SLOT, CA_UPD, CA_WND, ECE_TIMEOUT, MAX_MUL,
    MAX_PKTS_PER_SLOT, MAX_WAIT, MD_SHFT, MIN_MUL, MIN_PKTS_PER_SLOT,
};

/// A forwarder's queue length is shifted right by this much to make the ECN mark
/// (`ECN_Q_SHFT`): 16 queued packets mark 1.
pub const ECN_Q_SHFT: u32 = 4;

/// Forwarder: the congestion level to OR into the ECN byte of a packet written to a lower
/// flow that has `queue_len` packets queued: `queue_len >> 4`. o7s deviation: saturates at
/// 255 where the prototype's cast to `uint8_t` wraps (4096 queued packets would mark 0).
///
/// ```
/// use o7s_proto::ca::calc_ecn;
/// assert_eq!(calc_ecn(15), 0);
/// assert_eq!(calc_ecn(16), 1);
/// assert_eq!(calc_ecn(100_000), 255);
/// ```
pub fn calc_ecn(queue_len: usize) -> u8 {
    u8::try_from(queue_len >> ECN_Q_SHFT).unwrap_or(u8::MAX)
}

impl Policy {
    /// A fresh context for a new flow under this policy (the prototype's `ca_ctx_create`).
    pub fn new_ctx(self, now: Instant) -> CaCtx {
        match self {
            Policy::None => CaCtx::None,
            Policy::MbEcn => CaCtx::MbEcn(MbEcn::new(now)),
        }
    }

    /// Forwarder: the ECN mark for a packet written to a lower flow with `queue_len` packets
    /// queued: [`calc_ecn`] under multi-bit ECN, 0 (nothing to OR in) without a policy.
    pub fn calc_ecn(self, queue_len: usize) -> u8 {
        match self {
            Policy::None => 0,
            Policy::MbEcn => calc_ecn(queue_len),
        }
    }
}

/// Congestion avoidance context of one flow, both directions, under the layer's [`Policy`].
/// The flow allocator keeps one per flow, next to the flow's endpoint ids.
///
/// ```
/// use o7s_proto::ca::{CaCtx, Policy};
/// use std::time::Instant;
///
/// let now = Instant::now();
/// let mut ctx = Policy::None.new_ctx(now);
/// assert_eq!(ctx.on_send(1500, now), None);
/// assert_eq!(ctx.on_receive(255, 1500), None);
/// assert!(matches!(Policy::MbEcn.new_ctx(now), CaCtx::MbEcn(_)));
/// ```
#[derive(Debug, Clone)]
pub enum CaCtx {
    /// No congestion avoidance: every call is a no-op.
    None,
    /// Multi-bit ECN.
    MbEcn(MbEcn),
}

impl CaCtx {
    /// Sender: see [`MbEcn::on_send`]; always `None` (send now) without a policy.
    pub fn on_send(&mut self, len: usize, now: Instant) -> Option<Instant> {
        match self {
            CaCtx::None => None,
            CaCtx::MbEcn(c) => c.on_send(len, now),
        }
    }

    /// Receiver: see [`MbEcn::on_receive`]; always `None` (no FLOW_UPDATE) without a policy.
    pub fn on_receive(&mut self, ecn: u8, len: usize) -> Option<u16> {
        match self {
            CaCtx::None => None,
            CaCtx::MbEcn(c) => c.on_receive(ecn, len),
        }
    }

    /// Sender: a FLOW_UPDATE arrived; see [`MbEcn::on_update`]. Ignored without a policy.
    pub fn on_update(&mut self, ece: u16) {
        if let CaCtx::MbEcn(c) = self {
            c.on_update(ece);
        }
    }

    /// The multi-bit ECN state, if that is the policy.
    pub fn stats(&self) -> Option<CaStats> {
        match self {
            CaCtx::None => None,
            CaCtx::MbEcn(c) => Some(c.stats()),
        }
    }
}
