//! A unicast layer from config files alone, with the machines booted in the wrong order: b's
//! file enrolls through a and connects to it, but b starts first. Its IRMd keeps retrying
//! (with backoff) until a is up, then pings cross the unicast layer both ways.
//!
//! Needs root (network namespaces); without it the test prints a notice and passes.

use o7s_lab::{Lab, Topology};
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn config(me: &str, dev: &str, oping: &str, member: bool) -> String {
    let uni = if member {
        "bootstrap = \"net\"\nrouting = \"lfa\"\nls_t_recalc = 1".to_string()
    } else {
        "enrol = \"net-a\"\nconn = [\"net-a\"]".to_string()
    };
    format!(
        r#"[name."srv.{me}"]
prog = ["{oping}"]
args = ["-l"]

[eth-dix.eth-{me}]
bootstrap = "eth"
dev = "{dev}"
reg = ["net-{me}", "net"]

[unicast.net-{me}]
{uni}
autobind = true
reg = ["srv.{me}"]
"#
    )
}

#[test]
fn unicast_layer_from_config_files_booted_in_any_order_root() -> TestResult {
    if !o7s_lab::is_root() {
        eprintln!("skipping: needs root for network namespaces");
        return Ok(());
    }
    let mut lab = Lab::up(&Topology::new().node("a").node("b").link("a", "b"))?;
    let oping = o7s_lab::bin_dir().join("oping").display().to_string();
    // b first: its enrollment through a cannot succeed yet.
    for (me, peer, member) in [("b", "a", false), ("a", "b", true)] {
        let dev = lab
            .node(me)
            .ifname_to(peer)
            .ok_or("no interface")?
            .to_string();
        let file = lab.dir().join(format!("{me}.toml"));
        std::fs::write(&file, config(me, &dev, &oping, member))?;
        lab.restart_irmd(me, &["--config", &file.display().to_string()])?;
        if me == "b" {
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    for (from, to) in [("b", "a"), ("a", "b")] {
        let name = format!("srv.{to}");
        let ok = o7s_lab::wait_for(Duration::from_secs(60), || {
            let out = lab
                .node(from)
                .cmd("oping")
                .args(["-n", &name, "-c", "1"])
                .output();
            out.is_ok_and(|o| o.status.success())
        });
        assert!(
            ok,
            "{from} cannot reach {name}\n--- a ---\n{}\n--- b ---\n{}",
            lab.node("a").log(),
            lab.node("b").log()
        );
        let out = lab
            .node(from)
            .cmd("oping")
            .args(["-n", &name, "-c", "20", "-i", "0"])
            .output()?;
        let t = String::from_utf8_lossy(&out.stdout);
        assert!(t.contains("20 packets transmitted, 20 received"), "{t}");
    }
    // The IRMd said it retried while a was down.
    let log = lab.node("b").log();
    assert!(log.contains("retry") || log.contains("again"), "{log}");
    Ok(())
}
