//! For scripts: [`task`] runs one subagent and returns its answer, on a default runtime
//! built from the environment the first time it is needed.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorKind};
use crate::llm::ModelConfig;
use crate::runtime::Runtime;
use crate::subagents::{SubagentRegistry, Subagents, trust_project_from_env};
use crate::task_tool::{TaskOutput, TaskTool};
use crate::tools::{Workspace, builtin_tools};

/// Runs a subagent of type `subagent_type` on `prompt` in the current directory and
/// returns its final answer. Blocks until it is done.
///
/// The first call builds a runtime with the default settings, the model named by the
/// environment ([`ModelConfig::from_env`]), the built-in tools, and the built-in types
/// plus `.subtask/agents/`; later calls share it.
///
/// ```no_run
/// let answer = subtask::task("explore", "Where are timeouts enforced?")?;
/// println!("{answer}");
/// # Ok::<(), subtask::Error>(())
/// ```
///
/// # Errors
///
/// [`ErrorKind::Config`] when no model is configured (naming the variable to set);
/// [`ErrorKind::InvalidInput`] for an unknown type; the run's error when it did not
/// complete (`Timeout`, `Cancelled`, `Provider`…).
pub fn task(subagent_type: &str, prompt: &str) -> Result<String, Error> {
    Task::new(subagent_type, prompt).run()
}

/// A [`task`] with the optional fields of the `task` tool.
///
/// ```no_run
/// use std::time::Duration;
///
/// let plan = subtask::Task::new("plan", "Add a --verbose flag to the CLI")
///     .model("haiku")
///     .files(["src/main.rs"])
///     .timeout(Duration::from_secs(120))
///     .run()?;
/// # Ok::<(), subtask::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "call run() to run the task"]
pub struct Task {
    fields: Map<String, Value>,
}

impl Task {
    /// A task for a subagent of type `subagent_type`.
    pub fn new(subagent_type: &str, prompt: &str) -> Task {
        let description: String = prompt
            .split_whitespace()
            .take(5)
            .collect::<Vec<_>>()
            .join(" ");
        let mut fields = Map::new();
        fields.insert("description".into(), json!(description));
        fields.insert("prompt".into(), json!(prompt));
        fields.insert("subagent_type".into(), json!(subagent_type));
        Task { fields }
    }

    fn set(mut self, field: &str, value: Value) -> Task {
        self.fields.insert(field.into(), value);
        self
    }

    /// A short description for progress output (defaults to the prompt's first words).
    pub fn description(self, description: &str) -> Task {
        self.set("description", json!(description))
    }

    /// Another model (`provider:model` or an alias).
    pub fn model(self, model: &str) -> Task {
        self.set("model", json!(model))
    }

    /// A directory of the current one to confine the run to.
    pub fn cwd(self, cwd: &str) -> Task {
        self.set("cwd", json!(cwd))
    }

    /// A subset of the type's tools.
    pub fn tools<'a>(self, tools: impl IntoIterator<Item = &'a str>) -> Task {
        self.set("tools", json!(tools.into_iter().collect::<Vec<_>>()))
    }

    /// Withholds write, edit and bash.
    pub fn read_only(self, read_only: bool) -> Task {
        self.set("read_only", json!(read_only))
    }

    /// Background the subagent should know.
    pub fn context(self, context: &str) -> Task {
        self.set("context", json!(context))
    }

    /// Files whose contents are included in the prompt.
    pub fn files<'a>(self, files: impl IntoIterator<Item = &'a str>) -> Task {
        self.set("files", json!(files.into_iter().collect::<Vec<_>>()))
    }

    /// What a good answer looks like.
    pub fn output(self, output: &str) -> Task {
        self.set("output", json!(output))
    }

    /// The run's execution timeout.
    pub fn timeout(self, timeout: Duration) -> Task {
        self.set("timeout_seconds", json!(timeout.as_secs_f64()))
    }

    /// Continues the run with this id.
    pub fn resume(self, run_id: &str) -> Task {
        self.set("resume", json!(run_id))
    }

    /// Runs it and returns the answer.
    ///
    /// # Errors
    ///
    /// As [`task`].
    pub fn run(self) -> Result<String, Error> {
        let output = self.run_output()?;
        let Some(result) = output.results.first() else {
            return Err(Error::invalid_input(output.to_text()));
        };
        if result.is_complete() {
            return Ok(result.answer.clone());
        }
        let kind = match result.status.as_str() {
            "timed_out" => ErrorKind::Timeout,
            "cancelled" => ErrorKind::Cancelled,
            _ => ErrorKind::Other,
        };
        Err(Error::new(kind, output.to_text()))
    }

    /// Runs it and returns the whole result (answer, status, run id, usage).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the default runtime cannot be built.
    pub fn run_output(self) -> Result<TaskOutput, Error> {
        Ok(default_tool()?.call_json(&Value::Object(self.fields)))
    }
}

/// The default tool, built once (its error too, so every call reports it).
fn default_tool() -> Result<&'static TaskTool, Error> {
    static DEFAULT: OnceLock<Result<TaskTool, Error>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            let workspace = Workspace::current_dir()?;
            let mut types = SubagentRegistry::builtin().trust_project(trust_project_from_env());
            types.load_all(&workspace, std::iter::empty::<&Path>())?;
            let model = ModelConfig::from_env()?.build()?;
            let subagents = Subagents::new(model, builtin_tools()).types(types);
            Ok(TaskTool::new(Runtime::new()?, subagents, workspace))
        })
        .as_ref()
        .map_err(Clone::clone)
}
