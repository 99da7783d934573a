use super::*;
use o7s::ctrl::msg::{BindTarget, LoadBalance, RegTarget};

fn p(line: &str) -> Invocation {
    let args: Vec<&str> = line.split_whitespace().collect();
    parse(&args).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn send(line: &str) -> IrmReq {
    match p(line).action {
        Action::Send(r) => r,
        other => panic!("{line}: {other:?}"),
    }
}

fn bad(line: &str) -> ParseError {
    let args: Vec<&str> = line.split_whitespace().collect();
    match parse(&args) {
        Err(e) => e,
        Ok(i) => panic!("{line} parsed: {i:?}"),
    }
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn ipcp_create_and_destroy() {
    assert_eq!(
        send("ipcp create type local name lo"),
        IrmReq::IpcpCreate {
            kind: IpcpKind::Local,
            name: s("lo")
        }
    );
    assert_eq!(
        send("ipcp create name u1 type unicast"),
        IrmReq::IpcpCreate {
            kind: IpcpKind::Unicast,
            name: s("u1")
        }
    );
    assert_eq!(
        send("ipcp destroy name lo"),
        IrmReq::IpcpDestroy { name: s("lo") }
    );
    assert!(bad("ipcp create name lo")
        .msg
        .contains("missing \"type TYPE\""));
    assert!(bad("ipcp create type local")
        .msg
        .contains("missing \"name NAME\""));
    assert!(bad("ipcp destroy").msg.contains("name NAME"));
    assert!(bad("ipcp destroy name")
        .msg
        .contains("\"name\" needs a value"));
    assert!(bad("ipcp destroy name a name b").msg.contains("twice"));
    assert_eq!(
        bad("ipcp destroy name a foo").usage,
        Some(usage::IPCP_DESTROY)
    );
}

#[test]
fn every_type_parses_and_unknown_types_are_listed() {
    for k in IpcpKind::ALL {
        assert_eq!(
            send(&format!("ipcp create type {k} name x")),
            IrmReq::IpcpCreate {
                kind: k,
                name: s("x")
            }
        );
    }
    let e = bad("ipcp bootstrap type frobnicate name x layer y");
    assert_eq!(
        e.msg,
        "unknown IPCP type \"frobnicate\"; types: local, eth-llc, eth-dix, udp4, udp6, unicast, broadcast"
    );
    assert_eq!(e.usage, Some(usage::IPCP_BOOTSTRAP));
}

#[test]
fn bootstrap_with_params() {
    assert_eq!(
        send("ipcp bootstrap type local name lo layer lo"),
        IrmReq::IpcpBootstrap {
            kind: IpcpKind::Local,
            name: s("lo"),
            layer: s("lo"),
            params: vec![],
            autobind: false
        }
    );
    assert_eq!(
        send("ipcp bootstrap type unicast name u layer net addr 4 eid 8 ttl 30 addr-auth flat routing lfa congestion none hash SHA3_512 autobind"),
        IrmReq::IpcpBootstrap {
            kind: IpcpKind::Unicast,
            name: s("u"),
            layer: s("net"),
            params: [
                ("addr", "4"),
                ("eid", "8"),
                ("ttl", "30"),
                ("addr_auth", "flat"),
                ("routing", "lfa"),
                ("congestion", "none"),
                ("hash", "SHA3_512")
            ]
            .iter()
            .map(|(k, v)| (s(k), s(v)))
            .collect(),
            autobind: true
        }
    );
    match send("ipcp bootstrap type eth-dix name e layer eth dev veth0 ethertype 0xA001") {
        IrmReq::IpcpBootstrap { params, .. } => assert_eq!(
            params,
            vec![(s("dev"), s("veth0")), (s("ethertype"), s("0xA001"))]
        ),
        other => panic!("{other:?}"),
    }
    match send("ipcp bootstrap type udp4 name u layer udp ip 10.0.0.1 port 9000 dns 10.0.0.254") {
        IrmReq::IpcpBootstrap { kind, params, .. } => {
            assert_eq!(kind, IpcpKind::Udp4);
            assert_eq!(params.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    match send("ipcp bootstrap type udp6 name u layer udp ip fd00::1 dns [fd00::53]:5353 dns_zone o7s.test") {
        IrmReq::IpcpBootstrap { params, .. } => assert_eq!(
            params,
            vec![
                (s("ip"), s("fd00::1")),
                (s("dns"), s("[fd00::53]:5353")),
                (s("dns_zone"), s("o7s.test"))
            ]
        ),
        other => panic!("{other:?}"),
    }
    match send("ipcp bootstrap type local name lo layer lo autobind") {
        IrmReq::IpcpBootstrap { autobind, .. } => assert!(autobind),
        other => panic!("{other:?}"),
    }
    match send("ipcp bootstrap type broadcast name b layer bc autobind") {
        IrmReq::IpcpBootstrap { autobind, .. } => assert!(autobind),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bootstrap_errors() {
    let e = bad("ipcp bootstrap type local name lo layer lo dev eth0");
    assert_eq!(
        e.msg,
        "\"dev\" is not a parameter of a local IPCP; its parameters: hash"
    );
    let e = bad("ipcp bootstrap type broadcast name b layer b hash SHA3_256");
    assert!(e.msg.contains("it takes none"), "{}", e.msg);
    assert!(bad("ipcp bootstrap type local name lo")
        .msg
        .contains("layer LAYER"));
    assert!(bad("ipcp bootstrap type local name lo layer lo hash")
        .msg
        .contains("needs a value"));
    assert!(
        bad("ipcp bootstrap type local name lo layer lo hash a hash b")
            .msg
            .contains("twice")
    );
    assert!(bad("ipcp bootstrap type local name lo layer lo bogus 1")
        .msg
        .contains("\"bogus\""));
}

#[test]
fn enroll_connect_disconnect() {
    assert_eq!(
        send("ipcp enroll name u2 layer net autobind"),
        IrmReq::IpcpEnroll {
            name: s("u2"),
            kind: None,
            dst: None,
            layer: Some(s("net")),
            autobind: true
        }
    );
    assert_eq!(
        send("ipcp enroll name u2 type unicast dst u1"),
        IrmReq::IpcpEnroll {
            name: s("u2"),
            kind: Some(IpcpKind::Unicast),
            dst: Some(s("u1")),
            layer: None,
            autobind: false
        }
    );
    assert!(bad("ipcp enroll name u2").msg.contains("dst DST"));
    assert!(bad("ipcp enroll layer x").msg.contains("name NAME"));
    assert_eq!(
        send("ipcp connect name u2 component dt dst u1 qos voice"),
        IrmReq::IpcpConnect {
            name: s("u2"),
            component: s("dt"),
            dst: s("u1"),
            qos: Some(s("voice"))
        }
    );
    assert_eq!(
        send("ipcp disconnect name u2 component mgmt dst u1"),
        IrmReq::IpcpDisconnect {
            name: s("u2"),
            component: s("mgmt"),
            dst: s("u1")
        }
    );
    assert!(bad("ipcp connect name u2 component xx dst u1")
        .msg
        .contains("dt, mgmt"));
    assert!(bad("ipcp connect name u2 component dt dst u1 qos gold")
        .msg
        .contains("QoS cube"));
    assert!(bad("ipcp disconnect name u2 component dt dst u1 qos voice")
        .msg
        .contains("\"qos\""));
    assert!(bad("ipcp connect name u2 dst u1").msg.contains("component"));
}

#[test]
fn enroll_in_any_order_and_abbreviated() {
    let want = IrmReq::IpcpEnroll {
        name: s("u2"),
        kind: Some(IpcpKind::Broadcast),
        dst: Some(s("b1")),
        layer: Some(s("bc")),
        autobind: true,
    };
    assert_eq!(
        send("ipcp enroll autobind layer bc dst b1 type broadcast name u2"),
        want
    );
    assert_eq!(send("i e n u2 t broadcast d b1 l bc a"), want);
    assert_eq!(
        send("ipcp enroll name u2 type broadcast dst b1 dif bc autobind"),
        want
    );
    let e = bad("ipcp enroll name u2 type eth-dix dst u1");
    assert!(
        e.msg.contains("only unicast and broadcast IPCPs enroll"),
        "{e}"
    );
    assert!(
        e.msg.contains("irm ipcp bootstrap type eth-dix name u2"),
        "{e}"
    );
    assert_eq!(e.usage, Some(usage::IPCP_ENROLL));
    assert!(bad("ipcp enroll name u2 type token dst u1")
        .msg
        .contains("unknown IPCP type"));
    assert!(bad("ipcp enroll name u2 dst")
        .msg
        .contains("\"dst\" needs a value"));
    assert!(bad("ipcp enroll name u2 dst a dst b").msg.contains("twice"));
    assert!(bad("ipcp enroll name u2 dst a bogus")
        .msg
        .contains("\"bogus\""));
    assert!(bad("ipcp connect name u2 component dt")
        .msg
        .contains("dst DST"));
    assert!(bad("ipcp connect component dt dst u1")
        .msg
        .contains("name NAME"));
    assert!(matches!(
        send("i conn n u2 comp mgmt dst u1"),
        IrmReq::IpcpConnect { .. }
    ));
}

#[test]
fn ipcp_show_takes_the_name_bare_or_with_its_keyword() {
    assert_eq!(p("ipcp show net-a").action, Action::IpcpShow(s("net-a")));
    assert_eq!(
        p("ipcp show name net-a").action,
        Action::IpcpShow(s("net-a"))
    );
    // A bare name that looks like the keyword is still the name.
    assert_eq!(p("ipcp show n").action, Action::IpcpShow(s("n")));
    assert_eq!(p("i s u1 --json").action, Action::IpcpShow(s("u1")));
    assert!(bad("ipcp show").msg.contains("name NAME"));
    assert!(bad("ipcp show a b").msg.contains("unexpected word \"a\""));
}

#[test]
fn ipcp_list_filters_and_json_anywhere() {
    assert_eq!(
        p("ipcp list"),
        Invocation {
            json: false,
            action: Action::IpcpList(IpcpFilter::default())
        }
    );
    assert_eq!(
        p("--json ipcp list type unicast layer net name u1"),
        Invocation {
            json: true,
            action: Action::IpcpList(IpcpFilter {
                kind: Some(IpcpKind::Unicast),
                name: Some(s("u1")),
                layer: Some(s("net"))
            })
        }
    );
    assert!(p("ipcp list --json").json);
    assert!(p("ipcp --json list").json);
    assert!(bad("ipcp list type x").msg.contains("unknown IPCP type"));
}

#[test]
fn bind_and_unbind() {
    assert_eq!(
        send("bind program oping name oping.server auto -- -l -i 3"),
        IrmReq::Bind {
            target: BindTarget::Program {
                prog: s("oping"),
                auto: true,
                args: vec![s("-l"), s("-i"), s("3")]
            },
            name: s("oping.server")
        }
    );
    // After `--`, `--json` and `--help` belong to the program.
    let i = p("bind program /bin/x name x -- --json --help");
    assert!(!i.json);
    assert_eq!(
        i.action,
        Action::Send(IrmReq::Bind {
            target: BindTarget::Program {
                prog: s("/bin/x"),
                auto: false,
                args: vec![s("--json"), s("--help")]
            },
            name: s("x")
        })
    );
    assert_eq!(
        send("bind process 42 name echo"),
        IrmReq::Bind {
            target: BindTarget::Process { pid: 42 },
            name: s("echo")
        }
    );
    assert_eq!(
        send("bind name n ipcp u1"),
        IrmReq::Bind {
            target: BindTarget::Ipcp { name: s("u1") },
            name: s("n")
        }
    );
    assert_eq!(
        send("unbind program oping name oping.server"),
        IrmReq::Unbind {
            target: BindTarget::Program {
                prog: s("oping"),
                auto: false,
                args: vec![]
            },
            name: s("oping.server")
        }
    );
    assert_eq!(
        send("unbind process 7 name x"),
        IrmReq::Unbind {
            target: BindTarget::Process { pid: 7 },
            name: s("x")
        }
    );
    assert!(bad("bind process abc name x")
        .msg
        .contains("not a process id"));
    assert!(bad("bind process 0 name x")
        .msg
        .contains("not a process id"));
    assert!(bad("bind process 1 name x auto").msg.contains("auto"));
    assert!(bad("bind process 1 name x -- a").msg.contains("--"));
    assert!(bad("bind program a process 1 name x")
        .msg
        .contains("one of"));
    assert!(bad("bind name x").msg.contains("missing"));
    assert!(bad("bind program a").msg.contains("name NAME"));
    assert!(bad("unbind program a name x auto").msg.contains("\"auto\""));
    assert!(bad("unbind program a name x -- a").msg.contains("--"));
    assert_eq!(bad("unbind program a").usage, Some(usage::UNBIND));
    assert!(bad("ipcp list -- x").msg.contains("--"));
}

#[test]
fn names() {
    assert_eq!(
        send("name create oping.server"),
        IrmReq::NameCreate {
            name: s("oping.server"),
            lb: LoadBalance::Spill
        }
    );
    assert_eq!(
        send("name create x lb round-robin"),
        IrmReq::NameCreate {
            name: s("x"),
            lb: LoadBalance::RoundRobin
        }
    );
    assert!(bad("name create x lb random")
        .msg
        .contains("spill or round-robin"));
    let e = bad("name create x sencpath /a");
    assert!(e.msg.contains("credentials are not supported yet"));
    assert_eq!(e.usage, None);
    assert_eq!(send("name destroy x"), IrmReq::NameDestroy { name: s("x") });
    assert_eq!(
        send("name reg x layer a ipcp b layer c"),
        IrmReq::NameReg {
            name: s("x"),
            targets: vec![
                RegTarget::Layer(s("a")),
                RegTarget::Ipcp(s("b")),
                RegTarget::Layer(s("c"))
            ]
        }
    );
    assert_eq!(
        send("name unreg x layer a"),
        IrmReq::NameUnreg {
            name: s("x"),
            targets: vec![RegTarget::Layer(s("a"))]
        }
    );
    let e = bad("name reg");
    assert_eq!(e.msg, "missing NAME");
    assert_eq!(e.usage, Some(usage::NAME_REG));
    assert!(bad("name reg x").msg.contains("layer LAYER"));
    assert!(bad("name reg x layer").msg.contains("needs a value"));
    assert!(bad("name reg x foo y").msg.contains("\"foo\""));
    assert!(bad("name destroy x y").msg.contains("\"y\""));
    assert_eq!(p("name list").action, Action::NameList);
    assert!(p("name list --json").json);
    assert!(bad("name list x").msg.contains("\"x\""));
}

#[test]
fn flows() {
    assert_eq!(p("flow list").action, Action::FlowList);
    assert!(p("flow list --json").json);
    assert!(bad("flow").msg.contains("needs a command"));
    assert!(bad("flow alloc").msg.contains("unknown flow command"));
}

#[test]
fn abbreviations_like_the_prototype() {
    assert_eq!(p("i l").action, Action::IpcpList(IpcpFilter::default()));
    assert_eq!(p("n l").action, Action::NameList);
    assert_eq!(p("f l").action, Action::FlowList);
    assert!(matches!(
        send("ipcp boot type local name lo layer lo"),
        IrmReq::IpcpBootstrap { .. }
    ));
    // Ambiguous prefixes resolve in the prototype's order: "c" is create, "d" destroy.
    assert!(matches!(
        send("ipcp c type local name x"),
        IrmReq::IpcpCreate { .. }
    ));
    assert!(matches!(send("ipcp d name x"), IrmReq::IpcpDestroy { .. }));
    assert!(matches!(
        send("ipcp disc name x comp dt dst y"),
        IrmReq::IpcpDisconnect { .. }
    ));
    // Keywords too, and the old spellings `dif` and `if_name`.
    assert_eq!(
        send("i b t eth-llc n e dif eth if_name veth0 h SHA3_224"),
        IrmReq::IpcpBootstrap {
            kind: IpcpKind::EthLlc,
            name: s("e"),
            layer: s("eth"),
            params: vec![(s("dev"), s("veth0")), (s("hash"), s("SHA3_224"))],
            autobind: false
        }
    );
    assert_eq!(
        send("n r x l lo"),
        IrmReq::NameReg {
            name: s("x"),
            targets: vec![RegTarget::Layer(s("lo"))]
        }
    );
    assert_eq!(
        send("b prog oping n oping.server a"),
        IrmReq::Bind {
            target: BindTarget::Program {
                prog: s("oping"),
                auto: true,
                args: vec![]
            },
            name: s("oping.server")
        }
    );
    // "n" could be "name" only; "b" is "bind" (unbind does not start with b).
    assert!(matches!(send("b process 3 name x"), IrmReq::Bind { .. }));
}

#[test]
fn help_everywhere() {
    for (line, u) in [
        ("", usage::ALL),
        ("help", usage::ALL),
        ("--help", usage::ALL),
        ("-h", usage::ALL),
        ("ipcp --help", usage::IPCP),
        ("ipcp help", usage::IPCP),
        ("ipcp", usage::IPCP),
        ("ipcp bootstrap help", usage::IPCP_BOOTSTRAP),
        ("ipcp bootstrap type local --help", usage::IPCP_BOOTSTRAP),
        ("ipcp enroll --help", usage::IPCP_ENROLL),
        ("ipcp enroll name u2 --help", usage::IPCP_ENROLL),
        ("ipcp connect help", usage::IPCP_CONNECT),
        ("ipcp disconnect -h", usage::IPCP_DISCONNECT),
        ("ipcp show --help", usage::IPCP_SHOW),
        ("bind help", usage::BIND),
        ("unbind --help", usage::UNBIND),
        ("name help", usage::NAME),
        ("name reg help", usage::NAME_REG),
        ("flow help", usage::FLOW),
        ("flow list --help", usage::FLOW_LIST),
    ] {
        let args: Vec<&str> = line.split_whitespace().collect();
        match parse(&args) {
            Ok(Invocation {
                action: Action::Help(got),
                ..
            }) => assert_eq!(got, u, "{line}"),
            // Without --help, a bare group is an error that shows the same usage.
            Err(e) => {
                assert!(!line.contains("help"), "{line}: {e}");
                assert_eq!(e.usage, Some(u), "{line}");
            }
            Ok(other) => panic!("{line}: {other:?}"),
        }
    }
    assert_eq!(p("--version").action, Action::Version);
    assert!(bad("frobnicate")
        .msg
        .contains("unknown command \"frobnicate\""));
    assert!(bad("ipcp frobnicate").to_string().contains("usage:"));
}

#[test]
fn the_error_shows_the_command_and_its_usage() {
    let e = bad("ipcp create type local");
    assert_eq!(
        e.to_string(),
        format!(
            "irm: missing \"name NAME\"\n\nusage:\n{}",
            usage::IPCP_CREATE
        )
    );
}
