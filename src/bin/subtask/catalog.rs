//! `subtask agents` and `subtask schema`: what the tool offers, with no model needed.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde_json::{Value, json};
use subtask::subagents::{LoadProblem, SubagentSpec};
use subtask::tools::{ToolRegistry, Workspace, builtin_tools};

use crate::setup::{self, AgentSources, Settings};
use crate::{Failure, SchemaFormat};

/// Lists the subagent types (built-in and from `.subtask/agents/` of the workspace), where
/// each came from, and the files that were set aside.
pub fn agents(cwd: Option<&Path>, as_json: bool, sources: &AgentSources) -> Result<u8, Failure> {
    let workspace = setup::workspace(cwd)?;
    let types = setup::types(&workspace, sources)?;
    let tools = builtin_tools();
    let shown = |path: &Path| {
        path.strip_prefix(workspace.root())
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let text = if as_json {
        let list: Vec<Value> = types
            .iter()
            .map(|spec| {
                json!({
                    "name": spec.name,
                    "description": spec.description,
                    "tools": tool_names(spec, &tools).map_err(|error| error.to_string()).ok(),
                    "read_only": spec.read_only,
                    "model": spec.model,
                    "max_turns": spec.max_turns,
                    "timeout_seconds": spec.timeout.map(|timeout| timeout.as_secs_f64()),
                    "source": spec.source.describe(workspace.root()),
                })
            })
            .collect();
        let notes = |problems: &[LoadProblem]| -> Vec<Value> {
            problems
                .iter()
                .map(|problem| json!({"file": shown(&problem.path), "message": problem.message}))
                .collect()
        };
        if types.problems().is_empty() && types.warnings().is_empty() {
            pretty(&Value::Array(list))
        } else {
            pretty(&json!({
                "types": list,
                "not_loaded": notes(types.problems()),
                "warnings": notes(types.warnings()),
            }))
        }
    } else {
        let mut text = String::new();
        for spec in types.iter() {
            describe(&mut text, spec, &tools, &workspace);
        }
        for (heading, problems) in [
            ("Not loaded", types.problems()),
            ("Warnings", types.warnings()),
        ] {
            if problems.is_empty() {
                continue;
            }
            let _ = writeln!(text, "{heading}:");
            for problem in problems {
                let _ = writeln!(text, "  {}", shown(&problem.path));
                for line in wrap(&problem.message, WIDTH - 4) {
                    let _ = writeln!(text, "    {line}");
                }
            }
            text.push('\n');
        }
        text.trim_end().to_string()
    };
    emit(&text);
    Ok(0)
}

/// One type as a few lines: name and origin, description, tools, and its own settings.
fn describe(text: &mut String, spec: &SubagentSpec, tools: &ToolRegistry, workspace: &Workspace) {
    let _ = writeln!(
        text,
        "{} ({})",
        spec.name,
        spec.source.describe(workspace.root())
    );
    for line in wrap(spec.description.trim(), WIDTH - 2) {
        let _ = writeln!(text, "  {line}");
    }
    let tools = match tool_names(spec, tools) {
        Ok(names) if names.len() == tools.len() => format!("all ({})", names.join(", ")),
        Ok(names) => names.join(", "),
        Err(error) => format!("misconfigured: {error}"),
    };
    let _ = writeln!(text, "  tools: {tools}");
    let mut settings = Vec::new();
    if spec.read_only {
        settings.push("read-only".to_string());
    }
    if let Some(model) = &spec.model {
        settings.push(format!("model {model}"));
    }
    if let Some(turns) = spec.max_turns {
        settings.push(format!("at most {turns} turns"));
    }
    if let Some(timeout) = spec.timeout {
        settings.push(format!("timeout {} s", timeout.as_secs_f64()));
    }
    if !settings.is_empty() {
        let _ = writeln!(text, "  {}", settings.join(", "));
    }
    text.push('\n');
}

/// Columns of the `agents` listing.
const WIDTH: usize = 88;

/// `text` in lines of at most `width` characters, broken between words (a longer word
/// gets a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The tools a run of this type gets (nesting off, as `run` and `mcp` run it).
fn tool_names(spec: &SubagentSpec, tools: &ToolRegistry) -> Result<Vec<String>, subtask::Error> {
    let registry = spec.tool_registry(tools, false, false)?;
    Ok(registry.names().into_iter().map(str::to_string).collect())
}

/// Prints the `task` tool's definition as the workspace would offer it.
pub fn schema(
    cwd: Option<&Path>,
    format: SchemaFormat,
    sources: &AgentSources,
) -> Result<u8, Failure> {
    let workspace = setup::workspace(cwd)?;
    let settings = Settings {
        model: None,
        timeout: None,
        no_transcripts: true,
        agents: sources.clone(),
        set: Vec::new(),
    };
    let tool = setup::task_tool(&workspace, setup::no_model(), &settings, None)?;
    let definition = match format {
        SchemaFormat::Openai => tool.openai_definition(),
        SchemaFormat::Anthropic => tool.anthropic_definition(),
        SchemaFormat::Mcp => subtask::mcp::tool_entry(&tool),
    };
    if let Err(error) = tool.runtime().shutdown(setup::SHUTDOWN_GRACE) {
        log::warn!("{error}");
    }
    emit(&pretty(&definition));
    Ok(0)
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Writes to stdout; a closed stdout (`| head`) is the reader's choice, not an error.
fn emit(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_wrap_between_words() {
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap("a verylongword b", 4), ["a", "verylongword", "b"]);
        assert!(wrap("  ", 10).is_empty());
    }
}
