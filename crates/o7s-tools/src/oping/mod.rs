//! `oping`: round-trip times over a flow to a name, and the echo server (`oping -l`).
//!
//! Options and output follow the prototype (`oping -n NAME -c 10 -i 10ms`); durations take
//! the units of [`crate::units`]. Statistics and line formats live in [`stats`], the flow IO
//! in [`client`] and [`server`].

pub mod client;
pub mod server;
pub mod stats;

use crate::units::{parse_duration, TimeUnit};
use clap::Parser;
use o7s::QosCube;
use std::time::Duration;

/// The smallest payload: sequence number, reserved word, send timestamp.
pub const MIN_SIZE: usize = 16;

#[derive(Parser, Debug, Clone, PartialEq)]
#[command(
    name = "oping",
    version,
    about = "Measure round-trip times over a flow to a name (server: oping -l)"
)]
pub struct Args {
    /// Run as the server: accept flows and echo every packet back.
    #[arg(short = 'l', long = "listen", conflicts_with_all = ["name", "count", "deadline"])]
    pub listen: bool,
    /// Name of the oping server.
    #[arg(
        short = 'n',
        long = "server-name",
        alias = "server-apn",
        alias = "server_apn",
        required_unless_present = "listen",
        value_name = "NAME"
    )]
    pub name: Option<String>,
    /// Number of packets to send (default: until interrupted).
    #[arg(short = 'c', long, value_name = "COUNT",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Time between packets; a bare number is in ms; 0 sends the next as soon as the reply is in.
    #[arg(short = 'i', long, default_value = "1000", value_name = "INTERVAL",
          value_parser = |s: &str| parse_duration(s, TimeUnit::Ms))]
    pub interval: Duration,
    /// Payload size in bytes (at least 16).
    #[arg(short = 's', long, default_value_t = 64, value_name = "SIZE",
          value_parser = parse_size)]
    pub size: usize,
    /// Stop sending after this long; a bare number is in seconds.
    #[arg(short = 'w', long = "deadline", value_name = "DURATION",
          value_parser = |s: &str| parse_duration(s, TimeUnit::S))]
    pub deadline: Option<Duration>,
    /// Print only the summary.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// QoS cube of the flow: raw, best, video, voice or data.
    #[arg(long, default_value = "raw", value_name = "CUBE",
          value_parser = |s: &str| s.parse::<QosCube>())]
    pub qos: QosCube,
    /// Print the summary as one JSON object (and nothing else on stdout).
    #[arg(long)]
    pub json: bool,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("\"{s}\" is not a number of bytes"))?;
    if n < MIN_SIZE {
        return Err(format!(
            "{n} bytes is too small: a ping needs at least {MIN_SIZE} bytes (sequence number and timestamp)"
        ));
    }
    Ok(n)
}

/// Run `oping` with these arguments (including the program name); returns the exit code.
pub fn main<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    // The server keeps the default signal actions: killing it is how it stops.
    crate::run_tool("oping", args, |a: &Args| {
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
        Args::try_parse_from(std::iter::once("oping").chain(line.split_whitespace()))
    }

    fn ok(line: &str) -> Args {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn defaults_follow_the_prototype() {
        let a = ok("-n oping.server");
        assert_eq!(a.name.as_deref(), Some("oping.server"));
        assert_eq!(a.count, None);
        assert_eq!(a.interval, Duration::from_millis(1000));
        assert_eq!(a.size, 64);
        assert_eq!(a.deadline, None);
        assert_eq!(a.qos, QosCube::Raw);
        assert!(!a.quiet && !a.json && !a.listen);
    }

    #[test]
    fn options_and_units() {
        let a = ok("-n x -c 1000 -i 0 -s 1400 -w 5 -q --qos data --json");
        assert_eq!(a.count, Some(1000));
        assert_eq!(a.interval, Duration::ZERO);
        assert_eq!(a.size, 1400);
        assert_eq!(a.deadline, Some(Duration::from_secs(5)));
        assert_eq!(a.qos, QosCube::Data);
        assert!(a.quiet && a.json);
        assert_eq!(ok("-n x -i 10").interval, Duration::from_millis(10));
        assert_eq!(ok("-n x -i 10ms").interval, Duration::from_millis(10));
        assert_eq!(ok("-n x -i 1s").interval, Duration::from_secs(1));
        assert_eq!(
            ok("-n x -w 500ms").deadline,
            Some(Duration::from_millis(500))
        );
        assert_eq!(ok("--server-name x").name.as_deref(), Some("x"));
        assert!(ok("-l").listen);
    }

    #[test]
    fn bad_arguments() {
        for line in [
            "",
            "-c 5",
            "-n x -c 0",
            "-n x -c -1",
            "-n x -s 8",
            "-n x -s big",
            "-n x -i 1y",
            "-n x -w soon",
            "-n x --qos gold",
            "-l -n x",
            "-n x extra",
        ] {
            let e = parse(line).expect_err(line);
            assert!(e.use_stderr(), "{line}");
        }
        let e = parse("-n x -s 8").expect_err("size").to_string();
        assert!(e.contains("at least 16 bytes"), "{e}");
        let e = parse("-n x --qos gold").expect_err("qos").to_string();
        assert!(e.contains("unknown QoS cube"), "{e}");
        let e = parse("-n x -i 1y").expect_err("interval").to_string();
        assert!(e.contains("ms, s, m"), "{e}");
    }

    #[test]
    fn help_and_version() {
        use clap::error::ErrorKind;
        assert_eq!(
            parse("--help").map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::DisplayHelp)
        );
        assert_eq!(
            parse("--version").map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::DisplayVersion)
        );
        assert!(!parse("--help").expect_err("help").use_stderr());
    }
}
