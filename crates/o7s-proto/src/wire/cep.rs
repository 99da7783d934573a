//! The connection establishment message (OCEP) that opens every connection between
//! components of two IPCPs of a layer.
//!
//! A component (data transfer, management, enrollment) allocates a flow to its peer over a
//! lower layer (or to the layer's name) and sends a `cep_msg` naming itself; the peer's
//! connection manager answers with its own component's message, or with an all-empty one
//! (empty names, zero numbers) when it has no component of that name. The initiator then
//! checks that protocol, version and syntax match. The prototype encodes the message with
//! protobuf-c from `src/lib/pb/cep.proto` (proto2); this module keeps its field numbers and
//! types:
//!
//! ```text
//! message fixed_conc_syntax_msg { repeated uint32 fids = 1; repeated uint32 lens = 2; }
//! message cep_msg {
//!     required string comp_name = 1;   required string protocol = 2;
//!     required int32  pref_version = 3; repeated int32 supp_version = 4;
//!     required int32  pref_syntax = 5;  repeated int32 supp_syntax = 6;
//!     optional fixed_conc_syntax_msg syntax_spec = 7;
//!     required uint64 address = 8;
//! }
//! ```
//!
//! The prototype sends neither the supported lists nor `syntax_spec`; they are decoded and
//! encoded all the same. It reads the message into a 128-byte buffer and refuses a component
//! name over 128 bytes, so both limits are refused here in both directions.
//!
//! ```
//! use o7s_proto::wire::cep::{consts, CepMsg, ConcSyntax};
//!
//! let msg = CepMsg::new(consts::DT_COMP, consts::DT_PROTO, 1, ConcSyntax::Fixed, 0x0102_0304);
//! let bytes = msg.to_vec().unwrap();
//! assert_eq!(CepMsg::parse(&bytes).unwrap(), msg);
//! ```

use super::pb::{self, req};
use super::{Result, WireError};

/// Component and protocol names of the prototype's unicast and broadcast IPCPs.
pub mod consts {
    /// The data transfer component (unicast and broadcast).
    pub const DT_COMP: &str = "Data Transfer";
    /// Its protocol in a unicast layer, version 1, fixed syntax. A broadcast IPCP sends an
    /// empty protocol, version 0, syntax GPB.
    pub const DT_PROTO: &str = "dtp";
    /// The management component: link-state routing.
    pub const MGMT_COMP: &str = "Management";
    /// Its protocol, version 1, syntax GPB.
    pub const LS_PROTO: &str = "LSP";
    /// The enrollment component.
    pub const ENROLL_COMP: &str = "Enrollment";
    /// Its protocol (Ouroboros enrollment protocol), version 1, syntax GPB.
    pub const ENROLL_PROTO: &str = "OEP";
    /// Longest component name or protocol the prototype takes (`OCEP_BUF_STRLEN`).
    pub const STRLEN: usize = 128;
    /// Size of the buffer the prototype reads the message into (`BUF_SIZE`).
    pub const BUF_SIZE: usize = 128;
    /// Milliseconds the prototype waits for the answer (`CONNMGR_RCV_TIMEOUT`).
    pub const RCV_TIMEOUT_MS: u32 = 1000;
}

/// How a component's messages are encoded (`enum proto_concrete_syntax`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(i32)]
pub enum ConcSyntax {
    /// Protobuf (`PROTO_GPB`).
    #[default]
    Gpb = 0,
    /// `PROTO_ASN_1`.
    Asn1 = 1,
    /// Fixed binary layout (`PROTO_FIXED`).
    Fixed = 2,
}

impl TryFrom<i32> for ConcSyntax {
    type Error = WireError;
    fn try_from(v: i32) -> Result<Self> {
        match v {
            0 => Ok(ConcSyntax::Gpb),
            1 => Ok(ConcSyntax::Asn1),
            2 => Ok(ConcSyntax::Fixed),
            other => Err(WireError::BadValue {
                field: "pref_syntax",
                value: other as u64,
            }),
        }
    }
}

/// The fields of a fixed syntax: ids and lengths (0 variable, -1 absent in the prototype's
/// `proto_field`; the wire type is unsigned).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FixedConcSyntax {
    pub fids: Vec<u32>,
    pub lens: Vec<u32>,
}

/// A connection establishment message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CepMsg {
    pub comp_name: String,
    pub protocol: String,
    pub pref_version: i32,
    pub supp_version: Vec<i32>,
    pub pref_syntax: ConcSyntax,
    pub supp_syntax: Vec<i32>,
    pub syntax_spec: Option<FixedConcSyntax>,
    /// The sender's address in the layer (0 for enrollment: the newcomer has none yet).
    pub address: u64,
}

mod raw {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FixedConcSyntaxMsg {
        #[prost(uint32, repeated, packed = "false", tag = "1")]
        pub fids: Vec<u32>,
        #[prost(uint32, repeated, packed = "false", tag = "2")]
        pub lens: Vec<u32>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CepMsg {
        #[prost(string, optional, tag = "1")]
        pub comp_name: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub protocol: Option<String>,
        #[prost(int32, optional, tag = "3")]
        pub pref_version: Option<i32>,
        #[prost(int32, repeated, packed = "false", tag = "4")]
        pub supp_version: Vec<i32>,
        #[prost(int32, optional, tag = "5")]
        pub pref_syntax: Option<i32>,
        #[prost(int32, repeated, packed = "false", tag = "6")]
        pub supp_syntax: Vec<i32>,
        #[prost(message, optional, tag = "7")]
        pub syntax_spec: Option<FixedConcSyntaxMsg>,
        #[prost(uint64, optional, tag = "8")]
        pub address: Option<u64>,
    }
}

fn check_str(s: &str, field: &'static str) -> Result<()> {
    if s.len() > consts::STRLEN {
        return Err(WireError::BadLength {
            field,
            value: s.len(),
        });
    }
    Ok(())
}

fn check_size(len: usize) -> Result<()> {
    if len > consts::BUF_SIZE {
        return Err(WireError::BadLength {
            field: "cep message length",
            value: len,
        });
    }
    Ok(())
}

impl CepMsg {
    /// The message a component sends: name, protocol, version, syntax, address; no lists.
    pub fn new(
        comp_name: &str,
        protocol: &str,
        pref_version: i32,
        pref_syntax: ConcSyntax,
        address: u64,
    ) -> CepMsg {
        CepMsg {
            comp_name: comp_name.to_string(),
            protocol: protocol.to_string(),
            pref_version,
            pref_syntax,
            address,
            ..CepMsg::default()
        }
    }

    /// Decode a message. Refused: malformed protobuf or non-UTF-8 strings, a missing required
    /// field, an unknown preferred syntax, a name or protocol over 128 bytes, a message over
    /// 128 bytes.
    pub fn parse(bytes: &[u8]) -> Result<CepMsg> {
        check_size(bytes.len())?;
        let m: raw::CepMsg = pb::decode(bytes)?;
        let comp_name = req(m.comp_name, "comp_name")?;
        let protocol = req(m.protocol, "protocol")?;
        check_str(&comp_name, "comp_name")?;
        check_str(&protocol, "protocol")?;
        Ok(CepMsg {
            comp_name,
            protocol,
            pref_version: req(m.pref_version, "pref_version")?,
            supp_version: m.supp_version,
            pref_syntax: ConcSyntax::try_from(req(m.pref_syntax, "pref_syntax")?)?,
            supp_syntax: m.supp_syntax,
            syntax_spec: m.syntax_spec.map(|s| FixedConcSyntax {
                fids: s.fids,
                lens: s.lens,
            }),
            address: req(m.address, "address")?,
        })
    }

    fn raw(&self) -> raw::CepMsg {
        raw::CepMsg {
            comp_name: Some(self.comp_name.clone()),
            protocol: Some(self.protocol.clone()),
            pref_version: Some(self.pref_version),
            supp_version: self.supp_version.clone(),
            pref_syntax: Some(self.pref_syntax as i32),
            supp_syntax: self.supp_syntax.clone(),
            syntax_spec: self.syntax_spec.as_ref().map(|s| raw::FixedConcSyntaxMsg {
                fids: s.fids.clone(),
                lens: s.lens.clone(),
            }),
            address: Some(self.address),
        }
    }

    /// Length of the encoded message.
    pub fn buffer_len(&self) -> usize {
        prost::Message::encoded_len(&self.raw())
    }

    /// Encode into `buf[..buffer_len()]`; returns the length. Names over 128 bytes and
    /// messages over 128 bytes are refused.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        check_str(&self.comp_name, "comp_name")?;
        check_str(&self.protocol, "protocol")?;
        let raw = self.raw();
        check_size(prost::Message::encoded_len(&raw))?;
        pb::encode(&raw, buf)
    }

    /// The encoded message.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut buf)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::wire::testing::hex;
    use proptest::prelude::*;

    fn check(msg: &CepMsg, bytes: &[u8]) {
        assert_eq!(msg.to_vec().unwrap(), bytes, "emit");
        assert_eq!(CepMsg::parse(bytes).as_ref(), Ok(msg), "parse");
        for n in 0..bytes.len() {
            assert!(CepMsg::parse(&bytes[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn data_transfer() {
        // 0a 0d "Data Transfer" | 12 03 "dtp" | 18 01 (version 1) | 28 02 (syntax fixed)
        // | 40 84 86 88 08 (address 0x01020304 as a varint)
        let bytes = hex("0a 0d 44617461205472616e73666572 12 03 647470 18 01 28 02 40 84868808");
        let msg = CepMsg::new(
            consts::DT_COMP,
            consts::DT_PROTO,
            1,
            ConcSyntax::Fixed,
            0x0102_0304,
        );
        check(&msg, &bytes);
    }

    #[test]
    fn enrollment() {
        // 0a 0a "Enrollment" | 12 03 "OEP" | 18 01 | 28 00 (GPB) | 40 00 (address 0)
        let bytes = hex("0a 0a 456e726f6c6c6d656e74 12 03 4f4550 18 01 28 00 40 00");
        let msg = CepMsg::new(
            consts::ENROLL_COMP,
            consts::ENROLL_PROTO,
            1,
            ConcSyntax::Gpb,
            0,
        );
        check(&msg, &bytes);
    }

    #[test]
    fn refusal_for_unknown_component() {
        // Every required field present, all empty or zero.
        let bytes = hex("0a 00 12 00 18 00 28 00 40 00");
        check(&CepMsg::default(), &bytes);
    }

    #[test]
    fn limits() {
        let long = CepMsg::new(&"x".repeat(129), "p", 1, ConcSyntax::Gpb, 1);
        assert!(matches!(long.to_vec(), Err(WireError::BadLength { .. })));
        let big = CepMsg::new(&"x".repeat(120), "p", 1, ConcSyntax::Gpb, 1);
        assert!(matches!(big.to_vec(), Err(WireError::BadLength { .. })));
        assert_eq!(
            CepMsg::parse(&hex("0a 00 12 00 18 00 28 00")),
            Err(WireError::MissingField("address"))
        );
        assert!(matches!(
            CepMsg::parse(&hex("0a 00 12 00 18 00 28 07 40 00")),
            Err(WireError::BadValue { .. })
        ));
        assert_eq!(
            CepMsg::parse(&hex("0a 01 ff 12 00 18 00 28 00 40 00")),
            Err(WireError::Protobuf)
        );
    }

    fn name() -> impl Strategy<Value = String> {
        "[ -~]{0,24}"
    }

    proptest! {
        #[test]
        fn round_trip(comp_name in name(), protocol in name(), pref_version: i32,
                      supp_version in proptest::collection::vec(any::<i32>(), 0..3),
                      syntax in 0i32..3,
                      supp_syntax in proptest::collection::vec(0i32..3, 0..3),
                      spec in proptest::option::of((proptest::collection::vec(any::<u32>(), 0..3),
                                                    proptest::collection::vec(any::<u32>(), 0..3))),
                      address: u64) {
            let m = CepMsg {
                comp_name, protocol, pref_version, supp_version,
                pref_syntax: ConcSyntax::try_from(syntax).unwrap(), supp_syntax,
                syntax_spec: spec.map(|(fids, lens)| FixedConcSyntax { fids, lens }),
                address,
            };
            match m.to_vec() {
                Ok(bytes) => prop_assert_eq!(CepMsg::parse(&bytes), Ok(m)),
                Err(e) => {
                    let too_long = matches!(e, WireError::BadLength { .. }) && m.buffer_len() > 128;
                    prop_assert!(too_long, "{:?}", e);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..140)) {
            if let Ok(m) = CepMsg::parse(&bytes) {
                // Packed lists re-encode unpacked, so the message may grow past the limit.
                match m.to_vec() {
                    Ok(again) => prop_assert_eq!(CepMsg::parse(&again), Ok(m)),
                    Err(e) => {
                        let too_long = matches!(e, WireError::BadLength { .. });
                        prop_assert!(too_long, "{:?}", e);
                    }
                }
            }
        }
    }
}
