//! Loom model of a flow (only under `--cfg loom`): the real [`Duplex`] code over heap rings and
//! a mutex-and-condvar stand-in for the eventfds.

use crate::data::{CtlRef, Data};
pub use crate::duplex::Duplex;
use crate::duplex::{Slept, Wait};
use crate::ring::{Padded, Ring, RingCtl, RxState, TxState};
use loom::sync::atomic::{AtomicU32, AtomicU64};
use loom::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// An eventfd: a counter, readable while non-zero.
#[derive(Default)]
pub struct Event {
    count: Mutex<u64>,
    cv: Condvar,
}

impl Event {
    fn add(&self) {
        let mut c = crate::sync::lock(&self.count);
        *c += 1;
        self.cv.notify_all();
    }
}

/// [`Wait`] over two [`Event`]s; the flow never goes down in the model.
pub struct LoomWait {
    own: Arc<Event>,
    peer: Arc<Event>,
}

impl Wait for LoomWait {
    fn notify_peer(&self) {
        self.peer.add();
    }
    fn notify_self(&self) {
        self.own.add();
    }
    fn sleep(&self, _deadline: Option<Instant>) -> Slept {
        let mut c = crate::sync::lock(&self.own.count);
        while *c == 0 {
            c = self.own.cv.wait(c).unwrap_or_else(|e| e.into_inner());
        }
        Slept::Woken
    }
    fn drain(&self) -> u64 {
        std::mem::take(&mut *crate::sync::lock(&self.own.count))
    }
    fn poll_down(&self) -> bool {
        false
    }
}

fn ctl() -> CtlRef {
    CtlRef(std::sync::Arc::new(RingCtl {
        tail: Padded(AtomicU64::new(0)),
        head: Padded(AtomicU64::new(0)),
        consumer_sleeping: AtomicU32::new(0),
        producer_waiting: AtomicU32::new(0),
    }))
}

/// Both ends of a model flow with rings of `capacity` bytes (a power of two, at least 64) and
/// `headroom`; blocking calls do not spin (they go straight to the sleep handshake).
pub fn pair(capacity: usize, headroom: usize) -> (Duplex<LoomWait>, Duplex<LoomWait>) {
    assert!(capacity.is_power_of_two() && capacity / 4 > 8 + headroom);
    let (c0, c1) = (ctl(), ctl());
    let (d0, d1) = (Data::new(capacity), Data::new(capacity));
    let (ea, eb) = (Arc::new(Event::default()), Arc::new(Event::default()));
    let a = Duplex::new(
        Ring::new(c0.clone(), d0.clone(), headroom),
        Ring::new(c1.clone(), d1.clone(), headroom),
        TxState::new(0),
        RxState::new(0),
        LoomWait {
            own: ea.clone(),
            peer: eb.clone(),
        },
        Duration::ZERO,
    );
    let b = Duplex::new(
        Ring::new(c1, d1, headroom),
        Ring::new(c0, d0, headroom),
        TxState::new(0),
        RxState::new(0),
        LoomWait { own: eb, peer: ea },
        Duration::ZERO,
    );
    (a, b)
}
