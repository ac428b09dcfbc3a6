//! The record the runtime keeps for each live task, and the state machine it guards:
//! `Pending → Running → terminal`, first terminal write wins.
//!
//! Every transition happens under the record's lock and posts its event there too, so a
//! task's events are in the order of its state changes: `Queued` (at admission), `Started`
//! (if and only if its job started), any `Heartbeat`s and `Progress`, then one `Finished`, and
//! nothing after it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex, MutexGuard};

use super::cancel::CancelToken;
use super::config::Limits;
use super::events::{Event, EventKind, Observer};
use super::handle::JobContext;
use super::shared::Shared;
use super::task::{TaskId, TaskSnapshot, TaskStatus, TimeoutKind};
use super::time::{deadline_after, human};
use crate::error::Error;

/// Runs the task's job on an execution thread: calls it inside `catch_unwind`, stores a
/// value for the caller, writes the terminal status through [`Shared::complete`] and drops
/// a discarded value inside `catch_unwind`. Typed inside; the runtime never sees `T`.
pub(crate) type Runner = Box<dyn FnOnce(&JobContext<'_>) + Send>;

/// What the runtime knows of one live task. Shared by the registry, the timer, the slot
/// queue, the waiting handle and the execution thread.
pub(crate) struct Record {
    /// Unique per runtime, increasing with submission: orders the slot queue (FIFO) and
    /// timer entries with equal deadlines.
    pub(crate) seq: u64,
    pub(crate) id: TaskId,
    pub(crate) label: Arc<str>,
    /// The trace context every event of the task carries.
    pub(crate) trace: Option<Arc<str>>,
    pub(crate) submitted_at: Instant,
    pub(crate) limits: Limits,
    pub(crate) queue_deadline: Instant,
    pub(crate) wait_deadline: Instant,
    pub(crate) token: CancelToken,
    /// Whether any observer (the runtime's or the call's) sees this task; fixed at admission.
    observed: bool,
    state: Mutex<State>,
    /// Signalled at the terminal write (the caller wakes), and when the task enters the slot
    /// queue while a caller on an execution thread waits (it may then run it itself).
    changed: Condvar,
}

struct State {
    /// Written by `start` (Pending → Running) and `end` (→ terminal, once).
    status: TaskStatus,
    started_at: Option<Instant>,
    /// When the run must be done by (the earlier of the execution and wait deadlines).
    run_deadline: Option<(Instant, TimeoutKind)>,
    finished_at: Option<Instant>,
    /// The job, until it starts or the task ends while Pending (then it is dropped at once,
    /// off the timer thread: a task that never runs holds nothing of its caller's).
    runner: Option<Runner>,
    /// From the job's start until it returns, even past a terminal write: a job that ignores
    /// cancellation keeps its thread, and is counted as a zombie meanwhile.
    in_slot: bool,
    /// The task counts against the runtime's capacity (execution threads + `max_queued`):
    /// set at admission, cleared exactly once — when it ends without having started, when its
    /// job returns, or when a waiting parent runs it on its own thread.
    holds_capacity: bool,
    /// In the slot queue (`Slots::waiting`). Written under the slots lock too.
    queued: bool,
    /// A caller on one of the runtime's execution threads waits for this task and would run
    /// it itself once it is queued: only then does `enqueue` wake the caller (any other
    /// caller would wake for nothing, once per queued task). A flag, not a count: a task has
    /// one waiter at most (its `TaskHandle`, which is not `Clone`; `wait_any` watches through
    /// `watchers`, not this condition variable).
    helper_waiting: bool,
    /// This task's key in the timer's queue of waiting tasks. `Some` only while it is queued.
    armed: Option<Instant>,
    /// The error the caller gets; set by the terminal write unless the task completed.
    error: Option<Error>,
    /// The call's own observer. Taken by the terminal write (it travels with the `Finished`
    /// event and is dropped by its mailbox, never by a dispatch or timer thread).
    observer: Option<Arc<dyn Observer>>,
    /// Callers of `wait_any`: each gets a message at the terminal write.
    watchers: Vec<(u64, Sender<()>)>,
}

/// The outcome of [`Record::start`].
pub(crate) enum Start {
    /// The task is now Running, with this deadline; run this.
    Running(Runner, Instant),
    /// The task already ended (cancelled or timed out while queued): nothing to run.
    Ended,
    /// A deadline passed while it waited: end it with this limit.
    Expired(TimeoutKind),
}

/// The outcome of [`Record::end`].
pub(crate) struct Ending {
    /// This call wrote the terminal status. If false the task had already ended and the
    /// status given was discarded.
    pub(crate) won: bool,
    /// The task's terminal status now.
    pub(crate) status: TaskStatus,
    /// The job of a task that ended before it ran; drop it outside every lock, off the
    /// timer thread.
    pub(crate) runner: Option<Runner>,
    /// The task ended while in the slot queue: take it out.
    pub(crate) was_queued: bool,
}

impl Record {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        seq: u64,
        id: TaskId,
        label: Arc<str>,
        trace: Option<Arc<str>>,
        limits: Limits,
        observer: Option<Arc<dyn Observer>>,
        observed: bool,
        runner: Runner,
        now: Instant,
    ) -> Record {
        Record {
            seq,
            id,
            label,
            trace,
            submitted_at: now,
            queue_deadline: deadline_after(now, limits.queue),
            wait_deadline: deadline_after(now, limits.wait),
            limits,
            token: CancelToken::new(),
            observed,
            state: Mutex::new(State {
                status: TaskStatus::Pending,
                started_at: None,
                run_deadline: None,
                finished_at: None,
                runner: Some(runner),
                in_slot: false,
                holds_capacity: true,
                queued: false,
                helper_waiting: false,
                armed: None,
                error: None,
                observer,
                watchers: Vec::new(),
            }),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn status(&self) -> TaskStatus {
        self.state.lock().status
    }

    /// Posts `Queued`: called once, by `submit`, before anybody else can see the record.
    pub(crate) fn admitted(&self, shared: &Shared) {
        if !self.observed {
            return;
        }
        let state = self.state.lock();
        self.post(shared, &state, EventKind::Queued);
    }

    /// The scheduler put the task in the slot queue: arm its queue and wait deadlines and
    /// wake a caller that may run it itself. Called under the slots lock. Returns false if
    /// the task has already ended (then it must not be queued).
    pub(crate) fn enqueue(self: &Arc<Self>, shared: &Shared) -> bool {
        let mut state = self.state.lock();
        if state.status != TaskStatus::Pending {
            return false;
        }
        state.queued = true;
        let deadline = self.queue_deadline.min(self.wait_deadline);
        shared.timer.arm(self, deadline);
        state.armed = Some(deadline);
        if state.helper_waiting {
            self.changed.notify_all();
        }
        true
    }

    /// Taken out of the slot queue (by a thread about to start it). Under the slots lock.
    pub(crate) fn dequeued(&self) {
        self.state.lock().queued = false;
    }

    /// Pending → Running, on the thread that will run it, unless the task ended or a
    /// deadline passed while it waited. Starts the execution clock and the token's deadline
    /// and posts `Started`. `inline` is for a task run by a waiting parent on its own
    /// thread: it takes no thread of its own, so it gives its capacity back now.
    pub(crate) fn start(&self, shared: &Shared, now: Instant, inline: bool) -> Start {
        let mut state = self.state.lock();
        if state.status != TaskStatus::Pending {
            return Start::Ended;
        }
        if let Some(limit) = self.expired_locked(&state, now) {
            return Start::Expired(limit);
        }
        let Some(runner) = state.runner.take() else {
            debug_assert!(false, "a Pending task always has its runner");
            return Start::Ended;
        };
        let execution_deadline = deadline_after(now, self.limits.execution);
        let (deadline, limit) = if execution_deadline <= self.wait_deadline {
            (execution_deadline, TimeoutKind::Execution)
        } else {
            (self.wait_deadline, TimeoutKind::Wait)
        };
        state.status = TaskStatus::Running;
        state.started_at = Some(now);
        state.run_deadline = Some((deadline, limit));
        state.in_slot = true;
        if inline {
            self.release_capacity(shared, &mut state);
        }
        if let Some(armed) = state.armed.take() {
            shared.timer.disarm(armed, self.seq);
        }
        let counters = &shared.counters;
        counters.queued.fetch_sub(1, Ordering::Relaxed);
        counters.running.fetch_add(1, Ordering::Relaxed);
        self.token.set_deadline(deadline, limit);
        self.post(
            shared,
            &state,
            EventKind::Started {
                queued_for: now.saturating_duration_since(self.submitted_at),
            },
        );
        Start::Running(runner, deadline)
    }

    /// Writes the terminal `status` unless one is already there (first write wins), keeps
    /// the counters in step, posts `Finished` and wakes the caller.
    ///
    /// `leaving_slot` is true when the execution thread calls this as its job returns: the
    /// job no longer holds its thread whether or not the status was taken, and a job that
    /// returns past its deadline gets `TimedOut` instead of `status` (its result is late even
    /// if the timer has not fired yet). `error` is what the caller gets unless the task
    /// completes; `make_error` builds it when the status turns out to be a timeout.
    pub(crate) fn end(
        &self,
        shared: &Shared,
        status: TaskStatus,
        error: Option<Error>,
        now: Instant,
        leaving_slot: bool,
    ) -> Ending {
        debug_assert!(status.is_terminal());
        let counters = &shared.counters;
        let mut state = self.state.lock();
        if leaving_slot {
            debug_assert!(state.in_slot);
            state.in_slot = false;
            self.release_capacity(shared, &mut state);
        }
        if state.status.is_terminal() {
            // A job returning after its task ended (a late result) frees its zombie slot.
            if leaving_slot {
                counters.zombies.fetch_sub(1, Ordering::Relaxed);
                shared.forget(&self.id);
            }
            return Ending {
                won: false,
                status: state.status,
                runner: None,
                was_queued: false,
            };
        }
        let was_pending = state.status == TaskStatus::Pending;
        if was_pending {
            counters.queued.fetch_sub(1, Ordering::Relaxed);
            self.release_capacity(shared, &mut state);
        } else {
            counters.running.fetch_sub(1, Ordering::Relaxed);
        }
        if state.in_slot {
            // Ended from outside while its job still runs: a zombie until the job returns.
            counters.zombies.fetch_add(1, Ordering::Relaxed);
        }
        let (status, error) = match self.expired_locked(&state, now) {
            Some(limit) if leaving_slot => (
                TaskStatus::TimedOut(limit),
                Some(self.timeout_error_locked(&state, shared, limit, now)),
            ),
            _ => (status, error),
        };
        counters.count_end(status);
        state.status = status;
        state.finished_at = Some(now);
        if let Some(armed) = state.armed.take() {
            shared.timer.disarm(armed, self.seq);
        }
        let queued_for = state
            .started_at
            .unwrap_or(now)
            .saturating_duration_since(self.submitted_at);
        let ran_for = state
            .started_at
            .map(|started| now.saturating_duration_since(started));
        let observer = state.observer.take();
        if self.observed {
            let event = self.event(EventKind::Finished {
                status,
                queued_for,
                ran_for,
                error: error.clone(),
            });
            shared.delivery.post(event, observer);
        } else if let Some(observer) = observer {
            shared.delivery.release(observer);
        }
        state.error = error;
        if !state.in_slot {
            // Out of the registry before the caller wakes: a caller that sees its result
            // sees the task gone from `stats` and `tasks` too.
            shared.forget(&self.id);
        }
        for (_, watcher) in state.watchers.drain(..) {
            let _ = watcher.try_send(());
        }
        self.changed.notify_all();
        log::debug!("task {} {status}", self.id);
        Ending {
            won: true,
            status,
            runner: state.runner.take(),
            was_queued: state.queued,
        }
    }

    fn release_capacity(&self, shared: &Shared, state: &mut MutexGuard<'_, State>) {
        if std::mem::replace(&mut state.holds_capacity, false) {
            shared.release_capacity();
        }
    }

    /// Which limit has passed at `now`, if any, for a task that has not ended.
    pub(crate) fn expired(&self, now: Instant) -> Option<TimeoutKind> {
        let state = self.state.lock();
        self.expired_locked(&state, now)
    }

    fn expired_locked(&self, state: &State, now: Instant) -> Option<TimeoutKind> {
        let (first, first_limit) = match state.status {
            TaskStatus::Pending if self.queue_deadline <= self.wait_deadline => {
                (self.queue_deadline, TimeoutKind::Queue)
            }
            TaskStatus::Pending => (self.wait_deadline, TimeoutKind::Wait),
            TaskStatus::Running => state.run_deadline?,
            _ => return None,
        };
        (now >= first).then_some(first_limit)
    }

    /// The error the caller gets when `limit` fires, with the figures to act on.
    pub(crate) fn timeout_error(&self, shared: &Shared, limit: TimeoutKind, now: Instant) -> Error {
        let state = self.state.lock();
        self.timeout_error_locked(&state, shared, limit, now)
    }

    fn timeout_error_locked(
        &self,
        state: &State,
        shared: &Shared,
        limit: TimeoutKind,
        now: Instant,
    ) -> Error {
        let timeout = human(self.limits.of(limit));
        let message = match (limit, state.started_at) {
            (TimeoutKind::Queue, _) => format!(
                "task {} timed out after waiting {timeout} for an execution slot (queue \
                 timeout); {}: run fewer tasks at once, or raise the queue timeout or the \
                 number of execution threads",
                self.id,
                shared.occupancy(),
            ),
            (TimeoutKind::Execution, _) => format!(
                "task {} timed out after running for {timeout} (execution timeout); raise the \
                 execution timeout or give the task less work",
                self.id
            ),
            (TimeoutKind::Wait, Some(started)) => format!(
                "task {} timed out: the caller's wait timeout of {timeout} passed (queued {}, \
                 ran {}); raise the wait timeout",
                self.id,
                human(started.saturating_duration_since(self.submitted_at)),
                human(now.saturating_duration_since(started)),
            ),
            (TimeoutKind::Wait, None) => format!(
                "task {} timed out: the caller's wait timeout of {timeout} passed before it \
                 could start ({}); raise the wait timeout",
                self.id,
                shared.occupancy(),
            ),
        };
        Error::timeout(limit, message)
    }

    pub(crate) fn snapshot(&self, now: Instant) -> TaskSnapshot {
        let state = self.state.lock();
        TaskSnapshot {
            id: self.id.clone(),
            label: self.label.clone(),
            status: state.status,
            age: now.saturating_duration_since(self.submitted_at),
            running_for: state
                .started_at
                .map(|started| now.saturating_duration_since(started)),
            holds_slot: state.in_slot,
        }
    }

    /// For the zombie warning: how long ago the task ended, if it ended and still holds
    /// an execution thread.
    pub(crate) fn zombie_for(&self, now: Instant) -> Option<Duration> {
        let state = self.state.lock();
        match (state.in_slot, state.finished_at) {
            (true, Some(finished)) => Some(now.saturating_duration_since(finished)),
            _ => None,
        }
    }

    /// Posts an event of a live task (`make` gets the status it reports); nothing once the
    /// task has ended.
    pub(crate) fn post_live(&self, shared: &Shared, make: impl FnOnce(TaskStatus) -> EventKind) {
        if !self.observed {
            return;
        }
        let state = self.state.lock();
        if state.status.is_terminal() {
            return;
        }
        let kind = make(state.status);
        self.post(shared, &state, kind);
    }

    /// Hands an event to the mailboxes. Under the record lock, so events leave in the order
    /// of the changes they report; a mailbox send never blocks.
    fn post(&self, shared: &Shared, state: &State, kind: EventKind) {
        if self.observed {
            shared
                .delivery
                .post(self.event(kind), state.observer.clone());
        }
    }

    fn event(&self, kind: EventKind) -> Event {
        Event {
            task: self.id.clone(),
            label: self.label.clone(),
            at: Instant::now(),
            kind,
            trace: self.trace.clone(),
        }
    }

    /// Blocks until the task has ended or `until` passes; returns whether it has ended.
    /// With `help`, a task sitting in the slot queue is handed back (returns `Help`) so the
    /// waiting execution thread can run it itself.
    pub(crate) fn wait_until(&self, until: Instant, help: bool) -> Waited {
        let mut state = self.state.lock();
        loop {
            if state.status.is_terminal() {
                return Waited::Ended;
            }
            if help && state.queued {
                return Waited::Help;
            }
            state.helper_waiting = help;
            let timed_out = self.changed.wait_until(&mut state, until).timed_out();
            state.helper_waiting = false;
            if timed_out {
                return if state.status.is_terminal() {
                    Waited::Ended
                } else {
                    Waited::TimedOut
                };
            }
        }
    }

    /// The error of an ended task that did not complete; `None` if it completed.
    pub(crate) fn outcome_error(&self) -> Option<Error> {
        let state = self.state.lock();
        debug_assert!(state.status.is_terminal());
        match state.status {
            TaskStatus::Completed => None,
            _ => Some(state.error.clone().unwrap_or_else(|| {
                Error::new(
                    crate::error::ErrorKind::Internal,
                    format!(
                        "task {} ended without a result; this is a bug in subtask, please \
                         report it",
                        self.id
                    ),
                )
            })),
        }
    }

    /// Registers a `wait_any` caller: `watcher` gets a message when the task ends (at once
    /// if it already has).
    pub(crate) fn watch(&self, key: u64, watcher: &Sender<()>) {
        let mut state = self.state.lock();
        if state.status.is_terminal() {
            let _ = watcher.try_send(());
        } else {
            state.watchers.push((key, watcher.clone()));
        }
    }

    pub(crate) fn unwatch(&self, key: u64) {
        self.state.lock().watchers.retain(|(k, _)| *k != key);
    }
}

/// What [`Record::wait_until`] saw.
pub(crate) enum Waited {
    Ended,
    TimedOut,
    /// The task waits in the slot queue and the caller may run it.
    Help,
}
