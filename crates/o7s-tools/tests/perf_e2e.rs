//! End-to-end tests of `operf` and `ocbr` over a local flow: real `irmd` and local `ipcpd`,
//! each test in its own run directory. Short runs at modest rates, so they stay quick and do
//! not depend on the machine's speed.

mod common;

use common::{wait_for, System};
use std::io::Read;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Bind the running server `srv` to `name`, retrying until the IRMd knows the process.
fn bind(sys: &System, srv: &Child, name: &str) {
    let bind = format!("bind process {} name {name}", srv.id());
    let ok = wait_for(Duration::from_secs(10), || sys.irm(&bind).status.success());
    assert!(ok.is_some(), "could not bind {name}: {}", sys.log());
}

/// Start `prog -l ARGS...` with its stdout kept, bound to `name`.
fn server(sys: &System, prog: &str, name: &str, args: &[&str]) -> Child {
    let srv = sys
        .cmd(prog)
        .arg("-l")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn server");
    bind(sys, &srv, name);
    srv
}

/// Stop a server and return what it printed.
fn stop(mut c: Child) -> String {
    let _ = c.kill();
    let _ = c.wait();
    let mut s = String::new();
    if let Some(mut out) = c.stdout.take() {
        let _ = out.read_to_string(&mut s);
    }
    s
}

fn run(sys: &System, prog: &str, args: &[&str]) -> Output {
    let out = sys.cmd(prog).args(args).output().expect("run client");
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}\n{}\nirmd log:\n{}",
        stderr(&out),
        stdout(&out),
        sys.log()
    );
    out
}

fn json(out: &Output) -> serde_json::Value {
    let text = stdout(out);
    assert_eq!(text.lines().count(), 1, "one JSON object: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[test]
fn operf_uni_and_bi_over_a_local_flow() {
    let sys = System::start();
    sys.local_layer("operf");
    let srv = server(&sys, "operf", "operf", &[]);

    // Uni at 8 Mb/s: 1000 packets of 1000 bytes in 1 s, all counted by the server.
    let out = run(
        &sys,
        "operf",
        &[
            "-n", "operf", "-d", "1s", "-s", "1000", "-r", "8M", "--json",
        ],
    );
    let v = json(&out);
    assert_eq!(v["mode"], "uni", "{v}");
    let sent = v["transmitted"].as_u64().unwrap_or(0);
    assert!(sent > 100, "{v}");
    assert_eq!(v["received"], sent, "{v}");
    assert_eq!(v["loss_percent"], 0.0, "{v}");
    assert!(f(&v["mbit_per_s"]) > 0.0, "{v}");
    assert!(f(&v["packets_per_s"]) > 0.0, "{v}");
    assert!(f(&v["time_ms"]) >= 900.0, "{v}");
    assert_eq!(v["client_to_server"]["out_of_order"], 0, "{v}");
    assert_eq!(v["server_to_client"], serde_json::Value::Null, "{v}");

    // Bi, flooding with 1400-byte packets: every packet comes back.
    let out = run(
        &sys,
        "operf",
        &[
            "-n", "operf", "-t", "bi", "-d", "1s", "-s", "1400", "-f", "--json",
        ],
    );
    let v = json(&out);
    assert_eq!(v["mode"], "bi", "{v}");
    assert_eq!(v["flood"], true, "{v}");
    let sent = v["transmitted"].as_u64().unwrap_or(0);
    assert!(sent > 0, "{v}");
    assert_eq!(v["received"], sent, "{v}");
    assert_eq!(v["loss_percent"], 0.0, "{v}");
    assert_eq!(v["client_to_server"]["received"], sent, "{v}");
    assert_eq!(v["server_to_client"]["sent"], sent, "{v}");
    assert!(f(&v["server_to_client"]["mbit_per_s"]) > 0.0, "{v}");

    // The text summary, in the prototype's shape (with --sleep for the timetable).
    let out = run(
        &sys,
        "operf",
        &[
            "-n", "operf", "-t", "bi", "-d", "300ms", "-s", "200", "-r", "1M", "--sleep",
        ],
    );
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "Doing a bidirectional test.\nSending 200 byte packets for 300 ms to operf at 1.000 Mb/s.\n\n"
        ),
        "{text}"
    );
    assert!(text.contains("\n--- operf perf statistics ---\n"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_default();
    let n: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(n.first(), n.get(3), "{line}");
    assert!(line.contains(" received, 0% packet loss, time: "), "{line}");
    assert!(line.contains(" Mb/s."), "{line}");
    assert!(text.contains("client -> server: "), "{text}");
    assert!(text.contains("server -> client: "), "{text}");

    let log = stop(srv);
    assert!(log.contains("doing a unidirectional test"), "{log}");
    assert!(log.contains("uni test, "), "{log}");
    assert!(log.contains("bi test, "), "{log}");
}

#[test]
fn operf_refuses_an_echo_server() {
    let sys = System::start();
    sys.local_layer("oping.server");
    let srv = sys.spawn("oping", &["-l"]);
    bind(&sys, &srv, "oping.server");
    let out = sys
        .cmd("operf")
        .args(["-n", "oping.server", "-d", "100ms"])
        .output()
        .expect("operf");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is it an operf server (operf -l)?"),
        "{}",
        stderr(&out)
    );
    stop(srv);
}

#[test]
fn ocbr_server_reports_the_packets() {
    let sys = System::start();
    sys.local_layer("ocbr");
    let srv = server(&sys, "ocbr", "ocbr", &["-i", "500ms"]);

    // 800 kb/s of 1000-byte packets: 100 packets a second.
    let out = run(
        &sys,
        "ocbr",
        &[
            "-n", "ocbr", "-d", "1", "-s", "1000", "-r", "800k", "--json",
        ],
    );
    let v = json(&out);
    let sent = v["sent"].as_u64().unwrap_or(0);
    assert!((50..=101).contains(&sent), "{v}");
    assert_eq!(v["server"]["received"], sent, "{v}");
    assert_eq!(v["server"]["lost"], 0, "{v}");
    assert!(f(&v["mbit_per_s"]) > 0.0, "{v}");

    // Text output of the client.
    let out = run(
        &sys,
        "ocbr",
        &["-n", "ocbr", "-d", "200ms", "-r", "400k", "--spin"],
    );
    let text = stdout(&out);
    assert!(
        text.starts_with("Client started, duration 200 ms, rate 400000 b/s, size 1000 B.\n"),
        "{text}"
    );
    assert!(text.contains("sent statistics: "), "{text}");
    assert!(text.contains(" 0 lost (0%), 0 out-of-order"), "{text}");

    let log = stop(srv);
    assert!(
        log.starts_with("Server started, interval is 500 ms, timeout is 1 s.\n"),
        "{log}"
    );
    // Interval reports, then the total of the first flow with every packet.
    let reports: Vec<&str> = log.lines().filter(|l| l.contains(" packets (")).collect();
    assert!(reports.len() >= 2, "{log}");
    let counted: u64 = reports
        .iter()
        .take_while(|l| !l.contains("total"))
        .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
        .sum();
    assert_eq!(counted, sent, "{log}");
    assert!(
        log.contains(&format!("total {sent} packets ({} bytes)", sent * 1000)),
        "{log}"
    );
    assert!(
        log.contains(&format!("0 lost (0%), 0 out-of-order of {sent} sent")),
        "{log}"
    );
}

#[test]
fn ocbr_server_json_lines_and_timeout() {
    let sys = System::start();
    sys.local_layer("ocbr");
    let srv = server(&sys, "ocbr", "ocbr", &["-t", "200ms", "--json"]);
    // 8 kb/s of 1000-byte packets: one packet a second, so the server gives up after the
    // first (200 ms of silence), before the client's END.
    let out = run(
        &sys,
        "ocbr",
        &["-n", "ocbr", "-d", "500ms", "-r", "8k", "--json"],
    );
    let v = json(&out);
    assert_eq!(v["sent"], 1, "{v}");
    let log = stop(srv);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let total = lines.iter().find(|j| j["report"] == "total").cloned();
    let total = total.unwrap_or_else(|| panic!("no total: {log}"));
    assert_eq!(total["packets"], 1, "{log}");
    assert_eq!(total["sent"], serde_json::Value::Null, "{log}");
}
