//! Events of a task's life, for hosts: progress output, hooks, MCP notifications, dashboards.
//! The model never sees them.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{TaskId, TaskStatus};
use crate::error::Error;

/// Something that happened to a task.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Event {
    /// The task's id.
    pub task: TaskId,
    /// The label the task was submitted with (`task` if none).
    pub label: Arc<str>,
    /// When it happened.
    pub at: Instant,
    /// What happened.
    pub kind: EventKind,
    /// The trace context the task was submitted with ([`RunOptions::trace`]), e.g. a W3C
    /// `traceparent` an MCP client sent, so observers can tie the task's events to the
    /// request that caused them.
    ///
    /// [`RunOptions::trace`]: super::RunOptions::trace
    pub trace: Option<Arc<str>>,
}

/// What happened to a task.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EventKind {
    /// Admitted by a scheduler thread; waiting for an execution slot.
    Queued,
    /// Running on an execution thread.
    Started {
        /// Time from submission to start.
        queued_for: Duration,
    },
    /// Emitted by a waiting call every poll interval while its task has not ended.
    Heartbeat {
        /// `Pending` or `Running`.
        status: TaskStatus,
        /// Time since submission.
        elapsed: Duration,
    },
    /// What the job reported of its own progress through
    /// [`JobContext::emit`](crate::JobContext::emit); read it with
    /// [`EventKind::progress`].
    Progress(Arc<dyn ProgressReport>),
    /// The task reached its terminal status.
    Finished {
        /// `Completed`, `Failed`, `Cancelled` or `TimedOut`.
        status: TaskStatus,
        /// Time from submission to start, or to the end if it never started.
        queued_for: Duration,
        /// Time from start to end; `None` if it never started.
        ran_for: Option<Duration>,
        /// Why it did not complete.
        error: Option<Error>,
    },
}

/// A job's own progress report, carried by [`EventKind::Progress`]. The runtime knows
/// nothing of what a job does: each layer above it defines its own reports (the agent loop's
/// is [`Progress`](crate::Progress)) and observers pick out the ones they know with
/// [`EventKind::progress`].
///
/// ```
/// use std::fmt;
/// use subtask::{EventKind, ProgressReport};
///
/// #[derive(Debug)]
/// struct Downloaded(u64);
///
/// impl fmt::Display for Downloaded {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         write!(f, "{} bytes", self.0)
///     }
/// }
///
/// impl ProgressReport for Downloaded {}
///
/// fn describe(kind: &EventKind) -> Option<u64> {
///     kind.progress::<Downloaded>().map(|done| done.0)
/// }
/// ```
pub trait ProgressReport: Any + Send + Sync + fmt::Debug + fmt::Display {
    /// A short lowercase name for this kind of report (an event's
    /// [`name`](EventKind::name)). Defaults to `progress`.
    fn name(&self) -> &'static str {
        "progress"
    }
}

/// Receives task events.
///
/// Each observer of the runtime has a mailbox of its own: a queue and a thread that calls it
/// (observers given per call share one more). So an observer never runs on a thread that
/// dispatches work, runs jobs or enforces deadlines, never with a runtime lock held, and a
/// slow observer delays only its own events — never dispatch, deadlines or other observers.
///
/// A task's events arrive one at a time and in the order of the changes they report:
/// `Queued` (at admission, always first), `Started` (if and only if its job started), any
/// `Heartbeat`s and `Progress`, then exactly one `Finished`, and nothing after it. Events of
/// different tasks may interleave. An observer that falls more than 4096 events behind loses
/// new `Heartbeat` and `Progress` events until it catches up (logged); `Queued`, `Started`
/// and `Finished` are never dropped. A panicking observer is logged and skipped; it cannot
/// break a task.
///
/// Any `Fn(&Event) + Send + Sync` closure is an observer. An observer must not own a
/// [`Runtime`](crate::Runtime) handle of the runtime it observes: that handle would keep
/// the runtime alive until an explicit shutdown.
pub trait Observer: Send + Sync {
    /// Called once per event.
    fn on_event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> Observer for F {
    fn on_event(&self, event: &Event) {
        self(event)
    }
}

/// Calls one observer, catching its panic.
pub(crate) fn notify(observer: &Arc<dyn Observer>, event: &Event) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| observer.on_event(event))) {
        log::error!(
            "an observer panicked on {} of task {}: {}",
            event.kind.name(),
            event.task,
            super::panic_message(panic.as_ref())
        );
        super::drop_quietly(panic);
    }
}

impl EventKind {
    /// A short lowercase name: `queued`, `started`, `heartbeat`, `finished`, or the
    /// [`name`](ProgressReport::name) of a progress report.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Queued => "queued",
            EventKind::Started { .. } => "started",
            EventKind::Heartbeat { .. } => "heartbeat",
            EventKind::Progress(report) => report.name(),
            EventKind::Finished { .. } => "finished",
        }
    }

    /// The progress report this event carries, if it is a `Progress` event of type `P`.
    pub fn progress<P: ProgressReport>(&self) -> Option<&P> {
        match self {
            EventKind::Progress(report) => {
                let report: &dyn Any = &**report;
                report.downcast_ref::<P>()
            }
            _ => None,
        }
    }
}

impl fmt::Display for Event {
    /// One line for a progress display: `explore-k3m9x2ab finished: completed (ran 1.2 s)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::time::human;
        write!(f, "{} {}", self.task, self.kind.name())?;
        match &self.kind {
            EventKind::Queued => Ok(()),
            EventKind::Started { queued_for } => write!(f, " (queued {})", human(*queued_for)),
            EventKind::Heartbeat { status, elapsed } => {
                write!(f, ": {status} for {}", human(*elapsed))
            }
            EventKind::Progress(report) => write!(f, ": {report}"),
            EventKind::Finished {
                status,
                ran_for,
                error,
                ..
            } => {
                write!(f, ": {status}")?;
                if let Some(ran_for) = ran_for {
                    write!(f, " (ran {})", human(*ran_for))?;
                }
                if let Some(error) = error {
                    write!(f, ": {error}")?;
                }
                Ok(())
            }
        }
    }
}
