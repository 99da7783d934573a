//! Enrollment: a newcomer asks a member for the layer's settings over a lower flow
//! (request, response with the configuration, acknowledgement once its components run).

use super::conn::{open, read_within};
use super::params::Layer;
use super::Uni;
use o7s::Flow;
use o7s_proto::wire::enroll::{
    EnrollAck, EnrollReq, EnrollResp, ENROLL_FAILED, WARN_TIME_OFFSET_MS,
};
use o7s_proto::QosSpec;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{info, warn};

/// How long either side waits for the other's next enrollment message.
const ENROLL_WAIT: Duration = Duration::from_secs(10);

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

fn now_parts() -> (i64, i32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i32)
}

/// Ask the member reachable as `dst` for the layer's settings.
pub fn request(dst: &str) -> Result<Enrolled, String> {
    let (flow, _) = open(dst, None, 0, QosSpec::RAW)?;
    let id: [u8; 8] = rand::random();
    let req = EnrollReq { id }.to_vec().map_err(|e| e.to_string())?;
    let sent = Instant::now();
    flow.write(&req)
        .map_err(|e| format!("cannot send the enrollment request to {dst}: {e}"))?;
    let bytes = read_within(&flow, ENROLL_WAIT, "enrollment response")
        .map_err(|e| format!("{dst}: {e}"))?;
    let rtt = sent.elapsed();
    let resp = EnrollResp::parse(&bytes)
        .map_err(|e| format!("{dst} sent a malformed enrollment response: {e}"))?;
    if resp.id != id {
        return Err(format!("{dst} answered another enrollment request"));
    }
    if resp.response < 0 {
        return Err(format!(
            "{dst} refused the enrollment (response {})",
            resp.response
        ));
    }
    let Some(conf) = resp.conf else {
        return Err(format!("{dst} accepted but sent no layer configuration"));
    };
    let layer = Layer::from_config(conf).map_err(|e| format!("{dst}: {e}"))?;
    let (s, ns) = now_parts();
    let offset_ms = ((s - resp.t_sec) * 1000 + i64::from(ns - resp.t_nsec) / 1_000_000).abs();
    if offset_ms > WARN_TIME_OFFSET_MS + rtt.as_millis() as i64 {
        warn!("The clock of {dst} is {offset_ms} ms off ours.");
    }
    let o7s_proto::wire::ipcp_config::DirConfig::Dht(d) = &layer.uni.dir;
    let member = d.peer;
    let lower_mtu = flow.mtu();
    Ok(Enrolled {
        layer,
        flow,
        id,
        member,
        lower_mtu,
    })
}

/// Tell the member whether our components started.
pub fn acknowledge(e: Enrolled, ok: bool) {
    let ack = EnrollAck {
        id: e.id,
        result: if ok { 0 } else { ENROLL_FAILED },
    };
    if let Ok(b) = ack.to_vec() {
        let _ = e.flow.write(&b);
    }
    // Give the acknowledgement time to leave before the flow is torn down.
    std::thread::sleep(Duration::from_millis(20));
}

impl Uni {
    /// A newcomer opened an enrollment flow to us: send it the layer's settings.
    pub fn enroll_member(self: Arc<Self>, flow: Flow) {
        let who = flow.name().to_string();
        let bytes = match read_within(&flow, ENROLL_WAIT, "enrollment request") {
            Ok(b) => b,
            Err(e) => {
                info!("Enrollment over a flow to {who} failed: {e}");
                return;
            }
        };
        let req = match EnrollReq::parse(&bytes) {
            Ok(r) => r,
            Err(e) => {
                info!("Malformed enrollment request: {e}");
                return;
            }
        };
        let (t_sec, t_nsec) = now_parts();
        let resp = EnrollResp {
            id: req.id,
            t_sec,
            t_nsec,
            response: 0,
            conf: Some(self.layer.to_config(self.addr)),
        };
        let sent = resp
            .to_vec()
            .map_err(|e| e.to_string())
            .and_then(|b| flow.write(&b).map(|_| ()).map_err(|e| e.to_string()));
        if let Err(e) = sent {
            info!("Cannot answer an enrollment request: {e}");
            return;
        }
        match read_within(&flow, ENROLL_WAIT, "enrollment acknowledgement")
            .and_then(|b| EnrollAck::parse(&b).map_err(|e| e.to_string()))
        {
            Ok(a) if a.id == req.id && a.result == 0 => {
                info!("Enrolled a new member in layer {}.", self.layer.name)
            }
            Ok(a) => info!("A newcomer failed to start its components ({}).", a.result),
            Err(e) => info!("Enrollment not acknowledged: {e}"),
        }
    }
}
