//! The data transfer PCI: the header a unicast IPCP puts in front of every packet it sends
//! into the layer, whether from an application's flow or from one of its own components.
//!
//! ```text
//! +------------------------+----+-----+-----+-----------------------+---------
//! | dst_addr (addr_size)   | qc | ttl | ecn | eid (eid_size)        | payload
//! +------------------------+----+-----+-----+-----------------------+---------
//! ```
//!
//! **Byte order: little-endian.** The prototype copies the low `addr_size` bytes of its 64-bit
//! host integer for the address and the 8 bytes of its 64-bit endpoint id straight into the
//! header (`memcpy`, no `hton`), so on x86-64 both are little-endian; this codec writes what
//! that prototype writes. The QoS cube byte is likewise the low byte of the prototype's
//! `qoscube_t`. There is no source address: the flow allocator stores the peer when the flow
//! is made.
//!
//! The layer's `addr_size` (1, 2, 4 or 8; 4 by default and the only size the prototype's flat
//! address authority accepts) and `eid_size` (always 8: the prototype replaces any other
//! value by 8) come from the layer configuration received at enrollment, so a view and a
//! [`DtRepr`] are used with a [`DtParams`].
//!
//! ```
//! use o7s_proto::wire::dt::{DtPacket, DtParams, DtRepr, Qc};
//!
//! let params = DtParams::DEFAULT; // addr_size 4, eid_size 8
//! let repr = DtRepr { dst_addr: 0x0102_0304, qc: Qc::Be, ttl: 60, ecn: 0, eid: 65 };
//! let mut buf = vec![0u8; params.header_len() + 5];
//! repr.emit(params, &mut buf).unwrap();
//! buf[params.header_len()..].copy_from_slice(b"hello");
//! assert_eq!(buf[..4], [0x04, 0x03, 0x02, 0x01]); // little-endian address
//!
//! let mut p = DtPacket::new_checked(&mut buf[..], params).unwrap();
//! assert_eq!(p.decrement_ttl(), Some(59)); // one hop further
//! assert_eq!(p.payload(), b"hello");
//! ```

use super::bytes::{need, room, Field};
use super::{Result, WireError};

/// Default address size in bytes (`default_dt_config.addr_size`).
pub const DEFAULT_ADDR_SIZE: u8 = 4;
/// Endpoint id size in bytes; the only one the prototype supports.
pub const EID_SIZE: u8 = 8;
/// Default initial TTL (`default_dt_config.max_ttl`).
pub const DEFAULT_MAX_TTL: u8 = 60;
/// The invalid address (`INVALID_ADDR`): no IPCP has it.
pub const INVALID_ADDR: u64 = 0;
/// Endpoint ids below this name components of the IPCP itself (`PROG_RES_FDS`); from it on
/// they name flows of the flow allocator.
pub const RES_EIDS: u64 = 64;
/// Endpoint id of the flow allocator: the first component to register.
pub const FA_EID: u64 = 0;
/// Endpoint id of the DHT directory: the second component to register. Prototype DHTs send
/// to the peer's endpoint with their own id, so every member must use this one.
pub const DHT_EID: u64 = 1;

/// The prototype's QoS cube numbers (`qoscube_t`): one forwarding table per cube.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Qc {
    /// `QOS_CUBE_BE`: best effort; every management message uses it.
    #[default]
    Be = 0,
    /// `QOS_CUBE_VIDEO`.
    Video = 1,
    /// `QOS_CUBE_VOICE`.
    Voice = 2,
}

impl TryFrom<u8> for Qc {
    type Error = WireError;
    fn try_from(v: u8) -> Result<Self> {
        match v {
            0 => Ok(Qc::Be),
            1 => Ok(Qc::Video),
            2 => Ok(Qc::Voice),
            other => Err(WireError::BadValue {
                field: "qos cube",
                value: u64::from(other),
            }),
        }
    }
}

/// The layer parameters that shape the PCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtParams {
    addr_size: u8,
    eid_size: u8,
}

impl Default for DtParams {
    fn default() -> Self {
        DtParams::DEFAULT
    }
}

impl DtParams {
    /// The prototype's default layer: 4-byte addresses, 8-byte endpoint ids.
    pub const DEFAULT: DtParams = DtParams {
        addr_size: DEFAULT_ADDR_SIZE,
        eid_size: EID_SIZE,
    };

    /// `addr_size` must be 1, 2, 4 or 8 and `eid_size` must be 8.
    pub fn new(addr_size: u8, eid_size: u8) -> Result<Self> {
        if !matches!(addr_size, 1 | 2 | 4 | 8) {
            return Err(WireError::BadValue {
                field: "addr_size",
                value: u64::from(addr_size),
            });
        }
        if eid_size != EID_SIZE {
            return Err(WireError::BadValue {
                field: "eid_size",
                value: u64::from(eid_size),
            });
        }
        Ok(DtParams {
            addr_size,
            eid_size,
        })
    }

    pub const fn addr_size(self) -> usize {
        self.addr_size as usize
    }

    pub const fn eid_size(self) -> usize {
        self.eid_size as usize
    }

    /// Length of the PCI: `addr_size + 3 + eid_size` (15 by default).
    pub const fn header_len(self) -> usize {
        self.addr_size() + 3 + self.eid_size()
    }

    /// Largest address the PCI carries.
    pub const fn max_addr(self) -> u64 {
        if self.addr_size >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * self.addr_size as u32)) - 1
        }
    }

    fn addr(self) -> Field {
        0..self.addr_size()
    }
    fn qc(self) -> usize {
        self.addr_size()
    }
    fn ttl(self) -> usize {
        self.addr_size() + 1
    }
    fn ecn(self) -> usize {
        self.addr_size() + 2
    }
    fn eid(self) -> Field {
        self.addr_size() + 3..self.header_len()
    }
}

/// Read a little-endian integer of up to 8 bytes.
fn get_le(b: &[u8], f: Field) -> u64 {
    let mut a = [0u8; 8];
    let n = f.len();
    a[..n].copy_from_slice(&b[f]);
    u64::from_le_bytes(a)
}

/// Write the low `f.len()` bytes of `v`, little-endian.
fn set_le(b: &mut [u8], f: Field, v: u64) {
    let n = f.len();
    b[f].copy_from_slice(&v.to_le_bytes()[..n]);
}

/// A zero-copy view of a packet that starts with a data transfer PCI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtPacket<T: AsRef<[u8]>> {
    buffer: T,
    params: DtParams,
}

impl<T: AsRef<[u8]>> DtPacket<T> {
    /// Wrap a buffer without checking it; accessors may panic until [`Self::check_len`] passes.
    pub fn new_unchecked(buffer: T, params: DtParams) -> Self {
        DtPacket { buffer, params }
    }

    /// Wrap a buffer that holds at least the PCI.
    pub fn new_checked(buffer: T, params: DtParams) -> Result<Self> {
        let p = Self::new_unchecked(buffer, params);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        need(self.params.header_len(), self.buffer.as_ref().len())
    }

    pub fn params(&self) -> DtParams {
        self.params
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The destination address.
    pub fn dst_addr(&self) -> u64 {
        get_le(self.buffer.as_ref(), self.params.addr())
    }

    /// The raw QoS cube byte.
    pub fn qc(&self) -> u8 {
        self.buffer.as_ref()[self.params.qc()]
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[self.params.ttl()]
    }

    /// The congestion level marked by the forwarders so far (multi-bit ECN).
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[self.params.ecn()]
    }

    /// The destination endpoint id.
    pub fn eid(&self) -> u64 {
        get_le(self.buffer.as_ref(), self.params.eid())
    }

    /// Everything after the PCI.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.params.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> DtPacket<T> {
    /// Write the low `addr_size` bytes of `v`.
    pub fn set_dst_addr(&mut self, v: u64) {
        let f = self.params.addr();
        set_le(self.buffer.as_mut(), f, v);
    }
    pub fn set_qc(&mut self, v: u8) {
        let o = self.params.qc();
        self.buffer.as_mut()[o] = v;
    }
    pub fn set_ttl(&mut self, v: u8) {
        let o = self.params.ttl();
        self.buffer.as_mut()[o] = v;
    }
    pub fn set_ecn(&mut self, v: u8) {
        let o = self.params.ecn();
        self.buffer.as_mut()[o] = v;
    }
    /// OR a congestion level into the ECN byte, as a forwarder does (`mb-ecn`: the queue
    /// length of the outgoing flow shifted right by 4).
    pub fn mark_ecn(&mut self, level: u8) {
        let v = self.ecn() | level;
        self.set_ecn(v);
    }
    pub fn set_eid(&mut self, v: u64) {
        let f = self.params.eid();
        set_le(self.buffer.as_mut(), f, v);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let o = self.params.header_len();
        &mut self.buffer.as_mut()[o..]
    }

    /// The TTL step of a forwarder, for a packet that is not addressed to this IPCP:
    /// decrement the TTL in place and return it, or `None` when the packet must be dropped
    /// because it has run out of hops (the TTL was 1, so it would leave with 0).
    ///
    /// A packet that arrives with TTL 0 is dropped as well; the prototype decrements that
    /// to 255 and forwards it. Packets addressed to this IPCP are delivered whatever their
    /// TTL, as in the prototype.
    pub fn decrement_ttl(&mut self) -> Option<u8> {
        let ttl = self.ttl();
        if ttl <= 1 {
            return None;
        }
        self.set_ttl(ttl - 1);
        Some(ttl - 1)
    }
}

/// A data transfer PCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtRepr {
    pub dst_addr: u64,
    pub qc: Qc,
    /// The prototype sends with the layer's `max_ttl`.
    pub ttl: u8,
    /// 0 when sent; forwarders OR their congestion level in.
    pub ecn: u8,
    pub eid: u64,
}

impl DtRepr {
    /// Decode the PCI of a checked packet; an unknown QoS cube and the invalid address 0
    /// (which no IPCP has, so no route leads there) are refused.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &DtPacket<&T>) -> Result<DtRepr> {
        packet.check_len()?;
        if packet.dst_addr() == INVALID_ADDR {
            return Err(WireError::BadValue {
                field: "dst_addr",
                value: INVALID_ADDR,
            });
        }
        Ok(DtRepr {
            dst_addr: packet.dst_addr(),
            qc: Qc::try_from(packet.qc())?,
            ttl: packet.ttl(),
            ecn: packet.ecn(),
            eid: packet.eid(),
        })
    }

    /// Length of the PCI in a layer with these parameters.
    pub const fn header_len(params: DtParams) -> usize {
        params.header_len()
    }

    /// Write the PCI into `buf[..header_len]` (the payload after it is the caller's); returns
    /// the PCI length. An address wider than `addr_size` is refused (the prototype would cut
    /// it), and so is the invalid address 0.
    pub fn emit(&self, params: DtParams, buf: &mut [u8]) -> Result<usize> {
        let len = params.header_len();
        room(len, buf.len())?;
        if self.dst_addr > params.max_addr() || self.dst_addr == INVALID_ADDR {
            return Err(WireError::BadValue {
                field: "dst_addr",
                value: self.dst_addr,
            });
        }
        let mut p = DtPacket::new_unchecked(&mut buf[..len], params);
        p.set_dst_addr(self.dst_addr);
        p.set_qc(self.qc as u8);
        p.set_ttl(self.ttl);
        p.set_ecn(self.ecn);
        p.set_eid(self.eid);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::wire::testing::hex;
    use proptest::prelude::*;

    // dst_addr 0x01020304 as 4 little-endian bytes | qc 1 (video) | ttl 60 | ecn 0
    // | eid 0x11223344_00000041 (random high half, fd 0x41 low half) as 8 little-endian bytes
    // | payload "hello". Bytes as the prototype's dt_pci_ser writes them on x86-64.
    const DT_ADDR4: &str = "04030201 01 3c 00 4100000044332211 68656c6c6f";

    #[test]
    fn vector_addr4() {
        let bytes = hex(DT_ADDR4);
        assert_eq!(bytes.len(), 15 + 5);
        let repr = DtRepr {
            dst_addr: 0x0102_0304,
            qc: Qc::Video,
            ttl: 60,
            ecn: 0,
            eid: 0x1122_3344_0000_0041,
        };
        let params = DtParams::DEFAULT;
        let mut buf = vec![0xaau8; bytes.len()];
        assert_eq!(repr.emit(params, &mut buf), Ok(15));
        buf[15..].copy_from_slice(b"hello");
        assert_eq!(buf, bytes);
        let p = DtPacket::new_checked(&bytes[..], params).unwrap();
        assert_eq!(DtRepr::parse(&p), Ok(repr));
        assert_eq!(p.payload(), b"hello");
        for n in 0..15 {
            assert!(matches!(
                DtPacket::new_checked(&bytes[..n], params),
                Err(WireError::Truncated { .. })
            ));
        }
    }

    #[test]
    fn other_address_sizes() {
        // addr_size 2: address 0x0102 -> 02 01; addr_size 8: all 8 bytes little-endian.
        let p2 = DtParams::new(2, 8).unwrap();
        let r = DtRepr {
            dst_addr: 0x0102,
            qc: Qc::Be,
            ttl: 1,
            ecn: 5,
            eid: 64,
        };
        let mut buf = [0u8; 13];
        assert_eq!(r.emit(p2, &mut buf), Ok(13));
        assert_eq!(buf.to_vec(), hex("0201 00 01 05 4000000000000000"));
        let p8 = DtParams::new(8, 8).unwrap();
        let r8 = DtRepr {
            dst_addr: 0x0102_0304_0506_0708,
            ..r
        };
        let mut buf = [0u8; 19];
        assert_eq!(r8.emit(p8, &mut buf), Ok(19));
        assert_eq!(
            buf.to_vec(),
            hex("0807060504030201 00 01 05 4000000000000000")
        );
        // Too wide for one byte, and the invalid address.
        let p1 = DtParams::new(1, 8).unwrap();
        assert!(matches!(
            r.emit(p1, &mut buf),
            Err(WireError::BadValue { .. })
        ));
        let r0 = DtRepr { dst_addr: 0, ..r };
        assert!(matches!(
            r0.emit(p1, &mut buf),
            Err(WireError::BadValue { .. })
        ));
        assert!(DtParams::new(3, 8).is_err());
        assert!(DtParams::new(4, 4).is_err());
    }

    #[test]
    fn ttl_and_ecn() {
        let mut bytes = hex(DT_ADDR4);
        let mut p = DtPacket::new_checked(&mut bytes[..], DtParams::DEFAULT).unwrap();
        assert_eq!(p.decrement_ttl(), Some(59));
        assert_eq!(p.ttl(), 59);
        p.set_ttl(2);
        assert_eq!(p.decrement_ttl(), Some(1));
        assert_eq!(p.decrement_ttl(), None);
        assert_eq!(p.ttl(), 1);
        p.set_ttl(0);
        assert_eq!(p.decrement_ttl(), None);
        p.mark_ecn(0x02);
        p.mark_ecn(0x04);
        assert_eq!(p.ecn(), 0x06);
        assert_eq!(p.payload(), b"hello");
    }

    #[test]
    fn unknown_cube() {
        let mut bytes = hex(DT_ADDR4);
        bytes[4] = 3;
        let p = DtPacket::new_checked(&bytes[..], DtParams::DEFAULT).unwrap();
        assert!(matches!(DtRepr::parse(&p), Err(WireError::BadValue { .. })));
    }

    fn params() -> impl Strategy<Value = DtParams> {
        prop::sample::select(vec![1u8, 2, 4, 8]).prop_map(|a| DtParams::new(a, 8).unwrap())
    }

    proptest! {
        #[test]
        fn round_trip(params in params(), addr: u64, qc in 0u8..3, ttl: u8, ecn: u8, eid: u64,
                      payload in proptest::collection::vec(any::<u8>(), 0..32)) {
            let dst_addr = (addr & params.max_addr()).max(1);
            let r = DtRepr { dst_addr, qc: Qc::try_from(qc).unwrap(), ttl, ecn, eid };
            let hl = params.header_len();
            let mut buf = vec![0u8; hl + payload.len()];
            prop_assert_eq!(r.emit(params, &mut buf), Ok(hl));
            buf[hl..].copy_from_slice(&payload);
            let p = DtPacket::new_checked(&buf[..], params).unwrap();
            prop_assert_eq!(DtRepr::parse(&p), Ok(r));
            prop_assert_eq!(p.payload(), &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(params in params(),
                                       bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = DtPacket::new_checked(&bytes[..], params) {
                if let Ok(r) = DtRepr::parse(&p) {
                    let mut buf = vec![0u8; params.header_len()];
                    prop_assert_eq!(r.emit(params, &mut buf), Ok(buf.len()));
                    prop_assert_eq!(&buf[..], &bytes[..params.header_len()]);
                }
            }
        }
    }
}
