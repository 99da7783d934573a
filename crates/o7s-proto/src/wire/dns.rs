//! DNS messages (RFC 1035) and dynamic updates (RFC 2136): as much as the udp layers' DNS
//! directory needs, which is a query for one A or AAAA record and an update adding or
//! deleting one. Any message still decodes whole: records of other types keep their data as
//! bytes.
//!
//! A message is a 12-byte header (id, flags, four section counts) and four sections. In a
//! query they are question, answer, authority and additional; in an UPDATE (opcode 5) the
//! same slots hold the zone (one question naming the zone, type SOA), the prerequisites and
//! the updates, and the additional records. [`DnsRepr::update`] and its accessors speak of
//! them by those roles.
//!
//! Names are decoded with compression pointers (RFC 1035 §4.1.4) and emitted without. A
//! pointer must point before the name that uses it, so a decoder always ends; a name is at
//! most 255 bytes on the wire and a label at most 63, as the RFC says. The decoder never
//! panics, never trusts a count or length and never allocates more than the message holds.
//!
//! ```
//! use o7s_proto::wire::dns::{DnsName, DnsRepr, Record, rtype};
//!
//! let zone = DnsName::new("o7s.test").unwrap();
//! let name = zone.child("0123abcd").unwrap();
//! let upd = DnsRepr::update(7, zone, vec![], vec![Record::address(name, 86400, [10, 0, 0, 1].into())]);
//! let bytes = upd.to_bytes().unwrap();
//! assert_eq!(DnsRepr::parse(&bytes).unwrap(), upd);
//! assert_eq!(upd.updates()[0].rtype, rtype::A);
//! ```

use super::bytes::room;
use super::{Result, WireError};
use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The fixed header.
pub const HEADER_LEN: usize = 12;
/// The DNS port.
pub const PORT: u16 = 53;
/// Longest name on the wire, length bytes and the root's included.
pub const MAX_NAME_LEN: usize = 255;
/// Longest label.
pub const MAX_LABEL_LEN: usize = 63;
/// Largest message a client must accept over UDP without EDNS.
pub const MAX_UDP_LEN: usize = 512;

/// Record types used here.
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const AAAA: u16 = 28;
    /// In a question: all types; in an update with class ANY: the whole name.
    pub const ANY: u16 = 255;
}

/// Record classes used here.
pub mod class {
    pub const IN: u16 = 1;
    /// Update: delete one record (RFC 2136 §2.5.4).
    pub const NONE: u16 = 254;
    /// Update: delete an RRset or a name (§2.5.2, §2.5.3).
    pub const ANY: u16 = 255;
}

/// Operation codes used here.
pub mod opcode {
    pub const QUERY: u8 = 0;
    pub const UPDATE: u8 = 5;
}

/// A response code (the header's 4 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rcode(pub u8);

impl Rcode {
    pub const NOERROR: Rcode = Rcode(0);
    pub const FORMERR: Rcode = Rcode(1);
    pub const SERVFAIL: Rcode = Rcode(2);
    pub const NXDOMAIN: Rcode = Rcode(3);
    pub const NOTIMP: Rcode = Rcode(4);
    pub const REFUSED: Rcode = Rcode(5);
    pub const YXDOMAIN: Rcode = Rcode(6);
    pub const YXRRSET: Rcode = Rcode(7);
    pub const NXRRSET: Rcode = Rcode(8);
    pub const NOTAUTH: Rcode = Rcode(9);
    pub const NOTZONE: Rcode = Rcode(10);

    /// The RFC's mnemonic, if it has one.
    pub fn mnemonic(self) -> Option<&'static str> {
        const NAMES: [&str; 11] = [
            "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN",
            "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
        ];
        NAMES.get(usize::from(self.0)).copied()
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mnemonic() {
            Some(m) => f.write_str(m),
            None => write!(f, "RCODE {}", self.0),
        }
    }
}

/// A domain name: its labels, most specific first, the root's empty label left out (so
/// the root itself has none). Labels are bytes, compared exactly by `==`;
/// [`DnsName::eq_ignore_case`] compares as DNS does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DnsName {
    labels: Vec<Vec<u8>>,
}

impl DnsName {
    /// The root, `.`.
    pub fn root() -> DnsName {
        DnsName::default()
    }

    /// A name from text: labels separated by dots, a final dot optional (`o7s.test`,
    /// `o7s.test.`); `.` or an empty string is the root. Labels are printable ASCII other
    /// than `.`, `\` and spaces; no escapes.
    pub fn new(text: &str) -> Result<DnsName> {
        let t = text.strip_suffix('.').unwrap_or(text);
        let mut name = DnsName::root();
        if t.is_empty() {
            return Ok(name);
        }
        for (i, l) in t.split('.').enumerate() {
            let ok = l.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
            if l.is_empty() || !ok {
                return Err(WireError::BadName {
                    at: i,
                    why: "labels are 1-63 printable characters without '\\' or spaces",
                });
            }
            name.push(l.as_bytes().to_vec(), i)?;
        }
        Ok(name)
    }

    /// Append a label (towards the root), checking the limits.
    fn push(&mut self, label: Vec<u8>, at: usize) -> Result<()> {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(WireError::BadName {
                at,
                why: "a label is 1-63 bytes",
            });
        }
        if self.wire_len() + 1 + label.len() > MAX_NAME_LEN {
            return Err(WireError::BadName {
                at,
                why: "a name is at most 255 bytes",
            });
        }
        self.labels.push(label);
        Ok(())
    }

    /// `label.self`: a name one level below this one.
    pub fn child(&self, label: &str) -> Result<DnsName> {
        let mut n = DnsName::new(label)?;
        for l in &self.labels {
            n.push(l.clone(), 0)?;
        }
        Ok(n)
    }

    /// Labels, most specific first.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> {
        self.labels.iter().map(Vec::as_slice)
    }

    pub fn is_root(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes on the wire, uncompressed: a length byte and the bytes of each label, and the
    /// root's zero.
    pub fn wire_len(&self) -> usize {
        self.labels.iter().map(|l| 1 + l.len()).sum::<usize>() + 1
    }

    /// Equal as DNS compares names: ASCII case does not matter.
    pub fn eq_ignore_case(&self, other: &DnsName) -> bool {
        self.labels.len() == other.labels.len()
            && self
                .labels
                .iter()
                .zip(&other.labels)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    fn emit(&self, buf: &mut [u8], at: usize) -> usize {
        let mut p = at;
        for l in &self.labels {
            buf[p] = l.len() as u8;
            buf[p + 1..p + 1 + l.len()].copy_from_slice(l);
            p += 1 + l.len();
        }
        buf[p] = 0;
        p + 1
    }

    /// The name at `at` in `msg` and where what follows it starts.
    fn parse(msg: &[u8], at: usize) -> Result<(DnsName, usize)> {
        let mut name = DnsName::root();
        let mut p = at;
        // Where the labels being read began: a pointer must point before it.
        let mut start = at;
        let mut end = None;
        loop {
            let len = byte(msg, p)?;
            match len & 0xC0 {
                0x00 if len == 0 => {
                    return Ok((name, end.unwrap_or(p + 1)));
                }
                0x00 => {
                    let l = usize::from(len);
                    let label = msg.get(p + 1..p + 1 + l).ok_or(WireError::Truncated {
                        need: p + 1 + l,
                        have: msg.len(),
                    })?;
                    name.push(label.to_vec(), p)?;
                    p += 1 + l;
                }
                0xC0 => {
                    let target = usize::from(len & 0x3F) << 8 | usize::from(byte(msg, p + 1)?);
                    if target >= start {
                        return Err(WireError::BadName {
                            at: p,
                            why: "a compression pointer must point backwards",
                        });
                    }
                    end.get_or_insert(p + 2);
                    start = target;
                    p = target;
                }
                _ => {
                    return Err(WireError::BadName {
                        at: p,
                        why: "unknown label type",
                    })
                }
            }
        }
    }
}

impl fmt::Display for DnsName {
    /// `a.b.` (the root is `.`); bytes that are not printable, and `.` and `\` inside a label,
    /// are written as `\DDD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.labels.is_empty() {
            return f.write_str(".");
        }
        for l in &self.labels {
            for &b in l {
                if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                    write!(f, "{}", char::from(b))?;
                } else {
                    write!(f, "\\{b:03}")?;
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl core::str::FromStr for DnsName {
    type Err = WireError;
    fn from_str(s: &str) -> Result<DnsName> {
        DnsName::new(s)
    }
}

/// An entry of the question section (in an update: the zone).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    pub name: DnsName,
    pub qtype: u16,
    pub qclass: u16,
}

impl Question {
    fn parse(msg: &[u8], at: usize) -> Result<(Question, usize)> {
        let (name, p) = DnsName::parse(msg, at)?;
        let q = Question {
            name,
            qtype: u16_at(msg, p)?,
            qclass: u16_at(msg, p + 2)?,
        };
        Ok((q, p + 4))
    }

    fn wire_len(&self) -> usize {
        self.name.wire_len() + 4
    }

    fn emit(&self, buf: &mut [u8], at: usize) -> usize {
        let p = self.name.emit(buf, at);
        buf[p..p + 2].copy_from_slice(&self.qtype.to_be_bytes());
        buf[p + 2..p + 4].copy_from_slice(&self.qclass.to_be_bytes());
        p + 4
    }
}

/// A record's data: an address for A and AAAA records of the right length, else bytes as
/// they came (names inside them may hold compression pointers into the original message).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Other(Vec<u8>),
}

impl RData {
    fn len(&self) -> usize {
        match self {
            RData::A(_) => 4,
            RData::Aaaa(_) => 16,
            RData::Other(b) => b.len(),
        }
    }
}

/// A resource record (in an update also a prerequisite or an update).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    pub name: DnsName,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: RData,
}

impl Record {
    /// An A or AAAA record of class IN (to add, or as an answer).
    pub fn address(name: DnsName, ttl: u32, ip: IpAddr) -> Record {
        let (rtype, rdata) = match ip {
            IpAddr::V4(a) => (rtype::A, RData::A(a)),
            IpAddr::V6(a) => (rtype::AAAA, RData::Aaaa(a)),
        };
        Record {
            name,
            rtype,
            class: class::IN,
            ttl,
            rdata,
        }
    }

    /// Update: delete this one A or AAAA record, leaving others of the name (RFC 2136 §2.5.4).
    pub fn delete_address(name: DnsName, ip: IpAddr) -> Record {
        Record {
            class: class::NONE,
            ttl: 0,
            ..Record::address(name, 0, ip)
        }
    }

    /// Update: delete every record of type `rtype` of the name (RFC 2136 §2.5.2).
    pub fn delete_rrset(name: DnsName, rtype: u16) -> Record {
        Record {
            name,
            rtype,
            class: class::ANY,
            ttl: 0,
            rdata: RData::Other(Vec::new()),
        }
    }

    /// The address of an A or AAAA record.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.rdata {
            RData::A(a) => Some(a.into()),
            RData::Aaaa(a) => Some(a.into()),
            RData::Other(_) => None,
        }
    }

    fn parse(msg: &[u8], at: usize) -> Result<(Record, usize)> {
        let (name, p) = DnsName::parse(msg, at)?;
        let rtype = u16_at(msg, p)?;
        let class = u16_at(msg, p + 2)?;
        let ttl = u32::from(u16_at(msg, p + 4)?) << 16 | u32::from(u16_at(msg, p + 6)?);
        let len = usize::from(u16_at(msg, p + 8)?);
        let start = p + 10;
        let data = msg.get(start..start + len).ok_or(WireError::Truncated {
            need: start + len,
            have: msg.len(),
        })?;
        let rdata = match (rtype, len) {
            (rtype::A, 4) => RData::A(Ipv4Addr::new(data[0], data[1], data[2], data[3])),
            (rtype::AAAA, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(data);
                RData::Aaaa(a.into())
            }
            _ => RData::Other(data.to_vec()),
        };
        let r = Record {
            name,
            rtype,
            class,
            ttl,
            rdata,
        };
        Ok((r, start + len))
    }

    fn wire_len(&self) -> usize {
        self.name.wire_len() + 10 + self.rdata.len()
    }

    fn emit(&self, buf: &mut [u8], at: usize) -> Result<usize> {
        let len = self.rdata.len();
        let len16 = u16::try_from(len).map_err(|_| WireError::BadLength {
            field: "record data length",
            value: len,
        })?;
        let p = self.name.emit(buf, at);
        buf[p..p + 2].copy_from_slice(&self.rtype.to_be_bytes());
        buf[p + 2..p + 4].copy_from_slice(&self.class.to_be_bytes());
        buf[p + 4..p + 8].copy_from_slice(&self.ttl.to_be_bytes());
        buf[p + 8..p + 10].copy_from_slice(&len16.to_be_bytes());
        let d = &mut buf[p + 10..p + 10 + len];
        match &self.rdata {
            RData::A(a) => d.copy_from_slice(&a.octets()),
            RData::Aaaa(a) => d.copy_from_slice(&a.octets()),
            RData::Other(b) => d.copy_from_slice(b),
        }
        Ok(p + 10 + len)
    }
}

/// A whole DNS message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsRepr {
    pub id: u16,
    /// QR: a response.
    pub response: bool,
    /// 4 bits: [`opcode`].
    pub opcode: u8,
    pub authoritative: bool,
    pub truncated: bool,
    pub recursion_desired: bool,
    pub recursion_available: bool,
    /// The 3 bits between RA and RCODE (Z, AD, CD), as they came.
    pub z: u8,
    /// 4 bits.
    pub rcode: Rcode,
    /// Questions; in an update, the zone.
    pub questions: Vec<Question>,
    /// Answers; in an update, the prerequisites.
    pub answers: Vec<Record>,
    /// Authority records; in an update, the updates.
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

impl DnsRepr {
    /// A query for the records of type `qtype` of `name` (class IN, recursion desired so a
    /// resolver in between may answer too).
    pub fn query(id: u16, name: DnsName, qtype: u16) -> DnsRepr {
        DnsRepr {
            id,
            response: false,
            opcode: opcode::QUERY,
            authoritative: false,
            truncated: false,
            recursion_desired: true,
            recursion_available: false,
            z: 0,
            rcode: Rcode::NOERROR,
            questions: vec![Question {
                name,
                qtype,
                qclass: class::IN,
            }],
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }

    /// An UPDATE of `zone` (RFC 2136): the prerequisites must hold, then the updates apply.
    pub fn update(
        id: u16,
        zone: DnsName,
        prerequisites: Vec<Record>,
        updates: Vec<Record>,
    ) -> DnsRepr {
        DnsRepr {
            opcode: opcode::UPDATE,
            recursion_desired: false,
            answers: prerequisites,
            authority: updates,
            ..DnsRepr::query(id, zone, rtype::SOA)
        }
    }

    /// The zone of an update.
    pub fn zone(&self) -> Option<&Question> {
        self.questions.first()
    }

    /// The prerequisites of an update (the answer section).
    pub fn prerequisites(&self) -> &[Record] {
        &self.answers
    }

    /// The updates of an update (the authority section).
    pub fn updates(&self) -> &[Record] {
        &self.authority
    }

    /// Is this the response to `req`: same id and opcode, QR set, and the question section
    /// echoed (ASCII case aside) or, in an error response, left out?
    pub fn answers_to(&self, req: &DnsRepr) -> bool {
        let echoed = self.questions.len() == req.questions.len()
            && self.questions.iter().zip(&req.questions).all(|(a, b)| {
                a.qtype == b.qtype && a.qclass == b.qclass && a.name.eq_ignore_case(&b.name)
            });
        self.response
            && self.id == req.id
            && self.opcode == req.opcode
            && (echoed || (self.questions.is_empty() && self.rcode != Rcode::NOERROR))
    }

    /// Decode a whole message.
    pub fn parse(msg: &[u8]) -> Result<DnsRepr> {
        if msg.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                need: HEADER_LEN,
                have: msg.len(),
            });
        }
        let (f1, f2) = (msg[2], msg[3]);
        let count = |i: usize| usize::from(u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]));
        let mut p = HEADER_LEN;
        let mut questions = Vec::new();
        for _ in 0..count(0) {
            let (q, next) = Question::parse(msg, p)?;
            questions.push(q);
            p = next;
        }
        let mut sections: [Vec<Record>; 3] = Default::default();
        for (i, s) in sections.iter_mut().enumerate() {
            for _ in 0..count(i + 1) {
                let (r, next) = Record::parse(msg, p)?;
                s.push(r);
                p = next;
            }
        }
        if p != msg.len() {
            return Err(WireError::BadLength {
                field: "bytes after the last record",
                value: msg.len() - p,
            });
        }
        let [answers, authority, additional] = sections;
        Ok(DnsRepr {
            id: u16::from_be_bytes([msg[0], msg[1]]),
            response: f1 & 0x80 != 0,
            opcode: (f1 >> 3) & 0x0F,
            authoritative: f1 & 0x04 != 0,
            truncated: f1 & 0x02 != 0,
            recursion_desired: f1 & 0x01 != 0,
            recursion_available: f2 & 0x80 != 0,
            z: (f2 >> 4) & 0x07,
            rcode: Rcode(f2 & 0x0F),
            questions,
            answers,
            authority,
            additional,
        })
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self.questions.iter().map(Question::wire_len).sum::<usize>()
            + [&self.answers, &self.authority, &self.additional]
                .iter()
                .flat_map(|s| s.iter())
                .map(Record::wire_len)
                .sum::<usize>()
    }

    /// Write the message into `buf` (at least [`Self::buffer_len`] bytes); returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        room(len, buf.len())?;
        let field = |field: &'static str, value: u8, max: u8| {
            if value > max {
                Err(WireError::BadLength {
                    field,
                    value: usize::from(value),
                })
            } else {
                Ok(value)
            }
        };
        let opcode = field("opcode", self.opcode, 0x0F)?;
        let z = field("z bits", self.z, 0x07)?;
        let rcode = field("rcode", self.rcode.0, 0x0F)?;
        let bit = |b: bool, v: u8| if b { v } else { 0 };
        buf[0..2].copy_from_slice(&self.id.to_be_bytes());
        buf[2] = bit(self.response, 0x80)
            | opcode << 3
            | bit(self.authoritative, 0x04)
            | bit(self.truncated, 0x02)
            | bit(self.recursion_desired, 0x01);
        buf[3] = bit(self.recursion_available, 0x80) | z << 4 | rcode;
        let counts = [
            self.questions.len(),
            self.answers.len(),
            self.authority.len(),
            self.additional.len(),
        ];
        for (i, n) in counts.into_iter().enumerate() {
            let n16 = u16::try_from(n).map_err(|_| WireError::BadLength {
                field: "section count",
                value: n,
            })?;
            buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&n16.to_be_bytes());
        }
        let mut p = HEADER_LEN;
        for q in &self.questions {
            p = q.emit(buf, p);
        }
        for r in [&self.answers, &self.authority, &self.additional]
            .into_iter()
            .flatten()
        {
            p = r.emit(buf, p)?;
        }
        debug_assert_eq!(p, len);
        Ok(p)
    }

    /// The message as a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut buf)?;
        Ok(buf)
    }
}

fn byte(msg: &[u8], at: usize) -> Result<u8> {
    msg.get(at).copied().ok_or(WireError::Truncated {
        need: at + 1,
        have: msg.len(),
    })
}

fn u16_at(msg: &[u8], at: usize) -> Result<u16> {
    Ok(u16::from_be_bytes([byte(msg, at)?, byte(msg, at + 1)?]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::wire::testing::hex;
    use proptest::prelude::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef";

    /// What nsupdate 9.18 sends for `update add HASH 86400 A 10.9.8.7` (zone ".").
    const NSUPDATE_ADD: &str = "d082 2800 0001 0000 0001 0000 00 0006 0001
        20 3031323334353637383961626364656630313233343536373839616263646566 00
        0001 0001 00015180 0004 0a090807";
    /// named's answer to it.
    const NAMED_ADD_OK: &str = "d082 a800 0001 0000 0000 0000 00 0006 0001";
    /// What dig sends for `HASH. A` (no EDNS).
    const DIG_QUERY: &str = "ff8d 0120 0001 0000 0000 0000
        20 3031323334353637383961626364656630313233343536373839616263646566 00 0001 0001";
    /// named's answer: the name compressed to a pointer at the question (0xc00c).
    const NAMED_ANSWER: &str = "ff8d 8500 0001 0001 0000 0000
        20 3031323334353637383961626364656630313233343536373839616263646566 00 0001 0001
        c00c 0001 0001 00015180 0004 0a090807";
    /// named's NXDOMAIN for `nothere. A`, with the root's SOA in the authority section.
    const NAMED_NXDOMAIN: &str = "19d6 8503 0001 0000 0001 0000
        07 6e6f7468657265 00 0001 0001
        00 0006 0001 0000003c 001e 026e7300 04726f6f7400 00000003 0000003c 0000003c
        00000258 0000003c";

    fn hash_name() -> DnsName {
        DnsName::root().child(HASH).unwrap()
    }

    #[test]
    fn parses_nsupdate_add() {
        let m = DnsRepr::parse(&hex(NSUPDATE_ADD)).unwrap();
        let want = DnsRepr::update(
            0xd082,
            DnsName::root(),
            vec![],
            vec![Record::address(hash_name(), 86400, [10, 9, 8, 7].into())],
        );
        assert_eq!(m, want);
        assert_eq!(want.to_bytes().unwrap(), hex(NSUPDATE_ADD));
        let ok = DnsRepr::parse(&hex(NAMED_ADD_OK)).unwrap();
        assert!(ok.answers_to(&want));
        assert_eq!(ok.rcode, Rcode::NOERROR);
    }

    #[test]
    fn parses_a_compressed_answer() {
        let q = DnsRepr::parse(&hex(DIG_QUERY)).unwrap();
        let mut want = DnsRepr::query(0xff8d, hash_name(), rtype::A);
        want.z = 2; // dig sets AD
        assert_eq!(q, want);
        assert_eq!(want.to_bytes().unwrap(), hex(DIG_QUERY));
        let a = DnsRepr::parse(&hex(NAMED_ANSWER)).unwrap();
        assert!(a.answers_to(&q));
        assert!(a.authoritative);
        assert_eq!(a.answers.len(), 1);
        assert!(a.answers[0].name.eq_ignore_case(&hash_name()));
        assert_eq!(a.answers[0].ip(), Some([10, 9, 8, 7].into()));
        assert_eq!(a.answers[0].ttl, 86400);
        // Emitted without compression, it decodes the same.
        let again = DnsRepr::parse(&a.to_bytes().unwrap()).unwrap();
        assert_eq!(again, a);
    }

    #[test]
    fn parses_nxdomain() {
        let m = DnsRepr::parse(&hex(NAMED_NXDOMAIN)).unwrap();
        assert_eq!(m.rcode, Rcode::NXDOMAIN);
        assert_eq!(m.rcode.to_string(), "NXDOMAIN");
        assert!(m.answers.is_empty());
        assert_eq!(m.authority[0].rtype, rtype::SOA);
        assert!(m.authority[0].name.is_root());
        let q = DnsRepr::query(0x19d6, DnsName::new("NoThere").unwrap(), rtype::A);
        assert!(m.answers_to(&q));
        let other = DnsRepr::query(0x19d7, DnsName::new("nothere").unwrap(), rtype::A);
        assert!(!m.answers_to(&other));
        let aaaa = DnsRepr::query(0x19d6, DnsName::new("nothere").unwrap(), rtype::AAAA);
        assert!(!m.answers_to(&aaaa));
        assert!(!q.answers_to(&q), "a query is no answer");
    }

    #[test]
    fn names() {
        let n = DnsName::new("O7S.test.").unwrap();
        assert_eq!(n.to_string(), "O7S.test.");
        assert!(n.eq_ignore_case(&"o7s.TEST".parse().unwrap()));
        assert_ne!(n, "o7s.test".parse().unwrap());
        assert_eq!(DnsName::new(".").unwrap(), DnsName::root());
        assert_eq!(DnsName::new("").unwrap().to_string(), ".");
        assert_eq!(n.child("ab").unwrap().to_string(), "ab.O7S.test.");
        assert_eq!(n.wire_len(), 10);
        for bad in ["a..b", "a b", "..", "a\\b", &"x".repeat(64)] {
            assert!(DnsName::new(bad).is_err(), "{bad:?}");
        }
        let long = vec!["x".repeat(63); 4].join(".");
        assert!(DnsName::new(&long).is_err(), "256 bytes on the wire");
        assert!(DnsName::new(&long[2..]).is_ok(), "254 bytes");
        let odd = DnsName {
            labels: vec![b"a.b\\\x01".to_vec()],
        };
        assert_eq!(odd.to_string(), "a\\046b\\092\\001.");
    }

    #[test]
    fn update_records() {
        let n = hash_name();
        let ip6: IpAddr = "fd00::1".parse().unwrap();
        let add = Record::address(n.clone(), 60, ip6);
        assert_eq!(
            (add.rtype, add.class, add.ttl),
            (rtype::AAAA, class::IN, 60)
        );
        let del = Record::delete_address(n.clone(), ip6);
        assert_eq!(
            (del.rtype, del.class, del.ttl),
            (rtype::AAAA, class::NONE, 0)
        );
        assert_eq!(del.ip(), Some(ip6));
        let all = Record::delete_rrset(n.clone(), rtype::A);
        assert_eq!((all.class, all.rdata.len()), (class::ANY, 0));
        let u = DnsRepr::update(9, "o7s.test".parse().unwrap(), vec![all], vec![del, add]);
        let back = DnsRepr::parse(&u.to_bytes().unwrap()).unwrap();
        assert_eq!(back, u);
        assert_eq!(back.zone().unwrap().qtype, rtype::SOA);
        assert_eq!(back.prerequisites().len(), 1);
        assert_eq!(back.updates().len(), 2);
    }

    #[test]
    fn rejects_bad_messages() {
        let ok = hex(NAMED_ANSWER);
        // Every truncation fails cleanly.
        for n in 0..ok.len() {
            assert!(DnsRepr::parse(&ok[..n]).is_err(), "{n}");
        }
        // Trailing garbage.
        let mut long = ok.clone();
        long.push(0);
        assert!(DnsRepr::parse(&long).is_err());
        // A pointer to itself, and one pointing forward.
        let mut lp = ok.clone();
        let at = ok.len() - 16;
        lp[at..at + 2].copy_from_slice(&[0xc0 | (at >> 8) as u8, at as u8]);
        assert!(matches!(
            DnsRepr::parse(&lp),
            Err(WireError::BadName { .. })
        ));
        let mut fwd = ok.clone();
        fwd[at + 1] = 0x3f;
        assert!(DnsRepr::parse(&fwd).is_err());
        // Reserved label types.
        let mut lt = ok.clone();
        lt[12] = 0x40;
        assert!(DnsRepr::parse(&lt).is_err());
        // A count larger than the message.
        let mut cnt = ok;
        cnt[7] = 0xff;
        assert!(DnsRepr::parse(&cnt).is_err());
        // Fields too wide to emit.
        let mut m = DnsRepr::query(1, DnsName::root(), rtype::A);
        m.opcode = 16;
        assert!(m.to_bytes().is_err());
        let mut small = [0u8; 4];
        assert!(matches!(
            DnsRepr::query(1, DnsName::root(), rtype::A).emit(&mut small),
            Err(WireError::BufferTooSmall { .. })
        ));
    }

    /// `n` questions, each a 63-byte label and a pointer to the one before: the last name is
    /// `n * 64 + 1` bytes long.
    fn chained_questions(n: usize) -> Vec<u8> {
        let mut msg = vec![0u8; HEADER_LEN];
        msg[5] = n as u8;
        let mut prev = None::<usize>;
        for _ in 0..n {
            let at = msg.len();
            msg.push(63);
            msg.extend_from_slice(&[b'x'; 63]);
            match prev {
                Some(p) => msg.extend_from_slice(&[0xc0 | (p >> 8) as u8, p as u8]),
                None => msg.push(0),
            }
            msg.extend_from_slice(&[0, 1, 0, 1]);
            prev = Some(at);
        }
        msg
    }

    #[test]
    fn a_name_through_pointers_is_at_most_255_bytes() {
        let m = DnsRepr::parse(&chained_questions(3)).unwrap();
        assert_eq!(m.questions[2].name.wire_len(), 193);
        assert!(matches!(
            DnsRepr::parse(&chained_questions(4)),
            Err(WireError::BadName { .. })
        ));
    }

    fn name() -> impl Strategy<Value = DnsName> {
        proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 1..=MAX_LABEL_LEN),
            0..6,
        )
        .prop_map(|labels| {
            let mut n = DnsName::root();
            for l in labels {
                if n.push(l, 0).is_err() {
                    break;
                }
            }
            n
        })
    }

    fn record() -> impl Strategy<Value = Record> {
        let rdata = prop_oneof![
            any::<[u8; 4]>().prop_map(|a| (rtype::A, RData::A(a.into()))),
            any::<[u8; 16]>().prop_map(|a| (rtype::AAAA, RData::Aaaa(a.into()))),
            (
                any::<u16>().prop_filter("not A or AAAA", |t| *t != rtype::A && *t != rtype::AAAA),
                proptest::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(t, b)| (t, RData::Other(b))),
            // A and AAAA of another length stay bytes.
            proptest::collection::vec(any::<u8>(), 0..3).prop_map(|b| (rtype::A, RData::Other(b))),
        ];
        (name(), rdata, any::<u16>(), any::<u32>()).prop_map(
            |(name, (rtype, rdata), class, ttl)| Record {
                name,
                rtype,
                class,
                ttl,
                rdata,
            },
        )
    }

    fn message() -> impl Strategy<Value = DnsRepr> {
        let question =
            (name(), any::<u16>(), any::<u16>()).prop_map(|(name, qtype, qclass)| Question {
                name,
                qtype,
                qclass,
            });
        let records = || proptest::collection::vec(record(), 0..4);
        (
            (any::<u16>(), any::<[bool; 5]>(), 0u8..16, 0u8..8, 0u8..16),
            proptest::collection::vec(question, 0..3),
            records(),
            records(),
            records(),
        )
            .prop_map(
                |((id, b, opcode, z, rcode), questions, an, ns, ar)| DnsRepr {
                    id,
                    response: b[0],
                    opcode,
                    authoritative: b[1],
                    truncated: b[2],
                    recursion_desired: b[3],
                    recursion_available: b[4],
                    z,
                    rcode: Rcode(rcode),
                    questions,
                    answers: an,
                    authority: ns,
                    additional: ar,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(m in message()) {
            let bytes = m.to_bytes().unwrap();
            prop_assert_eq!(bytes.len(), m.buffer_len());
            prop_assert_eq!(DnsRepr::parse(&bytes).unwrap(), m);
        }

        #[test]
        fn names_round_trip_as_text(n in name()) {
            // Printable names only: the text form has no escapes to parse.
            let printable = n.labels().all(|l| l.iter().all(|b| b.is_ascii_graphic()
                && *b != b'.' && *b != b'\\'));
            if printable {
                prop_assert_eq!(DnsName::new(&n.to_string()).unwrap(), n);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(m) = DnsRepr::parse(&bytes) {
                let again = m.to_bytes().unwrap();
                prop_assert_eq!(DnsRepr::parse(&again).unwrap(), m);
            }
        }

        #[test]
        fn mutated_answers_never_panic(flips in proptest::collection::vec((0usize..64, any::<u8>()), 1..4)) {
            let mut b = hex(NAMED_ANSWER);
            for (i, v) in flips {
                let n = b.len();
                b[i % n] = v;
            }
            if let Ok(m) = DnsRepr::parse(&b) {
                prop_assert_eq!(DnsRepr::parse(&m.to_bytes().unwrap()).unwrap(), m);
            }
        }
    }
}
