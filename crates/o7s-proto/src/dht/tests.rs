//! Unit tests of the DHT: distances and buckets, response matching (forged answers change
//! nothing), serving requests, timers, bootstrap, bounds.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::table::{bucket_index, cmp_distance, distance, Seen, Table};
use super::*;
use crate::wire::dht::{addr_value, Contact, DhtBody, DhtMsg};
use crate::HashAlgo;

const WALL: u64 = 1_767_225_600;

fn contact(b: u8, addr: u64) -> Contact {
    Contact {
        id: vec![b; 32],
        addr,
    }
}

fn node_with(b: u8, addr: u64, cfg: DhtConfig, now: Instant) -> Dht {
    Dht::new(vec![b; 32], addr, cfg, now, WALL, [b; 32]).unwrap()
}

fn node(b: u8, addr: u64, now: Instant) -> Dht {
    node_with(b, addr, DhtConfig::default(), now)
}

fn bytes(src: &Contact, body: DhtBody) -> Vec<u8> {
    DhtMsg {
        src: src.clone(),
        body,
    }
    .to_vec()
}

/// Everything `d` sends, parsed.
fn sent(d: &mut Dht) -> Vec<(u64, DhtMsg)> {
    let mut out = Vec::new();
    while let Some((dst, p)) = d.poll_transmit() {
        let m = DhtMsg::parse(&p, 32).unwrap();
        assert_eq!(
            m.src,
            Contact {
                id: d.id().to_vec(),
                addr: d.addr()
            }
        );
        out.push((dst, m));
    }
    out
}

/// The state of `d` apart from its counters.
fn state(d: &Dht) -> DhtShow {
    let mut s = d.show();
    s.stats = DhtStats::default();
    s
}

fn oping() -> NameHash {
    HashAlgo::Sha3_256.hash("oping")
}

/// `a` learns `c` from a FIND_NODE request of it (and answers it).
fn introduce(a: &mut Dht, c: &Contact, now: Instant) {
    let key = NameHash(vec![0x77; 32]);
    a.on_packet(
        &bytes(c, DhtBody::FindNodeReq { cookie: 9, key }),
        now,
        WALL,
    );
    sent(a);
}

#[test]
fn xor_distance_and_bucket_index() {
    assert_eq!(
        distance(&[0xff, 0x00, 0x0f], &[0x0f, 0x01, 0x0f]),
        [0xf0, 0x01, 0x00]
    );
    let own = [0u8; 8];
    assert_eq!(bucket_index(&own, &own), None);
    let mut id = [0u8; 8];
    id[0] = 0x80;
    assert_eq!(bucket_index(&own, &id), Some(0));
    id[0] = 0x01;
    assert_eq!(bucket_index(&own, &id), Some(7));
    id = [0, 0x40, 0, 0, 0, 0, 0, 0xff];
    assert_eq!(bucket_index(&own, &id), Some(9));
    id = [0, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(bucket_index(&own, &id), Some(63));
    // 0x11 is at distance 0x01 from 0x10, 0x30 at 0x20.
    let key = [0x10, 0];
    assert_eq!(
        cmp_distance(&key, &[0x11, 0xff], &[0x30, 0]),
        std::cmp::Ordering::Less
    );
    assert_eq!(
        cmp_distance(&key, &[0x10, 0], &[0x10, 0]),
        std::cmp::Ordering::Equal
    );
}

proptest! {
    #[test]
    fn distance_order_is_xor_order(key in any::<[u8; 8]>(), a in any::<[u8; 8]>(), b in any::<[u8; 8]>()) {
        let da = u64::from_be_bytes(distance(&a, &key).try_into().unwrap());
        let db = u64::from_be_bytes(distance(&b, &key).try_into().unwrap());
        prop_assert_eq!(cmp_distance(&key, &a, &b), da.cmp(&db));
        let d = u64::from_be_bytes(distance(&a, &b).try_into().unwrap());
        let expect = (d != 0).then(|| d.leading_zeros() as usize);
        prop_assert_eq!(bucket_index(&a, &b), expect);
    }

    #[test]
    fn random_id_lands_in_its_bucket(own in any::<[u8; 32]>(), rnd in any::<[u8; 32]>(), i in 0usize..256) {
        let t = Table::new(own.to_vec(), 1, 8, Instant::now());
        prop_assert_eq!(bucket_index(&own, &t.id_in_bucket(i, &rnd)), Some(i));
    }
}

#[test]
fn buckets_hold_k_contacts_and_k_spares() {
    let now = Instant::now();
    let mut t = Table::new(vec![0; 8], 100, 2, now);
    let id = |i: u8| vec![0x80, i, 0, 0, 0, 0, 0, 0];
    assert_eq!(t.seen(&id(1), 1, now), Seen::Added);
    assert_eq!(t.seen(&id(2), 2, now), Seen::Added);
    assert_eq!(t.seen(&id(3), 3, now), Seen::Spare);
    assert_eq!(t.seen(&id(4), 4, now), Seen::Spare);
    assert_eq!(t.seen(&id(5), 5, now), Seen::SpareDropped);
    assert_eq!(t.len(), 2);
    assert_eq!(t.buckets()[0].spares.len(), 2);
    // Ourselves, address 0, a wrong length: ignored.
    assert_eq!(t.seen(&[0; 8], 7, now), Seen::Ignored);
    assert_eq!(t.seen(&id(6), 100, now), Seen::Ignored);
    assert_eq!(t.seen(&id(6), 0, now), Seen::Ignored);
    assert_eq!(t.seen(&[0x80; 4], 8, now), Seen::Ignored);
    // Hearing from a contact again resets its failures.
    assert!(!t.failed(1, 2));
    assert_eq!(t.seen(&id(1), 1, now), Seen::Refreshed);
    assert_eq!(t.buckets()[0].contacts[1].fails, 0);
    // Three failures in a row evict it; the newest spare takes its place.
    assert!(!t.failed(2, 2));
    assert!(!t.failed(2, 2));
    assert!(t.failed(2, 2));
    let addrs: Vec<u64> = t.buckets()[0].contacts.iter().map(|c| c.addr).collect();
    assert_eq!(addrs, [1, 5]);
    // An address taken over by another id drops the old contact.
    assert_eq!(t.seen(&[0x40, 0, 0, 0, 0, 0, 0, 0], 1, now), Seen::Added);
    assert_eq!(t.buckets()[0].contacts.len(), 2); // spare 4 promoted
    assert_eq!(t.closest(&[0x40, 0, 0, 0, 0, 0, 0, 0], 1, 0)[0].addr, 1);
    assert_eq!(t.remove_addr(1), 1);
    assert_eq!(t.len(), 2);
}

/// The security property: a response is accepted only for a request in progress with
/// that key and cookie, of that code, from the address it went to. Anything else gets no
/// answer and changes no state.
#[test]
fn forged_responses_change_nothing() {
    let t0 = Instant::now();
    let mut a = node(0x11, 1, t0);
    let b = contact(0x22, 2);
    let stranger = contact(0x33, 3);
    introduce(&mut a, &b, t0);
    let key = oping();
    let q = a.lookup(&key.0, t0).unwrap();
    let reqs = sent(&mut a);
    assert_eq!(reqs.len(), 1);
    let (dst, req) = &reqs[0];
    assert_eq!(*dst, 2);
    let DhtBody::FindValueReq { cookie, key: k } = &req.body else {
        panic!("{req:?}")
    };
    assert_eq!(*k, key);
    let cookie = *cookie;
    assert_ne!(cookie, consts::INVALID_COOKIE);

    let rsp = |cookie: u64, key: &NameHash| DhtBody::FindValueRsp {
        cookie,
        key: key.clone(),
        contacts: vec![contact(0x44, 4)],
        values: vec![addr_value(66).to_vec()],
    };
    let other = NameHash(vec![0x99; 32]);
    let forged = [
        // Wrong cookie.
        bytes(&b, rsp(cookie ^ 1, &key)),
        // From a node we did not ask.
        bytes(&stranger, rsp(cookie, &key)),
        // Our contact's id at another address.
        bytes(&contact(0x22, 3), rsp(cookie, &key)),
        // Another key.
        bytes(&b, rsp(cookie, &other)),
        // The other code.
        bytes(
            &b,
            DhtBody::FindNodeRsp {
                cookie,
                key: key.clone(),
                contacts: vec![contact(0x44, 4)],
            },
        ),
    ];
    let before = state(&a);
    for (i, f) in forged.iter().enumerate() {
        a.on_packet(f, t0, WALL);
        assert_eq!(a.poll_transmit(), None, "forgery {i} answered");
        assert_eq!(a.poll_event(), None, "forgery {i} accepted");
        assert_eq!(state(&a), before, "forgery {i} changed state");
        assert_eq!(a.stats().rx_unmatched, i as u64 + 1);
    }
    // Our own id or address as sender: invalid.
    a.on_packet(&bytes(&contact(0x11, 2), rsp(cookie, &key)), t0, WALL);
    a.on_packet(&bytes(&contact(0x22, 1), rsp(cookie, &key)), t0, WALL);
    assert_eq!(a.stats().rx_invalid, 2);
    assert_eq!(state(&a), before);

    // The genuine answer.
    let genuine = bytes(&b, rsp(cookie, &key));
    a.on_packet(&genuine, t0, WALL);
    assert_eq!(
        a.poll_event(),
        Some(Event::LookupDone {
            id: q,
            key: key.clone(),
            addrs: vec![66]
        })
    );
    // Contacts named in an answer are not trusted: node 4 did not enter the buckets.
    assert_eq!(a.contacts(), 1);
    // A replay answers nothing any more.
    let after = state(&a);
    a.on_packet(&genuine, t0, WALL);
    assert_eq!(a.poll_transmit(), None);
    assert_eq!(a.poll_event(), None);
    assert_eq!(state(&a), after);
    assert_eq!(a.stats().rx_unmatched, 6);
    // Cached: asked again, it answers at once.
    let q2 = a.lookup(&key.0, t0).unwrap();
    assert_eq!(a.poll_transmit(), None);
    assert!(
        matches!(a.poll_event(), Some(Event::LookupDone { id, addrs, .. }) if id == q2 && addrs == [66])
    );
}

#[test]
fn invalid_packets_are_counted() {
    let t0 = Instant::now();
    let mut a = node(0x11, 1, t0);
    let before = state(&a);
    for p in [&[][..], &[0xff; 7][..], &[0x08, 0x09][..]] {
        a.on_packet(p, t0, WALL);
    }
    // A 16-byte id in a 32-byte layer.
    let short = Contact {
        id: vec![0x22; 16],
        addr: 2,
    };
    a.on_packet(
        &bytes(
            &short,
            DhtBody::FindNodeReq {
                cookie: 1,
                key: oping(),
            },
        ),
        t0,
        WALL,
    );
    assert_eq!(a.stats().rx_invalid, 4);
    assert_eq!(a.poll_transmit(), None);
    assert_eq!(state(&a), before);
}

#[test]
fn lookup_of_a_local_registration_answers_at_once() {
    let t0 = Instant::now();
    let mut a = node(0x11, 1, t0);
    introduce(&mut a, &contact(0x22, 2), t0);
    a.register(&oping().0, t0).unwrap();
    let publish = sent(&mut a);
    assert!(matches!(
        publish[..],
        [(
            2,
            DhtMsg {
                body: DhtBody::FindNodeReq { .. },
                ..
            }
        )]
    ));
    let q = a.lookup(&oping().0, t0).unwrap();
    assert_eq!(a.poll_transmit(), None);
    assert_eq!(
        a.poll_event(),
        Some(Event::LookupDone {
            id: q,
            key: oping(),
            addrs: vec![1]
        })
    );
    assert!(a.unregister(&oping().0));
    assert!(!a.unregister(&oping().0));
}

#[test]
fn alone_in_the_layer() {
    let t0 = Instant::now();
    let mut a = node(0x11, 1, t0);
    let q = a.lookup(&oping().0, t0).unwrap();
    assert_eq!(
        a.poll_event(),
        Some(Event::LookupDone {
            id: q,
            key: oping(),
            addrs: vec![]
        })
    );
    a.register(&oping().0, t0).unwrap();
    assert_eq!(a.poll_transmit(), None);
    assert_eq!(a.stats().stores_unplaced, 1);
    let q = a.lookup(&oping().0, t0).unwrap();
    assert!(
        matches!(a.poll_event(), Some(Event::LookupDone { id, addrs, .. }) if id == q && addrs == [1])
    );
    // Nothing to wait for but the periodic rounds.
    let t = a.poll_timeout().unwrap();
    assert_eq!(t, t0 + Duration::from_secs(u64::from(consts::T_REPLICATE)));
    a.handle_timeout(t, WALL + 900);
    assert_eq!(a.poll_transmit(), None);
    assert!(a.poll_timeout().unwrap() > t);
    // The first member to reach us gets what nobody holds yet.
    let b = contact(0x22, 2);
    a.on_packet(
        &bytes(
            &b,
            DhtBody::FindNodeReq {
                cookie: 9,
                key: NameHash(vec![0x77; 32]),
            },
        ),
        t,
        WALL + 900,
    );
    let stores = answer_find_nodes(&mut a, &b, t);
    assert_eq!(stores_of(&stores, &oping()), 1, "{stores:?}");
}

#[test]
fn serves_requests_and_stores() {
    let t0 = Instant::now();
    let mut a = node(0x11, 1, t0);
    let b = contact(0x22, 2);
    let c = contact(0x33, 3);
    let key = oping();
    let store = |val: Vec<u8>, exp: u32| DhtBody::Store {
        key: key.clone(),
        val,
        exp,
    };
    a.on_packet(
        &bytes(&b, store(addr_value(7).to_vec(), (WALL + 100) as u32)),
        t0,
        WALL,
    );
    assert_eq!(a.stats().stores_rx, 1);
    assert_eq!(a.contacts(), 1);
    // Refused: expired, not an address, address 0.
    a.on_packet(
        &bytes(&b, store(addr_value(8).to_vec(), (WALL - 1) as u32)),
        t0,
        WALL,
    );
    a.on_packet(
        &bytes(&b, store(vec![1, 2, 3, 4], (WALL + 100) as u32)),
        t0,
        WALL,
    );
    a.on_packet(
        &bytes(&b, store(addr_value(0).to_vec(), (WALL + 100) as u32)),
        t0,
        WALL,
    );
    assert_eq!(a.stats().stores_refused, 3);
    // An expiry beyond t_expire is capped.
    a.on_packet(
        &bytes(&b, store(addr_value(9).to_vec(), u32::MAX)),
        t0,
        WALL,
    );
    let entries = a.show().entries;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].values,
        [(7, WALL + 100), (9, WALL + u64::from(consts::T_EXPIRE))]
    );

    a.on_packet(
        &bytes(
            &c,
            DhtBody::FindValueReq {
                cookie: 42,
                key: key.clone(),
            },
        ),
        t0,
        WALL,
    );
    let out = sent(&mut a);
    assert_eq!(
        out,
        [(
            3,
            DhtMsg {
                src: contact(0x11, 1),
                body: DhtBody::FindValueRsp {
                    cookie: 42,
                    key: key.clone(),
                    contacts: vec![b.clone()],
                    values: vec![addr_value(7).to_vec(), addr_value(9).to_vec()],
                }
            }
        )]
    );
    a.on_packet(
        &bytes(
            &b,
            DhtBody::FindNodeReq {
                cookie: 43,
                key: key.clone(),
            },
        ),
        t0,
        WALL,
    );
    let out = sent(&mut a);
    let DhtBody::FindNodeRsp {
        cookie, contacts, ..
    } = &out[0].1.body
    else {
        panic!()
    };
    // The requester is not among the contacts.
    assert_eq!((*cookie, contacts.clone()), (43, vec![c.clone()]));
    // Values expire at their exp.
    a.handle_timeout(t0 + Duration::from_secs(900), WALL + 900);
    assert_eq!(
        a.show().entries[0].values,
        [(9, WALL + u64::from(consts::T_EXPIRE))]
    );
    assert_eq!(a.stats().values_expired, 1);
}

#[test]
fn unanswered_requests_time_out_and_evict() {
    let t0 = Instant::now();
    let mut a = node(0x11, 1, t0);
    introduce(&mut a, &contact(0x22, 2), t0);
    let mut now = t0;
    for i in 0..3 {
        let q = a.lookup(&oping().0, now).unwrap();
        assert_eq!(sent(&mut a).len(), 1);
        // The request times out and is sent once more.
        let due = a.poll_timeout().unwrap();
        assert_eq!(due, now + Duration::from_secs(2));
        a.handle_timeout(due - Duration::from_millis(1), WALL);
        assert_eq!(a.poll_event(), None);
        a.handle_timeout(due, WALL + 2);
        assert_eq!(sent(&mut a).len(), 1);
        assert_eq!(a.poll_event(), None);
        // The second one too: the lookup ends empty and the contact failed once.
        let due = a.poll_timeout().unwrap();
        assert_eq!(due, now + Duration::from_secs(4));
        a.handle_timeout(due, WALL + 4);
        assert_eq!(
            a.poll_event(),
            Some(Event::LookupDone {
                id: q,
                key: oping(),
                addrs: vec![]
            })
        );
        assert_eq!(a.contacts(), usize::from(i < 2));
        now = due;
    }
    assert_eq!(a.stats().req_timeouts, 6);
    assert_eq!(a.stats().contacts_evicted, 1);
}

#[test]
fn bootstrap_learns_the_peer_id() {
    let t0 = Instant::now();
    let mut a = node(0x11, 1, t0);
    let b = contact(0x22, 2);
    a.bootstrap(2, t0);
    let out = sent(&mut a);
    let [(
        2,
        DhtMsg {
            body: DhtBody::FindNodeReq { cookie, key },
            ..
        },
    )] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(key.0, a.id());
    let rsp = DhtBody::FindNodeRsp {
        cookie: *cookie,
        key: key.clone(),
        contacts: vec![contact(0x55, 5)],
    };
    // From anyone but the peer: refused.
    a.on_packet(&bytes(&contact(0x22, 3), rsp.clone()), t0, WALL);
    assert_eq!(a.stats().rx_unmatched, 1);
    assert_eq!(a.contacts(), 0);
    a.on_packet(&bytes(&b, rsp), t0, WALL);
    assert_eq!(a.contacts(), 1);
    assert_eq!(a.show().buckets[0].contacts[0].id.0, b.id);
    // Node 5 is asked next; the join completes when it answers or times out.
    let out = sent(&mut a);
    assert!(out.iter().any(|(d, _)| *d == 5));
    a.handle_timeout(t0 + Duration::from_secs(2), WALL + 2);
    assert_eq!(a.poll_event(), Some(Event::Joined { contacts: 1 }));
    assert!(a.show().joined);
}

#[test]
fn bootstrap_retries_until_answered() {
    let t0 = Instant::now();
    let mut a = node(0x11, 1, t0);
    a.bootstrap(2, t0);
    assert_eq!(sent(&mut a).len(), 1);
    let t1 = t0 + Duration::from_secs(2);
    assert_eq!(a.poll_timeout(), Some(t1));
    a.handle_timeout(t1, WALL + 2);
    assert_eq!(a.poll_transmit(), None);
    assert_eq!(a.poll_event(), None);
    let t2 = t1 + REJOIN;
    assert_eq!(a.poll_timeout(), Some(t2));
    a.handle_timeout(t2, WALL + 3);
    let out = sent(&mut a);
    assert!(
        matches!(
            out[..],
            [(
                2,
                DhtMsg {
                    body: DhtBody::FindNodeReq { .. },
                    ..
                }
            )]
        ),
        "{out:?}"
    );
    // A newcomer that reaches us meanwhile does not count as joining.
    introduce(&mut a, &contact(0x66, 6), t2);
    a.handle_timeout(t2 + Duration::from_secs(2), WALL + 5);
    assert_eq!(a.poll_event(), None);
    assert!(!a.show().joined);
    // The delay doubles after each failure.
    let t3 = t2 + Duration::from_secs(2) + 2 * REJOIN;
    assert_eq!(a.poll_timeout(), Some(t3));
    a.handle_timeout(t3, WALL + 7);
    assert!(sent(&mut a).iter().any(|(d, _)| *d == 2));
}

#[test]
fn peer_gone_ends_the_wait() {
    let t0 = Instant::now();
    let mut a = node(0x11, 1, t0);
    introduce(&mut a, &contact(0x22, 2), t0);
    let q = a.lookup(&oping().0, t0).unwrap();
    assert_eq!(sent(&mut a).len(), 1);
    a.peer_gone(2, t0);
    assert_eq!(a.contacts(), 0);
    assert!(
        matches!(a.poll_event(), Some(Event::LookupDone { id, addrs, .. }) if id == q && addrs.is_empty())
    );
}

#[test]
fn publication_and_republication() {
    let t0 = Instant::now();
    let mut a = node(0x11, 1, t0);
    let b = contact(0x22, 2);
    introduce(&mut a, &b, t0);
    a.register(&oping().0, t0).unwrap();
    let period = DhtConfig::default().replication_period();
    for (t, wall) in [(t0, WALL), (t0 + period, WALL + 900)] {
        if t > t0 {
            a.handle_timeout(t, wall);
        }
        // The publication's FIND_NODE (a bucket refresh may go along).
        let out = sent(&mut a);
        let Some((
            2,
            DhtMsg {
                body: DhtBody::FindNodeReq { cookie, key },
                ..
            },
        )) = out
            .iter()
            .find(|(_, m)| matches!(&m.body, DhtBody::FindNodeReq { key, .. } if *key == oping()))
        else {
            panic!("{out:?}")
        };
        let rsp = DhtBody::FindNodeRsp {
            cookie: *cookie,
            key: key.clone(),
            contacts: vec![],
        };
        a.on_packet(&bytes(&b, rsp), t, wall);
        let out = sent(&mut a);
        let exp = (wall + u64::from(consts::T_EXPIRE)) as u32;
        assert_eq!(
            out,
            [(
                2,
                DhtMsg {
                    src: contact(0x11, 1),
                    body: DhtBody::Store {
                        key: oping(),
                        val: addr_value(1).to_vec(),
                        exp
                    }
                }
            )]
        );
    }
}

/// Answer every FIND_NODE `a` sent to `from` with no contacts; returns the STOREs `a` sends.
fn answer_find_nodes(a: &mut Dht, from: &Contact, now: Instant) -> Vec<(u64, DhtMsg)> {
    let mut stores = Vec::new();
    let mut out = sent(a);
    while !out.is_empty() {
        let mut next = Vec::new();
        for (dst, m) in out {
            match m.body {
                DhtBody::FindNodeReq { cookie, key } if dst == from.addr => {
                    let rsp = DhtBody::FindNodeRsp {
                        cookie,
                        key,
                        contacts: vec![],
                    };
                    a.on_packet(&bytes(from, rsp), now, WALL);
                    next.extend(sent(a));
                }
                DhtBody::Store { .. } => stores.push((dst, m)),
                _ => {}
            }
        }
        out = next;
    }
    stores
}

fn stores_of(stores: &[(u64, DhtMsg)], key: &NameHash) -> usize {
    stores
        .iter()
        .filter(|(_, m)| matches!(&m.body, DhtBody::Store { key: k, .. } if k == key))
        .count()
}

/// A name registered before the node joined the layer reaches the layer when it joins.
#[test]
fn registration_before_joining_is_published_on_joining() {
    let t0 = Instant::now();
    let mut a = node(0x11, 1, t0);
    a.register(&oping().0, t0).unwrap();
    assert!(sent(&mut a).is_empty());
    assert_eq!(a.stats().stores_unplaced, 1);
    let b = contact(0x22, 2);
    a.bootstrap(2, t0);
    let stores = answer_find_nodes(&mut a, &b, t0);
    assert_eq!(a.poll_event(), Some(Event::Joined { contacts: 1 }));
    assert_eq!(stores_of(&stores, &oping()), 1, "{stores:?}");
    // Placed: no more retries are due before the replication period (the timer that is
    // due looks for more contacts than the one the join found; it stores nothing).
    let period = DhtConfig::default().replication_period();
    assert_eq!(a.poll_timeout(), Some(t0 + REJOIN));
    a.handle_timeout(t0 + REJOIN * 8, WALL + 8);
    assert_eq!(stores_of(&answer_find_nodes(&mut a, &b, t0), &oping()), 0);
    assert!(period > REJOIN * 8);
}

/// A node that joined through a peer that knew nobody yet (it was joining too) looks for
/// more contacts 1 s later, then 2 s, 4 s... until it has `k` of them.
#[test]
fn sparse_table_after_joining_is_filled() {
    let t0 = Instant::now();
    let mut a = node(0x11, 1, t0);
    let b = contact(0x22, 2);
    a.bootstrap(2, t0);
    answer_find_nodes(&mut a, &b, t0);
    assert_eq!(a.poll_event(), Some(Event::Joined { contacts: 1 }));
    // 1 s later: a FIND_NODE for our own id, to the one contact.
    assert_eq!(a.poll_timeout(), Some(t0 + REJOIN));
    a.handle_timeout(t0 + REJOIN, WALL + 1);
    let out = sent(&mut a);
    let own = out.iter().find_map(|(d, m)| match &m.body {
        DhtBody::FindNodeReq { cookie, key } if *d == 2 && key.0 == a.id() => Some(*cookie),
        _ => None,
    });
    let Some(cookie) = own else {
        panic!("no FIND_NODE for our id: {out:?}")
    };
    // The peer has joined meanwhile and names k others; each answers and becomes a contact.
    let k = DhtConfig::default().k();
    let others: Vec<Contact> = (0..k as u8)
        .map(|i| contact(0x30 + i, 10 + u64::from(i)))
        .collect();
    let rsp = DhtBody::FindNodeRsp {
        cookie,
        key: NameHash(a.id().to_vec()),
        contacts: others.clone(),
    };
    a.on_packet(&bytes(&b, rsp), t0 + REJOIN, WALL + 1);
    let mut out = sent(&mut a);
    while !out.is_empty() {
        let mut next = Vec::new();
        for (dst, m) in out {
            let (DhtBody::FindNodeReq { cookie, key }, Some(c)) =
                (&m.body, others.iter().find(|c| c.addr == dst))
            else {
                continue;
            };
            let rsp = DhtBody::FindNodeRsp {
                cookie: *cookie,
                key: key.clone(),
                contacts: vec![],
            };
            a.on_packet(&bytes(c, rsp), t0 + REJOIN, WALL + 1);
            next.extend(sent(&mut a));
        }
        out = next;
    }
    assert!(a.contacts() >= k, "{} contacts", a.contacts());
    // Full: the next check finds nothing to do and sends nothing.
    let next = t0 + 3 * REJOIN;
    a.handle_timeout(next, WALL + 3);
    assert!(sent(&mut a).is_empty());
    assert!(a.poll_timeout().unwrap() > next);
}

/// A publication that no node answered is tried again after 1 s, then 2 s, ..., and stops
/// once a node holds the value, or once the name is unregistered.
#[test]
fn unplaced_registration_is_retried() {
    let t0 = Instant::now();
    let mut a = node(0x11, 1, t0);
    let b = contact(0x22, 2);
    introduce(&mut a, &b, t0);
    a.register(&oping().0, t0).unwrap();
    assert_eq!(sent(&mut a).len(), 1);
    // The FIND_NODE times out: nothing placed, the contact has failed once.
    let t1 = t0 + Duration::from_secs(2);
    a.handle_timeout(t1, WALL + 2);
    assert_eq!(a.stats().stores_unplaced, 1);
    assert!(sent(&mut a).is_empty());
    assert_eq!(a.poll_timeout(), Some(t1 + REJOIN));
    let t2 = t1 + REJOIN;
    a.handle_timeout(t2, WALL + 3);
    let stores = answer_find_nodes(&mut a, &b, t2);
    assert_eq!(stores_of(&stores, &oping()), 1, "{stores:?}");

    // Unregistered while unplaced: no retry publishes it.
    let key = NameHash(vec![0x42; 32]);
    a.register(&key.0, t2).unwrap();
    sent(&mut a);
    let t3 = t2 + Duration::from_secs(2);
    a.handle_timeout(t3, WALL + 5);
    assert!(a.unregister(&key.0));
    a.handle_timeout(t3 + MAX_REJOIN, WALL + 70);
    assert_eq!(stores_of(&answer_find_nodes(&mut a, &b, t3), &key), 0);
}

#[test]
fn configuration_and_arguments_are_checked() {
    let t0 = Instant::now();
    let bad = |cfg: DhtConfig| Dht::new(vec![1; 32], 1, cfg, t0, WALL, [0; 32]).err();
    assert_eq!(
        bad(DhtConfig {
            alpha: 0,
            ..DhtConfig::default()
        }),
        Some(DhtError::Param {
            name: "alpha",
            value: 0,
            min: 1,
            max: 10
        })
    );
    assert!(matches!(
        bad(DhtConfig {
            k: 21,
            ..DhtConfig::default()
        }),
        Some(DhtError::Param { name: "k", .. })
    ));
    assert!(matches!(
        bad(DhtConfig {
            t_expire: 9,
            ..DhtConfig::default()
        }),
        Some(DhtError::Param { .. })
    ));
    assert!(matches!(
        bad(DhtConfig {
            t_refresh: 2,
            ..DhtConfig::default()
        }),
        Some(DhtError::Param { .. })
    ));
    assert!(matches!(
        bad(DhtConfig {
            t_replicate: 3601,
            ..DhtConfig::default()
        }),
        Some(DhtError::Param { .. })
    ));
    let cfg = DhtConfig::default();
    assert_eq!(
        Dht::new(vec![1; 4], 1, cfg.clone(), t0, WALL, [0; 32]).err(),
        Some(DhtError::IdLength(4))
    );
    assert_eq!(
        Dht::new(vec![1; 32], 0, cfg, t0, WALL, [0; 32]).err(),
        Some(DhtError::InvalidAddr)
    );
    let mut a = node(0x11, 1, t0);
    assert_eq!(
        a.register(&[1; 16], t0),
        Err(DhtError::KeyLength {
            len: 16,
            hash_len: 32
        })
    );
    assert!(a.lookup(&[1; 33], t0).is_err());
    // The replication period is at most half the expiry.
    let short = DhtConfig {
        t_expire: 10,
        ..DhtConfig::default()
    };
    assert_eq!(short.replication_period(), Duration::from_secs(5));
}

#[test]
fn tables_stay_bounded() {
    let t0 = Instant::now();
    let cfg = DhtConfig {
        max_entries: 4,
        k: 2,
        ..DhtConfig::default()
    };
    let mut a = node_with(0x11, 1, cfg, t0);
    let exp = (WALL + 100) as u32;
    for i in 0..10u8 {
        let store = DhtBody::Store {
            key: NameHash(vec![i; 32]),
            val: addr_value(7).to_vec(),
            exp,
        };
        a.on_packet(&bytes(&contact(0x22, 2), store), t0, WALL);
    }
    for v in 0..12 {
        let store = DhtBody::Store {
            key: NameHash(vec![0; 32]),
            val: addr_value(100 + v).to_vec(),
            exp,
        };
        a.on_packet(&bytes(&contact(0x22, 2), store), t0, WALL);
    }
    let s = a.show();
    assert_eq!(s.entries.len(), 4);
    assert!(s.entries.iter().all(|e| e.values.len() <= consts::MAX_VALS));
    assert_eq!(
        s.stats.stores_dropped,
        6 + (12 + 1 - consts::MAX_VALS as u64)
    );
    for i in 0..200u64 {
        let mut id = vec![0u8; 32];
        id[..8].copy_from_slice(&(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_be_bytes());
        let c = Contact { id, addr: 1000 + i };
        a.on_packet(
            &bytes(
                &c,
                DhtBody::FindNodeReq {
                    cookie: 1,
                    key: oping(),
                },
            ),
            t0,
            WALL,
        );
    }
    sent(&mut a);
    let s = a.show();
    assert!(s
        .buckets
        .iter()
        .all(|b| b.contacts.len() <= 2 && b.spares <= 2));
    assert!(s.stats.contacts_dropped > 0);
    for i in 0..200u8 {
        let mut key = vec![i; 32];
        key[1] = 0xee;
        a.lookup(&key, t0).unwrap();
    }
    let s = a.show();
    assert_eq!(s.lookups, consts::MAX_REQS);
    assert_eq!(s.stats.lookups_dropped, 200 - consts::MAX_REQS as u64);
    assert_eq!(s.queued_events, 200 - consts::MAX_REQS);
}
