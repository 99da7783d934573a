//! `o7s-lab status`: per node, its IPCPs (type, layer, state, address, neighbours, routes)
//! and its flows, read with `irm ipcp list --json`, `irm ipcp show NAME --json` and
//! `irm flow list --json` inside the node. Only reads.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::node::Node;

/// Columns separated by two spaces, each as wide as its widest cell, indented.
fn table(indent: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let head: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for r in std::iter::once(&head).chain(rows) {
        let mut line = indent.to_string();
        for (i, (c, w)) in r.iter().zip(&width).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(c);
            line.extend(std::iter::repeat_n(' ', w - c.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn irm_json(node: &Node, args: &str) -> Value {
    node.irm_ok(args)
        .ok()
        .and_then(|o| serde_json::from_str(&o).ok())
        .unwrap_or(Value::Null)
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// What a node reports: `{"node", "ipcps": [{.., "show": {..}}], "flows": [..]}`.
pub fn node_json(node: &Node) -> Value {
    let mut ipcps = irm_json(node, "ipcp list --json");
    if let Some(list) = ipcps.as_array_mut() {
        for i in list {
            let name = i["name"].as_str().unwrap_or_default().to_string();
            let show = irm_json(node, &format!("ipcp show {name} --json"));
            i["show"] = show;
        }
    }
    json!({
        "node": node.name(),
        "ipcps": ipcps,
        "flows": irm_json(node, "flow list --json"),
    })
}

/// Unicast addresses of every IPCP in `nodes` (from [`node_json`]) to their names.
pub fn addresses(nodes: &[Value]) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for v in nodes {
        for i in v["ipcps"].as_array().into_iter().flatten() {
            if let (Some(a), Some(n)) = (i["show"]["address"].as_str(), i["name"].as_str()) {
                m.insert(a.to_string(), n.to_string());
            }
        }
    }
    m
}

/// A flow's QoS in a word: `raw` (neither ordered nor reliable), `in-order` or `reliable`.
fn qos_word(q: &str) -> &'static str {
    if q.contains("loss=0") {
        "reliable"
    } else if q.contains("in_order=1") {
        "in-order"
    } else {
        "raw"
    }
}

/// The tables of one node from [`node_json`]; `names` maps unicast addresses to IPCPs.
pub fn node_text(node: &Node, v: &Value, names: &HashMap<String, String>) -> String {
    let mut out = format!(
        "node {}  ({}run directory {})\n",
        node.name(),
        if node.netns().is_empty() {
            String::new()
        } else {
            format!("namespace {}, ", node.netns())
        },
        node.rundir().display()
    );
    let Some(ipcps) = v["ipcps"].as_array() else {
        out.push_str("  irmd does not answer; see its log irmd.log in the run directory\n");
        return out;
    };
    let rows: Vec<Vec<String>> = ipcps
        .iter()
        .map(|i| {
            let show = &i["show"];
            let mut nbrs: Vec<String> = Vec::new();
            let mut routes = 0;
            if let Some(o) = show.as_object() {
                for (k, val) in o {
                    if let Some(addr) = k.strip_prefix("neighbour ") {
                        for s in strings(val) {
                            let who = s
                                .split_once(" via ")
                                .and_then(|(_, r)| r.split_whitespace().next())
                                .or(names.get(addr).map(String::as_str))
                                .unwrap_or(addr)
                                .to_string();
                            if !nbrs.contains(&who) {
                                nbrs.push(who);
                            }
                        }
                    }
                    if k.starts_with("route ") {
                        routes += 1;
                    }
                }
            }
            let dash = |s: String| if s.is_empty() { "-".to_string() } else { s };
            let is_uni = i["type"] == "unicast";
            vec![
                i["name"].as_str().unwrap_or("?").into(),
                i["type"].as_str().unwrap_or("?").into(),
                i["layer"].as_str().unwrap_or("-").into(),
                i["state"].as_str().unwrap_or("?").into(),
                show["address"].as_str().unwrap_or("-").into(),
                dash(nbrs.join(",")),
                if is_uni {
                    routes.to_string()
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    out.push_str(&table(
        "  ",
        &[
            "IPCP",
            "TYPE",
            "LAYER",
            "STATE",
            "ADDRESS",
            "NEIGHBOURS",
            "ROUTES",
        ],
        &rows,
    ));
    let flows = v["flows"].as_array().cloned().unwrap_or_default();
    if flows.is_empty() {
        out.push_str("  no flows\n");
    } else {
        let rows: Vec<Vec<String>> = flows
            .iter()
            .map(|f| {
                let end = |ipcp: &str, pid: &str| match (f[ipcp].as_str(), f[pid].as_u64()) {
                    (Some(n), _) => n.to_string(),
                    (None, Some(0)) => "(remote)".to_string(),
                    (None, _) => format!("pid {}", f[pid]),
                };
                vec![
                    f["flow_id"].to_string(),
                    f["name"].as_str().unwrap_or("?").into(),
                    f["layer"].as_str().unwrap_or("?").into(),
                    qos_word(f["qos"].as_str().unwrap_or("")).into(),
                    end("alloc_ipcp", "alloc_pid"),
                    end("accept_ipcp", "accept_pid"),
                    f["state"].as_str().unwrap_or("?").into(),
                ]
            })
            .collect();
        out.push_str(&table(
            "  ",
            &[
                "FLOW",
                "NAME",
                "LAYER",
                "QOS",
                "ALLOCATOR",
                "ACCEPTOR",
                "STATE",
            ],
            &rows,
        ));
    }
    out
}
