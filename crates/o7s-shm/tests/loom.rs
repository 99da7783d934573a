//! Model checks of the ring protocol and the sleep/wake handshake. Only built with loom:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p o7s-shm --release --test loom
//! ```
//!
//! A lost wake-up shows as a loom deadlock (every thread blocked); a missing ordering as a
//! causality violation on the data cells or a wrong byte.
#![cfg(loom)]
#![allow(clippy::unwrap_used)]

use loom::sync::Arc;
use o7s_shm::{model, ShmError};

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b
}

fn payload(i: usize) -> Vec<u8> {
    // Sizes 8, 3, 8, ... so with a 64-byte ring (max 8-byte payload, 16-byte records) the
    // producer fills the ring, waits for space, and records wrap.
    vec![i as u8 + 1; if i.is_multiple_of(2) { 8 } else { 3 }]
}

/// Blocking writer vs. blocking reader on a tiny ring: every packet arrives in order and
/// neither side sleeps forever.
#[test]
fn blocking_spsc_no_lost_wakeup() {
    builder().check(|| {
        let (a, b) = model::pair(64, 0);
        let n = 5;
        let a = Arc::new(a);
        let w = loom::thread::spawn({
            let a = a.clone();
            move || {
                for i in 0..n {
                    a.write(&payload(i), None).unwrap();
                }
            }
        });
        let mut buf = [0u8; 16];
        for i in 0..n {
            let len = b.read(&mut buf, None).unwrap();
            assert_eq!(&buf[..len], &payload(i)[..]);
        }
        w.join().unwrap();
    });
}

/// Headroom and zero-copy on both ends, with a wrap.
#[test]
fn zero_copy_with_headroom() {
    builder().check(|| {
        let (a, b) = model::pair(128, 4);
        let w = loom::thread::spawn(move || {
            for i in 0..4u8 {
                loop {
                    match a.try_write_with(12, |s| s[4..].fill(i)) {
                        Ok(()) => break,
                        Err(ShmError::WouldBlock) => loom::thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
        let mut got = 0u8;
        while got < 4 {
            match b
                .try_read_with(|s, off| s[off..].iter().all(|&x| x == got) && s.len() == off + 12)
            {
                Ok(ok) => {
                    assert!(ok);
                    got += 1;
                }
                Err(ShmError::WouldBlock) => loom::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        w.join().unwrap();
    });
}

/// A writer that declines every other record it reserved (`try_write_with_opt`), on a
/// ring small enough to wrap: the reader sees exactly the records committed, whole.
#[test]
fn declined_writes_leave_no_trace() {
    builder().check(|| {
        let (a, b) = model::pair(128, 4);
        let w = loom::thread::spawn(move || {
            for i in 0..6u8 {
                loop {
                    let keep = i % 2 == 1;
                    let r = a.try_write_with_opt(12, |s| {
                        s[4..].fill(i);
                        keep.then_some(12)
                    });
                    match r {
                        Ok(()) => break,
                        Err(ShmError::WouldBlock) => loom::thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
        let mut got = 1u8;
        while got < 6 {
            match b
                .try_read_with(|s, off| s[off..].iter().all(|&x| x == got) && s.len() == off + 12)
            {
                Ok(ok) => {
                    assert!(ok);
                    got += 2;
                }
                Err(ShmError::WouldBlock) => loom::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        w.join().unwrap();
        assert!(matches!(
            b.try_read_with(|_, _| ()),
            Err(ShmError::WouldBlock)
        ));
    });
}

/// Both directions at once with blocking calls on both ends: each endpoint's single wake
/// object serves a sleeping reader and a sleeping writer (on different threads).
#[test]
fn duplex_shared_wake_object() {
    let mut b = builder();
    b.preemption_bound = Some(2);
    b.check(|| {
        let (a, b) = model::pair(64, 0);
        let (a, b) = (Arc::new(a), Arc::new(b));
        let n = 3;
        let ta = loom::thread::spawn({
            let a = a.clone();
            move || {
                for i in 0..n {
                    a.write(&payload(i), None).unwrap();
                }
            }
        });
        let tb = loom::thread::spawn({
            let b = b.clone();
            move || {
                for i in 0..n {
                    b.write(&payload(i), None).unwrap();
                }
            }
        });
        let rb = loom::thread::spawn({
            let b = b.clone();
            move || {
                let mut buf = [0u8; 16];
                for i in 0..n {
                    let len = b.read(&mut buf, None).unwrap();
                    assert_eq!(&buf[..len], &payload(i)[..]);
                }
            }
        });
        let mut buf = [0u8; 16];
        for i in 0..n {
            let len = a.read(&mut buf, None).unwrap();
            assert_eq!(&buf[..len], &payload(i)[..]);
        }
        ta.join().unwrap();
        tb.join().unwrap();
        rb.join().unwrap();
    });
}
