//! `irm`: the management CLI. Parses the prototype's keyword grammar into one [`IrmReq`],
//! sends it to the IRMd and prints listings; it keeps no state and touches no flow.
//!
//! Exit codes: 0 success, 1 the IRMd refused (or is not running), 2 a bad command line.

mod cmds;
pub mod parse;
pub mod show;
pub mod usage;

use o7s::ctrl::msg::{BindTarget, IrmReq, IrmResp};
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

/// The program of `irm bind program` as an absolute path, found on *this* `PATH` like the
/// prototype does (the IRMd may run with another `PATH`); left as given when not found.
pub fn resolve_program(prog: &str, path: Option<&std::ffi::OsStr>) -> String {
    let found = if prog.contains('/') {
        std::fs::canonicalize(prog).ok()
    } else {
        path.into_iter()
            .flat_map(std::env::split_paths)
            .filter(|d| d.is_absolute())
            .map(|d| d.join(prog))
            .find(|p| is_executable(p))
    };
    match found {
        Some(p) if is_executable(&p) => p.to_string_lossy().into_owned(),
        _ => prog.to_string(),
    }
}

fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn with_program_path(req: IrmReq) -> IrmReq {
    let path = std::env::var_os("PATH");
    let fix = |t: BindTarget| match t {
        BindTarget::Program { prog, auto, args } => BindTarget::Program {
            prog: resolve_program(&prog, path.as_deref()),
            auto,
            args,
        },
        other => other,
    };
    match req {
        IrmReq::Bind { target, name } => IrmReq::Bind {
            target: fix(target),
            name,
        },
        IrmReq::Unbind { target, name } => IrmReq::Unbind {
            target: fix(target),
            name,
        },
        other => other,
    }
}

/// Carry out one invocation; returns what to print on stdout.
pub fn run(inv: &Invocation) -> Result<String, o7s::Error> {
    let req = match &inv.action {
        Action::Help(u) => return Ok(format!("usage:\n{u}\n")),
        Action::Version => return Ok(format!("irm (o7s) {}\n", env!("CARGO_PKG_VERSION"))),
        Action::Send(r) => with_program_path(r.clone()),
        Action::IpcpList(_) => IrmReq::IpcpList,
        Action::IpcpShow(name) => IrmReq::IpcpShow { name: name.clone() },
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
        (Action::IpcpShow(_), IrmResp::IpcpShow(info, details)) => {
            if inv.json {
                let mut m = serde_json::Map::new();
                m.insert("name".into(), info.name.clone().into());
                m.insert("type".into(), info.kind.name().into());
                m.insert("pid".into(), info.pid.into());
                m.insert("layer".into(), info.layer.clone().into());
                m.insert("state".into(), info.state.clone().into());
                // A label that repeats (one per neighbour adjacency, per registered name...)
                // becomes an array of its values.
                for (k, v) in &details {
                    let v_json: serde_json::Value = v.clone().into();
                    match m.get_mut(k) {
                        // The IPCP repeating a field of the list entry (its layer, say).
                        Some(old) if *old == v_json => {}
                        Some(serde_json::Value::Array(a)) => a.push(v_json),
                        Some(old) => {
                            let first = old.take();
                            *old = serde_json::Value::Array(vec![first, v.clone().into()]);
                        }
                        None => {
                            m.insert(k.clone(), v.clone().into());
                        }
                    }
                }
                json_line(serde_json::Value::Object(m))
            } else {
                let mut rows = vec![
                    ("name".to_string(), info.name.clone()),
                    ("type".to_string(), info.kind.name().to_string()),
                    ("pid".to_string(), info.pid.to_string()),
                    (
                        "layer".to_string(),
                        info.layer.clone().unwrap_or_else(|| "-".into()),
                    ),
                    ("state".to_string(), info.state.clone()),
                ];
                rows.extend(details);
                let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                rows.iter()
                    .map(|(k, v)| format!("{k:<w$}  {v}\n"))
                    .collect()
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
            // Best effort: without the IPCP list, IPCP processes show as bare pids.
            let ipcps = match irm.call(&IrmReq::IpcpList) {
                Ok((IrmResp::Ipcps(i), _)) => show::ipcp_pids(&i),
                _ => show::IpcpPids::new(),
            };
            if inv.json {
                json_line(show::flows_json(&v, &ipcps))
            } else {
                show::flows_table(&v, &ipcps)
            }
        }
        (_, r) => return Err(unexpected(r)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn programs_are_found_on_this_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("myserver");
        std::fs::write(&exe, "#!/bin/sh\n").expect("write");
        let plain = dir.path().join("notexec");
        std::fs::write(&plain, "").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let canon = std::fs::canonicalize(&exe).expect("canon");
        let path = format!("/nonexistent:{}", dir.path().display());
        assert_eq!(
            resolve_program("myserver", Some(OsStr::new(&path))),
            exe.to_string_lossy()
        );
        assert_eq!(
            resolve_program("notexec", Some(OsStr::new(&path))),
            "notexec"
        );
        assert_eq!(
            resolve_program("nowhere", Some(OsStr::new(&path))),
            "nowhere"
        );
        assert_eq!(resolve_program("myserver", None), "myserver");
        assert_eq!(
            resolve_program(&exe.to_string_lossy(), None),
            canon.to_string_lossy()
        );
        assert_eq!(resolve_program("./no/such/prog", None), "./no/such/prog");
    }
}
