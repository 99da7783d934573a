//! Any bytes must decode to an FRCT header and payload, or (when shorter than the header) to
//! an error, never a panic; every bit of the header survives a decode and re-encode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use o7s_proto::wire::frct::{FrctPacket, FrctRepr, HEADER_LEN, RWE_MASK};
use o7s_proto::wire::WireError;

fuzz_target!(|data: &[u8]| {
    let p = match FrctPacket::new_checked(data) {
        Ok(p) => p,
        Err(e) => {
            assert!(data.len() < HEADER_LEN);
            assert_eq!(
                e,
                WireError::Truncated {
                    need: HEADER_LEN,
                    have: data.len()
                }
            );
            return;
        }
    };
    let r = FrctRepr::parse(&p).expect("a checked packet parses");
    assert!(r.rwe <= RWE_MASK);
    assert_eq!(r.flags, p.flags());
    assert_eq!((r.rwe, r.seqno, r.ackno), (p.rwe(), p.seqno(), p.ackno()));
    assert_eq!(p.payload(), &data[HEADER_LEN..]);

    let mut buf = vec![0u8; data.len()];
    assert_eq!(r.emit(&mut buf), Ok(HEADER_LEN));
    buf[HEADER_LEN..].copy_from_slice(p.payload());
    assert_eq!(buf, data, "the header round-trips bit for bit");
    let p2 = FrctPacket::new_checked(&buf[..]).expect("re-emitted packet checks");
    assert_eq!(FrctRepr::parse(&p2), Ok(r));

    // Setters leave the other fields alone.
    let mut q = FrctPacket::new_unchecked(&mut buf[..]);
    q.set_rwe(!r.rwe);
    assert_eq!(q.flags(), r.flags);
    assert_eq!(q.rwe(), !r.rwe & RWE_MASK);
    assert_eq!((q.seqno(), q.ackno()), (r.seqno, r.ackno));
});
