//! Broadcast layers between namespaces: enrollment, dt connections, application joins and
//! flooding end to end with real `irmd`, `ipcpd` and `obc` processes, over eth-dix links and
//! over a unicast layer, and from a lab network file. Needs root (network namespaces);
//! without it each test prints a notice and passes.

use o7s_lab::broadcast::broadcast_layer;
use o7s_lab::root_or_skip;
use o7s_lab::unicast::{eth_links, ipcp_name, unicast_over_eth};
use o7s_lab::{wait_for, Lab, Topology};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn line(n: usize) -> Topology {
    let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
    let mut t = Topology::new();
    for x in &names {
        t = t.node(x);
    }
    for w in names.windows(2) {
        t = t.link(&w[0], &w[1]);
    }
    t
}

/// Every node's log and the state of its broadcast IPCP, for a failure message.
fn logs(lab: &Lab, layer: &str) -> String {
    lab.nodes()
        .iter()
        .map(|n| {
            let show = n
                .irm_ok(&format!("ipcp show {}", ipcp_name(layer, n.name())))
                .unwrap_or_default();
            format!("--- {} ---\n{}\n{show}", n.name(), n.log())
        })
        .collect()
}

/// An `obc -l` on a node: its stdout lines arrive on a channel.
struct Listener {
    node: String,
    child: Child,
    lines: Receiver<String>,
    got: Vec<String>,
}

impl Listener {
    /// Start `obc -n layer -l` on `node` and wait until it joined the layer.
    fn start(lab: &Lab, node: &str, layer: &str) -> Result<Listener, Box<dyn std::error::Error>> {
        let mut c = lab.node(node).cmd("obc");
        c.args(["-n", layer, "-l"]);
        Listener::spawn(c, node, layer)
    }

    /// Start `obc` as `c` (a listener of `layer` on `node`) and wait until it joined.
    fn spawn(
        mut c: Command,
        node: &str,
        layer: &str,
    ) -> Result<Listener, Box<dyn std::error::Error>> {
        let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let mut l = Listener {
            node: node.to_string(),
            child,
            lines: rx,
            got: Vec::new(),
        };
        if !l.wait_line("New flow.", Duration::from_secs(10)) {
            let _ = l.child.kill();
            let mut err = String::new();
            if let Some(mut e) = l.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(format!("obc -l on {node} did not join {layer}: {err}").into());
        }
        Ok(l)
    }

    /// Collect output until `want` shows up (true) or `limit` passes.
    fn wait_line(&mut self, want: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            if self.got.iter().any(|l| l == want) {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.lines.recv_timeout(left) {
                Ok(l) => self.got.push(l),
                Err(_) => return false,
            }
        }
    }

    /// Wait for every message of `msgs` ("Message is M." lines).
    fn expect(&mut self, msgs: &[String], lab: &Lab, layer: &str) {
        for m in msgs {
            let line = format!("Message is {m}.");
            assert!(
                self.wait_line(&line, Duration::from_secs(10)),
                "obc -l on {} never printed {line:?}; it printed {:?}\n{}",
                self.node,
                self.got,
                logs(lab, layer)
            );
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `obc -n layer -m msg` on `node`, which must succeed.
fn send(lab: &Lab, node: &str, layer: &str, msg: &str) -> TestResult {
    let out = lab
        .node(node)
        .cmd("obc")
        .args(["-n", layer, "-m", msg])
        .output()?;
    assert!(
        out.status.success(),
        "obc -m on {node}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Listeners on `ears` hear every message sent from `mouths` (each sends `n`), and not their
/// own (a sender is a process of its own, so a listener's node may send too).
fn exchange(lab: &Lab, layer: &str, ears: &[&str], mouths: &[&str], n: usize) -> TestResult {
    let mut listeners = Vec::new();
    for e in ears {
        listeners.push(Listener::start(lab, e, layer)?);
    }
    let mut sent = Vec::new();
    for m in mouths {
        for i in 0..n {
            let msg = format!("{m}-says-{i}");
            send(lab, m, layer, &msg)?;
            sent.push(msg);
        }
    }
    for l in &mut listeners {
        l.expect(&sent, lab, layer);
    }
    Ok(())
}

#[test]
fn line_of_three_over_eth_dix_floods_every_message_root() -> TestResult {
    if !root_or_skip("line_of_three_over_eth_dix") {
        return Ok(());
    }
    let lab = Lab::up(&line(3))?;
    eth_links(&lab)?;
    let parents = broadcast_layer(&lab, "bc", None)?;
    assert_eq!(parents.get("n2").map(String::as_str), Some("n1"));
    // n1 is the middle: it forwards between the ends, and its own application hears both.
    exchange(&lab, "bc", &["n0", "n2"], &["n1"], 5)?;
    exchange(&lab, "bc", &["n0", "n1", "n2"], &["n0", "n2"], 3)?;
    // Joins count as flows of the layer's IPCP and show in irm ipcp show.
    let _l = Listener::start(&lab, "n1", "bc")?;
    let show = lab.node("n1").irm_ok("ipcp show bc-n1")?;
    assert!(show.contains("layer") && show.contains("bc"), "{show}");
    assert_eq!(show.matches("neighbour ").count(), 2, "{show}");
    assert!(
        show.contains("via bc-n0") && show.contains("(accepted)"),
        "{show}"
    );
    assert!(show.contains("flow "), "{show}");
    // Joining a layer this system is not in says so.
    let out = lab
        .node("n0")
        .cmd("obc")
        .args(["-n", "nope", "-l"])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no broadcast layer named \"nope\" on this system"),
        "{err}"
    );
    // A disconnected end hears nothing more; the rest still does.
    lab.node("n2")
        .irm_ok("ipcp disconnect name bc-n2 component dt dst bc-n1")?;
    let gone = wait_for(Duration::from_secs(5), || {
        lab.node("n1")
            .irm_ok("ipcp show bc-n1")
            .is_ok_and(|s| s.matches("neighbour ").count() == 1)
    });
    assert!(gone, "n1 still has two neighbours\n{}", logs(&lab, "bc"));
    let mut far = Listener::start(&lab, "n2", "bc")?;
    exchange(&lab, "bc", &["n1"], &["n0"], 2)?;
    // n1 floods to all its neighbours at once: had n2 still been one, n0's first message
    // would be there by now.
    assert!(
        !far.wait_line("Message is n0-says-0.", Duration::from_millis(300)),
        "n2 heard n0 after disconnecting: {:?}",
        far.got
    );
    Ok(())
}

#[test]
fn broadcast_over_a_unicast_layer_root() -> TestResult {
    if !root_or_skip("broadcast_over_a_unicast_layer") {
        return Ok(());
    }
    let lab = Lab::up(&line(3))?;
    eth_links(&lab)?;
    unicast_over_eth(&lab, "net", "ls_t_recalc 1")?;
    // Members of the broadcast layer reach each other by name through the unicast layer.
    broadcast_layer(&lab, "bc", Some("net"))?;
    exchange(&lab, "bc", &["n0", "n2"], &["n1"], 3)?;
    exchange(&lab, "bc", &["n1", "n2"], &["n0"], 3)?;
    Ok(())
}

/// Node `me`'s config: an eth-dix layer on `dev` in which its broadcast IPCP's name is
/// registered, and the broadcast IPCP, bootstrapped (`peer` None) or enrolled through and
/// connected to `peer`'s.
fn config(me: &str, dev: &str, peer: Option<&str>) -> String {
    let join = match peer {
        None => "bootstrap = \"bc\"".to_string(),
        Some(p) => format!("enrol = \"bc-{p}\"\nconn = [\"bc-{p}\"]"),
    };
    format!(
        r#"[eth-dix.e-{me}]
bootstrap = "eth"
dev = "{dev}"
reg = ["bc-{me}"]

[broadcast.bc-{me}]
{join}
autobind = true
"#
    )
}

#[test]
fn broadcast_systems_from_their_config_files_root() -> TestResult {
    if !root_or_skip("broadcast_systems_from_their_config_files") {
        return Ok(());
    }
    let mut lab = Lab::up(&Topology::new().node("a").node("b").link("a", "b"))?;
    // b comes up first: its enrollment waits (retried) until a is there.
    for (me, peer, via) in [("b", "a", Some("a")), ("a", "b", None)] {
        let dev = lab
            .node(me)
            .ifname_to(peer)
            .ok_or("no interface")?
            .to_string();
        let file = lab.dir().join(format!("{me}.toml"));
        std::fs::write(&file, config(me, &dev, via))?;
        lab.restart_irmd(me, &["--config", &file.display().to_string()])?;
    }
    let joined = wait_for(Duration::from_secs(30), || {
        lab.node("a")
            .irm_ok("ipcp show bc-a")
            .is_ok_and(|s| s.contains("neighbour 1"))
    });
    assert!(joined, "b never connected to a\n{}", logs(&lab, "bc"));
    exchange(&lab, "bc", &["a"], &["b"], 2)?;
    exchange(&lab, "bc", &["b"], &["a"], 2)?;
    Ok(())
}

/// A diamond (a cycle of four links) with a broadcast layer over its eth-dix links and one
/// over a unicast layer: the lab builds each broadcast layer as a spanning tree.
const NETWORK: &str = r#"
[[node]]
name = "a"
[[node]]
name = "b"
[[node]]
name = "c"
[[node]]
name = "d"
[[link]]
a = "a"
b = "b"
[[link]]
a = "a"
b = "c"
[[link]]
a = "b"
b = "d"
[[link]]
a = "c"
b = "d"
[[layer]]
name = "eth"
type = "eth-dix"
[[layer]]
name = "bc"
type = "broadcast"
over = ["eth"]
[[layer]]
name = "net"
type = "unicast"
over = ["eth"]
params = { ls_t_recalc = 1 }
[[layer]]
name = "bcn"
type = "broadcast"
over = ["net"]
"#;

#[test]
fn a_network_file_with_broadcast_layers_comes_up_carries_obc_and_goes_down_root() -> TestResult {
    if !root_or_skip("a_network_file_with_broadcast_layers") {
        return Ok(());
    }
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("bc.toml");
    std::fs::write(&file, NETWORK)?;
    let dir = tmp.path().join("lab");
    let lab_name = format!("b{}", std::process::id());
    let o7s_lab = || Command::new(env!("CARGO_BIN_EXE_o7s-lab"));
    let up = o7s_lab()
        .arg("up")
        .arg(&file)
        .arg("--dir")
        .arg(&dir)
        .args(["--name", &lab_name])
        .output()?;
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let down = || o7s_lab().arg("down").arg("--dir").arg(&dir).output();
    if !up.status.success() {
        let _ = down();
        return Err(format!("up: {}", text(&up)).into());
    }
    let result = (|| -> TestResult {
        let rec = o7s_lab::saved::Saved::read(&dir)?;
        let st = o7s_lab().arg("status").arg("--dir").arg(&dir).output()?;
        assert!(text(&st).contains("broadcast"), "{}", text(&st));
        let exec = |node: &str, args: &[&str]| {
            let argv: Vec<String> = std::iter::once("obc")
                .chain(args.iter().copied())
                .map(str::to_string)
                .collect();
            o7s_lab::cli::exec(&rec, node, &argv)
        };
        for layer in ["bc", "bcn"] {
            let mut ears = Vec::new();
            for n in ["b", "c"] {
                ears.push(Listener::spawn(exec(n, &["-n", layer, "-l"])?, n, layer)?);
            }
            let msg = format!("over-{layer}");
            let mut c = exec("d", &["-n", layer, "-m", &msg])?;
            let o = c.stdin(Stdio::null()).output()?;
            assert!(o.status.success(), "obc on d: {}", text(&o));
            for e in &mut ears {
                let line = format!("Message is {msg}.");
                assert!(
                    e.wait_line(&line, Duration::from_secs(10)),
                    "{} on {layer}: {:?}",
                    e.node,
                    e.got
                );
                // One copy only: the layer is a tree even though the links form a cycle.
                // A copy that went round would follow within a moment.
                e.wait_line("(no such line)", Duration::from_millis(200));
                let copies = e.got.iter().filter(|l| **l == line).count();
                assert_eq!(copies, 1, "{} on {layer}: {:?}", e.node, e.got);
            }
        }
        Ok(())
    })();
    let d = down()?;
    result?;
    assert!(d.status.success(), "down: {}", text(&d));
    assert!(!dir.exists(), "{} is left", dir.display());
    Ok(())
}
