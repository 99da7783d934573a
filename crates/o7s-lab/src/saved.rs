//! Labs that outlive the process that built them (`o7s-lab up`): a record in the lab's
//! directory (`lab.json`, written before anything is created), finding a lab from another
//! shell, running commands in its nodes, and removing it — also after the builder was killed
//! halfway. Touches only the namespaces, processes and directory the record names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::lab::named_ns;
use crate::node::Node;
use crate::sys;
use crate::topology::Topology;

/// File name of the record inside a lab directory.
pub const RECORD: &str = "lab.json";
/// File name of the copy of the network file inside a lab directory.
pub const NETWORK: &str = "network.toml";

/// What `o7s-lab up` records about a lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// The lab's name (part of its namespace names).
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// The network file it was built from.
    pub file: PathBuf,
    /// Pid of the `o7s-lab up` that builds it.
    pub builder: u32,
    /// Built completely.
    pub ready: bool,
    /// Without namespaces (the nodes are run directories on this host).
    pub host_only: bool,
    /// Where our binaries are.
    pub bin: PathBuf,
    /// The nodes.
    pub nodes: Vec<SavedNode>,
}

/// One node of a [`Saved`] lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedNode {
    /// Its name.
    pub name: String,
    /// Its namespace (empty when host-only).
    pub ns: String,
    /// Pid of its `irmd`, once started.
    pub irmd: Option<u32>,
}

/// Where labs live unless told otherwise: `/run/o7s-lab` as root, else
/// `$XDG_RUNTIME_DIR/o7s-lab` or `/tmp/o7s-lab-UID`.
pub fn labs_root() -> PathBuf {
    if sys::is_root() {
        return PathBuf::from("/run/o7s-lab");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) => PathBuf::from(d).join("o7s-lab"),
        None => PathBuf::from(format!(
            "/tmp/o7s-lab-{}",
            rustix::process::getuid().as_raw()
        )),
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LabError {
    let path = path.to_path_buf();
    move |source| LabError::Io { what, path, source }
}

impl Saved {
    /// A record for a lab about to be built from `topology`.
    pub fn new(name: &str, dir: &Path, file: &Path, topology: &Topology, host_only: bool) -> Saved {
        Saved {
            name: name.into(),
            dir: dir.into(),
            file: file.into(),
            builder: std::process::id(),
            ready: false,
            host_only,
            bin: sys::bin_dir(),
            nodes: topology
                .nodes
                .iter()
                .map(|n| SavedNode {
                    name: n.name.clone(),
                    ns: if host_only {
                        String::new()
                    } else {
                        named_ns(name, &n.name)
                    },
                    irmd: None,
                })
                .collect(),
        }
    }

    /// Write the record into its directory (atomically).
    pub fn write(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(io("creating", &self.dir))?;
        let path = self.dir.join(RECORD);
        let tmp = self.dir.join(format!("{RECORD}.tmp"));
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(&tmp, text).map_err(io("writing", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("writing", &path))
    }

    /// Read the record of the lab in `dir`.
    pub fn read(dir: &Path) -> Result<Saved> {
        let path = dir.join(RECORD);
        let text = std::fs::read_to_string(&path).map_err(io("reading", &path))?;
        serde_json::from_str(&text).map_err(|e| LabError::Io {
            what: "parsing",
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }

    /// Is the process that builds it still running?
    pub fn builder_alive(&self) -> bool {
        self.builder != std::process::id() && sys::pid_alive(self.builder) && is_ours(self.builder)
    }

    /// Node `name` of the lab, to run commands in.
    pub fn node(&self, name: &str) -> Result<Node> {
        let n = self
            .nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| LabError::NoNode(name.into()))?;
        Ok(Node {
            name: n.name.clone(),
            ns: n.ns.clone(),
            ino: sys::netns_ino(&n.ns).unwrap_or(0),
            dir: self.dir.join(&n.name),
            bin: self.bin.clone(),
            ports: Vec::new(),
            irmd: None,
            irmd_args: Vec::new(),
        })
    }
}

/// Is `pid` one of ours (`o7s-lab`, `irmd`, `ipcpd`, `ipcpd-shim`, or a program of ours)?
/// Guards against killing a process that reused a recorded pid.
fn is_ours(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let comm = comm.trim();
    ["o7s-lab", "irmd", "ipcpd", "ipcpd-shim"].contains(&comm) || comm.starts_with("o7s")
}

/// The directory of a lab: `dir` if given, else `labs_root()/name`, else the only lab under
/// [`labs_root`]. An error lists the labs there when the choice is not clear.
pub fn find(name: Option<&str>, dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = dir {
        return Ok(d.to_path_buf());
    }
    let root = labs_root();
    if let Some(n) = name {
        return Ok(root.join(n));
    }
    let labs = list();
    match labs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(LabError::Msg(format!(
            "no lab is up (none under {}); start one with: o7s-lab up FILE",
            root.display()
        ))),
        many => {
            let names: Vec<String> = many
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            Err(LabError::Msg(format!(
                "several labs are up ({}); choose one with --lab NAME",
                names.join(", ")
            )))
        }
    }
}

/// Directories under [`labs_root`] that hold a lab record.
pub fn list() -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(labs_root()) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join(RECORD).is_file())
        .collect();
    v.sort();
    v
}

/// Remove the lab in `dir`: stop its builder if that still runs, kill every process in its
/// namespaces (or its `irmd`s' process groups when host-only), delete the namespaces and the
/// directory. Works from the record alone, whatever state the build reached. Returns the
/// namespaces deleted.
pub fn remove(dir: &Path) -> Result<Vec<String>> {
    let saved = Saved::read(dir)?;
    if saved.builder_alive() {
        sys::signal(saved.builder, rustix::process::Signal::KILL);
        sys::wait_for(Duration::from_secs(2), || !sys::pid_alive(saved.builder));
    }
    for n in &saved.nodes {
        if let Some(pid) = n.irmd.filter(|&p| sys::pid_alive(p) && is_ours(p)) {
            sys::signal(pid, rustix::process::Signal::TERM);
        }
    }
    for n in &saved.nodes {
        if let Some(pid) = n.irmd.filter(|&p| sys::pid_alive(p) && is_ours(p)) {
            sys::wait_for(Duration::from_secs(2), || !sys::pid_alive(pid));
            sys::signal_group(pid, rustix::process::Signal::KILL);
        }
    }
    // The record lists every namespace before it is created.
    let names: Vec<String> = saved
        .nodes
        .iter()
        .map(|n| n.ns.clone())
        .filter(|ns| !ns.is_empty())
        .collect();
    let mut removed = Vec::new();
    let mut inos = Vec::new();
    let mut first = Ok(());
    for ns in names {
        let Some(ino) = sys::netns_ino(&ns) else {
            continue;
        };
        inos.push(ino);
        sys::kill_all_in(ino, Duration::from_secs(5));
        match sys::netns_del(&ns) {
            Ok(()) => removed.push(ns),
            Err(e) if first.is_ok() => first = Err(e),
            Err(_) => {}
        }
    }
    for ino in inos {
        sys::kill_all_in(ino, Duration::from_secs(5));
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if first.is_ok() && e.kind() != std::io::ErrorKind::NotFound {
            first = Err(LabError::Io {
                what: "removing",
                path: dir.into(),
                source: e,
            });
        }
    }
    first.map(|()| removed)
}
