//! The daemons' log lines, in the prototype's shape: `==PID== irmd(II): message`.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

struct ProtoFormat {
    prog: String,
    /// The daemon's pid, read once (a daemon does not fork and go on logging).
    pid: u32,
}

impl<S, N> FormatEvent<S, N> for ProtoFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let lvl = match *event.metadata().level() {
            Level::ERROR => "EE",
            Level::WARN => "WW",
            Level::INFO => "II",
            Level::DEBUG => "DB",
            Level::TRACE => "TT",
        };
        write!(w, "=={:05}== {}({}): ", self.pid, self.prog, lvl)?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Let the daemon open as many fds as the hard limit allows: each flow holds several
/// (its region, eventfds, liveness pipe), and ended flows' regions are kept for reuse.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        l.current = l.maximum;
        // Not fatal: the daemon works with fewer flows.
        let _ = setrlimit(Resource::Nofile, l);
    }
}

/// Install the log format for daemon `prog`; `verbose` adds debug lines. Logs go to stdout
/// when `stdout`, else to stderr. `RUST_LOG` overrides the level (`level` or
/// `target=level,...`; an unparsable value is ignored).
pub fn init(prog: &str, stdout: bool, verbose: bool) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // `Targets` rather than `EnvFilter`: the latter brings a regex engine, and every daemon
    // process would map its code (issue: memory per node).
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            Targets::new().with_default(if verbose {
                LevelFilter::DEBUG
            } else {
                LevelFilter::INFO
            })
        });
    let fmt = ProtoFormat {
        prog: prog.to_string(),
        pid: std::process::id(),
    };
    raise_fd_limit();
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_ansi(false)
        .event_format(fmt);
    let _ = if stdout {
        builder
            .with_writer(std::io::stdout)
            .finish()
            .with(filter)
            .try_init()
    } else {
        builder
            .with_writer(std::io::stderr)
            .finish()
            .with(filter)
            .try_init()
    };
}
