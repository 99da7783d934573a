//! Stand up a broadcast layer over a lab: a broadcast IPCP per node, enrolled breadth-first
//! from the first node over the links' eth-dix layers (see [`crate::unicast::eth_links`]) or
//! over a layer every node is in, each connected (`dt`) to the member it enrolled through
//! only. The connections so form a spanning tree of the lab's links: a broadcast layer must
//! be loop-free, and a lab with cycles would otherwise flood packets around them forever.

use crate::unicast::{ipcp_name, irm_retry, lower_layers};
use crate::{Lab, Result};
use std::collections::{HashMap, VecDeque};

/// The broadcast layer `layer` on every node, over the layer `lower` (a layer every node is
/// in), or over the links' eth-dix layers if `lower` is None. Returns each node's parent in
/// the tree (the root has none).
pub fn broadcast_layer(
    lab: &Lab,
    layer: &str,
    lower: Option<&str>,
) -> Result<HashMap<String, String>> {
    let nodes: Vec<String> = lab.nodes().iter().map(|n| n.name().to_string()).collect();
    let mut parent: HashMap<String, String> = HashMap::new();
    let Some(root) = nodes.first().cloned() else {
        return Ok(parent);
    };
    for n in &nodes {
        let node = lab.node(n);
        let lowers = lower_layers(lab, n, lower);
        for l in lowers {
            node.irm_ok(&format!("name reg {} layer {l}", ipcp_name(layer, n)))?;
        }
    }
    let mut queue = VecDeque::from([root.clone()]);
    let mut seen = std::collections::HashSet::from([root.clone()]);
    while let Some(n) = queue.pop_front() {
        let node = lab.node(&n);
        let me = ipcp_name(layer, &n);
        match parent.get(&n) {
            None => {
                node.irm_ok(&format!(
                    "ipcp bootstrap type broadcast name {me} layer {layer} autobind"
                ))?;
            }
            Some(p) => {
                let via = ipcp_name(layer, p);
                irm_retry(
                    node,
                    &format!("ipcp enroll name {me} type broadcast dst {via} autobind"),
                )?;
                irm_retry(
                    node,
                    &format!("ipcp connect name {me} component dt dst {via}"),
                )?;
            }
        }
        for p in lab.topology().ports(&n) {
            if seen.insert(p.peer.clone()) {
                parent.insert(p.peer.clone(), n.clone());
                queue.push_back(p.peer);
            }
        }
    }
    Ok(parent)
}
