//! Thin wrappers over the system tools the lab drives (`ip`, `nft`) and over signals and
//! `/proc`. Everything that touches the host goes through here; it knows nothing of topologies.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::error::{LabError, Result};

/// Where `ip netns` keeps its namespace files.
pub(crate) const NETNS_DIR: &str = "/run/netns";

/// `ip netns add`/`del` bind-mount files under [`NETNS_DIR`] and, the first time, make that
/// directory a shared mount; two of them at once can stack mounts. Serialise them within
/// this process (labs in parallel test threads); separate processes rarely race here.
static NETNS_LOCK: Mutex<()> = Mutex::new(());

/// Render a command line for messages.
pub(crate) fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run a command to completion; an error names it and carries its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            cmd: show(cmd),
            source,
        })?;
    if out.status.success() {
        return Ok(out);
    }
    let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if stderr.is_empty() {
        stderr = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    }
    Err(LabError::Command {
        cmd: show(cmd),
        status: out.status,
        stderr,
    })
}

/// Run `ip ARGS`.
pub(crate) fn ip(args: &[&str]) -> Result<Output> {
    run(Command::new("ip").args(args))
}

/// Run `ip -n NS ARGS` (an `ip` command inside namespace `ns`).
pub(crate) fn ip_in(ns: &str, args: &[&str]) -> Result<Output> {
    run(Command::new("ip").args(["-n", ns]).args(args))
}

/// Run `nft -f -` inside namespace `ns` with `script` on stdin.
pub(crate) fn nft_in(ns: &str, script: &str) -> Result<()> {
    use std::io::Write;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = show(&cmd);
    let spawn_err = |source| LabError::Spawn {
        cmd: shown.clone(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if out.status.success() {
        return Ok(());
    }
    Err(LabError::Command {
        cmd: format!("{shown} <<< {script:?}"),
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// Create namespace `ns` and bring its loopback up.
pub(crate) fn netns_add(ns: &str) -> Result<()> {
    {
        let _g = NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        ip(&["netns", "add", ns])?;
    }
    let lo = ip_in(ns, &["link", "set", "lo", "up"]);
    if lo.is_err() {
        let _ = netns_del(ns);
    }
    lo.map(|_| ())
}

/// Delete namespace `ns` (its interfaces go with it once no process is left inside).
pub(crate) fn netns_del(ns: &str) -> Result<()> {
    let _g = NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    ip(&["netns", "del", ns]).map(|_| ())
}

/// Does namespace `ns` exist?
pub(crate) fn netns_exists(ns: &str) -> bool {
    Path::new(NETNS_DIR).join(ns).exists()
}

/// Names of all namespaces known to `ip netns`.
pub fn netns_list() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

/// Identity of namespace `ns`: the inode of its nsfs file, as in `/proc/PID/ns/net`.
pub(crate) fn netns_ino(ns: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(Path::new(NETNS_DIR).join(ns))
        .ok()
        .map(|m| m.ino())
}

/// Pids of the processes in the namespace with inode `ino`. Works after the namespace's
/// name is gone, as long as processes keep it alive.
pub(crate) fn pids_in(ino: u64) -> Vec<u32> {
    let want = format!("net:[{ino}]");
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .filter(|pid: &u32| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|l| l.as_os_str() == want.as_str())
        })
        .collect()
}

/// Pids of the processes in namespace `ns` (what `ip netns pids` prints).
pub fn netns_pids(ns: &str) -> Vec<u32> {
    netns_ino(ns).map(pids_in).unwrap_or_default()
}

/// Is `pid` a live process (present and not a zombie)?
pub fn pid_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name, which may itself hold ") ".
    match stat.rfind(')') {
        Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
        None => false,
    }
}

/// Send `sig` to process `pid`, ignoring errors (it may be gone).
pub(crate) fn signal(pid: u32, sig: Signal) {
    if let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

/// Send `sig` to process group `pgid`, ignoring errors.
pub(crate) fn signal_group(pgid: u32, sig: Signal) {
    if let Some(p) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process_group(p, sig);
    }
}

/// SIGKILL everything in the namespace with inode `ino` until nothing is left alive or
/// `limit` passes.
pub(crate) fn kill_all_in(ino: u64, limit: Duration) -> bool {
    wait_for(limit, || {
        let pids = pids_in(ino);
        for &p in &pids {
            signal(p, Signal::KILL);
        }
        pids.iter().all(|&p| !pid_alive(p))
    })
}

/// Are we root?
pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Poll `f` until it holds (true) or `limit` passes (false).
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The last `n` lines of a file, for error messages.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `PATH` with `dir` in front, so our binaries find each other.
pub(crate) fn path_with(dir: &Path) -> String {
    let old = std::env::var("PATH").unwrap_or_default();
    format!("{}:{old}", dir.display())
}

/// Directory of our binaries: `$O7S_BIN_DIR`, else the directory of the running executable
/// if it holds `irmd`, else its parent (a test binary lives in `target/debug/deps`).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("O7S_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let here = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if here.join("irmd").is_file() {
        return here;
    }
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}
