//! The record the runtime keeps for each live task, and the state machine it guards:
//! `Pending → Running → terminal`, first terminal write wins.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::cancel::CancelToken;
use super::config::Limits;
use super::events::{Event, EventKind, Observer};
use super::shared::Shared;
use super::task::{Counters, TaskId, TaskSnapshot, TaskStatus, TimeoutKind};
use super::time::{deadline_after, human};
use super::timer::Timer;
use crate::error::Error;

/// Sends an error to the task's waiting caller.
pub(crate) type FailWaiter = Box<dyn FnOnce(Error) + Send>;

/// Runs the task's job on an execution thread and delivers its outcome (typed inside).
pub(crate) type Runner = Box<dyn FnOnce(&Arc<Shared>, &Arc<Record>) + Send>;

/// What the runtime knows of one live task. Shared by the registry, the timer, the slot
/// queue, the waiting handle and the execution thread.
pub(crate) struct Record {
    /// Unique per runtime; orders timer entries with equal deadlines.
    pub(crate) seq: u64,
    pub(crate) id: TaskId,
    pub(crate) label: Arc<str>,
    pub(crate) submitted_at: Instant,
    pub(crate) limits: Limits,
    pub(crate) queue_deadline: Instant,
    pub(crate) wait_deadline: Instant,
    pub(crate) token: CancelToken,
    /// The call's own observer, if any (after the runtime's).
    pub(crate) observer: Option<Arc<dyn Observer>>,
    state: Mutex<State>,
}

struct State {
    /// Written by `start` (Pending → Running) and `end` (→ terminal, once).
    status: TaskStatus,
    started_at: Option<Instant>,
    /// When the run must be done by (the earlier of the execution and wait deadlines).
    run_deadline: Option<(Instant, TimeoutKind)>,
    finished_at: Option<Instant>,
    /// The job, until it starts or the task ends while Pending (then it is dropped at once:
    /// a task that never runs holds nothing of its caller's).
    runner: Option<Runner>,
    /// From the job's start until it returns, even past a terminal write: a job that
    /// ignores cancellation keeps its thread, and is counted as a zombie meanwhile.
    in_slot: bool,
    /// Wakes the caller with an error; taken by the terminal write, so it runs at most once.
    /// A completed job delivers its value through the runner's own sender.
    fail_waiter: Option<FailWaiter>,
    /// This task's key in the timer. Invariant: `Some` exactly while the task is Pending
    /// or Running; changed only under this lock.
    timer_deadline: Option<Instant>,
    /// Events not yet delivered. Pushed under this lock, so their order is the order of the
    /// state changes they report; nothing but `Finished` is pushed after a terminal write.
    events: Vec<Event>,
    /// A scheduler job is delivering `events`; whoever pushes while this is false must
    /// start one. Keeps delivery one-at-a-time and in order per task.
    delivering: bool,
}

/// The outcome of [`Record::start`].
pub(crate) enum Start {
    /// The task is now Running; run this.
    Running(Runner),
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
    /// The task ended while Pending: it may still sit in the slot queue.
    pub(crate) was_pending: bool,
    /// Taken from the record when `won`.
    pub(crate) fail_waiter: Option<FailWaiter>,
    /// The job of a task that ended before it ran; drop it outside every lock.
    pub(crate) runner: Option<Runner>,
    /// The record may leave the registry: the task has ended and its job holds no thread.
    pub(crate) remove: bool,
    pub(crate) queued_for: Duration,
    pub(crate) ran_for: Option<Duration>,
}

impl Record {
    pub(crate) fn new(
        seq: u64,
        id: TaskId,
        label: Arc<str>,
        limits: Limits,
        observer: Option<Arc<dyn Observer>>,
        runner: Runner,
        fail_waiter: FailWaiter,
    ) -> Record {
        let submitted_at = Instant::now();
        Record {
            seq,
            id,
            label,
            submitted_at,
            queue_deadline: deadline_after(submitted_at, limits.queue),
            wait_deadline: deadline_after(submitted_at, limits.wait),
            limits,
            token: CancelToken::new(),
            observer,
            state: Mutex::new(State {
                status: TaskStatus::Pending,
                started_at: None,
                run_deadline: None,
                finished_at: None,
                runner: Some(runner),
                in_slot: false,
                fail_waiter: Some(fail_waiter),
                timer_deadline: None,
                events: Vec::new(),
                delivering: false,
            }),
        }
    }

    pub(crate) fn status(&self) -> TaskStatus {
        self.state.lock().status
    }

    /// Puts a new Pending task in the timer, keyed by its first deadline.
    pub(crate) fn arm(self: &Arc<Self>, timer: &Timer) {
        let mut state = self.state.lock();
        if state.status == TaskStatus::Pending && state.timer_deadline.is_none() {
            let deadline = self.queue_deadline.min(self.wait_deadline);
            timer.reschedule(self, None, deadline);
            state.timer_deadline = Some(deadline);
        }
    }

    /// Pending → Running, on the execution thread, unless the task ended or a deadline
    /// passed while it waited. Starts the execution clock and the token's deadline.
    pub(crate) fn start(
        self: &Arc<Self>,
        now: Instant,
        counters: &Counters,
        timer: &Timer,
    ) -> Start {
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
        let run_deadline = if execution_deadline <= self.wait_deadline {
            (execution_deadline, TimeoutKind::Execution)
        } else {
            (self.wait_deadline, TimeoutKind::Wait)
        };
        state.status = TaskStatus::Running;
        state.started_at = Some(now);
        state.run_deadline = Some(run_deadline);
        state.in_slot = true;
        counters.queued.fetch_sub(1, Ordering::Relaxed);
        counters.running.fetch_add(1, Ordering::Relaxed);
        let old = state.timer_deadline.replace(run_deadline.0);
        timer.reschedule(self, old, run_deadline.0);
        self.token.set_deadline(run_deadline.0, run_deadline.1);
        Start::Running(runner)
    }

    /// Writes the terminal `status` unless one is already there (first write wins), and
    /// keeps the counters and the timer in step.
    ///
    /// `leaving_slot` is true when the execution thread calls this as its job returns: the
    /// thread is free again whether or not the status was taken, and a job that returns
    /// past its deadline gets `TimedOut` instead of `status` (its result is late even if
    /// the timer has not fired yet).
    pub(crate) fn end(
        &self,
        status: TaskStatus,
        now: Instant,
        leaving_slot: bool,
        counters: &Counters,
        timer: &Timer,
    ) -> Ending {
        debug_assert!(status.is_terminal());
        let mut state = self.state.lock();
        if leaving_slot {
            debug_assert!(state.in_slot);
            state.in_slot = false;
        }
        let queued_for = state
            .started_at
            .unwrap_or(now)
            .saturating_duration_since(self.submitted_at);
        let ran_for = state.started_at.map(|started| {
            state
                .finished_at
                .unwrap_or(now)
                .saturating_duration_since(started)
        });
        let was_pending = state.status == TaskStatus::Pending;
        if state.status.is_terminal() {
            // A job returning after its task ended (a late result) frees its zombie slot.
            if leaving_slot {
                counters.zombies.fetch_sub(1, Ordering::Relaxed);
            }
            return Ending {
                won: false,
                status: state.status,
                was_pending,
                fail_waiter: None,
                runner: None,
                remove: leaving_slot,
                queued_for,
                ran_for,
            };
        }
        if was_pending {
            counters.queued.fetch_sub(1, Ordering::Relaxed);
        } else {
            counters.running.fetch_sub(1, Ordering::Relaxed);
        }
        if state.in_slot {
            // Ended from outside while its job still runs: a zombie until the job returns.
            counters.zombies.fetch_add(1, Ordering::Relaxed);
        }
        let status = match self.expired_locked(&state, now) {
            Some(limit) if leaving_slot => TaskStatus::TimedOut(limit),
            _ => status,
        };
        counters.count_end(status);
        state.status = status;
        state.finished_at = Some(now);
        if let Some(old) = state.timer_deadline.take() {
            timer.remove(old, self.seq);
        }
        Ending {
            won: true,
            status,
            was_pending,
            fail_waiter: state.fail_waiter.take(),
            runner: state.runner.take(),
            remove: !state.in_slot,
            queued_for,
            ran_for,
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
    pub(crate) fn timeout_error(&self, limit: TimeoutKind, now: Instant) -> Error {
        let started_at = self.state.lock().started_at;
        let timeout = human(self.limits.of(limit));
        let message = match (limit, started_at) {
            (TimeoutKind::Queue, _) => format!(
                "task {} timed out after waiting {timeout} for an execution slot (queue \
                 timeout); every execution thread was busy: run fewer tasks at once, or raise \
                 the queue timeout or the number of execution threads",
                self.id
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
                 could start; raise the wait timeout",
                self.id
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

    /// Queues an event for the observers unless the task has ended (`make` gets the status
    /// it reports). Returns true when the caller must start a delivery.
    pub(crate) fn post_live(&self, make: impl FnOnce(TaskStatus) -> EventKind) -> bool {
        let mut state = self.state.lock();
        if state.status.is_terminal() {
            return false;
        }
        let kind = make(state.status);
        self.push_event(&mut state, kind)
    }

    /// Queues the `Finished` event; called once, by the terminal write's winner. Returns
    /// true when the caller must start a delivery.
    pub(crate) fn post_finished(&self, kind: EventKind) -> bool {
        let mut state = self.state.lock();
        self.push_event(&mut state, kind)
    }

    fn push_event(&self, state: &mut State, kind: EventKind) -> bool {
        state.events.push(Event {
            task: self.id.clone(),
            label: self.label.clone(),
            at: Instant::now(),
            kind,
        });
        !std::mem::replace(&mut state.delivering, true)
    }

    /// The events to deliver next, oldest first. Empty when there are none left, which
    /// also ends the current delivery.
    pub(crate) fn take_events(&self) -> Vec<Event> {
        let mut state = self.state.lock();
        let events = std::mem::take(&mut state.events);
        if events.is_empty() {
            state.delivering = false;
        }
        events
    }
}
