//! Round-trip time and throughput across one veth pair between two network namespaces, in
//! one run: o7s over eth-dix and over udp4 beside Linux ping, a UDP ping-pong and iperf3.
//! Needs root and release binaries:
//!
//! ```text
//! cargo build --release --workspace
//! O7S_BIN_DIR=target/release cargo run --release -p o7s-lab --example veth_bench
//! ```

use o7s_lab::{Lab, Topology};
use serde_json::Value;
use std::process::{Child, Stdio};
use std::time::Duration;

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn out(c: &mut std::process::Command) -> R<String> {
    let o = c.output()?;
    if !o.status.success() {
        return Err(format!("{:?}: {}", c, String::from_utf8_lossy(&o.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

struct Kill(Vec<Child>);
impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn oping(lab: &Lab, name: &str, pings: u32) -> R<Value> {
    let s = out(lab.node("a").cmd("oping").args([
        "-n",
        name,
        "-c",
        &pings.to_string(),
        "-i",
        "0",
        "--json",
    ]))?;
    Ok(serde_json::from_str::<Value>(&s)?["rtt_ms"].clone())
}

fn main() -> R<()> {
    let pings = 20_000;
    let lab = Lab::up(&Topology::new().node("a").node("b").link("a", "b"))?;
    let (a, b) = (lab.node("a"), lab.node("b"));
    let (ia, ib) = (
        a.addr4_to("b").ok_or("addr")?,
        b.addr4_to("a").ok_or("addr")?,
    );
    let (da, db) = (
        a.ifname_to("b").ok_or("if")?.to_string(),
        b.ifname_to("a").ok_or("if")?.to_string(),
    );
    let mut bg = Kill(Vec::new());

    // Linux baselines.
    let ping = out(a
        .cmd("ping")
        .args(["-c", "2000", "-i", "0.001", "-q", &ib.to_string()]))?;
    let ping_rtt = ping
        .lines()
        .find(|l| l.contains("rtt"))
        .unwrap_or("")
        .to_string();
    bg.0.push(
        b.cmd("o7s-bench")
            .args(["--udp-echo", &format!("{ib}:9000")])
            .stdout(Stdio::null())
            .spawn()?,
    );
    std::thread::sleep(Duration::from_millis(200));
    let udp_pp = out(a.cmd("o7s-bench").args([
        "--udp-ping",
        &format!("{ib}:9000"),
        "--pings",
        &pings.to_string(),
        "--json",
    ]))?;
    bg.0.push(
        b.cmd("iperf3")
            .args(["-s", "-1", "-B", &ib.to_string()])
            .stdout(Stdio::null())
            .spawn()?,
    );
    std::thread::sleep(Duration::from_millis(300));
    let iperf = out(a.cmd("iperf3").args([
        "-c",
        &ib.to_string(),
        "-u",
        "-b",
        "0",
        "-l",
        "1400",
        "-t",
        "3",
        "--json",
    ]))?;
    let iperf: Value = serde_json::from_str(&iperf)?;
    let iperf_rx = iperf["end"]["sum"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
        / 1e9;
    let iperf_loss = iperf["end"]["sum"]["lost_percent"].as_f64().unwrap_or(0.0);

    // o7s over eth-dix and udp4.
    a.irm_ok(&format!(
        "ipcp bootstrap type eth-dix name ea layer eth dev {da}"
    ))?;
    b.irm_ok(&format!(
        "ipcp bootstrap type eth-dix name eb layer eth dev {db}"
    ))?;
    let hosts = lab.dir().join("hosts");
    std::fs::write(&hosts, format!("{ib} srv.udp perf.udp\n"))?;
    let h = hosts.display();
    a.irm_ok(&format!(
        "ipcp bootstrap type udp4 name ua layer udp ip {ia} hosts {h}"
    ))?;
    b.irm_ok(&format!(
        "ipcp bootstrap type udp4 name ub layer udp ip {ib} hosts {h}"
    ))?;
    b.irm_ok("name reg srv.eth layer eth")?;
    b.irm_ok("name reg srv.udp layer udp")?;
    b.irm_ok("bind program oping name srv.eth auto -- -l")?;
    b.irm_ok("bind program oping name srv.udp auto -- -l")?;
    let eth = oping(&lab, "srv.eth", pings)?;
    let udp = oping(&lab, "srv.udp", pings)?;
    let mut operf = String::from("(operf not available)");
    if a.cmd("operf")
        .arg("--help")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
    {
        b.irm_ok("name reg perf.eth layer eth")?;
        b.irm_ok("bind program operf name perf.eth auto -- -l")?;
        operf = out(a
            .cmd("operf")
            .args(["-n", "perf.eth", "-s", "1400", "-d", "3s", "-f", "--json"]))?;
    }

    let udp_pp: Value = serde_json::from_str(&udp_pp)?;
    println!("veth between two namespaces, 64-byte ping-pong ({pings} round trips):");
    println!("  linux ping (ICMP, 2000 x 1 ms): {ping_rtt}");
    println!(
        "  linux UDP ping-pong:  p50 {:.1} us  p99 {:.1} us  avg {:.1} us",
        udp_pp["p50_us"].as_f64().unwrap_or(0.0),
        udp_pp["p99_us"].as_f64().unwrap_or(0.0),
        udp_pp["avg_us"].as_f64().unwrap_or(0.0)
    );
    for (n, r) in [("o7s eth-dix", &eth), ("o7s udp4", &udp)] {
        println!(
            "  {n:<20}  p50 {:.1} us  p99 {:.1} us  avg {:.1} us",
            r["p50"].as_f64().unwrap_or(0.0) * 1000.0,
            r["p99"].as_f64().unwrap_or(0.0) * 1000.0,
            r["avg"].as_f64().unwrap_or(0.0) * 1000.0
        );
    }
    println!("one-way 1400-byte throughput, 3 s:");
    println!("  iperf3 -u -b 0: {iperf_rx:.3} Gb/s received, {iperf_loss:.1}% lost");
    println!("  operf over eth-dix: {}", operf.trim());
    Ok(())
}
