//! The o7s command-line tools: `irm` (manage IPCPs, names and flows), `oping` (round-trip
//! times over a flow), `oecho` (echo one message) and `obc` (send to or listen on a broadcast
//! layer), among others. The binaries in `src/bin` only hand their arguments to the modules
//! here, so everything but the IO is unit-tested.
//!
//! This crate talks to the IRMd and to flows only through the `o7s` library.

/// `println!` that never panics: a tool whose stdout was closed keeps working.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

pub mod irm;
pub mod obc;
pub mod ocat;
pub mod ocbr;
pub mod oecho;
pub mod operf;
pub mod oping;
pub mod units;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Parse a tool's arguments; `Err(code)` after clap printed help (0) or an error (2).
pub fn parse_args<A, I, T>(args: I) -> Result<A, i32>
where
    A: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    A::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            2
        } else {
            0
        }
    })
}

/// Allocate the flow a client tool works over and check that `size`-byte packets fit;
/// on failure print `PROG: ...` with the reason and return the exit code.
pub fn client_flow(
    prog: &str,
    name: &str,
    qos: o7s::QosSpec,
    size: usize,
) -> Result<o7s::Flow, i32> {
    let flow = match o7s::Flow::alloc(name, qos, None) {
        Ok(f) => f,
        Err(e) => {
            let why = match e {
                o7s::Error::Irm(ie) => ie.to_string(),
                other => other.to_string(),
            };
            errln!("{prog}: cannot allocate a flow to \"{name}\": {why}");
            return Err(1);
        }
    };
    if size > flow.mtu() {
        let max = flow.mtu();
        errln!(
            "{prog}: a packet of {size} bytes is larger than the flow's maximum of {max} bytes; use -s {max} or less"
        );
        return Err(1);
    }
    Ok(flow)
}

/// A tool's whole life: parse `args` as `A`, run, turn the outcome into an exit code.
pub fn run_tool<A, I, T>(prog: &str, args: I, run: impl FnOnce(&A) -> anyhow::Result<i32>) -> i32
where
    A: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match parse_args::<A, _, _>(args) {
        Ok(a) => exit_code(prog, run(&a)),
        Err(code) => code,
    }
}

/// The exit code of a tool's run: its own, or 1 after printing `PROG: error`.
pub fn exit_code(prog: &str, res: anyhow::Result<i32>) -> i32 {
    match res {
        Ok(code) => code,
        Err(e) => {
            errln!("{prog}: {e:#}");
            1
        }
    }
}

/// Wait for the next flow to one of this process's names. A server started before its
/// `irm bind process` simply waits in the IRMd until the bind arrives.
pub fn accept_next() -> Result<o7s::Flow, o7s::Error> {
    loop {
        match o7s::Flow::accept(None) {
            Err(o7s::Error::Timeout | o7s::Error::Irm(o7s::IrmError::Timeout)) => continue,
            r => return r,
        }
    }
}

/// A flag raised by SIGINT, SIGTERM or SIGHUP, so a tool can stop and print its summary.
pub fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&flag)) {
            errln!("warning: cannot catch signal {sig}: {e}");
        }
    }
    flag
}
