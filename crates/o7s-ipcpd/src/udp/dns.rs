//! The udp layers' dynamic DNS directory (bootstrap `dns ADDR`): registering a name adds an
//! A (udp4) or AAAA (udp6) record `<hex hash>.<zone>` for this IPCP's address with an RFC
//! 2136 UPDATE, unregistering deletes that record, and a lookup asks the server for it. The
//! prototype runs `nsupdate` and `nslookup` for this; here the messages are made and read
//! by `o7s_proto::wire::dns`, over a fresh UDP socket per exchange.
//!
//! As in the prototype the records live right under the root unless `dns_zone` says
//! otherwise (the prototype's `nsupdate` puts the bare hash label under `.`), with a TTL of
//! one day.

use o7s_proto::wire::dns::{self, DnsName, DnsRepr, Rcode, Record};
use o7s_proto::NameHash;
use std::fmt;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The prototype's record TTL.
pub const TTL: u32 = 86_400;
/// How long one try waits for the answer.
pub const WAIT: Duration = Duration::from_millis(1500);
/// Tries per exchange (one retry).
pub const TRIES: u32 = 2;

/// `ADDR` or `ADDR:PORT` of a DNS server; an IPv6 address with a port in brackets
/// (`[fd00::1]:5353`), without one bare or in brackets. The port defaults to 53.
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, dns::PORT));
    }
    if let Some(ip) = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<Ipv6Addr>().ok())
    {
        return Ok(SocketAddr::new(ip.into(), dns::PORT));
    }
    match s.parse::<SocketAddr>() {
        Ok(a) if a.port() == 0 => Err("port 0 is not a DNS server's port".into()),
        Ok(a) => Ok(a),
        Err(_) => Err(
            "not a DNS server address: give ADDR or ADDR:PORT, like 10.0.0.53, 10.0.0.53:5353, \
             fd00::53 or [fd00::53]:5353"
                .into(),
        ),
    }
}

/// Why a DNS exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot reach DNS server {server} for the {what}: {source}")]
    Io {
        server: SocketAddr,
        what: String,
        source: std::io::Error,
    },
    #[error("DNS server {server} did not answer the {what} ({tries} tries, {} ms each)", wait.as_millis())]
    Timeout {
        server: SocketAddr,
        what: String,
        tries: u32,
        wait: Duration,
    },
    #[error("DNS server {server} refused the {what} ({rcode}){hint}")]
    Refused {
        server: SocketAddr,
        what: String,
        rcode: Rcode,
        hint: Hint,
    },
    #[error("DNS server {server} sent an answer to the {what} that cannot be used: {why}")]
    BadAnswer {
        server: SocketAddr,
        what: String,
        why: String,
    },
}

/// A hint after a refusal, on what to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    None,
    /// NOTAUTH / NOTZONE: the server does not serve the zone.
    Zone,
    /// REFUSED to an update: the zone does not take updates from us.
    AllowUpdate,
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hint::None => Ok(()),
            Hint::Zone => f.write_str(
                "; is the server a primary for the zone? (bootstrap parameter dns_zone, \
                 default the root \".\")",
            ),
            Hint::AllowUpdate => {
                f.write_str("; does the zone allow updates from this address (allow-update)?")
            }
        }
    }
}

/// A DNS server holding a layer's directory.
#[derive(Debug, Clone)]
pub struct DnsDir {
    pub server: SocketAddr,
    pub zone: DnsName,
    pub wait: Duration,
    pub tries: u32,
}

impl DnsDir {
    pub fn new(server: SocketAddr, zone: DnsName) -> DnsDir {
        DnsDir {
            server,
            zone,
            wait: WAIT,
            tries: TRIES,
        }
    }

    /// `<hex hash>.<zone>`.
    pub fn record_name(&self, hash: &NameHash) -> DnsName {
        // A hex MD5 (32 characters) is a valid label; so is any hash up to 31 bytes. Longer
        // hashes (not used by udp layers) are cut to the 63 characters a label may hold.
        let mut hex = hash.to_string();
        hex.truncate(63);
        self.zone.child(&hex).unwrap_or_else(|_| self.zone.clone())
    }

    /// Add the record `<hash>.<zone>` → `ip` (for the name `name`, in messages).
    pub fn publish(&self, name: &str, hash: &NameHash, ip: IpAddr) -> Result<(), DnsError> {
        let rec = self.record_name(hash);
        let what = format!("update adding {name} ({rec} {} {ip})", kind(ip));
        let upd = Record::address(rec, TTL, ip);
        self.update(vec![upd], &what)
    }

    /// Delete the record `<hash>.<zone>` → `ip` (other addresses of the name stay).
    pub fn withdraw(&self, name: &str, hash: &NameHash, ip: IpAddr) -> Result<(), DnsError> {
        let rec = self.record_name(hash);
        let what = format!("update deleting {name} ({rec} {} {ip})", kind(ip));
        self.update(vec![Record::delete_address(rec, ip)], &what)
    }

    fn update(&self, updates: Vec<Record>, what: &str) -> Result<(), DnsError> {
        let req = DnsRepr::update(rand::random(), self.zone.clone(), vec![], updates);
        let resp = self.exchange(&req, what)?;
        match resp.rcode {
            Rcode::NOERROR => Ok(()),
            rcode => Err(self.refused(what, rcode, true)),
        }
    }

    /// The first A (`v6` false) or AAAA record of `<hash>.<zone>` and its TTL; `None` if the
    /// server says the name or the record does not exist.
    pub fn lookup(&self, hash: &NameHash, v6: bool) -> Result<Option<(IpAddr, u32)>, DnsError> {
        let rec = self.record_name(hash);
        let rtype = if v6 { dns::rtype::AAAA } else { dns::rtype::A };
        let what = format!("query for {rec} {}", if v6 { "AAAA" } else { "A" });
        let req = DnsRepr::query(rand::random(), rec, rtype);
        let resp = self.exchange(&req, &what)?;
        match resp.rcode {
            Rcode::NOERROR => {}
            Rcode::NXDOMAIN => return Ok(None),
            rcode => return Err(self.refused(&what, rcode, false)),
        }
        // Aliases may come first; any record of the type asked for answers the question.
        let found = resp
            .answers
            .iter()
            .filter(|r| r.rtype == rtype && r.class == dns::class::IN)
            .find_map(|r| Some((r.ip()?, r.ttl)));
        if found.is_none() && resp.truncated {
            return Err(DnsError::BadAnswer {
                server: self.server,
                what,
                why: "it was truncated, and asking again over TCP is not supported".into(),
            });
        }
        Ok(found)
    }

    fn refused(&self, what: &str, rcode: Rcode, update: bool) -> DnsError {
        let hint = match rcode {
            Rcode::NOTAUTH | Rcode::NOTZONE => Hint::Zone,
            Rcode::REFUSED if update => Hint::AllowUpdate,
            _ => Hint::None,
        };
        DnsError::Refused {
            server: self.server,
            what: what.to_string(),
            rcode,
            hint,
        }
    }

    /// Send `req` and wait for its answer; try again once on silence. Datagrams that are not
    /// the answer (another id, garbage) are ignored. Each try uses a new socket, so a new
    /// random source port, connected to the server so nothing else gets in.
    fn exchange(&self, req: &DnsRepr, what: &str) -> Result<DnsRepr, DnsError> {
        let io = |source| DnsError::Io {
            server: self.server,
            what: what.to_string(),
            source,
        };
        let bytes = req.to_bytes().map_err(|e| DnsError::BadAnswer {
            server: self.server,
            what: what.to_string(),
            why: format!("cannot encode the request: {e}"),
        })?;
        let any: IpAddr = if self.server.is_ipv6() {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        let mut buf = vec![0u8; 4096];
        let mut last_err = None;
        for _ in 0..self.tries.max(1) {
            let sock = UdpSocket::bind(SocketAddr::new(any, 0)).map_err(io)?;
            sock.connect(self.server).map_err(io)?;
            sock.send(&bytes).map_err(io)?;
            let deadline = Instant::now() + self.wait;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                sock.set_read_timeout(Some(left)).map_err(io)?;
                match sock.recv(&mut buf) {
                    Ok(n) => match DnsRepr::parse(&buf[..n]) {
                        Ok(resp) if resp.answers_to(req) => return Ok(resp),
                        Ok(_) => tracing::debug!("{}: ignored a stray DNS answer", self.server),
                        Err(e) => tracing::debug!("{}: undecodable datagram: {e}", self.server),
                    },
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // An ICMP error (nothing listens there): try again, then report it.
                    Err(e) => {
                        last_err = Some(e);
                        break;
                    }
                }
            }
        }
        Err(match last_err {
            Some(e) => io(e),
            None => DnsError::Timeout {
                server: self.server,
                what: what.to_string(),
                tries: self.tries.max(1),
                wait: self.wait,
            },
        })
    }
}

fn kind(ip: IpAddr) -> &'static str {
    if ip.is_ipv6() {
        "AAAA"
    } else {
        "A"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use o7s_proto::HashAlgo;
    use std::sync::mpsc;

    #[test]
    fn server_addresses() {
        let ok = [
            ("169.254.1.1", "169.254.1.1:53"),
            (" 10.0.0.53:5353 ", "10.0.0.53:5353"),
            ("fd00::1", "[fd00::1]:53"),
            ("[fd00::1]", "[fd00::1]:53"),
            ("[fd00::1]:5353", "[fd00::1]:5353"),
        ];
        for (s, want) in ok {
            assert_eq!(parse_server(s).unwrap().to_string(), want, "{s}");
        }
        for bad in [
            "",
            "dns.example",
            "10.0.0.1:0",
            "10.0.0.1:99999",
            "fd00::1:53x",
            "[10.0.0.1]",
        ] {
            assert!(parse_server(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn record_names() {
        let h = HashAlgo::Md5.hash("oping.server");
        let root = DnsDir::new(parse_server("10.0.0.1").unwrap(), DnsName::root());
        assert_eq!(root.record_name(&h).to_string(), format!("{h}."));
        let zone = DnsDir::new(root.server, "o7s.test".parse().unwrap());
        assert_eq!(zone.record_name(&h).to_string(), format!("{h}.o7s.test."));
        let long = HashAlgo::Sha3_512.hash("x");
        assert_eq!(root.record_name(&long).labels().next().unwrap().len(), 63);
    }

    /// A fake DNS server on 127.0.0.1: `answer` makes the datagrams it sends back for each
    /// request; the requests it saw come out of the channel.
    fn fake(
        answer: impl Fn(&DnsRepr, u32) -> Vec<Vec<u8>> + Send + 'static,
    ) -> (DnsDir, mpsc::Receiver<DnsRepr>) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server = sock.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut n = 0;
            while let Ok((len, from)) = sock.recv_from(&mut buf) {
                let req = DnsRepr::parse(&buf[..len]).unwrap();
                for d in answer(&req, n) {
                    let _ = sock.send_to(&d, from);
                }
                n += 1;
                if tx.send(req).is_err() {
                    break;
                }
            }
        });
        let mut d = DnsDir::new(server, "o7s.test".parse().unwrap());
        d.wait = Duration::from_millis(200);
        (d, rx)
    }

    fn reply(req: &DnsRepr, rcode: Rcode, answers: Vec<Record>) -> Vec<u8> {
        let mut r = req.clone();
        r.response = true;
        r.rcode = rcode;
        r.answers = answers;
        r.authority.clear();
        r.to_bytes().unwrap()
    }

    #[test]
    fn publish_and_withdraw_send_updates() {
        let (d, rx) = fake(|req, _| vec![reply(req, Rcode::NOERROR, vec![])]);
        let h = HashAlgo::Md5.hash("srv");
        let ip: IpAddr = "169.254.0.2".parse().unwrap();
        d.publish("srv", &h, ip).unwrap();
        let upd = rx.recv().unwrap();
        assert_eq!(upd.opcode, dns::opcode::UPDATE);
        assert_eq!(upd.zone().unwrap().name, d.zone);
        assert_eq!(
            upd.updates(),
            &[Record::address(d.record_name(&h), TTL, ip)]
        );
        d.withdraw("srv", &h, ip).unwrap();
        let del = rx.recv().unwrap();
        assert_eq!(
            del.updates(),
            &[Record::delete_address(d.record_name(&h), ip)]
        );
        assert_ne!(upd.id, del.id);
    }

    #[test]
    fn refusals_are_reported_with_the_server_and_name() {
        let (d, _rx) = fake(|req, _| vec![reply(req, Rcode::REFUSED, vec![])]);
        let h = HashAlgo::Md5.hash("srv");
        let e = d
            .publish("srv", &h, "10.0.0.2".parse().unwrap())
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "DNS server {} refused the update adding srv ({h}.o7s.test. A 10.0.0.2) (REFUSED)",
                d.server
            )),
            "{text}"
        );
        assert!(text.contains("allow-update"), "{text}");
        let (d, _rx) = fake(|req, _| vec![reply(req, Rcode::NOTZONE, vec![])]);
        let text = d
            .publish("srv", &h, "10.0.0.2".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("(NOTZONE); is the server a primary"),
            "{text}"
        );
        let (d, _rx) = fake(|req, _| vec![reply(req, Rcode::SERVFAIL, vec![])]);
        let text = d.lookup(&h, false).unwrap_err().to_string();
        assert!(text.ends_with("A (SERVFAIL)"), "{text}");
    }

    #[test]
    fn lookups() {
        let h = HashAlgo::Md5.hash("srv");
        let (d, rx) = fake(move |req, n| {
            let name = req.questions[0].name.clone();
            let answers = match n {
                0 => vec![
                    Record {
                        rtype: dns::rtype::CNAME,
                        rdata: dns::RData::Other(vec![0]),
                        ..Record::address(name.clone(), 5, "10.0.0.9".parse().unwrap())
                    },
                    Record::address(name, 30, "10.0.0.7".parse().unwrap()),
                ],
                1 => vec![Record::address(name, 30, "fd00::7".parse().unwrap())],
                _ => vec![],
            };
            let rcode = if n == 2 {
                Rcode::NXDOMAIN
            } else {
                Rcode::NOERROR
            };
            vec![reply(req, rcode, answers)]
        });
        assert_eq!(
            d.lookup(&h, false).unwrap(),
            Some(("10.0.0.7".parse().unwrap(), 30))
        );
        let q = rx.recv().unwrap();
        assert_eq!(q.questions[0].qtype, dns::rtype::A);
        assert!(q.questions[0].name.eq_ignore_case(&d.record_name(&h)));
        // An AAAA answer to an A question is no answer.
        assert_eq!(d.lookup(&h, false).unwrap(), None);
        assert_eq!(d.lookup(&h, false).unwrap(), None, "NXDOMAIN");
        assert_eq!(d.lookup(&h, true).unwrap(), None, "NOERROR, no records");
    }

    #[test]
    fn stray_answers_are_ignored_and_silence_is_retried() {
        let h = HashAlgo::Md5.hash("srv");
        // First try: garbage, an answer with another id, then nothing. Second try: the answer.
        let (d, rx) = fake(move |req, n| {
            if n == 0 {
                let mut other = req.clone();
                other.id = req.id.wrapping_add(1);
                vec![vec![1, 2, 3], reply(&other, Rcode::NOERROR, vec![])]
            } else {
                let name = req.questions[0].name.clone();
                vec![reply(
                    req,
                    Rcode::NOERROR,
                    vec![Record::address(name, 1, [10, 0, 0, 1].into())],
                )]
            }
        });
        let t0 = Instant::now();
        assert_eq!(
            d.lookup(&h, false).unwrap().unwrap().0,
            IpAddr::from([10, 0, 0, 1])
        );
        assert!(t0.elapsed() >= d.wait);
        let (a, b) = (rx.recv().unwrap(), rx.recv().unwrap());
        assert_eq!(a, b, "the same request, sent again");
    }

    #[test]
    fn silence_times_out() {
        let h = HashAlgo::Md5.hash("srv");
        let (d, rx) = fake(|_, _| vec![]);
        let t0 = Instant::now();
        let e = d.lookup(&h, false).unwrap_err();
        assert!(matches!(e, DnsError::Timeout { tries: 2, .. }), "{e}");
        assert!(t0.elapsed() >= 2 * d.wait);
        assert!(e.to_string().contains("(2 tries, 200 ms each)"), "{e}");
        assert_eq!(rx.try_iter().count(), 2);
    }

    #[test]
    fn nobody_listening_is_an_error_not_a_hang() {
        // A port just freed: nothing listens, the kernel answers with ICMP.
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut d = DnsDir::new(port, DnsName::root());
        d.wait = Duration::from_millis(300);
        let e = d.lookup(&HashAlgo::Md5.hash("x"), false).unwrap_err();
        assert!(matches!(e, DnsError::Io { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("cannot reach DNS server {port}")),
            "{e}"
        );
    }
}
