//! What a job and a caller hold: [`JobContext`] and [`TaskHandle`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::CancelToken;
use super::events::ProgressReport;
use super::record::{Record, Waited};
use super::shared::{Ender, Shared};
use super::task::{TaskId, TaskStatus};
use super::time::deadline_after;
use crate::error::{Error, ErrorKind};

/// What a job gets: its task's id and its [`CancelToken`].
pub struct JobContext<'a> {
    shared: &'a Arc<Shared>,
    record: &'a Arc<Record>,
    /// Set once the job's outcome has been handed to the runtime.
    completed: AtomicBool,
}

impl<'a> JobContext<'a> {
    pub(super) fn new(shared: &'a Arc<Shared>, record: &'a Arc<Record>) -> JobContext<'a> {
        JobContext {
            shared,
            record,
            completed: AtomicBool::new(false),
        }
    }

    /// Hands the job's outcome to the runtime (once); whether its value is taken.
    pub(super) fn complete(&self, error: Option<Error>) -> bool {
        if self.completed.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.shared.complete(self.record, error)
    }

    pub(super) fn completed(&self) -> bool {
        self.completed.load(Ordering::Acquire)
    }

    /// The task's id.
    pub fn id(&self) -> &TaskId {
        &self.record.id
    }

    /// The task's label.
    pub fn label(&self) -> &str {
        &self.record.label
    }

    /// The task's cancellation signal; tripped on timeout, cancel and shutdown, and past
    /// the task's deadline.
    pub fn token(&self) -> &CancelToken {
        &self.record.token
    }

    /// Reports the job's progress to the task's observers (in order with the task's other
    /// events; dropped once the task has ended). Free when nobody observes the task.
    pub fn emit(&self, progress: impl ProgressReport) {
        self.shared.progress(self.record, Arc::new(progress));
    }
}

impl fmt::Debug for JobContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.record.id)
            .field("token", &self.record.token)
            .finish()
    }
}

/// A submitted task. [`wait`](Self::wait) blocks until it ends; dropping the handle before
/// its outcome is taken cancels the task (use [`detach`](Self::detach) to let it run on).
///
/// The job is `'static` (it may borrow nothing from the caller's stack) because a handle can
/// be dropped or detached, or its caller time out, while the job still runs: an abandoned
/// job may outlive the call that submitted it.
#[must_use = "dropping a TaskHandle cancels its task"]
pub struct TaskHandle<T> {
    shared: Arc<Shared>,
    record: Arc<Record>,
    /// Where the job leaves its value; read once the task has `Completed`.
    value: Arc<Mutex<Option<T>>>,
    /// Set once the outcome has been taken (or the handle detached); a handle dropped before
    /// that cancels its task.
    spent: bool,
}

/// Keys `wait_any` registrations apart.
static NEXT_WATCH: AtomicU64 = AtomicU64::new(1);

impl<T> TaskHandle<T> {
    pub(super) fn new(
        shared: Arc<Shared>,
        record: Arc<Record>,
        value: Arc<Mutex<Option<T>>>,
    ) -> TaskHandle<T> {
        TaskHandle {
            shared,
            record,
            value,
            spent: false,
        }
    }

    /// The task's id.
    pub fn id(&self) -> &TaskId {
        &self.record.id
    }

    /// The task's status now.
    pub fn status(&self) -> TaskStatus {
        self.record.status()
    }

    /// Whether the task has ended (its outcome can be taken without blocking).
    pub fn is_finished(&self) -> bool {
        self.record.status().is_terminal()
    }

    /// Cancels the task; `false` if it had already ended.
    pub fn cancel(&self) -> bool {
        self.shared.cancel_task(&self.record, "by the host")
    }

    /// Lets the task run on without anybody waiting for it: dropping the handle this way does
    /// not cancel it. Its deadlines still apply, and its value is dropped when it ends.
    pub fn detach(mut self) {
        self.spent = true;
    }

    /// Blocks until the task ends and returns its outcome. Woken the moment the task ends;
    /// every poll interval meanwhile, checks the task's deadlines and emits a heartbeat.
    ///
    /// Called from inside a job of the same runtime (a parent waiting on its child) while the
    /// child still waits for an execution thread, the parent's thread runs the child itself
    /// (rayon's help-while-waiting), so parents holding every thread cannot starve their
    /// children. The child's own limits still apply; the parent's thread is busy meanwhile.
    ///
    /// # Errors
    ///
    /// The job's own error (task `Failed`); [`ErrorKind::Panic`] if it panicked;
    /// [`ErrorKind::Timeout`] with the limit that fired; [`ErrorKind::Cancelled`];
    /// [`ErrorKind::InvalidInput`] if the outcome was already taken.
    pub fn wait(mut self) -> Result<T, Error> {
        match self.wait_until(None) {
            Some(outcome) => outcome,
            None => unreachable!("a wait without a limit returns an outcome"),
        }
    }

    /// The outcome if the task has ended, without blocking; `None` while it runs or waits.
    /// Once an outcome has been returned, later calls return an
    /// [`ErrorKind::InvalidInput`] error.
    pub fn try_wait(&mut self) -> Option<Result<T, Error>> {
        if self.spent || self.is_finished() {
            return Some(self.take());
        }
        None
    }

    /// Blocks until the task ends or `timeout` passes; `None` if it is still running then
    /// (the task goes on: `timeout` bounds this wait, not the task). Never runs the task on
    /// this thread, unlike [`wait`](Self::wait). Once an outcome has been returned, later
    /// calls return an [`ErrorKind::InvalidInput`] error.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<Result<T, Error>> {
        self.wait_until(Some(deadline_after(Instant::now(), timeout)))
    }

    /// Blocks until the first of `handles` ends, removes its handle from the vector and
    /// returns its index (before removal) and outcome; `None` for an empty vector. The other
    /// tasks go on. Heartbeats and deadline checks continue for every task meanwhile. Never
    /// runs a task on this thread, unlike [`wait`](Self::wait): from inside a job, a queued
    /// child waits for a free execution thread (or its queue timeout).
    pub fn wait_any(handles: &mut Vec<TaskHandle<T>>) -> Option<(usize, Result<T, Error>)> {
        if handles.is_empty() {
            return None;
        }
        let (watcher, ended) = crossbeam_channel::bounded(handles.len());
        let key = NEXT_WATCH.fetch_add(1, Ordering::Relaxed);
        for handle in handles.iter() {
            handle.record.watch(key, &watcher);
        }
        let poll = handles[0].shared.config.poll_interval();
        let mut heartbeat_at = deadline_after(Instant::now(), poll);
        let index = loop {
            if let Some(index) = handles
                .iter()
                .position(|handle| handle.spent || handle.is_finished())
            {
                break index;
            }
            if ended.recv_deadline(heartbeat_at).is_err() {
                let now = Instant::now();
                for handle in handles.iter() {
                    handle.beat(now);
                }
                heartbeat_at = deadline_after(now, poll);
            }
        };
        for handle in handles.iter() {
            handle.record.unwatch(key);
        }
        let mut handle = handles.remove(index);
        Some((index, handle.take()))
    }

    fn beat(&self, now: Instant) {
        self.shared
            .enforce_deadline(&self.record, now, Ender::Other);
        self.shared.heartbeat(&self.record, now);
    }

    /// Waits until the task ends or `limit`; helps run it when waiting without a limit on one
    /// of the runtime's execution threads.
    fn wait_until(&mut self, limit: Option<Instant>) -> Option<Result<T, Error>> {
        if self.spent {
            return Some(self.take());
        }
        let poll = self.shared.config.poll_interval();
        let help = match limit {
            None => self.shared.current_slot(),
            Some(_) => None,
        };
        let mut heartbeat_at = deadline_after(Instant::now(), poll);
        loop {
            let until = limit.map_or(heartbeat_at, |limit| limit.min(heartbeat_at));
            match self.record.wait_until(until, help.is_some()) {
                Waited::Ended => return Some(self.take()),
                Waited::Help => {
                    if let Some(slot) = help
                        && self.shared.steal(&self.record)
                    {
                        self.shared.run(&self.record, slot, true);
                    }
                }
                Waited::TimedOut => {
                    let now = Instant::now();
                    if limit.is_some_and(|limit| now >= limit) {
                        return None;
                    }
                    if now >= heartbeat_at {
                        self.beat(now);
                        heartbeat_at = deadline_after(now, poll);
                    }
                }
            }
        }
    }

    /// The outcome of an ended task; an error if it was already taken.
    fn take(&mut self) -> Result<T, Error> {
        if std::mem::replace(&mut self.spent, true) {
            return Err(Error::invalid_input(format!(
                "the outcome of task {} was already taken from this handle",
                self.record.id
            )));
        }
        match self.record.outcome_error() {
            Some(error) => Err(error),
            None => self.value.lock().take().ok_or_else(|| {
                Error::new(
                    ErrorKind::Internal,
                    format!(
                        "task {} completed without a value; this is a bug in subtask, please \
                         report it",
                        self.record.id
                    ),
                )
            }),
        }
    }
}

impl<T> Drop for TaskHandle<T> {
    fn drop(&mut self) {
        if !self.spent {
            self.shared
                .cancel_task(&self.record, "because its handle was dropped");
        }
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.record.id)
            .field("status", &self.record.status())
            .finish()
    }
}
