//! Unicast layers over eth-dix links between namespaces: enrollment, adjacencies, routing,
//! the directory and the flow allocator end to end, with real `irmd` and `ipcpd` processes.
//! Needs root (network namespaces); without it each test prints a notice and passes.

use o7s_lab::output_text as text;
use o7s_lab::root_or_skip;
use o7s_lab::unicast::{eth_links, ipcp_name, unicast_layer, unicast_over_eth};
use o7s_lab::{Lab, Topology};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Every node's log and the state of its unicast IPCPs, for a failure message.
fn logs(lab: &Lab) -> String {
    lab.nodes()
        .iter()
        .map(|n| {
            let shows: String = ["net", "far", "near", "ls", "lfa", "l1", "l2", "l3"]
                .iter()
                .filter_map(|l| {
                    n.irm_ok(&format!("ipcp show {}", ipcp_name(l, n.name())))
                        .ok()
                })
                .collect();
            format!("--- {} ---\n{}\n{shows}", n.name(), n.log())
        })
        .collect()
}

/// `oping` from `from` to `name`: `count` pings, all answered.
fn ping(lab: &Lab, from: &str, name: &str, count: u32) -> TestResult {
    let c = count.to_string();
    let out = lab
        .node(from)
        .cmd("oping")
        .args(["-n", name, "-c", &c, "-i", "0"])
        .output()?;
    let t = text(&out);
    assert!(
        out.status.success()
            && t.contains(&format!("{count} packets transmitted, {count} received")),
        "{from} -> {name}: {t}\n{}",
        logs(lab)
    );
    Ok(())
}

/// Whether `from` can ping `name` once within `secs` seconds (a layer converging, a
/// directory filling).
fn reachable(lab: &Lab, from: &str, name: &str, secs: u64) -> bool {
    o7s_lab::wait_for(std::time::Duration::from_secs(secs), || {
        let out = lab
            .node(from)
            .cmd("oping")
            .args(["-n", name, "-c", "1"])
            .output();
        out.is_ok_and(|o| o.status.success())
    })
}

fn serve(lab: &Lab, node: &str, name: &str, layer: &str) -> TestResult {
    let n = lab.node(node);
    n.irm_ok(&format!("bind program oping name {name} auto -- -l"))?;
    n.irm_ok(&format!("name reg {name} layer {layer}"))?;
    Ok(())
}

#[test]
fn two_nodes_enroll_connect_and_ping_root() -> TestResult {
    if !root_or_skip("two_nodes") {
        return Ok(());
    }
    let lab = Lab::up(&Topology::new().node("a").node("b").link("a", "b"))?;
    eth_links(&lab)?;
    unicast_over_eth(&lab, "net", "")?;
    serve(&lab, "b", "srv", "net")?;
    serve(&lab, "a", "srv-a", "net")?;
    for (from, name) in [("a", "srv"), ("b", "srv-a")] {
        let ok = reachable(&lab, from, name, 10);
        assert!(ok, "{name} unreachable from {from}\n{}", logs(&lab));
    }
    ping(&lab, "a", "srv", 100)?;
    ping(&lab, "b", "srv-a", 100)?;
    // The flow went through the unicast layer, not the Ethernet below it.
    let show = lab
        .node("a")
        .irm_ok(&format!("ipcp show {}", ipcp_name("net", "a")))?;
    assert!(show.contains("neighbour"), "{show}");
    // b connected to a (a bootstrapped the layer). Disconnecting both components there ends
    // the lower flows, so a loses its adjacencies too, without traffic to notice it by.
    let (na, nb) = (ipcp_name("net", "a"), ipcp_name("net", "b"));
    for comp in ["dt", "mgmt"] {
        lab.node("b").irm_ok(&format!(
            "ipcp disconnect name {nb} component {comp} dst {na}"
        ))?;
    }
    let gone = o7s_lab::wait_for(std::time::Duration::from_secs(10), || {
        lab.node("a")
            .irm_ok(&format!("ipcp show {na}"))
            .is_ok_and(|s| !s.contains("neighbour"))
    });
    assert!(
        gone,
        "a still has b as a neighbour\n{}",
        lab.node("a").irm_ok(&format!("ipcp show {na}"))?
    );
    // Enrolling to a name that answers nothing fails clearly.
    let out = lab.node("b").irm("ipcp enroll name x dst nobody-here")?;
    assert!(!out.status.success());
    assert!(text(&out).contains("nobody-here"), "{}", text(&out));
    Ok(())
}

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

#[test]
fn line_of_five_routes_four_hops_and_honours_the_ttl_root() -> TestResult {
    if !root_or_skip("line_of_five") {
        return Ok(());
    }
    let lab = Lab::up(&line(5))?;
    eth_links(&lab)?;
    // Four hops from n0 to n4: three forwarders. A ttl of 4 gets there, a ttl of 3 dies
    // at the last forwarder.
    unicast_over_eth(&lab, "far", "ttl 4 ls_t_recalc 1")?;
    unicast_over_eth(&lab, "near", "ttl 3 ls_t_recalc 1")?;
    serve(&lab, "n4", "end", "far")?;
    serve(&lab, "n4", "end-near", "near")?;
    serve(&lab, "n3", "mid-near", "near")?;
    // Converged: both layers route and their directories hold the names (end-near is
    // three hops from n1, within the ttl).
    for (from, name) in [("n0", "end"), ("n0", "mid-near"), ("n1", "end-near")] {
        let converged = reachable(&lab, from, name, 20);
        assert!(converged, "{from} cannot reach {name}\n{}", logs(&lab));
    }
    ping(&lab, "n0", "end", 50)?;
    ping(&lab, "n4", "end", 10)?;
    // Three hops are within a ttl of 3; four are not.
    ping(&lab, "n0", "mid-near", 20)?;
    let out = lab
        .node("n0")
        .cmd("oping")
        .args(["-n", "end-near", "-c", "3", "-i", "0"])
        .output()?;
    assert!(!out.status.success(), "{}", text(&out));
    // n3, the last forwarder, dropped them for their TTL.
    let show = lab
        .node("n3")
        .irm_ok(&format!("ipcp show {}", ipcp_name("near", "n3")))?;
    let drops: u64 = show
        .lines()
        .find(|l| l.trim_start().starts_with("ttl drops"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(drops > 0, "{show}");
    Ok(())
}

/// The longest run of consecutive lost pings in an `oping` output (by missing sequence
/// numbers), and how many were received.
fn longest_gap(out: &str) -> (u32, u32) {
    let mut seqs: Vec<u32> = out
        .lines()
        .filter_map(|l| l.split("seq=").nth(1))
        .filter_map(|s| s.split_whitespace().next())
        .filter_map(|s| s.parse().ok())
        .collect();
    seqs.sort_unstable();
    let gap = seqs.windows(2).map(|w| w[1] - w[0] - 1).max().unwrap_or(0);
    (gap, seqs.len() as u32)
}

#[test]
fn ring_of_six_reroutes_around_a_cut_link_root() -> TestResult {
    if !root_or_skip("ring_of_six") {
        return Ok(());
    }
    let mut t = line(6);
    t = t.link("n5", "n0");
    let lab = Lab::up(&t)?;
    eth_links(&lab)?;
    unicast_over_eth(&lab, "ls", "routing link_state ls_t_recalc 1")?;
    unicast_over_eth(&lab, "lfa", "routing lfa ls_t_recalc 1")?;
    serve(&lab, "n2", "srv-ls", "ls")?;
    serve(&lab, "n2", "srv-lfa", "lfa")?;
    for name in ["srv-ls", "srv-lfa"] {
        let ok = reachable(&lab, "n0", name, 20);
        assert!(ok, "{name} unreachable\n{}", logs(&lab));
    }
    // n0 -> n2 goes n0-n1-n2 (two hops) rather than the four the other way round. Ping
    // every 10 ms for 8 s through both layers and cut n1-n2 after 2 s.
    let start = |name: &str| {
        lab.node("n0")
            .cmd("oping")
            .args(["-n", name, "-c", "800", "-i", "10ms"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
    };
    let ls = start("srv-ls")?;
    let lfa = start("srv-lfa")?;
    std::thread::sleep(std::time::Duration::from_secs(2));
    lab.link_down("n1", "n2")?;
    let ls = ls.wait_with_output()?;
    let lfa = lfa.wait_with_output()?;
    for (policy, out) in [("link_state", &ls), ("lfa", &lfa)] {
        let t = text(out);
        let (gap, got) = longest_gap(&t);
        eprintln!(
            "{policy}: {got} of 800 answered, longest outage {gap} pings ({} ms)",
            gap * 10
        );
        assert!(got > 500, "{policy}: too few answers\n{t}\n{}", logs(&lab));
        assert!(gap * 10 < 5000, "{policy}: outage of {} ms\n{t}", gap * 10);
    }
    Ok(())
}

#[test]
fn three_stacked_unicast_layers_root() -> TestResult {
    if !root_or_skip("three_stacked") {
        return Ok(());
    }
    let lab = Lab::up(&line(3))?;
    eth_links(&lab)?;
    unicast_over_eth(&lab, "l1", "ls_t_recalc 1")?;
    unicast_layer(&lab, "l2", "ls_t_recalc 1", Some("l1"))?;
    unicast_layer(&lab, "l3", "ls_t_recalc 1", Some("l2"))?;
    serve(&lab, "n2", "top", "l3")?;
    let ok = reachable(&lab, "n0", "top", 30);
    assert!(ok, "top unreachable\n{}", logs(&lab));
    ping(&lab, "n0", "top", 50)?;
    // Each level's MTU is the one below less a data transfer header.
    let mtu = |layer: &str| -> Result<u32, Box<dyn std::error::Error>> {
        let show = lab
            .node("n1")
            .irm_ok(&format!("ipcp show {}", ipcp_name(layer, "n1")))?;
        let line = show.lines().find(|l| l.contains("mtu")).ok_or("no mtu")?;
        Ok(line.split_whitespace().last().ok_or("no mtu")?.parse()?)
    };
    let (m1, m2, m3) = (mtu("l1")?, mtu("l2")?, mtu("l3")?);
    assert_eq!((m1 - m2, m2 - m3), (15, 15), "{m1} {m2} {m3}");
    Ok(())
}

/// A connected random graph of `n` nodes: a random spanning tree plus `extra` links
/// (a fixed seed, so every run builds the same graph).
fn random_graph(n: usize, extra: usize, mut seed: u64) -> Topology {
    let mut next = move |m: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % m
    };
    let names: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    let mut t = Topology::new();
    for x in &names {
        t = t.node(x);
    }
    let mut links = std::collections::HashSet::new();
    for i in 1..n {
        let j = next(i);
        links.insert((j, i));
    }
    while links.len() < n - 1 + extra {
        let (a, b) = (next(n), next(n));
        if a != b {
            links.insert((a.min(b), a.max(b)));
        }
    }
    let mut links: Vec<_> = links.into_iter().collect();
    links.sort_unstable();
    for (a, b) in links {
        t = t.link(&names[a], &names[b]);
    }
    t
}

#[test]
fn twenty_nodes_all_pairs_ping_by_name_root() -> TestResult {
    if !root_or_skip("twenty_nodes") {
        return Ok(());
    }
    let lab = Lab::up(&random_graph(20, 8, 7))?;
    eth_links(&lab)?;
    unicast_over_eth(&lab, "net", "ls_t_recalc 1")?;
    let names: Vec<String> = lab.nodes().iter().map(|n| n.name().to_string()).collect();
    for n in &names {
        serve(&lab, n, &format!("p-{n}"), "net")?;
    }
    // Converged: routing, and every name in the directory (a member that registered before
    // its directory had a contact publishes again once it has one).
    for n in &names[1..] {
        let name = format!("p-{n}");
        let ok = reachable(&lab, &names[0], &name, 30);
        assert!(ok, "{name} unreachable\n{}", logs(&lab));
    }
    // ... and every member has a route to every other (each recalculates on its own).
    let routed = o7s_lab::wait_for(std::time::Duration::from_secs(30), || {
        lab.nodes().iter().all(|node| {
            node.irm_ok(&format!("ipcp show {}", ipcp_name("net", node.name())))
                .map(|s| s.lines().filter(|l| l.contains("route 0x")).count() >= names.len() - 1)
                .unwrap_or(false)
        })
    });
    assert!(
        routed,
        "not every member routes to every other\n{}",
        logs(&lab)
    );
    let mut failed = Vec::new();
    for a in &names {
        for b in &names {
            if a == b {
                continue;
            }
            let out = lab
                .node(a)
                .cmd("oping")
                .args(["-n", &format!("p-{b}"), "-c", "1"])
                .output()?;
            if !out.status.success() {
                failed.push(format!("{a} -> {b}: {}", text(&out)));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 380 failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    Ok(())
}
