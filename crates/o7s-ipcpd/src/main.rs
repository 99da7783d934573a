//! `ipcpd`: an IPC process of any kind. Started by `irmd`, never by hand: it inherits its
//! control socket through `$O7S_IPCP_FD`. The shims and the local IPCP also come as the
//! smaller `ipcpd-shim` (see `shim_main.rs`).

use o7s::ctrl::msg::IpcpKind;
use std::sync::Arc;

mod broadcast;
mod common;
mod dataplane;
mod eth;
mod local;
mod runtime;
mod shim;
mod udp;
mod unicast;

pub use runtime::IpcpLogic;

fn make(kind: IpcpKind, name: &str) -> Option<Arc<dyn IpcpLogic>> {
    Some(match kind {
        IpcpKind::Local => Arc::new(local::Local::new(name)),
        IpcpKind::EthDix => Arc::new(shim::ShimIpcp::new(name, eth::EthBoot::<eth::Dix>::new())),
        IpcpKind::EthLlc => Arc::new(shim::ShimIpcp::new(name, eth::EthBoot::<eth::Llc>::new())),
        IpcpKind::Udp4 | IpcpKind::Udp6 => {
            Arc::new(shim::ShimIpcp::new(name, udp::UdpBoot { kind }))
        }
        IpcpKind::Unicast => Arc::new(unicast::UnicastIpcp::new(name)),
        IpcpKind::Broadcast => Arc::new(broadcast::BroadcastIpcp::new(name)),
    })
}

fn main() {
    runtime::Prog {
        name: "ipcpd",
        kinds: "local, udp4, udp6, eth-dix, eth-llc, unicast or broadcast",
        make,
    }
    .main()
}
