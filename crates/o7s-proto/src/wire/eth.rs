//! Ethernet frame headers of the two Ethernet shims.
//!
//! **eth-dix** puts an Ethernet II header (destination, source, ethertype — 0xA000 unless the
//! layer is configured otherwise) and then a 2-byte destination endpoint id and a 2-byte
//! payload length in front of each packet. Endpoint id 0 carries management messages
//! ([`super::eth_mgmt`]). The length field is what tells the payload from the padding a short
//! frame gets on the wire.
//!
//! **eth-llc** puts an 802.3 header (destination, source, length) and an LLC header
//! (DSAP, SSAP, control 0x03) in front of each packet. The 802.3 length counts the 3 LLC bytes
//! plus the payload. The prototype writes each SAP *bit-reversed* (`sap.reverse_bits()`) in the
//! LLC header, so the management SAP 0x01 is the byte 0x80 on the wire; [`LlcRepr`] holds the
//! SAPs as the layer numbers them (the way the management messages carry them) and the view
//! offers both.
//!
//! All multi-byte fields are big-endian.
//!
//! ```
//! use o7s_proto::wire::eth::{DixFrame, DixRepr, EthAddr, DEFAULT_ETHERTYPE};
//!
//! let repr = DixRepr {
//!     dst: EthAddr::BROADCAST,
//!     src: EthAddr([2, 0, 0, 0, 0, 1]),
//!     ethertype: DEFAULT_ETHERTYPE,
//!     eid: 65,
//!     payload_len: 5,
//! };
//! let mut buf = vec![0u8; repr.buffer_len()];
//! buf[repr.header_len()..].copy_from_slice(b"hello");
//! repr.emit(&mut buf).unwrap();
//!
//! let frame = DixFrame::new_checked(&buf[..]).unwrap();
//! assert_eq!(DixRepr::parse(&frame).unwrap(), repr);
//! assert_eq!(frame.payload(), b"hello");
//! ```

use super::bytes::{get_u16, need, room, set_u16, Field};
use super::{Result, WireError};
use std::fmt;

/// Length of a MAC address.
pub const MAC_LEN: usize = 6;
/// Destination, source and ethertype / length: the part both shims share.
pub const ETH_HEADER_LEN: usize = 2 * MAC_LEN + 2;
/// Ethernet II header plus the 2-byte endpoint id and 2-byte length of eth-dix.
pub const DIX_HEADER_LEN: usize = ETH_HEADER_LEN + 4;
/// 802.3 header plus the 3-byte LLC header of eth-llc.
pub const LLC_HEADER_LEN: usize = ETH_HEADER_LEN + 3;

/// The ethertype of an eth-dix layer unless configured otherwise.
pub const DEFAULT_ETHERTYPE: u16 = 0xA000;
/// Smallest ethertype (anything below is an 802.3 length).
pub const ETHERTYPE_MIN: u16 = 0x0600;
/// Reserved ethertype the prototype refuses.
pub const ETHERTYPE_RESERVED: u16 = 0xFFFF;
/// eth-dix endpoint id of the management messages.
pub const MGMT_EID: u16 = 0;
/// eth-llc SAP of the management messages (0x80 on the wire, bit-reversed).
pub const MGMT_SAP: u8 = 0x01;
/// Number of SAPs an eth-llc layer hands out to flows.
pub const MAX_SAPS: usize = 64;
/// First SAP an eth-llc layer hands out to a flow (the prototype's bitmap offset).
pub const FIRST_FLOW_SAP: u8 = 2;
/// LLC control field the prototype writes (unnumbered information); it ignores it on receipt.
pub const LLC_CONTROL_UI: u8 = 0x03;
/// Largest 802.3 length field (LLC header plus payload); the eth-llc MTU.
pub const LLC_MTU: usize = 1500;
/// Largest eth-dix MTU (the interface MTU, capped at the 16-bit length field).
pub const DIX_MTU_MAX: usize = 0xFFFF;
/// MTU of an Ethernet shim on a loopback interface.
pub const LO_MTU: usize = 9000;
/// How long an eth shim waits for a name query reply, in ms.
pub const NAME_QUERY_TIMEOUT_MS: u64 = 2000;

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EthAddr(pub [u8; MAC_LEN]);

impl EthAddr {
    /// ff:ff:ff:ff:ff:ff, where name queries go.
    pub const BROADCAST: EthAddr = EthAddr([0xff; MAC_LEN]);

    fn from_bytes(b: &[u8]) -> EthAddr {
        let mut a = [0u8; MAC_LEN];
        a.copy_from_slice(b);
        EthAddr(a)
    }

    pub fn is_broadcast(&self) -> bool {
        *self == EthAddr::BROADCAST
    }
}

impl fmt::Display for EthAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

fn check_ethertype(t: u16) -> Result<()> {
    if !(ETHERTYPE_MIN..ETHERTYPE_RESERVED).contains(&t) {
        return Err(WireError::BadEthertype(t));
    }
    Ok(())
}

mod dix_field {
    use super::Field;
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const EID: Field = 14..16;
    pub const LENGTH: Field = 16..18;
    pub const PAYLOAD: usize = 18;
}

/// A zero-copy view of an eth-dix frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DixFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DixFrame<T> {
    /// Wrap a buffer without checking it; accessors may panic until [`Self::check_len`] passes.
    pub fn new_unchecked(buffer: T) -> DixFrame<T> {
        DixFrame { buffer }
    }

    /// Wrap a buffer that holds a whole header and the payload its length field announces.
    pub fn new_checked(buffer: T) -> Result<DixFrame<T>> {
        let f = DixFrame::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// The header fits, and so does the payload length it announces (padding may follow).
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        need(dix_field::PAYLOAD, have)?;
        need(dix_field::PAYLOAD + usize::from(self.length()), have)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn dst_addr(&self) -> EthAddr {
        EthAddr::from_bytes(&self.buffer.as_ref()[dix_field::DST])
    }

    pub fn src_addr(&self) -> EthAddr {
        EthAddr::from_bytes(&self.buffer.as_ref()[dix_field::SRC])
    }

    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), dix_field::ETHERTYPE)
    }

    /// Destination endpoint id; [`MGMT_EID`] for management messages.
    pub fn eid(&self) -> u16 {
        get_u16(self.buffer.as_ref(), dix_field::EID)
    }

    /// Payload length, not counting this header or any padding.
    pub fn length(&self) -> u16 {
        get_u16(self.buffer.as_ref(), dix_field::LENGTH)
    }

    /// The payload, without padding.
    pub fn payload(&self) -> &[u8] {
        let end = dix_field::PAYLOAD + usize::from(self.length());
        &self.buffer.as_ref()[dix_field::PAYLOAD..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> DixFrame<T> {
    pub fn set_dst_addr(&mut self, a: EthAddr) {
        self.buffer.as_mut()[dix_field::DST].copy_from_slice(&a.0);
    }
    pub fn set_src_addr(&mut self, a: EthAddr) {
        self.buffer.as_mut()[dix_field::SRC].copy_from_slice(&a.0);
    }
    pub fn set_ethertype(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), dix_field::ETHERTYPE, v);
    }
    pub fn set_eid(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), dix_field::EID, v);
    }
    pub fn set_length(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), dix_field::LENGTH, v);
    }
    /// The payload area the length field announces.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = dix_field::PAYLOAD + usize::from(self.length());
        &mut self.buffer.as_mut()[dix_field::PAYLOAD..end]
    }
}

/// The fields of an eth-dix header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DixRepr {
    pub dst: EthAddr,
    pub src: EthAddr,
    /// 0x0600..=0xFFFE; the layer's configured ethertype, [`DEFAULT_ETHERTYPE`] by default.
    pub ethertype: u16,
    /// Destination endpoint id.
    pub eid: u16,
    pub payload_len: u16,
}

impl DixRepr {
    /// Read a checked frame's header; the ethertype must be a valid one.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &DixFrame<&T>) -> Result<DixRepr> {
        frame.check_len()?;
        check_ethertype(frame.ethertype())?;
        Ok(DixRepr {
            dst: frame.dst_addr(),
            src: frame.src_addr(),
            ethertype: frame.ethertype(),
            eid: frame.eid(),
            payload_len: frame.length(),
        })
    }

    /// [`DIX_HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        DIX_HEADER_LEN
    }

    /// Header plus payload: the frame `emit` writes the header of.
    pub fn buffer_len(&self) -> usize {
        DIX_HEADER_LEN + usize::from(self.payload_len)
    }

    /// Write the header into `buf[..header_len()]`; `buf` must hold `buffer_len()` bytes and
    /// the caller puts the payload (which may already be there) after the header. Returns
    /// `buffer_len()`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        check_ethertype(self.ethertype)?;
        room(self.buffer_len(), buf.len())?;
        let mut f = DixFrame::new_unchecked(buf);
        f.set_dst_addr(self.dst);
        f.set_src_addr(self.src);
        f.set_ethertype(self.ethertype);
        f.set_eid(self.eid);
        f.set_length(self.payload_len);
        Ok(self.buffer_len())
    }
}

mod llc_field {
    use super::Field;
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const LENGTH: Field = 12..14;
    pub const DSAP: usize = 14;
    pub const SSAP: usize = 15;
    pub const CONTROL: usize = 16;
    pub const PAYLOAD: usize = 17;
}

/// Bytes of the LLC header counted by the 802.3 length field.
const LLC_LEN: usize = LLC_HEADER_LEN - ETH_HEADER_LEN;

/// A zero-copy view of an eth-llc frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlcFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> LlcFrame<T> {
    /// Wrap a buffer without checking it; accessors may panic until [`Self::check_len`] passes.
    pub fn new_unchecked(buffer: T) -> LlcFrame<T> {
        LlcFrame { buffer }
    }

    /// Wrap a buffer that holds a whole header and the payload its length field announces.
    pub fn new_checked(buffer: T) -> Result<LlcFrame<T>> {
        let f = LlcFrame::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// The header fits; the 802.3 length counts at least the LLC header, at most
    /// [`LLC_MTU`], and fits in the buffer (padding may follow).
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        need(llc_field::PAYLOAD, have)?;
        let len = usize::from(self.length());
        if !(LLC_LEN..=LLC_MTU).contains(&len) {
            return Err(WireError::BadLength {
                field: "802.3 length",
                value: len,
            });
        }
        need(ETH_HEADER_LEN + len, have)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn dst_addr(&self) -> EthAddr {
        EthAddr::from_bytes(&self.buffer.as_ref()[llc_field::DST])
    }

    pub fn src_addr(&self) -> EthAddr {
        EthAddr::from_bytes(&self.buffer.as_ref()[llc_field::SRC])
    }

    /// The 802.3 length: LLC header plus payload.
    pub fn length(&self) -> u16 {
        get_u16(self.buffer.as_ref(), llc_field::LENGTH)
    }

    /// DSAP byte as on the wire (bit-reversed SAP).
    pub fn dsap_raw(&self) -> u8 {
        self.buffer.as_ref()[llc_field::DSAP]
    }

    /// SSAP byte as on the wire (bit-reversed SAP).
    pub fn ssap_raw(&self) -> u8 {
        self.buffer.as_ref()[llc_field::SSAP]
    }

    /// Destination SAP as the layer numbers it.
    pub fn dsap(&self) -> u8 {
        self.dsap_raw().reverse_bits()
    }

    /// Source SAP as the layer numbers it.
    pub fn ssap(&self) -> u8 {
        self.ssap_raw().reverse_bits()
    }

    pub fn control(&self) -> u8 {
        self.buffer.as_ref()[llc_field::CONTROL]
    }

    /// The payload, without padding.
    pub fn payload(&self) -> &[u8] {
        let end = ETH_HEADER_LEN + usize::from(self.length());
        &self.buffer.as_ref()[llc_field::PAYLOAD..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> LlcFrame<T> {
    pub fn set_dst_addr(&mut self, a: EthAddr) {
        self.buffer.as_mut()[llc_field::DST].copy_from_slice(&a.0);
    }
    pub fn set_src_addr(&mut self, a: EthAddr) {
        self.buffer.as_mut()[llc_field::SRC].copy_from_slice(&a.0);
    }
    pub fn set_length(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), llc_field::LENGTH, v);
    }
    /// Set the destination SAP (written bit-reversed).
    pub fn set_dsap(&mut self, sap: u8) {
        self.buffer.as_mut()[llc_field::DSAP] = sap.reverse_bits();
    }
    /// Set the source SAP (written bit-reversed).
    pub fn set_ssap(&mut self, sap: u8) {
        self.buffer.as_mut()[llc_field::SSAP] = sap.reverse_bits();
    }
    pub fn set_control(&mut self, v: u8) {
        self.buffer.as_mut()[llc_field::CONTROL] = v;
    }
    /// The payload area the length field announces.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = ETH_HEADER_LEN + usize::from(self.length());
        &mut self.buffer.as_mut()[llc_field::PAYLOAD..end]
    }
}

/// The fields of an eth-llc header. The control field is always written as
/// [`LLC_CONTROL_UI`] and, like the prototype, not checked on receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LlcRepr {
    pub dst: EthAddr,
    pub src: EthAddr,
    /// Destination SAP as the layer numbers it ([`MGMT_SAP`] for management).
    pub dsap: u8,
    /// Source SAP as the layer numbers it.
    pub ssap: u8,
    /// Payload length, at most [`LLC_MTU`] − 3.
    pub payload_len: u16,
}

impl LlcRepr {
    /// Read a checked frame's header.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &LlcFrame<&T>) -> Result<LlcRepr> {
        frame.check_len()?;
        Ok(LlcRepr {
            dst: frame.dst_addr(),
            src: frame.src_addr(),
            dsap: frame.dsap(),
            ssap: frame.ssap(),
            // check_len: length >= 3
            payload_len: frame.length().saturating_sub(LLC_LEN as u16),
        })
    }

    /// True for a management frame: both SAPs are [`MGMT_SAP`].
    pub fn is_mgmt(&self) -> bool {
        self.dsap == MGMT_SAP && self.ssap == MGMT_SAP
    }

    /// [`LLC_HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        LLC_HEADER_LEN
    }

    /// Header plus payload: the frame `emit` writes the header of.
    pub fn buffer_len(&self) -> usize {
        LLC_HEADER_LEN + usize::from(self.payload_len)
    }

    /// Write the header into `buf[..header_len()]`; `buf` must hold `buffer_len()` bytes and
    /// the caller puts the payload after the header. Returns `buffer_len()`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = LLC_LEN + usize::from(self.payload_len);
        if len > LLC_MTU {
            return Err(WireError::BadLength {
                field: "802.3 length",
                value: len,
            });
        }
        room(self.buffer_len(), buf.len())?;
        let mut f = LlcFrame::new_unchecked(buf);
        f.set_dst_addr(self.dst);
        f.set_src_addr(self.src);
        f.set_length(len as u16);
        f.set_dsap(self.dsap);
        f.set_ssap(self.ssap);
        f.set_control(LLC_CONTROL_UI);
        Ok(self.buffer_len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::wire::testing::hex;
    use proptest::prelude::*;

    const DST: EthAddr = EthAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
    const SRC: EthAddr = EthAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);

    /// eth-dix data frame to endpoint 65 carrying "hello", plus two bytes of padding.
    const DIX_VECTOR: &str = "020000000002 020000000001 a000 0041 0005 68656c6c6f 0000";

    fn dix_repr() -> DixRepr {
        DixRepr {
            dst: DST,
            src: SRC,
            ethertype: DEFAULT_ETHERTYPE,
            eid: 0x41,
            payload_len: 5,
        }
    }

    /// eth-llc data frame from SAP 3 to SAP 2 carrying "hello".
    const LLC_VECTOR: &str = "020000000002 020000000001 0008 40 c0 03 68656c6c6f";

    fn llc_repr() -> LlcRepr {
        LlcRepr {
            dst: DST,
            src: SRC,
            dsap: 2,
            ssap: 3,
            payload_len: 5,
        }
    }

    #[test]
    fn dix_vector_parses() {
        let bytes = hex(DIX_VECTOR);
        let f = DixFrame::new_checked(&bytes[..]).unwrap();
        assert_eq!(DixRepr::parse(&f).unwrap(), dix_repr());
        assert_eq!(f.payload(), b"hello");
    }

    #[test]
    fn dix_vector_emits() {
        let r = dix_repr();
        let mut buf = vec![0u8; r.buffer_len()];
        buf[DIX_HEADER_LEN..].copy_from_slice(b"hello");
        assert_eq!(r.emit(&mut buf), Ok(DIX_HEADER_LEN + 5));
        assert_eq!(buf, hex(DIX_VECTOR)[..DIX_HEADER_LEN + 5]);
        assert_eq!(
            r.emit(&mut buf[..DIX_HEADER_LEN + 4]),
            Err(WireError::BufferTooSmall { need: 23, have: 22 })
        );
    }

    #[test]
    fn dix_bad_ethertype() {
        let mut bytes = hex(DIX_VECTOR);
        bytes[12..14].copy_from_slice(&[0x05, 0xdc]);
        let f = DixFrame::new_checked(&bytes[..]).unwrap();
        assert_eq!(DixRepr::parse(&f), Err(WireError::BadEthertype(0x05dc)));
        let r = DixRepr {
            ethertype: 0xffff,
            ..dix_repr()
        };
        let mut buf = [0u8; 64];
        assert_eq!(r.emit(&mut buf), Err(WireError::BadEthertype(0xffff)));
    }

    #[test]
    fn dix_truncated_at_every_length() {
        let bytes = hex(DIX_VECTOR);
        for n in 0..DIX_HEADER_LEN + 5 {
            assert!(
                matches!(
                    DixFrame::new_checked(&bytes[..n]),
                    Err(WireError::Truncated { .. })
                ),
                "length {n}"
            );
        }
    }

    #[test]
    fn llc_vector_parses() {
        let bytes = hex(LLC_VECTOR);
        let f = LlcFrame::new_checked(&bytes[..]).unwrap();
        assert_eq!(f.dsap_raw(), 0x40);
        assert_eq!(f.ssap_raw(), 0xc0);
        assert_eq!(f.control(), LLC_CONTROL_UI);
        assert_eq!(LlcRepr::parse(&f).unwrap(), llc_repr());
        assert_eq!(f.payload(), b"hello");
    }

    #[test]
    fn llc_vector_emits() {
        let r = llc_repr();
        let mut buf = vec![0u8; r.buffer_len()];
        buf[LLC_HEADER_LEN..].copy_from_slice(b"hello");
        assert_eq!(r.emit(&mut buf), Ok(LLC_HEADER_LEN + 5));
        assert_eq!(buf, hex(LLC_VECTOR));
    }

    #[test]
    fn llc_mgmt_sap_is_0x80_on_the_wire() {
        let r = LlcRepr {
            dsap: MGMT_SAP,
            ssap: MGMT_SAP,
            payload_len: 0,
            ..llc_repr()
        };
        assert!(r.is_mgmt());
        let mut buf = [0u8; LLC_HEADER_LEN];
        r.emit(&mut buf).unwrap();
        assert_eq!(buf[12..], [0x00, 0x03, 0x80, 0x80, 0x03]);
    }

    #[test]
    fn llc_bad_lengths() {
        let mut bytes = hex(LLC_VECTOR);
        for (len, field) in [(0u16, "too short"), (2, "too short"), (0x0600, "ethertype")] {
            bytes[12..14].copy_from_slice(&len.to_be_bytes());
            assert_eq!(
                LlcFrame::new_checked(&bytes[..]),
                Err(WireError::BadLength {
                    field: "802.3 length",
                    value: usize::from(len)
                }),
                "{field}"
            );
        }
        let r = LlcRepr {
            payload_len: 1498,
            ..llc_repr()
        };
        let mut buf = vec![0u8; 2000];
        assert!(matches!(
            r.emit(&mut buf),
            Err(WireError::BadLength { value: 1501, .. })
        ));
    }

    #[test]
    fn llc_truncated_at_every_length() {
        let bytes = hex(LLC_VECTOR);
        for n in 0..bytes.len() {
            assert!(
                matches!(
                    LlcFrame::new_checked(&bytes[..n]),
                    Err(WireError::Truncated { .. })
                ),
                "length {n}"
            );
        }
    }

    #[test]
    fn display_mac() {
        assert_eq!(EthAddr::BROADCAST.to_string(), "ff:ff:ff:ff:ff:ff");
        assert!(EthAddr::BROADCAST.is_broadcast());
    }

    fn addr() -> impl Strategy<Value = EthAddr> {
        any::<[u8; 6]>().prop_map(EthAddr)
    }

    proptest! {
        #[test]
        fn dix_round_trip(dst in addr(), src in addr(), ethertype in 0x0600u16..0xffff,
                          eid: u16, payload in proptest::collection::vec(any::<u8>(), 0..100)) {
            let r = DixRepr { dst, src, ethertype, eid, payload_len: payload.len() as u16 };
            let mut buf = vec![0u8; r.buffer_len()];
            buf[DIX_HEADER_LEN..].copy_from_slice(&payload);
            r.emit(&mut buf).unwrap();
            let f = DixFrame::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(DixRepr::parse(&f).unwrap(), r);
            prop_assert_eq!(f.payload(), &payload[..]);
        }

        #[test]
        fn llc_round_trip(dst in addr(), src in addr(), dsap: u8, ssap: u8,
                          payload in proptest::collection::vec(any::<u8>(), 0..100)) {
            let r = LlcRepr { dst, src, dsap, ssap, payload_len: payload.len() as u16 };
            let mut buf = vec![0u8; r.buffer_len()];
            buf[LLC_HEADER_LEN..].copy_from_slice(&payload);
            r.emit(&mut buf).unwrap();
            let f = LlcFrame::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(LlcRepr::parse(&f).unwrap(), r);
            prop_assert_eq!(f.payload(), &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(f) = DixFrame::new_checked(&bytes[..]) {
                let _ = DixRepr::parse(&f);
                let _ = f.payload();
            }
            if let Ok(f) = LlcFrame::new_checked(&bytes[..]) {
                let _ = LlcRepr::parse(&f);
                let _ = f.payload();
            }
        }
    }
}
