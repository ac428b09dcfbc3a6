//! The `task` tool: the one blocking call an LLM uses to hand work to subagents, single or
//! several at once, and to continue an earlier run. The model never sees a task id to poll:
//! the call returns the answers.

use std::fmt::Write as _;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorKind};
use crate::llm::Message;
use crate::runtime::{CancelToken, Observer, Runtime};
use crate::sandbox::Network;
use crate::subagents::{Isolation, SubagentRequest, Subagents, TASK_TOOL, Transcripts};
use crate::tools::{Tool, ToolContext, Workspace};

mod output;

pub use output::{TaskOutput, TaskResult};

/// Tasks in one call's `tasks` array (and runs in one call), at most, by default.
pub const DEFAULT_MAX_PARALLEL: usize = 10;
/// Bytes of one file in `files`, at most, by default.
pub const DEFAULT_MAX_FILE_BYTES: usize = 100 * 1024;
/// Bytes of all `files` of one task, at most, by default.
pub const DEFAULT_MAX_FILES_BYTES: usize = 400 * 1024;
/// Words a `description` may have.
const MAX_DESCRIPTION_WORDS: usize = 10;
/// Characters a `description` may have.
const MAX_DESCRIPTION_CHARS: usize = 80;

const TASK_FIELDS: &[&str] = &[
    "description",
    "prompt",
    "subagent_type",
    "model",
    "models",
    "cwd",
    "tools",
    "read_only",
    "context",
    "files",
    "output",
    "timeout_seconds",
    "resume",
    "network",
];

/// Limits of the `task` tool. The description the model reads is written from these, and
/// they are what is enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskToolConfig {
    /// Runs per call (tasks × models), at most. Defaults to 10.
    pub max_parallel: usize,
    /// The largest `timeout_seconds` a call may ask for. Defaults to the runtime's
    /// execution timeout.
    pub max_timeout: Option<Duration>,
    /// Bytes of one file in `files`. Defaults to 100 KiB.
    pub max_file_bytes: usize,
    /// Bytes of all `files` of one task. Defaults to 400 KiB.
    pub max_files_bytes: usize,
}

impl Default for TaskToolConfig {
    fn default() -> TaskToolConfig {
        TaskToolConfig {
            max_parallel: DEFAULT_MAX_PARALLEL,
            max_timeout: None,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_files_bytes: DEFAULT_MAX_FILES_BYTES,
        }
    }
}

/// The `task` tool.
///
/// ```
/// use std::sync::Arc;
/// use serde_json::json;
/// use subtask::llm::{ScriptedModel, ScriptedTurn};
/// use subtask::subagents::{Subagents, Transcripts};
/// use subtask::task_tool::TaskTool;
/// use subtask::tools::{builtin_tools, Workspace};
/// use subtask::Runtime;
///
/// let model = Arc::new(ScriptedModel::new([ScriptedTurn::text("The timer lives in timer.rs.")]));
/// let subagents = Subagents::new(model, builtin_tools()).transcripts(Transcripts::Off);
/// let task = TaskTool::new(Runtime::new()?, subagents, Workspace::current_dir()?);
/// let output = task.call_json(&json!({
///     "description": "Find the timer",
///     "prompt": "Where is the runtime's timer?",
///     "subagent_type": "explore",
/// }));
/// assert!(!output.is_error);
/// assert!(output.to_text().starts_with("The timer lives in timer.rs."));
/// # Ok::<(), subtask::Error>(())
/// ```
#[derive(Clone)]
pub struct TaskTool {
    runtime: Runtime,
    subagents: Subagents,
    workspace: Workspace,
    config: TaskToolConfig,
    /// How deep in subagents the runs this tool starts are (0 for the host's own agent).
    depth: u32,
    /// Written from the settings above whenever they change.
    description: String,
}

/// How a host follows and stops one `task` call: an observer of its runs' events and a
/// token that cancels them. The MCP server gives each `tools/call` its own.
///
/// ```
/// use subtask::task_tool::CallOptions;
/// use subtask::{CancelToken, Event};
///
/// let token = CancelToken::new();
/// let options = CallOptions::new()
///     .observer(|event: &Event| eprintln!("{event}"))
///     .cancel_token(token.clone());
/// // task.call_json_with(&arguments, &options) on a thread; `token.cancel()` stops its runs.
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
pub struct CallOptions {
    observer: Option<Arc<dyn Observer>>,
    cancel: Option<CancelToken>,
    trace: Option<Arc<str>>,
}

impl CallOptions {
    /// No observer, no token: what [`TaskTool::call_json`] uses.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// Sees the events of this call's runs (and no other task's), after the runtime's
    /// observers. Defaults to none.
    pub fn observer(mut self, observer: impl Observer + 'static) -> CallOptions {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Tripping `token` cancels every run of the call (the call then returns with those
    /// runs `cancelled`); a token tripped before the call cancels each run as it is
    /// submitted. Defaults to none.
    pub fn cancel_token(mut self, token: CancelToken) -> CallOptions {
        self.cancel = Some(token);
        self
    }

    /// A trace context (e.g. the W3C `traceparent` of the request that made the call)
    /// carried on every event of the call's runs ([`Event::trace`](crate::Event::trace)).
    /// Defaults to none.
    pub fn trace(mut self, trace: impl Into<Arc<str>>) -> CallOptions {
        self.trace = Some(trace.into());
        self
    }
}

impl std::fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("observer", &self.observer.is_some())
            .field("cancel", &self.cancel)
            .field("trace", &self.trace)
            .finish()
    }
}

/// One run, checked and ready to submit.
struct Planned {
    description: String,
    subagent: String,
    /// The file that defined the type, if one did.
    type_source: Option<String>,
    workspace: Workspace,
    request: SubagentRequest,
}

impl TaskTool {
    /// The tool for a host's agent: runs go to `runtime`, with `subagents`' types, tools and
    /// models, confined to `workspace` (or a `cwd` inside it).
    pub fn new(runtime: Runtime, subagents: Subagents, workspace: Workspace) -> TaskTool {
        // Every run of this tool keeps its transcript with the tool's own workspace, even
        // one confined to a `cwd` below it, so its run id alone finds it again.
        let subagents = match subagents.transcript_store(&workspace) {
            Ok(Some(store)) if *subagents.transcripts_mode() == Transcripts::PerUser => {
                subagents.transcripts(Transcripts::In(store.dir().to_path_buf()))
            }
            _ => subagents,
        };
        let mut tool = TaskTool {
            runtime,
            subagents,
            workspace,
            config: TaskToolConfig::default(),
            depth: 0,
            description: String::new(),
        };
        tool.description = tool.describe();
        tool
    }

    /// The tool a subagent run at nesting `depth - 1` is given when
    /// [`Subagents::max_depth`] allows it: its runs are at `depth`.
    pub(crate) fn nested(
        runtime: Runtime,
        subagents: Subagents,
        workspace: Workspace,
        depth: u32,
    ) -> TaskTool {
        let mut tool = TaskTool::new(runtime, subagents, workspace);
        tool.depth = depth;
        tool.description = tool.describe();
        tool
    }

    /// Sets the limits.
    pub fn with_config(mut self, config: TaskToolConfig) -> TaskTool {
        self.config = config;
        self.description = self.describe();
        self
    }

    /// The limits.
    pub fn config(&self) -> &TaskToolConfig {
        &self.config
    }

    /// The runtime the runs go to.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The most runs of one call that execute at once (the rest queue).
    fn concurrent(&self) -> usize {
        self.config
            .max_parallel
            .min(self.runtime.config().execution_threads())
    }

    fn max_timeout(&self) -> Duration {
        self.config
            .max_timeout
            .unwrap_or_else(|| self.runtime.config().execution_timeout())
    }

    /// The tool's description for the model, written from the live configuration: the
    /// types and their tools, the parallel limit, the timeouts.
    pub fn description(&self) -> &str {
        &self.description
    }

    fn describe(&self) -> String {
        let runtime = self.runtime.config();
        let mut text = String::from(
            "Hand a task to a subagent and get its final answer back. The call blocks until \
             every subagent it started has finished; the answers are this tool's output \
             (there is no task id to poll and nothing to fetch later).\n\nSubagent types \
             (`subagent_type`):\n",
        );
        let all = self.subagents.all_tools();
        for spec in self.subagents.registry().iter() {
            let tools = match spec.tool_registry(all, false, self.nesting_allowed()) {
                Ok(tools) if tools.len() == all.len() => "all tools".to_string(),
                Ok(tools) => format!("tools: {}", tools.names().join(", ")),
                Err(_) => "misconfigured".to_string(),
            };
            let isolation = match spec.isolation {
                Isolation::Worktree => "; each run in a git worktree of its own",
                _ => "",
            };
            let origin = match spec.source.path() {
                Some(_) => format!("; {}", spec.source.describe(self.workspace.root())),
                None => String::new(),
            };
            let _ = writeln!(
                text,
                "- {}: {} ({tools}{isolation}{origin})",
                spec.name, spec.description
            );
        }
        let example_type = self
            .subagents
            .registry()
            .iter()
            .find(|spec| spec.read_only)
            .or_else(|| self.subagents.registry().iter().next())
            .map_or("explore", |spec| spec.name.as_str());
        let _ = write!(
            text,
            "\nWhen to use it: broad searches across a codebase, research that needs many \
             reads, and independent pieces of work that can run side by side. When not to: \
             to read a file whose path you know, or to search for a specific name in a few \
             known files; do that yourself, it is faster. When a type's description says to \
             use it proactively, do so without being asked.\n\nSeveral independent tasks \
             belong in ONE call: put them in `tasks` (1 to {max}); {concurrent} run at once \
             and the rest wait for a slot. Do not make several calls in a row for independent \
             work. For example:\n{{\"tasks\": [{{\"description\": \"Find the timer\", \
             \"prompt\": \"Where are task deadlines enforced? Name the files and functions.\", \
             \"subagent_type\": \"{example_type}\"}}, {{\"description\": \"Find the retries\", \
             \"prompt\": \"Where are failed HTTP requests retried, and how often?\", \
             \"subagent_type\": \"{example_type}\"}}]}}\n\nWriting the prompt: a subagent \
             starts with no memory of this conversation, so give it the goal, what you \
             already know, the constraints, and what to return; use `context`, `files` and \
             `output` for background, relevant files and the shape of a good answer. Say \
             plainly whether it should write code or only research. Read-only types cannot \
             change files; subagents cannot see each other's work, so never give two tasks \
             that write the same files at once (unless their type works in a git worktree of \
             its own: its changes come back on a branch named in the footer). The user does not see a subagent's answer: \
             tell them what matters in it yourself.\n\nLimits: a run may take {execution} \
             (set `timeout_seconds` to at most {max_timeout}); a run still waiting for a slot \
             after {queue} fails. `model` names another model for a run (the subagent's own, \
             or yours, by default): {models}; `models` lists several to ask the same question \
             of each (read-only runs only). Subagents' shell commands run in a sandbox with \
             no network access unless the call sets `network: \"on\"` (or the type allows \
             it). Each answer ends with a footer line giving its run id: pass it as `resume` \
             to continue that subagent's conversation.",
            max = self.config.max_parallel,
            concurrent = self.concurrent(),
            execution = seconds(runtime.execution_timeout()),
            max_timeout = seconds(self.max_timeout()),
            queue = seconds(runtime.queue_timeout()),
            models = model_names(),
        );
        text
    }

    fn nesting_allowed(&self) -> bool {
        self.subagents.nesting_allowed(self.depth)
    }

    /// The JSON Schema of the tool's arguments.
    pub fn parameters(&self) -> Value {
        let types: Vec<&str> = self.subagents.registry().names();
        let task = json!({
            "description": {"type": "string", "description": "A short (3-5 word) description of the task, shown in progress output."},
            "prompt": {"type": "string", "description": "The task for the subagent: complete on its own, since it cannot see this conversation."},
            "subagent_type": {"type": "string", "enum": types, "description": "The kind of subagent to run."},
            "model": {"type": "string", "description": "A model for this run: an alias such as sonnet, haiku or mini, or provider:model."},
            "models": {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "Several models to run the same read-only task on, one run each (instead of `model`)."},
            "cwd": {"type": "string", "description": "A directory inside the workspace to confine the run to."},
            "tools": {"type": "array", "items": {"type": "string"}, "description": "A subset of the type's tools."},
            "read_only": {"type": "boolean", "description": "Withhold write, edit and bash."},
            "context": {"type": "string", "description": "Background the subagent should know."},
            "files": {"type": "array", "items": {"type": "string"}, "description": "Paths inside the run's workspace (relative to `cwd` when it is set) whose contents are included in the prompt."},
            "output": {"type": "string", "description": "What a good answer looks like."},
            "timeout_seconds": {"type": "number", "minimum": 0.001, "maximum": self.max_timeout().as_secs_f64(), "description": "A shorter or longer execution timeout for this run."},
            "resume": {"type": "string", "description": "The run id from an earlier answer's footer, to continue that conversation with this prompt."},
            "network": {"type": "string", "enum": ["on", "off"], "description": "Whether the run's shell commands may reach the network; defaults to the subagent type's setting (off unless the type says on). Turn it on only for tasks that must download or call a service."},
        });
        let mut properties = task.as_object().cloned().unwrap_or_default();
        // Only keywords every provider's function declarations accept (Gemini's refuse
        // `anyOf`, `exclusiveMinimum` and `additionalProperties`); the call is checked in
        // full by `plan`, which names any unknown field.
        let item = json!({
            "type": "object",
            "properties": Value::Object(properties.clone()),
            "required": ["description", "prompt", "subagent_type"],
        });
        properties.insert(
            "tasks".into(),
            json!({
                "type": "array",
                "items": item,
                "minItems": 1,
                "maxItems": self.config.max_parallel,
                "description": "Several independent tasks to run at once, in place of the single-task fields."
            }),
        );
        json!({
            "type": "object",
            "properties": Value::Object(properties),
        })
    }

    /// The definition in OpenAI's `tools` format.
    pub fn openai_definition(&self) -> Value {
        json!({"type": "function", "function": {
            "name": TASK_TOOL,
            "description": self.description(),
            "parameters": self.parameters(),
        }})
    }

    /// The definition in Anthropic's `tools` format.
    pub fn anthropic_definition(&self) -> Value {
        json!({
            "name": TASK_TOOL,
            "description": self.description(),
            "input_schema": self.parameters(),
        })
    }

    /// The entry of an MCP `tools/list` result.
    pub fn mcp_definition(&self) -> Value {
        json!({
            "name": TASK_TOOL,
            "title": "Run subagents",
            "description": self.description(),
            "inputSchema": self.parameters(),
        })
    }

    /// Runs a call given as JSON text: the form models send.
    pub fn call_str(&self, arguments: &str) -> TaskOutput {
        match serde_json::from_str::<Value>(arguments) {
            Ok(value) => self.call_json(&value),
            Err(error) => TaskOutput::invalid(format!(
                "the arguments are not valid JSON ({error}); send one JSON object"
            )),
        }
    }

    /// Runs a call: checks every task first (a bad one runs none), submits them all,
    /// then waits for each, keeping every answer in request order.
    pub fn call_json(&self, arguments: &Value) -> TaskOutput {
        self.call_json_with(arguments, &CallOptions::new())
    }

    /// [`call_json`](Self::call_json), observed and cancellable as `options` say.
    pub fn call_json_with(&self, arguments: &Value, options: &CallOptions) -> TaskOutput {
        self.call_at(arguments, options, self.depth)
    }

    /// Runs a call whose runs are at nesting `depth`.
    fn call_at(&self, arguments: &Value, options: &CallOptions, depth: u32) -> TaskOutput {
        let started = Instant::now();
        let planned = match self.plan(arguments, depth) {
            Ok(planned) => planned,
            Err(message) => return TaskOutput::invalid(message),
        };
        // Kept until every run has ended; dropping them unregisters the cancel actions.
        let mut cancel_guards = Vec::new();
        let submitted: Vec<_> = planned
            .into_iter()
            .map(|plan| {
                if options
                    .cancel
                    .as_ref()
                    .is_some_and(CancelToken::is_cancelled)
                {
                    // A call cancelled before this run was submitted starts nothing more.
                    let error = Error::new(
                        ErrorKind::Cancelled,
                        "the call was cancelled before this run started",
                    );
                    return (plan, Err(error));
                }
                let mut request = plan.request.clone();
                request.trace = options.trace.clone();
                let handle = self.subagents.spawn_observed(
                    &self.runtime,
                    &plan.workspace,
                    request,
                    options.observer.clone(),
                );
                if let (Some(token), Ok(handle)) = (&options.cancel, &handle) {
                    let runtime = self.runtime.clone();
                    let id = handle.task_id().clone();
                    cancel_guards.push(token.on_cancel(move || {
                        runtime.cancel(id.as_str());
                    }));
                }
                (plan, handle)
            })
            .collect();
        let results: Vec<TaskResult> = submitted
            .into_iter()
            .map(|(plan, handle)| match handle {
                Ok(handle) => TaskResult::from_outcome(&plan, handle.wait()),
                Err(error) => TaskResult::from_error(&plan, None, &error),
            })
            .collect();
        drop(cancel_guards);
        TaskOutput::new(results, started.elapsed())
    }

    /// Checks the arguments and turns them into runs.
    fn plan(&self, arguments: &Value, depth: u32) -> Result<Vec<Planned>, String> {
        let Some(fields) = arguments.as_object() else {
            return Err("the arguments must be a JSON object".into());
        };
        let mut planned = Vec::new();
        if let Some(tasks) = fields.get("tasks") {
            if let Some(field) = TASK_FIELDS
                .iter()
                .find(|field| fields.contains_key(**field))
            {
                return Err(format!(
                    "use either `tasks` or the single-task fields, not both (`{field}` is set too)"
                ));
            }
            if let Some(unknown) = fields.keys().find(|key| *key != "tasks") {
                return Err(unknown_field(unknown, ""));
            }
            let Some(tasks) = tasks.as_array() else {
                return Err("`tasks` must be an array of task objects".into());
            };
            if tasks.is_empty() || tasks.len() > self.config.max_parallel {
                return Err(format!(
                    "`tasks` must hold 1 to {} tasks; it holds {}",
                    self.config.max_parallel,
                    tasks.len()
                ));
            }
            for (index, task) in tasks.iter().enumerate() {
                let at = format!("tasks[{index}].");
                let Some(task) = task.as_object() else {
                    return Err(format!("`tasks[{index}]` must be an object"));
                };
                planned.extend(self.plan_one(task, &at, depth)?);
            }
        } else {
            planned.extend(self.plan_one(fields, "", depth)?);
        }
        let mut resumed: Vec<&str> = planned
            .iter()
            .filter_map(|plan| plan.request.run_id.as_deref())
            .collect();
        resumed.sort_unstable();
        if let Some(twice) = resumed.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(format!(
                "run '{}' is resumed twice in one call; resume a run once at a time",
                twice[0]
            ));
        }
        if planned.len() > self.config.max_parallel {
            return Err(format!(
                "this call would start {} runs (tasks × models); at most {} may run in one call",
                planned.len(),
                self.config.max_parallel
            ));
        }
        Ok(planned)
    }

    fn plan_one(
        &self,
        task: &Map<String, Value>,
        at: &str,
        depth: u32,
    ) -> Result<Vec<Planned>, String> {
        if let Some(unknown) = task.keys().find(|key| !TASK_FIELDS.contains(&key.as_str())) {
            return Err(unknown_field(unknown, at));
        }
        let text = |field: &str, required: bool| -> Result<Option<String>, String> {
            match task.get(field) {
                None | Some(Value::Null) if required => Err(format!("`{at}{field}` is required")),
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(value)) if required && value.trim().is_empty() => {
                    Err(format!("`{at}{field}` is empty"))
                }
                Some(Value::String(value)) => Ok(Some(value.clone())),
                Some(_) => Err(format!("`{at}{field}` must be a string")),
            }
        };
        let strings = |field: &str| -> Result<Option<Vec<String>>, String> {
            match task.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .map(Some)
                    .ok_or_else(|| format!("`{at}{field}` must be an array of strings")),
                Some(_) => Err(format!("`{at}{field}` must be an array of strings")),
            }
        };
        let description = text("description", true)?.unwrap_or_default();
        let words = description.split_whitespace().count();
        if words > MAX_DESCRIPTION_WORDS || description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(format!(
                "`{at}description` should be a few words (3-5); it has {words} words and {} \
                 characters: put the details in `prompt`",
                description.chars().count()
            ));
        }
        let prompt = text("prompt", true)?.unwrap_or_default();
        let subagent = text("subagent_type", true)?.unwrap_or_default();
        let Some(spec) = self.subagents.registry().get(&subagent) else {
            return Err(format!(
                "`{at}subagent_type` '{subagent}' is not a subagent type; the types are: {}",
                self.subagents.registry().names().join(", ")
            ));
        };
        let type_source = spec
            .source
            .path()
            .map(|_| spec.source.describe(self.workspace.root()));
        let read_only = match task.get("read_only") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(read_only)) => *read_only,
            Some(_) => return Err(format!("`{at}read_only` must be true or false")),
        };
        // `models` is the list form; a list in `model` is accepted too.
        let (model_field, model_value) = match (task.get("model"), task.get("models")) {
            (Some(model), Some(models)) if !model.is_null() && !models.is_null() => {
                return Err(format!(
                    "set `{at}model` (one model) or `{at}models` (several), not both"
                ));
            }
            (Some(model), _) if !model.is_null() => ("model", Some(model)),
            (_, models) => ("models", models),
        };
        let models: Vec<Option<String>> = match model_value {
            None | Some(Value::Null) => vec![None],
            Some(Value::String(model)) => vec![Some(model.clone())],
            Some(Value::Array(_)) => {
                let models = strings(model_field)?.unwrap_or_default();
                if models.is_empty() {
                    return Err(format!("`{at}{model_field}` lists no models"));
                }
                let isolated = spec.isolation == Isolation::Worktree;
                if models.len() > 1 && !(read_only || spec.read_only || isolated) {
                    return Err(format!(
                        "`{at}{model_field}` lists {} models, which would run the same task {} times in \
                         one workspace; set `read_only: true` (or use a read-only type such as \
                         explore or plan, or a type with `isolation: worktree`) so no two runs \
                         write at once",
                        models.len(),
                        models.len()
                    ));
                }
                models.into_iter().map(Some).collect()
            }
            Some(_) => {
                return Err(format!(
                    "`{at}{model_field}` must be a model name or an array of model names"
                ));
            }
        };
        for model in models.iter().flatten() {
            if let Err(error) = self.subagents.resolve_model(model) {
                return Err(format!("`{at}{model_field}`: {}", error.message()));
            }
        }
        let (run_id, history, resumed_in) = match text("resume", false)? {
            None => (None, None, None),
            Some(_) if models.len() > 1 => {
                return Err(format!(
                    "`{at}resume` continues one run, so it cannot go with several models; \
                     name one `model` or none"
                ));
            }
            Some(run_id) => {
                let (history, workspace) = self
                    .history(&run_id)
                    .map_err(|error| format!("`{at}resume`: {}", error.message()))?;
                (Some(run_id), Some(history), workspace)
            }
        };
        let workspace = match text("cwd", false)? {
            // A resumed run works where the run did, unless told otherwise.
            None => resumed_in.unwrap_or_else(|| self.workspace.clone()),
            Some(cwd) => {
                // Opened beneath the workspace root, keeping its write rules.
                self.workspace
                    .subdirectory(&cwd)
                    .map_err(|error| format!("`{at}cwd`: {}", error.message()))?
            }
        };
        let tools = strings("tools")?;
        let available = spec
            .tool_registry(
                self.subagents.all_tools(),
                read_only,
                self.subagents.nesting_allowed(depth),
            )
            .map_err(|error| error.message().to_string())?;
        if let Some(tools) = &tools
            && let Some(missing) = tools.iter().find(|name| available.get(name).is_none())
        {
            return Err(format!(
                "`{at}tools`: '{missing}' is not one of this run's tools; they are: {}",
                available.names().join(", ")
            ));
        }
        let timeout = match task.get("timeout_seconds") {
            None | Some(Value::Null) => None,
            Some(value) => {
                let max = self.max_timeout();
                match value.as_f64() {
                    Some(seconds) if seconds >= 0.001 && seconds <= max.as_secs_f64() => {
                        Some(Duration::from_secs_f64(seconds))
                    }
                    _ => {
                        return Err(format!(
                            "`{at}timeout_seconds` must be a number of seconds from 0.001 to {}",
                            max.as_secs_f64()
                        ));
                    }
                }
            }
        };
        let network = match task.get("network") {
            None | Some(Value::Null) => None,
            Some(Value::String(value)) if matches!(value.as_str(), "on" | "off") => {
                Network::parse(value)
            }
            Some(_) => return Err(format!("`{at}network` must be \"on\" or \"off\"")),
        };
        let full_prompt = self.compose(
            &prompt,
            text("context", false)?.as_deref(),
            strings("files")?.as_deref().unwrap_or_default(),
            text("output", false)?.as_deref(),
            &workspace,
            at,
        )?;
        Ok(models
            .into_iter()
            .map(|model| Planned {
                description: description.clone(),
                subagent: subagent.clone(),
                type_source: type_source.clone(),
                workspace: workspace.clone(),
                request: SubagentRequest {
                    subagent: subagent.clone(),
                    prompt: full_prompt.clone(),
                    model,
                    tools: tools.clone(),
                    read_only,
                    history: history.clone(),
                    depth,
                    timeout,
                    run_id: run_id.clone(),
                    network,
                    trace: None,
                },
            })
            .collect())
    }

    /// The conversation of an earlier run, from its transcript, and the workspace it ran in
    /// (if recorded and still inside this tool's).
    fn history(&self, run_id: &str) -> Result<(Vec<Message>, Option<Workspace>), Error> {
        let valid = !run_id.is_empty()
            && run_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(Error::invalid_input(format!(
                "'{run_id}' is not a run id; use the id from an earlier answer's footer"
            )));
        }
        let Some(store) = self.subagents.transcript_store(&self.workspace)? else {
            return Err(Error::invalid_input(
                "transcripts are off here, so no run can be resumed",
            ));
        };
        let messages = store.messages(run_id)?;
        if messages.is_empty() {
            return Err(Error::invalid_input(format!(
                "the transcript of run '{run_id}' holds no messages"
            )));
        }
        let Some(recorded) = store.workspace(run_id)? else {
            return Ok((messages, None));
        };
        // The path is compared once canonical: `<workspace>/../..` names no place inside.
        let relative = std::fs::canonicalize(&recorded).ok().and_then(|path| {
            let relative = path.strip_prefix(self.workspace.root()).ok()?;
            Some(relative.to_str()?.to_string())
        });
        let Some(relative) = relative else {
            return Err(Error::invalid_input(format!(
                "run '{run_id}' cannot be resumed here: its transcript names the workspace {}, \
                 which is not {} or a directory inside it (or no longer exists); a run resumes \
                 only in the workspace it ran in",
                recorded.display(),
                self.workspace.root().display()
            )));
        };
        let relative = if relative.is_empty() { "." } else { &relative };
        Ok((messages, Some(self.workspace.subdirectory(relative)?)))
    }

    /// The prompt with its context, files and expected output.
    fn compose(
        &self,
        prompt: &str,
        context: Option<&str>,
        files: &[String],
        output: Option<&str>,
        workspace: &Workspace,
        at: &str,
    ) -> Result<String, String> {
        let mut text = prompt.trim().to_string();
        if let Some(context) = context.filter(|context| !context.trim().is_empty()) {
            let _ = write!(text, "\n\n## Context\n\n{}", context.trim());
        }
        if !files.is_empty() {
            text.push_str("\n\n## Files");
            let mut total = 0usize;
            for file in files {
                // Opened beneath the workspace root: regular files only, never blocking,
                // and never more read than the cap allows.
                let opened = workspace
                    .open_read(file)
                    .map_err(|error| format!("`{at}files`: {}", error.message()))?;
                if opened.metadata.is_dir() {
                    return Err(format!(
                        "`{at}files`: '{file}' is a directory; name the files in it"
                    ));
                }
                let too_large = |size: u64| {
                    format!(
                        "`{at}files`: '{file}' has {size} bytes, more than the {} a file may \
                         have; name the part that matters in the prompt instead",
                        self.config.max_file_bytes
                    )
                };
                let cap = self.config.max_file_bytes as u64;
                if opened.metadata.len() > cap {
                    return Err(too_large(opened.metadata.len()));
                }
                let mut bytes = Vec::with_capacity(opened.metadata.len() as usize);
                opened
                    .file
                    .take(cap + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|error| format!("`{at}files`: cannot read '{file}': {error}"))?;
                if bytes.len() as u64 > cap {
                    return Err(too_large(bytes.len() as u64)); // it grew while being read
                }
                total += bytes.len();
                if total > self.config.max_files_bytes {
                    return Err(format!(
                        "`{at}files` come to more than {} bytes; include fewer",
                        self.config.max_files_bytes
                    ));
                }
                let content = String::from_utf8(bytes).map_err(|_| {
                    format!("`{at}files`: '{file}' is not text; include only text files")
                })?;
                let _ = write!(
                    text,
                    "\n\n### {}\n\n```\n{}\n```",
                    workspace.relative(&opened.path),
                    content.trim_end()
                );
            }
        }
        if let Some(output) = output.filter(|output| !output.trim().is_empty()) {
            let _ = write!(text, "\n\n## What to return\n\n{}", output.trim());
        }
        Ok(text)
    }
}

impl std::fmt::Debug for TaskTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskTool")
            .field("workspace", &self.workspace)
            .field("config", &self.config)
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

impl Tool for TaskTool {
    fn name(&self) -> &str {
        TASK_TOOL
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        TaskTool::parameters(self)
    }

    fn call(&self, input: &Value, context: &ToolContext<'_>) -> Result<String, Error> {
        // A nested run's commands cannot get the network its caller's commands lack.
        let caller = context.sandbox();
        if context.subagent_depth().is_some()
            && caller.is_confined()
            && caller.network_access() == Network::Off
        {
            let asks_network =
                |task: &Value| task.get("network").and_then(Value::as_str) == Some("on");
            let tasks = input.get("tasks").and_then(Value::as_array);
            if asks_network(input) || tasks.is_some_and(|tasks| tasks.iter().any(asks_network)) {
                return Err(Error::tool(
                    "`network: \"on\"` is refused: this subagent's own commands have no network \
                     access, so the subagents it starts cannot have it either; leave `network` \
                     out",
                ));
            }
        }
        // Depth is counted from the caller, whoever built this tool: a subagent at depth
        // d starts runs at d + 1, and only while d is below the limit.
        let depth = match context.subagent_depth() {
            None => self.depth,
            Some(caller) => {
                if !self.subagents.nesting_allowed(caller) {
                    return Err(Error::tool(format!(
                        "subagents at depth {caller} may not start subagents: nesting is \
                         limited to {} level(s); do this part of the work yourself",
                        self.subagents.nesting_limit()
                    )));
                }
                self.depth.max(caller + 1)
            }
        };
        // Runs started by a run end with it: cancelling the caller cancels them.
        let options = CallOptions::new().cancel_token(context.token().clone());
        let output = self.call_at(input, &options, depth);
        if output.is_error {
            Err(Error::tool(output.to_text()))
        } else {
            Ok(output.to_text())
        }
    }
}

/// The model names a run may give, for the description: the aliases and the
/// `provider:model` form.
fn model_names() -> String {
    let aliases: Vec<&str> = crate::llm::aliases().map(|(alias, _)| alias).collect();
    format!(
        "{}, or provider:model (openai:…, anthropic:…, openai-compat:…); a model whose \
         provider has no key here is refused before anything runs",
        aliases.join(", ")
    )
}

fn unknown_field(field: &str, at: &str) -> String {
    format!(
        "unknown field `{at}{field}`; the fields are: {}{}",
        TASK_FIELDS.join(", "),
        if at.is_empty() { ", tasks" } else { "" }
    )
}

fn seconds(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds.fract() == 0.0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{seconds:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(seconds(Duration::from_secs(300)), "300 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
    }
}
