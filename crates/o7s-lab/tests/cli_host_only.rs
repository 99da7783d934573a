//! A lab without namespaces (`o7s-lab up --host-only`: every node an IRMd on this host, the
//! links udp4 on 127.0.0.x): it comes up, carries a ping, and `down` ends every process it
//! started. Needs no root.

use o7s_lab::saved::Saved;
use std::path::PathBuf;
use std::process::Command;

fn lab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_o7s-lab"))
}

/// Running, and not a zombie waiting to be reaped.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn host_only_pair_comes_up_pings_and_goes_down() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("lab");
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/pair.toml");
    let name = format!("h{}", std::process::id());
    let o = lab()
        .arg("up")
        .arg(&file)
        .arg("--host-only")
        .arg("--dir")
        .arg(&dir)
        .args(["--name", &name])
        .output()
        .expect("run o7s-lab");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rec = Saved::read(&dir).expect("lab record");
    let irmds: Vec<u32> = rec.nodes.iter().filter_map(|n| n.irmd).collect();
    assert_eq!(irmds.len(), 2, "{rec:?}");
    // Every process of the lab: the IRMds and what they started.
    let mut pids = irmds.clone();
    for p in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if ppid.is_some_and(|pp| irmds.contains(&pp)) {
            pids.push(pid);
        }
    }
    assert!(pids.len() > 2, "the IRMds started no IPCP: {pids:?}");
    let ping = o7s_lab::cli::exec(
        &rec,
        "a",
        &["oping", "-n", "oping.b", "-c", "2", "-i", "0"].map(String::from),
    )
    .expect("exec")
    .output()
    .expect("oping");
    let text = String::from_utf8_lossy(&ping.stdout);
    let down = lab()
        .arg("down")
        .arg("--dir")
        .arg(&dir)
        .output()
        .expect("down");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(
        text.contains("2 packets transmitted, 2 received"),
        "{text}{}",
        String::from_utf8_lossy(&ping.stderr)
    );
    let left: Vec<u32> = pids.into_iter().filter(|p| running(*p)).collect();
    assert!(left.is_empty(), "still running after down: {left:?}");
    assert!(!dir.exists());
}
