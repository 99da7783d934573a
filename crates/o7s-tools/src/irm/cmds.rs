//! The words of each `irm` command after its command words: `ipcp`, `bind`/`unbind`, `name`.
//! Each function reads keywords and values from a [`Words`] cursor and returns the request.

use super::parse::{Action, IpcpFilter, ParseError, Res, Words};
use o7s::ctrl::msg::{BindTarget, IpcpKind, IrmReq, LoadBalance, RegTarget};

pub(super) fn no_args(k: &mut Words<'_>, a: Action) -> Res<Action> {
    match k.next() {
        Some(w) => k.unknown(w),
        None => Ok(a),
    }
}

pub(super) fn ipcp_create(k: &mut Words<'_>) -> Res<Action> {
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

pub(super) fn ipcp_destroy(k: &mut Words<'_>) -> Res<Action> {
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
        IpcpKind::Udp4 | IpcpKind::Udp6 => &["ip", "port", "dns", "dns_zone", "hosts"],
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
    "dns_zone",
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
    "hosts",
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

pub(super) fn ipcp_bootstrap(k: &mut Words<'_>) -> Res<Action> {
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

pub(super) fn ipcp_enroll(k: &mut Words<'_>) -> Res<Action> {
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
    if let Some(t) = kind.filter(|t| !matches!(t, IpcpKind::Unicast | IpcpKind::Broadcast)) {
        return k.fail(format!(
            "only unicast and broadcast IPCPs enroll; a {t} IPCP is bootstrapped: \
             irm ipcp bootstrap type {t} name {name} layer LAYER ..."
        ));
    }
    if dst.is_none() && layer.is_none() {
        return k.fail(
            "enroll needs \"dst DST\" (a member of the layer, or the layer's name) or \
             \"layer LAYER\"",
        );
    }
    Ok(Action::Send(IrmReq::IpcpEnroll {
        name,
        kind,
        dst,
        layer,
        autobind,
    }))
}

pub(super) fn ipcp_connect(k: &mut Words<'_>, connect: bool) -> Res<Action> {
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

pub(super) fn ipcp_show(k: &mut Words<'_>) -> Res<Action> {
    // `irm ipcp show NAME`, as SYSTEM.md spells it; `name NAME` as the other commands do.
    if k.remaining() == 1 {
        if let Some(n) = k.next() {
            return Ok(Action::IpcpShow(n.to_string()));
        }
    }
    let mut name = None;
    while let Some(w) = k.next_kw(&["name"])? {
        match w {
            "name" => k.once(&mut name, w)?,
            _ => return k.unknown(w),
        }
    }
    Ok(Action::IpcpShow(k.need(name, "name NAME")?))
}

pub(super) fn ipcp_list(k: &mut Words<'_>) -> Res<Action> {
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

pub(super) fn bind(k: &mut Words<'_>, unbind: bool, tail: Option<Vec<String>>) -> Res<Action> {
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

pub(super) fn name_create(k: &mut Words<'_>) -> Res<Action> {
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

pub(super) fn name_destroy(k: &mut Words<'_>) -> Res<Action> {
    let name = first_name(k)?;
    no_args(k, Action::Send(IrmReq::NameDestroy { name }))
}

pub(super) fn name_reg(k: &mut Words<'_>, reg: bool) -> Res<Action> {
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
