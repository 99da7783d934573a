//! Parking a flow's region and claiming it for the next flow between the same two ends
//! (`o7s_shm::park`): the IRMd's and the two ends' parts, in one process.
#![cfg(not(loom))]
#![allow(clippy::unwrap_used)]

use o7s_shm::park::{ACTIVE, CLAIMED, GONE, PARKED, PARK_MAX_POS};
use o7s_shm::*;
use rustix::fd::{AsFd, OwnedFd};
use std::sync::Arc;

/// What the IRMd keeps of a set, and the fds it hands each end.
struct Set {
    mem: OwnedFd,
    wake: Vec<OwnedFd>,
    ctl: RegionCtl,
    a: Vec<OwnedFd>,
    b: Vec<OwnedFd>,
}

fn set() -> Set {
    let mem = create_flow_mem(&RingConfig {
        capacity: 1 << 16,
        headroom: 0,
    })
    .unwrap();
    let (la, lb) = liveness_pair().unwrap();
    let (ea, eb) = (new_eventfd().unwrap(), new_eventfd().unwrap());
    let dup = |f: &OwnedFd| f.try_clone().unwrap();
    Set {
        ctl: RegionCtl::new(mem.as_fd()).unwrap(),
        a: vec![dup(&mem), dup(&ea), dup(&eb), la],
        b: vec![dup(&mem), dup(&eb), dup(&ea), lb],
        wake: vec![ea, eb],
        mem,
    }
}

/// Park word of side `i` as another process would see it (through the memfd).
fn word(mem: &OwnedFd, i: u64) -> u32 {
    let mut b = [0u8; 4];
    rustix::io::pread(mem, &mut b, 192 + 4 * i).unwrap();
    u32::from_ne_bytes(b)
}

#[test]
fn a_parked_region_is_claimed_reset_and_reused() {
    let (sa, sb) = (ParkStore::new(8), ParkStore::new(8));
    let mut s = set();
    let a = sa.open(7, Side::A, std::mem::take(&mut s.a)).unwrap();
    let b = sb.open(7, Side::B, std::mem::take(&mut s.b)).unwrap();
    assert_eq!((a.set(), b.set()), (7, 7));
    a.try_write(b"left over").unwrap();
    b.try_write(b"answer").unwrap();
    // Not parked yet: the IRMd must not take it.
    assert_eq!(s.ctl.claim(), Claim::NotYet);
    drop(a);
    assert_eq!(s.ctl.claim(), Claim::NotYet);
    assert_eq!(word(&s.mem, 0), PARKED);
    assert_eq!(word(&s.mem, 1), ACTIVE);
    // To the other end, a parked end is a closed one, and it was woken (after what was
    // sent before).
    let mut buf = [0u8; 64];
    assert_eq!(b.read(&mut buf, None).unwrap(), 9);
    assert!(matches!(b.read(&mut buf, None), Err(ShmError::Down)));
    assert!(b.is_down());
    drop(b);
    assert_eq!((sa.len(), sb.len()), (1, 1));
    assert_eq!(s.ctl.claim(), Claim::Claimed);
    assert_eq!((word(&s.mem, 0), word(&s.mem, 1)), (CLAIMED, CLAIMED));

    // The next flow: no fds, the set's name.
    let a = sa.open(7, Side::A, Vec::new()).unwrap();
    let b = sb.open(7, Side::B, Vec::new()).unwrap();
    assert_eq!((sa.len(), sb.len()), (0, 0));
    assert_eq!((word(&s.mem, 0), word(&s.mem, 1)), (ACTIVE, ACTIVE));
    assert!(!a.is_down() && !b.is_down());
    // Nothing of the old flow is left, and the rings work from zero.
    assert!(matches!(b.try_read(&mut buf), Err(ShmError::WouldBlock)));
    assert!(matches!(a.try_read(&mut buf), Err(ShmError::WouldBlock)));
    a.try_write(b"new").unwrap();
    assert_eq!(b.read(&mut buf, None).unwrap(), 3);
    assert_eq!(&buf[..3], b"new");
    // Take it down again, through the IRMd's mapping this time: a blocked reader wakes and
    // sees it.
    std::thread::scope(|sc| {
        sc.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            s.ctl.mark_down(&s.wake);
        });
        assert!(matches!(b.read(&mut buf, None), Err(ShmError::Down)));
    });
    assert!(a.is_down());
}

#[test]
fn a_region_that_carried_much_is_let_go() {
    let (sa, sb) = (ParkStore::new(8), ParkStore::new(8));
    let mut s = set();
    let a = sa.open(3, Side::A, std::mem::take(&mut s.a)).unwrap();
    let b = sb.open(3, Side::B, std::mem::take(&mut s.b)).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut sent = 0;
    while sent <= PARK_MAX_POS {
        a.try_write(&buf[..1000]).unwrap();
        b.try_read(&mut buf).unwrap();
        sent += 1008;
    }
    drop(a);
    drop(b);
    assert_eq!((sa.len(), sb.len()), (0, 0));
    assert_eq!((word(&s.mem, 0), word(&s.mem, 1)), (GONE, GONE));
    assert_eq!(s.ctl.claim(), Claim::Gone);
}

#[test]
fn eviction_and_claim_exclude_each_other() {
    // A store of one: parking a second end evicts the first, which the IRMd then cannot
    // claim; one it claimed first is not evicted.
    let st_a = ParkStore::new(1);
    let st_b = ParkStore::new(8);
    let mut s1 = set();
    let mut s2 = set();
    let mut s3 = set();
    for (id, s) in [(1u64, &mut s1), (2, &mut s2)] {
        let a = st_a.open(id, Side::A, std::mem::take(&mut s.a)).unwrap();
        let b = st_b.open(id, Side::B, std::mem::take(&mut s.b)).unwrap();
        drop((a, b));
    }
    assert_eq!(st_a.len(), 1);
    assert_eq!(word(&s1.mem, 0), GONE);
    assert_eq!(s1.ctl.claim(), Claim::Gone);
    // The other end of set 1 is still parked: claiming failed without touching it.
    assert_eq!(word(&s1.mem, 1), PARKED);
    assert_eq!(s2.ctl.claim(), Claim::Claimed);
    let a3 = st_a.open(3, Side::A, std::mem::take(&mut s3.a)).unwrap();
    drop(a3);
    // Set 2 is claimed: it stays although the store is over its size.
    assert_eq!(st_a.len(), 2);
    assert_eq!(word(&s2.mem, 0), CLAIMED);
    s2.ctl.unclaim();
    assert_eq!((word(&s2.mem, 0), word(&s2.mem, 1)), (PARKED, PARKED));
    // Parked again, set 2 counts again: the store evicts down to one, oldest first.
    assert_eq!(st_a.expire(), 1);
    assert_eq!(word(&s2.mem, 0), GONE);
    // Parking another evicts set 3.
    let mut s4 = set();
    let a4 = st_a.open(4, Side::A, std::mem::take(&mut s4.a)).unwrap();
    drop(a4);
    assert_eq!(st_a.len(), 1);
    assert_eq!(word(&s2.mem, 0), GONE);
    assert_eq!(word(&s3.mem, 0), GONE);
    assert_eq!(word(&s4.mem, 0), PARKED);
}

#[test]
fn only_a_claimed_parked_end_is_reopened() {
    let st = ParkStore::new(8);
    let mut s = set();
    let e = |r: Result<Held, ShmError>| match r {
        Err(ShmError::BadRegion(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(e(st.open(9, Side::A, Vec::new())).contains("not parked here"));
    assert!(e(st.open(0, Side::A, Vec::new())).contains("four fds"));
    let a = st.open(9, Side::A, std::mem::take(&mut s.a)).unwrap();
    drop(a);
    // Parked, not claimed: refused, and let go.
    assert!(e(st.open(9, Side::A, Vec::new())).contains("not claimed"));
    assert_eq!(word(&s.mem, 0), GONE);
    assert!(st.is_empty());
    // Set 0 is never parked.
    let mut s = set();
    let a = st.open(0, Side::A, std::mem::take(&mut s.a)).unwrap();
    drop(a);
    assert!(st.is_empty());
    assert_eq!(word(&s.mem, 0), ACTIVE);
    let _ = Arc::strong_count(&st);
}

#[test]
fn a_peer_cannot_pin_ends_in_a_store() {
    // The other end writes CLAIMED into our park word after we parked: such ends are kept
    // (a grant may be on its way), but never beyond twice the store's size.
    let st = ParkStore::new(2);
    let mut sets = Vec::new();
    for id in 1..=6u64 {
        let mut s = set();
        let a = st.open(id, Side::A, std::mem::take(&mut s.a)).unwrap();
        drop(a);
        rustix::io::pwrite(&s.mem, &CLAIMED.to_ne_bytes(), 192).unwrap();
        sets.push(s);
        assert!(st.len() <= 4, "{} ends kept", st.len());
    }
}

#[test]
fn a_set_the_irmd_let_go_is_not_kept() {
    let st = ParkStore::new(8);
    let (mut s1, mut s2) = (set(), set());
    let a1 = st.open(1, Side::A, std::mem::take(&mut s1.a)).unwrap();
    let a2 = st.open(2, Side::A, std::mem::take(&mut s2.a)).unwrap();
    drop(a1);
    assert_eq!(st.len(), 1);
    // Discarded while parked: gone at the store's next look.
    o7s_shm::park::discard(s1.mem.as_fd()).unwrap();
    assert_eq!(st.expire(), 1);
    assert!(st.is_empty());
    assert_eq!(word(&s1.mem, 0), GONE);
    assert_eq!(s1.ctl.claim(), Claim::Gone);
    // Discarded before its end is done: not parked at all.
    o7s_shm::park::discard(s2.mem.as_fd()).unwrap();
    drop(a2);
    assert!(st.is_empty());
    assert_eq!(word(&s2.mem, 0), GONE);
}

#[test]
fn claimed_ends_stay_however_many_allocations_are_in_flight() {
    // A process with more allocations in flight than its store's size has as many ends
    // claimed for grants on their way: none may go, else its grant finds nothing. Beyond
    // twice the size, further ends are not parked (so cannot be claimed).
    let (sa, sb) = (ParkStore::new(2), ParkStore::new(2));
    let mut sets = Vec::new();
    let mut claimed = Vec::new();
    for id in 1..=6u64 {
        let mut s = set();
        drop(sa.open(id, Side::A, std::mem::take(&mut s.a)).unwrap());
        drop(sb.open(id, Side::B, std::mem::take(&mut s.b)).unwrap());
        match s.ctl.claim() {
            Claim::Claimed => claimed.push(id),
            Claim::Gone => assert_eq!(word(&s.mem, 0), GONE),
            Claim::NotYet => panic!("set {id}: both ends are done"),
        }
        sets.push(s);
    }
    assert_eq!(claimed, [1, 2, 3, 4]);
    for &id in &claimed {
        let a = sa.open(id, Side::A, Vec::new()).unwrap();
        let b = sb.open(id, Side::B, Vec::new()).unwrap();
        a.try_write(b"ping").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(b.try_read(&mut buf).unwrap(), 4);
    }
}

#[test]
fn an_end_taken_after_its_peer_ended_the_flow_sees_it_down() {
    // The flow ends (one end parks) before the other end has taken its claimed end: the
    // parking end woke nobody, so the late end must see the flow down when it looks.
    let (sa, sb) = (ParkStore::new(8), ParkStore::new(8));
    let mut s = set();
    drop(sa.open(5, Side::A, std::mem::take(&mut s.a)).unwrap());
    drop(sb.open(5, Side::B, std::mem::take(&mut s.b)).unwrap());
    assert_eq!(s.ctl.claim(), Claim::Claimed);
    let b = sb.open(5, Side::B, Vec::new()).unwrap();
    drop(b);
    assert_eq!((word(&s.mem, 0), word(&s.mem, 1)), (CLAIMED, PARKED));
    // Not claimable meanwhile: A has yet to take it.
    assert_eq!(s.ctl.claim(), Claim::NotYet);
    let a = sa.open(5, Side::A, Vec::new()).unwrap();
    assert!(a.is_down());
    drop(a);
    assert_eq!(s.ctl.claim(), Claim::Claimed);
}
