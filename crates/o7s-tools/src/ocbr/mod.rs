//! `ocbr`: a constant-bit-rate sender, and the receiver (`ocbr -l`) that reports every
//! interval per flow what arrived, what is missing and what came out of order, from the
//! sequence numbers in the packets.
//!
//! Options and defaults follow the prototype: 1000-byte packets at 1 Mb/s for 60 s, sleeping
//! between packets (`--spin` busy-waits); the server reports every second and ends a flow
//! after a second of silence. Bare durations are in seconds. Packets carry the header of
//! [`crate::operf::wire`]; the client ends with END and the server answers with its counts.

pub mod client;
pub mod server;
pub mod stats;

use crate::operf::{parse_positive_rate, parse_size};
use crate::units::{parse_duration, TimeUnit};
use clap::Parser;
use o7s::QosCube;
use std::time::Duration;

#[derive(Parser, Debug, Clone, PartialEq)]
#[command(
    name = "ocbr",
    version,
    about = "Send at a constant bit rate over a flow to a name (server: ocbr -l reports what arrives)"
)]
pub struct Args {
    /// Run as the server: accept flows and report on each every interval.
    #[arg(short = 'l', long = "listen",
          conflicts_with_all = ["name", "duration", "rate", "size", "flood", "sleep", "spin"])]
    pub listen: bool,
    /// Server: time between reports; a bare number is in seconds.
    #[arg(short = 'i', long, default_value = "1", value_name = "SECS",
          value_parser = parse_positive_secs)]
    pub interval: Duration,
    /// Server: end a flow after this much silence; a bare number is in seconds.
    #[arg(short = 't', long, default_value = "1", value_name = "SECS",
          value_parser = parse_positive_secs)]
    pub timeout: Duration,
    /// Name of the ocbr server.
    #[arg(
        short = 'n',
        long = "server-name",
        alias = "server-apn",
        alias = "server_apn",
        required_unless_present = "listen",
        value_name = "NAME"
    )]
    pub name: Option<String>,
    /// How long to send; a bare number is in seconds.
    #[arg(short = 'd', long, default_value = "60", value_name = "SECS",
          value_parser = |s: &str| parse_duration(s, TimeUnit::S))]
    pub duration: Duration,
    /// Packet size in bytes (at least 20: the header).
    #[arg(short = 's', long, default_value_t = 1000, value_name = "SIZE",
          value_parser = parse_size)]
    pub size: usize,
    /// Sending rate in bits per second (k, M, G suffixes).
    #[arg(short = 'r', long, default_value = "1M", value_name = "RATE",
          value_parser = parse_positive_rate)]
    pub rate: u64,
    /// Send as fast as the flow takes packets (ignores -r).
    #[arg(short = 'f', long)]
    pub flood: bool,
    /// Sleep between packets (the default).
    #[arg(long, conflicts_with = "spin")]
    pub sleep: bool,
    /// Busy-wait between packets: more precise at high rates, one core busy.
    #[arg(long)]
    pub spin: bool,
    /// QoS cube of the flow: raw, best, video, voice or data.
    #[arg(long, default_value = "raw", value_name = "CUBE",
          value_parser = |s: &str| s.parse::<QosCube>())]
    pub qos: QosCube,
    /// Client: print the summary as one JSON object (and nothing else on stdout).
    /// Server: print every report as one JSON object per line.
    #[arg(long)]
    pub json: bool,
}

fn parse_positive_secs(s: &str) -> Result<Duration, String> {
    match parse_duration(s, TimeUnit::S) {
        Ok(d) if d.is_zero() => Err("must be more than 0".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// Run `ocbr` with these arguments (including the program name); returns the exit code.
pub fn main<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    crate::run_tool("ocbr", args, |a: &Args| {
        if a.listen {
            server::run(a)
        } else {
            client::run(a)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("ocbr").chain(line.split_whitespace()))
    }

    fn ok(line: &str) -> Args {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn defaults_follow_the_prototype() {
        let a = ok("-n ocbr");
        assert_eq!(a.name.as_deref(), Some("ocbr"));
        assert_eq!(a.duration, Duration::from_secs(60));
        assert_eq!(a.size, 1000);
        assert_eq!(a.rate, 1_000_000);
        assert!(!a.flood && !a.spin && !a.json && !a.listen);
        let a = ok("-l");
        assert!(a.listen);
        assert_eq!(a.interval, Duration::from_secs(1));
        assert_eq!(a.timeout, Duration::from_secs(1));
    }

    #[test]
    fn options_and_units() {
        let a = ok("-n x -d 5 -s 1400 -r 10M --spin --json --qos video");
        assert_eq!(a.duration, Duration::from_secs(5));
        assert_eq!(a.size, 1400);
        assert_eq!(a.rate, 10_000_000);
        assert_eq!(a.qos, QosCube::Video);
        assert!(a.spin && a.json);
        assert_eq!(ok("-n x -d 500ms").duration, Duration::from_millis(500));
        assert!(ok("-n x -f --sleep").flood);
        let a = ok("-l -i 2 -t 500ms --json");
        assert_eq!(a.interval, Duration::from_secs(2));
        assert_eq!(a.timeout, Duration::from_millis(500));
        assert_eq!(ok("--server_apn x").name.as_deref(), Some("x"));
    }

    #[test]
    fn bad_arguments() {
        for line in [
            "",
            "-d 5",
            "-n x -s 10",
            "-n x -r 0",
            "-n x --sleep --spin",
            "-n x -d soon",
            "-l -i 0",
            "-l -t never",
            "-l -n x",
            "-l -r 1M",
        ] {
            let e = parse(line).expect_err(line);
            assert!(e.use_stderr(), "{line}");
        }
    }
}
