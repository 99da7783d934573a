//! The in-band messages of `operf` (and the data packets of `ocbr`): a 20-byte header at the
//! head of every packet, big-endian.
//!
//! ```text
//! 0..2   magic "o7"
//! 2      version (1)
//! 3      kind: START, ACK, DATA, END, REPORT, FINAL
//! 4..12  seq (u64): DATA: sequence number; START: the test mode (0 uni, 1 bi)
//! 12..20 value (u64): DATA: send time in ns since the start; START: packet size;
//!        END: packets sent
//! ```
//! REPORT and FINAL carry a [`Report`] after the header: six u64 counters.
//!
//! Pure; [`decode`] never panics and refuses anything that is not exactly one of these
//! (unused header fields must be zero), so `encode(decode(b)) == b` for every control message.

/// Bytes of the header; the smallest DATA packet.
pub const HEADER: usize = 20;
/// Bytes of a REPORT or FINAL message.
pub const REPORT_LEN: usize = HEADER + 6 * 8;

const MAGIC: [u8; 2] = *b"o7";
const VERSION: u8 = 1;

const START: u8 = 1;
const ACK: u8 = 2;
const DATA: u8 = 3;
const END: u8 = 4;
const REPORT: u8 = 5;
const FINAL: u8 = 6;

/// What the client asks the server to do with its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Count them and report back.
    Uni,
    /// Echo them back.
    Bi,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Uni => "uni",
            Mode::Bi => "bi",
        }
    }
}

/// What a receiver counted, as the server reports it to the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// DATA packets received (each sequence number counted once per arrival).
    pub received: u64,
    /// Bytes of those packets.
    pub bytes: u64,
    /// Packets that came after a higher sequence number.
    pub out_of_order: u64,
    /// Packets that were no valid message.
    pub invalid: u64,
    /// Packets echoed back (bi mode).
    pub echoed: u64,
    /// Highest sequence number seen plus one (0: none yet).
    pub next_seq: u64,
}

/// One decoded message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    Start {
        mode: Mode,
        size: u64,
    },
    Ack,
    Data {
        seq: u64,
        sent_ns: u64,
    },
    End {
        sent: u64,
    },
    /// `last`: the final report, sent in answer to END.
    Report {
        report: Report,
        last: bool,
    },
}

/// Why a packet is not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    TooShort,
    BadMagic,
    BadVersion,
    BadKind,
    BadLength,
    BadMode,
    /// A header field that must be zero for this kind is not.
    BadField,
}

fn header(buf: &mut [u8], kind: u8, seq: u64, value: u64) {
    buf[0..2].copy_from_slice(&MAGIC);
    buf[2] = VERSION;
    buf[3] = kind;
    buf[4..12].copy_from_slice(&seq.to_be_bytes());
    buf[12..20].copy_from_slice(&value.to_be_bytes());
}

/// Write a DATA header at the head of `buf` (the rest is padding, left as is). Returns false,
/// writing nothing, when `buf` is shorter than [`HEADER`].
pub fn encode_data(buf: &mut [u8], seq: u64, sent_ns: u64) -> bool {
    if buf.len() < HEADER {
        return false;
    }
    header(buf, DATA, seq, sent_ns);
    true
}

/// A control message on its own (a DATA message is just its header).
pub fn encode(msg: &Msg) -> Vec<u8> {
    let mut b = vec![0u8; HEADER];
    match *msg {
        Msg::Start { mode, size } => {
            let m = match mode {
                Mode::Uni => 0,
                Mode::Bi => 1,
            };
            header(&mut b, START, m, size);
        }
        Msg::Ack => header(&mut b, ACK, 0, 0),
        Msg::Data { seq, sent_ns } => header(&mut b, DATA, seq, sent_ns),
        Msg::End { sent } => header(&mut b, END, 0, sent),
        Msg::Report { report, last } => {
            header(&mut b, if last { FINAL } else { REPORT }, 0, 0);
            for v in [
                report.received,
                report.bytes,
                report.out_of_order,
                report.invalid,
                report.echoed,
                report.next_seq,
            ] {
                b.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
    b
}

fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = buf.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// Decode one packet. DATA may carry any padding; control messages must have their exact
/// length.
pub fn decode(buf: &[u8]) -> Result<Msg, Invalid> {
    if buf.len() < HEADER {
        return Err(Invalid::TooShort);
    }
    if buf[0..2] != MAGIC {
        return Err(Invalid::BadMagic);
    }
    if buf[2] != VERSION {
        return Err(Invalid::BadVersion);
    }
    let kind = buf[3];
    let seq = u64_at(buf, 4).ok_or(Invalid::TooShort)?;
    let value = u64_at(buf, 12).ok_or(Invalid::TooShort)?;
    let exact = |len: usize| {
        if buf.len() == len {
            Ok(())
        } else {
            Err(Invalid::BadLength)
        }
    };
    let zero = |fields: &[u64]| {
        if fields.iter().all(|&f| f == 0) {
            Ok(())
        } else {
            Err(Invalid::BadField)
        }
    };
    match kind {
        DATA => Ok(Msg::Data {
            seq,
            sent_ns: value,
        }),
        START => {
            exact(HEADER)?;
            let mode = match seq {
                0 => Mode::Uni,
                1 => Mode::Bi,
                _ => return Err(Invalid::BadMode),
            };
            Ok(Msg::Start { mode, size: value })
        }
        ACK => {
            exact(HEADER)?;
            zero(&[seq, value])?;
            Ok(Msg::Ack)
        }
        END => {
            exact(HEADER)?;
            zero(&[seq])?;
            Ok(Msg::End { sent: value })
        }
        REPORT | FINAL => {
            exact(REPORT_LEN)?;
            zero(&[seq, value])?;
            let f = |i: usize| u64_at(buf, HEADER + 8 * i).ok_or(Invalid::TooShort);
            Ok(Msg::Report {
                report: Report {
                    received: f(0)?,
                    bytes: f(1)?,
                    out_of_order: f(2)?,
                    invalid: f(3)?,
                    echoed: f(4)?,
                    next_seq: f(5)?,
                },
                last: kind == FINAL,
            })
        }
        _ => Err(Invalid::BadKind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_report() -> Report {
        Report {
            received: 1,
            bytes: 2,
            out_of_order: 3,
            invalid: 4,
            echoed: 5,
            next_seq: u64::MAX,
        }
    }

    #[test]
    fn control_messages_round_trip() {
        for m in [
            Msg::Start {
                mode: Mode::Uni,
                size: 1400,
            },
            Msg::Start {
                mode: Mode::Bi,
                size: 20,
            },
            Msg::Ack,
            Msg::Data {
                seq: 7,
                sent_ns: 99,
            },
            Msg::End { sent: 123 },
            Msg::Report {
                report: sample_report(),
                last: false,
            },
            Msg::Report {
                report: sample_report(),
                last: true,
            },
        ] {
            assert_eq!(decode(&encode(&m)), Ok(m));
        }
        assert_eq!(encode(&Msg::Ack).len(), HEADER);
        assert_eq!(
            encode(&Msg::Report {
                report: Report::default(),
                last: true
            })
            .len(),
            REPORT_LEN
        );
    }

    #[test]
    fn data_in_place_with_padding() {
        let mut b = vec![0xAAu8; 1400];
        assert!(encode_data(&mut b, 42, 1_000));
        assert_eq!(
            decode(&b),
            Ok(Msg::Data {
                seq: 42,
                sent_ns: 1_000
            })
        );
        assert_eq!(b[HEADER], 0xAA, "padding untouched");
        let mut short = [0u8; HEADER - 1];
        assert!(!encode_data(&mut short, 1, 1));
        assert_eq!(short, [0u8; HEADER - 1]);
    }

    #[test]
    fn garbage_is_invalid() {
        assert_eq!(decode(&[]), Err(Invalid::TooShort));
        assert_eq!(decode(b"o7"), Err(Invalid::TooShort));
        assert_eq!(decode(&[0u8; 64]), Err(Invalid::BadMagic));
        let mut b = encode(&Msg::Ack);
        b[2] = 9;
        assert_eq!(decode(&b), Err(Invalid::BadVersion));
        let mut b = encode(&Msg::Ack);
        b[3] = 77;
        assert_eq!(decode(&b), Err(Invalid::BadKind));
        let mut b = encode(&Msg::End { sent: 1 });
        b.push(0);
        assert_eq!(decode(&b), Err(Invalid::BadLength));
        let b = encode(&Msg::Report {
            report: Report::default(),
            last: false,
        });
        assert_eq!(decode(&b[..REPORT_LEN - 1]), Err(Invalid::BadLength));
        let mut b = encode(&Msg::Start {
            mode: Mode::Bi,
            size: 1,
        });
        b[11] = 2;
        assert_eq!(decode(&b), Err(Invalid::BadMode));
        let mut b = encode(&Msg::Ack);
        b[19] = 1;
        assert_eq!(decode(&b), Err(Invalid::BadField));
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode(&b);
        }

        #[test]
        fn decode_never_panics_on_near_valid(
            kind in 0u8..8,
            tail in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let mut b = b"o7\x01".to_vec();
            b.push(kind);
            b.extend_from_slice(&tail);
            match decode(&b) {
                Ok(m @ Msg::Data { .. }) => prop_assert!(b.len() >= HEADER, "{m:?}"),
                Ok(m) => prop_assert_eq!(encode(&m), b),
                Err(_) => {}
            }
        }

        #[test]
        fn data_round_trips(seq: u64, ns: u64, pad in 0usize..64) {
            let mut b = vec![0u8; HEADER + pad];
            prop_assert!(encode_data(&mut b, seq, ns));
            prop_assert_eq!(decode(&b), Ok(Msg::Data { seq, sent_ns: ns }));
        }
    }
}
