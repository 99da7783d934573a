//! The `oping` client: one flow, one thread. It sends on a fixed schedule and reads replies
//! in between; at `-i 0` it sends the next ping as soon as the reply to the last one is in
//! (ping-pong), so every RTT is measured on an idle flow.

use super::stats::{self, Reply, Stats};
use super::{Args, MIN_SIZE};
use o7s::Error;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Put the sequence number and the send time (ns since the start of the run) at the head of
/// a ping: `seq` (u32, big-endian), four zero bytes, `sent_ns` (u64, big-endian).
pub fn encode(buf: &mut [u8], seq: u32, sent_ns: u64) {
    if buf.len() < MIN_SIZE {
        return;
    }
    buf[0..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].fill(0);
    buf[8..16].copy_from_slice(&sent_ns.to_be_bytes());
}

/// The sequence number and send time of a reply, if it is long enough to be one.
pub fn decode(buf: &[u8]) -> Option<(u32, u64)> {
    let seq = u32::from_be_bytes(buf.get(0..4)?.try_into().ok()?);
    let sent = u64::from_be_bytes(buf.get(8..16)?.try_into().ok()?);
    Some((seq, sent))
}

/// How long to wait for a reply before calling it lost: twice the worst RTT so far, at least
/// 100 ms; two seconds while no reply has come in yet.
pub fn patience(s: &Stats) -> Duration {
    if s.received == 0 {
        Duration::from_secs(2)
    } else {
        (s.max_rtt() * 2).max(Duration::from_millis(100))
    }
}

/// Longest single wait, so a signal is noticed quickly.
const TICK: Duration = Duration::from_millis(100);

enum End {
    Done,
    Down,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Ping `args.name`; returns the exit code (0 when replies came back, 1 on none or a flow
/// that went down).
pub fn run(args: &Args) -> anyhow::Result<i32> {
    let name = args.name.clone().unwrap_or_default();
    let flow = match crate::client_flow("oping", &name, args.qos.spec(), args.size) {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    // Only now: Ctrl-C during the allocation still ends the process at once.
    let stop = crate::stop_flag();
    flow.set_write_timeout(Some(TICK));
    let show = !args.quiet && !args.json;
    let mut out = std::io::stdout().lock();
    if show {
        let _ = writeln!(out, "{}", stats::header(&name, args.size, args.count));
    }

    // Sequence numbers are 32 bits wide.
    let count = args.count.unwrap_or(u64::MAX).min(1 << 32);
    let interval = args.interval;
    let mut buf = vec![0u8; args.size];
    let mut rbuf = vec![0u8; flow.mtu().max(args.size)];
    let mut s = Stats::new();
    let start = Instant::now();
    let deadline = args.deadline.map(|d| start + d);
    let mut next_send = start;
    let mut last_send = start;
    let mut end = End::Done;

    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let sending = s.transmitted < count && deadline.is_none_or(|d| now < d);
        if !sending && (s.received >= s.transmitted || now >= last_send + patience(&s)) {
            break;
        }
        // At -i 0, the next ping waits for the last reply (or for it to be given up).
        let ready = if interval.is_zero() {
            s.transmitted == 0
                || s.has((s.transmitted - 1) as u32)
                || now >= last_send + patience(&s)
        } else {
            now >= next_send
        };
        if sending && ready {
            let seq = s.transmitted as u32;
            encode(&mut buf, seq, nanos(now - start));
            match flow.write(&buf) {
                Ok(_) => {
                    s.transmitted += 1;
                    last_send = now;
                    next_send = (next_send + interval).max(now);
                    continue;
                }
                // The flow is full (backpressure): read replies below, then retry, so
                // neither side waits forever for the other to make room.
                Err(Error::Timeout | Error::WouldBlock) => {}
                Err(Error::FlowDown) => {
                    end = End::Down;
                    break;
                }
                Err(e) => return Err(anyhow::anyhow!("cannot send to \"{name}\": {e}")),
            }
        }
        let wake = if !sending || interval.is_zero() {
            last_send + patience(&s)
        } else {
            next_send
        };
        flow.set_read_timeout(Some(wake.saturating_duration_since(now).min(TICK)));
        match flow.read(&mut rbuf) {
            Ok(n) => {
                let got = Instant::now();
                let Some((seq, sent)) = decode(&rbuf[..n]) else {
                    s.invalid += 1;
                    continue;
                };
                let rtt = (got - start).saturating_sub(Duration::from_nanos(sent));
                let kind = s.reply(seq, rtt);
                if show && kind != Reply::Invalid {
                    let _ = writeln!(out, "{}", stats::reply_line(n, &name, seq, rtt, kind));
                }
            }
            Err(Error::Timeout | Error::WouldBlock) => {
                if flow.is_down() {
                    end = End::Down;
                    break;
                }
            }
            Err(Error::FlowDown) => {
                end = End::Down;
                break;
            }
            Err(Error::BufferTooSmall { needed }) => rbuf.resize(needed, 0),
            Err(e) => return Err(anyhow::anyhow!("cannot read from \"{name}\": {e}")),
        }
    }
    let elapsed = start.elapsed();
    if matches!(end, End::Down) {
        let _ = out.flush();
        errln!("oping: flow to {name} went down");
    }
    if args.json {
        let j = stats::summary_json(&name, args.size, &s, elapsed);
        let _ = writeln!(out, "{j}");
    } else {
        let _ = write!(out, "{}", stats::summary(&name, &s, elapsed));
    }
    let _ = out.flush();
    Ok(match end {
        End::Down => 1,
        End::Done if s.transmitted > 0 && s.received == 0 => 1,
        End::Done => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let mut b = vec![0xAAu8; 64];
        encode(&mut b, 7, 123_456_789);
        assert_eq!(decode(&b), Some((7, 123_456_789)));
        assert_eq!(&b[4..8], &[0, 0, 0, 0]);
        assert_eq!(b[16], 0xAA, "padding untouched");
        assert_eq!(decode(&b[..15]), None);
        let mut small = [0u8; 8];
        encode(&mut small, 1, 1);
        assert_eq!(small, [0u8; 8]);
    }

    #[test]
    fn patience_is_bounded() {
        let mut s = Stats::new();
        assert_eq!(patience(&s), Duration::from_secs(2));
        s.transmitted = 2;
        s.reply(0, Duration::from_micros(50));
        assert_eq!(patience(&s), Duration::from_millis(100));
        s.reply(1, Duration::from_millis(300));
        assert_eq!(patience(&s), Duration::from_millis(600));
    }
}
