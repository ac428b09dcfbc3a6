//! What a `task` call returns: [`TaskOutput`] (text for the model, JSON for hosts) and one
//! [`TaskResult`] per run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::Planned;
use crate::agent::{AgentResult, AgentStop};
use crate::error::{Error, ErrorKind};
use crate::llm::Usage;
use crate::subagents::{KeptWorktree, SubagentOutcome};

/// The result of a `task` call: for the model as text ([`to_text`](Self::to_text)), for
/// hosts as JSON (it serialises).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TaskOutput {
    /// One result per run, in request order.
    pub results: Vec<TaskResult>,
    /// Whether any run did not complete (or the call was refused).
    pub is_error: bool,
    /// Why the call was refused before anything ran.
    pub error: Option<String>,
    /// The tokens and cost of every run together (cost `None` when any was unknown).
    pub usage: Usage,
    /// Wall time of the whole call, in milliseconds.
    pub duration_ms: u64,
}

/// One run's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TaskResult {
    /// The task's description.
    pub description: String,
    /// The subagent type.
    pub subagent_type: String,
    /// The file that defined the type (`project file .subtask/agents/reviewer.md`,
    /// `user file …`); `None` for a built-in type or one registered in code.
    pub type_source: Option<String>,
    /// The run id to pass as `resume` (`None` if it never started).
    pub run_id: Option<String>,
    /// `completed`, `max_turns`, `max_output_tokens`, `max_cost`, `failed`, `timed_out`,
    /// `cancelled`, or `refused` (it never ran).
    pub status: String,
    /// The model that ran it.
    pub model: Option<String>,
    /// The full final answer (or the best answer so far).
    pub answer: String,
    /// Why it did not complete.
    pub error: Option<String>,
    /// Model calls made.
    pub turns: u32,
    /// Tokens and cost.
    pub usage: Usage,
    /// Calls per tool.
    pub tool_calls: BTreeMap<String, u32>,
    /// For a type with `isolation: worktree`: the worktree and branch holding the run's
    /// changes (`None` when it changed nothing, and for other types).
    pub worktree: Option<KeptWorktree>,
    /// Wall time of the run, in milliseconds.
    pub duration_ms: u64,
}

impl TaskResult {
    pub(super) fn from_outcome(plan: &Planned, outcome: SubagentOutcome) -> TaskResult {
        match (outcome.result, outcome.error) {
            (Some(result), error) => {
                TaskResult::from_run(plan, &outcome.run_id, &result, error.as_ref())
            }
            (None, Some(error)) => TaskResult::from_error(plan, Some(outcome.run_id), &error),
            (None, None) => TaskResult::from_error(
                plan,
                Some(outcome.run_id),
                &Error::new(ErrorKind::Internal, "the run ended without a result"),
            ),
        }
    }

    fn from_run(
        plan: &Planned,
        run_id: &str,
        result: &AgentResult,
        error: Option<&Error>,
    ) -> TaskResult {
        // The runtime's verdict (a timeout, a cancel) wins over the run's own account.
        let status = match error.map(Error::kind) {
            Some(ErrorKind::Timeout) => "timed_out",
            Some(ErrorKind::Cancelled) => "cancelled",
            _ => result.stop_reason.as_str(),
        };
        let error = error
            .or(result.error.as_ref())
            .map(ToString::to_string)
            .or_else(|| limit_note(result.stop_reason));
        TaskResult {
            description: plan.description.clone(),
            subagent_type: plan.subagent.clone(),
            type_source: plan.type_source.clone(),
            run_id: Some(run_id.to_string()),
            status: status.to_string(),
            model: Some(result.model.clone()),
            answer: result.text.clone(),
            error,
            turns: result.usage.turns,
            usage: result.usage.tokens,
            tool_calls: result.usage.tool_calls.clone(),
            worktree: result.worktree.clone(),
            duration_ms: millis(result.usage.wall_time),
        }
    }

    pub(super) fn from_error(plan: &Planned, run_id: Option<String>, error: &Error) -> TaskResult {
        let status = match error.kind() {
            ErrorKind::Timeout => "timed_out",
            ErrorKind::Cancelled => "cancelled",
            _ if run_id.is_some() => "failed",
            _ => "refused",
        };
        TaskResult {
            description: plan.description.clone(),
            subagent_type: plan.subagent.clone(),
            type_source: plan.type_source.clone(),
            run_id,
            status: status.to_string(),
            model: plan.request.model.clone(),
            answer: String::new(),
            error: Some(error.to_string()),
            turns: 0,
            usage: Usage::default(),
            tool_calls: BTreeMap::new(),
            worktree: None,
            duration_ms: 0,
        }
    }

    /// Whether the run completed its answer.
    pub fn is_complete(&self) -> bool {
        self.status == AgentStop::Completed.as_str()
    }

    /// `[run explore-k3m9x2ab · completed · 4 turns · 12,345 in / 678 out tokens · $0.0123 · 8.2 s]`,
    /// ending `· reviewer from project file .subtask/agents/reviewer.md` for a type defined
    /// in a file.
    pub fn footer(&self) -> String {
        let mut parts = vec![
            format!("run {}", self.run_id.as_deref().unwrap_or("-")),
            self.status.replace('_', " "),
        ];
        if let Some(model) = &self.model {
            parts.push(model.clone());
        }
        parts.push(format!(
            "{} turn{}",
            self.turns,
            if self.turns == 1 { "" } else { "s" }
        ));
        parts.push(format!(
            "{} in / {} out tokens",
            thousands(self.usage.total_input_tokens()),
            thousands(self.usage.output_tokens)
        ));
        match self.usage.cost_usd {
            Some(cost) => parts.push(format!("${cost:.4}")),
            // A real provider's model missing from the price table: say so, since a cost cap
            // cannot fire (SUBTASK_MODELS_FILE or ModelConfig::price add the price).
            None if self.model.as_deref().is_some_and(|model| {
                !model.starts_with("scripted:") && !model.starts_with("function:")
            }) =>
            {
                parts.push("price unknown".to_string())
            }
            None => {}
        }
        parts.push(format!("{:.1} s", self.duration_ms as f64 / 1000.0));
        if let Some(worktree) = &self.worktree {
            parts.push(format!(
                "changes on branch {} in {}",
                worktree.branch,
                worktree.path.display()
            ));
        }
        if let Some(source) = &self.type_source {
            parts.push(format!("{} from {source}", self.subagent_type));
        }
        format!("[{}]", parts.join(" · "))
    }
}

fn limit_note(stop: AgentStop) -> Option<String> {
    match stop {
        AgentStop::MaxTurns => {
            Some("the run reached its turn limit; the answer may be incomplete".into())
        }
        AgentStop::MaxOutputTokens => {
            Some("the run reached its output token limit; the answer may be incomplete".into())
        }
        AgentStop::MaxCost => {
            Some("the run reached its cost limit; the answer may be incomplete".into())
        }
        AgentStop::Truncated => Some(
            "the model's replies were cut at its output limit; the answer is incomplete".into(),
        ),
        _ => None,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

impl TaskOutput {
    pub(super) fn new(results: Vec<TaskResult>, duration: Duration) -> TaskOutput {
        let mut usage = Usage {
            cost_usd: Some(0.0),
            ..Usage::default()
        };
        for result in &results {
            usage.add(&result.usage);
        }
        TaskOutput {
            is_error: results.iter().any(|result| !result.is_complete()),
            results,
            error: None,
            usage,
            duration_ms: millis(duration),
        }
    }

    pub(super) fn invalid(message: String) -> TaskOutput {
        TaskOutput {
            results: Vec::new(),
            is_error: true,
            error: Some(format!("{message}. Fix the call and try again.")),
            usage: Usage::default(),
            duration_ms: 0,
        }
    }

    /// The text the model reads: each run's full answer (or error) and its footer; several
    /// runs each under their own heading, in request order.
    pub fn to_text(&self) -> String {
        if let Some(error) = &self.error {
            return format!("Invalid task call: {error}");
        }
        let body = |result: &TaskResult| {
            let mut text = String::new();
            if !result.answer.trim().is_empty() {
                text.push_str(result.answer.trim_end());
                text.push_str("\n\n");
            }
            if let Some(error) = &result.error {
                let _ = writeln!(text, "Error: {error}\n");
            }
            text.push_str(&result.footer());
            text
        };
        if let [result] = self.results.as_slice() {
            return body(result);
        }
        let done = self
            .results
            .iter()
            .filter(|result| result.is_complete())
            .count();
        let mut text = format!(
            "{} tasks: {done} completed, {} did not.\n",
            self.results.len(),
            self.results.len() - done
        );
        for (index, result) in self.results.iter().enumerate() {
            let model = result
                .model
                .as_deref()
                .map(|model| format!(", {model}"))
                .unwrap_or_default();
            let _ = write!(
                text,
                "\n## {}. {} ({}{model})\n\n{}\n",
                index + 1,
                result.description,
                result.subagent_type,
                body(result)
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(12_345), "12,345");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
    }
}
