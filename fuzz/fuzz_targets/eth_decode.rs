//! Any bytes off an Ethernet link must decode to a frame or management message, or to an
//! error, never a panic; whatever decodes must emit back to bytes that decode equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use o7s_proto::wire::eth::{DixFrame, DixRepr, LlcFrame, LlcRepr};
use o7s_proto::wire::eth_mgmt::{Dix, Llc, MgmtLayout, MgmtPacket, MgmtRepr};

fn mgmt<L: MgmtLayout>(data: &[u8], hash_len: usize) {
    let Ok(p) = MgmtPacket::<_, L>::new_checked(data) else {
        return;
    };
    let Ok(r) = MgmtRepr::<L>::parse(&p, hash_len) else {
        return;
    };
    let mut buf = vec![0u8; r.buffer_len()];
    assert_eq!(r.emit(&mut buf), Ok(buf.len()));
    let p2 = MgmtPacket::<_, L>::new_checked(&buf[..]).expect("re-emitted message checks");
    assert_eq!(MgmtRepr::<L>::parse(&p2, hash_len), Ok(r));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = DixFrame::new_checked(data) {
        if let Ok(r) = DixRepr::parse(&f) {
            let mut buf = vec![0u8; r.buffer_len()];
            buf[r.header_len()..].copy_from_slice(f.payload());
            assert_eq!(r.emit(&mut buf), Ok(buf.len()));
            let f2 = DixFrame::new_checked(&buf[..]).expect("re-emitted frame checks");
            assert_eq!(DixRepr::parse(&f2), Ok(r));
            assert_eq!(f2.payload(), f.payload());
        }
    }
    if let Ok(f) = LlcFrame::new_checked(data) {
        if let Ok(r) = LlcRepr::parse(&f) {
            let mut buf = vec![0u8; r.buffer_len()];
            buf[r.header_len()..].copy_from_slice(f.payload());
            assert_eq!(r.emit(&mut buf), Ok(buf.len()));
            let f2 = LlcFrame::new_checked(&buf[..]).expect("re-emitted frame checks");
            assert_eq!(LlcRepr::parse(&f2), Ok(r));
            assert_eq!(f2.payload(), f.payload());
        }
    }
    // The first byte picks the hash length; SHA3-224/256/384/512 and odd ones alike.
    let (hash_len, rest) = match data.split_first() {
        Some((h, rest)) => (usize::from(*h % 72), rest),
        None => (32, data),
    };
    mgmt::<Dix>(rest, hash_len);
    mgmt::<Llc>(rest, hash_len);
});
