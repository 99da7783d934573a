//! Where a system's sockets live. Everything one system owns is under its run directory, so
//! several independent systems can share a host.

use std::path::PathBuf;

/// The environment variable that selects a run directory.
pub const ENV: &str = "O7S_RUNDIR";

/// The run directory: `$O7S_RUNDIR`, else `/run/o7s` as root, else `$XDG_RUNTIME_DIR/o7s`,
/// else `/tmp/o7s-UID`.
pub fn rundir() -> PathBuf {
    if let Some(d) = std::env::var_os(ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let uid = rustix::process::getuid();
    if uid.is_root() {
        return PathBuf::from("/run/o7s");
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("o7s");
    }
    PathBuf::from(format!("/tmp/o7s-{}", uid.as_raw()))
}

/// The IRMd's socket in the run directory.
pub fn irmd_socket() -> PathBuf {
    rundir().join("irmd.sock")
}
