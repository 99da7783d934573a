//! The hub: every packet that comes in through one port goes out through all the others,
//! unmodified (the prototype's broadcast layer adds no header). A port is a neighbour's data
//! transfer flow or a local application's flow; a port that cannot take a packet at once
//! (its flow is full) loses that copy, counted, and never holds up the others.
//!
//! There is no duplicate suppression: the wire carries nothing to tell a packet from its
//! copy, so the layer's connections must form a tree. A cycle floods a packet around forever.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// A port of the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortId {
    /// A neighbour's data transfer flow (numbered by this IPCP).
    Nb(u64),
    /// A local application's flow (its flow id).
    Local(u64),
}

/// Where the hub puts packets.
pub trait Outlet: Send + Sync {
    fn port(&self) -> PortId;
    /// Take one packet without waiting; false when it was dropped (full or gone).
    fn offer(&self, pkt: &[u8]) -> bool;
}

/// Counters of the hub.
#[derive(Default, Debug)]
pub struct HubStats {
    /// Packets that came in (through any port).
    pub packets: AtomicU64,
    /// Copies handed to a port.
    pub copies: AtomicU64,
    /// Copies a port could not take.
    pub dropped: AtomicU64,
}

#[derive(Default)]
pub struct Hub {
    ports: RwLock<Vec<Arc<dyn Outlet>>>,
    pub stats: HubStats,
}

impl Hub {
    /// Add a port; false (nothing changes) if one with its id is there already.
    pub fn add(&self, o: Arc<dyn Outlet>) -> bool {
        let mut ports = self.ports.write().unwrap_or_else(|e| e.into_inner());
        if ports.iter().any(|p| p.port() == o.port()) {
            return false;
        }
        ports.push(o);
        true
    }

    /// Remove a port; whether it was there.
    pub fn remove(&self, id: PortId) -> bool {
        let mut ports = self.ports.write().unwrap_or_else(|e| e.into_inner());
        let before = ports.len();
        ports.retain(|p| p.port() != id);
        ports.len() != before
    }

    pub fn ports(&self) -> Vec<PortId> {
        let ports = self.ports.read().unwrap_or_else(|e| e.into_inner());
        ports.iter().map(|p| p.port()).collect()
    }

    /// A packet came in through `from`: hand a copy to every other port. An empty packet is
    /// a keepalive of the flow it came on, not data: it goes nowhere. Returns the copies
    /// taken.
    pub fn flood(&self, from: PortId, pkt: &[u8]) -> usize {
        if pkt.is_empty() {
            return 0;
        }
        self.stats.packets.fetch_add(1, Ordering::Relaxed);
        let ports = self.ports.read().unwrap_or_else(|e| e.into_inner());
        let (mut taken, mut dropped) = (0u64, 0u64);
        for p in ports.iter().filter(|p| p.port() != from) {
            if p.offer(pkt) {
                taken += 1;
            } else {
                dropped += 1;
            }
        }
        drop(ports);
        self.stats.copies.fetch_add(taken, Ordering::Relaxed);
        self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
        taken as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A port that keeps what it takes, up to `room` packets.
    struct Fake {
        id: PortId,
        room: usize,
        got: Mutex<Vec<Vec<u8>>>,
    }

    impl Outlet for Fake {
        fn port(&self) -> PortId {
            self.id
        }
        fn offer(&self, pkt: &[u8]) -> bool {
            let mut g = self.got.lock().unwrap_or_else(|e| e.into_inner());
            if g.len() >= self.room {
                return false;
            }
            g.push(pkt.to_vec());
            true
        }
    }

    fn fake(id: PortId, room: usize) -> Arc<Fake> {
        Arc::new(Fake {
            id,
            room,
            got: Mutex::new(Vec::new()),
        })
    }

    fn got(f: &Fake) -> Vec<Vec<u8>> {
        f.got.lock().map(|g| g.clone()).unwrap_or_default()
    }

    #[test]
    fn a_packet_reaches_every_other_port_unmodified() {
        let hub = Hub::default();
        let ports = [
            fake(PortId::Nb(1), 10),
            fake(PortId::Nb(2), 10),
            fake(PortId::Local(7), 10),
            fake(PortId::Local(8), 10),
        ];
        for p in &ports {
            assert!(hub.add(p.clone()));
        }
        assert!(!hub.add(fake(PortId::Nb(1), 10)), "one port per id");
        assert_eq!(hub.flood(PortId::Nb(1), b"hello"), 3);
        assert_eq!(hub.flood(PortId::Local(7), b"\x00\xffraw"), 3);
        assert_eq!(got(&ports[0]), vec![b"\x00\xffraw".to_vec()]);
        assert_eq!(
            got(&ports[1]),
            vec![b"hello".to_vec(), b"\x00\xffraw".to_vec()]
        );
        assert_eq!(got(&ports[2]), vec![b"hello".to_vec()]);
        assert_eq!(
            got(&ports[3]),
            vec![b"hello".to_vec(), b"\x00\xffraw".to_vec()]
        );
        assert_eq!(hub.stats.packets.load(Ordering::Relaxed), 2);
        assert_eq!(hub.stats.copies.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn a_full_port_loses_its_copy_only() {
        let hub = Hub::default();
        let full = fake(PortId::Nb(1), 1);
        let roomy = fake(PortId::Local(2), 100);
        hub.add(full.clone());
        hub.add(roomy.clone());
        for i in 0..5u8 {
            hub.flood(PortId::Nb(9), &[i]);
        }
        assert_eq!(got(&full).len(), 1);
        assert_eq!(got(&roomy).len(), 5);
        assert_eq!(hub.stats.dropped.load(Ordering::Relaxed), 4);
        assert_eq!(hub.stats.copies.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn keepalives_and_removed_ports_get_nothing() {
        let hub = Hub::default();
        let a = fake(PortId::Nb(1), 10);
        let b = fake(PortId::Local(2), 10);
        hub.add(a.clone());
        hub.add(b.clone());
        assert_eq!(hub.flood(PortId::Nb(1), b""), 0);
        assert!(hub.remove(PortId::Local(2)));
        assert!(!hub.remove(PortId::Local(2)));
        assert_eq!(hub.flood(PortId::Nb(1), b"x"), 0);
        assert_eq!(hub.flood(PortId::Nb(3), b"y"), 1);
        assert!(got(&b).is_empty());
        assert_eq!(got(&a), vec![b"y".to_vec()]);
        assert_eq!(hub.ports(), vec![PortId::Nb(1)]);
    }
}
