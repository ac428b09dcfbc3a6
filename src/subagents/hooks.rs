//! [`Hooks`]: code run around each subagent run.

use std::path::Path;
use std::time::Duration;

use crate::agent::{AgentStop, RunUsage};
use crate::error::Error;

/// What a `SubagentStart` hook sees.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SubagentStart<'a> {
    /// The run's id.
    pub run_id: &'a str,
    /// The subagent type.
    pub subagent: &'a str,
    /// The prompt it got.
    pub prompt: &'a str,
    /// `provider:model`.
    pub model: &'a str,
    /// Its workspace.
    pub workspace: &'a Path,
}

/// What a `SubagentStop` hook sees.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SubagentStop<'a> {
    /// The run's id.
    pub run_id: &'a str,
    /// The subagent type.
    pub subagent: &'a str,
    /// Why the run ended.
    pub stop_reason: AgentStop,
    /// What it used.
    pub usage: &'a RunUsage,
    /// How long it ran.
    pub duration: Duration,
    /// The error behind a run that did not complete.
    pub error: Option<&'a Error>,
}

/// Code run around each subagent run, on the run's own execution thread (so a slow hook
/// delays its own task, within that task's deadline, and never a pool). A panicking
/// `subagent_start` fails its task; a panicking `subagent_stop` is logged.
pub trait Hooks: Send + Sync {
    /// Before the run. `Err(reason)` vetoes it: the task fails with that reason.
    ///
    /// # Errors
    ///
    /// The reason for the veto.
    fn subagent_start(&self, start: &SubagentStart<'_>) -> Result<(), String> {
        let _ = start;
        Ok(())
    }

    /// After the run, however it ended.
    fn subagent_stop(&self, stop: &SubagentStop<'_>) {
        let _ = stop;
    }
}
