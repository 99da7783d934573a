//! Sans-IO protocol logic of o7s: QoS specifications, name hashing and (in later
//! issues) every wire format and protocol state machine. Nothing in this crate
//! opens a socket, starts a thread or reads a clock of its own.
#![forbid(unsafe_code)]

pub mod ca;
pub mod dht;
pub mod frct;
pub mod hash;
pub mod qos;
pub mod routing;
pub mod wire;

pub use hash::{HashAlgo, NameHash};
pub use qos::{QosCube, QosSpec};
