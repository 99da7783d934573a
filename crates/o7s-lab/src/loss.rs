//! Packet loss on one interface inside a namespace: an nftables table on the netdev ingress
//! hook that drops a random share of arriving frames (`numgen random`), so it also hits raw
//! Ethernet frames that never reach IP. One table per interface, replaced atomically.

use crate::error::{LabError, Result};
use crate::sys;

/// Name of the table for `ifname`: hex keeps any interface name a valid, unique identifier.
fn table(ifname: &str) -> String {
    let hex: String = ifname.bytes().map(|b| format!("{b:02x}")).collect();
    format!("o7s_loss_{hex}")
}

fn check(ifname: &str) -> Result<()> {
    let ok = !ifname.is_empty()
        && ifname.len() <= crate::IFNAME_MAX
        && ifname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(LabError::Topology(format!(
            "interface name {ifname:?} is not a valid interface name"
        )))
    }
}

/// Drop `percent` % of frames arriving on `ifname` in namespace `ns`.
pub(crate) fn set(ns: &str, ifname: &str, percent: u8) -> Result<()> {
    check(ifname)?;
    // Fail with a clear message if the interface is not there.
    sys::ip_in(ns, &["link", "show", "dev", ifname])?;
    let t = table(ifname);
    // `numgen random mod 100` yields 0..=99, so `< 100` is not a valid match: drop all.
    let rule = match percent {
        100.. => "drop".to_owned(),
        p => format!("numgen random mod 100 < {p} drop"),
    };
    sys::nft_in(
        ns,
        &format!(
            "table netdev {t}\n\
             delete table netdev {t}\n\
             table netdev {t} {{\n\
             \tchain ingress {{\n\
             \t\ttype filter hook ingress device \"{ifname}\" priority -500; policy accept;\n\
             \t\t{rule}\n\
             \t}}\n\
             }}\n"
        ),
    )
}

/// Remove the loss table of `ifname` in namespace `ns`, if there is one.
pub(crate) fn clear(ns: &str, ifname: &str) -> Result<()> {
    check(ifname)?;
    let t = table(ifname);
    sys::nft_in(ns, &format!("table netdev {t}\ndelete table netdev {t}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_identifiers() {
        assert_eq!(table("v0-b"), "o7s_loss_76302d62");
        assert!(check("v0-b").is_ok());
        assert!(check("a\"; flush ruleset").is_err());
        assert!(check("").is_err());
    }
}
