//! Durations, intervals and rates as the prototype's tools spell them: a number with an
//! optional unit suffix (`10`, `10ms`, `1.5s`, `2m`; `100M` bits per second).
//!
//! Pure parsing; no IO.

use std::fmt;
use std::time::Duration;

/// A time unit; the caller picks the one a bare number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Ns,
    Us,
    Ms,
    S,
    M,
    H,
    D,
}

impl TimeUnit {
    fn nanos(self) -> u128 {
        match self {
            TimeUnit::Ns => 1,
            TimeUnit::Us => 1_000,
            TimeUnit::Ms => 1_000_000,
            TimeUnit::S => 1_000_000_000,
            TimeUnit::M => 60 * 1_000_000_000,
            TimeUnit::H => 3_600 * 1_000_000_000,
            TimeUnit::D => 86_400 * 1_000_000_000,
        }
    }

    fn from_suffix(s: &str) -> Option<TimeUnit> {
        Some(match s {
            "ns" => TimeUnit::Ns,
            "us" | "µs" => TimeUnit::Us,
            "ms" => TimeUnit::Ms,
            "s" => TimeUnit::S,
            "m" | "min" => TimeUnit::M,
            "h" => TimeUnit::H,
            "d" => TimeUnit::D,
            _ => return None,
        })
    }
}

/// A value that does not parse, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    pub input: String,
    pub expected: &'static str,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid value \"{}\": expected {}",
            self.input, self.expected
        )
    }
}

impl std::error::Error for UnitError {}

const DURATION_HELP: &str =
    "a number with an optional unit ns, us, ms, s, m, h or d (e.g. 10, 10ms, 1.5s)";
const RATE_HELP: &str =
    "a number of bits per second with an optional suffix k, M or G (e.g. 1000, 10k, 1.5M)";

/// Split `s` into its (non-empty) decimal number and the suffix after it.
fn split_number(s: &str) -> Option<(&str, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(end);
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return None;
    }
    Some((num, suffix))
}

/// `num` (digits with at most one '.') times `scale`, exactly, truncating below 1.
fn scaled(num: &str, scale: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut total = int.checked_mul(scale)?;
    if !frac.is_empty() {
        // Only the first 18 fractional digits matter at nanosecond/bit resolution.
        let frac = &frac[..frac.len().min(18)];
        let f: u128 = frac.parse().ok()?;
        let div = 10u128.pow(frac.len() as u32);
        total = total.checked_add(f.checked_mul(scale)? / div)?;
    }
    Some(total)
}

/// Parse a duration; a bare number is in `default` units.
///
/// ```
/// use o7s_tools::units::{parse_duration, TimeUnit};
/// use std::time::Duration;
/// assert_eq!(parse_duration("10", TimeUnit::Ms).unwrap(), Duration::from_millis(10));
/// assert_eq!(parse_duration("1.5s", TimeUnit::Ms).unwrap(), Duration::from_millis(1500));
/// ```
pub fn parse_duration(s: &str, default: TimeUnit) -> Result<Duration, UnitError> {
    let err = || UnitError {
        input: s.to_string(),
        expected: DURATION_HELP,
    };
    let (num, suffix) = split_number(s.trim()).ok_or_else(err)?;
    let unit = if suffix.is_empty() {
        default
    } else {
        TimeUnit::from_suffix(suffix).ok_or_else(err)?
    };
    let ns = scaled(num, unit.nanos()).ok_or_else(err)?;
    let secs = u64::try_from(ns / 1_000_000_000).map_err(|_| err())?;
    Ok(Duration::new(secs, (ns % 1_000_000_000) as u32))
}

/// Parse a rate in bits per second: `1000`, `10k`, `1.5M`, `1G` (decimal multipliers).
pub fn parse_rate(s: &str) -> Result<u64, UnitError> {
    let err = || UnitError {
        input: s.to_string(),
        expected: RATE_HELP,
    };
    let (num, suffix) = split_number(s.trim()).ok_or_else(err)?;
    let scale: u128 = match suffix {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return Err(err()),
    };
    let v = scaled(num, scale).ok_or_else(err)?;
    u64::try_from(v).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str, u: TimeUnit) -> Duration {
        parse_duration(s, u).expect(s)
    }

    #[test]
    fn durations_in_the_prototypes_units() {
        assert_eq!(d("0", TimeUnit::Ms), Duration::ZERO);
        assert_eq!(d("10", TimeUnit::Ms), Duration::from_millis(10));
        assert_eq!(d("10ms", TimeUnit::S), Duration::from_millis(10));
        assert_eq!(d("10", TimeUnit::S), Duration::from_secs(10));
        assert_eq!(d("5s", TimeUnit::Ms), Duration::from_secs(5));
        assert_eq!(d("2m", TimeUnit::Ms), Duration::from_secs(120));
        assert_eq!(d("1h", TimeUnit::Ms), Duration::from_secs(3600));
        assert_eq!(d("1d", TimeUnit::Ms), Duration::from_secs(86400));
        assert_eq!(d("250us", TimeUnit::Ms), Duration::from_micros(250));
        assert_eq!(d("7ns", TimeUnit::Ms), Duration::from_nanos(7));
        assert_eq!(d("1.5s", TimeUnit::Ms), Duration::from_millis(1500));
        assert_eq!(d("0.1", TimeUnit::Ms), Duration::from_micros(100));
        assert_eq!(d(".5s", TimeUnit::Ms), Duration::from_millis(500));
        assert_eq!(d("3.", TimeUnit::S), Duration::from_secs(3));
    }

    #[test]
    fn bad_durations_are_refused() {
        for s in [
            "", "ms", "-1", "1x", "1 s", "1.2.3", ".", "1sec", "s5", "1e3",
        ] {
            let e = parse_duration(s, TimeUnit::Ms).expect_err(s);
            assert!(e.to_string().contains("ms, s, m"), "{e}");
        }
        assert!(parse_duration("99999999999999999999999999d", TimeUnit::Ms).is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("10k"), Ok(10_000));
        assert_eq!(parse_rate("10K"), Ok(10_000));
        assert_eq!(parse_rate("1.5M"), Ok(1_500_000));
        assert_eq!(parse_rate("2G"), Ok(2_000_000_000));
        for s in ["", "k", "1T", "-1", "1m", "1.1.1"] {
            assert!(parse_rate(s).is_err(), "{s}");
        }
    }

    proptest! {
        #[test]
        fn integers_round_trip(n in 0u64..1_000_000_000, u in 0usize..7) {
            let (suf, unit) = [("ns", TimeUnit::Ns), ("us", TimeUnit::Us), ("ms", TimeUnit::Ms),
                ("s", TimeUnit::S), ("m", TimeUnit::M), ("h", TimeUnit::H), ("d", TimeUnit::D)][u];
            let ns = u128::from(n) * unit.nanos();
            let got = parse_duration(&format!("{n}{suf}"), TimeUnit::S).unwrap_or_default();
            prop_assert_eq!(got.as_nanos(), ns);
            let bare = parse_duration(&n.to_string(), unit).unwrap_or_default();
            prop_assert_eq!(bare.as_nanos(), ns);
        }

        #[test]
        fn never_panics(s in ".{0,24}") {
            let _ = parse_duration(&s, TimeUnit::Ms);
            let _ = parse_rate(&s);
        }

        #[test]
        fn rates_scale(n in 0u64..1_000_000) {
            prop_assert_eq!(parse_rate(&format!("{n}k")), Ok(n * 1000));
            prop_assert_eq!(parse_rate(&format!("{n}M")), Ok(n * 1_000_000));
        }
    }
}
