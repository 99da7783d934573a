//! `ipcpd-shim`: the IPCP kinds that sit on something other than a layer (the shims over
//! Ethernet and UDP) and the local IPCP, without the normal layers' code: about half of
//! `ipcpd`'s is the unicast and broadcast IPCPs, which a shim never runs, and every process
//! maps the code of its binary. The IRMd starts this one for these kinds when it sits beside
//! `ipcpd`: one `ipcpd-shim --host` for all the eth and udp IPCPs of a system (a node has one
//! per link), and one `ipcpd-shim --type local` per local IPCP.

// The shared modules have items only the normal layers use.
#![allow(dead_code)]

use o7s::ctrl::msg::IpcpKind;
use std::sync::Arc;

mod dataplane;
mod eth;
mod local;
mod runtime;
mod shim;
mod udp;

pub use runtime::IpcpLogic;

fn make(kind: IpcpKind, name: &str) -> Option<Arc<dyn IpcpLogic>> {
    Some(match kind {
        IpcpKind::Local => Arc::new(local::Local::new(name)),
        IpcpKind::EthDix => Arc::new(shim::ShimIpcp::new(name, eth::EthBoot::<eth::Dix>::new())),
        IpcpKind::EthLlc => Arc::new(shim::ShimIpcp::new(name, eth::EthBoot::<eth::Llc>::new())),
        IpcpKind::Udp4 | IpcpKind::Udp6 => {
            Arc::new(shim::ShimIpcp::new(name, udp::UdpBoot { kind }))
        }
        IpcpKind::Unicast | IpcpKind::Broadcast => return None,
    })
}

fn main() {
    runtime::Prog {
        name: "ipcpd-shim",
        kinds: "local, udp4, udp6, eth-dix or eth-llc",
        make,
    }
    .main()
}
