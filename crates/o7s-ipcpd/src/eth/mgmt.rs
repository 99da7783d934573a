//! The eth-dix frames and management messages as this IPCP uses them, encoded and decoded
//! by `o7s_proto::wire` (the prototype's layout). `s_eid` is the sender's endpoint id and
//! `d_eid` the addressee's.

use o7s_proto::wire::eth::{DixFrame, DixRepr, EthAddr};
use o7s_proto::wire::eth_mgmt::{DixMgmtPacket, DixMgmtRepr, MgmtRepr};
use o7s_proto::{NameHash, QosSpec};

pub const ETH_HDR: usize = 14;
pub const DIX_HDR: usize = ETH_HDR + 4;
pub const BROADCAST: [u8; 6] = [0xff; 6];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    FlowReq = 0,
    FlowReply = 1,
    QueryReq = 2,
    QueryReply = 3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mgmt {
    pub code: Code,
    pub s_eid: u16,
    pub d_eid: u16,
    pub response: i32,
    pub qos: QosSpec,
    pub hash: Vec<u8>,
}

/// A parsed DIX frame: who sent it, to which endpoint, and where its payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub src: [u8; 6],
    pub eid: u16,
    pub payload: (usize, usize),
}

/// Write a DIX header for `len` payload bytes into `h` (18 bytes).
pub fn write_header(
    h: &mut [u8],
    dst: &[u8; 6],
    src: &[u8; 6],
    ethertype: u16,
    eid: u16,
    len: u16,
) {
    let repr = DixRepr {
        dst: EthAddr(*dst),
        src: EthAddr(*src),
        ethertype,
        eid,
        payload_len: len,
    };
    let mut f = DixFrame::new_unchecked(h);
    f.set_dst_addr(repr.dst);
    f.set_src_addr(repr.src);
    f.set_ethertype(repr.ethertype);
    f.set_eid(repr.eid);
    f.set_length(repr.payload_len);
}

/// Parse a received frame; `None` for anything that is not a well-formed frame of ours.
pub fn parse_frame(b: &[u8], ethertype: u16) -> Option<Frame> {
    let f = DixFrame::new_checked(b).ok()?;
    let r = DixRepr::parse(&f).ok()?;
    if r.ethertype != ethertype || DIX_HDR + usize::from(r.payload_len) > b.len() {
        return None;
    }
    Some(Frame {
        src: r.src.0,
        eid: r.eid,
        payload: (DIX_HDR, DIX_HDR + usize::from(r.payload_len)),
    })
}

impl Mgmt {
    pub fn to_bytes(&self) -> Vec<u8> {
        let hash = NameHash(self.hash.clone());
        // On Ethernet the reply's source eid is the responder's own.
        let repr: DixMgmtRepr<'_> = match self.code {
            Code::FlowReq => MgmtRepr::FlowReq {
                requester: self.s_eid,
                qos: self.qos,
                hash,
                data: &[],
            },
            Code::FlowReply => MgmtRepr::FlowReply {
                requester: self.d_eid,
                responder: self.s_eid,
                response: self.response,
                data: &[],
            },
            Code::QueryReq => MgmtRepr::NameQueryReq { hash },
            Code::QueryReply => MgmtRepr::NameQueryReply { hash },
        };
        let mut b = vec![0u8; repr.buffer_len()];
        let n = repr.emit(&mut b).unwrap_or(0);
        b.truncate(n);
        b
    }

    pub fn parse(b: &[u8], hash_len: usize) -> Result<Mgmt, String> {
        let p = DixMgmtPacket::new_checked(b).map_err(|e| e.to_string())?;
        let empty = |code| Mgmt {
            code,
            s_eid: 0,
            d_eid: 0,
            response: 0,
            qos: QosSpec::RAW,
            hash: Vec::new(),
        };
        Ok(
            match DixMgmtRepr::parse(&p, hash_len).map_err(|e| e.to_string())? {
                MgmtRepr::FlowReq {
                    requester,
                    qos,
                    hash,
                    ..
                } => Mgmt {
                    s_eid: requester,
                    qos,
                    hash: hash.0,
                    ..empty(Code::FlowReq)
                },
                MgmtRepr::FlowReply {
                    requester,
                    responder,
                    response,
                    ..
                } => Mgmt {
                    s_eid: responder,
                    d_eid: requester,
                    response,
                    ..empty(Code::FlowReply)
                },
                MgmtRepr::NameQueryReq { hash } => Mgmt {
                    hash: hash.0,
                    ..empty(Code::QueryReq)
                },
                MgmtRepr::NameQueryReply { hash } => Mgmt {
                    hash: hash.0,
                    ..empty(Code::QueryReply)
                },
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let base = Mgmt {
            code: Code::FlowReq,
            s_eid: 0,
            d_eid: 0,
            response: 0,
            qos: QosSpec::RAW,
            hash: vec![7; 32],
        };
        let msgs = [
            Mgmt {
                s_eid: 0x1234,
                qos: QosSpec::VIDEO,
                ..base.clone()
            },
            Mgmt {
                code: Code::FlowReply,
                s_eid: 9,
                d_eid: 0x1234,
                response: -1,
                hash: vec![],
                ..base.clone()
            },
            Mgmt {
                code: Code::QueryReq,
                ..base.clone()
            },
            Mgmt {
                code: Code::QueryReply,
                ..base.clone()
            },
        ];
        for m in msgs {
            let b = m.to_bytes();
            assert_eq!(b[37], m.code as u8);
            assert_eq!(Mgmt::parse(&b, 32), Ok(m.clone()));
            for n in 0..39 {
                assert!(Mgmt::parse(&b[..n], 32).is_err());
            }
        }
    }

    #[test]
    fn frames() {
        let mut f = vec![0u8; 64];
        write_header(&mut f, &BROADCAST, &[2, 0, 0, 0, 0, 1], 0xA000, 0, 5);
        assert_eq!(&f[12..18], &[0xA0, 0x00, 0, 0, 0, 5]);
        let p = parse_frame(&f, 0xA000).expect("frame");
        assert_eq!(p.payload, (18, 23));
        assert_eq!(p.src, [2, 0, 0, 0, 0, 1]);
        assert!(parse_frame(&f, 0xA001).is_none());
        f[17] = 200;
        assert!(parse_frame(&f, 0xA000).is_none(), "length beyond the frame");
        assert!(parse_frame(&f[..17], 0xA000).is_none());
    }
}
