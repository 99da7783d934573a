//! Link-state updates of the unicast layer's routing component, flooded between neighbours
//! over management flows (the lower flows the `Management` component connected, with no data
//! transfer PCI in front).
//!
//! An update announces one directed adjacency: the prototype's packed `lsa` struct, exactly
//! 24 bytes, three **big-endian** 64-bit words. There is no message type byte and no length;
//! the prototype reads 24 bytes and ignores a packet of any other length.
//!
//! ```text
//!  0               8               16              24
//! +---------------+---------------+---------------+
//! | d_addr        | s_addr        | seqno         |
//! +---------------+---------------+---------------+
//! ```
//!
//! A node re-announces each of its own adjacencies every `t_update` seconds with the sequence
//! number increased, and a new adjacency with sequence number 0. A receiver stores an update
//! only if it is for an unknown adjacency or has a higher sequence number than the one
//! stored, and forwards exactly those to its other management neighbours; adjacencies not
//! refreshed within `t_timeo` seconds are removed. When a management connection comes up, the
//! whole database is sent over it. See [`consts`] for the timers.
//!
//! ```
//! use o7s_proto::wire::lsu::{LsuPacket, LsuRepr, LSU_LEN};
//!
//! let lsu = LsuRepr { d_addr: 0x0506_0708, s_addr: 0x0102_0304, seqno: 42 };
//! let mut buf = [0u8; LSU_LEN];
//! lsu.emit(&mut buf).unwrap();
//! assert_eq!(LsuRepr::parse(&LsuPacket::new_checked(&buf[..]).unwrap()).unwrap(), lsu);
//! ```

use super::bytes::{get_u64, need, room, set_u64, Field};
use super::{Result, WireError};

/// Length of a link-state update.
pub const LSU_LEN: usize = 24;

/// The link-state routing defaults (`default_ls_config`), carried in the layer configuration.
pub mod consts {
    /// Link-state policy `simple` (shortest path); `lfa` is 1, `ecmp` 2.
    pub const POL_SIMPLE: u32 = 0;
    /// Loop-free alternates.
    pub const POL_LFA: u32 = 1;
    /// Equal-cost multipath.
    pub const POL_ECMP: u32 = 2;
    /// Seconds between recalculations of the forwarding tables (when the graph changed).
    pub const T_RECALC: u32 = 4;
    /// Seconds between re-announcements of a node's own adjacencies.
    pub const T_UPDATE: u32 = 15;
    /// Seconds after which an adjacency that was not re-announced is removed.
    pub const T_TIMEO: u32 = 60;
}

mod field {
    use super::Field;
    pub const D_ADDR: Field = 0..8;
    pub const S_ADDR: Field = 8..16;
    pub const SEQNO: Field = 16..24;
}

/// A zero-copy view of a link-state update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsuPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> LsuPacket<T> {
    /// Wrap a buffer without checking it; accessors may panic until [`Self::check_len`] passes.
    pub fn new_unchecked(buffer: T) -> Self {
        LsuPacket { buffer }
    }

    /// Wrap a buffer of exactly [`LSU_LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Exactly [`LSU_LEN`] bytes: shorter is `Truncated`, longer `BadLength`.
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        need(LSU_LEN, have)?;
        if have != LSU_LEN {
            return Err(WireError::BadLength {
                field: "link-state update length",
                value: have,
            });
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The far end of the adjacency.
    pub fn d_addr(&self) -> u64 {
        get_u64(self.buffer.as_ref(), field::D_ADDR)
    }

    /// The node that announces the adjacency.
    pub fn s_addr(&self) -> u64 {
        get_u64(self.buffer.as_ref(), field::S_ADDR)
    }

    pub fn seqno(&self) -> u64 {
        get_u64(self.buffer.as_ref(), field::SEQNO)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> LsuPacket<T> {
    pub fn set_d_addr(&mut self, v: u64) {
        set_u64(self.buffer.as_mut(), field::D_ADDR, v);
    }
    pub fn set_s_addr(&mut self, v: u64) {
        set_u64(self.buffer.as_mut(), field::S_ADDR, v);
    }
    pub fn set_seqno(&mut self, v: u64) {
        set_u64(self.buffer.as_mut(), field::SEQNO, v);
    }
}

/// A link-state update: `s_addr` has a link to `d_addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LsuRepr {
    pub d_addr: u64,
    pub s_addr: u64,
    pub seqno: u64,
}

impl LsuRepr {
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &LsuPacket<&T>) -> Result<LsuRepr> {
        packet.check_len()?;
        Ok(LsuRepr {
            d_addr: packet.d_addr(),
            s_addr: packet.s_addr(),
            seqno: packet.seqno(),
        })
    }

    /// [`LSU_LEN`].
    pub const fn buffer_len(&self) -> usize {
        LSU_LEN
    }

    /// Write the update into `buf[..24]`; returns 24.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        room(LSU_LEN, buf.len())?;
        let mut p = LsuPacket::new_unchecked(&mut buf[..LSU_LEN]);
        p.set_d_addr(self.d_addr);
        p.set_s_addr(self.s_addr);
        p.set_seqno(self.seqno);
        Ok(LSU_LEN)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::wire::testing::hex;
    use proptest::prelude::*;

    // d_addr 0x05060708 | s_addr 0x01020304 | seqno 42, each hton64 as the prototype stores it.
    const LSU: &str = "0000000005060708 0000000001020304 000000000000002a";

    #[test]
    fn vector() {
        let bytes = hex(LSU);
        let r = LsuRepr {
            d_addr: 0x0506_0708,
            s_addr: 0x0102_0304,
            seqno: 42,
        };
        let mut buf = [0xaau8; LSU_LEN + 2];
        assert_eq!(r.emit(&mut buf), Ok(LSU_LEN));
        assert_eq!(&buf[..LSU_LEN], &bytes[..]);
        let p = LsuPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(LsuRepr::parse(&p), Ok(r));
        for n in 0..LSU_LEN {
            assert!(matches!(
                LsuPacket::new_checked(&bytes[..n]),
                Err(WireError::Truncated { .. })
            ));
        }
        assert!(matches!(
            LsuPacket::new_checked(&buf[..]),
            Err(WireError::BadLength { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(d_addr: u64, s_addr: u64, seqno: u64) {
            let r = LsuRepr { d_addr, s_addr, seqno };
            let mut buf = [0u8; LSU_LEN];
            prop_assert_eq!(r.emit(&mut buf), Ok(LSU_LEN));
            prop_assert_eq!(LsuRepr::parse(&LsuPacket::new_checked(&buf[..]).unwrap()), Ok(r));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = LsuPacket::new_checked(&bytes[..]) {
                let r = LsuRepr::parse(&p).unwrap();
                let mut buf = [0u8; LSU_LEN];
                prop_assert_eq!(r.emit(&mut buf), Ok(LSU_LEN));
                prop_assert_eq!(&buf[..], &bytes[..]);
            }
        }
    }
}
