//! Test helpers: fake IPCPs that answer the IRMd's requests from a closure over a real
//! control connection, so the IRMd's handlers run unchanged without an `ipcpd`.

use crate::irmd::Irmd;
use crate::registry::Ipcp;
use crate::spawn::Spawner;
use o7s::ctrl::msg::{IpcpKind, IpcpReq, IpcpResp};
use o7s::ctrl::rpc::{Inbound, Rpc};
use std::sync::{Arc, Mutex};

/// The IPCP end of a fake IPCP: the requests it got, in order.
pub struct FakeEnd {
    pub seen: Arc<Mutex<Vec<IpcpReq>>>,
    _rpc: Arc<Rpc>,
}

impl FakeEnd {
    pub fn seen(&self) -> Vec<IpcpReq> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// An IPCP record whose control connection leads to `answer`.
pub fn fake_ipcp(
    name: &str,
    kind: IpcpKind,
    pid: u32,
    layer: Option<&str>,
    answer: impl Fn(&IpcpReq) -> IpcpResp + Send + Sync + 'static,
) -> (Ipcp, FakeEnd) {
    let (ours, theirs) = o7s::ctrl::wire::pair().expect("socketpair");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let peer = Rpc::start(theirs, move |rpc, inb| {
        if let Inbound::Req { id, body, .. } = inb {
            let resp = answer(&body);
            if let Ok(mut v) = log.lock() {
                v.push(body);
            }
            let _ = rpc.reply(id, resp, &[]);
        }
    })
    .expect("fake IPCP end");
    let rpc = Rpc::start(ours, |_, _| {}).expect("IRMd end");
    let ipcp = Ipcp {
        name: name.to_string(),
        kind,
        pid,
        rpc,
        layer: layer.map(str::to_string),
        joining: None,
        hash: Default::default(),
        mtu: 1500,
        hosted: false,
    };
    (ipcp, FakeEnd { seen, _rpc: peer })
}

/// An IRMd with no IPCPs, its run directory unused.
pub fn irmd() -> Arc<Irmd> {
    Irmd::new(std::env::temp_dir(), Spawner::new())
}

/// Put a fake IPCP into `irmd`'s registry; keep the returned end alive for the test.
pub fn add(
    irmd: &Irmd,
    name: &str,
    kind: IpcpKind,
    pid: u32,
    layer: Option<&str>,
    answer: impl Fn(&IpcpReq) -> IpcpResp + Send + Sync + 'static,
) -> FakeEnd {
    let (ipcp, end) = fake_ipcp(name, kind, pid, layer, answer);
    irmd.lock().ipcps.insert(name.to_string(), ipcp);
    end
}
