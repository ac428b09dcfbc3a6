//! The synchronous agent loop: ask the model, run the tools it asks for, repeat until it
//! answers without tool calls or a limit ends the run.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::llm::{
    ChatModel, ChatRequest, ContentBlock, DEFAULT_MAX_TOKENS, Delta, Message, ReasoningEffort,
    Role, StopReason, ToolInput, ToolResult, ToolUse, Usage,
};
use crate::runtime::{CancelReason, CancelToken, ProgressReport};
use crate::sandbox::Sandbox;
use crate::subagents::KeptWorktree;
use crate::tools::{ProcessGroups, ToolContext, ToolRegistry, Workspace, validate};
use crate::transcript::{Entry, Transcript};

/// An agent run's progress: the report the agent loop gives its host (through
/// [`RunContext::progress`]) and that a subagent task emits as the runtime's
/// [`EventKind::Progress`](crate::EventKind::Progress) (read it with
/// `event.kind.progress::<Progress>()`).
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

impl ProgressReport for Progress {
    /// `turn`, `delta`, `tool` or `tool done`.
    fn name(&self) -> &'static str {
        match self {
            Progress::TurnStarted { .. } => "turn",
            Progress::ModelDelta { .. } => "delta",
            Progress::ToolStarted { .. } => "tool",
            Progress::ToolFinished { .. } => "tool done",
        }
    }
}

impl std::fmt::Display for Progress {
    /// `turn 2`, `1200 characters`, `grep 'TODO' in src/`, `grep 'TODO' in src/: ok in 40 ms`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Progress::TurnStarted { turn } => write!(f, "turn {turn}"),
            Progress::ModelDelta { chars } => write!(f, "{chars} characters"),
            Progress::ToolStarted { tool, summary } => write!(f, "{tool} {summary}"),
            Progress::ToolFinished {
                tool,
                summary,
                duration,
                is_error,
            } => {
                let outcome = if *is_error { "failed" } else { "ok" };
                write!(f, "{tool} {summary}: {outcome} in {duration:.1?}")
            }
        }
    }
}

/// Turns a run may take, by default.
pub const DEFAULT_MAX_TURNS: u32 = 50;
/// Tool calls of one turn run at once, at most, by default.
pub const DEFAULT_PARALLEL_TOOLS: usize = 4;
/// The least time between two `ModelDelta` progress events of a run.
const DELTA_EVENT_INTERVAL: Duration = Duration::from_millis(250);

/// The limits of a run; each one that is reached ends the run with its own [`AgentStop`]
/// and the best answer so far.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentLimits {
    /// Model calls, at most. Defaults to 50.
    pub max_turns: u32,
    /// Output tokens over the whole run, at most. Defaults to no limit.
    pub max_output_tokens: Option<u64>,
    /// Cost over the whole run, at most, in US dollars (needs a known price). Defaults to
    /// no limit.
    pub max_cost_usd: Option<f64>,
    /// Output tokens one model call may produce. Defaults to 8192.
    pub max_tokens_per_turn: u32,
    /// Tool calls of one turn that run at once. Defaults to 4.
    pub parallel_tools: usize,
    /// Reasoning effort of the run's model calls, over the model's own setting (a subagent
    /// type's `reasoning_effort`). Defaults to none (the model's).
    pub reasoning_effort: Option<ReasoningEffort>,
}

impl Default for AgentLimits {
    fn default() -> AgentLimits {
        AgentLimits {
            max_turns: DEFAULT_MAX_TURNS,
            max_output_tokens: None,
            max_cost_usd: None,
            max_tokens_per_turn: DEFAULT_MAX_TOKENS,
            parallel_tools: DEFAULT_PARALLEL_TOOLS,
            reasoning_effort: None,
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentStop {
    /// The model answered without asking for tools.
    Completed,
    /// `max_turns` was reached.
    MaxTurns,
    /// `max_output_tokens` was reached.
    MaxOutputTokens,
    /// `max_cost_usd` was reached.
    MaxCost,
    /// The model's replies were cut at its output limit (`max_tokens`) or context window
    /// twice in a row: the answer is incomplete, and a cut tool call was never run.
    Truncated,
    /// The task was cancelled.
    Cancelled,
    /// The task's time ran out.
    TimedOut,
    /// The model could not be reached or refused (after its retries); see `error`.
    Failed,
}

impl AgentStop {
    /// A short lowercase name: `completed`, `max_turns`…
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStop::Completed => "completed",
            AgentStop::MaxTurns => "max_turns",
            AgentStop::MaxOutputTokens => "max_output_tokens",
            AgentStop::MaxCost => "max_cost",
            AgentStop::Truncated => "truncated",
            AgentStop::Cancelled => "cancelled",
            AgentStop::TimedOut => "timed_out",
            AgentStop::Failed => "failed",
        }
    }
}

/// What a run used.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunUsage {
    /// Model calls made.
    pub turns: u32,
    /// Tokens (and cost, when every call's price was known).
    pub tokens: Usage,
    /// Calls per tool name.
    pub tool_calls: BTreeMap<String, u32>,
    /// From start to end.
    pub wall_time: Duration,
}

/// The outcome of a run: always an answer (maybe empty) and a reason, never a bare error.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AgentResult {
    /// The final answer, or the last text the model wrote if the run was cut short.
    pub text: String,
    /// Why the run ended.
    pub stop_reason: AgentStop,
    /// Turns, tokens, cost, tool calls, time.
    pub usage: RunUsage,
    /// The whole conversation, prompt first.
    pub messages: Vec<Message>,
    /// For `Failed`, `Cancelled` and `TimedOut`: the error behind it.
    pub error: Option<Error>,
    /// The model that ran it (`provider:model`).
    pub model: String,
    /// For a subagent type with `isolation: worktree`: the worktree the run changed, kept
    /// with its changes committed on its branch (`None` when it changed nothing).
    pub worktree: Option<KeptWorktree>,
}

impl AgentResult {
    /// Whether the model finished its answer.
    pub fn is_complete(&self) -> bool {
        self.stop_reason == AgentStop::Completed
    }
}

/// What a run needs from its surroundings: the task's token, the workspace its tools are
/// confined to, and optionally a progress sink, a transcript and the sandbox its commands
/// run in (the default [`Sandbox`] otherwise: confined, network off).
#[derive(Clone, Copy)]
pub struct RunContext<'a> {
    token: &'a CancelToken,
    workspace: &'a Workspace,
    progress: Option<&'a (dyn Fn(Progress) + Sync)>,
    transcript: Option<&'a Transcript>,
    /// The nesting depth of the subagent run this is; `None` for the host's own agent.
    subagent_depth: Option<u32>,
    sandbox: Option<&'a Sandbox>,
}

impl<'a> RunContext<'a> {
    /// A context with no progress sink and no transcript, for the host's own agent.
    pub fn new(token: &'a CancelToken, workspace: &'a Workspace) -> RunContext<'a> {
        RunContext {
            token,
            workspace,
            progress: None,
            transcript: None,
            subagent_depth: None,
            sandbox: None,
        }
    }

    /// Marks the run as a subagent at nesting `depth` (what its tools see in
    /// [`ToolContext::subagent_depth`], by which the `task` tool bounds nesting).
    pub fn subagent_depth(mut self, depth: u32) -> RunContext<'a> {
        self.subagent_depth = Some(depth);
        self
    }

    /// Runs the run's commands in `sandbox`.
    pub fn sandbox(mut self, sandbox: &'a Sandbox) -> RunContext<'a> {
        self.sandbox = Some(sandbox);
        self
    }

    /// Reports progress (turns, model deltas, tool calls) to `sink`.
    pub fn progress(mut self, sink: &'a (dyn Fn(Progress) + Sync)) -> RunContext<'a> {
        self.progress = Some(sink);
        self
    }

    /// Appends every message to `transcript`, flushed after every turn.
    pub fn transcript(mut self, transcript: &'a Transcript) -> RunContext<'a> {
        self.transcript = Some(transcript);
        self
    }

    fn emit(&self, progress: Progress) {
        if let Some(sink) = self.progress {
            sink(progress);
        }
    }

    fn record(&self, message: &Message) {
        if let Some(transcript) = self.transcript
            && let Err(error) = transcript.append(&Entry::Message {
                message: message.clone(),
            })
        {
            log::warn!("{}: {error}", transcript.path().display());
        }
    }
}

impl std::fmt::Debug for RunContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("workspace", self.workspace)
            .field("token", self.token)
            .field("transcript", &self.transcript.map(Transcript::path))
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

/// An agent: a model, a system prompt, the tools it may call, and its limits.
///
/// ```
/// use std::sync::Arc;
/// use serde_json::json;
/// use subtask::agent::{Agent, RunContext};
/// use subtask::llm::{ScriptedModel, ScriptedTurn};
/// use subtask::tools::{ToolRegistry, Workspace};
/// use subtask::CancelToken;
///
/// let model = Arc::new(ScriptedModel::new([ScriptedTurn::text("Nothing to do.")]));
/// let agent = Agent::new(model, "You are helpful.", ToolRegistry::new());
/// let workspace = Workspace::current_dir()?;
/// let token = CancelToken::new();
/// let result = agent.run("Hello", &RunContext::new(&token, &workspace));
/// assert_eq!(result.text, "Nothing to do.");
/// # Ok::<(), subtask::Error>(())
/// ```
#[derive(Clone)]
pub struct Agent {
    model: Arc<dyn ChatModel>,
    system_prompt: String,
    tools: ToolRegistry,
    limits: AgentLimits,
}

impl Agent {
    /// An agent with the default limits.
    pub fn new(
        model: Arc<dyn ChatModel>,
        system_prompt: impl Into<String>,
        tools: ToolRegistry,
    ) -> Agent {
        Agent {
            model,
            system_prompt: system_prompt.into(),
            tools,
            limits: AgentLimits::default(),
        }
    }

    /// Sets the limits.
    pub fn with_limits(mut self, limits: AgentLimits) -> Agent {
        self.limits = limits;
        self
    }

    /// The model.
    pub fn model(&self) -> &Arc<dyn ChatModel> {
        &self.model
    }

    /// The tools the model is offered.
    pub fn tools(&self) -> &ToolRegistry {
        &self.tools
    }

    /// Runs a new conversation that starts with `prompt`.
    pub fn run(&self, prompt: &str, context: &RunContext<'_>) -> AgentResult {
        self.resume(Vec::new(), prompt, context)
    }

    /// Continues `history` (an earlier run's messages) with `prompt`. A history cut off
    /// mid-turn (tool calls without results) is repaired first, so the provider accepts it.
    pub fn resume(
        &self,
        history: Vec<Message>,
        prompt: &str,
        context: &RunContext<'_>,
    ) -> AgentResult {
        let started = Instant::now();
        let mut run = Run {
            agent: self,
            context,
            messages: history,
            usage: RunUsage {
                // Known (zero) until a call of unknown price makes the total unknown.
                tokens: Usage {
                    cost_usd: Some(0.0),
                    ..Usage::default()
                },
                ..RunUsage::default()
            },
            processes: ProcessGroups::new(context.token),
        };
        run.repair_history();
        run.push_user_text(prompt);
        let (stop_reason, error) = run.turns();
        let text = run.best_answer();
        let mut usage = run.usage;
        usage.wall_time = started.elapsed();
        if let Some(transcript) = context.transcript
            && let Err(error) = transcript.append(&Entry::End {
                stop_reason: stop_reason.as_str().to_string(),
                usage: usage.tokens,
                turns: usage.turns,
            })
        {
            log::warn!("{}: {error}", transcript.path().display());
        }
        AgentResult {
            text,
            stop_reason,
            usage,
            messages: run.messages,
            error,
            model: self.model.name().to_string(),
            worktree: None,
        }
    }
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("model", &self.model.name())
            .field("tools", &self.tools)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// One run in progress.
struct Run<'r> {
    agent: &'r Agent,
    context: &'r RunContext<'r>,
    messages: Vec<Message>,
    usage: RunUsage,
    /// Processes the run's commands started; all killed when the run ends (dropped).
    processes: ProcessGroups,
}

impl Run<'_> {
    /// The loop. Returns why it ended.
    fn turns(&mut self) -> (AgentStop, Option<Error>) {
        let limits = &self.agent.limits;
        let specs = self.agent.tools.specs();
        let mut cut_in_a_row = 0u32;
        loop {
            if let Some(stopped) = self.ended_by_token() {
                return stopped;
            }
            if self.usage.turns >= limits.max_turns {
                return (AgentStop::MaxTurns, None);
            }
            self.usage.turns += 1;
            self.context.emit(Progress::TurnStarted {
                turn: self.usage.turns,
            });
            let request = ChatRequest::new(&self.agent.system_prompt, &self.messages)
                .tools(&specs)
                .max_tokens(limits.max_tokens_per_turn)
                .reasoning_effort(limits.reasoning_effort);
            let mut streamed = 0usize;
            let mut last_event = Instant::now();
            let mut on_delta = |delta: Delta<'_>| {
                streamed += match delta {
                    Delta::Text(text) | Delta::ToolInput(text) | Delta::Reasoning(text) => {
                        text.len()
                    }
                    _ => 0,
                };
                if last_event.elapsed() >= DELTA_EVENT_INTERVAL {
                    last_event = Instant::now();
                    self.context.emit(Progress::ModelDelta { chars: streamed });
                }
            };
            let response = match self
                .agent
                .model
                .chat(&request, self.context.token, &mut on_delta)
            {
                Ok(response) => response,
                Err(error) => {
                    return self
                        .ended_by_token()
                        .unwrap_or((AgentStop::Failed, Some(error)));
                }
            };
            self.usage.tokens.add(&response.usage);
            let truncated = response.stop_reason.is_truncation();
            let paused = response.stop_reason == StopReason::PauseTurn;
            let calls: Vec<ToolUse> = response.message.tool_uses().cloned().collect();
            self.push(response.message);
            if truncated {
                // A cut reply: its tool call may hold half its arguments and must not run
                // (nor be answered "bad JSON", which sends the model round in circles).
                // Once, the model is told and may try shorter; twice in a row ends the run.
                cut_in_a_row += 1;
                if cut_in_a_row >= 2 || calls.is_empty() {
                    if !calls.is_empty() {
                        self.answer_unrun(&calls, "the reply was cut at the output limit");
                    }
                    return (AgentStop::Truncated, None);
                }
                self.answer_unrun(
                    &calls,
                    "your reply was cut at the output token limit before this call was \
                     complete; make it smaller (e.g. write a large file in several edits)",
                );
                continue;
            }
            cut_in_a_row = 0;
            if calls.is_empty() && paused {
                continue; // the server paused a long turn: sending it back resumes it
            }
            if calls.is_empty() {
                return (AgentStop::Completed, None);
            }
            let over_limit = if limits
                .max_output_tokens
                .is_some_and(|max| self.usage.tokens.output_tokens >= max)
            {
                Some(AgentStop::MaxOutputTokens)
            } else if let (Some(max), Some(cost)) =
                (limits.max_cost_usd, self.usage.tokens.cost_usd)
                && cost >= max
            {
                Some(AgentStop::MaxCost)
            } else {
                None
            };
            if let Some(stop) = over_limit {
                self.answer_unrun(&calls, &format!("the run stopped ({})", stop.as_str()));
                return (stop, None);
            }
            let results = self.call_tools(&calls);
            self.push(Message {
                role: Role::User,
                content: results.into_iter().map(ContentBlock::ToolResult).collect(),
            });
        }
    }

    /// `Cancelled` or `TimedOut` once the token is tripped or past its deadline.
    fn ended_by_token(&self) -> Option<(AgentStop, Option<Error>)> {
        let reason = self.context.token.reason()?;
        let stop = match reason {
            CancelReason::TimedOut(_) => AgentStop::TimedOut,
            _ => AgentStop::Cancelled,
        };
        Some((stop, Some(reason.to_error())))
    }

    fn push(&mut self, message: Message) {
        self.context.record(&message);
        self.messages.push(message);
    }

    fn push_user_text(&mut self, text: &str) {
        let block = ContentBlock::Text {
            text: text.to_string(),
        };
        // Two user messages in a row become one (after tool results, say). The transcript
        // gets the new block alone; reading it back joins consecutive user messages.
        if let Some(last) = self.messages.last_mut()
            && last.role == Role::User
        {
            last.content.push(block.clone());
            self.context.record(&Message {
                role: Role::User,
                content: vec![block],
            });
            return;
        }
        self.push(Message {
            role: Role::User,
            content: vec![block],
        });
    }

    /// A history that ends with tool calls and no results (a crash mid-turn) gets error
    /// results, so the conversation is one a provider accepts.
    fn repair_history(&mut self) {
        if let Some(last) = self.messages.last()
            && last.role == Role::Assistant
        {
            let calls: Vec<ToolUse> = last.tool_uses().cloned().collect();
            if !calls.is_empty() {
                self.answer_unrun(&calls, "the earlier run ended before this call ran");
            }
        }
    }

    /// Answers calls that will not run, keeping the conversation well-formed.
    fn answer_unrun(&mut self, calls: &[ToolUse], why: &str) {
        let results = calls
            .iter()
            .map(|call| {
                ContentBlock::ToolResult(ToolResult {
                    tool_use_id: call.id.clone(),
                    content: format!("not run: {why}"),
                    is_error: true,
                })
            })
            .collect();
        self.push(Message {
            role: Role::User,
            content: results,
        });
    }

    /// Runs the calls, several at once (up to `parallel_tools`), results in call order.
    fn call_tools(&mut self, calls: &[ToolUse]) -> Vec<ToolResult> {
        for call in calls {
            *self.usage.tool_calls.entry(call.name.clone()).or_default() += 1;
        }
        let mut tool_context =
            ToolContext::new(self.context.workspace, self.context.token, &self.processes)
                .with_subagent_depth(self.context.subagent_depth);
        if let Some(sandbox) = self.context.sandbox {
            tool_context = tool_context.with_sandbox(sandbox);
        }
        let workers = self
            .agent
            .limits
            .parallel_tools
            .clamp(1, calls.len().max(1));
        if workers == 1 {
            return calls
                .iter()
                .map(|call| self.call_tool(call, &tool_context))
                .collect();
        }
        let slots: Vec<Mutex<Option<ToolResult>>> =
            calls.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(call) = calls.get(index) else {
                            break;
                        };
                        *slots[index].lock() = Some(self.call_tool(call, &tool_context));
                    }
                });
            }
        });
        slots
            .into_iter()
            .zip(calls)
            .map(|(slot, call)| {
                slot.into_inner().unwrap_or_else(|| ToolResult {
                    tool_use_id: call.id.clone(),
                    content: "not run".to_string(),
                    is_error: true,
                })
            })
            .collect()
    }

    /// One call. Every failure becomes an error result for the model.
    fn call_tool(&self, call: &ToolUse, context: &ToolContext<'_>) -> ToolResult {
        let summary = summarize(&call.input);
        let started = Instant::now();
        self.context.emit(Progress::ToolStarted {
            tool: call.name.clone(),
            summary: summary.clone(),
        });
        let outcome = self.execute(call, context);
        let is_error = outcome.is_err();
        self.context.emit(Progress::ToolFinished {
            tool: call.name.clone(),
            summary,
            duration: started.elapsed(),
            is_error,
        });
        let content = match outcome {
            Ok(text) => text,
            Err(message) => message,
        };
        ToolResult {
            tool_use_id: call.id.clone(),
            content,
            is_error,
        }
    }

    fn execute(&self, call: &ToolUse, context: &ToolContext<'_>) -> Result<String, String> {
        if let Err(error) = self.context.token.check() {
            return Err(format!("not run: {error}"));
        }
        let Some(tool) = self.agent.tools.get(&call.name) else {
            return Err(format!(
                "there is no tool `{}` here; the tools you can call are: {}",
                call.name,
                self.agent.tools.names().join(", ")
            ));
        };
        let input = match &call.input {
            ToolInput::Json { value } => value,
            ToolInput::Invalid { raw, error } => {
                return Err(format!(
                    "the arguments of `{}` are not valid JSON ({error}): {}; send one JSON \
                     object that matches the tool's schema",
                    call.name,
                    crate::llm::preview(raw)
                ));
            }
        };
        if let Err(problem) = validate(&tool.parameters(), input) {
            return Err(format!("invalid arguments for `{}`: {problem}", call.name));
        }
        match catch_unwind(AssertUnwindSafe(|| tool.call(input, context))) {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(error)) if error.kind() == ErrorKind::Tool => Err(error.message().to_string()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(panic) => {
                let message = crate::runtime::panic_message(panic.as_ref());
                log::error!("the tool `{}` panicked: {message}", call.name);
                Err(format!(
                    "the tool `{}` failed unexpectedly ({message}); try another way",
                    call.name
                ))
            }
        }
    }

    /// The final answer: the last assistant text of the run.
    fn best_answer(&self) -> String {
        self.messages
            .iter()
            .rev()
            .filter(|message| message.role == Role::Assistant)
            .map(Message::text)
            .find(|text| !text.trim().is_empty())
            .unwrap_or_default()
    }
}

/// A short summary of a call's arguments for progress lines: the first of `command`,
/// `pattern`, `path`, `file_path`, `url`, `query`, `prompt` (or any string field), quoted,
/// at most 60 characters.
fn summarize(input: &ToolInput) -> String {
    let ToolInput::Json {
        value: Value::Object(fields),
    } = input
    else {
        return String::new();
    };
    let preferred = [
        "command",
        "pattern",
        "path",
        "file_path",
        "url",
        "query",
        "prompt",
    ];
    let text = preferred
        .iter()
        .find_map(|key| fields.get(*key).and_then(Value::as_str))
        .or_else(|| fields.values().find_map(Value::as_str))
        .unwrap_or_default();
    let line = text.lines().next().unwrap_or_default();
    let short: String = line.chars().take(60).collect();
    if short.is_empty() {
        String::new()
    } else if short.len() < text.len() {
        format!("'{short}…'")
    } else {
        format!("'{short}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries_pick_the_telling_field_and_stay_short() {
        let input = |value: Value| ToolInput::Json { value };
        assert_eq!(
            summarize(&input(json!({"pattern": "TODO", "path": "src"}))),
            "'TODO'"
        );
        assert_eq!(
            summarize(&input(json!({"limit": 3, "path": "a.rs"}))),
            "'a.rs'"
        );
        let long = "x".repeat(100);
        assert_eq!(
            summarize(&input(json!({ "command": long })))
                .chars()
                .count(),
            63
        );
        assert_eq!(summarize(&input(json!({"n": 1}))), "");
    }
}
