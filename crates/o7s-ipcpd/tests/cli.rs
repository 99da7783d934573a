//! `ipcpd` is started by `irmd`; run by hand it says so instead of misbehaving.

use std::process::Command;

#[test]
fn started_by_hand_it_explains() {
    let out = Command::new(env!("CARGO_BIN_EXE_ipcpd"))
        .args(["--type", "local", "--name", "x"])
        .env_remove("O7S_IPCP_FD")
        .output()
        .expect("ipcpd");
    assert!(!out.status.success());
    let t = String::from_utf8_lossy(&out.stderr);
    assert!(t.contains("started by irmd"), "{t}");
}

#[test]
fn a_bogus_fd_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_ipcpd"))
        .args(["--type", "local", "--name", "x"])
        .env("O7S_IPCP_FD", "987")
        .output()
        .expect("ipcpd");
    assert!(!out.status.success());
}
