//! Scenarios and properties of link-state routing, run on the simulated layer of `sim`.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::sim::{addr, cfg, edge, random_net, ring, Net};
use super::*;
use crate::wire::lsu::LsuRepr;

const POLICIES: [Policy; 3] = [Policy::LinkState, Policy::Lfa, Policy::Ecmp];

#[test]
fn ring_converges_at_once() {
    for p in POLICIES {
        let mut net = ring(6, p);
        // The neighbours' answers make every own-link recalculation due at once; the rest
        // of the ring follows within one t_recalc.
        net.run_for(net.cfg.t_recalc);
        net.check_db(true);
        net.check_routes();
        assert!(net.table_changes.values().all(|&c| c >= 1));
        let t = net.node(addr(0)).table();
        if p == Policy::Ecmp {
            assert_eq!(t.lookup(addr(3)).len(), 2);
        }
    }
}

#[test]
fn ring_cut_reroutes_with_withdrawal() {
    for p in POLICIES {
        let mut net = ring(8, p);
        net.run_for(Duration::from_secs(20));
        net.check_routes();
        let (a, b) = (addr(0), addr(1));
        let before = net.node(addr(4)).stats().recalculations;
        net.cut(a, b);
        net.pump();
        // The two ends reroute at once: 0 reaches 1 the long way round.
        assert_eq!(net.node(a).table().lookup(b), [addr(7)]);
        assert_eq!(net.node(b).table().lookup(a), [addr(2)]);
        // Everyone else got the withdrawals and recalculates within one t_recalc.
        for n in net.nodes.values() {
            assert!(n.links().all(|l| edge(l.src, l.dst) != edge(a, b)));
        }
        net.run_for(net.cfg.t_recalc);
        assert!(net.node(addr(4)).stats().recalculations > before);
        net.check_routes();
        net.check_db(true);
        // Long after, nothing comes back and the withdrawals are forgotten.
        net.run_for(4 * net.cfg.t_timeo);
        net.check_routes();
        net.check_db(true);
        for n in net.nodes.values() {
            assert_eq!(n.db_len(), 14);
            assert!(n.stats().withdrawals_received > 0 || n.own() == a || n.own() == b);
        }
        // The link comes back: above the withdrawals if they are still remembered or not.
        net.connect(a, b);
        net.run_for(net.cfg.t_recalc);
        net.check_routes();
        net.check_db(true);
    }
}

#[test]
fn link_back_while_withdrawal_remembered() {
    let mut net = ring(5, Policy::LinkState);
    net.run_for(Duration::from_secs(5));
    let (a, b) = (addr(2), addr(3));
    net.cut(a, b);
    net.run_for(Duration::from_secs(10));
    net.connect(a, b);
    net.pump();
    net.run_for(net.cfg.t_recalc);
    net.check_db(true);
    net.check_routes();
}

#[test]
fn lfa_alternate_without_recalculation() {
    let mut c = cfg(Policy::Lfa);
    c.recalc_on_link_change = false;
    let mut net = Net::new(5, c, 1);
    for i in 0..5 {
        net.connect(addr(i), addr((i + 1) % 5));
    }
    net.run_for(Duration::from_secs(10));
    net.check_routes();
    let s = addr(0);
    // Odd ring: node 2 is reached through 1, protected by 4.
    assert_eq!(net.node(s).table().lookup(addr(2)), [addr(1), addr(4)]);
    let recalcs = net.node(s).stats().recalculations;
    let now = net.now;
    let n = net.nodes.get_mut(&s).unwrap();
    n.link_down(addr(1), now);
    assert_eq!(n.stats().recalculations, recalcs, "no recalculation yet");
    assert_eq!(n.poll_output(), Some(Output::TableChanged));
    assert_eq!(n.table().lookup(addr(2)), [addr(4)]);
    assert!(n.table().lookup(addr(1)).is_empty(), "1 had no alternate");
    // The recalculation comes within t_recalc and finds the long way to 1.
    net.edges.remove(&edge(s, addr(1)));
    let peer = net.nodes.get_mut(&addr(1)).unwrap();
    peer.link_down(s, now);
    peer.mgmt_down(s);
    net.nodes.get_mut(&s).unwrap().mgmt_down(addr(1));
    net.run_for(net.cfg.t_recalc);
    net.check_routes();
}

#[test]
fn silent_death_times_out() {
    let mut net = ring(6, Policy::LinkState);
    net.run_for(Duration::from_secs(30));
    let dead = addr(3);
    net.kill(dead);
    net.run_for(Duration::from_secs(1));
    // Without a withdrawal the others still route to it for a while.
    assert!(!net.node(addr(0)).table().lookup(dead).is_empty());
    net.run_for(net.cfg.t_timeo + net.cfg.t_recalc);
    // Its own announcements timed out everywhere; its neighbours still announce their side
    // (they were never told), which alone does not make an edge.
    net.check_routes();
    for n in net.nodes.values() {
        assert!(n.links().all(|l| l.src != dead));
        assert!(n.table().lookup(dead).is_empty());
        assert!(n.stats().timeouts >= 2 || n.own() == addr(2) || n.own() == addr(4));
    }
    assert!(net
        .node(addr(0))
        .links()
        .any(|l| l.src == addr(2) && l.dst == dead));
}

#[test]
fn restart_is_corrected_quickly() {
    let mut net = ring(6, Policy::Ecmp);
    // Also a link 3 – 0 that the restarted node will not bring back.
    net.connect(addr(3), addr(0));
    net.run_for(Duration::from_secs(100));
    net.check_routes();
    let k = addr(3);
    // 3 crashes; its neighbours notice the flows going down and withdraw their sides, but
    // 3's own announcements linger in every database.
    net.kill(k);
    for nb in [addr(2), addr(4), addr(0)] {
        net.cut(nb, k);
    }
    net.run_for(Duration::from_secs(2));
    // 3 comes back with seqnos from 0, linked to 2 and 4 only.
    let c = net.cfg.clone();
    net.nodes.insert(k, LinkState::new(k, c, net.now));
    net.connect(k, addr(2));
    net.connect(k, addr(4));
    net.run_for(net.cfg.t_recalc);
    net.check_routes();
    net.check_db(true);
    assert!(net.node(k).stats().corrections >= 1, "3 -> 0 withdrawn");
}

#[test]
fn lost_updates_are_repaired_by_refreshes() {
    let mut net = Net::new(12, cfg(Policy::Lfa), 7);
    net.loss_pct = 30;
    for i in 0..12 {
        net.connect(addr(i), addr((i + 1) % 12));
        net.connect(addr(i), addr((i + 5) % 12));
    }
    net.run_for(Duration::from_secs(40));
    net.cut(addr(0), addr(1));
    net.cut(addr(6), addr(11));
    net.run_for(Duration::from_secs(40));
    // One refresh round without loss brings every database up to date.
    net.loss_pct = 0;
    net.run_for(net.cfg.t_update + net.cfg.t_recalc);
    net.check_db(true);
    net.check_routes();
}

#[test]
fn stale_copies_do_not_resurrect() {
    let t0 = Instant::now();
    let mut n = LinkState::new(1, cfg(Policy::LinkState), t0);
    n.link_up(2, t0);
    let up = |s, d, seqno| {
        LsMsg::Update(LsuRepr {
            d_addr: d,
            s_addr: s,
            seqno,
        })
        .to_bytes()
    };
    let wd = |s, d, seqno| {
        LsMsg::Withdraw(LsuRepr {
            d_addr: d,
            s_addr: s,
            seqno,
        })
        .to_bytes()
    };
    n.on_packet(2, &up(2, 1, 5), t0);
    n.on_packet(2, &up(2, 3, 0), t0);
    n.on_packet(2, &up(3, 2, 0), t0);
    n.handle_timeout(t0);
    assert_eq!(n.table().lookup(3), [2]);
    n.on_packet(2, &wd(3, 2, 1), t0);
    for s in [0, 1] {
        n.on_packet(2, &up(3, 2, s), t0);
    }
    assert_eq!(n.stats().ignored, 2);
    n.handle_timeout(t0 + Duration::from_secs(4));
    assert!(n.table().lookup(3).is_empty());
    // A newer announcement brings it back.
    n.on_packet(2, &up(3, 2, 2), t0);
    n.handle_timeout(t0 + Duration::from_secs(8));
    assert_eq!(n.table().lookup(3), [2]);
    // A withdrawal for an adjacency we never heard of is remembered too.
    n.on_packet(2, &wd(4, 2, 9), t0);
    n.on_packet(2, &up(4, 2, 9), t0);
    assert!(n.links().all(|l| l.src != 4));
    // Updates about ourselves we agree with are adopted; a false one is answered.
    n.on_packet(2, &up(1, 2, 40), t0);
    n.on_packet(2, &up(1, 7, 3), t0);
    let sent: Vec<LsMsg> = std::iter::from_fn(|| n.poll_output())
        .filter_map(|o| match o {
            Output::Send { bytes, .. } => Some(LsMsg::parse(&bytes).unwrap()),
            Output::TableChanged => None,
        })
        .collect();
    assert!(sent.is_empty(), "no management neighbour: {sent:?}");
    assert_eq!(n.stats().corrections, 1);
    assert!(n.links().any(|l| (l.src, l.dst, l.seqno) == (1, 2, 40)));
    assert!(n.links().all(|l| (l.src, l.dst) != (1, 7)));
    n.mgmt_up(2, t0);
    let sent: Vec<LsMsg> = std::iter::from_fn(|| n.poll_output())
        .filter_map(|o| match o {
            Output::Send { bytes, .. } => Some(LsMsg::parse(&bytes).unwrap()),
            Output::TableChanged => None,
        })
        .collect();
    assert!(sent.contains(&LsMsg::Withdraw(LsuRepr {
        d_addr: 7,
        s_addr: 1,
        seqno: 4
    })));
    assert_eq!(sent.len(), n.db_len());
}

#[test]
fn malformed_input_is_counted() {
    let t0 = Instant::now();
    let mut n = LinkState::new(1, cfg(Policy::Lfa), t0);
    n.mgmt_up(2, t0);
    let good = LsMsg::Update(LsuRepr {
        d_addr: 3,
        s_addr: 2,
        seqno: 0,
    })
    .to_bytes();
    let mut bad_tag = good.clone();
    bad_tag.push(2);
    let zero = LsMsg::Update(LsuRepr {
        d_addr: 0,
        s_addr: 2,
        seqno: 0,
    })
    .to_bytes();
    let lo = LsMsg::Update(LsuRepr {
        d_addr: 2,
        s_addr: 2,
        seqno: 0,
    })
    .to_bytes();
    for p in [&[][..], &good[..23], &bad_tag, &[0u8; 26], &zero, &lo] {
        n.on_packet(2, p, t0);
    }
    assert_eq!(n.stats().malformed, 6);
    assert_eq!(n.db_len(), 0);
    assert_eq!(n.poll_output(), None);
}

#[test]
fn database_and_queue_are_capped() {
    let t0 = Instant::now();
    let c = LsConfig {
        max_links: 8,
        ..cfg(Policy::LinkState)
    };
    let mut n = LinkState::new(1, c, t0);
    n.link_up(2, t0);
    for nb in 2..40 {
        n.mgmt_up(nb, t0);
    }
    for i in 0..100u64 {
        let m = LsMsg::Update(LsuRepr {
            d_addr: 1000 + i,
            s_addr: 2,
            seqno: 0,
        });
        n.on_packet(2, &m.to_bytes(), t0);
    }
    assert_eq!(n.db_len(), 8);
    assert_eq!(n.stats().db_full, 100 - 7);
    // Each newer update is flooded to 37 neighbours.
    for seqno in 1..100 {
        let m = LsMsg::Update(LsuRepr {
            d_addr: 1000,
            s_addr: 2,
            seqno,
        });
        n.on_packet(2, &m.to_bytes(), t0);
    }
    assert_eq!(n.queued(), 1024);
    assert!(n.stats().queue_full > 0);
    // Our own adjacencies are stored beyond the cap.
    n.link_up(3, t0);
    assert_eq!(n.db_len(), 9);
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::LinkState),
        Just(Policy::Lfa),
        Just(Policy::Ecmp)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_graphs_converge(
        n in 2usize..=20,
        extra in proptest::collection::vec((0usize..20, 0usize..20), 0..30),
        seed: u64,
        p in policy(),
        cut in proptest::collection::vec((0usize..20, 0usize..20), 0..4),
    ) {
        let mut net = random_net(n, &extra, seed, cfg(p));
        net.run_for(net.cfg.t_recalc);
        net.check_db(true);
        net.check_routes();
        // Cutting links (possibly partitioning the layer) converges within one t_recalc.
        for &(a, b) in &cut {
            net.cut(addr(a % n), addr(b % n));
        }
        net.run_for(net.cfg.t_recalc);
        net.check_db(false);
        net.check_routes();
        // Announcements from nodes cut off time out.
        net.run_for(net.cfg.t_timeo + net.cfg.t_update);
        net.check_db(true);
        net.check_routes();
    }

    #[test]
    fn garbage_never_panics(
        pkts in proptest::collection::vec(
            (0u64..4, proptest::collection::vec(any::<u8>(), 0..30), 0u64..5000), 0..60),
    ) {
        let mut net = ring(4, Policy::Lfa);
        net.run_for(Duration::from_secs(1));
        let target = addr(0);
        for (from, mut bytes, ms) in pkts {
            // Make some of them well-formed messages about addresses in the ring.
            if bytes.len() >= 24 && bytes[0] & 1 == 0 {
                let (d, s) = (addr(usize::from(bytes[1] % 5)), addr(usize::from(bytes[2] % 5)));
                bytes[..8].copy_from_slice(&d.to_be_bytes());
                bytes[8..16].copy_from_slice(&s.to_be_bytes());
                bytes.truncate(24 + usize::from(bytes[3] & 1));
                if bytes.len() == 25 {
                    bytes[24] = WITHDRAW_TAG;
                }
            }
            let now = net.now;
            net.nodes.get_mut(&target).unwrap().on_packet(addr(from as usize), &bytes, now);
            net.run_for(Duration::from_millis(ms));
        }
        // The table only uses links that are up.
        for (_, hops) in net.node(target).table().iter() {
            for h in hops {
                prop_assert!(net.node(target).dt_neighbours().any(|x| x == *h));
            }
        }
    }
}

/// Recalculation for 50 nodes must be well under a millisecond (in an optimised build).
#[test]
fn recalculation_cost_50_nodes() {
    let extra: Vec<(usize, usize)> = (0..100).map(|i| (i * 7 % 50, i * 13 % 50 + 1)).collect();
    for p in POLICIES {
        let mut net = random_net(50, &extra, 3, cfg(p));
        net.run_for(net.cfg.t_recalc);
        net.check_routes();
        let now = net.now;
        let n = net.nodes.get_mut(&addr(0)).unwrap();
        let runs = 50u32;
        let start = Instant::now();
        for _ in 0..runs {
            n.recalc(now);
        }
        let each = start.elapsed() / runs;
        let links = n.db_len();
        eprintln!("{p:?}: {links} links, {each:?} per recalculation");
        let limit = if cfg!(debug_assertions) {
            20_000
        } else {
            1_000
        };
        assert!(each < Duration::from_micros(limit), "{p:?}: {each:?}");
    }
}

#[test]
fn timers() {
    let mut net = ring(3, Policy::LinkState);
    net.run_for(Duration::from_secs(1));
    let n = net.node(addr(0));
    let t = n.poll_timeout().unwrap();
    assert_eq!(t, net.t0 + net.cfg.t_update);
    net.run_for(Duration::from_secs(15));
    assert!(net
        .node(addr(0))
        .links()
        .all(|l| l.seqno == 1 && l.updated == net.t0 + net.cfg.t_update));
}
