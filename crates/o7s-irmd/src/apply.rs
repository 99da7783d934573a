//! Applying a config file. The requests [`crate::config`] reads are split in two: what brings
//! this system up (names, IPCPs created and bootstrapped, registrations) is applied at start,
//! in order, and a failure stops the IRMd; what needs a peer on another machine (an
//! enrollment and what follows it, a connection) is left to a background thread per IPCP
//! that retries with backoff until it succeeds, because machines boot in any order.
//!
//! The retry logic ([`Backoff`], [`Job::poll`]) is sans-IO: it takes the time and a function
//! that carries out one request, so it is tested with a fake clock. Only [`start`] sleeps.

use crate::irmd::Irmd;
use o7s::ctrl::msg::{IrmError, IrmReq, RegTarget};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// The requests of a config file, split by when they are applied.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Applied at start, in order; the first failure stops the IRMd.
    pub now: Vec<IrmReq>,
    /// One per IPCP that enrolls or connects: retried in the background until done.
    pub later: Vec<Job>,
}

/// Split the requests of a config file (in the order [`crate::config::parse`] gives them)
/// into a [`Plan`]. An enrolling IPCP is created at once (so it shows in `irm ipcp list`
/// while it waits for its peer); its enrollment, connections and registrations form its job,
/// in that order. A bootstrapped IPCP's connections form its job too; its registrations
/// need no peer and are applied at start.
pub fn plan(reqs: Vec<IrmReq>) -> Plan {
    let job_of = |p: &Plan, ipcp: &str| p.later.iter().position(|j| j.ipcp == ipcp);
    let mut p = Plan::default();
    for req in reqs {
        match req {
            IrmReq::IpcpEnroll { ref name, kind, .. } => {
                if let Some(kind) = kind {
                    p.now.push(IrmReq::IpcpCreate {
                        kind,
                        name: name.clone(),
                    });
                }
                let ipcp = name.clone();
                p.later.push(Job::new(ipcp, Some(req), Vec::new()));
            }
            IrmReq::IpcpConnect { ref name, .. } => match job_of(&p, name) {
                Some(i) => p.later[i].push(req),
                None => {
                    let ipcp = name.clone();
                    p.later.push(Job::new(ipcp, None, vec![req]));
                }
            },
            IrmReq::NameReg { ref targets, .. } => {
                let enrolling = match targets.as_slice() {
                    [RegTarget::Ipcp(i)] => job_of(&p, i).filter(|j| p.later[*j].enrolls()),
                    _ => None,
                };
                match enrolling {
                    Some(j) => p.later[j].push(req),
                    None => p.now.push(req),
                }
            }
            other => p.now.push(other),
        }
    }
    p
}

/// Can a request that failed with `e` succeed later, once a peer is up? Errors that name a
/// mistake in the request (a bad parameter, a kind mismatch, an IPCP already in a layer)
/// cannot, and are not retried.
pub fn retryable(e: &IrmError) -> bool {
    match e {
        // The peer or its name is not there yet, or it did not answer (in time).
        IrmError::NameNotFound { .. }
        | IrmError::NoAcceptor { .. }
        | IrmError::Timeout
        | IrmError::IpcpFailed { .. }
        | IrmError::NoSuchLayer { .. }
        | IrmError::NoBroadcastLayer { .. }
        | IrmError::NotBootstrapped { .. }
        | IrmError::Internal(_) => true,
        IrmError::NoSuchName { .. }
        | IrmError::NameExists { .. }
        | IrmError::NoSuchIpcp { .. }
        | IrmError::IpcpExists { .. }
        | IrmError::IpcpKindMismatch { .. }
        | IrmError::AlreadyBootstrapped { .. }
        | IrmError::NoSuchProcess { .. }
        | IrmError::NotBound { .. }
        | IrmError::BadParam { .. }
        | IrmError::NotSupported { .. }
        | IrmError::SpawnFailed { .. }
        | IrmError::NotBoundToAnyName
        | IrmError::NoSuchFlow { .. }
        | IrmError::Denied { .. }
        | IrmError::BadRequest { .. }
        | IrmError::ShuttingDown => false,
    }
}

/// Exponential backoff: 1 s after the first failure, doubling up to 30 s.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_secs(1);
    pub const CAP: Duration = Duration::from_secs(30);

    pub fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// One more failure: how long to wait before the next try.
    pub fn failed(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::CAP);
        d
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// One request of a job and when it is tried next.
#[derive(Debug, PartialEq)]
struct Step {
    req: IrmReq,
    backoff: Backoff,
    /// None: at once.
    due: Option<Instant>,
    tries: u32,
}

impl Step {
    fn new(req: IrmReq) -> Step {
        Step {
            req,
            backoff: Backoff::new(),
            due: None,
            tries: 0,
        }
    }

    fn is_due(&self, now: Instant) -> bool {
        self.due.is_none_or(|d| d <= now)
    }
}

/// What a step's try came to.
enum Tried {
    Done,
    Again,
    Never,
}

/// What [`Job::poll`] says to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Everything succeeded, or what failed can never succeed (logged).
    Done,
    /// Call again at this time.
    At(Instant),
}

/// The requests of one IPCP that wait for peers: its enrollment first (nothing else is
/// tried before it succeeds), then its connections and registrations, each retried on its
/// own, so one peer that stays down holds up nothing else.
#[derive(Debug, PartialEq)]
pub struct Job {
    pub ipcp: String,
    enroll: Option<Step>,
    rest: Vec<Step>,
}

impl Job {
    fn new(ipcp: String, enroll: Option<IrmReq>, rest: Vec<IrmReq>) -> Job {
        Job {
            ipcp,
            enroll: enroll.map(Step::new),
            rest: rest.into_iter().map(Step::new).collect(),
        }
    }

    fn push(&mut self, req: IrmReq) {
        self.rest.push(Step::new(req));
    }

    /// Does this job start with an enrollment?
    pub fn enrolls(&self) -> bool {
        self.enroll.is_some()
    }

    /// The requests of this job still to do, in order.
    pub fn pending(&self) -> Vec<&IrmReq> {
        self.enroll
            .iter()
            .chain(&self.rest)
            .map(|s| &s.req)
            .collect()
    }

    /// Try what is due at `now` with `exec`; say when to come back.
    pub fn poll(
        &mut self,
        now: Instant,
        mut exec: impl FnMut(&IrmReq) -> Result<(), IrmError>,
    ) -> Poll {
        if let Some(step) = &mut self.enroll {
            if !step.is_due(now) {
                return Poll::At(step.due.unwrap_or(now));
            }
            match try_step(&self.ipcp, step, now, &mut exec) {
                Tried::Done => self.enroll = None,
                Tried::Again => return Poll::At(step.due.unwrap_or(now)),
                Tried::Never => {
                    for s in &self.rest {
                        error!(
                            "{}: not done, as the enrollment failed: {}",
                            self.ipcp,
                            what(&s.req)
                        );
                    }
                    self.enroll = None;
                    self.rest.clear();
                    return Poll::Done;
                }
            }
        }
        let ipcp = &self.ipcp;
        self.rest.retain_mut(|s| {
            !s.is_due(now) || matches!(try_step(ipcp, s, now, &mut exec), Tried::Again)
        });
        match self.rest.iter().filter_map(|s| s.due).min() {
            Some(t) => Poll::At(t),
            None => Poll::Done,
        }
    }
}

fn try_step(
    ipcp: &str,
    s: &mut Step,
    now: Instant,
    exec: &mut impl FnMut(&IrmReq) -> Result<(), IrmError>,
) -> Tried {
    s.tries += 1;
    match exec(&s.req) {
        Ok(()) => {
            if s.tries > 1 {
                info!("{ipcp}: {} done at try {}.", what(&s.req), s.tries);
            }
            Tried::Done
        }
        Err(e) if retryable(&e) => {
            let wait = s.backoff.failed();
            s.due = Some(now + wait);
            warn!(
                "{ipcp}: {} failed (try {}): {e}; trying again in {} s.",
                what(&s.req),
                s.tries,
                wait.as_secs()
            );
            Tried::Again
        }
        Err(e) => {
            error!("{ipcp}: {} failed: {e}; not retried.", what(&s.req));
            Tried::Never
        }
    }
}

/// A request in words, for the log.
fn what(req: &IrmReq) -> String {
    match req {
        IrmReq::IpcpEnroll { dst, layer, .. } => format!(
            "enrollment through {}",
            dst.as_deref().or(layer.as_deref()).unwrap_or("?")
        ),
        IrmReq::IpcpConnect { component, dst, .. } => format!("{component} connection to {dst}"),
        IrmReq::NameReg { name, .. } => format!("registration of {name}"),
        other => format!("{other:?}"),
    }
}

/// Apply the start-up requests, in order; the first failure is returned.
pub fn apply_now(irmd: &Arc<Irmd>, reqs: &[IrmReq]) -> Result<(), IrmError> {
    let me = std::process::id();
    for r in reqs {
        irmd.handle(me, r.clone())?;
    }
    Ok(())
}

/// Carry out one request of a job. The IPCP of an enrollment was created at start; if it is
/// gone (`irm ipcp destroy`), the job ends rather than creating it again.
fn exec_later(irmd: &Arc<Irmd>, req: &IrmReq) -> Result<(), IrmError> {
    if let IrmReq::IpcpEnroll { name, .. } = req {
        if !irmd.lock().ipcps.contains_key(name) {
            return Err(IrmError::NoSuchIpcp { name: name.clone() });
        }
    }
    irmd.handle(std::process::id(), req.clone()).map(|_| ())
}

/// Run each job on a thread of its own until it is done or the IRMd shuts down. Call once
/// the IRMd listens: an enrolling IPCP allocates its flows through it.
pub fn start(irmd: &Arc<Irmd>, jobs: Vec<Job>) {
    for mut job in jobs {
        let irmd = irmd.clone();
        let name = format!("cfg-{}", job.ipcp);
        let spawned = std::thread::Builder::new().name(name).spawn(move || loop {
            let exec = |r: &IrmReq| exec_later(&irmd, r);
            match job.poll(Instant::now(), exec) {
                Poll::Done => return,
                Poll::At(t) => {
                    if !irmd.sleep_until(t) {
                        return;
                    }
                }
            }
        });
        if let Err(e) = spawned {
            error!("cannot start a thread for the config of an IPCP: {e}");
        }
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
