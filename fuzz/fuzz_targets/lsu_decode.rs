//! Any bytes must decode to a link-state update (exactly 24 bytes) or to an error, never a
//! panic; an update re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use o7s_proto::wire::lsu::{LsuPacket, LsuRepr, LSU_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = LsuPacket::new_checked(data) else {
        assert_ne!(data.len(), LSU_LEN);
        return;
    };
    let r = LsuRepr::parse(&p).expect("a checked update parses");
    let mut buf = [0u8; LSU_LEN];
    assert_eq!(r.emit(&mut buf), Ok(LSU_LEN));
    assert_eq!(&buf[..], data);
});
