//! A link-state routing instance (address 1) driven through an arbitrary sequence of events:
//! data-transfer and management adjacencies coming and going, packets (arbitrary bytes, or
//! well-formed updates and withdrawals about a small set of addresses with arbitrary sequence
//! numbers) from any neighbour, arbitrary time steps. A second instance (address 2) is joined
//! to it by a management adjacency whose traffic the input may deliver. Nothing may panic,
//! and between events:
//! - memory stays bounded: the database by `max_links` plus our own adjacencies, the output
//!   queue by four times `max_links` (at least 1024);
//! - our live adjacencies in the database are exactly the data-transfer adjacencies up;
//! - the table has no route to ourselves, no empty or duplicate next-hop lists, one next hop
//!   under the link-state policy, and only neighbours whose adjacency is up as next hops;
//! - every packet sent goes to a management neighbour and is a well-formed message, which the
//!   second instance never counts as malformed;
//! - after `handle_timeout(now)` nothing is due at `now` any more.
#![no_main]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use o7s_proto::routing::{LinkState, LsConfig, LsMsg, Output, Policy};
use o7s_proto::wire::lsu::LsuRepr;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Addresses 0..=7: 0 is invalid, 1 is us, 2 the second instance.
    fn addr(&mut self) -> u64 {
        u64::from(self.byte() % 8)
    }
    fn seqno(&mut self) -> u64 {
        let b = self.byte();
        match b >> 6 {
            0 => u64::from(b & 0x3f),
            1 => u64::MAX - u64::from(b & 0x3f),
            _ => u64::from(self.u16()),
        }
    }
}

const OWN: u64 = 1;
const PEER: u64 = 2;

fn check(ls: &LinkState, max_links: usize) {
    assert!(ls.db_len() <= max_links + 8, "database of {}", ls.db_len());
    assert!(ls.queued() <= max_links.saturating_mul(4).max(1024));
    let up: Vec<u64> = ls.dt_neighbours().collect();
    let ours: Vec<u64> = ls
        .links()
        .filter(|l| l.src == ls.own())
        .map(|l| l.dst)
        .collect();
    assert_eq!(ours, up, "own adjacencies in the database");
    let t = ls.table();
    for (dst, hops) in t.iter() {
        assert_ne!(dst, ls.own());
        assert!(!hops.is_empty());
        if t.policy() == Policy::LinkState {
            assert_eq!(hops.len(), 1);
        }
        for (i, h) in hops.iter().enumerate() {
            assert!(up.contains(h), "next hop {h} is not a link");
            assert!(!hops[..i].contains(h), "duplicate next hop");
        }
    }
}

/// Move `src`'s outputs: packets to `peer` go on `wire` (with the sender), the rest go
/// nowhere (their neighbours are not simulated).
fn drain(src: &mut LinkState, peer: u64, wire: &mut VecDeque<(u64, Vec<u8>)>) {
    while let Some(out) = src.poll_output() {
        match out {
            Output::Send { to, bytes } => {
                assert!(src.mgmt_neighbours().any(|m| m == to), "not a neighbour");
                let m = LsMsg::parse(&bytes).expect("well-formed message");
                let l = m.lsu();
                assert!(l.s_addr != 0 && l.d_addr != 0 && l.s_addr != l.d_addr);
                if to == peer && wire.len() < 4096 {
                    wire.push_back((src.own(), bytes));
                }
            }
            Output::TableChanged => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let mode = inp.byte();
    let policy = match mode % 3 {
        0 => Policy::LinkState,
        1 => Policy::Lfa,
        _ => Policy::Ecmp,
    };
    let max_links = if mode & 0x80 != 0 {
        65536
    } else {
        usize::from(inp.byte() % 32)
    };
    let cfg = LsConfig {
        policy,
        t_recalc: Duration::from_millis(u64::from(inp.byte()) * 40),
        t_update: Duration::from_millis(u64::from(inp.byte()) * 150),
        t_timeo: Duration::from_millis(u64::from(inp.byte()) * 600),
        max_links,
        recalc_on_link_change: mode & 0x40 != 0,
    };
    let mut now = Instant::now();
    let mut a = LinkState::new(OWN, cfg.clone(), now);
    let mut b = LinkState::new(PEER, cfg, now);
    // (sender, bytes) on the management adjacency, one queue per direction.
    let mut to_b: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    let mut to_a: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    let mut ops = 0;
    while !inp.is_empty() && ops < 3000 {
        ops += 1;
        let op = inp.byte();
        match op % 12 {
            0 => {
                let nb = inp.addr();
                a.link_up(nb, now);
                if nb == PEER {
                    b.link_up(OWN, now);
                }
            }
            1 => {
                let nb = inp.addr();
                a.link_down(nb, now);
                if nb == PEER {
                    b.link_down(OWN, now);
                }
            }
            2 => {
                let nb = inp.addr();
                a.mgmt_up(nb, now);
                if nb == PEER {
                    b.mgmt_up(OWN, now);
                }
            }
            3 => {
                let nb = inp.addr();
                a.mgmt_down(nb);
                if nb == PEER {
                    b.mgmt_down(OWN);
                    to_a.clear();
                    to_b.clear();
                }
            }
            4 => {
                let from = inp.addr();
                let n = usize::from(inp.byte() % 40);
                let bytes = inp.bytes(n).to_vec();
                a.on_packet(from, &bytes, now);
            }
            5 | 6 => {
                let from = inp.addr();
                let lsu = LsuRepr {
                    d_addr: inp.addr(),
                    s_addr: inp.addr(),
                    seqno: inp.seqno(),
                };
                let m = if op & 0x80 != 0 {
                    LsMsg::Withdraw(lsu)
                } else {
                    LsMsg::Update(lsu)
                };
                a.on_packet(from, &m.to_bytes(), now);
            }
            7 => {
                let v = u64::from(inp.u16());
                now += match op >> 6 {
                    0 => Duration::from_micros(v),
                    1 => Duration::from_millis(v),
                    2 => Duration::from_millis(v * 16),
                    _ => Duration::from_secs(v),
                };
            }
            8 => {
                for x in [&mut a, &mut b] {
                    x.handle_timeout(now);
                    if let Some(t) = x.poll_timeout() {
                        assert!(t > now, "due after handle_timeout");
                    }
                }
            }
            9 => {
                drain(&mut a, PEER, &mut to_b);
                drain(&mut b, OWN, &mut to_a);
            }
            10 => {
                // Deliver some of what is in flight, both ways, unless the input drops it.
                let n = usize::from(inp.byte() % 64);
                for _ in 0..n {
                    let drop = inp.byte() == 0xff;
                    if let Some((from, p)) = to_b.pop_front() {
                        let m = b.stats().malformed;
                        if !drop {
                            b.on_packet(from, &p, now);
                        }
                        assert_eq!(b.stats().malformed, m, "peer sent a malformed message");
                    }
                    if let Some((from, p)) = to_a.pop_front() {
                        if !drop {
                            a.on_packet(from, &p, now);
                        }
                    }
                }
            }
            _ => {
                let _ = a.stats();
                let _ = a.links().count();
                let nb = inp.addr();
                let _ = a.table().next_hop(nb, u64::from(op));
            }
        }
        check(&a, max_links);
        check(&b, max_links);
    }
});
