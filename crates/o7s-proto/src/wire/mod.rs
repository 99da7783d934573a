//! Wire formats: the bytes o7s puts on a link, one file per header or message family.
//!
//! This room turns bytes into typed values and back, nothing else. Each format has a
//! zero-copy view (`…Frame<T>` / `…Packet<T>` over any `T: AsRef<[u8]>`) whose private
//! `field` module names the byte ranges, a `check_len()` that every checked constructor
//! runs before an accessor can touch the buffer, and a `…Repr` with `parse` (typed
//! [`WireError`] on truncation, unknown codes and lengths that do not fit) and `emit` (into
//! a caller's `&mut [u8]` of at least `buffer_len()` bytes). A decoder never panics and never
//! trusts a length field. The layouts are those the Ouroboros prototype emits on x86-64 and are
//! tabled, with test vectors, in `docs/wire.md`.
//!
//! It may not touch sockets, clocks, threads, flow tables or any policy beyond a layout's own
//! limits: which ethertype a layer listens on, which endpoint ids are in use or what to answer
//! a flow request are the IPCP's business.
//!
//! - [`dns`]: DNS queries and dynamic updates (RFC 1035, RFC 2136), for the udp layers' DNS
//!   directory.
//! - [`eth`]: the Ethernet II (eth-dix) and 802.3 + LLC (eth-llc) frame headers.
//! - [`eth_mgmt`]: the management messages of both Ethernet shims (flow request / reply,
//!   name query request / reply).
//! - [`udp`]: the UDP shim's 4-byte endpoint id header and its management messages.
//!
//! The unicast layer (tabled in `docs/wire-unicast.md`):
//!
//! - [`dt`]: the data transfer PCI in front of every packet a unicast IPCP forwards.
//! - [`fa`]: the flow allocator's messages (flow request, reply, update) on endpoint 0.
//! - [`lsu`]: link-state updates, flooded over management flows.
//! - [`dht`]: the directory's Kademlia messages (protobuf) on endpoint 1.
//! - [`enroll`]: enrollment request, response and ack (protobuf); the response carries the
//!   layer configuration of [`ipcp_config`].
//! - [`cep`]: the connection establishment message exchanged on every new connection of a
//!   component (protobuf).

pub mod cep;
pub mod dht;
pub mod dns;
pub mod dt;
pub mod enroll;
pub mod eth;
pub mod eth_mgmt;
pub mod fa;
pub mod frct;
pub mod ipcp_config;
pub mod lsu;
mod pb;
pub mod udp;

/// Why bytes did not decode, or a value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer ends before the header, message or announced length does.
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    /// A message code this format does not define.
    #[error("unknown message code {0}")]
    UnknownCode(u8),
    /// A length (field or whole message) outside what the format allows.
    #[error("bad {field}: {value}")]
    BadLength { field: &'static str, value: usize },
    /// An ethertype below 0x0600 (that is an 802.3 length) or the reserved 0xFFFF.
    #[error("bad ethertype {0:#06x} (must be 0x0600..=0xFFFE)")]
    BadEthertype(u16),
    /// A management parser was given a datagram for a data endpoint.
    #[error("endpoint id {0} is not the management endpoint 0")]
    NotManagement(u32),
    /// A DNS name that breaks the rules: label too long or of an unknown type, name over 255
    /// bytes, a compression pointer that does not point backwards.
    #[error("bad name at byte {at}: {why}")]
    BadName { at: usize, why: &'static str },
    /// `emit` was given a buffer smaller than `buffer_len()`.
    #[error("buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall { need: usize, have: usize },
    /// A value the format does not define or cannot carry: an address wider than the
    /// layer's address size, an unknown policy or type number, the invalid address 0.
    #[error("bad {field}: {value}")]
    BadValue { field: &'static str, value: u64 },
    /// A protobuf message lacks a field the prototype's schema marks `required` (or that its
    /// code or type makes necessary).
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// Bytes that are not a protobuf encoding of the expected message: a varint or length
    /// running past the end, a wire type that does not match the field, a string that is
    /// not UTF-8.
    #[error("malformed protobuf message")]
    Protobuf,
}

/// Result of the wire codecs.
pub type Result<T> = core::result::Result<T, WireError>;

/// Byte-range helpers shared by the views. Callers index only after `check_len()`.
pub(crate) mod bytes {
    use core::ops::Range;

    pub type Field = Range<usize>;

    pub fn get_u16(b: &[u8], f: Field) -> u16 {
        let mut a = [0u8; 2];
        a.copy_from_slice(&b[f]);
        u16::from_be_bytes(a)
    }
    pub fn get_u32(b: &[u8], f: Field) -> u32 {
        let mut a = [0u8; 4];
        a.copy_from_slice(&b[f]);
        u32::from_be_bytes(a)
    }
    pub fn get_u64(b: &[u8], f: Field) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[f]);
        u64::from_be_bytes(a)
    }
    pub fn set_u16(b: &mut [u8], f: Field, v: u16) {
        b[f].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_u32(b: &mut [u8], f: Field, v: u32) {
        b[f].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_u64(b: &mut [u8], f: Field, v: u64) {
        b[f].copy_from_slice(&v.to_be_bytes());
    }

    /// `Err(Truncated)` unless `have >= need`.
    pub fn need(need: usize, have: usize) -> super::Result<()> {
        if have < need {
            Err(super::WireError::Truncated { need, have })
        } else {
            Ok(())
        }
    }

    /// `Err(BufferTooSmall)` unless `have >= need`.
    pub fn room(need: usize, have: usize) -> super::Result<()> {
        if have < need {
            Err(super::WireError::BufferTooSmall { need, have })
        } else {
            Ok(())
        }
    }
}

/// Strategies and helpers shared by the tests of this room.
#[cfg(test)]
pub(crate) mod testing {
    use crate::{NameHash, QosSpec};
    use proptest::prelude::*;

    /// A QoS spec with every field distinct, for the flow request vectors.
    pub const QOS: QosSpec = QosSpec {
        delay: 100,
        bandwidth: 1_000_000_000,
        availability: 3,
        loss: 5,
        ber: 7,
        in_order: 1,
        max_gap: 250,
        timeout: 120_000,
    };

    pub fn qos() -> impl Strategy<Value = QosSpec> {
        (
            any::<u32>(),
            any::<u64>(),
            any::<u8>(),
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(
                |(delay, bandwidth, availability, loss, ber, in_order, max_gap, timeout)| QosSpec {
                    delay,
                    bandwidth,
                    availability,
                    loss,
                    ber,
                    in_order,
                    max_gap,
                    timeout,
                },
            )
    }

    pub fn hash(len: usize) -> impl Strategy<Value = NameHash> {
        proptest::collection::vec(any::<u8>(), len).prop_map(NameHash)
    }

    /// Hex string to bytes, for test vectors written as in `docs/wire.md`.
    pub fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }
}
