//! `o7s-lab demo`: the diamond example (four nodes, a unicast layer over Ethernet links) in
//! network namespaces, with `oping` and `operf` across the unicast layer, its status and
//! its picture; then everything is removed again. Without root the same network runs as
//! four IRMds on this host, with udp4 on 127.0.0.x in place of Ethernet.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::cli::{self, UpOptions};
use crate::error::{LabError, Result};
use crate::saved::Saved;

/// The network the demo builds (`examples/diamond.toml`).
pub const DIAMOND: &str = include_str!("../../../examples/diamond.toml");

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run the demo, printing as it goes. Returns the path of the picture.
pub fn run() -> Result<PathBuf> {
    let started = Instant::now();
    let root = crate::is_root();
    let host_only = !root;
    let name = format!("demo-{}", std::process::id());
    let work = tempfile::Builder::new()
        .prefix("o7s-demo-")
        .tempdir()
        .map_err(|source| LabError::Io {
            what: "creating a temporary directory in",
            path: std::env::temp_dir(),
            source,
        })?;
    let file = work.path().join("diamond.toml");
    std::fs::write(&file, DIAMOND).map_err(|source| LabError::Io {
        what: "writing",
        path: file.clone(),
        source,
    })?;
    if root {
        println!("== o7s demo: 4 nodes in network namespaces, Ethernet (eth-dix) links, a unicast layer over them");
    } else {
        println!(
            "== o7s demo WITHOUT ROOT: network namespaces need root, so the 4 nodes are 4 IRMds on"
        );
        println!("   this host (own run directories), joined by udp4 layers on 127.0.0.x instead of Ethernet;");
        println!("   run as root for the namespace version");
    }
    let shim = if root { "eth-dix" } else { "udp4" };
    println!("{}", indent(&DIAMOND_SKETCH.replace("eth-dix", shim)));
    let opts = UpOptions {
        dir: None,
        name: Some(name),
        host_only,
    };
    let rec = cli::up(&file, &opts, &mut |s| println!("   {s}"))?;
    let result = show(&rec, work.path());
    let removed = cli::down(&rec.dir);
    let picture = result?;
    removed?;
    println!(
        "== done in {:.1} s; the lab is gone (namespaces, interfaces, processes, run directories)",
        started.elapsed().as_secs_f64()
    );
    // The picture stays; the rest of the work directory goes.
    // Another user's copy (say root's, from an earlier run) may be in the way: then one
    // named after this user.
    let mut keep = std::env::temp_dir().join("o7s-demo.svg");
    if std::fs::copy(&picture, &keep).is_err() {
        let uid = rustix::process::getuid().as_raw();
        keep = std::env::temp_dir().join(format!("o7s-demo-{uid}.svg"));
        std::fs::copy(&picture, &keep).map_err(|source| LabError::Io {
            what: "writing",
            path: keep.clone(),
            source,
        })?;
    }
    println!("== picture of the network: {}", keep.display());
    Ok(keep)
}

const DIAMOND_SKETCH: &str = "      b
     / \\        layer net (unicast, lfa) over one eth-dix layer per link;
    a   d       oping.X and operf.d servers bound and registered in net
     \\ /
      c";

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("   {l}\n")).collect()
}

fn run_in(rec: &Saved, node: &str, argv: &[&str]) -> Result<String> {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let mut c = cli::exec(rec, node, &argv)?;
    c.stdin(std::process::Stdio::null());
    println!("$ o7s-lab exec {node} -- {}", argv.join(" "));
    let out = c.output().map_err(|source| LabError::Spawn {
        cmd: argv.join(" "),
        source,
    })?;
    let t = text(&out);
    print!("{}", indent(&t));
    if !out.status.success() {
        return Err(LabError::Msg(format!("{} failed on node {node}", argv[0])));
    }
    Ok(t)
}

/// Pings, a bandwidth test, the status and the picture of the running demo lab.
fn show(rec: &Saved, work: &std::path::Path) -> Result<PathBuf> {
    // The directory (a DHT) may take a moment to hold names registered just now.
    let ready = crate::wait_for(Duration::from_secs(15), || {
        cli::exec(
            rec,
            "a",
            &[
                "oping".into(),
                "-n".into(),
                "oping.d".into(),
                "-c".into(),
                "1".into(),
            ],
        )
        .ok()
        .and_then(|mut c| c.stdin(std::process::Stdio::null()).output().ok())
        .is_some_and(|o| o.status.success())
    });
    if !ready {
        println!("   (oping.d is not reachable yet after 15 s; trying anyway)");
    }
    println!("== a pings d across the unicast layer (two hops: through b or c)");
    run_in(
        rec,
        "a",
        &["oping", "-n", "oping.d", "-c", "10", "-i", "50ms"],
    )?;
    println!("== operf from a to d: 3 s at 100 Mbit/s, 1400-byte packets");
    run_in(
        rec,
        "a",
        &[
            "operf", "-n", "operf.d", "-d", "3s", "-r", "100M", "-s", "1400",
        ],
    )?;
    println!("== status (o7s-lab status)");
    print!("{}", indent(&cli::status(rec, false)?));
    let net = cli::network_of(rec)?;
    let picture = work.join("diamond.svg");
    crate::graph::write(&net, "o7s demo: diamond", &picture)?;
    Ok(picture)
}
