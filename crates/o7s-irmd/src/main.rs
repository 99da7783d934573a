//! `irmd`: the IPC Resource Manager daemon.

use anyhow::{bail, Context, Result};
use o7s_irmd::{apply, config, spawn::Spawner, Irmd};
use rustix::net::{
    bind, listen, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::{error, info};

const USAGE: &str = "The o7s IPC Resource Manager daemon: one per system.

Usage: irmd [OPTIONS]

Options:
      --stdout         Log to standard output (in the prototype's `==PID== irmd(II): ...`
                       format)
      --config <FILE>  Apply this config file at start (irmd.toml); a bad file is refused,
                       nothing applied
  -v, --verbose        Log debug messages too
  -h, --help           Print help
  -V, --version        Print version

Run directory: $O7S_RUNDIR, default /run/o7s as root, else $XDG_RUNTIME_DIR/o7s.
The eth and udp IPCPs share one process (ipcpd-shim --host); O7S_SHIM_HOST=0: one each.
Stop with SIGINT or SIGTERM: IPCPs are stopped and every flow is taken down.";

/// The command line (parsed by hand: a parser library's code would sit in the daemon's
/// memory for its whole life).
#[derive(Debug, Default)]
struct Args {
    /// Log to standard output.
    stdout: bool,
    /// Apply this config file at start.
    config: Option<PathBuf>,
    /// Log debug messages too.
    verbose: bool,
}

impl Args {
    /// Parse `args` (without the program name); `Err` holds what to print and the exit code.
    fn parse_from(args: impl IntoIterator<Item = String>) -> Result<Args, (String, i32)> {
        let bad = |why: String| Err((format!("irmd: {why}\n\n{USAGE}"), 2));
        let mut out = Args::default();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--stdout" => out.stdout = true,
                "-v" | "--verbose" => out.verbose = true,
                "-h" | "--help" => return Err((USAGE.to_string(), 0)),
                "-V" | "--version" => {
                    return Err((format!("irmd {}", env!("CARGO_PKG_VERSION")), 0))
                }
                "--config" => match it.next() {
                    Some(f) => out.config = Some(PathBuf::from(f)),
                    None => return bad("--config needs a file".into()),
                },
                _ => match a.strip_prefix("--config=") {
                    Some(f) => out.config = Some(PathBuf::from(f)),
                    None => return bad(format!("unexpected argument {a:?}")),
                },
            }
        }
        Ok(out)
    }
}

/// glibc gives every thread that allocates an arena of its own (up to 8 per core), each
/// 60-130 kB resident, and reads `MALLOC_ARENA_MAX` only when a program starts: unless the
/// environment sets it, start again with one arena. The mark makes the second start forget
/// both variables, so programs the IRMd starts do not inherit them (IPCPs get the limit
/// from the spawner).
fn one_malloc_arena() {
    use std::os::unix::process::CommandExt;
    const ARENA: &str = "MALLOC_ARENA_MAX";
    const MARK: &str = "O7S_IRMD_ARENA";
    if std::env::var_os(MARK).is_some() {
        std::env::remove_var(MARK);
        std::env::remove_var(ARENA);
        return;
    }
    if std::env::var_os(ARENA).is_some() {
        return;
    }
    // The binary's own path, not /proc/self/exe: the process's name (`comm`) comes from the
    // path run, and tools (`o7s-lab down`, `pgrep irmd`) know the IRMd by it.
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    // Returns only when the exec failed: then run with glibc's default arenas.
    let _ = cmd.args(args).env(ARENA, "1").env(MARK, "1").exec();
}

fn main() {
    one_malloc_arena();
    let args = match Args::parse_from(std::env::args().skip(1)) {
        Ok(a) => a,
        Err((text, 0)) => {
            println!("{text}");
            return;
        }
        Err((text, code)) => {
            eprintln!("{text}");
            std::process::exit(code);
        }
    };
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

#[cfg(test)]
mod tests {
    use super::Args;

    fn parse(a: &[&str]) -> Result<Args, (String, i32)> {
        Args::parse_from(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn args() {
        let a = parse(&["--stdout", "--config", "x.toml", "-v"]).expect("parses");
        assert!(a.stdout && a.verbose);
        assert_eq!(a.config.as_deref(), Some(std::path::Path::new("x.toml")));
        let a = parse(&["--config=y.toml"]).expect("parses");
        assert!(!a.stdout && !a.verbose);
        assert_eq!(a.config.as_deref(), Some(std::path::Path::new("y.toml")));
        assert!(parse(&[]).is_ok());
        assert_eq!(parse(&["--help"]).err().map(|e| e.1), Some(0));
        assert_eq!(parse(&["--version"]).err().map(|e| e.1), Some(0));
        assert_eq!(parse(&["--config"]).err().map(|e| e.1), Some(2));
        assert_eq!(parse(&["--bogus"]).err().map(|e| e.1), Some(2));
    }
}
