//! `subtask run`: one task from the flags, or several from a tasks file, through the `task`
//! tool; the answer on stdout, progress on stderr.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use serde_json::{Map, Value, json};
use subtask::task_tool::TaskOutput;

use crate::interrupt::{self, AfterCancel};
use crate::progress::ProgressLines;
use crate::setup::{self, Settings};
use crate::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, Failure};

/// Words of the prompt that make its default description.
const DESCRIPTION_WORDS: usize = 5;
/// Characters a description may have (the tool's limit).
const DESCRIPTION_CHARS: usize = 80;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The task for the subagent; "-" reads it from stdin
    #[arg(value_name = "PROMPT", required_unless_present = "tasks")]
    prompt: Option<String>,

    /// The subagent type (see `subtask agents`)
    #[arg(
        short = 't',
        long = "type",
        value_name = "TYPE",
        default_value = "general-purpose"
    )]
    subagent_type: String,

    /// A few words for progress output [default: the prompt's first words]
    #[arg(short, long, value_name = "TEXT")]
    description: Option<String>,

    /// Run the tasks of a JSON file at once ("-" reads stdin): an array of task objects,
    /// or {"tasks": [...]}
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["prompt", "description", "files", "resume"]
    )]
    tasks: Option<PathBuf>,

    /// Withhold the tools that write or run commands (write, edit, bash)
    #[arg(long)]
    read_only: bool,

    /// Include this file of the workspace in the prompt (repeatable)
    #[arg(short, long = "file", value_name = "PATH")]
    files: Vec<String>,

    /// Continue the run with this id (from an earlier answer's footer)
    #[arg(long, value_name = "RUN_ID")]
    resume: Option<String>,

    #[command(flatten)]
    settings: Settings,

    /// No progress on stderr
    #[arg(short, long)]
    quiet: bool,

    /// Print only the result as JSON on stdout (answers, statuses, run ids, usage); stderr
    /// carries errors only
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
}

/// Runs the command; returns the exit code.
pub fn run(args: RunArgs, cwd: Option<&Path>) -> Result<u8, Failure> {
    let workspace = setup::workspace(cwd)?;
    let arguments = arguments(&args)?;
    let model = args.settings.model()?;
    let observer: Option<Arc<dyn subtask::Observer>> = if args.quiet || args.json {
        None
    } else {
        Some(Arc::new(ProgressLines::new()))
    };
    let tool = setup::task_tool(&workspace, model, &args.settings, observer)?;
    let runtime = tool.runtime().clone();
    interrupt::watch(runtime.clone(), AfterCancel::LetMainFinish);
    let output = tool.call_json(&arguments);
    // Every run has ended; this joins the threads (and delivers the last events).
    if let Err(error) = runtime.shutdown(setup::SHUTDOWN_GRACE) {
        log::warn!("{error}");
    }
    print(&output, args.json);
    Ok(if interrupt::interrupted() {
        EXIT_INTERRUPTED
    } else if output.error.is_some() {
        EXIT_USAGE // refused before anything ran: the flags or the tasks file are at fault
    } else if output.is_error {
        EXIT_FAILED
    } else {
        0
    })
}

/// The result on stdout (JSON, or the text a model would read); a refused call's reason
/// on stderr too, so it is seen even when stdout goes to a file.
fn print(output: &TaskOutput, json: bool) {
    let text = if json {
        serde_json::to_string_pretty(output).unwrap_or_else(|error| {
            json!({"is_error": true, "error": format!("cannot serialise the result: {error}")})
                .to_string()
        })
    } else if output.error.is_some() {
        String::new()
    } else {
        output.to_text()
    };
    if let Some(error) = &output.error {
        eprintln!("subtask: error: invalid task: {error}");
    }
    if !text.is_empty() {
        // A closed stdout (`| head`) is the reader's choice, not an error.
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
}

/// The `task` tool's arguments for these flags.
fn arguments(args: &RunArgs) -> Result<Value, Failure> {
    let mut defaults = Map::new();
    defaults.insert("subagent_type".into(), json!(args.subagent_type));
    if args.read_only {
        defaults.insert("read_only".into(), json!(true));
    }
    if let Some(timeout) = args.settings.timeout {
        defaults.insert("timeout_seconds".into(), json!(timeout.as_secs_f64()));
    }
    if let Some(path) = &args.tasks {
        let tasks = read_tasks(path)?;
        let tasks = tasks
            .into_iter()
            .map(|task| match task {
                Value::Object(task) => Value::Object(with_defaults(task, &defaults)),
                other => other, // the tool names the entry that is not an object
            })
            .collect();
        return Ok(json!({ "tasks": Value::Array(tasks) }));
    }
    let prompt = match args.prompt.as_deref() {
        Some("-") => read_input(Path::new("-"))?,
        Some(prompt) => prompt.to_string(),
        None => return Err(Failure::usage("give a prompt, or --tasks FILE")),
    };
    if prompt.trim().is_empty() {
        return Err(Failure::usage(
            "the prompt is empty: say what the subagent should do",
        ));
    }
    let mut task = Map::new();
    task.insert("prompt".into(), json!(prompt));
    if let Some(description) = &args.description {
        task.insert("description".into(), json!(description));
    }
    if !args.files.is_empty() {
        task.insert("files".into(), json!(args.files));
    }
    if let Some(run_id) = &args.resume {
        task.insert("resume".into(), json!(run_id));
    }
    Ok(Value::Object(with_defaults(task, &defaults)))
}

/// Fills in the fields a task leaves out: the flags' defaults, and a description made of
/// the prompt's first words.
fn with_defaults(
    mut task: Map<String, Value>,
    defaults: &Map<String, Value>,
) -> Map<String, Value> {
    for (field, value) in defaults {
        if task.get(field).is_none_or(Value::is_null) {
            task.insert(field.clone(), value.clone());
        }
    }
    if task.get("description").is_none_or(Value::is_null)
        && let Some(prompt) = task.get("prompt").and_then(Value::as_str)
        && !prompt.trim().is_empty()
    {
        task.insert("description".into(), json!(first_words(prompt)));
    }
    task
}

/// The prompt's first few words, short enough for a description.
fn first_words(prompt: &str) -> String {
    let words: Vec<&str> = prompt.split_whitespace().take(DESCRIPTION_WORDS).collect();
    words.join(" ").chars().take(DESCRIPTION_CHARS).collect()
}

/// The tasks of a tasks file: an array, or an object with a `tasks` array.
fn read_tasks(path: &Path) -> Result<Vec<Value>, Failure> {
    let name = match path.to_str() {
        Some("-") => "stdin".to_string(),
        _ => path.display().to_string(),
    };
    let text = read_input(path)?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|error| Failure::usage(format!("--tasks {name}: not valid JSON: {error}")))?;
    match value {
        Value::Array(tasks) => Ok(tasks),
        Value::Object(mut fields) => match fields.remove("tasks") {
            Some(Value::Array(tasks)) if fields.is_empty() => Ok(tasks),
            _ => Err(Failure::usage(format!(
                "--tasks {name}: expected an array of task objects or {{\"tasks\": [...]}} \
                 and nothing else"
            ))),
        },
        _ => Err(Failure::usage(format!(
            "--tasks {name}: expected an array of task objects or {{\"tasks\": [...]}}"
        ))),
    }
}

/// A file's text, or stdin's for `-`.
fn read_input(path: &Path) -> Result<String, Failure> {
    if path.to_str() == Some("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| Failure::usage(format!("cannot read stdin: {error}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path)
        .map_err(|error| Failure::usage(format!("cannot read {}: {error}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_default_to_the_prompts_first_words() {
        assert_eq!(
            first_words("Find where  the timer\nfires and why"),
            "Find where the timer fires"
        );
        assert_eq!(first_words(&"x".repeat(200)).len(), DESCRIPTION_CHARS);
    }

    #[test]
    fn flags_fill_only_what_a_task_leaves_out() {
        let defaults = json!({"subagent_type": "general-purpose", "read_only": true});
        let task = json!({"prompt": "look around here", "subagent_type": "explore"});
        let filled = with_defaults(
            task.as_object().unwrap().clone(),
            defaults.as_object().unwrap(),
        );
        assert_eq!(
            Value::Object(filled),
            json!({"prompt": "look around here", "subagent_type": "explore", "read_only": true,
                   "description": "look around here"})
        );
    }
}
