//! The FRCT (flow and retransmission control) header, 12 bytes in front of each payload on a
//! flow that asked for in-order or loss-free delivery.
//!
//! ```text
//!  0       8                               32                              64              96
//! +-------+-------------------------------+-------------------------------+---------------+
//! | flags | right window edge (24 bits)   | sequence number (32 bits)     | ack number    |
//! +-------+-------------------------------+-------------------------------+---------------+
//! ```
//!
//! The prototype writes the right window edge as a big-endian 32-bit word and then overwrites
//! its first byte with the flags, so only the low 24 bits of the window edge travel; the
//! receiver rebuilds the top byte from its own state. Every integer is big-endian.
//!
//! ```
//! use o7s_proto::wire::frct::{FrctFlags, FrctPacket, FrctRepr, HEADER_LEN};
//!
//! let repr = FrctRepr { flags: FrctFlags::DATA | FrctFlags::FC, rwe: 0x0102_03, seqno: 7, ackno: 0 };
//! let mut buf = [0u8; HEADER_LEN];
//! repr.emit(&mut buf).unwrap();
//! assert_eq!(buf[..4], [0x09, 0x01, 0x02, 0x03]);
//! let p = FrctPacket::new_checked(&buf[..]).unwrap();
//! assert_eq!(FrctRepr::parse(&p).unwrap(), repr);
//! ```

use super::bytes::{get_u32, need, room, set_u32, Field};
use super::{Result, WireError};

/// Length of the FRCT header.
pub const HEADER_LEN: usize = 12;
/// Largest right window edge the header carries.
pub const RWE_MASK: u32 = 0x00FF_FFFF;

mod field {
    use super::Field;
    pub const FLAGS: usize = 0;
    pub const WORD0: Field = 0..4;
    pub const SEQNO: Field = 4..8;
    pub const ACKNO: Field = 8..12;
    pub const PAYLOAD: usize = 12;
}

/// The flags byte of the FRCT header. Bits the prototype does not define (0x80) are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FrctFlags(pub u8);

impl FrctFlags {
    /// The packet carries data.
    pub const DATA: FrctFlags = FrctFlags(0x01);
    /// Data run flag: first packet of a run, nothing unacknowledged before it.
    pub const DRF: FrctFlags = FrctFlags(0x02);
    /// The ack number is valid.
    pub const ACK: FrctFlags = FrctFlags(0x04);
    /// The right window edge is valid (flow control).
    pub const FC: FrctFlags = FrctFlags(0x08);
    /// Rendez-vous: the sender's window is closed, asks for a window update.
    pub const RDVS: FrctFlags = FrctFlags(0x10);
    /// Fragment boundary: with MFGM the first fragment of a message, alone its last one
    /// (the prototype names it "first fragment" but never sets it; see `docs/wire.md`).
    pub const FFGM: FrctFlags = FrctFlags(0x20);
    /// More fragments follow: first and middle fragments.
    pub const MFGM: FrctFlags = FrctFlags(0x40);

    pub const fn empty() -> Self {
        FrctFlags(0)
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: FrctFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for FrctFlags {
    type Output = FrctFlags;
    fn bitor(self, rhs: FrctFlags) -> FrctFlags {
        FrctFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for FrctFlags {
    fn bitor_assign(&mut self, rhs: FrctFlags) {
        self.0 |= rhs.0;
    }
}

/// A zero-copy view of an FRCT packet (header and payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrctPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FrctPacket<T> {
    /// Wrap a buffer without checking it; accessors may panic until [`Self::check_len`] passes.
    pub fn new_unchecked(buffer: T) -> Self {
        FrctPacket { buffer }
    }

    /// Wrap a packet of at least [`HEADER_LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        need(HEADER_LEN, self.buffer.as_ref().len())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn flags(&self) -> FrctFlags {
        FrctFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// The low 24 bits of the sender's right window edge.
    pub fn rwe(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::WORD0) & RWE_MASK
    }

    pub fn seqno(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQNO)
    }

    pub fn ackno(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACKNO)
    }

    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> FrctPacket<T> {
    pub fn set_flags(&mut self, v: FrctFlags) {
        self.buffer.as_mut()[field::FLAGS] = v.0;
    }
    /// Writes the low 24 bits of `v`, keeping the flags byte.
    pub fn set_rwe(&mut self, v: u32) {
        let flags = self.flags();
        set_u32(self.buffer.as_mut(), field::WORD0, v & RWE_MASK);
        self.set_flags(flags);
    }
    pub fn set_seqno(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::SEQNO, v);
    }
    pub fn set_ackno(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::ACKNO, v);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// The FRCT header. `rwe` is the 24-bit value on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FrctRepr {
    pub flags: FrctFlags,
    pub rwe: u32,
    pub seqno: u32,
    pub ackno: u32,
}

impl FrctRepr {
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &FrctPacket<&T>) -> Result<FrctRepr> {
        packet.check_len()?;
        Ok(FrctRepr {
            flags: packet.flags(),
            rwe: packet.rwe(),
            seqno: packet.seqno(),
            ackno: packet.ackno(),
        })
    }

    /// [`HEADER_LEN`].
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header into `buf[..12]`. An `rwe` wider than 24 bits is refused.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        room(HEADER_LEN, buf.len())?;
        if self.rwe > RWE_MASK {
            return Err(WireError::BadLength {
                field: "rwe",
                value: self.rwe as usize,
            });
        }
        let mut p = FrctPacket::new_unchecked(buf);
        p.set_rwe(self.rwe);
        p.set_flags(self.flags);
        p.set_seqno(self.seqno);
        p.set_ackno(self.ackno);
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::hex;
    use proptest::prelude::*;

    #[test]
    fn parse_vector() {
        // DATA|DRF|FC, rwe 0x000040, seqno 0x12345678, ackno 0, payload "hi".
        let b = hex("0b 00 00 40  12 34 56 78  00 00 00 00  68 69");
        let p = FrctPacket::new_checked(&b[..]).expect("long enough");
        let r = FrctRepr::parse(&p).expect("parses");
        assert_eq!(
            r,
            FrctRepr {
                flags: FrctFlags::DATA | FrctFlags::DRF | FrctFlags::FC,
                rwe: 0x40,
                seqno: 0x1234_5678,
                ackno: 0,
            }
        );
        assert_eq!(p.payload(), b"hi");
    }

    #[test]
    fn emit_vector() {
        let r = FrctRepr {
            flags: FrctFlags::ACK | FrctFlags::FC,
            rwe: 0x00AB_CDEF,
            seqno: 1,
            ackno: 0xDEAD_BEEF,
        };
        let mut b = [0xFFu8; 12];
        assert_eq!(r.emit(&mut b), Ok(12));
        assert_eq!(b.to_vec(), hex("0c ab cd ef 00 00 00 01 de ad be ef"));
    }

    #[test]
    fn rendez_vous_vector() {
        let mut b = [0u8; 12];
        FrctRepr {
            flags: FrctFlags::RDVS,
            ..Default::default()
        }
        .emit(&mut b)
        .expect("room");
        assert_eq!(b.to_vec(), hex("10 000000 00000000 00000000"));
    }

    #[test]
    fn fragment_vectors() {
        // First fragment (DATA|DRF|FFGM|MFGM, FC), rwe 0x000140, seqno 10, payload "ab";
        // then a middle (MFGM) and a last (FFGM) fragment without FC.
        let cases = [
            (
                FrctRepr {
                    flags: FrctFlags(0x6b),
                    rwe: 0x140,
                    seqno: 10,
                    ackno: 0,
                },
                "6b 00 01 40  00 00 00 0a  00 00 00 00",
            ),
            (
                FrctRepr {
                    flags: FrctFlags::DATA | FrctFlags::MFGM,
                    rwe: 0,
                    seqno: 11,
                    ackno: 0,
                },
                "41 00 00 00  00 00 00 0b  00 00 00 00",
            ),
            (
                FrctRepr {
                    flags: FrctFlags::DATA | FrctFlags::FFGM,
                    rwe: 0,
                    seqno: 12,
                    ackno: 0,
                },
                "21 00 00 00  00 00 00 0c  00 00 00 00",
            ),
        ];
        for (r, h) in cases {
            let mut b = [0u8; HEADER_LEN];
            assert_eq!(r.emit(&mut b), Ok(HEADER_LEN));
            assert_eq!(b.to_vec(), hex(h));
            let p = FrctPacket::new_checked(&b[..]).expect("long enough");
            assert_eq!(FrctRepr::parse(&p), Ok(r));
        }
        assert_eq!(
            FrctFlags(0x6b),
            FrctFlags::DATA | FrctFlags::DRF | FrctFlags::FC | FrctFlags::FFGM | FrctFlags::MFGM
        );
    }

    #[test]
    fn errors() {
        let b = [0u8; 11];
        assert_eq!(
            FrctPacket::new_checked(&b[..]),
            Err(WireError::Truncated { need: 12, have: 11 })
        );
        let mut small = [0u8; 11];
        assert_eq!(
            FrctRepr::default().emit(&mut small),
            Err(WireError::BufferTooSmall { need: 12, have: 11 })
        );
        let mut ok = [0u8; 12];
        let wide = FrctRepr {
            rwe: 0x0100_0000,
            ..Default::default()
        };
        assert!(matches!(
            wide.emit(&mut ok),
            Err(WireError::BadLength { .. })
        ));
    }

    #[test]
    fn set_rwe_keeps_flags() {
        let mut b = [0u8; 12];
        let mut p = FrctPacket::new_unchecked(&mut b[..]);
        p.set_flags(FrctFlags::MFGM | FrctFlags::FFGM);
        p.set_rwe(0xFF12_3456);
        assert_eq!(p.flags(), FrctFlags(0x60));
        assert_eq!(p.rwe(), 0x0012_3456);
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn round_trip(flags in any::<u8>(), rwe in 0u32..=RWE_MASK, seqno in any::<u32>(), ackno in any::<u32>()) {
            let r = FrctRepr { flags: FrctFlags(flags), rwe, seqno, ackno };
            let mut b = [0u8; HEADER_LEN];
            prop_assert_eq!(r.emit(&mut b), Ok(HEADER_LEN));
            let p = FrctPacket::new_checked(&b[..]);
            prop_assert!(p.is_ok());
            if let Ok(p) = p {
                prop_assert_eq!(FrctRepr::parse(&p), Ok(r));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = FrctPacket::new_checked(&b[..]) {
                let r = FrctRepr::parse(&p);
                prop_assert!(r.is_ok());
                let mut out = vec![0u8; b.len()];
                if let Ok(r) = r {
                    prop_assert_eq!(r.emit(&mut out), Ok(HEADER_LEN));
                    prop_assert_eq!(&out[..HEADER_LEN], &b[..HEADER_LEN]);
                }
            } else {
                prop_assert!(b.len() < HEADER_LEN);
            }
        }
    }
}
