//! `operf`: bandwidth over a flow to a name, one way (`-t uni`: the server counts and
//! reports back) or both ways (`-t bi`: the server echoes); `operf -l` is the server.
//!
//! Options and defaults follow the prototype (1500-byte packets at 1 Mb/s for 60 s; a bare
//! duration is in ms); rates take the units of [`crate::units`]. The in-band messages live
//! in [`wire`], the timetable in [`pace`], counting and formatting in [`stats`], the flow IO
//! in [`client`] and [`server`].

pub mod client;
pub mod pace;
pub mod progress;
pub mod server;
pub mod stats;
pub mod wire;

use crate::units::{parse_duration, parse_rate, TimeUnit};
use clap::Parser;
use o7s::QosCube;
use std::time::Duration;
use wire::Mode;

#[derive(Parser, Debug, Clone, PartialEq)]
#[command(
    name = "operf",
    version,
    about = "Measure bandwidth and loss over a flow to a name (server: operf -l)"
)]
pub struct Args {
    /// Run as the server: accept flows; count (uni) or echo (bi) what arrives.
    #[arg(short = 'l', long = "listen",
          conflicts_with_all = ["name", "test", "duration", "rate", "size", "flood", "sleep"])]
    pub listen: bool,
    /// Name of the operf server.
    #[arg(
        short = 'n',
        long = "server-name",
        alias = "server-apn",
        alias = "server_apn",
        required_unless_present = "listen",
        value_name = "NAME"
    )]
    pub name: Option<String>,
    /// The test: uni (the server counts) or bi (the server echoes).
    #[arg(short = 't', long = "test", default_value = "uni", value_name = "uni|bi",
          value_parser = parse_mode)]
    pub test: Mode,
    /// How long to send; a bare number is in ms, like the prototype.
    #[arg(short = 'd', long, default_value = "60s", value_name = "DURATION",
          value_parser = |s: &str| parse_duration(s, TimeUnit::Ms))]
    pub duration: Duration,
    /// Sending rate in bits per second (k, M, G suffixes).
    #[arg(short = 'r', long, default_value = "1M", value_name = "RATE",
          value_parser = parse_positive_rate)]
    pub rate: u64,
    /// Packet size in bytes (at least 20: the header).
    #[arg(short = 's', long, default_value_t = 1500, value_name = "SIZE",
          value_parser = parse_size)]
    pub size: usize,
    /// Send as fast as the flow takes packets (ignores -r).
    #[arg(short = 'f', long)]
    pub flood: bool,
    /// Sleep between packets instead of busy-waiting.
    #[arg(long)]
    pub sleep: bool,
    /// QoS cube of the flow: raw, best, video, voice or data.
    #[arg(long, default_value = "raw", value_name = "CUBE",
          value_parser = |s: &str| s.parse::<QosCube>())]
    pub qos: QosCube,
    /// Print the summary as one JSON object (and nothing else on stdout).
    #[arg(long)]
    pub json: bool,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "uni" => Ok(Mode::Uni),
        "bi" => Ok(Mode::Bi),
        _ => Err(format!("unknown test \"{s}\": expected uni or bi")),
    }
}

/// A rate above zero.
pub fn parse_positive_rate(s: &str) -> Result<u64, String> {
    match parse_rate(s) {
        Ok(0) => Err("a rate of 0 sends nothing; use a positive rate or -f".into()),
        Ok(r) => Ok(r),
        Err(e) => Err(e.to_string()),
    }
}

/// A packet size that holds the header.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("\"{s}\" is not a number of bytes"))?;
    if n < wire::HEADER {
        return Err(format!(
            "{n} bytes is too small: a packet needs at least {} bytes (its header)",
            wire::HEADER
        ));
    }
    Ok(n)
}

/// Run `operf` with these arguments (including the program name); returns the exit code.
pub fn main<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    crate::run_tool("operf", args, |a: &Args| {
        if a.listen {
            server::run()
        } else {
            client::run(a)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("operf").chain(line.split_whitespace()))
    }

    fn ok(line: &str) -> Args {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn defaults_follow_the_prototype() {
        let a = ok("-n operf");
        assert_eq!(a.name.as_deref(), Some("operf"));
        assert_eq!(a.test, Mode::Uni);
        assert_eq!(a.duration, Duration::from_secs(60));
        assert_eq!(a.rate, 1_000_000);
        assert_eq!(a.size, 1500);
        assert_eq!(a.qos, QosCube::Raw);
        assert!(!a.flood && !a.sleep && !a.json && !a.listen);
    }

    #[test]
    fn options_and_units() {
        let a = ok("-n x -t bi -d 5s -r 10M -s 1400 -f --sleep --qos data --json");
        assert_eq!(a.test, Mode::Bi);
        assert_eq!(a.duration, Duration::from_secs(5));
        assert_eq!(a.rate, 10_000_000);
        assert_eq!(a.size, 1400);
        assert_eq!(a.qos, QosCube::Data);
        assert!(a.flood && a.sleep && a.json);
        assert_eq!(ok("-n x -d 1500").duration, Duration::from_millis(1500));
        assert_eq!(ok("-n x -d 2m").duration, Duration::from_secs(120));
        assert_eq!(ok("-n x -r 100k").rate, 100_000);
        assert_eq!(ok("-n x -r 5000").rate, 5000);
        assert_eq!(ok("--server-name x --test uni").test, Mode::Uni);
        assert!(ok("-l").listen);
    }

    #[test]
    fn bad_arguments() {
        for line in [
            "",
            "-t bi",
            "-n x -t tri",
            "-n x -s 19",
            "-n x -s big",
            "-n x -r 0",
            "-n x -r 1T",
            "-n x -d soon",
            "-n x --qos gold",
            "-l -n x",
            "-l -t bi",
            "-n x extra",
        ] {
            let e = parse(line).expect_err(line);
            assert!(e.use_stderr(), "{line}");
        }
        let e = parse("-n x -s 8").expect_err("size").to_string();
        assert!(e.contains("at least 20 bytes"), "{e}");
        let e = parse("-n x -t tri").expect_err("test").to_string();
        assert!(e.contains("expected uni or bi"), "{e}");
        let e = parse("-n x -r 0").expect_err("rate").to_string();
        assert!(e.contains("use a positive rate or -f"), "{e}");
    }
}
