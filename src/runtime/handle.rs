//! What a job and a caller hold: [`JobContext`] and [`TaskHandle`].

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::record::Record;
use super::shared::Shared;
use super::task::{TaskId, TaskStatus};
use super::time::deadline_after;
use super::{CancelToken, Progress};
use crate::error::{Error, ErrorKind};

/// What a job gets: its task's id and its [`CancelToken`].
pub struct JobContext<'a> {
    pub(super) shared: &'a Arc<Shared>,
    pub(super) record: &'a Arc<Record>,
}

impl JobContext<'_> {
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
    /// events; dropped once the task has ended).
    pub fn emit(&self, progress: Progress) {
        self.shared.progress(self.record, progress);
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
/// that cancels it.
#[must_use = "dropping a TaskHandle cancels its task"]
pub struct TaskHandle<T> {
    pub(super) shared: Arc<Shared>,
    pub(super) record: Arc<Record>,
    pub(super) receiver: Receiver<Result<T, Error>>,
    /// Set once the outcome has been taken from `receiver`; a handle dropped before that
    /// cancels its task.
    pub(super) delivered: bool,
}

impl<T> TaskHandle<T> {
    /// The task's id.
    pub fn id(&self) -> &TaskId {
        &self.record.id
    }

    /// The task's status now.
    pub fn status(&self) -> TaskStatus {
        self.record.status()
    }

    /// Cancels the task; `false` if it had already ended.
    pub fn cancel(&self) -> bool {
        self.shared.cancel_task(&self.record, "by the host")
    }

    /// Blocks until the task ends and returns its outcome. Woken the moment the task ends;
    /// every poll interval meanwhile, checks the task's deadlines and emits a heartbeat.
    ///
    /// # Errors
    ///
    /// The job's own error (task `Failed`); [`ErrorKind::Panic`] if it panicked;
    /// [`ErrorKind::Timeout`] with the limit that fired; [`ErrorKind::Cancelled`].
    pub fn wait(mut self) -> Result<T, Error> {
        let poll = self.shared.config.poll_interval();
        let mut heartbeat_at = deadline_after(Instant::now(), poll);
        loop {
            match self.receiver.recv_deadline(heartbeat_at) {
                Ok(outcome) => {
                    self.delivered = true;
                    return outcome;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    self.shared.enforce_deadline(&self.record, now);
                    self.shared.heartbeat(&self.record, now);
                    heartbeat_at = deadline_after(now, poll);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.delivered = true;
                    return Err(Error::new(
                        ErrorKind::Internal,
                        format!(
                            "task {} ended without a result; this is a bug in subtask, please \
                             report it",
                            self.record.id
                        ),
                    ));
                }
            }
        }
    }
}

impl<T> Drop for TaskHandle<T> {
    fn drop(&mut self) {
        if !self.delivered {
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
