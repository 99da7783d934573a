//! The control plane of one host: message types and their one codec. Used by the library,
//! `irm`, the IRMd and the IPCPs; touches no shared memory.

pub mod msg;
pub mod pool;
pub mod rpc;
pub mod timer;
pub mod wire;

pub use msg::*;
