//! The eth-dix and eth-llc frames and management messages as this IPCP uses them, encoded
//! and decoded by `o7s_proto::wire` (the prototype's layouts). In a [`Mgmt`], `s_eid` is the
//! sender's endpoint id (SAP on LLC) and `d_eid` the addressee's.

use crate::shim::ShimMsg;
use o7s_proto::wire::eth::{
    DixFrame, DixRepr, EthAddr, LlcFrame, LlcRepr, FIRST_FLOW_SAP, LLC_CONTROL_UI, LLC_HEADER_LEN,
    LLC_MTU, MAX_SAPS, MGMT_SAP,
};
use o7s_proto::wire::eth_mgmt::{
    DixMgmtPacket, DixMgmtRepr, LlcMgmtPacket, LlcMgmtRepr, MgmtLayout, MgmtRepr,
};
#[cfg(test)]
use o7s_proto::{NameHash, QosSpec};

pub const ETH_HDR: usize = 14;
pub const DIX_HDR: usize = ETH_HDR + 4;
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// A parsed frame: who sent it, which of our endpoints it is for (0 = management), and
/// where its payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub src: [u8; 6],
    pub eid: u16,
    pub payload: (usize, usize),
}

/// What differs between eth-dix and eth-llc: the frame header, the socket protocol, the
/// endpoint ids and the layout of the management messages.
pub trait Framing: Send + Sync + 'static {
    /// The IPCP type, for messages.
    const KIND: &'static str;
    /// Build from the bootstrap's `ethertype` (only eth-dix takes one).
    fn configure(ethertype: Option<u16>) -> Result<Self, &'static str>
    where
        Self: Sized;
    /// Bytes of header in front of a payload.
    const HDR: usize;
    /// The protocol the raw socket binds to.
    fn proto(&self) -> u16;
    /// The layer's MTU on an interface of `if_mtu`.
    fn mtu(&self, if_mtu: u32) -> u32;
    /// The range endpoint ids of flows are drawn from.
    fn eids(&self) -> std::ops::RangeInclusive<u16>;
    /// Write the header of a frame from our endpoint `local` to the peer's `remote`
    /// (both 0 for management) for `len` payload bytes.
    #[allow(clippy::too_many_arguments)]
    fn write_header(
        &self,
        h: &mut [u8],
        dst: &[u8; 6],
        src: &[u8; 6],
        local: u16,
        remote: u16,
        len: u16,
    );
    fn parse_frame(&self, b: &[u8]) -> Option<Frame>;
    fn encode(&self, m: &ShimMsg) -> Vec<u8>;
    fn parse(&self, b: &[u8], hash_len: usize) -> Result<ShimMsg, String>;
}

/// Ethernet II with the prototype's 2-byte endpoint id and length.
pub struct Dix {
    pub ethertype: u16,
}

/// 802.3 with an LLC header; endpoints are SAPs.
pub struct Llc;

impl Framing for Dix {
    const KIND: &'static str = "eth-dix";
    const HDR: usize = DIX_HDR;

    fn configure(ethertype: Option<u16>) -> Result<Self, &'static str> {
        Ok(Dix {
            ethertype: ethertype.unwrap_or(o7s_proto::wire::eth::DEFAULT_ETHERTYPE),
        })
    }

    fn proto(&self) -> u16 {
        self.ethertype
    }

    fn mtu(&self, if_mtu: u32) -> u32 {
        if_mtu.min(0xFFFF) - 4
    }

    fn eids(&self) -> std::ops::RangeInclusive<u16> {
        1..=u16::MAX
    }

    fn write_header(
        &self,
        h: &mut [u8],
        dst: &[u8; 6],
        src: &[u8; 6],
        _local: u16,
        remote: u16,
        len: u16,
    ) {
        let mut f = DixFrame::new_unchecked(h);
        f.set_dst_addr(EthAddr(*dst));
        f.set_src_addr(EthAddr(*src));
        f.set_ethertype(self.ethertype);
        f.set_eid(remote);
        f.set_length(len);
    }

    fn parse_frame(&self, b: &[u8]) -> Option<Frame> {
        let f = DixFrame::new_checked(b).ok()?;
        let r = DixRepr::parse(&f).ok()?;
        if r.ethertype != self.ethertype || DIX_HDR + usize::from(r.payload_len) > b.len() {
            return None;
        }
        Some(Frame {
            src: r.src.0,
            eid: r.eid,
            payload: (DIX_HDR, DIX_HDR + usize::from(r.payload_len)),
        })
    }

    fn encode(&self, m: &ShimMsg) -> Vec<u8> {
        encode::<o7s_proto::wire::eth_mgmt::Dix>(m, |e| e as u16)
    }

    fn parse(&self, b: &[u8], hash_len: usize) -> Result<ShimMsg, String> {
        let p = DixMgmtPacket::new_checked(b).map_err(|e| e.to_string())?;
        let r = DixMgmtRepr::parse(&p, hash_len).map_err(|e| e.to_string())?;
        Ok(decode(r, u32::from))
    }
}

impl Framing for Llc {
    const KIND: &'static str = "eth-llc";
    const HDR: usize = LLC_HEADER_LEN;

    fn configure(ethertype: Option<u16>) -> Result<Self, &'static str> {
        match ethertype {
            None => Ok(Llc),
            Some(_) => Err("eth-llc layers have no ethertype (they use 802.3 lengths and SAPs)"),
        }
    }

    fn proto(&self) -> u16 {
        o7s_shm::ETH_P_802_2
    }

    fn mtu(&self, if_mtu: u32) -> u32 {
        if_mtu.min(LLC_MTU as u32) - 3
    }

    fn eids(&self) -> std::ops::RangeInclusive<u16> {
        u16::from(FIRST_FLOW_SAP)..=(MAX_SAPS as u16 - 1)
    }

    fn write_header(
        &self,
        h: &mut [u8],
        dst: &[u8; 6],
        src: &[u8; 6],
        local: u16,
        remote: u16,
        len: u16,
    ) {
        let sap = |e: u16| if e == 0 { MGMT_SAP } else { e as u8 };
        let r = LlcRepr {
            dst: EthAddr(*dst),
            src: EthAddr(*src),
            dsap: sap(remote),
            ssap: sap(local),
            payload_len: len,
        };
        // The header fits: callers give HDR bytes and a payload of `len` follows.
        let mut f = LlcFrame::new_unchecked(h);
        f.set_dst_addr(r.dst);
        f.set_src_addr(r.src);
        f.set_length(len + 3);
        f.set_dsap(r.dsap);
        f.set_ssap(r.ssap);
        f.set_control(LLC_CONTROL_UI);
    }

    fn parse_frame(&self, b: &[u8]) -> Option<Frame> {
        let f = LlcFrame::new_checked(b).ok()?;
        let r = LlcRepr::parse(&f).ok()?;
        let end = LLC_HEADER_LEN + usize::from(r.payload_len);
        if end > b.len() {
            return None;
        }
        let eid = if r.dsap == MGMT_SAP {
            0
        } else {
            u16::from(r.dsap)
        };
        Some(Frame {
            src: r.src.0,
            eid,
            payload: (LLC_HEADER_LEN, end),
        })
    }

    fn encode(&self, m: &ShimMsg) -> Vec<u8> {
        encode::<o7s_proto::wire::eth_mgmt::Llc>(m, |e| e as u8)
    }

    fn parse(&self, b: &[u8], hash_len: usize) -> Result<ShimMsg, String> {
        let p = LlcMgmtPacket::new_checked(b).map_err(|e| e.to_string())?;
        let r = LlcMgmtRepr::parse(&p, hash_len).map_err(|e| e.to_string())?;
        Ok(decode(r, u32::from))
    }
}

fn encode<L: MgmtLayout>(m: &ShimMsg, eid: impl Fn(u32) -> L::Eid) -> Vec<u8> {
    let repr: MgmtRepr<'_, L> = match m {
        ShimMsg::FlowReq {
            requester,
            qos,
            hash,
        } => MgmtRepr::FlowReq {
            requester: eid(*requester),
            qos: *qos,
            hash: hash.clone(),
            data: &[],
        },
        ShimMsg::FlowReply {
            requester,
            responder,
            response,
        } => MgmtRepr::FlowReply {
            requester: eid(*requester),
            responder: eid(*responder),
            response: *response,
            data: &[],
        },
        ShimMsg::QueryReq { hash } => MgmtRepr::NameQueryReq { hash: hash.clone() },
        ShimMsg::QueryReply { hash } => MgmtRepr::NameQueryReply { hash: hash.clone() },
    };
    let mut b = vec![0u8; repr.buffer_len()];
    // A buffer of exactly `buffer_len` bytes always takes the message.
    let n = repr.emit(&mut b).unwrap_or(0);
    b.truncate(n);
    b
}

fn decode<L: MgmtLayout>(r: MgmtRepr<'_, L>, eid: impl Fn(L::Eid) -> u32) -> ShimMsg {
    match r {
        MgmtRepr::FlowReq {
            requester,
            qos,
            hash,
            ..
        } => ShimMsg::FlowReq {
            requester: eid(requester),
            qos,
            hash,
        },
        MgmtRepr::FlowReply {
            requester,
            responder,
            response,
            ..
        } => ShimMsg::FlowReply {
            requester: eid(requester),
            responder: eid(responder),
            response,
        },
        MgmtRepr::NameQueryReq { hash } => ShimMsg::QueryReq { hash },
        MgmtRepr::NameQueryReply { hash } => ShimMsg::QueryReply { hash },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let hash = NameHash(vec![7; 32]);
        let msgs = [
            ShimMsg::FlowReq {
                requester: 0x12,
                qos: QosSpec::VIDEO,
                hash: hash.clone(),
            },
            ShimMsg::FlowReply {
                requester: 0x12,
                responder: 9,
                response: -1,
            },
            ShimMsg::QueryReq { hash: hash.clone() },
            ShimMsg::QueryReply { hash },
        ];
        let dix = Dix { ethertype: 0xA000 };
        for m in msgs {
            let b = dix.encode(&m);
            assert_eq!(dix.parse(&b, 32), Ok(m.clone()));
            for n in 0..39 {
                assert!(dix.parse(&b[..n], 32).is_err());
            }
            let l = Llc.encode(&m);
            assert_eq!(Llc.parse(&l, 32), Ok(m.clone()));
        }
    }

    #[test]
    fn frames() {
        let dix = Dix { ethertype: 0xA000 };
        let mut f = vec![0u8; 64];
        dix.write_header(&mut f, &BROADCAST, &[2, 0, 0, 0, 0, 1], 3, 0, 5);
        assert_eq!(&f[12..18], &[0xA0, 0x00, 0, 0, 0, 5]);
        let p = dix.parse_frame(&f).expect("frame");
        assert_eq!(p.payload, (18, 23));
        assert_eq!(p.src, [2, 0, 0, 0, 0, 1]);
        assert!(Dix { ethertype: 0xA001 }.parse_frame(&f).is_none());
        f[17] = 200;
        assert!(dix.parse_frame(&f).is_none(), "length beyond the frame");
        assert!(dix.parse_frame(&f[..17]).is_none());

        // LLC: SAP 5 to SAP 7, and management (SAP 1 both ways) as endpoint 0.
        let mut f = vec![0u8; 64];
        Llc.write_header(&mut f, &BROADCAST, &[2, 0, 0, 0, 0, 1], 7, 5, 10);
        let p = Llc.parse_frame(&f).expect("frame");
        assert_eq!(p.eid, 5);
        assert_eq!(p.payload, (17, 27));
        Llc.write_header(&mut f, &BROADCAST, &[2, 0, 0, 0, 0, 1], 0, 0, 10);
        assert_eq!(Llc.parse_frame(&f).expect("frame").eid, 0);
    }
}
