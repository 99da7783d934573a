//! What `oping` counts and the lines it prints, in the prototype's shapes. Pure: the caller
//! measures, this module adds up and formats.

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::time::Duration;

/// The running tally of one ping session.
#[derive(Debug)]
pub struct Stats {
    pub transmitted: u64,
    pub received: u64,
    pub out_of_order: u64,
    pub duplicates: u64,
    /// Replies that matched no request (too short, or a sequence number never sent).
    pub invalid: u64,
    /// Highest sequence number seen plus one: a reply below it arrived out of order.
    expected: u64,
    seen: Vec<bool>,
    min_ms: f64,
    max_ms: f64,
    avg_ms: f64,
    m2: f64,
    hist: Histogram<u64>,
}

/// What a reply turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    InOrder,
    OutOfOrder,
    Duplicate,
    Invalid,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            transmitted: 0,
            received: 0,
            out_of_order: 0,
            duplicates: 0,
            invalid: 0,
            expected: 0,
            seen: Vec::new(),
            min_ms: f64::INFINITY,
            max_ms: 0.0,
            avg_ms: 0.0,
            m2: 0.0,
            // Three significant digits, growing as needed.
            hist: Histogram::new(3).expect("3 significant digits are within hdrhistogram's range"),
        }
    }

    /// Count one reply with sequence number `seq` that took `rtt`.
    pub fn reply(&mut self, seq: u32, rtt: Duration) -> Reply {
        let seq = u64::from(seq);
        if seq >= self.transmitted {
            self.invalid += 1;
            return Reply::Invalid;
        }
        let i = seq as usize;
        if self.seen.len() <= i {
            self.seen.resize(i + 1, false);
        }
        if self.seen[i] {
            self.duplicates += 1;
            return Reply::Duplicate;
        }
        self.seen[i] = true;
        self.received += 1;
        let ms = rtt.as_secs_f64() * 1000.0;
        self.min_ms = self.min_ms.min(ms);
        self.max_ms = self.max_ms.max(ms);
        let d = ms - self.avg_ms;
        self.avg_ms += d / self.received as f64;
        self.m2 += d * (ms - self.avg_ms);
        let _ = self
            .hist
            .record(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX).max(1));
        if seq < self.expected {
            self.out_of_order += 1;
            Reply::OutOfOrder
        } else {
            self.expected = seq + 1;
            Reply::InOrder
        }
    }

    /// Has the reply to `seq` arrived?
    pub fn has(&self, seq: u32) -> bool {
        self.seen.get(seq as usize).copied().unwrap_or(false)
    }

    /// Largest RTT so far.
    pub fn max_rtt(&self) -> Duration {
        Duration::from_secs_f64(self.max_ms / 1000.0)
    }

    /// Whole percent of requests without a reply, rounded up like the prototype.
    pub fn loss_percent(&self) -> f64 {
        if self.transmitted == 0 {
            return 0.0;
        }
        (100.0 - 100.0 * (self.received as f64 / self.transmitted as f64)).ceil()
    }

    /// Sample standard deviation of the RTT, in ms (0 with fewer than two replies).
    pub fn mdev_ms(&self) -> f64 {
        if self.received < 2 {
            0.0
        } else {
            (self.m2 / (self.received - 1) as f64).sqrt()
        }
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1e6
    }
}

/// `Pinging NAME with SIZE bytes of data (COUNT packets):` and a blank line.
pub fn header(name: &str, size: usize, count: Option<u64>) -> String {
    match count {
        Some(c) => format!("Pinging {name} with {size} bytes of data ({c} packets):\n"),
        None => format!("Pinging {name} with {size} bytes of data (until interrupted):\n"),
    }
}

/// `SIZE bytes from NAME: seq=N time=X.XXX ms`, marked when out of order or duplicate.
pub fn reply_line(size: usize, name: &str, seq: u32, rtt: Duration, kind: Reply) -> String {
    let mark = match kind {
        Reply::OutOfOrder => " [out-of-order]",
        Reply::Duplicate => " [duplicate]",
        _ => "",
    };
    format!(
        "{size} bytes from {name}: seq={seq} time={:.3} ms{mark}",
        rtt.as_secs_f64() * 1000.0
    )
}

/// The statistics block: a blank line, the title, the counts and (with replies) the RTTs.
pub fn summary(name: &str, s: &Stats, elapsed: Duration) -> String {
    let mut out = format!(
        "\n--- {name} ping statistics ---\n\
         {} packets transmitted, {} received, {} out-of-order, {:.0}% packet loss, time: {:.3} ms\n",
        s.transmitted,
        s.received,
        s.out_of_order,
        s.loss_percent(),
        elapsed.as_secs_f64() * 1000.0
    );
    if s.received > 0 {
        out.push_str(&format!(
            "rtt min/avg/max/mdev = {:.3}/{:.3}/{:.3}/{:.3} ms\n",
            s.min_ms,
            s.avg_ms,
            s.max_ms,
            s.mdev_ms()
        ));
    }
    out
}

/// The summary as one JSON object (times in ms; `rtt_ms` is null without replies).
pub fn summary_json(name: &str, size: usize, s: &Stats, elapsed: Duration) -> Value {
    // Nanosecond resolution, without float noise in the last digits.
    let r = |ms: f64| (ms * 1e6).round() / 1e6;
    let rtt = (s.received > 0).then(|| {
        json!({
            "min": r(s.min_ms),
            "avg": r(s.avg_ms),
            "max": r(s.max_ms),
            "mdev": r(s.mdev_ms()),
            "p50": r(s.quantile_ms(0.5)),
            "p99": r(s.quantile_ms(0.99)),
        })
    });
    json!({
        "name": name,
        "size": size,
        "transmitted": s.transmitted,
        "received": s.received,
        "out_of_order": s.out_of_order,
        "duplicates": s.duplicates,
        "loss_percent": s.loss_percent(),
        "time_ms": r(elapsed.as_secs_f64() * 1000.0),
        "rtt_ms": rtt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn the_prototypes_lines() {
        assert_eq!(
            header("oping.server", 64, Some(3)),
            "Pinging oping.server with 64 bytes of data (3 packets):\n"
        );
        assert_eq!(
            reply_line(64, "oping.server", 0, us(123), Reply::InOrder),
            "64 bytes from oping.server: seq=0 time=0.123 ms"
        );
        assert_eq!(
            reply_line(
                64,
                "x",
                5,
                Duration::from_nanos(1_234_567),
                Reply::OutOfOrder
            ),
            "64 bytes from x: seq=5 time=1.235 ms [out-of-order]"
        );
        let mut s = Stats::new();
        s.transmitted = 3;
        assert_eq!(s.reply(0, us(104)), Reply::InOrder);
        assert_eq!(s.reply(1, us(125)), Reply::InOrder);
        assert_eq!(s.reply(2, us(131)), Reply::InOrder);
        assert_eq!(
            summary("oping.server", &s, Duration::from_micros(3_001_011)),
            "\n--- oping.server ping statistics ---\n\
             3 packets transmitted, 3 received, 0 out-of-order, 0% packet loss, time: 3001.011 ms\n\
             rtt min/avg/max/mdev = 0.104/0.120/0.131/0.014 ms\n"
        );
    }

    #[test]
    fn loss_out_of_order_and_duplicates() {
        let mut s = Stats::new();
        s.transmitted = 4;
        assert_eq!(s.reply(1, us(100)), Reply::InOrder);
        assert_eq!(s.reply(0, us(300)), Reply::OutOfOrder);
        assert_eq!(s.reply(0, us(300)), Reply::Duplicate);
        assert_eq!(s.reply(9, us(300)), Reply::Invalid);
        assert!(s.has(0) && s.has(1) && !s.has(2));
        assert_eq!(s.received, 2);
        assert_eq!(s.out_of_order, 1);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.invalid, 1);
        assert_eq!(s.loss_percent(), 50.0);
        let text = summary("n", &s, Duration::from_millis(10));
        assert!(text.contains(
            "4 packets transmitted, 2 received, 1 out-of-order, 50% packet loss, time: 10.000 ms"
        ));
        // 1 of 3 lost: 33.3% rounds up like the prototype.
        let mut s = Stats::new();
        s.transmitted = 3;
        s.reply(0, us(1));
        s.reply(1, us(1));
        assert_eq!(s.loss_percent(), 34.0);
    }

    #[test]
    fn no_replies_no_rtt_line() {
        let mut s = Stats::new();
        s.transmitted = 2;
        let t = summary("n", &s, Duration::from_secs(2));
        assert!(t.contains("2 packets transmitted, 0 received, 0 out-of-order, 100% packet loss"));
        assert!(!t.contains("rtt"));
        let j = summary_json("n", 64, &s, Duration::from_secs(2));
        assert_eq!(j["rtt_ms"], Value::Null);
        assert_eq!(j["loss_percent"], 100.0);
        let s = Stats::new();
        assert!(summary("n", &s, Duration::ZERO).contains("0% packet loss"));
    }

    #[test]
    fn json_summary() {
        let mut s = Stats::new();
        s.transmitted = 2;
        s.reply(0, us(100));
        s.reply(1, us(300));
        let j = summary_json("n", 64, &s, Duration::from_millis(1000));
        assert_eq!(j["transmitted"], 2);
        assert_eq!(j["received"], 2);
        assert_eq!(j["out_of_order"], 0);
        assert_eq!(j["time_ms"], 1000.0);
        let r = &j["rtt_ms"];
        assert!((r["min"].as_f64().unwrap_or(0.0) - 0.1).abs() < 1e-9);
        assert!((r["avg"].as_f64().unwrap_or(0.0) - 0.2).abs() < 1e-9);
        assert!((r["max"].as_f64().unwrap_or(0.0) - 0.3).abs() < 1e-9);
        assert!((r["p99"].as_f64().unwrap_or(0.0) - 0.3).abs() < 0.001);
        assert!((r["p50"].as_f64().unwrap_or(0.0) - 0.1).abs() < 0.001);
        assert!((r["mdev"].as_f64().unwrap_or(0.0) - 0.141_421).abs() < 1e-5);
    }
}
