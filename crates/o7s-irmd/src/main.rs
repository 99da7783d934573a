//! `irmd`: the IPC Resource Manager daemon.

use anyhow::{bail, Context, Result};
use clap::Parser;
use o7s_irmd::{apply, config, spawn::Spawner, Irmd};
use rustix::net::{
    bind, listen, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::{error, info};

/// The o7s IPC Resource Manager daemon: one per system.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    after_help = "Run directory: $O7S_RUNDIR, default /run/o7s as root, else $XDG_RUNTIME_DIR/o7s.\n\
                  Stop with SIGINT or SIGTERM: IPCPs are stopped and every flow is taken down."
)]
struct Args {
    /// Log to standard output (in the prototype's `==PID== irmd(II): ...` format).
    #[arg(long)]
    stdout: bool,
    /// Apply this config file at start (irmd.toml); a bad file is refused, nothing applied.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log debug messages too.
    #[arg(short, long)]
    verbose: bool,
}

fn main() {
    let args = Args::parse();
    o7s::dlog::init("irmd", args.stdout, args.verbose);
    if let Err(e) = run(args) {
        error!("{e:#}");
        eprintln!("irmd: {e:#}");
        std::process::exit(1);
    }
}

/// Refuse to start over a live IRMd; remove a stale socket.
fn claim_socket(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() || o7s::Irm::connect().is_ok() {
        bail!(
            "another irmd is running on {} (stop it, or set O7S_RUNDIR to start a separate system)",
            path.display()
        );
    }
    std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))
}

fn run(args: Args) -> Result<()> {
    // Parse the config before anything else: a bad file changes nothing.
    let plan = match &args.config {
        Some(p) => apply::plan(config::load(p).map_err(|e| anyhow::anyhow!("{e}"))?),
        None => apply::Plan::default(),
    };
    let rundir = o7s::rundir::rundir();
    std::fs::create_dir_all(&rundir)
        .with_context(|| format!("creating run directory {}", rundir.display()))?;
    if !rustix::process::getuid().is_root() {
        let _ = std::fs::set_permissions(&rundir, std::fs::Permissions::from_mode(0o700));
    }
    let path = rundir.join("irmd.sock");
    claim_socket(&path)?;
    let irmd = Irmd::new(rundir.clone(), Spawner::new());
    install_signal_handler(irmd.clone(), path.clone())?;
    info!(
        "Ouroboros IPC Resource Manager daemon started, run directory {}.",
        rundir.display()
    );
    // Apply the configuration before listening: once the socket exists, this system is up.
    // Enrollments and connections wait for peers, which may boot later: they run in the
    // background once the socket exists (an enrolling IPCP allocates flows through it).
    if let Some(p) = &args.config {
        if let Err(e) = apply::apply_now(&irmd, &plan.now) {
            irmd.shutdown();
            bail!("applying {}: {e}", p.display());
        }
        match plan.later.len() {
            0 => info!("Applied configuration {}.", p.display()),
            n => info!(
                "Applied configuration {}; {n} IPCP(s) enroll or connect in the background.",
                p.display()
            ),
        }
    }
    let listener = socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    // Bind and listen under a temporary name, then rename: the socket appears only once it
    // accepts connections.
    let tmp = rundir.join(format!("irmd.sock.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let addr = SocketAddrUnix::new(&tmp)?;
    bind(&listener, &addr).with_context(|| format!("binding {}", tmp.display()))?;
    restrict_socket(&tmp);
    listen(&listener, 128)?;
    std::fs::rename(&tmp, &path).with_context(|| format!("creating {}", path.display()))?;
    let server = {
        let irmd = irmd.clone();
        std::thread::Builder::new()
            .name("irm-listen".into())
            .spawn(move || o7s_irmd::server::serve(irmd, listener))?
    };
    apply::start(&irmd, plan.later);
    match server.join() {
        Ok(r) => r.context("serving the IRMd socket")?,
        Err(_) => bail!("the listener thread panicked"),
    }
    Ok(())
}

/// As root, the socket belongs to group `o7s` (when it exists) and only root and that group
/// may connect; otherwise the run directory is private to the user.
fn restrict_socket(path: &Path) {
    if !rustix::process::getuid().is_root() {
        return;
    }
    let gid = std::fs::read_to_string("/etc/group").ok().and_then(|g| {
        g.lines().find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some("o7s")).then(|| f.nth(1).and_then(|g| g.parse::<u32>().ok()))?
        })
    });
    let mode = match gid {
        Some(gid) => {
            let _ = std::os::unix::fs::chown(path, Some(0), Some(gid));
            0o660
        }
        None => 0o600,
    };
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

fn install_signal_handler(irmd: Arc<Irmd>, sock: PathBuf) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                info!("Received signal {sig}, shutting down.");
                irmd.shutdown();
                let _ = std::fs::remove_file(&sock);
                info!("Bye.");
                std::process::exit(0);
            }
        })?;
    Ok(())
}
