//! The lab's one error type. Messages name the command or object that failed and, where
//! there is one, the fix.

use std::path::PathBuf;

/// Result with [`LabError`].
pub type Result<T, E = LabError> = std::result::Result<T, E>;

/// Everything that can go wrong building, using or tearing down a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Network namespaces need root (or CAP_SYS_ADMIN + CAP_NET_ADMIN).
    #[error("o7s-lab needs root to create network namespaces; run as root (e.g. with sudo)")]
    NotRoot,
    /// The topology is inconsistent.
    #[error("topology: {0}")]
    Topology(String),
    /// The TOML form of a topology does not parse.
    #[error("topology: {0}")]
    Toml(#[from] toml::de::Error),
    /// A program could not be started at all.
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// Why.
        source: std::io::Error,
    },
    /// A program ran and failed.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its standard error (and standard output, if stderr was empty), trimmed.
        stderr: String,
    },
    /// One of our binaries is not where the lab looks for it.
    #[error(
        "{name} is not built in {dir}; run `cargo build --workspace --bins` or set O7S_BIN_DIR"
    )]
    NoBinary {
        /// The binary.
        name: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// A node's IRMd exited or never created its socket.
    #[error("irmd on node {node} did not start: {why}; its log {log}:\n{tail}")]
    IrmdStart {
        /// The node.
        node: String,
        /// What was seen.
        why: String,
        /// Path of the log file.
        log: PathBuf,
        /// Last lines of the log.
        tail: String,
    },
    /// A node name that is not part of the lab.
    #[error("node {0:?} is not part of this lab")]
    NoNode(String),
    /// Two nodes that are not linked.
    #[error("there is no link between nodes {a:?} and {b:?}")]
    NoLink {
        /// One node.
        a: String,
        /// The other.
        b: String,
    },
    /// Anything else, said in full.
    #[error("{0}")]
    Msg(String),
    /// A network file that cannot be used (file, line, key).
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// A file or directory operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}
