//! Enrollment: a newcomer asks a member for the layer's configuration over a lower flow
//! (request, response with the configuration, acknowledgement once its components run). The
//! configuration is the layer's business; here it is only carried.

use super::cep::{enroll_cep, open, read_within};
use o7s::Flow;
use o7s_proto::wire::enroll::{
    EnrollAck, EnrollReq, EnrollResp, ENROLL_FAILED, WARN_TIME_OFFSET_MS,
};
use o7s_proto::wire::ipcp_config::IpcpConfig;
use o7s_proto::QosSpec;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{info, warn};

/// How long either side waits for the other's next enrollment message.
pub const ENROLL_WAIT: Duration = Duration::from_secs(10);

/// What a newcomer learned from a member, and the flow to acknowledge on.
pub struct Enrolled {
    pub conf: IpcpConfig,
    pub flow: Flow,
    pub id: [u8; 8],
    /// The largest packet of the lower flow to the member.
    pub lower_mtu: usize,
}

fn now_parts() -> (i64, i32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i32)
}

/// Ask the member reachable as `dst` for the layer's configuration (`kind`: the kind of IPCP
/// we are, for errors).
pub fn request(dst: &str, kind: &str) -> Result<Enrolled, String> {
    let (flow, _) = open(dst, &enroll_cep(), QosSpec::RAW, kind)?;
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
    let (s, ns) = now_parts();
    let offset_ms = ((s - resp.t_sec) * 1000 + i64::from(ns - resp.t_nsec) / 1_000_000).abs();
    if offset_ms > WARN_TIME_OFFSET_MS + rtt.as_millis() as i64 {
        warn!("The clock of {dst} is {offset_ms} ms off ours.");
    }
    let lower_mtu = flow.mtu();
    Ok(Enrolled {
        conf,
        flow,
        id,
        lower_mtu,
    })
}

/// Tell the member whether our components started.
pub fn acknowledge(flow: &Flow, id: [u8; 8], ok: bool) {
    let ack = EnrollAck {
        id,
        result: if ok { 0 } else { ENROLL_FAILED },
    };
    if let Ok(b) = ack.to_vec() {
        let _ = flow.write(&b);
    }
    // Give the acknowledgement time to leave before the flow is torn down.
    std::thread::sleep(Duration::from_millis(20));
}

/// A newcomer opened an enrollment flow to us (the CEP exchange is done): send it the layer's
/// configuration `conf` and wait for its acknowledgement.
pub fn answer(flow: Flow, conf: IpcpConfig) {
    let who = flow.name().to_string();
    let layer = conf.layer_info.name.clone();
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
        conf: Some(conf),
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
            info!("Enrolled a new member in layer {layer}.")
        }
        Ok(a) => info!("A newcomer failed to start its components ({}).", a.result),
        Err(e) => info!("Enrollment not acknowledged: {e}"),
    }
}
