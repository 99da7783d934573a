//! The `operf` server: accept flows forever, one thread per flow. A flow starts with START
//! (the test mode), answered with ACK; DATA is counted (uni) or counted and echoed (bi);
//! END is answered with the final report. A report of the counts so far also goes back
//! four times a second, for the client's live progress. The flow ends when its peer goes.

use super::stats::{mbit_per_sec, per_sec, SeqTracker};
use super::wire::{decode, encode, Mode, Msg};
use o7s::{Error, Flow};
use std::time::{Duration, Instant};

/// Time between interim reports.
pub const REPORT_EVERY: Duration = Duration::from_millis(250);
/// A flow that sends no START this long is closed.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What to do after a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Nothing,
    /// Send the packet back as it came (bi mode).
    Echo,
    /// Send this message.
    Send(Vec<u8>),
}

/// What the server knows about one flow's test. Pure.
#[derive(Debug, Default)]
pub struct Session {
    pub mode: Option<Mode>,
    pub rx: SeqTracker,
    pub invalid: u64,
    pub echoed: u64,
    /// Packets the client said it sent (from END).
    pub sent: Option<u64>,
}

impl Session {
    /// Take in one packet.
    pub fn on_packet(&mut self, pkt: &[u8]) -> Reply {
        match decode(pkt) {
            Ok(Msg::Start { mode, .. }) if self.mode.is_none_or(|m| m == mode) => {
                // A repeated START (the ACK was lost) is acknowledged again.
                self.mode = Some(mode);
                Reply::Send(encode(&Msg::Ack))
            }
            Ok(Msg::Data { seq, .. }) if self.mode.is_some() => {
                self.rx.record(seq, pkt.len());
                if self.mode == Some(Mode::Bi) {
                    Reply::Echo
                } else {
                    Reply::Nothing
                }
            }
            Ok(Msg::End { sent }) if self.mode.is_some() => {
                self.sent = Some(sent);
                Reply::Send(self.report(true))
            }
            _ => {
                self.invalid += 1;
                Reply::Nothing
            }
        }
    }

    /// A REPORT (or the FINAL one) of the counts so far.
    pub fn report(&self, last: bool) -> Vec<u8> {
        encode(&Msg::Report {
            report: self.rx.report(self.invalid, self.echoed),
            last,
        })
    }

    /// The line printed when the flow ends; `active` is from the first to the last DATA.
    pub fn summary_line(&self, flow: u64, active: Duration) -> String {
        let mode = self.mode.map_or("no", |m| m.name());
        let lost = match self.sent {
            Some(s) => s.saturating_sub(self.rx.received),
            None => self.rx.lost(),
        };
        let mut line = format!(
            "Flow {flow}: {mode} test, {} packets ({} bytes) in {:.3} ms => {:.1} pps, {:.3} Mbps, {} lost, {} out-of-order",
            self.rx.received,
            self.rx.bytes,
            active.as_secs_f64() * 1000.0,
            per_sec(self.rx.received, active),
            mbit_per_sec(self.rx.bytes, active),
            lost,
            self.rx.out_of_order,
        );
        if self.mode == Some(Mode::Bi) {
            line.push_str(&format!(", {} echoed", self.echoed));
        }
        if self.invalid > 0 {
            line.push_str(&format!(", {} invalid", self.invalid));
        }
        line
    }
}

/// Accept flows until the IRMd goes away; returns the exit code.
pub fn run() -> anyhow::Result<i32> {
    outln!("operf server started.");
    loop {
        let flow = crate::accept_next().map_err(|e| anyhow::anyhow!("cannot accept flows: {e}"))?;
        outln!(
            "New flow {} for {} (qos {}).",
            flow.id(),
            flow.name(),
            flow.qos().cube().map_or("custom", |c| c.name())
        );
        std::thread::spawn(move || serve(flow));
    }
}

/// Run one flow's test until the flow goes down.
pub fn serve(flow: Flow) {
    flow.set_read_timeout(Some(Duration::from_millis(100)));
    flow.set_write_timeout(Some(Duration::from_secs(1)));
    let mut buf = vec![0u8; flow.mtu().max(1)];
    let mut s = Session::default();
    let accepted = Instant::now();
    let mut next_report = accepted + REPORT_EVERY;
    let mut first: Option<Instant> = None;
    let mut last = accepted;
    let why = loop {
        match flow.read(&mut buf) {
            Ok(n) => {
                let was = s.mode;
                let before = s.rx.received;
                let reply = s.on_packet(&buf[..n]);
                if s.rx.received > before {
                    last = Instant::now();
                    first.get_or_insert(last);
                }
                if was.is_none() {
                    if let Some(m) = s.mode {
                        outln!(
                            "Flow {}: doing a {} test.",
                            flow.id(),
                            match m {
                                Mode::Uni => "unidirectional",
                                Mode::Bi => "bidirectional",
                            }
                        );
                    }
                }
                let res = match reply {
                    Reply::Nothing => Ok(()),
                    Reply::Echo => flow.write(&buf[..n]).map(|_| s.echoed += 1),
                    Reply::Send(m) => flow.write(&m).map(|_| ()),
                };
                match res {
                    // A client that reads no more than it sends: drop the echo.
                    Ok(()) | Err(Error::Timeout | Error::WouldBlock) => {}
                    Err(e) => break Some(e),
                }
            }
            Err(Error::Timeout | Error::WouldBlock) => {
                if flow.is_down() {
                    break None;
                }
            }
            Err(Error::BufferTooSmall { needed }) => buf.resize(needed, 0),
            Err(e) => break Some(e),
        }
        let now = Instant::now();
        if s.mode.is_none() && now >= accepted + START_TIMEOUT {
            outln!("Flow {}: no test started; closing it.", flow.id());
            return;
        }
        if s.mode.is_some() && now >= next_report {
            next_report = now + REPORT_EVERY;
            if let Err(e) = flow.write(&s.report(false)) {
                if e.is_down() {
                    break None;
                }
            }
        }
    };
    let active = first.map_or(Duration::ZERO, |f| last - f);
    let how = match why {
        Some(e) if !e.is_down() => format!(" ({e})"),
        _ => String::new(),
    };
    outln!("{}{how}.", s.summary_line(flow.id(), active));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operf::wire::{encode_data, Report};

    fn data(seq: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        encode_data(&mut b, seq, 0);
        b
    }

    fn start(mode: Mode) -> Vec<u8> {
        encode(&Msg::Start { mode, size: 100 })
    }

    fn final_report(r: &Reply) -> Report {
        match r {
            Reply::Send(b) => match decode(b) {
                Ok(Msg::Report { report, last: true }) => report,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn uni_counts_and_reports() {
        let mut s = Session::default();
        // DATA before START is not part of a test.
        assert_eq!(s.on_packet(&data(0, 100)), Reply::Nothing);
        assert_eq!(s.invalid, 1);
        assert_eq!(
            s.on_packet(&start(Mode::Uni)),
            Reply::Send(encode(&Msg::Ack))
        );
        assert_eq!(
            s.on_packet(&start(Mode::Uni)),
            Reply::Send(encode(&Msg::Ack))
        );
        for seq in [0, 1, 3, 2] {
            assert_eq!(s.on_packet(&data(seq, 100)), Reply::Nothing);
        }
        assert_eq!(s.on_packet(b"garbage"), Reply::Nothing);
        let r = final_report(&s.on_packet(&encode(&Msg::End { sent: 5 })));
        assert_eq!(r.received, 4);
        assert_eq!(r.bytes, 400);
        assert_eq!(r.out_of_order, 1);
        assert_eq!(r.invalid, 2);
        assert_eq!(r.next_seq, 4);
        assert_eq!(s.sent, Some(5));
        let l = s.summary_line(3, Duration::from_secs(1));
        assert_eq!(
            l,
            "Flow 3: uni test, 4 packets (400 bytes) in 1000.000 ms => 4.0 pps, 0.003 Mbps, 1 lost, 1 out-of-order, 2 invalid"
        );
    }

    #[test]
    fn bi_echoes() {
        let mut s = Session::default();
        s.on_packet(&start(Mode::Bi));
        // A START for another mode in the middle of a test is refused.
        assert_eq!(s.on_packet(&start(Mode::Uni)), Reply::Nothing);
        assert_eq!(s.on_packet(&data(0, 64)), Reply::Echo);
        s.echoed += 1;
        let r = final_report(&s.on_packet(&encode(&Msg::End { sent: 1 })));
        assert_eq!((r.received, r.echoed, r.invalid), (1, 1, 1));
        assert!(s
            .summary_line(1, Duration::ZERO)
            .ends_with(", 1 echoed, 1 invalid"));
        match decode(&s.report(false)) {
            Ok(Msg::Report { last: false, .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
