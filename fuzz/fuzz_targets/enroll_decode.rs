//! Any bytes must decode to an enrollment message (request, response with its layer
//! configuration, ack) or a connection establishment message, or to an error, never a panic;
//! whatever decodes must encode back to bytes that decode equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use o7s_proto::wire::cep::CepMsg;
use o7s_proto::wire::enroll::{EnrollAck, EnrollReq, EnrollResp};
use o7s_proto::wire::WireError;

fn again<T: PartialEq + core::fmt::Debug>(
    m: T,
    to_vec: impl Fn(&T) -> Result<Vec<u8>, WireError>,
    parse: impl Fn(&[u8]) -> Result<T, WireError>,
) {
    match to_vec(&m) {
        Ok(bytes) => assert_eq!(parse(&bytes), Ok(m)),
        // Packed lists re-encode unpacked and may outgrow the size limit; nothing else fails.
        Err(e) => assert!(matches!(e, WireError::BadLength { .. }), "{e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = EnrollReq::parse(data) {
        again(m, EnrollReq::to_vec, EnrollReq::parse);
    }
    if let Ok(m) = EnrollResp::parse(data) {
        again(m, EnrollResp::to_vec, EnrollResp::parse);
    }
    if let Ok(m) = EnrollAck::parse(data) {
        again(m, EnrollAck::to_vec, EnrollAck::parse);
    }
    if let Ok(m) = CepMsg::parse(data) {
        again(m, CepMsg::to_vec, CepMsg::parse);
    }
});
