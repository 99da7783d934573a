//! Enrollment: how a new IPCP joins a unicast or broadcast layer.
//!
//! The newcomer allocates a flow to a member (or to the layer's name), opens it with a
//! connection establishment exchange for the `Enrollment` component ([`super::cep`]), and
//! then:
//!
//! 1. sends an [`EnrollReq`] with a random 8-byte enrollment id;
//! 2. receives an [`EnrollResp`]: the same id, the member's clock, a response (negative:
//!    refused) and, when accepted, the layer configuration ([`IpcpConfig`]) — with, for a
//!    unicast layer, the member's own address as the DHT's bootstrap `peer`;
//! 3. starts its components with that configuration (picking an address) and sends an
//!    [`EnrollAck`] with the id and its result (0: done).
//!
//! The prototype encodes the three messages with protobuf-c from `src/lib/pb/enroll.proto`
//! (proto2); this module keeps its field numbers and types:
//!
//! ```text
//! message enroll_req_msg  { required bytes id = 1; }
//! message enroll_resp_msg { required bytes id = 1; required int64 t_sec = 2;
//!                           required int32 t_nsec = 3; required int32 response = 4;
//!                           optional ipcp_config_msg conf = 5; }
//! message enroll_ack_msg  { required bytes id = 1; required int32 result = 2; }
//! ```
//!
//! Negative `int32` values take ten bytes on the wire (sign-extended varints, as protobuf
//! and protobuf-c both write them). Each message is one packet of the enrollment flow; the
//! prototype reads it into a 1024-byte buffer, so longer ones are refused here.
//!
//! ```
//! use o7s_proto::wire::enroll::{EnrollAck, EnrollReq};
//!
//! let req = EnrollReq { id: [1, 2, 3, 4, 5, 6, 7, 8] };
//! assert_eq!(req.to_vec().unwrap(), [0x0a, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]);
//! let ack = EnrollAck { id: req.id, result: 0 };
//! assert_eq!(EnrollAck::parse(&ack.to_vec().unwrap()).unwrap(), ack);
//! ```

use super::ipcp_config::{raw as cfg_raw, IpcpConfig};
use super::pb::{self, req};
use super::{Result, WireError};

/// Length of an enrollment id (`ENROLL_ID_LEN`).
pub const ENROLL_ID_LEN: usize = 8;
/// Size of the buffer the prototype reads each message into (`ENROLL_BUF_LEN`).
pub const ENROLL_BUF_LEN: usize = 1024;
/// The result an enroller logs when the exchange broke off before an ack arrived.
pub const ENROLL_FAILED: i32 = -100;
/// Milliseconds of clock offset above which the prototype warns (`ENROLL_WARN_TIME_OFFSET`).
pub const WARN_TIME_OFFSET_MS: i64 = 20;

/// An enrollment id.
pub type EnrollId = [u8; ENROLL_ID_LEN];

/// Step 1: newcomer to member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollReq {
    pub id: EnrollId,
}

/// Step 2: member to newcomer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollResp {
    /// The request's id.
    pub id: EnrollId,
    /// The member's `CLOCK_REALTIME` when it answered.
    pub t_sec: i64,
    pub t_nsec: i32,
    /// 0 accepts; negative refuses.
    pub response: i32,
    /// The layer configuration: present exactly when `response >= 0`.
    pub conf: Option<IpcpConfig>,
}

/// Step 3: newcomer to member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollAck {
    pub id: EnrollId,
    /// 0 when the newcomer started its components; negative otherwise.
    pub result: i32,
}

mod raw {
    use super::cfg_raw::IpcpConfigMsg;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EnrollReqMsg {
        #[prost(bytes = "vec", optional, tag = "1")]
        pub id: Option<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EnrollRespMsg {
        #[prost(bytes = "vec", optional, tag = "1")]
        pub id: Option<Vec<u8>>,
        #[prost(int64, optional, tag = "2")]
        pub t_sec: Option<i64>,
        #[prost(int32, optional, tag = "3")]
        pub t_nsec: Option<i32>,
        #[prost(int32, optional, tag = "4")]
        pub response: Option<i32>,
        #[prost(message, optional, tag = "5")]
        pub conf: Option<IpcpConfigMsg>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EnrollAckMsg {
        #[prost(bytes = "vec", optional, tag = "1")]
        pub id: Option<Vec<u8>>,
        #[prost(int32, optional, tag = "2")]
        pub result: Option<i32>,
    }
}

fn check_size(len: usize) -> Result<()> {
    if len > ENROLL_BUF_LEN {
        return Err(WireError::BadLength {
            field: "enrollment message length",
            value: len,
        });
    }
    Ok(())
}

fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Result<M> {
    check_size(bytes.len())?;
    pb::decode(bytes)
}

fn encode<M: prost::Message>(m: &M, buf: &mut [u8]) -> Result<usize> {
    check_size(m.encoded_len())?;
    pb::encode(m, buf)
}

fn id(v: Option<Vec<u8>>) -> Result<EnrollId> {
    let v = req(v, "id")?;
    EnrollId::try_from(&v[..]).map_err(|_| WireError::BadLength {
        field: "id",
        value: v.len(),
    })
}

macro_rules! codec {
    ($t:ty) => {
        impl $t {
            /// Length of the encoded message.
            pub fn buffer_len(&self) -> Result<usize> {
                Ok(prost::Message::encoded_len(&self.raw()?))
            }

            /// Encode into `buf[..buffer_len()]`; returns the length.
            pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
                encode(&self.raw()?, buf)
            }

            /// The encoded message.
            pub fn to_vec(&self) -> Result<Vec<u8>> {
                let raw = self.raw()?;
                check_size(prost::Message::encoded_len(&raw))?;
                Ok(prost::Message::encode_to_vec(&raw))
            }
        }
    };
}

impl EnrollReq {
    /// Decode a request; its id must be 8 bytes (the prototype checks this one too).
    pub fn parse(bytes: &[u8]) -> Result<EnrollReq> {
        let m: raw::EnrollReqMsg = decode(bytes)?;
        Ok(EnrollReq { id: id(m.id)? })
    }

    fn raw(&self) -> Result<raw::EnrollReqMsg> {
        Ok(raw::EnrollReqMsg {
            id: Some(self.id.to_vec()),
        })
    }
}

impl EnrollResp {
    /// Decode a response. Refused besides malformed protobuf and missing fields: an id not
    /// 8 bytes long (the prototype copies 8 bytes whatever the length), an accepting response
    /// without a configuration (the prototype would dereference nothing), any refusal in the
    /// configuration. A refusing response's configuration, if any, is ignored as there.
    pub fn parse(bytes: &[u8]) -> Result<EnrollResp> {
        let m: raw::EnrollRespMsg = decode(bytes)?;
        let response = req(m.response, "response")?;
        let conf = if response >= 0 {
            Some(IpcpConfig::from_raw(req(m.conf, "conf")?)?)
        } else {
            None
        };
        Ok(EnrollResp {
            id: id(m.id)?,
            t_sec: req(m.t_sec, "t_sec")?,
            t_nsec: req(m.t_nsec, "t_nsec")?,
            response,
            conf,
        })
    }

    fn raw(&self) -> Result<raw::EnrollRespMsg> {
        let conf = match (&self.conf, self.response >= 0) {
            (Some(c), true) => Some(c.to_raw()?),
            (None, false) => None,
            (None, true) => return Err(WireError::MissingField("conf")),
            (Some(_), false) => {
                return Err(WireError::BadValue {
                    field: "conf with a refusing response",
                    value: self.response as u64,
                })
            }
        };
        Ok(raw::EnrollRespMsg {
            id: Some(self.id.to_vec()),
            t_sec: Some(self.t_sec),
            t_nsec: Some(self.t_nsec),
            response: Some(self.response),
            conf,
        })
    }
}

impl EnrollAck {
    /// Decode an acknowledgement; its id must be 8 bytes.
    pub fn parse(bytes: &[u8]) -> Result<EnrollAck> {
        let m: raw::EnrollAckMsg = decode(bytes)?;
        Ok(EnrollAck {
            id: id(m.id)?,
            result: req(m.result, "result")?,
        })
    }

    fn raw(&self) -> Result<raw::EnrollAckMsg> {
        Ok(raw::EnrollAckMsg {
            id: Some(self.id.to_vec()),
            result: Some(self.result),
        })
    }
}

codec!(EnrollReq);
codec!(EnrollResp);
codec!(EnrollAck);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::wire::ipcp_config::{DirConfig, IpcpKind, LayerInfo, UniConfig};
    use crate::wire::testing::hex;
    use crate::HashAlgo;
    use proptest::prelude::*;

    const ID: EnrollId = [1, 2, 3, 4, 5, 6, 7, 8];
    // 0a 08 <id> | 10 80 f2 d6 ca 06 (t_sec 1767225600) | 18 80 ca b5 ee 01 (t_nsec 5e8)
    const RESP_HEAD: &str = "0a 08 0102030405060708 10 80f2d6ca06 18 80cab5ee01";

    fn check<T: PartialEq + core::fmt::Debug>(
        v: &T,
        bytes: &[u8],
        to_vec: impl Fn(&T) -> Result<Vec<u8>>,
        parse: impl Fn(&[u8]) -> Result<T>,
    ) {
        assert_eq!(to_vec(v).unwrap(), bytes, "emit");
        assert_eq!(parse(bytes).as_ref(), Ok(v), "parse");
        for n in 0..bytes.len() {
            assert!(parse(&bytes[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn request() {
        // 0a 08 <id>
        let r = EnrollReq { id: ID };
        check(
            &r,
            &hex("0a 08 0102030405060708"),
            EnrollReq::to_vec,
            EnrollReq::parse,
        );
    }

    #[test]
    fn response_unicast_default() {
        // | 20 00 (response 0) | 2a 42 conf {
        //     0a 09 layer_info { 0a 05 "layer" 10 01 (SHA3-256) } 10 01 (unicast)
        //     1a 33 unicast {
        //       0a 14 dt { 08 04 10 08 18 3c 22 0c routing { 08 00 12 08 ls {
        //                  08 00 10 04 18 0f 20 3c } } }
        //       12 17 dir { 08 00 12 13 dht { 08 03 10 08 18 80 a3 05 (86400)
        //                   20 84 07 (900) 28 84 07 30 84 86 88 08 (peer 0x01020304) } }
        //       18 00 (flat random) 20 01 (mb-ecn) } }
        let bytes = hex(&format!(
            "{RESP_HEAD} 20 00 2a 42 0a 09 0a 05 6c61796572 10 01 10 01 1a 33 \
             0a 14 08 04 10 08 18 3c 22 0c 08 00 12 08 08 00 10 04 18 0f 20 3c \
             12 17 08 00 12 13 08 03 10 08 18 80a305 20 8407 28 8407 30 84868808 \
             18 00 20 01"
        ));
        let mut uni = UniConfig::default();
        let DirConfig::Dht(dht) = &mut uni.dir;
        dht.peer = 0x0102_0304;
        let r = EnrollResp {
            id: ID,
            t_sec: 1_767_225_600,
            t_nsec: 500_000_000,
            response: 0,
            conf: Some(IpcpConfig {
                layer_info: LayerInfo {
                    name: "layer".into(),
                    dir_hash_algo: HashAlgo::Sha3_256,
                },
                kind: IpcpKind::Unicast(uni),
            }),
        };
        check(&r, &bytes, EnrollResp::to_vec, EnrollResp::parse);
    }

    #[test]
    fn response_broadcast() {
        // | 20 00 | 2a 0d conf { layer_info 10 02 (broadcast) }
        let bytes = hex(&format!(
            "{RESP_HEAD} 20 00 2a 0d 0a 09 0a 05 6c61796572 10 01 10 02"
        ));
        let r = EnrollResp {
            id: ID,
            t_sec: 1_767_225_600,
            t_nsec: 500_000_000,
            response: 0,
            conf: Some(IpcpConfig {
                layer_info: LayerInfo {
                    name: "layer".into(),
                    dir_hash_algo: HashAlgo::Sha3_256,
                },
                kind: IpcpKind::Broadcast,
            }),
        };
        check(&r, &bytes, EnrollResp::to_vec, EnrollResp::parse);
    }

    #[test]
    fn response_refused() {
        // | 20 f3 ff ff ff ff ff ff ff ff 01 (response -13, ten-byte varint), no conf
        let bytes = hex(&format!("{RESP_HEAD} 20 f3ffffffffffffffff01"));
        let r = EnrollResp {
            id: ID,
            t_sec: 1_767_225_600,
            t_nsec: 500_000_000,
            response: -13,
            conf: None,
        };
        check(&r, &bytes, EnrollResp::to_vec, EnrollResp::parse);
        // Inconsistent values do not encode.
        let bad = EnrollResp {
            response: 0,
            ..r.clone()
        };
        assert_eq!(bad.to_vec(), Err(WireError::MissingField("conf")));
    }

    #[test]
    fn ack() {
        // 0a 08 <id> 10 00 (result 0); result -100: 10 9c ff ff ff ff ff ff ff ff 01
        let a = EnrollAck { id: ID, result: 0 };
        check(
            &a,
            &hex("0a 08 0102030405060708 10 00"),
            EnrollAck::to_vec,
            EnrollAck::parse,
        );
        let a = EnrollAck {
            id: ID,
            result: ENROLL_FAILED,
        };
        check(
            &a,
            &hex("0a 08 0102030405060708 10 9cffffffffffffffff01"),
            EnrollAck::to_vec,
            EnrollAck::parse,
        );
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            EnrollReq::parse(&hex("0a 07 01020304050607")),
            Err(WireError::BadLength { .. })
        ));
        assert_eq!(EnrollReq::parse(&[]), Err(WireError::MissingField("id")));
        assert_eq!(
            EnrollAck::parse(&hex("0a 08 0102030405060708")),
            Err(WireError::MissingField("result"))
        );
        assert_eq!(
            EnrollResp::parse(&hex(&format!("{RESP_HEAD} 20 00"))),
            Err(WireError::MissingField("conf"))
        );
        assert!(matches!(
            EnrollReq::parse(&vec![0u8; ENROLL_BUF_LEN + 1]),
            Err(WireError::BadLength { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(id: EnrollId, t_sec: i64, t_nsec: i32, response: i32, result: i32,
                      conf in crate::wire::ipcp_config::tests::config()) {
            let r = EnrollReq { id };
            prop_assert_eq!(EnrollReq::parse(&r.to_vec().unwrap()), Ok(r));
            let a = EnrollAck { id, result };
            prop_assert_eq!(EnrollAck::parse(&a.to_vec().unwrap()), Ok(a));
            let conf = (response >= 0).then_some(conf);
            let r = EnrollResp { id, t_sec, t_nsec, response, conf };
            let bytes = r.to_vec().unwrap();
            prop_assert_eq!(bytes.len(), r.buffer_len().unwrap());
            prop_assert_eq!(EnrollResp::parse(&bytes), Ok(r));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            if let Ok(m) = EnrollReq::parse(&bytes) {
                prop_assert_eq!(EnrollReq::parse(&m.to_vec().unwrap()), Ok(m));
            }
            if let Ok(m) = EnrollAck::parse(&bytes) {
                prop_assert_eq!(EnrollAck::parse(&m.to_vec().unwrap()), Ok(m));
            }
            if let Ok(m) = EnrollResp::parse(&bytes) {
                prop_assert_eq!(EnrollResp::parse(&m.to_vec().unwrap()), Ok(m));
            }
        }
    }
}
