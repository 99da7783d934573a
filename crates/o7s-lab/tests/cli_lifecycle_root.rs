//! The lab's life outside one process: `o7s-lab down` cleans up after an `o7s-lab up` that
//! was killed with SIGKILL halfway, and the `irmd.toml` files of `o7s-lab export` bring a
//! working two-node unicast network up with `irmd --config` alone. Needs root; without it
//! each test prints a notice and passes.

use o7s_lab::plan::{Addressing, Plan};
use o7s_lab::saved::Saved;
use o7s_lab::spec::Network;
use o7s_lab::{Lab, Topology};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../examples/{name}.toml"))
}

/// The network namespace of process `pid`, as `net:[INODE]`.
fn net_ns(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|l| l.display().to_string())
}

#[test]
fn down_cleans_up_after_up_was_killed_root() {
    if !o7s_lab::is_root() {
        eprintln!("skipping: needs root for network namespaces");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("lab");
    let name = format!("k{}", std::process::id());
    let mut up = Command::new(env!("CARGO_BIN_EXE_o7s-lab"))
        .arg("up")
        .arg(example("diamond"))
        .arg("--dir")
        .arg(&dir)
        .args(["--name", &name])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("o7s-lab up");
    // Kill it once the namespaces and irmds exist, while layers are being built.
    let started = o7s_lab::wait_for(Duration::from_secs(20), || {
        Saved::read(&dir).is_ok_and(|r| r.nodes.iter().all(|n| n.irmd.is_some()))
    });
    assert!(started, "up never got going");
    up.kill().expect("kill -9");
    let _ = up.wait();
    let rec = Saved::read(&dir).expect("record");
    assert!(!rec.ready);
    let pids: Vec<(u32, String)> = rec
        .nodes
        .iter()
        .flat_map(|n| o7s_lab::netns_pids(&n.ns))
        .filter_map(|p| net_ns(p).map(|ns| (p, ns)))
        .collect();
    assert!(!pids.is_empty());
    // status says the lab is incomplete; down removes it.
    let st = Command::new(env!("CARGO_BIN_EXE_o7s-lab"))
        .args(["status", "--dir"])
        .arg(&dir)
        .output()
        .expect("status");
    assert!(String::from_utf8_lossy(&st.stdout).contains("NOT COMPLETE"));
    let down = Command::new(env!("CARGO_BIN_EXE_o7s-lab"))
        .args(["down", "--dir"])
        .arg(&dir)
        .output()
        .expect("down");
    assert!(down.status.success(), "{down:?}");
    let ns = o7s_lab::netns_list();
    let prefix = o7s_lab::named_ns(&name, "");
    assert!(!ns.iter().any(|n| n.starts_with(&prefix)), "{ns:?}");
    // Alive and still in one of the lab's namespaces (a pid may be reused meanwhile).
    let alive: Vec<u32> = pids
        .into_iter()
        .filter(|(p, ns)| o7s_lab::pid_alive(*p) && net_ns(*p).as_ref() == Some(ns))
        .map(|(p, _)| p)
        .collect();
    assert!(alive.is_empty(), "{alive:?}");
    assert!(!dir.exists());
}

#[test]
fn exported_configs_bring_up_a_unicast_pair_root() {
    if !o7s_lab::is_root() {
        eprintln!("skipping: needs root for network namespaces");
        return;
    }
    let text = r#"
[[node]]
name = "a"
[[node]]
name = "b"
[[link]]
a = "a"
b = "b"
[[layer]]
name = "eth"
type = "eth-dix"
[[layer]]
name = "net"
type = "unicast"
over = ["eth"]
params = { ls_t_recalc = 1 }
[[name]]
name = "oping.{node}"
nodes = ["*"]
layer = "net"
prog = "oping"
args = "-l"
"#;
    let net = Network::from_toml(text, "pair.toml").expect("valid");
    let plan = Plan::new(&net, Addressing::Netns);
    let out = tempfile::tempdir().expect("tempdir");
    o7s_lab::export::write(&net, &plan, "pair.toml", out.path()).expect("export");
    // The same topology in a lab: interface names match the exported `dev`s.
    let mut lab = Lab::up(&Topology::new().node("a").node("b").link("a", "b")).expect("lab");
    // b first: its enrollment waits for a.
    for n in ["b", "a"] {
        let cfg = out.path().join(n).join("irmd.toml");
        lab.restart_irmd(n, &["--config", &cfg.display().to_string()])
            .expect("irmd --config");
    }
    for (from, to) in [("a", "oping.b"), ("b", "oping.a")] {
        let ok = o7s_lab::wait_for(Duration::from_secs(60), || {
            let o = lab
                .node(from)
                .cmd("oping")
                .args(["-n", to, "-c", "3", "-i", "0"])
                .output();
            o.is_ok_and(|o| o.status.success())
        });
        assert!(
            ok,
            "{from} cannot reach {to}\n--- a ---\n{}\n--- b ---\n{}",
            lab.node("a").log(),
            lab.node("b").log()
        );
    }
}
