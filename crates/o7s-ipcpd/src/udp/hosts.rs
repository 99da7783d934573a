//! The `hosts FILE` of a udp layer: lines `ADDRESS[:PORT] NAME...`, `#` starts a comment.
//! IPv6 addresses with a port are written `[ADDR]:PORT`.

use std::net::{IpAddr, SocketAddr};

/// Parse a hosts file; `port` is used where a line gives none.
pub fn parse(text: &str, port: u16) -> Result<Vec<(SocketAddr, Vec<String>)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let Some(addr) = words.next() else { continue };
        let addr = match addr.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => match addr.parse::<IpAddr>() {
                Ok(ip) => SocketAddr::new(ip, port),
                Err(_) => return Err(format!("line {}: {addr:?} is not an address", i + 1)),
            },
        };
        let names: Vec<String> = words.map(str::to_string).collect();
        if names.is_empty() {
            return Err(format!("line {}: an address without names", i + 1));
        }
        out.push((addr, names));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let t =
            "# test\n127.0.0.2 oping.server echo\n127.0.0.1:4000 b # c\n[::1]:5 six\nfd00::1 v6\n";
        let h = parse(t, 3435).expect("parse");
        assert_eq!(h.len(), 4);
        assert_eq!(h[0].0, "127.0.0.2:3435".parse().expect("addr"));
        assert_eq!(h[0].1, vec!["oping.server", "echo"]);
        assert_eq!(h[1].0.port(), 4000);
        assert_eq!(h[2].0, "[::1]:5".parse().expect("addr"));
        assert_eq!(h[3].0.port(), 3435);
        assert!(parse("nonsense x", 1).is_err());
        assert!(parse("1.2.3.4", 1).is_err());
    }
}
