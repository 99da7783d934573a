//! Neighbours of a broadcast member: lower flows opened with the connection-establishment
//! exchange ([`crate::common::cep`]) for the data transfer component, as the prototype's
//! broadcast IPCP names it (component "Data Transfer", empty protocol, version 0, syntax
//! GPB, address 0: a broadcast layer has no addresses). Each neighbour's flow is read by a
//! thread of its own that hands every packet to the hub.

use super::hub::{Outlet, PortId};
use super::Bc;
use crate::common::{cep, enroll};
use o7s::ctrl::msg::IrmError;
use o7s::Flow;
use o7s_proto::wire::cep::{consts, CepMsg, ConcSyntax};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tracing::{debug, info, warn};

/// How often a neighbour's reader looks whether it was disconnected.
const READ_TICK: Duration = Duration::from_millis(250);

/// The CEP message of the broadcast data transfer component.
pub fn dt_cep() -> CepMsg {
    CepMsg::new(consts::DT_COMP, "", 0, ConcSyntax::Gpb, 0)
}

/// One neighbour: a lower flow carrying the layer's packets both ways.
pub struct Nb {
    pub id: u64,
    pub flow: Flow,
    /// The name the flow was allocated to (empty for an accepted one).
    pub dst: String,
    pub up: AtomicBool,
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    /// Copies dropped because the lower flow was full.
    pub full: AtomicU64,
}

impl Outlet for Nb {
    fn port(&self) -> PortId {
        PortId::Nb(self.id)
    }

    fn offer(&self, pkt: &[u8]) -> bool {
        match self.flow.try_write(pkt) {
            Ok(_) => {
                self.tx.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                if !matches!(e, o7s::Error::WouldBlock) {
                    debug!(nb = self.id, "lower flow: {e}");
                }
                self.full.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

fn component(comp: &str) -> Result<(), IrmError> {
    if comp == "dt" {
        return Ok(());
    }
    Err(IrmError::BadParam {
        key: "component".into(),
        value: comp.into(),
        why: "a broadcast IPCP has only the data transfer component: use dt".into(),
    })
}

impl Bc {
    /// `irm ipcp connect`: a neighbour over a lower flow to the member named `dst`.
    pub fn connect(
        self: &Arc<Self>,
        comp: &str,
        dst: &str,
        qos: Option<&str>,
    ) -> Result<(), IrmError> {
        component(comp)?;
        let (flow, _) = cep::open(dst, &dt_cep(), crate::common::adj_qos(qos)?, "broadcast")
            .map_err(|why| IrmError::IpcpFailed {
                name: self.name.clone(),
                why: format!("connecting dt to {dst}: {why}"),
            })?;
        info!("Connected dt to {dst}.");
        self.neighbour(flow, dst);
        Ok(())
    }

    /// `irm ipcp disconnect`: drop the neighbours made to `dst` (by name, or by the number
    /// `irm ipcp show` gives them).
    pub fn disconnect(self: &Arc<Self>, comp: &str, dst: &str) -> Result<(), IrmError> {
        component(comp)?;
        let gone: Vec<Arc<Nb>> = self
            .nbs()
            .into_iter()
            .filter(|n| n.dst == dst || n.id.to_string() == dst)
            .collect();
        if gone.is_empty() {
            return Err(IrmError::BadParam {
                key: "dst".into(),
                value: dst.into(),
                why: format!("no dt neighbour {dst}; see irm ipcp show {}", self.name),
            });
        }
        for n in gone {
            self.nb_down(&n);
        }
        Ok(())
    }

    /// Start using an open lower flow as a neighbour: a thread reads it.
    fn neighbour(self: &Arc<Self>, flow: Flow, dst: &str) {
        let id = self.next_nb.fetch_add(1, Ordering::Relaxed);
        flow.set_read_timeout(Some(READ_TICK));
        let nb = Arc::new(Nb {
            id,
            flow,
            dst: dst.to_string(),
            up: AtomicBool::new(true),
            rx: AtomicU64::new(0),
            tx: AtomicU64::new(0),
            full: AtomicU64::new(0),
        });
        self.nbs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(nb.clone());
        self.hub.add(nb.clone());
        self.update_mtu();
        let me = Arc::downgrade(self);
        let n = nb.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("dt-{id}"))
            .spawn(move || reader(me, n));
        if let Err(e) = spawned {
            warn!("cannot start a reader for neighbour {id}: {e}");
            self.nb_down(&nb);
        }
    }

    /// A neighbour ended (its flow went down, or it was disconnected); its reader lets go of
    /// the flow, which deallocates it.
    pub fn nb_down(self: &Arc<Self>, n: &Arc<Nb>) {
        if !n.up.swap(false, Ordering::AcqRel) {
            return;
        }
        self.hub.remove(n.port());
        self.nbs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| !Arc::ptr_eq(x, n));
        info!("Lost dt neighbour {}{}.", n.id, via(&n.dst));
        self.update_mtu();
    }

    /// Accept lower flows for as long as the IPCP lives: each opens with a CEP message.
    pub fn accept_loop(self: &Arc<Self>) {
        cep::accept_loop(Arc::downgrade(self), Bc::answer_cep);
    }

    fn answer_cep(self: Arc<Self>, flow: Flow) {
        let Some(theirs) = cep::first_message(&flow) else {
            return;
        };
        let mine = match theirs.comp_name.as_str() {
            consts::DT_COMP => dt_cep(),
            consts::ENROLL_COMP => cep::enroll_cep(),
            other => {
                debug!("connection request for unknown component {other:?}");
                cep::refuse(&flow);
                return;
            }
        };
        // Our own message goes back even when the versions differ (the initiator then knows
        // what we speak and gives up), as the prototype.
        let Ok(bytes) = mine.to_vec() else { return };
        if let Err(e) = flow.write(&bytes) {
            debug!("cannot answer a connection request: {e}");
            return;
        }
        if !cep::same_protocol(&mine, &theirs) {
            info!(
                "refusing {} {:?} version {} (a unicast IPCP?)",
                theirs.comp_name, theirs.protocol, theirs.pref_version
            );
            return;
        }
        if mine.comp_name == consts::ENROLL_COMP {
            enroll::answer(flow, self.config());
            return;
        }
        info!("Accepted a dt neighbour.");
        self.neighbour(flow, "");
    }
}

fn via(dst: &str) -> String {
    if dst.is_empty() {
        " (accepted)".into()
    } else {
        format!(" via {dst}")
    }
}

/// How a neighbour shows in `irm ipcp show`.
pub fn describe(n: &Nb) -> String {
    format!(
        "dt{} rx {} tx {} dropped {}",
        via(&n.dst),
        n.rx.load(Ordering::Relaxed),
        n.tx.load(Ordering::Relaxed),
        n.full.load(Ordering::Relaxed)
    )
}

/// Read a neighbour's lower flow until it goes down or is disconnected.
fn reader(bc: Weak<Bc>, nb: Arc<Nb>) {
    // Sized to the lower flow's packets (a 64 KiB buffer per reader, zeroed, was resident
    // in every process with many adjacencies); a larger message grows it.
    let mut buf = vec![0u8; nb.flow.mtu().clamp(2048, 65536 + 256)];
    loop {
        let r = nb.flow.read(&mut buf);
        if !nb.up.load(Ordering::Acquire) {
            return;
        }
        let Some(b) = bc.upgrade() else { return };
        match r {
            Ok(n) => {
                nb.rx.fetch_add(1, Ordering::Relaxed);
                b.hub.flood(nb.port(), &buf[..n]);
            }
            Err(o7s::Error::Timeout) => {}
            Err(o7s::Error::BufferTooSmall { needed }) if needed <= 1 << 22 => {
                buf.resize(needed, 0);
            }
            Err(e) => {
                debug!("neighbour {}: {e}", nb.id);
                b.nb_down(&nb);
                return;
            }
        }
    }
}
