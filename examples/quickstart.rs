//! The quickstart: a parent agent with the `task` tool answers a question about this
//! repository by delegating three `explore` searches in one parallel call, then answers.
//!
//! With `SUBTASK_MODEL` and a key in the environment it uses that model; without, a
//! scripted model drives the agents, and the subagents' tool calls (ls, grep, read) really
//! run on this repository.
//!
//! Run it with `cargo run --release --example quickstart`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use subtask::agent::{Agent, RunContext};
use subtask::llm::{ChatModel, ModelConfig, ScriptedModel, ScriptedTurn, SentRequest};
use subtask::subagents::{Subagents, Transcripts};
use subtask::task_tool::TaskTool;
use subtask::tools::{ToolRegistry, Workspace, builtin_tools};
use subtask::{CancelToken, Event, EventKind, Progress, Runtime};

const QUESTION: &str = "How does this repository make sure a subagent cannot run past its \
                        time limit, and what happens to its HTTP request and child processes \
                        when it is cancelled? Delegate the searching, then answer in a few \
                        sentences with file paths.";

const PARENT_PROMPT: &str = "You answer questions about a codebase. Delegate broad searches \
                             to explore subagents with the task tool, several at once in one \
                             call when they are independent, then answer from what they \
                             report.";

/// The three searches the scripted parent delegates: (description, what to look for).
const SEARCHES: [(&str, &str); 3] = [
    ("Find the deadline timer", "fn enforce_deadline"),
    ("Find how requests are abandoned", "shutdown()"),
    ("Find how child processes die", "kill_process_group"),
];

fn main() -> Result<(), subtask::Error> {
    env_logger::init();
    let started = Instant::now();
    let (parent_model, subagent_model): (Arc<dyn ChatModel>, Arc<dyn ChatModel>) =
        match ModelConfig::from_env() {
            Ok(config) => {
                let model = config.build()?;
                println!("subtask quickstart, using {}.", model.name());
                (model.clone(), model)
            }
            Err(_) => {
                println!(
                    "subtask quickstart, using a scripted model (no LLM is configured): the \
                     agents' decisions are scripted, their tool calls really run on this \
                     repository. For a real model set SUBTASK_MODEL (e.g. \
                     anthropic:claude-sonnet-4-5 or openai:gpt-4.1-mini) and ANTHROPIC_API_KEY \
                     or OPENAI_API_KEY."
                );
                (Arc::new(scripted_parent()), Arc::new(scripted_explorer()))
            }
        };

    let runtime = Runtime::builder()
        .poll_interval(Duration::from_millis(300))
        .observer(move |event: &Event| print_event(started, event))
        .build()?;
    let workspace = Workspace::current_dir()?;
    let subagents = Subagents::new(subagent_model, builtin_tools()).transcripts(Transcripts::Off);
    let task = TaskTool::new(runtime.clone(), subagents, workspace.clone());
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(task))?;
    let parent = Agent::new(parent_model, PARENT_PROMPT, tools);

    println!("\nquestion: {QUESTION}\n");
    let token = CancelToken::new();
    let parent_progress = |progress: Progress| {
        if let Progress::ToolStarted { tool, .. } = progress {
            println!(
                "  [{:5.2} s] parent calls {tool}",
                started.elapsed().as_secs_f64()
            );
        }
    };
    let context = RunContext::new(&token, &workspace).progress(&parent_progress);
    let result = parent.run(QUESTION, &context);

    // Every event has been delivered once the runtime has shut down.
    runtime.shutdown(Duration::from_secs(5))?;
    println!(
        "\nanswer ({}):\n\n{}\n",
        result.stop_reason.as_str(),
        result.text
    );
    println!("per task:");
    for message in &result.messages {
        for block in &message.content {
            if let subtask::llm::ContentBlock::ToolResult(tool_result) = block {
                for footer in tool_result
                    .content
                    .lines()
                    .filter(|line| line.starts_with("[run "))
                {
                    println!("  {footer}");
                }
            }
        }
    }
    let usage = &result.usage;
    println!(
        "parent: {} turns, {} in / {} out tokens; done in {:.1} s",
        usage.turns,
        usage.tokens.total_input_tokens(),
        usage.tokens.output_tokens,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One progress line per task start, tool call, heartbeat and finish.
fn print_event(started: Instant, event: &Event) {
    let at = started.elapsed().as_secs_f64();
    let line = match &event.kind {
        EventKind::Started { .. } => format!("{} started", event.task),
        EventKind::Progress(_) => match event.kind.progress::<Progress>() {
            Some(Progress::ToolStarted { tool, summary }) => {
                format!("{}   {tool} {summary}", event.task)
            }
            Some(Progress::ToolFinished {
                tool,
                is_error: true,
                ..
            }) => format!("{}   {tool} failed", event.task),
            _ => return,
        },
        EventKind::Heartbeat { elapsed, .. } => {
            format!(
                "{} still working ({:.1} s)",
                event.task,
                elapsed.as_secs_f64()
            )
        }
        EventKind::Finished {
            status, ran_for, ..
        } => format!(
            "{} finished: {status} in {:.2} s",
            event.task,
            ran_for.unwrap_or_default().as_secs_f64()
        ),
        _ => return,
    };
    println!("  [{at:5.2} s] {line}");
}

/// The parent: delegates the three searches in one call, then answers from the results.
fn scripted_parent() -> ScriptedModel {
    ScriptedModel::new((0..4).map(|_| {
        ScriptedTurn::reply(|sent: &SentRequest| match sent.last_tool_result() {
            None => {
                let tasks: Vec<_> = SEARCHES
                    .iter()
                    .map(|(description, pattern)| {
                        json!({
                            "description": description,
                            "prompt": format!("Find where this codebase uses `{pattern}` and what it does there."),
                            "subagent_type": "explore",
                        })
                    })
                    .collect();
                ScriptedTurn::tool_call("task", json!({ "tasks": tasks }))
            }
            Some(report) => {
                let found: Vec<&str> = report
                    .lines()
                    .filter(|line| line.starts_with("- "))
                    .collect();
                ScriptedTurn::text(format!(
                    "Three searches ran at once. The runtime's timer thread ends every task \
                     at its deadline and trips its cancel token; the token's cancel actions \
                     shut the request's HTTP agent down and kill the whole process group of \
                     every command the task started. Where:\n{}",
                    found.join("\n")
                ))
            }
        })
        .delayed(Duration::from_millis(200))
    }))
    .named("parent")
}

/// An explorer: searches `src/` for the pattern in backticks, then reads the spot, then
/// reports. Decided from the conversation alone, so runs sharing it do not interfere.
fn scripted_explorer() -> ScriptedModel {
    ScriptedModel::new((0..64).map(|_| {
        ScriptedTurn::reply(|sent: &SentRequest| {
            let prompt = sent.messages.first().map(|m| m.text()).unwrap_or_default();
            let pattern = prompt.split('`').nth(1).unwrap_or("TODO").to_string();
            let results = sent
                .messages
                .iter()
                .flat_map(|message| &message.content)
                .filter(|block| matches!(block, subtask::llm::ContentBlock::ToolResult(_)))
                .count();
            let last = sent.last_tool_result().unwrap_or_default().to_string();
            // grep's first `path:line:text` match, once grep has run (second result).
            let first_match = sent
                .messages
                .iter()
                .flat_map(|message| &message.content)
                .filter_map(|block| match block {
                    subtask::llm::ContentBlock::ToolResult(result) => Some(result.content.clone()),
                    _ => None,
                })
                .nth(1)
                .and_then(|grep| grep.lines().next().map(str::to_string))
                .unwrap_or_default();
            match results {
                0 => ScriptedTurn::tool_calls([
                    ("ls".to_string(), json!({"path": "src"})),
                    (
                        "grep".to_string(),
                        json!({"pattern": regex_escape(&pattern), "path": "src", "output_mode": "content", "max_results": 3}),
                    ),
                ]),
                2 => {
                    // Read around the first match.
                    let mut parts = first_match.splitn(3, ':');
                    let path = parts.next().unwrap_or("src/lib.rs").to_string();
                    let line: u64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(1);
                    ScriptedTurn::tool_call(
                        "read",
                        json!({"path": path, "offset": line.saturating_sub(2).max(1), "limit": 6}),
                    )
                }
                _ => {
                    let mut parts = first_match.splitn(3, ':');
                    let (path, line, code) = (
                        parts.next().unwrap_or_default(),
                        parts.next().unwrap_or_default(),
                        parts.next().unwrap_or_default().trim(),
                    );
                    ScriptedTurn::text(if path.is_empty() {
                        format!("- `{pattern}`: not found under src/")
                    } else {
                        format!("- `{pattern}`: {path}:{line} (`{code}`), read {} lines around it", last.lines().count())
                    })
                }
            }
        })
        .delayed(Duration::from_millis(150))
    }))
    .named("explorer")
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}
