//! The udp layers' flow requests and replies, encoded and decoded by
//! `o7s_proto::wire::udp` (the prototype's layout). The udp layers have no name queries.

use crate::shim::ShimMsg;
use o7s_proto::wire::udp::{UdpMgmtPacket, UdpMgmtRepr};

/// The datagram for `m`; `None` for name queries, which udp layers do not have.
pub fn encode(m: &ShimMsg) -> Option<Vec<u8>> {
    let repr = match m {
        ShimMsg::FlowReq {
            requester,
            qos,
            hash,
        } => UdpMgmtRepr::FlowReq {
            requester: *requester,
            qos: *qos,
            hash: hash.clone(),
            data: &[],
        },
        ShimMsg::FlowReply {
            requester,
            responder,
            response,
        } => UdpMgmtRepr::FlowReply {
            requester: *requester,
            responder: *responder,
            response: *response,
            data: &[],
        },
        ShimMsg::QueryReq { .. } | ShimMsg::QueryReply { .. } => return None,
    };
    let mut b = vec![0u8; repr.buffer_len()];
    let n = repr.emit(&mut b).ok()?;
    b.truncate(n);
    Some(b)
}

/// Parse a management datagram; `hash_len` is the layer's hash length.
pub fn parse(b: &[u8], hash_len: usize) -> Result<ShimMsg, String> {
    let p = UdpMgmtPacket::new_checked(b).map_err(|e| e.to_string())?;
    Ok(
        match UdpMgmtRepr::parse(&p, hash_len).map_err(|e| e.to_string())? {
            UdpMgmtRepr::FlowReq {
                requester,
                qos,
                hash,
                ..
            } => ShimMsg::FlowReq {
                requester,
                qos,
                hash,
            },
            UdpMgmtRepr::FlowReply {
                requester,
                responder,
                response,
                ..
            } => ShimMsg::FlowReply {
                requester,
                responder,
                response,
            },
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use o7s_proto::{NameHash, QosSpec};

    #[test]
    fn round_trip_and_truncation() {
        let msgs = [
            ShimMsg::FlowReq {
                requester: 7,
                qos: QosSpec::VOICE,
                hash: NameHash(vec![0xab; 16]),
            },
            ShimMsg::FlowReply {
                requester: 7,
                responder: 9,
                response: -1,
            },
        ];
        for m in msgs {
            let b = encode(&m).expect("udp message");
            assert_eq!(parse(&b, 16), Ok(m));
            for n in 0..47 {
                assert!(parse(&b[..n], 16).is_err());
            }
        }
        assert!(encode(&ShimMsg::QueryReq {
            hash: NameHash(vec![1; 16])
        })
        .is_none());
    }
}
