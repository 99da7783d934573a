use super::*;
use crate::testkit::{add, irmd};
use o7s::ctrl::msg::IrmReq;
use o7s_proto::HashAlgo;

/// Pids no process can have (above the kernel's largest pid_max), so nothing real is ever
/// signalled by a test.
const PID: u32 = 5_000_000;

fn joined(layer: &str) -> IpcpResp {
    IpcpResp::Bootstrapped {
        layer: layer.to_string(),
        hash: HashAlgo::Sha3_512,
        mtu: 1400,
    }
}

fn enroll(name: &str, dst: Option<&str>, layer: Option<&str>, autobind: bool) -> IrmReq {
    IrmReq::IpcpEnroll {
        name: name.into(),
        kind: None,
        dst: dst.map(str::to_string),
        layer: layer.map(str::to_string),
        autobind,
    }
}

fn connect(name: &str, component: &str, dst: &str, qos: Option<&str>) -> IrmReq {
    IrmReq::IpcpConnect {
        name: name.into(),
        component: component.into(),
        dst: dst.into(),
        qos: qos.map(str::to_string),
    }
}

fn err(r: Answer) -> IrmError {
    match r {
        Err(e) => e,
        Ok((resp, _)) => panic!("expected an error, got {resp:?}"),
    }
}

#[test]
fn enroll_records_the_layer_and_autobinds_both_names() {
    let irmd = irmd();
    let end = add(&irmd, "u2", IpcpKind::Unicast, PID, None, |r| match r {
        IpcpReq::Enroll { .. } => joined("net"),
        _ => IpcpResp::Ok,
    });
    assert!(irmd.handle(1, enroll("u2", Some("u1"), None, true)).is_ok());
    assert_eq!(end.seen(), vec![IpcpReq::Enroll { dst: "u1".into() }]);
    let g = irmd.lock();
    let i = &g.ipcps["u2"];
    assert_eq!(
        (i.layer.as_deref(), i.hash, i.mtu, i.joining.is_none()),
        (Some("net"), HashAlgo::Sha3_512, 1400, true)
    );
    assert_eq!(i.info().state, "operational");
    // No local name was needed for dst; autobind made the IPCP's own name and the layer's.
    assert!(!g.names.contains_key("u1"));
    assert_eq!(g.names["u2"].ipcps, ["u2"]);
    assert_eq!(g.names["net"].ipcps, ["u2"]);
}

#[test]
fn enroll_through_the_layer_name() {
    let irmd = irmd();
    let end = add(&irmd, "u2", IpcpKind::Unicast, PID, None, |_| joined("net"));
    assert!(irmd
        .handle(1, enroll("u2", None, Some("net"), false))
        .is_ok());
    assert_eq!(end.seen(), vec![IpcpReq::Enroll { dst: "net".into() }]);
    assert!(irmd.lock().names.is_empty(), "no autobind, no names");
}

#[test]
fn enroll_refusals() {
    let irmd = irmd();
    let _l = add(&irmd, "lo", IpcpKind::Local, PID, Some("lo"), |_| {
        IpcpResp::Ok
    });
    let _u = add(&irmd, "u1", IpcpKind::Unicast, PID + 1, Some("net"), |_| {
        IpcpResp::Ok
    });
    let _b = add(&irmd, "b", IpcpKind::Broadcast, PID + 2, None, |_| {
        IpcpResp::Ok
    });
    let e = err(irmd.handle(1, enroll("u2", None, None, false)));
    assert!(
        matches!(&e, IrmError::BadParam { key, .. } if key == "dst"),
        "{e}"
    );
    assert!(
        e.to_string().contains("irm ipcp enroll name u2 dst DST"),
        "{e}"
    );
    let e = err(irmd.handle(1, enroll("lo", Some("x"), None, false)));
    assert!(matches!(e, IrmError::IpcpKindMismatch { .. }), "{e}");
    let e = err(irmd.handle(1, enroll("u1", Some("x"), None, false)));
    assert!(matches!(e, IrmError::AlreadyBootstrapped { .. }), "{e}");
    let e = err(irmd.handle(
        1,
        IrmReq::IpcpEnroll {
            name: "e".into(),
            kind: Some(IpcpKind::EthDix),
            dst: Some("x".into()),
            layer: None,
            autobind: false,
        },
    ));
    assert!(e.to_string().contains("only bootstrapped"), "{e}");
    assert!(!irmd.lock().ipcps.contains_key("e"), "nothing created");
    // Without `type`, enrollment is for a unicast IPCP; a broadcast one needs `type broadcast`.
    let e = err(irmd.handle(1, enroll("b", Some("x"), None, false)));
    assert!(matches!(e, IrmError::IpcpKindMismatch { .. }), "{e}");
    let e = err(irmd.handle(1, enroll("u3", Some("a b"), None, false)));
    assert!(matches!(e, IrmError::BadRequest { .. }), "{e}");
}

#[test]
fn enroll_failure_and_wrong_layer() {
    let irmd = irmd();
    let _f = add(&irmd, "u2", IpcpKind::Unicast, PID, None, |_| {
        IpcpResp::Err(IrmError::NameNotFound { name: "u1".into() })
    });
    let e = err(irmd.handle(1, enroll("u2", Some("u1"), None, true)));
    assert_eq!(e, IrmError::NameNotFound { name: "u1".into() });
    {
        let g = irmd.lock();
        assert!(g.ipcps["u2"].layer.is_none() && g.ipcps["u2"].joining.is_none());
        assert!(g.names.is_empty());
    }
    let _g = add(&irmd, "u3", IpcpKind::Unicast, PID + 1, None, |_| {
        joined("net")
    });
    let e = err(irmd.handle(1, enroll("u3", Some("u1"), Some("lan"), true)));
    let msg = e.to_string();
    assert!(
        matches!(&e, IrmError::BadParam { key, .. } if key == "layer"),
        "{e}"
    );
    assert!(msg.contains("\"net\", not \"lan\"") && msg.contains("irm ipcp destroy name u3"));
    // The IPCP existed before: it is in the layer it joined, unbound.
    let g = irmd.lock();
    assert_eq!(g.ipcps["u3"].layer.as_deref(), Some("net"));
    assert!(g.names.is_empty());
}

#[test]
fn a_slow_enrollment_shows_and_refuses_a_second_one() {
    let irmd = irmd();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Mutex::new(rx);
    let _f = add(&irmd, "u2", IpcpKind::Unicast, PID, None, move |_| {
        let _ = rx.lock().map(|r| r.recv_timeout(Duration::from_secs(10)));
        joined("net")
    });
    let _u1 = add(&irmd, "u1", IpcpKind::Unicast, PID + 1, Some("net"), |_| {
        IpcpResp::Ok
    });
    let bg = {
        let irmd = irmd.clone();
        std::thread::spawn(move || irmd.handle(1, enroll("u2", Some("net"), None, false)))
    };
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while irmd.lock().ipcps["u2"].joining.is_none() && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
    {
        let g = irmd.lock();
        // dst is a layer known here, so that is the layer being joined.
        assert_eq!(g.ipcps["u2"].joining.as_deref(), Some("net"));
        assert_eq!(g.ipcps["u2"].info().state, "enrolling");
    }
    let e = err(irmd.handle(1, enroll("u2", Some("u1"), None, false)));
    assert!(e.to_string().contains("enrolling already"), "{e}");
    // Through an IPCP of this system, its layer is the one being joined.
    let seen = Arc::new(std::sync::Mutex::new(None));
    let (weak, got) = (Arc::downgrade(&irmd), seen.clone());
    let _u3 = add(&irmd, "u3", IpcpKind::Unicast, PID + 2, None, move |_| {
        if let (Some(irmd), Ok(mut got)) = (weak.upgrade(), got.lock()) {
            *got = irmd.lock().ipcps["u3"].joining.clone();
        }
        joined("net")
    });
    assert!(irmd
        .handle(1, enroll("u3", Some("u1"), None, false))
        .is_ok());
    assert_eq!(*seen.lock().expect("seen"), Some("net".to_string()));
    let e = err(irmd.handle(
        1,
        IrmReq::IpcpBootstrap {
            kind: IpcpKind::Unicast,
            name: "u2".into(),
            layer: "x".into(),
            params: vec![],
            autobind: false,
        },
    ));
    assert!(e.to_string().contains("enrolling already"), "{e}");
    let _ = tx.send(());
    assert!(bg.join().expect("enroll thread").is_ok());
}

#[test]
fn bootstrap_autobind_binds_the_ipcp_and_the_layer() {
    let irmd = irmd();
    let _u = add(&irmd, "u1", IpcpKind::Unicast, PID, None, |_| joined("net"));
    let _e = add(&irmd, "e", IpcpKind::EthDix, PID + 1, None, |_| {
        joined("eth")
    });
    for (kind, name, layer) in [
        (IpcpKind::Unicast, "u1", "net"),
        (IpcpKind::EthDix, "e", "eth"),
    ] {
        let req = IrmReq::IpcpBootstrap {
            kind,
            name: name.into(),
            layer: layer.into(),
            params: vec![],
            autobind: true,
        };
        assert!(irmd.handle(1, req).is_ok());
    }
    let g = irmd.lock();
    assert_eq!(g.names["u1"].ipcps, ["u1"]);
    assert_eq!(g.names["net"].ipcps, ["u1"]);
    // A shim accepts no flows: nothing to bind.
    assert!(!g.names.contains_key("e") && !g.names.contains_key("eth"));
}

#[test]
fn connect_and_disconnect_are_relayed() {
    let irmd = irmd();
    let end = add(&irmd, "u2", IpcpKind::Unicast, PID, Some("net"), |_| {
        IpcpResp::Ok
    });
    assert!(irmd.handle(1, connect("u2", "mgmt", "u1", None)).is_ok());
    assert!(irmd
        .handle(1, connect("u2", "dt", "u1", Some("voice")))
        .is_ok());
    let dis = IrmReq::IpcpDisconnect {
        name: "u2".into(),
        component: "dt".into(),
        dst: "u1".into(),
    };
    assert!(irmd.handle(1, dis).is_ok());
    assert_eq!(
        end.seen(),
        vec![
            IpcpReq::Connect {
                component: "mgmt".into(),
                dst: "u1".into(),
                qos: None
            },
            IpcpReq::Connect {
                component: "dt".into(),
                dst: "u1".into(),
                qos: Some("voice".into())
            },
            IpcpReq::Disconnect {
                component: "dt".into(),
                dst: "u1".into()
            },
        ]
    );
}

#[test]
fn connect_refusals() {
    let irmd = irmd();
    let _a = add(&irmd, "u2", IpcpKind::Unicast, PID, None, |_| IpcpResp::Ok);
    let _b = add(&irmd, "lo", IpcpKind::Local, PID + 1, Some("lo"), |_| {
        IpcpResp::Ok
    });
    let _c = add(&irmd, "u3", IpcpKind::Unicast, PID + 2, Some("net"), |_| {
        IpcpResp::Err(IrmError::NameNotFound { name: "u9".into() })
    });
    let e = err(irmd.handle(1, connect("u2", "dt", "u1", None)));
    assert_eq!(e, IrmError::NotBootstrapped { name: "u2".into() });
    let e = err(irmd.handle(1, connect("u3", "routing", "u1", None)));
    assert!(e.to_string().contains("components: dt"), "{e}");
    let e = err(irmd.handle(1, connect("u3", "dt", "u1", Some("gold"))));
    assert!(
        matches!(&e, IrmError::BadParam { key, .. } if key == "qos"),
        "{e}"
    );
    let e = err(irmd.handle(1, connect("nope", "dt", "u1", None)));
    assert!(matches!(e, IrmError::NoSuchIpcp { .. }), "{e}");
    let e = err(irmd.handle(1, connect("lo", "dt", "u1", None)));
    assert!(e.to_string().contains("only bootstrapped"), "{e}");
    let e = err(irmd.handle(1, connect("u3", "dt", "u9", None)));
    assert_eq!(e, IrmError::NameNotFound { name: "u9".into() });
}
