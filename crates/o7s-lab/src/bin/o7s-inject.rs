//! `o7s-inject DEV PROTO HEX...`: send raw Ethernet frames (given in hex, header included) on
//! interface DEV through a packet socket bound to ethertype PROTO. A test helper for feeding
//! malformed frames to an IPCP; needs root or CAP_NET_RAW.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 || args[0] == "--help" {
        eprintln!("usage: o7s-inject DEV PROTO HEXFRAME...   (PROTO: ethertype, e.g. 0xA000)");
        return ExitCode::from(2);
    }
    let proto = match u16::from_str_radix(args[1].trim_start_matches("0x"), 16) {
        Ok(p) if p != 0 => p,
        _ => {
            eprintln!("o7s-inject: bad protocol {:?}", args[1]);
            return ExitCode::from(2);
        }
    };
    let sock = match o7s_shm::packet_socket(&args[0], proto) {
        Ok((s, _)) => s,
        Err(e) => {
            eprintln!("o7s-inject: {}: {e}", args[0]);
            return ExitCode::FAILURE;
        }
    };
    for hex in &args[2..] {
        let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        let Some(frame) = bytes.filter(|_| hex.len() % 2 == 0) else {
            eprintln!("o7s-inject: not hex: {hex}");
            return ExitCode::from(2);
        };
        if let Err(e) = rustix::net::send(&sock, &frame, rustix::net::SendFlags::empty()) {
            eprintln!("o7s-inject: send: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
