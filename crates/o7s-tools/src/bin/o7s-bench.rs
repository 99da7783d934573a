//! `o7s-bench`: local-flow latency and throughput beside a unix socket and UDP on loopback,
//! measured in one run on the same machine, plus the idle RSS of `irmd` and the local `ipcpd`;
//! and the bulk goodput of a local `raw` and `data` (FRCT) flow beside a unix stream socket
//! and TCP on loopback.
//!
//! Run: `cargo run --release -p o7s-tools --bin o7s-bench [-- --json]`.

use anyhow::{bail, Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Benchmark local o7s flows against unix sockets and UDP loopback"
)]
struct Args {
    /// Round trips per RTT measurement.
    #[arg(long, default_value_t = 200_000)]
    pings: u64,
    /// Seconds per throughput measurement.
    #[arg(long, default_value_t = 2.0)]
    secs: f64,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
    /// Internal: serve o7s flows.
    #[arg(long, hide = true)]
    serve_o7s: bool,
    /// Internal: serve on a unix datagram socket at this path.
    #[arg(long, hide = true)]
    serve_unix: Option<PathBuf>,
    /// Internal: serve on this UDP port of 127.0.0.1.
    #[arg(long, hide = true)]
    serve_udp: Option<u16>,
    /// Internal: count the bytes of one TCP connection on this port of 127.0.0.1.
    #[arg(long, hide = true)]
    serve_tcp: Option<u16>,
    /// Internal: count the bytes of one unix stream connection at this path.
    #[arg(long, hide = true)]
    serve_unix_stream: Option<PathBuf>,
    /// Echo UDP datagrams on ADDR:PORT (a baseline server for other hosts).
    #[arg(long, value_name = "ADDR:PORT")]
    udp_echo: Option<std::net::SocketAddr>,
    /// Ping-pong `--pings` 64-byte UDP datagrams with an `--udp-echo` server; print RTTs.
    #[arg(long, value_name = "ADDR:PORT")]
    udp_ping: Option<std::net::SocketAddr>,
}

/// The first byte of every message says what the server does with it.
const ECHO: u8 = b'E';
const SINK: u8 = b'S';
const FINISH: u8 = b'F';

/// What a server needs of a transport.
trait Chan {
    fn send(&self, b: &[u8]) -> Result<()>;
    fn recv(&self, b: &mut [u8]) -> Result<usize>;
}

impl Chan for o7s::Flow {
    fn send(&self, b: &[u8]) -> Result<()> {
        self.write(b)?;
        Ok(())
    }
    fn recv(&self, b: &mut [u8]) -> Result<usize> {
        Ok(self.read(b)?)
    }
}

impl Chan for UnixDatagram {
    fn send(&self, b: &[u8]) -> Result<()> {
        UnixDatagram::send(self, b)?;
        Ok(())
    }
    fn recv(&self, b: &mut [u8]) -> Result<usize> {
        Ok(UnixDatagram::recv(self, b)?)
    }
}

impl Chan for UdpSocket {
    fn send(&self, b: &[u8]) -> Result<()> {
        UdpSocket::send(self, b)?;
        Ok(())
    }
    fn recv(&self, b: &mut [u8]) -> Result<usize> {
        Ok(UdpSocket::recv(self, b)?)
    }
}

/// Serve one peer: echo `E` messages, count `S` messages, answer `F` with the count.
fn serve(c: &dyn Chan) -> Result<()> {
    let mut buf = vec![0u8; 65536];
    let mut count: u64 = 0;
    loop {
        let n = c.recv(&mut buf)?;
        match buf.first() {
            Some(&ECHO) => c.send(&buf[..n])?,
            Some(&SINK) => count += 1,
            Some(&FINISH) => {
                let mut msg = [FINISH; 9];
                msg[1..].copy_from_slice(&count.to_le_bytes());
                c.send(&msg)?;
                count = 0;
            }
            _ => {}
        }
    }
}

#[derive(Debug, Default, serde::Serialize)]
struct Rtt {
    p50_us: f64,
    p99_us: f64,
    avg_us: f64,
}

#[derive(Debug, Default, serde::Serialize)]
struct Rate {
    size: usize,
    sent_pps: f64,
    recv_pps: f64,
    recv_gbps: f64,
}

fn rtt(c: &dyn Chan, pings: u64) -> Result<Rtt> {
    rtt_paced(c, pings, Duration::ZERO)
}

/// Ping-pong with `gap` between pings: with a gap both sides fall asleep between pings, so
/// this measures the wake-up path rather than the spinning one.
fn rtt_paced(c: &dyn Chan, pings: u64, gap: Duration) -> Result<Rtt> {
    let mut h = Histogram::<u64>::new(3)?;
    let mut msg = [0u8; 64];
    msg[0] = ECHO;
    let mut buf = [0u8; 256];
    for i in 0..pings + pings / 10 {
        let t = Instant::now();
        c.send(&msg)?;
        c.recv(&mut buf)?;
        if i >= pings / 10 {
            h.record(t.elapsed().as_nanos() as u64)?;
        }
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
    }
    Ok(Rtt {
        p50_us: h.value_at_quantile(0.5) as f64 / 1000.0,
        p99_us: h.value_at_quantile(0.99) as f64 / 1000.0,
        avg_us: h.mean() / 1000.0,
    })
}

/// Send `size`-byte messages for `secs`, then ask the server how many arrived.
fn rate(c: &dyn Chan, size: usize, secs: f64, lossy: bool) -> Result<Rate> {
    let mut msg = vec![0u8; size];
    msg[0] = SINK;
    let t = Instant::now();
    let limit = Duration::from_secs_f64(secs);
    let mut sent: u64 = 0;
    while t.elapsed() < limit {
        for _ in 0..64 {
            if c.send(&msg).is_ok() {
                sent += 1;
            }
        }
    }
    let elapsed = t.elapsed().as_secs_f64();
    let mut buf = [0u8; 64];
    let mut received = None;
    for _ in 0..if lossy { 50 } else { 1 } {
        c.send(&[FINISH])?;
        match c.recv(&mut buf) {
            Ok(9) if buf[0] == FINISH => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&buf[1..9]);
                received = Some(u64::from_le_bytes(n));
                break;
            }
            Ok(_) => continue,
            Err(_) if lossy => continue,
            Err(e) => return Err(e),
        }
    }
    let received = received.context("the server never reported its count")?;
    // Drain anything still queued (late echoes of a previous FINISH).
    Ok(Rate {
        size,
        sent_pps: sent as f64 / elapsed,
        recv_pps: received as f64 / elapsed,
        recv_gbps: received as f64 * size as f64 * 8.0 / elapsed / 1e9,
    })
}

/// Bulk transfer: what the receiver got, over the time until it confirmed it.
#[derive(Debug, Default, serde::Serialize)]
struct Goodput {
    size: usize,
    bytes: u64,
    secs: f64,
    gbps: f64,
}

impl Goodput {
    fn new(size: usize, bytes: u64, t: Instant) -> Goodput {
        let secs = t.elapsed().as_secs_f64();
        Goodput {
            size,
            bytes,
            secs,
            gbps: bytes as f64 * 8.0 / secs / 1e9,
        }
    }
}

/// Send `size`-byte messages for `secs`, then wait for the server's count: the goodput of a
/// flow that loses nothing (for a reliable flow the count comes after the last message).
fn goodput(c: &dyn Chan, size: usize, secs: f64) -> Result<Goodput> {
    let mut msg = vec![0u8; size];
    msg[0] = SINK;
    let t = Instant::now();
    let limit = Duration::from_secs_f64(secs);
    while t.elapsed() < limit {
        for _ in 0..16 {
            c.send(&msg)?;
        }
    }
    c.send(&[FINISH])?;
    let mut buf = [0u8; 64];
    let n = c.recv(&mut buf)?;
    if n != 9 || buf[0] != FINISH {
        bail!("the server's count is {n} bytes long");
    }
    let mut count = [0u8; 8];
    count.copy_from_slice(&buf[1..9]);
    Ok(Goodput::new(
        size,
        u64::from_le_bytes(count) * size as u64,
        t,
    ))
}

/// A byte stream for `secs` in `size`-byte writes; the server answers the end of the stream
/// with the bytes it read.
fn stream_goodput<S: Read + Write>(
    s: &mut S,
    shutdown: impl FnOnce(&mut S) -> std::io::Result<()>,
    size: usize,
    secs: f64,
) -> Result<Goodput> {
    let buf = vec![0x5au8; size];
    let t = Instant::now();
    let limit = Duration::from_secs_f64(secs);
    while t.elapsed() < limit {
        for _ in 0..16 {
            s.write_all(&buf)?;
        }
    }
    shutdown(s)?;
    let mut count = [0u8; 8];
    s.read_exact(&mut count)?;
    Ok(Goodput::new(size, u64::from_le_bytes(count), t))
}

/// Count the bytes of one stream until its end, answer with the count.
fn serve_stream<S: Read + Write>(mut s: S) -> Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        match s.read(&mut buf)? {
            0 => break,
            n => total += n as u64,
        }
    }
    s.write_all(&total.to_le_bytes())?;
    Ok(())
}

/// Bulk goodput rows.
#[derive(Debug, Default, serde::Serialize)]
struct Bulk {
    o7s_raw: Goodput,
    o7s_data: Goodput,
    unix_stream: Goodput,
    tcp_loopback: Goodput,
}

/// Message (or write) size of the bulk transfers.
const BULK_SIZE: usize = 65_536;

#[derive(Debug, Default, serde::Serialize)]
struct Row {
    rtt: Rtt,
    rtt_1ms_gap: Rtt,
    rate64: Rate,
    rate1400: Rate,
}

fn measure(c: &dyn Chan, a: &Args, lossy: bool) -> Result<Row> {
    Ok(Row {
        rtt: rtt(c, a.pings)?,
        rtt_1ms_gap: rtt_paced(c, 1000, Duration::from_millis(1))?,
        rate64: rate(c, 64, a.secs, lossy)?,
        rate1400: rate(c, 1400, a.secs, lossy)?,
    })
}

struct Guard(Vec<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn wait_path(p: &Path) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(10);
    while !p.exists() {
        if Instant::now() > end {
            bail!("{} never appeared", p.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn irm(bin: &Path, rundir: &Path, args: &str) -> Result<String> {
    let out = Command::new(bin.join("irm"))
        .args(args.split_whitespace())
        .env("O7S_RUNDIR", rundir)
        .output()
        .context("running irm")?;
    if !out.status.success() {
        bail!("irm {args}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn main() -> Result<()> {
    let a = Args::parse();
    if a.serve_o7s {
        // Serve until the IRMd goes away (the bench is over).
        while let Ok(f) = o7s::Flow::accept(None) {
            std::thread::spawn(move || serve(&f));
        }
        return Ok(());
    }
    if let Some(p) = &a.serve_unix {
        let s = UnixDatagram::bind(p)?;
        let mut b = [0u8; 1];
        let (_, from) = s.recv_from(&mut b)?;
        s.connect(from.as_pathname().context("unnamed client")?)?;
        return serve(&s);
    }
    if let Some(addr) = a.udp_echo {
        let s = UdpSocket::bind(addr)?;
        let mut b = vec![0u8; 65536];
        loop {
            let (n, from) = s.recv_from(&mut b)?;
            s.send_to(&b[..n], from)?;
        }
    }
    if let Some(addr) = a.udp_ping {
        let local = if addr.is_ipv6() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        };
        let s = UdpSocket::bind(local)?;
        s.connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let r = rtt_paced(&s, a.pings, Duration::ZERO)?;
        if a.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!(
                "udp {addr}: rtt p50 {:.2} us, p99 {:.2} us, avg {:.2} us",
                r.p50_us, r.p99_us, r.avg_us
            );
        }
        return Ok(());
    }
    if let Some(port) = a.serve_tcp {
        let l = TcpListener::bind(("127.0.0.1", port))?;
        let (s, _) = l.accept()?;
        return serve_stream(s);
    }
    if let Some(p) = &a.serve_unix_stream {
        let l = UnixListener::bind(p)?;
        let (s, _) = l.accept()?;
        return serve_stream(s);
    }
    if let Some(port) = a.serve_udp {
        let s = UdpSocket::bind(("127.0.0.1", port))?;
        let mut b = [0u8; 1];
        let (_, from) = s.recv_from(&mut b)?;
        s.connect(from)?;
        return serve(&s);
    }

    let tmp = tempfile::Builder::new().prefix("o7s-bench-").tempdir()?;
    let r = bench(&a, tmp.path());
    if r.is_err() {
        let log = std::fs::read_to_string(tmp.path().join("irmd.log")).unwrap_or_default();
        eprintln!("irmd log:\n{log}");
    }
    r
}

fn bench(a: &Args, tmp: &Path) -> Result<()> {
    let me = std::env::current_exe()?;
    let bin = me.parent().context("binary directory")?.to_path_buf();
    let rundir = tmp.join("run");
    let mut guard = Guard(Vec::new());

    // o7s: an IRMd, a local layer and a server bound to "bench".
    let log = std::fs::File::create(tmp.join("irmd.log"))?;
    let irmd = Command::new(bin.join("irmd"))
        .arg("--stdout")
        .env("O7S_RUNDIR", &rundir)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting irmd (build the workspace first: cargo build --release --workspace)")?;
    let irmd_pid = irmd.id();
    guard.0.push(irmd);
    wait_path(&rundir.join("irmd.sock"))?;
    irm(&bin, &rundir, "ipcp bootstrap type local name lo layer lo")?;
    irm(&bin, &rundir, "name reg bench layer lo")?;
    std::thread::sleep(Duration::from_millis(200));
    let list = irm(&bin, &rundir, "ipcp list --json")?;
    let v: serde_json::Value = serde_json::from_str(&list)?;
    let ipcp_pid = v[0]["pid"].as_u64().unwrap_or(0) as u32;
    let (irmd_rss, ipcp_rss) = (rss_kib(irmd_pid), rss_kib(ipcp_pid));
    let srv = Command::new(&me)
        .arg("--serve-o7s")
        .env("O7S_RUNDIR", &rundir)
        .spawn()?;
    irm(
        &bin,
        &rundir,
        &format!("bind process {} name bench", srv.id()),
    )?;
    guard.0.push(srv);
    std::env::set_var("O7S_RUNDIR", &rundir);
    let flow = o7s::Flow::alloc("bench", o7s::QosSpec::RAW, Some(Duration::from_secs(10)))?;
    let o7s_row = measure(&flow, a, false)?;
    let raw_bulk = goodput(&flow, BULK_SIZE.min(flow.mtu()), a.secs)?;
    drop(flow);
    // The same with FRCT (`data`: reliable, in order, flow control).
    let flow = o7s::Flow::alloc("bench", o7s::QosSpec::DATA, Some(Duration::from_secs(10)))?;
    let data_bulk = goodput(&flow, BULK_SIZE, a.secs)?;
    drop(flow);

    // A unix datagram socket between two processes.
    let spath = tmp.join("srv.sock");
    guard
        .0
        .push(Command::new(&me).arg("--serve-unix").arg(&spath).spawn()?);
    wait_path(&spath)?;
    let cpath = tmp.join("cli.sock");
    let u = UnixDatagram::bind(&cpath)?;
    u.connect(&spath)?;
    u.send(&[0])?;
    let unix_row = measure(&u, a, false)?;

    // UDP on 127.0.0.1 between two processes.
    let port = {
        let probe = UdpSocket::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    guard.0.push(
        Command::new(&me)
            .arg("--serve-udp")
            .arg(port.to_string())
            .spawn()?,
    );
    let udp = UdpSocket::bind("127.0.0.1:0")?;
    udp.connect(("127.0.0.1", port))?;
    udp.set_read_timeout(Some(Duration::from_millis(200)))?;
    // The server learns our address from the first datagram; resend until it answers.
    let mut ready = false;
    for _ in 0..50 {
        // Until the server is bound, sends fail with ECONNREFUSED (ICMP port unreachable).
        let _ = udp.send(&[0]);
        let _ = udp.send(&[ECHO]);
        let mut b = [0u8; 8];
        if udp.recv(&mut b).is_ok() {
            ready = true;
            break;
        }
    }
    if !ready {
        bail!("the UDP server did not answer");
    }
    udp.set_read_timeout(Some(Duration::from_secs(2)))?;
    let udp_row = measure(&udp, a, true)?;

    // Byte streams: a unix stream socket and TCP on 127.0.0.1, between two processes.
    let spath = tmp.join("stream.sock");
    guard.0.push(
        Command::new(&me)
            .arg("--serve-unix-stream")
            .arg(&spath)
            .spawn()?,
    );
    wait_path(&spath)?;
    let mut us = UnixStream::connect(&spath)?;
    let unix_bulk = stream_goodput(
        &mut us,
        |s| s.shutdown(std::net::Shutdown::Write),
        BULK_SIZE,
        a.secs,
    )?;
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    guard.0.push(
        Command::new(&me)
            .arg("--serve-tcp")
            .arg(port.to_string())
            .spawn()?,
    );
    let end = Instant::now() + Duration::from_secs(10);
    let mut ts = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e).context("connecting to the TCP server"),
        }
    };
    let tcp_bulk = stream_goodput(
        &mut ts,
        |s| s.shutdown(std::net::Shutdown::Write),
        BULK_SIZE,
        a.secs,
    )?;
    let bulk = Bulk {
        o7s_raw: raw_bulk,
        o7s_data: data_bulk,
        unix_stream: unix_bulk,
        tcp_loopback: tcp_bulk,
    };

    if a.json {
        let j = serde_json::json!({
            "o7s_local": o7s_row, "unix_dgram": unix_row, "udp_loopback": udp_row,
            "bulk_goodput": bulk,
            "irmd_rss_kib": irmd_rss, "ipcpd_local_rss_kib": ipcp_rss,
        });
        println!("{j}");
    } else {
        println!(
            "{:<14} {:>9} {:>9} {:>9} | {:>11} {:>11} | {:>11} {:>9}",
            "transport",
            "rtt p50",
            "rtt p99",
            "rtt avg",
            "64B rx/s",
            "64B Gb/s",
            "1400B rx/s",
            "Gb/s"
        );
        for (n, r) in [
            ("o7s local", &o7s_row),
            ("unix dgram", &unix_row),
            ("udp 127.0.0.1", &udp_row),
        ] {
            println!(
                "{:<14} {:>7.2}us {:>7.2}us {:>7.2}us | {:>11.0} {:>11.3} | {:>11.0} {:>9.2}",
                n,
                r.rtt.p50_us,
                r.rtt.p99_us,
                r.rtt.avg_us,
                r.rate64.recv_pps,
                r.rate64.recv_gbps,
                r.rate1400.recv_pps,
                r.rate1400.recv_gbps
            );
        }
        println!("\nping-pong with 1 ms between pings (both sides asleep between pings):");
        for (n, r) in [
            ("o7s local", &o7s_row),
            ("unix dgram", &unix_row),
            ("udp 127.0.0.1", &udp_row),
        ] {
            let g = &r.rtt_1ms_gap;
            println!(
                "{:<14} p50 {:>7.2}us  p99 {:>7.2}us  avg {:>7.2}us",
                n, g.p50_us, g.p99_us, g.avg_us
            );
        }
        println!(
            "\nbulk goodput, {}-byte messages or writes, {} s (bytes the receiver confirmed):",
            BULK_SIZE, a.secs
        );
        for (n, g) in [
            ("o7s local raw", &bulk.o7s_raw),
            ("o7s local data", &bulk.o7s_data),
            ("unix stream", &bulk.unix_stream),
            ("tcp 127.0.0.1", &bulk.tcp_loopback),
        ] {
            println!(
                "{:<14} {:>8.2} Gb/s  ({:.0} MB in {:.3} s)",
                n,
                g.gbps,
                g.bytes as f64 / 1e6,
                g.secs
            );
        }
        println!(
            "idle RSS: irmd {} KiB, ipcpd (local) {} KiB",
            irmd_rss, ipcp_rss
        );
    }
    Ok(())
}
