//! Task ids, statuses, and the record the runtime keeps for each live task.

use std::borrow::Borrow;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::cancel::CancelToken;
use super::config::Limits;
use super::events::Observer;
use super::time::deadline_after;
use super::timer::Timer;
use crate::error::Error;

/// A task's id, made by the runtime: the task's label and a random suffix, e.g.
/// `explore-k3m9x2ab`. Unique among live tasks, and random enough to name files that outlive
/// the process (transcripts). Never taken from the caller.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(Arc<str>);

/// Crockford's base32 in lowercase: no `i`, `l`, `o` or `u` to misread.
const ID_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const ID_SUFFIX_LEN: usize = 8;
const MAX_LABEL_LEN: usize = 32;

impl TaskId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `label-xxxxxxxx`, with 40 random bits drawn from `seq` and `attempt` through a
    /// randomly keyed hash, so ids differ across processes too.
    pub(crate) fn generate(label: &str, seq: u64, attempt: u32) -> TaskId {
        let mut bits = std::collections::hash_map::RandomState::new().hash_one((seq, attempt));
        let mut id = String::with_capacity(label.len() + 1 + ID_SUFFIX_LEN);
        id.push_str(label);
        id.push('-');
        for _ in 0..ID_SUFFIX_LEN {
            id.push(ID_ALPHABET[(bits & 31) as usize] as char);
            bits >>= 5;
        }
        TaskId(id.into())
    }
}

/// Turns a caller's label into the readable start of an id: lowercase letters, digits, `-`
/// and `_`, at most 32 characters; `task` if nothing is left.
pub(crate) fn sanitize_label(label: Option<&str>) -> Arc<str> {
    let mut clean = String::new();
    for c in label.unwrap_or("").chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '-'
        };
        if c == '-' && (clean.is_empty() || clean.ends_with('-')) {
            continue;
        }
        if clean.len() == MAX_LABEL_LEN {
            break;
        }
        clean.push(c);
    }
    let clean = clean.trim_end_matches('-');
    if clean.is_empty() {
        "task".into()
    } else {
        clean.into()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Borrow<str> for TaskId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TaskId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Which time limit fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// The task waited too long for an execution slot.
    Queue,
    /// The run took too long (counted from its start).
    Execution,
    /// The caller's whole call took too long (queueing included).
    Wait,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Queue => "queue",
            TimeoutKind::Execution => "execution",
            TimeoutKind::Wait => "wait",
        })
    }
}

/// Where a task is in its life: `Pending → Running → Completed | Failed | Cancelled |
/// TimedOut`. A task may also end straight from `Pending` (cancelled or timed out in the
/// queue). The first terminal status written is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// Admitted, waiting for an execution slot.
    Pending,
    /// On an execution thread.
    Running,
    /// The job returned `Ok`.
    Completed,
    /// The job returned an error or panicked.
    Failed,
    /// Cancelled by the host, a dropped handle, or shutdown.
    Cancelled,
    /// A time limit fired.
    TimedOut(TimeoutKind),
}

impl TaskStatus {
    /// Whether this status is final.
    pub fn is_terminal(self) -> bool {
        !matches!(self, TaskStatus::Pending | TaskStatus::Running)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskStatus::Pending => f.write_str("pending"),
            TaskStatus::Running => f.write_str("running"),
            TaskStatus::Completed => f.write_str("completed"),
            TaskStatus::Failed => f.write_str("failed"),
            TaskStatus::Cancelled => f.write_str("cancelled"),
            TaskStatus::TimedOut(limit) => write!(f, "timed out ({limit})"),
        }
    }
}

/// A live task as a host sees it, from [`Runtime::tasks`](super::Runtime::tasks).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskSnapshot {
    /// The task's id.
    pub id: TaskId,
    /// The label it was submitted with.
    pub label: Arc<str>,
    /// Its status. A terminal status here means its job ignores cancellation and still holds
    /// an execution thread.
    pub status: TaskStatus,
    /// Time since submission.
    pub age: Duration,
    /// Time since its run started, if it has.
    pub running_for: Option<Duration>,
    /// Whether its job occupies an execution thread.
    pub holds_slot: bool,
}

/// Counts for dashboards, from [`Runtime::stats`](super::Runtime::stats). Gauges are read
/// one by one, so under load they may be a moment apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Tasks waiting for an execution slot.
    pub queued: usize,
    /// Tasks running.
    pub running: usize,
    /// Jobs that ended (timed out or cancelled) but ignore cancellation and still hold an
    /// execution thread.
    pub zombies: usize,
    /// Task records held by the runtime (queued, running and zombie tasks).
    pub live: usize,
    /// Tasks admitted since the runtime started.
    pub submitted: u64,
    /// Tasks refused because the queue was full.
    pub rejected: u64,
    /// Tasks that completed.
    pub completed: u64,
    /// Tasks whose job failed or panicked.
    pub failed: u64,
    /// Tasks cancelled.
    pub cancelled: u64,
    /// Tasks that timed out (any limit).
    pub timed_out: u64,
}

/// The runtime's counters. Gauges move only under the record lock of the task they count,
/// together with the status change they reflect.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) queued: AtomicUsize,
    pub(crate) running: AtomicUsize,
    pub(crate) zombies: AtomicUsize,
    /// Jobs on execution threads: `running + zombies`, kept apart so shutdown can wait on
    /// one number that never reads low mid-transition.
    pub(crate) in_slot: AtomicUsize,
    pub(crate) submitted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) timed_out: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self, live: usize) -> Stats {
        Stats {
            queued: self.queued.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
            zombies: self.zombies.load(Ordering::Relaxed),
            live,
            submitted: self.submitted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
        }
    }

    fn count_end(&self, status: TaskStatus) {
        let counter = match status {
            TaskStatus::Completed => &self.completed,
            TaskStatus::Failed => &self.failed,
            TaskStatus::Cancelled => &self.cancelled,
            TaskStatus::TimedOut(_) => &self.timed_out,
            TaskStatus::Pending | TaskStatus::Running => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends an error to the task's waiting caller.
pub(crate) type FailWaiter = Box<dyn FnOnce(Error) + Send>;

/// What the runtime knows of one live task. Shared by the registry, the timer, the waiting
/// handle and the execution thread.
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
    /// From the job's start until it returns, even past a terminal write: a job that
    /// ignores cancellation keeps its thread, and is counted as a zombie meanwhile.
    in_slot: bool,
    /// Wakes the caller with an error; taken by the terminal write, so it runs at most once.
    /// A completed job delivers its value through the execution thread's own sender.
    fail_waiter: Option<FailWaiter>,
    /// This task's key in the timer. Invariant: `Some` exactly while the task is Pending
    /// or Running; changed only under this lock.
    timer_deadline: Option<Instant>,
}

/// The outcome of [`Record::start`].
pub(crate) enum Start {
    /// The task is now Running; the job may run.
    Running,
    /// The task already ended (cancelled or timed out while queued): skip the job.
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
    /// Taken from the record when `won`.
    pub(crate) fail_waiter: Option<FailWaiter>,
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
        submitted_at: Instant,
        limits: Limits,
        observer: Option<Arc<dyn Observer>>,
        fail_waiter: FailWaiter,
    ) -> Record {
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
                in_slot: false,
                fail_waiter: Some(fail_waiter),
                timer_deadline: None,
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
            timer.insert(self, deadline);
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
        counters.in_slot.fetch_add(1, Ordering::SeqCst);
        if let Some(old) = state.timer_deadline.replace(run_deadline.0) {
            timer.remove(old, self.seq);
        }
        timer.insert(self, run_deadline.0);
        self.token.set_deadline(run_deadline.0, run_deadline.1);
        Start::Running
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
            counters.in_slot.fetch_sub(1, Ordering::SeqCst);
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
        if state.status.is_terminal() {
            let status = state.status;
            // A job returning after its task ended (a late result) frees its zombie slot.
            if leaving_slot {
                counters.zombies.fetch_sub(1, Ordering::Relaxed);
            }
            return Ending {
                won: false,
                status,
                fail_waiter: None,
                remove: leaving_slot,
                queued_for,
                ran_for,
            };
        }
        match state.status {
            TaskStatus::Pending => counters.queued.fetch_sub(1, Ordering::Relaxed),
            _ => counters.running.fetch_sub(1, Ordering::Relaxed),
        };
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
            fail_waiter: state.fail_waiter.take(),
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
        use super::time::human;
        let state = self.state.lock();
        let timeout = human(self.limits.of(limit));
        let message = match (limit, state.started_at) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_label_and_random_suffix() {
        let a = TaskId::generate("explore", 1, 0);
        let b = TaskId::generate("explore", 1, 1);
        assert!(a.as_str().starts_with("explore-"));
        assert_eq!(a.as_str().len(), "explore-".len() + ID_SUFFIX_LEN);
        assert_ne!(a, b);
    }

    #[test]
    fn labels_are_made_readable() {
        assert_eq!(&*sanitize_label(None), "task");
        assert_eq!(&*sanitize_label(Some("  ")), "task");
        assert_eq!(&*sanitize_label(Some("Find the TODOs!")), "find-the-todos");
        assert_eq!(&*sanitize_label(Some("../../etc")), "etc");
        assert_eq!(sanitize_label(Some(&"x".repeat(100))).len(), MAX_LABEL_LEN);
    }
}
