//! Connections: lower flows between members of a layer, each opened with the
//! connection-establishment exchange (CEP) that names the component it serves. The initiator
//! allocates the flow and speaks first; the acceptor answers with its own component's message,
//! or an empty one when it has no such component.

use o7s::Flow;
use o7s_proto::wire::cep::{consts, CepMsg, ConcSyntax};
use o7s_proto::QosSpec;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tracing::{debug, warn};

/// How long each side waits for the other's CEP message (the prototype waits 1 s; a first
/// packet over a fresh lower flow may need longer on a loaded machine).
pub const CEP_WAIT: Duration = Duration::from_secs(3);

/// The enrollment component's CEP message (the newcomer has no address yet: 0).
pub fn enroll_cep() -> CepMsg {
    CepMsg::new(
        consts::ENROLL_COMP,
        consts::ENROLL_PROTO,
        1,
        ConcSyntax::Gpb,
        0,
    )
}

/// Read one message from `flow`, waiting at most `wait`.
pub fn read_within(flow: &Flow, wait: Duration, what: &str) -> Result<Vec<u8>, String> {
    flow.set_read_timeout(Some(wait));
    let mut buf = vec![0u8; 4096];
    let r = flow.read(&mut buf);
    flow.set_read_timeout(None);
    match r {
        Ok(n) => {
            buf.truncate(n);
            Ok(buf)
        }
        Err(o7s::Error::Timeout) => Err(format!("no {what} within {} s", wait.as_secs())),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// Check the peer's answer `theirs` to our CEP message `mine` sent to `dst` (`kind`: the kind
/// of IPCP that has our component, for the error).
pub fn check_answer(dst: &str, mine: &CepMsg, theirs: &CepMsg, kind: &str) -> Result<(), String> {
    if theirs.comp_name != mine.comp_name {
        return Err(if theirs.comp_name.is_empty() {
            format!(
                "{dst} has no {} component (is it a {kind} IPCP?)",
                mine.comp_name
            )
        } else {
            format!(
                "{dst} answered for component {:?}, not {:?}",
                theirs.comp_name, mine.comp_name
            )
        });
    }
    if theirs.protocol != mine.protocol || theirs.pref_version != mine.pref_version {
        return Err(format!(
            "{dst} speaks {:?} version {} for {}, we speak {:?} version {} (is it a {kind} \
             IPCP?)",
            theirs.protocol, theirs.pref_version, mine.comp_name, mine.protocol, mine.pref_version
        ));
    }
    Ok(())
}

/// Allocate a lower flow to `dst` and open it with our message `mine`; returns the flow and
/// the peer's CEP message.
pub fn open(dst: &str, mine: &CepMsg, qos: QosSpec, kind: &str) -> Result<(Flow, CepMsg), String> {
    let flow = Flow::alloc(dst, qos, None).map_err(|e| format!("cannot reach {dst}: {e}"))?;
    let bytes = mine.to_vec().map_err(|e| e.to_string())?;
    flow.write(&bytes)
        .map_err(|e| format!("cannot send the connection request to {dst}: {e}"))?;
    let answer =
        read_within(&flow, CEP_WAIT, "connection answer").map_err(|e| format!("{dst}: {e}"))?;
    let theirs = CepMsg::parse(&answer)
        .map_err(|e| format!("{dst} answered the connection request with garbage: {e}"))?;
    check_answer(dst, mine, &theirs, kind)?;
    Ok((flow, theirs))
}

/// The first message of an accepted lower flow: the peer's CEP message (None, logged, when it
/// sent nothing in time or garbage).
pub fn first_message(flow: &Flow) -> Option<CepMsg> {
    let first = match read_within(flow, CEP_WAIT, "connection request") {
        Ok(b) => b,
        Err(e) => {
            debug!("a lower flow to {} sent {e}", flow.name());
            return None;
        }
    };
    match CepMsg::parse(&first) {
        Ok(m) => Some(m),
        Err(e) => {
            debug!("a lower flow opened with garbage: {e}");
            None
        }
    }
}

/// Refuse a connection request: the all-empty message, as the prototype.
pub fn refuse(flow: &Flow) {
    let refuse = CepMsg::default().to_vec().unwrap_or_default();
    let _ = flow.write(&refuse);
}

/// Is `theirs` a request for our component `mine` in the same protocol and version?
pub fn same_protocol(mine: &CepMsg, theirs: &CepMsg) -> bool {
    theirs.protocol == mine.protocol && theirs.pref_version == mine.pref_version
}

/// Accept lower flows for as long as `owner` lives; each is handed to `on_flow` on a thread
/// of its own (it starts with a CEP exchange, which may take a while).
pub fn accept_loop<T: Send + Sync + 'static>(
    owner: Weak<T>,
    on_flow: impl Fn(Arc<T>, Flow) + Send + Sync + 'static,
) {
    let on_flow = Arc::new(on_flow);
    let spawned = std::thread::Builder::new()
        .name("acceptor".into())
        .spawn(move || loop {
            let flow = match Flow::accept(None) {
                Ok(f) => f,
                Err(e) => {
                    warn!("accepting lower flows: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            let Some(me) = owner.upgrade() else { return };
            let f = on_flow.clone();
            let spawned = std::thread::Builder::new()
                .name("cep".into())
                .spawn(move || f(me, flow));
            if let Err(e) = spawned {
                warn!("cannot answer a connection: {e}");
            }
        });
    if let Err(e) = spawned {
        warn!("cannot accept lower flows: {e}");
    }
}
