//! The udp layers' flow requests and replies as this IPCP uses them, encoded and decoded by
//! `o7s_proto::wire::udp` (the prototype's layout).

use o7s_proto::wire::udp::{UdpMgmtPacket, UdpMgmtRepr};
use o7s_proto::{NameHash, QosSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MgmtCode {
    FlowReq,
    FlowReply,
}

/// A flow request or reply. `s_eid` is always the requester's endpoint id and `d_eid` the
/// responder's, as on the wire of the udp layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mgmt {
    pub code: MgmtCode,
    pub s_eid: u32,
    pub d_eid: u32,
    pub response: i32,
    pub qos: QosSpec,
    /// The destination's name hash (requests only).
    pub hash: Vec<u8>,
}

impl Mgmt {
    pub fn to_bytes(&self) -> Vec<u8> {
        let repr = match self.code {
            MgmtCode::FlowReq => UdpMgmtRepr::FlowReq {
                requester: self.s_eid,
                qos: self.qos,
                hash: NameHash(self.hash.clone()),
                data: &[],
            },
            MgmtCode::FlowReply => UdpMgmtRepr::FlowReply {
                requester: self.s_eid,
                responder: self.d_eid,
                response: self.response,
                data: &[],
            },
        };
        let mut b = vec![0u8; repr.buffer_len()];
        // A buffer of exactly `buffer_len` bytes always takes the message.
        let n = repr.emit(&mut b).unwrap_or(0);
        b.truncate(n);
        b
    }

    /// Parse a management datagram; `hash_len` is the layer's hash length.
    pub fn parse(b: &[u8], hash_len: usize) -> Result<Mgmt, String> {
        let p = UdpMgmtPacket::new_checked(b).map_err(|e| e.to_string())?;
        match UdpMgmtRepr::parse(&p, hash_len).map_err(|e| e.to_string())? {
            UdpMgmtRepr::FlowReq {
                requester,
                qos,
                hash,
                ..
            } => Ok(Mgmt {
                code: MgmtCode::FlowReq,
                s_eid: requester,
                d_eid: 0,
                response: 0,
                qos,
                hash: hash.0,
            }),
            UdpMgmtRepr::FlowReply {
                requester,
                responder,
                response,
                ..
            } => Ok(Mgmt {
                code: MgmtCode::FlowReply,
                s_eid: requester,
                d_eid: responder,
                response,
                qos: QosSpec::RAW,
                hash: Vec::new(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let m = Mgmt {
            code: MgmtCode::FlowReq,
            s_eid: 7,
            d_eid: 0,
            response: 0,
            qos: QosSpec::VOICE,
            hash: vec![0xab; 16],
        };
        let b = m.to_bytes();
        assert_eq!(b.len(), 47 + 16);
        assert_eq!(Mgmt::parse(&b, 16), Ok(m));
        for n in 0..b.len() {
            assert!(Mgmt::parse(&b[..n], 16).is_err());
        }
    }
}
