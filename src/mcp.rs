//! The MCP server: serves the `task` tool to MCP clients (Claude Code, Cursor, the official
//! SDKs) over stdio, as `subtask mcp` does.
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
//! let subagents = Subagents::new(model, builtin_tools());
//! let task = TaskTool::new(Runtime::new()?, subagents, Workspace::current_dir()?);
//! McpServer::new(task).serve_stdio()?; // returns when the client closes stdin
//! # Ok::<(), subtask::Error>(())
//! ```
//!
//! ## Protocol
//!
//! JSON-RPC 2.0, one message per line, no batches. Protocol versions
//! [`PROTOCOL_VERSIONS`]: `initialize` echoes the client's version when it is one of them,
//! else answers with [`LATEST_PROTOCOL_VERSION`]. Methods: `initialize`, `ping`,
//! `tools/list`, `tools/call` (of `task`); notifications `notifications/initialized` and
//! `notifications/cancelled`. Any other request gets -32601 at once; other notifications
//! are ignored.
//!
//! - A `tools/call` runs on a worker thread of its own, so several run at once and the
//!   server keeps reading. Its result has the answer as text, the [`TaskOutput`] as
//!   `structuredContent`, and `isError` when a run did not complete; arguments the tool
//!   refuses get the JSON-RPC error -32602 with the reason.
//! - With `_meta.progressToken`, the call's runs report `notifications/progress` (started,
//!   each tool call, a heartbeat every poll interval, finished), e.g.
//!   `explore: grep 'TODO' (3 tools, 12 s)`, until its response, never after.
//! - `notifications/cancelled` cancels the call's runs (their tools' child processes are
//!   killed) and no response is sent for it.
//! - At the end of input the server cancels every call still running, waits for their
//!   workers, and returns.
//!
//! Only protocol messages go to the output; logs go through the `log` crate (the CLI sends
//! them to stderr).
//!
//! ## Threads
//!
//! [`McpServer::serve`] runs on the caller's thread, which dispatches messages; one more
//! thread reads the input, one writes the output, and each `tools/call` has a worker until
//! it answers. The runs themselves execute on the runtime's pools.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use crate::Progress;
use crate::error::Error;
use crate::runtime::{CancelToken, Event, EventKind, TaskId, panic_message};
use crate::subagents::TASK_TOOL;
use crate::task_tool::{CallOptions, TaskOutput, TaskTool};

/// The MCP protocol versions served, newest first.
pub const PROTOCOL_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
/// The version answered to a client that asks for one not in [`PROTOCOL_VERSIONS`].
pub const LATEST_PROTOCOL_VERSION: &str = PROTOCOL_VERSIONS[0];

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const INTERNAL_ERROR: i64 = -32603;

const INSTRUCTIONS: &str = "The `task` tool hands a self-contained task, or several \
     independent ones at once, to subagents working in this workspace, and returns their \
     final answers when they have finished.";

/// Serves one [`TaskTool`] over MCP.
///
/// Nothing else is needed at runtime-build time: each call observes and cancels its own
/// runs (through [`CallOptions`]), so the runtime may have observers of its own or none.
#[derive(Debug, Clone)]
pub struct McpServer {
    task: TaskTool,
}

impl McpServer {
    /// A server of `task`, whose runs go to `task.runtime()`.
    pub fn new(task: TaskTool) -> McpServer {
        McpServer { task }
    }

    /// Serves the client on `input` and `output` until `input` ends, then cancels every
    /// call still running, waits for their workers, and returns. `output` is written one
    /// message a line and flushed after each.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) if a thread cannot be started or reading
    /// `input` fails (after the running calls are cancelled and waited for). A failing
    /// `output` is logged, not returned: the server serves on until `input` ends.
    pub fn serve(
        &self,
        input: impl BufRead + Send + 'static,
        output: impl Write + Send + 'static,
    ) -> Result<(), Error> {
        let (to_output, outgoing) = unbounded();
        let writer = std::thread::Builder::new()
            .name("subtask-mcp-output".into())
            .spawn(move || write_lines(output, &outgoing))
            .map_err(|error| Error::from(error).with_context("cannot start the MCP writer"))?;
        let mut session = Session {
            task: self.task.clone(),
            writer: Arc::new(Writer::new(to_output)),
            calls: Arc::new(Mutex::new(HashMap::new())),
            workers: Vec::new(),
        };
        let (to_session, incoming) = bounded(16);
        let reader = std::thread::Builder::new()
            .name("subtask-mcp-input".into())
            .spawn(move || read_lines(input, &to_session));
        let mut failure = None;
        match reader {
            Ok(reader) => {
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
            Err(error) => {
                failure = Some(Error::from(error).with_context("cannot start the MCP reader"));
            }
        }
        session.writer.shut();
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

/// One client's connection: owned by the thread running [`McpServer::serve`].
struct Session {
    task: TaskTool,
    writer: Arc<Writer>,
    /// Calls in flight by request id (its JSON text, so `1` and `"1"` differ). A worker
    /// removes its call once it has answered.
    calls: Arc<Mutex<HashMap<String, InFlight>>>,
    /// Every worker started and not yet joined.
    workers: Vec<JoinHandle<()>>,
}

/// A `tools/call` in flight.
struct InFlight {
    call: Arc<Call>,
    /// Cancels the call's runs.
    token: CancelToken,
}

/// What the output needs of a call. Shared with the call's observer, so it holds no
/// runtime handle.
struct Call {
    id: Value,
    progress_token: Option<Value>,
    /// Set, under the writer's lock, once the response is sent or the call is cancelled:
    /// nothing more is sent for the call after that.
    closed: AtomicBool,
    /// The last `progress` value sent; advanced under the writer's lock so that values
    /// increase in the order they are written.
    progress: AtomicU64,
}

impl Session {
    fn dispatch(&mut self, line: &[u8]) {
        let Ok(text) = std::str::from_utf8(line) else {
            self.writer.send(&error(
                &Value::Null,
                PARSE_ERROR,
                "Parse error: the line is not UTF-8",
            ));
            return;
        };
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let message = match serde_json::from_str::<Value>(text) {
            Ok(message) => message,
            Err(problem) => {
                self.writer.send(&error(
                    &Value::Null,
                    PARSE_ERROR,
                    &format!("Parse error: {problem}"),
                ));
                return;
            }
        };
        let Value::Object(message) = message else {
            let problem = if message.is_array() {
                "Invalid Request: batches are not supported; send one message a line"
            } else {
                "Invalid Request: a message must be a JSON object"
            };
            self.writer
                .send(&error(&Value::Null, INVALID_REQUEST, problem));
            return;
        };
        let id = match message.get("id") {
            None => None,
            Some(id @ (Value::String(_) | Value::Number(_))) => Some(id.clone()),
            Some(_) => {
                self.writer.send(&error(
                    &Value::Null,
                    INVALID_REQUEST,
                    "Invalid Request: `id` must be a string or an integer",
                ));
                return;
            }
        };
        let method = match message.get("method") {
            Some(Value::String(method)) => method.as_str(),
            // A response: the server sends no requests, so there is nothing to match it to.
            None if id.is_some()
                && (message.contains_key("result") || message.contains_key("error")) =>
            {
                log::debug!("MCP: ignored a response the server did not ask for");
                return;
            }
            _ => {
                if let Some(id) = &id {
                    self.writer.send(&error(
                        id,
                        INVALID_REQUEST,
                        "Invalid Request: `method` must be a string",
                    ));
                }
                return;
            }
        };
        let Some(id) = id else {
            self.notification(method, message.get("params"));
            return;
        };
        if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            self.writer.send(&error(
                &id,
                INVALID_REQUEST,
                "Invalid Request: `jsonrpc` must be \"2.0\"",
            ));
            return;
        }
        let empty = Map::new();
        let params = match message.get("params") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(params)) => params,
            Some(_) => {
                self.writer.send(&error(
                    &id,
                    INVALID_PARAMS,
                    "Invalid params: `params` must be an object",
                ));
                return;
            }
        };
        match method {
            "initialize" => self.writer.send(&result(&id, initialize(params))),
            "ping" => self.writer.send(&result(&id, json!({}))),
            "tools/list" => self
                .writer
                .send(&result(&id, json!({"tools": [self.task.mcp_definition()]}))),
            "tools/call" => self.call(id, params),
            _ => self.writer.send(&error(
                &id,
                METHOD_NOT_FOUND,
                &format!("Method not found: {method}"),
            )),
        }
    }

    fn notification(&self, method: &str, params: Option<&Value>) {
        match method {
            "notifications/cancelled" => {
                let request = params.and_then(|params| params.get("requestId"));
                let Some(request @ (Value::String(_) | Value::Number(_))) = request else {
                    log::debug!("MCP: ignored a cancellation without a request id");
                    return;
                };
                let reason = params
                    .and_then(|params| params.get("reason"))
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                let in_flight = self
                    .calls
                    .lock()
                    .get(&request.to_string())
                    .map(|in_flight| (in_flight.call.clone(), in_flight.token.clone()));
                match in_flight {
                    Some((call, token)) => {
                        log::info!("MCP: request {request} cancelled by the client: {reason}");
                        self.writer.close(&call);
                        token.cancel();
                    }
                    None => log::debug!(
                        "MCP: ignored the cancellation of request {request}, not in flight"
                    ),
                }
            }
            _ => log::debug!("MCP: notification {method}"),
        }
    }

    /// Starts a `tools/call` on a worker of its own.
    fn call(&mut self, id: Value, params: &Map<String, Value>) {
        let name = match params.get("name") {
            Some(Value::String(name)) => name.as_str(),
            _ => {
                self.writer.send(&error(
                    &id,
                    INVALID_PARAMS,
                    "Invalid params: `name` must name the tool to call",
                ));
                return;
            }
        };
        if name != TASK_TOOL {
            self.writer.send(&error(
                &id,
                INVALID_PARAMS,
                &format!("Unknown tool: {name}"),
            ));
            return;
        }
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(arguments) => arguments.clone(),
        };
        let progress_token = params
            .get("_meta")
            .and_then(|meta| meta.get("progressToken"))
            .filter(|token| token.is_string() || token.is_number())
            .cloned();
        let key = id.to_string();
        let call = Arc::new(Call {
            id,
            progress_token,
            closed: AtomicBool::new(false),
            progress: AtomicU64::new(0),
        });
        let token = CancelToken::new();
        {
            let mut calls = self.calls.lock();
            if calls.contains_key(&key) {
                drop(calls);
                self.writer.send(&error(
                    &call.id,
                    INVALID_REQUEST,
                    &format!(
                        "Invalid Request: request id {key} is already in use by a call in progress"
                    ),
                ));
                return;
            }
            calls.insert(
                key.clone(),
                InFlight {
                    call: call.clone(),
                    token: token.clone(),
                },
            );
        }
        let mut options = CallOptions::new().cancel_token(token);
        if call.progress_token.is_some() {
            let reporter = Reporter {
                call: call.clone(),
                writer: self.writer.clone(),
                tasks: Mutex::new(HashMap::new()),
            };
            options = options.observer(move |event: &Event| reporter.report(event));
        }
        self.reap_workers();
        let task = self.task.clone();
        let writer = self.writer.clone();
        let calls = self.calls.clone();
        let worker_call = call.clone();
        let started = std::thread::Builder::new()
            .name("subtask-mcp-call".into())
            .spawn(move || {
                let call = worker_call;
                let output = catch_unwind(AssertUnwindSafe(|| {
                    task.call_json_with(&arguments, &options)
                }));
                let response = match output {
                    Ok(output) => call_response(&call.id, &output),
                    Err(panic) => error(
                        &call.id,
                        INTERNAL_ERROR,
                        &format!(
                            "Internal error: the task call panicked: {}",
                            panic_message(panic.as_ref())
                        ),
                    ),
                };
                // Out of the map first, so the client may use the id again once answered.
                calls.lock().remove(&key);
                writer.respond(&call, &response);
            });
        match started {
            Ok(worker) => self.workers.push(worker),
            Err(problem) => {
                self.calls.lock().remove(&call.id.to_string());
                self.writer.respond(
                    &call,
                    &error(
                        &call.id,
                        INTERNAL_ERROR,
                        &format!("Internal error: cannot start a thread for the call: {problem}"),
                    ),
                );
            }
        }
    }

    /// Joins the workers that have answered, so the list does not grow with every call.
    fn reap_workers(&mut self) {
        let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.workers)
            .into_iter()
            .partition(JoinHandle::is_finished);
        self.workers = running;
        for worker in done {
            join("call", worker);
        }
    }

    /// At the end of input: cancels every call in flight (sending no response for any) and
    /// waits for every worker.
    fn finish(&mut self) {
        let in_flight: Vec<(Arc<Call>, CancelToken)> = self
            .calls
            .lock()
            .values()
            .map(|in_flight| (in_flight.call.clone(), in_flight.token.clone()))
            .collect();
        if !in_flight.is_empty() {
            log::info!(
                "MCP: input ended; cancelling {} call(s) in flight",
                in_flight.len()
            );
        }
        for (call, token) in in_flight {
            self.writer.close(&call);
            token.cancel();
        }
        for worker in std::mem::take(&mut self.workers) {
            join("call", worker);
        }
    }
}

fn join(thread: &str, handle: JoinHandle<()>) {
    if let Err(panic) = handle.join() {
        log::error!(
            "the MCP {thread} thread panicked: {}",
            panic_message(panic.as_ref())
        );
    }
}

/// The `initialize` result.
fn initialize(params: &Map<String, Value>) -> Value {
    let requested = params.get("protocolVersion").and_then(Value::as_str);
    let version = match requested {
        Some(version) if PROTOCOL_VERSIONS.contains(&version) => version,
        _ => LATEST_PROTOCOL_VERSION,
    };
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "subtask", "version": env!("CARGO_PKG_VERSION")},
        "instructions": INSTRUCTIONS,
    })
}

/// The response to a `tools/call` that ran (or was refused).
fn call_response(id: &Value, output: &TaskOutput) -> Value {
    if let Some(refused) = &output.error {
        return error(id, INVALID_PARAMS, refused);
    }
    let structured = serde_json::to_value(output).unwrap_or_else(|problem| {
        log::error!("MCP: cannot serialise a task output: {problem}");
        json!({})
    });
    result(
        id,
        json!({
            "content": [{"type": "text", "text": output.to_text()}],
            "structuredContent": structured,
            "isError": output.is_error,
        }),
    )
}

fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The way to the output. Every message passes through one lock, in the order it is
/// written, to a writer thread that does the I/O: a slow client never holds up a worker, the
/// reader, or the mailbox thread that runs the progress observer.
struct Writer {
    /// `None` once the session has ended: a late event of a run that ignored cancellation
    /// writes nothing.
    lines: Mutex<Option<Sender<String>>>,
}

impl Writer {
    fn new(lines: Sender<String>) -> Writer {
        Writer {
            lines: Mutex::new(Some(lines)),
        }
    }

    fn send(&self, message: &Value) {
        // serde_json escapes newlines inside strings: one message is one line.
        let line = message.to_string();
        if let Some(lines) = &*self.lines.lock() {
            let _ = lines.send(line);
        }
    }

    /// Writes `call`'s response unless it was cancelled; nothing is written for it after.
    fn respond(&self, call: &Call, response: &Value) {
        let line = response.to_string();
        let lines = self.lines.lock();
        if !call.closed.swap(true, Ordering::Relaxed)
            && let Some(lines) = &*lines
        {
            let _ = lines.send(line);
        }
    }

    /// Writes nothing more for `call`.
    fn close(&self, call: &Call) {
        let _lines = self.lines.lock();
        call.closed.store(true, Ordering::Relaxed);
    }

    /// Writes a progress notification for `call` while it has not answered.
    fn progress(&self, call: &Call, token: &Value, message: &str) {
        let lines = self.lines.lock();
        let Some(lines) = &*lines else {
            return;
        };
        if call.closed.load(Ordering::Relaxed) {
            return;
        }
        let progress = call.progress.fetch_add(1, Ordering::Relaxed) + 1;
        let notification = json!({
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": token, "progress": progress, "message": message},
        });
        let _ = lines.send(notification.to_string());
    }

    /// Lets the writer thread end once it has written what was sent so far.
    fn shut(&self) {
        self.lines.lock().take();
    }
}

/// The writer thread: each message on a line of its own, flushed at once.
fn write_lines(mut output: impl Write, lines: &Receiver<String>) {
    let mut failed = false;
    for mut line in lines {
        line.push('\n');
        let written = output
            .write_all(line.as_bytes())
            .and_then(|()| output.flush());
        // Logged once: a client that closed its end would otherwise log every message.
        if let Err(problem) = written
            && !std::mem::replace(&mut failed, true)
        {
            log::error!("MCP: cannot write to the client: {problem}");
        }
    }
}

/// Turns one call's task events into progress notifications.
struct Reporter {
    call: Arc<Call>,
    writer: Arc<Writer>,
    tasks: Mutex<HashMap<TaskId, TaskProgress>>,
}

/// What a progress message says of one run.
struct TaskProgress {
    since: Instant,
    tools: u32,
}

impl Reporter {
    fn report(&self, event: &Event) {
        let Some(token) = &self.call.progress_token else {
            return;
        };
        if let Some(message) = self.describe(event) {
            self.writer.progress(&self.call, token, &message);
        }
    }

    /// `explore: grep 'TODO' (3 tools, 12 s)`; `None` for events not worth a
    /// notification (queued, turns, streaming).
    fn describe(&self, event: &Event) -> Option<String> {
        let mut tasks = self.tasks.lock();
        let task = tasks.entry(event.task.clone()).or_insert(TaskProgress {
            since: event.at,
            tools: 0,
        });
        let what = match &event.kind {
            EventKind::Started { .. } => {
                task.since = event.at;
                return Some(format!("{}: started", event.label));
            }
            EventKind::Progress(_) => match event.kind.progress::<Progress>() {
                Some(Progress::ToolStarted { tool, summary }) => {
                    task.tools += 1;
                    format!("{tool} {summary}")
                }
                Some(Progress::ToolFinished {
                    tool,
                    summary,
                    is_error,
                    ..
                }) => format!(
                    "{tool} {summary} {}",
                    if *is_error { "failed" } else { "done" }
                ),
                _ => return None,
            },
            EventKind::Heartbeat { status, .. } => status.to_string(),
            EventKind::Finished { status, .. } => status.to_string(),
            _ => return None,
        };
        let seconds = event.at.saturating_duration_since(task.since).as_secs();
        let tools = match task.tools {
            1 => "1 tool".to_string(),
            count => format!("{count} tools"),
        };
        let what = what.split_whitespace().collect::<Vec<_>>().join(" ");
        Some(format!("{}: {what} ({tools}, {seconds} s)", event.label))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::runtime::TaskStatus;

    fn event(task: &TaskId, kind: EventKind) -> Event {
        Event {
            task: task.clone(),
            label: "explore".into(),
            at: Instant::now(),
            kind,
        }
    }

    /// A reporter for a call with progress token `"t"`, and what its writer sends.
    fn new_reporter() -> (Reporter, Receiver<String>) {
        let (lines, sent) = unbounded();
        let reporter = Reporter {
            call: Arc::new(Call {
                id: json!(1),
                progress_token: Some(json!("t")),
                closed: AtomicBool::new(false),
                progress: AtomicU64::new(0),
            }),
            writer: Arc::new(Writer::new(lines)),
            tasks: Mutex::new(HashMap::new()),
        };
        (reporter, sent)
    }

    fn messages(sent: &Receiver<String>) -> Vec<Value> {
        sent.try_iter()
            .map(|line| serde_json::from_str(&line).unwrap())
            .collect()
    }

    #[test]
    fn no_progress_is_sent_after_the_response_or_a_cancellation() {
        let task = TaskId::generate("explore", 1, 0);
        let started = event(
            &task,
            EventKind::Started {
                queued_for: Duration::ZERO,
            },
        );
        let finished = event(
            &task,
            EventKind::Finished {
                status: TaskStatus::Completed,
                queued_for: Duration::ZERO,
                ran_for: Some(Duration::ZERO),
                error: None,
            },
        );
        let (reporter, sent) = new_reporter();
        reporter.report(&started);
        reporter.writer.respond(&reporter.call, &json!({"id": 1}));
        reporter.report(&finished); // a late event, delivered after the response
        let sent = messages(&sent);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(sent[0]["params"]["message"], "explore: started");
        assert_eq!(sent[1], json!({"id": 1}));

        let (reporter, sent) = new_reporter();
        reporter.writer.close(&reporter.call);
        reporter.report(&started);
        reporter.writer.respond(&reporter.call, &json!({"id": 1}));
        assert!(messages(&sent).is_empty());
    }

    #[test]
    fn progress_messages_count_tools_and_seconds() {
        let task = TaskId::generate("explore", 1, 0);
        let (reporter, sent) = new_reporter();
        let tool = |done: bool| {
            let (tool, summary) = ("grep".to_string(), "'TODO'".to_string());
            EventKind::Progress(Arc::new(if done {
                Progress::ToolFinished {
                    tool,
                    summary,
                    duration: Duration::ZERO,
                    is_error: true,
                }
            } else {
                Progress::ToolStarted { tool, summary }
            }))
        };
        reporter.report(&event(&task, tool(false)));
        reporter.report(&event(&task, tool(true)));
        reporter.report(&event(
            &task,
            EventKind::Progress(Arc::new(Progress::TurnStarted { turn: 2 })),
        ));
        reporter.report(&event(&task, tool(false)));
        reporter.report(&event(
            &task,
            EventKind::Heartbeat {
                status: TaskStatus::Running,
                elapsed: Duration::ZERO,
            },
        ));
        let sent = messages(&sent);
        let texts: Vec<&str> = sent
            .iter()
            .map(|m| m["params"]["message"].as_str().unwrap())
            .collect();
        assert_eq!(
            texts,
            [
                "explore: grep 'TODO' (1 tool, 0 s)",
                "explore: grep 'TODO' failed (1 tool, 0 s)",
                "explore: grep 'TODO' (2 tools, 0 s)",
                "explore: running (2 tools, 0 s)",
            ]
        );
        let values: Vec<u64> = sent
            .iter()
            .map(|m| m["params"]["progress"].as_u64().unwrap())
            .collect();
        assert_eq!(values, [1, 2, 3, 4]);
        assert!(sent.iter().all(|m| m["params"]["progressToken"] == "t"));
    }
}
