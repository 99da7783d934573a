//! The UDP shims (udp4, udp6): a 4-byte endpoint id in front of each payload, and the
//! management messages sent to endpoint id 0.
//!
//! A data datagram is `eid (u32, big-endian) | payload`; the eid is the receiver's endpoint
//! id for the flow. A datagram whose eid is [`MGMT_EID`] is a management message, laid out as
//! the prototype's packed struct *including* that leading eid (47 bytes), then the name hash
//! (flow request only; MD5, [`HASH_LEN`] = 16 bytes, since the prototype forces MD5 on UDP
//! layers), then opaque data piggybacked by the IRMd. All integers are big-endian.
//!
//! The prototype's management codes here are 1 (flow request) and 2 (flow reply), not the
//! Ethernet shims' 0 and 1. In a flow reply the `s_eid` field holds the *requester's* eid (the
//! flow the reply is for) and `d_eid` the responder's — the reverse of what the names suggest;
//! [`UdpMgmtRepr`] names the fields by role.
//!
//! ```
//! use o7s_proto::wire::udp::{UdpPacket, UdpRepr};
//!
//! let mut buf = [0u8; 9];
//! buf[4..].copy_from_slice(b"hello");
//! UdpRepr { eid: 65, payload_len: 5 }.emit(&mut buf).unwrap();
//! assert_eq!(buf[..4], [0, 0, 0, 65]);
//! let p = UdpPacket::new_checked(&buf[..]).unwrap();
//! assert_eq!((p.eid(), p.payload()), (65, &b"hello"[..]));
//! ```

use super::bytes::{get_u32, get_u64, need, room, set_u32, set_u64, Field};
use super::{Result, WireError};
use crate::{NameHash, QosSpec};

/// Default UDP port of a udp4 / udp6 layer.
pub const DEFAULT_PORT: u16 = 3435;
/// The endpoint id header.
pub const HEADER_LEN: usize = 4;
/// Endpoint id of the management messages.
pub const MGMT_EID: u32 = 0;
/// Fixed part of a management message, leading eid included.
pub const MGMT_HEADER_LEN: usize = 47;
/// Name hash length on UDP layers (MD5).
pub const HASH_LEN: usize = 16;
/// Largest management datagram the prototype can take (its management buffer; it copies a
/// longer one over the end of that buffer). Longer messages are refused both ways here.
pub const MGMT_MAX_LEN: usize = 2048;
/// The prototype udp4 receive buffer: largest datagram (eid included) it reads whole.
pub const UDP4_MAX_PACKET_SIZE: usize = 8980;
/// The prototype udp6 receive buffer: largest datagram (eid included) it reads whole.
pub const UDP6_MAX_PACKET_SIZE: usize = 8952;

mod field {
    use super::Field;
    pub const EID: Field = 0..4;
    pub const PAYLOAD: usize = 4;
}

/// A zero-copy view of a UDP shim datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wrap a buffer without checking it; accessors may panic until [`Self::check_len`] passes.
    pub fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wrap a datagram of at least [`HEADER_LEN`] bytes.
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

    /// The receiver's endpoint id; [`MGMT_EID`] for a management message.
    pub fn eid(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::EID)
    }

    pub fn is_mgmt(&self) -> bool {
        self.eid() == MGMT_EID
    }

    /// Everything after the eid.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    pub fn set_eid(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::EID, v);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// The UDP shim data header. The datagram has no length field: the payload is the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    pub eid: u32,
    pub payload_len: usize,
}

impl UdpRepr {
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &UdpPacket<&T>) -> Result<UdpRepr> {
        packet.check_len()?;
        Ok(UdpRepr {
            eid: packet.eid(),
            payload_len: packet.payload().len(),
        })
    }

    /// [`HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Write the eid into `buf[..4]`; `buf` must hold `buffer_len()` bytes, the payload
    /// following. Returns `buffer_len()`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        room(self.buffer_len(), buf.len())?;
        UdpPacket::new_unchecked(buf).set_eid(self.eid);
        Ok(self.buffer_len())
    }
}

/// Management message codes of the UDP shims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum UdpMgmtCode {
    FlowReq = 1,
    FlowReply = 2,
}

impl TryFrom<u8> for UdpMgmtCode {
    type Error = WireError;
    fn try_from(v: u8) -> Result<Self> {
        match v {
            1 => Ok(UdpMgmtCode::FlowReq),
            2 => Ok(UdpMgmtCode::FlowReply),
            other => Err(WireError::UnknownCode(other)),
        }
    }
}

mod mgmt_field {
    use super::Field;
    pub const EID: Field = 0..4;
    pub const S_EID: Field = 4..8;
    pub const D_EID: Field = 8..12;
    pub const RESPONSE: Field = 12..16;
    pub const BANDWIDTH: Field = 16..24;
    pub const DELAY: Field = 24..28;
    pub const LOSS: Field = 28..32;
    pub const BER: Field = 32..36;
    pub const MAX_GAP: Field = 36..40;
    pub const TIMEOUT: Field = 40..44;
    pub const CODE: usize = 44;
    pub const AVAILABILITY: usize = 45;
    pub const IN_ORDER: usize = 46;
    pub const BODY: usize = 47;
}

/// A zero-copy view of a UDP shim management datagram (the whole datagram, eid included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpMgmtPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpMgmtPacket<T> {
    /// Wrap a buffer without checking it; accessors may panic until [`Self::check_len`] passes.
    pub fn new_unchecked(buffer: T) -> Self {
        UdpMgmtPacket { buffer }
    }

    /// Wrap a datagram holding the fixed part, at most [`MGMT_MAX_LEN`] long.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        need(MGMT_HEADER_LEN, have)?;
        if have > MGMT_MAX_LEN {
            return Err(WireError::BadLength {
                field: "management datagram length",
                value: have,
            });
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The leading eid; [`MGMT_EID`] in a management message.
    pub fn eid(&self) -> u32 {
        get_u32(self.buffer.as_ref(), mgmt_field::EID)
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[mgmt_field::CODE]
    }

    /// `s_eid`: the requester's eid, in a request and in a reply alike.
    pub fn s_eid(&self) -> u32 {
        get_u32(self.buffer.as_ref(), mgmt_field::S_EID)
    }

    /// `d_eid`: the responder's eid (flow reply only).
    pub fn d_eid(&self) -> u32 {
        get_u32(self.buffer.as_ref(), mgmt_field::D_EID)
    }

    /// 0 accepts, negative refuses (flow reply only).
    pub fn response(&self) -> i32 {
        get_u32(self.buffer.as_ref(), mgmt_field::RESPONSE) as i32
    }

    /// The QoS fields (flow request only).
    pub fn qos(&self) -> QosSpec {
        let b = self.buffer.as_ref();
        QosSpec {
            delay: get_u32(b, mgmt_field::DELAY),
            bandwidth: get_u64(b, mgmt_field::BANDWIDTH),
            availability: b[mgmt_field::AVAILABILITY],
            loss: get_u32(b, mgmt_field::LOSS),
            ber: get_u32(b, mgmt_field::BER),
            in_order: b[mgmt_field::IN_ORDER],
            max_gap: get_u32(b, mgmt_field::MAX_GAP),
            timeout: get_u32(b, mgmt_field::TIMEOUT),
        }
    }

    /// Everything after the fixed part: hash and / or data.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[mgmt_field::BODY..]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpMgmtPacket<&'a T> {
    /// [`Self::body`] with the lifetime of the underlying buffer.
    pub fn body_ref(&self) -> &'a [u8] {
        &self.buffer.as_ref()[mgmt_field::BODY..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpMgmtPacket<T> {
    pub fn set_eid(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), mgmt_field::EID, v);
    }
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[mgmt_field::CODE] = v;
    }
    pub fn set_s_eid(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), mgmt_field::S_EID, v);
    }
    pub fn set_d_eid(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), mgmt_field::D_EID, v);
    }
    pub fn set_response(&mut self, v: i32) {
        set_u32(self.buffer.as_mut(), mgmt_field::RESPONSE, v as u32);
    }
    pub fn set_qos(&mut self, q: &QosSpec) {
        let b = self.buffer.as_mut();
        set_u32(b, mgmt_field::DELAY, q.delay);
        set_u64(b, mgmt_field::BANDWIDTH, q.bandwidth);
        b[mgmt_field::AVAILABILITY] = q.availability;
        set_u32(b, mgmt_field::LOSS, q.loss);
        set_u32(b, mgmt_field::BER, q.ber);
        b[mgmt_field::IN_ORDER] = q.in_order;
        set_u32(b, mgmt_field::MAX_GAP, q.max_gap);
        set_u32(b, mgmt_field::TIMEOUT, q.timeout);
    }
    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[mgmt_field::BODY..]
    }
}

/// A UDP shim management message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpMgmtRepr<'a> {
    /// Code 1: allocate a flow to the name with this hash.
    FlowReq {
        /// The requester's eid (`s_eid`): where the responder sends data.
        requester: u32,
        qos: QosSpec,
        /// [`HASH_LEN`] bytes on a prototype layer.
        hash: NameHash,
        /// Piggybacked data after the hash.
        data: &'a [u8],
    },
    /// Code 2: the answer to a flow request.
    FlowReply {
        /// The requester's eid, echoed (`s_eid`).
        requester: u32,
        /// The responder's eid (`d_eid`): where the requester sends data.
        responder: u32,
        /// 0 accepts; a negative errno-style value refuses.
        response: i32,
        /// Piggybacked data after the fixed part.
        data: &'a [u8],
    },
}

impl<'a> UdpMgmtRepr<'a> {
    /// Decode a checked management datagram of a layer whose hashes are `hash_len` bytes
    /// ([`HASH_LEN`] for a prototype peer). Its eid must be [`MGMT_EID`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &UdpMgmtPacket<&'a T>,
        hash_len: usize,
    ) -> Result<Self> {
        packet.check_len()?;
        if packet.eid() != MGMT_EID {
            return Err(WireError::NotManagement(packet.eid()));
        }
        let body = packet.body_ref();
        Ok(match UdpMgmtCode::try_from(packet.code())? {
            UdpMgmtCode::FlowReq => {
                need(MGMT_HEADER_LEN + hash_len, MGMT_HEADER_LEN + body.len())?;
                UdpMgmtRepr::FlowReq {
                    requester: packet.s_eid(),
                    qos: packet.qos(),
                    hash: NameHash(body[..hash_len].to_vec()),
                    data: &body[hash_len..],
                }
            }
            UdpMgmtCode::FlowReply => UdpMgmtRepr::FlowReply {
                requester: packet.s_eid(),
                responder: packet.d_eid(),
                response: packet.response(),
                data: body,
            },
        })
    }

    pub fn code(&self) -> UdpMgmtCode {
        match self {
            UdpMgmtRepr::FlowReq { .. } => UdpMgmtCode::FlowReq,
            UdpMgmtRepr::FlowReply { .. } => UdpMgmtCode::FlowReply,
        }
    }

    /// Length of the whole datagram.
    pub fn buffer_len(&self) -> usize {
        MGMT_HEADER_LEN
            + match self {
                UdpMgmtRepr::FlowReq { hash, data, .. } => hash.0.len() + data.len(),
                UdpMgmtRepr::FlowReply { data, .. } => data.len(),
            }
    }

    /// Write the datagram (eid 0 first) into `buf[..buffer_len()]`, unused fields zero;
    /// returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        if len > MGMT_MAX_LEN {
            return Err(WireError::BadLength {
                field: "management datagram length",
                value: len,
            });
        }
        room(len, buf.len())?;
        let buf = &mut buf[..len];
        buf[..MGMT_HEADER_LEN].fill(0);
        let mut p = UdpMgmtPacket::new_unchecked(buf);
        p.set_eid(MGMT_EID);
        p.set_code(self.code() as u8);
        match self {
            UdpMgmtRepr::FlowReq {
                requester,
                qos,
                hash,
                data,
            } => {
                p.set_s_eid(*requester);
                p.set_qos(qos);
                let body = p.body_mut();
                body[..hash.0.len()].copy_from_slice(&hash.0);
                body[hash.0.len()..].copy_from_slice(data);
            }
            UdpMgmtRepr::FlowReply {
                requester,
                responder,
                response,
                data,
            } => {
                p.set_s_eid(*requester);
                p.set_d_eid(*responder);
                p.set_response(*response);
                p.body_mut().copy_from_slice(data);
            }
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::wire::testing::{hash, hex, qos, QOS};
    use proptest::prelude::*;

    /// MD5("oping"), as a prototype UDP layer hashes the name.
    const OPING_MD5: &str = "7862c6fec5ecaef4aa2e3934725e23b3";

    // eid | s_eid | d_eid | response | bandwidth | delay | loss | ber | max_gap | timeout
    // | code availability in_order | hash | data
    const FLOW_REQ: &str = "00000000 00000041 00000000 00000000 000000003b9aca00 00000064 \
        00000005 00000007 000000fa 0001d4c0 01 03 01";
    const FLOW_REPLY: &str = "00000000 00000041 00000007 fffffff3 0000000000000000 00000000 \
        00000000 00000000 00000000 00000000 02 00 00";

    fn md5_oping() -> NameHash {
        NameHash(hex(OPING_MD5))
    }

    fn check(repr: &UdpMgmtRepr<'_>, bytes: &[u8]) {
        let mut buf = vec![0xaau8; repr.buffer_len() + 3];
        assert_eq!(repr.emit(&mut buf), Ok(bytes.len()));
        assert_eq!(&buf[..bytes.len()], bytes, "emit");
        let p = UdpMgmtPacket::new_checked(bytes).unwrap();
        assert_eq!(&UdpMgmtRepr::parse(&p, HASH_LEN).unwrap(), repr, "parse");
        // The datagram is a UDP shim packet for eid 0 too.
        assert!(UdpPacket::new_checked(bytes).unwrap().is_mgmt());
        for n in 0..bytes.len() {
            let r =
                UdpMgmtPacket::new_checked(&bytes[..n]).and_then(|p| UdpMgmtRepr::parse(&p, 16));
            match repr {
                UdpMgmtRepr::FlowReply { .. } if n >= MGMT_HEADER_LEN => assert!(r.is_ok()),
                UdpMgmtRepr::FlowReq { .. } if n >= MGMT_HEADER_LEN + HASH_LEN => {
                    assert!(r.is_ok())
                }
                _ => assert!(matches!(r, Err(WireError::Truncated { .. })), "{n}"),
            }
        }
    }

    #[test]
    fn flow_req_vector() {
        let bytes = hex(&format!("{FLOW_REQ} {OPING_MD5} dead"));
        assert_eq!(bytes.len(), 47 + 16 + 2);
        check(
            &UdpMgmtRepr::FlowReq {
                requester: 0x41,
                qos: QOS,
                hash: md5_oping(),
                data: &[0xde, 0xad],
            },
            &bytes,
        );
    }

    #[test]
    fn flow_reply_vector() {
        check(
            &UdpMgmtRepr::FlowReply {
                requester: 0x41,
                responder: 7,
                response: -13,
                data: &[],
            },
            &hex(FLOW_REPLY),
        );
    }

    #[test]
    fn data_vector() {
        let bytes = hex("00000041 68656c6c6f");
        let p = UdpPacket::new_checked(&bytes[..]).unwrap();
        let r = UdpRepr::parse(&p).unwrap();
        assert_eq!(
            r,
            UdpRepr {
                eid: 0x41,
                payload_len: 5
            }
        );
        assert_eq!(p.payload(), b"hello");
        let mut buf = bytes.clone();
        buf[..4].fill(0);
        assert_eq!(r.emit(&mut buf), Ok(9));
        assert_eq!(buf, bytes);
        for n in 0..HEADER_LEN {
            assert!(matches!(
                UdpPacket::new_checked(&bytes[..n]),
                Err(WireError::Truncated { .. })
            ));
        }
        assert_eq!(
            r.emit(&mut buf[..8]),
            Err(WireError::BufferTooSmall { need: 9, have: 8 })
        );
    }

    #[test]
    fn errors() {
        let mut bytes = hex(FLOW_REPLY);
        bytes[3] = 9;
        let p = UdpMgmtPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(UdpMgmtRepr::parse(&p, 16), Err(WireError::NotManagement(9)));
        bytes[3] = 0;
        for code in [0u8, 3, 255] {
            bytes[44] = code;
            let p = UdpMgmtPacket::new_checked(&bytes[..]).unwrap();
            assert_eq!(
                UdpMgmtRepr::parse(&p, 16),
                Err(WireError::UnknownCode(code))
            );
        }
        let big = vec![0u8; MGMT_MAX_LEN + 1];
        assert!(matches!(
            UdpMgmtPacket::new_checked(&big[..]),
            Err(WireError::BadLength { .. })
        ));
        let data = vec![0u8; MGMT_MAX_LEN];
        let r = UdpMgmtRepr::FlowReply {
            requester: 1,
            responder: 2,
            response: 0,
            data: &data,
        };
        let mut buf = vec![0u8; r.buffer_len()];
        assert!(matches!(r.emit(&mut buf), Err(WireError::BadLength { .. })));
    }

    fn build(
        req: bool,
        requester: u32,
        responder: u32,
        response: i32,
        qos: QosSpec,
        hash: NameHash,
        data: &[u8],
    ) -> UdpMgmtRepr<'_> {
        if req {
            UdpMgmtRepr::FlowReq {
                requester,
                qos,
                hash,
                data,
            }
        } else {
            UdpMgmtRepr::FlowReply {
                requester,
                responder,
                response,
                data,
            }
        }
    }

    fn round_trip(r: &UdpMgmtRepr<'_>, hl: usize) -> Result<()> {
        let mut buf = vec![0u8; r.buffer_len()];
        assert_eq!(r.emit(&mut buf)?, buf.len());
        let p = UdpMgmtPacket::new_checked(&buf[..])?;
        assert_eq!(&UdpMgmtRepr::parse(&p, hl)?, r);
        Ok(())
    }

    proptest! {
        #[test]
        fn mgmt_round_trip(req: bool, requester: u32, responder: u32, response: i32,
                           qos in qos(), hash in hash(HASH_LEN),
                           data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let r = build(req, requester, responder, response, qos, hash, &data);
            prop_assert_eq!(round_trip(&r, HASH_LEN), Ok(()));
        }

        #[test]
        fn data_round_trip(eid: u32, payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let r = UdpRepr { eid, payload_len: payload.len() };
            let mut buf = vec![0u8; r.buffer_len()];
            buf[HEADER_LEN..].copy_from_slice(&payload);
            r.emit(&mut buf).unwrap();
            let p = UdpPacket::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(UdpRepr::parse(&p).unwrap(), r);
            prop_assert_eq!(p.payload(), &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128),
                                       hl in 0usize..80) {
            if let Ok(p) = UdpPacket::new_checked(&bytes[..]) {
                let _ = UdpRepr::parse(&p);
            }
            if let Ok(p) = UdpMgmtPacket::new_checked(&bytes[..]) {
                if let Ok(r) = UdpMgmtRepr::parse(&p, hl) {
                    prop_assert_eq!(round_trip(&r, hl), Ok(()));
                }
            }
        }
    }
}
