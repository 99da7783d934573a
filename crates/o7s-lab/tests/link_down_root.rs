//! A link taken down under a flow: the flow goes down within its QoS peer timeout, while an
//! idle flow on a live link stays up on keepalives. One test in this file, because the
//! library finds its IRMd through the environment. Needs root (network namespaces).

use o7s::{Error, Flow, QosSpec};
use o7s_lab::{Lab, Topology};
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn link_down_takes_the_flow_down_within_the_peer_timeout_root() -> TestResult {
    if !o7s_lab::is_root() {
        eprintln!("skipping: needs root for network namespaces");
        return Ok(());
    }
    let lab = Lab::up(&Topology::new().node("a").node("b").link("a", "b"))?;
    let (a, b) = (lab.node("a"), lab.node("b"));
    for (n, peer) in [(a, "b"), (b, "a")] {
        let dev = n.ifname_to(peer).ok_or("no interface")?;
        n.irm_ok(&format!(
            "ipcp bootstrap type eth-dix name e layer net dev {dev}"
        ))?;
    }
    b.irm_ok("name reg srv layer net")?;
    b.irm_ok("bind program oping name srv auto -- -l")?;

    // This process is a client of node a's IRMd (a unix socket: no namespace needed).
    std::env::set_var("O7S_RUNDIR", a.rundir());
    let timeout_ms = 1000;
    let qos = QosSpec {
        timeout: timeout_ms,
        ..QosSpec::RAW
    };
    let flow = Flow::alloc("srv", qos, Some(Duration::from_secs(10)))?;
    flow.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 128];
    let ping = [7u8; 64];
    flow.write(&ping)?;
    assert_eq!(flow.read(&mut buf)?, 64);

    // Idle for longer than the peer timeout: keepalives keep the flow up.
    std::thread::sleep(Duration::from_millis(u64::from(timeout_ms) * 3 / 2));
    flow.write(&ping)?;
    assert_eq!(flow.read(&mut buf)?, 64, "an idle flow stays up");

    lab.link_down("a", "b")?;
    let cut = Instant::now();
    let err = loop {
        match flow.read(&mut buf) {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    let took = cut.elapsed();
    assert!(matches!(err, Error::FlowDown), "{err}");
    assert!(
        took < Duration::from_millis(u64::from(timeout_ms) + 1000),
        "down after {took:?}"
    );
    assert!(flow.write(&ping).is_err());
    // The IPCP told the IRMd: the flow is gone from its list too.
    let gone = o7s_lab::wait_for(Duration::from_secs(5), || {
        a.irm_ok("flow list --json")
            .map(|l| !l.contains("flow_id"))
            .unwrap_or(false)
    });
    assert!(gone, "{}", a.irm_ok("flow list")?);
    Ok(())
}
