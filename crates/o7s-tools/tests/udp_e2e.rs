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

/// Two systems `a` (127.0.0.1) and `b` (127.0.0.2) in layer `net`; `srv` served on `b`.
fn pair(sys_a: &System, sys_b: &System) -> (u16, u16) {
    let (pa, pb) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let hosts = sys_a.rundir().join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{pa} cli\n127.0.0.2:{pb} srv echo\n"),
    )
    .expect("hosts");
    let h = hosts.display();
    sys_a.irm_ok(&format!(
        "ipcp bootstrap type udp4 name ua layer net ip 127.0.0.1 port {pa} hosts {h}"
    ));
    sys_b.irm_ok(&format!(
        "ipcp bootstrap type udp4 name ub layer net ip 127.0.0.2 port {pb} hosts {h}"
    ));
    sys_b.irm_ok("name reg srv layer net");
    sys_b.irm_ok("bind program oping name srv auto -- -l");
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
