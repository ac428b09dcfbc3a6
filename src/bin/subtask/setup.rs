//! What every command builds: the workspace, the model, and the `task` tool over a runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use subtask::llm::{ChatModel, FunctionModel, ModelConfig};
use subtask::subagents::{SubagentRegistry, Subagents, Transcripts};
use subtask::task_tool::TaskTool;
use subtask::tools::{Workspace, builtin_tools};
use subtask::{Observer, Runtime};

use crate::Failure;

/// How long the runtime gives runs to return once cancelled, at exit.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The settings `run` and `mcp` share.
#[derive(Debug, Args)]
pub struct Settings {
    /// The model: provider:model or an alias (sonnet, haiku, mini…) [default: $SUBTASK_MODEL]
    #[arg(short, long, value_name = "MODEL")]
    pub model: Option<String>,

    /// Execution timeout of each run, in seconds, and the longest a task may ask for
    /// [default: 300, or the subagent type's own]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    /// Keep no transcripts (by default each run writes <run-id>.jsonl under
    /// $XDG_STATE_HOME/subtask/transcripts/, which --resume reads)
    #[arg(long)]
    pub no_transcripts: bool,

    /// A model setting, repeatable: reasoning_effort, thinking_budget, stream,
    /// stream_options, max_tokens_field, first_byte_timeout, stall_timeout, max_retries,
    /// prompt_caching, header.NAME, body.NAME [also: $SUBTASK_MODEL_SETTINGS]
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,

    #[command(flatten)]
    pub agents: AgentSources,
}

/// Where subagent types come from, beside the built-in ones, the user's directories
/// (~/.claude/agents, ~/.config/subtask/agents) and the workspace's (.claude/agents,
/// .subtask/agents).
#[derive(Debug, Clone, Default, Args)]
pub struct AgentSources {
    /// Also load subagent types from the Markdown files in DIR (yours: they may replace
    /// built-in types; the last DIR wins); may be repeated
    #[arg(long = "agents-dir", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,

    /// Let the workspace's agent files (.claude/agents, .subtask/agents) replace built-in
    /// and your own types of the same name; only for repositories you trust
    /// [env: SUBTASK_TRUST_PROJECT_AGENTS=1]
    #[arg(long)]
    pub trust_project_agents: bool,
}

/// A number of seconds, at least 0.001.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(seconds.is_finite() && seconds >= 0.001) {
        return Err(format!("'{text}': give at least 0.001 seconds"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("'{text}' is too long"))
}

impl Settings {
    /// The model: `--model`, else the environment's.
    ///
    /// # Errors
    ///
    /// A usage failure naming the variable or flag to set.
    pub fn model(&self) -> Result<Arc<dyn ChatModel>, Failure> {
        let config = match &self.model {
            Some(spec) => ModelConfig::parse(spec)
                .map(ModelConfig::with_env)
                .map_err(|error| error.with_context("--model"))
                .and_then(|mut config| {
                    // from_env applies these itself; with --model they still apply.
                    match std::env::var(subtask::llm::SETTINGS_VAR) {
                        Ok(pairs) => config.set_all(&pairs).map(|()| config).map_err(|error| {
                            error.with_context(subtask::llm::SETTINGS_VAR.to_string())
                        }),
                        Err(_) => Ok(config),
                    }
                }),
            None => ModelConfig::from_env().map_err(|error| {
                subtask::Error::config(format!("{}; or pass --model", error.message()))
            }),
        };
        let mut config = config?;
        for pair in &self.set {
            config
                .set_pair(pair)
                .map_err(|error| error.with_context("--set"))?;
        }
        Ok(config.build()?)
    }
}

/// The workspace: `--cwd`, else the current directory.
pub fn workspace(cwd: Option<&Path>) -> Result<Workspace, Failure> {
    let workspace = match cwd {
        Some(dir) => Workspace::new(dir),
        None => Workspace::current_dir(),
    };
    workspace.map_err(|error| Failure::usage(format!("--cwd: {}", error.message())))
}

/// The built-in subagent types, the user's, the workspace's (which replace built-in and
/// user ones only when trusted: `--trust-project-agents` or `SUBTASK_TRUST_PROJECT_AGENTS=1`)
/// and those of `--agents-dir`. Files that cannot be loaded are logged and set aside.
pub fn types(workspace: &Workspace, sources: &AgentSources) -> Result<SubagentRegistry, Failure> {
    let trust = sources.trust_project_agents || subtask::subagents::trust_project_from_env();
    let mut types = SubagentRegistry::builtin().trust_project(trust);
    types.load_all(workspace, &sources.dirs)?;
    Ok(types)
}

/// A stand-in for `agents` and `schema`, which describe the tool without running it: they
/// must work with no model configured.
pub fn no_model() -> Arc<dyn ChatModel> {
    Arc::new(FunctionModel::new("none", |_request| {
        Err("no model configured: set SUBTASK_MODEL or pass --model".to_string())
    }))
}

/// The `task` tool over a new runtime, with the workspace's types, the built-in tools and
/// `settings`; `observer` sees every task's events.
pub fn task_tool(
    workspace: &Workspace,
    model: Arc<dyn ChatModel>,
    settings: &Settings,
    observer: Option<Arc<dyn Observer>>,
) -> Result<TaskTool, Failure> {
    let mut runtime = Runtime::builder();
    if let Some(timeout) = settings.timeout {
        runtime = runtime.execution_timeout(timeout);
    }
    if let Some(observer) = observer {
        runtime = runtime.observer(move |event: &subtask::Event| observer.on_event(event));
    }
    let mut subagents =
        Subagents::new(model, builtin_tools()).types(types(workspace, &settings.agents)?);
    if settings.no_transcripts {
        subagents = subagents.transcripts(Transcripts::Off);
    }
    Ok(TaskTool::new(
        runtime.build()?,
        subagents,
        workspace.clone(),
    ))
}

/// Makes the `task` tool for one of an MCP client's roots: over `runtime`, with the root's
/// own subagent types.
pub fn tool_for_root(
    runtime: Runtime,
    model: Arc<dyn ChatModel>,
    no_transcripts: bool,
) -> impl Fn(&Workspace) -> Result<TaskTool, subtask::Error> + Send + Sync + 'static {
    move |root: &Workspace| {
        let mut types = SubagentRegistry::builtin();
        types.load_workspace(root)?;
        let mut subagents = Subagents::new(model.clone(), builtin_tools()).types(types);
        if no_transcripts {
            subagents = subagents.transcripts(Transcripts::Off);
        }
        Ok(TaskTool::new(runtime.clone(), subagents, root.clone()))
    }
}

/// Why `mcp` must not work in `dir` without roots: it is `/` or the home directory, where
/// desktop hosts start their servers, not a project.
pub fn host_chosen_directory(dir: &Path) -> Option<String> {
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .and_then(|home| std::fs::canonicalize(home).ok());
    let what = if dir.parent().is_none() {
        "the filesystem root"
    } else if home.as_deref() == Some(dir) {
        "your home directory"
    } else {
        return None;
    };
    Some(format!(
        "subtask has no workspace: the MCP server was started in {} ({what}, chosen by the \
         MCP client, not a project) and the client shares no roots, so no subagent runs here. \
         Name the project in the server's configuration: \"args\": [\"mcp\", \"--cwd\", \
         \"/path/to/project\"].",
        dir.display()
    ))
}
