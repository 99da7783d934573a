//! A running lab: creates the namespaces, veth links and `irmd`s of a [`Topology`], changes
//! links while it runs, and removes every trace of itself when dropped. Never touches an
//! interface, address or route outside the namespaces it created.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::node::Node;
use crate::sys;
use crate::topology::{End, Topology};

/// Prefix of every namespace and temporary directory a lab creates.
pub const PREFIX: &str = "o7s";

/// How long `irmd`s get to exit after SIGTERM before everything is killed.
const GRACE: Duration = Duration::from_secs(2);

/// How long to keep sweeping deleted namespaces for late arrivals.
const LATE: Duration = Duration::from_millis(50);

/// Labs started by this process so far; part of namespace names.
static SEQ: AtomicU32 = AtomicU32::new(0);

/// A running lab: one network namespace and `irmd` per node, one veth pair per link.
///
/// Namespaces are named `o7s-<pid>-<n>-<node>`, so labs of parallel tests and processes never
/// collide and [`cleanup_stale`](crate::cleanup_stale) can tell leftovers of dead runs.
/// Dropping the lab (also while unwinding from a panic) kills every process in its
/// namespaces, deletes the namespaces (and with them the veths) and removes its directory.
///
/// ```no_run
/// use o7s_lab::{Lab, Topology};
///
/// let lab = Lab::up(&Topology::new().node("a").node("b").link("a", "b"))?;
/// let (a, b) = (lab.node("a"), lab.node("b"));
/// let peer = b.addr4_to("a").unwrap().to_string();
/// let ok = a.cmd("ping").args(["-c", "1", "-W", "1", &peer]).status().unwrap();
/// assert!(ok.success());
/// a.irm_ok("ipcp list")?;
/// # Ok::<(), o7s_lab::LabError>(())
/// ```
#[derive(Debug)]
pub struct Lab {
    topology: Topology,
    nodes: Vec<Node>,
    dir: Option<LabDir>,
    host_only: bool,
}

/// Where a lab keeps its run directories.
#[derive(Debug)]
enum LabDir {
    /// A temporary directory, removed with the lab.
    Temp(tempfile::TempDir),
    /// A directory given by the caller, removed with the lab.
    Given(PathBuf),
}

impl LabDir {
    fn path(&self) -> &Path {
        match self {
            LabDir::Temp(d) => d.path(),
            LabDir::Given(p) => p,
        }
    }
}

/// How [`Lab::up_with`] builds a lab.
#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// A name for the lab (a letter, then `[a-z0-9_-]`): its namespaces are
    /// `o7s-<name>-<node>` instead of carrying this process's id, so the lab can outlive
    /// the process ([`Lab::detach`]) and [`cleanup_stale`](crate::cleanup_stale) leaves it
    /// alone.
    pub name: Option<String>,
    /// The lab's directory (created if missing; removed with the lab); default a temporary
    /// one. Node run directories are made inside it.
    pub dir: Option<PathBuf>,
    /// No namespaces and no links: every node's `irmd` runs on this host in its own run
    /// directory (nodes talk over UDP on loopback). Needs no root.
    pub host_only: bool,
}

impl Lab {
    /// Build the lab for `topology`: namespaces, links, addresses, one `irmd` per node.
    /// On error, whatever was built is torn down before returning.
    pub fn up(topology: &Topology) -> Result<Lab> {
        Lab::up_with(topology, &LabOptions::default())
    }

    /// Build the lab for `topology` as `opts` say. On error, whatever was built is torn
    /// down before returning.
    pub fn up_with(topology: &Topology, opts: &LabOptions) -> Result<Lab> {
        if !opts.host_only && !sys::is_root() {
            return Err(LabError::NotRoot);
        }
        topology.validate()?;
        if let Some(n) = &opts.name {
            let ok =
                n.starts_with(|c: char| c.is_ascii_lowercase()) && crate::topology::valid_name(n);
            if !ok {
                return Err(LabError::Topology(format!(
                    "lab name {n:?} is invalid; use a letter, then [a-z0-9_-]"
                )));
            }
        }
        let bin = sys::bin_dir();
        for b in ["irmd", "ipcpd", "irm"] {
            if !bin.join(b).is_file() {
                return Err(LabError::NoBinary {
                    name: b.into(),
                    dir: bin,
                });
            }
        }
        let pid = std::process::id();
        let seq = loop {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            // A stale run of a process with our pid may have left names behind.
            if !topology
                .nodes
                .iter()
                .any(|s| sys::netns_exists(&ns_name(pid, n, &s.name)))
            {
                break n;
            }
        };
        let ns_of = |node: &str| match &opts.name {
            _ if opts.host_only => String::new(),
            Some(name) => named_ns(name, node),
            None => ns_name(pid, seq, node),
        };
        if let Some(ns) = topology
            .nodes
            .iter()
            .map(|s| ns_of(&s.name))
            .find(|ns| !ns.is_empty() && sys::netns_exists(ns))
        {
            return Err(LabError::Topology(format!(
                "namespace {ns} exists already: is this lab up? (o7s-lab down removes it)"
            )));
        }
        let dir = match &opts.dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|source| LabError::Io {
                    what: "creating",
                    path: d.clone(),
                    source,
                })?;
                LabDir::Given(d.clone())
            }
            None => LabDir::Temp(
                tempfile::Builder::new()
                    .prefix(&format!("{PREFIX}-lab-{pid}-{seq}-"))
                    .tempdir()
                    .map_err(|source| LabError::Io {
                        what: "creating a temporary directory in",
                        path: std::env::temp_dir(),
                        source,
                    })?,
            ),
        };
        let mut lab = Lab {
            topology: topology.clone(),
            nodes: Vec::new(),
            dir: Some(dir),
            host_only: opts.host_only,
        };
        // From here on, an early return drops `lab`, which removes what was built so far.
        for spec in &topology.nodes {
            let dir = lab.dir().join(&spec.name);
            std::fs::create_dir(&dir).map_err(|source| LabError::Io {
                what: "creating",
                path: dir.clone(),
                source,
            })?;
            let ns = ns_of(&spec.name);
            if opts.host_only {
                lab.nodes.push(Node {
                    name: spec.name.clone(),
                    ns,
                    ino: 0,
                    dir,
                    bin: bin.clone(),
                    ports: Vec::new(),
                    irmd: None,
                    irmd_args: Vec::new(),
                });
                continue;
            }
            sys::netns_add(&ns)?;
            let Some(ino) = sys::netns_ino(&ns) else {
                let _ = sys::netns_del(&ns);
                return Err(LabError::Io {
                    what: "reading",
                    path: std::path::Path::new(sys::NETNS_DIR).join(&ns),
                    source: std::io::ErrorKind::NotFound.into(),
                });
            };
            lab.nodes.push(Node {
                name: spec.name.clone(),
                ns,
                ino,
                dir,
                bin: bin.clone(),
                ports: topology.ports(&spec.name),
                irmd: None,
                irmd_args: Vec::new(),
            });
        }
        for i in 0..topology.links.len() {
            if !opts.host_only {
                lab.add_link(i)?;
            }
        }
        for n in &mut lab.nodes {
            n.start_irmd()?;
        }
        Ok(lab)
    }

    /// Create veth pair `i` straight inside the two namespaces (never in ours, so names only
    /// need to be unique per namespace), set MTU and addresses, bring both ends up.
    fn add_link(&self, i: usize) -> Result<()> {
        let l = &self.topology.links[i];
        let (pa, pb) = (self.topology.port(i, End::A), self.topology.port(i, End::B));
        let (na, nb) = (self.ns_of(&l.a)?, self.ns_of(&l.b)?);
        sys::ip(&[
            "link", "add", &pa.ifname, "netns", na, "type", "veth", "peer", "name", &pb.ifname,
            "netns", nb,
        ])?;
        for (ns, p) in [(na, &pa), (nb, &pb)] {
            if let Some(mtu) = p.mtu {
                sys::ip_in(ns, &["link", "set", &p.ifname, "mtu", &mtu.to_string()])?;
            }
            if let Some(a) = p.addr4 {
                let cidr = format!("{a}/{}", crate::Port::PREFIX4);
                sys::ip_in(ns, &["addr", "add", &cidr, "dev", &p.ifname])?;
            }
            if let Some(a) = p.addr6 {
                let cidr = format!("{a}/{}", crate::Port::PREFIX6);
                sys::ip_in(ns, &["addr", "add", &cidr, "dev", &p.ifname, "nodad"])?;
            }
            sys::ip_in(ns, &["link", "set", &p.ifname, "up"])?;
        }
        Ok(())
    }

    fn ns_of(&self, node: &str) -> Result<&str> {
        self.try_node(node)
            .map(Node::netns)
            .ok_or_else(|| LabError::NoNode(node.into()))
    }

    /// The topology this lab was built from.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// All nodes, in topology order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Node `name`, or `None`.
    pub fn try_node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Node `name`. Panics if the topology has no such node (a bug in the test).
    pub fn node(&self, name: &str) -> &Node {
        self.try_node(name).unwrap_or_else(|| {
            let names: Vec<&str> = self.nodes.iter().map(Node::name).collect();
            panic!("node {name:?} is not part of this lab; nodes: {names:?}")
        })
    }

    /// Stop node `node`'s `irmd` and everything else running in its namespace, then start
    /// `irmd --stdout ARGS` there (for example `--config FILE`) and wait until it listens.
    /// The node's log starts anew. An `irmd` that exits at start (say, over a bad config
    /// file) is an error that carries the end of its log.
    pub fn restart_irmd(&mut self, node: &str, args: &[&str]) -> Result<()> {
        let n = self
            .nodes
            .iter_mut()
            .find(|n| n.name == node)
            .ok_or_else(|| LabError::NoNode(node.into()))?;
        n.term_irmd();
        n.kill_all(GRACE);
        n.irmd_args = args.iter().map(|a| a.to_string()).collect();
        n.start_irmd()
    }

    /// The lab's directory (one run directory per node inside).
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map(LabDir::path)
            .unwrap_or_else(|| Path::new(""))
    }

    /// Is this a lab without namespaces ([`LabOptions::host_only`])?
    pub fn host_only(&self) -> bool {
        self.host_only
    }

    /// Leave the lab running when this value goes away: namespaces, links, `irmd`s and the
    /// directory stay. Returns the directory. Another process removes the lab with
    /// [`remove_saved`](crate::saved::remove) and what [`saved`](crate::saved) recorded.
    pub fn detach(mut self) -> PathBuf {
        self.nodes.clear();
        match self.dir.take() {
            Some(LabDir::Temp(d)) => d.keep(),
            Some(LabDir::Given(p)) => p,
            None => PathBuf::new(),
        }
    }

    /// Drop `percent` (0..=100) of the frames arriving on interface `ifname` of `node`, using
    /// an nftables netdev ingress hook with `numgen random`; works for raw Ethernet frames
    /// too. Replaces an earlier setting on that interface; 0 removes it.
    pub fn set_loss(&self, node: &str, ifname: &str, percent: u8) -> Result<()> {
        let ns = self.ns_of(node)?;
        if percent == 0 {
            return crate::loss::clear(ns, ifname);
        }
        crate::loss::set(ns, ifname, percent.min(100))
    }

    /// Remove the loss set by [`Lab::set_loss`] on `ifname` of `node`, if any.
    pub fn clear_loss(&self, node: &str, ifname: &str) -> Result<()> {
        crate::loss::clear(self.ns_of(node)?, ifname)
    }

    /// Take down both ends of every link between `a` and `b`.
    pub fn link_down(&self, a: &str, b: &str) -> Result<()> {
        self.set_link(a, b, "down")
    }

    /// Bring up both ends of every link between `a` and `b`.
    pub fn link_up(&self, a: &str, b: &str) -> Result<()> {
        self.set_link(a, b, "up")
    }

    fn set_link(&self, a: &str, b: &str, state: &str) -> Result<()> {
        let (na, nb) = (self.ns_of(a)?, self.ns_of(b)?);
        let ports: Vec<_> = self.node(a).ports.iter().filter(|p| p.peer == b).collect();
        if ports.is_empty() {
            return Err(LabError::NoLink {
                a: a.into(),
                b: b.into(),
            });
        }
        for p in ports {
            sys::ip_in(na, &["link", "set", &p.ifname, state])?;
            sys::ip_in(nb, &["link", "set", &p.peer_ifname, state])?;
        }
        Ok(())
    }

    /// Tear the lab down now and report the first failure; dropping does the same silently.
    pub fn down(mut self) -> Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        for n in &self.nodes {
            n.term_irmd();
        }
        let mut first = Ok(());
        for n in &mut self.nodes {
            n.kill_all(GRACE);
            if n.ns.is_empty() {
                continue;
            }
            if let Err(e) = sys::netns_del(&n.ns) {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        // A process that opened a namespace just before it was deleted (`ip netns exec`
        // between open and setns) enters it late: sweep once more after deletion.
        let inos: Vec<u64> = self
            .nodes
            .iter()
            .map(|n| n.ino)
            .filter(|&i| i != 0)
            .collect();
        sys::wait_for(LATE, || {
            for &ino in &inos {
                sys::kill_all_in(ino, Duration::ZERO);
            }
            false
        });
        for &ino in &inos {
            sys::kill_all_in(ino, Duration::from_secs(5));
        }
        self.nodes.clear();
        if let Some(d) = self.dir.take() {
            let path = d.path().to_path_buf();
            let res = match d {
                LabDir::Temp(d) => d.close(),
                LabDir::Given(p) => std::fs::remove_dir_all(p),
            };
            if let Err(source) = res {
                if first.is_ok() {
                    first = Err(LabError::Io {
                        what: "removing",
                        path,
                        source,
                    });
                }
            }
        }
        first
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// Namespace name of `node` in the lab named `lab` ([`LabOptions::name`]).
pub fn named_ns(lab: &str, node: &str) -> String {
    format!("{PREFIX}-{lab}-{node}")
}

/// Namespace name of `node` in lab `seq` of process `pid`.
pub(crate) fn ns_name(pid: u32, seq: u32, node: &str) -> String {
    format!("{PREFIX}-{pid}-{seq}-{node}")
}
