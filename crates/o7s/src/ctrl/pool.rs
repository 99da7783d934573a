//! Threads for jobs that may block (a flow request waiting for its acceptor, a name lookup
//! waiting for the network), without starting a thread per job: a job goes to a thread that
//! is idle, or to a new one when none is, so no job ever waits behind another. A thread idle
//! for [`IDLE_EXIT`] ends, so a quiet process keeps none.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

/// How long a thread of the pool waits for a job before it ends.
pub const IDLE_EXIT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job right now.
    waiting: usize,
    /// Threads alive.
    threads: usize,
}

/// A pool of threads that grows with the jobs running at once.
pub struct Workers {
    name: &'static str,
    stack: usize,
    state: Mutex<State>,
    wake: Condvar,
}

impl Workers {
    /// A pool whose threads are named `name` and have `stack` bytes of stack.
    pub const fn new(name: &'static str, stack: usize) -> Workers {
        Workers {
            name,
            stack,
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                waiting: 0,
                threads: 0,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `job` on a thread of the pool: an idle one, else a new one. Fails only when no
    /// thread can be started and none is alive to take the job later (it is then dropped).
    pub fn run(&'static self, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let mut s = self.lock();
        s.jobs.push_back(Box::new(job));
        if s.waiting >= s.jobs.len() {
            drop(s);
            self.wake.notify_one();
            return Ok(());
        }
        s.threads += 1;
        drop(s);
        let spawned = std::thread::Builder::new()
            .name(self.name.into())
            .stack_size(self.stack)
            .spawn(move || self.work());
        if let Err(e) = spawned {
            let mut s = self.lock();
            s.threads -= 1;
            if s.threads == 0 {
                s.jobs.clear();
                return Err(e);
            }
            // A running thread takes the job when it is done with its own.
            tracing::warn!("cannot start a {} thread: {e}", self.name);
        }
        Ok(())
    }

    fn work(&self) {
        let mut s = self.lock();
        loop {
            if let Some(job) = s.jobs.pop_front() {
                drop(s);
                job();
                s = self.lock();
                continue;
            }
            s.waiting += 1;
            let (g, t) = self
                .wake
                .wait_timeout(s, IDLE_EXIT)
                .unwrap_or_else(|e| e.into_inner());
            s = g;
            s.waiting -= 1;
            if t.timed_out() && s.jobs.is_empty() {
                s.threads -= 1;
                return;
            }
        }
    }

    /// Threads alive and threads idle.
    pub fn counts(&self) -> (usize, usize) {
        let s = self.lock();
        (s.threads, s.waiting)
    }
}

/// The process's pool for control-plane jobs (requests on control connections, flow
/// requests from the network).
pub fn workers() -> &'static Workers {
    static POOL: OnceLock<Workers> = OnceLock::new();
    POOL.get_or_init(|| Workers::new("o7s-worker", 2 * 1024 * 1024))
}

/// Run `job` on a thread of the process's pool (see [`Workers::run`]).
pub fn spawn(job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    workers().run(job)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::mpsc::channel;
    use std::sync::{Arc, Barrier};

    #[test]
    fn blocking_jobs_never_wait_for_each_other() {
        static POOL: Workers = Workers::new("test-pool", 256 * 1024);
        // Eight jobs that only finish together: each needs a thread of its own.
        let b = Arc::new(Barrier::new(9));
        for _ in 0..8 {
            let b = b.clone();
            POOL.run(move || {
                b.wait();
            })
            .unwrap();
        }
        b.wait();
        // Then the threads are reused: an idle one takes the next job.
        let (tx, rx) = channel();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while POOL.counts().1 < 8 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(POOL.counts(), (8, 8));
        for i in 0..100 {
            let tx = tx.clone();
            POOL.run(move || tx.send(i).unwrap()).unwrap();
            assert_eq!(rx.recv().unwrap(), i);
        }
        assert!(POOL.counts().0 <= 8, "{:?}", POOL.counts());
    }
}
