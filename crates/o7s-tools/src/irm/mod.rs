//! `irm`: the management CLI. Parses the prototype's keyword grammar into one [`IrmReq`],
//! sends it to the IRMd and prints listings; it keeps no state and touches no flow.
//!
//! Exit codes: 0 success, 1 the IRMd refused (or is not running), 2 a bad command line.

pub mod parse;
pub mod show;
pub mod usage;

use o7s::ctrl::msg::{IrmReq, IrmResp};
use parse::{Action, Invocation};
use std::io::Write;

/// Run `irm` with these arguments (without the program name); returns the exit code.
pub fn main<S: AsRef<str>>(args: &[S]) -> i32 {
    let inv = match parse::parse(args) {
        Ok(inv) => inv,
        Err(e) => {
            errln!("{e}");
            return 2;
        }
    };
    match run(&inv) {
        Ok(out) => {
            let mut so = std::io::stdout().lock();
            // A closed pipe (`irm ipcp list | head -1`) is not an error worth a message.
            let _ = so.write_all(out.as_bytes());
            let _ = so.flush();
            0
        }
        Err(o7s::Error::Irm(e)) => {
            errln!("irm: {e}");
            1
        }
        Err(e) => {
            errln!("irm: {e}");
            1
        }
    }
}

fn unexpected(r: IrmResp) -> o7s::Error {
    o7s::Error::Protocol(format!("unexpected answer {r:?}"))
}

fn json_line(v: serde_json::Value) -> String {
    format!("{v}\n")
}

/// Carry out one invocation; returns what to print on stdout.
pub fn run(inv: &Invocation) -> Result<String, o7s::Error> {
    let req = match &inv.action {
        Action::Help(u) => return Ok(format!("usage:\n{u}\n")),
        Action::Version => return Ok(format!("irm (o7s) {}\n", env!("CARGO_PKG_VERSION"))),
        Action::Send(r) => r.clone(),
        Action::IpcpList(_) => IrmReq::IpcpList,
        Action::NameList => IrmReq::NameList,
        Action::FlowList => IrmReq::FlowList,
    };
    let irm = o7s::Irm::connect()?;
    let (resp, _fds) = irm.call(&req)?;
    Ok(match (&inv.action, resp) {
        (Action::Send(_), IrmResp::Ok | IrmResp::IpcpCreated { .. }) => String::new(),
        (Action::IpcpList(f), IrmResp::Ipcps(v)) => {
            let v: Vec<_> = v.into_iter().filter(|i| show::keep(f, i)).collect();
            if inv.json {
                json_line(show::ipcps_json(&v))
            } else {
                show::ipcps_table(&v)
            }
        }
        (Action::NameList, IrmResp::Names(v)) => {
            if inv.json {
                json_line(show::names_json(&v))
            } else {
                show::names_table(&v)
            }
        }
        (Action::FlowList, IrmResp::Flows(v)) => {
            if inv.json {
                json_line(show::flows_json(&v))
            } else {
                show::flows_table(&v)
            }
        }
        (_, r) => return Err(unexpected(r)),
    })
}
