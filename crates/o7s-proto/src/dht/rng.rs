//! The DHT's own randomness: SHA3-256 in counter mode over a seed the caller draws from the
//! operating system. Cookies must not be predictable from the cookies a member has seen (a
//! member that could predict them could forge answers to requests sent to others), so a fast
//! invertible generator will not do.

use sha3::{Digest, Sha3_256};

pub(crate) struct Rng {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl Rng {
    pub(crate) fn new(seed: [u8; 32]) -> Rng {
        Rng {
            seed,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            if self.used == self.block.len() {
                let mut h = Sha3_256::new();
                h.update(self.seed);
                h.update(self.counter.to_be_bytes());
                self.block.copy_from_slice(&h.finalize());
                self.counter += 1;
                self.used = 0;
            }
            *b = self.block[self.used];
            self.used += 1;
        }
    }

    pub(crate) fn u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill(&mut b);
        u64::from_be_bytes(b)
    }

    /// A request cookie: random and never the invalid cookie 0.
    pub(crate) fn cookie(&mut self) -> u64 {
        loop {
            let c = self.u64();
            if c != crate::wire::dht::consts::INVALID_COOKIE {
                return c;
            }
        }
    }
}
