//! `oecho`: send one message over a flow and print the reply (`oecho -n NAME [-m MSG]`), or
//! serve (`oecho -l`): accept flows, print each message and send it back.

use clap::Parser;
use o7s::{Error, Flow};
use std::time::Duration;

#[derive(Parser, Debug, Clone, PartialEq)]
#[command(
    name = "oecho",
    version,
    about = "Echo a message over a flow to a name (server: oecho -l)"
)]
pub struct Args {
    /// Run as the server: print every message received and send it back.
    #[arg(short = 'l', long = "listen", conflicts_with_all = ["name", "message", "count"])]
    pub listen: bool,
    /// Name of the oecho server.
    #[arg(
        short = 'n',
        long = "name",
        required_unless_present = "listen",
        value_name = "NAME"
    )]
    pub name: Option<String>,
    /// The message to send.
    #[arg(
        short = 'm',
        long = "message",
        default_value = "Client says hi!",
        value_name = "MSG"
    )]
    pub message: String,
    /// Echo over this many flows, one after another (each allocated, echoed and
    /// deallocated; the message gets " #K" appended for flow K).
    #[arg(
        short = 'c',
        long = "count",
        default_value_t = 1,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub count: u32,
}

/// How long the client waits for the echo.
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// Run `oecho` with these arguments (including the program name); returns the exit code.
pub fn main<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Args = match crate::parse_args(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let res = if args.listen { server() } else { client(&args) };
    match res {
        Ok(()) => 0,
        Err(e) => {
            errln!("oecho: {e}");
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

fn client(args: &Args) -> Result<(), String> {
    let name = args.name.clone().unwrap_or_default();
    if args.count == 1 {
        return echo(&name, &args.message);
    }
    for k in 1..=args.count {
        echo(&name, &format!("{} #{k}", args.message))?;
    }
    Ok(())
}

/// Send `message` over a new flow to `name`, print the reply, which must be the message.
fn echo(name: &str, message: &str) -> Result<(), String> {
    let flow = Flow::alloc(name, o7s::QosSpec::RAW, None)
        .map_err(|e| format!("cannot allocate a flow to \"{name}\": {}", why(e)))?;
    flow.write(message.as_bytes())
        .map_err(|e| format!("cannot send to \"{name}\": {}", why(e)))?;
    flow.set_read_timeout(Some(REPLY_WAIT));
    let mut buf = vec![0u8; flow.mtu().max(1)];
    let n = match flow.read(&mut buf) {
        Ok(n) => n,
        Err(Error::Timeout) => {
            return Err(format!(
                "no reply from \"{name}\" within {} s",
                REPLY_WAIT.as_secs()
            ))
        }
        Err(e) if e.is_down() => return Err(format!("flow to {name} went down")),
        Err(e) => return Err(format!("cannot read from \"{name}\": {}", why(e))),
    };
    let reply = String::from_utf8_lossy(&buf[..n]);
    outln!("{reply}");
    if reply != message {
        return Err(format!("\"{name}\" sent back something else"));
    }
    Ok(())
}

fn server() -> Result<(), String> {
    loop {
        let flow = crate::accept_next().map_err(|e| format!("cannot accept flows: {}", why(e)))?;
        flow.set_read_timeout(Some(REPLY_WAIT));
        let mut buf = vec![0u8; flow.mtu().max(1)];
        match flow.read(&mut buf) {
            Ok(n) => {
                outln!(
                    "Message from client: {}",
                    String::from_utf8_lossy(&buf[..n])
                );
                if let Err(e) = flow.write(&buf[..n]) {
                    errln!("oecho: cannot reply on flow {}: {e}", flow.id());
                }
            }
            Err(e) => errln!("oecho: flow {}: {e}", flow.id()),
        }
        // The flow is deallocated when dropped; the client has its echo by then.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("oecho").chain(line.split_whitespace()))
    }

    #[test]
    fn arguments() {
        let a = parse("-n echo").expect("client");
        assert_eq!(a.name.as_deref(), Some("echo"));
        assert_eq!(a.message, "Client says hi!");
        assert_eq!(parse("-n echo -m hello").expect("msg").message, "hello");
        assert_eq!(parse("-n echo").expect("one").count, 1);
        assert_eq!(parse("-n echo -c 5").expect("count").count, 5);
        assert!(parse("-n echo -c 0").is_err());
        assert!(parse("-l").expect("server").listen);
        assert!(parse("").is_err());
        assert!(parse("-l -n x").is_err());
        assert!(!parse("--help").expect_err("help").use_stderr());
        assert!(parse("--bogus").expect_err("bogus").use_stderr());
    }
}
