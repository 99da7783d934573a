//! The network file of `o7s-lab`: a [`Topology`] (nodes, links) plus the layers built over it
//! and the names served in them, read from TOML and checked completely before anything is
//! built. Every error names the file, the line and the key at fault. Pure data: this room
//! touches no system state; [`crate::plan`] turns a checked network into IPCPs.
//!
//! ```toml
//! [[node]]
//! name = "a"
//! [[node]]
//! name = "b"
//! [[link]]
//! a = "a"
//! b = "b"
//!
//! [[layer]]
//! name = "eth"          # a shim layer: one instance per link ("eth0", "eth1", ...)
//! type = "eth-dix"      # eth-dix | eth-llc | udp4
//!
//! [[layer]]
//! name = "net"
//! type = "unicast"
//! over = ["eth"]        # the layers below
//! params = { routing = "lfa" }
//!
//! [[name]]
//! name = "oping.{node}" # {node} becomes the node's name
//! nodes = ["*"]         # every member of the layer
//! layer = "net"
//! prog = "oping"
//! args = "-l"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::topology::{LinkSpec, NodeSpec, Topology};

/// A network file that cannot be used: `FILE:LINE: KEY: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {key}: {msg}")]
pub struct SpecError {
    /// The file, as given.
    pub file: String,
    /// 1-based line at fault.
    pub line: usize,
    /// The key at fault, like `layer[1].over` or `link[0].b`.
    pub key: String,
    /// What is wrong and, where possible, what to write instead.
    pub msg: String,
}

/// The kind of a layer in a network file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerKind {
    /// Raw Ethernet with the DIX header, one instance per link.
    EthDix,
    /// Raw Ethernet with an LLC header, one instance per link.
    EthLlc,
    /// UDP over IPv4, one instance per link.
    Udp4,
    /// A unicast layer (software router) over other layers.
    Unicast,
    /// A broadcast layer (software hub) over other layers; its connections form a tree.
    Broadcast,
}

impl LayerKind {
    fn parse(s: &str) -> Option<LayerKind> {
        Some(match s {
            "eth-dix" => LayerKind::EthDix,
            "eth-llc" => LayerKind::EthLlc,
            "udp4" => LayerKind::Udp4,
            "unicast" => LayerKind::Unicast,
            "broadcast" => LayerKind::Broadcast,
            _ => return None,
        })
    }

    /// The IPCP type, as `irm` and `irmd.toml` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::EthDix => "eth-dix",
            LayerKind::EthLlc => "eth-llc",
            LayerKind::Udp4 => "udp4",
            LayerKind::Unicast => "unicast",
            LayerKind::Broadcast => "broadcast",
        }
    }

    /// Sits on links (one instance per link) rather than over other layers.
    pub fn is_shim(self) -> bool {
        !matches!(self, LayerKind::Unicast | LayerKind::Broadcast)
    }

    /// The components each adjacency connects, in the order the prototype connects them.
    pub fn components(self) -> &'static [&'static str] {
        match self {
            LayerKind::Broadcast => &["dt"],
            _ => &["mgmt", "dt"],
        }
    }

    /// Bootstrap parameters the file may set, by their `irmd.toml` keys. `dev` and `ip` are
    /// set by the lab from the link.
    fn params(self) -> &'static [&'static str] {
        match self {
            LayerKind::EthDix => &["ethertype", "hash"],
            LayerKind::EthLlc => &["hash"],
            LayerKind::Udp4 => &["port", "hash"],
            LayerKind::Broadcast => &[],
            LayerKind::Unicast => &[
                "addr_size",
                "eid_size",
                "max_ttl",
                "addr-auth",
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
        }
    }
}

/// A checked layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// The layer's name (for a shim: the prefix of its per-link instances).
    pub name: String,
    /// Its kind.
    pub kind: LayerKind,
    /// Shim: indices of the links it runs on. Unicast: empty.
    pub links: Vec<usize>,
    /// Unicast: the layers below, by index into [`Network::layers`].
    pub over: Vec<usize>,
    /// Unicast: member nodes, in node order.
    pub nodes: Vec<String>,
    /// Unicast: the node that bootstraps the layer.
    pub bootstrap: String,
    /// Unicast: explicit enrollment peers (node -> member it enrolls through).
    pub enrol: BTreeMap<String, String>,
    /// Unicast: adjacencies as pairs of nodes, each connected once (mgmt and dt).
    pub adjacencies: Vec<(String, String)>,
    /// Bootstrap parameters as `irmd.toml` key and value, in file order.
    pub params: Vec<(String, toml::Value)>,
}

/// A checked name to register (and maybe bind a program to) on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameSpec {
    /// The name, `{node}` replaced.
    pub name: String,
    /// The node it is served on.
    pub node: String,
    /// The layer it is registered in (a shim: every instance on the node).
    pub layer: usize,
    /// Program bound to it, started on demand when `args` is set.
    pub prog: Option<String>,
    /// Arguments of the auto-started program (whitespace separated).
    pub args: Option<String>,
}

/// A checked network file: nodes and links, layers bottom-up, names.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Nodes and links.
    pub topology: Topology,
    /// Layers, each after the layers it is over.
    pub layers: Vec<Layer>,
    /// Names, one per node they are served on.
    pub names: Vec<NameSpec>,
}

type S = Spanned<String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    node: Vec<NodeIn>,
    #[serde(default)]
    link: Vec<LinkIn>,
    #[serde(default)]
    layer: Vec<LayerIn>,
    #[serde(default)]
    name: Vec<NameIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeIn {
    name: S,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkIn {
    a: S,
    b: S,
    mtu: Option<Spanned<u32>>,
    #[serde(default = "yes")]
    ipv4: bool,
    #[serde(default = "yes")]
    ipv6: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerIn {
    name: S,
    #[serde(rename = "type")]
    kind: S,
    links: Option<Vec<Spanned<Vec<S>>>>,
    over: Option<Vec<S>>,
    nodes: Option<Vec<S>>,
    bootstrap: Option<S>,
    enrol: Option<BTreeMap<String, S>>,
    adjacencies: Option<Vec<Spanned<Vec<S>>>>,
    #[serde(default)]
    params: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameIn {
    name: S,
    nodes: Vec<S>,
    layer: S,
    prog: Option<S>,
    args: Option<S>,
}

/// Turns byte offsets into lines and builds errors.
struct Cx<'a> {
    text: &'a str,
    file: &'a str,
}

impl Cx<'_> {
    fn line(&self, pos: usize) -> usize {
        self.text.bytes().take(pos).filter(|&b| b == b'\n').count() + 1
    }

    fn err<T>(
        &self,
        span: Range<usize>,
        key: &str,
        msg: impl Into<String>,
    ) -> Result<T, SpecError> {
        Err(SpecError {
            file: self.file.into(),
            line: self.line(span.start),
            key: key.into(),
            msg: msg.into(),
        })
    }

    /// A TOML or serde error: its line, and as key the word before `=` on that line (or the
    /// table header), since serde's messages do not carry the path.
    fn toml(&self, e: &toml::de::Error) -> SpecError {
        let span = e.span().unwrap_or(0..0);
        let line = self.line(span.start);
        let text = self.text.lines().nth(line - 1).unwrap_or("").trim();
        let key = match text.split_once('=') {
            Some((k, _)) if !k.contains('[') => k.trim().to_string(),
            _ => text.to_string(),
        };
        SpecError {
            file: self.file.into(),
            line,
            key,
            msg: e.message().trim().replace('\n', "; "),
        }
    }
}

/// Lowercase letters, digits, `-`, `_`, `.`; starts with a letter or digit.
fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
}

impl Network {
    /// Parse and check the text of a network file; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Network, SpecError> {
        let cx = Cx { text, file };
        let f: File = toml::from_str(text).map_err(|e| cx.toml(&e))?;
        let topology = topology(&cx, &f)?;
        let layers = layers(&cx, &f, &topology)?;
        let names = names(&cx, &f, &topology, &layers)?;
        Ok(Network {
            topology,
            layers,
            names,
        })
    }

    /// Read and check a network file.
    pub fn load(path: &std::path::Path) -> Result<Network, SpecError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            file: file.clone(),
            line: 0,
            key: "-".into(),
            msg: format!("cannot read: {e}"),
        })?;
        Network::from_toml(&text, &file)
    }

    /// The index of layer `name`.
    pub fn layer(&self, name: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.name == name)
    }

    /// Nodes that are members of layer `i`: a shim's link ends, a unicast layer's members.
    pub fn members(&self, i: usize) -> Vec<String> {
        members(&self.topology, &self.layers, i)
    }
}

fn members(t: &Topology, layers: &[Layer], i: usize) -> Vec<String> {
    let l = &layers[i];
    if !l.kind.is_shim() {
        return l.nodes.clone();
    }
    t.nodes
        .iter()
        .map(|n| n.name.clone())
        .filter(|n| {
            l.links
                .iter()
                .any(|&k| t.links[k].a == *n || t.links[k].b == *n)
        })
        .collect()
}

fn topology(cx: &Cx<'_>, f: &File) -> Result<Topology, SpecError> {
    let mut t = Topology::new();
    let mut seen = HashMap::new();
    for (i, n) in f.node.iter().enumerate() {
        let key = format!("node[{i}].name");
        let name = n.name.get_ref();
        if !crate::topology::valid_name(name) {
            return cx.err(
                n.name.span(),
                &key,
                format!(
                    "{name:?} is not a valid node name; use 1-{} of [a-z0-9_-], starting with a letter or digit",
                    crate::NODE_NAME_MAX
                ),
            );
        }
        if let Some(l) = seen.insert(name.clone(), cx.line(n.name.span().start)) {
            return cx.err(
                n.name.span(),
                &key,
                format!("node {name:?} is already defined at line {l}"),
            );
        }
        t.nodes.push(NodeSpec { name: name.clone() });
    }
    if t.nodes.is_empty() {
        return cx.err(
            0..0,
            "node",
            "no nodes; add [[node]] tables with name = \"...\"",
        );
    }
    if f.link.len() > crate::LINKS_MAX {
        return cx.err(
            0..0,
            "link",
            format!("at most {} links are supported", crate::LINKS_MAX),
        );
    }
    for (i, l) in f.link.iter().enumerate() {
        for (end, v) in [("a", &l.a), ("b", &l.b)] {
            node_ref(cx, &t, v, &format!("link[{i}].{end}"))?;
        }
        if l.a.get_ref() == l.b.get_ref() {
            return cx.err(
                l.b.span(),
                &format!("link[{i}].b"),
                "a link must join two different nodes",
            );
        }
        if let Some(m) = &l.mtu {
            if !(68..=65535).contains(m.get_ref()) {
                return cx.err(m.span(), &format!("link[{i}].mtu"), "must be in 68..=65535");
            }
        }
        t.links.push(LinkSpec {
            a: l.a.get_ref().clone(),
            b: l.b.get_ref().clone(),
            mtu: l.mtu.as_ref().map(|m| *m.get_ref()),
            ipv4: l.ipv4,
            ipv6: l.ipv6,
        });
    }
    t.validate().map_err(|e| SpecError {
        file: cx.file.into(),
        line: 1,
        key: "-".into(),
        msg: e.to_string(),
    })?;
    Ok(t)
}

fn node_ref(cx: &Cx<'_>, t: &Topology, v: &S, key: &str) -> Result<(), SpecError> {
    if t.nodes.iter().any(|n| &n.name == v.get_ref()) {
        return Ok(());
    }
    let all: Vec<&str> = t.nodes.iter().map(|n| n.name.as_str()).collect();
    cx.err(
        v.span(),
        key,
        format!(
            "node {:?} is not defined; nodes: {}",
            v.get_ref(),
            all.join(", ")
        ),
    )
}

fn layers(cx: &Cx<'_>, f: &File, t: &Topology) -> Result<Vec<Layer>, SpecError> {
    let mut out: Vec<Layer> = Vec::new();
    // Every layer name, including the per-link instances of shims, must be unique.
    let mut taken: HashMap<String, String> = HashMap::new();
    for (i, l) in f.layer.iter().enumerate() {
        let at = |k: &str| format!("layer[{i}].{k}");
        let name = l.name.get_ref().clone();
        if !valid_name(&name) {
            return cx.err(
                l.name.span(),
                &at("name"),
                format!("{name:?} is not a valid layer name; use [a-z0-9._-]"),
            );
        }
        let kind = match LayerKind::parse(l.kind.get_ref()) {
            Some(k) => k,
            None => {
                return cx.err(
                    l.kind.span(),
                    &at("type"),
                    format!(
                        "unknown type {:?}; allowed: eth-dix, eth-llc, udp4, unicast, broadcast",
                        l.kind.get_ref()
                    ),
                )
            }
        };
        let mut layer = Layer {
            name: name.clone(),
            kind,
            links: Vec::new(),
            over: Vec::new(),
            nodes: Vec::new(),
            bootstrap: String::new(),
            enrol: BTreeMap::new(),
            adjacencies: Vec::new(),
            params: Vec::new(),
        };
        let allowed = kind.params();
        let mut params: Vec<_> = l.params.iter().collect();
        params.sort_by_key(|(_, v)| v.span().start);
        for (k, v) in params {
            if !allowed.contains(&k.as_str()) {
                let why = match k.as_str() {
                    "dev" | "ip" => "is set by o7s-lab from the link".to_string(),
                    _ => format!(
                        "is not a {} parameter; allowed: {}",
                        kind.as_str(),
                        allowed.join(", ")
                    ),
                };
                return cx.err(
                    v.span(),
                    &at(&format!("params.{k}")),
                    format!("`{k}` {why}"),
                );
            }
            if !matches!(
                v.get_ref(),
                toml::Value::String(_) | toml::Value::Integer(_)
            ) {
                return cx.err(
                    v.span(),
                    &at(&format!("params.{k}")),
                    "must be a string or an integer",
                );
            }
            layer.params.push((k.clone(), v.get_ref().clone()));
        }
        let only = |v: bool, key: &str, span: Range<usize>, what: &str| {
            if v {
                cx.err(span, &at(key), format!("only {what} layers take `{key}`"))
            } else {
                Ok(())
            }
        };
        if kind.is_shim() {
            for (key, span) in [
                (
                    "over",
                    l.over.as_ref().and_then(|v| v.first()).map(|s| s.span()),
                ),
                (
                    "nodes",
                    l.nodes.as_ref().and_then(|v| v.first()).map(|s| s.span()),
                ),
                ("bootstrap", l.bootstrap.as_ref().map(|s| s.span())),
                (
                    "enrol",
                    l.enrol
                        .as_ref()
                        .and_then(|m| m.values().next())
                        .map(|s| s.span()),
                ),
                (
                    "adjacencies",
                    l.adjacencies
                        .as_ref()
                        .and_then(|v| v.first())
                        .map(|s| s.span()),
                ),
            ] {
                if let Some(span) = span {
                    only(true, key, span, "unicast and broadcast")?;
                }
            }
            layer.links = shim_links(cx, t, l, &at("links"))?;
            if let Some(&k) = layer
                .links
                .iter()
                .find(|&&k| kind == LayerKind::Udp4 && !t.links[k].ipv4)
            {
                return cx.err(
                    l.kind.span(),
                    &at("type"),
                    format!(
                        "udp4 needs IPv4 addresses, but link {k} ({}-{}) has ipv4 = false",
                        t.links[k].a, t.links[k].b
                    ),
                );
            }
            for &k in &layer.links {
                let inst = instance(&name, k);
                if let Some(other) = taken.insert(inst.clone(), name.clone()) {
                    return cx.err(l.name.span(), &at("name"), format!("layer {inst:?} (link {k} of {name:?}) clashes with layer {other:?}; rename one"));
                }
            }
        } else {
            if let Some(s) = l.links.as_ref().and_then(|v| v.first()) {
                only(true, "links", s.span(), "shim (eth-dix, eth-llc, udp4)")?;
            }
            if let Some(other) = taken.insert(name.clone(), name.clone()) {
                return cx.err(
                    l.name.span(),
                    &at("name"),
                    format!("layer {name:?} clashes with layer {other:?}; rename one"),
                );
            }
            unicast(cx, t, &out, l, &mut layer, i)?;
        }
        out.push(layer);
    }
    Ok(out)
}

/// The per-link instance of shim layer `name` on link `k`.
pub fn instance(name: &str, k: usize) -> String {
    format!("{name}{k}")
}

fn shim_links(cx: &Cx<'_>, t: &Topology, l: &LayerIn, key: &str) -> Result<Vec<usize>, SpecError> {
    let Some(list) = &l.links else {
        return Ok((0..t.links.len()).collect());
    };
    let mut out = Vec::new();
    for pair in list {
        let p = pair.get_ref();
        if p.len() != 2 {
            return cx.err(
                pair.span(),
                key,
                "each link is a pair of nodes, like [\"a\", \"b\"]",
            );
        }
        for n in p {
            node_ref(cx, t, n, key)?;
        }
        let (a, b) = (p[0].get_ref(), p[1].get_ref());
        let found: Vec<usize> = (0..t.links.len())
            .filter(|&k| {
                let x = &t.links[k];
                (&x.a == a && &x.b == b) || (&x.a == b && &x.b == a)
            })
            .collect();
        if found.is_empty() {
            return cx.err(
                pair.span(),
                key,
                format!("there is no [[link]] between {a:?} and {b:?}"),
            );
        }
        out.extend(
            found
                .into_iter()
                .filter(|k| !out.contains(k))
                .collect::<Vec<_>>(),
        );
    }
    out.sort();
    Ok(out)
}

/// Check and fill in a unicast or broadcast layer: lower layers, members, bootstrap,
/// enrollment, adjacencies (a broadcast layer's by default a spanning tree, and never a
/// cycle).
fn unicast(
    cx: &Cx<'_>,
    t: &Topology,
    below: &[Layer],
    l: &LayerIn,
    layer: &mut Layer,
    i: usize,
) -> Result<(), SpecError> {
    let at = |k: &str| format!("layer[{i}].{k}");
    let Some(over) = l.over.as_ref().filter(|o| !o.is_empty()) else {
        return cx.err(
            l.name.span(),
            &at("over"),
            format!(
                "a {} layer needs `over = [\"LAYER\", ...]`, the layers below it",
                layer.kind.as_str()
            ),
        );
    };
    for o in over {
        let Some(k) = below.iter().position(|b| b.name == *o.get_ref()) else {
            let names: Vec<&str> = below.iter().map(|b| b.name.as_str()).collect();
            return cx.err(
                o.span(),
                &at("over"),
                format!(
                    "layer {:?} is not defined above this one; layers so far: {}",
                    o.get_ref(),
                    names.join(", ")
                ),
            );
        };
        if below[k].kind == LayerKind::Broadcast {
            return cx.err(
                o.span(),
                &at("over"),
                format!(
                    "layer {:?} is a broadcast layer: no layer runs over one (it carries no \
                     flows to names)",
                    o.get_ref()
                ),
            );
        }
        layer.over.push(k);
    }
    let lower: Vec<String> = t
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .filter(|n| layer.over.iter().any(|&k| members(t, below, k).contains(n)))
        .collect();
    layer.nodes = match &l.nodes {
        None => lower.clone(),
        Some(list) => {
            for n in list {
                node_ref(cx, t, n, &at("nodes"))?;
                if !lower.contains(n.get_ref()) {
                    return cx.err(
                        n.span(),
                        &at("nodes"),
                        format!(
                            "node {:?} is in none of the layers below ({})",
                            n.get_ref(),
                            over_names(below, &layer.over)
                        ),
                    );
                }
            }
            let want: Vec<&String> = list.iter().map(|s| s.get_ref()).collect();
            lower.iter().filter(|n| want.contains(n)).cloned().collect()
        }
    };
    if layer.nodes.is_empty() {
        return cx.err(l.name.span(), &at("nodes"), "the layer has no members");
    }
    layer.bootstrap = match &l.bootstrap {
        None => layer.nodes[0].clone(),
        Some(b) => {
            if !layer.nodes.contains(b.get_ref()) {
                return cx.err(
                    b.span(),
                    &at("bootstrap"),
                    format!(
                        "node {:?} is not a member; members: {}",
                        b.get_ref(),
                        layer.nodes.join(", ")
                    ),
                );
            }
            b.get_ref().clone()
        }
    };
    let all_shims = layer.over.iter().all(|&k| below[k].kind.is_shim());
    // Two members can have a lower flow between them if they share a lower layer (for a
    // shim: the instance on a link between them).
    let can_reach = |a: &str, b: &str| {
        layer.over.iter().any(|&k| {
            let lo = &below[k];
            if lo.kind.is_shim() {
                lo.links.iter().any(|&x| {
                    let x = &t.links[x];
                    (x.a == a && x.b == b) || (x.a == b && x.b == a)
                })
            } else {
                lo.nodes.iter().any(|n| n == a) && lo.nodes.iter().any(|n| n == b)
            }
        })
    };
    match &l.adjacencies {
        None if layer.kind == LayerKind::Broadcast => {
            layer.adjacencies = spanning_tree(&layer.nodes, &layer.bootstrap, can_reach);
        }
        None if all_shims => {
            for x in &t.links {
                let pair = (x.a.clone(), x.b.clone());
                let dup = layer.adjacencies.iter().any(|(p, q)| (p, q) == (&pair.0, &pair.1) || (p, q) == (&pair.1, &pair.0));
                if layer.nodes.contains(&x.a) && layer.nodes.contains(&x.b) && can_reach(&x.a, &x.b) && !dup {
                    layer.adjacencies.push(pair);
                }
            }
        }
        None => {
            return cx.err(
                over[0].span(),
                &at("adjacencies"),
                "a layer over another unicast layer needs its adjacencies listed, like adjacencies = [[\"a\", \"b\"], [\"b\", \"c\"]]",
            )
        }
        Some(list) => {
            for pair in list {
                let p = pair.get_ref();
                if p.len() != 2 || p[0].get_ref() == p[1].get_ref() {
                    return cx.err(pair.span(), &at("adjacencies"), "each adjacency is a pair of two members, like [\"a\", \"b\"]");
                }
                for n in p {
                    if !layer.nodes.contains(n.get_ref()) {
                        return cx.err(n.span(), &at("adjacencies"), format!("node {:?} is not a member; members: {}", n.get_ref(), layer.nodes.join(", ")));
                    }
                }
                let (a, b) = (p[0].get_ref(), p[1].get_ref());
                if !can_reach(a, b) {
                    return cx.err(pair.span(), &at("adjacencies"), format!("{a:?} and {b:?} share no layer below ({}); add a link or a lower layer", over_names(below, &layer.over)));
                }
                layer.adjacencies.push((a.clone(), b.clone()));
            }
        }
    }
    if layer.kind == LayerKind::Broadcast {
        if let Some((a, b)) = closes_cycle(&layer.adjacencies) {
            let span = l
                .adjacencies
                .as_ref()
                .and_then(|v| v.first())
                .map_or_else(|| l.name.span(), |s| s.span());
            return cx.err(
                span,
                &at("adjacencies"),
                format!(
                    "[{a:?}, {b:?}] closes a cycle: the connections of a broadcast layer must \
                     form a tree (it has no duplicate suppression; a packet would go round \
                     forever)"
                ),
            );
        }
    }
    if let Some(m) = &l.enrol {
        for (n, via) in m {
            let key = at(&format!("enrol.{n}"));
            if !layer.nodes.contains(n) {
                return cx.err(
                    via.span(),
                    &key,
                    format!(
                        "node {n:?} is not a member; members: {}",
                        layer.nodes.join(", ")
                    ),
                );
            }
            if *n == layer.bootstrap {
                return cx.err(
                    via.span(),
                    &key,
                    format!("node {n:?} bootstraps the layer; it enrols nowhere"),
                );
            }
            if !layer.nodes.contains(via.get_ref()) || !can_reach(n, via.get_ref()) {
                return cx.err(via.span(), &key, format!("{n:?} cannot enrol through {:?}: not a member it shares a layer below with", via.get_ref()));
            }
            layer.enrol.insert(n.clone(), via.get_ref().clone());
        }
    }
    // Every member must be able to join: walk the enrollment order once here.
    if let Err(stuck) = crate::plan::enrol_order(layer) {
        return cx.err(
            l.name.span(),
            &at("name"),
            format!(
                "members {} cannot enrol: no adjacency or enrol entry connects them to {:?}",
                stuck.join(", "),
                layer.bootstrap
            ),
        );
    }
    Ok(())
}

/// A spanning tree of `nodes` from `root` along the pairs `can_reach` allows, breadth-first
/// (the default connections of a broadcast layer).
fn spanning_tree(
    nodes: &[String],
    root: &str,
    can_reach: impl Fn(&str, &str) -> bool,
) -> Vec<(String, String)> {
    let mut tree = Vec::new();
    let mut seen = vec![root.to_string()];
    let mut queue = std::collections::VecDeque::from([root.to_string()]);
    while let Some(n) = queue.pop_front() {
        for m in nodes {
            if !seen.contains(m) && can_reach(&n, m) {
                seen.push(m.clone());
                tree.push((n.clone(), m.clone()));
                queue.push_back(m.clone());
            }
        }
    }
    tree
}

/// The first pair of `pairs` that closes a cycle (a pair given twice does), if any.
pub fn closes_cycle(pairs: &[(String, String)]) -> Option<(String, String)> {
    let mut root: HashMap<&str, &str> = HashMap::new();
    fn find<'a>(root: &HashMap<&'a str, &'a str>, mut x: &'a str) -> &'a str {
        while let Some(&up) = root.get(x) {
            x = up;
        }
        x
    }
    for (a, b) in pairs {
        let (ra, rb) = (find(&root, a), find(&root, b));
        if ra == rb {
            return Some((a.clone(), b.clone()));
        }
        root.insert(ra, rb);
    }
    None
}

fn over_names(below: &[Layer], over: &[usize]) -> String {
    over.iter()
        .map(|&k| below[k].name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn names(
    cx: &Cx<'_>,
    f: &File,
    t: &Topology,
    layers: &[Layer],
) -> Result<Vec<NameSpec>, SpecError> {
    let mut out: Vec<NameSpec> = Vec::new();
    for (i, n) in f.name.iter().enumerate() {
        let at = |k: &str| format!("name[{i}].{k}");
        let Some(layer) = layers.iter().position(|l| l.name == *n.layer.get_ref()) else {
            let all: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
            return cx.err(
                n.layer.span(),
                &at("layer"),
                format!(
                    "layer {:?} is not defined; layers: {}",
                    n.layer.get_ref(),
                    all.join(", ")
                ),
            );
        };
        if layers[layer].kind == LayerKind::Broadcast {
            return cx.err(
                n.layer.span(),
                &at("layer"),
                format!(
                    "{:?} is a broadcast layer: it has no names; applications join it \
                     (obc -n {})",
                    n.layer.get_ref(),
                    n.layer.get_ref()
                ),
            );
        }
        let members = members(t, layers, layer);
        let mut nodes = Vec::new();
        for v in &n.nodes {
            if v.get_ref() == "*" {
                nodes.extend(members.iter().cloned());
                continue;
            }
            node_ref(cx, t, v, &at("nodes"))?;
            if !members.contains(v.get_ref()) {
                return cx.err(
                    v.span(),
                    &at("nodes"),
                    format!(
                        "node {:?} is not in layer {:?}",
                        v.get_ref(),
                        n.layer.get_ref()
                    ),
                );
            }
            nodes.push(v.get_ref().clone());
        }
        if nodes.is_empty() {
            return cx.err(
                n.name.span(),
                &at("nodes"),
                "no nodes; list them, or [\"*\"] for every member of the layer",
            );
        }
        if let Some(p) = &n.prog {
            if p.get_ref().trim().is_empty() {
                return cx.err(p.span(), &at("prog"), "empty program name");
            }
        }
        if let (Some(a), None) = (&n.args, &n.prog) {
            return cx.err(
                a.span(),
                &at("args"),
                "args without prog: they are the arguments of the auto-started prog",
            );
        }
        for node in nodes {
            let name = n.name.get_ref().replace("{node}", &node);
            if !valid_name(&name) {
                return cx.err(
                    n.name.span(),
                    &at("name"),
                    format!("{name:?} is not a valid name; use [A-Za-z0-9._-]"),
                );
            }
            if out
                .iter()
                .any(|o| o.name == name && o.node == node && o.layer == layer)
            {
                return cx.err(
                    n.name.span(),
                    &at("name"),
                    format!("{name:?} is registered twice on node {node:?} in that layer"),
                );
            }
            out.push(NameSpec {
                name,
                node,
                layer,
                prog: n.prog.as_ref().map(|p| p.get_ref().clone()),
                args: n.args.as_ref().map(|a| a.get_ref().clone()),
            });
        }
    }
    Ok(out)
}
