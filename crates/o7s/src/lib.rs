//! The o7s application library.
//!
//! An application allocates a [`Flow`] to a *name* with a [`QosSpec`], or accepts flows for
//! the names it is bound to, then reads and writes whole messages. It never sees an address,
//! a port or a layer. Packets move through per-flow shared-memory rings straight between the
//! two endpoints; the IRMd only sets flows up and tears them down.
//!
//! ```no_run
//! use o7s::{Flow, QosSpec};
//! use std::time::Duration;
//! let flow = Flow::alloc("oping.server", QosSpec::RAW, Some(Duration::from_secs(2)))?;
//! flow.write(b"hello")?;
//! let mut buf = [0u8; 2048];
//! let n = flow.read(&mut buf)?;
//! # Ok::<(), o7s::Error>(())
//! ```
//!
//! No async runtime is forced on the application: every call blocks (or not, per flow), and a
//! [`FlowSet`] waits on many flows at once.
#![forbid(unsafe_code)]

pub mod client;
pub mod ctrl;
#[cfg(feature = "daemon-log")]
pub mod dlog;
mod error;
mod flow;
mod frct;
mod fset;
pub mod rundir;

pub use client::Irm;
pub use ctrl::msg::IrmError;
pub use error::Error;
pub use flow::{Flow, FlowId};
pub use frct::{DEFAULT_LINGER, MAX_MESSAGE};
pub use fset::{Event, FlowSet, PendingId};
pub use o7s_proto::frct::FrctCounters;
pub use o7s_proto::{QosCube, QosSpec};

/// FRCT statistics of a flow ([`Flow::frct_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrctStats {
    /// The state machine's counters: retransmissions, RTT estimate, RTO, window, ...
    pub counters: FrctCounters,
    /// Packets from the peer that did not decode (dropped).
    pub malformed: u64,
}
