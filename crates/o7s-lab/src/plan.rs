//! From a checked [`Network`] to the IPCPs each node runs: names, layers, bootstrap
//! parameters, whom each enrolls through, whom it connects to and which names it registers.
//! One plan serves both `o7s-lab up` (as `irm` commands, [`crate::build`]) and
//! `o7s-lab export` (as `irmd.toml` files, [`crate::export`]), so the two cannot drift.
//! Pure data, no system state.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::Ipv4Addr;

use crate::spec::{instance, Layer, LayerKind, NameSpec, Network};
use crate::topology::End;

/// How the nodes reach each other, which decides shim parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// Each node a network namespace, each link a veth pair (Ethernet or UDP on the link's
    /// addresses, the default port).
    Netns,
    /// Every node on this host without namespaces: only `udp4` shims, node `i` on
    /// `127.0.0.<i+1>` with one port per link (`3500 + link`).
    Loopback,
}

/// One IPCP of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct IpcpPlan {
    /// The node it runs on.
    pub node: String,
    /// The IPCP's name, unique in the network.
    pub name: String,
    /// Its type.
    pub kind: LayerKind,
    /// The layer it is in (a shim's per-link instance).
    pub layer: String,
    /// Index of its layer in [`Network::layers`].
    pub layer_index: usize,
    /// Bootstrap parameters, `irmd.toml` keys and values (dev, ip, port for shims).
    pub params: Vec<(String, String)>,
    /// A udp4 shim's static directory: lines `ADDRESS:PORT NAME...`.
    pub hosts: Vec<String>,
    /// The IPCP it enrolls through; `None` when it bootstraps.
    pub enrol: Option<String>,
    /// IPCPs it makes adjacencies with (management and data transfer).
    pub conn: Vec<String>,
    /// Names registered in it.
    pub reg: Vec<String>,
}

impl IpcpPlan {
    /// Unicast IPCPs bind themselves to their names (`autobind`).
    pub fn autobind(&self) -> bool {
        !self.kind.is_shim()
    }
}

/// The whole network as IPCPs, in an order that can be built front to back: shims first,
/// then each unicast layer in enrollment order. Names are bound before anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The IPCPs.
    pub ipcps: Vec<IpcpPlan>,
    /// Names with programs to bind, per node.
    pub binds: Vec<NameSpec>,
}

/// The name of the IPCP of `node` in layer `layer`.
pub fn ipcp_name(layer: &str, node: &str) -> String {
    crate::unicast::ipcp_name(layer, node)
}

/// Port of the udp4 shim on link `k` in [`Addressing::Loopback`].
pub const LOOPBACK_PORT: u16 = 3500;

/// Members of a unicast layer in an order where each one's enrollment peer comes first,
/// with that peer (`None` for the bootstrap node). Members no adjacency or `enrol` entry
/// reaches from the bootstrap node are returned as the error.
pub fn enrol_order(l: &Layer) -> Result<Vec<(String, Option<String>)>, Vec<String>> {
    let nbrs = |n: &str| -> Vec<String> {
        l.adjacencies
            .iter()
            .filter_map(|(a, b)| {
                if a == n {
                    Some(b.clone())
                } else if b == n {
                    Some(a.clone())
                } else {
                    None
                }
            })
            .collect()
    };
    let mut done: Vec<(String, Option<String>)> = vec![(l.bootstrap.clone(), None)];
    let mut seen: HashSet<String> = HashSet::from([l.bootstrap.clone()]);
    let mut queue = VecDeque::from([l.bootstrap.clone()]);
    // Breadth-first along adjacencies; a node with an explicit peer waits for that peer.
    while let Some(n) = queue.pop_front() {
        let waiting: Vec<&String> = l.nodes.iter().filter(|m| !seen.contains(*m)).collect();
        for m in waiting {
            let via = match l.enrol.get(m) {
                Some(v) if *v == n => n.clone(),
                Some(_) => continue,
                None if nbrs(m).contains(&n) => n.clone(),
                None => continue,
            };
            seen.insert(m.clone());
            done.push((m.clone(), Some(via)));
            queue.push_back(m.clone());
        }
    }
    let stuck: Vec<String> = l
        .nodes
        .iter()
        .filter(|m| !seen.contains(*m))
        .cloned()
        .collect();
    if stuck.is_empty() {
        Ok(done)
    } else {
        Err(stuck)
    }
}

impl Plan {
    /// Plan `net` for `addressing`.
    pub fn new(net: &Network, addressing: Addressing) -> Plan {
        let t = &net.topology;
        let node_index = |n: &str| t.nodes.iter().position(|x| x.name == n).unwrap_or(0);
        let mut ipcps: Vec<IpcpPlan> = Vec::new();
        // Names registered per (node, layer instance).
        let mut regs: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        let mut add_reg = |node: &str, layer: &str, name: &str| {
            let v = regs
                .entry((node.to_string(), layer.to_string()))
                .or_default();
            if !v.iter().any(|x| x == name) {
                v.push(name.to_string());
            }
        };
        // Upper IPCPs and their layer's name go into every instance below them on the node.
        for (li, l) in net.layers.iter().enumerate() {
            if l.kind.is_shim() {
                continue;
            }
            for n in &l.nodes {
                for lower in lower_instances(net, li, n) {
                    add_reg(n, &lower, &ipcp_name(&l.name, n));
                    add_reg(n, &lower, &l.name);
                }
            }
        }
        for s in &net.names {
            let l = &net.layers[s.layer];
            if l.kind.is_shim() {
                for k in &l.links {
                    let x = &t.links[*k];
                    if x.a == s.node || x.b == s.node {
                        add_reg(&s.node, &instance(&l.name, *k), &s.name);
                    }
                }
            } else {
                add_reg(&s.node, &l.name, &s.name);
            }
        }
        let reg_of = |node: &str, layer: &str| {
            regs.get(&(node.to_string(), layer.to_string()))
                .cloned()
                .unwrap_or_default()
        };
        for (li, l) in net.layers.iter().enumerate() {
            let params: Vec<(String, String)> = l
                .params
                .iter()
                .map(|(k, v)| (k.clone(), value(k, v)))
                .collect();
            if l.kind.is_shim() {
                for &k in &l.links {
                    let layer = instance(&l.name, k);
                    for end in [End::A, End::B] {
                        let p = t.port(k, end);
                        let me = match end {
                            End::A => &t.links[k].a,
                            End::B => &t.links[k].b,
                        };
                        let mut params = params.clone();
                        let mut hosts = Vec::new();
                        if l.kind == LayerKind::Udp4 {
                            let (ip, peer_ip, port) = match addressing {
                                Addressing::Netns => (
                                    p.addr4.unwrap_or(Ipv4Addr::UNSPECIFIED),
                                    p.peer_addr4.unwrap_or(Ipv4Addr::UNSPECIFIED),
                                    params
                                        .iter()
                                        .find(|(k, _)| k == "port")
                                        .map_or_else(|| "3435".to_string(), |(_, v)| v.clone()),
                                ),
                                Addressing::Loopback => {
                                    let port = (LOOPBACK_PORT + k as u16).to_string();
                                    params.retain(|(k, _)| k != "port");
                                    params.insert(0, ("port".into(), port.clone()));
                                    (
                                        loopback(node_index(me)),
                                        loopback(node_index(&p.peer)),
                                        port,
                                    )
                                }
                            };
                            params.insert(0, ("ip".into(), ip.to_string()));
                            let names = reg_of(&p.peer, &layer);
                            if !names.is_empty() {
                                hosts.push(format!("{peer_ip}:{port} {}", names.join(" ")));
                            }
                        } else {
                            params.insert(0, ("dev".into(), p.ifname.clone()));
                        }
                        ipcps.push(IpcpPlan {
                            node: me.clone(),
                            name: ipcp_name(&layer, me),
                            kind: l.kind,
                            layer: layer.clone(),
                            layer_index: li,
                            params,
                            hosts,
                            enrol: None,
                            conn: Vec::new(),
                            reg: reg_of(me, &layer),
                        });
                    }
                }
                continue;
            }
            let order = enrol_order(l).unwrap_or_default();
            let mut up: Vec<String> = Vec::new();
            for (n, via) in order {
                let conn = l
                    .adjacencies
                    .iter()
                    .filter_map(|(a, b)| {
                        let peer = if *a == n {
                            b
                        } else if *b == n {
                            a
                        } else {
                            return None;
                        };
                        up.contains(peer).then(|| ipcp_name(&l.name, peer))
                    })
                    .collect();
                ipcps.push(IpcpPlan {
                    node: n.clone(),
                    name: ipcp_name(&l.name, &n),
                    kind: l.kind,
                    layer: l.name.clone(),
                    layer_index: li,
                    params: if via.is_none() {
                        params.clone()
                    } else {
                        Vec::new()
                    },
                    hosts: Vec::new(),
                    enrol: via.map(|v| ipcp_name(&l.name, &v)),
                    conn,
                    reg: reg_of(&n, &l.name),
                });
                up.push(n);
            }
        }
        Plan {
            ipcps,
            binds: net
                .names
                .iter()
                .filter(|s| s.prog.is_some())
                .cloned()
                .collect(),
        }
    }

    /// The IPCPs of `node`, in build order.
    pub fn of_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a IpcpPlan> + 'a {
        self.ipcps.iter().filter(move |p| p.node == node)
    }
}

/// Loopback address of node `i`.
pub fn loopback(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, (i % 250 + 1) as u8)
}

/// The layer instances below unicast layer `li` that `node` is in.
fn lower_instances(net: &Network, li: usize, node: &str) -> Vec<String> {
    let t = &net.topology;
    let mut out = Vec::new();
    for &k in &net.layers[li].over {
        let lo = &net.layers[k];
        if lo.kind.is_shim() {
            for &x in &lo.links {
                if t.links[x].a == node || t.links[x].b == node {
                    out.push(instance(&lo.name, x));
                }
            }
        } else if lo.nodes.iter().any(|n| n == node) {
            out.push(lo.name.clone());
        }
    }
    out
}

/// A parameter value as `irm` takes it (ethertypes in hex).
fn value(key: &str, v: &toml::Value) -> String {
    match v {
        toml::Value::Integer(i) if key == "ethertype" => format!("0x{i:04X}"),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `irm ipcp bootstrap` keyword of an `irmd.toml` parameter key.
pub fn irm_keyword(key: &str) -> &str {
    match key {
        "addr_size" => "addr",
        "eid_size" => "eid",
        "max_ttl" => "ttl",
        "addr-auth" => "addr_auth",
        k => k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIAMOND: &str = r#"
[[node]]
name = "a"
[[node]]
name = "b"
[[node]]
name = "c"
[[node]]
name = "d"
[[link]]
a = "a"
b = "b"
[[link]]
a = "a"
b = "c"
[[link]]
a = "b"
b = "d"
[[link]]
a = "c"
b = "d"
[[layer]]
name = "eth"
type = "eth-dix"
[[layer]]
name = "net"
type = "unicast"
over = ["eth"]
params = { routing = "lfa", max_ttl = 10 }
[[name]]
name = "oping.{node}"
nodes = ["*"]
layer = "net"
prog = "oping"
args = "-l"
"#;

    #[test]
    fn diamond_plan() {
        let net = Network::from_toml(DIAMOND, "d.toml").expect("valid");
        let plan = Plan::new(&net, Addressing::Netns);
        assert_eq!(plan.ipcps.len(), 8 + 4);
        let e = &plan.ipcps[0];
        assert_eq!((e.name.as_str(), e.layer.as_str()), ("eth0-a", "eth0"));
        assert_eq!(e.params, vec![("dev".to_string(), "v0-b".to_string())]);
        assert_eq!(e.reg, vec!["net-a", "net"]);
        let uni: Vec<&IpcpPlan> = plan.ipcps.iter().filter(|p| p.layer == "net").collect();
        assert_eq!(uni[0].name, "net-a");
        assert_eq!(uni[0].enrol, None);
        assert_eq!(uni[0].params[0], ("routing".into(), "lfa".into()));
        assert_eq!(uni[3].name, "net-d");
        assert_eq!(uni[3].enrol.as_deref(), Some("net-b"));
        assert_eq!(uni[3].conn, vec!["net-b", "net-c"]);
        assert_eq!(uni[3].reg, vec!["oping.d"]);
        assert_eq!(plan.binds.len(), 4);
    }

    #[test]
    fn a_broadcast_layer_is_a_spanning_tree_connecting_dt() {
        let text =
            format!("{DIAMOND}[[layer]]\nname = \"bc\"\ntype = \"broadcast\"\nover = [\"eth\"]\n");
        let net = Network::from_toml(&text, "d.toml").expect("valid");
        let bc = &net.layers[2];
        assert_eq!(bc.kind, LayerKind::Broadcast);
        // Four links in a cycle, three connections: a tree from the bootstrap node.
        assert_eq!(
            bc.adjacencies,
            vec![
                ("a".to_string(), "b".to_string()),
                ("a".to_string(), "c".to_string()),
                ("b".to_string(), "d".to_string())
            ]
        );
        let plan = Plan::new(&net, Addressing::Netns);
        let b: Vec<&IpcpPlan> = plan.ipcps.iter().filter(|p| p.layer == "bc").collect();
        assert_eq!(b.len(), 4);
        assert_eq!((b[0].name.as_str(), b[0].enrol.as_deref()), ("bc-a", None));
        assert_eq!(b[3].enrol.as_deref(), Some("bc-b"));
        assert_eq!(b[3].conn, vec!["bc-b"]);
        assert!(b.iter().all(|p| p.autobind() && p.params.is_empty()));
        let e = &plan.ipcps[0];
        assert_eq!(e.reg, vec!["net-a", "net", "bc-a", "bc"]);
        assert_eq!(LayerKind::Broadcast.components(), ["dt"]);
    }

    #[test]
    fn udp_on_loopback_has_hosts() {
        let text = DIAMOND.replace("eth-dix", "udp4");
        let net = Network::from_toml(&text, "d.toml").expect("valid");
        let plan = Plan::new(&net, Addressing::Loopback);
        let u = &plan.ipcps[1];
        assert_eq!(u.name, "eth0-b");
        assert_eq!(u.params[0], ("ip".into(), "127.0.0.2".into()));
        assert_eq!(u.params[1], ("port".into(), "3500".into()));
        assert_eq!(u.hosts, vec!["127.0.0.1:3500 net-a net"]);
        let plan = Plan::new(&net, Addressing::Netns);
        assert_eq!(plan.ipcps[1].hosts, vec!["169.254.1.1:3435 net-a net"]);
    }
}
