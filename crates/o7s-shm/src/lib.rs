//! The per-flow shared-memory data path of o7s: the only crate of the workspace with `unsafe`.
//!
//! One flow is one `memfd` (see [`create_flow_mem`]) holding a small header and two
//! single-producer single-consumer byte rings: ring 0 carries packets from [`Side::A`] to
//! [`Side::B`], ring 1 the other way. Both endpoints map it (two applications, or an
//! application and an IPCP) and wrap it in an [`Endpoint`]. Packets are length-prefixed records
//! with optional headroom in front of each payload, so lower layers can prepend headers in
//! place. A full ring is backpressure, never a drop.
//!
//! Each endpoint sleeps on its own `eventfd`; the peer writes to it only after the sleeper set
//! a "sleeping" flag in the ring's control block (a Dekker-style handshake with `SeqCst`
//! fences on both sides), so a busy flow makes no system calls. Blocking calls spin first
//! (50 µs, `O7S_SPIN_US` overrides, 0 disables). A liveness pipe between the endpoints reports
//! the flow down when the peer closes its end; whoever holds the memfd and both eventfds (the
//! IRMd) takes a flow down for both ends with [`mark_down`].
//!
//! Everything loaded from shared memory is untrusted: the peer may be buggy or hostile. A
//! garbage position or record yields [`ShmError::Corrupt`] (and marks the endpoint down),
//! never a panic or an out-of-bounds access.
//!
//! This room owns the ring layout and the wake-up protocol; it knows nothing of flows' names,
//! QoS or the IRMd, and touches no file descriptor it was not given.
//!
//! # Testing
//!
//! - `cargo test -p o7s-shm` — unit, corrupt-region, proptest and two-process stress tests.
//! - `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p o7s-shm --release --test loom`
//!   — the ring protocol and the sleep/wake handshake model-checked with `loom` (the same
//!   `Duplex` code, with atomics, mutexes and the eventfd swapped for loom's).
//! - `cargo run -p o7s-shm --release --example pingpong` — two-process round-trip time.

// The loom build compiles only the model; the fd/mmap half is left out.
#![cfg_attr(loom, allow(dead_code, unused_mut))]

mod data;
mod duplex;
#[cfg(not(loom))]
mod endpoint;
#[cfg(not(loom))]
mod fdwait;
mod layout;
#[cfg(loom)]
pub mod model;
#[cfg(not(loom))]
pub mod park;
mod ring;
mod sync;

#[cfg(not(loom))]
pub use endpoint::{
    create_flow_mem, default_spin, liveness_pair, mark_down, new_eventfd, read_stats, EndStats,
    Endpoint,
};
pub use layout::{MAX_CAPACITY, MIN_CAPACITY, STATS_WORDS};
#[cfg(not(loom))]
pub use park::{Claim, Held, ParkStore, RegionCtl};

/// Sizes of a flow's rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per direction; a power of two in [`MIN_CAPACITY`]..=[`MAX_CAPACITY`]. Default 1 MiB.
    pub capacity: usize,
    /// Bytes reserved before each payload for lower-layer headers. Default 0.
    pub headroom: u16,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            capacity: 1 << 20,
            headroom: 0,
        }
    }
}

/// Which end of a flow an endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Writes ring 0 and reads ring 1.
    A,
    /// Writes ring 1 and reads ring 0.
    B,
}

/// Errors of the data path.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// Non-blocking call: the ring is empty (read) or full (write).
    #[error("operation would block")]
    WouldBlock,
    /// The deadline passed.
    #[error("deadline passed")]
    Timeout,
    /// The flow is down: the peer is gone or the flow was torn down.
    #[error("flow is down")]
    Down,
    /// The payload is larger than the ring accepts.
    #[error("packet of {len} bytes exceeds the maximum of {max}")]
    TooBig {
        /// Payload length asked for.
        len: usize,
        /// Largest accepted payload.
        max: usize,
    },
    /// The caller's buffer is smaller than the next packet, which stays queued.
    #[error("buffer too small: packet needs {needed} bytes")]
    BufferTooSmall {
        /// Length of the next packet.
        needed: usize,
    },
    /// The memfd is not a valid flow region (refused before mapping).
    #[error("bad flow region: {0}")]
    BadRegion(String),
    /// A system call failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The peer wrote garbage into the shared ring; the endpoint is now down.
    #[error("flow ring corrupt: {0}")]
    Corrupt(String),
}

impl From<rustix::io::Errno> for ShmError {
    fn from(e: rustix::io::Errno) -> Self {
        ShmError::Io(e.into())
    }
}

mod inherit;
pub use inherit::inherited_fd;

mod packet;
pub use packet::{link_info, packet_socket, RecvBatch, SendBatch, ETH_P_802_2};
