//! Single-process tests of `Endpoint`: round trips, wrap-around, backpressure, zero-copy,
//! liveness, and refusal of bad or corrupted regions.
#![cfg(not(loom))]
#![allow(clippy::unwrap_used)]

use o7s_shm::*;
use rustix::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

struct Flow {
    a: Endpoint,
    b: Endpoint,
    mem: OwnedFd,
    /// Both ends' eventfds, as the IRMd keeps them to take the flow down.
    irmd_wake: Vec<OwnedFd>,
}

fn flow(capacity: usize, headroom: u16) -> Flow {
    let mem = create_flow_mem(&RingConfig { capacity, headroom }).unwrap();
    let (la, lb) = liveness_pair().unwrap();
    let (ea, eb) = (new_eventfd().unwrap(), new_eventfd().unwrap());
    let irmd_wake = vec![ea.try_clone().unwrap(), eb.try_clone().unwrap()];
    let a = Endpoint::new(
        mem.try_clone().unwrap(),
        Side::A,
        ea.try_clone().unwrap(),
        eb.try_clone().unwrap(),
        la,
    )
    .unwrap();
    let b = Endpoint::new(mem.try_clone().unwrap(), Side::B, eb, ea, lb).unwrap();
    Flow {
        a,
        b,
        mem,
        irmd_wake,
    }
}

fn pkt(seq: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq * 31 + i * 7) as u8).collect()
}

#[test]
fn round_trip_both_directions() {
    let f = flow(1 << 16, 0);
    f.a.try_write(b"ping").unwrap();
    f.b.write(b"pong", None).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(f.b.read(&mut buf, None).unwrap(), 4);
    assert_eq!(&buf[..4], b"ping");
    assert_eq!(f.a.try_read(&mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"pong");
    assert!(matches!(f.a.try_read(&mut buf), Err(ShmError::WouldBlock)));
    // Empty packets are packets too.
    f.a.try_write(b"").unwrap();
    assert_eq!(f.b.try_read(&mut buf).unwrap(), 0);
}

#[test]
fn wrap_around_keeps_content_and_order() {
    let f = flow(1024, 0);
    let mut buf = vec![0u8; 2048];
    for seq in 0..5000 {
        let len = (seq * 37) % (f.a.max_packet() + 1);
        f.a.try_write(&pkt(seq, len)).unwrap();
        if seq % 3 == 0 {
            continue; // let a backlog build up so records straddle the end
        }
        while let Ok(n) = f.b.try_read(&mut buf) {
            assert!(n <= f.a.max_packet());
        }
    }
    // Exact check with a backlog of two.
    for seq in 0..3000 {
        let len = (seq * 13) % (f.a.max_packet() + 1);
        f.a.try_write(&pkt(seq, len)).unwrap();
        if seq > 0 {
            let n = f.b.try_read(&mut buf).unwrap();
            assert_eq!(
                &buf[..n],
                &pkt(seq - 1, (seq - 1) * 13 % (f.a.max_packet() + 1))[..]
            );
        }
    }
}

#[test]
fn full_ring_would_block_then_recovers() {
    let f = flow(1024, 0);
    let p = [7u8; 100];
    let mut n = 0;
    loop {
        match f.a.try_write(&p) {
            Ok(()) => n += 1,
            Err(ShmError::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(n >= 7, "only {n} packets fit");
    assert!(!f.a.tx_space(100));
    let mut buf = [0u8; 128];
    assert_eq!(f.b.try_read(&mut buf).unwrap(), 100);
    assert!(f.a.tx_space(100));
    f.a.try_write(&p).unwrap();
    for _ in 0..n {
        assert_eq!(f.b.try_read(&mut buf).unwrap(), 100);
    }
    assert!(matches!(f.b.try_read(&mut buf), Err(ShmError::WouldBlock)));
}

#[test]
fn blocking_write_completes_when_reader_drains() {
    for spin in [Duration::ZERO, Duration::from_micros(50)] {
        let mut f = flow(1024, 0);
        f.a.set_spin(spin);
        f.b.set_spin(spin);
        let p = [1u8; 200];
        while f.a.try_write(&p).is_ok() {}
        let t = Instant::now() + Duration::from_millis(20);
        assert!(matches!(f.a.write(&p, Some(t)), Err(ShmError::Timeout)));
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                let mut buf = [0u8; 256];
                for _ in 0..1000 {
                    f.b.read(&mut buf, None).unwrap();
                }
            });
            for _ in 0..1000 - 3 {
                f.a.write(&p, Some(Instant::now() + Duration::from_secs(10)))
                    .unwrap();
            }
        });
    }
}

#[test]
fn blocking_read_and_write_on_two_threads_each_side() {
    // Both directions busy with sleeping on both: exercises the shared eventfd per endpoint.
    let mut f = flow(512, 0);
    f.a.set_spin(Duration::ZERO);
    f.b.set_spin(Duration::ZERO);
    let n = 20_000usize;
    let dl = || Some(Instant::now() + Duration::from_secs(20));
    std::thread::scope(|s| {
        for (tx, rx) in [(&f.a, &f.b), (&f.b, &f.a)] {
            s.spawn(move || {
                for i in 0..n {
                    tx.write(&i.to_le_bytes(), dl()).unwrap();
                }
            });
            s.spawn(move || {
                let mut buf = [0u8; 8];
                for i in 0..n {
                    assert_eq!(rx.read(&mut buf, dl()).unwrap(), 8);
                    assert_eq!(usize::from_le_bytes(buf), i);
                }
            });
        }
    });
}

#[test]
fn too_big_and_buffer_too_small() {
    let f = flow(4096, 0);
    let max = f.a.max_packet();
    assert_eq!(max, 1024 - 8);
    assert!(
        matches!(f.a.try_write(&vec![0; max + 1]), Err(ShmError::TooBig { len, max: m }) if len == max + 1 && m == max)
    );
    f.a.try_write(&vec![5; max]).unwrap();
    let mut small = [0u8; 10];
    assert!(
        matches!(f.b.try_read(&mut small), Err(ShmError::BufferTooSmall { needed }) if needed == max)
    );
    assert!(
        matches!(f.b.read(&mut small, None), Err(ShmError::BufferTooSmall { needed }) if needed == max)
    );
    let mut big = vec![0u8; max];
    assert_eq!(f.b.try_read(&mut big).unwrap(), max);
    assert!(big.iter().all(|&b| b == 5));
}

#[test]
fn headroom_zero_copy() {
    let f = flow(4096, 16);
    assert_eq!(f.a.headroom(), 16);
    assert_eq!(f.a.max_packet(), 1024 - 8 - 16);
    f.a.try_write_with(5, |b| {
        assert_eq!(b.len(), 16 + 5);
        b[16..].copy_from_slice(b"hello");
    })
    .unwrap();
    f.a.try_write(b"plain").unwrap();
    f.a.try_write_with_trim(100, |b| {
        b[16..19].copy_from_slice(b"abc");
        3
    })
    .unwrap();
    // The reader prepends a 4-byte header in the headroom and sees a contiguous frame.
    let frame =
        f.b.try_read_with(|b, off| {
            assert_eq!(off, 16);
            b[off - 4..off].copy_from_slice(b"HDR:");
            b[off - 4..].to_vec()
        })
        .unwrap();
    assert_eq!(frame, b"HDR:hello");
    let mut buf = [0u8; 64];
    assert_eq!(f.b.try_read(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"plain");
    assert_eq!(
        f.b.try_read_with(|b, off| b[off..].to_vec()).unwrap(),
        b"abc"
    );
    assert!(matches!(
        f.b.try_read_with(|_, _| ()),
        Err(ShmError::WouldBlock)
    ));
}

#[test]
fn a_declined_write_leaves_the_ring_as_it_was() {
    let f = flow(4096, 16);
    // Declined: nothing to read, and the room is still there.
    f.a.try_write_with_opt(900, |b| {
        b[16..20].copy_from_slice(b"junk");
        None
    })
    .unwrap();
    assert!(!f.b.rx_ready());
    let mut buf = [0u8; 1024];
    assert!(matches!(f.b.try_read(&mut buf), Err(ShmError::WouldBlock)));
    // Around the ring several times, declining every other write at every position,
    // including those where the record would wrap.
    for i in 0..40u8 {
        let len = 300 + usize::from(i) * 7;
        f.a.try_write_with_opt(len, |_| None).unwrap();
        f.a.try_write_with_opt(len + 50, |b| {
            b[16..16 + len].fill(i);
            Some(len)
        })
        .unwrap();
        f.a.try_write_with_opt(len, |_| None).unwrap();
        assert_eq!(f.b.try_read(&mut buf).unwrap(), len);
        assert!(buf[..len].iter().all(|&x| x == i));
        assert!(matches!(f.b.try_read(&mut buf), Err(ShmError::WouldBlock)));
    }
}

#[test]
fn dropping_peer_live_fd_is_down() {
    let Flow { a, b, .. } = flow(4096, 0);
    assert!(!a.is_down());
    a.try_write(b"last words").unwrap();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(30));
            drop(b); // closes B's end of the liveness pipe
        });
        let mut buf = [0u8; 64];
        assert!(matches!(a.read(&mut buf, None), Err(ShmError::Down)));
    });
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(a.is_down());
    assert!(matches!(a.try_write(b"x"), Err(ShmError::Down)));
}

#[test]
fn queued_packets_are_delivered_before_down() {
    let Flow { a, b, .. } = flow(4096, 0);
    a.try_write(b"one").unwrap();
    a.try_write(b"two").unwrap();
    drop(a);
    let mut buf = [0u8; 8];
    assert_eq!(b.read(&mut buf, None).unwrap(), 3);
    assert_eq!(b.try_read(&mut buf).unwrap(), 3);
    assert!(matches!(b.try_read(&mut buf), Err(ShmError::Down)));
    assert!(matches!(b.read(&mut buf, None), Err(ShmError::Down)));
    assert!(b.is_down());
}

/// The liveness pipe works both ways: the read end sees the write end go, and back.
#[test]
fn either_end_sees_the_other_go() {
    let Flow { a, b, .. } = flow(4096, 0);
    drop(b);
    assert!(a.is_down());
    let Flow { a, b, .. } = flow(4096, 0);
    assert!(!b.is_down());
    drop(a);
    assert!(b.is_down());
    let mut buf = [0u8; 8];
    assert!(matches!(b.read(&mut buf, None), Err(ShmError::Down)));
}

/// An end whose owner watches the liveness fd itself (`watch_live`) sees the peer go at its
/// `check_live`, not at every non-blocking call; the IRMd's mark is seen either way.
#[test]
fn a_watched_end_checks_its_liveness_when_told() {
    let Flow { a, b, .. } = flow(4096, 0);
    a.watch_live();
    drop(b);
    let mut buf = [0u8; 8];
    assert!(!a.is_down());
    assert!(matches!(a.try_read(&mut buf), Err(ShmError::WouldBlock)));
    assert!(a.check_live());
    assert!(a.is_down());
    assert!(matches!(a.try_read(&mut buf), Err(ShmError::Down)));
    let f = flow(4096, 0);
    f.b.watch_live();
    mark_down(f.mem.as_fd(), &f.irmd_wake).unwrap();
    assert!(f.b.is_down());
    assert!(f.b.check_live());
}

/// The IRMd takes a flow down while both ends still hold it: a blocked reader and a blocked
/// writer wake and see it, and so does a non-blocking check.
#[test]
fn marked_down_by_the_irmd_is_down() {
    let f = flow(4096, 0);
    // A's direction full, so A's blocking write waits while A's blocking read (of the empty
    // other direction) does.
    while f.a.try_write(&[0u8; 512]).is_ok() {}
    let t0 = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(30));
            mark_down(f.mem.as_fd(), &f.irmd_wake).unwrap();
        });
        let writer = s.spawn(|| f.a.write(&[0u8; 512], None));
        let mut buf = [0u8; 64];
        assert!(matches!(f.a.read(&mut buf, None), Err(ShmError::Down)));
        assert!(matches!(writer.join().unwrap(), Err(ShmError::Down)));
    });
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(f.a.is_down());
    assert!(f.b.is_down());
    // Marked before anyone sleeps: the next blocking call does not sleep at all.
    let g = flow(4096, 0);
    mark_down(g.mem.as_fd(), &[]).unwrap();
    let mut buf = [0u8; 8];
    assert!(matches!(
        g.b.read(&mut buf, Some(Instant::now() + Duration::from_secs(5))),
        Err(ShmError::Down)
    ));
}

#[test]
fn read_timeout() {
    let f = flow(4096, 0);
    let t0 = Instant::now();
    let mut buf = [0u8; 8];
    assert!(matches!(
        f.b.read(&mut buf, Some(t0 + Duration::from_millis(20))),
        Err(ShmError::Timeout)
    ));
    assert!(t0.elapsed() >= Duration::from_millis(20));
}

#[test]
fn arm_for_event_loops() {
    let f = flow(4096, 0);
    assert!(f.b.arm(true, None)); // nothing to read: may sleep
    f.a.try_write(b"x").unwrap(); // peer sees the flag and writes our eventfd
    let wfd = f.b.wait_fd();
    let mut fds = [rustix::event::PollFd::new(
        &wfd,
        rustix::event::PollFlags::IN,
    )];
    assert_eq!(rustix::event::poll(&mut fds, None).unwrap(), 1);
    f.b.drain_wakeups();
    assert!(!f.b.arm(true, None)); // data waiting: do not sleep
    assert!(f.b.rx_ready());
    assert!(!f.a.arm(false, Some(10))); // space available
    f.b.disarm();
}

// ---- regions from an untrusted process ----

fn endpoint_on(mem: OwnedFd) -> Result<Endpoint, ShmError> {
    let (l, _) = liveness_pair().unwrap();
    Endpoint::new(
        mem,
        Side::B,
        new_eventfd().unwrap(),
        new_eventfd().unwrap(),
        l,
    )
}

#[test]
fn bad_regions_are_refused() {
    use rustix::fs::{memfd_create, MemfdFlags};
    // Not sealed, empty.
    let m = memfd_create("x", MemfdFlags::CLOEXEC).unwrap();
    assert!(matches!(endpoint_on(m), Err(ShmError::BadRegion(_))));
    // Bad magic.
    let m = create_flow_mem(&RingConfig::default()).unwrap();
    rustix::io::pwrite(&m, b"X", 0).unwrap();
    assert!(matches!(endpoint_on(m), Err(ShmError::BadRegion(_))));
    // Header claims a bigger ring than the file.
    let m = create_flow_mem(&RingConfig {
        capacity: 4096,
        headroom: 0,
    })
    .unwrap();
    rustix::io::pwrite(&m, &(1u64 << 20).to_le_bytes(), 16).unwrap();
    assert!(matches!(endpoint_on(m), Err(ShmError::BadRegion(_))));
    // Valid header, not sealed.
    let m = memfd_create("x", MemfdFlags::CLOEXEC).unwrap();
    let good = create_flow_mem(&RingConfig {
        capacity: 4096,
        headroom: 0,
    })
    .unwrap();
    let mut h = [0u8; 24];
    rustix::io::pread(&good, &mut h, 0).unwrap();
    rustix::fs::ftruncate(&m, 4096 + 2 * 4096).unwrap();
    rustix::io::pwrite(&m, &h, 0).unwrap();
    assert!(matches!(endpoint_on(m), Err(ShmError::BadRegion(_))));
    assert!(endpoint_on(good).is_ok());
    // Sizes checked at creation too.
    assert!(create_flow_mem(&RingConfig {
        capacity: 1000,
        headroom: 0
    })
    .is_err());
    assert!(create_flow_mem(&RingConfig {
        capacity: 256,
        headroom: 100
    })
    .is_err());
}

const TAIL0: u64 = 256;
const HEAD0: u64 = 256 + 128;
const DATA0: u64 = 4096;

fn expect_corrupt(f: &Flow) {
    let mut buf = [0u8; 4096];
    assert!(
        matches!(f.b.try_read(&mut buf), Err(ShmError::Corrupt(_))),
        "{:?}",
        f.b.try_read(&mut buf)
    );
    assert!(f.b.is_down());
}

#[test]
fn garbage_tail_is_corrupt() {
    for bad in [u64::MAX, 1 << 40, 4096 + 8, 3] {
        let f = flow(4096, 0);
        rustix::io::pwrite(&f.mem, &bad.to_le_bytes(), TAIL0).unwrap();
        expect_corrupt(&f);
    }
}

#[test]
fn garbage_record_is_corrupt() {
    // (len, kind) patterns written over the first record header.
    let pkt = 0x4b50_3737u64 << 32;
    let wrap = 0x5257_3737u64 << 32;
    for hdr in [
        pkt | 0xffff_ffff,
        pkt | 2000,
        pkt | 1016,
        0,
        u64::MAX,
        wrap,
        pkt | 100,
    ] {
        let f = flow(4096, 0);
        f.a.try_write(&[1u8; 16]).unwrap();
        rustix::io::pwrite(&f.mem, &hdr.to_le_bytes(), DATA0).unwrap();
        // `pkt | 100` is well-formed but claims more bytes than were published.
        expect_corrupt(&f);
    }
}

#[test]
fn garbage_head_is_corrupt_for_writer() {
    let f = flow(4096, 0);
    while f.a.try_write(&[0u8; 500]).is_ok() {}
    rustix::io::pwrite(&f.mem, &(u64::MAX - 7).to_le_bytes(), HEAD0).unwrap();
    assert!(matches!(
        f.a.try_write(&[0u8; 500]),
        Err(ShmError::Corrupt(_))
    ));
    assert!(matches!(f.a.try_write(&[0u8; 5]), Err(ShmError::Down)));
}

#[test]
fn random_garbage_never_panics() {
    // Scribble random bytes over control block and data while traffic flows.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..300 {
        let f = flow(1024, 8);
        let mut buf = [0u8; 1024];
        for i in 0..20 {
            let _ = f.a.try_write(&[i as u8; 40]);
            if i % 3 == 0 {
                let _ = f.b.try_read(&mut buf);
            }
        }
        let off = next() % (4096 + 1024);
        let off = if off < 4096 { 256 + off % 384 } else { off };
        rustix::io::pwrite(&f.mem, &next().to_le_bytes(), off & !7).unwrap();
        for _ in 0..30 {
            let _ = f.b.try_read(&mut buf);
            let _ = f.b.try_read_with(|b, o| b.len() + o);
            let _ = f.a.try_write(&[0u8; 100]);
        }
    }
}

#[test]
fn tx_queued_counts_what_the_peer_has_not_read() {
    let f = flow(1 << 16, 0);
    assert_eq!(f.a.tx_queued(), 0);
    for i in 0..10 {
        f.a.try_write(&pkt(i, 100)).unwrap();
    }
    let ten = f.a.tx_queued();
    assert!((1000..1000 + 10 * 64).contains(&ten), "{ten}");
    let mut buf = [0u8; 256];
    for _ in 0..5 {
        f.b.try_read(&mut buf).unwrap();
    }
    let five = f.a.tx_queued();
    assert!(five * 2 == ten, "{five} of {ten}");
    for _ in 0..5 {
        f.b.try_read(&mut buf).unwrap();
    }
    assert_eq!(f.a.tx_queued(), 0);
    assert_eq!(f.b.tx_queued(), 0);
}

#[test]
fn each_end_publishes_stats_the_memfd_holder_reads() {
    let Flow { a, b, mem, .. } = flow(1 << 16, 0);
    assert_eq!(read_stats(mem.as_fd()).unwrap(), [None, None]);
    b.publish_stats(&[7, 8, 9]);
    let [sa, sb] = read_stats(mem.as_fd()).unwrap();
    assert_eq!(sa, None);
    let sb = sb.unwrap();
    assert_eq!(sb.pid, std::process::id());
    assert_eq!(&sb.words[..4], &[7, 8, 9, 0]);
    // A later snapshot replaces the earlier one whole; words past STATS_WORDS are ignored.
    a.publish_stats(&[1; STATS_WORDS + 3]);
    b.publish_stats(&[5]);
    let [sa, sb] = read_stats(mem.as_fd()).unwrap();
    assert_eq!(sa.unwrap().words, [1; STATS_WORDS]);
    assert_eq!(&sb.unwrap().words[..2], &[5, 0]);
    // The rings are untouched.
    a.write(b"x", None).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(b.read(&mut buf, None).unwrap(), 1);
}
