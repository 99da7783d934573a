use super::*;
use crate::config::parse;
use o7s::ctrl::msg::IpcpKind;
use std::collections::VecDeque;

const FULL: &str = include_str!("../tests/config/full.toml");

fn s(x: &str) -> String {
    x.to_string()
}

fn conn(ipcp: &str, component: &str, dst: &str) -> IrmReq {
    IrmReq::IpcpConnect {
        name: s(ipcp),
        component: s(component),
        dst: s(dst),
        qos: None,
    }
}

fn reg(name: &str, ipcp: &str) -> IrmReq {
    IrmReq::NameReg {
        name: s(name),
        targets: vec![RegTarget::Ipcp(s(ipcp))],
    }
}

fn enroll(ipcp: &str, dst: &str) -> IrmReq {
    IrmReq::IpcpEnroll {
        name: s(ipcp),
        kind: Some(IpcpKind::Unicast),
        dst: Some(s(dst)),
        layer: None,
        autobind: false,
    }
}

#[test]
fn the_full_example_enrolls_in_the_background() {
    let all = parse(FULL, "full.toml").expect("parses");
    let p = plan(all.clone());
    // Everything but lan2's enrollment and connections is applied at start, in file order,
    // with lan2 created where its table stands.
    let mut want_now: Vec<IrmReq> = Vec::new();
    for r in &all {
        match r {
            IrmReq::IpcpEnroll { name, .. } => want_now.push(IrmReq::IpcpCreate {
                kind: IpcpKind::Unicast,
                name: name.clone(),
            }),
            IrmReq::IpcpConnect { .. } => {}
            other => want_now.push(other.clone()),
        }
    }
    assert_eq!(p.now, want_now);
    assert_eq!(p.later.len(), 1);
    let job = &p.later[0];
    assert_eq!(job.ipcp, "lan2");
    assert!(job.enrolls());
    let enroll = IrmReq::IpcpEnroll {
        name: s("lan2"),
        kind: Some(IpcpKind::Unicast),
        dst: Some(s("lan")),
        layer: None,
        autobind: true,
    };
    assert_eq!(
        job.pending(),
        vec![
            &enroll,
            &conn("lan2", "mgmt", "lan1"),
            &conn("lan2", "dt", "lan1")
        ]
    );
}

#[test]
fn what_waits_for_peers_and_what_does_not() {
    let text = "\
[eth-dix.e]\nbootstrap = \"eth\"\ndev = \"veth0\"\nreg = [\"b\", \"net\"]\n\
[unicast.a]\nbootstrap = \"net\"\nconn = [\"b\"]\nreg = [\"srv\"]\n\
[unicast.b]\nenrol = \"net\"\nconn = [\"a\", \"c\"]\nreg = [\"srv2\"]\n\
[broadcast.c]\nenrol = \"bc\"\n";
    let p = plan(parse(text, "t").expect("parses"));
    let kinds: Vec<String> = p
        .now
        .iter()
        .map(|r| match r {
            IrmReq::IpcpBootstrap { name, .. } => format!("bootstrap {name}"),
            IrmReq::IpcpCreate { name, kind } => format!("create {kind} {name}"),
            IrmReq::NameReg { name, targets } => format!("reg {name} {targets:?}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "bootstrap e",
            "reg b [Ipcp(\"e\")]",
            "reg net [Ipcp(\"e\")]",
            "bootstrap a",
            // A bootstrapped IPCP's registrations need no peer.
            "reg srv [Ipcp(\"a\")]",
            "create unicast b",
            "create broadcast c",
        ]
    );
    let jobs: Vec<(&str, bool, usize)> = p
        .later
        .iter()
        .map(|j| (j.ipcp.as_str(), j.enrolls(), j.pending().len()))
        .collect();
    // a: its connection only; b: enrollment, two connections of two components, one
    // registration; c: its enrollment.
    assert_eq!(jobs, [("a", false, 2), ("b", true, 6), ("c", true, 1)]);
    assert_eq!(
        p.later[1].pending().last(),
        Some(&&reg("srv2", "b")),
        "registrations come after the connections"
    );
}

#[test]
fn backoff_doubles_up_to_thirty_seconds() {
    let mut b = Backoff::new();
    let waits: Vec<u64> = (0..8).map(|_| b.failed().as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
}

#[test]
fn only_errors_a_peer_can_fix_are_retried() {
    let name = s("x");
    for e in [
        IrmError::NameNotFound { name: name.clone() },
        IrmError::NoAcceptor { name: name.clone() },
        IrmError::Timeout,
        IrmError::IpcpFailed {
            name: name.clone(),
            why: s("no answer within 60 s"),
        },
        IrmError::NoSuchLayer {
            layer: name.clone(),
        },
    ] {
        assert!(retryable(&e), "{e}");
    }
    for e in [
        IrmError::BadParam {
            key: s("dst"),
            value: s(""),
            why: s("missing"),
        },
        IrmError::IpcpKindMismatch {
            name: name.clone(),
            actual: s("local"),
            wanted: s("unicast"),
        },
        IrmError::AlreadyBootstrapped {
            name: name.clone(),
            layer: name.clone(),
        },
        IrmError::BadRequest { why: s("bad") },
        IrmError::NotSupported { what: s("x") },
        IrmError::ShuttingDown,
    ] {
        assert!(!retryable(&e), "{e}");
    }
}

/// An executor that answers from a script, per request, and records what it was asked.
struct Script {
    answers: Vec<(IrmReq, VecDeque<Result<(), IrmError>>)>,
    log: Vec<IrmReq>,
}

impl Script {
    fn new(answers: Vec<(IrmReq, Vec<Result<(), IrmError>>)>) -> Script {
        Script {
            answers: answers
                .into_iter()
                .map(|(r, a)| (r, a.into_iter().collect()))
                .collect(),
            log: Vec::new(),
        }
    }

    /// Run one request: the next scripted answer, then Ok once the script runs out.
    fn exec(&mut self, r: &IrmReq) -> Result<(), IrmError> {
        self.log.push(r.clone());
        self.answers
            .iter_mut()
            .find(|(q, _)| q == r)
            .and_then(|(_, a)| a.pop_front())
            .unwrap_or(Ok(()))
    }

    fn take(&mut self) -> Vec<IrmReq> {
        std::mem::take(&mut self.log)
    }
}

fn not_up() -> Result<(), IrmError> {
    Err(IrmError::NameNotFound { name: s("u1") })
}

#[test]
fn a_job_retries_with_backoff_on_a_fake_clock() {
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let mut job = Job::new(
        s("u2"),
        Some(enroll("u2", "u1")),
        vec![
            conn("u2", "mgmt", "u1"),
            conn("u2", "dt", "u1"),
            reg("srv", "u2"),
        ],
    );
    let mut sc = Script::new(vec![
        (enroll("u2", "u1"), vec![not_up(), not_up()]),
        (conn("u2", "mgmt", "u1"), vec![Err(IrmError::Timeout)]),
    ]);
    // The peer is not up: the enrollment is tried alone, 1 s later, then 2 s after that.
    assert_eq!(job.poll(t0, |r| sc.exec(r)), Poll::At(at(1)));
    assert_eq!(sc.take(), [enroll("u2", "u1")]);
    // Called early, nothing is tried.
    assert_eq!(
        job.poll(t0 + Duration::from_millis(500), |r| sc.exec(r)),
        Poll::At(at(1))
    );
    assert!(sc.take().is_empty());
    assert_eq!(job.poll(at(1), |r| sc.exec(r)), Poll::At(at(3)));
    assert_eq!(sc.take(), [enroll("u2", "u1")]);
    // Enrolled at the third try; then everything else is tried at once. The mgmt connection
    // times out and comes back 1 s later; the others are done.
    assert_eq!(job.poll(at(3), |r| sc.exec(r)), Poll::At(at(4)));
    assert_eq!(
        sc.take(),
        [
            enroll("u2", "u1"),
            conn("u2", "mgmt", "u1"),
            conn("u2", "dt", "u1"),
            reg("srv", "u2")
        ]
    );
    assert_eq!(job.pending(), [&conn("u2", "mgmt", "u1")]);
    assert_eq!(job.poll(at(4), |r| sc.exec(r)), Poll::Done);
    assert_eq!(sc.take(), [conn("u2", "mgmt", "u1")]);
    assert!(job.pending().is_empty());
}

#[test]
fn a_peer_that_stays_down_holds_up_nothing_else() {
    let t0 = Instant::now();
    let mut job = Job::new(
        s("a"),
        None,
        vec![conn("a", "mgmt", "down"), conn("a", "mgmt", "up")],
    );
    let mut sc = Script::new(vec![(conn("a", "mgmt", "down"), vec![not_up(); 20])]);
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..8 {
        match job.poll(now, |r| sc.exec(r)) {
            Poll::At(t) => {
                waits.push((t - now).as_secs());
                now = t;
            }
            Poll::Done => panic!("the peer never came up"),
        }
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    let log = sc.take();
    assert_eq!(
        log.iter()
            .filter(|r| **r == conn("a", "mgmt", "up"))
            .count(),
        1
    );
    assert_eq!(log.len(), 9);
    assert_eq!(job.pending(), [&conn("a", "mgmt", "down")]);
}

#[test]
fn errors_that_cannot_heal_are_not_retried() {
    let t0 = Instant::now();
    let bad = || {
        Err(IrmError::IpcpKindMismatch {
            name: s("u2"),
            actual: s("broadcast"),
            wanted: s("unicast"),
        })
    };
    // A failed enrollment drops what depends on it.
    let mut job = Job::new(
        s("u2"),
        Some(enroll("u2", "u1")),
        vec![conn("u2", "dt", "u1")],
    );
    let mut sc = Script::new(vec![(enroll("u2", "u1"), vec![bad()])]);
    assert_eq!(job.poll(t0, |r| sc.exec(r)), Poll::Done);
    assert_eq!(sc.take(), [enroll("u2", "u1")]);
    assert!(job.pending().is_empty());
    // A connection refused for good is dropped; the others go on.
    let mut job = Job::new(
        s("u2"),
        None,
        vec![conn("u2", "xx", "u1"), conn("u2", "dt", "u1")],
    );
    let mut sc = Script::new(vec![
        (
            conn("u2", "xx", "u1"),
            vec![Err(IrmError::BadParam {
                key: s("component"),
                value: s("xx"),
                why: s("components: dt, mgmt"),
            })],
        ),
        (conn("u2", "dt", "u1"), vec![not_up()]),
    ]);
    assert_eq!(
        job.poll(t0, |r| sc.exec(r)),
        Poll::At(t0 + Duration::from_secs(1))
    );
    assert_eq!(job.pending(), [&conn("u2", "dt", "u1")]);
}

#[test]
fn sleeping_ends_at_shutdown() {
    let irmd = crate::testkit::irmd();
    assert!(irmd.sleep_until(Instant::now() + Duration::from_millis(1)));
    let bg = {
        let irmd = irmd.clone();
        std::thread::spawn(move || irmd.sleep_until(Instant::now() + Duration::from_secs(60)))
    };
    // Whether the sleeper is asleep yet or not, shutting down ends its sleep.
    irmd.shutdown();
    assert!(!bg.join().expect("sleeper"));
}

#[test]
fn a_destroyed_ipcp_is_not_enrolled_again() {
    let irmd = crate::testkit::irmd();
    let e = exec_later(&irmd, &enroll("gone", "u1"));
    assert_eq!(e, Err(IrmError::NoSuchIpcp { name: s("gone") }));
    assert!(!retryable(&IrmError::NoSuchIpcp { name: s("gone") }));
    assert!(irmd.lock().ipcps.is_empty(), "nothing was started");
}
