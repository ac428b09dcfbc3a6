//! The state behind a runtime's handles, and the lifecycle of a task through it: admission
//! (caller), placement (scheduler thread), run (execution thread), terminal write (whoever
//! ends the task first), deadlines (timer thread), user code set off by deadlines (janitor
//! thread), events (mailbox threads) and shutdown.
//!
//! Who runs user code: jobs and the drops of their values run on execution threads (or on a
//! waiting parent's thread); observers on mailbox threads; cancel actions on the thread that
//! cancels (a host's thread, an execution thread) or, for deadlines, on the janitor thread.
//! Scheduler threads and the timer thread never run user code, so a slow or panicking user
//! value can neither stop dispatch nor stop deadlines.

use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::delivery::{self, Delivery};
use super::events::{EventKind, Observer, ProgressReport};
use super::handle::{JobContext, TaskHandle};
use super::handoff::Handoff;
use super::janitor::{self, Chore, Janitor};
use super::pool::Crew;
use super::record::{Record, Runner};
use super::registry::Registry;
use super::task::{Counters, Stats, TaskId, TaskSnapshot, TaskStatus, TimeoutKind, sanitize_label};
use super::time::{self, deadline_after};
use super::timer::{Timer, Wake};
use super::{CancelReason, Config, RunOptions, drop_quietly, panic_message};
use crate::error::{Error, ErrorKind};
use lifecycle::Drain;

mod execution;
mod lifecycle;

/// The state behind every handle of one runtime.
pub(crate) struct Shared {
    pub(super) config: Config,
    registry: Registry,
    pub(super) counters: Counters,
    pub(super) timer: Timer,
    pub(super) delivery: Delivery,
    janitor: Janitor,
    /// Tasks admitted and not given back: Pending tasks plus jobs holding an execution
    /// thread. Invariant: at most `execution_threads + max_queued`, so a task is refused only
    /// when no thread is free and the queue is full. Raised by `admit`, lowered once per task
    /// under its record lock (see `State::holds_capacity`).
    capacity_used: AtomicUsize,
    /// Which execution threads are free and which tasks wait for one.
    slots: Mutex<Slots>,
    /// Admitted tasks on their way to a scheduler thread (one still polling for work, else
    /// the one idle last: see `handoff`); `None` stops one.
    to_schedulers: Arc<Handoff<Option<Arc<Record>>>>,
    /// Placed tasks on their way to the free execution thread reserved for them (chosen as
    /// for `to_schedulers`); `None` stops one.
    to_executors: Arc<Handoff<Option<Arc<Record>>>>,
    /// Every thread the runtime started, by role.
    crews: Crews,
    next_seq: AtomicU64,
    /// The label of tasks submitted without one (not rebuilt per task).
    default_label: Arc<str>,
    /// Set once, by the first shutdown (or the last handle's drop): no task is admitted after.
    pub(super) closing: AtomicBool,
    /// Whether the threads have been stopped and joined, apart from `closing`: a shutdown
    /// called from inside a job closes the runtime but cannot join its own thread, so a later
    /// shutdown or the last handle's drop still does.
    drain: Mutex<Drain>,
    drained: Condvar,
}

struct Crews {
    timer: Crew,
    schedulers: Crew,
    executors: Crew,
    janitor: Crew,
    mailboxes: Crew,
}

/// The execution threads' work queue. Lock order: `slots`, then a record's lock.
struct Slots {
    /// Execution threads not running a task nor reserved for one. Invariant: `free > 0` only
    /// while `waiting` is empty, so no thread idles while a task waits.
    free: usize,
    /// Pending tasks waiting for a thread, in submission order (`seq`), whichever scheduler
    /// thread placed them. A task that ends is taken out by its terminal write.
    waiting: VecDeque<Arc<Record>>,
}

/// What the current thread does for which runtime.
#[derive(Clone, Copy)]
struct RuntimeThread {
    /// The `Shared` address; 0 on a thread that is not the runtime's.
    shared: usize,
    /// The execution thread's number, if it is one.
    slot: Option<usize>,
}

thread_local! {
    /// So shutdown never waits for the thread it runs on, and a caller waiting on an
    /// execution thread can run the task it waits for.
    static RUNTIME_THREAD: Cell<RuntimeThread> =
        const { Cell::new(RuntimeThread { shared: 0, slot: None }) };
}

/// Marks the current thread as working for a runtime until dropped.
struct OnRuntimeThread(RuntimeThread);

impl OnRuntimeThread {
    fn enter(shared: &Shared, slot: Option<usize>) -> OnRuntimeThread {
        let mark = RuntimeThread {
            shared: shared as *const Shared as usize,
            slot,
        };
        OnRuntimeThread(RUNTIME_THREAD.with(|cell| cell.replace(mark)))
    }
}

impl Drop for OnRuntimeThread {
    fn drop(&mut self) {
        RUNTIME_THREAD.with(|cell| cell.set(self.0));
    }
}

/// What ends a task: the timer thread hands user code to the janitor, anybody else runs it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ender {
    Timer,
    Other,
}

impl Shared {
    /// Starts every thread.
    pub(super) fn start(
        config: Config,
        observers: Vec<Arc<dyn Observer>>,
    ) -> Result<Arc<Shared>, Error> {
        let execution_threads = config.execution_threads();
        let (delivery, mailboxes) = Delivery::new(observers);
        let (janitor, chores) = Janitor::new();
        let shared = Arc::new(Shared {
            registry: Registry::new(),
            counters: Counters::default(),
            timer: Timer::new(execution_threads),
            delivery,
            janitor,
            capacity_used: AtomicUsize::new(0),
            slots: Mutex::new(Slots {
                free: execution_threads,
                waiting: VecDeque::new(),
            }),
            to_schedulers: Handoff::new(),
            to_executors: Handoff::new(),
            crews: Crews {
                timer: Crew::new("subtask-timer"),
                schedulers: Crew::new("subtask-scheduler"),
                executors: Crew::new("subtask-exec"),
                janitor: Crew::new("subtask-janitor"),
                mailboxes: Crew::new("subtask-events"),
            },
            next_seq: AtomicU64::new(0),
            default_label: sanitize_label(None),
            closing: AtomicBool::new(false),
            drain: Mutex::new(Drain::NotStarted),
            drained: Condvar::new(),
            config,
        });
        if let Err(error) = shared.spawn_threads(chores, mailboxes) {
            shared.close();
            shared.stop_threads();
            return Err(error);
        }
        Ok(shared)
    }

    fn spawn_threads(
        self: &Arc<Self>,
        chores: crossbeam_channel::Receiver<Chore>,
        mailboxes: Vec<delivery::MailboxThread>,
    ) -> Result<(), Error> {
        let shared = self.clone();
        self.crews.timer.spawn(0, move |_| shared.run_timer())?;
        for n in 0..self.config.scheduler_threads() {
            let shared = self.clone();
            let tasks = self.to_schedulers.consumer();
            self.crews.schedulers.spawn(n, move |_| {
                let _thread = OnRuntimeThread::enter(&shared, None);
                while let Some(record) = tasks.recv() {
                    shared.place(record);
                }
            })?;
        }
        for n in 0..self.config.execution_threads() {
            let shared = self.clone();
            let tasks = self.to_executors.consumer();
            self.crews
                .executors
                .spawn(n, move |slot| shared.execute(slot, &tasks))?;
        }
        let shared = self.clone();
        self.crews.janitor.spawn(0, move |_| {
            let _thread = OnRuntimeThread::enter(&shared, None);
            janitor::work(&chores);
        })?;
        for (n, mailbox) in mailboxes.into_iter().enumerate() {
            let shared = self.clone();
            self.crews.mailboxes.spawn(n, move |_| {
                let _thread = OnRuntimeThread::enter(&shared, None);
                delivery::work(mailbox);
            })?;
        }
        Ok(())
    }

    pub(super) fn submit<T, F>(
        self: &Arc<Self>,
        job: F,
        options: RunOptions,
    ) -> Result<TaskHandle<T>, Error>
    where
        T: Send + 'static,
        F: FnOnce(&JobContext<'_>) -> Result<T, Error> + Send + 'static,
    {
        let admitted = self.config.limits_for(&options).and_then(|limits| {
            if self.closing.load(Ordering::Relaxed) {
                return Err(shut_down_error());
            }
            self.admit().map(|()| limits)
        });
        let limits = match admitted {
            Ok(limits) => limits,
            Err(error) => {
                // A refused job is the caller's, but its captures' `Drop` must not unwind
                // out of `submit` either.
                drop_quietly(job);
                return Err(error);
            }
        };
        let value = Arc::new(Mutex::new(None::<T>));
        let cell = value.clone();
        let runner: Runner = Box::new(move |context: &JobContext<'_>| {
            let outcome = catch_unwind(AssertUnwindSafe(|| job(context))).unwrap_or_else(|panic| {
                let message = panic_message(panic.as_ref());
                drop_quietly(panic);
                Err(Error::new(
                    ErrorKind::Panic,
                    format!("task {} panicked: {message}", context.id()),
                ))
            });
            let error = match outcome {
                Ok(value) => {
                    *cell.lock() = Some(value);
                    None
                }
                Err(error) => Some(error),
            };
            if !context.complete(error) {
                // Late or refused: nobody will read the value. Its `Drop` is user code.
                let discarded = cell.lock().take();
                drop_quietly(discarded);
            }
        });
        let label = match options.label.as_deref() {
            None => self.default_label.clone(),
            Some(label) => sanitize_label(Some(label)),
        };
        let observed = self.delivery.has_runtime_observers() || options.observer.is_some();
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        let record = match self.register(
            label,
            options.trace,
            limits,
            options.observer,
            observed,
            runner,
        ) {
            Ok(record) => record,
            Err((error, runner)) => {
                self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                self.release_capacity();
                drop_quietly(runner);
                return Err(error);
            }
        };
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        if self.to_schedulers.send(Some(record.clone())).is_err() {
            // Only after the threads stopped, which happens after `closed` is set.
            self.cancel_task(&record, "because the runtime shut down");
        }
        Ok(TaskHandle::new(self.clone(), record, value))
    }

    /// Takes a free thread or a place in the queue for a new task, or refuses it when there
    /// is neither.
    fn admit(&self) -> Result<(), Error> {
        let threads = self.config.execution_threads();
        let max_queued = self.config.max_queued();
        let capacity = threads + max_queued;
        let mut used = self.capacity_used.load(Ordering::Relaxed);
        loop {
            if used >= capacity {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(Error::new(
                    ErrorKind::QueueFull,
                    format!(
                        "queue full: all {threads} execution threads are busy and {max_queued} \
                         tasks already wait for one (max_queued = {max_queued}); retry when \
                         some finish, or raise max_queued"
                    ),
                ));
            }
            match self.capacity_used.compare_exchange_weak(
                used,
                used + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    /// Gives back one task's share of the capacity; called once per task, under its lock.
    pub(super) fn release_capacity(&self) {
        self.capacity_used.fetch_sub(1, Ordering::AcqRel);
    }

    /// Adds a record under a fresh id (a new suffix on the rare collision) and posts its
    /// `Queued` event before anybody else can see it.
    fn register(
        &self,
        label: Arc<str>,
        trace: Option<Arc<str>>,
        limits: super::config::Limits,
        observer: Option<Arc<dyn Observer>>,
        observed: bool,
        runner: Runner,
    ) -> Result<Arc<Record>, (Error, Runner)> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let mut parts = Some((trace, observer, runner));
        let record = self.registry.insert(
            |attempt| TaskId::generate(&label, seq, attempt),
            |id| {
                let (trace, observer, runner) = parts.take().expect("made once");
                let record = Arc::new(Record::new(
                    seq,
                    id,
                    label.clone(),
                    trace,
                    limits,
                    observer,
                    observed,
                    runner,
                    Instant::now(),
                ));
                record.admitted(self);
                record
            },
        );
        match (record, parts) {
            (Some(record), _) => Ok(record),
            (None, Some((_, _, runner))) => Err((shut_down_error(), runner)),
            (None, None) => unreachable!("a record is made only when it is inserted"),
        }
    }

    pub(super) fn cancel(self: &Arc<Self>, id: &str) -> bool {
        let record = self.registry.get(id);
        record.is_some_and(|record| self.cancel_task(&record, "by the host"))
    }

    pub(super) fn cancel_all(self: &Arc<Self>) -> usize {
        self.live_records()
            .iter()
            .filter(|record| self.cancel_task(record, "by the host (cancel all)"))
            .count()
    }

    /// Ends a task as `Cancelled`; its caller reads "task … was cancelled {why}".
    pub(super) fn cancel_task(self: &Arc<Self>, record: &Arc<Record>, why: &str) -> bool {
        let error = Error::new(
            ErrorKind::Cancelled,
            format!("task {} was cancelled {why}", record.id),
        );
        self.end_task(
            record,
            TaskStatus::Cancelled,
            CancelReason::Cancelled,
            error,
            Ender::Other,
        )
    }

    pub(super) fn stats(&self) -> Stats {
        let live = self.registry.len();
        self.counters.snapshot(live)
    }

    pub(super) fn tasks(&self) -> Vec<TaskSnapshot> {
        let now = Instant::now();
        let mut tasks: Vec<TaskSnapshot> = self
            .live_records()
            .iter()
            .map(|record| record.snapshot(now))
            .collect();
        tasks.sort_by_key(|task| std::cmp::Reverse(task.age));
        tasks
    }

    fn live_records(&self) -> Vec<Arc<Record>> {
        self.registry.records()
    }

    /// Removes an ended record whose job holds no thread. Called under the record's lock,
    /// before its caller is woken.
    pub(super) fn forget(&self, id: &TaskId) {
        let removed = self.registry.remove(id);
        debug_assert!(removed, "task {id} left the registry twice");
    }

    /// The execution threads' state in words, for the queue-timeout error. Read from the
    /// gauges only (the caller holds a record lock, so the slots lock is out of order).
    pub(super) fn occupancy(&self) -> String {
        let threads = self.config.execution_threads();
        let running = self.counters.running.load(Ordering::Relaxed);
        let zombies = self.counters.zombies.load(Ordering::Relaxed);
        let queued = self.counters.queued.load(Ordering::Relaxed);
        format!(
            "{} of {threads} execution threads were busy ({running} running tasks, {zombies} \
             ended jobs that ignore cancellation) and {queued} tasks were pending",
            (running + zombies).min(threads)
        )
    }

    /// Ends a task from outside its job (cancel, timeout, shutdown, dropped handle): writes
    /// the terminal status (the caller wakes with `error`), then trips its token and drops a
    /// job that never ran — on the janitor thread when the timer ends it. Returns `false` if
    /// it had already ended.
    pub(super) fn end_task(
        self: &Arc<Self>,
        record: &Arc<Record>,
        status: TaskStatus,
        reason: CancelReason,
        error: Error,
        ender: Ender,
    ) -> bool {
        let ending = record.end(self, status, Some(error), Instant::now(), false);
        if !ending.won {
            return false;
        }
        if ending.was_queued {
            self.unqueue(record);
        }
        match ender {
            Ender::Timer => {
                self.janitor.send(Chore::Trip(record.token.clone(), reason));
                if let Some(runner) = ending.runner {
                    self.janitor.send(Chore::Drop(Box::new(runner)));
                }
            }
            Ender::Other => {
                record.token.trip(reason);
                drop_quietly(ending.runner);
            }
        }
        true
    }

    fn on_own_thread(&self) -> bool {
        RUNTIME_THREAD.with(Cell::get).shared == self as *const Shared as usize
    }

    fn time_out(
        self: &Arc<Self>,
        record: &Arc<Record>,
        limit: TimeoutKind,
        now: Instant,
        ender: Ender,
    ) -> bool {
        let error = record.timeout_error(self, limit, now);
        self.end_task(
            record,
            TaskStatus::TimedOut(limit),
            CancelReason::TimedOut(limit),
            error,
            ender,
        )
    }

    /// Ends the task if one of its deadlines has passed.
    pub(super) fn enforce_deadline(
        self: &Arc<Self>,
        record: &Arc<Record>,
        now: Instant,
        ender: Ender,
    ) {
        if let Some(limit) = record.expired(now) {
            self.time_out(record, limit, now, ender);
        }
    }

    /// The timer thread: ends tasks at their deadlines; every poll interval, warns about jobs
    /// that ignore cancellation. Each round is guarded, so nothing stops the timer.
    fn run_timer(self: Arc<Self>) {
        let _thread = OnRuntimeThread::enter(&self, None);
        let poll = self.config.poll_interval();
        let mut housekeeping_at = deadline_after(Instant::now(), poll);
        loop {
            let round = catch_unwind(AssertUnwindSafe(|| {
                match self.timer.wait(housekeeping_at) {
                    Wake::Due(records) => {
                        let now = Instant::now();
                        for record in &records {
                            self.enforce_deadline(record, now, Ender::Timer);
                        }
                        true
                    }
                    Wake::Housekeeping => {
                        let now = Instant::now();
                        self.warn_about_zombies(now);
                        housekeeping_at = deadline_after(now, poll);
                        true
                    }
                    Wake::Stopped => false,
                }
            }));
            match round {
                Ok(true) => {}
                Ok(false) => return,
                Err(panic) => {
                    log::error!(
                        "the timer caught a panic (a bug, please report it): {}",
                        panic_message(panic.as_ref())
                    );
                    drop_quietly(panic);
                }
            }
        }
    }

    fn warn_about_zombies(&self, now: Instant) {
        let zombies = self.counters.zombies.load(Ordering::Relaxed);
        if zombies == 0 {
            return;
        }
        for record in self.live_records() {
            if let Some(ended_for) = record.zombie_for(now) {
                log::warn!(
                    "task {} ended ({}) {} ago but its job ignores cancellation and still \
                     holds an execution thread ({zombies} of {} threads held this way); make \
                     the job check its CancelToken",
                    record.id,
                    record.status(),
                    time::human(ended_for),
                    self.config.execution_threads(),
                );
            }
        }
    }

    pub(super) fn progress(&self, record: &Record, progress: Arc<dyn ProgressReport>) {
        record.post_live(self, |_| EventKind::Progress(progress));
    }

    pub(super) fn heartbeat(&self, record: &Record, now: Instant) {
        let elapsed = now.saturating_duration_since(record.submitted_at);
        log::debug!(
            "task {}: caller waiting for {}",
            record.id,
            time::human(elapsed)
        );
        record.post_live(self, |status| EventKind::Heartbeat { status, elapsed });
    }

    /// Whether every thread has been joined (for tests).
    #[cfg(test)]
    pub(super) fn threads_left(&self) -> usize {
        self.crews.timer.len()
            + self.crews.schedulers.len()
            + self.crews.executors.len()
            + self.crews.janitor.len()
            + self.crews.mailboxes.len()
    }

    #[cfg(test)]
    pub(super) fn capacity_used(&self) -> usize {
        self.capacity_used.load(Ordering::SeqCst)
    }

    #[cfg(test)]
    pub(super) fn waiting_len(&self) -> usize {
        self.slots.lock().waiting.len()
    }

    #[cfg(test)]
    pub(super) fn free_threads(&self) -> usize {
        self.slots.lock().free
    }
}

fn shut_down_error() -> Error {
    Error::new(
        ErrorKind::Shutdown,
        "the runtime has shut down and takes no more tasks; build a new Runtime",
    )
}
