//! `o7s-lab graph`: a picture of a network, drawn as SVG text by hand. Layers are stacked
//! planes as in the Ouroboros prototype's multi-layer diagrams: the links with their shim
//! layers at the bottom, each unicast layer above the layers it runs over, a node at the
//! same place in every plane, dashed lines joining a node's IPCPs across planes. Each layer
//! has its own colour. PNG goes through `rsvg-convert` when it is installed.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{LabError, Result};
use crate::spec::{instance, Network};

const COLOURS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
];
const WIDTH: f64 = 760.0;
const PLANE: f64 = 230.0;
const SKEW: f64 = 120.0;

/// Node positions in the unit square: stress majorization on hop distances (nodes as far
/// apart as the links make them), started from a circle; deterministic.
fn layout(net: &Network) -> Vec<(f64, f64)> {
    let t = &net.topology;
    let n = t.nodes.len();
    let idx = |s: &str| t.nodes.iter().position(|x| x.name == s).unwrap_or(0);
    let mut adj = vec![Vec::new(); n];
    for l in &t.links {
        let (a, b) = (idx(&l.a), idx(&l.b));
        adj[a].push(b);
        adj[b].push(a);
    }
    // Hop distances; unconnected pairs count as a little more than the longest path.
    let mut dist = vec![vec![f64::INFINITY; n]; n];
    for (s, row) in dist.iter_mut().enumerate() {
        row[s] = 0.0;
        let mut queue = std::collections::VecDeque::from([s]);
        while let Some(u) = queue.pop_front() {
            for &v in &adj[u] {
                if row[v].is_infinite() {
                    row[v] = row[u] + 1.0;
                    queue.push_back(v);
                }
            }
        }
    }
    let far = dist
        .iter()
        .flatten()
        .filter(|d| d.is_finite())
        .fold(1.0f64, |m, &d| m.max(d))
        + 1.0;
    let mut pos: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / n as f64 + std::f64::consts::PI;
            (a.cos() * far / 2.0, a.sin() * far / 2.0)
        })
        .collect();
    for _ in 0..300 {
        for i in 0..n {
            let (mut sx, mut sy, mut sw) = (0.0, 0.0, 0.0);
            for j in (0..n).filter(|&j| j != i) {
                let d = if dist[i][j].is_finite() {
                    dist[i][j]
                } else {
                    far
                };
                let w = 1.0 / (d * d);
                let (dx, dy) = (pos[i].0 - pos[j].0, pos[i].1 - pos[j].1);
                let len = (dx * dx + dy * dy).sqrt().max(1e-6);
                sx += w * (pos[j].0 + d * dx / len);
                sy += w * (pos[j].1 + d * dy / len);
                sw += w;
            }
            if sw > 0.0 {
                pos[i] = (sx / sw, sy / sw);
            }
        }
    }
    let (minx, maxx) = pos
        .iter()
        .fold((f64::MAX, f64::MIN), |m, p| (m.0.min(p.0), m.1.max(p.0)));
    let (miny, maxy) = pos
        .iter()
        .fold((f64::MAX, f64::MIN), |m, p| (m.0.min(p.1), m.1.max(p.1)));
    let norm = |v: f64, lo: f64, hi: f64| {
        if hi - lo < 1e-9 {
            0.5
        } else {
            (v - lo) / (hi - lo)
        }
    };
    pos.iter()
        .map(|&(x, y)| (norm(x, minx, maxx), norm(y, miny, maxy)))
        .collect()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The picture of `net` as an SVG document; `title` heads it.
pub fn svg(net: &Network, title: &str) -> String {
    let t = &net.topology;
    let pos = layout(net);
    let uppers: Vec<usize> = (0..net.layers.len())
        .filter(|&i| !net.layers[i].kind.is_shim())
        .collect();
    let planes = 1 + uppers.len();
    let height = 60.0 + planes as f64 * PLANE;
    // Point of node i in plane p (0 = bottom).
    let at = |p: usize, i: usize| {
        let top = 50.0 + (planes - 1 - p) as f64 * PLANE;
        let (x, y) = pos[i];
        (
            40.0 + 150.0 + x * (WIDTH - 2.0 * SKEW - 140.0) + (1.0 - y) * SKEW,
            top + 35.0 + y * (PLANE - 85.0),
        )
    };
    let idx = |s: &str| t.nodes.iter().position(|x| x.name == s).unwrap_or(0);
    let mut s = String::new();
    let w = WIDTH + 80.0;
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" viewBox="0 0 {w} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="20" y="28" font-size="16" font-weight="bold">{}</text>"#,
        esc(title)
    );
    // The planes, bottom first.
    let mut titles: Vec<(String, String)> = vec![("links".into(), "#555555".into())];
    for (k, &li) in uppers.iter().enumerate() {
        let l = &net.layers[li];
        let params: Vec<String> = l.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut label = format!("{} ({})", l.name, l.kind.as_str());
        if !params.is_empty() {
            label.push_str(&format!(" {}", params.join(" ")));
        }
        titles.push((label, COLOURS[(k + 1) % COLOURS.len()].into()));
    }
    for (p, (label, colour)) in titles.iter().enumerate() {
        let top = 50.0 + (planes - 1 - p) as f64 * PLANE;
        let (x0, x1) = (30.0, WIDTH + 50.0);
        let _ = writeln!(
            s,
            r#"<polygon points="{},{} {},{} {},{} {},{}" fill="{colour}" fill-opacity="0.06" stroke="{colour}" stroke-opacity="0.5"/>"#,
            x0 + SKEW,
            top + 10.0,
            x1,
            top + 10.0,
            x1 - SKEW,
            top + PLANE - 20.0,
            x0,
            top + PLANE - 20.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" fill="{colour}" font-weight="bold">{}</text>"#,
            x0 + 8.0,
            top + PLANE - 28.0,
            esc(label)
        );
    }
    // Dashed lines: a node's IPCPs in consecutive planes.
    for (k, &li) in uppers.iter().enumerate() {
        for n in &net.layers[li].nodes {
            let i = idx(n);
            let below = (0..=k)
                .rev()
                .find(|&b| b == 0 || net.layers[uppers[b - 1]].nodes.contains(n))
                .unwrap_or(0);
            let (a, b) = (at(below, i), at(k + 1, i));
            let _ = writeln!(
                s,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
                a.0, a.1, b.0, b.1
            );
        }
    }
    // Links, with their shim layers.
    let shims: Vec<usize> = (0..net.layers.len())
        .filter(|&i| net.layers[i].kind.is_shim())
        .collect();
    for (k, l) in t.links.iter().enumerate() {
        let (a, b) = (at(0, idx(&l.a)), at(0, idx(&l.b)));
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#555" stroke-width="2"/>"##,
            a.0, a.1, b.0, b.1
        );
        let names: Vec<String> = shims
            .iter()
            .filter(|&&si| net.layers[si].links.contains(&k))
            .map(|&si| {
                format!(
                    "{} {}",
                    instance(&net.layers[si].name, k),
                    net.layers[si].kind.as_str()
                )
            })
            .collect();
        // Labels on every link only while they fit.
        if !names.is_empty() && t.links.len() <= 12 {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#555" font-size="10" text-anchor="middle">{}</text>"##,
                (a.0 + b.0) / 2.0,
                (a.1 + b.1) / 2.0 - 4.0,
                esc(&names.join(", "))
            );
        }
    }
    // Each unicast layer's adjacencies in its plane.
    for (k, &li) in uppers.iter().enumerate() {
        let colour = COLOURS[(k + 1) % COLOURS.len()];
        for (x, y) in &net.layers[li].adjacencies {
            let (a, b) = (at(k + 1, idx(x)), at(k + 1, idx(y)));
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2.5"/>"#,
                a.0, a.1, b.0, b.1
            );
        }
    }
    // Nodes (bottom plane) and IPCPs (upper planes).
    for (i, n) in t.nodes.iter().enumerate() {
        let (x, y) = at(0, i);
        let _ = writeln!(
            s,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="11" fill="#eee" stroke="#333"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            y + 4.0,
            esc(&n.name)
        );
    }
    for (k, &li) in uppers.iter().enumerate() {
        let colour = COLOURS[(k + 1) % COLOURS.len()];
        let l = &net.layers[li];
        for n in &l.nodes {
            let (x, y) = at(k + 1, idx(n));
            let ring = if *n == l.bootstrap { "3" } else { "1.5" };
            let _ = writeln!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="9" fill="white" stroke="{colour}" stroke-width="{ring}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                y - 13.0,
                esc(&if t.nodes.len() <= 10 {
                    crate::plan::ipcp_name(&l.name, n)
                } else {
                    n.clone()
                })
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Write the picture of `net` to `out`: SVG, or PNG (by extension) through `rsvg-convert`.
pub fn write(net: &Network, title: &str, out: &Path) -> Result<()> {
    let text = svg(net, title);
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| LabError::Io { what, path, source }
    };
    match out.extension().and_then(|e| e.to_str()) {
        Some("svg") => std::fs::write(out, text).map_err(io("writing", out)),
        Some("png") => {
            let tmp = out.with_extension("svg.tmp");
            std::fs::write(&tmp, text).map_err(io("writing", &tmp))?;
            let res = std::process::Command::new("rsvg-convert")
                .arg("-o")
                .arg(out)
                .arg(&tmp)
                .output();
            let _ = std::fs::remove_file(&tmp);
            match res {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(LabError::Msg(format!(
                    "rsvg-convert failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ))),
                Err(_) => Err(LabError::Msg(
                    "PNG needs rsvg-convert, which is not installed; install it (Debian: \
                     apt-get install librsvg2-bin) or write an .svg"
                        .into(),
                )),
            }
        }
        _ => Err(LabError::Msg(format!(
            "{}: the picture's file name must end in .svg or .png",
            out.display()
        ))),
    }
}
