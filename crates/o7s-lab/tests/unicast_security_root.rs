//! What a stranger can do to a unicast IPCP: this test process connects to node b as a fake
//! neighbour (a data transfer adjacency over the Ethernet between a and b) and sends packets
//! to random endpoint ids, forged flow replies and packets to reserved endpoints. None gets
//! an answer, none changes b's flows, and b keeps serving. One test in this file, because
//! the library finds its IRMd through the environment. Needs root (network namespaces).

use o7s::{Flow, QosSpec};
use o7s_lab::unicast::{eth_links, ipcp_name, unicast_over_eth};
use o7s_lab::{Lab, Topology};
use o7s_proto::wire::cep::{consts, CepMsg, ConcSyntax};
use o7s_proto::wire::dt::{DtParams, DtRepr, Qc};
use o7s_proto::wire::fa::FaRepr;
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A data transfer packet to (`dst`, `eid`) with `payload`.
fn dt(dst: u64, eid: u64, payload: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let p = DtParams::DEFAULT;
    let mut buf = vec![0u8; p.header_len() + payload.len()];
    DtRepr {
        dst_addr: dst,
        qc: Qc::Be,
        ttl: 60,
        ecn: 0,
        eid,
    }
    .emit(p, &mut buf)?;
    buf[p.header_len()..].copy_from_slice(payload);
    Ok(buf)
}

/// A counter of `irm ipcp show` output.
fn counter(show: &str, label: &str) -> u64 {
    show.lines()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn strangers_packets_get_no_answer_and_change_nothing_root() -> TestResult {
    if !o7s_lab::is_root() {
        eprintln!("skipping: needs root for network namespaces");
        return Ok(());
    }
    let lab = Lab::up(&Topology::new().node("a").node("b").link("a", "b"))?;
    eth_links(&lab)?;
    unicast_over_eth(&lab, "net", "")?;
    let b = lab.node("b");
    b.irm_ok("bind program oping name srv auto -- -l")?;
    b.irm_ok("name reg srv layer net")?;
    let ok = o7s_lab::wait_for(Duration::from_secs(20), || {
        let out = lab
            .node("a")
            .cmd("oping")
            .args(["-n", "srv", "-c", "1"])
            .output();
        out.is_ok_and(|o| o.status.success())
    });
    assert!(ok, "srv unreachable");
    let before = b.irm_ok(&format!("ipcp show {}", ipcp_name("net", "b")))?;

    // This process, a client of node a's IRMd, opens a data transfer adjacency to b.
    std::env::set_var("O7S_RUNDIR", lab.node("a").rundir());
    let fake_addr = 0x0bad_0bad;
    let flow = Flow::alloc(
        &ipcp_name("net", "b"),
        QosSpec::RAW,
        Some(Duration::from_secs(10)),
    )?;
    let cep = CepMsg::new(
        consts::DT_COMP,
        consts::DT_PROTO,
        1,
        ConcSyntax::Fixed,
        fake_addr,
    );
    flow.write(&cep.to_vec()?)?;
    flow.set_read_timeout(Some(Duration::from_secs(3)));
    let mut buf = vec![0u8; 4096];
    let n = flow.read(&mut buf)?;
    let b_addr = CepMsg::parse(&buf[..n])?.address;
    assert_ne!(b_addr, 0);

    // Random endpoint ids, reserved endpoints, forged replies, garbage.
    for i in 0..200u64 {
        let eid = 64 + i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % (u64::MAX - 64);
        flow.write(&dt(b_addr, eid, b"who is there?")?)?;
    }
    for eid in 2..64 {
        flow.write(&dt(b_addr, eid, b"component?")?)?;
    }
    for i in 0..50u64 {
        let reply = FaRepr::FlowReply {
            r_eid: 0x1234_5678_9abc_def0 ^ i,
            s_eid: 0x4242_4242 + i,
            response: 0,
            data: &[],
        };
        let mut m = vec![0u8; reply.buffer_len()];
        reply.emit(&mut m)?;
        flow.write(&dt(b_addr, 0, &m)?)?;
    }
    flow.write(&dt(b_addr, 1, b"\xff\xff not a dht message")?)?;
    flow.write(b"\x01\x02")?;

    // Nothing comes back.
    flow.set_read_timeout(Some(Duration::from_secs(2)));
    match flow.read(&mut buf) {
        Err(o7s::Error::Timeout) => {}
        other => panic!("a stranger got an answer: {other:?}"),
    }
    let after = b.irm_ok(&format!("ipcp show {}", ipcp_name("net", "b")))?;
    let flows = |s: &str| {
        s.lines()
            .filter(|l| l.trim_start().starts_with("flow "))
            .count()
    };
    assert_eq!(flows(&before), flows(&after), "{before}\n---\n{after}");
    assert!(
        counter(&after, "unknown endpoint drops")
            >= counter(&before, "unknown endpoint drops") + 262,
        "{after}"
    );
    assert!(counter(&after, "flow allocator drops") >= 50, "{after}");
    // And b still serves.
    let out = lab
        .node("a")
        .cmd("oping")
        .args(["-n", "srv", "-c", "3", "-i", "0"])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(())
}
