//! Glue between `prost` and the protobuf messages of the unicast layer ([`super::dht`],
//! [`super::enroll`], [`super::cep`]).
//!
//! The prototype encodes these with protobuf-c from proto2 schemas. Each module mirrors its
//! schema with private `prost` structs that keep the prototype's field numbers and types; a
//! proto2 `required` scalar is declared `optional` there, so that decoding tells whether it
//! was present (protobuf-c refuses a message without it) while encoding, which always has
//! `Some`, writes it exactly as protobuf-c does: always, even when zero. Fields are declared
//! in field-number order, the order in which protobuf-c writes them. The public types are
//! plain Rust values; conversion checks presence and ranges.

use super::{Result, WireError};
use prost::Message;

/// Decode `bytes` as message `M`; any protobuf error becomes [`WireError::Protobuf`].
pub fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|_| WireError::Protobuf)
}

/// Encode `msg` into `buf[..encoded_len]`, returning the length.
pub fn encode<M: Message>(msg: &M, buf: &mut [u8]) -> Result<usize> {
    let len = msg.encoded_len();
    super::bytes::room(len, buf.len())?;
    let mut out = &mut buf[..len];
    msg.encode(&mut out)
        .map_err(|_| WireError::BufferTooSmall {
            need: len,
            have: len,
        })?;
    Ok(len)
}

/// The value of a required field, or [`WireError::MissingField`].
pub fn req<T>(v: Option<T>, field: &'static str) -> Result<T> {
    v.ok_or(WireError::MissingField(field))
}

/// A required `uint32` that must fit in a `u8` (sizes, TTLs).
pub fn u8_of(v: Option<u32>, field: &'static str) -> Result<u8> {
    let v = req(v, field)?;
    u8::try_from(v).map_err(|_| WireError::BadValue {
        field,
        value: u64::from(v),
    })
}
