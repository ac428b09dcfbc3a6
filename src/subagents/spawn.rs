//! [`Subagents`]: turns a type and a prompt into an agent run with the right model,
//! tools, limits, transcript and hooks, directly or as a runtime task.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::worktree::Worktree;
use super::{
    Hooks, Isolation, SubagentRegistry, SubagentSpec, SubagentStart, SubagentStop, TASK_TOOL,
};
use crate::agent::{Agent, AgentLimits, AgentResult, AgentStop, Progress, RunContext};
use crate::error::{Error, ErrorKind};
use crate::llm::{ChatModel, Message, ModelConfig};
use crate::mcp::client::{self as mcp_client, McpSession};
use crate::runtime::{
    CancelToken, Observer, RunOptions, Runtime, TaskHandle, WeakRuntime, panic_message,
};
use crate::sandbox::{Network, Sandbox};
use crate::task_tool::TaskTool;
use crate::tools::{ToolRegistry, Workspace};
use crate::transcript::{self, TranscriptStore};

/// Chooses the model for a `model` setting (`haiku`, `openai:gpt-4.1-mini`).
pub type ModelResolver = Arc<dyn Fn(&str) -> Result<Arc<dyn ChatModel>, Error> + Send + Sync>;

/// One subagent run to perform.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SubagentRun<'a> {
    /// The run's id (names its transcript).
    pub run_id: &'a str,
    /// The subagent type.
    pub subagent: &'a str,
    /// The task.
    pub prompt: &'a str,
    /// A model for this run, over the type's and the default.
    pub model: Option<&'a str>,
    /// A subset of the type's tools.
    pub tools: Option<&'a [String]>,
    /// Read-only for this run.
    pub read_only: bool,
    /// An earlier conversation to continue.
    pub history: Option<&'a [Message]>,
    /// How deep in subagents this run is (0 under the host's own agent).
    pub depth: u32,
    /// Where the runs it starts go, if it may start any (its `depth` is below
    /// [`Subagents::max_depth`]): the run is then given a `task` tool at `depth + 1`
    /// unless the tools already hold one. Set by [`Subagents::spawn`].
    pub runtime: Option<&'a Runtime>,
    /// Network access for this run's commands, over the type's.
    pub network: Option<Network>,
}

impl<'a> SubagentRun<'a> {
    /// A run of type `subagent` with `prompt`.
    pub fn new(run_id: &'a str, subagent: &'a str, prompt: &'a str) -> SubagentRun<'a> {
        SubagentRun {
            run_id,
            subagent,
            prompt,
            model: None,
            tools: None,
            read_only: false,
            history: None,
            depth: 0,
            runtime: None,
            network: None,
        }
    }
}

/// A subagent run to submit to a [`Runtime`]: owned, so it can travel to an execution
/// thread. The runtime's task id becomes the run id.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct SubagentRequest {
    /// The subagent type.
    pub subagent: String,
    /// The task.
    pub prompt: String,
    /// A model for this run, over the type's and the default.
    pub model: Option<String>,
    /// A subset of the type's tools.
    pub tools: Option<Vec<String>>,
    /// Read-only for this run.
    pub read_only: bool,
    /// An earlier conversation to continue.
    pub history: Option<Vec<Message>>,
    /// How deep in subagents this run is.
    pub depth: u32,
    /// The execution timeout, over the type's and the runtime's.
    pub timeout: Option<Duration>,
    /// The run id to use instead of the task's id: a resumed run keeps its first run's id,
    /// and so its transcript.
    pub run_id: Option<String>,
    /// Network access for this run's commands, over the type's.
    pub network: Option<Network>,
    /// A trace context carried on the run's events ([`RunOptions::trace`]).
    pub trace: Option<Arc<str>>,
}

impl SubagentRequest {
    /// A request to run type `subagent` on `prompt`.
    pub fn new(subagent: impl Into<String>, prompt: impl Into<String>) -> SubagentRequest {
        SubagentRequest {
            subagent: subagent.into(),
            prompt: prompt.into(),
            ..SubagentRequest::default()
        }
    }

    /// This request as the run `run_id`.
    pub fn as_run<'a>(&'a self, run_id: &'a str) -> SubagentRun<'a> {
        SubagentRun {
            run_id,
            subagent: &self.subagent,
            prompt: &self.prompt,
            model: self.model.as_deref(),
            tools: self.tools.as_deref(),
            read_only: self.read_only,
            history: self.history.as_deref(),
            depth: self.depth,
            runtime: None,
            network: self.network,
        }
    }
}

/// A subagent run submitted with [`Subagents::spawn`].
#[derive(Debug)]
pub struct SubagentHandle {
    handle: TaskHandle<AgentResult>,
    run_id: String,
    late: crossbeam_channel::Receiver<AgentResult>,
}

/// How long a caller whose run timed out or was cancelled waits for the run to hand over
/// its partial result (a cooperative run stops within milliseconds).
const PARTIAL_RESULT_GRACE: Duration = Duration::from_secs(2);

/// How a spawned run ended, from its caller's side.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubagentOutcome {
    /// The run's id: the transcript's name, the value for `resume`.
    pub run_id: String,
    /// The run's result. Present when it ended on its own, and, when the task timed out or
    /// was cancelled, if the run handed over its partial answer and usage in time.
    pub result: Option<AgentResult>,
    /// Why the task did not complete: the runtime's timeout or cancellation, a start hook's
    /// veto, a model that could not be built. `None` when the run ended on its own (its
    /// `stop_reason` says how).
    pub error: Option<Error>,
}

impl SubagentHandle {
    /// The runtime task's id.
    pub fn task_id(&self) -> &crate::runtime::TaskId {
        self.handle.id()
    }

    /// The run's id (the task's, or the resumed run's).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Blocks until the run ends (see [`TaskHandle::wait`]).
    pub fn wait(self) -> SubagentOutcome {
        let run_id = self.run_id;
        match self.handle.wait() {
            Ok(result) => SubagentOutcome {
                run_id,
                result: Some(result),
                error: None,
            },
            Err(error) => {
                let partial = match error.kind() {
                    ErrorKind::Timeout | ErrorKind::Cancelled => {
                        self.late.recv_timeout(PARTIAL_RESULT_GRACE).ok()
                    }
                    // A failed run sent its result before it returned.
                    _ => self.late.try_recv().ok(),
                };
                SubagentOutcome {
                    run_id,
                    result: partial,
                    error: Some(error),
                }
            }
        }
    }
}

/// Spawns subagents: resolves the type, the model and the tools, runs the start hooks,
/// runs the agent with a transcript, then the stop hooks.
#[derive(Clone)]
pub struct Subagents {
    types: SubagentRegistry,
    tools: ToolRegistry,
    model: Arc<dyn ChatModel>,
    resolve_model: ModelResolver,
    hooks: Vec<Arc<dyn Hooks>>,
    transcripts: Transcripts,
    limits: AgentLimits,
    max_depth: u32,
    /// The sandbox runs start from (a type's `sandbox` and `network` refine it).
    sandbox: Sandbox,
}

/// Where transcripts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transcripts {
    /// The per-user state directory, one directory per workspace
    /// ([`transcript::default_dir`](crate::transcript::default_dir):
    /// `$XDG_STATE_HOME/subtask/transcripts/<workspace key>/`), out of the subagents' reach.
    /// The default.
    PerUser,
    /// This directory.
    In(PathBuf),
    /// No transcripts.
    Off,
}

impl Subagents {
    /// Subagents with the built-in types, `tools`, and `model` for types that name none.
    /// Models named by types or runs are built from the environment's keys
    /// ([`ModelConfig::parse`] + [`with_env`](ModelConfig::with_env)), never a model that
    /// reads a file (`scripted:`); transcripts go to
    /// the per-user state directory ([`Transcripts::PerUser`]); no nesting; no hooks.
    pub fn new(model: Arc<dyn ChatModel>, tools: ToolRegistry) -> Subagents {
        Subagents {
            types: SubagentRegistry::builtin(),
            tools,
            model,
            resolve_model: Arc::new(resolve_from_env),
            hooks: Vec::new(),
            transcripts: Transcripts::PerUser,
            limits: AgentLimits::default(),
            max_depth: 0,
            sandbox: Sandbox::new(),
        }
    }

    /// Uses these types.
    pub fn types(mut self, types: SubagentRegistry) -> Subagents {
        self.types = types;
        self
    }

    /// Builds the models that types and runs name.
    pub fn model_resolver(mut self, resolve: ModelResolver) -> Subagents {
        self.resolve_model = resolve;
        self
    }

    /// Adds hooks.
    pub fn hook(mut self, hooks: impl Hooks + 'static) -> Subagents {
        self.hooks.push(Arc::new(hooks));
        self
    }

    /// Sets where transcripts go.
    pub fn transcripts(mut self, transcripts: Transcripts) -> Subagents {
        self.transcripts = transcripts;
        self
    }

    /// Sets the default limits (a type's `max_turns` overrides the turn limit).
    pub fn limits(mut self, limits: AgentLimits) -> Subagents {
        self.limits = limits;
        self
    }

    /// Lets subagents spawn subagents (they get the `task` tool) down to `depth` levels.
    /// Defaults to 0: subagents get no `task` tool.
    pub fn max_depth(mut self, depth: u32) -> Subagents {
        self.max_depth = depth;
        self
    }

    /// The sandbox every run's commands start from: extra paths, variables, or
    /// [`Sandbox::unconfined`] for all. A type with `sandbox: off` runs unconfined anyway; a
    /// type's `network` (or a run's) sets the network. Defaults to [`Sandbox::new`].
    pub fn sandbox(mut self, sandbox: Sandbox) -> Subagents {
        self.sandbox = sandbox;
        self
    }

    /// The sandbox a run of `spec` gets: unconfined if the type says so, else the base with
    /// the run's network setting, or the type's.
    pub fn sandbox_for(&self, spec: &SubagentSpec, network: Option<Network>) -> Sandbox {
        if !spec.sandbox {
            return Sandbox::unconfined();
        }
        self.sandbox
            .clone()
            .network(network.unwrap_or(spec.network))
    }

    /// Whether a run at `depth` is offered the `task` tool (`depth < max_depth`).
    pub fn nesting_allowed(&self, depth: u32) -> bool {
        depth < self.max_depth
    }

    /// How many levels of subagents may start subagents ([`max_depth`](Self::max_depth)).
    pub fn nesting_limit(&self) -> u32 {
        self.max_depth
    }

    /// The types.
    pub fn registry(&self) -> &SubagentRegistry {
        &self.types
    }

    /// Every tool there is.
    pub fn all_tools(&self) -> &ToolRegistry {
        &self.tools
    }

    /// The default model.
    pub fn default_model(&self) -> &Arc<dyn ChatModel> {
        &self.model
    }

    /// Where transcripts go.
    pub fn transcripts_mode(&self) -> &Transcripts {
        &self.transcripts
    }

    /// Builds the model a `model` setting names, as runs do (an early check for callers).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for an unknown model or a missing key.
    pub fn resolve_model(&self, name: &str) -> Result<Arc<dyn ChatModel>, Error> {
        (self.resolve_model)(name)
    }

    /// The transcript store for a workspace, or `None` if transcripts are off.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when transcripts go to the per-user state directory and there
    /// is none (see [`transcript::state_dir`](crate::transcript::state_dir)).
    pub fn transcript_store(
        &self,
        workspace: &Workspace,
    ) -> Result<Option<TranscriptStore>, Error> {
        Ok(match &self.transcripts {
            Transcripts::PerUser => Some(TranscriptStore::new(transcript::default_dir(
                workspace.root(),
            )?)),
            Transcripts::In(dir) => Some(TranscriptStore::new(dir.clone())),
            Transcripts::Off => None,
        })
    }

    /// Submits a subagent run to `runtime` as a task labelled with its type: it runs on an
    /// execution thread under the task's token (the type's `timeout`, or the request's,
    /// as its execution timeout) and reports its progress to the task's observers.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for an unknown type (at once, before queueing), and
    /// whatever [`Runtime::submit`] refuses. The handle's `wait` gives the run's result or
    /// the errors of [`run`](Self::run).
    pub fn spawn(
        &self,
        runtime: &Runtime,
        workspace: &Workspace,
        request: SubagentRequest,
    ) -> Result<SubagentHandle, Error> {
        self.spawn_observed(runtime, workspace, request, None)
    }

    /// [`spawn`](Self::spawn) with an observer of this run's task alone (after the
    /// runtime's own): how a host follows the runs of one `task` call.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    pub fn spawn_observed(
        &self,
        runtime: &Runtime,
        workspace: &Workspace,
        request: SubagentRequest,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<SubagentHandle, Error> {
        let spec = self.spec(&request.subagent)?;
        let mut options = RunOptions::new().label(&spec.name);
        options.observer = observer;
        if let Some(trace) = &request.trace {
            options = options.trace(trace.clone());
        }
        if let Some(timeout) = request.timeout.or(spec.timeout) {
            options = options.execution_timeout(timeout);
        }
        let subagents = self.clone();
        let workspace = workspace.clone();
        // Weak: the job may be dropped on a runtime thread, where the last handle must not
        // go; a run that may nest holds the runtime only while it runs.
        let nests = self
            .nesting_allowed(request.depth)
            .then(|| runtime.downgrade());
        // The run's result also goes here, so a caller whose task timed out or was
        // cancelled still gets the partial answer and usage the run returns as it stops.
        let (late_sender, late) = crossbeam_channel::bounded(1);
        let run_id = request.run_id.clone();
        let handle = runtime.submit(
            move |job| {
                let progress = |progress: Progress| job.emit(progress);
                let run_id = match &request.run_id {
                    Some(run_id) => run_id.clone(),
                    None => job.id().to_string(),
                };
                let runtime = nests.as_ref().and_then(WeakRuntime::upgrade);
                let mut run = request.as_run(&run_id);
                run.runtime = runtime.as_ref();
                let result = subagents.run(&run, job.token(), &workspace, Some(&progress));
                let result = result?;
                let _ = late_sender.try_send(result.clone());
                // A run whose model failed is a failed task (in stats and events too); its
                // partial result still reaches the caller through `late`.
                match (result.stop_reason, &result.error) {
                    (AgentStop::Failed, Some(error)) => Err(error.clone()),
                    _ => Ok(result),
                }
            },
            options,
        )?;
        let run_id = run_id.unwrap_or_else(|| handle.id().to_string());
        Ok(SubagentHandle {
            handle,
            run_id,
            late,
        })
    }

    fn spec(&self, name: &str) -> Result<&SubagentSpec, Error> {
        self.types.get(name).ok_or_else(|| {
            Error::invalid_input(format!(
                "unknown subagent type '{name}'; the types are: {}",
                self.types.names().join(", ")
            ))
        })
    }

    /// Runs one subagent to its end.
    ///
    /// # Errors
    ///
    /// Before the run starts: [`ErrorKind::InvalidInput`] for an unknown type (listing the
    /// valid ones) or a tool subset the type does not have; [`ErrorKind::Config`] for a
    /// model that cannot be built, or an MCP server of the type's that is not defined, not
    /// trusted (a workspace's, see [`SubagentRegistry::trust_project`]) or fails to start; [`ErrorKind::Other`] when a start hook vetoes. Once
    /// started, the outcome is an [`AgentResult`] whatever happens.
    pub fn run(
        &self,
        run: &SubagentRun<'_>,
        token: &CancelToken,
        workspace: &Workspace,
        progress: Option<&(dyn Fn(Progress) + Sync)>,
    ) -> Result<AgentResult, Error> {
        let spec = self.spec(run.subagent)?;
        // A worktree of its own, when the type asks for one; the run works there, and its
        // transcript still belongs to the workspace it was started in.
        let worktree = match spec.isolation {
            Isolation::Worktree => Some(Worktree::create(workspace, run.run_id)?),
            Isolation::None => None,
        };
        let started_in = workspace;
        let workspace = worktree.as_ref().map_or(workspace, Worktree::workspace);
        let nesting_allowed = self.nesting_allowed(run.depth);
        let mut available = Cow::Borrowed(&self.tools);
        if let Some(runtime) = run.runtime.filter(|_| nesting_allowed)
            && self.tools.get(TASK_TOOL).is_none()
        {
            let nested = TaskTool::nested(
                runtime.clone(),
                self.clone(),
                workspace.clone(),
                run.depth + 1,
            );
            available.to_mut().register(Arc::new(nested))?;
        }
        // The type's MCP servers serve this run alone: started here (a workspace's only if
        // the project is trusted), killed as `_mcp` drops when the run returns, or at once
        // when its token is cancelled.
        let mcp_servers = self.types.resolve_mcp_servers(spec)?;
        let _mcp = if mcp_servers.is_empty() {
            McpSession::empty()
        } else {
            let session = McpSession::start(&mcp_servers, workspace.root(), token)?;
            for tool in session.tools(mcp_client::DEFAULT_OUTPUT_CAP) {
                if let Err(error) = available.to_mut().register(tool) {
                    log::warn!("run {}: an MCP tool is left out: {error}", run.run_id);
                }
            }
            session
        };
        let mut tools = spec.tool_registry(&available, run.read_only, nesting_allowed)?;
        if let Some(subset) = run.tools {
            let missing: Vec<&str> = subset
                .iter()
                .map(String::as_str)
                .filter(|name| tools.get(name).is_none())
                .collect();
            if !missing.is_empty() {
                return Err(Error::invalid_input(format!(
                    "the subagent type '{}' cannot use {} here; its tools are: {}",
                    spec.name,
                    missing.join(", "),
                    tools.names().join(", ")
                )));
            }
            tools = tools.filter(|tool| subset.iter().any(|name| name == tool.name()));
        }
        let model = match run.model.or(spec.model.as_deref()) {
            Some(name) => (self.resolve_model)(name)?,
            None => self.model.clone(),
        };
        let start = SubagentStart {
            run_id: run.run_id,
            subagent: &spec.name,
            prompt: run.prompt,
            model: model.name(),
            workspace: workspace.root(),
        };
        for hooks in &self.hooks {
            match catch_unwind(AssertUnwindSafe(|| hooks.subagent_start(&start))) {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => {
                    return Err(Error::new(
                        ErrorKind::Other,
                        format!("the SubagentStart hook refused the task: {reason}"),
                    ));
                }
                Err(panic) => {
                    return Err(Error::new(
                        ErrorKind::Other,
                        format!(
                            "the SubagentStart hook failed (panicked: {}), so the task did not \
                             start",
                            panic_message(panic.as_ref())
                        ),
                    ));
                }
            }
        }
        let mut limits = self.limits.clone();
        if let Some(max_turns) = spec.max_turns {
            limits.max_turns = max_turns;
        }
        if spec.reasoning_effort.is_some() {
            limits.reasoning_effort = spec.reasoning_effort;
        }
        let agent =
            Agent::new(model.clone(), spec.system_prompt.clone(), tools).with_limits(limits);
        let transcript = self.transcript_store(started_in).and_then(|store| {
            store
                .map(|store| {
                    store.create_in(
                        run.run_id,
                        &spec.name,
                        model.name(),
                        Some(started_in.root()),
                    )
                })
                .transpose()
        });
        let transcript = transcript.unwrap_or_else(|error| {
            log::warn!("run {} keeps no transcript: {error}", run.run_id);
            None
        });
        let sandbox = self.sandbox_for(spec, run.network);
        let mut context = RunContext::new(token, workspace)
            .subagent_depth(run.depth)
            .sandbox(&sandbox);
        if let Some(sink) = progress {
            context = context.progress(sink);
        }
        if let Some(transcript) = &transcript {
            context = context.transcript(transcript);
        }
        let started = Instant::now();
        let history = run.history.map(<[Message]>::to_vec).unwrap_or_default();
        let mut result = agent.resume(history, run.prompt, &context);
        if let Some(worktree) = worktree {
            let subject = run.prompt.lines().next().unwrap_or_default();
            let subject: String = subject.chars().take(72).collect();
            match worktree.finish(&format!("subtask run {}: {subject}", run.run_id)) {
                Ok(kept) => result.worktree = kept,
                Err(error) => log::warn!("run {}: {error}", run.run_id),
            }
        }
        let stop = SubagentStop {
            run_id: run.run_id,
            subagent: &spec.name,
            stop_reason: result.stop_reason,
            usage: &result.usage,
            duration: started.elapsed(),
            error: result.error.as_ref(),
        };
        for hooks in &self.hooks {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| hooks.subagent_stop(&stop))) {
                log::error!(
                    "a SubagentStop hook panicked after run {}: {}",
                    run.run_id,
                    panic_message(panic.as_ref())
                );
            }
        }
        Ok(result)
    }
}

/// The default [`ModelResolver`]: the model `name` names, with the environment's key and
/// URL. Models that read a file (`scripted:`) are refused: the names this resolves come
/// from agent files and `task` calls, which a repository or a prompt-injected model may
/// have written.
fn resolve_from_env(name: &str) -> Result<Arc<dyn ChatModel>, Error> {
    let config = ModelConfig::parse(name)?;
    if config.provider.reads_files() {
        return Err(Error::config(format!(
            "the model '{name}' plays a script file, so neither a subagent type nor a task \
             call may choose it; name a provider's model (haiku, openai:gpt-4.1-mini…). \
             Scripted models are accepted only from host code (Subagents::new, \
             Subagents::model_resolver) or your own configuration (SUBTASK_MODEL, --model)"
        )));
    }
    config.with_env().build()
}

impl std::fmt::Debug for Subagents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subagents")
            .field("types", &self.types.names())
            .field("tools", &self.tools)
            .field("model", &self.model.name())
            .field("hooks", &self.hooks.len())
            .field("transcripts", &self.transcripts)
            .field("max_depth", &self.max_depth)
            .finish_non_exhaustive()
    }
}
