//! What the `ocbr` server counts per flow and the lines both sides print. Pure.

use crate::operf::stats::{fmt_percent, loss_percent, mbit_per_sec, per_sec, round, SeqTracker};
use crate::operf::wire::{decode, encode, Msg};
use serde_json::{json, Value};
use std::time::Duration;

/// One report: what arrived over `time`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub packets: u64,
    pub bytes: u64,
    pub time: Duration,
    /// Sequence numbers skipped over in this interval (net of late arrivals; never below 0).
    pub lost: u64,
    pub out_of_order: u64,
}

impl Interval {
    /// `Flow    N:   packets packets (   bytes bytes) in   ms ms =>  pps pps,  Mbps Mbps,
    /// N lost, N out-of-order`: the prototype's line plus the loss columns.
    pub fn line(&self, flow: u64) -> String {
        format!(
            "Flow {flow:4}: {:9} packets ({:12} bytes) in {:9} ms => {:9.4} pps, {:9.4} Mbps, {} lost, {} out-of-order",
            self.packets,
            self.bytes,
            self.time.as_millis(),
            per_sec(self.packets, self.time),
            mbit_per_sec(self.bytes, self.time),
            self.lost,
            self.out_of_order,
        )
    }

    pub fn json(&self, flow: u64) -> Value {
        json!({
            "flow": flow,
            "report": "interval",
            "packets": self.packets,
            "bytes": self.bytes,
            "time_ms": round(self.time.as_secs_f64() * 1000.0),
            "packets_per_s": round(per_sec(self.packets, self.time)),
            "mbit_per_s": round(mbit_per_sec(self.bytes, self.time)),
            "lost": self.lost,
            "out_of_order": self.out_of_order,
        })
    }
}

/// One flow as the server sees it.
#[derive(Debug, Default, Clone)]
pub struct FlowStats {
    pub total: SeqTracker,
    /// The totals at the start of the current interval.
    mark: SeqTracker,
    pub invalid: u64,
    /// Packets the client said it sent (from END).
    pub sent: Option<u64>,
}

impl FlowStats {
    /// Take in one packet; returns the answer to send, if any (the final counts, for END).
    pub fn on_packet(&mut self, pkt: &[u8]) -> Option<Vec<u8>> {
        match decode(pkt) {
            Ok(Msg::Data { seq, .. }) => {
                self.total.record(seq, pkt.len());
                None
            }
            Ok(Msg::End { sent }) => {
                self.sent = Some(sent);
                Some(encode(&Msg::Report {
                    report: self.total.report(self.invalid, 0),
                    last: true,
                }))
            }
            _ => {
                self.invalid += 1;
                None
            }
        }
    }

    /// Close the current interval, which lasted `time`.
    pub fn interval(&mut self, time: Duration) -> Interval {
        let (t, m) = (&self.total, &self.mark);
        let iv = Interval {
            packets: t.received - m.received,
            bytes: t.bytes - m.bytes,
            time,
            lost: t.lost().saturating_sub(m.lost()),
            out_of_order: t.out_of_order - m.out_of_order,
        };
        self.mark = self.total;
        iv
    }

    /// Packets lost over the whole flow: against what the client said it sent if it did,
    /// else against the highest sequence number seen.
    pub fn lost(&self) -> u64 {
        match self.sent {
            Some(s) => s.saturating_sub(self.total.received),
            None => self.total.lost(),
        }
    }

    fn expected(&self) -> u64 {
        self.sent.unwrap_or(self.total.next_seq)
    }

    /// The line for the whole flow; `time` from its first to its last packet.
    pub fn total_line(&self, flow: u64, time: Duration) -> String {
        let t = &self.total;
        let mut s = format!(
            "Flow {flow:4}: total {} packets ({} bytes) in {} ms => {:.4} pps, {:.4} Mbps, {} lost ({}%), {} out-of-order",
            t.received,
            t.bytes,
            time.as_millis(),
            per_sec(t.received, time),
            mbit_per_sec(t.bytes, time),
            self.lost(),
            fmt_percent(loss_percent(self.expected(), t.received)),
            t.out_of_order,
        );
        if let Some(sent) = self.sent {
            s.push_str(&format!(" of {sent} sent"));
        }
        if self.invalid > 0 {
            s.push_str(&format!(", {} invalid", self.invalid));
        }
        s
    }

    pub fn total_json(&self, flow: u64, time: Duration) -> Value {
        let t = &self.total;
        json!({
            "flow": flow,
            "report": "total",
            "packets": t.received,
            "bytes": t.bytes,
            "time_ms": round(time.as_secs_f64() * 1000.0),
            "packets_per_s": round(per_sec(t.received, time)),
            "mbit_per_s": round(mbit_per_sec(t.bytes, time)),
            "lost": self.lost(),
            "loss_percent": round(loss_percent(self.expected(), t.received)),
            "out_of_order": t.out_of_order,
            "sent": self.sent,
            "invalid": self.invalid,
        })
    }
}

/// What the client prints first.
pub fn client_header(duration: Duration, rate: Option<u64>, size: usize) -> String {
    let rate = rate.map_or("flood".to_string(), |r| format!("{r} b/s"));
    format!(
        "Client started, duration {}, rate {rate}, size {size} B.",
        crate::operf::stats::fmt_secs(duration)
    )
}

/// The client's summary: what it sent, and what the server says arrived.
#[derive(Debug, Clone)]
pub struct ClientSummary<'a> {
    pub name: &'a str,
    pub size: usize,
    pub rate: Option<u64>,
    pub time: Duration,
    pub sent: u64,
    pub server: Option<crate::operf::wire::Report>,
}

impl ClientSummary<'_> {
    pub fn text(&self) -> String {
        let bytes = self.sent * self.size as u64;
        let mut s = format!(
            "sent statistics: {:9} packets, {:12} bytes in {:9} ms, {:4.4} Mb/s\n",
            self.sent,
            bytes,
            self.time.as_millis(),
            mbit_per_sec(bytes, self.time)
        );
        match &self.server {
            Some(r) => s.push_str(&format!(
                "server statistics: {:7} packets, {:12} bytes, {} lost ({}%), {} out-of-order\n",
                r.received,
                r.bytes,
                self.sent.saturating_sub(r.received),
                fmt_percent(loss_percent(self.sent, r.received)),
                r.out_of_order
            )),
            None => s.push_str("server statistics: no report from the server\n"),
        }
        s
    }

    pub fn json(&self) -> Value {
        let bytes = self.sent * self.size as u64;
        let server = self.server.map(|r| {
            json!({
                "received": r.received,
                "bytes": r.bytes,
                "lost": self.sent.saturating_sub(r.received),
                "loss_percent": round(loss_percent(self.sent, r.received)),
                "out_of_order": r.out_of_order,
                "invalid": r.invalid,
            })
        });
        json!({
            "name": self.name,
            "size": self.size,
            "flood": self.rate.is_none(),
            "rate_bps": self.rate,
            "time_ms": round(self.time.as_secs_f64() * 1000.0),
            "sent": self.sent,
            "bytes": bytes,
            "packets_per_s": round(per_sec(self.sent, self.time)),
            "mbit_per_s": round(mbit_per_sec(bytes, self.time)),
            "server": server,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operf::wire::{encode_data, Report};

    fn data(seq: u64) -> Vec<u8> {
        let mut b = vec![0u8; 100];
        encode_data(&mut b, seq, 0);
        b
    }

    #[test]
    fn intervals_from_sequence_numbers() {
        let mut f = FlowStats::default();
        for seq in [0, 1, 2, 4, 5] {
            assert_eq!(f.on_packet(&data(seq)), None);
        }
        let a = f.interval(Duration::from_secs(1));
        assert_eq!((a.packets, a.bytes, a.lost, a.out_of_order), (5, 500, 1, 0));
        assert_eq!(
            a.line(7),
            "Flow    7:         5 packets (         500 bytes) in      1000 ms =>    5.0000 pps,    0.0040 Mbps, 1 lost, 0 out-of-order"
        );
        // The late one fills the gap: nothing lost in this interval, one out of order.
        f.on_packet(&data(3));
        f.on_packet(&data(6));
        f.on_packet(b"junk");
        let b = f.interval(Duration::from_millis(500));
        assert_eq!((b.packets, b.lost, b.out_of_order), (2, 0, 1));
        assert_eq!(f.lost(), 0);
        assert_eq!(f.invalid, 1);
        let j = b.json(7);
        assert_eq!(j["packets_per_s"], 4.0);
        assert_eq!(j["report"], "interval");
        // An empty interval.
        let c = f.interval(Duration::from_secs(1));
        assert_eq!((c.packets, c.bytes, c.lost), (0, 0, 0));
    }

    #[test]
    fn end_gives_the_final_count() {
        let mut f = FlowStats::default();
        f.on_packet(&data(0));
        f.on_packet(&data(1));
        let answer = f
            .on_packet(&encode(&Msg::End { sent: 4 }))
            .unwrap_or_default();
        match decode(&answer) {
            Ok(Msg::Report { report, last: true }) => {
                assert_eq!((report.received, report.bytes), (2, 200))
            }
            other => panic!("{other:?}"),
        }
        // Tail loss only shows against the count the client sent.
        assert_eq!(f.lost(), 2);
        let l = f.total_line(1, Duration::from_secs(2));
        assert_eq!(
            l,
            "Flow    1: total 2 packets (200 bytes) in 2000 ms => 1.0000 pps, 0.0008 Mbps, 2 lost (50%), 0 out-of-order of 4 sent"
        );
        let j = f.total_json(1, Duration::from_secs(2));
        assert_eq!(j["loss_percent"], 50.0);
        assert_eq!(j["sent"], 4);
    }

    #[test]
    fn client_lines() {
        assert_eq!(
            client_header(Duration::from_secs(60), Some(1_000_000), 1000),
            "Client started, duration 60 s, rate 1000000 b/s, size 1000 B."
        );
        assert_eq!(
            client_header(Duration::from_secs(1), None, 20),
            "Client started, duration 1 s, rate flood, size 20 B."
        );
        let s = ClientSummary {
            name: "c",
            size: 1000,
            rate: Some(8_000_000),
            time: Duration::from_secs(1),
            sent: 1000,
            server: Some(Report {
                received: 999,
                bytes: 999_000,
                ..Report::default()
            }),
        };
        assert_eq!(
            s.text(),
            "sent statistics:      1000 packets,      1000000 bytes in      1000 ms, 8.0000 Mb/s\n\
             server statistics:     999 packets,       999000 bytes, 1 lost (0.1%), 0 out-of-order\n"
        );
        let j = s.json();
        assert_eq!(j["mbit_per_s"], 8.0);
        assert_eq!(j["server"]["lost"], 1);
        let s = ClientSummary { server: None, ..s };
        assert!(s.text().contains("no report from the server"));
        assert_eq!(s.json()["server"], Value::Null);
    }
}
