//! One client's session: the dispatcher (on the thread running
//! [`McpServer::serve`](super::McpServer::serve)), what it shares with the call workers, and
//! the calls themselves.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use super::kept::{KeptCall, KeptRuns};
use super::logging::{LogSink, SENT_TARGET};
use super::progress::{Call, Writer};
use super::roots::{self, RootsState, SessionRoots};
use super::tasks::{Form, TaskStore};
use super::wire::{
    self, HANDSHAKE_VERSIONS, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST,
    LATEST_HANDSHAKE_VERSION, METHOD_NOT_FOUND, PARSE_ERROR, PROTOCOL_VERSIONS, RequestMeta,
    SERVER_BUSY, error, error_with_data, result,
};
use super::{INSTRUCTIONS, McpServer, RESULT_PATIENCE, join, output};
use crate::runtime::{CancelToken, Event, EventKind, panic_message};
use crate::subagents::TASK_TOOL;
use crate::task_tool::{CallOptions, TaskTool};
use crate::tools::Workspace;

/// Tools of distinct roots kept at once.
const MAX_ROOT_TOOLS: usize = 64;

/// What a session's dispatcher, workers and keep-alive thread share.
pub(super) struct Shared {
    server: McpServer,
    writer: Writer,
    /// Calls in flight by request id (its JSON text, so `1` and `"1"` differ). A worker
    /// removes its call once it has answered.
    calls: Mutex<HashMap<String, InFlight>>,
    roots: SessionRoots,
    /// The tool of each root used so far (at most [`MAX_ROOT_TOOLS`]).
    tools: Mutex<HashMap<PathBuf, TaskTool>>,
    tasks: Arc<TaskStore>,
    kept: KeptRuns,
    /// The level `logging/setLevel` asked for (handshake revisions), ranked.
    log_level: Mutex<Option<usize>>,
    /// Tripped at the end of input: blocking waits give up.
    stop: CancelToken,
}

/// A `tools/call` in flight.
struct InFlight {
    call: Arc<Call>,
    /// Cancels the call's runs.
    token: CancelToken,
    /// Its runs, for `keep_abandoned_runs`.
    kept: Arc<KeptCall>,
}

/// One client's connection: owned by the thread running [`McpServer::serve`].
pub(super) struct Session {
    shared: Arc<Shared>,
    /// Every worker started and not yet joined.
    workers: Vec<JoinHandle<()>>,
    /// What the client declared in `initialize`.
    client_capabilities: Value,
    /// The version `initialize` agreed on.
    handshake_version: Option<&'static str>,
    /// `roots/list` requests sent, for their ids.
    roots_asked: u64,
}

impl Shared {
    pub(super) fn new(server: &McpServer, writer: Writer) -> Shared {
        Shared {
            server: server.clone(),
            writer,
            calls: Mutex::new(HashMap::new()),
            roots: SessionRoots::new(),
            tools: Mutex::new(HashMap::new()),
            tasks: Arc::new(TaskStore::new(server.task_ttl, server.max_live_tasks)),
            kept: KeptRuns::new(server.task_ttl),
            log_level: Mutex::new(None),
            stop: CancelToken::new(),
        }
    }

    /// Lets the writer thread end once it has written what was sent so far.
    pub(super) fn shut(&self) {
        self.writer.shut();
    }

    /// Sends a keep-alive for each call that has been silent for the progress interval.
    pub(super) fn keep_alive(&self) {
        let calls: Vec<Arc<Call>> = self
            .calls
            .lock()
            .values()
            .map(|in_flight| in_flight.call.clone())
            .collect();
        for call in calls {
            call.keep_alive(&self.writer, self.server.progress_interval);
        }
    }

    /// Whether the client asked for `notifications/message` at `rank`: by
    /// `logging/setLevel`, or on a 2026-07-28 request in flight.
    fn wants_log(&self, rank: usize) -> bool {
        let session = self.log_level.lock().is_some_and(|level| level <= rank);
        session
            || self
                .calls
                .lock()
                .values()
                .any(|in_flight| in_flight.call.log_level.is_some_and(|level| level <= rank))
    }

    fn send_log(&self, level: &str, logger: &str, message: &str) {
        self.writer.send(&json!({
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": level, "logger": logger, "data": message},
        }));
    }

    /// Logs a warning about the session and sends it to the client if it asked for
    /// warnings (`logging/setLevel`, or a 2026-07-28 request in flight with a log level).
    fn warn(&self, message: &str) {
        // Sent here whether or not an McpLogger is installed; it skips this target.
        log::warn!(target: SENT_TARGET, "MCP: {message}");
        if self.wants_log(wire::log_rank("warning").unwrap_or(3)) {
            self.send_log("warning", "subtask::mcp", message);
        }
    }

    /// The tool for `root`, made on first use.
    fn tool_for(&self, root: &Path) -> Result<TaskTool, String> {
        if let Some(tool) = self.tools.lock().get(root) {
            return Ok(tool.clone());
        }
        let Some(for_root) = &self.server.for_root else {
            return Ok(self.server.task.clone());
        };
        // Made outside the lock: it reads the root's agent files.
        let made = Workspace::new(root).and_then(|workspace| for_root(&workspace));
        match made {
            Ok(tool) => {
                let mut tools = self.tools.lock();
                // Bounded: a client naming ever new roots starts over rather than growing it.
                if tools.len() >= MAX_ROOT_TOOLS && !tools.contains_key(root) {
                    tools.clear();
                }
                Ok(tools.entry(root.to_path_buf()).or_insert(tool).clone())
            }
            Err(problem) => Err(format!(
                "the root {} cannot be used: {}",
                root.display(),
                problem.message()
            )),
        }
    }

    /// The tool a call with `arguments` runs on, given the client's `roots` (`None`: the
    /// client has none, or did not answer); `Err` with the message for the model.
    fn choose_tool(
        &self,
        roots: Option<&[PathBuf]>,
        arguments: &Value,
    ) -> Result<TaskTool, String> {
        if self.server.for_root.is_none() {
            return Ok(self.server.task.clone());
        }
        match roots {
            Some(roots) if !roots.is_empty() => {
                let root = roots::choose(roots, arguments)?;
                self.tool_for(root)
            }
            _ => match &self.server.refusal {
                Some(reason) => Err(reason.clone()),
                None => Ok(self.server.task.clone()),
            },
        }
    }

    /// The `task` tool's `tools/list` entry: the definition of the first root's tool (or
    /// the default), its roots, output schema and annotations.
    fn tool_definition(&self, experimental_tasks: bool) -> Value {
        let roots = self.roots.known();
        let tool = roots
            .first()
            .and_then(|root| self.tool_for(root).ok())
            .unwrap_or_else(|| self.server.task.clone());
        let mut definition = tool.mcp_definition();
        if roots.len() > 1
            && let Some(Value::String(description)) = definition.get_mut("description")
        {
            description.push_str(
                "\n\nThe client's roots (set `cwd` to a directory inside one to work there; \
                 the first is the default, and the tasks of one call share one root):",
            );
            for root in &roots {
                description.push_str(&format!("\n- {}", root.display()));
            }
        }
        if self.server.keep_abandoned_runs
            && let Some(Value::String(description)) = definition.get_mut("description")
        {
            description.push_str(
                "\n\nIf a call was cut off before it answered, its runs go on: call `task` \
                 again with `resume` set to a run id from its progress messages to get that \
                 run's answer.",
            );
        }
        definition["outputSchema"] = output::output_schema();
        definition["annotations"] = json!({
            "title": "Run subagents",
            "readOnlyHint": false,
            "destructiveHint": true,
            "idempotentHint": false,
            "openWorldHint": true,
        });
        if experimental_tasks {
            definition["execution"] = json!({"taskSupport": "optional"});
        }
        definition
    }
}

impl LogSink for Shared {
    fn log(&self, level: &str, logger: &str, message: &str) {
        if let Some(rank) = wire::log_rank(level)
            && self.wants_log(rank)
        {
            self.send_log(level, logger, message);
        }
    }
}

impl Session {
    pub(super) fn new(shared: Arc<Shared>) -> Session {
        Session {
            shared,
            workers: Vec::new(),
            client_capabilities: json!({}),
            handshake_version: None,
            roots_asked: 0,
        }
    }

    fn send(&self, message: &Value) {
        self.shared.writer.send(message);
    }

    pub(super) fn dispatch(&mut self, line: &[u8]) {
        let Ok(text) = std::str::from_utf8(line) else {
            self.send(&error(
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
                self.send(&error(
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
            self.send(&error(&Value::Null, INVALID_REQUEST, problem));
            return;
        };
        let id = match message.get("id") {
            None => None,
            Some(id @ (Value::String(_) | Value::Number(_))) => Some(id.clone()),
            Some(_) => {
                self.send(&error(
                    &Value::Null,
                    INVALID_REQUEST,
                    "Invalid Request: `id` must be a string or an integer",
                ));
                return;
            }
        };
        let method = match message.get("method") {
            Some(Value::String(method)) => method.as_str(),
            None if id.is_some()
                && (message.contains_key("result") || message.contains_key("error")) =>
            {
                self.response(id.as_ref(), &message);
                return;
            }
            _ => {
                if let Some(id) = &id {
                    self.send(&error(
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
            self.send(&error(
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
                self.send(&error(
                    &id,
                    INVALID_PARAMS,
                    "Invalid params: `params` must be an object",
                ));
                return;
            }
        };
        let meta = RequestMeta::of(params);
        if let Some(version) = &meta.version
            && !PROTOCOL_VERSIONS.contains(&version.as_str())
        {
            self.send(&wire::unsupported_version(&id, version));
            return;
        }
        let modern = meta.is_modern();
        match method {
            "server/discover" => self.send(&result(&id, discover(), true)),
            "initialize" => {
                let answer = self.initialize(params);
                self.send(&result(&id, answer, false));
            }
            "ping" => self.send(&result(&id, json!({}), modern)),
            "tools/list" => {
                let experimental = !modern && self.experimental_tasks();
                let mut list = json!({"tools": [self.shared.tool_definition(experimental)]});
                if modern {
                    // The description lists the roots, which are the client's own.
                    list["ttlMs"] = json!(60_000);
                    list["cacheScope"] = json!("private");
                }
                self.send(&result(&id, list, modern));
            }
            "tools/call" => self.call(id, params, meta),
            "logging/setLevel" if !modern => {
                match params
                    .get("level")
                    .and_then(Value::as_str)
                    .and_then(wire::log_rank)
                {
                    Some(rank) => {
                        *self.shared.log_level.lock() = Some(rank);
                        self.send(&result(&id, json!({}), false));
                    }
                    None => self.send(&error(
                        &id,
                        INVALID_PARAMS,
                        &format!(
                            "Invalid params: `level` must be one of {}",
                            wire::LOG_LEVELS.join(", ")
                        ),
                    )),
                }
            }
            "tasks/get" | "tasks/cancel" | "tasks/update" | "tasks/result" | "tasks/list" => {
                self.task_method(id, method, params, modern);
            }
            _ => self.send(&error(
                &id,
                METHOD_NOT_FOUND,
                &format!("Method not found: {method}"),
            )),
        }
    }

    /// Whether this session negotiated 2025-11-25, whose experimental tasks it serves.
    fn experimental_tasks(&self) -> bool {
        self.handshake_version == Some("2025-11-25")
    }

    fn initialize(&mut self, params: &Map<String, Value>) -> Value {
        let requested = params.get("protocolVersion").and_then(Value::as_str);
        let version = HANDSHAKE_VERSIONS
            .iter()
            .find(|version| Some(**version) == requested)
            .copied()
            .unwrap_or(LATEST_HANDSHAKE_VERSION);
        self.handshake_version = Some(version);
        self.client_capabilities = params
            .get("capabilities")
            .filter(|capabilities| capabilities.is_object())
            .cloned()
            .unwrap_or_else(|| json!({}));
        let mut server = json!({"tools": {"listChanged": false}, "logging": {}});
        if version == "2025-11-25" {
            server["tasks"] =
                json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}});
        }
        json!({
            "protocolVersion": version,
            "capabilities": server,
            "serverInfo": wire::server_info(),
            "instructions": INSTRUCTIONS,
        })
    }

    /// Asks the client for its roots (handshake revisions), if it has them and they are
    /// followed.
    fn ask_roots(&mut self) {
        let declared = self
            .client_capabilities
            .get("roots")
            .is_some_and(Value::is_object);
        if self.shared.server.for_root.is_none() || !declared {
            return;
        }
        self.roots_asked += 1;
        let id = format!("subtask-roots-{}", self.roots_asked);
        self.shared.roots.set(RootsState::Pending(id.clone()));
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "roots/list"}));
    }

    /// A response from the client: to the last `roots/list` asked, or ignored.
    fn response(&mut self, id: Option<&Value>, message: &Map<String, Value>) {
        let pending = self.shared.roots.pending();
        if id.and_then(Value::as_str) != pending.as_deref() || pending.is_none() {
            log::debug!("MCP: ignored a response the server is not waiting for");
            return;
        }
        let roots = match message.get("result") {
            Some(answer) => match roots::parse(answer) {
                Ok((roots, skipped)) => {
                    for problem in skipped {
                        self.shared.warn(&format!("a root was left out: {problem}"));
                    }
                    roots
                }
                Err(problem) => {
                    self.shared.warn(&problem);
                    Vec::new()
                }
            },
            None => {
                let reason = message
                    .get("error")
                    .and_then(|error| error.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                self.shared
                    .warn(&format!("the client did not list its roots: {reason}"));
                Vec::new()
            }
        };
        if roots.is_empty() {
            log::info!("MCP: the client has no usable roots");
        } else {
            log::info!("MCP: the client's roots: {}", roots::list(&roots));
        }
        self.shared.roots.set(RootsState::Known(roots));
    }

    fn notification(&mut self, method: &str, params: Option<&Value>) {
        match method {
            "notifications/initialized" | "notifications/roots/list_changed" => self.ask_roots(),
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
                let in_flight =
                    self.shared
                        .calls
                        .lock()
                        .get(&request.to_string())
                        .map(|in_flight| {
                            (
                                in_flight.call.clone(),
                                in_flight.token.clone(),
                                in_flight.kept.clone(),
                            )
                        });
                match in_flight {
                    Some((call, _, kept)) if self.shared.server.keep_abandoned_runs => {
                        log::info!(
                            "MCP: request {request} cancelled by the client ({reason}); its \
                             runs go on, for a call that resumes them"
                        );
                        self.shared.writer.close(&call);
                        self.shared.kept.abandon(&kept);
                    }
                    Some((call, token, _)) => {
                        log::info!("MCP: request {request} cancelled by the client: {reason}");
                        self.shared.writer.close(&call);
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

    /// Starts a `tools/call` on a worker of its own (after asking for the client's roots
    /// first, on 2026-07-28, when it has them and has not sent them with this request).
    fn call(&mut self, id: Value, params: &Map<String, Value>, meta: RequestMeta) {
        let modern = meta.is_modern();
        let name = match params.get("name") {
            Some(Value::String(name)) => name.as_str(),
            _ => {
                self.send(&error(
                    &id,
                    INVALID_PARAMS,
                    "Invalid params: `name` must name the tool to call",
                ));
                return;
            }
        };
        if name != TASK_TOOL {
            self.send(&error(
                &id,
                INVALID_PARAMS,
                &format!("Unknown tool: {name}; this server has one tool, `{TASK_TOOL}`"),
            ));
            return;
        }
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(arguments) => arguments.clone(),
        };
        // 2026-07-28: the roots come with the request, as the answer to an input request.
        let mut inline_roots = None;
        if modern && self.shared.server.for_root.is_some() && meta.has_roots() {
            let answer = params
                .get("inputResponses")
                .and_then(|responses| responses.get("roots"));
            let Some(answer) = answer else {
                let ask = json!({
                    "resultType": "input_required",
                    "inputRequests": {"roots": {"method": "roots/list"}},
                });
                self.send(&result(&id, ask, true));
                return;
            };
            let roots = match roots::parse(answer) {
                Ok((roots, skipped)) => {
                    for problem in skipped {
                        self.shared.warn(&format!("a root was left out: {problem}"));
                    }
                    roots
                }
                Err(problem) => {
                    self.shared.warn(&problem);
                    Vec::new()
                }
            };
            // Kept for `tools/list`'s description only: every call asks again.
            self.shared.roots.set(RootsState::Known(roots.clone()));
            inline_roots = Some(roots);
        }
        let form = if modern {
            meta.has_tasks_extension().then_some(Form::Extension)
        } else {
            (self.experimental_tasks() && params.get("task").is_some_and(Value::is_object))
                .then_some(Form::Experimental)
        };
        let key = id.to_string();
        let token = CancelToken::new();
        let mut call = Call::new(
            id.clone(),
            // Progress is not sent for tasks: their status message carries it.
            form.is_none()
                .then(|| meta.progress_token.clone())
                .flatten(),
        );
        call.traceparent = meta.traceparent.clone();
        call.log_level = meta.log_level.as_deref().and_then(wire::log_rank);
        if let Some(trace) = &call.traceparent {
            log::info!("MCP: tools/call {key} (traceparent {trace})");
        }
        let kept = KeptCall::new();
        if let Some(form) = form {
            match self.shared.tasks.create(form, token.clone()) {
                Ok((task, handle)) => {
                    log::info!("MCP: tools/call {key} runs as task {task}");
                    call.task = Some((self.shared.tasks.clone(), task));
                    self.send(&result(&id, handle, modern));
                }
                Err(busy) => {
                    self.send(&error_with_data(
                        &id,
                        SERVER_BUSY,
                        &busy,
                        json!({"retryable": true}),
                    ));
                    return;
                }
            }
        }
        let call = Arc::new(call);
        if call.task.is_none() {
            let mut calls = self.shared.calls.lock();
            if calls.contains_key(&key) {
                drop(calls);
                self.send(&error(
                    &id,
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
                    kept: kept.clone(),
                },
            );
        }
        self.reap_workers();
        let shared = self.shared.clone();
        let worker_call = call.clone();
        let started = std::thread::Builder::new()
            .name("subtask-mcp-call".into())
            .spawn(move || {
                let call = worker_call;
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    run_call(
                        &shared,
                        &call,
                        &arguments,
                        inline_roots,
                        modern,
                        &token,
                        &kept,
                    )
                }));
                let outcome = outcome.map_err(|panic| {
                    json!({"code": INTERNAL_ERROR, "message": format!(
                        "Internal error: the task call panicked: {}",
                        panic_message(panic.as_ref())
                    )})
                });
                answer(&shared, &call, &key, outcome, modern);
            });
        match started {
            Ok(worker) => self.workers.push(worker),
            Err(problem) => {
                let problem = json!({"code": INTERNAL_ERROR, "message": format!(
                    "Internal error: cannot start a thread for the call: {problem}"
                )});
                answer(&self.shared, &call, &id.to_string(), Err(problem), modern);
            }
        }
    }

    /// `tasks/*`: the extension's methods on 2026-07-28, the experimental ones before.
    fn task_method(&mut self, id: Value, method: &str, params: &Map<String, Value>, modern: bool) {
        let store = &self.shared.tasks;
        let served = if modern {
            matches!(method, "tasks/get" | "tasks/cancel" | "tasks/update")
        } else {
            self.experimental_tasks()
                && matches!(
                    method,
                    "tasks/get" | "tasks/cancel" | "tasks/result" | "tasks/list"
                )
        };
        if !served {
            self.send(&error(
                &id,
                METHOD_NOT_FOUND,
                &format!(
                    "Method not found: {method} (tasks are served to 2026-07-28 requests \
                     declaring the {} extension, and to 2025-11-25 sessions)",
                    wire::TASKS_EXTENSION
                ),
            ));
            return;
        }
        if method == "tasks/list" {
            let list = json!({"tasks": store.list(Form::Experimental)});
            self.send(&result(&id, list, false));
            return;
        }
        let Some(task) = params.get("taskId").and_then(Value::as_str) else {
            self.send(&error(
                &id,
                INVALID_PARAMS,
                "Invalid params: `taskId` must be the id of a task",
            ));
            return;
        };
        let unknown = || {
            error(
                &id,
                INVALID_PARAMS,
                &format!(
                    "Invalid params: no task '{}': it never existed, or finished more than \
                     {} s after it was created and was forgotten",
                    task.chars().take(64).collect::<String>(),
                    self.shared.server.task_ttl.as_secs()
                ),
            )
        };
        match method {
            "tasks/get" => match store.get(task) {
                Some(view) => self.send(&result(&id, view, modern)),
                None => self.send(&unknown()),
            },
            "tasks/cancel" => match store.cancel(task) {
                Some(_) if modern => self.send(&result(&id, json!({}), true)),
                Some(view) => self.send(&result(&id, view, false)),
                None => self.send(&unknown()),
            },
            // No task of this server asks for input: responses are acknowledged and ignored.
            "tasks/update" => match store.get(task) {
                Some(_) => self.send(&result(&id, json!({}), true)),
                None => self.send(&unknown()),
            },
            _ => {
                // tasks/result blocks until the task ends: on a worker, not the dispatcher.
                if store.get(task).is_none() {
                    self.send(&unknown());
                    return;
                }
                let shared = self.shared.clone();
                let task = task.to_string();
                self.reap_workers();
                let started = std::thread::Builder::new()
                    .name("subtask-mcp-result".into())
                    .spawn(move || {
                        let waited = shared
                            .tasks
                            .wait_result(&task, RESULT_PATIENCE, &shared.stop);
                        let response = match waited {
                            Some(Ok(mut answer)) => {
                                answer["_meta"] =
                                    json!({wire::META_RELATED_TASK: {"taskId": task}});
                                result(&id, answer, false)
                            }
                            Some(Err(problem)) => {
                                json!({"jsonrpc": "2.0", "id": id, "error": problem})
                            }
                            None => error(
                                &id,
                                INVALID_PARAMS,
                                "Invalid params: the task was forgotten",
                            ),
                        };
                        shared.writer.send(&response);
                    });
                match started {
                    Ok(worker) => self.workers.push(worker),
                    Err(problem) => self.send(&error(
                        &Value::Null,
                        INTERNAL_ERROR,
                        &format!("Internal error: cannot start a thread: {problem}"),
                    )),
                }
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
    /// every working task, and waits for every worker.
    pub(super) fn finish(&mut self) {
        self.shared.stop.cancel();
        // Workers waiting for roots go on (and find their call cancelled).
        self.shared.roots.set(RootsState::None);
        let in_flight: Vec<(Arc<Call>, CancelToken)> = self
            .shared
            .calls
            .lock()
            .values()
            .map(|in_flight| (in_flight.call.clone(), in_flight.token.clone()))
            .collect();
        let tasks = self.shared.tasks.working_tokens();
        if !in_flight.is_empty() || !tasks.is_empty() {
            log::info!(
                "MCP: input ended; cancelling {} call(s) and {} task(s) in progress",
                in_flight.len(),
                tasks.len()
            );
        }
        for (call, token) in in_flight {
            self.shared.writer.close(&call);
            token.cancel();
        }
        for token in tasks {
            token.cancel();
        }
        for worker in std::mem::take(&mut self.workers) {
            join("call", worker);
        }
    }
}

/// Runs one `tools/call` of `task` to its `CallToolResult`.
fn run_call(
    shared: &Arc<Shared>,
    call: &Arc<Call>,
    arguments: &Value,
    inline_roots: Option<Vec<PathBuf>>,
    modern: bool,
    token: &CancelToken,
    kept: &Arc<KeptCall>,
) -> Value {
    // A 2026-07-28 request is stateless: its roots came with it, or it has none.
    let roots = match inline_roots {
        Some(roots) => Some(roots),
        None if !modern && shared.server.for_root.is_some() => {
            shared.roots.wait(shared.server.roots_patience)
        }
        None => None,
    };
    let tool = match shared.choose_tool(roots.as_deref(), arguments) {
        Ok(tool) => tool,
        Err(message) => return refused(&message),
    };
    let keep = shared.server.keep_abandoned_runs;
    let resume = arguments.get("resume").and_then(Value::as_str);
    if keep
        && arguments.get("tasks").is_none()
        && let Some(run) = resume
        && let Some(abandoned) = shared.kept.abandoned(run)
    {
        log::info!("MCP: waiting for run {run}, kept after its call was cut off");
        return match shared.kept.claim(&abandoned, run, token) {
            Some(mut output) => {
                for result in &mut output.results {
                    result.answer = format!(
                        "[Run {run} was still running when its call was cut off; this is its \
                         answer. Your prompt was not sent to it: resume it again to continue \
                         the conversation.]\n\n{}",
                        result.answer
                    );
                }
                output::call_result(&output, shared.server.output_budget)
            }
            None => refused(&format!(
                "the wait for run {run} was cancelled before the run ended"
            )),
        };
    }
    let mut options = CallOptions::new().cancel_token(token.clone());
    if keep || call.is_observed() || call.traceparent.is_some() {
        if keep {
            for run in resumed_runs(arguments) {
                shared.kept.track(run, kept);
            }
        }
        let observer_shared = shared.clone();
        let observer_call = call.clone();
        let observer_kept = kept.clone();
        options = options.observer(move |event: &Event| {
            if keep && matches!(event.kind, EventKind::Started { .. }) {
                observer_shared
                    .kept
                    .track(event.task.as_str(), &observer_kept);
            }
            observer_call.report(&observer_shared.writer, event);
        });
    }
    let output = tool.call_json_with(arguments, &options);
    if keep {
        shared.kept.finish(kept, &output);
    }
    output::call_result(&output, shared.server.output_budget)
}

/// The run ids a call's tasks resume.
fn resumed_runs(arguments: &Value) -> Vec<&str> {
    let single = arguments.get("resume").and_then(Value::as_str);
    let many = arguments
        .get("tasks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|task| task.get("resume").and_then(Value::as_str));
    single.into_iter().chain(many).collect()
}

/// The result of a call refused before anything ran: `isError`, the reason as text and as
/// the structured output's `error`.
fn refused(message: &str) -> Value {
    let structured = json!({
        "results": [],
        "is_error": true,
        "error": message,
        "usage": crate::llm::Usage::default(),
        "duration_ms": 0,
    });
    json!({
        "content": [{"type": "text", "text": message}],
        "structuredContent": structured,
        "isError": true,
    })
}

/// Hands a call's outcome to its client: its task's result, or its response.
fn answer(shared: &Shared, call: &Call, key: &str, outcome: Result<Value, Value>, modern: bool) {
    if let Some((store, task)) = &call.task {
        store.finish(task, outcome);
        return;
    }
    // Out of the map first, so the client may use the id again once answered.
    shared.calls.lock().remove(key);
    let response = match outcome {
        Ok(answer) => result(&call.id, answer, modern),
        Err(problem) => json!({"jsonrpc": "2.0", "id": call.id, "error": problem}),
    };
    shared.writer.respond(call, &response);
}

/// The `server/discover` result.
fn discover() -> Value {
    json!({
        "supportedVersions": PROTOCOL_VERSIONS,
        "capabilities": {
            "tools": {"listChanged": false},
            "logging": {},
            "extensions": {(wire::TASKS_EXTENSION): {}},
        },
        "instructions": INSTRUCTIONS,
        "ttlMs": 3_600_000,
        "cacheScope": "public",
    })
}
