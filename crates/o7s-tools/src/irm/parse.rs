//! The `irm` keyword grammar, parsed by hand into the request it stands for.
//!
//! Same words as the prototype: `irm ipcp bootstrap type local name lo layer lo`. Keywords
//! and their values come in any order. Command words and keywords may be abbreviated as in
//! the prototype: a prefix means the first word, in the prototype's order, that it starts
//! (`irm i l` is `irm ipcp list`, `irm ipcp c` is `create`). Old spellings `dif` (for
//! `layer`) and `if_name` (for `dev`) are accepted. `--json` and `--help` may appear anywhere
//! before `--`; everything after `--` belongs to `irm bind program`.

use super::cmds;
use super::usage;
use o7s::ctrl::msg::{IpcpKind, IrmReq};
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
    IpcpShow(String),
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

pub(super) type Res<T> = Result<T, ParseError>;

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
                "show",
            ],
        ),
        "name" => (usage::NAME, &["create", "destroy", "reg", "unreg", "list"]),
        "flow" => (usage::FLOW, &["list"]),
        // bind and unbind have no subcommand word: their first word is a keyword.
        "bind" => return with_help(help, rest, usage::BIND, |k| cmds::bind(k, false, tail)),
        _ => return with_help(help, rest, usage::UNBIND, |k| cmds::bind(k, true, tail)),
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
        ("ipcp", "create") => cmds::ipcp_create(k),
        ("ipcp", "destroy") => cmds::ipcp_destroy(k),
        ("ipcp", "bootstrap") => cmds::ipcp_bootstrap(k),
        ("ipcp", "enroll") => cmds::ipcp_enroll(k),
        ("ipcp", "connect") => cmds::ipcp_connect(k, true),
        ("ipcp", "disconnect") => cmds::ipcp_connect(k, false),
        ("ipcp", "show") => cmds::ipcp_show(k),
        ("ipcp", _) => cmds::ipcp_list(k),
        ("name", "create") => cmds::name_create(k),
        ("name", "destroy") => cmds::name_destroy(k),
        ("name", "reg") => cmds::name_reg(k, true),
        ("name", "unreg") => cmds::name_reg(k, false),
        ("name", _) => cmds::no_args(k, Action::NameList),
        _ => cmds::no_args(k, Action::FlowList),
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
        ("ipcp", "show") => usage::IPCP_SHOW,
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
pub(super) struct Words<'a> {
    words: &'a [&'a str],
    i: usize,
    usage: &'static str,
}

impl<'a> Words<'a> {
    /// How many words are left.
    pub(super) fn remaining(&self) -> usize {
        self.words.len().saturating_sub(self.i)
    }

    pub(super) fn next(&mut self) -> Option<&'a str> {
        let w = self.words.get(self.i).copied();
        self.i += 1;
        w
    }

    /// The next keyword, resolved against `list` (abbreviations and old spellings allowed).
    pub(super) fn next_kw(&mut self, list: &[&'static str]) -> Res<Option<&'static str>> {
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
    pub(super) fn value(&mut self, key: &str) -> Res<String> {
        match self.next() {
            Some(v) => Ok(v.to_string()),
            None => err(self.usage, format!("\"{key}\" needs a value")),
        }
    }

    /// Set a keyword's value once.
    pub(super) fn once(&mut self, slot: &mut Option<String>, key: &str) -> Res<()> {
        let v = self.value(key)?;
        if slot.is_some() {
            return err(self.usage, format!("\"{key}\" given twice"));
        }
        *slot = Some(v);
        Ok(())
    }

    pub(super) fn fail<T>(&self, msg: impl Into<String>) -> Res<T> {
        err(self.usage, msg)
    }

    pub(super) fn unknown<T>(&self, word: &str) -> Res<T> {
        self.fail(format!("unexpected word \"{word}\""))
    }

    pub(super) fn need(&self, v: Option<String>, what: &str) -> Res<String> {
        match v {
            Some(v) => Ok(v),
            None => self.fail(format!("missing \"{what}\"")),
        }
    }

    pub(super) fn kind(&self, s: &str) -> Res<IpcpKind> {
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

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
