//! The byte layout of a flow region and its validation. Safe code only: everything here works
//! on copies of the header, never on the mapping.
//!
//! ```text
//! 0     header: magic u64 | version u32 | headroom u32 | capacity u64   (little endian)
//! 128   down: u32, non-zero once whoever holds the memfd (the IRMd) took the flow down
//! 192   side A's park word: u32, 196 side B's, 200 the IRMd's discard word (see `park`)
//! 256   ring 0 control block (A -> B)   tail | head (own 128-byte lines) | flags
//! 640   ring 1 control block (B -> A)
//! 1024  side A's statistics slot: sequence u64 | pid u64 | STATS_WORDS u64 (native endian)
//! 1152  side B's statistics slot
//! 4096  ring 0 data, `capacity` bytes
//! 4096+capacity  ring 1 data, `capacity` bytes
//! ```

use crate::{RingConfig, ShmError};

/// "O7SFLOW1" as a little-endian u64.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"O7SFLOW1");
pub(crate) const VERSION: u32 = 1;
pub(crate) const HEADER_LEN: usize = 24;
/// Offset of the control block of ring `i`.
pub(crate) const fn ctl_off(i: usize) -> usize {
    256 + i * 384
}
pub(crate) const DATA_OFF: usize = 4096;
/// Offset of the "down" word (its own cache line, read by both ends, written once).
pub(crate) const DOWN_OFF: usize = 128;
const _: () = assert!(DOWN_OFF >= HEADER_LEN && DOWN_OFF + 4 <= ctl_off(0));
/// Offset of side `i`'s park word (its own business and the IRMd's, see `park`).
pub(crate) const fn park_off(i: usize) -> usize {
    192 + i * 4
}
const _: () = assert!(park_off(0) >= DOWN_OFF + 4 && park_off(1) + 4 <= ctl_off(0));
/// Offset of the discard word: non-zero once the IRMd let the region set go (see `park`).
pub(crate) const DISCARD_OFF: usize = park_off(2);
const _: () = assert!(DISCARD_OFF + 4 <= ctl_off(0));
/// Counters in a statistics slot (what they mean is the publisher's business).
pub const STATS_WORDS: usize = 14;
/// Offset of side `i`'s statistics slot: a sequence word, the publisher's pid, the counters.
pub(crate) const fn stats_off(i: usize) -> usize {
    1024 + i * 128
}
const _: () = assert!(stats_off(1) + (2 + STATS_WORDS) * 8 <= DATA_OFF);
const _: () = assert!(stats_off(0) >= ctl_off(1) + 384);
/// Smallest accepted ring capacity in bytes.
pub const MIN_CAPACITY: usize = 256;
/// Largest accepted ring capacity in bytes.
pub const MAX_CAPACITY: usize = 1 << 30;
/// Bytes of the record header (length and kind) in front of every record.
pub(crate) const REC_HDR: usize = 8;

/// Validated sizes of a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub capacity: usize,
    pub headroom: usize,
}

impl Geometry {
    pub(crate) fn from_config(cfg: &RingConfig) -> Result<Geometry, ShmError> {
        let g = Geometry {
            capacity: cfg.capacity,
            headroom: usize::from(cfg.headroom),
        };
        g.check()?;
        Ok(g)
    }

    fn check(&self) -> Result<(), ShmError> {
        let c = self.capacity;
        if !c.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&c) {
            return Err(ShmError::BadRegion(format!(
                "ring capacity {c} is not a power of two in {MIN_CAPACITY}..={MAX_CAPACITY}"
            )));
        }
        if c / 4 <= REC_HDR + self.headroom {
            return Err(ShmError::BadRegion(format!(
                "headroom {} leaves no room for a packet in a ring of {c} bytes",
                self.headroom
            )));
        }
        Ok(())
    }

    pub(crate) fn total_len(&self) -> usize {
        DATA_OFF + 2 * self.capacity
    }

    pub(crate) fn data_off(&self, ring: usize) -> usize {
        DATA_OFF + ring * self.capacity
    }

    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC.to_le_bytes());
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        // `check` bounds headroom far below u32::MAX.
        h[12..16].copy_from_slice(&(self.headroom as u32).to_le_bytes());
        h[16..24].copy_from_slice(&(self.capacity as u64).to_le_bytes());
        h
    }

    /// Parse a header read from an untrusted region of `file_len` bytes.
    pub(crate) fn decode(h: &[u8; HEADER_LEN], file_len: u64) -> Result<Geometry, ShmError> {
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let u32_at = |o: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&h[o..o + 4]);
            u32::from_le_bytes(b)
        };
        if u64_at(0) != MAGIC {
            return Err(ShmError::BadRegion(
                "bad magic: not an o7s flow region".into(),
            ));
        }
        let version = u32_at(8);
        if version != VERSION {
            return Err(ShmError::BadRegion(format!(
                "region version {version}, this build speaks {VERSION}"
            )));
        }
        let headroom = usize::try_from(u32_at(12))
            .map_err(|_| ShmError::BadRegion("headroom out of range".into()))?;
        let capacity = usize::try_from(u64_at(16))
            .map_err(|_| ShmError::BadRegion("capacity out of range".into()))?;
        if headroom > usize::from(u16::MAX) {
            return Err(ShmError::BadRegion(format!("headroom {headroom} > 65535")));
        }
        let g = Geometry { capacity, headroom };
        g.check()?;
        if file_len != g.total_len() as u64 {
            return Err(ShmError::BadRegion(format!(
                "region is {file_len} bytes, header says {}",
                g.total_len()
            )));
        }
        Ok(g)
    }
}

/// Round up to the record alignment (8 bytes).
pub(crate) const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn header_round_trip_and_rejects() {
        let g = Geometry::from_config(&RingConfig::default()).unwrap();
        let h = g.encode();
        assert_eq!(Geometry::decode(&h, g.total_len() as u64).unwrap(), g);
        assert!(Geometry::decode(&h, g.total_len() as u64 - 1).is_err());
        let mut bad = h;
        bad[0] ^= 1;
        assert!(Geometry::decode(&bad, g.total_len() as u64).is_err());
        let mut bad = h;
        bad[16] = 3; // not a power of two
        assert!(Geometry::decode(&bad, g.total_len() as u64).is_err());
        let mut bad = h;
        bad[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Geometry::decode(&bad, g.total_len() as u64).is_err());
        assert!(Geometry::from_config(&RingConfig {
            capacity: 256,
            headroom: 60
        })
        .is_err());
    }
}
