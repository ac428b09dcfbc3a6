//! The runtime: one blocking call over a scheduler pool and an execution pool.
//!
//! ```text
//! caller ── submit (admission: a free thread, else a queue place, else QueueFull; Queued)
//!   │                       │
//!   │                       ▼
//!   │                  scheduler threads: place on a free execution thread, or queue
//!   │                       │             (submission order) and arm the queue deadline
//!   │                       ▼
//!   │                  execution threads: Pending → Running (Started) → job(&JobContext)
//!   │                       │ terminal status (first write wins), Finished
//!   ▼                       ▼
//! wait: woken at once by the result; every poll interval a heartbeat and a deadline check
//!
//! timer thread: writes the end of each task whose queue, execution or wait deadline passes
//! janitor thread: the user code a deadline sets off (cancel actions, drops of unrun jobs)
//! mailbox threads: one per runtime observer, one for per-call observers
//! ```
//!
//! Threads per runtime: `scheduler_threads` + `execution_threads`, one timer, one janitor,
//! and one mailbox per runtime observer plus one for per-call observers. Scheduler threads
//! never wait on a run, so every execution thread can be busy; neither they nor the timer
//! ever run user code.

mod cancel;
mod config;
mod delivery;
mod events;
mod handle;
mod handoff;
mod janitor;
mod pool;
mod record;
mod registry;
mod shared;
mod task;
mod time;
mod timer;

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

pub use cancel::{CancelGuard, CancelReason, CancelToken};
pub use config::{Config, RunOptions, RuntimeBuilder};
pub use events::{Event, EventKind, Observer, ProgressReport};
pub use handle::{JobContext, TaskHandle};
pub use task::{Stats, TaskId, TaskSnapshot, TaskStatus, TimeoutKind};

use crate::error::Error;
use shared::Shared;

/// Runs jobs on a scheduler pool and an execution pool, with execution, queue and wait
/// timeouts enforced, and hands each caller its result the moment it is ready.
///
/// A cheap handle: clones share the same pools and tasks. Dropping the last handle shuts
/// the runtime down (see [`shutdown`](Self::shutdown)); that blocks for at most the
/// configured [`shutdown_grace`](RuntimeBuilder::shutdown_grace).
///
/// ```
/// use subtask::{Runtime, RunOptions};
///
/// let runtime = Runtime::new()?;
/// let answer = runtime.run(|job| {
///     job.token().check()?; // stop early if cancelled or out of time
///     Ok(6 * 7)
/// }, RunOptions::new().label("answer"))?;
/// assert_eq!(answer, 42);
/// # Ok::<(), subtask::Error>(())
/// ```
#[derive(Clone)]
pub struct Runtime {
    owner: Arc<Owner>,
}

/// Shuts the runtime down when the last [`Runtime`] handle goes. Threads and task handles
/// hold [`Shared`] directly, so they never keep a forgotten runtime alive.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Joins every thread unless an earlier shutdown already did (a shutdown called from
        // inside a job only closes), or this drop runs on a runtime thread.
        self.shared.release();
    }
}

impl Runtime {
    /// A runtime with every default (see [`RuntimeBuilder`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) if a thread cannot be spawned.
    pub fn new() -> Result<Runtime, Error> {
        RuntimeBuilder::new().build()
    }

    /// A builder to set pools, timeouts, limits and observers.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::new()
    }

    pub(crate) fn start(
        config: Config,
        observers: Vec<Arc<dyn Observer>>,
    ) -> Result<Runtime, Error> {
        let shared = Shared::start(config, observers)?;
        Ok(Runtime {
            owner: Arc::new(Owner { shared }),
        })
    }

    /// Submits `job` and blocks until it ends: returns its value, its error, or the reason
    /// it did not complete (`Timeout`, `Cancelled`, `Panic`). The caller is woken the moment
    /// the task ends; meanwhile, every poll interval, it checks the task's deadlines and
    /// emits a heartbeat event.
    ///
    /// The job gets a [`JobContext`] with the task's id and [`CancelToken`]; a job that
    /// checks the token stops promptly when the task times out or is cancelled.
    ///
    /// # Errors
    ///
    /// Everything [`submit`](Self::submit) and [`TaskHandle::wait`] return.
    pub fn run<T, F>(&self, job: F, options: RunOptions) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&JobContext<'_>) -> Result<T, Error> + Send + 'static,
    {
        self.submit(job, options)?.wait()
    }

    /// Submits `job` without waiting and returns a handle to wait on. Several handles can
    /// be waited on one after another (or with [`TaskHandle::wait_any`]) to run jobs in
    /// parallel; each task's deadlines are enforced whether or not anybody is waiting on it.
    /// Dropping a handle before its result is read cancels the task
    /// ([`TaskHandle::detach`] lets it run on).
    ///
    /// Admission is exact: a task takes a free execution thread if there is one, else a place
    /// in the queue (`max_queued`), else it is refused. Queued tasks start in submission
    /// order.
    ///
    /// The job is `'static` because an abandoned job (handle dropped, caller timed out) may
    /// outlive the call that submitted it.
    ///
    /// Panics in the job, and in the `Drop` of its captures and of a value nobody reads, are
    /// caught. Rust itself aborts the process when a `Drop` panics while the job is already
    /// unwinding from a panic; no runtime can catch that.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a zero timeout in `options`;
    /// [`ErrorKind::QueueFull`](crate::ErrorKind::QueueFull) (retryable) when `max_queued` tasks already wait for a slot;
    /// [`ErrorKind::Shutdown`](crate::ErrorKind::Shutdown) after shutdown.
    pub fn submit<T, F>(&self, job: F, options: RunOptions) -> Result<TaskHandle<T>, Error>
    where
        T: Send + 'static,
        F: FnOnce(&JobContext<'_>) -> Result<T, Error> + Send + 'static,
    {
        self.owner.shared.submit(job, options)
    }

    /// Cancels a live task: its token is tripped (cancel actions run), its caller gets
    /// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled). Returns `false` if no live task has that id.
    pub fn cancel(&self, id: &str) -> bool {
        self.owner.shared.cancel(id)
    }

    /// Cancels every live task; returns how many were cancelled.
    pub fn cancel_all(&self) -> usize {
        self.owner.shared.cancel_all()
    }

    /// Counts for dashboards: queued, running and zombie tasks, and totals by outcome.
    pub fn stats(&self) -> Stats {
        self.owner.shared.stats()
    }

    /// The live tasks (queued, running, and ended jobs still holding a thread), oldest first;
    /// gathered a registry shard at a time, like [`Stats::live`].
    pub fn tasks(&self) -> Vec<TaskSnapshot> {
        self.owner.shared.tasks()
    }

    /// The settings this runtime runs with.
    pub fn config(&self) -> &Config {
        &self.owner.shared.config
    }

    /// Shuts the runtime down: refuses new tasks, cancels every live one (their callers get
    /// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled)), waits up to `grace` for running jobs to return, then stops
    /// the timer thread and drains both pools. Blocks for at most about `grace`.
    ///
    /// Runs once: a concurrent or later call waits for the first one's result and returns
    /// it. Called from inside one of this runtime's jobs (or observers), it cancels
    /// everything but does not wait (a job cannot wait for itself); a later call from outside,
    /// or dropping the last handle, then stops and joins the threads.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) if some jobs ignore cancellation and still hold execution
    /// threads after `grace`; those threads finish on their own and their results are
    /// discarded.
    pub fn shutdown(&self, grace: Duration) -> Result<(), Error> {
        self.owner.shared.shutdown(grace)
    }

    /// A handle that does not keep the runtime alive, for values that travel with a job
    /// (which may be dropped on a runtime thread, where the last handle must not go).
    pub fn downgrade(&self) -> WeakRuntime {
        WeakRuntime {
            owner: Arc::downgrade(&self.owner),
        }
    }
}

/// A [`Runtime`] handle that does not keep it alive ([`Runtime::downgrade`]).
#[derive(Clone)]
pub struct WeakRuntime {
    owner: std::sync::Weak<Owner>,
}

impl WeakRuntime {
    /// The runtime, while some [`Runtime`] handle still holds it.
    pub fn upgrade(&self) -> Option<Runtime> {
        self.owner.upgrade().map(|owner| Runtime { owner })
    }
}

impl fmt::Debug for WeakRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakRuntime")
            .field("alive", &(self.owner.strong_count() > 0))
            .finish()
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("config", self.config())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Drops a value of the user's (a panic payload, a discarded result, a job that never ran)
/// inside `catch_unwind`, so a panicking `Drop` is logged instead of unwinding into the
/// runtime. A payload that panics again while being dropped is leaked rather than risked.
pub(crate) fn drop_quietly<V>(value: V) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        log::error!(
            "dropping a value panicked (its Drop implementation): {}",
            panic_message(panic.as_ref())
        );
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(panic))) {
            std::mem::forget(again);
        }
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// Invariant of the timer: one entry per live task, none once every task has ended,
    /// whichever way they ended.
    #[test]
    fn the_timer_and_registry_empty_out_on_every_path() {
        let runtime = Runtime::builder().execution_threads(2).build().unwrap();
        let shared = runtime.owner.shared.clone();
        let quick = || RunOptions::new().execution_timeout(Duration::from_millis(10));
        let completed = runtime.submit(|_| Ok(1), RunOptions::new()).unwrap();
        let failed = runtime
            .submit(|_| Err::<(), _>(Error::other("no")), RunOptions::new())
            .unwrap();
        let timed_out = runtime
            .submit(|job| job.token().sleep(Duration::from_secs(30)), quick())
            .unwrap();
        let cancelled = runtime
            .submit(
                |job| job.token().sleep(Duration::from_secs(30)),
                RunOptions::new(),
            )
            .unwrap();
        assert!(cancelled.cancel());
        assert_eq!(completed.wait().unwrap(), 1);
        assert!(failed.wait().is_err());
        assert_eq!(timed_out.wait().unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(cancelled.wait().unwrap_err().kind(), ErrorKind::Cancelled);
        // Records leave the registry once their jobs have returned too, which shutdown
        // waits for; running deadlines leave the timer with their jobs.
        runtime.shutdown(Duration::from_secs(5)).unwrap();
        assert_eq!(runtime.stats().live, 0);
        assert_eq!(shared.timer.len(), 0);
        assert_eq!(shared.capacity_used(), 0);
        assert_eq!(shared.free_threads(), 2);
        assert_eq!(shared.threads_left(), 0);
    }

    /// Tasks that wait for a thread start in the order they were submitted, whichever of
    /// the scheduler threads placed them.
    #[test]
    fn queued_tasks_start_in_submission_order() {
        let runtime = Runtime::builder().execution_threads(1).build().unwrap();
        let shared = runtime.owner.shared.clone();
        let (release, released) = crossbeam_channel::bounded::<()>(0);
        let (running_tx, running) = crossbeam_channel::bounded(1);
        let holder = runtime
            .submit(
                move |_| {
                    running_tx.send(()).unwrap();
                    let _ = released.recv();
                    Ok(())
                },
                RunOptions::new(),
            )
            .unwrap();
        running.recv().unwrap();
        let (order_tx, order) = crossbeam_channel::unbounded();
        let handles: Vec<_> = (0..40)
            .map(|n| {
                let order_tx = order_tx.clone();
                runtime
                    .submit(
                        move |_| {
                            order_tx.send(n).unwrap();
                            Ok(())
                        },
                        RunOptions::new(),
                    )
                    .unwrap()
            })
            .collect();
        // Placed by four scheduler threads in whatever order they got to the queue.
        while shared.waiting_len() < 40 {
            std::thread::yield_now();
        }
        drop(release);
        holder.wait().unwrap();
        for handle in handles {
            handle.wait().unwrap();
        }
        drop(order_tx);
        assert_eq!(
            order.iter().collect::<Vec<_>>(),
            (0..40).collect::<Vec<_>>()
        );
    }
}
