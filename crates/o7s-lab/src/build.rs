//! Bring a [`Plan`] up on a running [`Lab`] with `irm` commands, front to back: programs
//! bound, shim IPCPs bootstrapped with their registrations, then each unicast layer in
//! enrollment order (enroll, connect, register), and wait until routing has converged.

use std::time::Duration;

use crate::error::{LabError, Result};
use crate::plan::{irm_keyword, Plan};
use crate::spec::LayerKind;
use crate::unicast::irm_retry;
use crate::{Lab, Node};

/// Build `plan` on `lab`; `say` gets one line per step worth telling.
pub fn build(lab: &Lab, plan: &Plan, say: &mut dyn FnMut(&str)) -> Result<()> {
    for b in &plan.binds {
        let node = lab.node(&b.node);
        let prog = b.prog.as_deref().unwrap_or_default();
        let cmd = match &b.args {
            Some(a) => format!("bind program {prog} name {} auto -- {a}", b.name),
            None => format!("bind program {prog} name {}", b.name),
        };
        node.irm_ok(&cmd)?;
    }
    let mut layer = String::new();
    for p in &plan.ipcps {
        if !p.kind.is_shim() && p.layer != layer {
            say(&format!("layer {} ({})", p.layer, p.kind.as_str()));
        }
        layer = p.layer.clone();
        let node = lab.node(&p.node);
        let mut params: String = p
            .params
            .iter()
            .map(|(k, v)| format!(" {} {v}", irm_keyword(k)))
            .collect();
        if !p.hosts.is_empty() {
            let file = node.rundir().join(format!("hosts-{}", p.layer));
            std::fs::write(&file, p.hosts.join("\n") + "\n").map_err(|source| LabError::Io {
                what: "writing",
                path: file.clone(),
                source,
            })?;
            params.push_str(&format!(" hosts {}", file.display()));
        }
        let auto = if p.autobind() { " autobind" } else { "" };
        match &p.enrol {
            None => {
                node.irm_ok(&format!(
                    "ipcp bootstrap type {} name {} layer {}{params}{auto}",
                    p.kind.as_str(),
                    p.name,
                    p.layer
                ))?;
            }
            Some(via) => {
                irm_retry(
                    node,
                    &format!(
                        "ipcp enroll name {} type {} dst {via}{auto}",
                        p.name,
                        p.kind.as_str()
                    ),
                )?;
            }
        }
        for dst in &p.conn {
            for comp in p.kind.components() {
                irm_retry(
                    node,
                    &format!("ipcp connect name {} component {comp} dst {dst}", p.name),
                )?;
            }
        }
        if p.kind.is_shim() {
            for r in &p.reg {
                node.irm_ok(&format!("name reg {r} layer {}", p.layer))?;
            }
        }
        // A unicast layer's names go into its directory once every member has joined: a
        // name stored while the layer is still growing may sit only on the first members.
        let last = plan.ipcps.iter().rposition(|q| q.layer == p.layer);
        if last.is_some_and(|i| std::ptr::eq(&plan.ipcps[i], p)) && p.kind == LayerKind::Unicast {
            // ... and once routing has converged, so the directory's stores arrive.
            let missing = converge(lab, plan, Some(&p.layer), CONVERGE);
            if !missing.is_empty() {
                say(&format!(
                    "warning: after {CONVERGE:?} these members still miss routes: {}",
                    missing.join(", ")
                ));
            }
            for q in plan.ipcps.iter().filter(|q| q.layer == p.layer) {
                for r in &q.reg {
                    lab.node(&q.node)
                        .irm_ok(&format!("name reg {r} layer {}", q.layer))?;
                }
            }
        }
    }
    Ok(())
}

/// How long to wait for a unicast layer's routing to converge.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// Wait until every unicast IPCP of `plan` (of `layer` only, if given) has a route to every
/// other member of its layer, up to `limit`. Returns the IPCPs still missing routes
/// (empty: converged).
pub fn converge(lab: &Lab, plan: &Plan, layer: Option<&str>, limit: Duration) -> Vec<String> {
    let uni: Vec<_> = plan
        .ipcps
        .iter()
        .filter(|p| p.kind == LayerKind::Unicast && layer.is_none_or(|l| p.layer == l))
        .collect();
    let mut missing = Vec::new();
    crate::wait_for(limit, || {
        missing = uni
            .iter()
            .filter(|p| {
                let members = uni.iter().filter(|q| q.layer == p.layer).count();
                routes(lab.node(&p.node), &p.name) + 1 < members
            })
            .map(|p| p.name.clone())
            .collect();
        if !missing.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
        missing.is_empty()
    });
    missing
}

/// The number of destinations in IPCP `name`'s routing table.
fn routes(node: &Node, name: &str) -> usize {
    let Ok(out) = node.irm_ok(&format!("ipcp show {name} --json")) else {
        return 0;
    };
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v.as_object()
        .map_or(0, |o| o.keys().filter(|k| k.starts_with("route ")).count())
}
