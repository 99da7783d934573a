//! A reliable (`data`) flow whose receiver dies mid-transfer: `ocat -l` on node b is killed
//! with SIGKILL while this process streams to it over udp4; the sender's blocked write fails
//! with `FlowDown` within the flow's QoS peer timeout.
//!
//! The sender is this process, not `ocat -n`: `ocat` asks for the `data` cube as it is, whose
//! peer timeout is 120 s, and has no option for a shorter one. Here the QoS is `data` with a
//! 2 s peer timeout. One test in this file, because the library finds its IRMd through the
//! environment. Needs root (network namespaces).

use o7s::{Error, Flow, QosSpec};
use o7s_lab::{Lab, Topology};
use std::process::Stdio;
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The peer timeout the sender's QoS asks for.
const PEER_TIMEOUT_MS: u32 = 2000;

#[test]
fn receiver_killed_mid_transfer_takes_the_sender_down_root() -> TestResult {
    if !o7s_lab::is_root() {
        eprintln!("skipping: needs root for network namespaces");
        return Ok(());
    }
    let lab = Lab::up(&Topology::new().node("a").node("b").link("a", "b"))?;
    let (a, b) = (lab.node("a"), lab.node("b"));
    let ia = a.addr4_to("b").ok_or("no address")?;
    let ib = b.addr4_to("a").ok_or("no address")?;
    let hosts = lab.dir().join("hosts");
    std::fs::write(&hosts, format!("{ia} cli\n{ib} cat\n"))?;
    for (n, ip) in [(a, ia), (b, ib)] {
        n.irm_ok(&format!(
            "ipcp bootstrap type udp4 name u{} layer net ip {ip} hosts {}",
            n.name(),
            hosts.display()
        ))?;
    }
    b.irm_ok("name reg cat layer net")?;
    let mut srv = b
        .cmd("ocat")
        .args(["-l", "-o", "/dev/null"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // `ip netns exec` execs ocat in place: the pid is ocat's.
    b.irm_ok(&format!("bind process {} name cat", srv.id()))?;

    // This process is a client of node a's IRMd (a unix socket: no namespace needed).
    std::env::set_var("O7S_RUNDIR", a.rundir());
    let qos = QosSpec {
        timeout: PEER_TIMEOUT_MS,
        ..QosSpec::DATA
    };
    let flow = Flow::alloc("cat", qos, Some(Duration::from_secs(10)))?;
    assert!(flow.has_frct());
    // ocat's framing: `D` then data.
    let mut msg = vec![0x5au8; 65_537];
    msg[0] = b'D';
    let t0 = Instant::now();
    let mut sent = 0u64;
    let mut killed: Option<Instant> = None;
    let err = loop {
        if killed.is_none() && t0.elapsed() >= Duration::from_millis(500) {
            // Mid-transfer: data is flowing and the window is full.
            assert!(sent > 0, "nothing sent in 500 ms");
            srv.kill()?;
            srv.wait()?;
            killed = Some(Instant::now());
        }
        match flow.write(&msg) {
            Ok(_) => sent += msg.len() as u64,
            Err(e) => break e,
        }
        if let Some(k) = killed {
            assert!(
                k.elapsed() < Duration::from_secs(30),
                "the sender still writes 30 s after its peer died ({sent} bytes)"
            );
        }
    };
    let k = killed.ok_or("the flow failed before the receiver was killed")?;
    let took = k.elapsed();
    eprintln!(
        "{sent} bytes sent; the receiver killed after {:.2} s; the sender's write failed \
         {:.2} s later: {err}; frct {:?}",
        (k - t0).as_secs_f64(),
        took.as_secs_f64(),
        flow.frct_stats()
    );
    assert!(matches!(err, Error::FlowDown), "{err}");
    assert!(
        took < Duration::from_millis(u64::from(PEER_TIMEOUT_MS) + 1000),
        "down {took:?} after the receiver died (peer timeout {PEER_TIMEOUT_MS} ms)"
    );
    assert!(flow.is_down());
    Ok(())
}
