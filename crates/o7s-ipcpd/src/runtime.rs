//! What `ipcpd` and `ipcpd-shim` share: the command line, the control socket inherited from
//! the IRMd, and the loop that hands the IRMd's requests to an IPCP kind's logic.

use anyhow::{bail, Context, Result};
use o7s::ctrl::msg::{HostStart, IpcpKind};
use o7s::ctrl::rpc::{Inbound, Rpc};
use rustix::fd::AsFd;
use rustix::fd::OwnedFd;
use std::sync::{mpsc, Arc};
use tracing::{error, info, warn};

/// An inbound request: its id, body and fds.
pub type Request = (u64, o7s::ctrl::msg::IpcpReq, Vec<OwnedFd>);

/// What every IPCP kind implements; the runtime shuttles control messages to it.
pub trait IpcpLogic: Send + Sync + 'static {
    /// Answer request `id` (with `rpc.reply`); `fds` came with it (a flow's four fds).
    fn handle(&self, rpc: &Arc<Rpc>, id: u64, req: o7s::ctrl::msg::IpcpReq, fds: Vec<OwnedFd>);

    /// Called first, on the control connection's reader: answer (or start answering) a
    /// request that needs no waiting, so no other thread wakes up for it; give back the
    /// rest, which [`IpcpLogic::handle`] gets on a thread of the pool. It must never block.
    fn quick(&self, _rpc: &Arc<Rpc>, req: Request) -> Option<Request> {
        Some(req)
    }

    /// The IRMd closed the control connection of an IPCP that shares its process with
    /// others (`--host`): tell every thread it runs to stop and give up what it holds (its
    /// socket on the medium, its flows), so the process goes on hosting the others and a new
    /// IPCP can take the same interface or port. Returns without waiting; the threads are
    /// gone within about a second. An IPCP with a process of its own just exits instead.
    fn stop(&self) {}
}

/// The program: its name and the IPCP kinds it holds.
pub struct Prog {
    /// `ipcpd` or `ipcpd-shim`.
    pub name: &'static str,
    /// The kinds, as `--type` takes them.
    pub kinds: &'static str,
    /// The logic of an IPCP of a kind named `name`; `None` for a kind this program lacks.
    pub make: fn(IpcpKind, &str) -> Option<Arc<dyn IpcpLogic>>,
}

impl Prog {
    fn usage(&self) -> String {
        format!(
            "An o7s IPC process (started by irmd).

Usage: {0} --type <TYPE> --name <NAME> [-v]
       {0} --host [-v]

Options:
      --type <TYPE>  IPCP type: {1}
      --name <NAME>  The IPCP's name
      --host         Run the IPCPs the IRMd asks for, several in this process
  -v, --verbose      Log debug messages too
  -h, --help         Print help
  -V, --version      Print version",
            self.name, self.kinds
        )
    }

    /// Parse the command line, start the IPCP and serve the IRMd until it goes away.
    pub fn main(&self) {
        let args = match Args::parse_from(self, std::env::args().skip(1)) {
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
        o7s::dlog::init(
            "ipcpd",
            std::env::var_os("O7S_IPCPD_STDOUT").is_some(),
            args.verbose,
        );
        let ran = match &args.ipcp {
            Some((kind, name)) => self.run(kind, name),
            None => self.host(),
        };
        if let Err(e) = ran {
            error!("{e:#}");
            eprintln!("{}: {e:#}", self.name);
            std::process::exit(1);
        }
    }

    /// One IPCP in this process, until the IRMd goes away.
    fn run(&self, kind: &str, name: &str) -> Result<()> {
        let Some(kind) = IpcpKind::parse(kind) else {
            bail!("unknown IPCP type {kind:?}");
        };
        let sock = control_socket()?;
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let done_tx = std::sync::Mutex::new(done_tx);
        self.start(kind, name, sock, move |_| {
            let _ = done_tx.lock().map(|t| t.send(()));
        })?;
        let _ = done_rx.recv();
        info!("IRMd gone, IPCP {name} exits.");
        Ok(())
    }

    /// The IPCPs the IRMd asks for ([`HostStart`]), each on the connection that comes with
    /// the request, until the IRMd goes away; closing an IPCP's connection stops it alone.
    fn host(&self) -> Result<()> {
        let sock = control_socket()?;
        info!("Hosting IPCPs.");
        loop {
            let (msg, mut fds) = match o7s::ctrl::wire::recv::<HostStart>(sock.as_fd()) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(o7s::ctrl::wire::WireError::Decode(e)) => {
                    warn!("dropping a malformed request to host an IPCP: {e}");
                    continue;
                }
                Err(e) => bail!("the IRMd's connection failed: {e}"),
            };
            let HostStart { kind, name } = msg;
            // The IPCP's connection, and nothing else.
            let conn = match (fds.pop(), fds.is_empty()) {
                (Some(fd), true) if is_socket(&fd) => fd,
                _ => {
                    warn!("request to host IPCP {name} without its connection: ignored");
                    continue;
                }
            };
            let stopped = name.clone();
            let started = self.start(kind, &name, conn, move |logic| {
                logic.stop();
                info!("IPCP {stopped} stopped.");
            });
            if let Err(e) = started {
                // Its connection is closed with it: the IRMd sees the IPCP gone.
                error!("cannot start IPCP {name}: {e:#}");
            }
        }
        info!("IRMd gone, the host of IPCPs exits.");
        Ok(())
    }

    /// Start IPCP `name` of `kind` serving the IRMd on `sock`; `closed` runs when the IRMd
    /// closes it.
    fn start(
        &self,
        kind: IpcpKind,
        name: &str,
        sock: OwnedFd,
        closed: impl Fn(&Arc<dyn IpcpLogic>) + Send + Sync + 'static,
    ) -> Result<()> {
        let Some(logic) = (self.make)(kind, name) else {
            bail!("IPCP type {kind} is not in {} (ipcpd has it)", self.name);
        };
        let fast = logic.clone();
        let quick = move |rpc: &Arc<Rpc>, inb: Inbound| match inb {
            Inbound::Req { id, body, fds } => fast
                .quick(rpc, (id, body, fds))
                .map(|(id, body, fds)| Inbound::Req { id, body, fds }),
            other => Some(other),
        };
        Rpc::start_with(sock, quick, move |rpc, inb| match inb {
            Inbound::Req { id, body, fds } => logic.handle(rpc, id, body, fds),
            Inbound::Note { id, .. } => {
                let e = o7s::ctrl::msg::IrmError::BadRequest {
                    why: "the IRMd sends requests, not notes".into(),
                };
                let _ = rpc.reply(id, o7s::ctrl::msg::IpcpResp::Err(e), &[]);
            }
            Inbound::Closed => closed(&logic),
        })?;
        info!("IPCP {name} ({kind}) started.");
        Ok(())
    }
}

fn is_socket(fd: &OwnedFd) -> bool {
    rustix::fs::fstat(fd).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket
    })
}

/// The command line (parsed by hand: a parser library's code would sit in the memory of
/// every IPCP process).
#[derive(Debug)]
struct Args {
    /// The IPCP's type and name; `None` with `--host`.
    ipcp: Option<(String, String)>,
    /// Log debug messages too.
    verbose: bool,
}

impl Args {
    /// Parse `args` (without the program name); `Err` holds what to print and the exit code.
    fn parse_from(
        prog: &Prog,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Args, (String, i32)> {
        let bad = |why: String| Err((format!("{}: {why}\n\n{}", prog.name, prog.usage()), 2));
        let (mut kind, mut name, mut verbose, mut host) = (None, None, false, false);
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let (key, inline) = match a.split_once('=') {
                Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
                _ => (a.clone(), None),
            };
            match key.as_str() {
                "--type" | "--name" => {
                    let Some(v) = inline.or_else(|| it.next()) else {
                        return bad(format!("{key} needs a value"));
                    };
                    if key == "--type" {
                        kind = Some(v);
                    } else {
                        name = Some(v);
                    }
                }
                "-v" | "--verbose" => verbose = true,
                "--host" => host = true,
                "-h" | "--help" => return Err((prog.usage(), 0)),
                "-V" | "--version" => {
                    return Err((format!("{} {}", prog.name, env!("CARGO_PKG_VERSION")), 0))
                }
                _ => return bad(format!("unexpected argument {a:?}")),
            }
        }
        match (kind, name, host) {
            (None, None, true) => Ok(Args {
                ipcp: None,
                verbose,
            }),
            (_, _, true) => bad("--host takes no --type or --name".into()),
            (Some(kind), Some(name), false) => Ok(Args {
                ipcp: Some((kind, name)),
                verbose,
            }),
            (None, _, false) => bad("--type is required".into()),
            (_, None, false) => bad("--name is required".into()),
        }
    }
}

fn control_socket() -> Result<OwnedFd> {
    let raw = std::env::var("O7S_IPCP_FD")
        .context("O7S_IPCP_FD is not set: ipcpd is started by irmd, not by hand")?;
    let fd: i32 = raw.parse().context("O7S_IPCP_FD is not a number")?;
    let sock = o7s_shm::inherited_fd(fd).context("O7S_IPCP_FD")?;
    if !is_socket(&sock) {
        bail!("O7S_IPCP_FD={fd} is not a socket");
    }
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::{Args, Prog};

    const PROG: Prog = Prog {
        name: "ipcpd",
        kinds: "local",
        make: |_, _| None,
    };

    fn parse(a: &[&str]) -> Result<Args, (String, i32)> {
        Args::parse_from(&PROG, a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn args() {
        let a = parse(&["--type", "eth-dix", "--name=e0", "-v"]).expect("parses");
        assert_eq!(a.ipcp, Some(("eth-dix".into(), "e0".into())));
        assert!(a.verbose);
        let a = parse(&["--name", "n", "--type=unicast"]).expect("parses");
        assert_eq!(a.ipcp, Some(("unicast".into(), "n".into())));
        assert!(!a.verbose);
        let a = parse(&["--host", "-v"]).expect("parses");
        assert_eq!((a.ipcp, a.verbose), (None, true));
        assert_eq!(
            parse(&["--host", "--type", "local"]).err().map(|e| e.1),
            Some(2)
        );
        assert_eq!(parse(&["--help"]).err().map(|e| e.1), Some(0));
        assert_eq!(parse(&["-V"]).err().map(|e| e.1), Some(0));
        assert_eq!(parse(&["--type", "local"]).err().map(|e| e.1), Some(2));
        assert_eq!(parse(&["--type"]).err().map(|e| e.1), Some(2));
        assert_eq!(
            parse(&["--name", "x", "--type", "local", "y"])
                .err()
                .map(|e| e.1),
            Some(2)
        );
    }
}
