//! Two-process ping-pong over one flow's rings, with spinning readers: the floor of the local
//! round-trip time.
//!
//! ```text
//! cargo run -p o7s-shm --release --example pingpong [ROUNDS] [SIZE]
//! ```
#![allow(clippy::unwrap_used)]
#![cfg_attr(loom, allow(unused_imports, dead_code))]

use o7s_shm::*;
use rustix::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

#[cfg(loom)]
fn main() {}

const CHILD_ENV: &str = "O7S_PINGPONG_CHILD_FDS";

fn inheritable(fd: &OwnedFd) -> OwnedFd {
    let d = fd.try_clone().unwrap();
    rustix::io::fcntl_setfd(&d, rustix::io::FdFlags::empty()).unwrap();
    d
}

#[cfg(not(loom))]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let size: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let spin = Duration::from_secs(1);

    if let Ok(fds) = std::env::var(CHILD_ENV) {
        let fds: Vec<OwnedFd> = fds
            .split(',')
            // SAFETY: inherited from the parent for exactly this use; nothing else owns them.
            .map(|s| unsafe { OwnedFd::from_raw_fd(s.parse().unwrap()) })
            .collect();
        let [mem, own, peer, live]: [OwnedFd; 4] = fds.try_into().unwrap();
        let mut b = Endpoint::new(mem, Side::B, own, peer, live).unwrap();
        b.set_spin(spin);
        let mut buf = vec![0u8; 65536];
        // Echo until the parent goes away.
        while let Ok(n) = b.read(&mut buf, None) {
            if b.write(&buf[..n], None).is_err() {
                break;
            }
        }
        return;
    }

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
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, list.join(","))
        .spawn()
        .unwrap();
    drop(child_fds);
    drop(lb);
    let mut a = Endpoint::new(mem, Side::A, ea, eb, la).unwrap();
    a.set_spin(spin);

    let msg = vec![0x5au8; size];
    let mut buf = vec![0u8; 65536];
    let warmup = rounds / 10;
    let mut rtt = Vec::with_capacity(rounds);
    for i in 0..warmup + rounds {
        let t = Instant::now();
        a.write(&msg, None).unwrap();
        let n = a.read(&mut buf, None).unwrap();
        let d = t.elapsed();
        assert_eq!(n, size);
        if i >= warmup {
            rtt.push(d);
        }
    }
    drop(a);
    child.wait().unwrap();
    rtt.sort_unstable();
    let q = |p: f64| rtt[((rtt.len() - 1) as f64 * p) as usize];
    println!(
        "pingpong {size} B, {rounds} rounds, spinning: RTT p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        q(0.5),
        q(0.9),
        q(0.99),
        rtt[rtt.len() - 1]
    );
}
