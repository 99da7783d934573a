//! Flow requests and replies of the udp layers (endpoint id 0), in the prototype's layout:
//! a packed struct of big-endian fields, 47 bytes, then the name hash on a request.

use o7s_proto::QosSpec;

pub const MGMT_LEN: usize = 47;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MgmtCode {
    FlowReq,
    FlowReply,
}

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

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

impl Mgmt {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; MGMT_LEN];
        b[4..8].copy_from_slice(&self.s_eid.to_be_bytes());
        b[8..12].copy_from_slice(&self.d_eid.to_be_bytes());
        b[12..16].copy_from_slice(&self.response.to_be_bytes());
        b[44] = match self.code {
            MgmtCode::FlowReq => 1,
            MgmtCode::FlowReply => 2,
        };
        if self.code == MgmtCode::FlowReq {
            let q = &self.qos;
            b[16..24].copy_from_slice(&q.bandwidth.to_be_bytes());
            b[24..28].copy_from_slice(&q.delay.to_be_bytes());
            b[28..32].copy_from_slice(&q.loss.to_be_bytes());
            b[32..36].copy_from_slice(&q.ber.to_be_bytes());
            b[36..40].copy_from_slice(&q.max_gap.to_be_bytes());
            b[40..44].copy_from_slice(&q.timeout.to_be_bytes());
            b[45] = q.availability;
            b[46] = q.in_order;
            b.extend_from_slice(&self.hash);
        }
        b
    }

    /// Parse a management datagram; `hash_len` is the layer's hash length.
    pub fn parse(b: &[u8], hash_len: usize) -> Result<Mgmt, String> {
        if b.len() < MGMT_LEN {
            return Err(format!(
                "{} bytes, shorter than a management message",
                b.len()
            ));
        }
        let code = match b[44] {
            1 => MgmtCode::FlowReq,
            2 => MgmtCode::FlowReply,
            c => return Err(format!("unknown code {c}")),
        };
        let hash = if code == MgmtCode::FlowReq {
            b.get(MGMT_LEN..MGMT_LEN + hash_len)
                .ok_or("flow request without a full name hash")?
                .to_vec()
        } else {
            Vec::new()
        };
        let mut bw = [0u8; 8];
        bw.copy_from_slice(&b[16..24]);
        Ok(Mgmt {
            code,
            s_eid: u32_at(b, 4),
            d_eid: u32_at(b, 8),
            response: u32_at(b, 12) as i32,
            qos: QosSpec {
                bandwidth: u64::from_be_bytes(bw),
                delay: u32_at(b, 24),
                loss: u32_at(b, 28),
                ber: u32_at(b, 32),
                max_gap: u32_at(b, 36),
                timeout: u32_at(b, 40),
                availability: b[45],
                in_order: b[46],
            },
            hash,
        })
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
            hash: vec![0xab; 32],
        };
        let b = m.to_bytes();
        assert_eq!(b.len(), MGMT_LEN + 32);
        assert_eq!(&b[0..4], &[0, 0, 0, 0]);
        assert_eq!(&b[4..8], &[0, 0, 0, 7]);
        assert_eq!(b[44], 1);
        assert_eq!(Mgmt::parse(&b, 32), Ok(m));
        for n in 0..b.len() {
            assert!(Mgmt::parse(&b[..n], 32).is_err());
        }
    }
}
