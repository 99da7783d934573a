//! Round-trip time and throughput across one veth pair between two network namespaces, in
//! one run: o7s over eth-dix and over udp4 beside Linux ping, a UDP ping-pong and iperf3;
//! then the goodput of reliable `data` flows (FRCT; `ocat` of 200 MB) over eth-dix and udp4
//! beside `iperf3` TCP, without loss and with 1 % of the frames dropped in each direction.
//! Needs root and release binaries:
//!
//! ```text
//! cargo build --release --workspace
//! O7S_BIN_DIR=$PWD/target/release cargo run --release -p o7s-lab --example veth_bench [-- --mtu N]
//! ```
//!
//! (`O7S_BIN_DIR` must name the directory of the release binaries, so with
//! `CARGO_TARGET_DIR` set, `$CARGO_TARGET_DIR/release`.)

use o7s_lab::{Lab, LinkSpec, Topology};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn out(c: &mut std::process::Command) -> R<String> {
    let o = c.output()?;
    if !o.status.success() {
        return Err(format!("{:?}: {}", c, String::from_utf8_lossy(&o.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

struct Kill(Vec<Child>);
impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn oping(lab: &Lab, name: &str, pings: u32) -> R<Value> {
    let s = out(lab.node("a").cmd("oping").args([
        "-n",
        name,
        "-c",
        &pings.to_string(),
        "-i",
        "0",
        "--json",
    ]))?;
    Ok(serde_json::from_str::<Value>(&s)?["rtt_ms"].clone())
}

/// Bytes `ocat` moves per goodput measurement, unless `--bulk` says otherwise.
const BULK: u64 = 200_000_000;
/// Loss in each direction for the lossy goodput rows, in percent.
const LOSS: u8 = 1;

/// `iperf3 ARGS` from a to an iperf3 server on b; the parsed JSON summary.
fn iperf3(lab: &Lab, server: &str, args: &[&str]) -> R<Value> {
    let mut srv = Kill(vec![lab
        .node("b")
        .cmd("iperf3")
        .args(["-s", "-1", "-B", server])
        .stdout(Stdio::null())
        .spawn()?]);
    std::thread::sleep(Duration::from_millis(300));
    let v = out(lab
        .node("a")
        .cmd("iperf3")
        .args(["-c", server, "--json"])
        .args(args))?;
    if let Some(c) = srv.0.first_mut() {
        let _ = c.wait();
    }
    Ok(serde_json::from_str(&v)?)
}

/// TCP goodput of `iperf3 -t 3` (what the receiver got), Gb/s, and retransmitted segments.
fn iperf3_tcp(lab: &Lab, server: &str) -> R<(f64, u64)> {
    let v = iperf3(lab, server, &["-t", "3"])?;
    let gbps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
        / 1e9;
    let rtx = v["end"]["sum_sent"]["retransmits"].as_u64().unwrap_or(0);
    Ok((gbps, rtx))
}

/// How long one `ocat` transfer may take before it counts as failed.
const OCAT_LIMIT: Duration = Duration::from_secs(60);

/// What one `ocat` transfer gave.
struct Bulk {
    /// Goodput the receiver measured, Gb/s; `None` if the transfer failed.
    gbps: Option<f64>,
    /// The sender's FRCT counters, or why it failed.
    note: String,
}

/// Wait for `c` at most until `end`; kill it past that.
fn wait_until(c: &mut Child, end: std::time::Instant) -> R<Option<std::process::ExitStatus>> {
    loop {
        if let Some(st) = c.try_wait()? {
            return Ok(Some(st));
        }
        if std::time::Instant::now() >= end {
            let _ = c.kill();
            let _ = c.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(c: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = c.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// One `ocat` transfer of `file` from a to an `ocat -l` on b bound to `name`: the goodput
/// the receiver measured (from accepting the flow to the end of the stream) and the
/// sender's FRCT counters. An allocation that goes unanswered (the shims do not retransmit
/// flow requests) is tried again; a transfer that fails or takes longer than [`OCAT_LIMIT`]
/// is reported as such.
fn ocat(lab: &Lab, name: &str, file: &Path, bulk: u64, args: &[&str]) -> R<Bulk> {
    let (a, b) = (lab.node("a"), lab.node("b"));
    for attempt in 1..=3 {
        let mut srv = Kill(vec![b
            .cmd("ocat")
            .args(["-l", "-o", "/dev/null", "--stats"])
            .stderr(Stdio::piped())
            .spawn()?]);
        b.irm_ok(&format!("bind process {} name {name}", srv.0[0].id()))?;
        let t0 = std::time::Instant::now();
        let mut cli = Kill(vec![a
            .cmd("ocat")
            .args(["-n", name, "--stats"])
            .args(args)
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?]);
        let cli_st = wait_until(&mut cli.0[0], t0 + OCAT_LIMIT)?;
        let cli_text = stderr_of(&mut cli.0[0]);
        let Some(cli_st) = cli_st else {
            return Ok(Bulk {
                gbps: None,
                note: format!("did not finish within {OCAT_LIMIT:?}"),
            });
        };
        if !cli_st.success() {
            if cli_text.contains("cannot allocate") && attempt < 3 {
                continue;
            }
            return Ok(Bulk {
                gbps: None,
                note: format!(
                    "failed after {:.1} s: {}",
                    t0.elapsed().as_secs_f64(),
                    cli_text.trim().replace('\n', " / ")
                ),
            });
        }
        let srv_st = wait_until(
            &mut srv.0[0],
            std::time::Instant::now() + Duration::from_secs(10),
        )?;
        let err = stderr_of(&mut srv.0[0]);
        if !srv_st.is_some_and(|s| s.success()) {
            return Ok(Bulk {
                gbps: None,
                note: format!("the receiver failed: {}", err.trim()),
            });
        }
        // "ocat: received N bytes in S s (...)"
        let secs = err
            .split(" bytes in ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|x| x.parse::<f64>().ok())
            .ok_or_else(|| format!("ocat -l said: {err}"))?;
        let stats = cli_text
            .lines()
            .find(|l| l.contains("frct before closing"))
            .map(|l| l.replace("ocat: frct before closing: ", ""))
            .unwrap_or_default();
        // The receiver's duplicates: retransmissions that were not needed.
        let dups = err
            .lines()
            .find(|l| l.contains("frct at the end"))
            .and_then(|l| l.split("duplicates ").nth(1))
            .and_then(|r| r.split(',').next())
            .unwrap_or("?");
        return Ok(Bulk {
            gbps: Some(bulk as f64 * 8.0 / secs / 1e9),
            note: format!("{stats}; receiver: {dups} duplicates"),
        });
    }
    unreachable!("the last attempt returns")
}

fn set_loss(lab: &Lab, da: &str, db: &str, percent: u8) -> R<()> {
    lab.set_loss("a", da, percent)?;
    lab.set_loss("b", db, percent)?;
    Ok(())
}

fn random_file(path: &Path, len: u64) -> R<()> {
    let mut src = std::fs::File::open("/dev/urandom")?.take(len);
    let mut dst = std::io::BufWriter::new(std::fs::File::create(path)?);
    std::io::copy(&mut src, &mut dst)?;
    dst.flush()?;
    Ok(())
}

const USAGE: &str = "usage: veth_bench [--mtu BYTES] [--goodput-only] [--lossless] [--runs N] \
[--bulk MB] [--hold SECS]
  --mtu BYTES     the veth's MTU (default 1500), the same for TCP and for o7s
  --goodput-only  skip the round-trip and one-way rows
  --lossless      skip the rows at 1 % loss
  --runs N        goodput rows N times each (default 1), interleaved
  --bulk MB       megabytes ocat moves per goodput row (default 200; at 10 Gb/s 200 MB
                  take 0.16 s, against iperf3's 3 s)
  --hold SECS     set the layers up, print how to run commands in the nodes, wait SECS, end";

#[derive(Default)]
struct Opts {
    goodput_only: bool,
    lossless: bool,
    runs: usize,
    bulk: Option<u64>,
    hold: Option<u64>,
}

fn main() -> R<()> {
    let pings = 20_000;
    let mut link = LinkSpec::new("a", "b");
    let mut opt = Opts::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter().map(String::as_str);
    while let Some(a) = it.next() {
        match (a, it.clone().next()) {
            ("--mtu", Some(m)) => {
                link = link.mtu(m.parse().map_err(|e| format!("--mtu {m}: {e}"))?);
                it.next();
            }
            ("--hold", Some(s)) => {
                opt.hold = Some(s.parse().map_err(|e| format!("--hold {s}: {e}"))?);
                it.next();
            }
            ("--bulk", Some(s)) => {
                let mb: u64 = s.parse().map_err(|e| format!("--bulk {s}: {e}"))?;
                opt.bulk = Some(mb.max(1) * 1_000_000);
                it.next();
            }
            ("--runs", Some(s)) => {
                opt.runs = s.parse().map_err(|e| format!("--runs {s}: {e}"))?;
                it.next();
            }
            ("--goodput-only", _) => opt.goodput_only = true,
            ("--lossless", _) => opt.lossless = true,
            ("--help", _) | ("-h", _) => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(USAGE.into()),
        }
    }
    let mtu = link.mtu.unwrap_or(1500);
    let runs = opt.runs.max(1);
    let bulk_bytes = opt.bulk.unwrap_or(BULK);
    let lab = Lab::up(&Topology::new().node("a").node("b").link_with(link))?;
    let (a, b) = (lab.node("a"), lab.node("b"));
    let (ia, ib) = (
        a.addr4_to("b").ok_or("addr")?,
        b.addr4_to("a").ok_or("addr")?,
    );
    let (da, db) = (
        a.ifname_to("b").ok_or("if")?.to_string(),
        b.ifname_to("a").ok_or("if")?.to_string(),
    );
    let mut bg = Kill(Vec::new());

    // Linux baselines.
    let mut lat = None;
    if !opt.goodput_only && opt.hold.is_none() {
        let ping = out(a
            .cmd("ping")
            .args(["-c", "2000", "-i", "0.001", "-q", &ib.to_string()]))?;
        let ping_rtt = ping
            .lines()
            .find(|l| l.contains("rtt"))
            .unwrap_or("")
            .to_string();
        bg.0.push(
            b.cmd("o7s-bench")
                .args(["--udp-echo", &format!("{ib}:9000")])
                .stdout(Stdio::null())
                .spawn()?,
        );
        std::thread::sleep(Duration::from_millis(200));
        let udp_pp = out(a.cmd("o7s-bench").args([
            "--udp-ping",
            &format!("{ib}:9000"),
            "--pings",
            &pings.to_string(),
            "--json",
        ]))?;
        bg.0.push(
            b.cmd("iperf3")
                .args(["-s", "-1", "-B", &ib.to_string()])
                .stdout(Stdio::null())
                .spawn()?,
        );
        std::thread::sleep(Duration::from_millis(300));
        let iperf = out(a.cmd("iperf3").args([
            "-c",
            &ib.to_string(),
            "-u",
            "-b",
            "0",
            "-l",
            "1400",
            "-t",
            "3",
            "--json",
        ]))?;
        let iperf: Value = serde_json::from_str(&iperf)?;
        lat = Some((ping_rtt, udp_pp, iperf));
    }

    // o7s over eth-dix and udp4.
    a.irm_ok(&format!(
        "ipcp bootstrap type eth-dix name ea layer eth dev {da}"
    ))?;
    b.irm_ok(&format!(
        "ipcp bootstrap type eth-dix name eb layer eth dev {db}"
    ))?;
    let hosts = lab.dir().join("hosts");
    std::fs::write(&hosts, format!("{ib} srv.udp perf.udp cat.udp\n"))?;
    let h = hosts.display();
    a.irm_ok(&format!(
        "ipcp bootstrap type udp4 name ua layer udp ip {ia} hosts {h}"
    ))?;
    b.irm_ok(&format!(
        "ipcp bootstrap type udp4 name ub layer udp ip {ib} hosts {h}"
    ))?;
    b.irm_ok("name reg srv.eth layer eth")?;
    b.irm_ok("name reg srv.udp layer udp")?;
    b.irm_ok("bind program oping name srv.eth auto -- -l")?;
    b.irm_ok("bind program oping name srv.udp auto -- -l")?;
    b.irm_ok("name reg cat.eth layer eth")?;
    b.irm_ok("name reg cat.udp layer udp")?;
    let file = lab.dir().join("bulk.bin");
    random_file(&file, bulk_bytes)?;
    if let Some(secs) = opt.hold {
        let bin = std::env::var("O7S_BIN_DIR").unwrap_or_default();
        for n in [&a, &b] {
            println!(
                "node {}: ip netns exec {} env O7S_RUNDIR={} PATH={bin}:$PATH CMD",
                n.name(),
                n.netns(),
                n.rundir().display()
            );
        }
        println!(
            "names cat.eth, cat.udp (layers eth, udp) and srv.eth, srv.udp (oping) on b; \
             {} MB of random bytes in {}; a's veth {da} ({ia}), b's {db} ({ib}); \
             holding for {secs} s",
            bulk_bytes / 1_000_000,
            file.display()
        );
        std::thread::sleep(Duration::from_secs(secs));
        return Ok(());
    }
    let mut lat2 = None;
    if let Some((ping_rtt, udp_pp, iperf)) = lat {
        let eth = oping(&lab, "srv.eth", pings)?;
        let udp = oping(&lab, "srv.udp", pings)?;
        let mut operf = String::from("(operf not available)");
        if a.cmd("operf")
            .arg("--help")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
        {
            b.irm_ok("name reg perf.eth layer eth")?;
            b.irm_ok("bind program operf name perf.eth auto -- -l")?;
            operf = out(a
                .cmd("operf")
                .args(["-n", "perf.eth", "-s", "1400", "-d", "3s", "-f", "--json"]))?;
        }
        lat2 = Some((ping_rtt, udp_pp, iperf, eth, udp, operf));
    }

    // Goodput of reliable flows beside TCP, lossless, then with loss.
    let ibs = ib.to_string();
    let mut bulk = Vec::new();
    let losses: &[u8] = if opt.lossless { &[0] } else { &[0, LOSS] };
    for _ in 0..runs {
        for &percent in losses {
            set_loss(&lab, &da, &db, percent)?;
            let tcp = iperf3_tcp(&lab, &ibs)?;
            let eth = ocat(&lab, "cat.eth", &file, bulk_bytes, &[])?;
            let udp = ocat(&lab, "cat.udp", &file, bulk_bytes, &[])?;
            let udp1400 = ocat(&lab, "cat.udp", &file, bulk_bytes, &["-s", "1400"])?;
            bulk.push((percent, tcp, eth, udp, udp1400));
        }
    }
    set_loss(&lab, &da, &db, 0)?;

    if let Some((ping_rtt, udp_pp, iperf, eth, udp, operf)) = lat2 {
        let iperf_rx = iperf["end"]["sum"]["bits_per_second"]
            .as_f64()
            .unwrap_or(0.0)
            / 1e9;
        let iperf_loss = iperf["end"]["sum"]["lost_percent"].as_f64().unwrap_or(0.0);
        let udp_pp: Value = serde_json::from_str(&udp_pp)?;
        println!(
            "veth (MTU {mtu}) between two namespaces, 64-byte ping-pong ({pings} round trips):"
        );
        println!("  linux ping (ICMP, 2000 x 1 ms): {ping_rtt}");
        println!(
            "  linux UDP ping-pong:  p50 {:.1} us  p99 {:.1} us  avg {:.1} us",
            udp_pp["p50_us"].as_f64().unwrap_or(0.0),
            udp_pp["p99_us"].as_f64().unwrap_or(0.0),
            udp_pp["avg_us"].as_f64().unwrap_or(0.0)
        );
        for (n, r) in [("o7s eth-dix", &eth), ("o7s udp4", &udp)] {
            println!(
                "  {n:<20}  p50 {:.1} us  p99 {:.1} us  avg {:.1} us",
                r["p50"].as_f64().unwrap_or(0.0) * 1000.0,
                r["p99"].as_f64().unwrap_or(0.0) * 1000.0,
                r["avg"].as_f64().unwrap_or(0.0) * 1000.0
            );
        }
        println!("one-way 1400-byte throughput, 3 s:");
        println!("  iperf3 -u -b 0: {iperf_rx:.3} Gb/s received, {iperf_loss:.1}% lost");
        println!("  operf over eth-dix: {}", operf.trim());
    }
    println!(
        "goodput of reliable flows over a veth of MTU {mtu} ({} MB with ocat, messages of whole \
         packets up to 64 KiB unless said; iperf3 TCP 3 s):",
        bulk_bytes / 1_000_000
    );
    let show = |g: Option<f64>| g.map_or("failed".to_owned(), |g| format!("{g:.3} Gb/s"));
    for (percent, tcp, eth, udp, udp1400) in &bulk {
        println!("  {percent}% loss each way:");
        println!(
            "    iperf3 TCP                   {:.3} Gb/s ({} segments retransmitted)",
            tcp.0, tcp.1
        );
        for (n, r) in [
            ("ocat data over eth-dix", eth),
            ("ocat data over udp4", udp),
            ("ocat data over udp4 -s 1400", udp1400),
        ] {
            let ratio = r
                .gbps
                .map(|g| format!(" ({:.2}x TCP)", g / tcp.0.max(1e-9)))
                .unwrap_or_default();
            println!(
                "    {n:<28} {}{ratio}\n      sender: {}",
                show(r.gbps),
                r.note
            );
        }
    }
    for pair in bulk.chunks(2) {
        let [lossless, lossy] = pair else { continue };
        if lossy.0 == 0 {
            continue;
        }
        println!("  at {LOSS}% loss, share of the lossless goodput:");
        println!(
            "    iperf3 TCP {:.0}%",
            100.0 * lossy.1 .0 / lossless.1 .0.max(1e-9)
        );
        for (n, x, y) in [
            ("eth-dix", &lossless.2, &lossy.2),
            ("udp4", &lossless.3, &lossy.3),
            ("udp4 -s 1400", &lossless.4, &lossy.4),
        ] {
            let share = match (x.gbps, y.gbps) {
                (Some(x), Some(y)) => format!("{:.0}%", 100.0 * y / x.max(1e-9)),
                _ => "-".to_owned(),
            };
            println!("    ocat data over {n} {share}");
        }
    }
    Ok(())
}
