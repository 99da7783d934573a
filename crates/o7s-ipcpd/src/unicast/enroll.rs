//! Enrollment into a unicast layer: the exchange is [`crate::common::enroll`]'s; here the
//! configuration becomes a unicast [`Layer`] (and the member's address our first directory
//! contact), and a member hands out ours.

use super::params::Layer;
use super::Uni;
use crate::common::enroll;
use o7s::Flow;
use std::sync::Arc;

/// What a newcomer learned from a member, and the flow to acknowledge on.
pub struct Enrolled {
    pub layer: Layer,
    pub flow: Flow,
    pub id: [u8; 8],
    /// The member's address: the newcomer's first directory contact.
    pub member: u64,
    /// The largest packet of the lower flow to the member.
    pub lower_mtu: usize,
}

/// Ask the member reachable as `dst` for the layer's settings.
pub fn request(dst: &str) -> Result<Enrolled, String> {
    let e = enroll::request(dst, "unicast")?;
    let layer = Layer::from_config(e.conf).map_err(|e| format!("{dst}: {e}"))?;
    let o7s_proto::wire::ipcp_config::DirConfig::Dht(d) = &layer.uni.dir;
    let member = d.peer;
    Ok(Enrolled {
        layer,
        flow: e.flow,
        id: e.id,
        member,
        lower_mtu: e.lower_mtu,
    })
}

/// Tell the member whether our components started.
pub fn acknowledge(e: Enrolled, ok: bool) {
    enroll::acknowledge(&e.flow, e.id, ok);
}

impl Uni {
    /// A newcomer opened an enrollment flow to us: send it the layer's settings.
    pub fn enroll_member(self: Arc<Self>, flow: Flow) {
        enroll::answer(flow, self.layer.to_config(self.addr));
    }
}
