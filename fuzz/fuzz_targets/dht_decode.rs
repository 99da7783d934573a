//! Any bytes must decode to a DHT message, or to an error, never a panic; whatever decodes
//! must encode back to bytes that decode equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use o7s_proto::wire::dht::DhtMsg;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the layer's hash length (node ids and keys).
    let (hash_len, rest) = match data.split_first() {
        Some((h, rest)) => (usize::from(*h % 72), rest),
        None => (32, data),
    };
    let Ok(m) = DhtMsg::parse(rest, hash_len) else {
        return;
    };
    let bytes = m.to_vec();
    assert_eq!(bytes.len(), m.buffer_len());
    let mut buf = vec![0u8; bytes.len()];
    assert_eq!(m.emit(&mut buf), Ok(bytes.len()));
    assert_eq!(buf, bytes);
    assert_eq!(DhtMsg::parse(&bytes, hash_len), Ok(m));
});
