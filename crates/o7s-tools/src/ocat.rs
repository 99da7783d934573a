//! `ocat`: copy a byte stream over a flow, like netcat. `ocat -n NAME [FILE]` sends FILE (or
//! standard input); `ocat -l [-o FILE]` accepts one flow and writes what arrives to FILE (or
//! standard output).
//!
//! Each message starts with one byte: `D` (data follows) or `E` (end of the stream, with the
//! total byte count as 8 bytes little-endian). The receiver thus tells a complete stream
//! from a flow that went down half-way, and exits 0 only for the former.

use anyhow::{bail, Context};
use clap::Parser;
use o7s::{Error, Flow, QosCube};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

const DATA: u8 = b'D';
const END: u8 = b'E';

#[derive(Parser, Debug, Clone, PartialEq)]
#[command(
    name = "ocat",
    version,
    about = "Copy a byte stream over a flow to a name (server: ocat -l)"
)]
pub struct Args {
    /// Run as the server: accept one flow and write what arrives to -o FILE or stdout.
    #[arg(short = 'l', long = "listen", conflicts_with_all = ["name", "input"])]
    pub listen: bool,
    /// Name of the ocat server.
    #[arg(
        short = 'n',
        long = "name",
        required_unless_present = "listen",
        value_name = "NAME"
    )]
    pub name: Option<String>,
    /// Server: write the stream to FILE instead of stdout.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        requires = "listen",
        conflicts_with = "name"
    )]
    pub output: Option<PathBuf>,
    /// Client: send FILE instead of stdin.
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// QoS cube of the flow. Only `data` retransmits what the layer loses.
    #[arg(long = "qos", value_name = "CUBE", default_value = "data")]
    pub qos: QosCube,
    /// Client: the flow's peer timeout (a silent peer takes the flow down after this long,
    /// and so does data unacknowledged for this long); a bare number is in seconds
    /// [default: the cube's, 120 s].
    #[arg(long = "timeout", value_name = "DURATION",
          value_parser = |s: &str| crate::units::parse_duration(s, crate::units::TimeUnit::S))]
    pub timeout: Option<std::time::Duration>,
    /// Bytes per message [default: as many whole packets of the layer as fit in 64 KiB, so
    /// that no message ends in a small fragment]
    #[arg(short = 's', long = "size", value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub size: Option<u32>,
    /// Print nothing but errors.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// At the end (or on failure), print the flow's FRCT counters to stderr.
    #[arg(long = "stats")]
    pub stats: bool,
}

/// Run `ocat` with these arguments (including the program name); returns the exit code.
pub fn main<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    crate::run_tool(
        "ocat",
        args,
        |a: &Args| {
            if a.listen {
                server(a)
            } else {
                client(a)
            }
        },
    )
}

fn rate(bytes: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "-".into();
    }
    format!("{:.1} Mb/s", bytes as f64 * 8.0 / secs / 1e6)
}

/// The default message size (tag included): as many whole packets of `packet` bytes as fit in
/// 64 KiB (at least one), at most the flow's `mtu`. A 64 KiB + 1 byte message over a layer of
/// 64 KiB frames went out as a full frame and a tiny one, and took two places of the window.
fn default_message(packet: usize, mtu: usize) -> usize {
    let packet = packet.max(2);
    ((65_536 / packet).max(1) * packet).min(mtu).max(2)
}

/// One line of the flow's FRCT counters, if it runs FRCT.
fn stats_line(flow: &Flow) -> Option<String> {
    let s = flow.frct_stats()?;
    let c = s.counters;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    Some(format!(
        "retransmissions {} (fast {}), rtt samples {}, srtt {:.3} ms, mdev {:.3} ms, \
         rto {:.3} ms, duplicates {}, out of window {}, rendez-vous sent {} received {}, \
         window {}, in flight {}, malformed {}",
        c.retransmissions,
        c.fast_retransmissions,
        c.rtt_estimates,
        ms(c.srtt),
        ms(c.mdev),
        ms(c.rto),
        c.duplicates,
        c.out_of_window,
        c.rendezvous_sent,
        c.rendezvous_received,
        c.window,
        c.in_flight,
        s.malformed,
    ))
}

fn print_stats(a: &Args, flow: &Flow, when: &str) {
    if a.stats {
        if let Some(l) = stats_line(flow) {
            eprintln!("ocat: frct {when}: {l}");
        }
    }
}

fn client(a: &Args) -> anyhow::Result<i32> {
    let name = a.name.clone().unwrap_or_default();
    let mut input: Box<dyn Read> = match &a.input {
        Some(p) => Box::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        ),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut qos = a.qos.spec();
    if let Some(t) = a.timeout {
        qos.timeout = u32::try_from(t.as_millis()).unwrap_or(u32::MAX).max(1);
    }
    let asked = a.size.map_or(1, |s| s as usize + 1);
    let flow = match crate::client_flow("ocat", &name, qos, asked) {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    // A message is the tag byte and `size` bytes of data.
    let size = match a.size {
        Some(s) => s as usize,
        None => default_message(flow.packet_payload(), flow.mtu()) - 1,
    };
    let t = Instant::now();
    let mut total = 0u64;
    // Each message is read from the input straight into the flow (no copy of our own).
    let mut failed = None;
    loop {
        let sent = flow.write_with(size + 1, |b| {
            b[0] = DATA;
            loop {
                match input.read(&mut b[1..]) {
                    Ok(0) => return 0,
                    Ok(n) => return n + 1,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        failed = Some(e);
                        return 0;
                    }
                }
            }
        });
        match sent {
            Ok(0) => break,
            Ok(n) => total += (n - 1) as u64,
            Err(e) => {
                print_stats(a, &flow, "at the failure");
                return Err(e)
                    .with_context(|| format!("cannot send to \"{name}\" after {total} bytes"));
            }
        }
    }
    if let Some(e) = failed {
        return Err(e).context("cannot read the input");
    }
    let mut end = [0u8; 9];
    end[0] = END;
    end[1..].copy_from_slice(&total.to_le_bytes());
    if let Err(e) = flow.write(&end) {
        print_stats(a, &flow, "at the failure");
        return Err(e).with_context(|| format!("cannot send the end of the stream to \"{name}\""));
    }
    let written = t.elapsed();
    print_stats(a, &flow, "before closing");
    // Closing lingers until the peer has acknowledged everything (reliable flows).
    flow.dealloc()
        .with_context(|| format!("closing the flow to \"{name}\""))?;
    if !a.quiet {
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "ocat: sent {total} bytes in {s:.3} s ({}; the last write returned after {:.3} s)",
            rate(total, s),
            written.as_secs_f64()
        );
    }
    Ok(0)
}

fn server(a: &Args) -> anyhow::Result<i32> {
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let flow = crate::accept_next().context("cannot accept a flow")?;
    let t = Instant::now();
    let mut buf = vec![0u8; flow.mtu().min(1 << 21)];
    let mut total = 0u64;
    loop {
        let n = match read_one(&flow, &mut buf) {
            Ok(n) => n,
            Err(Error::FlowDown) => {
                out.flush().ok();
                print_stats(a, &flow, "at the failure");
                bail!("the flow went down before the end of the stream ({total} bytes received)");
            }
            Err(e) => bail!("cannot read from the flow: {e}"),
        };
        match buf.first() {
            Some(&DATA) => {
                out.write_all(&buf[1..n])
                    .context("cannot write the output")?;
                total += (n - 1) as u64;
            }
            Some(&END) if n == 9 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[1..9]);
                let sent = u64::from_le_bytes(b);
                out.flush().context("cannot write the output")?;
                print_stats(a, &flow, "at the end");
                if sent != total {
                    bail!("the sender sent {sent} bytes but {total} arrived");
                }
                if !a.quiet {
                    let s = t.elapsed().as_secs_f64();
                    eprintln!(
                        "ocat: received {total} bytes in {s:.3} s ({})",
                        rate(total, s)
                    );
                }
                return Ok(0);
            }
            _ => bail!("not an ocat stream (message of {n} bytes with a bad type byte)"),
        }
    }
}

/// Read one message, growing `buf` if it is larger.
fn read_one(flow: &Flow, buf: &mut Vec<u8>) -> Result<usize, Error> {
    loop {
        match flow.read(buf) {
            Err(Error::BufferTooSmall { needed }) => buf.resize(needed, 0),
            Ok(0) => continue,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args() {
        let a = Args::try_parse_from(["ocat", "-n", "x", "f.bin"]).expect("client");
        assert_eq!(a.name.as_deref(), Some("x"));
        assert_eq!(a.qos, QosCube::Data);
        assert_eq!(a.size, None);
        assert_eq!(default_message(1434, 1 << 22), 45 * 1434);
        assert_eq!(default_message(65_400, 1 << 22), 65_400);
        assert_eq!(default_message(100_000, 1 << 22), 100_000);
        assert_eq!(default_message(1434, 1400), 1400);
        assert!(!a.stats);
        let a = Args::try_parse_from(["ocat", "-l", "--stats"]).expect("stats");
        assert!(a.stats);
        let a = Args::try_parse_from(["ocat", "-l", "-o", "out"]).expect("server");
        assert!(a.listen);
        assert!(
            Args::try_parse_from(["ocat"]).is_err(),
            "client needs a name"
        );
        assert!(Args::try_parse_from(["ocat", "-n", "x", "-o", "y"]).is_err());
        assert!(Args::try_parse_from(["ocat", "-n", "x", "-s", "0"]).is_err());
        let a = Args::try_parse_from(["ocat", "-n", "x", "--timeout", "2"]).expect("timeout");
        assert_eq!(a.timeout, Some(std::time::Duration::from_secs(2)));
        let a = Args::try_parse_from(["ocat", "-n", "x", "--timeout", "500ms"]).expect("ms");
        assert_eq!(a.timeout, Some(std::time::Duration::from_millis(500)));
    }
}
