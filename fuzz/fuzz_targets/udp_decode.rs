//! Any datagram a UDP shim receives must decode to a data header or management message, or
//! to an error, never a panic; whatever decodes must emit back to bytes that decode equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use o7s_proto::wire::udp::{UdpMgmtPacket, UdpMgmtRepr, UdpPacket, UdpRepr, HASH_LEN};

fn mgmt(data: &[u8], hash_len: usize) {
    let Ok(p) = UdpMgmtPacket::new_checked(data) else {
        return;
    };
    let Ok(r) = UdpMgmtRepr::parse(&p, hash_len) else {
        return;
    };
    let mut buf = vec![0u8; r.buffer_len()];
    assert_eq!(r.emit(&mut buf), Ok(buf.len()));
    let p2 = UdpMgmtPacket::new_checked(&buf[..]).expect("re-emitted message checks");
    assert_eq!(UdpMgmtRepr::parse(&p2, hash_len), Ok(r));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = UdpPacket::new_checked(data) {
        if let Ok(r) = UdpRepr::parse(&p) {
            let mut buf = vec![0u8; r.buffer_len()];
            buf[r.header_len()..].copy_from_slice(p.payload());
            assert_eq!(r.emit(&mut buf), Ok(buf.len()));
            assert_eq!(buf, data);
        }
    }
    mgmt(data, HASH_LEN);
    if let Some((h, rest)) = data.split_first() {
        mgmt(rest, usize::from(*h % 72));
    }
});
