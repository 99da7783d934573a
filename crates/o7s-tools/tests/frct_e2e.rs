//! FRCT flows (any QoS but raw) through the library against a real IRMd and local IPCP:
//! large fragmented messages, partial and stream reads, the window in event sets, lingering
//! on close, statistics, and a peer that dies mid-transfer.
//! One test function, because the library reads the run directory from the environment.

mod common;

use common::System;
use o7s::{Error, Event, Flow, FlowSet, QosSpec};
use std::time::{Duration, Instant};

fn pair(name: &str, qos: QosSpec) -> (Flow, Flow) {
    let acceptor = std::thread::spawn(|| Flow::accept(Some(Duration::from_secs(10))));
    let a = Flow::alloc(name, qos, Some(Duration::from_secs(10))).expect("alloc");
    let b = acceptor.join().expect("join").expect("accept");
    (a, b)
}

/// Message `i` of a test stream: its length and bytes follow from `i`.
fn message(i: u64, max: usize) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let len = 1 + (x as usize % max);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn frct_flows_end_to_end() {
    let sys = System::start();
    sys.local_layer("frct");
    std::env::set_var("O7S_RUNDIR", sys.rundir());
    sys.irm_ok(&format!("bind process {} name frct", std::process::id()));

    let (a, b) = pair("frct", QosSpec::DATA);
    assert!(a.has_frct() && b.has_frct());
    let a_id = a.id();
    assert!(a.mtu() >= 1 << 20, "FRCT flows carry 1 MiB messages");

    // Messages of every size up to 1 MiB arrive whole and in order; large ones are
    // fragmented to fit the layer.
    let count = 300u64;
    let writer = std::thread::spawn(move || {
        for i in 0..count {
            let m = if i % 50 == 7 {
                message(i, 1 << 20)
            } else {
                message(i, 4000)
            };
            a.write(&m).expect("write");
        }
        a
    });
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..count {
        let n = b.read(&mut buf).expect("read");
        let want = if i % 50 == 7 {
            message(i, 1 << 20)
        } else {
            message(i, 4000)
        };
        assert_eq!(n, want.len(), "message {i}");
        assert!(buf[..n] == want[..], "message {i} intact");
    }
    let a = writer.join().expect("writer");
    // A message larger than the reader's buffer stays queued; the error says how big it is;
    // it can then be read whole, or in pieces.
    let big = vec![7u8; (1 << 20) + 1000];
    a.write(&big).expect("a message above the layer's MTU");
    let mut small = vec![0u8; 3000];
    match b.read(&mut small) {
        Err(Error::BufferTooSmall { needed }) => assert_eq!(needed, big.len()),
        other => panic!("expected BufferTooSmall, got {other:?}"),
    }
    let mut whole = vec![0u8; big.len()];
    assert_eq!(b.read(&mut whole).expect("read whole"), big.len());
    assert!(whole == big);
    let msg = message(99, 10_000);
    a.write(&msg).expect("write");
    a.write(b"next").expect("write");
    let mut got = Vec::new();
    loop {
        let (n, end) = b.read_part(&mut small).expect("read_part");
        got.extend_from_slice(&small[..n]);
        if end {
            break;
        }
        assert_eq!(n, small.len());
    }
    assert!(got == msg, "pieces make the message");
    assert_eq!(b.read(&mut small).expect("read"), 4);
    assert_eq!(&small[..4], b"next");

    // Stream reads ignore message boundaries.
    for part in [&b"abc"[..], b"defg", b"h"] {
        a.write(part).expect("write");
    }
    let mut stream = Vec::new();
    let mut tiny = [0u8; 5];
    while stream.len() < 8 {
        let n = b.read_stream(&mut tiny).expect("read_stream");
        assert!(n > 0);
        stream.extend_from_slice(&tiny[..n]);
    }
    assert_eq!(&stream, b"abcdefgh");

    // Statistics: RTT measured, nothing retransmitted on a lossless local flow.
    let st = a.frct_stats().expect("stats");
    assert!(st.counters.rtt_estimates > 0, "{st:?}");
    assert_eq!(st.malformed, 0);

    // `irm flow list` shows both ends' FRCT counters, as published in the flow's region
    // (at most a millisecond old: one more message makes them current).
    std::thread::sleep(Duration::from_millis(2));
    a.write(b"x").expect("write");
    assert_eq!(b.read(&mut buf).expect("read"), 1);
    let list = sys.irm_ok("flow list --json");
    let v: serde_json::Value = serde_json::from_str(&list).expect("json");
    let flow = v
        .as_array()
        .and_then(|a| a.iter().find(|f| f["flow_id"] == a_id))
        .unwrap_or_else(|| panic!("flow {a_id} not listed: {list}"));
    let ends = flow["frct"].as_array().expect("frct ends");
    assert_eq!(ends.len(), 2, "{flow}");
    for e in ends {
        assert_eq!(e["pid"], std::process::id(), "{e}");
        assert_eq!(e["malformed"], 0, "{e}");
        assert!(e["window"].as_u64().is_some_and(|w| w > 0), "{e}");
    }
    assert!(
        ends.iter()
            .any(|e| e["srtt_us"].as_u64().is_some_and(|t| t > 0)),
        "no RTT estimate published: {flow}"
    );
    let table = sys.irm_ok("flow list");
    assert!(table.contains("RETRANSMITTED"), "{table}");

    // The window in an event set: a writer that fills the peer's window is told when it
    // opens again, not before.
    let mut set = FlowSet::new().expect("fset");
    set.add_writable(&a).expect("add");
    a.set_nonblocking(true);
    // The first window (64 packets) grows to the receiver's queue (256) without a read, so
    // fill until the set stops reporting room.
    let mut sent = 0u64;
    let mut rounds = 0;
    loop {
        match a.write(&sent.to_le_bytes()) {
            Ok(_) => sent += 1,
            Err(Error::WouldBlock) => {
                let ev = set.wait(Some(Duration::from_millis(50))).expect("wait");
                if !ev.contains(&Event::Writable(a.id())) {
                    break;
                }
                rounds += 1;
                assert!(rounds < 100, "the window never closes");
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(sent >= 64, "a full window, got {sent}");
    for i in 0..sent {
        let n = b.read(&mut buf).expect("drain");
        assert_eq!(&buf[..n], &i.to_le_bytes());
    }
    let t = Instant::now();
    let mut writable = false;
    while !writable && t.elapsed() < Duration::from_secs(5) {
        writable = set
            .wait(Some(Duration::from_secs(1)))
            .expect("wait")
            .contains(&Event::Writable(a.id()));
    }
    assert!(writable, "the window opened");
    a.set_nonblocking(false);
    set.remove(&a);

    // A clean close loses nothing: the writer's dealloc lingers until the data is acked.
    let n_last = 500u64;
    let closer = std::thread::spawn(move || {
        for i in 0..n_last {
            a.write(&message(i, 2000)).expect("write");
        }
        a.dealloc().expect("dealloc");
    });
    for i in 0..n_last {
        let n = b.read(&mut buf).expect("data sent before close arrives");
        assert!(buf[..n] == message(i, 2000)[..], "message {i}");
    }
    closer.join().expect("closer");
    b.set_read_timeout(Some(Duration::from_secs(5)));
    assert!(matches!(b.read(&mut buf), Err(Error::FlowDown)));
    drop(b);

    // Raw flows run no FRCT.
    let (c, d) = pair("frct", QosSpec::RAW);
    assert!(!c.has_frct() && c.frct_stats().is_none());
    c.set_nonblocking(true);
    let mut raw_sent = 0u64;
    while c.write(&raw_sent.to_le_bytes()).is_ok() {
        raw_sent += 1;
    }
    assert!(
        raw_sent > 1000,
        "only the ring bounds a raw flow: {raw_sent}"
    );
    drop((c, d));

    // A peer that dies mid-transfer: the reader sees the flow down within a second or two,
    // with no data corrupted before that.
    let mut child = sys.spawn(
        "ocbr",
        &[
            "-n", "frct", "--qos", "data", "-s", "1000", "-r", "20M", "-d", "30",
        ],
    );
    let f = Flow::accept(Some(Duration::from_secs(10))).expect("accept ocbr");
    assert!(f.has_frct());
    f.set_read_timeout(Some(Duration::from_secs(10)));
    for _ in 0..100 {
        f.read(&mut buf).expect("ocbr data");
    }
    child.kill().expect("kill -9 ocbr");
    let _ = child.wait();
    let t = Instant::now();
    let end = loop {
        match f.read(&mut buf) {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(matches!(end, Error::FlowDown), "{end:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}
