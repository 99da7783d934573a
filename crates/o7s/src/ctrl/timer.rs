//! Deadlines of requests answered later (a flow allocation waiting for the far side's
//! reply, an accept call waiting for a flow): one thread per process runs each job when its
//! time comes, unless it was cancelled first. Jobs run on that thread, so they must be quick
//! (answer a request, fail a waiter); nothing waits on a thread of its own for a deadline.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A scheduled job, for [`Timers::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(Instant, u64);

#[derive(Default)]
struct State {
    jobs: BTreeMap<TimerId, Job>,
    next: u64,
    /// The thread is running.
    started: bool,
    /// When the thread wakes up by itself (None: it waits for a job). A job due later
    /// needs no wake-up: the thread looks again then (jobs cancelled meanwhile cost it one
    /// early look, not one wake-up each).
    wakes_at: Option<Instant>,
}

/// Jobs run at their deadline by one thread.
pub struct Timers {
    name: &'static str,
    state: Mutex<State>,
    wake: Condvar,
}

impl Timers {
    /// Timers whose thread is named `name` (started on first use).
    pub const fn new(name: &'static str) -> Timers {
        Timers {
            name,
            state: Mutex::new(State {
                jobs: BTreeMap::new(),
                next: 0,
                started: false,
                wakes_at: None,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `job` at `when` (at once if that passed), unless cancelled first. When the
    /// timer thread cannot be started the job runs at once, here.
    pub fn at(&'static self, when: Instant, job: impl FnOnce() + Send + 'static) -> TimerId {
        let mut s = self.lock();
        let id = TimerId(when, s.next);
        s.next += 1;
        let earlier = s.wakes_at.is_none_or(|t| when < t);
        s.jobs.insert(id, Box::new(job));
        if !s.started {
            let spawned = std::thread::Builder::new()
                .name(self.name.into())
                .stack_size(256 * 1024)
                .spawn(move || self.run());
            match spawned {
                Ok(_) => s.started = true,
                Err(e) => {
                    tracing::warn!("cannot start the {} thread: {e}", self.name);
                    let job = s.jobs.remove(&id);
                    drop(s);
                    if let Some(job) = job {
                        job();
                    }
                    return id;
                }
            }
        }
        if earlier {
            // The thread sets this again when it looks at the jobs.
            s.wakes_at = Some(when);
            drop(s);
            self.wake.notify_one();
        }
        id
    }

    /// Cancel job `id`; false when it ran already (or is running).
    pub fn cancel(&self, id: TimerId) -> bool {
        self.lock().jobs.remove(&id).is_some()
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.lock().jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn run(&self) {
        let mut s = self.lock();
        loop {
            let now = Instant::now();
            let due = match s.jobs.first_key_value() {
                Some((id, _)) if id.0 <= now => s.jobs.pop_first(),
                _ => None,
            };
            if let Some((_, job)) = due {
                drop(s);
                job();
                s = self.lock();
                continue;
            }
            let next = s.jobs.keys().next().map(|id| id.0);
            s.wakes_at = next;
            s = match next {
                Some(t) => {
                    let left = t.saturating_duration_since(now);
                    self.wake
                        .wait_timeout(s, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.wake.wait(s).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

/// The process's timers.
pub fn timers() -> &'static Timers {
    static T: OnceLock<Timers> = OnceLock::new();
    T.get_or_init(|| Timers::new("o7s-timer"))
}

/// Run `job` at `when` on the process's timer thread (see [`Timers::at`]).
pub fn at(when: Instant, job: impl FnOnce() + Send + 'static) -> TimerId {
    timers().at(when, job)
}

/// Cancel a job of the process's timers (see [`Timers::cancel`]).
pub fn cancel(id: TimerId) -> bool {
    timers().cancel(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    #[test]
    fn jobs_run_in_deadline_order_and_cancelled_ones_never() {
        static T: Timers = Timers::new("test-timer");
        let (tx, rx) = channel();
        let now = Instant::now();
        for (i, ms) in [(0, 60u64), (1, 20), (2, 40)] {
            let tx = tx.clone();
            T.at(now + Duration::from_millis(ms), move || tx.send(i).unwrap());
        }
        let tx2 = tx.clone();
        let gone = T.at(now + Duration::from_millis(30), move || {
            tx2.send(9).unwrap()
        });
        assert!(T.cancel(gone));
        assert!(!T.cancel(gone));
        let got: Vec<i32> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, [1, 2, 0]);
        assert!(now.elapsed() >= Duration::from_millis(60));
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        assert!(T.is_empty());
        // A deadline already past runs at once; an earlier job added later runs first.
        let later = T.at(Instant::now() + Duration::from_secs(60), || {});
        let tx3 = tx.clone();
        T.at(Instant::now(), move || tx3.send(7).unwrap());
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 7);
        assert!(T.cancel(later));
    }
}
