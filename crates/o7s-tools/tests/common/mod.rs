//! A throw-away o7s system for end-to-end tests: its own run directory, a real `irmd`, and
//! helpers to run the real tools against it. Everything is torn down on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Directory holding the workspace's binaries (`irmd`, `ipcpd`, `irm`, `oping`, ...).
pub fn bin_dir() -> PathBuf {
    let oping = PathBuf::from(env!("CARGO_BIN_EXE_oping"));
    let dir = oping.parent().expect("binary directory").to_path_buf();
    for b in ["irmd", "ipcpd"] {
        assert!(
            dir.join(b).is_file(),
            "{b} is not built in {}; run `cargo build --workspace` or `cargo test --workspace`",
            dir.display()
        );
    }
    dir
}

pub struct System {
    pub dir: tempfile::TempDir,
    pub bin: PathBuf,
    irmd: Option<Child>,
    /// Run everything of this system as this uid (through `setpriv`).
    user: Option<u32>,
}

/// uid and gid of `nobody`.
pub const NOBODY: u32 = 65534;

impl System {
    /// Start an IRMd in a fresh run directory and wait until it listens.
    pub fn start() -> System {
        System::start_with(&[])
    }

    /// Start an IRMd with extra arguments (e.g. `--config FILE`).
    pub fn start_with(args: &[&str]) -> System {
        System::start_full(args, None, &[])
    }

    /// Start an IRMd with extra environment variables.
    pub fn start_with_env(env: &[(&str, &str)]) -> System {
        System::start_full(&[], None, env)
    }

    /// Start an IRMd, and run every tool of this system, as user `nobody`.
    pub fn start_as_nobody() -> System {
        System::start_full(&[], Some(NOBODY), &[])
    }

    fn start_full(args: &[&str], user: Option<u32>, env: &[(&str, &str)]) -> System {
        let dir = tempfile::Builder::new()
            .prefix("o7s-test-")
            .tempdir()
            .expect("tempdir");
        let bin = bin_dir();
        let log = std::fs::File::create(dir.path().join("irmd.log")).expect("log file");
        if let Some(uid) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid)).expect("chown");
            std::os::unix::fs::chown(dir.path().join("irmd.log"), Some(uid), Some(uid))
                .expect("chown");
        }
        let irmd = as_user(&bin.join("irmd"), user)
            .arg("--stdout")
            .args(args)
            .env("O7S_RUNDIR", dir.path())
            .env("PATH", path_with(&bin))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start irmd");
        let sys = System {
            dir,
            bin,
            irmd: Some(irmd),
            user,
        };
        let sock = sys.dir.path().join("irmd.sock");
        wait_for(Duration::from_secs(10), || sock.exists())
            .unwrap_or_else(|| panic!("irmd did not start: {}", sys.log()));
        sys
    }

    pub fn rundir(&self) -> &Path {
        self.dir.path()
    }

    pub fn irmd_pid(&self) -> u32 {
        self.irmd.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The IRMd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("irmd.log")).unwrap_or_default()
    }

    /// A command for one of our binaries, pointed at this system.
    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = as_user(&self.bin.join(prog), self.user);
        c.env("O7S_RUNDIR", self.dir.path())
            .env("PATH", path_with(&self.bin))
            .stdin(Stdio::null());
        c
    }

    /// Run `irm` with whitespace-separated arguments.
    pub fn irm(&self, args: &str) -> Output {
        self.cmd("irm")
            .args(args.split_whitespace())
            .output()
            .expect("run irm")
    }

    /// Run `irm` and insist it succeeds; returns stdout.
    pub fn irm_ok(&self, args: &str) -> String {
        let out = self.irm(args);
        assert!(
            out.status.success(),
            "irm {args} failed: {}\n{}\nirmd log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Bootstrap a local layer `lo` and register `name` in it.
    pub fn local_layer(&self, name: &str) {
        self.irm_ok("ipcp bootstrap type local name lo layer lo");
        self.irm_ok(&format!("name reg {name} layer lo"));
    }

    /// Start a background server process of ours.
    pub fn spawn(&self, prog: &str, args: &[&str]) -> Child {
        self.cmd(prog)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    }

    /// Wait until the IRMd knows process `pid` is waiting in accept for `name`.
    pub fn wait_bound(&self, name: &str) {
        let ok = wait_for(Duration::from_secs(10), || {
            self.irm_ok("name list --json").contains(name)
        });
        assert!(ok.is_some(), "name {name} never appeared");
    }

    /// Open file descriptors of a process that point at a memfd.
    pub fn memfds_of(pid: u32) -> usize {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return 0;
        };
        rd.filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|l| l.to_string_lossy().contains("memfd:"))
            .count()
    }
}

impl Drop for System {
    fn drop(&mut self) {
        if let Some(mut c) = self.irmd.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            if wait_for(Duration::from_secs(5), || {
                matches!(c.try_wait(), Ok(Some(_)))
            })
            .is_none()
            {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// A command for `prog`, run as `user` through `setpriv` when given.
fn as_user(prog: &Path, user: Option<u32>) -> Command {
    match user {
        None => Command::new(prog),
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(prog);
            c
        }
    }
}

fn path_with(bin: &Path) -> String {
    let old = std::env::var("PATH").unwrap_or_default();
    format!("{}:{old}", bin.display())
}

/// Poll `f` until it holds or `limit` passes (readiness polling, not a timing assumption).
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> Option<()> {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return Some(());
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
