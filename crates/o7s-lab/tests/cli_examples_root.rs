//! Every example network comes up with `o7s-lab up`, answers an all-pairs `oping` (every
//! node pings every oping server in its layers), and `o7s-lab down` leaves nothing: no
//! namespace, no interface, no process, no directory. Needs root; without it each test
//! prints a notice and passes.

use o7s_lab::saved::Saved;
use o7s_lab::spec::Network;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn lab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_o7s-lab"))
}

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../examples/{name}.toml"))
}

fn out(c: &mut Command) -> (bool, String) {
    let o = c.output().expect("run o7s-lab");
    let t = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), t)
}

/// `from` pings `name` (retrying the first ping while the directory learns the name).
fn ping(rec: &Saved, from: &str, name: &str) -> Result<(), String> {
    let run = |count: &str| {
        let argv: Vec<String> = ["oping", "-n", name, "-c", count, "-i", "0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut c = o7s_lab::cli::exec(rec, from, &argv).expect("exec");
        c.stdin(std::process::Stdio::null());
        let o = c.output().expect("oping");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    o7s_lab::wait_for(Duration::from_secs(20), || run("1").0);
    let (ok, text) = run("3");
    if ok && text.contains("3 packets transmitted, 3 received") {
        Ok(())
    } else {
        Err(format!("{from} -> {name}: {text}"))
    }
}

fn all_pairs(net: &Network, rec: &Saved) {
    let servers: Vec<_> = net
        .names
        .iter()
        .filter(|n| n.prog.as_deref() == Some("oping"))
        .collect();
    assert!(!servers.is_empty());
    // The directory may need a moment for names registered last.
    let first = &net.topology.nodes[0].name;
    for srv in servers.iter().filter(|s| s.node != *first) {
        o7s_lab::wait_for(Duration::from_secs(20), || {
            ping(rec, first, &srv.name).is_ok()
        });
    }
    let mut errors = Vec::new();
    for from in &net.topology.nodes {
        for srv in servers.iter() {
            let members = net.members(srv.layer);
            if srv.node != from.name && members.contains(&from.name) {
                if let Err(e) = ping(rec, &from.name, &srv.name) {
                    errors.push(e);
                }
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} failed:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

fn host_links() -> String {
    let o = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Up, all pairs, down, nothing left.
pub fn round_trip(name: &str) {
    if !o7s_lab::is_root() {
        eprintln!("skipping {name}: needs root for network namespaces");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("lab");
    let lab_name = format!("t{}-{name}", std::process::id());
    let file = example(name);
    let net = Network::load(&file).expect("example");
    let (ok, text) = out(lab()
        .arg("up")
        .arg(&file)
        .arg("--dir")
        .arg(&dir)
        .args(["--name", &lab_name]));
    assert!(ok, "up {name}: {text}");
    let rec = Saved::read(&dir).expect("lab record");
    let _guard = Down(dir.clone());
    let (ok, status) = out(lab().arg("status").arg("--dir").arg(&dir));
    assert!(
        ok && status.contains("unicast") || name == "pair",
        "{status}"
    );
    let pids: Vec<(u32, String)> = rec
        .nodes
        .iter()
        .flat_map(|n| o7s_lab::netns_pids(&n.ns))
        .filter_map(|p| net_ns(p).map(|ns| (p, ns)))
        .collect();
    assert!(pids.len() >= rec.nodes.len(), "{pids:?}");
    all_pairs(&net, &rec);
    let (ok, text) = out(lab().arg("down").arg("--dir").arg(&dir));
    assert!(ok, "down: {text}");
    left_nothing(&rec, &dir, &pids);
}

/// Removes the lab if the test fails halfway.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = o7s_lab::cli::down(&self.0);
        }
    }
}

/// The network namespace of process `pid`, as `net:[INODE]`.
fn net_ns(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|l| l.display().to_string())
}

pub fn left_nothing(rec: &Saved, dir: &Path, pids: &[(u32, String)]) {
    let ns = o7s_lab::netns_list();
    let prefix = o7s_lab::named_ns(&rec.name, "");
    assert!(!ns.iter().any(|n| n.starts_with(&prefix)), "{ns:?}");
    // Alive and still in one of the lab's namespaces (a pid may be reused meanwhile).
    let alive: Vec<u32> = pids
        .iter()
        .map(|&(p, ref ns)| (p, ns.clone()))
        .filter(|(p, ns)| o7s_lab::pid_alive(*p) && net_ns(*p).as_ref() == Some(ns))
        .map(|(p, _)| p)
        .collect();
    assert!(alive.is_empty(), "still running: {alive:?}");
    assert!(!dir.exists(), "{} is left", dir.display());
    let links = host_links();
    assert!(!links.contains(": v0-"), "{links}");
}

#[test]
fn pair_root() {
    round_trip("pair");
}

#[test]
fn diamond_root() {
    round_trip("diamond");
}

#[test]
fn stack_root() {
    round_trip("stack");
}

#[test]
fn random20_root() {
    round_trip("random20");
}
