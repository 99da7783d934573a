//! Two-process stress test: the test binary re-executes itself as the peer (side B), with the
//! flow's fds inherited, and moves 10,000,000 packets of 1..=1500 bytes A -> B (and 1,000,000
//! B -> A at the same time). Every byte and the order are checked.
#![cfg(not(loom))]
#![allow(clippy::unwrap_used)]

use o7s_shm::*;
use rustix::fd::{AsRawFd, FromRawFd, OwnedFd};
use rustix::io::{fcntl_setfd, FdFlags};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "O7S_SHM_STRESS_CHILD_FDS";
const A_TO_B: u64 = 10_000_000;
const B_TO_A: u64 = 1_000_000;

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The packet with sequence number `seq` of stream `stream`: size and content from the seed.
fn fill(stream: u64, seq: u64, buf: &mut [u8; 1504]) -> usize {
    let mut x = splitmix(seq ^ (stream << 60));
    let len = 1 + (x % 1500) as usize;
    for chunk in buf[..len.next_multiple_of(8)].chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    len
}

fn deadline() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(60))
}

fn send(ep: &Endpoint, stream: u64, n: u64) {
    let mut buf = [0u8; 1504];
    for seq in 0..n {
        let len = fill(stream, seq, &mut buf);
        ep.write(&buf[..len], deadline())
            .unwrap_or_else(|e| panic!("stream {stream} write #{seq}: {e}"));
    }
}

fn receive(ep: &Endpoint, stream: u64, n: u64) {
    let mut want = [0u8; 1504];
    let mut got = [0u8; 1504];
    for seq in 0..n {
        let len = fill(stream, seq, &mut want);
        let n = ep
            .read(&mut got, deadline())
            .unwrap_or_else(|e| panic!("stream {stream} read #{seq}: {e}"));
        assert_eq!(n, len, "stream {stream} packet #{seq}: length");
        assert!(
            got[..n] == want[..n],
            "stream {stream} packet #{seq}: content"
        );
    }
}

/// Side B, in the re-executed child.
fn child(fds: &str) {
    let fds: Vec<OwnedFd> = fds
        .split(',')
        .map(|s| {
            let raw: i32 = s.parse().unwrap();
            // SAFETY: the parent passed these fds to us, open and inherited across exec, and
            // nothing else in this process refers to them.
            unsafe { OwnedFd::from_raw_fd(raw) }
        })
        .collect();
    let [mem, own, peer, live]: [OwnedFd; 4] = fds.try_into().unwrap();
    let b = Endpoint::new(mem, Side::B, own, peer, live).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| send(&b, 1, B_TO_A));
        receive(&b, 0, A_TO_B);
    });
    // All packets arrived and nothing more: the parent closes the flow only after we exit.
    let mut buf = [0u8; 8];
    assert!(matches!(b.try_read(&mut buf), Err(ShmError::WouldBlock)));
}

fn inheritable(fd: &OwnedFd) -> OwnedFd {
    let d = fd.try_clone().unwrap(); // dup with CLOEXEC
    fcntl_setfd(&d, FdFlags::empty()).unwrap();
    d
}

#[test]
fn two_process_stress() {
    if let Ok(fds) = std::env::var(CHILD_ENV) {
        child(&fds);
        return;
    }
    let t0 = Instant::now();
    let mem = create_flow_mem(&RingConfig::default()).unwrap();
    let (la, lb) = liveness_pair().unwrap();
    let (ea, eb) = (new_eventfd().unwrap(), new_eventfd().unwrap());
    let child_fds = [
        inheritable(&mem),
        inheritable(&eb),
        inheritable(&ea),
        inheritable(&lb),
    ];
    let list: Vec<String> = child_fds
        .iter()
        .map(|f| f.as_raw_fd().to_string())
        .collect();
    let mut proc = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "two_process_stress",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, list.join(","))
        .spawn()
        .unwrap();
    drop(child_fds);
    drop(lb);
    let a = Endpoint::new(mem, Side::A, ea, eb, la).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| receive(&a, 1, B_TO_A));
        send(&a, 0, A_TO_B);
    });
    let status = proc.wait().unwrap();
    assert!(status.success(), "child failed: {status}");
    // The child is gone and its liveness end with it.
    assert!(a.is_down());
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "two_process_stress: {A_TO_B} + {B_TO_A} packets in {secs:.2} s ({:.2} Mpps A->B)",
        A_TO_B as f64 / secs / 1e6
    );
}
