//! What the `o7s-lab` subcommands do, as library functions: `up` builds a network file into
//! a lab that outlives the command, `down` removes it, `exec` runs a command in a node,
//! `status` reads every node, and `demo` does it all on the diamond example. The binary only
//! parses arguments and prints.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::build::build;
use crate::error::{LabError, Result};
use crate::plan::{Addressing, Plan};
use crate::saved::{self, Saved};
use crate::spec::{LayerKind, Network};
use crate::{Lab, LabOptions};

/// The lab name for a network file: its stem, made a valid name.
pub fn lab_name(file: &Path) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut s: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s.insert_str(0, "lab-");
    }
    s.truncate(24);
    s
}

/// Options of [`up`].
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// The lab's directory; default `labs_root()/NAME`.
    pub dir: Option<PathBuf>,
    /// The lab's name; default from the file name.
    pub name: Option<String>,
    /// No namespaces: every node on this host, shims as udp4 on 127.0.0.x (no root needed).
    pub host_only: bool,
}

/// Bring the network of `file` up and leave it running. `say` gets progress lines.
/// On failure, whatever was built is removed again.
pub fn up(file: &Path, opts: &UpOptions, say: &mut dyn FnMut(&str)) -> Result<Saved> {
    let text = std::fs::read_to_string(file).map_err(|source| LabError::Io {
        what: "reading",
        path: file.into(),
        source,
    })?;
    let mut net = Network::from_toml(&text, &file.display().to_string())?;
    if opts.host_only {
        udp_shims(&mut net);
    }
    let name = opts.name.clone().unwrap_or_else(|| lab_name(file));
    let dir = opts
        .dir
        .clone()
        .unwrap_or_else(|| saved::labs_root().join(&name));
    if dir.join(saved::RECORD).exists() {
        let old = Saved::read(&dir)?;
        if old.ready || old.builder_alive() {
            return Err(LabError::Msg(format!(
                "lab {} is up already in {}; remove it first: o7s-lab down --dir {}",
                old.name,
                dir.display(),
                dir.display()
            )));
        }
        let gone = saved::remove(&dir)?;
        say(&format!(
            "removed what an interrupted earlier run left in {} ({} namespaces)",
            dir.display(),
            gone.len()
        ));
    }
    let mut rec = Saved::new(&name, &dir, file, &net.topology, opts.host_only);
    rec.file = file.canonicalize().unwrap_or_else(|_| file.into());
    rec.write()?;
    std::fs::write(dir.join(saved::NETWORK), &text).map_err(|source| LabError::Io {
        what: "writing",
        path: dir.join(saved::NETWORK),
        source,
    })?;
    let lab_opts = LabOptions {
        name: (!opts.host_only).then(|| name.clone()),
        dir: Some(dir.clone()),
        host_only: opts.host_only,
    };
    let started = Instant::now();
    let lab = match Lab::up_with(&net.topology, &lab_opts) {
        Ok(lab) => lab,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    for (r, n) in rec.nodes.iter_mut().zip(lab.nodes()) {
        r.irmd = n.irmd_pid();
    }
    rec.write()?;
    say(&format!(
        "{} nodes, {} links up in {:.1} s; building layers",
        net.topology.nodes.len(),
        net.topology.links.len(),
        started.elapsed().as_secs_f64()
    ));
    let addressing = if opts.host_only {
        Addressing::Loopback
    } else {
        Addressing::Netns
    };
    let plan = Plan::new(&net, addressing);
    build(&lab, &plan, say)?;
    say(&format!(
        "network up in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    rec.ready = true;
    rec.write()?;
    lab.detach();
    Ok(rec)
}

/// Turn every shim layer into udp4 (for a host-only lab).
pub fn udp_shims(net: &mut Network) {
    for l in &mut net.layers {
        if l.kind.is_shim() {
            l.kind = LayerKind::Udp4;
            l.params.retain(|(k, _)| k == "hash");
        }
    }
}

/// Remove the lab in `dir` and, while at it, leftovers of dead test labs. Returns the
/// namespaces deleted.
pub fn down(dir: &Path) -> Result<Vec<String>> {
    let mut gone = saved::remove(dir)?;
    if crate::is_root() {
        gone.extend(crate::cleanup_stale(crate::PREFIX).unwrap_or_default());
    }
    Ok(gone)
}

/// The network of a saved lab, from the copy in its directory.
pub fn network_of(rec: &Saved) -> Result<Network> {
    let path = rec.dir.join(saved::NETWORK);
    let text = std::fs::read_to_string(&path).map_err(|source| LabError::Io {
        what: "reading",
        path: path.clone(),
        source,
    })?;
    let mut net = Network::from_toml(&text, &rec.file.display().to_string())?;
    if rec.host_only {
        udp_shims(&mut net);
    }
    Ok(net)
}

/// A command that runs `argv` inside node `node` of the lab (its namespace, `O7S_RUNDIR`,
/// our binaries first on `PATH`), with the caller's stdin.
pub fn exec(rec: &Saved, node: &str, argv: &[String]) -> Result<Command> {
    let Some((prog, args)) = argv.split_first() else {
        return Err(LabError::Msg(
            "no command given; usage: o7s-lab exec NODE -- CMD [ARGS...]".into(),
        ));
    };
    let n = rec.node(node).map_err(|_| {
        let names: Vec<&str> = rec.nodes.iter().map(|n| n.name.as_str()).collect();
        LabError::Msg(format!(
            "node {node:?} is not part of lab {}; nodes: {}",
            rec.name,
            names.join(", ")
        ))
    })?;
    let mut c = n.cmd(prog);
    c.args(args).stdin(std::process::Stdio::inherit());
    Ok(c)
}

/// The status of every node of the lab, as text or one JSON array.
pub fn status(rec: &Saved, json: bool) -> Result<String> {
    let mut out = String::new();
    let mut all = Vec::new();
    if !json {
        out.push_str(&format!(
            "lab {} ({}) from {}{}\n\n",
            rec.name,
            rec.dir.display(),
            rec.file.display(),
            if rec.ready {
                ""
            } else {
                "  -- NOT COMPLETE: its build failed or was interrupted; o7s-lab down removes it"
            }
        ));
    }
    let mut nodes = Vec::new();
    for n in &rec.nodes {
        let node = rec.node(&n.name)?;
        all.push(crate::status::node_json(&node));
        nodes.push(node);
    }
    if !json {
        let names = crate::status::addresses(&all);
        for (node, v) in nodes.iter().zip(&all) {
            out.push_str(&crate::status::node_text(node, v, &names));
            out.push('\n');
        }
    }
    if json {
        out = serde_json::Value::Array(all).to_string();
        out.push('\n');
    }
    Ok(out)
}
