//! FRCT end to end across a lossy link: two nodes on a veth that drops 10 % of the frames in
//! each direction (nftables `numgen random` on the ingress of both ends). Over udp4 and over
//! eth-dix, `ocat` moves 100 MB of random bytes over a `data` flow and they arrive intact
//! (SHA-256), and `oping --qos data` loses no ping.
//!
//! The shims send an unanswered flow request again (`shim_flow_allocations_survive_loss_root`
//! shows it), but a name query only once. So `ocat` allocates its flow on the clean link (it
//! reads the stream from a pipe that stays empty until the loss is on), and `oping` is still
//! run again if its allocation went unanswered; after allocation the flows get no help.
//!
//! Over udp4 the sender writes messages that fit one Ethernet frame (`ocat -s 1400`): the
//! udp4 layer's MTU is 65 503 bytes, so FRCT cuts larger messages into 65 KB datagrams that
//! the kernel fragments into 45 frames each, of which at 10 % frame loss fewer than 1 in 100
//! arrives whole. `udp4_layer_sized_fragments_under_loss_root` (ignored) shows that.
//! Needs root (network namespaces); without it each test prints a notice and passes.

use o7s_lab::output_text as text;
use o7s_lab::root_or_skip;
use o7s_lab::{Lab, Node, Topology};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type R<T> = Result<T, Box<dyn std::error::Error>>;

/// Share of frames dropped on each end's ingress.
const LOSS_PERCENT: u8 = 10;
/// Bytes `ocat` moves across the lossy link.
const TRANSFER: u64 = 100_000_000;
/// Pings `oping --qos data` sends through the loss.
const PINGS: u32 = 200;
/// A layer's whole run (transfer and pings, allocation retries included) must end within
/// this.
const LAYER_LIMIT: Duration = Duration::from_secs(60);
/// Tries of `oping` when its flow allocation went unanswered.
const ATTEMPTS: u32 = 4;
/// How long the `ocat` server gets to finish after the sender has.
const SERVER_GRACE: Duration = Duration::from_secs(10);
/// The words a tool uses when its flow allocation failed.
const ALLOC_FAILED: &str = "cannot allocate a flow";

/// A child killed on drop: a failed assertion must not leave it running until the lab goes.
struct Reap(Option<Child>);

impl Reap {
    /// Its output once it exits, or `None` if it is still running after `limit` (it is then
    /// killed).
    fn output_within(mut self, limit: Duration) -> R<Option<Output>> {
        let Some(mut c) = self.0.take() else {
            return Ok(None);
        };
        let end = Instant::now() + limit;
        while c.try_wait()?.is_none() {
            if Instant::now() >= end {
                let _ = c.kill();
                let _ = c.wait();
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(c.wait_with_output()?))
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Two nodes on a veth with a `kind` layer called `net` on both ends; node b serves `ping`
/// with `oping -l` and registers `cat` (the tests bind an `ocat -l` process to it).
fn pair(kind: &str) -> R<Lab> {
    let lab = Lab::up(&Topology::new().node("a").node("b").link("a", "b"))?;
    let (a, b) = (lab.node("a"), lab.node("b"));
    let hosts = lab.dir().join("hosts");
    if kind == "udp4" {
        let ia = a.addr4_to("b").ok_or("no address")?;
        let ib = b.addr4_to("a").ok_or("no address")?;
        std::fs::write(&hosts, format!("{ia} cli\n{ib} cat ping\n"))?;
    }
    for (n, peer) in [(a, "b"), (b, "a")] {
        let params = match kind {
            "udp4" => format!(
                "ip {} hosts {}",
                n.addr4_to(peer).ok_or("no address")?,
                hosts.display()
            ),
            _ => format!("dev {}", n.ifname_to(peer).ok_or("no interface")?),
        };
        n.irm_ok(&format!(
            "ipcp bootstrap type {kind} name {kind}-{} layer net {params}",
            n.name()
        ))?;
    }
    b.irm_ok("name reg cat layer net")?;
    b.irm_ok("name reg ping layer net")?;
    b.irm_ok("bind program oping name ping auto -- -l")?;
    Ok(lab)
}

/// Drop `percent` % of the frames arriving at either end of the a–b link.
fn lossy(lab: &Lab, percent: u8) -> TestResult {
    for (n, peer) in [("a", "b"), ("b", "a")] {
        let dev = lab.node(n).ifname_to(peer).ok_or("no interface")?;
        lab.set_loss(n, dev, percent)?;
    }
    Ok(())
}

/// `len` random bytes into `path`.
fn random_file(path: &Path, len: u64) -> TestResult {
    let mut src = std::fs::File::open("/dev/urandom")?.take(len);
    let mut dst = std::io::BufWriter::new(std::fs::File::create(path)?);
    let n = std::io::copy(&mut src, &mut dst)?;
    dst.flush()?;
    assert_eq!(n, len);
    Ok(())
}

fn sha256(node: &Node, path: &Path) -> R<String> {
    let out = node.cmd("sha256sum").arg(path).output()?;
    assert!(out.status.success(), "sha256sum: {}", text(&out));
    let s = String::from_utf8_lossy(&out.stdout);
    Ok(s.split_whitespace().next().unwrap_or_default().to_owned())
}

/// Start `ocat -l --stats -o out` on node b, bound to the name `cat`.
fn ocat_server(lab: &Lab, out: &Path) -> R<Reap> {
    let b = lab.node("b");
    let srv = b
        .cmd("ocat")
        .args(["-l", "--stats", "-o"])
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let srv = Reap(Some(srv));
    // `ip netns exec` execs ocat in place: the pid is ocat's.
    let pid = srv.0.as_ref().map(Child::id).unwrap_or_default();
    b.irm_ok(&format!("bind process {pid} name cat"))?;
    Ok(srv)
}

/// What one `ocat` transfer from a to b gave.
struct Transfer {
    sender: Output,
    /// `None`: the server did not finish within [`SERVER_GRACE`] of the sender.
    receiver: Option<Output>,
    /// From the first byte handed to the sender to its exit (closing included).
    took: Duration,
}

/// Send `input` from node a to an `ocat` server on node b writing `output`, with `args`
/// given to the sender. The sender reads standard input: once its flow is up, `percent` %
/// loss is set on the link, and only then does the stream start.
fn ocat_transfer(
    lab: &Lab,
    args: &[&str],
    percent: u8,
    input: &Path,
    output: &Path,
) -> R<Transfer> {
    let a = lab.node("a");
    let srv = ocat_server(lab, output)?;
    let mut sender = Reap(Some(
        a.cmd("ocat")
            .args(["-n", "cat", "--stats"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?,
    ));
    let child = sender.0.as_mut().ok_or("no sender")?;
    let up = o7s_lab::wait_for(Duration::from_secs(15), || {
        a.irm_ok("flow list --json")
            .map(|l| l.contains("flow_id"))
            .unwrap_or(false)
            || !matches!(child.try_wait(), Ok(None))
    });
    let Some(mut stdin) = child.stdin.take() else {
        return Err("no stdin".into());
    };
    if !up || !matches!(child.try_wait(), Ok(None)) {
        drop(stdin);
        let out = sender.output_within(Duration::from_secs(1))?;
        return Err(format!(
            "the sender's flow did not come up: {}",
            out.map(|o| text(&o)).unwrap_or_default()
        )
        .into());
    }
    lossy(lab, percent)?;
    let t0 = Instant::now();
    let feed = {
        let input = input.to_owned();
        std::thread::spawn(move || -> std::io::Result<u64> {
            std::io::copy(&mut std::fs::File::open(input)?, &mut stdin)
        })
    };
    let sender = sender
        .output_within(LAYER_LIMIT)?
        .ok_or("the sender did not finish")?;
    let took = t0.elapsed();
    let fed = feed.join().map_err(|_| "the feeding thread panicked")?;
    if sender.status.success() {
        fed?;
    }
    let limit = if sender.status.success() {
        SERVER_GRACE
    } else {
        Duration::from_secs(1)
    };
    let receiver = srv.output_within(limit)?;
    Ok(Transfer {
        sender,
        receiver,
        took,
    })
}

/// `oping --qos data` from a to `ping` on b, retried while the allocation goes unanswered.
fn data_pings(lab: &Lab) -> R<Output> {
    for attempt in 1..=ATTEMPTS {
        let out = lab
            .node("a")
            .cmd("oping")
            .args(["-n", "ping", "--qos", "data", "-c"])
            .arg(PINGS.to_string())
            .args(["-i", "1ms", "--json"])
            .output()?;
        if !out.status.success() && text(&out).contains(ALLOC_FAILED) && attempt < ATTEMPTS {
            eprintln!(
                "attempt {attempt}: the allocation went unanswered, again: {}",
                text(&out).trim()
            );
            continue;
        }
        return Ok(out);
    }
    unreachable!("the last attempt returns")
}

fn logs(lab: &Lab) -> String {
    format!(
        "--- irmd a ---\n{}\n--- irmd b ---\n{}",
        lab.node("a").log(),
        lab.node("b").log()
    )
}

/// Move `len` random bytes from a to b with `ocat ARGS` and check they arrived intact.
fn check_transfer(lab: &Lab, what: &str, len: u64, args: &[&str], percent: u8) -> TestResult {
    let (a, b) = (lab.node("a"), lab.node("b"));
    let input = lab.dir().join("in.bin");
    let output = lab.dir().join("out.bin");
    random_file(&input, len)?;
    let want = sha256(a, &input)?;
    let t = ocat_transfer(lab, args, percent, &input, &output)?;
    let receiver = t.receiver.as_ref().map_or_else(
        || "(still running: killed)".to_owned(),
        |o| text(o).trim().to_owned(),
    );
    eprintln!(
        "{what}: {len} bytes in {:.2} s ({:.1} Mb/s)\n  sender: {}\n  receiver: {receiver}",
        t.took.as_secs_f64(),
        len as f64 * 8.0 / t.took.as_secs_f64() / 1e6,
        text(&t.sender).trim().replace('\n', "\n          "),
    );
    assert!(
        t.sender.status.success(),
        "{what}: the sender failed: {}\n{}",
        text(&t.sender),
        logs(lab)
    );
    let receiver = t.receiver.ok_or("the receiver did not finish")?;
    assert!(
        receiver.status.success(),
        "{what}: the receiver failed: {}\n{}",
        text(&receiver),
        logs(lab)
    );
    assert_eq!(std::fs::metadata(&output)?.len(), len, "{what}");
    assert_eq!(
        sha256(b, &output)?,
        want,
        "{what}: what arrived differs from what was sent"
    );
    Ok(())
}

/// 100 MB through `ocat` and 200 data pings across the lossy link, on a `kind` layer.
fn reliable_under_loss(kind: &str, ocat_args: &[&str]) -> TestResult {
    let t0 = Instant::now();
    let lab = pair(kind)?;
    let what = format!("{kind} at {LOSS_PERCENT}% loss each way");
    check_transfer(&lab, &what, TRANSFER, ocat_args, LOSS_PERCENT)?;

    let t1 = Instant::now();
    let out = data_pings(&lab)?;
    eprintln!(
        "{what}: {PINGS} data pings, 1 ms apart, in {:.2} s: {}",
        t1.elapsed().as_secs_f64(),
        text(&out).trim()
    );
    assert!(
        out.status.success(),
        "oping: {}\n{}",
        text(&out),
        logs(&lab)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(j["transmitted"], PINGS, "{j}");
    assert_eq!(
        j["received"], PINGS,
        "no ping may be lost on a data flow: {j}"
    );
    assert_eq!(j["loss_percent"], 0.0, "{j}");
    let total = t0.elapsed();
    eprintln!("{what}: {:.2} s in all", total.as_secs_f64());
    assert!(total < LAYER_LIMIT, "{kind} took {total:?}");
    Ok(())
}

#[test]
fn udp4_reliable_under_loss_root() -> TestResult {
    if !root_or_skip("udp4_reliable_under_loss_root") {
        return Ok(());
    }
    // One message per frame: see the file's comment.
    reliable_under_loss("udp4", &["-s", "1400"])
}

#[test]
fn eth_dix_reliable_under_loss_root() -> TestResult {
    if !root_or_skip("eth_dix_reliable_under_loss_root") {
        return Ok(());
    }
    reliable_under_loss("eth-dix", &[])
}

/// FRCT fragments to the layer's MTU; over udp4 that is a 65 KB datagram the kernel cuts
/// into 45 Ethernet frames, so at 10 % frame loss next to nothing arrives and the flow fails
/// after FRCT's `r` (120 s). Passes once fragments fit the path.
#[test]
#[ignore = "FRCT fragments of 65 KB over udp4 do not survive 10 % frame loss"]
fn udp4_layer_sized_fragments_under_loss_root() -> TestResult {
    if !root_or_skip("udp4_layer_sized_fragments_under_loss_root") {
        return Ok(());
    }
    let lab = pair("udp4")?;
    check_transfer(&lab, "udp4, 64 KiB messages", 10_000_000, &[], LOSS_PERCENT)
}

/// A shim's flow requests and replies lost on the medium are sent again: at 15 % frame loss
/// each way about one allocation in four loses its request or its reply, and yet every one
/// of 10 allocations over eth-dix and over udp4 succeeds at its first try (the one ping
/// each sends may be lost: only the allocation counts here).
#[test]
fn shim_flow_allocations_survive_loss_root() -> TestResult {
    if !root_or_skip("shim_flow_allocations_survive_loss_root") {
        return Ok(());
    }
    for kind in ["eth-dix", "udp4"] {
        let lab = pair(kind)?;
        let a = lab.node("a");
        let allocated = |what: &str| -> TestResult {
            let out = a
                .cmd("oping")
                .args(["-n", "ping", "-c", "1", "-i", "1ms", "--json"])
                .output()?;
            let sent = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .map(|j| j["transmitted"] == 1)
                .unwrap_or(false);
            assert!(
                sent && !text(&out).contains(ALLOC_FAILED),
                "{kind}, {what}: {}\n{}",
                text(&out),
                logs(&lab)
            );
            Ok(())
        };
        // On the clean link first: the name is found (a name query is not sent again).
        allocated("clean")?;
        lossy(&lab, 15)?;
        for i in 1..=10 {
            allocated(&format!("allocation {i} at 15 % loss"))?;
        }
    }
    Ok(())
}
