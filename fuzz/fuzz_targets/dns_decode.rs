//! Any datagram a DNS server might send must decode to a message or to an error, never a
//! panic; whatever decodes must emit back to bytes that decode equal, and the answer check
//! must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use o7s_proto::wire::dns::{DnsName, DnsRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = DnsRepr::parse(data) else {
        return;
    };
    let bytes = m.to_bytes().expect("a decoded message emits");
    assert_eq!(bytes.len(), m.buffer_len());
    assert_eq!(DnsRepr::parse(&bytes), Ok(m.clone()));
    let name = m
        .questions
        .first()
        .map_or_else(DnsName::root, |q| q.name.clone());
    let q = DnsRepr::query(m.id, name, 1);
    let _ = m.answers_to(&q);
    for r in m.answers.iter().chain(&m.authority) {
        let _ = (r.ip(), r.name.to_string());
    }
});
