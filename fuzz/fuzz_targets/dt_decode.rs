//! Any bytes must decode to a data transfer PCI, or to an error, never a panic, for every
//! address size; what decodes re-encodes to the same header bytes, and the TTL step of a
//! forwarder never wraps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use o7s_proto::wire::dt::{DtPacket, DtParams, DtRepr};

fuzz_target!(|data: &[u8]| {
    for addr_size in [1u8, 2, 4, 8] {
        let params = DtParams::new(addr_size, 8).expect("valid parameters");
        let Ok(p) = DtPacket::new_checked(data, params) else {
            assert!(data.len() < params.header_len());
            continue;
        };
        let Ok(r) = DtRepr::parse(&p) else {
            continue;
        };
        let hl = params.header_len();
        let mut buf = data.to_vec();
        assert_eq!(r.emit(params, &mut buf), Ok(hl));
        assert_eq!(&buf[..], data, "re-emitted header differs");
        let mut q = DtPacket::new_checked(&mut buf[..], params).expect("checks again");
        match q.decrement_ttl() {
            Some(ttl) => assert_eq!(ttl + 1, r.ttl),
            None => assert!(r.ttl <= 1),
        }
        assert_eq!(q.payload(), &data[hl..]);
    }
});
