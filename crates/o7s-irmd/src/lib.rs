//! The IPC Resource Manager daemon: one per system. It owns the registry of IPCPs, names,
//! processes and flows, starts IPCPs and bound programs, brokers flow allocation and cleans
//! up after processes that exit. It never touches a packet.
#![forbid(unsafe_code)]

pub mod apply;
pub mod config;
mod flows;
pub mod ipcps;
pub mod irmd;
mod join;
pub mod registry;
pub mod server;
pub mod sets;
pub mod spawn;
#[cfg(test)]
mod testkit;

pub use irmd::Irmd;
