//! Any bytes must decode to a flow allocator message, or to an error, never a panic; whatever
//! decodes must emit back to bytes that decode equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use o7s_proto::wire::fa::{FaPacket, FaRepr};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the hash length; SHA3-224/256/384/512 and odd ones alike.
    let (hash_len, rest) = match data.split_first() {
        Some((h, rest)) => (usize::from(*h % 72), rest),
        None => (32, data),
    };
    let Ok(p) = FaPacket::new_checked(rest) else {
        return;
    };
    let Ok(r) = FaRepr::parse(&p, hash_len) else {
        return;
    };
    let mut buf = vec![0u8; r.buffer_len()];
    assert_eq!(r.emit(&mut buf), Ok(buf.len()));
    let p2 = FaPacket::new_checked(&buf[..]).expect("re-emitted message checks");
    assert_eq!(FaRepr::parse(&p2, hash_len), Ok(r));
});
