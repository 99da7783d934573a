//! The lab itself, end to end. Every test needs root (network namespaces) and says so in its
//! name; without root each prints a notice and passes.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use o7s_lab::output_text as text;
use o7s_lab::root_or_skip;
use o7s_lab::{cleanup_stale, netns_list, netns_pids, pid_alive, Lab, Topology, PREFIX};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn pair() -> Topology {
    Topology::new().node("a").node("b").link("a", "b")
}

/// `ping -c 1 -W 1 addr` from `node`; true if it got an answer.
fn ping(lab: &Lab, node: &str, addr: impl ToString) -> bool {
    lab.node(node)
        .cmd("ping")
        .args(["-c", "1", "-W", "1", &addr.to_string()])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The `N received` count of a ping summary.
fn received(summary: &str) -> Option<u32> {
    let (before, _) = summary.split_once(" received")?;
    before.rsplit(' ').next()?.parse().ok()
}

/// What a lab left on the host, to check after it is gone.
struct Trace {
    netns: Vec<String>,
    ifnames: Vec<String>,
    pids: Vec<u32>,
    dir: PathBuf,
}

fn trace(lab: &Lab) -> Trace {
    let mut t = Trace {
        netns: Vec::new(),
        ifnames: Vec::new(),
        pids: Vec::new(),
        dir: lab.dir().to_path_buf(),
    };
    for n in lab.nodes() {
        t.netns.push(n.netns().to_owned());
        t.ifnames.extend(n.ports().iter().map(|p| p.ifname.clone()));
        t.pids.extend(netns_pids(n.netns()));
        t.pids.extend(n.irmd_pid());
    }
    t
}

fn assert_gone(t: &Trace) {
    let left = netns_list();
    for ns in &t.netns {
        assert!(!left.contains(ns), "namespace {ns} left behind");
    }
    for ifname in &t.ifnames {
        let st = Command::new("ip")
            .args(["link", "show", "dev", ifname])
            .output()
            .map(|o| o.status.success());
        assert_eq!(
            st.ok(),
            Some(false),
            "interface {ifname} in the root namespace"
        );
    }
    for &p in &t.pids {
        assert!(!pid_alive(p), "process {p} still running");
    }
    assert!(!t.dir.exists(), "{} left behind", t.dir.display());
}

#[test]
fn two_nodes_ping_and_clean_teardown_root() -> TestResult {
    if !root_or_skip("two_nodes_ping_and_clean_teardown_root") {
        return Ok(());
    }
    let lab = Lab::up(&pair())?;
    let t = trace(&lab);
    let listed = netns_list();
    for ns in &t.netns {
        assert!(listed.contains(ns), "{ns} missing from {listed:?}");
        assert!(ns.starts_with(&format!("{PREFIX}-{}-", std::process::id())));
    }
    let (a, b) = (lab.node("a"), lab.node("b"));
    assert_eq!(a.ifname_to("b"), Some("v0-b"));
    for n in [a, b] {
        for p in n.ports() {
            let out = n
                .cmd("ip")
                .args(["-o", "link", "show", &p.ifname])
                .output()?;
            assert!(text(&out).contains("state UP"), "{}", text(&out));
        }
    }
    assert!(
        t.pids.len() >= 2,
        "no irmd seen in the namespaces: {:?}",
        t.pids
    );
    let b4 = b.addr4_to("a").ok_or("no IPv4 on b")?;
    let a6 = a.addr6_to("b").ok_or("no IPv6 on a")?;
    assert!(ping(&lab, "a", b4), "ping a -> {b4}");
    assert!(ping(&lab, "b", a6), "ping b -> {a6}");
    // Nothing leaks into the host: the peer is not reachable from the root namespace's view.
    let route = Command::new("ip")
        .args(["route", "get", &b4.to_string()])
        .output()?;
    assert!(!text(&route).contains("v0-"), "{}", text(&route));
    drop(lab);
    assert_gone(&t);
    Ok(())
}

#[test]
fn panic_in_test_body_tears_down_root() {
    if !root_or_skip("panic_in_test_body_tears_down_root") {
        return;
    }
    let mut seen = None;
    let mut sleeper = None;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::up(&pair()).expect("lab up");
        sleeper = Some(lab.node("a").cmd("sleep").arg("60").spawn().expect("sleep"));
        seen = Some(trace(&lab));
        panic!("test body fails");
    }));
    assert!(r.is_err());
    let t = seen.expect("lab was up");
    assert_gone(&t);
    let status = sleeper.expect("sleep started").wait().expect("wait");
    assert!(
        !status.success(),
        "a process started in the lab survived it"
    );
}

#[test]
fn parallel_labs_do_not_collide_root() -> TestResult {
    if !root_or_skip("parallel_labs_do_not_collide_root") {
        return Ok(());
    }
    let run = || -> Result<(Vec<String>, Trace), String> {
        let lab = Lab::up(&pair()).map_err(|e| e.to_string())?;
        let b4 = lab.node("b").addr4_to("a").ok_or("no address")?;
        if !ping(&lab, "a", b4) {
            return Err(format!("ping {b4} failed"));
        }
        let t = trace(&lab);
        Ok((t.netns.clone(), t))
    };
    let (one, two) = std::thread::scope(|s| {
        let h1 = s.spawn(run);
        let h2 = s.spawn(run);
        (h1.join(), h2.join())
    });
    let (n1, t1) = one.map_err(|_| "thread panicked")??;
    let (n2, t2) = two.map_err(|_| "thread panicked")??;
    assert!(n1.iter().all(|n| !n2.contains(n)), "{n1:?} vs {n2:?}");
    assert_gone(&t1);
    assert_gone(&t2);
    Ok(())
}

#[test]
fn irmd_per_node_and_local_oping_root() -> TestResult {
    if !root_or_skip("irmd_per_node_and_local_oping_root") {
        return Ok(());
    }
    let lab = Lab::up(&Topology::from_toml(
        "[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n[[node]]\nname = \"c\"\n\
         [[link]]\na = \"a\"\nb = \"b\"\n[[link]]\na = \"b\"\nb = \"c\"\nmtu = 9000\n",
    )?)?;
    for n in lab.nodes() {
        n.irm_ok("ipcp list")?;
        assert!(
            n.log().contains("irmd"),
            "node {} log: {}",
            n.name(),
            n.log()
        );
    }
    assert_ne!(lab.node("a").rundir(), lab.node("b").rundir());
    let mtu = lab
        .node("c")
        .cmd("ip")
        .args(["link", "show", "v1-b"])
        .output()?;
    assert!(text(&mtu).contains("mtu 9000"), "{}", text(&mtu));
    let b = lab.node("b");
    b.irm_ok("ipcp bootstrap type local name lo layer lo")?;
    b.irm_ok("name reg oping.server layer lo")?;
    b.irm_ok("bind program oping name oping.server auto -- -l")?;
    let out = b
        .cmd("oping")
        .args(["-n", "oping.server", "-c", "3", "-i", "0"])
        .output()?;
    assert!(out.status.success(), "oping: {}\n{}", text(&out), b.log());
    assert!(
        text(&out).contains("3 packets transmitted, 3 received"),
        "{}",
        text(&out)
    );
    // The other nodes are separate systems: the name is unknown there.
    let other = lab.node("a").irm("name list")?;
    assert!(!text(&other).contains("oping.server"), "{}", text(&other));
    let t = trace(&lab);
    drop(lab);
    assert_gone(&t);
    Ok(())
}

#[test]
fn loss_injection_and_link_state_root() -> TestResult {
    if !root_or_skip("loss_injection_and_link_state_root") {
        return Ok(());
    }
    let lab = Lab::up(&pair())?;
    let a_if = lab.node("a").ifname_to("b").ok_or("no link")?.to_owned();
    let a4 = lab.node("a").addr4_to("b").ok_or("no address")?;
    assert!(ping(&lab, "b", a4), "ping before loss");
    lab.set_loss("a", &a_if, 100)?;
    assert!(!ping(&lab, "b", a4), "ping through 100% loss");
    // Half the frames: some of a quick burst of pings come back, not all.
    lab.set_loss("a", &a_if, 50)?;
    let burst = lab
        .node("b")
        .cmd("ping")
        .args(["-q", "-c", "100", "-i", "0.002", "-W", "1", &a4.to_string()])
        .output()?;
    let got = received(&text(&burst)).ok_or_else(|| text(&burst))?;
    assert!((10..=90).contains(&got), "{got}/100 through 50% loss");
    lab.set_loss("a", &a_if, 100)?; // replacing is fine
    lab.clear_loss("a", &a_if)?;
    assert!(ping(&lab, "b", a4), "ping after clear_loss");
    lab.clear_loss("a", &a_if)?; // clearing twice is fine
    let bad = lab.set_loss("a", "nosuchif", 10).map_err(|e| e.to_string());
    assert!(
        bad.as_ref().is_err_and(|e| e.contains("nosuchif")),
        "{bad:?}"
    );

    lab.link_down("a", "b")?;
    assert!(!ping(&lab, "b", a4), "ping over a down link");
    lab.link_up("a", "b")?;
    let back = o7s_lab::wait_for(Duration::from_secs(3), || ping(&lab, "b", a4));
    assert!(back, "ping after link_up");
    assert!(lab.link_down("a", "nosuch").is_err());
    Ok(())
}

#[test]
fn cleanup_stale_removes_dead_runs_only_root() -> TestResult {
    if !root_or_skip("cleanup_stale_removes_dead_runs_only_root") {
        return Ok(());
    }
    let live = Lab::up(&Topology::new().node("x"))?;
    // A pid that just died stands in for a crashed run.
    let mut dead = Command::new("true").spawn()?;
    let dead_pid = dead.id();
    dead.wait()?;
    let prefix = "o7stest";
    let ns = format!("{prefix}-{dead_pid}-0-z");
    let st = Command::new("ip").args(["netns", "add", &ns]).status()?;
    assert!(st.success());
    let mut sleeper = Command::new("ip")
        .args(["netns", "exec", &ns, "sleep", "60"])
        .spawn()?;
    // Until `ip netns exec` has entered the namespace, sleep is not in it to be found.
    assert!(o7s_lab::wait_for(Duration::from_secs(5), || !netns_pids(
        &ns
    )
    .is_empty()));
    let removed = cleanup_stale(prefix)?;
    assert!(removed.contains(&ns), "{removed:?}");
    assert!(!netns_list().contains(&ns));
    let status = sleeper.wait()?;
    assert!(!status.success(), "sleep was not killed");
    // Our live lab is untouched by a cleanup with the real prefix.
    cleanup_stale(PREFIX)?;
    assert!(netns_list().contains(&live.node("x").netns().to_owned()));
    live.node("x").irm_ok("ipcp list")?;
    Ok(())
}
