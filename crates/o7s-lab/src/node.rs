//! One node of a running lab: its namespace, run directory, `irmd` and ports, and commands
//! that run inside it. Starting and stopping the node's `irmd` lives here too; creating the
//! namespace and links is the lab's job.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::sys;
use crate::topology::Port;

/// How long an `irmd` gets to create its socket.
const IRMD_START: Duration = Duration::from_secs(10);

/// A node of a running [`Lab`](crate::Lab).
#[derive(Debug)]
pub struct Node {
    pub(crate) name: String,
    pub(crate) ns: String,
    /// The namespace's inode, to find its processes even after its name is deleted.
    pub(crate) ino: u64,
    pub(crate) dir: PathBuf,
    pub(crate) bin: PathBuf,
    pub(crate) ports: Vec<Port>,
    pub(crate) irmd: Option<Child>,
    /// Arguments the `irmd` is started with after `--stdout`.
    pub(crate) irmd_args: Vec<String>,
}

impl Node {
    /// The node's name in the topology.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The network namespace (`ip netns` name); empty in a host-only lab.
    pub fn netns(&self) -> &str {
        &self.ns
    }

    /// The node's `O7S_RUNDIR`.
    pub fn rundir(&self) -> &Path {
        &self.dir
    }

    /// Path of the `irmd` log (its stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("irmd.log")
    }

    /// The `irmd` log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Pid of the node's `irmd`, if it was started.
    pub fn irmd_pid(&self) -> Option<u32> {
        self.irmd.as_ref().map(Child::id)
    }

    /// The node's link ends, in link order.
    pub fn ports(&self) -> &[Port] {
        &self.ports
    }

    /// The first link end towards `peer`.
    pub fn port_to(&self, peer: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.peer == peer)
    }

    /// The interface on this node that leads to `peer`.
    pub fn ifname_to(&self, peer: &str) -> Option<&str> {
        self.port_to(peer).map(|p| p.ifname.as_str())
    }

    /// This node's IPv4 address on its link to `peer`.
    pub fn addr4_to(&self, peer: &str) -> Option<Ipv4Addr> {
        self.port_to(peer).and_then(|p| p.addr4)
    }

    /// This node's IPv6 address on its link to `peer`.
    pub fn addr6_to(&self, peer: &str) -> Option<Ipv6Addr> {
        self.port_to(peer).and_then(|p| p.addr6)
    }

    /// A command that runs `prog` inside this node's namespace with `O7S_RUNDIR` set and our
    /// binaries first on `PATH`. `prog` is one of our binaries (`irm`, `oping`, ...) if the
    /// binary directory holds it, else any program found on `PATH`. Stdin is null.
    ///
    /// Processes started this way are killed when the lab is dropped.
    pub fn cmd(&self, prog: &str) -> Command {
        let ours = self.bin.join(prog);
        let prog = if ours.is_file() {
            ours.into_os_string()
        } else {
            prog.into()
        };
        let mut c = if self.ns.is_empty() {
            Command::new(prog)
        } else {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.ns]).arg(prog);
            c
        };
        c.env("O7S_RUNDIR", &self.dir)
            .env("PATH", sys::path_with(&self.bin))
            .stdin(Stdio::null());
        c
    }

    /// Run `irm` with whitespace-separated `args` and return its output, failed or not.
    pub fn irm(&self, args: &str) -> Result<Output> {
        let mut c = self.cmd("irm");
        c.args(args.split_whitespace());
        c.output().map_err(|source| LabError::Spawn {
            cmd: sys::show(&c),
            source,
        })
    }

    /// Run `irm` with whitespace-separated `args`, insist it succeeds, return its stdout.
    /// The error carries the command, its stderr and the end of the node's `irmd` log.
    pub fn irm_ok(&self, args: &str) -> Result<String> {
        let mut c = self.cmd("irm");
        c.args(args.split_whitespace());
        match sys::run(&mut c) {
            Ok(out) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            Err(LabError::Command {
                cmd,
                status,
                stderr,
            }) => Err(LabError::Command {
                cmd,
                status,
                stderr: format!(
                    "{stderr}\n-- irmd log of node {} ({}):\n{}",
                    self.name,
                    self.log_path().display(),
                    sys::tail(&self.log_path(), 20)
                ),
            }),
            Err(e) => Err(e),
        }
    }

    /// Start the node's `irmd` in its own process group and wait until its socket exists.
    pub(crate) fn start_irmd(&mut self) -> Result<()> {
        let irmd = self.bin.join("irmd");
        if !irmd.is_file() {
            return Err(LabError::NoBinary {
                name: "irmd".into(),
                dir: self.bin.clone(),
            });
        }
        let log_path = self.log_path();
        let io_err = |what| {
            let path = log_path.clone();
            move |source| LabError::Io { what, path, source }
        };
        let log = std::fs::File::create(&log_path).map_err(io_err("creating"))?;
        let log2 = log.try_clone().map_err(io_err("duplicating"))?;
        // A socket left by an irmd killed before (restart): not a sign of this one.
        let sock = self.dir.join("irmd.sock");
        let _ = std::fs::remove_file(&sock);
        let mut c = self.cmd("irmd");
        // `ip netns exec` execs irmd in place, so this pid and group are irmd's.
        c.arg("--stdout")
            .args(&self.irmd_args)
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        let child = c.spawn().map_err(|source| LabError::Spawn {
            cmd: sys::show(&c),
            source,
        })?;
        self.irmd = Some(child);
        let mut exited = None;
        let up = sys::wait_for(IRMD_START, || {
            if let Some(Ok(Some(st))) = self.irmd.as_mut().map(Child::try_wait) {
                exited = Some(st);
                return true;
            }
            sock.exists()
        });
        let why = match exited {
            Some(st) => format!("it exited ({st})"),
            None if !up => format!("no socket {} after {IRMD_START:?}", sock.display()),
            None => return Ok(()),
        };
        Err(LabError::IrmdStart {
            node: self.name.clone(),
            why,
            tail: sys::tail(&log_path, 20),
            log: log_path,
        })
    }

    /// Ask the `irmd` (and, through its group, its children) to stop.
    pub(crate) fn term_irmd(&self) {
        if let Some(pid) = self.irmd_pid() {
            sys::signal(pid, rustix::process::Signal::TERM);
        }
    }

    /// Wait up to `limit` for the `irmd` to exit, then kill its whole process group and
    /// everything else in the namespace, and reap it.
    pub(crate) fn kill_all(&mut self, limit: Duration) {
        if let Some(c) = self.irmd.as_mut() {
            sys::wait_for(limit, || matches!(c.try_wait(), Ok(Some(_))));
            sys::signal_group(c.id(), rustix::process::Signal::KILL);
            let _ = c.kill();
            let _ = c.wait();
        }
        self.irmd = None;
        if self.ino != 0 {
            sys::kill_all_in(self.ino, Duration::from_secs(5));
        }
    }
}
