//! The `operf` client: one flow, two threads. The main thread sends DATA on the timetable
//! of [`super::pace`] and draws the live line; a reader thread counts what comes back
//! (echoes in bi mode, the server's reports in both). After the send phase the client sends
//! END and waits for the server's final report, which arrives after every echo the server
//! sent before it.

use super::pace::{self, Pacer, Wait};
use super::progress::Progress;
use super::stats::{self, SeqTracker, Summary};
use super::wire::{decode, encode, encode_data, Mode, Msg, Report};
use super::Args;
use o7s::{Error, Flow};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest single wait, so a signal is noticed quickly.
const TICK: Duration = Duration::from_millis(100);
/// How long the server has to acknowledge the test, and to send its final report.
const ANSWER_WAIT: Duration = Duration::from_secs(3);
/// How often START and END are sent again while no answer came.
const RESEND: Duration = Duration::from_millis(500);

/// What the reader thread learned.
#[derive(Debug, Default)]
struct Rx {
    echoes: SeqTracker,
    invalid: u64,
    latest: Option<Report>,
    last: Option<Report>,
    down: bool,
}

fn lock(rx: &Mutex<Rx>) -> std::sync::MutexGuard<'_, Rx> {
    rx.lock().unwrap_or_else(|e| e.into_inner())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How the handshake went.
enum Hello {
    Acked,
    /// Our START came back unchanged: an echo server, not operf.
    Echoed,
    Silent,
    Down,
}

/// Send START until ACK comes (or an echo of START, or nothing within [`ANSWER_WAIT`]).
fn hello(flow: &Flow, mode: Mode, size: usize, stop: &AtomicBool) -> Result<Hello, Error> {
    let start = encode(&Msg::Start {
        mode,
        size: size as u64,
    });
    let mut buf = vec![0u8; flow.mtu().max(64)];
    let give_up = Instant::now() + ANSWER_WAIT;
    let mut resend = Instant::now();
    flow.set_read_timeout(Some(TICK));
    while Instant::now() < give_up && !stop.load(Ordering::Relaxed) {
        if Instant::now() >= resend {
            match flow.write(&start) {
                Ok(_) | Err(Error::Timeout | Error::WouldBlock) => {}
                Err(Error::FlowDown) => return Ok(Hello::Down),
                Err(e) => return Err(e),
            }
            resend = Instant::now() + RESEND;
        }
        match flow.read(&mut buf) {
            Ok(n) if buf[..n] == start[..] => return Ok(Hello::Echoed),
            Ok(n) if decode(&buf[..n]) == Ok(Msg::Ack) => return Ok(Hello::Acked),
            Ok(_) | Err(Error::Timeout | Error::WouldBlock) => {}
            Err(Error::FlowDown) => return Ok(Hello::Down),
            Err(Error::BufferTooSmall { needed }) => buf.resize(needed, 0),
            Err(e) => return Err(e),
        }
    }
    Ok(Hello::Silent)
}

/// Count what comes back until `done` or the flow goes down.
fn reader(flow: &Flow, rx: &Mutex<Rx>, done: &AtomicBool) {
    let mut buf = vec![0u8; flow.mtu().max(64)];
    while !done.load(Ordering::Relaxed) {
        match flow.read(&mut buf) {
            Ok(n) => {
                let mut r = lock(rx);
                match decode(&buf[..n]) {
                    Ok(Msg::Data { seq, .. }) => {
                        r.echoes.record(seq, n);
                    }
                    Ok(Msg::Report { report, last }) => {
                        if last {
                            r.last = Some(report);
                        }
                        r.latest = Some(report);
                    }
                    // The answer to a repeated START.
                    Ok(Msg::Ack) => {}
                    _ => r.invalid += 1,
                }
            }
            Err(Error::Timeout | Error::WouldBlock) => {
                if flow.is_down() {
                    lock(rx).down = true;
                    return;
                }
            }
            Err(Error::BufferTooSmall { needed }) => buf.resize(needed, 0),
            Err(_) => {
                lock(rx).down = true;
                return;
            }
        }
    }
}

/// Measure the bandwidth to `args.name`; returns the exit code (0 when the server's final
/// report came back, 1 otherwise).
pub fn run(args: &Args) -> anyhow::Result<i32> {
    let name = args.name.clone().unwrap_or_default();
    let flow = match crate::client_flow("operf", &name, args.qos.spec(), args.size) {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    // Only now: Ctrl-C during the allocation still ends the process at once.
    let stop = crate::stop_flag();
    flow.set_write_timeout(Some(TICK));
    match hello(&flow, args.test, args.size, &stop)
        .map_err(|e| anyhow::anyhow!("cannot start the test with \"{name}\": {e}"))?
    {
        Hello::Acked => {}
        Hello::Echoed => {
            errln!(
                "operf: \"{name}\" echoed the test request back; is it an operf server (operf -l)?"
            );
            return Ok(1);
        }
        Hello::Silent if stop.load(Ordering::Relaxed) => return Ok(1),
        Hello::Silent => {
            errln!(
                "operf: \"{name}\" did not answer the test request within {} s; is it an operf server (operf -l)?",
                ANSWER_WAIT.as_secs()
            );
            return Ok(1);
        }
        Hello::Down => {
            errln!("operf: flow to {name} went down before the test started");
            return Ok(1);
        }
    }
    let rate = (!args.flood).then_some(args.rate);
    if !args.json {
        // The summary starts with a blank line.
        let header = stats::header(&name, args.test, args.size, args.duration, rate);
        outln!("{}", header.trim_end());
    }

    let rx = Mutex::new(Rx::default());
    let done = AtomicBool::new(false);
    let mut progress = Progress::new(!args.json);
    let (sent, time, down) = std::thread::scope(|sc| {
        sc.spawn(|| reader(&flow, &rx, &done));
        let res = send(&flow, args, &stop, &rx, &mut progress);
        progress.clear();
        if let Ok((sent, _, false)) = res {
            finish(&flow, sent, &rx);
        }
        done.store(true, Ordering::Relaxed);
        res
    })
    .map_err(|e| anyhow::anyhow!("cannot send to \"{name}\": {e}"))?;

    let r = rx.into_inner().unwrap_or_else(|e| e.into_inner());
    let down = down || (r.down && r.last.is_none());
    let summary = Summary {
        name: &name,
        mode: args.test,
        size: args.size,
        rate,
        time,
        sent,
        server: r.last,
        echoes: (args.test == Mode::Bi).then_some(r.echoes),
        invalid: r.invalid,
    };
    if down {
        errln!("operf: flow to {name} went down");
    } else if r.last.is_none() {
        errln!(
            "operf: no final report from \"{name}\" within {} s",
            ANSWER_WAIT.as_secs()
        );
    }
    if args.json {
        outln!("{}", summary.json());
    } else {
        let text = summary.text();
        outln!("{}", text.trim_end());
    }
    Ok(if down || r.last.is_none() { 1 } else { 0 })
}

/// The send phase; returns the packets sent, for how long, and whether the flow went down.
fn send(
    flow: &Flow,
    args: &Args,
    stop: &AtomicBool,
    rx: &Mutex<Rx>,
    progress: &mut Progress,
) -> Result<(u64, Duration, bool), Error> {
    let how = if args.flood {
        Wait::Flood
    } else if args.sleep {
        Wait::Sleep
    } else {
        Wait::Spin
    };
    let mut pacer = Pacer::new(pace::gap(args.size, args.rate), args.flood);
    let mut buf = vec![0u8; args.size];
    let mut sent: u64 = 0;
    let start = Instant::now();
    let mut down = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let now = start.elapsed();
        if now >= args.duration {
            break;
        }
        if progress.due(Instant::now()) {
            let text = {
                let r = lock(rx);
                let (seen, who) = match args.test {
                    Mode::Uni => (r.latest.as_ref().map(SeqTracker::from_report), "server got"),
                    Mode::Bi => (Some(r.echoes), "back"),
                };
                stats::progress_line(now, sent, args.size, seen.as_ref(), who)
            };
            progress.show(Instant::now(), &text);
        }
        let due = pacer.due_in(now);
        if !due.is_zero() {
            let at = (now + due).min(args.duration);
            let at = if progress.is_on() {
                at.min(now + super::progress::EVERY)
            } else {
                at
            };
            pace::wait(start, at, how, stop);
            continue;
        }
        encode_data(&mut buf, sent, nanos(now));
        match flow.write(&buf) {
            Ok(_) => {
                sent += 1;
                pacer.sent(now);
            }
            // Backpressure: try again (and look at the clock and the flag).
            Err(Error::Timeout | Error::WouldBlock) => {}
            Err(Error::FlowDown) => {
                down = true;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok((sent, start.elapsed().min(args.duration), down))
}

/// Send END until the final report is in, the flow goes down, or [`ANSWER_WAIT`] passes.
fn finish(flow: &Flow, sent: u64, rx: &Mutex<Rx>) {
    let end = encode(&Msg::End { sent });
    let give_up = Instant::now() + ANSWER_WAIT;
    let mut resend = Instant::now();
    loop {
        {
            let r = lock(rx);
            if r.last.is_some() || r.down {
                return;
            }
        }
        let now = Instant::now();
        if now >= give_up {
            return;
        }
        if now >= resend {
            match flow.write(&end) {
                Ok(_) => resend = now + RESEND,
                Err(Error::Timeout | Error::WouldBlock) => {}
                Err(_) => return,
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
