//! The eth-dix frame header and management messages (endpoint id 0), in the prototype's
//! layout: destination MAC, source MAC, ethertype, 2-byte endpoint id, 2-byte length, then
//! the payload; a management message is a packed struct of 39 bytes (big-endian integers),
//! followed by the name hash on flow and name-query messages.

use o7s_proto::QosSpec;

pub const ETH_HDR: usize = 14;
pub const DIX_HDR: usize = ETH_HDR + 4;
pub const MGMT_LEN: usize = 39;
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

fn be16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
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
    h[0..6].copy_from_slice(dst);
    h[6..12].copy_from_slice(src);
    h[12..14].copy_from_slice(&ethertype.to_be_bytes());
    h[14..16].copy_from_slice(&eid.to_be_bytes());
    h[16..18].copy_from_slice(&len.to_be_bytes());
}

/// Parse a received frame; `None` for anything that is not a well-formed frame of ours.
pub fn parse_frame(b: &[u8], ethertype: u16) -> Option<Frame> {
    if b.len() < DIX_HDR || be16(b, 12) != ethertype {
        return None;
    }
    let len = usize::from(be16(b, 16));
    if DIX_HDR + len > b.len() {
        return None;
    }
    let mut src = [0u8; 6];
    src.copy_from_slice(&b[6..12]);
    Some(Frame {
        src,
        eid: be16(b, 14),
        payload: (DIX_HDR, DIX_HDR + len),
    })
}

impl Mgmt {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; MGMT_LEN];
        b[0..2].copy_from_slice(&self.s_eid.to_be_bytes());
        b[2..4].copy_from_slice(&self.d_eid.to_be_bytes());
        if self.code == Code::FlowReq {
            let q = &self.qos;
            b[4..8].copy_from_slice(&q.loss.to_be_bytes());
            b[8..16].copy_from_slice(&q.bandwidth.to_be_bytes());
            b[16..20].copy_from_slice(&q.ber.to_be_bytes());
            b[20..24].copy_from_slice(&q.max_gap.to_be_bytes());
            b[24..28].copy_from_slice(&q.delay.to_be_bytes());
            b[28..32].copy_from_slice(&q.timeout.to_be_bytes());
            b[36] = q.in_order;
            b[38] = q.availability;
        }
        b[32..36].copy_from_slice(&self.response.to_be_bytes());
        b[37] = self.code as u8;
        b.extend_from_slice(&self.hash);
        b
    }

    pub fn parse(b: &[u8], hash_len: usize) -> Result<Mgmt, String> {
        if b.len() < MGMT_LEN {
            return Err(format!(
                "{} bytes, shorter than a management message",
                b.len()
            ));
        }
        let code = match b[37] {
            0 => Code::FlowReq,
            1 => Code::FlowReply,
            2 => Code::QueryReq,
            3 => Code::QueryReply,
            c => return Err(format!("unknown code {c}")),
        };
        let hash = if code == Code::FlowReply {
            Vec::new()
        } else {
            b.get(MGMT_LEN..MGMT_LEN + hash_len)
                .ok_or("message without a full name hash")?
                .to_vec()
        };
        let mut bw = [0u8; 8];
        bw.copy_from_slice(&b[8..16]);
        Ok(Mgmt {
            code,
            s_eid: be16(b, 0),
            d_eid: be16(b, 2),
            response: be32(b, 32) as i32,
            qos: QosSpec {
                loss: be32(b, 4),
                bandwidth: u64::from_be_bytes(bw),
                ber: be32(b, 16),
                max_gap: be32(b, 20),
                delay: be32(b, 24),
                timeout: be32(b, 28),
                in_order: b[36],
                availability: b[38],
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
        for code in [
            Code::FlowReq,
            Code::FlowReply,
            Code::QueryReq,
            Code::QueryReply,
        ] {
            let m = Mgmt {
                code,
                s_eid: 0x1234,
                d_eid: if code == Code::FlowReply { 9 } else { 0 },
                response: if code == Code::FlowReply { -1 } else { 0 },
                qos: if code == Code::FlowReq {
                    QosSpec::VIDEO
                } else {
                    QosSpec { ..zero() }
                },
                hash: if code == Code::FlowReply {
                    vec![]
                } else {
                    vec![7; 32]
                },
            };
            let b = m.to_bytes();
            assert_eq!(b[37], code as u8);
            assert_eq!(Mgmt::parse(&b, 32), Ok(m));
            for n in 0..b.len() {
                assert!(Mgmt::parse(&b[..n], 32).is_err());
            }
        }
    }

    fn zero() -> QosSpec {
        QosSpec {
            delay: 0,
            bandwidth: 0,
            availability: 0,
            loss: 0,
            ber: 0,
            in_order: 0,
            max_gap: 0,
            timeout: 0,
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
