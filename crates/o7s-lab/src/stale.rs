//! Removing leftovers of labs whose process died without tearing down (SIGKILL, abort):
//! namespaces and temporary directories named after a pid that no longer runs.

use std::time::Duration;

use crate::error::Result;
use crate::sys;

/// The creating pid encoded in a lab name `<prefix>-<pid>-<seq>-<rest>`, if `name` is one.
fn owner(prefix: &str, name: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
    let mut parts = rest.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    let seq = parts.next()?;
    let node = parts.next()?;
    let digits = !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit());
    (digits && !node.is_empty()).then_some(pid)
}

/// Remove the namespaces (killing whatever still runs in them) and temporary directories
/// that labs with namespace prefix `prefix` (normally [`PREFIX`](crate::PREFIX)) left behind
/// in processes that are no longer alive. Labs of live processes are left alone.
/// Returns the names of the namespaces removed.
pub fn cleanup_stale(prefix: &str) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut first_err = None;
    for ns in sys::netns_list() {
        let Some(pid) = owner(prefix, &ns) else {
            continue;
        };
        if sys::pid_alive(pid) {
            continue;
        }
        if let Some(ino) = sys::netns_ino(&ns) {
            sys::kill_all_in(ino, Duration::from_secs(5));
        }
        match sys::netns_del(&ns) {
            Ok(()) => removed.push(ns),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    // Temporary directories are `<prefix>-lab-<pid>-<seq>-<random>`.
    let tmp = std::env::temp_dir();
    if let Ok(rd) = std::fs::read_dir(&tmp) {
        let lab_prefix = format!("{prefix}-lab");
        for e in rd.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            match owner(&lab_prefix, &name) {
                Some(pid) if !sys::pid_alive(pid) => {
                    let _ = std::fs::remove_dir_all(e.path());
                }
                _ => {}
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

#[cfg(test)]
mod tests {
    use super::owner;

    #[test]
    fn parses_only_lab_names() {
        assert_eq!(owner("o7s", "o7s-123-0-a"), Some(123));
        assert_eq!(owner("o7s", "o7s-123-4-node-with-dashes"), Some(123));
        assert_eq!(owner("o7s-lab", "o7s-lab-9-1-xYz12"), Some(9));
        assert_eq!(owner("o7s", "o7s-demo"), None);
        assert_eq!(owner("o7s", "o7s-12-x-a"), None);
        assert_eq!(owner("o7s", "o7s-12-3"), None);
        assert_eq!(owner("o7s", "o7sx-12-3-a"), None);
        assert_eq!(owner("o7s", "other-12-3-a"), None);
    }
}
