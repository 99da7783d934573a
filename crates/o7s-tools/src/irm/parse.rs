//! The `irm` keyword grammar, parsed by hand into the request it stands for.
//!
//! Same words as the prototype: `irm ipcp bootstrap type local name lo layer lo`. Keywords
//! and their values come in any order. Command words and keywords may be abbreviated as in
//! the prototype: a prefix means the first word, in the prototype's order, that it starts
//! (`irm i l` is `irm ipcp list`, `irm ipcp c` is `create`). Old spellings `dif` (for
//! `layer`) and `if_name` (for `dev`) are accepted. `--json` and `--help` may appear anywhere
//! before `--`; everything after `--` belongs to `irm bind program`.

use super::usage;
use o7s::ctrl::msg::{BindTarget, IpcpKind, IrmReq, LoadBalance, RegTarget};
use std::fmt;

/// What one `irm` command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub json: bool,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Print this usage text on stdout.
    Help(&'static str),
    Version,
    /// Send this request; print nothing on success.
    Send(IrmReq),
    IpcpList(IpcpFilter),
    NameList,
    FlowList,
}

/// Client-side filters of `irm ipcp list`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpcpFilter {
    pub kind: Option<IpcpKind>,
    pub name: Option<String>,
    pub layer: Option<String>,
}

/// A command line that does not parse: what is wrong, and the usage of the command.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub msg: String,
    pub usage: Option<&'static str>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "irm: {}", self.msg)?;
        if let Some(u) = self.usage {
            write!(f, "\n\nusage:\n{u}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

type Res<T> = Result<T, ParseError>;

fn err<T>(usage: &'static str, msg: impl Into<String>) -> Res<T> {
    Err(ParseError {
        msg: msg.into(),
        usage: Some(usage),
    })
}

fn is_help(w: &str) -> bool {
    matches!(w, "help" | "--help" | "-h")
}

/// Resolve an abbreviated word as the prototype does: an exact match, else the first of
/// `words` (in the prototype's order) that starts with it.
fn prefix(word: &str, words: &[&'static str]) -> Option<&'static str> {
    if word.is_empty() {
        return None;
    }
    words
        .iter()
        .find(|w| **w == word)
        .or_else(|| words.iter().find(|w| w.starts_with(word)))
        .copied()
}

/// Resolve a command word, or fail with the usage of the level it was looked for at.
fn pick(word: &str, words: &[&'static str], what: &str, usage: &'static str) -> Res<&'static str> {
    match prefix(word, words) {
        Some(w) => Ok(w),
        None => err(usage, format!("unknown {what} \"{word}\"")),
    }
}

/// Parse the arguments after the program name.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Res<Invocation> {
    let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
    let (head, tail) = match args.iter().position(|a| *a == "--") {
        Some(i) => (&args[..i], Some(&args[i + 1..])),
        None => (&args[..], None),
    };
    let mut json = false;
    let mut help = false;
    let mut words = Vec::new();
    for w in head {
        match *w {
            "--json" => json = true,
            "--help" | "-h" => help = true,
            _ => words.push(*w),
        }
    }
    let tail: Option<Vec<String>> = tail.map(|t| t.iter().map(|s| s.to_string()).collect());
    let action = parse_words(&words, tail, help)?;
    Ok(Invocation { json, action })
}

fn parse_words(words: &[&str], tail: Option<Vec<String>>, help: bool) -> Res<Action> {
    let Some((first, rest)) = words.split_first() else {
        return if help {
            Ok(Action::Help(usage::ALL))
        } else {
            err(usage::ALL, "no command given")
        };
    };
    match *first {
        "--version" | "-V" | "version" => return Ok(Action::Version),
        w if is_help(w) => return Ok(Action::Help(usage::ALL)),
        _ => {}
    }
    let cmd = pick(
        first,
        &["ipcp", "bind", "unbind", "name", "flow"],
        "command",
        usage::ALL,
    )?;
    let (group, subs): (&'static str, &[&'static str]) = match cmd {
        "ipcp" => (
            usage::IPCP,
            &[
                "create",
                "destroy",
                "bootstrap",
                "enroll",
                "connect",
                "disconnect",
                "list",
            ],
        ),
        "name" => (usage::NAME, &["create", "destroy", "reg", "unreg", "list"]),
        "flow" => (usage::FLOW, &["list"]),
        // bind and unbind have no subcommand word: their first word is a keyword.
        "bind" => return with_help(help, rest, usage::BIND, |k| bind(k, false, tail)),
        _ => return with_help(help, rest, usage::UNBIND, |k| bind(k, true, tail)),
    };
    let Some((sub, rest)) = rest.split_first() else {
        return if help {
            Ok(Action::Help(group))
        } else {
            err(group, format!("\"irm {cmd}\" needs a command"))
        };
    };
    if is_help(sub) {
        return Ok(Action::Help(group));
    }
    let sub = pick(sub, subs, &format!("{cmd} command"), group)?;
    let u = sub_usage(cmd, sub);
    if tail.is_some() {
        return err(
            u,
            "\"--\" and program arguments only go with: irm bind program",
        );
    }
    with_help(help, rest, u, |k| match (cmd, sub) {
        ("ipcp", "create") => ipcp_create(k),
        ("ipcp", "destroy") => ipcp_destroy(k),
        ("ipcp", "bootstrap") => ipcp_bootstrap(k),
        ("ipcp", "enroll") => ipcp_enroll(k),
        ("ipcp", "connect") => ipcp_connect(k, true),
        ("ipcp", "disconnect") => ipcp_connect(k, false),
        ("ipcp", _) => ipcp_list(k),
        ("name", "create") => name_create(k),
        ("name", "destroy") => name_destroy(k),
        ("name", "reg") => name_reg(k, true),
        ("name", "unreg") => name_reg(k, false),
        ("name", _) => no_args(k, Action::NameList),
        _ => no_args(k, Action::FlowList),
    })
}

fn sub_usage(cmd: &str, sub: &str) -> &'static str {
    match (cmd, sub) {
        ("ipcp", "create") => usage::IPCP_CREATE,
        ("ipcp", "destroy") => usage::IPCP_DESTROY,
        ("ipcp", "bootstrap") => usage::IPCP_BOOTSTRAP,
        ("ipcp", "enroll") => usage::IPCP_ENROLL,
        ("ipcp", "connect") => usage::IPCP_CONNECT,
        ("ipcp", "disconnect") => usage::IPCP_DISCONNECT,
        ("ipcp", _) => usage::IPCP_LIST,
        ("name", "create") => usage::NAME_CREATE,
        ("name", "destroy") => usage::NAME_DESTROY,
        ("name", "reg") => usage::NAME_REG,
        ("name", "unreg") => usage::NAME_UNREG,
        ("name", _) => usage::NAME_LIST,
        _ => usage::FLOW_LIST,
    }
}

/// Run `f` on the words of one command, unless help was asked for (`--help` anywhere, or
/// `help` as the first word).
fn with_help(
    help: bool,
    words: &[&str],
    usage: &'static str,
    f: impl FnOnce(&mut Words<'_>) -> Res<Action>,
) -> Res<Action> {
    if help || words.first().is_some_and(|w| is_help(w)) {
        return Ok(Action::Help(usage));
    }
    let mut k = Words { words, i: 0, usage };
    f(&mut k)
}

/// A cursor over the keyword/value words of one command.
struct Words<'a> {
    words: &'a [&'a str],
    i: usize,
    usage: &'static str,
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let w = self.words.get(self.i).copied();
        self.i += 1;
        w
    }

    /// The next keyword, resolved against `list` (abbreviations and old spellings allowed).
    fn next_kw(&mut self, list: &[&'static str]) -> Res<Option<&'static str>> {
        let Some(w) = self.next() else {
            return Ok(None);
        };
        match prefix(w, list) {
            Some(k) => Ok(Some(match k {
                "dif" => "layer",
                "if_name" => "dev",
                "addr-auth" => "addr_auth",
                "comp" => "component",
                other => other,
            })),
            None => self.unknown(w),
        }
    }

    /// The value after keyword `key`.
    fn value(&mut self, key: &str) -> Res<String> {
        match self.next() {
            Some(v) => Ok(v.to_string()),
            None => err(self.usage, format!("\"{key}\" needs a value")),
        }
    }

    /// Set a keyword's value once.
    fn once(&mut self, slot: &mut Option<String>, key: &str) -> Res<()> {
        let v = self.value(key)?;
        if slot.is_some() {
            return err(self.usage, format!("\"{key}\" given twice"));
        }
        *slot = Some(v);
        Ok(())
    }

    fn fail<T>(&self, msg: impl Into<String>) -> Res<T> {
        err(self.usage, msg)
    }

    fn unknown<T>(&self, word: &str) -> Res<T> {
        self.fail(format!("unexpected word \"{word}\""))
    }

    fn need(&self, v: Option<String>, what: &str) -> Res<String> {
        match v {
            Some(v) => Ok(v),
            None => self.fail(format!("missing \"{what}\"")),
        }
    }

    fn kind(&self, s: &str) -> Res<IpcpKind> {
        parse_kind(s).map_err(|msg| ParseError {
            msg,
            usage: Some(self.usage),
        })
    }
}

/// Parse an IPCP type as `irm` spells it.
pub fn parse_kind(s: &str) -> Result<IpcpKind, String> {
    IpcpKind::parse(s).ok_or_else(|| {
        let all: Vec<&str> = IpcpKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown IPCP type \"{s}\"; types: {}", all.join(", "))
    })
}

fn no_args(k: &mut Words<'_>, a: Action) -> Res<Action> {
    match k.next() {
        Some(w) => k.unknown(w),
        None => Ok(a),
    }
}

fn ipcp_create(k: &mut Words<'_>) -> Res<Action> {
    let (mut kind, mut name) = (None, None);
    while let Some(w) = k.next_kw(&["type", "name"])? {
        match w {
            "type" => k.once(&mut kind, w)?,
            "name" => k.once(&mut name, w)?,
            _ => return k.unknown(w),
        }
    }
    let kind = k.kind(&k.need(kind, "type TYPE")?)?;
    let name = k.need(name, "name NAME")?;
    Ok(Action::Send(IrmReq::IpcpCreate { kind, name }))
}

fn ipcp_destroy(k: &mut Words<'_>) -> Res<Action> {
    let mut name = None;
    while let Some(w) = k.next_kw(&["name"])? {
        match w {
            "name" => k.once(&mut name, w)?,
            _ => return k.unknown(w),
        }
    }
    let name = k.need(name, "name NAME")?;
    Ok(Action::Send(IrmReq::IpcpDestroy { name }))
}

/// The bootstrap parameters each type takes, as `irm` keywords (and sent under that key).
pub fn bootstrap_params(kind: IpcpKind) -> &'static [&'static str] {
    match kind {
        IpcpKind::Local => &["hash"],
        IpcpKind::EthLlc => &["dev", "hash"],
        IpcpKind::EthDix => &["dev", "ethertype", "hash"],
        IpcpKind::Udp4 | IpcpKind::Udp6 => &["ip", "port", "dns"],
        IpcpKind::Unicast => &[
            "addr",
            "eid",
            "ttl",
            "addr_auth",
            "routing",
            "ls_t_recalc",
            "ls_t_update",
            "ls_t_timeo",
            "congestion",
            "directory",
            "dht_alpha",
            "dht_k",
            "dht_t_expire",
            "dht_t_refresh",
            "dht_t_replicate",
            "hash",
        ],
        IpcpKind::Broadcast => &[],
    }
}

/// The keywords of `irm ipcp bootstrap`, in the order abbreviations resolve.
const BOOTSTRAP_KW: &[&str] = &[
    "type",
    "layer",
    "name",
    "hash",
    "ip",
    "dns",
    "dev",
    "ethertype",
    "addr",
    "eid",
    "ttl",
    "autobind",
    "addr_auth",
    "routing",
    "congestion",
    "directory",
    "ls_t_recalc",
    "ls_t_update",
    "ls_t_timeo",
    "dht_alpha",
    "dht_k",
    "dht_t_expire",
    "dht_t_refresh",
    "dht_t_replicate",
    "port",
    "dif",
    "if_name",
    "addr-auth",
];

/// Every keyword that is a bootstrap parameter of some type.
fn is_any_param(w: &str) -> bool {
    IpcpKind::ALL
        .iter()
        .any(|k| bootstrap_params(*k).contains(&w))
}

fn ipcp_bootstrap(k: &mut Words<'_>) -> Res<Action> {
    let (mut kind, mut name, mut layer) = (None, None, None);
    let mut autobind = false;
    let mut params: Vec<(String, String)> = Vec::new();
    while let Some(w) = k.next_kw(BOOTSTRAP_KW)? {
        match w {
            "type" => k.once(&mut kind, w)?,
            "name" => k.once(&mut name, w)?,
            "layer" => k.once(&mut layer, w)?,
            "autobind" => autobind = true,
            p if is_any_param(p) => {
                let v = k.value(p)?;
                if params.iter().any(|(key, _)| key == p) {
                    return k.fail(format!("\"{p}\" given twice"));
                }
                params.push((p.to_string(), v));
            }
            _ => return k.unknown(w),
        }
    }
    let kind = k.kind(&k.need(kind, "type TYPE")?)?;
    let name = k.need(name, "name NAME")?;
    let layer = k.need(layer, "layer LAYER")?;
    let allowed = bootstrap_params(kind);
    if let Some((p, _)) = params.iter().find(|(p, _)| !allowed.contains(&p.as_str())) {
        let what = if allowed.is_empty() {
            "it takes none".to_string()
        } else {
            format!("its parameters: {}", allowed.join(", "))
        };
        return k.fail(format!(
            "\"{p}\" is not a parameter of a {kind} IPCP; {what}"
        ));
    }
    // `autobind` is passed on for every type: the prototype's scripts send it to shims too,
    // and the IRMd knows what it means for each.
    Ok(Action::Send(IrmReq::IpcpBootstrap {
        kind,
        name,
        layer,
        params,
        autobind,
    }))
}

fn ipcp_enroll(k: &mut Words<'_>) -> Res<Action> {
    let (mut name, mut kind, mut dst, mut layer) = (None, None, None, None);
    let mut autobind = false;
    while let Some(w) = k.next_kw(&["name", "type", "dst", "layer", "autobind", "dif"])? {
        match w {
            "name" => k.once(&mut name, w)?,
            "type" => k.once(&mut kind, w)?,
            "dst" => k.once(&mut dst, w)?,
            "layer" => k.once(&mut layer, w)?,
            "autobind" => autobind = true,
            _ => return k.unknown(w),
        }
    }
    let name = k.need(name, "name NAME")?;
    let kind = kind.map(|t| k.kind(&t)).transpose()?;
    if dst.is_none() && layer.is_none() {
        return k.fail("enroll needs \"dst DST\" or \"layer LAYER\"");
    }
    Ok(Action::Send(IrmReq::IpcpEnroll {
        name,
        kind,
        dst,
        layer,
        autobind,
    }))
}

fn ipcp_connect(k: &mut Words<'_>, connect: bool) -> Res<Action> {
    let (mut name, mut comp, mut dst, mut qos) = (None, None, None, None);
    while let Some(w) = k.next_kw(&["name", "component", "dst", "qos", "comp"])? {
        match w {
            "name" => k.once(&mut name, w)?,
            "component" => k.once(&mut comp, w)?,
            "dst" => k.once(&mut dst, w)?,
            "qos" if connect => k.once(&mut qos, w)?,
            _ => return k.unknown(w),
        }
    }
    let name = k.need(name, "name NAME")?;
    let component = k.need(comp, "component (dt|mgmt)")?;
    if component != "dt" && component != "mgmt" {
        return k.fail(format!(
            "unknown component \"{component}\"; components: dt, mgmt"
        ));
    }
    let dst = k.need(dst, "dst DST")?;
    if let Some(q) = &qos {
        if let Err(e) = q.parse::<o7s::QosCube>() {
            return k.fail(e.to_string());
        }
    }
    Ok(Action::Send(if connect {
        IrmReq::IpcpConnect {
            name,
            component,
            dst,
            qos,
        }
    } else {
        IrmReq::IpcpDisconnect {
            name,
            component,
            dst,
        }
    }))
}

fn ipcp_list(k: &mut Words<'_>) -> Res<Action> {
    let (mut kind, mut name, mut layer) = (None, None, None);
    while let Some(w) = k.next_kw(&["type", "name", "layer", "dif"])? {
        match w {
            "type" => k.once(&mut kind, w)?,
            "name" => k.once(&mut name, w)?,
            "layer" => k.once(&mut layer, w)?,
            _ => return k.unknown(w),
        }
    }
    let kind = kind.map(|t| k.kind(&t)).transpose()?;
    Ok(Action::IpcpList(IpcpFilter { kind, name, layer }))
}

fn bind(k: &mut Words<'_>, unbind: bool, tail: Option<Vec<String>>) -> Res<Action> {
    let mut target: Option<BindTarget> = None;
    let mut name = None;
    let mut auto = false;
    while let Some(w) = k.next_kw(&["program", "process", "ipcp", "name", "auto"])? {
        let t = match w {
            "program" => BindTarget::Program {
                prog: k.value("program")?,
                auto: false,
                args: Vec::new(),
            },
            "process" => {
                let v = k.value("process")?;
                match v.parse::<u32>() {
                    Ok(pid) if pid > 0 => BindTarget::Process { pid },
                    _ => return k.fail(format!("\"{v}\" is not a process id")),
                }
            }
            "ipcp" => BindTarget::Ipcp {
                name: k.value("ipcp")?,
            },
            "name" => {
                k.once(&mut name, w)?;
                continue;
            }
            "auto" if !unbind => {
                auto = true;
                continue;
            }
            _ => return k.unknown(w),
        };
        if target.is_some() {
            return k.fail("give one of \"program PROG\", \"process PID\" or \"ipcp IPCP\"");
        }
        target = Some(t);
    }
    let Some(mut target) = target else {
        return k.fail("missing \"program PROG\", \"process PID\" or \"ipcp IPCP\"");
    };
    let name = k.need(name, "name NAME")?;
    match &mut target {
        BindTarget::Program { auto: a, args, .. } => {
            *a = auto;
            if unbind && tail.is_some() {
                return k.fail("\"--\" and program arguments only go with: irm bind program");
            }
            *args = tail.unwrap_or_default();
        }
        _ if auto => return k.fail("\"auto\" only goes with \"program PROG\""),
        _ if tail.is_some() => {
            return k.fail("\"--\" and program arguments only go with \"program PROG\"")
        }
        _ => {}
    }
    Ok(Action::Send(if unbind {
        IrmReq::Unbind { target, name }
    } else {
        IrmReq::Bind { target, name }
    }))
}

/// The name that comes first: `irm name create NAME ...`.
fn first_name(k: &mut Words<'_>) -> Res<String> {
    match k.next() {
        Some(n) => Ok(n.to_string()),
        None => k.fail("missing NAME"),
    }
}

const CRED_KEYS: [&str; 6] = [
    "sencpath", "scrtpath", "skeypath", "cencpath", "ccrtpath", "ckeypath",
];
const NAME_CREATE_KW: &[&str] = &[
    "lb", "sencpath", "scrtpath", "skeypath", "cencpath", "ccrtpath", "ckeypath",
];

fn name_create(k: &mut Words<'_>) -> Res<Action> {
    let name = first_name(k)?;
    let mut lb = None;
    while let Some(w) = k.next_kw(NAME_CREATE_KW)? {
        match w {
            "lb" => k.once(&mut lb, w)?,
            c if CRED_KEYS.contains(&c) => {
                return Err(ParseError {
                    msg: format!("\"{c}\": credentials are not supported yet"),
                    usage: None,
                })
            }
            _ => return k.unknown(w),
        }
    }
    let lb = match lb {
        None => LoadBalance::default(),
        Some(s) => match LoadBalance::parse(&s) {
            Some(lb) => lb,
            None => {
                return k.fail(format!(
                    "unknown load balancing \"{s}\"; choose spill or round-robin"
                ))
            }
        },
    };
    Ok(Action::Send(IrmReq::NameCreate { name, lb }))
}

fn name_destroy(k: &mut Words<'_>) -> Res<Action> {
    let name = first_name(k)?;
    no_args(k, Action::Send(IrmReq::NameDestroy { name }))
}

fn name_reg(k: &mut Words<'_>, reg: bool) -> Res<Action> {
    let name = first_name(k)?;
    let mut targets = Vec::new();
    while let Some(w) = k.next_kw(&["layer", "ipcp", "dif"])? {
        match w {
            "layer" => targets.push(RegTarget::Layer(k.value(w)?)),
            "ipcp" => targets.push(RegTarget::Ipcp(k.value(w)?)),
            _ => return k.unknown(w),
        }
    }
    if targets.is_empty() {
        return k.fail("missing \"layer LAYER\" or \"ipcp IPCP\"");
    }
    Ok(Action::Send(if reg {
        IrmReq::NameReg { name, targets }
    } else {
        IrmReq::NameUnreg { name, targets }
    }))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
