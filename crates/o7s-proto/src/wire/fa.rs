//! Messages of the unicast flow allocator, the payload of data transfer packets to endpoint
//! [`FA_EID`](super::dt::FA_EID) (0), always sent in QoS cube best effort.
//!
//! A message is the prototype's packed `fa_msg` struct (61 bytes, every multi-byte field
//! **big-endian**, unlike the data transfer PCI that carries it), then, for a flow request,
//! the destination name hash (the layer's hash length), then, for a flow request or reply,
//! opaque data piggybacked by the IRMd — in the prototype always its OAP header (flow id,
//! timestamp, algorithms, certificate, key exchange, signature; see `src/irmd/oap/hdr.h`),
//! which this module leaves to the IRMd's codec. Fields a message does not use are zero.
//!
//! | code | message     | carries                                                   |
//! |------|-------------|-----------------------------------------------------------|
//! | 0    | FLOW_REQ    | requester's address and endpoint id, QoS, hash, data      |
//! | 1    | FLOW_REPLY  | both endpoint ids, response, data                         |
//! | 2    | FLOW_UPDATE | receiver's endpoint id, ECN echo (`ece`)                  |
//!
//! `s_` fields are the sender's, `r_` fields the receiver's. Endpoint ids are made by the
//! prototype as a 32-bit random number in the high half and the flow's fd in the low half.
//!
//! ```
//! use o7s_proto::wire::fa::{FaPacket, FaRepr};
//! use o7s_proto::{HashAlgo, QosSpec};
//!
//! let req = FaRepr::FlowReq {
//!     s_addr: 0x0102_0304,
//!     s_eid: 0xdead_beef_0000_0041,
//!     qos: QosSpec::DATA,
//!     hash: HashAlgo::Sha3_256.hash("oping"),
//!     data: &[],
//! };
//! let mut buf = vec![0u8; req.buffer_len()];
//! req.emit(&mut buf).unwrap();
//! let p = FaPacket::new_checked(&buf[..]).unwrap();
//! assert_eq!(FaRepr::parse(&p, 32).unwrap(), req);
//! ```

use super::bytes::{get_u16, get_u32, get_u64, need, room, set_u16, set_u32, set_u64, Field};
use super::{Result, WireError};
use crate::{NameHash, QosSpec};

/// Length of the fixed part (`sizeof(struct fa_msg)`).
pub const HEADER_LEN: usize = 61;
/// Largest message the prototype's flow allocator accepts (`MSGBUFSZ`); longer ones are
/// dropped there and refused here.
pub const MSGBUFSZ: usize = 2048;

/// Flow allocator message codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FaCode {
    FlowReq = 0,
    FlowReply = 1,
    FlowUpdate = 2,
}

impl TryFrom<u8> for FaCode {
    type Error = WireError;
    fn try_from(v: u8) -> Result<Self> {
        match v {
            0 => Ok(FaCode::FlowReq),
            1 => Ok(FaCode::FlowReply),
            2 => Ok(FaCode::FlowUpdate),
            other => Err(WireError::UnknownCode(other)),
        }
    }
}

mod field {
    use super::Field;
    pub const S_ADDR: Field = 0..8;
    pub const R_EID: Field = 8..16;
    pub const S_EID: Field = 16..24;
    pub const BANDWIDTH: Field = 24..32;
    pub const RESPONSE: Field = 32..36;
    pub const DELAY: Field = 36..40;
    pub const LOSS: Field = 40..44;
    pub const BER: Field = 44..48;
    pub const MAX_GAP: Field = 48..52;
    pub const TIMEOUT: Field = 52..56;
    pub const ECE: Field = 56..58;
    pub const CODE: usize = 58;
    pub const AVAILABILITY: usize = 59;
    pub const IN_ORDER: usize = 60;
}

/// A zero-copy view of a flow allocator message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FaPacket<T> {
    /// Wrap a buffer without checking it; accessors may panic until [`Self::check_len`] passes.
    pub fn new_unchecked(buffer: T) -> Self {
        FaPacket { buffer }
    }

    /// Wrap a buffer that holds the fixed part and is no longer than [`MSGBUFSZ`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        need(HEADER_LEN, have)?;
        if have > MSGBUFSZ {
            return Err(WireError::BadLength {
                field: "flow allocator message length",
                value: have,
            });
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The raw code byte.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The sender's address (flow request).
    pub fn s_addr(&self) -> u64 {
        get_u64(self.buffer.as_ref(), field::S_ADDR)
    }

    /// The receiver's endpoint id (flow reply, flow update).
    pub fn r_eid(&self) -> u64 {
        get_u64(self.buffer.as_ref(), field::R_EID)
    }

    /// The sender's endpoint id (flow request, flow reply).
    pub fn s_eid(&self) -> u64 {
        get_u64(self.buffer.as_ref(), field::S_EID)
    }

    /// The requested QoS (flow request).
    pub fn qos(&self) -> QosSpec {
        let b = self.buffer.as_ref();
        QosSpec {
            delay: get_u32(b, field::DELAY),
            bandwidth: get_u64(b, field::BANDWIDTH),
            availability: b[field::AVAILABILITY],
            loss: get_u32(b, field::LOSS),
            ber: get_u32(b, field::BER),
            in_order: b[field::IN_ORDER],
            max_gap: get_u32(b, field::MAX_GAP),
            timeout: get_u32(b, field::TIMEOUT),
        }
    }

    /// The response (flow reply): 0 accepts, negative refuses.
    pub fn response(&self) -> i32 {
        get_u32(self.buffer.as_ref(), field::RESPONSE) as i32
    }

    /// The ECN echo (flow update): the receiver's smoothed congestion level.
    pub fn ece(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECE)
    }

    /// Everything after the fixed part.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> FaPacket<&'a T> {
    /// [`Self::body`] with the lifetime of the underlying buffer.
    pub fn body_ref(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> FaPacket<T> {
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }
    pub fn set_s_addr(&mut self, v: u64) {
        set_u64(self.buffer.as_mut(), field::S_ADDR, v);
    }
    pub fn set_r_eid(&mut self, v: u64) {
        set_u64(self.buffer.as_mut(), field::R_EID, v);
    }
    pub fn set_s_eid(&mut self, v: u64) {
        set_u64(self.buffer.as_mut(), field::S_EID, v);
    }
    pub fn set_qos(&mut self, q: &QosSpec) {
        let b = self.buffer.as_mut();
        set_u32(b, field::DELAY, q.delay);
        set_u64(b, field::BANDWIDTH, q.bandwidth);
        b[field::AVAILABILITY] = q.availability;
        set_u32(b, field::LOSS, q.loss);
        set_u32(b, field::BER, q.ber);
        b[field::IN_ORDER] = q.in_order;
        set_u32(b, field::MAX_GAP, q.max_gap);
        set_u32(b, field::TIMEOUT, q.timeout);
    }
    pub fn set_response(&mut self, v: i32) {
        set_u32(self.buffer.as_mut(), field::RESPONSE, v as u32);
    }
    pub fn set_ece(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::ECE, v);
    }
    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// A flow allocator message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaRepr<'a> {
    /// Code 0: allocate a flow to the name with this hash, sent to the address the directory
    /// gave for it.
    FlowReq {
        /// The requester's address: where the responder sends the reply and the data.
        s_addr: u64,
        /// The requester's endpoint id for this flow.
        s_eid: u64,
        qos: QosSpec,
        hash: NameHash,
        /// Piggybacked data after the hash (the IRMd's OAP request header).
        data: &'a [u8],
    },
    /// Code 1: the answer to a flow request.
    FlowReply {
        /// The requester's endpoint id, echoed from the request.
        r_eid: u64,
        /// The responder's endpoint id for this flow.
        s_eid: u64,
        /// 0 accepts; a negative errno-style value refuses.
        response: i32,
        /// Piggybacked data after the fixed part (the IRMd's OAP response header).
        data: &'a [u8],
    },
    /// Code 2: congestion feedback from the receiving end of a flow to its sender.
    FlowUpdate {
        /// The endpoint id of the flow at the receiver of this update (the data sender).
        r_eid: u64,
        /// Smoothed congestion level seen on the data arriving at the update's sender.
        ece: u16,
    },
}

impl<'a> FaRepr<'a> {
    /// Decode a checked message of a layer whose name hashes are `hash_len` bytes long.
    /// Bytes after a flow update's fixed part are ignored, as the prototype does.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &FaPacket<&'a T>,
        hash_len: usize,
    ) -> Result<Self> {
        packet.check_len()?;
        let body = packet.body_ref();
        Ok(match FaCode::try_from(packet.code())? {
            FaCode::FlowReq => {
                need(HEADER_LEN + hash_len, HEADER_LEN + body.len())?;
                FaRepr::FlowReq {
                    s_addr: packet.s_addr(),
                    s_eid: packet.s_eid(),
                    qos: packet.qos(),
                    hash: NameHash(body[..hash_len].to_vec()),
                    data: &body[hash_len..],
                }
            }
            FaCode::FlowReply => FaRepr::FlowReply {
                r_eid: packet.r_eid(),
                s_eid: packet.s_eid(),
                response: packet.response(),
                data: body,
            },
            FaCode::FlowUpdate => FaRepr::FlowUpdate {
                r_eid: packet.r_eid(),
                ece: packet.ece(),
            },
        })
    }

    pub fn code(&self) -> FaCode {
        match self {
            FaRepr::FlowReq { .. } => FaCode::FlowReq,
            FaRepr::FlowReply { .. } => FaCode::FlowReply,
            FaRepr::FlowUpdate { .. } => FaCode::FlowUpdate,
        }
    }

    /// Length of the whole message.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                FaRepr::FlowReq { hash, data, .. } => hash.0.len() + data.len(),
                FaRepr::FlowReply { data, .. } => data.len(),
                FaRepr::FlowUpdate { .. } => 0,
            }
    }

    /// Write the message into `buf[..buffer_len()]`, unused fields zero; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        if len > MSGBUFSZ {
            return Err(WireError::BadLength {
                field: "flow allocator message length",
                value: len,
            });
        }
        room(len, buf.len())?;
        let buf = &mut buf[..len];
        buf[..HEADER_LEN].fill(0);
        let mut p = FaPacket::new_unchecked(buf);
        p.set_code(self.code() as u8);
        match self {
            FaRepr::FlowReq {
                s_addr,
                s_eid,
                qos,
                hash,
                data,
            } => {
                p.set_s_addr(*s_addr);
                p.set_s_eid(*s_eid);
                p.set_qos(qos);
                let body = p.body_mut();
                body[..hash.0.len()].copy_from_slice(&hash.0);
                body[hash.0.len()..].copy_from_slice(data);
            }
            FaRepr::FlowReply {
                r_eid,
                s_eid,
                response,
                data,
            } => {
                p.set_r_eid(*r_eid);
                p.set_s_eid(*s_eid);
                p.set_response(*response);
                p.body_mut().copy_from_slice(data);
            }
            FaRepr::FlowUpdate { r_eid, ece } => {
                p.set_r_eid(*r_eid);
                p.set_ece(*ece);
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
    use crate::HashAlgo;
    use proptest::prelude::*;

    /// SHA3-256("oping").
    const OPING: &str = "42dee3b0415b4f690fd91cbd99876f1e9bd8d9745ef7fa32b142773af0349d54";

    // Fixed part, all big-endian: s_addr | r_eid | s_eid | bandwidth | response | delay | loss
    // | ber | max_gap | timeout | ece | code availability in_order. Each vector is what the
    // prototype's packed struct holds after its hton64/hton32/hton16 stores.
    const FLOW_REQ: &str = "0000000001020304 0000000000000000 deadbeef00000041 \
        000000003b9aca00 00000000 00000064 00000005 00000007 000000fa 0001d4c0 0000 00 03 01";
    const FLOW_REPLY: &str = "0000000000000000 deadbeef00000041 cafef00d00000007 \
        0000000000000000 fffffff3 00000000 00000000 00000000 00000000 00000000 0000 01 00 00";
    const FLOW_UPDATE: &str = "0000000000000000 cafef00d00000007 0000000000000000 \
        0000000000000000 00000000 00000000 00000000 00000000 00000000 00000000 0123 02 00 00";

    fn check(repr: &FaRepr<'_>, bytes: &[u8]) {
        let mut buf = vec![0xaau8; repr.buffer_len() + 3];
        assert_eq!(repr.emit(&mut buf), Ok(bytes.len()));
        assert_eq!(&buf[..bytes.len()], bytes, "emit");
        let p = FaPacket::new_checked(bytes).unwrap();
        assert_eq!(&FaRepr::parse(&p, 32).unwrap(), repr, "parse");
        for n in 0..bytes.len() {
            let r = FaPacket::new_checked(&bytes[..n]).and_then(|p| FaRepr::parse(&p, 32));
            match repr {
                FaRepr::FlowReq { .. } if n >= HEADER_LEN + 32 => assert!(r.is_ok()),
                FaRepr::FlowReply { .. } if n >= HEADER_LEN => assert!(r.is_ok()),
                _ => assert!(
                    matches!(r, Err(WireError::Truncated { .. })),
                    "length {n}: {r:?}"
                ),
            }
        }
    }

    #[test]
    fn flow_req() {
        let bytes = hex(&format!("{FLOW_REQ} {OPING} dead"));
        assert_eq!(bytes.len(), 61 + 32 + 2);
        let r = FaRepr::FlowReq {
            s_addr: 0x0102_0304,
            s_eid: 0xdead_beef_0000_0041,
            qos: QOS,
            hash: HashAlgo::Sha3_256.hash("oping"),
            data: &[0xde, 0xad],
        };
        check(&r, &bytes);
    }

    #[test]
    fn flow_reply() {
        let bytes = hex(FLOW_REPLY);
        let r = FaRepr::FlowReply {
            r_eid: 0xdead_beef_0000_0041,
            s_eid: 0xcafe_f00d_0000_0007,
            response: -13,
            data: &[],
        };
        check(&r, &bytes);
    }

    #[test]
    fn flow_update() {
        let bytes = hex(FLOW_UPDATE);
        let r = FaRepr::FlowUpdate {
            r_eid: 0xcafe_f00d_0000_0007,
            ece: 0x0123,
        };
        check(&r, &bytes);
        // Trailing bytes after an update are ignored.
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"xyz");
        let p = FaPacket::new_checked(&longer[..]).unwrap();
        assert_eq!(FaRepr::parse(&p, 32), Ok(r));
    }

    #[test]
    fn unknown_code_and_oversize() {
        let mut bytes = hex(FLOW_UPDATE);
        bytes[58] = 3;
        let p = FaPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(FaRepr::parse(&p, 32), Err(WireError::UnknownCode(3)));
        let big = vec![0u8; MSGBUFSZ + 1];
        assert!(matches!(
            FaPacket::new_checked(&big[..]),
            Err(WireError::BadLength { .. })
        ));
        let data = vec![0u8; MSGBUFSZ - HEADER_LEN + 1];
        let r = FaRepr::FlowReply {
            r_eid: 1,
            s_eid: 2,
            response: 0,
            data: &data,
        };
        let mut buf = vec![0u8; r.buffer_len()];
        assert!(matches!(r.emit(&mut buf), Err(WireError::BadLength { .. })));
        let r = FaRepr::FlowUpdate { r_eid: 1, ece: 2 };
        let mut small = [0u8; HEADER_LEN - 1];
        assert!(matches!(
            r.emit(&mut small),
            Err(WireError::BufferTooSmall { .. })
        ));
    }

    fn round_trip(r: &FaRepr<'_>, hl: usize) -> Result<()> {
        let mut buf = vec![0u8; r.buffer_len()];
        assert_eq!(r.emit(&mut buf)?, buf.len());
        let p = FaPacket::new_checked(&buf[..])?;
        assert_eq!(&FaRepr::parse(&p, hl)?, r);
        Ok(())
    }

    proptest! {
        #[test]
        fn any_round_trip(kind in 0u8..3, s_addr: u64, s_eid: u64, r_eid: u64, response: i32,
                          ece: u16, qos in qos(),
                          (hl, hash) in prop::sample::select(vec![28usize, 32, 48, 64])
                              .prop_flat_map(|hl| (Just(hl), hash(hl))),
                          data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let r = match kind {
                0 => FaRepr::FlowReq { s_addr, s_eid, qos, hash, data: &data },
                1 => FaRepr::FlowReply { r_eid, s_eid, response, data: &data },
                _ => FaRepr::FlowUpdate { r_eid, ece },
            };
            prop_assert_eq!(round_trip(&r, hl), Ok(()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160),
                                       hl in 0usize..80) {
            if let Ok(p) = FaPacket::new_checked(&bytes[..]) {
                if let Ok(r) = FaRepr::parse(&p, hl) {
                    prop_assert_eq!(round_trip(&r, hl), Ok(()));
                }
            }
        }
    }
}
