//! Events of a task's life, for hosts: progress output, hooks, MCP notifications, dashboards.
//! The model never sees them.

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
    /// What the job reported of its own progress (an agent's turns and tool calls), through
    /// [`JobContext::emit`](crate::JobContext::emit).
    Progress(Progress),
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

/// A job's own progress: what a subagent is doing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Progress {
    /// A turn (one model call and the tool calls it asks for) begins.
    TurnStarted {
        /// 1 for the first turn.
        turn: u32,
    },
    /// The model is streaming its answer (throttled: a few per second at most).
    ModelDelta {
        /// Characters of text and tool arguments received so far this turn.
        chars: usize,
    },
    /// A tool call begins.
    ToolStarted {
        /// The tool.
        tool: String,
        /// A short summary of its arguments, e.g. `'TODO' in src/`.
        summary: String,
    },
    /// A tool call ended.
    ToolFinished {
        /// The tool.
        tool: String,
        /// The same summary as at its start.
        summary: String,
        /// How long it ran.
        duration: Duration,
        /// Whether it failed (the model got an error result).
        is_error: bool,
    },
}

/// Receives task events.
///
/// Called on a scheduler thread, never with a runtime lock held, so neither an execution
/// thread nor a waiting caller is held up by an observer. A task's events arrive one at a
/// time and in the order of the changes they report: `Queued`, `Started`, any
/// `Heartbeat`s, then `Finished`, and nothing after it (a task that ends before it is
/// dispatched or started reports only what happened). Events of different tasks may
/// interleave. Keep observers quick: a slow one delays other tasks' events and their
/// dispatch. A panicking observer is logged and skipped; it cannot break a task.
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

/// The observers one task reports to: the runtime's, then the call's own.
pub(crate) fn notify<'a>(observers: impl Iterator<Item = &'a Arc<dyn Observer>>, event: &Event) {
    for observer in observers {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| observer.on_event(event))) {
            log::error!(
                "an observer panicked on {} of task {}: {}",
                event.kind.name(),
                event.task,
                super::panic_message(panic.as_ref())
            );
        }
    }
}

impl EventKind {
    /// A short lowercase name: `queued`, `started`, `heartbeat`, `turn`, `delta`, `tool`,
    /// `tool done`, `finished`.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Queued => "queued",
            EventKind::Started { .. } => "started",
            EventKind::Heartbeat { .. } => "heartbeat",
            EventKind::Progress(Progress::TurnStarted { .. }) => "turn",
            EventKind::Progress(Progress::ModelDelta { .. }) => "delta",
            EventKind::Progress(Progress::ToolStarted { .. }) => "tool",
            EventKind::Progress(Progress::ToolFinished { .. }) => "tool done",
            EventKind::Finished { .. } => "finished",
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
            EventKind::Progress(Progress::TurnStarted { turn }) => write!(f, " {turn}"),
            EventKind::Progress(Progress::ModelDelta { chars }) => {
                write!(f, ": {chars} characters")
            }
            EventKind::Progress(Progress::ToolStarted { tool, summary }) => {
                write!(f, " {tool} {summary}")
            }
            EventKind::Progress(Progress::ToolFinished {
                tool,
                summary,
                duration,
                is_error,
            }) => {
                let outcome = if *is_error { "failed" } else { "ok" };
                write!(f, " {tool} {summary}: {outcome} in {}", human(*duration))
            }
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
