//! One client's session: the dispatcher (on the thread running
//! [`McpServer::serve`](super::McpServer::serve)), what it shares with the call workers, and
//! the calls themselves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use super::kept::{KeptCall, KeptRuns};
use super::logging::{LogSink, SENT_TARGET};
use super::progress::{Call, Writer};
use super::roots::{self, RootsState, SessionRoots};
use super::tasks::TaskStore;
use super::wire::{
    self, HANDSHAKE_VERSIONS, INVALID_PARAMS, INVALID_REQUEST, LATEST_HANDSHAKE_VERSION,
    METHOD_NOT_FOUND, PARSE_ERROR, PROTOCOL_VERSIONS, RequestMeta, error, result,
};
use super::{INSTRUCTIONS, McpServer, join};

mod calls;
mod task_methods;
use crate::runtime::CancelToken;
use crate::task_tool::TaskTool;
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
    pub(super) fn warn(&self, message: &str) {
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
    pub(super) fn choose_tool(
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
        let mut definition = super::tool_entry(&tool);
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

    pub(super) fn send(&self, message: &Value) {
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
    pub(super) fn experimental_tasks(&self) -> bool {
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

    /// Joins the workers that have answered, so the list does not grow with every call.
    pub(super) fn reap_workers(&mut self) {
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
