//! End-to-end tests of one system with a local layer: real `irmd`, `ipcpd`, `irm`, `oping`
//! and `oecho` processes, each test in its own run directory.

mod common;

use common::{wait_for, System};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn tutorial_with_auto_started_server() {
    let sys = System::start();
    sys.irm_ok("ipcp bootstrap type local name lo layer lo");
    sys.irm_ok("name reg oping.server layer lo");
    sys.irm_ok("bind program oping name oping.server auto -- -l");
    let out = sys
        .cmd("oping")
        .args(["-n", "oping.server", "-c", "1000", "-i", "0"])
        .output()
        .expect("oping");
    let t = text(&out);
    assert!(out.status.success(), "oping failed: {t}\n{}", sys.log());
    assert!(
        t.contains("Pinging oping.server with 64 bytes of data (1000 packets):"),
        "{t}"
    );
    assert!(
        t.contains("1000 packets transmitted, 1000 received, 0 out-of-order, 0% packet loss"),
        "{t}"
    );
    assert!(t.contains("rtt min/avg/max/mdev = "), "{t}");
    // The flow was deallocated when oping exited.
    let ok = wait_for(Duration::from_secs(5), || {
        !sys.irm_ok("flow list --json").contains("flow_id")
    });
    assert!(ok.is_some(), "flows left: {}", sys.irm_ok("flow list"));
}

#[test]
fn bind_process_and_oecho() {
    let sys = System::start();
    sys.local_layer("echo");
    let mut srv = sys.spawn("oecho", &["-l"]);
    sys.irm_ok(&format!("bind process {} name echo", srv.id()));
    let out = sys
        .cmd("oecho")
        .args(["-n", "echo", "-m", "hello o7s"])
        .output()
        .expect("oecho");
    let t = text(&out);
    assert!(out.status.success(), "{t}\n{}", sys.log());
    assert!(t.contains("hello o7s"), "{t}");
    let _ = srv.kill();
    let _ = srv.wait();
}

#[test]
fn unregistered_name_fails_at_once() {
    let sys = System::start();
    sys.irm_ok("ipcp bootstrap type local name lo layer lo");
    let t0 = Instant::now();
    let out = sys
        .cmd("oping")
        .args(["-n", "nobody.here", "-c", "1"])
        .output()
        .expect("oping");
    let took = t0.elapsed();
    let t = text(&out);
    assert!(!out.status.success());
    assert!(t.contains("not registered"), "{t}");
    assert!(
        t.contains("irm name reg nobody.here"),
        "the error says how to fix it: {t}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn garbage_on_the_irmd_socket_is_refused() {
    use std::io::Write;
    let sys = System::start();
    sys.irm_ok("ipcp bootstrap type local name lo layer lo");
    for junk in [
        &b""[..],
        b"\x00",
        b"\xff\xff\xff\xff\xff",
        b"\x05\x01",
        &[0x41; 70000],
    ] {
        // SOCK_SEQPACKET via the raw API is not in std; use a helper binary-free approach:
        // socat is not assumed, so speak through the library's own wire module.
        let sock = rustix::net::socket(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            None,
        )
        .expect("socket");
        let addr = rustix::net::SocketAddrUnix::new(sys.rundir().join("irmd.sock")).expect("addr");
        rustix::net::connect(&sock, &addr).expect("connect");
        let _ = rustix::net::send(&sock, junk, rustix::net::SendFlags::NOSIGNAL);
        drop(sock);
    }
    // A stream client (wrong socket type) is refused by the kernel; the IRMd stays up.
    let _ = std::os::unix::net::UnixStream::connect(sys.rundir().join("irmd.sock"))
        .map(|mut s| s.write_all(b"hello"));
    let list = sys.irm_ok("ipcp list");
    assert!(list.contains("lo"), "{list}");
}

#[test]
fn server_killed_mid_ping_takes_the_flow_down() {
    let sys = System::start();
    sys.local_layer("oping.server");
    let mut srv = sys.spawn("oping", &["-l"]);
    sys.irm_ok(&format!("bind process {} name oping.server", srv.id()));
    let mut client = sys
        .cmd("oping")
        .args(["-n", "oping.server", "-c", "1000", "-i", "10ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client");
    // Wait until the flow exists, then kill -9 the server.
    let up = wait_for(Duration::from_secs(10), || {
        sys.irm_ok("flow list --json").contains("flow_id")
    });
    assert!(up.is_some(), "no flow: {}", sys.log());
    let killed = Instant::now();
    let _ = srv.kill();
    let _ = srv.wait();
    let done = wait_for(Duration::from_secs(5), || {
        matches!(client.try_wait(), Ok(Some(_)))
    });
    assert!(done.is_some(), "client did not notice the flow going down");
    let noticed = killed.elapsed();
    let out = client.wait_with_output().expect("client output");
    assert!(!out.status.success());
    assert!(text(&out).contains("down"), "{}", text(&out));
    assert!(noticed < Duration::from_secs(2), "took {noticed:?}");
    assert!(!sys.irm_ok("flow list --json").contains("flow_id"));
    assert_eq!(
        System::memfds_of(sys.irmd_pid()),
        0,
        "the IRMd keeps no ring"
    );
}

#[test]
fn killed_ipcp_leaves_the_list_and_its_flows_go_down() {
    let sys = System::start();
    sys.local_layer("oping.server");
    let mut srv = sys.spawn("oping", &["-l"]);
    sys.irm_ok(&format!("bind process {} name oping.server", srv.id()));
    let mut client = sys
        .cmd("oping")
        .args(["-n", "oping.server", "-c", "100000", "-i", "10ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("client");
    let up = wait_for(Duration::from_secs(10), || {
        sys.irm_ok("flow list --json").contains("flow_id")
    });
    assert!(up.is_some());
    let list = sys.irm_ok("ipcp list --json");
    let v: serde_json::Value = serde_json::from_str(&list).expect("json");
    let pid = v[0]["pid"].as_u64().expect("pid");
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    let gone = wait_for(Duration::from_secs(5), || {
        !sys.irm_ok("ipcp list").contains("lo")
    });
    assert!(gone.is_some(), "{}", sys.irm_ok("ipcp list"));
    let done = wait_for(Duration::from_secs(5), || {
        matches!(client.try_wait(), Ok(Some(_)))
    });
    assert!(done.is_some(), "client still running after its IPCP died");
    assert!(!sys.irm_ok("flow list --json").contains("flow_id"));
    let _ = srv.kill();
    let _ = srv.wait();
}

#[test]
fn irm_errors_are_clear() {
    let sys = System::start();
    let out = sys.irm("ipcp destroy name nosuch");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("no IPCP named \"nosuch\""),
        "{}",
        text(&out)
    );
    let out = sys.irm("ipcp bootstrap type frobnicate name x layer y");
    assert!(!out.status.success());
    assert!(text(&out).contains("unknown IPCP type"), "{}", text(&out));
    let out = sys.irm("name reg");
    assert!(!out.status.success());
    // A bootstrap that fails leaves no half-made IPCP behind.
    let out = sys.irm("ipcp bootstrap type local name half layer l hash bogus");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("unknown hash algorithm"),
        "{}",
        text(&out)
    );
    assert!(!sys.irm_ok("ipcp list").contains("half"));
    let out = sys.irm("name reg foo layer nolayer");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no IPCP in layer \"nolayer\""),
        "{}",
        text(&out)
    );
    // No IRMd at all.
    let empty = tempfile::tempdir().expect("tempdir");
    let out = sys
        .cmd("irm")
        .args(["ipcp", "list"])
        .env("O7S_RUNDIR", empty.path())
        .output()
        .expect("irm");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("start it with: irmd"), "{}", text(&out));
}

#[test]
fn a_config_file_sets_up_the_whole_system() {
    let cfg = tempfile::NamedTempFile::new().expect("tmp");
    let oping = common::bin_dir().join("oping");
    std::fs::write(
        cfg.path(),
        format!(
            "[name.\"oping.server\"]\nprog = [\"{}\"]\nargs = [\"-l\"]\nlb = \"round-robin\"\n\n\
             [local.lo]\nbootstrap = \"lo\"\nhash = \"SHA3_512\"\nreg = [\"oping.server\"]\n",
            oping.display()
        ),
    )
    .expect("write config");
    let path = cfg.path().display().to_string();
    let sys = System::start_with(&["--config", &path]);
    let ok = wait_for(Duration::from_secs(10), || {
        sys.irm_ok("name list").contains("round-robin")
    });
    assert!(ok.is_some(), "{}", sys.log());
    let out = sys
        .cmd("oping")
        .args(["-n", "oping.server", "-c", "20", "-i", "0"])
        .output()
        .expect("oping");
    let t = text(&out);
    assert!(out.status.success(), "{t}\n{}", sys.log());
    assert!(t.contains("20 packets transmitted, 20 received"), "{t}");
    assert!(sys.log().contains("Applied configuration"), "{}", sys.log());
}
