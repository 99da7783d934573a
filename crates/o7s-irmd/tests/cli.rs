//! The `irmd` binary as a user meets it: help, a bad config file, a second IRMd.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn irmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_irmd"))
}

#[test]
fn help_names_the_run_directory() {
    let out = irmd().arg("--help").output().expect("irmd --help");
    assert!(out.status.success());
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("O7S_RUNDIR") && t.contains("--config"), "{t}");
}

#[test]
fn bad_config_is_refused_with_line_and_key_and_nothing_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("irmd.toml");
    std::fs::write(
        &cfg,
        "[local.lo]\nbootstrap = \"lo\"\n\n[local.lo2]\nbootstrap = \"lo\"\ndev = \"eth0\"\n",
    )
    .expect("write");
    let out = irmd()
        .arg("--config")
        .arg(&cfg)
        .env("O7S_RUNDIR", dir.path().join("run"))
        .output()
        .expect("irmd");
    assert!(!out.status.success());
    let t = String::from_utf8_lossy(&out.stderr);
    assert!(t.contains("irmd.toml:6") && t.contains("dev"), "{t}");
    // Nothing was applied: no socket, no run directory even.
    assert!(!dir.path().join("run/irmd.sock").exists());
}

#[test]
fn a_second_irmd_on_the_same_run_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = irmd()
        .env("O7S_RUNDIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("irmd");
    let sock = dir.path().join("irmd.sock");
    let end = Instant::now() + Duration::from_secs(10);
    while !sock.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = irmd()
        .env("O7S_RUNDIR", dir.path())
        .output()
        .expect("second irmd");
    let _ = first.kill();
    let _ = first.wait();
    assert!(!out.status.success());
    let t = String::from_utf8_lossy(&out.stderr);
    assert!(t.contains("another irmd is running"), "{t}");
}
