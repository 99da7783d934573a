//! Sending at a rate: the gap between packets and a schedule that keeps the average rate
//! right (an absolute timetable, so small delays do not add up), shared by `operf` and
//! `ocbr`. The schedule is pure; [`wait`] is the only IO.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How the sender waits for the next packet's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// No waiting: as fast as the flow takes them.
    Flood,
    /// Busy-wait (precise, one core busy).
    Spin,
    /// Sleep (cheap, less precise at high rates).
    Sleep,
}

/// How far the schedule may fall behind before it forgets the missed packets, so a stall
/// is not followed by a burst at full speed.
pub const MAX_LAG: Duration = Duration::from_millis(50);

/// Time between packets of `size` bytes at `rate` bits per second (at least 1 ns; a rate of
/// zero never sends again).
pub fn gap(size: usize, rate: u64) -> Duration {
    if rate == 0 {
        return Duration::MAX;
    }
    let ns = (size as u128 * 8 * 1_000_000_000) / u128::from(rate);
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX).max(1))
}

/// The timetable of one sender; times are offsets from the start of the run.
#[derive(Debug, Clone)]
pub struct Pacer {
    gap: Duration,
    next: Duration,
    flood: bool,
}

impl Pacer {
    /// `gap` between packets; `flood` sends every packet at once.
    pub fn new(gap: Duration, flood: bool) -> Pacer {
        Pacer {
            gap,
            next: Duration::ZERO,
            flood,
        }
    }

    /// How long after `now` the next packet is due (zero: send now).
    pub fn due_in(&self, now: Duration) -> Duration {
        if self.flood {
            Duration::ZERO
        } else {
            self.next.saturating_sub(now)
        }
    }

    /// A packet went out at `now`.
    pub fn sent(&mut self, now: Duration) {
        if self.flood {
            return;
        }
        self.next = self.next.saturating_add(self.gap);
        let floor = now.saturating_sub(MAX_LAG);
        if self.next < floor {
            self.next = floor;
        }
    }
}

/// Wait until `start + at` (or `stop`), the way `how` says; returns early after at most
/// 100 ms so the caller can look at the clock and its flags.
pub fn wait(start: Instant, at: Duration, how: Wait, stop: &AtomicBool) {
    let Some(until) = start.checked_add(at) else {
        std::thread::sleep(Duration::from_millis(100));
        return;
    };
    let now = Instant::now();
    if until <= now {
        return;
    }
    let left = until - now;
    match how {
        Wait::Flood => {}
        Wait::Sleep => std::thread::sleep(left.min(Duration::from_millis(100))),
        Wait::Spin => {
            let limit = now + left.min(Duration::from_millis(100));
            while Instant::now() < limit && !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn gaps() {
        // 1500 bytes at 1 Mb/s: 12 ms; 1000 bytes at 8 kb/s: 1 s.
        assert_eq!(gap(1500, 1_000_000), ms(12));
        assert_eq!(gap(1000, 8_000), Duration::from_secs(1));
        assert_eq!(gap(1400, 10_000_000_000), Duration::from_nanos(1120));
        assert_eq!(gap(1, u64::MAX), Duration::from_nanos(1));
        assert_eq!(gap(100, 0), Duration::MAX);
    }

    #[test]
    fn timetable_is_absolute() {
        let mut p = Pacer::new(ms(10), false);
        assert_eq!(p.due_in(Duration::ZERO), Duration::ZERO);
        p.sent(Duration::ZERO);
        assert_eq!(p.due_in(ms(3)), ms(7));
        // Sent 2 ms late: the next one is still due at 20 ms.
        p.sent(ms(12));
        assert_eq!(p.due_in(ms(12)), ms(8));
        // A short delay is caught up: due at once.
        assert_eq!(p.due_in(ms(25)), Duration::ZERO);
    }

    #[test]
    fn a_stall_is_forgotten_beyond_the_lag() {
        let mut p = Pacer::new(ms(1), false);
        p.sent(Duration::ZERO);
        // One second late: only MAX_LAG worth of packets are owed.
        p.sent(ms(1000));
        let owed = (0..1000)
            .take_while(|_| {
                let due = p.due_in(ms(1000)).is_zero();
                if due {
                    p.sent(ms(1000));
                }
                due
            })
            .count();
        // Due from 950 ms to 1000 ms inclusive.
        assert_eq!(owed as u128, MAX_LAG.as_millis() + 1);
    }

    #[test]
    fn flood_never_waits() {
        let mut p = Pacer::new(ms(10), true);
        for i in 0..10 {
            p.sent(ms(i));
            assert_eq!(p.due_in(ms(i)), Duration::ZERO);
        }
    }
}
