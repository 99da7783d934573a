//! The `ocbr` client: DATA packets on the timetable of [`crate::operf::pace`] for the
//! duration, then END; the server answers END with what it received.

use super::stats::{client_header, ClientSummary};
use super::Args;
use crate::operf::pace::{self, Pacer, Wait};
use crate::operf::progress::{self, Progress};
use crate::operf::stats::progress_line;
use crate::operf::wire::{decode, encode, encode_data, Msg, Report};
use o7s::{Error, Flow};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest single wait, so a signal is noticed quickly.
const TICK: Duration = Duration::from_millis(100);
/// How long to wait for the server's answer to END.
const ANSWER_WAIT: Duration = Duration::from_secs(2);
/// How often END is sent again while no answer came.
const RESEND: Duration = Duration::from_millis(500);

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Send to `args.name`; returns the exit code (0 unless the flow failed).
pub fn run(args: &Args) -> anyhow::Result<i32> {
    let name = args.name.clone().unwrap_or_default();
    let rate = (!args.flood).then_some(args.rate);
    if !args.json {
        outln!("{}", client_header(args.duration, rate, args.size));
    }
    let flow = match crate::client_flow("ocbr", &name, args.qos.spec(), args.size) {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let stop = crate::stop_flag();
    flow.set_write_timeout(Some(TICK));
    let mut progress = Progress::new(!args.json);
    let (sent, time, down) = send(&flow, args, &stop, &mut progress)
        .map_err(|e| anyhow::anyhow!("cannot send to \"{name}\": {e}"))?;
    progress.clear();
    let server = if down { None } else { finish(&flow, sent) };
    let summary = ClientSummary {
        name: &name,
        size: args.size,
        rate,
        time,
        sent,
        server,
    };
    if down {
        errln!("ocbr: flow to {name} went down");
    }
    if args.json {
        outln!("{}", summary.json());
    } else {
        outln!("{}", summary.text().trim_end());
    }
    Ok(if down { 1 } else { 0 })
}

/// The send phase; returns the packets sent, for how long, and whether the flow went down.
fn send(
    flow: &Flow,
    args: &Args,
    stop: &AtomicBool,
    progress: &mut Progress,
) -> Result<(u64, Duration, bool), Error> {
    let how = if args.flood {
        Wait::Flood
    } else if args.spin {
        Wait::Spin
    } else {
        Wait::Sleep
    };
    let mut pacer = Pacer::new(pace::gap(args.size, args.rate), args.flood);
    let mut buf = vec![0u8; args.size];
    let mut sent: u64 = 0;
    let start = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let now = start.elapsed();
        if now >= args.duration {
            break;
        }
        if progress.due(Instant::now()) {
            progress.show(
                Instant::now(),
                &progress_line(now, sent, args.size, None, ""),
            );
        }
        let due = pacer.due_in(now);
        if !due.is_zero() {
            let mut at = (now + due).min(args.duration);
            if progress.is_on() {
                at = at.min(now + progress::EVERY);
            }
            pace::wait(start, at, how, stop);
            continue;
        }
        encode_data(&mut buf, sent, nanos(now));
        match flow.write(&buf) {
            Ok(_) => {
                sent += 1;
                pacer.sent(now);
            }
            Err(Error::Timeout | Error::WouldBlock) => {}
            Err(Error::FlowDown) => return Ok((sent, start.elapsed(), true)),
            Err(e) => return Err(e),
        }
    }
    Ok((sent, start.elapsed().min(args.duration), false))
}

/// Send END until the server answers with its counts (or [`ANSWER_WAIT`] passes).
fn finish(flow: &Flow, sent: u64) -> Option<Report> {
    let end = encode(&Msg::End { sent });
    let mut buf = vec![0u8; flow.mtu().max(64)];
    let give_up = Instant::now() + ANSWER_WAIT;
    let mut resend = Instant::now();
    flow.set_read_timeout(Some(Duration::from_millis(50)));
    while Instant::now() < give_up {
        if Instant::now() >= resend {
            match flow.write(&end) {
                Ok(_) => resend = Instant::now() + RESEND,
                Err(Error::Timeout | Error::WouldBlock) => {}
                Err(_) => return None,
            }
        }
        match flow.read(&mut buf) {
            Ok(n) => {
                if let Ok(Msg::Report { report, last: true }) = decode(&buf[..n]) {
                    return Some(report);
                }
            }
            Err(Error::Timeout | Error::WouldBlock) => {}
            Err(Error::BufferTooSmall { needed }) => buf.resize(needed, 0),
            Err(_) => return None,
        }
    }
    None
}
