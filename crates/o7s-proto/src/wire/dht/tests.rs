//! Test vectors (from protobuf-c) and round trips of the DHT messages.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::wire::testing::hex;
use crate::HashAlgo;
use proptest::prelude::*;

/// SHA3-256("oping").
const OPING: &str = "42dee3b0415b4f690fd91cbd99876f1e9bd8d9745ef7fa32b142773af0349d54";
const AA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const BB: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

// Protobuf key bytes: (field << 3) | wire type; 0 varint, 2 length-delimited.
// 08 = code, 12 = src, 1a = store, 22 = find, 2a = node, 32 = val.
// src: 12 27 { 0a 20 <id: 32 x aa> 10 84 86 88 08 } — addr 0x01020304 as a varint.
fn src() -> String {
    format!("12 27 0a 20 {AA} 10 84868808")
}

// find: 22 2c { 08 <cookie 0x0123456789abcdef: ef 9b af cd f8 ac d1 91 01> 12 20 <key> }
fn find() -> String {
    format!("22 2c 08 ef9bafcdf8acd19101 12 20 {OPING}")
}

fn me() -> Contact {
    Contact {
        id: vec![0xaa; 32],
        addr: 0x0102_0304,
    }
}

fn oping() -> NameHash {
    HashAlgo::Sha3_256.hash("oping")
}

const COOKIE: u64 = 0x0123_4567_89ab_cdef;

fn check(msg: &DhtMsg, bytes: &[u8]) {
    assert_eq!(msg.to_vec(), bytes, "emit");
    let mut buf = vec![0u8; msg.buffer_len()];
    assert_eq!(msg.emit(&mut buf), Ok(bytes.len()));
    assert_eq!(DhtMsg::parse(bytes, 32).as_ref(), Ok(msg), "parse");
    // Any cut is an error, never a panic.
    for n in 0..bytes.len() {
        assert!(DhtMsg::parse(&bytes[..n], 32).is_err(), "cut at {n}");
    }
}

#[test]
fn store() {
    // 08 00 code 0 | src | 1a 32 { 0a 20 <key> 12 08 <00000000 05060708>
    // 18 80 f2 d6 ca 06 (exp 1767225600) }
    let bytes = hex(&format!(
        "08 00 {} 1a 32 0a 20 {OPING} 12 08 0000000005060708 18 80f2d6ca06",
        src()
    ));
    let msg = DhtMsg {
        src: me(),
        body: DhtBody::Store {
            key: oping(),
            val: addr_value(0x0506_0708).to_vec(),
            exp: 1_767_225_600,
        },
    };
    check(&msg, &bytes);
    assert_eq!(value_addr(&addr_value(7)), Some(7));
    assert_eq!(value_addr(&[1, 2]), None);
}

#[test]
fn find_reqs() {
    let bytes = hex(&format!("08 01 {} {}", src(), find()));
    let msg = DhtMsg {
        src: me(),
        body: DhtBody::FindNodeReq {
            cookie: COOKIE,
            key: oping(),
        },
    };
    check(&msg, &bytes);
    let bytes = hex(&format!("08 03 {} {}", src(), find()));
    let msg = DhtMsg {
        src: me(),
        body: DhtBody::FindValueReq {
            cookie: COOKIE,
            key: oping(),
        },
    };
    check(&msg, &bytes);
}

#[test]
fn find_node_rsp() {
    // node: 2a 55 { cookie, key, 1a 27 { 0a 20 <32 x bb> 10 88 8e 98 28 } }
    let bytes = hex(&format!(
        "08 02 {} 2a 55 08 ef9bafcdf8acd19101 12 20 {OPING} 1a 27 0a 20 {BB} 10 888e9828",
        src()
    ));
    let msg = DhtMsg {
        src: me(),
        body: DhtBody::FindNodeRsp {
            cookie: COOKIE,
            key: oping(),
            contacts: vec![Contact {
                id: vec![0xbb; 32],
                addr: 0x0506_0708,
            }],
        },
    };
    check(&msg, &bytes);
}

#[test]
fn find_value_rsp() {
    // node without contacts: 2a 2c { cookie, key } | val: 32 0a { 0a 08 <value> }
    let bytes = hex(&format!(
        "08 04 {} 2a 2c 08 ef9bafcdf8acd19101 12 20 {OPING} 32 0a 0a 08 0000000005060708",
        src()
    ));
    let msg = DhtMsg {
        src: me(),
        body: DhtBody::FindValueRsp {
            cookie: COOKIE,
            key: oping(),
            contacts: vec![],
            values: vec![addr_value(0x0506_0708).to_vec()],
        },
    };
    check(&msg, &bytes);
    // No values: the val sub-message is still there, empty (32 00).
    let msg = DhtMsg {
        src: me(),
        body: DhtBody::FindValueRsp {
            cookie: COOKIE,
            key: oping(),
            contacts: vec![],
            values: vec![],
        },
    };
    assert!(msg.to_vec().ends_with(&[0x32, 0x00]));
    assert_eq!(DhtMsg::parse(&msg.to_vec(), 32), Ok(msg));
}

#[test]
fn refusals() {
    let ok = hex(&format!("08 01 {} {}", src(), find()));
    // Wrong hash length for this layer.
    assert!(matches!(
        DhtMsg::parse(&ok, 28),
        Err(WireError::BadLength { .. })
    ));
    // Missing find sub-message.
    let bytes = hex(&format!("08 01 {}", src()));
    assert_eq!(
        DhtMsg::parse(&bytes, 32),
        Err(WireError::MissingField("find"))
    );
    // Missing code, unknown code.
    assert_eq!(
        DhtMsg::parse(&hex(&src()), 32),
        Err(WireError::MissingField("code"))
    );
    let bytes = hex(&format!("08 05 {} {}", src(), find()));
    assert!(matches!(
        DhtMsg::parse(&bytes, 32),
        Err(WireError::BadValue { .. })
    ));
    // Sender address 0.
    let bytes = hex(&format!("08 01 12 24 0a 20 {AA} 10 00 {}", find()));
    assert!(matches!(
        DhtMsg::parse(&bytes, 32),
        Err(WireError::BadValue { .. })
    ));
    // Wrong wire type for code.
    assert_eq!(DhtMsg::parse(&hex("0a 00"), 32), Err(WireError::Protobuf));
    // Store of an empty value.
    let bytes = hex(&format!("08 00 {} 1a 26 0a 20 {OPING} 12 00 18 01", src()));
    assert!(matches!(
        DhtMsg::parse(&bytes, 32),
        Err(WireError::BadLength { .. })
    ));
}

fn id(len: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), len)
}

fn msg(hl: usize) -> impl Strategy<Value = DhtMsg> {
    let contact = (id(hl), any::<u64>()).prop_map(|(id, addr)| Contact { id, addr });
    let contacts = proptest::collection::vec(contact, 0..4);
    let values = proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..4);
    (
        0u8..5,
        id(hl),
        1u64..,
        id(hl),
        any::<u64>(),
        contacts,
        values,
        proptest::collection::vec(any::<u8>(), 1..12),
        any::<u32>(),
    )
        .prop_map(
            |(code, sid, addr, key, cookie, contacts, values, val, exp)| {
                let key = NameHash(key);
                let body = match code {
                    0 => DhtBody::Store { key, val, exp },
                    1 => DhtBody::FindNodeReq { cookie, key },
                    2 => DhtBody::FindNodeRsp {
                        cookie,
                        key,
                        contacts,
                    },
                    3 => DhtBody::FindValueReq { cookie, key },
                    _ => DhtBody::FindValueRsp {
                        cookie,
                        key,
                        contacts,
                        values,
                    },
                };
                DhtMsg {
                    src: Contact { id: sid, addr },
                    body,
                }
            },
        )
}

proptest! {
    #[test]
    fn round_trip((hl, m) in prop::sample::select(vec![28usize, 32, 48, 64])
                      .prop_flat_map(|hl| (Just(hl), msg(hl)))) {
        let bytes = m.to_vec();
        prop_assert_eq!(bytes.len(), m.buffer_len());
        prop_assert_eq!(DhtMsg::parse(&bytes, hl), Ok(m));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                   hl in 0usize..40) {
        if let Ok(m) = DhtMsg::parse(&bytes, hl) {
            prop_assert_eq!(DhtMsg::parse(&m.to_vec(), hl), Ok(m));
        }
    }
}
