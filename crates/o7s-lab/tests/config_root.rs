//! Systems that come up entirely from `irmd --config FILE`: on each of two nodes joined by a
//! veth, the config file bootstraps an eth-dix and an eth-llc IPCP on the veth, registers a
//! name in each and binds `oping -l` to those names. Pings then cross both layers in both
//! directions with no `irm` command run by hand.
//!
//! Needs root (network namespaces); without it the test prints a notice and passes.

use o7s_lab::output_text as text;
use o7s_lab::{Lab, Topology};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Node `me`'s config: layers `dix` and `llc` on `dev`, names `dix.<me>` and `llc.<me>`
/// served by `oping -l`, started on demand.
fn config(me: &str, dev: &str, oping: &str) -> String {
    format!(
        r#"# o7s node {me}
[name."dix.{me}"]
prog = ["{oping}"]
args = ["-l"]

[name."llc.{me}"]
prog = ["{oping}"]
args = ["-l"]

[eth-dix.dix-{me}]
bootstrap = "dix"
dev = "{dev}"
ethertype = 0xA00B
reg = ["dix.{me}"]

[eth-llc.llc-{me}]
bootstrap = "llc"
dev = "{dev}"
reg = ["llc.{me}"]
"#
    )
}

#[test]
fn eth_dix_and_eth_llc_systems_from_their_config_files_root() -> TestResult {
    if !o7s_lab::is_root() {
        eprintln!("skipping: needs root for network namespaces");
        return Ok(());
    }
    let mut lab = Lab::up(&Topology::new().node("a").node("b").link("a", "b"))?;
    let oping = o7s_lab::bin_dir().join("oping").display().to_string();
    for (me, peer) in [("a", "b"), ("b", "a")] {
        let dev = lab
            .node(me)
            .ifname_to(peer)
            .ok_or("no interface")?
            .to_string();
        let file = lab.dir().join(format!("{me}.toml"));
        std::fs::write(&file, config(me, &dev, &oping))?;
        lab.restart_irmd(me, &["--config", &file.display().to_string()])?;
    }
    for (from, to) in [("a", "b"), ("b", "a")] {
        let node = lab.node(from);
        // The layers and names are there, as the files say.
        let ipcps = node.irm_ok("ipcp list")?;
        for want in [format!("dix-{from}"), format!("llc-{from}")] {
            assert!(ipcps.contains(&want), "{ipcps}");
        }
        // Each name is registered in one layer only, so each ping crosses that layer.
        for layer in ["dix", "llc"] {
            let name = format!("{layer}.{to}");
            let out = node
                .cmd("oping")
                .args(["-n", &name, "-c", "20", "-i", "0"])
                .output()?;
            let t = text(&out);
            assert!(
                out.status.success(),
                "{from} -> {name}: {t}\n--- a ---\n{}\n--- b ---\n{}",
                lab.node("a").log(),
                lab.node("b").log()
            );
            assert!(t.contains("20 packets transmitted, 20 received"), "{t}");
        }
    }
    // A file naming an interface the node does not have: the irmd does not start, and says
    // why.
    let file = lab.dir().join("bad.toml");
    std::fs::write(&file, config("a", "nosuchdev0", &oping))?;
    let err = lab
        .restart_irmd("a", &["--config", &file.display().to_string()])
        .expect_err("a config that cannot be applied");
    let msg = err.to_string();
    assert!(
        msg.contains("bad parameter dev=nosuchdev0: interface nosuchdev0: no such interface"),
        "{msg}"
    );
    Ok(())
}
