//! The state behind a runtime's handles, and the lifecycle of a task through it: admission
//! (caller), dispatch (scheduler thread), run (execution thread), terminal write (whoever
//! ends the task first), deadlines (timer thread) and shutdown.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use super::events::{self, EventKind, Observer, Progress};
use super::handle::{JobContext, TaskHandle};
use super::pool::Pool;
use super::record::{Ending, Record, Runner, Start};
use super::task::{Counters, Stats, TaskId, TaskSnapshot, TaskStatus, TimeoutKind, sanitize_label};
use super::time::{self, deadline_after};
use super::timer::{Timer, Wake};
use super::{CancelReason, Config, RunOptions, panic_message};
use crate::error::{Error, ErrorKind};

/// The state behind every handle of one runtime: pools, registry, timer, counters.
pub(crate) struct Shared {
    pub(super) config: Config,
    observers: Vec<Arc<dyn Observer>>,
    registry: Mutex<Registry>,
    counters: Counters,
    pub(super) timer: Timer,
    timer_thread: Mutex<Option<JoinHandle<()>>>,
    scheduler: Pool,
    executors: Pool,
    /// Which execution threads are free and which tasks wait for one. The execution pool
    /// is only ever handed as many tasks as it has threads; the rest wait here.
    slots: Mutex<Slots>,
    next_seq: AtomicU64,
    /// Set once, by shutdown.
    pub(super) closing: AtomicBool,
}

/// The execution threads' work queue. Lock order: `slots`, then a record's lock.
struct Slots {
    /// Execution threads not running a task. Invariant: `free > 0` only while `waiting` is
    /// empty, so no thread idles while a task waits.
    free: usize,
    /// Dispatched tasks waiting for a thread, oldest first. Only Pending tasks enter
    /// (checked under this lock) and a task that ends is taken out by its terminal write,
    /// so this never holds more than `max_queued`.
    waiting: VecDeque<Arc<Record>>,
}

/// Live tasks by id. A record enters at submission and leaves when its task has ended and
/// its job holds no execution thread, before the caller is woken.
struct Registry {
    tasks: HashMap<TaskId, Arc<Record>>,
    /// Set by shutdown; no task enters after.
    closed: bool,
}

thread_local! {
    /// The runtime whose job or timer this thread is running (its `Shared` address), so
    /// shutdown never waits for the thread it runs on.
    static RUNTIME_THREAD: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as working for a runtime until dropped.
struct OnRuntimeThread(usize);

impl OnRuntimeThread {
    fn enter(shared: &Shared) -> OnRuntimeThread {
        OnRuntimeThread(RUNTIME_THREAD.with(|cell| cell.replace(shared as *const _ as usize)))
    }
}

impl Drop for OnRuntimeThread {
    fn drop(&mut self) {
        RUNTIME_THREAD.with(|cell| cell.set(self.0));
    }
}

impl Shared {
    /// Starts the timer thread; the pools start with the struct.
    pub(super) fn start(
        config: Config,
        observers: Vec<Arc<dyn Observer>>,
    ) -> Result<Arc<Shared>, Error> {
        let execution_threads = config.execution_threads();
        let shared = Arc::new(Shared {
            scheduler: Pool::new("subtask-scheduler", config.scheduler_threads())?,
            executors: Pool::new("subtask-exec", execution_threads)?,
            config,
            observers,
            registry: Mutex::new(Registry {
                tasks: HashMap::new(),
                closed: false,
            }),
            counters: Counters::default(),
            timer: Timer::new(),
            timer_thread: Mutex::new(None),
            slots: Mutex::new(Slots {
                free: execution_threads,
                waiting: VecDeque::new(),
            }),
            next_seq: AtomicU64::new(0),
            closing: AtomicBool::new(false),
        });
        let timer_shared = shared.clone();
        let timer_thread = std::thread::Builder::new()
            .name("subtask-timer".into())
            .spawn(move || timer_shared.run_timer())
            .map_err(Error::from)?;
        *shared.timer_thread.lock() = Some(timer_thread);
        Ok(shared)
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
        let limits = self.config.limits_for(&options)?;
        self.admit()?;
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let fail_sender = sender.clone();
        let runner: Runner = Box::new(move |shared, record| {
            let context = JobContext { shared, record };
            let outcome =
                catch_unwind(AssertUnwindSafe(|| job(&context))).unwrap_or_else(|panic| {
                    Err(Error::new(
                        ErrorKind::Panic,
                        format!(
                            "task {} panicked: {}",
                            record.id,
                            panic_message(panic.as_ref())
                        ),
                    ))
                });
            shared.complete(record, outcome, &sender);
        });
        let label = sanitize_label(options.label.as_deref());
        let record = self
            .register(label, |seq, id, label| {
                Record::new(
                    seq,
                    id,
                    label,
                    limits,
                    options.observer,
                    runner,
                    Box::new(move |error| {
                        let _ = fail_sender.send(Err(error));
                    }),
                )
            })
            .inspect_err(|_| {
                self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            })?;
        record.arm(&self.timer);
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        let dispatcher = self.clone();
        let dispatched = record.clone();
        self.scheduler.execute(move || {
            let _thread = OnRuntimeThread::enter(&dispatcher);
            dispatcher.dispatch(dispatched);
        });
        Ok(TaskHandle {
            shared: self.clone(),
            record,
            receiver,
            delivered: false,
        })
    }

    pub(super) fn cancel(self: &Arc<Self>, id: &str) -> bool {
        let record = self.registry.lock().tasks.get(id).cloned();
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
        )
    }

    pub(super) fn stats(&self) -> Stats {
        let live = self.registry.lock().tasks.len();
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

    /// Counts the task as queued, or refuses it if `max_queued` are already waiting.
    fn admit(&self) -> Result<(), Error> {
        let max = self.config.max_queued();
        if self.counters.queued.fetch_add(1, Ordering::Relaxed) >= max {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(Error::new(
                ErrorKind::QueueFull,
                format!(
                    "queue full: {max} tasks are already waiting for an execution slot \
                     (max_queued = {max}, execution threads = {}); retry when some finish, \
                     or raise max_queued",
                    self.config.execution_threads()
                ),
            ));
        }
        Ok(())
    }

    /// Adds a record under a fresh id (a new suffix on the rare collision).
    fn register(
        &self,
        label: Arc<str>,
        make: impl FnOnce(u64, TaskId, Arc<str>) -> Record,
    ) -> Result<Arc<Record>, Error> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let mut registry = self.registry.lock();
        if registry.closed {
            return Err(Error::new(
                ErrorKind::Shutdown,
                "the runtime has shut down and takes no more tasks; build a new Runtime",
            ));
        }
        let mut attempt = 0;
        let id = loop {
            let id = TaskId::generate(&label, seq, attempt);
            if !registry.tasks.contains_key(&id) {
                break id;
            }
            attempt += 1;
        };
        let record = Arc::new(make(seq, id.clone(), label));
        registry.tasks.insert(id, record.clone());
        Ok(record)
    }

    fn live_records(&self) -> Vec<Arc<Record>> {
        self.registry.lock().tasks.values().cloned().collect()
    }

    /// Scheduler thread: hands the task to a free execution thread, or queues it for the
    /// next one. Never waits on a run.
    fn dispatch(self: &Arc<Self>, record: Arc<Record>) {
        self.post(&record, |_| EventKind::Queued);
        let mut slots = self.slots.lock();
        if record.status() != TaskStatus::Pending {
            return; // ended (cancelled, timed out) before it was dispatched
        }
        if slots.free == 0 {
            slots.waiting.push_back(record);
            return;
        }
        slots.free -= 1;
        drop(slots);
        let executor = self.clone();
        self.executors.execute(move || {
            let _thread = OnRuntimeThread::enter(&executor);
            executor.work(record);
        });
    }

    /// Execution thread: runs `first`, then whatever waits, until nothing does.
    fn work(self: &Arc<Self>, first: Arc<Record>) {
        let mut next = Some(first);
        while let Some(record) = next {
            self.run(record);
            next = {
                let mut slots = self.slots.lock();
                let next = slots.waiting.pop_front();
                if next.is_none() {
                    slots.free += 1;
                }
                next
            };
        }
    }

    /// Execution thread: starts the run and runs the job, which delivers its outcome.
    fn run(self: &Arc<Self>, record: Arc<Record>) {
        let started_at = Instant::now();
        let runner = match record.start(started_at, &self.counters, &self.timer) {
            Start::Running(runner) => runner,
            Start::Ended => return,
            Start::Expired(limit) => {
                self.time_out(&record, limit, started_at);
                return;
            }
        };
        self.post(&record, |_| EventKind::Started {
            queued_for: started_at.saturating_duration_since(record.submitted_at),
        });
        runner(self, &record);
    }

    /// The job returned: end the task with its outcome unless it already ended, and give
    /// the execution thread back.
    pub(super) fn complete<T>(
        self: &Arc<Self>,
        record: &Arc<Record>,
        outcome: Result<T, Error>,
        sender: &Sender<Result<T, Error>>,
    ) {
        let now = Instant::now();
        let status = match outcome {
            Ok(_) => TaskStatus::Completed,
            Err(_) => TaskStatus::Failed,
        };
        let mut ending = record.end(status, now, true, &self.counters, &self.timer);
        if ending.won {
            drop(ending.fail_waiter.take());
            let error = match ending.status {
                TaskStatus::TimedOut(limit) => {
                    log::info!(
                        "task {} returned after its {limit} deadline; its result is discarded",
                        record.id
                    );
                    record.token.trip(CancelReason::TimedOut(limit));
                    Some(record.timeout_error(limit, now))
                }
                _ => None,
            };
            if ending.remove {
                self.forget(record);
            }
            let event_error = match (error, outcome) {
                (Some(error), _) => {
                    let _ = sender.send(Err(error.clone()));
                    Some(error)
                }
                (None, outcome) => {
                    let event_error = outcome.as_ref().err().cloned();
                    let _ = sender.send(outcome);
                    event_error
                }
            };
            self.finished(record, &ending, event_error);
        } else {
            log::info!(
                "task {} returned after it ended ({}); its result is discarded",
                record.id,
                ending.status
            );
            if ending.remove {
                self.forget(record);
            }
        }
    }

    /// Ends a task from outside its job (cancel, timeout, shutdown, dropped handle): trips
    /// its token, then wakes its caller with `error`. Returns `false` if it had already
    /// ended.
    pub(super) fn end_task(
        self: &Arc<Self>,
        record: &Arc<Record>,
        status: TaskStatus,
        reason: CancelReason,
        error: Error,
    ) -> bool {
        let mut ending = record.end(status, Instant::now(), false, &self.counters, &self.timer);
        if !ending.won {
            return false;
        }
        record.token.trip(reason);
        if ending.was_pending {
            self.unqueue(record);
        }
        if ending.remove {
            self.forget(record);
        }
        if let Some(wake_caller) = ending.fail_waiter.take() {
            wake_caller(error.clone());
        }
        self.finished(record, &ending, Some(error));
        // The job of a task that never ran: its captures go now, on this thread.
        drop(ending.runner.take());
        true
    }

    /// Takes an ended task out of the slot queue, if it waits there.
    fn unqueue(&self, record: &Record) {
        let removed = {
            let mut slots = self.slots.lock();
            let position = slots
                .waiting
                .iter()
                .position(|queued| queued.seq == record.seq);
            position.and_then(|position| slots.waiting.remove(position))
        };
        drop(removed);
    }

    fn time_out(self: &Arc<Self>, record: &Arc<Record>, limit: TimeoutKind, now: Instant) -> bool {
        let error = record.timeout_error(limit, now);
        self.end_task(
            record,
            TaskStatus::TimedOut(limit),
            CancelReason::TimedOut(limit),
            error,
        )
    }

    /// Ends the task if one of its deadlines has passed.
    pub(super) fn enforce_deadline(self: &Arc<Self>, record: &Arc<Record>, now: Instant) {
        if let Some(limit) = record.expired(now) {
            self.time_out(record, limit, now);
        }
    }

    fn forget(&self, record: &Record) {
        let removed = self.registry.lock().tasks.remove(&record.id);
        drop(removed); // outside the lock: never the last reference, but cheap to be sure
    }

    /// After a terminal write: queue the `Finished` event.
    fn finished(self: &Arc<Self>, record: &Arc<Record>, ending: &Ending, error: Option<Error>) {
        log::debug!("task {} {}", record.id, ending.status);
        if !self.has_observers(record) {
            return;
        }
        let kind = EventKind::Finished {
            status: ending.status,
            queued_for: ending.queued_for,
            ran_for: ending.ran_for,
            error,
        };
        if record.post_finished(kind) {
            self.deliver(record);
        }
    }

    fn has_observers(&self, record: &Record) -> bool {
        !self.observers.is_empty() || record.observer.is_some()
    }

    /// Queues an event of a live task for its observers.
    fn post(self: &Arc<Self>, record: &Arc<Record>, make: impl FnOnce(TaskStatus) -> EventKind) {
        if self.has_observers(record) && record.post_live(make) {
            self.deliver(record);
        }
    }

    /// Starts delivering a task's queued events on a scheduler thread: in order, one at a
    /// time, never under a lock, so neither an execution thread nor a caller waits on an
    /// observer.
    fn deliver(self: &Arc<Self>, record: &Arc<Record>) {
        let shared = self.clone();
        let record = record.clone();
        self.scheduler.execute(move || {
            let _thread = OnRuntimeThread::enter(&shared);
            loop {
                let events = record.take_events();
                if events.is_empty() {
                    break;
                }
                for event in &events {
                    events::notify(shared.observers.iter().chain(record.observer.iter()), event);
                }
            }
            drop(record); // while this thread is marked: it may hold the last Runtime
        });
    }

    /// The timer thread: ends tasks at their deadlines; every poll interval, warns about
    /// jobs that ignore cancellation.
    fn run_timer(self: Arc<Self>) {
        let _thread = OnRuntimeThread::enter(&self);
        let poll = self.config.poll_interval();
        let mut housekeeping_at = deadline_after(Instant::now(), poll);
        loop {
            match self.timer.wait(housekeeping_at) {
                Wake::Due(records) => {
                    let now = Instant::now();
                    for record in &records {
                        self.enforce_deadline(record, now);
                    }
                }
                Wake::Housekeeping => {
                    let now = Instant::now();
                    self.warn_about_zombies(now);
                    housekeeping_at = deadline_after(now, poll);
                }
                Wake::Stopped => return,
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

    pub(super) fn progress(self: &Arc<Self>, record: &Arc<Record>, progress: Progress) {
        self.post(record, |_| EventKind::Progress(progress));
    }

    pub(super) fn heartbeat(self: &Arc<Self>, record: &Arc<Record>, now: Instant) {
        let elapsed = now.saturating_duration_since(record.submitted_at);
        log::debug!(
            "task {}: caller waiting for {}",
            record.id,
            time::human(elapsed)
        );
        self.post(record, |status| EventKind::Heartbeat { status, elapsed });
    }

    pub(super) fn shutdown(self: &Arc<Self>, grace: Duration) -> Result<(), Error> {
        let started = Instant::now();
        self.closing.store(true, Ordering::SeqCst);
        let live = {
            let mut registry = self.registry.lock();
            registry.closed = true;
            registry.tasks.values().cloned().collect::<Vec<_>>()
        };
        for record in &live {
            self.end_task(
                record,
                TaskStatus::Cancelled,
                CancelReason::Shutdown,
                Error::new(
                    ErrorKind::Cancelled,
                    format!(
                        "task {} was cancelled because the runtime shut down",
                        record.id
                    ),
                ),
            );
        }
        let on_own_thread = RUNTIME_THREAD.with(|cell| cell.get()) == Arc::as_ptr(self) as usize;
        if on_own_thread {
            self.timer.stop();
            log::debug!("shutdown called from a runtime thread: not waiting for jobs");
            return Ok(());
        }
        self.timer.stop();
        let timer_thread = self.timer_thread.lock().take();
        if let Some(thread) = timer_thread
            && thread.join().is_err()
        {
            log::error!("the timer thread panicked");
        }
        // Execution threads exit as their jobs return (at once for cooperative ones), so
        // waiting for them is waiting for the jobs. Then the scheduler threads deliver the
        // events those jobs posted, and exit too.
        let stuck = self.executors.stop(deadline_after(started, grace));
        self.scheduler.stop(deadline_after(Instant::now(), grace));
        if stuck > 0 {
            return Err(Error::timeout(
                TimeoutKind::Execution,
                format!(
                    "shutdown: {stuck} job(s) ignore cancellation and still hold execution \
                     threads after {}; they finish on their own and their results are \
                     discarded",
                    time::human(grace)
                ),
            ));
        }
        log::debug!("runtime shut down in {}", time::human(started.elapsed()));
        Ok(())
    }
}
