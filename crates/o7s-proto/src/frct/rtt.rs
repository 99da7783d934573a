//! Round-trip time estimation and the retransmission timeout.
//!
//! Smoothed RTT and mean deviation as in RFC 6298 with gains 1/8 and 1/4, with the Linux
//! refinement the prototype enables by default (a falling deviation moves 8 times slower).
//! RTO = sRTT + 4 · mdev, clamped to `[rto_min, rto_max]`; doubled (bounded) on back-off.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RttEstimator {
    /// Smoothed RTT in ns; 0 until the first sample.
    srtt: i64,
    /// Mean deviation in ns.
    mdev: i64,
    rto: Duration,
    /// The RTO the estimate gives, before back-off.
    base_rto: Duration,
    rto_min: Duration,
    rto_max: Duration,
}

const SRTT_FLOOR_NS: i64 = 1_000;
const MDEV_FLOOR_NS: i64 = 100;
/// Deviation multiplier as a shift: RTO = srtt + (mdev << 2).
const MDEV_SHIFT: u32 = 2;

fn ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl RttEstimator {
    pub(crate) fn new(initial_rto: Duration, rto_min: Duration, rto_max: Duration) -> Self {
        let rto = initial_rto.clamp(rto_min, rto_max.max(rto_min));
        RttEstimator {
            srtt: 0,
            mdev: 10_000_000,
            rto,
            base_rto: rto,
            rto_min,
            rto_max: rto_max.max(rto_min),
        }
    }

    pub(crate) fn sample(&mut self, rtt: Duration) {
        let m = ns(rtt);
        let (mut srtt, mut mdev) = (self.srtt, self.mdev);
        if srtt == 0 {
            srtt = m;
            mdev = m / 2;
        } else {
            let delta = m - srtt;
            srtt += delta / 8;
            let mut d = (delta.abs() - mdev) / 4;
            if d < 0 {
                d /= 8;
            }
            mdev += d;
        }
        self.srtt = srtt.max(SRTT_FLOOR_NS);
        self.mdev = mdev.max(MDEV_FLOOR_NS);
        let rto = self
            .srtt
            .saturating_add(self.mdev.saturating_mul(1 << MDEV_SHIFT));
        let rto = Duration::from_nanos(u64::try_from(rto).unwrap_or(u64::MAX));
        self.base_rto = rto.clamp(self.rto_min, self.rto_max);
        self.rto = self.base_rto;
    }

    /// Forget the back-off once an ack shows the path delivers again.
    pub(crate) fn reset_back_off(&mut self) {
        self.rto = self.base_rto;
    }

    /// Exponential back-off after a retransmission timeout.
    pub(crate) fn back_off(&mut self) {
        self.rto = self.rto.saturating_mul(2).min(self.rto_max);
    }

    pub(crate) fn rto(&self) -> Duration {
        self.rto
    }

    pub(crate) fn srtt(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.srtt).unwrap_or(0))
    }

    pub(crate) fn mdev(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.mdev).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_sample_and_convergence() {
        let mut e = RttEstimator::new(Duration::from_secs(1), MS / 4, Duration::from_secs(60));
        assert_eq!(e.rto(), Duration::from_secs(1));
        e.sample(10 * MS);
        assert_eq!(e.srtt(), 10 * MS);
        assert_eq!(e.mdev(), 5 * MS);
        assert_eq!(e.rto(), 30 * MS);
        for _ in 0..200 {
            e.sample(10 * MS);
        }
        assert_eq!(e.srtt(), 10 * MS);
        assert!(e.rto() < 12 * MS, "rto {:?}", e.rto());
        assert!(e.rto() >= 10 * MS);
    }

    #[test]
    fn bounded() {
        let mut e = RttEstimator::new(Duration::from_secs(1), MS, 4 * MS);
        assert_eq!(e.rto(), 4 * MS);
        e.sample(Duration::from_nanos(1));
        assert_eq!(e.rto(), MS);
        for _ in 0..10 {
            e.back_off();
        }
        assert_eq!(e.rto(), 4 * MS);
        e.sample(Duration::from_secs(1000));
        assert_eq!(e.rto(), 4 * MS);
        let mut f = RttEstimator::new(10 * MS, MS, Duration::from_secs(1));
        f.back_off();
        f.back_off();
        assert_eq!(f.rto(), 40 * MS);
        f.reset_back_off();
        assert_eq!(f.rto(), 10 * MS);
    }
}
