//! Management messages of the Ethernet shims, the payload of eth-dix endpoint 0 and of eth-llc
//! frames between the management SAPs.
//!
//! A message is a fixed part — the prototype's packed struct, whose first and last bytes differ
//! between eth-dix ([`Dix`], 39 bytes) and eth-llc ([`Llc`], 37 bytes) — then, for a flow
//! request and both name query messages, the name hash (the layer's hash length, 32 bytes for
//! the default SHA3-256), then, for a flow request or reply, opaque data piggybacked by the
//! IRMd (for example a flow authentication header). The QoS fields, the response code and the
//! endpoint ids are big-endian; fields a message does not use are zero.
//!
//! | code | message          | carries                                   |
//! |------|------------------|-------------------------------------------|
//! | 0    | flow request     | requester's eid/SAP, QoS, hash, data      |
//! | 1    | flow reply       | both eids/SAPs, response, data            |
//! | 2    | name query req.  | hash (sent to ff:ff:ff:ff:ff:ff)          |
//! | 3    | name query reply | hash (sent back by the node holding it)   |
//!
//! ```
//! use o7s_proto::wire::eth_mgmt::{DixMgmtPacket, DixMgmtRepr};
//! use o7s_proto::{HashAlgo, QosSpec};
//!
//! let hash = HashAlgo::Sha3_256.hash("oping");
//! let req = DixMgmtRepr::FlowReq { requester: 65, qos: QosSpec::DATA, hash, data: &[] };
//! let mut buf = vec![0u8; req.buffer_len()];
//! req.emit(&mut buf).unwrap();
//!
//! let packet = DixMgmtPacket::new_checked(&buf[..]).unwrap();
//! assert_eq!(DixMgmtRepr::parse(&packet, 32).unwrap(), req);
//! ```

use super::bytes::{get_u16, get_u32, get_u64, need, room, set_u16, set_u32, set_u64, Field};
use super::{Result, WireError};
use crate::{NameHash, QosSpec};
use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

/// Largest management message an Ethernet shim of the prototype accepts
/// (`IPCP_ETH_MGMT_FRAME_SIZE`); longer ones are dropped there and refused here.
pub const MGMT_FRAME_SIZE: usize = 9000;

/// Management message codes of the Ethernet shims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EthMgmtCode {
    FlowReq = 0,
    FlowReply = 1,
    NameQueryReq = 2,
    NameQueryReply = 3,
}

impl TryFrom<u8> for EthMgmtCode {
    type Error = WireError;
    fn try_from(v: u8) -> Result<Self> {
        match v {
            0 => Ok(EthMgmtCode::FlowReq),
            1 => Ok(EthMgmtCode::FlowReply),
            2 => Ok(EthMgmtCode::NameQueryReq),
            3 => Ok(EthMgmtCode::NameQueryReply),
            other => Err(WireError::UnknownCode(other)),
        }
    }
}

/// The QoS, response and in-order fields sit at the same offsets in both layouts.
mod field {
    use super::Field;
    pub const LOSS: Field = 4..8;
    pub const BANDWIDTH: Field = 8..16;
    pub const BER: Field = 16..20;
    pub const MAX_GAP: Field = 20..24;
    pub const DELAY: Field = 24..28;
    pub const TIMEOUT: Field = 28..32;
    pub const RESPONSE: Field = 32..36;
    pub const IN_ORDER: usize = 36;

    /// eth-dix: 16-bit endpoint ids first, code and availability last.
    pub mod dix {
        use super::Field;
        pub const SEID: Field = 0..2;
        pub const DEID: Field = 2..4;
        pub const CODE: usize = 37;
        pub const AVAILABILITY: usize = 38;
        pub const HEADER_LEN: usize = 39;
    }

    /// eth-llc: SAPs, code and availability first.
    pub mod llc {
        pub const SSAP: usize = 0;
        pub const DSAP: usize = 1;
        pub const CODE: usize = 2;
        pub const AVAILABILITY: usize = 3;
        pub const HEADER_LEN: usize = 37;
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The two layouts of the fixed part: [`Dix`] and [`Llc`].
pub trait MgmtLayout: sealed::Sealed + Copy + Debug + PartialEq + Eq + Hash {
    /// How a flow end is named: a 16-bit endpoint id (eth-dix) or an 8-bit SAP (eth-llc).
    type Eid: Copy + Debug + PartialEq + Eq + Hash + Default;
    /// Length of the fixed part.
    const HEADER_LEN: usize;
    #[doc(hidden)]
    const CODE: usize;
    #[doc(hidden)]
    const AVAILABILITY: usize;
    #[doc(hidden)]
    fn src(b: &[u8]) -> Self::Eid;
    #[doc(hidden)]
    fn dst(b: &[u8]) -> Self::Eid;
    #[doc(hidden)]
    fn set_src(b: &mut [u8], v: Self::Eid);
    #[doc(hidden)]
    fn set_dst(b: &mut [u8], v: Self::Eid);
}

/// eth-dix layout: `seid`, `deid` (16-bit) lead; `code`, `availability` close the struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dix;

/// eth-llc layout: `ssap`, `dsap`, `code`, `availability` lead (one byte each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Llc;

impl sealed::Sealed for Dix {}
impl sealed::Sealed for Llc {}

impl MgmtLayout for Dix {
    type Eid = u16;
    const HEADER_LEN: usize = field::dix::HEADER_LEN;
    const CODE: usize = field::dix::CODE;
    const AVAILABILITY: usize = field::dix::AVAILABILITY;
    fn src(b: &[u8]) -> u16 {
        get_u16(b, field::dix::SEID)
    }
    fn dst(b: &[u8]) -> u16 {
        get_u16(b, field::dix::DEID)
    }
    fn set_src(b: &mut [u8], v: u16) {
        set_u16(b, field::dix::SEID, v)
    }
    fn set_dst(b: &mut [u8], v: u16) {
        set_u16(b, field::dix::DEID, v)
    }
}

impl MgmtLayout for Llc {
    type Eid = u8;
    const HEADER_LEN: usize = field::llc::HEADER_LEN;
    const CODE: usize = field::llc::CODE;
    const AVAILABILITY: usize = field::llc::AVAILABILITY;
    fn src(b: &[u8]) -> u8 {
        b[field::llc::SSAP]
    }
    fn dst(b: &[u8]) -> u8 {
        b[field::llc::DSAP]
    }
    fn set_src(b: &mut [u8], v: u8) {
        b[field::llc::SSAP] = v
    }
    fn set_dst(b: &mut [u8], v: u8) {
        b[field::llc::DSAP] = v
    }
}

/// A zero-copy view of an Ethernet shim management message (the frame payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MgmtPacket<T: AsRef<[u8]>, L: MgmtLayout> {
    buffer: T,
    layout: PhantomData<L>,
}

/// An eth-dix management message view.
pub type DixMgmtPacket<T> = MgmtPacket<T, Dix>;
/// An eth-llc management message view.
pub type LlcMgmtPacket<T> = MgmtPacket<T, Llc>;

impl<T: AsRef<[u8]>, L: MgmtLayout> MgmtPacket<T, L> {
    /// Wrap a buffer without checking it; accessors may panic until [`Self::check_len`] passes.
    pub fn new_unchecked(buffer: T) -> Self {
        MgmtPacket {
            buffer,
            layout: PhantomData,
        }
    }

    /// Wrap a buffer that holds at least the fixed part.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The fixed part fits, and the message is no longer than [`MGMT_FRAME_SIZE`].
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        need(L::HEADER_LEN, have)?;
        if have > MGMT_FRAME_SIZE {
            return Err(WireError::BadLength {
                field: "management message length",
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
        self.buffer.as_ref()[L::CODE]
    }

    /// `seid` / `ssap`: the sender's end of the flow.
    pub fn src(&self) -> L::Eid {
        L::src(self.buffer.as_ref())
    }

    /// `deid` / `dsap`: the receiver's end of the flow (flow reply only).
    pub fn dst(&self) -> L::Eid {
        L::dst(self.buffer.as_ref())
    }

    /// The QoS fields (meaningful in a flow request).
    pub fn qos(&self) -> QosSpec {
        let b = self.buffer.as_ref();
        QosSpec {
            delay: get_u32(b, field::DELAY),
            bandwidth: get_u64(b, field::BANDWIDTH),
            availability: b[L::AVAILABILITY],
            loss: get_u32(b, field::LOSS),
            ber: get_u32(b, field::BER),
            in_order: b[field::IN_ORDER],
            max_gap: get_u32(b, field::MAX_GAP),
            timeout: get_u32(b, field::TIMEOUT),
        }
    }

    /// The response code (flow reply only): 0 accepts, negative refuses.
    pub fn response(&self) -> i32 {
        get_u32(self.buffer.as_ref(), field::RESPONSE) as i32
    }

    /// Everything after the fixed part: hash and / or data.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[L::HEADER_LEN..]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized, L: MgmtLayout> MgmtPacket<&'a T, L> {
    /// [`Self::body`] with the lifetime of the underlying buffer.
    pub fn body_ref(&self) -> &'a [u8] {
        &self.buffer.as_ref()[L::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>, L: MgmtLayout> MgmtPacket<T, L> {
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[L::CODE] = v;
    }
    pub fn set_src(&mut self, v: L::Eid) {
        L::set_src(self.buffer.as_mut(), v);
    }
    pub fn set_dst(&mut self, v: L::Eid) {
        L::set_dst(self.buffer.as_mut(), v);
    }
    pub fn set_qos(&mut self, q: &QosSpec) {
        let b = self.buffer.as_mut();
        set_u32(b, field::DELAY, q.delay);
        set_u64(b, field::BANDWIDTH, q.bandwidth);
        b[L::AVAILABILITY] = q.availability;
        set_u32(b, field::LOSS, q.loss);
        set_u32(b, field::BER, q.ber);
        b[field::IN_ORDER] = q.in_order;
        set_u32(b, field::MAX_GAP, q.max_gap);
        set_u32(b, field::TIMEOUT, q.timeout);
    }
    pub fn set_response(&mut self, v: i32) {
        set_u32(self.buffer.as_mut(), field::RESPONSE, v as u32);
    }
    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[L::HEADER_LEN..]
    }
}

/// An Ethernet shim management message.
///
/// Endpoint fields are named by role. In a flow request the requester's end is in
/// `seid`/`ssap`. In a flow reply the responder's end is in `seid`/`ssap` and the requester's
/// in `deid`/`dsap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MgmtRepr<'a, L: MgmtLayout> {
    /// Code 0: allocate a flow to the name with this hash.
    FlowReq {
        /// The requester's endpoint id (eth-dix) or SAP (eth-llc).
        requester: L::Eid,
        qos: QosSpec,
        hash: NameHash,
        /// Piggybacked data after the hash.
        data: &'a [u8],
    },
    /// Code 1: the answer to a flow request.
    FlowReply {
        /// The requester's end, echoed from the request.
        requester: L::Eid,
        /// The responder's endpoint id or SAP.
        responder: L::Eid,
        /// 0 accepts; a negative errno-style value refuses.
        response: i32,
        /// Piggybacked data after the fixed part.
        data: &'a [u8],
    },
    /// Code 2: who holds this name? Broadcast.
    NameQueryReq { hash: NameHash },
    /// Code 3: I do. Sent to the querier.
    NameQueryReply { hash: NameHash },
}

/// An eth-dix management message.
pub type DixMgmtRepr<'a> = MgmtRepr<'a, Dix>;
/// An eth-llc management message.
pub type LlcMgmtRepr<'a> = MgmtRepr<'a, Llc>;

fn take_hash(body: &[u8], hash_len: usize, header_len: usize) -> Result<NameHash> {
    need(header_len + hash_len, header_len + body.len())?;
    Ok(NameHash(body[..hash_len].to_vec()))
}

impl<'a, L: MgmtLayout> MgmtRepr<'a, L> {
    /// Decode a checked message of a layer whose name hashes are `hash_len` bytes long.
    /// Bytes after the hash of a name query are ignored, as the prototype does.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &MgmtPacket<&'a T, L>,
        hash_len: usize,
    ) -> Result<Self> {
        packet.check_len()?;
        let body = packet.body_ref();
        let code = EthMgmtCode::try_from(packet.code())?;
        Ok(match code {
            EthMgmtCode::FlowReq => MgmtRepr::FlowReq {
                requester: packet.src(),
                qos: packet.qos(),
                hash: take_hash(body, hash_len, L::HEADER_LEN)?,
                data: &body[hash_len..],
            },
            EthMgmtCode::FlowReply => MgmtRepr::FlowReply {
                requester: packet.dst(),
                responder: packet.src(),
                response: packet.response(),
                data: body,
            },
            EthMgmtCode::NameQueryReq => MgmtRepr::NameQueryReq {
                hash: take_hash(body, hash_len, L::HEADER_LEN)?,
            },
            EthMgmtCode::NameQueryReply => MgmtRepr::NameQueryReply {
                hash: take_hash(body, hash_len, L::HEADER_LEN)?,
            },
        })
    }

    pub fn code(&self) -> EthMgmtCode {
        match self {
            MgmtRepr::FlowReq { .. } => EthMgmtCode::FlowReq,
            MgmtRepr::FlowReply { .. } => EthMgmtCode::FlowReply,
            MgmtRepr::NameQueryReq { .. } => EthMgmtCode::NameQueryReq,
            MgmtRepr::NameQueryReply { .. } => EthMgmtCode::NameQueryReply,
        }
    }

    /// Length of the whole message.
    pub fn buffer_len(&self) -> usize {
        L::HEADER_LEN
            + match self {
                MgmtRepr::FlowReq { hash, data, .. } => hash.0.len() + data.len(),
                MgmtRepr::FlowReply { data, .. } => data.len(),
                MgmtRepr::NameQueryReq { hash } | MgmtRepr::NameQueryReply { hash } => hash.0.len(),
            }
    }

    /// Write the message into `buf[..buffer_len()]`, unused fields zero; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        if len > MGMT_FRAME_SIZE {
            return Err(WireError::BadLength {
                field: "management message length",
                value: len,
            });
        }
        room(len, buf.len())?;
        let buf = &mut buf[..len];
        buf[..L::HEADER_LEN].fill(0);
        let mut p = MgmtPacket::<_, L>::new_unchecked(buf);
        p.set_code(self.code() as u8);
        match self {
            MgmtRepr::FlowReq {
                requester,
                qos,
                hash,
                data,
            } => {
                p.set_src(*requester);
                p.set_qos(qos);
                let body = p.body_mut();
                body[..hash.0.len()].copy_from_slice(&hash.0);
                body[hash.0.len()..].copy_from_slice(data);
            }
            MgmtRepr::FlowReply {
                requester,
                responder,
                response,
                data,
            } => {
                p.set_src(*responder);
                p.set_dst(*requester);
                p.set_response(*response);
                p.body_mut().copy_from_slice(data);
            }
            MgmtRepr::NameQueryReq { hash } | MgmtRepr::NameQueryReply { hash } => {
                p.body_mut().copy_from_slice(&hash.0);
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

    fn oping() -> NameHash {
        HashAlgo::Sha3_256.hash("oping")
    }

    // eth-dix vectors: seid deid | loss | bandwidth | ber | max_gap | delay | timeout
    // | response | in_order code availability | hash | data
    const DIX_FLOW_REQ: &str = "0041 0000 00000005 000000003b9aca00 00000007 000000fa \
        00000064 0001d4c0 00000000 01 00 03";
    const DIX_FLOW_REPLY: &str = "0007 0041 00000000 0000000000000000 00000000 00000000 \
        00000000 00000000 fffffff3 00 01 00";
    const DIX_QUERY_REQ: &str = "0000 0000 00000000 0000000000000000 00000000 00000000 \
        00000000 00000000 00000000 00 02 00";
    const DIX_QUERY_REPLY: &str = "0000 0000 00000000 0000000000000000 00000000 00000000 \
        00000000 00000000 00000000 00 03 00";

    // eth-llc vectors: ssap dsap code availability | loss | bandwidth | ber | max_gap | delay
    // | timeout | response | in_order | hash | data
    const LLC_FLOW_REQ: &str = "02 00 00 03 00000005 000000003b9aca00 00000007 000000fa \
        00000064 0001d4c0 00000000 01";
    const LLC_FLOW_REPLY: &str = "05 02 01 00 00000000 0000000000000000 00000000 00000000 \
        00000000 00000000 fffffff3 00";
    const LLC_QUERY_REQ: &str = "00 00 02 00 00000000 0000000000000000 00000000 00000000 \
        00000000 00000000 00000000 00";

    fn vector(fixed: &str, tail: &str) -> Vec<u8> {
        hex(&format!("{fixed} {tail}"))
    }

    fn check<L: MgmtLayout>(repr: &MgmtRepr<'_, L>, bytes: &[u8], hash_len: usize) {
        let mut buf = vec![0xaau8; repr.buffer_len() + 3];
        assert_eq!(repr.emit(&mut buf), Ok(bytes.len()));
        assert_eq!(&buf[..bytes.len()], bytes, "emit");
        let p = MgmtPacket::<_, L>::new_checked(bytes).unwrap();
        assert_eq!(&MgmtRepr::parse(&p, hash_len).unwrap(), repr, "parse");
        for n in 0..bytes.len() {
            let r = MgmtPacket::<_, L>::new_checked(&bytes[..n])
                .and_then(|p| MgmtRepr::<L>::parse(&p, hash_len));
            match repr {
                // A reply's data has no length of its own: any cut after the fixed part parses.
                MgmtRepr::FlowReply { .. } if n >= L::HEADER_LEN => assert!(r.is_ok()),
                MgmtRepr::FlowReq { .. } if n >= L::HEADER_LEN + hash_len => assert!(r.is_ok()),
                _ => assert!(
                    matches!(r, Err(WireError::Truncated { .. })),
                    "length {n}: {r:?}"
                ),
            }
        }
    }

    #[test]
    fn hash_vector_is_sha3_256_of_oping() {
        assert_eq!(oping().to_string(), OPING);
    }

    #[test]
    fn dix_flow_req() {
        let bytes = vector(DIX_FLOW_REQ, &format!("{OPING} dead"));
        assert_eq!(bytes.len(), 39 + 32 + 2);
        let r = DixMgmtRepr::FlowReq {
            requester: 0x41,
            qos: QOS,
            hash: oping(),
            data: &[0xde, 0xad],
        };
        check(&r, &bytes, 32);
    }

    #[test]
    fn dix_flow_reply() {
        let bytes = vector(DIX_FLOW_REPLY, "");
        let r = DixMgmtRepr::FlowReply {
            requester: 0x41,
            responder: 7,
            response: -13,
            data: &[],
        };
        check(&r, &bytes, 32);
    }

    #[test]
    fn dix_name_queries() {
        let r = DixMgmtRepr::NameQueryReq { hash: oping() };
        check(&r, &vector(DIX_QUERY_REQ, OPING), 32);
        let r = DixMgmtRepr::NameQueryReply { hash: oping() };
        check(&r, &vector(DIX_QUERY_REPLY, OPING), 32);
    }

    #[test]
    fn llc_flow_req() {
        let bytes = vector(LLC_FLOW_REQ, OPING);
        assert_eq!(bytes.len(), 37 + 32);
        let r = LlcMgmtRepr::FlowReq {
            requester: 2,
            qos: QOS,
            hash: oping(),
            data: &[],
        };
        check(&r, &bytes, 32);
    }

    #[test]
    fn llc_flow_reply() {
        let bytes = vector(LLC_FLOW_REPLY, "beef");
        let r = LlcMgmtRepr::FlowReply {
            requester: 2,
            responder: 5,
            response: -13,
            data: &[0xbe, 0xef],
        };
        check(&r, &bytes, 32);
    }

    #[test]
    fn llc_name_query() {
        let r = LlcMgmtRepr::NameQueryReq { hash: oping() };
        check(&r, &vector(LLC_QUERY_REQ, OPING), 32);
    }

    #[test]
    fn unknown_code_and_oversize() {
        let mut bytes = vector(DIX_QUERY_REQ, OPING);
        bytes[37] = 4;
        let p = DixMgmtPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(DixMgmtRepr::parse(&p, 32), Err(WireError::UnknownCode(4)));
        let big = vec![0u8; MGMT_FRAME_SIZE + 1];
        assert!(matches!(
            DixMgmtPacket::new_checked(&big[..]),
            Err(WireError::BadLength { .. })
        ));
        let data = vec![0u8; MGMT_FRAME_SIZE];
        let r = LlcMgmtRepr::FlowReply {
            requester: 1,
            responder: 2,
            response: 0,
            data: &data,
        };
        let mut buf = vec![0u8; r.buffer_len()];
        assert!(matches!(r.emit(&mut buf), Err(WireError::BadLength { .. })));
    }

    /// Build any message from generated parts, borrowing `data`.
    #[allow(clippy::too_many_arguments)]
    fn build<L: MgmtLayout>(
        kind: u8,
        requester: L::Eid,
        responder: L::Eid,
        response: i32,
        qos: QosSpec,
        hash: NameHash,
        data: &[u8],
    ) -> MgmtRepr<'_, L> {
        match kind % 4 {
            0 => MgmtRepr::FlowReq {
                requester,
                qos,
                hash,
                data,
            },
            1 => MgmtRepr::FlowReply {
                requester,
                responder,
                response,
                data,
            },
            2 => MgmtRepr::NameQueryReq { hash },
            _ => MgmtRepr::NameQueryReply { hash },
        }
    }

    fn round_trip<L: MgmtLayout>(r: &MgmtRepr<'_, L>, hl: usize) -> Result<()> {
        let mut buf = vec![0u8; r.buffer_len()];
        assert_eq!(r.emit(&mut buf)?, buf.len());
        let p = MgmtPacket::<_, L>::new_checked(&buf[..])?;
        assert_eq!(&MgmtRepr::parse(&p, hl)?, r);
        Ok(())
    }

    proptest! {
        #[test]
        fn dix_round_trip(kind: u8, requester: u16, responder: u16, response: i32, qos in qos(),
                          (hl, hash) in prop::sample::select(vec![28usize, 32, 48, 64])
                              .prop_flat_map(|hl| (Just(hl), hash(hl))),
                          data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let r = build::<Dix>(kind, requester, responder, response, qos, hash, &data);
            prop_assert_eq!(round_trip(&r, hl), Ok(()));
        }

        #[test]
        fn llc_round_trip(kind: u8, requester: u8, responder: u8, response: i32, qos in qos(),
                          (hl, hash) in prop::sample::select(vec![28usize, 32, 48, 64])
                              .prop_flat_map(|hl| (Just(hl), hash(hl))),
                          data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let r = build::<Llc>(kind, requester, responder, response, qos, hash, &data);
            prop_assert_eq!(round_trip(&r, hl), Ok(()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128),
                                       hl in 0usize..80) {
            if let Ok(p) = DixMgmtPacket::new_checked(&bytes[..]) {
                if let Ok(r) = DixMgmtRepr::parse(&p, hl) {
                    prop_assert_eq!(round_trip(&r, hl), Ok(()));
                }
            }
            if let Ok(p) = LlcMgmtPacket::new_checked(&bytes[..]) {
                if let Ok(r) = LlcMgmtRepr::parse(&p, hl) {
                    prop_assert_eq!(round_trip(&r, hl), Ok(()));
                }
            }
        }
    }
}
