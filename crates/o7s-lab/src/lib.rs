//! A multi-node o7s lab on one host: each node of a [`Topology`] becomes a network namespace
//! running its own `irmd`, each link a veth pair with link-local addresses. Used by the
//! end-to-end tests that need more than one system (and, later, by the demo CLI).
//!
//! This crate creates and removes only its own namespaces, the interfaces inside them and its
//! own temporary directory; it never adds addresses or routes in the host's namespace.
//! Everything needs root. Binaries (`irmd`, `ipcpd`, `irm`, ...) are taken from
//! `$O7S_BIN_DIR`, else from next to the running (test) executable; see [`bin_dir`].
//!
//! ```no_run
//! use o7s_lab::{Lab, Topology};
//!
//! let t = Topology::from_toml(r#"
//!     [[node]]
//!     name = "a"
//!     [[node]]
//!     name = "b"
//!     [[link]]
//!     a = "a"
//!     b = "b"
//! "#)?;
//! let lab = Lab::up(&t)?;
//! let a = lab.node("a");
//! println!("{}", a.irm_ok("ipcp list")?);
//! lab.set_loss("b", lab.node("b").ifname_to("a").unwrap(), 10)?;
//! # Ok::<(), o7s_lab::LabError>(())
//! ```

pub mod broadcast;
pub mod build;
pub mod cli;
pub mod demo;
mod error;
pub mod export;
pub mod graph;
mod lab;
mod loss;
mod node;
pub mod plan;
pub mod saved;
pub mod spec;
mod stale;
pub mod status;
mod sys;
mod topology;
pub mod unicast;

pub use error::{LabError, Result};
pub use lab::{named_ns, Lab, LabOptions, PREFIX};
pub use node::Node;
pub use stale::cleanup_stale;
pub use sys::{bin_dir, netns_list, netns_pids, pid_alive, wait_for};
pub use topology::{End, LinkSpec, NodeSpec, Port, Topology, IFNAME_MAX, LINKS_MAX, NODE_NAME_MAX};

/// Are we running as root (needed for any [`Lab`])? Tests use this to skip themselves.
pub fn is_root() -> bool {
    sys::is_root()
}

/// For a test that needs a [`Lab`]: whether we are root; if not, it says on stderr that
/// `test` is skipped.
pub fn root_or_skip(test: &str) -> bool {
    let root = is_root();
    if !root {
        eprintln!("skipping {test}: needs root for network namespaces");
    }
    root
}

/// What a command printed, stdout then stderr: for assertions and failure messages.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
