//! Any bytes a local process sends to the IRMd, an IPCP to the IRMd, or the IRMd to a
//! process hosting IPCPs, must decode to a message or an error, never a panic; whatever
//! decodes must encode back to a decodable message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use o7s::ctrl::msg::{HostStart, IpcpFrame, IrmReq, IrmResp};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = postcard::from_bytes::<IrmReq>(data) {
        let again = postcard::to_stdvec(&m).expect("encode");
        assert_eq!(postcard::from_bytes::<IrmReq>(&again).ok(), Some(m));
    }
    if let Ok(m) = postcard::from_bytes::<IpcpFrame>(data) {
        let again = postcard::to_stdvec(&m).expect("encode");
        assert_eq!(postcard::from_bytes::<IpcpFrame>(&again).ok(), Some(m));
    }
    if let Ok(m) = postcard::from_bytes::<HostStart>(data) {
        let again = postcard::to_stdvec(&m).expect("encode");
        assert_eq!(postcard::from_bytes::<HostStart>(&again).ok(), Some(m));
    }
    let _ = postcard::from_bytes::<IrmResp>(data);
});
