//! `ipcpd`: an IPC process. Started by `irmd`, never by hand: it inherits its control socket
//! through `$O7S_IPCP_FD`.

use anyhow::{bail, Context, Result};
use clap::Parser;
use o7s::ctrl::msg::IpcpKind;
use o7s::ctrl::rpc::{Inbound, Rpc};
use rustix::fd::OwnedFd;
use std::sync::mpsc;
use tracing::{error, info};

mod broadcast;
mod common;
mod dataplane;
mod eth;
mod local;
mod shim;
mod udp;
mod unicast;

/// An o7s IPC process (started by irmd).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// IPCP type: local, udp4, udp6, eth-dix, eth-llc, unicast or broadcast.
    #[arg(long = "type")]
    kind: String,
    /// The IPCP's name.
    #[arg(long)]
    name: String,
    /// Log debug messages too.
    #[arg(short, long)]
    verbose: bool,
}

/// What every IPCP kind implements; the runtime below shuttles control messages to it.
pub trait IpcpLogic: Send + Sync + 'static {
    /// Answer request `id` (with `rpc.reply`); `fds` came with it (a flow's four fds).
    fn handle(
        &self,
        rpc: &std::sync::Arc<Rpc>,
        id: u64,
        req: o7s::ctrl::msg::IpcpReq,
        fds: Vec<OwnedFd>,
    );
}

fn control_socket() -> Result<OwnedFd> {
    let raw = std::env::var("O7S_IPCP_FD")
        .context("O7S_IPCP_FD is not set: ipcpd is started by irmd, not by hand")?;
    let fd: i32 = raw.parse().context("O7S_IPCP_FD is not a number")?;
    let sock = o7s_shm::inherited_fd(fd).context("O7S_IPCP_FD")?;
    let stat = rustix::fs::fstat(&sock)?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Socket {
        bail!("O7S_IPCP_FD={fd} is not a socket");
    }
    Ok(sock)
}

fn main() {
    let args = Args::parse();
    o7s::dlog::init(
        "ipcpd",
        std::env::var_os("O7S_IPCPD_STDOUT").is_some(),
        args.verbose,
    );
    if let Err(e) = run(args) {
        error!("{e:#}");
        eprintln!("ipcpd: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let Some(kind) = IpcpKind::parse(&args.kind) else {
        bail!("unknown IPCP type {:?}", args.kind);
    };
    let sock = control_socket()?;
    let logic: std::sync::Arc<dyn IpcpLogic> = match kind {
        IpcpKind::Local => std::sync::Arc::new(local::Local::new(&args.name)),
        IpcpKind::EthDix => std::sync::Arc::new(shim::ShimIpcp::new(
            &args.name,
            eth::EthBoot::<eth::Dix>::new(),
        )),
        IpcpKind::EthLlc => std::sync::Arc::new(shim::ShimIpcp::new(
            &args.name,
            eth::EthBoot::<eth::Llc>::new(),
        )),
        IpcpKind::Udp4 | IpcpKind::Udp6 => {
            std::sync::Arc::new(shim::ShimIpcp::new(&args.name, udp::UdpBoot { kind }))
        }
        IpcpKind::Unicast => std::sync::Arc::new(unicast::UnicastIpcp::new(&args.name)),
        IpcpKind::Broadcast => std::sync::Arc::new(broadcast::BroadcastIpcp::new(&args.name)),
    };
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let done_tx = std::sync::Mutex::new(done_tx);
    let _rpc = Rpc::start(sock, move |rpc, inb| match inb {
        Inbound::Req { id, body, fds } => logic.handle(rpc, id, body, fds),
        Inbound::Note { id, .. } => {
            let e = o7s::ctrl::msg::IrmError::BadRequest {
                why: "the IRMd sends requests, not notes".into(),
            };
            let _ = rpc.reply(id, o7s::ctrl::msg::IpcpResp::Err(e), &[]);
        }
        Inbound::Closed => {
            let _ = done_tx.lock().map(|t| t.send(()));
        }
    })?;
    info!("IPCP {} ({kind}) started.", args.name);
    let _ = done_rx.recv();
    info!("IRMd gone, IPCP {} exits.", args.name);
    Ok(())
}
