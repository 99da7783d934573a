//! `o7s-lab export`: a [`Plan`] as one `irmd.toml` per node (the format of `docs/config.md`),
//! so the same network comes up on real machines with `irmd --config` on each, booted in
//! any order. Pure text; writing the files is the caller's job ([`write`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{LabError, Result};
use crate::plan::Plan;
use crate::spec::Network;

/// A TOML string literal.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A parameter value: integers bare, the rest quoted.
fn val(v: &str) -> String {
    match v.parse::<i64>() {
        Ok(i) => i.to_string(),
        Err(_) => q(v),
    }
}

fn list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| q(s)).collect();
    format!("[{}]", items.join(", "))
}

/// The `irmd.toml` of `node`. A udp4 IPCP's `hosts` key points at
/// `hosts_dir/hosts-<layer>`, whose text is returned beside the config.
pub fn node_config(
    plan: &Plan,
    node: &str,
    source: &str,
    hosts_dir: &Path,
) -> (String, Vec<(String, String)>) {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# irmd.toml of node {node:?} of {source}, written by `o7s-lab export`.\n\
         # Start with: irmd --config irmd.toml (the machines may boot in any order).\n\
         # `dev` and `ip` are the lab's: change them to this machine's interface and address."
    );
    for b in plan.binds.iter().filter(|b| b.node == node) {
        let _ = writeln!(s, "\n[name.{}]", q(&b.name));
        let _ = writeln!(s, "prog = [{}]", q(b.prog.as_deref().unwrap_or_default()));
        if let Some(a) = &b.args {
            let _ = writeln!(s, "args = [{}]", q(a));
        }
    }
    let mut hosts = Vec::new();
    for p in plan.of_node(node) {
        let _ = writeln!(s, "\n[{}.{}]", p.kind.as_str(), q(&p.name));
        match &p.enrol {
            None => {
                let _ = writeln!(s, "bootstrap = {}", q(&p.layer));
            }
            Some(via) => {
                let _ = writeln!(s, "enrol = {}", q(via));
            }
        }
        for (k, v) in &p.params {
            let _ = writeln!(s, "{k} = {}", val(v));
        }
        if !p.hosts.is_empty() {
            let file = format!("hosts-{}", p.layer);
            let _ = writeln!(
                s,
                "hosts = {}",
                q(&hosts_dir.join(&file).display().to_string())
            );
            hosts.push((file, p.hosts.join("\n") + "\n"));
        }
        if !p.conn.is_empty() {
            let _ = writeln!(s, "conn = {}", list(&p.conn));
        }
        if p.autobind() {
            let _ = writeln!(s, "autobind = true");
        }
        if !p.reg.is_empty() {
            let _ = writeln!(s, "reg = {}", list(&p.reg));
        }
    }
    (s, hosts)
}

/// Write `DIR/<node>/irmd.toml` (and udp4 hosts files beside it) for every node of `net`.
/// Returns the config files written.
pub fn write(net: &Network, plan: &Plan, source: &str, dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| LabError::Io { what, path, source }
    };
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let dir = dir.canonicalize().map_err(io("resolving", dir))?;
    let mut out = Vec::new();
    for n in &net.topology.nodes {
        let nd = dir.join(&n.name);
        std::fs::create_dir_all(&nd).map_err(io("creating", &nd))?;
        let (text, hosts) = node_config(plan, &n.name, source, &nd);
        for (f, t) in hosts {
            let path = nd.join(f);
            std::fs::write(&path, t).map_err(io("writing", &path))?;
        }
        let path = nd.join("irmd.toml");
        std::fs::write(&path, text).map_err(io("writing", &path))?;
        out.push(path);
    }
    Ok(out)
}
