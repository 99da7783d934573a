//! The description of a lab: nodes and the point-to-point links between them, built in Rust or
//! parsed from TOML. Pure data: this room computes interface names and addresses but touches
//! no system state.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Deserialize;

use crate::error::{LabError, Result};

/// Longest interface name the kernel accepts (`IFNAMSIZ` - 1).
pub const IFNAME_MAX: usize = 15;

/// Longest node name; it becomes part of a network namespace name.
pub const NODE_NAME_MAX: usize = 32;

/// Most links in one lab: each link gets its own `169.254.L.0/24` and `fd00:0:0:L::/64`.
pub const LINKS_MAX: usize = 254;

/// A set of nodes and links.
///
/// ```
/// use o7s_lab::{LinkSpec, Topology};
///
/// let t = Topology::new()
///     .node("a")
///     .node("b")
///     .node("c")
///     .link("a", "b")
///     .link_with(LinkSpec::new("b", "c").mtu(9000).ipv6(false));
/// t.validate().unwrap();
///
/// let same = Topology::from_toml(r#"
///     [[node]]
///     name = "a"
///     [[node]]
///     name = "b"
///     [[node]]
///     name = "c"
///     [[link]]
///     a = "a"
///     b = "b"
///     [[link]]
///     a = "b"
///     b = "c"
///     mtu = 9000
///     ipv6 = false
/// "#).unwrap();
/// assert_eq!(t, same);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The nodes, in order.
    #[serde(default, rename = "node")]
    pub nodes: Vec<NodeSpec>,
    /// The links, in order; the index of a link decides its addresses.
    #[serde(default, rename = "link")]
    pub links: Vec<LinkSpec>,
}

/// One node: a network namespace running one `irmd`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique name: lowercase ASCII letters, digits, `-`, `_`; starts with a letter or digit.
    pub name: String,
}

/// One point-to-point link: a veth pair between nodes `a` and `b`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// One end.
    pub a: String,
    /// The other end.
    pub b: String,
    /// MTU of both ends; the kernel default (1500) when absent.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Give both ends an IPv4 link-local address (`169.254.L.1/24`, `169.254.L.2/24`).
    #[serde(default = "yes")]
    pub ipv4: bool,
    /// Give both ends an IPv6 ULA address (`fd00:0:0:L::1/64`, `fd00:0:0:L::2/64`).
    #[serde(default = "yes")]
    pub ipv6: bool,
}

fn yes() -> bool {
    true
}

impl LinkSpec {
    /// A link between `a` and `b` with default MTU and both address families.
    pub fn new(a: &str, b: &str) -> LinkSpec {
        LinkSpec {
            a: a.to_owned(),
            b: b.to_owned(),
            mtu: None,
            ipv4: true,
            ipv6: true,
        }
    }

    /// Set the MTU of both ends.
    pub fn mtu(mut self, mtu: u32) -> LinkSpec {
        self.mtu = Some(mtu);
        self
    }

    /// Assign IPv4 addresses or not.
    pub fn ipv4(mut self, on: bool) -> LinkSpec {
        self.ipv4 = on;
        self
    }

    /// Assign IPv6 addresses or not.
    pub fn ipv6(mut self, on: bool) -> LinkSpec {
        self.ipv6 = on;
        self
    }
}

/// Which end of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The `a` end: host part 1.
    A,
    /// The `b` end: host part 2.
    B,
}

/// One end of a link as seen from its node: everything the lab configures there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Index of the link in [`Topology::links`].
    pub link: usize,
    /// The node at the other end.
    pub peer: String,
    /// Interface name inside this node's namespace (at most [`IFNAME_MAX`] bytes).
    pub ifname: String,
    /// The peer's interface name inside the peer's namespace.
    pub peer_ifname: String,
    /// MTU, if the topology set one.
    pub mtu: Option<u32>,
    /// This end's IPv4 address (prefix length [`Port::PREFIX4`]).
    pub addr4: Option<Ipv4Addr>,
    /// The peer end's IPv4 address.
    pub peer_addr4: Option<Ipv4Addr>,
    /// This end's IPv6 address (prefix length [`Port::PREFIX6`]).
    pub addr6: Option<Ipv6Addr>,
    /// The peer end's IPv6 address.
    pub peer_addr6: Option<Ipv6Addr>,
}

impl Port {
    /// Prefix length of the IPv4 addresses.
    pub const PREFIX4: u8 = 24;
    /// Prefix length of the IPv6 addresses.
    pub const PREFIX6: u8 = 64;
}

impl Topology {
    /// An empty topology.
    pub fn new() -> Topology {
        Topology::default()
    }

    /// Parse the TOML form (`[[node]] name = ".."`, `[[link]] a = ".." b = ".."` with optional
    /// `mtu`, `ipv4`, `ipv6`) and validate it.
    pub fn from_toml(text: &str) -> Result<Topology> {
        let t: Topology = toml::from_str(text)?;
        t.validate()?;
        Ok(t)
    }

    /// Add a node.
    pub fn node(mut self, name: &str) -> Topology {
        self.nodes.push(NodeSpec {
            name: name.to_owned(),
        });
        self
    }

    /// Add a link with default settings between two nodes.
    pub fn link(self, a: &str, b: &str) -> Topology {
        self.link_with(LinkSpec::new(a, b))
    }

    /// Add a link.
    pub fn link_with(mut self, link: LinkSpec) -> Topology {
        self.links.push(link);
        self
    }

    /// Check names, references and limits.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LabError::Topology(m));
        if self.nodes.is_empty() {
            return bad("no nodes; add at least one [[node]]".into());
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if !valid_name(&n.name) {
                return bad(format!(
                    "node name {:?} is invalid; use 1-{NODE_NAME_MAX} of [a-z0-9_-], \
                     starting with a letter or digit",
                    n.name
                ));
            }
            if self.nodes[..i].iter().any(|m| m.name == n.name) {
                return bad(format!("node {:?} is defined twice", n.name));
            }
        }
        if self.links.len() > LINKS_MAX {
            return bad(format!(
                "{} links; at most {LINKS_MAX} are supported",
                self.links.len()
            ));
        }
        for l in &self.links {
            for end in [&l.a, &l.b] {
                if !self.nodes.iter().any(|n| &n.name == end) {
                    return bad(format!(
                        "link {}-{} names node {end:?}, which is not defined; add [[node]] name = {end:?}",
                        l.a, l.b
                    ));
                }
            }
            if l.a == l.b {
                return bad(format!("link {}-{} loops to its own node", l.a, l.b));
            }
            if let Some(mtu) = l.mtu {
                if !(68..=65535).contains(&mtu) {
                    return bad(format!(
                        "link {}-{}: mtu {mtu} is not in 68..=65535",
                        l.a, l.b
                    ));
                }
            }
        }
        Ok(())
    }

    /// The ports (link ends) of node `name`, in link order.
    pub fn ports(&self, name: &str) -> Vec<Port> {
        self.links
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                if l.a == name {
                    Some(self.port(i, End::A))
                } else if l.b == name {
                    Some(self.port(i, End::B))
                } else {
                    None
                }
            })
            .collect()
    }

    /// End `end` of link `i`. Panics if `i` is out of range.
    pub fn port(&self, i: usize, end: End) -> Port {
        let l = &self.links[i];
        let (peer, other) = match end {
            End::A => (&l.b, End::B),
            End::B => (&l.a, End::A),
        };
        Port {
            link: i,
            peer: peer.clone(),
            ifname: ifname(i, peer),
            peer_ifname: ifname(i, self.node_at(i, end)),
            mtu: l.mtu,
            addr4: l.ipv4.then(|| addr4(i, end)),
            peer_addr4: l.ipv4.then(|| addr4(i, other)),
            addr6: l.ipv6.then(|| addr6(i, end)),
            peer_addr6: l.ipv6.then(|| addr6(i, other)),
        }
    }

    fn node_at(&self, i: usize, end: End) -> &str {
        match end {
            End::A => &self.links[i].a,
            End::B => &self.links[i].b,
        }
    }
}

pub(crate) fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= NODE_NAME_MAX
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

/// Interface name of link `i` on the node whose peer is `peer`: `v<i>-<peer>`, cut to
/// [`IFNAME_MAX`]. The link index keeps names unique inside a namespace.
fn ifname(i: usize, peer: &str) -> String {
    let mut s = format!("v{i}-{peer}");
    s.truncate(IFNAME_MAX);
    s
}

fn host(end: End) -> u8 {
    match end {
        End::A => 1,
        End::B => 2,
    }
}

fn addr4(i: usize, end: End) -> Ipv4Addr {
    // LINKS_MAX keeps i + 1 within 1..=254.
    Ipv4Addr::new(169, 254, (i + 1) as u8, host(end))
}

fn addr6(i: usize, end: End) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0, 0, (i + 1) as u16, 0, 0, 0, u16::from(host(end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_addresses() {
        let t = Topology::new()
            .node("a")
            .node("b")
            .node("a-very-long-node-name")
            .link("a", "b")
            .link_with(LinkSpec::new("b", "a-very-long-node-name").ipv6(false));
        t.validate().expect("valid");
        let a = t.ports("a");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].ifname, "v0-b");
        assert_eq!(a[0].peer_ifname, "v0-a");
        assert_eq!(a[0].addr4, Some(Ipv4Addr::new(169, 254, 1, 1)));
        assert_eq!(a[0].peer_addr4, Some(Ipv4Addr::new(169, 254, 1, 2)));
        assert_eq!(a[0].addr6, "fd00:0:0:1::1".parse().ok());
        let b = t.ports("b");
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].ifname, "v1-a-very-long-");
        assert_eq!(b[1].ifname.len(), IFNAME_MAX);
        assert_eq!(b[1].addr4, Some(Ipv4Addr::new(169, 254, 2, 1)));
        assert_eq!(b[1].addr6, None);
        let c = t.ports("a-very-long-node-name");
        assert_eq!(c[0].ifname, "v1-b");
        assert_eq!(c[0].peer_ifname, b[1].ifname);
        assert_eq!(c[0].peer_addr4, b[1].addr4);
    }

    #[test]
    fn toml_defaults_and_errors() {
        let t = Topology::from_toml(
            "[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n[[link]]\na = \"a\"\nb = \"b\"\nmtu = 1400\n",
        )
        .expect("parse");
        assert_eq!(t.links[0], LinkSpec::new("a", "b").mtu(1400));
        for (text, needle) in [
            ("", "no nodes"),
            ("[[node]]\nname = \"A\"", "invalid"),
            ("[[node]]\nname = \"a\"\n[[node]]\nname = \"a\"", "twice"),
            (
                "[[node]]\nname = \"a\"\n[[link]]\na = \"a\"\nb = \"x\"",
                "not defined",
            ),
            (
                "[[node]]\nname = \"a\"\n[[link]]\na = \"a\"\nb = \"a\"",
                "loops",
            ),
            ("[[node]]\nname = \"a\"\ncolour = 1", "unknown field"),
        ] {
            let e = Topology::from_toml(text).expect_err(text).to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
