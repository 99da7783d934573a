//! Two systems on one host joined by a udp4 layer on loopback addresses: real `irmd`s,
//! `ipcpd`s, `oping` and `oecho`, no root needed (and tested without it when we are root).

mod common;

use common::System;
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn free_port(ip: &str) -> u16 {
    UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One end of a udp4 layer: its system, IPCP, address and the names its hosts line lists.
#[derive(Clone, Copy)]
struct End<'a>(&'a System, &'a str, &'a str, &'a str);

/// Layer `layer` between `a` and `b`, with the first of `b`'s names served there by `oping
/// -l`; the two ports and the hosts file.
fn udp_layer(layer: &str, a: End, b: End) -> (u16, u16, String) {
    let (pa, pb) = (free_port(a.2), free_port(b.2));
    let hosts = b.0.rundir().join(format!("hosts.{layer}"));
    std::fs::write(
        &hosts,
        format!("{}:{pa} {}\n{}:{pb} {}\n", a.2, a.3, b.2, b.3),
    )
    .expect("hosts");
    let h = hosts.display().to_string();
    for (End(sys, ipcp, ip, _), port) in [(a, pa), (b, pb)] {
        sys.irm_ok(&format!(
            "ipcp bootstrap type udp4 name {ipcp} layer {layer} ip {ip} port {port} hosts {h}"
        ));
    }
    let served = b.3.split_whitespace().next().unwrap_or_default();
    b.0.irm_ok(&format!("name reg {served} layer {layer}"));
    b.0.irm_ok(&format!("bind program oping name {served} auto -- -l"));
    (pa, pb, h)
}

/// Two systems `a` (127.0.0.1) and `b` (127.0.0.2) in layer `net`; `srv` served on `b`.
fn pair(sys_a: &System, sys_b: &System) -> (u16, u16) {
    let (pa, pb, _) = udp_layer(
        "net",
        End(sys_a, "ua", "127.0.0.1", "cli"),
        End(sys_b, "ub", "127.0.0.2", "srv echo"),
    );
    (pa, pb)
}

#[test]
fn oping_and_oecho_across_udp4() {
    let (a, b) = (System::start(), System::start());
    let (_, pb) = pair(&a, &b);
    let out = a
        .cmd("oping")
        .args(["-n", "srv", "-c", "200", "-i", "0"])
        .output()
        .expect("oping");
    let t = text(&out);
    assert!(out.status.success(), "{t}\n{}\n{}", a.log(), b.log());
    assert!(t.contains("200 packets transmitted, 200 received"), "{t}");

    b.irm_ok("name reg echo layer net");
    let mut srv = b.spawn("oecho", &["-l"]);
    b.irm_ok(&format!("bind process {} name echo", srv.id()));
    let out = a
        .cmd("oecho")
        .args(["-n", "echo", "-m", "over udp"])
        .output()
        .expect("oecho");
    assert!(text(&out).contains("over udp"), "{}", text(&out));
    let _ = srv.kill();
    let _ = srv.wait();

    // Garbage to the layer's port is dropped; the layer keeps working.
    let s = UdpSocket::bind("127.0.0.1:0").expect("socket");
    for junk in [
        &b""[..],
        b"\x00",
        b"\x00\x00\x00\x00\x01",
        &[0xff; 100],
        &[0; 47],
        &[0; 2000],
    ] {
        let _ = s.send_to(junk, ("127.0.0.2", pb));
    }
    let mut forged = vec![0u8; 47];
    forged[44] = 2; // a flow reply nobody asked for
    forged[4..8].copy_from_slice(&1234u32.to_be_bytes());
    let _ = s.send_to(&forged, ("127.0.0.2", pb));
    let out = a
        .cmd("oping")
        .args(["-n", "srv", "-c", "10", "-i", "0"])
        .output()
        .expect("oping");
    assert!(out.status.success(), "{}", text(&out));
    // ... and counted the garbage.
    let show: serde_json::Value =
        serde_json::from_str(&b.irm_ok("ipcp show name ub --json")).expect("json");
    let dropped: u64 = show["dropped packets"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("a drop counter");
    assert!(dropped >= 6, "{show}");
    assert_eq!(show["layer"], "net");
}

#[test]
fn a_name_registered_nowhere_fails_clearly() {
    let (a, b) = (System::start(), System::start());
    pair(&a, &b);
    let t0 = Instant::now();
    let out = a
        .cmd("oping")
        .args(["-n", "no.such.name", "-c", "1"])
        .output()
        .expect("oping");
    assert!(!out.status.success());
    assert!(text(&out).contains("not registered"), "{}", text(&out));
    assert!(t0.elapsed() < Duration::from_secs(5));
    // In the hosts file but not registered on the far side: refused, not a timeout.
    let out = a
        .cmd("oping")
        .args(["-n", "echo", "-c", "1"])
        .output()
        .expect("oping");
    assert!(!out.status.success());
    assert!(text(&out).contains("refused"), "{}", text(&out));
}

/// The same, with both IRMds running as user `nobody`.
#[test]
fn works_without_root() {
    if !rustix::process::getuid().is_root() {
        // Already not root: the other tests cover it.
        return;
    }
    if Command::new("setpriv").arg("--help").output().is_err() {
        eprintln!("setpriv (util-linux) not installed; skipping");
        return;
    }
    let (a, b) = (System::start_as_nobody(), System::start_as_nobody());
    pair(&a, &b);
    let out = a
        .cmd("oping")
        .args(["-n", "srv", "-c", "20", "-i", "0"])
        .output()
        .expect("oping");
    let t = text(&out);
    assert!(out.status.success(), "{t}\n{}\n{}", a.log(), b.log());
    assert!(t.contains("20 packets transmitted, 20 received"), "{t}");
}

/// The serving system comes up entirely from its config file.
#[test]
fn a_udp4_system_from_its_config_file() {
    let (pa, pb) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let dir = tempfile::tempdir().expect("tempdir");
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1:{pa} cli\n127.0.0.2:{pb} srv\n")).expect("hosts");
    let oping = common::bin_dir().join("oping");
    let cfg = dir.path().join("irmd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[name.srv]\nprog = [\"{}\"]\nargs = [\"-l\"]\n\n\
             [udp4.ub]\nbootstrap = \"net\"\nip = \"127.0.0.2\"\nport = {pb}\n\
             hosts = \"{}\"\nreg = [\"srv\"]\n",
            oping.display(),
            hosts.display()
        ),
    )
    .expect("config");
    let cfg = cfg.display().to_string();
    let b = System::start_with(&["--config", &cfg]);
    let a = System::start();
    a.irm_ok(&format!(
        "ipcp bootstrap type udp4 name ua layer net ip 127.0.0.1 port {pa} hosts {}",
        hosts.display()
    ));
    let out = a
        .cmd("oping")
        .args(["-n", "srv", "-c", "20", "-i", "0"])
        .output()
        .expect("oping");
    let t = text(&out);
    assert!(out.status.success(), "{t}\n{}", b.log());
    assert!(t.contains("20 packets transmitted, 20 received"), "{t}");
}

/// The pid of each IPCP of a system, by name.
fn ipcp_pids(sys: &System) -> std::collections::HashMap<String, u64> {
    let list: serde_json::Value =
        serde_json::from_str(&sys.irm_ok("ipcp list --json")).expect("json");
    list.as_array()
        .expect("a list")
        .iter()
        .filter_map(|i| Some((i["name"].as_str()?.to_string(), i["pid"].as_u64()?)))
        .collect()
}

/// How many threads of process `pid` are called `name`.
fn threads_named(pid: u64, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|t| t.ok())
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name)
                })
                .count()
        })
        .unwrap_or(0)
}

/// Whether a UDP socket of this host is bound to 127.0.0.1:`port`.
fn udp_bound(port: u16) -> bool {
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp").is_ok_and(|t| {
        t.lines()
            .any(|l| l.split_whitespace().nth(1) == Some(&local))
    })
}

/// A second layer `side` between `a` (127.0.0.1) and `c` (127.0.0.3), its IPCPs `ipcp` on
/// `a` and `uc` on `c`, with `far` served on `c`; the port on `a` and the hosts file.
fn side_layer(a: &System, c: &System, ipcp: &str) -> (u16, String) {
    let (px, _, h) = udp_layer(
        "side",
        End(a, ipcp, "127.0.0.1", "cli2"),
        End(c, "uc", "127.0.0.3", "far"),
    );
    (px, h)
}

fn ping_ok(sys: &System, name: &str, count: u32) {
    let out = sys
        .cmd("oping")
        .args(["-n", name, "-c", &count.to_string(), "-i", "0"])
        .output()
        .expect("oping");
    let t = text(&out);
    assert!(out.status.success(), "{t}\n{}", sys.log());
    assert!(
        t.contains(&format!("{count} packets transmitted, {count} received")),
        "{t}"
    );
}

/// The link IPCPs of a system share one process (a node with many links would otherwise
/// run a process per link); destroying one stops it alone: its flows go down, its threads
/// end, its port is free again, and the others carry on. A host that dies takes its IPCPs
/// with it, and the next one starts a new host.
#[test]
fn link_ipcps_share_a_process_and_stop_alone() {
    let (a, b, c) = (System::start(), System::start(), System::start());
    pair(&a, &b);
    let (px, h) = side_layer(&a, &c, "ux");
    let pids = ipcp_pids(&a);
    let host = pids["ua"];
    assert_eq!(pids["ux"], host, "{pids:?}");
    assert_ne!(host, u64::from(a.irmd_pid()));
    ping_ok(&a, "far", 5);

    // A flow over ux, then ux destroyed under it.
    let mut ping = a
        .cmd("oping")
        .args(["-n", "far", "-c", "100000", "-i", "10ms"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("oping");
    let up = common::wait_for(Duration::from_secs(10), || {
        a.irm_ok("flow list --json").contains("flow_id")
    });
    assert!(up.is_some(), "no flow:\n{}", a.log());
    // ua's and ux's data path threads.
    let names = ["udp-rx", "egress", "keepalive"];
    for n in names {
        assert_eq!(threads_named(host, n), 2, "{n}");
    }
    assert!(udp_bound(px));
    a.irm_ok("ipcp destroy name ux");
    let ended = common::wait_for(Duration::from_secs(5), || {
        matches!(ping.try_wait(), Ok(Some(_)))
    });
    let _ = ping.kill();
    let _ = ping.wait();
    assert!(ended.is_some(), "the flow over ux did not go down");
    let stopped = common::wait_for(Duration::from_secs(5), || {
        names.iter().all(|n| threads_named(host, n) == 1) && !udp_bound(px)
    });
    assert!(
        stopped.is_some(),
        "ux did not stop: {:?} threads, port bound: {}",
        names.map(|n| threads_named(host, n)),
        udp_bound(px)
    );
    assert!(!ipcp_pids(&a).contains_key("ux"));

    // Its port is free for a new IPCP, in the same process; ua never noticed.
    a.irm_ok(&format!(
        "ipcp bootstrap type udp4 name uy layer side ip 127.0.0.1 port {px} hosts {h}"
    ));
    assert_eq!(ipcp_pids(&a)["uy"], host);
    ping_ok(&a, "srv", 20);
    ping_ok(&a, "far", 5);

    // The host killed: its IPCPs are gone; the next IPCP gets a new host.
    let _ = Command::new("kill")
        .args(["-9", &host.to_string()])
        .status();
    let gone = common::wait_for(Duration::from_secs(5), || ipcp_pids(&a).is_empty());
    assert!(gone.is_some(), "{:?}", ipcp_pids(&a));
    a.irm_ok(&format!(
        "ipcp bootstrap type udp4 name uz layer side ip 127.0.0.1 port {px} hosts {h}"
    ));
    let again = ipcp_pids(&a)["uz"];
    assert_ne!(again, host);
    ping_ok(&a, "far", 5);
}

/// `O7S_SHIM_HOST=0`: every IPCP in a process of its own, killed when destroyed.
#[test]
fn a_process_per_ipcp_when_asked() {
    let a = System::start_with_env(&[("O7S_SHIM_HOST", "0")]);
    let (b, c) = (System::start(), System::start());
    pair(&a, &b);
    side_layer(&a, &c, "ux");
    let pids = ipcp_pids(&a);
    assert_ne!(pids["ua"], pids["ux"], "{pids:?}");
    let ux = pids["ux"];
    a.irm_ok("ipcp destroy name ux");
    let gone = common::wait_for(Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{ux}")).exists()
            || std::fs::read_to_string(format!("/proc/{ux}/stat")).is_ok_and(|s| s.contains(") Z "))
    });
    assert!(gone.is_some(), "ux's process (pid {ux}) is still there");
    ping_ok(&a, "srv", 20);
}

/// Mappings of flow regions in process `pid` (`/proc/PID/maps`).
fn flow_mappings(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|m| m.lines().filter(|l| l.contains("memfd:o7s-flow")).count())
        .unwrap_or(0)
}

/// Flows one after another between the same two processes reuse one flow region (see
/// `o7s_shm::park`): each flow carries its own message and nothing of the one before, and the
/// server, the client's IPCP and the server's IPCP end up holding a region or two, not one
/// per flow (each keeps up to 64 ends of ended flows for reuse).
#[test]
fn flows_between_the_same_processes_reuse_their_region() {
    let (a, b) = (System::start(), System::start());
    pair(&a, &b);
    b.irm_ok("name reg echo layer net");
    let mut srv = b.spawn("oecho", &["-l"]);
    b.irm_ok(&format!("bind process {} name echo", srv.id()));
    let out = a
        .cmd("oecho")
        .args(["-n", "echo", "-m", "flow", "-c", "40"])
        .output()
        .expect("oecho");
    let t = text(&out);
    assert!(out.status.success(), "{t}\n{}\n{}", a.log(), b.log());
    for k in 1..=40 {
        assert!(t.contains(&format!("flow #{k}\n")), "{t}");
    }
    let ipcps = |sys: &System| ipcp_pids(sys).values().copied().collect::<Vec<_>>();
    for pid in [vec![u64::from(srv.id())], ipcps(&a), ipcps(&b)].concat() {
        let n = flow_mappings(pid as u32);
        assert!(
            (1..=4).contains(&n),
            "process {pid} maps {n} flow regions after 40 flows"
        );
    }
    // The server's flows all ended: none left in the IRMd.
    let ok = common::wait_for(Duration::from_secs(5), || {
        !b.irm_ok("flow list").contains("echo")
    });
    assert!(ok.is_some(), "{}", b.irm_ok("flow list"));
    let _ = srv.kill();
    let _ = srv.wait();
}
