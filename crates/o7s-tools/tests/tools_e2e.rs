//! End-to-end tests of the tools' user-facing surface (SYSTEM.md): `irm` listings and exit
//! codes, `oping` options and output shapes, `oecho`. Real `irmd` and local `ipcpd`, each
//! test in its own run directory; runs as any user.

mod common;

use common::{wait_for, System};
use std::process::{Child, Stdio};
use std::time::Duration;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Start `prog -l` and bind it to `name`, retrying until the IRMd knows the process.
fn server(sys: &System, prog: &str, name: &str) -> Child {
    let srv = sys.spawn(prog, &["-l"]);
    let bind = format!("bind process {} name {name}", srv.id());
    let ok = wait_for(Duration::from_secs(10), || sys.irm(&bind).status.success());
    assert!(ok.is_some(), "could not bind {prog}: {}", sys.log());
    srv
}

fn stop(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

#[test]
fn irm_listings_as_tables_and_json() {
    let sys = System::start();
    sys.local_layer("oping.server");
    let t = sys.irm_ok("ipcp list");
    let mut lines = t.lines();
    assert_eq!(
        lines
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["NAME", "TYPE", "PID", "LAYER", "STATE"]),
        "{t}"
    );
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row.first(), Some(&"lo"), "{t}");
    assert_eq!(row.get(1), Some(&"local"), "{t}");
    assert_eq!(row.get(3), Some(&"lo"), "{t}");

    let v: serde_json::Value = serde_json::from_str(&sys.irm_ok("--json ipcp list")).expect("json");
    assert_eq!(v[0]["name"], "lo");
    assert_eq!(v[0]["type"], "local");
    assert_eq!(v[0]["layer"], "lo");
    // Client-side filters.
    let v: serde_json::Value =
        serde_json::from_str(&sys.irm_ok("ipcp list type unicast --json")).expect("json");
    assert_eq!(v, serde_json::json!([]));
    let v: serde_json::Value =
        serde_json::from_str(&sys.irm_ok("ipcp list layer lo --json")).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(1));

    let srv = server(&sys, "oping", "oping.server");
    let v: serde_json::Value = serde_json::from_str(&sys.irm_ok("name list --json")).expect("json");
    let n = v
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == "oping.server"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(n["layers"], serde_json::json!(["lo"]), "{v}");
    assert_eq!(n["processes"], serde_json::json!([srv.id()]), "{v}");
    assert!(sys.irm_ok("name list").contains("oping.server"));
    assert!(sys.irm_ok("flow list").starts_with("ID"));
    stop(srv);
}

#[test]
fn irm_exit_codes_and_help() {
    let sys = System::start();
    let out = sys.irm("help");
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("irm ipcp bootstrap"));
    let out = sys.irm("ipcp bootstrap --help");
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("eth-dix:"));
    // A bad command line: what is wrong and the usage, exit 2, nothing sent.
    let out = sys.irm("ipcp create type local");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing \"name NAME\""),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("irm ipcp create    type TYPE name NAME"));
    let out = sys.irm("name create x sencpath /a");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("credentials are not supported yet"));
    // The IRMd refuses: exit 1 with its message.
    let out = sys.irm("name destroy nosuch");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("irm: "), "{}", stderr(&out));
    // Success is silent.
    assert_eq!(sys.irm_ok("ipcp bootstrap type local name lo layer lo"), "");
}

#[test]
fn oping_json_summary_only() {
    let sys = System::start();
    sys.local_layer("oping.server");
    let srv = server(&sys, "oping", "oping.server");
    let out = sys
        .cmd("oping")
        .args([
            "-n",
            "oping.server",
            "-c",
            "50",
            "-i",
            "0",
            "-s",
            "200",
            "--json",
        ])
        .output()
        .expect("oping");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["transmitted"], 50);
    assert_eq!(v["received"], 50);
    assert_eq!(v["size"], 200);
    assert_eq!(v["loss_percent"], 0.0);
    let rtt = &v["rtt_ms"];
    for k in ["min", "avg", "max", "mdev", "p50", "p99"] {
        assert!(rtt[k].as_f64().is_some(), "{k} in {v}");
    }
    assert!(rtt["min"].as_f64() <= rtt["max"].as_f64());
    stop(srv);
}

#[test]
fn oping_deadline_quiet_and_reply_lines() {
    let sys = System::start();
    sys.local_layer("oping.server");
    let srv = server(&sys, "oping", "oping.server");
    let out = sys
        .cmd("oping")
        .args(["-n", "oping.server", "-w", "250ms", "-i", "100"])
        .output()
        .expect("oping");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("Pinging oping.server with 64 bytes of data (until interrupted):\n\n"),
        "{text}"
    );
    assert!(
        text.contains("64 bytes from oping.server: seq=0 time="),
        "{text}"
    );
    assert!(
        text.contains("\n\n--- oping.server ping statistics ---\n"),
        "{text}"
    );
    // Sent at 0, 100 and 200 ms (2 on a badly overloaded machine), all answered.
    let stats = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_default();
    let n: Vec<&str> = stats.split_whitespace().collect();
    assert!(matches!(n.first(), Some(&"2") | Some(&"3")), "{stats}");
    assert_eq!(n.first(), n.get(3), "{stats}");
    assert!(
        stats.contains(" 0 out-of-order, 0% packet loss, time: "),
        "{stats}"
    );

    let out = sys
        .cmd("oping")
        .args(["-n", "oping.server", "-c", "5", "-i", "1ms", "-q"])
        .output()
        .expect("oping");
    let text = stdout(&out);
    assert!(
        !text.contains("Pinging") && !text.contains("bytes from"),
        "{text}"
    );
    assert!(text.contains("5 packets transmitted, 5 received"), "{text}");
    stop(srv);
}

#[test]
fn oping_interrupted_prints_the_summary() {
    let sys = System::start();
    sys.local_layer("oping.server");
    let srv = server(&sys, "oping", "oping.server");
    let client = sys
        .cmd("oping")
        .args(["-n", "oping.server", "-i", "20ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("oping");
    // oping prints its header once it pings (and handles Ctrl-C); interrupt it after that.
    let mut client = client;
    let mut reader = std::io::BufReader::new(client.stdout.take().expect("stdout"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut reader, &mut first).expect("header");
    assert!(first.starts_with("Pinging"), "{first}");
    let _ = std::process::Command::new("kill")
        .args(["-INT", &client.id().to_string()])
        .status();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).expect("rest");
    let out = client.wait_with_output().expect("oping");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        rest.contains("--- oping.server ping statistics ---"),
        "{rest}"
    );
    // The flow is gone with the client.
    let gone = wait_for(Duration::from_secs(5), || {
        !sys.irm_ok("flow list --json").contains("flow_id")
    });
    assert!(gone.is_some());
    stop(srv);
}

#[test]
fn oecho_default_message() {
    let sys = System::start();
    sys.local_layer("echo");
    let srv = server(&sys, "oecho", "echo");
    let out = sys
        .cmd("oecho")
        .args(["-n", "echo"])
        .output()
        .expect("oecho");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Client says hi!\n");
    let out = sys
        .cmd("oecho")
        .args(["-n", "nobody"])
        .output()
        .expect("oecho");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("oecho: cannot allocate a flow to \"nobody\": "),
        "{}",
        stderr(&out)
    );
    stop(srv);
}
