//! The `ocbr` server: accept flows forever, one thread per flow, a report per flow every
//! interval, and a total when the flow ends (END from the client, silence for the timeout,
//! or the flow going down).

use super::stats::FlowStats;
use super::Args;
use o7s::{Error, Flow};
use std::time::{Duration, Instant};

/// Accept flows until the IRMd goes away; returns the exit code.
pub fn run(args: &Args) -> anyhow::Result<i32> {
    if !args.json {
        outln!(
            "Server started, interval is {}, timeout is {}.",
            crate::operf::stats::fmt_secs(args.interval),
            crate::operf::stats::fmt_secs(args.timeout)
        );
    }
    loop {
        let flow = crate::accept_next().map_err(|e| anyhow::anyhow!("cannot accept flows: {e}"))?;
        if !args.json {
            outln!("New flow {}.", flow.id());
        }
        let (interval, timeout, json) = (args.interval, args.timeout, args.json);
        std::thread::spawn(move || serve(flow, interval, timeout, json));
    }
}

/// Report on one flow until it ends.
pub fn serve(flow: Flow, interval: Duration, timeout: Duration, json: bool) {
    let id = flow.id();
    flow.set_read_timeout(Some(interval.min(timeout).min(Duration::from_millis(100))));
    flow.set_write_timeout(Some(Duration::from_secs(1)));
    let mut buf = vec![0u8; flow.mtu().max(1)];
    let mut f = FlowStats::default();
    let start = Instant::now();
    let mut iv_start = start;
    let mut alive = start;
    let mut first: Option<Instant> = None;
    let mut last = start;
    let report = |f: &mut FlowStats, time: Duration| {
        let iv = f.interval(time);
        if json {
            outln!("{}", iv.json(id));
        } else {
            outln!("{}", iv.line(id));
        }
    };
    let why = loop {
        match flow.read(&mut buf) {
            Ok(n) => {
                let now = Instant::now();
                alive = now;
                let before = f.total.received;
                let answer = f.on_packet(&buf[..n]);
                if f.total.received > before {
                    first.get_or_insert(now);
                    last = now;
                }
                if let Some(a) = answer {
                    let _ = flow.write(&a);
                    if f.sent.is_some() {
                        break "";
                    }
                }
            }
            Err(Error::Timeout | Error::WouldBlock) => {
                if flow.is_down() {
                    break "";
                }
            }
            Err(Error::BufferTooSmall { needed }) => buf.resize(needed, 0),
            Err(Error::FlowDown) => break "",
            Err(_) => break "",
        }
        let now = Instant::now();
        if now - alive > timeout {
            break "timed out";
        }
        if now - iv_start >= interval {
            report(&mut f, now - iv_start);
            iv_start = now;
        }
    };
    let now = Instant::now();
    report(&mut f, now - iv_start);
    if !why.is_empty() && !json {
        outln!("Test on flow {id} {why}.");
    }
    let active = first.map_or(Duration::ZERO, |t| last - t);
    if json {
        outln!("{}", f.total_json(id, active));
    } else {
        outln!("{}", f.total_line(id, active));
    }
    // After END the client closes the flow once it has the answer; a repeated END (the
    // answer was lost) is answered again.
    if f.sent.is_some() {
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            match flow.read(&mut buf) {
                Ok(n) => {
                    if let Some(a) = f.on_packet(&buf[..n]) {
                        let _ = flow.write(&a);
                    }
                }
                Err(Error::Timeout | Error::WouldBlock) if !flow.is_down() => {}
                Err(Error::BufferTooSmall { needed }) => buf.resize(needed, 0),
                Err(_) => break,
            }
        }
    }
}
