//! The application library against a real IRMd and local IPCP: allocation, QoS, message
//! boundaries, backpressure, non-blocking mode, timeouts, event sets and deallocation.
//! One test function, because the library reads the run directory from the environment.

mod common;

use common::System;
use o7s::{Error, Event, Flow, FlowSet, QosSpec};
use std::time::{Duration, Instant};

/// Allocate a flow from this process to itself (the process is bound to `name`).
fn pair(name: &str, qos: QosSpec) -> (Flow, Flow) {
    let acceptor = std::thread::spawn(|| Flow::accept(Some(Duration::from_secs(10))));
    let a = Flow::alloc(name, qos, Some(Duration::from_secs(10))).expect("alloc");
    let b = acceptor.join().expect("join").expect("accept");
    (a, b)
}

#[test]
fn flow_api_end_to_end() {
    let sys = System::start();
    sys.local_layer("api");
    std::env::set_var("O7S_RUNDIR", sys.rundir());
    sys.irm_ok(&format!("bind process {} name api", std::process::id()));

    // The acceptor learns the QoS the allocator asked for.
    let (a, b) = pair("api", QosSpec::VOICE);
    assert_eq!(b.qos(), QosSpec::VOICE);
    assert_eq!(a.name(), "api");
    assert_eq!(a.id(), b.id());

    // Messages keep their boundaries, both ways.
    let mut buf = vec![0u8; 70_000];
    for len in [1usize, 1000, 65_000] {
        let msg: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        a.write(&msg).expect("write");
        let n = b.read(&mut buf).expect("read");
        assert_eq!(&buf[..n], &msg[..]);
        b.write(&msg[..len / 2 + 1]).expect("write back");
        assert_eq!(a.read(&mut buf).expect("read back"), len / 2 + 1);
    }

    // Too big for the flow: a clear error, nothing sent.
    let huge = vec![0u8; a.mtu() + 1];
    assert!(matches!(a.write(&huge), Err(Error::TooBig { .. })));

    // Non-blocking: empty read would block; a full flow pushes back instead of dropping.
    b.set_nonblocking(true);
    assert!(matches!(b.read(&mut buf), Err(Error::WouldBlock)));
    a.set_nonblocking(true);
    let mut sent = 0u64;
    loop {
        match a.write(&sent.to_le_bytes()) {
            Ok(_) => sent += 1,
            Err(Error::WouldBlock) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    // Voice runs FRCT: its flow-control window (64 packets before the first update) pushes
    // back before the ring does (frct_e2e checks a raw flow holds far more).
    assert!(a.has_frct());
    assert!(sent >= 64, "a flow holds a window of packets, got {sent}");
    for i in 0..sent {
        let n = b.read(&mut buf).expect("drain");
        assert_eq!(&buf[..n], &i.to_le_bytes(), "in order, none lost");
    }
    assert!(matches!(b.read(&mut buf), Err(Error::WouldBlock)));
    a.set_nonblocking(false);
    b.set_nonblocking(false);

    // A blocking read honours its timeout.
    b.set_read_timeout(Some(Duration::from_millis(30)));
    let t = Instant::now();
    assert!(matches!(b.read(&mut buf), Err(Error::Timeout)));
    assert!(t.elapsed() >= Duration::from_millis(30));
    b.set_read_timeout(None);

    // An event set over two flows.
    let (c, d) = pair("api", QosSpec::RAW);
    let mut set = FlowSet::new().expect("fset");
    set.add(&b).expect("add");
    set.add(&d).expect("add");
    assert!(set
        .wait(Some(Duration::from_millis(10)))
        .expect("wait")
        .is_empty());
    c.write(b"x").expect("write");
    let ev = set.wait(Some(Duration::from_secs(5))).expect("wait");
    assert_eq!(ev, vec![Event::Packet(d.id())]);
    assert_eq!(d.read(&mut buf).expect("read"), 1);

    // Deallocation: the peer reads what was sent, then sees the flow down.
    a.write(b"last words").expect("write");
    a.dealloc().expect("dealloc");
    let n = b
        .read(&mut buf)
        .expect("data sent before dealloc is not lost");
    assert_eq!(&buf[..n], b"last words");
    let ev = set.wait(Some(Duration::from_secs(5))).expect("wait");
    assert!(ev.contains(&Event::Down(b.id())), "{ev:?}");
    assert!(matches!(b.read(&mut buf), Err(Error::FlowDown)));
    assert!(b.write(b"x").is_err());

    // Dropping a flow deallocates it too; the IRMd's flow list empties.
    drop(b);
    drop(c);
    let ev = set.wait(Some(Duration::from_secs(5))).expect("wait");
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Down(_) | Event::Deallocated(_))),
        "{ev:?}"
    );
    drop(d);
    let empty = common::wait_for(Duration::from_secs(5), || {
        !sys.irm_ok("flow list --json").contains("flow_id")
    });
    assert!(empty.is_some());

    // Allocation without blocking: the set reports when it is done.
    let mut set = FlowSet::new().expect("fset");
    let acc = set
        .accept(Some(Duration::from_secs(10)))
        .expect("accept async");
    let alloc = set
        .alloc("api", QosSpec::DATA, Some(Duration::from_secs(10)))
        .expect("alloc async");
    let mut done = Vec::new();
    while done.len() < 2 {
        for e in set.wait(Some(Duration::from_secs(10))).expect("wait") {
            if let Event::Allocated(id) = e {
                done.push(id);
            }
        }
    }
    let e = set.take(alloc).expect("alloc result").expect("allocated");
    let f = set.take(acc).expect("accept result").expect("accepted");
    assert!(set.take(alloc).is_none(), "a result is taken once");
    assert_eq!(f.qos(), QosSpec::DATA);
    e.write(b"async").expect("write");
    assert_eq!(f.read(&mut buf).expect("read"), 5);
    drop((e, f));

    // A flow to a name nobody serves fails with a typed error at once.
    let t = Instant::now();
    match Flow::alloc("nobody", QosSpec::RAW, Some(Duration::from_secs(5))) {
        Err(Error::Irm(o7s::IrmError::NameNotFound { name })) => assert_eq!(name, "nobody"),
        other => panic!("expected NameNotFound, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(1));
}
