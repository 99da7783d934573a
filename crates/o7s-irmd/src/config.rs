//! The IRMd config file (`irmd --config irmd.toml`): the prototype's `irmd.conf` tables, read
//! into the ordered list of [`IrmReq`]s that applying the file means.
//!
//! Parsing checks the whole file before anything is applied: every error names the file, the
//! line and the key at fault and says what is allowed. This module only reads text;
//! [`crate::apply`] decides what is applied at start and what (enrollments, connections)
//! waits for peers in the background.
//!
//! The requests come in this order: for each `[name.NAME]`, a `NameCreate` and a `Bind` per
//! program; then, for each IPCP table in file order, its `IpcpBootstrap` (`bootstrap = LAYER`),
//! `IpcpEnroll` (`enrol = DST`) or bare `IpcpCreate` (neither, as in the prototype), an
//! `IpcpConnect` of the `mgmt` and then the `dt` component per `conn` entry, and a `NameReg`
//! per `reg` entry.

use crate::irmd::check_name;
use o7s::ctrl::msg::{BindTarget, IpcpKind, IrmReq, LoadBalance, RegTarget};
use o7s_proto::wire::dns::DnsName;
use o7s_proto::HashAlgo;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::Path;
use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, no permission, not UTF-8).
    #[error("{file}: cannot read the config file: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{file}:{line}: not valid TOML: {msg}")]
    Syntax {
        file: String,
        line: usize,
        msg: String,
    },
    /// Valid TOML, but a table, key or value the IRMd does not accept.
    #[error("{file}:{line}: {key}: {msg}")]
    Invalid {
        file: String,
        line: usize,
        /// Dotted path of the key at fault, e.g. `unicast.lan1.routing`.
        key: String,
        msg: String,
    },
}

impl ConfigError {
    /// The 1-based line at fault, if the error is about the file's contents.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { line, .. } | ConfigError::Invalid { line, .. } => Some(*line),
        }
    }

    /// The dotted key at fault, if the file is valid TOML.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Read and parse the config file at `path`. Nothing is applied here.
pub fn load(path: &Path) -> Result<Vec<IrmReq>, ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file),
        Err(source) => Err(ConfigError::Read { file, source }),
    }
}

/// Parse a config file's text; `file` is the name used in messages. Nothing is applied here.
pub fn parse(text: &str, file: &str) -> Result<Vec<IrmReq>, ConfigError> {
    let cx = Cx { text, file };
    let doc = DeTable::parse(text).map_err(|e| cx.syntax(&e))?;
    // Every [TYPE.NAME] table, in file order even where types interleave.
    let mut entries = Vec::new();
    for (top, val) in ordered(doc.get_ref()) {
        let kind = match top.get_ref().as_ref() {
            "name" => None,
            t => match IpcpKind::parse(t) {
                Some(k) => Some(k),
                None => {
                    return Err(cx.err(
                        top.span(),
                        &seg(t),
                        format!("unknown table; allowed: {TOP_TABLES}"),
                    ))
                }
            },
        };
        let Some(tables) = val.get_ref().as_table() else {
            return Err(cx.err(
                top.span(),
                &seg(top.get_ref()),
                format!(
                    "must be a table of tables, like [{}.NAME], not {}",
                    top.get_ref(),
                    val.get_ref().type_str()
                ),
            ));
        };
        entries.extend(tables.iter().map(|(name, body)| (kind, name, body)));
    }
    entries.sort_by_key(|(_, name, _)| name.span().start);
    let mut names = Vec::new();
    let mut ipcps = Vec::new();
    // IPCP name -> (type, line), to refuse one name in two tables.
    let mut seen: HashMap<String, (IpcpKind, usize)> = HashMap::new();
    for (kind, name, body) in entries {
        let Some(kind) = kind else {
            names.push(cx.name_table(name, body)?);
            continue;
        };
        let line = cx.line(name.span().start);
        if let Some((other, at)) = seen.get(name.get_ref().as_ref()) {
            return Err(cx.err(
                name.span(),
                &format!("{kind}.{}", seg(name.get_ref())),
                format!(
                    "IPCP name already used by [{other}.{}] at line {at}; IPCP names must be unique",
                    seg(name.get_ref())
                ),
            ));
        }
        seen.insert(name.get_ref().to_string(), (kind, line));
        ipcps.push(cx.ipcp_table(kind, name, body)?);
    }
    Ok(names.into_iter().chain(ipcps).flatten().collect())
}

/// The top-level tables, for messages.
const TOP_TABLES: &str = "[name.NAME], [local.NAME], [eth-llc.NAME], [eth-dix.NAME], \
                          [udp4.NAME], [udp6.NAME], [broadcast.NAME], [unicast.NAME]";

/// The credential keys of a `[name.NAME]` table (not supported by this build).
const CREDENTIAL_KEYS: [&str; 6] = [
    "server_crt_file",
    "server_key_file",
    "server_enc_file",
    "client_crt_file",
    "client_key_file",
    "client_enc_file",
];

/// The keys every IPCP table accepts besides its bootstrap parameters.
const IPCP_KEYS: [&str; 5] = ["bootstrap", "enrol", "conn", "reg", "autobind"];

/// A table's entries in file order (the parsed map is sorted by key).
fn ordered<'t, 'i>(
    table: &'t DeTable<'i>,
) -> Vec<(&'t Spanned<DeString<'i>>, &'t Spanned<DeValue<'i>>)> {
    let mut v: Vec<_> = table.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

/// One segment of a dotted key, quoted as TOML would need it.
fn seg(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

/// How a bootstrap parameter's value is checked and spelled for the IPCP.
enum Check {
    Hash,
    Dev,
    Ethertype,
    /// An address; `host`: one of this host's, so not 0.0.0.0 or ::.
    Ip4 {
        host: bool,
    },
    Ip6 {
        host: bool,
    },
    /// A file name (read when the IPCP bootstraps).
    Path,
    /// A DNS server: an IPv4 or IPv6 address, a port optional (`[fd00::1]:5353`).
    DnsServer,
    /// A DNS zone name (`o7s.example`; `.` is the root).
    DnsZone,
    /// An integer in the inclusive range.
    Int(i64, i64),
    /// An integer from the set.
    IntIn(&'static [i64]),
    /// A string from the list of (accepted spelling, spelling passed on); the first column
    /// without aliases is what the message offers.
    Word(&'static [(&'static str, &'static str)]),
}

/// A bootstrap parameter: its config-file key, its `irm ipcp bootstrap` keyword, its check.
struct Param {
    key: &'static str,
    irm: &'static str,
    check: Check,
}

const fn p(key: &'static str, irm: &'static str, check: Check) -> Param {
    Param { key, irm, check }
}

const HASH: Param = p("hash", "hash", Check::Hash);
const PORT: Param = p("port", "port", Check::Int(1, 65535));

const LOCAL: &[Param] = &[HASH];
const ETH_LLC: &[Param] = &[p("dev", "dev", Check::Dev), HASH];
const ETH_DIX: &[Param] = &[
    p("dev", "dev", Check::Dev),
    p("ethertype", "ethertype", Check::Ethertype),
    HASH,
];
const UDP4: &[Param] = &[
    p("ip", "ip", Check::Ip4 { host: true }),
    PORT,
    p("dns", "dns", Check::DnsServer),
    p("dns_zone", "dns_zone", Check::DnsZone),
    p("hosts", "hosts", Check::Path),
];
const UDP6: &[Param] = &[
    p("ip", "ip", Check::Ip6 { host: true }),
    PORT,
    p("dns", "dns", Check::DnsServer),
    p("dns_zone", "dns_zone", Check::DnsZone),
    p("hosts", "hosts", Check::Path),
];
const BROADCAST: &[Param] = &[];
const SIZES: &[i64] = &[1, 2, 4, 8];
const T_MAX: i64 = u32::MAX as i64;
const UNICAST: &[Param] = &[
    p("addr_size", "addr", Check::IntIn(SIZES)),
    p("eid_size", "eid", Check::IntIn(SIZES)),
    p("max_ttl", "ttl", Check::Int(1, 255)),
    p("addr-auth", "addr_auth", Check::Word(&[("flat", "flat")])),
    p(
        "routing",
        "routing",
        Check::Word(&[
            ("link_state", "link_state"),
            ("lfa", "lfa"),
            ("ecmp", "ecmp"),
            ("link-state", "link_state"),
        ]),
    ),
    p("ls_t_recalc", "ls_t_recalc", Check::Int(1, T_MAX)),
    p("ls_t_update", "ls_t_update", Check::Int(1, T_MAX)),
    p("ls_t_timeo", "ls_t_timeo", Check::Int(1, T_MAX)),
    p(
        "congestion",
        "congestion",
        Check::Word(&[("none", "none"), ("mb-ecn", "mb-ecn")]),
    ),
    p(
        "directory",
        "directory",
        Check::Word(&[("DHT", "DHT"), ("dht", "DHT")]),
    ),
    p("dht_alpha", "dht_alpha", Check::Int(1, 10)),
    p("dht_k", "dht_k", Check::Int(1, 20)),
    p("dht_t_expire", "dht_t_expire", Check::Int(10, 86400)),
    p("dht_t_refresh", "dht_t_refresh", Check::Int(3, 3600)),
    p("dht_t_replicate", "dht_t_replicate", Check::Int(3, 3600)),
    HASH,
];

fn params_of(kind: IpcpKind) -> &'static [Param] {
    match kind {
        IpcpKind::Local => LOCAL,
        IpcpKind::EthLlc => ETH_LLC,
        IpcpKind::EthDix => ETH_DIX,
        IpcpKind::Udp4 => UDP4,
        IpcpKind::Udp6 => UDP6,
        IpcpKind::Broadcast => BROADCAST,
        IpcpKind::Unicast => UNICAST,
    }
}

/// The parameters a bootstrap of this type cannot do without.
fn required(kind: IpcpKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        IpcpKind::EthLlc | IpcpKind::EthDix => &[("dev", "IFACE")],
        IpcpKind::Udp4 => &[("ip", "\"ADDR\"")],
        IpcpKind::Udp6 => &[("ip", "\"ADDR\"")],
        _ => &[],
    }
}

/// Unicast and broadcast IPCPs enrol, connect and accept flows; the others sit on a medium.
fn is_shim(kind: IpcpKind) -> bool {
    !matches!(kind, IpcpKind::Unicast | IpcpKind::Broadcast)
}

/// The parsed text, for turning byte offsets into lines and building errors.
struct Cx<'a> {
    text: &'a str,
    file: &'a str,
}

impl Cx<'_> {
    fn line(&self, pos: usize) -> usize {
        self.text.bytes().take(pos).filter(|&b| b == b'\n').count() + 1
    }

    fn err(&self, span: Range<usize>, key: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            line: self.line(span.start),
            key: key.to_string(),
            msg: msg.into(),
        }
    }

    fn syntax(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let near = self
            .text
            .get(span.clone())
            .filter(|s| !s.is_empty() && s.len() <= 40 && !s.contains('\n'))
            .map(|s| format!(" (at `{s}`)"))
            .unwrap_or_default();
        ConfigError::Syntax {
            file: self.file.to_string(),
            line: self.line(span.start),
            msg: format!("{}{near}", e.message()),
        }
    }

    fn wrong_type(&self, key: &str, v: &Spanned<DeValue<'_>>, want: &str) -> ConfigError {
        self.err(
            v.span(),
            key,
            format!("expected {want}, found {}", v.get_ref().type_str()),
        )
    }

    fn string<'v>(&self, key: &str, v: &'v Spanned<DeValue<'_>>) -> Result<&'v str, ConfigError> {
        v.get_ref()
            .as_str()
            .ok_or_else(|| self.wrong_type(key, v, "a string"))
    }

    /// A string that must be a valid name (of a layer, IPCP or application).
    fn name(&self, key: &str, v: &Spanned<DeValue<'_>>) -> Result<String, ConfigError> {
        let s = self.string(key, v)?;
        self.valid_name(s, v.span(), key)?;
        Ok(s.to_string())
    }

    /// Names follow the IRMd's rule (the one `irm` requests are checked against).
    fn valid_name(&self, s: &str, span: Range<usize>, key: &str) -> Result<(), ConfigError> {
        check_name(s).map_err(|_| {
            self.err(
                span,
                key,
                format!("invalid name \"{s}\": names are 1-256 characters without spaces"),
            )
        })
    }

    /// An array of strings, none twice, each checked by `each`.
    fn list(
        &self,
        key: &str,
        v: &Spanned<DeValue<'_>>,
        each: impl Fn(&Spanned<DeValue<'_>>) -> Result<String, ConfigError>,
    ) -> Result<Vec<String>, ConfigError> {
        let want = "an array of strings, like [\"a\", \"b\"]";
        let items = v
            .get_ref()
            .as_array()
            .ok_or_else(|| self.wrong_type(key, v, want))?;
        let mut out: Vec<String> = Vec::new();
        for item in items.iter() {
            if !item.get_ref().is_str() {
                return Err(self.wrong_type(key, item, want));
            }
            let s = each(item)?;
            if out.contains(&s) {
                return Err(self.err(item.span(), key, format!("\"{s}\" is listed twice")));
            }
            out.push(s);
        }
        Ok(out)
    }

    fn int(&self, key: &str, v: &Spanned<DeValue<'_>>) -> Result<i64, ConfigError> {
        let i = v
            .get_ref()
            .as_integer()
            .ok_or_else(|| self.wrong_type(key, v, "an integer"))?;
        i64::from_str_radix(i.as_str(), i.radix())
            .map_err(|_| self.err(v.span(), key, "integer too large"))
    }

    /// Check a bootstrap parameter's value; return it as the IPCP reads it.
    fn param(
        &self,
        key: &str,
        check: &Check,
        v: &Spanned<DeValue<'_>>,
    ) -> Result<String, ConfigError> {
        let bad = |why: String| self.err(v.span(), key, why);
        match check {
            Check::Path => {
                let s = self.string(key, v)?;
                if s.is_empty() {
                    return Err(bad("an empty file name".into()));
                }
                Ok(s.to_string())
            }
            Check::DnsServer => {
                let s = self.string(key, v)?;
                let bracketed = s
                    .strip_prefix('[')
                    .and_then(|r| r.strip_suffix(']'))
                    .and_then(|r| r.parse::<Ipv6Addr>().ok());
                let ok = s.parse::<IpAddr>().is_ok()
                    || bracketed.is_some()
                    || s.parse::<SocketAddr>().is_ok_and(|a| a.port() != 0);
                if ok {
                    Ok(s.to_string())
                } else {
                    Err(bad(format!(
                        "\"{s}\" is not a DNS server address (like \"10.0.0.53\", \
                         \"10.0.0.53:5353\", \"fd00::53\" or \"[fd00::53]:5353\")"
                    )))
                }
            }
            Check::DnsZone => {
                let s = self.string(key, v)?;
                match DnsName::new(s) {
                    Ok(z) => Ok(z.to_string()),
                    Err(e) => Err(bad(format!(
                        "\"{s}\" is not a DNS zone name like \"o7s.example\" ({e})"
                    ))),
                }
            }
            Check::Hash => {
                let s = self.string(key, v)?;
                match s.parse::<HashAlgo>() {
                    Ok(HashAlgo::Md5) | Err(_) => Err(bad(format!(
                        "unknown hash algorithm {s:?} (expected SHA3_224, SHA3_256, SHA3_384 or SHA3_512)"
                    ))),
                    Ok(h) => Ok(h.name().to_string()),
                }
            }
            Check::Dev => {
                let s = self.string(key, v)?;
                let ok = !s.is_empty()
                    && s.len() < 16
                    && !s
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || c == '/');
                if ok {
                    Ok(s.to_string())
                } else {
                    Err(bad(format!(
                        "\"{s}\" is not an interface name (1-15 characters, no spaces or '/')"
                    )))
                }
            }
            Check::Ethertype => {
                let n = match v.get_ref().as_str() {
                    Some(s) => parse_number(s),
                    None if v.get_ref().is_integer() => Some(self.int(key, v)?),
                    None => return Err(self.wrong_type(key, v, "a number like 0xA000")),
                };
                match n {
                    Some(n) if (0x0600..0xFFFF).contains(&n) => Ok(format!("0x{n:04X}")),
                    _ => Err(bad(
                        "ethertype must be 0x0600 to 0xFFFE (recommended: 0xA000 to 0xEFFF)".into(),
                    )),
                }
            }
            Check::Ip4 { host } => {
                let s = self.string(key, v)?;
                match s.parse::<Ipv4Addr>() {
                    Ok(a) if *host && a.is_unspecified() => {
                        Err(bad(format!("{a} cannot be used; give this host's address")))
                    }
                    Ok(a) => Ok(a.to_string()),
                    Err(_) => Err(bad(format!(
                        "\"{s}\" is not an IPv4 address (like \"10.0.0.1\")"
                    ))),
                }
            }
            Check::Ip6 { host } => {
                let s = self.string(key, v)?;
                match s.parse::<Ipv6Addr>() {
                    Ok(a) if *host && a.is_unspecified() => {
                        Err(bad(format!("{a} cannot be used; give this host's address")))
                    }
                    Ok(a) => Ok(a.to_string()),
                    Err(_) => Err(bad(format!(
                        "\"{s}\" is not an IPv6 address (like \"fd00::1\")"
                    ))),
                }
            }
            Check::Int(lo, hi) => {
                let n = self.int(key, v)?;
                if (*lo..=*hi).contains(&n) {
                    Ok(n.to_string())
                } else {
                    Err(bad(format!("{n} is out of range; allowed: {lo} to {hi}")))
                }
            }
            Check::IntIn(set) => {
                let n = self.int(key, v)?;
                if set.contains(&n) {
                    Ok(n.to_string())
                } else {
                    let allowed: Vec<String> = set.iter().map(|x| x.to_string()).collect();
                    Err(bad(format!(
                        "{n} is not allowed; allowed: {}",
                        allowed.join(", ")
                    )))
                }
            }
            Check::Word(words) => {
                let s = self.string(key, v)?;
                match words.iter().find(|(w, _)| *w == s) {
                    Some((_, out)) => Ok(out.to_string()),
                    None => {
                        let mut allowed: Vec<&str> = Vec::new();
                        for (_, out) in words.iter() {
                            if !allowed.contains(out) {
                                allowed.push(out);
                            }
                        }
                        Err(bad(format!(
                            "\"{s}\" is not allowed; allowed: {}",
                            allowed.join(", ")
                        )))
                    }
                }
            }
        }
    }

    /// `[name.NAME]`: create the name, bind its programs.
    fn name_table(
        &self,
        name: &Spanned<DeString<'_>>,
        body: &Spanned<DeValue<'_>>,
    ) -> Result<Vec<IrmReq>, ConfigError> {
        let path = format!("name.{}", seg(name.get_ref()));
        self.valid_name(name.get_ref(), name.span(), &path)?;
        let Some(table) = body.get_ref().as_table() else {
            return Err(self.wrong_type(&path, body, "a table"));
        };
        let mut lb = LoadBalance::default();
        let mut progs: Option<(Vec<String>, Range<usize>)> = None;
        let mut args: Option<(Vec<String>, Range<usize>)> = None;
        for (k, v) in ordered(table) {
            let key = format!("{path}.{}", seg(k.get_ref()));
            match k.get_ref().as_ref() {
                "prog" => {
                    let list = self.list(&key, v, |item| {
                        let s = self.string(&key, item)?;
                        if s.is_empty() {
                            return Err(self.err(item.span(), &key, "empty program name"));
                        }
                        Ok(s.to_string())
                    })?;
                    progs = Some((list, k.span()));
                }
                "args" => {
                    // Repeats are fine here: two programs may take the same arguments.
                    let want = "an array of strings, one per program, like [\"--listen\"]";
                    let items = v
                        .get_ref()
                        .as_array()
                        .ok_or_else(|| self.wrong_type(&key, v, want))?;
                    let mut list = Vec::new();
                    for item in items.iter() {
                        list.push(self.string(&key, item)?.to_string());
                    }
                    args = Some((list, k.span()));
                }
                "lb" => {
                    let s = self.string(&key, v)?;
                    lb = match s {
                        "spill" => LoadBalance::Spill,
                        "round-robin" => LoadBalance::RoundRobin,
                        _ => {
                            return Err(self.err(
                                v.span(),
                                &key,
                                format!("\"{s}\" is not allowed; allowed: spill, round-robin"),
                            ))
                        }
                    };
                }
                c if CREDENTIAL_KEYS.contains(&c) => {
                    return Err(self.err(
                        k.span(),
                        &key,
                        "credentials are not supported yet by this o7s build; remove this key",
                    ));
                }
                other => {
                    return Err(self.err(
                        k.span(),
                        &key,
                        format!(
                            "unknown key `{other}` in [{path}]; allowed: prog, args, lb, {}",
                            CREDENTIAL_KEYS.join(", ")
                        ),
                    ))
                }
            }
        }
        let (progs, _) = progs.unwrap_or_default();
        let args = match args {
            None => Vec::new(),
            Some((_, span)) if progs.is_empty() => {
                return Err(self.err(
                    span,
                    &format!("{path}.args"),
                    "args without prog; args[i] are the arguments to auto-start prog[i] with",
                ))
            }
            Some((a, span)) if a.len() > progs.len() => {
                return Err(self.err(
                    span,
                    &format!("{path}.args"),
                    format!(
                        "{} entries but prog has only {}; args[i] goes with prog[i]",
                        a.len(),
                        progs.len()
                    ),
                ))
            }
            Some((a, _)) => a,
        };
        let name = name.get_ref().to_string();
        let mut out = vec![IrmReq::NameCreate {
            name: name.clone(),
            lb,
        }];
        for (i, prog) in progs.into_iter().enumerate() {
            // As in the prototype: a program with an args entry is auto-started with those
            // arguments; one without is only bound (it accepts flows when started by hand).
            let (auto, args) = match args.get(i) {
                Some(a) => (true, a.split_whitespace().map(str::to_string).collect()),
                None => (false, Vec::new()),
            };
            out.push(IrmReq::Bind {
                target: BindTarget::Program { prog, auto, args },
                name: name.clone(),
            });
        }
        Ok(out)
    }

    /// `[TYPE.NAME]`: create, bootstrap or enrol the IPCP, connect it, register names in it.
    fn ipcp_table(
        &self,
        kind: IpcpKind,
        name: &Spanned<DeString<'_>>,
        body: &Spanned<DeValue<'_>>,
    ) -> Result<Vec<IrmReq>, ConfigError> {
        let path = format!("{kind}.{}", seg(name.get_ref()));
        self.valid_name(name.get_ref(), name.span(), &path)?;
        let Some(table) = body.get_ref().as_table() else {
            return Err(self.wrong_type(&path, body, "a table"));
        };
        let allowed = params_of(kind);
        let mut bootstrap: Option<(String, Range<usize>)> = None;
        let mut enrol: Option<(String, Range<usize>)> = None;
        let mut conn: Option<(Vec<String>, Range<usize>)> = None;
        let mut reg: Option<(Vec<String>, Range<usize>)> = None;
        let mut autobind: Option<(bool, Range<usize>)> = None;
        // (config key, irm keyword, value, where)
        let mut params: Vec<(&str, &str, String, Range<usize>)> = Vec::new();
        for (k, v) in ordered(table) {
            let key = format!("{path}.{}", seg(k.get_ref()));
            match k.get_ref().as_ref() {
                "bootstrap" => bootstrap = Some((self.name(&key, v)?, k.span())),
                "enrol" => enrol = Some((self.name(&key, v)?, k.span())),
                "conn" => conn = Some((self.list(&key, v, |i| self.name(&key, i))?, k.span())),
                "reg" => reg = Some((self.list(&key, v, |i| self.name(&key, i))?, k.span())),
                "autobind" => {
                    let b = v
                        .get_ref()
                        .as_bool()
                        .ok_or_else(|| self.wrong_type(&key, v, "true or false"))?;
                    autobind = Some((b, k.span()));
                }
                other => match allowed.iter().find(|p| p.key == other) {
                    Some(p) => {
                        let val = self.param(&key, &p.check, v)?;
                        params.push((p.key, p.irm, val, k.span()));
                    }
                    None => {
                        let mut keys: Vec<&str> = IPCP_KEYS.to_vec();
                        keys.extend(allowed.iter().map(|p| p.key));
                        return Err(self.err(
                            k.span(),
                            &key,
                            format!(
                                "key `{other}` is not valid in [{path}]; allowed: {}",
                                keys.join(", ")
                            ),
                        ));
                    }
                },
            }
        }
        let at = |field: &str| format!("{path}.{field}");
        let shim_only = |field: &str, span: &Range<usize>, what: &str, fix: &str| {
            self.err(
                span.clone(),
                &at(field),
                format!("[{path}] cannot {what}: only unicast and broadcast IPCPs can{fix}"),
            )
        };
        if let (Some((_, b)), Some((_, e))) = (&bootstrap, &enrol) {
            let (field, span) = if b.start > e.start {
                ("bootstrap", b)
            } else {
                ("enrol", e)
            };
            return Err(self.err(
                span.clone(),
                &at(field),
                "both bootstrap and enrol are set; keep one (bootstrap starts a new layer, \
                 enrol joins one through a member)",
            ));
        }
        if is_shim(kind) {
            if let Some((_, span)) = &enrol {
                return Err(shim_only("enrol", span, "enrol", "; bootstrap it instead"));
            }
            if let Some((_, span)) = &conn {
                return Err(shim_only("conn", span, "connect to neighbours", ""));
            }
            if let Some((true, span)) = &autobind {
                return Err(shim_only(
                    "autobind",
                    span,
                    "accept flows to its layer name",
                    "",
                ));
            }
        }
        let autobind = autobind.is_some_and(|(b, _)| b);
        let ipcp = name.get_ref().to_string();
        let mut out = Vec::new();
        match (bootstrap, enrol) {
            (Some((layer, _)), _) => {
                for (req, hint) in required(kind) {
                    if !params.iter().any(|(k, _, _, _)| k == req) {
                        return Err(self.err(
                            name.span(),
                            &at(req),
                            format!("missing; [{path}] needs {req} = {hint} to bootstrap"),
                        ));
                    }
                }
                out.push(IrmReq::IpcpBootstrap {
                    kind,
                    name: ipcp.clone(),
                    layer,
                    params: params
                        .into_iter()
                        .map(|(_, k, v, _)| (k.to_string(), v))
                        .collect(),
                    autobind,
                });
            }
            (None, Some((dst, _))) => {
                if let Some((k, _, _, span)) = params.first() {
                    return Err(self.err(
                        span.clone(),
                        &at(k),
                        "bootstrap parameters do not go with enrol: an enrolling IPCP takes \
                         the layer's settings from its peer",
                    ));
                }
                out.push(IrmReq::IpcpEnroll {
                    name: ipcp.clone(),
                    kind: Some(kind),
                    dst: Some(dst),
                    layer: None,
                    autobind,
                });
            }
            (None, None) => {
                // As in the prototype, a table without bootstrap or enrol only creates the
                // IPCP; anything that needs a layer is refused rather than silently ignored.
                let first = params
                    .first()
                    .map(|(k, _, _, s)| (*k, s.clone()))
                    .into_iter()
                    .chain(conn.as_ref().map(|(_, s)| ("conn", s.clone())))
                    .chain(reg.as_ref().map(|(_, s)| ("reg", s.clone())))
                    .min_by_key(|(_, s)| s.start);
                if let Some((k, span)) = first {
                    return Err(self.err(
                        span,
                        &at(k),
                        "needs bootstrap = \"LAYER\" or enrol = \"DST\" in the same table",
                    ));
                }
                if autobind {
                    return Err(self.err(
                        name.span(),
                        &at("autobind"),
                        "needs bootstrap = \"LAYER\" or enrol = \"DST\"",
                    ));
                }
                out.push(IrmReq::IpcpCreate { kind, name: ipcp });
                return Ok(out);
            }
        }
        // Management first, then data transfer, as the prototype does; a broadcast IPCP has
        // only data transfer (the prototype asks it for management too, which fails).
        let comps: &[&str] = if kind == IpcpKind::Broadcast {
            &["dt"]
        } else {
            &["mgmt", "dt"]
        };
        for dst in conn.map(|(c, _)| c).unwrap_or_default() {
            for component in comps {
                out.push(IrmReq::IpcpConnect {
                    name: ipcp.clone(),
                    component: component.to_string(),
                    dst: dst.clone(),
                    qos: None,
                });
            }
        }
        for n in reg.map(|(r, _)| r).unwrap_or_default() {
            out.push(IrmReq::NameReg {
                name: n,
                targets: vec![RegTarget::Ipcp(ipcp.clone())],
            });
        }
        Ok(out)
    }
}

/// A number as a string: decimal, or hexadecimal with `0x`.
fn parse_number(s: &str) -> Option<i64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FULL: &str = include_str!("../tests/config/full.toml");

    fn s(x: &str) -> String {
        x.to_string()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (s(k), s(v))).collect()
    }

    fn reg(name: &str, ipcp: &str) -> IrmReq {
        IrmReq::NameReg {
            name: s(name),
            targets: vec![RegTarget::Ipcp(s(ipcp))],
        }
    }

    fn conn(ipcp: &str, component: &str, dst: &str) -> IrmReq {
        IrmReq::IpcpConnect {
            name: s(ipcp),
            component: s(component),
            dst: s(dst),
            qos: None,
        }
    }

    fn bind(name: &str, prog: &str, auto: bool, args: &[&str]) -> IrmReq {
        IrmReq::Bind {
            target: BindTarget::Program {
                prog: s(prog),
                auto,
                args: args.iter().map(|a| s(a)).collect(),
            },
            name: s(name),
        }
    }

    #[test]
    fn full_example() {
        let got = parse(FULL, "full.toml").expect("the example parses");
        let want = vec![
            IrmReq::NameCreate {
                name: s("oping"),
                lb: LoadBalance::RoundRobin,
            },
            bind("oping", "/usr/bin/oping", true, &["--listen"]),
            IrmReq::NameCreate {
                name: s("oping.secure"),
                lb: LoadBalance::Spill,
            },
            bind(
                "oping.secure",
                "/usr/bin/oping",
                true,
                &["--listen", "--quiet"],
            ),
            bind("oping.secure", "/usr/bin/oecho", false, &[]),
            IrmReq::IpcpBootstrap {
                kind: IpcpKind::Local,
                name: s("lo"),
                layer: s("local"),
                params: kv(&[("hash", "SHA3_224")]),
                autobind: false,
            },
            reg("oping", "lo"),
            IrmReq::IpcpBootstrap {
                kind: IpcpKind::EthDix,
                name: s("eth0"),
                layer: s("eth"),
                params: kv(&[("dev", "veth0"), ("ethertype", "0xA007")]),
                autobind: false,
            },
            reg("lan", "eth0"),
            IrmReq::IpcpBootstrap {
                kind: IpcpKind::Udp4,
                name: s("udp"),
                layer: s("udp"),
                params: kv(&[("ip", "10.0.0.1"), ("port", "9000"), ("dns", "10.0.0.254")]),
                autobind: false,
            },
            IrmReq::IpcpBootstrap {
                kind: IpcpKind::Unicast,
                name: s("lan1"),
                layer: s("lan"),
                params: kv(&[
                    ("addr", "4"),
                    ("eid", "8"),
                    ("ttl", "30"),
                    ("addr_auth", "flat"),
                    ("routing", "lfa"),
                    ("ls_t_recalc", "2"),
                    ("ls_t_update", "10"),
                    ("ls_t_timeo", "30"),
                    ("congestion", "none"),
                    ("directory", "DHT"),
                    ("dht_k", "4"),
                    ("hash", "SHA3_512"),
                ]),
                autobind: true,
            },
            reg("oping", "lan1"),
            reg("oping.secure", "lan1"),
            IrmReq::IpcpEnroll {
                name: s("lan2"),
                kind: Some(IpcpKind::Unicast),
                dst: Some(s("lan")),
                layer: None,
                autobind: true,
            },
            conn("lan2", "mgmt", "lan1"),
            conn("lan2", "dt", "lan1"),
            IrmReq::IpcpCreate {
                kind: IpcpKind::Broadcast,
                name: s("bc"),
            },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_broadcast_ipcp_connects_data_transfer_only() {
        let text = "[broadcast.b2]\nenrol = \"b1\"\nconn = [\"b1\"]\nautobind = true\n";
        let got = parse(text, "t").expect("parses");
        let want = vec![
            IrmReq::IpcpEnroll {
                name: s("b2"),
                kind: Some(IpcpKind::Broadcast),
                dst: Some(s("b1")),
                layer: None,
                autobind: true,
            },
            conn("b2", "dt", "b1"),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn dns_server_and_zone() {
        let text = "[udp6.u]\nbootstrap = \"net\"\nip = \"fd00::1\"\n\
                    dns = \"[fd00::53]:5353\"\ndns_zone = \"o7s.test\"\n\
                    [udp4.v]\nbootstrap = \"net4\"\nip = \"10.0.0.1\"\ndns = \"fd00::53\"\n";
        let got = parse(text, "t").expect("parses");
        let params: Vec<_> = got
            .iter()
            .filter_map(|r| match r {
                IrmReq::IpcpBootstrap { params, .. } => Some(params.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            params,
            [
                kv(&[
                    ("ip", "fd00::1"),
                    ("dns", "[fd00::53]:5353"),
                    ("dns_zone", "o7s.test.")
                ]),
                kv(&[("ip", "10.0.0.1"), ("dns", "fd00::53")]),
            ]
        );
    }

    #[test]
    fn names_come_first_and_ipcps_keep_file_order() {
        let text = "[unicast.b]\nbootstrap = \"l\"\n[local.a]\nbootstrap = \"m\"\n\
                    [name.n]\n[udp6.c]\nbootstrap = \"u\"\nip = \"fd00::1\"\n\
                    [unicast.d]\nbootstrap = \"k\"\n[name.m]\n";
        let got = parse(text, "t").expect("parses");
        let order: Vec<&str> = got
            .iter()
            .map(|r| match r {
                IrmReq::NameCreate { name, .. } | IrmReq::IpcpBootstrap { name, .. } => {
                    name.as_str()
                }
                _ => "?",
            })
            .collect();
        assert_eq!(order, ["n", "m", "b", "a", "c", "d"]);
    }

    #[test]
    fn empty_file_does_nothing() {
        assert_eq!(parse("# nothing\n", "t").expect("parses"), vec![]);
    }

    #[test]
    fn spellings_are_normalised() {
        let text =
            "[unicast.u]\nbootstrap = \"l\"\nrouting = \"link-state\"\nhash = \"sha3-384\"\n\
                    [eth-dix.e]\nbootstrap = \"e\"\ndev = \"eth0\"\nethertype = \"0xa001\"\n\
                    [eth-llc.f]\nbootstrap = \"f\"\ndev = \"eth1\"\n";
        let got = parse(text, "t").expect("parses");
        let params: Vec<&Vec<(String, String)>> = got
            .iter()
            .filter_map(|r| match r {
                IrmReq::IpcpBootstrap { params, .. } => Some(params),
                _ => None,
            })
            .collect();
        assert_eq!(
            params,
            [
                &kv(&[("routing", "link_state"), ("hash", "SHA3_384")]),
                &kv(&[("dev", "eth0"), ("ethertype", "0xA001")]),
                &kv(&[("dev", "eth1")]),
            ]
        );
    }

    /// Parse `text`, expect an error; return (line, key, message).
    fn fail(text: &str) -> (usize, String, String) {
        let e = parse(text, "irmd.toml").expect_err("must be refused");
        let msg = e.to_string();
        assert!(msg.starts_with("irmd.toml:"), "{msg}");
        (
            e.line().unwrap_or(0),
            e.key().unwrap_or("").to_string(),
            msg,
        )
    }

    #[track_caller]
    fn check(text: &str, line: usize, key: &str, needle: &str) {
        let (l, k, msg) = fail(text);
        assert_eq!((l, k.as_str()), (line, key), "{msg}");
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        assert!(msg.contains(&format!("irmd.toml:{line}: ")), "{msg}");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = parse("[name.a]\nprog = [\"x\"\n", "f.toml").expect_err("bad");
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
        assert!(e.to_string().starts_with("f.toml:"), "{e}");
        let e = parse("[name.a]\nlb = \"spill\"\nlb = \"spill\"\n", "f.toml").expect_err("dup");
        assert_eq!(e.line(), Some(3), "{e}");
        assert!(e.to_string().contains("duplicate key"), "{e}");
    }

    #[test]
    fn top_level_errors() {
        check(
            "\n[foo.bar]\nx = 1\n",
            2,
            "foo",
            "unknown table; allowed: [name.NAME]",
        );
        check("x = 1\n", 1, "x", "unknown table");
        check("\nname = 1\n", 2, "name", "must be a table of tables");
        check(
            "[local]\nlo = 3\n",
            2,
            "local.lo",
            "expected a table, found integer",
        );
        check(
            "[local.a]\nbootstrap = \"x\"\n[unicast.a]\nbootstrap = \"y\"\n",
            3,
            "unicast.a",
            "already used by [local.a] at line 1",
        );
        check(
            "[local.\"my ipcp\"]\n",
            1,
            "local.\"my ipcp\"",
            "without spaces",
        );
    }

    #[test]
    fn name_table_errors() {
        check(
            "[name.a]\nfoo = 1\n",
            2,
            "name.a.foo",
            "allowed: prog, args, lb",
        );
        check(
            "[name.a]\nprog = \"/bin/x\"\n",
            2,
            "name.a.prog",
            "expected an array",
        );
        check(
            "[name.a]\nprog = [\"x\", 2]\n",
            2,
            "name.a.prog",
            "found integer",
        );
        check(
            "[name.a]\nprog = [\"x\",\n\"x\"]\n",
            3,
            "name.a.prog",
            "listed twice",
        );
        check(
            "[name.a]\nprog = [\"\"]\n",
            2,
            "name.a.prog",
            "empty program",
        );
        check(
            "[name.a]\nlb = \"fair\"\n",
            2,
            "name.a.lb",
            "allowed: spill, round-robin",
        );
        check(
            "[name.a]\nargs = [\"-l\"]\n",
            2,
            "name.a.args",
            "args without prog",
        );
        check(
            "[name.a]\nprog = [\"x\"]\n\nargs = [\"-l\", \"-l\"]\n",
            4,
            "name.a.args",
            "2 entries but prog has only 1",
        );
        check("[name.\"a b\"]\n", 1, "name.\"a b\"", "without spaces");
        for key in CREDENTIAL_KEYS {
            check(
                &format!("[name.a]\nlb = \"spill\"\n{key} = \"/etc/x.pem\"\n"),
                3,
                &format!("name.a.{key}"),
                "credentials are not supported yet by this o7s build",
            );
        }
    }

    #[test]
    fn bootstrap_parameter_errors() {
        check(
            "[local.lo]\nbootstrap = \"l\"\ndev = \"eth0\"\n",
            3,
            "local.lo.dev",
            "key `dev` is not valid in [local.lo]; allowed: bootstrap, enrol, conn, reg, \
             autobind, hash",
        );
        check(
            "[local.lo]\nbootstrap = \"l\"\nhash = \"MD5\"\n",
            3,
            "local.lo.hash",
            "SHA3_224",
        );
        check(
            "[local.lo]\nbootstrap = \"l\"\nhash = 5\n",
            3,
            "local.lo.hash",
            "expected a string",
        );
        let udp = "[udp4.u]\nbootstrap = \"l\"\nip = \"10.0.0.1\"\n";
        check(
            &format!("{udp}port = 0\n"),
            4,
            "udp4.u.port",
            "allowed: 1 to 65535",
        );
        check(
            &format!("{udp}port = 65536\n"),
            4,
            "udp4.u.port",
            "out of range",
        );
        check(
            &format!("{udp}port = \"9000\"\n"),
            4,
            "udp4.u.port",
            "expected an integer",
        );
        check(
            &format!("{udp}dns = \"ns.example\"\n"),
            4,
            "udp4.u.dns",
            "not a DNS server address",
        );
        check(
            &format!("{udp}dns = \"10.0.0.53:0\"\n"),
            4,
            "udp4.u.dns",
            "not a DNS server address",
        );
        check(
            &format!("{udp}dns = \"10.0.0.53\"\ndns_zone = \"a..b\"\n"),
            5,
            "udp4.u.dns_zone",
            "not a DNS zone name",
        );
        check(
            "[udp4.u]\nbootstrap = \"l\"\nip = \"0.0.0.0\"\n",
            3,
            "udp4.u.ip",
            "cannot be used",
        );
        check(
            "[udp6.u]\nbootstrap = \"l\"\nip = \"10.0.0.1\"\n",
            3,
            "udp6.u.ip",
            "not an IPv6",
        );
        check(
            "\n[udp6.u]\nbootstrap = \"l\"\n",
            2,
            "udp6.u.ip",
            "needs ip = \"ADDR\" to bootstrap",
        );
        check(
            "[eth-llc.e]\nbootstrap = \"l\"\n",
            1,
            "eth-llc.e.dev",
            "needs dev = IFACE",
        );
        let dix = "[eth-dix.e]\nbootstrap = \"l\"\ndev = \"eth0\"\n";
        check(
            &format!("{dix}ethertype = 0x0500\n"),
            4,
            "eth-dix.e.ethertype",
            "0x0600",
        );
        check(
            &format!("{dix}ethertype = 0xFFFF\n"),
            4,
            "eth-dix.e.ethertype",
            "0xFFFE",
        );
        check(
            &format!("{dix}ethertype = \"A000\"\n"),
            4,
            "eth-dix.e.ethertype",
            "0x0600",
        );
        check(
            &format!("{dix}ethertype = 1.5\n"),
            4,
            "eth-dix.e.ethertype",
            "found float",
        );
        check(
            "[eth-llc.e]\nbootstrap = \"l\"\ndev = \"a b\"\n",
            3,
            "eth-llc.e.dev",
            "interface",
        );
        let uni = "[unicast.u]\nbootstrap = \"l\"\n";
        check(
            &format!("{uni}routing = \"ospf\"\n"),
            3,
            "unicast.u.routing",
            "link_state, lfa",
        );
        check(
            &format!("{uni}congestion = \"lfa\"\n"),
            3,
            "unicast.u.congestion",
            "mb-ecn",
        );
        check(
            &format!("{uni}addr-auth = \"x\"\n"),
            3,
            "unicast.u.addr-auth",
            "allowed: flat",
        );
        check(
            &format!("{uni}addr_size = 3\n"),
            3,
            "unicast.u.addr_size",
            "allowed: 1, 2, 4, 8",
        );
        check(
            &format!("{uni}max_ttl = 256\n"),
            3,
            "unicast.u.max_ttl",
            "1 to 255",
        );
        check(
            &format!("{uni}max_ttl = \"60\"\n"),
            3,
            "unicast.u.max_ttl",
            "found string",
        );
        check(
            &format!("{uni}ls_t_recalc = 0\n"),
            3,
            "unicast.u.ls_t_recalc",
            "out of range",
        );
        check(
            &format!("{uni}dht_alpha = 11\n"),
            3,
            "unicast.u.dht_alpha",
            "1 to 10",
        );
        check(
            &format!("{uni}directory = \"ring\"\n"),
            3,
            "unicast.u.directory",
            "DHT",
        );
        check(
            &format!("{uni}dht_t_expiry = 9\n"),
            3,
            "unicast.u.dht_t_expiry",
            "dht_t_expire",
        );
        check(
            "[broadcast.b]\nbootstrap = \"l\"\nhash = \"SHA3_256\"\n",
            3,
            "broadcast.b.hash",
            "",
        );
    }

    #[test]
    fn ipcp_table_errors() {
        check(
            "[unicast.u]\nbootstrap = \"l\"\nenrol = \"m\"\n",
            3,
            "unicast.u.enrol",
            "both bootstrap and enrol",
        );
        check(
            "[unicast.u]\nbootstrap = \"\"\n",
            2,
            "unicast.u.bootstrap",
            "without spaces",
        );
        check(
            "[unicast.u]\nenrol = 3\n",
            2,
            "unicast.u.enrol",
            "expected a string",
        );
        check(
            "[unicast.u]\nenrol = \"l\"\nhash = \"SHA3_256\"\n",
            3,
            "unicast.u.hash",
            "enrol",
        );
        check(
            "[local.l]\nenrol = \"x\"\n",
            2,
            "local.l.enrol",
            "bootstrap it instead",
        );
        check(
            "[udp4.u]\nconn = [\"x\"]\n",
            2,
            "udp4.u.conn",
            "cannot connect",
        );
        check(
            "[eth-dix.e]\nautobind = true\n",
            2,
            "eth-dix.e.autobind",
            "only unicast",
        );
        check(
            "[unicast.u]\nenrol = \"l\"\nautobind = \"yes\"\n",
            3,
            "unicast.u.autobind",
            "true",
        );
        check(
            "[unicast.u]\nenrol = \"l\"\nconn = [\"a\", \"a\"]\n",
            3,
            "unicast.u.conn",
            "twice",
        );
        check(
            "[unicast.u]\nenrol = \"l\"\nreg = [1]\n",
            3,
            "unicast.u.reg",
            "array of strings",
        );
        check(
            "[unicast.u]\nenrol = \"l\"\nreg = [\"a b\"]\n",
            3,
            "unicast.u.reg",
            "spaces",
        );
        check(
            "[unicast.u]\n\nreg = [\"a\"]\n",
            3,
            "unicast.u.reg",
            "needs bootstrap",
        );
        check(
            "[unicast.u]\nrouting = \"lfa\"\n",
            2,
            "unicast.u.routing",
            "needs bootstrap",
        );
        check(
            "[unicast.u]\nautobind = true\n",
            1,
            "unicast.u.autobind",
            "needs bootstrap",
        );
    }

    #[test]
    fn bare_table_only_creates() {
        let got = parse("[local.l]\n[unicast.u]\nautobind = false\n", "t").expect("parses");
        assert_eq!(
            got,
            vec![
                IrmReq::IpcpCreate {
                    kind: IpcpKind::Local,
                    name: s("l"),
                },
                IrmReq::IpcpCreate {
                    kind: IpcpKind::Unicast,
                    name: s("u"),
                },
            ]
        );
    }

    #[test]
    fn load_reads_files() {
        let dir = std::env::temp_dir().join(format!("o7s-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("irmd.toml");
        std::fs::write(&path, FULL).expect("write");
        assert_eq!(
            load(&path).expect("loads"),
            parse(FULL, "x").expect("parses")
        );
        std::fs::write(&path, "[name.a]\nlb = 1\n").expect("write");
        let e = load(&path).expect_err("bad");
        assert!(
            e.to_string()
                .starts_with(&format!("{}:2: name.a.lb: ", path.display())),
            "{e}"
        );
        let missing = dir.join("missing.toml");
        let e = load(&missing).expect_err("missing");
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        assert!(e.to_string().contains("missing.toml"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Lines a fuzzed config is made of: valid and invalid pieces of every table.
    fn piece() -> impl Strategy<Value = String> {
        let fixed = prop::sample::select(vec![
            "[name.a]",
            "[name.\"b c\"]",
            "[local.l]",
            "[eth-llc.e]",
            "[eth-dix.d]",
            "[udp4.u]",
            "[udp6.v]",
            "[broadcast.b]",
            "[unicast.n]",
            "[unicast.l]",
            "[bogus.x]",
            "bootstrap = \"L\"",
            "enrol = \"L\"",
            "conn = [\"n\", \"l\"]",
            "reg = [\"a\"]",
            "autobind = true",
            "prog = [\"/bin/true\", \"x\"]",
            "args = [\"-l\"]",
            "lb = \"round-robin\"",
            "hash = \"SHA3_512\"",
            "dev = \"eth0\"",
            "ethertype = 0xA000",
            "ip = \"127.0.0.1\"",
            "ip = \"::1\"",
            "port = 70000",
            "dns = \"1.1.1.1\"",
            "dns = \"[::1]:5353\"",
            "dns_zone = \"o7s.test\"",
            "addr_size = 4",
            "max_ttl = -1",
            "routing = \"ecmp\"",
            "server_key_file = \"k\"",
            "x = { y = [1, [2]] }",
        ]);
        prop_oneof![
            4 => fixed.prop_map(str::to_string),
            1 => "[a-z_.\\[\\]=\" 0-9-]{0,20}",
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            let _ = parse(&text, "fuzz");
        }

        #[test]
        fn config_like_text_never_panics(lines in prop::collection::vec(piece(), 0..30)) {
            let text = lines.join("\n");
            match parse(&text, "fuzz") {
                Ok(_) => {}
                Err(e) => {
                    let line = e.line().unwrap_or(0);
                    prop_assert!(line >= 1 && line <= lines.len().max(1), "{}", e);
                }
            }
        }
    }
}
