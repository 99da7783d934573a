//! Two nodes joined by a veth, with o7s layers straight over the link: eth-dix, eth-llc,
//! udp4, udp6.
//! Needs root (network namespaces); without it each test prints a notice and passes.

use o7s_lab::output_text as text;
use o7s_lab::root_or_skip;
use o7s_lab::{Lab, Topology};
use std::process::Output;
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn pair() -> Result<Lab, Box<dyn std::error::Error>> {
    Ok(Lab::up(
        &Topology::new().node("a").node("b").link("a", "b"),
    )?)
}

/// Bootstrap `kind` on both nodes (with `params(node)`), serve `srv` with `oping -l` on b.
fn layer(lab: &Lab, kind: &str, params: impl Fn(&str) -> String) -> TestResult {
    for n in ["a", "b"] {
        let p = params(n);
        lab.node(n).irm_ok(&format!(
            "ipcp bootstrap type {kind} name {kind}-{n} layer net {p}"
        ))?;
    }
    let b = lab.node("b");
    b.irm_ok("name reg srv layer net")?;
    b.irm_ok("bind program oping name srv auto -- -l")?;
    Ok(())
}

fn oping(lab: &Lab, args: &[&str]) -> Result<Output, Box<dyn std::error::Error>> {
    Ok(lab.node("a").cmd("oping").args(args).output()?)
}

fn check_ping(lab: &Lab, count: u32) -> TestResult {
    let c = count.to_string();
    let out = oping(lab, &["-n", "srv", "-c", &c, "-i", "0"])?;
    let t = text(&out);
    assert!(
        out.status.success(),
        "{t}\n--- a ---\n{}\n--- b ---\n{}",
        lab.node("a").log(),
        lab.node("b").log()
    );
    assert!(
        t.contains(&format!("{count} packets transmitted, {count} received")),
        "{t}"
    );
    Ok(())
}

fn eth_two_nodes(kind: &str) -> TestResult {
    let lab = pair()?;
    layer(&lab, kind, |n| {
        let peer = if n == "a" { "b" } else { "a" };
        format!("dev {}", lab.node(n).ifname_to(peer).unwrap_or_default())
    })?;
    check_ping(&lab, 500)?;
    // oecho to a name registered only on the far node.
    let b = lab.node("b");
    b.irm_ok("name reg echo layer net")?;
    b.irm_ok("bind program oecho name echo auto -- -l")?;
    let out = lab
        .node("a")
        .cmd("oecho")
        .args(["-n", "echo", "-m", "over ethernet"])
        .output()?;
    assert!(text(&out).contains("over ethernet"), "{}", text(&out));
    // A name registered nowhere: a clear error within the query timeout.
    let t0 = Instant::now();
    let out = oping(&lab, &["-n", "nowhere", "-c", "1"])?;
    assert!(!out.status.success());
    assert!(text(&out).contains("not registered"), "{}", text(&out));
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    // Frames of ours that are garbage are dropped, counted, never answered.
    if kind == "eth-dix" {
        garbage_frames(&lab)?;
    }
    // Larger than the layer's MTU: refused with the limit, not sent.
    let out = oping(&lab, &["-n", "srv", "-c", "1", "-s", "9000"])?;
    assert!(!out.status.success());
    assert!(text(&out).contains("larger than"), "{}", text(&out));
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Send malformed eth-dix frames from a to b; b drops and counts them, and still works.
fn garbage_frames(lab: &Lab) -> TestResult {
    let (a, b) = (lab.node("a"), lab.node("b"));
    let dev_a = a.ifname_to("b").ok_or("no if")?;
    let dev_b = b.ifname_to("a").ok_or("no if")?;
    let mac_text = b
        .cmd("cat")
        .arg(format!("/sys/class/net/{dev_b}/address"))
        .output()?;
    let mac: Vec<u8> = String::from_utf8_lossy(&mac_text.stdout)
        .trim()
        .split(':')
        .filter_map(|x| u8::from_str_radix(x, 16).ok())
        .collect();
    assert_eq!(mac.len(), 6);
    let frame = |eid: u16, len: u16, body: &[u8]| {
        let mut f = mac.clone();
        f.extend_from_slice(&[2, 0, 0, 0, 0, 9, 0xA0, 0x00]);
        f.extend_from_slice(&eid.to_be_bytes());
        f.extend_from_slice(&len.to_be_bytes());
        f.extend_from_slice(body);
        while f.len() < 60 {
            f.push(0);
        }
        hex(&f)
    };
    let frames = [
        frame(0x1234, 10, &[1; 10]), // unknown endpoint
        frame(0, 3, &[0, 1, 2]),     // truncated management message
        frame(0, 1000, &[0; 20]),    // length beyond the frame
        frame(0, 39, &[0xee; 39]),   // unknown management code
        frame(0, 39, &{
            // a flow reply nobody asked for
            let mut m = [0u8; 39];
            m[37] = 1;
            m[2..4].copy_from_slice(&77u16.to_be_bytes());
            m
        }),
    ];
    let out = a
        .cmd("o7s-inject")
        .arg(dev_a)
        .arg("0xA000")
        .args(&frames)
        .output()?;
    assert!(out.status.success(), "{}", text(&out));
    let dropped = o7s_lab::wait_for(Duration::from_secs(5), || {
        b.irm_ok("ipcp show name eth-dix-b --json")
            .ok()
            .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
            .and_then(|v| v["dropped packets"].as_str()?.parse::<u64>().ok())
            .is_some_and(|n| n >= frames.len() as u64)
    });
    assert!(dropped, "{}", b.irm_ok("ipcp show name eth-dix-b")?);
    check_ping(lab, 10)
}

#[test]
fn eth_dix_two_nodes_root() -> TestResult {
    if !root_or_skip("eth_dix_two_nodes_root") {
        return Ok(());
    }
    eth_two_nodes("eth-dix")
}

#[test]
fn eth_llc_two_nodes_root() -> TestResult {
    if !root_or_skip("eth_llc_two_nodes_root") {
        return Ok(());
    }
    eth_two_nodes("eth-llc")
}

#[test]
fn eth_dix_ipcp_killed_then_bootstrapped_again_root() -> TestResult {
    if !root_or_skip("eth_dix_ipcp_killed_then_bootstrapped_again_root") {
        return Ok(());
    }
    let lab = pair()?;
    let dev = |n: &str, p: &str| lab.node(n).ifname_to(p).unwrap_or_default().to_string();
    layer(&lab, "eth-dix", |n| {
        format!("dev {}", dev(n, if n == "a" { "b" } else { "a" }))
    })?;
    let a = lab.node("a");
    // Destroyed, it lets go of the interface at once: a new IPCP takes it in the same
    // process (the one that hosts the node's link IPCPs), and flows work again.
    let host = |name: &str| -> Result<u64, Box<dyn std::error::Error>> {
        let list: serde_json::Value = serde_json::from_str(&a.irm_ok("ipcp list --json")?)?;
        let found = list.as_array().and_then(|l| {
            l.iter()
                .find(|i| i["name"] == name)
                .and_then(|i| i["pid"].as_u64())
        });
        Ok(found.ok_or("no such IPCP")?)
    };
    let first = host("eth-dix-a")?;
    check_ping(&lab, 5)?;
    a.irm_ok("ipcp destroy name eth-dix-a")?;
    a.irm_ok(&format!(
        "ipcp bootstrap type eth-dix name eth-dix-a layer net dev {}",
        dev("a", "b")
    ))?;
    assert_eq!(host("eth-dix-a")?, first);
    check_ping(&lab, 20)?;
    // Killed: its flows go down, and the next IPCP takes the interface.
    let mut client = a
        .cmd("oping")
        .args(["-n", "srv", "-c", "100000", "-i", "10ms"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let up = o7s_lab::wait_for(Duration::from_secs(10), || {
        a.irm_ok("flow list --json")
            .map(|l| l.contains("flow_id"))
            .unwrap_or(false)
    });
    assert!(up, "no flow:\n{}", a.log());
    let list: serde_json::Value = serde_json::from_str(&a.irm_ok("ipcp list --json")?)?;
    let pid = list[0]["pid"].as_u64().ok_or("no pid")?;
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()?;
    let done = o7s_lab::wait_for(Duration::from_secs(5), || {
        matches!(client.try_wait(), Ok(Some(_)))
    });
    let _ = client.kill();
    assert!(done, "the client did not see its flow go down");
    assert!(!a.irm_ok("ipcp list")?.contains("eth-dix-a"));
    // A new IPCP on the same interface works.
    a.irm_ok(&format!(
        "ipcp bootstrap type eth-dix name eth2 layer net dev {}",
        dev("a", "b")
    ))?;
    check_ping(&lab, 20)
}

#[test]
fn udp4_and_udp6_two_nodes_root() -> TestResult {
    if !root_or_skip("udp4_and_udp6_two_nodes_root") {
        return Ok(());
    }
    for kind in ["udp4", "udp6"] {
        let lab = pair()?;
        let (a, b) = (lab.node("a"), lab.node("b"));
        let (ia, ib) = if kind == "udp4" {
            (
                a.addr4_to("b").ok_or("no addr")?.to_string(),
                b.addr4_to("a").ok_or("no addr")?.to_string(),
            )
        } else {
            (
                a.addr6_to("b").ok_or("no addr")?.to_string(),
                b.addr6_to("a").ok_or("no addr")?.to_string(),
            )
        };
        let hosts = lab.dir().join("hosts");
        std::fs::write(&hosts, format!("{ia} cli\n{ib} srv\n"))?;
        let h = hosts.display().to_string();
        layer(&lab, kind, |n| {
            let ip = if n == "a" { &ia } else { &ib };
            format!("ip {ip} hosts {h}")
        })?;
        check_ping(&lab, 300)?;
    }
    Ok(())
}
