//! The daemons' log lines, in the prototype's shape: `==PID== irmd(II): message`.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

struct ProtoFormat {
    prog: String,
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
        write!(w, "=={:05}== {}({}): ", std::process::id(), self.prog, lvl)?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Install the log format for daemon `prog`; `verbose` adds debug lines. Logs go to stdout
/// when `stdout`, else to stderr. `RUST_LOG` overrides the level.
pub fn init(prog: &str, stdout: bool, verbose: bool) {
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = ProtoFormat {
        prog: prog.to_string(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .event_format(fmt);
    let _ = if stdout {
        builder.with_writer(std::io::stdout).try_init()
    } else {
        builder.with_writer(std::io::stderr).try_init()
    };
}
