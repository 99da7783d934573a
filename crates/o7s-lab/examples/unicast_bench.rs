//! The unicast layer's speed and scale, on eth-dix over veths between namespaces:
//!
//! 1. oping RTT over 1 and 4 unicast hops (a line of 5 nodes) beside Linux `ping` over the
//!    same veths (IPv4 forwarding on, static routes);
//! 2. flow allocations per second across 2 hops (allocate and deallocate in a loop from 1, 4
//!    and 16 threads, and allocations alone: a batch allocated and held, then deallocated;
//!    to a server that accepts and drops), with the CPU time and context switches per
//!    allocation of every process taking part;
//! 3. routing convergence after the last enrollment and memory per node (RSS of the IRMd
//!    and its IPCPs) for random connected graphs of 10, 20 and 50 nodes (default timers).
//!
//! Needs root and release binaries:
//!
//! ```text
//! cargo build --release --workspace
//! O7S_BIN_DIR=$PWD/target/release target/release/examples/unicast_bench [--sizes 10,20,50]
//! O7S_BIN_DIR=$PWD/target/release target/release/examples/unicast_bench --alloc-only  # part 2 only
//! ```

use o7s_lab::unicast::{eth_links, ipcp_name, unicast_over_eth};
use o7s_lab::{Lab, Topology};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "unicast_bench [--scale-only | --alloc-only] [--sizes 10,20,50]
    [--threads 1,4,16] [--alloc-secs 5] [--alloc-serial 200] [--alloc-batch 1000]

  --scale-only     only part 3 (convergence and memory for --sizes nodes)
  --alloc-only     only part 2 (flow allocations across 2 hops)
  --threads        client thread counts of the allocation throughput runs (default 1,4,16;
                   --alloc-threads is the same)
  --alloc-secs     seconds per alloc + dealloc loop run (default 5)
  --alloc-serial   allocations timed one at a time (default 200)
  --alloc-batch    flows allocated and held per alloc-only run, then deallocated (default 1000)
  --alloc-one-layer  with --alloc-only: no second unicast layer (`nc`) beside `net`";

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn out(c: &mut std::process::Command) -> R<String> {
    let o = c.output()?;
    if !o.status.success() {
        return Err(format!(
            "{:?}: {}{}",
            c,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn line(n: usize) -> Topology {
    let mut t = Topology::new();
    for i in 0..n {
        t = t.node(&format!("n{i}"));
    }
    for i in 1..n {
        t = t.link(&format!("n{}", i - 1), &format!("n{i}"));
    }
    t
}

/// A connected random graph: a random spanning tree plus `extra` links, fixed seed.
fn random_graph(n: usize, extra: usize, mut seed: u64) -> Topology {
    let mut next = move |m: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % m
    };
    let mut t = Topology::new();
    for i in 0..n {
        t = t.node(&format!("r{i}"));
    }
    let mut links = std::collections::BTreeSet::new();
    for i in 1..n {
        links.insert((next(i), i));
    }
    while links.len() < n - 1 + extra {
        let (a, b) = (next(n), next(n));
        if a != b {
            links.insert((a.min(b), a.max(b)));
        }
    }
    for (a, b) in links {
        t = t.link(&format!("r{a}"), &format!("r{b}"));
    }
    t
}

/// Linux IPv4 forwarding along the line, so `ping` crosses the same veths as o7s.
fn ip_routes(lab: &Lab, n: usize) -> R<()> {
    for i in 0..n {
        let me = lab.node(&format!("n{i}"));
        out(me.cmd("sysctl").args(["-qw", "net.ipv4.ip_forward=1"]))?;
        for j in 0..n - 1 {
            // Link j joins n{j} and n{j+1}; subnet 169.254.j.0/24 (see o7s_lab::Topology).
            if j == i || j + 1 == i {
                continue;
            }
            let via = if j > i {
                lab.node(&format!("n{}", i + 1)).addr4_to(&format!("n{i}"))
            } else {
                lab.node(&format!("n{}", i - 1)).addr4_to(&format!("n{i}"))
            }
            .ok_or("no address")?;
            let net = lab
                .node(&format!("n{j}"))
                .addr4_to(&format!("n{}", j + 1))
                .ok_or("no address")?;
            let o = net.octets();
            out(me.cmd("ip").args([
                "route",
                "add",
                &format!("{}.{}.{}.0/24", o[0], o[1], o[2]),
                "via",
                &via.to_string(),
            ]))?;
        }
    }
    Ok(())
}

fn linux_ping(lab: &Lab, to: &str, from_peer: &str) -> R<String> {
    let addr = lab.node(to).addr4_to(from_peer).ok_or("no address")?;
    let p = out(lab.node("n0").cmd("ping").args([
        "-c",
        "2000",
        "-i",
        "0.001",
        "-q",
        &addr.to_string(),
    ]))?;
    Ok(p.lines()
        .find(|l| l.contains("rtt"))
        .unwrap_or("")
        .to_string())
}

fn oping(lab: &Lab, name: &str) -> R<Value> {
    let s = out(lab
        .node("n0")
        .cmd("oping")
        .args(["-n", name, "-c", "5000", "-i", "0", "--json"]))?;
    Ok(serde_json::from_str::<Value>(&s)?["rtt_ms"].clone())
}

/// Wait until `name` answers a ping from n0.
fn reachable(lab: &Lab, name: &str) -> bool {
    o7s_lab::wait_for(Duration::from_secs(60), || {
        let o = lab
            .node("n0")
            .cmd("oping")
            .args(["-n", name, "-c", "1"])
            .output();
        o.is_ok_and(|o| o.status.success())
    })
}

/// Part 1 and 2 on a line of 5.
fn rtt_and_allocs() -> R<()> {
    let lab = Lab::up(&line(5))?;
    eth_links(&lab)?;
    unicast_over_eth(&lab, "net", "ls_t_recalc 1")?;
    ip_routes(&lab, 5)?;
    for (node, name) in [("n1", "hop1"), ("n4", "hop4")] {
        let n = lab.node(node);
        n.irm_ok(&format!("bind program oping name {name} auto -- -l"))?;
        n.irm_ok(&format!("name reg {name} layer net"))?;
    }
    for name in ["hop1", "hop4"] {
        if !reachable(&lab, name) {
            return Err(format!("{name} unreachable").into());
        }
    }
    println!("## RTT (line of 5 over eth-dix, 64 B)");
    println!("Linux ping 1 hop:  {}", linux_ping(&lab, "n1", "n0")?);
    println!("Linux ping 4 hops: {}", linux_ping(&lab, "n4", "n3")?);
    println!("o7s oping 1 hop:   {}", oping(&lab, "hop1")?);
    println!("o7s oping 4 hops:  {}", oping(&lab, "hop4")?);

    // Bulk throughput over one hop, with and without congestion avoidance.
    unicast_over_eth(&lab, "nc", "congestion none ls_t_recalc 1")?;
    let n1 = lab.node("n1");
    for (name, layer) in [("perf", "net"), ("perf-nc", "nc")] {
        n1.irm_ok(&format!("bind program operf name {name} auto -- -l"))?;
        n1.irm_ok(&format!("name reg {name} layer {layer}"))?;
        n1.irm_ok(&format!("bind program oping name probe-{layer} auto -- -l"))?;
        n1.irm_ok(&format!("name reg probe-{layer} layer {layer}"))?;
        if !reachable(&lab, &format!("probe-{layer}")) {
            return Err(format!("layer {layer} does not reach n1").into());
        }
    }
    println!(
        "o7s oping 1 hop, layer without congestion avoidance: {}",
        oping(&lab, "probe-nc")?
    );
    println!("\n## Bulk 1400 B over 1 unicast hop (operf -f, 3 s, received)");
    for (name, what) in [("perf", "mb-ecn"), ("perf-nc", "no congestion avoidance")] {
        let o = out(lab.node("n0").cmd("operf").args([
            "-n", name, "-t", "uni", "-d", "3s", "-s", "1400", "-f", "--json",
        ]))?;
        let v: Value = serde_json::from_str(&o)?;
        println!(
            "{what}: {} Mb/s received, {}% lost",
            v["client_to_server"]["mbit_per_s"], v["client_to_server"]["loss_percent"]
        );
    }

    allocs(&lab, &Opts::parse())
}

/// Options of the allocation measurement.
struct Opts {
    /// Client thread counts to measure throughput with.
    threads: Vec<usize>,
    /// Seconds per throughput measurement.
    secs: f64,
    /// Allocations measured one at a time.
    serial: usize,
    /// Flows allocated (and held) per alloc-only run.
    batch: usize,
}

impl Opts {
    fn parse() -> Opts {
        let args: Vec<String> = std::env::args().collect();
        let val = |k: &str| {
            args.iter()
                .position(|a| a == k)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        Opts {
            threads: val("--threads")
                .or_else(|| val("--alloc-threads"))
                .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
                .unwrap_or_else(|| vec![1, 4, 16]),
            secs: val("--alloc-secs")
                .and_then(|s| s.parse().ok())
                .unwrap_or(5.0),
            serial: val("--alloc-serial")
                .and_then(|s| s.parse().ok())
                .unwrap_or(200)
                .max(2),
            batch: val("--alloc-batch")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1000),
        }
    }
}

/// Only the allocation measurement: the same line of 5 with the same two unicast layers
/// (`net`, and `nc` without congestion avoidance, which every allocation's name query also
/// asks), without the RTT and bulk parts.
fn allocs_only() -> R<()> {
    let lab = Lab::up(&line(5))?;
    eth_links(&lab)?;
    unicast_over_eth(&lab, "net", "ls_t_recalc 1")?;
    if !std::env::args().any(|a| a == "--alloc-one-layer") {
        unicast_over_eth(&lab, "nc", "congestion none ls_t_recalc 1")?;
    }
    allocs(&lab, &Opts::parse())
}

/// Allocations across 2 hops: a server on n2 (this program again) accepts and drops.
fn allocs(lab: &Lab, o: &Opts) -> R<()> {
    let n2 = lab.node("n2");
    let mut server = std::process::Command::new(std::env::current_exe()?)
        .arg("--accept-server")
        .env("O7S_RUNDIR", n2.rundir())
        .spawn()?;
    let r = allocs_with(lab, o, server.id());
    let _ = server.kill();
    let _ = server.wait();
    r
}

/// CPU time (clock ticks) and context switches of the processes taking part in the
/// allocations, to say where the time goes per allocation.
struct Usage {
    /// Process label -> (CPU ticks, context switches per thread id).
    procs: Vec<(String, u32, u64, std::collections::HashMap<u32, u64>)>,
}

fn proc_label(pid: u32, node: &str) -> String {
    let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let parts: Vec<&str> = cmd.split('\0').filter(|s| !s.is_empty()).collect();
    let prog = parts
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .unwrap_or("?");
    let name = parts
        .iter()
        .position(|a| *a == "--name")
        .and_then(|i| parts.get(i + 1))
        .map(|n| format!(" {n}"))
        .unwrap_or_default();
    if prog == "unicast_bench" {
        return format!(
            "{node} {}",
            if cmd.contains("--accept-server") {
                "acceptor"
            } else {
                "client"
            }
        );
    }
    format!("{node} {prog}{name}")
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) in parentheses.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command.
    n(11) + n(12)
}

fn switches(pid: u32) -> std::collections::HashMap<u32, u64> {
    let mut m = std::collections::HashMap::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return m;
    };
    for t in rd.flatten() {
        let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let st = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let n: u64 = st
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .sum();
        m.insert(tid, n);
    }
    m
}

impl Usage {
    fn now(lab: &Lab, server: u32) -> Usage {
        let mut procs = Vec::new();
        for node in ["n0", "n1", "n2"] {
            for pid in o7s_lab::netns_pids(lab.node(node).netns()) {
                procs.push((proc_label(pid, node), pid, cpu_ticks(pid), switches(pid)));
            }
        }
        for (pid, node) in [(std::process::id(), "n0"), (server, "n2")] {
            procs.push((proc_label(pid, node), pid, cpu_ticks(pid), switches(pid)));
        }
        Usage { procs }
    }

    /// Per allocation since `before`: CPU ms and context switches, in all and by process
    /// (the busiest ones).
    fn per(&self, before: &Usage, n: u64) -> String {
        let tick = 1000.0 / 100.0; // ms per clock tick (USER_HZ is 100 on Linux)
        let n = n.max(1) as f64;
        let mut rows: Vec<(String, f64, f64)> = Vec::new();
        for (label, pid, cpu, sw) in &self.procs {
            let Some((_, _, cpu0, sw0)) = before.procs.iter().find(|p| p.1 == *pid) else {
                continue;
            };
            let dsw: u64 = sw
                .iter()
                .map(|(tid, v)| v.saturating_sub(sw0.get(tid).copied().unwrap_or(0)))
                .sum();
            let dcpu = cpu.saturating_sub(*cpu0) as f64 * tick;
            if dsw > 0 || dcpu > 0.0 {
                rows.push((label.clone(), dcpu / n, dsw as f64 / n));
            }
        }
        rows.sort_by(|a, b| b.2.total_cmp(&a.2));
        let (cpu, sw): (f64, f64) = rows.iter().fold((0.0, 0.0), |a, r| (a.0 + r.1, a.1 + r.2));
        let top: Vec<String> = rows
            .iter()
            .filter(|r| r.2 >= 0.5)
            .map(|r| format!("{} {:.1}/{:.0}µs", r.0, r.2, r.1 * 1000.0))
            .collect();
        format!(
            "per allocation: {cpu:.2} ms CPU, {sw:.1} context switches (by process, switches/CPU: {})",
            top.join(", ")
        )
    }
}

fn alloc_one() -> Result<o7s::Flow, o7s::Error> {
    o7s::Flow::alloc("allocs", o7s::QosSpec::RAW, Some(Duration::from_secs(5)))
}

fn allocs_with(lab: &Lab, o: &Opts, pid: u32) -> R<()> {
    let n2 = lab.node("n2");
    n2.irm_ok(&format!("bind process {pid} name allocs"))?;
    n2.irm_ok("name reg allocs layer net")?;
    std::env::set_var("O7S_RUNDIR", lab.node("n0").rundir());
    let ok = o7s_lab::wait_for(Duration::from_secs(30), || alloc_one().is_ok());
    if !ok {
        return Err("allocs unreachable".into());
    }
    // One at a time first: how long an allocation and a deallocation take.
    let (mut t_alloc, mut t_dealloc) = (Vec::new(), Vec::new());
    for _ in 0..o.serial {
        let t = Instant::now();
        let f = alloc_one()?;
        t_alloc.push(t.elapsed());
        let t = Instant::now();
        f.dealloc()?;
        t_dealloc.push(t.elapsed());
    }
    t_alloc.sort();
    t_dealloc.sort();
    let n = o.serial;
    println!(
        "\n## One allocation at a time across 2 hops ({n}): alloc p50 {:?} p99 {:?}, dealloc (Flow::dealloc, answered) p50 {:?}",
        t_alloc[n / 2], t_alloc[n * 99 / 100], t_dealloc[n / 2]
    );
    for &k in &o.threads {
        let k = k.max(1);
        // Allocate and drop in a loop (dropping deallocates without waiting for the IRMd).
        let count = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let before = Usage::now(lab, pid);
        let threads: Vec<_> = (0..k)
            .map(|_| {
                let (count, failed, stop) = (count.clone(), failed.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match alloc_one() {
                            Ok(f) => {
                                drop(f);
                                count.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                                    eprintln!("allocation failed: {e}");
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(o.secs));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        let secs = t0.elapsed().as_secs_f64();
        let done = count.load(Ordering::Relaxed);
        let usage = Usage::now(lab, pid).per(&before, done);
        println!(
            "\n## Flow allocations across 2 hops, {k} threads, alloc + dealloc (drop) in a loop\n{:.0} allocations/s ({done} in {secs:.1} s, {} failed)\n{usage}",
            done as f64 / secs,
            failed.load(Ordering::Relaxed)
        );
        // Allocations alone: `batch` flows allocated and held, then all deallocated.
        let per = o.batch.div_ceil(k);
        let failed = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let threads: Vec<_> = (0..k)
            .map(|_| {
                let failed = failed.clone();
                std::thread::spawn(move || {
                    let mut held = Vec::with_capacity(per);
                    for _ in 0..per {
                        match alloc_one() {
                            Ok(f) => held.push(f),
                            Err(e) => {
                                if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                                    eprintln!("allocation failed: {e}");
                                }
                            }
                        }
                    }
                    held
                })
            })
            .collect();
        let held: Vec<Vec<o7s::Flow>> = threads.into_iter().filter_map(|t| t.join().ok()).collect();
        let t_alloc = t0.elapsed().as_secs_f64();
        let got: usize = held.iter().map(Vec::len).sum();
        let t0 = Instant::now();
        let threads: Vec<_> = held
            .into_iter()
            .map(|flows| {
                std::thread::spawn(move || {
                    for f in flows {
                        let _ = f.dealloc();
                    }
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
        let t_dealloc = t0.elapsed().as_secs_f64();
        println!(
            "alloc only, {k} threads: {:.0} allocations/s ({got} flows held, {} failed), then {:.0} deallocations/s (Flow::dealloc, answered)",
            got as f64 / t_alloc,
            failed.load(Ordering::Relaxed),
            got as f64 / t_dealloc
        );
    }
    // Nothing may be left behind: no flow at either end once every flow is gone.
    let mut left = String::new();
    let clean = o7s_lab::wait_for(Duration::from_secs(10), || {
        left.clear();
        for node in ["n0", "n2"] {
            let l = lab.node(node).irm_ok("flow list").unwrap_or_default();
            let flows = l.lines().filter(|l| l.contains("allocs")).count();
            if flows > 0 {
                left.push_str(&format!("{node}: {flows} flow(s) left\n{l}"));
            }
        }
        left.is_empty()
    });
    if !clean {
        return Err(format!("flows left after the allocation runs:\n{left}").into());
    }
    println!("\nflow list on n0 and n2: no flow left");
    Ok(())
}

/// The server side of the allocation benchmark: 4 threads accept flows and drop them.
fn accept_server() -> R<()> {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| loop {
                match o7s::Flow::accept(None) {
                    Ok(f) => drop(f),
                    Err(e) => {
                        eprintln!("accept: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// A field (in kB) of `/proc/PID/smaps_rollup`: `Rss:` counts every page a process maps,
/// also the binary's code it shares with every other `ipcpd`; `Pss:` divides shared pages
/// among their sharers, so it sums to what the processes really take.
fn mem_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kb(pid: u32) -> u64 {
    mem_kb(pid, "Rss:")
}

fn pss_kb(pid: u32) -> u64 {
    mem_kb(pid, "Pss:")
}

/// Part 3: convergence and memory for `n` nodes.
fn scale(n: usize) -> R<()> {
    let t = random_graph(n, n / 2, 42);
    let links = t.links.len();
    let t0 = Instant::now();
    let lab = Lab::up(&t)?;
    eth_links(&lab)?;
    let t_lab = t0.elapsed();
    unicast_over_eth(&lab, "net", "")?;
    let last = Instant::now();
    let t_join = last - t0 - t_lab;
    // Converged: every node has a route to every other node.
    let mut done = vec![false; n];
    let converged = o7s_lab::wait_for(Duration::from_secs(120), || {
        for (i, node) in lab.nodes().iter().enumerate() {
            if done[i] {
                continue;
            }
            let show = node
                .irm_ok(&format!("ipcp show {}", ipcp_name("net", node.name())))
                .unwrap_or_default();
            let routes = show.lines().filter(|l| l.contains("route 0x")).count();
            done[i] = routes >= n - 1;
        }
        done.iter().all(|d| *d)
    });
    let conv = last.elapsed();
    let mut per_node: Vec<u64> = lab
        .nodes()
        .iter()
        .map(|node| {
            o7s_lab::netns_pids(node.netns())
                .into_iter()
                .map(rss_kb)
                .sum::<u64>()
        })
        .collect();
    // Where the memory of the first node goes, process by process.
    if let Some(node) = lab.nodes().first() {
        let parts: Vec<String> = o7s_lab::netns_pids(node.netns())
            .into_iter()
            .map(|pid| {
                let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .unwrap_or_default()
                    .replace('\0', " ");
                let short: String = cmd
                    .split_whitespace()
                    .skip(1)
                    .take(4)
                    .collect::<Vec<_>>()
                    .join(" ");
                format!(
                    "{:.1} MB (PSS {:.1}) {short}",
                    rss_kb(pid) as f64 / 1024.0,
                    pss_kb(pid) as f64 / 1024.0
                )
            })
            .collect();
        println!("  {}: {}", node.name(), parts.join("; "));
    }
    let mut pss: Vec<u64> = lab
        .nodes()
        .iter()
        .map(|node| {
            o7s_lab::netns_pids(node.netns())
                .into_iter()
                .map(pss_kb)
                .sum::<u64>()
        })
        .collect();
    per_node.sort_unstable();
    pss.sort_unstable();
    let mb = |v: &[u64]| {
        (
            v.iter().sum::<u64>() as f64 / n as f64 / 1024.0,
            *v.last().unwrap_or(&0) as f64 / 1024.0,
        )
    };
    let ((avg, max), (pavg, pmax)) = (mb(&per_node), mb(&pss));
    println!(
        "{n} nodes, {links} links: layer built in {:.1} s; {} {:.1} s after the last connection; per node (irmd + ipcpds): RSS avg {avg:.1} MB max {max:.1} MB, PSS avg {pavg:.1} MB max {pmax:.1} MB",
        t_join.as_secs_f64(),
        if converged { "converged" } else { "NOT converged" },
        conv.as_secs_f64()
    );
    // `O7S_HOLD=SECS`: keep the lab up that long, to look at the processes' smaps.
    if let Some(secs) = std::env::var("O7S_HOLD")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        for node in lab.nodes().iter().take(2) {
            println!(
                "  {} pids: {:?}",
                node.name(),
                o7s_lab::netns_pids(node.netns())
            );
        }
        std::thread::sleep(Duration::from_secs(secs));
    }
    Ok(())
}

fn main() -> R<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--accept-server") {
        return accept_server();
    }
    let sizes: Vec<usize> = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 20, 50]);
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    if args.iter().any(|a| a == "--alloc-only") {
        return allocs_only();
    }
    if !args.iter().any(|a| a == "--scale-only") {
        rtt_and_allocs()?;
    }
    println!("\n## Routing convergence and memory (random graphs, default timers)");
    for n in sizes {
        scale(n)?;
    }
    Ok(())
}
