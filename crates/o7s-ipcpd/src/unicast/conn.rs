//! Adjacencies of a unicast member: lower flows to other members opened with the
//! connection-establishment exchange ([`crate::common::cep`]) for the data transfer (`dt`)
//! or management (`mgmt`) component, and enrollment flows handed on.

use super::fwd::{Adj, Comp};
use super::Uni;
use crate::common::cep;
use o7s::ctrl::msg::IrmError;
use o7s::Flow;
use o7s_proto::wire::cep::{consts, CepMsg, ConcSyntax};
use o7s_proto::QosSpec;
use std::sync::Arc;
use tracing::{debug, info, warn};

/// Our CEP message for `comp` (None: enrollment, address 0 as the prototype).
pub fn cep_of(comp: Option<Comp>, own: u64) -> CepMsg {
    match comp {
        Some(Comp::Dt) => CepMsg::new(consts::DT_COMP, consts::DT_PROTO, 1, ConcSyntax::Fixed, own),
        Some(Comp::Mgmt) => {
            CepMsg::new(consts::MGMT_COMP, consts::LS_PROTO, 1, ConcSyntax::Gpb, own)
        }
        None => cep::enroll_cep(),
    }
}

/// Allocate a lower flow to `dst` and open it for `comp`; returns the flow and the peer's CEP
/// message.
pub fn open(dst: &str, comp: Comp, own: u64, qos: QosSpec) -> Result<(Flow, CepMsg), String> {
    cep::open(dst, &cep_of(Some(comp), own), qos, "unicast")
}

impl Uni {
    /// `irm ipcp connect`: an adjacency of `comp` to the member named `dst`.
    pub fn connect(self: &Arc<Self>, comp: Comp, dst: &str, qos: QosSpec) -> Result<(), IrmError> {
        let (flow, theirs) =
            open(dst, comp, self.addr, qos).map_err(|why| IrmError::IpcpFailed {
                name: self.name.clone(),
                why: format!("connecting {} to {dst}: {why}", comp.name()),
            })?;
        if theirs.address == 0 || theirs.address == self.addr {
            return Err(IrmError::IpcpFailed {
                name: self.name.clone(),
                why: format!(
                    "{dst} gave address {:#x} for its {}: not a usable neighbour",
                    theirs.address,
                    comp.name()
                ),
            });
        }
        info!(
            "Connected {} to {dst} (address {:#x}).",
            comp.name(),
            theirs.address
        );
        self.adjacency(flow, theirs.address, comp, dst);
        Ok(())
    }

    /// `irm ipcp disconnect`: drop the adjacencies of `comp` made to `dst` (by name or by
    /// address).
    pub fn disconnect(self: &Arc<Self>, comp: Comp, dst: &str) -> Result<(), IrmError> {
        let gone: Vec<Arc<Adj>> = self
            .fwd
            .adjs()
            .into_iter()
            .filter(|a| {
                a.comp == comp
                    && (a.dst == dst || format!("{:#x}", a.nb) == dst || a.nb.to_string() == dst)
            })
            .collect();
        if gone.is_empty() {
            return Err(IrmError::BadParam {
                key: "dst".into(),
                value: dst.into(),
                why: format!(
                    "no {} adjacency to {dst}; see irm ipcp show {}",
                    comp.name(),
                    self.name
                ),
            });
        }
        for a in gone {
            self.adj_down(&a);
        }
        Ok(())
    }

    /// Start using an open lower flow as an adjacency: a thread reads it.
    pub fn adjacency(self: &Arc<Self>, flow: Flow, nb: u64, comp: Comp, dst: &str) {
        let adj = Adj::new(flow, nb, comp, dst);
        self.fwd.add_adj(adj.clone());
        match comp {
            Comp::Dt => {
                self.update_mtu();
                self.ctl.link_up(self, nb);
            }
            Comp::Mgmt => self.ctl.mgmt_up(self, nb),
        }
        let me = Arc::downgrade(self);
        let a = adj.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{:x}", comp.name(), nb))
            .spawn(move || reader(me, a));
        if let Err(e) = spawned {
            warn!("cannot start a reader for neighbour {nb:#x}: {e}");
            self.adj_down(&adj);
        }
    }

    /// An adjacency ended (its flow went down, or it was disconnected).
    pub fn adj_down(self: &Arc<Self>, a: &Arc<Adj>) {
        if !a.up.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let last = self.fwd.remove_adj(a);
        info!("Lost {} adjacency to {:#x}.", a.comp.name(), a.nb);
        if last {
            match a.comp {
                Comp::Dt => {
                    self.ctl.link_down(self, a.nb);
                    self.update_mtu();
                }
                Comp::Mgmt => self.ctl.mgmt_down(self, a.nb),
            }
        }
    }

    /// Accept lower flows for as long as the IPCP lives: each opens with a CEP message.
    pub fn accept_loop(self: &Arc<Self>) {
        cep::accept_loop(Arc::downgrade(self), Uni::answer_cep);
    }

    fn answer_cep(self: Arc<Self>, flow: Flow) {
        let Some(theirs) = cep::first_message(&flow) else {
            return;
        };
        let comp = match theirs.comp_name.as_str() {
            consts::DT_COMP => Some(Comp::Dt),
            consts::MGMT_COMP => Some(Comp::Mgmt),
            consts::ENROLL_COMP => None,
            other => {
                debug!("connection request for unknown component {other:?}");
                cep::refuse(&flow);
                return;
            }
        };
        let mine = cep_of(comp, self.addr);
        if !cep::same_protocol(&mine, &theirs) {
            info!(
                "refusing {} {} version {}",
                theirs.comp_name, theirs.protocol, theirs.pref_version
            );
            cep::refuse(&flow);
            return;
        }
        let Ok(bytes) = mine.to_vec() else { return };
        if let Err(e) = flow.write(&bytes) {
            debug!("cannot answer a connection request: {e}");
            return;
        }
        match comp {
            None => self.enroll_member(flow),
            Some(c) => {
                if theirs.address == 0 || theirs.address == self.addr {
                    info!(
                        "refusing a {} adjacency from address {:#x}",
                        c.name(),
                        theirs.address
                    );
                    return;
                }
                info!(
                    "Accepted {} adjacency from {:#x}.",
                    c.name(),
                    theirs.address
                );
                self.adjacency(flow, theirs.address, c, "");
            }
        }
    }
}

/// How often a reader with nothing to read checks whether its adjacency was disconnected:
/// the lower flow is deallocated (and the neighbour notices) within this time.
const READER_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Read an adjacency's lower flow until it goes down or is disconnected; the flow is
/// deallocated when the reader, its last user, returns.
fn reader(uni: std::sync::Weak<Uni>, adj: Arc<Adj>) {
    // Sized to the lower flow's packets (a 64 KiB buffer per reader, zeroed, was resident
    // in every process with many adjacencies); a larger message grows it.
    let mut buf = vec![0u8; adj.flow.mtu().clamp(2048, 65536 + 256)];
    adj.flow.set_read_timeout(Some(READER_CHECK));
    loop {
        let r = adj.flow.read(&mut buf);
        let Some(u) = uni.upgrade() else { return };
        if !adj.up.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        match r {
            Err(o7s::Error::Timeout) => continue,
            Ok(n) => {
                adj.rx.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match adj.comp {
                    Comp::Dt => u.receive(&mut buf[..n]),
                    Comp::Mgmt => u.ctl.mgmt_packet(&u, adj.nb, &buf[..n]),
                }
            }
            Err(o7s::Error::BufferTooSmall { needed }) if needed <= 1 << 22 => {
                buf.resize(needed, 0);
            }
            Err(e) => {
                debug!("adjacency to {:#x}: {e}", adj.nb);
                u.adj_down(&adj);
                return;
            }
        }
    }
}
