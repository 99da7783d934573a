//! Stand up a unicast layer over a lab: one eth-dix layer per link (the link's own Ethernet),
//! a unicast IPCP per node, enrolled breadth-first from the first node, with management and
//! data transfer adjacencies over every link.

use crate::{Lab, Node, Result};
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// How long an enrollment or connection is retried while the layers below converge (a
/// member's name becomes findable only once the lower layer's directory has it).
const JOIN_PATIENCE: Duration = Duration::from_secs(30);

/// Run `irm args` until it succeeds or [`JOIN_PATIENCE`] runs out, as `irmd --config` does
/// with enrollments and connections.
pub(crate) fn irm_retry(node: &Node, args: &str) -> Result<String> {
    let end = Instant::now() + JOIN_PATIENCE;
    let mut wait = Duration::from_millis(200);
    loop {
        match node.irm_ok(args) {
            Ok(out) => return Ok(out),
            Err(e) if Instant::now() + wait > end => return Err(e),
            Err(_) => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// The name of the unicast IPCP of `node` in layer `layer`.
pub fn ipcp_name(layer: &str, node: &str) -> String {
    format!("{layer}-{node}")
}

/// The eth-dix layer of link `i`.
pub(crate) fn eth_layer(i: usize) -> String {
    format!("eth{i}")
}

/// The layers node `n` joins a layer over: `lower`, or else the eth-dix layer of each of
/// its links (see [`eth_links`]).
pub(crate) fn lower_layers(lab: &Lab, n: &str, lower: Option<&str>) -> Vec<String> {
    match lower {
        Some(l) => vec![l.to_string()],
        None => lab
            .topology()
            .ports(n)
            .into_iter()
            .map(|p| eth_layer(p.link))
            .collect(),
    }
}

/// Bootstrap an eth-dix layer on every link of the lab (call once per lab).
pub fn eth_links(lab: &Lab) -> Result<()> {
    for node in lab.nodes() {
        for p in lab.topology().ports(node.name()) {
            node.irm_ok(&format!(
                "ipcp bootstrap type eth-dix name e{} layer {} dev {}",
                p.link,
                eth_layer(p.link),
                p.ifname
            ))?;
        }
    }
    Ok(())
}

/// Over the eth-dix layers of [`eth_links`], the unicast layer `layer` with bootstrap
/// parameters `params` (e.g. `routing lfa`) on every node.
pub fn unicast_over_eth(lab: &Lab, layer: &str, params: &str) -> Result<()> {
    unicast_layer(lab, layer, params, None)
}

/// The unicast layer `layer` on every node, over the layer `lower` (a layer every node is
/// in), with adjacencies along the lab's links; over the links' eth-dix layers if `lower` is
/// None.
pub fn unicast_layer(lab: &Lab, layer: &str, params: &str, lower: Option<&str>) -> Result<()> {
    let nodes: Vec<String> = lab.nodes().iter().map(|n| n.name().to_string()).collect();
    let Some(root) = nodes.first().cloned() else {
        return Ok(());
    };
    for n in &nodes {
        let node = lab.node(n);
        let lowers = lower_layers(lab, n, lower);
        for l in lowers {
            node.irm_ok(&format!("name reg {} layer {l}", ipcp_name(layer, n)))?;
            node.irm_ok(&format!("name reg {layer} layer {l}"))?;
        }
    }
    // Breadth-first from the root: each node enrolls through a member it has a link to,
    // then connects to every neighbour already in the layer.
    let mut up: HashSet<String> = HashSet::new();
    let mut queue = VecDeque::from([root.clone()]);
    let mut seen: HashSet<String> = HashSet::from([root.clone()]);
    while let Some(n) = queue.pop_front() {
        let node = lab.node(&n);
        let me = ipcp_name(layer, &n);
        let peers: Vec<String> = lab
            .topology()
            .ports(&n)
            .into_iter()
            .map(|p| p.peer)
            .collect();
        if n == root {
            node.irm_ok(&format!(
                "ipcp bootstrap type unicast name {me} layer {layer} {params} autobind"
            ))?;
        } else {
            let via = peers
                .iter()
                .find(|p| up.contains(*p))
                .cloned()
                .unwrap_or_default();
            irm_retry(
                node,
                &format!(
                    "ipcp enroll name {me} dst {} autobind",
                    ipcp_name(layer, &via)
                ),
            )?;
        }
        for p in &peers {
            if up.contains(p) {
                for comp in ["mgmt", "dt"] {
                    irm_retry(
                        node,
                        &format!(
                            "ipcp connect name {me} component {comp} dst {}",
                            ipcp_name(layer, p)
                        ),
                    )?;
                }
            }
        }
        up.insert(n.clone());
        for p in peers {
            if seen.insert(p.clone()) {
                queue.push_back(p);
            }
        }
    }
    Ok(())
}
