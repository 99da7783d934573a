//! Listings of `irm`: aligned tables for people, JSON arrays for scripts.

use super::parse::IpcpFilter;
use o7s::ctrl::msg::{FlowInfo, IpcpInfo, NameInfo};
use serde_json::{json, Value};

/// Columns separated by two spaces, each as wide as its widest cell; no trailing blanks.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
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

fn list<T: ToString>(v: &[T]) -> String {
    if v.is_empty() {
        "-".to_string()
    } else {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Does this IPCP pass the filters of `irm ipcp list`?
pub fn keep(f: &IpcpFilter, i: &IpcpInfo) -> bool {
    f.kind.is_none_or(|k| k == i.kind)
        && f.name.as_ref().is_none_or(|n| *n == i.name)
        && f.layer.as_ref().is_none_or(|l| i.layer.as_ref() == Some(l))
}

pub fn ipcps_table(v: &[IpcpInfo]) -> String {
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.kind.to_string(),
                i.pid.to_string(),
                i.layer.clone().unwrap_or_else(|| "-".into()),
                i.state.clone(),
            ]
        })
        .collect();
    table(&["NAME", "TYPE", "PID", "LAYER", "STATE"], &rows)
}

pub fn ipcps_json(v: &[IpcpInfo]) -> Value {
    Value::Array(
        v.iter()
            .map(|i| {
                json!({
                    "name": i.name,
                    "type": i.kind.name(),
                    "pid": i.pid,
                    "layer": i.layer,
                    "state": i.state,
                })
            })
            .collect(),
    )
}

pub fn names_table(v: &[NameInfo]) -> String {
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|n| {
            vec![
                n.name.clone(),
                n.lb.name().to_string(),
                list(&n.layers),
                list(&n.ipcps),
                list(&n.programs),
                list(&n.processes),
            ]
        })
        .collect();
    table(
        &["NAME", "LB", "LAYERS", "IPCPS", "PROGRAMS", "PROCESSES"],
        &rows,
    )
}

pub fn names_json(v: &[NameInfo]) -> Value {
    Value::Array(
        v.iter()
            .map(|n| {
                json!({
                    "name": n.name,
                    "lb": n.lb.name(),
                    "layers": n.layers,
                    "ipcps": n.ipcps,
                    "programs": n.programs,
                    "processes": n.processes,
                })
            })
            .collect(),
    )
}

/// The IPCPs by pid, to name the IPCP processes that own flows (a unicast IPCP allocates
/// and accepts flows in the layers below it, as any application does).
pub type IpcpPids = std::collections::HashMap<u32, String>;

pub fn ipcp_pids(v: &[IpcpInfo]) -> IpcpPids {
    v.iter().map(|i| (i.pid, i.name.clone())).collect()
}

/// A flow's end as `irm flow list` shows it: `ipcp` for the IPCP that carries the flow
/// (pid 0), `NAME(PID)` for an IPCP process that uses it, else the pid.
fn owner(p: u32, ipcps: &IpcpPids) -> String {
    match (p, ipcps.get(&p)) {
        (0, _) => "ipcp".to_string(),
        (p, Some(n)) => format!("{n}({p})"),
        (p, None) => p.to_string(),
    }
}

pub fn flows_table(v: &[FlowInfo], ipcps: &IpcpPids) -> String {
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|f| {
            vec![
                f.flow_id.to_string(),
                f.name.clone(),
                f.layer.clone(),
                f.qos.clone(),
                owner(f.alloc_pid, ipcps),
                owner(f.accept_pid, ipcps),
                f.state.clone(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ID",
            "NAME",
            "LAYER",
            "QOS",
            "ALLOC-PID",
            "ACCEPT-PID",
            "STATE",
        ],
        &rows,
    );
    let frct: Vec<Vec<String>> = v
        .iter()
        .flat_map(|f| f.frct.iter().map(move |e| (f.flow_id, e)))
        .map(|(id, e)| {
            let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
            vec![
                id.to_string(),
                owner(e.pid, ipcps),
                e.retransmissions.to_string(),
                e.fast_retransmissions.to_string(),
                e.duplicates.to_string(),
                ms(e.srtt_us),
                ms(e.rto_us),
                e.window.to_string(),
                e.in_flight.to_string(),
                format!("{}/{}", e.rendezvous_sent, e.rendezvous_received),
                e.skipped.to_string(),
            ]
        })
        .collect();
    if !frct.is_empty() {
        out.push('\n');
        out += &table(
            &[
                "FRCT",
                "END",
                "RETRANSMITTED",
                "FAST",
                "DUPLICATES",
                "RTT-MS",
                "RTO-MS",
                "WINDOW",
                "IN-FLIGHT",
                "RENDEZVOUS",
                "SKIPPED",
            ],
            &frct,
        );
    }
    out
}

/// As the table; `alloc_ipcp`/`accept_ipcp` name the IPCP whose process that end is (null
/// for an application).
pub fn flows_json(v: &[FlowInfo], ipcps: &IpcpPids) -> Value {
    let name = |p: u32| ipcps.get(&p).filter(|_| p != 0).cloned();
    Value::Array(
        v.iter()
            .map(|f| {
                json!({
                    "flow_id": f.flow_id,
                    "name": f.name,
                    "layer": f.layer,
                    "qos": f.qos,
                    "alloc_pid": f.alloc_pid,
                    "accept_pid": f.accept_pid,
                    "alloc_ipcp": name(f.alloc_pid),
                    "accept_ipcp": name(f.accept_pid),
                    "state": f.state,
                    "frct": f.frct,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use o7s::ctrl::msg::{FrctInfo, IpcpKind, LoadBalance};

    fn ipcps() -> Vec<IpcpInfo> {
        vec![
            IpcpInfo {
                name: "lo".into(),
                kind: IpcpKind::Local,
                pid: 1234,
                layer: Some("lo".into()),
                state: "operational".into(),
            },
            IpcpInfo {
                name: "unicast-1".into(),
                kind: IpcpKind::Unicast,
                pid: 99,
                layer: None,
                state: "init".into(),
            },
        ]
    }

    #[test]
    fn ipcp_table_is_aligned() {
        assert_eq!(
            ipcps_table(&ipcps()),
            "\
NAME       TYPE     PID   LAYER  STATE
lo         local    1234  lo     operational
unicast-1  unicast  99    -      init
"
        );
        assert_eq!(ipcps_table(&[]), "NAME  TYPE  PID  LAYER  STATE\n");
    }

    #[test]
    fn ipcp_json_and_filters() {
        let v = ipcps_json(&ipcps());
        assert_eq!(v[0]["pid"], 1234);
        assert_eq!(v[0]["type"], "local");
        assert_eq!(v[1]["layer"], Value::Null);
        let all = ipcps();
        let f = IpcpFilter {
            kind: Some(IpcpKind::Unicast),
            ..Default::default()
        };
        assert_eq!(all.iter().filter(|i| keep(&f, i)).count(), 1);
        let f = IpcpFilter {
            layer: Some("lo".into()),
            ..Default::default()
        };
        assert_eq!(all.iter().filter(|i| keep(&f, i)).count(), 1);
        let f = IpcpFilter {
            name: Some("nope".into()),
            ..Default::default()
        };
        assert_eq!(all.iter().filter(|i| keep(&f, i)).count(), 0);
        assert_eq!(
            all.iter()
                .filter(|i| keep(&IpcpFilter::default(), i))
                .count(),
            2
        );
    }

    #[test]
    fn names_and_flows() {
        let n = vec![NameInfo {
            name: "oping.server".into(),
            lb: LoadBalance::RoundRobin,
            programs: vec!["oping".into()],
            processes: vec![10, 11],
            ipcps: vec![],
            layers: vec!["lo".into()],
        }];
        assert_eq!(
            names_table(&n),
            "\
NAME          LB           LAYERS  IPCPS  PROGRAMS  PROCESSES
oping.server  round-robin  lo      -      oping     10,11
"
        );
        assert_eq!(names_json(&n)[0]["processes"][1], 11);
        let f = vec![FlowInfo {
            flow_id: 7,
            name: "oping.server".into(),
            layer: "lo".into(),
            qos: "raw".into(),
            alloc_pid: 10,
            accept_pid: 0,
            state: "allocated".into(),
            frct: Vec::new(),
        }];
        let none = IpcpPids::new();
        assert_eq!(
            flows_table(&f, &none),
            "\
ID  NAME          LAYER  QOS  ALLOC-PID  ACCEPT-PID  STATE
7   oping.server  lo     raw  10         ipcp        allocated
"
        );
        let j = flows_json(&f, &none);
        assert_eq!(j[0]["flow_id"], 7);
        assert_eq!(j[0]["accept_pid"], 0);
        assert_eq!(j[0]["alloc_ipcp"], Value::Null);
    }

    #[test]
    fn flows_with_frct_get_a_second_table() {
        let end = |pid, retransmissions| FrctInfo {
            pid,
            retransmissions,
            srtt_us: 1250,
            rto_us: 2000,
            window: 256,
            rendezvous_sent: 1,
            ..FrctInfo::default()
        };
        let f = vec![FlowInfo {
            flow_id: 7,
            name: "srv".into(),
            layer: "lo".into(),
            qos: "data".into(),
            alloc_pid: 10,
            accept_pid: 11,
            state: "allocated".into(),
            frct: vec![end(10, 3), end(11, 0)],
        }];
        assert_eq!(
            flows_table(&f, &IpcpPids::new()),
            "\
ID  NAME  LAYER  QOS   ALLOC-PID  ACCEPT-PID  STATE
7   srv   lo     data  10         11          allocated

FRCT  END  RETRANSMITTED  FAST  DUPLICATES  RTT-MS  RTO-MS  WINDOW  IN-FLIGHT  RENDEZVOUS  SKIPPED
7     10   3              0     0           1.250   2.000   256     0          1/0         0
7     11   0              0     0           1.250   2.000   256     0          1/0         0
"
        );
        let j = flows_json(&f, &IpcpPids::new());
        assert_eq!(j[0]["frct"][0]["retransmissions"], 3);
        assert_eq!(j[0]["frct"][1]["pid"], 11);
    }

    #[test]
    fn flows_of_ipcp_processes_name_the_ipcp() {
        let f = vec![FlowInfo {
            flow_id: 9,
            name: "net".into(),
            layer: "eth0".into(),
            qos: "raw".into(),
            alloc_pid: 0,
            accept_pid: 99,
            state: "allocated".into(),
            frct: Vec::new(),
        }];
        let pids = ipcp_pids(&ipcps());
        assert_eq!(
            flows_table(&f, &pids),
            "\
ID  NAME  LAYER  QOS  ALLOC-PID  ACCEPT-PID     STATE
9   net   eth0   raw  ipcp       unicast-1(99)  allocated
"
        );
        let j = flows_json(&f, &pids);
        assert_eq!(j[0]["accept_pid"], 99);
        assert_eq!(j[0]["accept_ipcp"], "unicast-1");
        assert_eq!(j[0]["alloc_ipcp"], Value::Null);
    }
}
