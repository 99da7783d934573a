//! The `oping` server: accept flows forever, one thread per flow, each packet echoed back
//! unchanged. A flow ends when its peer goes; the server ends when it is killed.

use o7s::{Error, Flow};

/// Accept flows until the IRMd goes away; returns the exit code.
pub fn run() -> anyhow::Result<i32> {
    loop {
        let flow = crate::accept_next().map_err(|e| anyhow::anyhow!("cannot accept flows: {e}"))?;
        outln!(
            "New flow {} for {} (qos {}).",
            flow.id(),
            flow.name(),
            flow.qos().cube().map_or("custom", |c| c.name())
        );
        std::thread::spawn(move || echo(flow));
    }
}

/// Echo every packet of `flow` until it goes down.
pub fn echo(flow: Flow) {
    let mut buf = vec![0u8; flow.mtu().max(1)];
    let mut packets: u64 = 0;
    let why = loop {
        match flow.read(&mut buf) {
            Ok(n) => match flow.write(&buf[..n]) {
                Ok(_) => packets += 1,
                Err(e) => break e,
            },
            Err(Error::BufferTooSmall { needed }) => buf.resize(needed, 0),
            Err(e) => break e,
        }
    };
    let how = if why.is_down() {
        String::new()
    } else {
        format!(" ({why})")
    };
    outln!("Flow {} ended after {packets} packets{how}.", flow.id());
}
