//! What `operf` counts and the lines it prints. Pure: the client and server measure, this
//! module adds up and formats.

use super::wire::{Mode, Report};
use serde_json::{json, Value};
use std::time::Duration;

/// The DATA packets one receiver saw, from their sequence numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqTracker {
    pub received: u64,
    pub bytes: u64,
    pub out_of_order: u64,
    /// Highest sequence number seen plus one.
    pub next_seq: u64,
}

impl SeqTracker {
    /// Count a packet of `len` bytes with sequence number `seq`; false when it came after a
    /// higher one.
    pub fn record(&mut self, seq: u64, len: usize) -> bool {
        self.received += 1;
        self.bytes += len as u64;
        if seq < self.next_seq {
            self.out_of_order += 1;
            false
        } else {
            self.next_seq = seq.saturating_add(1);
            true
        }
    }

    /// Packets missing below the highest sequence number seen (late ones may still come).
    pub fn lost(&self) -> u64 {
        self.next_seq.saturating_sub(self.received)
    }

    /// What a server's report says it counted.
    pub fn from_report(r: &Report) -> SeqTracker {
        SeqTracker {
            received: r.received,
            bytes: r.bytes,
            out_of_order: r.out_of_order,
            next_seq: r.next_seq,
        }
    }

    /// The report a server sends about what it counted.
    pub fn report(&self, invalid: u64, echoed: u64) -> Report {
        Report {
            received: self.received,
            bytes: self.bytes,
            out_of_order: self.out_of_order,
            invalid,
            echoed,
            next_seq: self.next_seq,
        }
    }
}

/// Percentage of `sent` that did not arrive (0 when nothing was sent).
pub fn loss_percent(sent: u64, received: u64) -> f64 {
    if sent == 0 {
        return 0.0;
    }
    100.0 * sent.saturating_sub(received) as f64 / sent as f64
}

/// A percentage with at most three decimals and no trailing zeros: `0`, `0.125`, `12.5`.
pub fn fmt_percent(p: f64) -> String {
    let s = format!("{p:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// `n` per second over `time` (0 over no time).
pub fn per_sec(n: u64, time: Duration) -> f64 {
    let s = time.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

/// Megabits per second for `bytes` over `time`.
pub fn mbit_per_sec(bytes: u64, time: Duration) -> f64 {
    per_sec(bytes, time) * 8.0 / 1e6
}

/// A duration as the tools print it in their headers: `60 s`, `1.5 s`, `250 ms`.
pub fn fmt_secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else if d < Duration::from_secs(1) && Duration::from_millis(d.subsec_millis().into()) == d {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

/// The lines before the test: the mode, then what is sent how fast (`rate` None: flood).
pub fn header(
    name: &str,
    mode: Mode,
    size: usize,
    duration: Duration,
    rate: Option<u64>,
) -> String {
    let what = match mode {
        Mode::Uni => "Doing a unidirectional test.",
        Mode::Bi => "Doing a bidirectional test.",
    };
    let how = match rate {
        None => format!(
            "Flooding {name} with {size} byte packets for {}.",
            fmt_secs(duration)
        ),
        Some(r) => format!(
            "Sending {size} byte packets for {} to {name} at {:.3} Mb/s.",
            fmt_secs(duration),
            r as f64 / 1e6
        ),
    };
    format!("{what}\n{how}\n")
}

/// The live line on a terminal: time, packets sent and the send rate, then what the
/// receiver (`who`) counted and the loss so far from its sequence numbers.
pub fn progress_line(
    elapsed: Duration,
    sent: u64,
    size: usize,
    rx: Option<&SeqTracker>,
    who: &str,
) -> String {
    let mut line = format!(
        "{:7.1} s  sent {sent} ({:.3} Mb/s)",
        elapsed.as_secs_f64(),
        mbit_per_sec(sent * size as u64, elapsed)
    );
    if let Some(rx) = rx {
        line.push_str(&format!(
            "  {who} {}  lost {} ({}%)",
            rx.received,
            rx.lost(),
            fmt_percent(loss_percent(rx.next_seq, rx.received)),
        ));
    }
    line
}

/// The outcome of one `operf` run.
#[derive(Debug, Clone)]
pub struct Summary<'a> {
    pub name: &'a str,
    pub mode: Mode,
    pub size: usize,
    /// Target rate in bits/s; None when flooding.
    pub rate: Option<u64>,
    /// How long the client sent.
    pub time: Duration,
    /// DATA packets the client sent.
    pub sent: u64,
    /// The server's final report, if it came.
    pub server: Option<Report>,
    /// The echoes the client received (bi mode).
    pub echoes: Option<SeqTracker>,
    /// Packets the client could not make sense of.
    pub invalid: u64,
}

impl Summary<'_> {
    /// End to end: packets and bytes that made it all the way (uni: to the server; bi: back
    /// to the client), if known.
    fn end_to_end(&self) -> Option<(u64, u64)> {
        match self.mode {
            Mode::Uni => self.server.map(|r| (r.received, r.bytes)),
            Mode::Bi => self.echoes.map(|e| (e.received, e.bytes)),
        }
    }

    fn direction_line(
        &self,
        label: &str,
        sent: Option<u64>,
        received: u64,
        bytes: u64,
        ooo: u64,
        invalid: u64,
    ) -> String {
        let of = sent.map_or(String::new(), |s| format!(" of {s}"));
        let loss = sent.map_or(String::new(), |s| {
            format!(", {}% loss", fmt_percent(loss_percent(s, received)))
        });
        let inv = if invalid > 0 {
            format!(", {invalid} invalid")
        } else {
            String::new()
        };
        format!(
            "{label}: {received}{of} received, {ooo} out-of-order{loss}{inv}, {:.1} packets/s, {:.3} Mb/s\n",
            per_sec(received, self.time),
            mbit_per_sec(bytes, self.time)
        )
    }

    /// The statistics block, in the prototype's shape plus one line per direction.
    pub fn text(&self) -> String {
        let ms = self.time.as_secs_f64() * 1000.0;
        let mut out = format!("\n--- {} perf statistics ---\n", self.name);
        match self.end_to_end() {
            Some((rcvd, bytes)) => out.push_str(&format!(
                "{} packets transmitted, {rcvd} received, {}% packet loss, time: {ms:.3} ms, bandwidth: {:.3} Mb/s.\n",
                self.sent,
                fmt_percent(loss_percent(self.sent, rcvd)),
                mbit_per_sec(bytes, self.time)
            )),
            None => out.push_str(&format!(
                "{} packets transmitted, no report from the server, time: {ms:.3} ms.\n",
                self.sent
            )),
        }
        if let Some(r) = &self.server {
            out.push_str(&self.direction_line(
                "client -> server",
                Some(self.sent),
                r.received,
                r.bytes,
                r.out_of_order,
                r.invalid,
            ));
        }
        if let Some(e) = &self.echoes {
            out.push_str(&self.direction_line(
                "server -> client",
                self.server.map(|r| r.echoed),
                e.received,
                e.bytes,
                e.out_of_order,
                self.invalid,
            ));
        }
        out
    }

    fn direction_json(
        &self,
        sent: Option<u64>,
        received: u64,
        bytes: u64,
        ooo: u64,
        invalid: u64,
    ) -> Value {
        json!({
            "sent": sent,
            "received": received,
            "bytes": bytes,
            "out_of_order": ooo,
            "invalid": invalid,
            "loss_percent": sent.map(|s| round(loss_percent(s, received))),
            "packets_per_s": round(per_sec(received, self.time)),
            "mbit_per_s": round(mbit_per_sec(bytes, self.time)),
        })
    }

    /// The summary as one JSON object (times in ms, rates per second).
    pub fn json(&self) -> Value {
        let e2e = self.end_to_end();
        let up = self.server.map(|r| {
            self.direction_json(
                Some(self.sent),
                r.received,
                r.bytes,
                r.out_of_order,
                r.invalid,
            )
        });
        let down = self.echoes.map(|e| {
            self.direction_json(
                self.server.map(|r| r.echoed),
                e.received,
                e.bytes,
                e.out_of_order,
                self.invalid,
            )
        });
        json!({
            "name": self.name,
            "mode": self.mode.name(),
            "size": self.size,
            "flood": self.rate.is_none(),
            "rate_bps": self.rate,
            "time_ms": round(self.time.as_secs_f64() * 1000.0),
            "transmitted": self.sent,
            "received": e2e.map(|(r, _)| r),
            "loss_percent": e2e.map(|(r, _)| round(loss_percent(self.sent, r))),
            "send_packets_per_s": round(per_sec(self.sent, self.time)),
            "send_mbit_per_s": round(mbit_per_sec(self.sent * self.size as u64, self.time)),
            "packets_per_s": e2e.map(|(r, _)| round(per_sec(r, self.time))),
            "mbit_per_s": e2e.map(|(_, b)| round(mbit_per_sec(b, self.time))),
            "client_to_server": up,
            "server_to_client": down,
        })
    }
}

/// Six decimals, without float noise in the last digits.
pub fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_tracking() {
        let mut t = SeqTracker::default();
        assert!(t.record(0, 100));
        assert!(t.record(2, 100));
        assert_eq!(t.lost(), 1);
        assert!(!t.record(1, 100));
        assert_eq!(t.lost(), 0);
        assert!(t.record(5, 50));
        assert_eq!(t.received, 4);
        assert_eq!(t.bytes, 350);
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.next_seq, 6);
        assert_eq!(t.lost(), 2);
        let r = t.report(3, 4);
        assert_eq!(SeqTracker::from_report(&r), t);
        assert_eq!((r.received, r.invalid, r.echoed, r.next_seq), (4, 3, 4, 6));
        // A duplicate counts as received and out of order; loss never goes negative.
        t.record(0, 1);
        t.record(0, 1);
        t.record(0, 1);
        assert_eq!(t.lost(), 0);
        let mut t = SeqTracker::default();
        t.record(u64::MAX, 1);
        assert_eq!(t.next_seq, u64::MAX);
    }

    #[test]
    fn percentages_and_rates() {
        assert_eq!(loss_percent(0, 0), 0.0);
        assert_eq!(loss_percent(8, 7), 12.5);
        assert_eq!(loss_percent(5, 9), 0.0);
        assert_eq!(fmt_percent(0.0), "0");
        assert_eq!(fmt_percent(12.5), "12.5");
        assert_eq!(fmt_percent(100.0), "100");
        assert_eq!(fmt_percent(0.12345), "0.123");
        assert_eq!(fmt_percent(0.0001), "0");
        assert_eq!(per_sec(10, Duration::ZERO), 0.0);
        assert_eq!(per_sec(10, Duration::from_millis(500)), 20.0);
        assert_eq!(mbit_per_sec(1_250_000, Duration::from_secs(1)), 10.0);
        assert_eq!(fmt_secs(Duration::from_secs(60)), "60 s");
        assert_eq!(fmt_secs(Duration::from_millis(250)), "250 ms");
        assert_eq!(fmt_secs(Duration::from_millis(1500)), "1.500 s");
    }

    #[test]
    fn header_lines() {
        assert_eq!(
            header("p", Mode::Uni, 1500, Duration::from_secs(60), Some(1_000_000)),
            "Doing a unidirectional test.\nSending 1500 byte packets for 60 s to p at 1.000 Mb/s.\n"
        );
        assert_eq!(
            header("p", Mode::Bi, 1400, Duration::from_secs(1), None),
            "Doing a bidirectional test.\nFlooding p with 1400 byte packets for 1 s.\n"
        );
    }

    fn report(received: u64, echoed: u64) -> Report {
        Report {
            received,
            bytes: received * 1000,
            out_of_order: 0,
            invalid: 0,
            echoed,
            next_seq: received,
        }
    }

    #[test]
    fn uni_summary() {
        let s = Summary {
            name: "operf",
            mode: Mode::Uni,
            size: 1000,
            rate: Some(8_000_000),
            time: Duration::from_secs(1),
            sent: 1000,
            server: Some(report(990, 0)),
            echoes: None,
            invalid: 0,
        };
        assert_eq!(
            s.text(),
            "\n--- operf perf statistics ---\n\
             1000 packets transmitted, 990 received, 1% packet loss, time: 1000.000 ms, bandwidth: 7.920 Mb/s.\n\
             client -> server: 990 of 1000 received, 0 out-of-order, 1% loss, 990.0 packets/s, 7.920 Mb/s\n"
        );
        let j = s.json();
        assert_eq!(j["mode"], "uni");
        assert_eq!(j["transmitted"], 1000);
        assert_eq!(j["received"], 990);
        assert_eq!(j["loss_percent"], 1.0);
        assert_eq!(j["mbit_per_s"], 7.92);
        assert_eq!(j["send_mbit_per_s"], 8.0);
        assert_eq!(j["packets_per_s"], 990.0);
        assert_eq!(j["rate_bps"], 8_000_000);
        assert_eq!(j["flood"], false);
        assert_eq!(j["client_to_server"]["received"], 990);
        assert_eq!(j["server_to_client"], Value::Null);
    }

    #[test]
    fn bi_summary() {
        let mut echoes = SeqTracker::default();
        for seq in 0..98 {
            echoes.record(seq, 1000);
        }
        let s = Summary {
            name: "x",
            mode: Mode::Bi,
            size: 1000,
            rate: None,
            time: Duration::from_millis(500),
            sent: 100,
            server: Some(report(99, 99)),
            echoes: Some(echoes),
            invalid: 2,
        };
        let t = s.text();
        assert!(
            t.contains("100 packets transmitted, 98 received, 2% packet loss, time: 500.000 ms, bandwidth: 1.568 Mb/s.\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "client -> server: 99 of 100 received, 0 out-of-order, 1% loss, 198.0 packets/s"
            ),
            "{t}"
        );
        assert!(t.contains("server -> client: 98 of 99 received, 0 out-of-order, 1.01% loss, 2 invalid, 196.0 packets/s"), "{t}");
        let j = s.json();
        assert_eq!(j["flood"], true);
        assert_eq!(j["rate_bps"], Value::Null);
        assert_eq!(j["received"], 98);
        assert_eq!(j["server_to_client"]["sent"], 99);
        assert_eq!(j["server_to_client"]["invalid"], 2);
    }

    #[test]
    fn no_report() {
        let s = Summary {
            name: "x",
            mode: Mode::Uni,
            size: 100,
            rate: Some(1),
            time: Duration::from_secs(2),
            sent: 5,
            server: None,
            echoes: None,
            invalid: 0,
        };
        assert!(s
            .text()
            .contains("5 packets transmitted, no report from the server, time: 2000.000 ms.\n"));
        let j = s.json();
        assert_eq!(j["received"], Value::Null);
        assert_eq!(j["loss_percent"], Value::Null);
        assert_eq!(j["client_to_server"], Value::Null);
    }

    #[test]
    fn live_line() {
        let mut rx = SeqTracker::default();
        rx.record(0, 1000);
        rx.record(3, 1000);
        let l = progress_line(Duration::from_secs(2), 10, 1000, Some(&rx), "back");
        assert_eq!(l, "    2.0 s  sent 10 (0.040 Mb/s)  back 2  lost 2 (50%)");
        let l = progress_line(Duration::from_secs(1), 0, 1000, None, "back");
        assert_eq!(l, "    1.0 s  sent 0 (0.000 Mb/s)");
    }
}
