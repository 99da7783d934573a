//! `obc`: send a message to a broadcast layer (`obc -n LAYER -m MSG`), or listen to one
//! (`obc -n LAYER -l`) and print every message it carries. The prototype's tool, with the
//! same options and output; `-c` (stop after a number of messages) is ours.

use clap::Parser;
use o7s::{Error, Flow, QosSpec};
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone, PartialEq)]
#[command(
    name = "obc",
    version,
    about = "Send a message to a broadcast layer, or listen to one (-l)"
)]
pub struct Args {
    /// Name of the broadcast layer.
    #[arg(short = 'n', long = "name", value_name = "LAYER")]
    pub name: String,
    /// The message to send.
    #[arg(
        short = 'm',
        long = "message",
        default_value = "Ouroboros multicast rocks!",
        value_name = "MSG",
        conflicts_with = "listen"
    )]
    pub message: String,
    /// Listen: print every message the layer carries.
    #[arg(short = 'l', long = "listen")]
    pub listen: bool,
    /// With -l: exit after COUNT messages.
    #[arg(short = 'c', long = "count", value_name = "COUNT", requires = "listen")]
    pub count: Option<u64>,
}

/// How long the sender waits for the layer to take its message before it leaves.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Run `obc` with these arguments (including the program name); returns the exit code.
pub fn main<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Args = match crate::parse_args(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let res = if args.listen {
        listen(&args)
    } else {
        send(&args)
    };
    match res {
        Ok(()) => 0,
        Err(e) => {
            errln!("obc: {e}");
            1
        }
    }
}

fn why(e: Error) -> String {
    match e {
        Error::Irm(ie) => ie.to_string(),
        other => other.to_string(),
    }
}

fn join(layer: &str) -> Result<Flow, String> {
    Flow::join(layer, QosSpec::RAW, None)
        .map_err(|e| format!("cannot join broadcast layer \"{layer}\": {}", why(e)))
}

/// The bytes of a message on the wire: the text and a terminating NUL, as the prototype's
/// `obc` sends it (its listeners print up to the NUL).
pub fn encode(msg: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(msg.len() + 1);
    b.extend_from_slice(msg.as_bytes());
    b.push(0);
    b
}

/// The text of a message: up to its first NUL, if any.
pub fn decode(pkt: &[u8]) -> String {
    let end = pkt.iter().position(|&b| b == 0).unwrap_or(pkt.len());
    String::from_utf8_lossy(&pkt[..end]).into_owned()
}

fn send(args: &Args) -> Result<(), String> {
    let flow = join(&args.name)?;
    let pkt = encode(&args.message);
    if pkt.len() > flow.mtu() {
        return Err(format!(
            "a message of {} bytes is larger than layer {}'s maximum of {} bytes",
            pkt.len(),
            args.name,
            flow.mtu()
        ));
    }
    flow.write(&pkt)
        .map_err(|e| format!("cannot send to layer \"{}\": {}", args.name, why(e)))?;
    // Leave once the layer took the message: leaving first would take it down with the flow.
    let end = Instant::now() + DRAIN_WAIT;
    while flow.tx_queued() > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn listen(args: &Args) -> Result<(), String> {
    outln!("Starting a reader.");
    let flow = join(&args.name)?;
    outln!("New flow.");
    let mut buf = vec![0u8; 65536];
    let mut seen = 0u64;
    while args.count.is_none_or(|c| seen < c) {
        match flow.read(&mut buf) {
            Ok(n) => {
                seen += 1;
                outln!("Message is {}.", decode(&buf[..n]));
            }
            Err(Error::BufferTooSmall { needed }) if needed <= 1 << 24 => buf.resize(needed, 0),
            Err(e) if e.is_down() => {
                return Err(format!("layer \"{}\" went away", args.name));
            }
            Err(e) => return Err(format!("cannot read: {}", why(e))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("obc").chain(line.split_whitespace()))
    }

    #[test]
    fn arguments() {
        let a = parse("-n bc").expect("sender");
        assert_eq!((a.name.as_str(), a.listen), ("bc", false));
        assert_eq!(a.message, "Ouroboros multicast rocks!");
        assert_eq!(parse("-n bc -m hi").expect("msg").message, "hi");
        let l = parse("--name bc --listen -c 3").expect("listener");
        assert!(l.listen);
        assert_eq!(l.count, Some(3));
        assert!(parse("-l").is_err(), "a layer is needed");
        assert!(parse("-n bc -c 3").is_err(), "-c is for listeners");
        assert!(parse("-n bc -l -m x").is_err());
        assert!(!parse("--help").expect_err("help").use_stderr());
    }

    #[test]
    fn messages_carry_the_prototypes_nul() {
        assert_eq!(encode("hi"), b"hi\0");
        assert_eq!(decode(b"hi\0"), "hi");
        assert_eq!(decode(b"hi"), "hi");
        assert_eq!(decode(b"a\0b"), "a");
        assert_eq!(decode(&[0xff, b'x']), "\u{fffd}x");
    }
}
