//! The MCP server: serves the `task` tool to MCP clients (Claude Code, Claude Desktop,
//! Cursor, VS Code, the official SDKs) over stdio, as `subtask mcp` does.
//!
//! ```no_run
//! use std::sync::Arc;
//! use subtask::llm::ModelConfig;
//! use subtask::mcp::McpServer;
//! use subtask::subagents::Subagents;
//! use subtask::task_tool::TaskTool;
//! use subtask::tools::{builtin_tools, Workspace};
//! use subtask::Runtime;
//!
//! let model = ModelConfig::from_env()?.build()?;
//! let runtime = Runtime::new()?;
//! let subagents = Subagents::new(model, builtin_tools());
//! let task = TaskTool::new(runtime.clone(), subagents.clone(), Workspace::current_dir()?);
//! // Work in the client's roots when it has any, else in the current directory.
//! McpServer::new(task)
//!     .follow_roots(move |root: &Workspace| {
//!         Ok(TaskTool::new(runtime.clone(), subagents.clone(), root.clone()))
//!     })
//!     .serve_stdio()?; // returns when the client closes stdin
//! # Ok::<(), subtask::Error>(())
//! ```
//!
//! ## Protocol
//!
//! JSON-RPC 2.0, one message per line, no batches. [`PROTOCOL_VERSIONS`]: the stateless
//! 2026-07-28 (`server/discover`, the version and client capabilities in every request's
//! `_meta`, multi round-trip requests, the `io.modelcontextprotocol/tasks` extension) and,
//! through the `initialize` handshake, 2025-11-25, 2025-06-18 and 2025-03-26. Each request
//! is served by the revision it names: one with `_meta["io.modelcontextprotocol/
//! protocolVersion"]` as 2026-07-28 (an unknown version gets -32022 with the versions
//! served), one without as the handshake agreed.
//!
//! Methods: `server/discover`, `initialize`, `ping`, `tools/list`, `tools/call` (of `task`),
//! `logging/setLevel`, `tasks/get`, `tasks/cancel`, `tasks/update` (2026-07-28),
//! `tasks/result` and `tasks/list` (2025-11-25); notifications `notifications/initialized`,
//! `notifications/cancelled` and `notifications/roots/list_changed`. Any other request gets
//! -32601 at once; other notifications are ignored.
//!
//! - **Where the runs work.** With [`follow_roots`](McpServer::follow_roots), a call works
//!   in the client's roots: asked with `roots/list` after the handshake (and again on
//!   `notifications/roots/list_changed`), or, on 2026-07-28, with an `input_required`
//!   result asking for `roots/list` that the client answers by retrying the call. A task's
//!   `cwd` must be inside a root, and picks it; without one, the first root is used. With
//!   no roots the server's own workspace is used, unless
//!   [`require_roots`](McpServer::require_roots) says it must not be.
//! - **Results.** A call's result has the answers as text, the [`TaskOutput`](crate::task_tool::TaskOutput) as
//!   `structuredContent` (described by the tool's `outputSchema`), and `isError` when a run
//!   did not complete. Arguments that fail validation (an unknown type, a bad field, a `cwd`
//!   outside the roots) are an `isError` result naming what is valid, so the model can fix
//!   its call; an unknown tool or a malformed `params` is the JSON-RPC error -32602. Answers
//!   longer than the [output budget](McpServer::output_budget) are cut fairly, each with a
//!   note naming the run id whose transcript keeps it all.
//! - **Progress.** With `_meta.progressToken`, the call's runs report
//!   `notifications/progress` (started, each tool call, finished), e.g.
//!   `explore: grep 'TODO' (3 tools, 12 s)`, and a keep-alive when nothing was said for the
//!   [progress interval](McpServer::progress_interval), until its response, never after.
//! - **Tasks.** A call from a client that declares the tasks extension (2026-07-28), or that
//!   asks for a task with `params.task` (2025-11-25), is answered at once with a task
//!   handle; the client polls `tasks/get` (or blocks on `tasks/result`), and `tasks/cancel`
//!   cancels its runs. At most [`max_live_tasks`](McpServer::max_live_tasks) work at once
//!   (one more gets the retryable error -32000); a finished task is forgotten its TTL after
//!   it was created.
//! - **Cancellation.** `notifications/cancelled` cancels the call's runs and no response is
//!   sent for it; with [`keep_abandoned_runs`](McpServer::keep_abandoned_runs) the runs go
//!   on instead, and a later call resuming one of them waits for it and returns its answer.
//! - **Logs.** The server's warnings about the session go to the client as
//!   `notifications/message` at or above the level set by `logging/setLevel` (handshake
//!   revisions) or by a request's `_meta["io.modelcontextprotocol/logLevel"]` (2026-07-28,
//!   while that request is in progress); everything goes to the `log` crate (the CLI sends
//!   it to stderr). Only protocol messages go to the output. A request's `traceparent` is
//!   written with its runs' start and end in the log.
//! - At the end of input the server cancels every call and task still running, waits for
//!   their workers, and returns.
//!
//! ## Threads
//!
//! [`McpServer::serve`] runs on the caller's thread, which dispatches messages; one more
//! thread reads the input, one writes the output, one sends keep-alives, and each
//! `tools/call` (and blocking `tasks/result`) has a worker until it answers. The runs
//! themselves execute on the runtime's pools.

use std::io::BufRead;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded, unbounded};

use crate::error::Error;
use crate::runtime::panic_message;
use crate::task_tool::TaskTool;
use crate::tools::Workspace;

pub mod client;
mod kept;
mod logging;
mod output;
mod progress;
mod roots;
mod session;
mod tasks;
mod wire;

pub use logging::McpLogger;

pub use output::DEFAULT_OUTPUT_BUDGET;
pub use wire::{
    HANDSHAKE_VERSIONS, LATEST_HANDSHAKE_VERSION, LATEST_PROTOCOL_VERSION, PROTOCOL_VERSIONS,
};

use progress::{Writer, write_lines};

/// The `task` tool's `tools/list` entry as this server offers it: the tool's
/// [`mcp_definition`](TaskTool::mcp_definition) with the output schema of its
/// `structuredContent` and its annotations (what `subtask schema --format mcp` prints).
pub fn tool_entry(tool: &TaskTool) -> serde_json::Value {
    let mut definition = tool.mcp_definition();
    definition["outputSchema"] = output::output_schema();
    definition["annotations"] = serde_json::json!({
        "title": "Run subagents",
        "readOnlyHint": false,
        "destructiveHint": true,
        "idempotentHint": false,
        "openWorldHint": true,
    });
    definition
}
use session::{Session, Shared};

/// How often a call with a progress token hears from the server, at least, by default.
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(15);
/// How long a finished MCP task (and an abandoned run's answer) is kept, by default.
pub const DEFAULT_TASK_TTL: Duration = Duration::from_secs(3600);
/// MCP tasks working at once, at most, by default.
pub const DEFAULT_MAX_LIVE_TASKS: usize = 16;
/// How long a call waits for the client's answer to `roots/list`, by default.
pub const DEFAULT_ROOTS_PATIENCE: Duration = Duration::from_secs(10);
/// How long a blocking `tasks/result` waits before asking the client to poll instead.
pub(crate) const RESULT_PATIENCE: Duration = Duration::from_secs(3600);

pub(crate) const INSTRUCTIONS: &str = "The `task` tool hands a self-contained task, or several \
     independent ones at once, to subagents working in this workspace, and returns their \
     final answers when they have finished.";

/// Makes the `task` tool for one of the client's roots.
pub(crate) type ToolForRoot = dyn Fn(&Workspace) -> Result<TaskTool, Error> + Send + Sync;

/// Serves one [`TaskTool`] over MCP (or one per client root, with
/// [`follow_roots`](Self::follow_roots)).
///
/// Nothing else is needed at runtime-build time: each call observes and cancels its own
/// runs (through [`CallOptions`](crate::task_tool::CallOptions)), so the runtime may have observers of its own or none.
/// Clones share nothing but their settings; each [`serve`](Self::serve) is one session.
#[derive(Clone)]
pub struct McpServer {
    task: TaskTool,
    for_root: Option<Arc<ToolForRoot>>,
    refusal: Option<String>,
    progress_interval: Duration,
    output_budget: usize,
    keep_abandoned_runs: bool,
    task_ttl: Duration,
    max_live_tasks: usize,
    roots_patience: Duration,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("task", &self.task)
            .field("follows_roots", &self.for_root.is_some())
            .field("refusal", &self.refusal)
            .field("progress_interval", &self.progress_interval)
            .field("output_budget", &self.output_budget)
            .field("keep_abandoned_runs", &self.keep_abandoned_runs)
            .field("task_ttl", &self.task_ttl)
            .field("max_live_tasks", &self.max_live_tasks)
            .field("roots_patience", &self.roots_patience)
            .finish()
    }
}

impl McpServer {
    /// A server of `task`, whose runs go to `task.runtime()` and work in its workspace.
    pub fn new(task: TaskTool) -> McpServer {
        McpServer {
            task,
            for_root: None,
            refusal: None,
            progress_interval: DEFAULT_PROGRESS_INTERVAL,
            output_budget: DEFAULT_OUTPUT_BUDGET,
            keep_abandoned_runs: false,
            task_ttl: DEFAULT_TASK_TTL,
            max_live_tasks: DEFAULT_MAX_LIVE_TASKS,
            roots_patience: DEFAULT_ROOTS_PATIENCE,
        }
    }

    /// Works in the client's roots when it declares any: `for_root` makes the tool for a
    /// root (called once per root, on first use). The tool given to [`new`](Self::new)
    /// serves clients without roots. Defaults to off: every call works in that tool's
    /// workspace.
    pub fn follow_roots(
        mut self,
        for_root: impl Fn(&Workspace) -> Result<TaskTool, Error> + Send + Sync + 'static,
    ) -> McpServer {
        self.for_root = Some(Arc::new(for_root));
        self
    }

    /// With no roots from the client, refuses every call with `reason` (it should say how
    /// to name a workspace) instead of working in the tool's own workspace: for a server
    /// whose working directory was chosen by the host (`/`, a home directory). Defaults to
    /// none.
    pub fn require_roots(mut self, reason: impl Into<String>) -> McpServer {
        self.refusal = Some(reason.into());
        self
    }

    /// A call with a progress token hears from the server at least this often, even when
    /// its runs are silent (hosts abort calls that stay silent). Defaults to 15 s.
    pub fn progress_interval(mut self, interval: Duration) -> McpServer {
        self.progress_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Characters of text a call answers with, at most: longer answers are cut fairly.
    /// Defaults to [`DEFAULT_OUTPUT_BUDGET`].
    pub fn output_budget(mut self, characters: usize) -> McpServer {
        self.output_budget = characters;
        self
    }

    /// Whether a call the client cancels keeps its runs going, so that a later `task` call
    /// resuming one of them waits for it and returns its answer (for hosts that give up on
    /// a call after a fixed time and do not support tasks). Defaults to `false`: a
    /// cancelled call cancels its runs.
    pub fn keep_abandoned_runs(mut self, keep: bool) -> McpServer {
        self.keep_abandoned_runs = keep;
        self
    }

    /// How long a finished MCP task, or an abandoned run's answer, is kept after the task
    /// was created (or the run ended). Defaults to 1 hour.
    pub fn task_ttl(mut self, ttl: Duration) -> McpServer {
        self.task_ttl = ttl;
        self
    }

    /// MCP tasks working at once, at most; one more gets a retryable error. Defaults to 16.
    pub fn max_live_tasks(mut self, tasks: usize) -> McpServer {
        self.max_live_tasks = tasks.max(1);
        self
    }

    /// How long a call waits for the client to answer `roots/list` (handshake revisions);
    /// after that, calls go on as if the client had no roots until it answers. Defaults to
    /// [`DEFAULT_ROOTS_PATIENCE`].
    pub fn roots_patience(mut self, patience: Duration) -> McpServer {
        self.roots_patience = patience;
        self
    }

    /// Serves the client on `input` and `output` until `input` ends, then cancels every
    /// call and task still running, waits for their workers, and returns. `output` is
    /// written one message a line and flushed after each.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) if a thread cannot be started or reading
    /// `input` fails (after the running calls are cancelled and waited for). A failing
    /// `output` is logged, not returned: the server serves on until `input` ends.
    pub fn serve(
        &self,
        input: impl BufRead + Send + 'static,
        output: impl std::io::Write + Send + 'static,
    ) -> Result<(), Error> {
        let (to_output, outgoing) = unbounded();
        let writer = std::thread::Builder::new()
            .name("subtask-mcp-output".into())
            .spawn(move || write_lines(output, &outgoing))
            .map_err(|error| Error::from(error).with_context("cannot start the MCP writer"))?;
        let shared = Arc::new(Shared::new(self, Writer::new(to_output)));
        let sink: Arc<dyn logging::LogSink> = shared.clone();
        let _logs = logging::register(&sink);
        let mut session = Session::new(shared.clone());
        let (stop_ticks, ticks) = bounded::<()>(0);
        let ticker_shared = shared.clone();
        let interval = self.progress_interval;
        let ticker = std::thread::Builder::new()
            .name("subtask-mcp-progress".into())
            .spawn(move || keep_alive(&ticker_shared, &ticks, interval));
        let (to_session, incoming) = bounded(16);
        let reader = std::thread::Builder::new()
            .name("subtask-mcp-input".into())
            .spawn(move || read_lines(input, &to_session));
        let mut failure = None;
        match (reader, &ticker) {
            (Ok(reader), Ok(_)) => {
                for line in &incoming {
                    match line {
                        Ok(line) => session.dispatch(&line),
                        Err(error) => {
                            failure = Some(
                                Error::from(error)
                                    .with_context("cannot read the MCP client's messages"),
                            );
                            break;
                        }
                    }
                }
                session.finish();
                drop(incoming);
                join("reader", reader);
            }
            (Err(error), _) => {
                failure = Some(Error::from(error).with_context("cannot start the MCP reader"));
                session.finish();
            }
            (_, Err(error)) => {
                let error = std::io::Error::new(error.kind(), error.to_string());
                failure = Some(Error::from(error).with_context("cannot start an MCP thread"));
                session.finish();
            }
        }
        drop(stop_ticks);
        if let Ok(ticker) = ticker {
            join("progress", ticker);
        }
        shared.shut();
        join("writer", writer);
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// [`serve`](Self::serve) on this process's stdin and stdout.
    ///
    /// # Errors
    ///
    /// As [`serve`](Self::serve).
    pub fn serve_stdio(&self) -> Result<(), Error> {
        self.serve(std::io::BufReader::new(std::io::stdin()), std::io::stdout())
    }
}

/// Sends each line of `input` (without its line ending) until it ends or fails.
fn read_lines(mut input: impl BufRead, lines: &Sender<std::io::Result<Vec<u8>>>) {
    loop {
        let mut line = Vec::new();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {
                if lines.send(Ok(line)).is_err() {
                    return;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                let _ = lines.send(Err(error));
                return;
            }
        }
    }
}

/// The keep-alive thread: checks the calls in flight a few times per interval until the
/// session ends (its channel is dropped).
fn keep_alive(shared: &Shared, stop: &crossbeam_channel::Receiver<()>, interval: Duration) {
    let tick = (interval / 4).max(Duration::from_millis(5));
    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stop.recv_timeout(tick) {
        shared.keep_alive();
    }
}

pub(crate) fn join(thread: &str, handle: JoinHandle<()>) {
    if let Err(panic) = handle.join() {
        log::error!(
            "the MCP {thread} thread panicked: {}",
            panic_message(panic.as_ref())
        );
    }
}
