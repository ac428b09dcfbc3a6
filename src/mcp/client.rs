//! A synchronous MCP client over stdio, so a subagent can use the tools of MCP servers
//! (`mcpServers` in an agent file).
//!
//! # Lifecycle
//!
//! A subagent run whose type names MCP servers starts them when the run starts
//! ([`McpSession::start`], several in parallel, each in the workspace root, in a process
//! group of its own) and ends them when the run ends: dropping the session kills each
//! server's process group (`SIGKILL`), reaps the process and joins its threads. The run's
//! cancellation (a cancel, a timeout) kills the groups at once too, so a server never
//! outlives its run.
//!
//! Per server there are two threads besides the caller's:
//!
//! - the **reader** reads the server's stdout, one JSON-RPC message per line (at most
//!   [`MAX_MESSAGE_BYTES`]; a server that sends more is killed and reported), hands each
//!   response to the call waiting for its id, answers the server's own requests with
//!   `-32601` (`ping` with `{}`), and logs notifications. When the output closes (the server
//!   exited or crashed) it fails every waiting call, so the model gets a tool error;
//! - the **stderr drain** reads the server's stderr to the log (`debug`, lines cut at
//!   [`STDERR_LINE_CHARS`]): never to the model.
//!
//! Both end when the server's pipes close, which killing the group guarantees for every
//! process that stayed in it; a server that moved a child out of its group and left the
//! pipe open is reported in the log and its threads are left to end with that child.
//!
//! A call (`tools/call`) waits for its response, the run's cancellation, or the run's
//! deadline. Cancelled, it returns at once and the server is sent `notifications/cancelled`
//! for the request; in a run, the session then kills the servers (a server may not even
//! read that notification before it dies: cancellation is the kill, the notification is a
//! courtesy).
//!
//! # Protocol
//!
//! The client offers protocol version [`OFFERED_VERSION`] and accepts any of
//! [`SUPPORTED_VERSIONS`] in answer; another answer ends the connection with an error
//! naming both. Then `notifications/initialized`, `tools/list` (following `nextCursor`, at
//! most [`MAX_TOOL_PAGES`] pages), and `tools/call` per call.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorKind};
use crate::runtime::{CancelGuard, CancelToken};
use crate::tools::{Tool, ToolContext};

/// The protocol version the client asks for.
pub const OFFERED_VERSION: &str = "2025-11-25";

/// The protocol versions the client accepts in a server's `initialize` answer.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// The largest message a server may send: 16 MiB. A longer line is a flood: the server is
/// killed and its tools report why.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Stderr lines are logged cut to this many characters.
pub const STDERR_LINE_CHARS: usize = 2000;

/// How many `tools/list` pages are read at most.
pub const MAX_TOOL_PAGES: usize = 32;

/// How long a server has to answer `initialize`, then `tools/list`: 30 s each (an `npx`
/// server may install itself first).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one `tools/call` may take by default: 10 minutes (the run's own timeout and
/// cancellation end it sooner). Past it the call is withdrawn and the model told.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// The default cap on one tool result, in characters: 30,000, as the `bash` tool's.
pub const DEFAULT_OUTPUT_CAP: usize = 30_000;

/// How to start one stdio MCP server: Claude Code's and Claude Desktop's
/// `{"command", "args", "env"}` (with `"type": "stdio"` or no type).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The program (found on `PATH` if it has no `/`).
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables added to the inherited environment.
    pub env: BTreeMap<String, String>,
}

impl ServerConfig {
    /// A server started as `command` with no arguments.
    pub fn new(command: impl Into<String>) -> ServerConfig {
        ServerConfig {
            command: command.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
        }
    }

    /// Sets its arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> ServerConfig {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> ServerConfig {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Reads one entry of an `mcpServers` object (`name` names it in messages).
    ///
    /// # Errors
    ///
    /// A message naming what is wrong: not an object, no `command`, a `type` other than
    /// `stdio` (subtask's client speaks stdio only), `args` or `env` of the wrong shape.
    pub fn from_json(name: &str, value: &Value) -> Result<ServerConfig, String> {
        let Value::Object(fields) = value else {
            return Err(format!(
                "the MCP server '{name}' must be an object like {{\"command\": \"npx\", \
                 \"args\": [\"-y\", \"some-server\"]}}"
            ));
        };
        match fields.get("type").and_then(Value::as_str) {
            None | Some("stdio") => {}
            Some(other) => {
                return Err(format!(
                    "the MCP server '{name}' is of type '{other}'; subtask starts stdio \
                     servers only (`command`, `args`, `env`)"
                ));
            }
        }
        let command = match fields.get("command") {
            Some(Value::String(command)) if !command.trim().is_empty() => command.clone(),
            _ if fields.contains_key("url") => {
                return Err(format!(
                    "the MCP server '{name}' is remote (`url`); subtask starts stdio servers \
                     only (`command`, `args`, `env`)"
                ));
            }
            _ => {
                return Err(format!(
                    "the MCP server '{name}' has no `command`; write the program to start"
                ));
            }
        };
        let args = match fields.get("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text.clone()),
                    Value::Number(number) => Ok(number.to_string()),
                    other => Err(format!(
                        "the MCP server '{name}': `args` holds {other}, not a string"
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(format!(
                    "the MCP server '{name}': `args` must be a list of strings"
                ));
            }
        };
        let env = match fields.get("env") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(vars)) => vars
                .iter()
                .map(|(key, value)| match value {
                    Value::String(text) => Ok((key.clone(), text.clone())),
                    Value::Number(_) | Value::Bool(_) => Ok((key.clone(), value.to_string())),
                    _ => Err(format!(
                        "the MCP server '{name}': `env.{key}` must be a string"
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(format!(
                    "the MCP server '{name}': `env` must be an object of strings"
                ));
            }
        };
        Ok(ServerConfig { command, args, env })
    }
}

/// The servers of a configuration file's top-level `mcpServers` (`.mcp.json`,
/// `~/.claude.json`, Claude Desktop's `claude_desktop_config.json`), in name order, and a
/// message per server that cannot be used (remote, malformed). A missing file, or one
/// without `mcpServers`, has none.
///
/// # Errors
///
/// [`ErrorKind::Config`] if the file exists but cannot be read or is not JSON.
#[allow(clippy::type_complexity)]
pub fn read_config_file(path: &Path) -> Result<(Vec<(String, ServerConfig)>, Vec<String>), Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Vec::new(), Vec::new()));
        }
        Err(error) => {
            return Err(Error::config(format!(
                "cannot read the MCP configuration {}: {error}",
                path.display()
            )));
        }
    };
    let value: Value = serde_json::from_str(&text).map_err(|error| {
        Error::config(format!(
            "the MCP configuration {} is not valid JSON ({error}); fix or remove it",
            path.display()
        ))
    })?;
    let mut servers = Vec::new();
    let mut problems = Vec::new();
    match value.get("mcpServers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(entries)) => {
            for (name, entry) in entries {
                match ServerConfig::from_json(name, entry) {
                    Ok(config) => servers.push((name.clone(), config)),
                    Err(problem) => problems.push(problem),
                }
            }
        }
        Some(_) => problems.push(format!(
            "`mcpServers` in {} is not an object of servers",
            path.display()
        )),
    }
    Ok((servers, problems))
}

/// The user's own MCP configuration files, in precedence order (the last wins): Claude
/// Desktop's (`$XDG_CONFIG_HOME/Claude/claude_desktop_config.json`, or
/// `~/Library/Application Support/Claude/…` on macOS), then Claude Code's `~/.claude.json`
/// (its top-level `mcpServers`, the user scope).
pub fn user_config_files() -> Vec<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    let home = absolute("HOME");
    let desktop_dir = if cfg!(target_os = "macos") {
        home.as_ref()
            .map(|home| home.join("Library/Application Support/Claude"))
    } else {
        absolute("XDG_CONFIG_HOME")
            .or_else(|| home.as_ref().map(|home| home.join(".config")))
            .map(|config| config.join("Claude"))
    };
    desktop_dir
        .map(|dir| dir.join("claude_desktop_config.json"))
        .into_iter()
        .chain(home.map(|home| home.join(".claude.json")))
        .collect()
}

/// A name as a tool-name part: `a-zA-Z0-9_-`, anything else as `_`.
fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The name the model calls a server's tool by: `mcp__<server>__<tool>`, sanitised, at
/// most 64 characters.
pub fn tool_name(server: &str, tool: &str) -> String {
    let mut name = format!("mcp__{}__{}", sanitise(server), sanitise(tool));
    name.truncate(64);
    name
}

/// The state shared by a server's client, its tools and its reader thread.
struct Connection {
    /// The server's name, as configured.
    server: String,
    /// The server's stdin. Locked for the write of one line, so lines never interleave; a
    /// server that stops reading can block that write, which the kill at run end (or on
    /// cancel) unblocks with `EPIPE`. `None` once closed.
    stdin: Mutex<Option<ChildStdin>>,
    /// Calls waiting for a response, by request id. The reader removes an entry when it
    /// delivers; a caller that gives up removes its own. Invariant: once `gone` is set, the
    /// reader has drained or will drain every entry, and a caller that inserts after
    /// that sees `gone` on its check after the insert.
    pending: Mutex<HashMap<u64, Sender<Result<Value, Error>>>>,
    /// Why the server can no longer answer (exited, crashed, flooded, killed); set once,
    /// by the reader, or by the client as it shuts the server down.
    gone: Mutex<Option<String>>,
    next_id: AtomicU64,
    /// The server's process group (its pid).
    pgid: u32,
}

impl Connection {
    fn gone(&self) -> Option<String> {
        self.gone.lock().clone()
    }

    fn mark_gone(&self, why: String) {
        let mut gone = self.gone.lock();
        if gone.is_none() {
            *gone = Some(why);
        }
    }

    fn gone_error(&self, why: &str) -> Error {
        Error::tool(format!(
            "the MCP server '{}' {why}; its tools cannot be used in this run",
            self.server
        ))
    }

    /// Writes one message, as one line.
    fn send(&self, message: &Value) -> Result<(), Error> {
        let mut line = serde_json::to_vec(message).map_err(|error| {
            Error::other(format!("cannot encode a message for MCP server: {error}"))
        })?;
        line.push(b'\n');
        let mut stdin = self.stdin.lock();
        let Some(pipe) = stdin.as_mut() else {
            return Err(self.gone_error("is shut down"));
        };
        pipe.write_all(&line)
            .and_then(|()| pipe.flush())
            .map_err(|error| {
                self.gone_error(&format!("cannot be written to ({error}): it has exited"))
            })
    }

    /// From the thread cancelling the run, which must not block: tells the server every
    /// waiting request is cancelled, if no call is writing (else the kill that follows
    /// does), without waiting for room in the pipe.
    fn withdraw_all_now(&self, reason: &str) {
        let ids: Vec<u64> = self.pending.lock().keys().copied().collect();
        if ids.is_empty() {
            return;
        }
        let Some(mut stdin) = self.stdin.try_lock() else {
            return;
        };
        let Some(pipe) = stdin.as_mut() else {
            return;
        };
        // The server is killed right after, so no later write sees this flag.
        if rustix::fs::fcntl_setfl(&*pipe, rustix::fs::OFlags::NONBLOCK).is_err() {
            return;
        }
        for id in ids {
            let message = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": id, "reason": reason}});
            let mut line = message.to_string().into_bytes();
            line.push(b'\n');
            if pipe.write_all(&line).is_err() {
                return;
            }
        }
    }

    fn notify(&self, method: &str, params: Value) {
        let message = json!({"jsonrpc": "2.0", "method": method, "params": params});
        if let Err(error) = self.send(&message) {
            log::debug!("{error}");
        }
    }

    /// Sends a request and waits for its result: until the response, `token`'s
    /// cancellation or deadline, or `timeout`. A cancelled or timed-out request is
    /// withdrawn with `notifications/cancelled`.
    fn request(
        &self,
        method: &str,
        params: Value,
        token: Option<&CancelToken>,
        timeout: Option<Duration>,
    ) -> Result<Value, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply_sender, reply) = bounded(1);
        self.pending.lock().insert(id, reply_sender);
        if let Some(why) = self.gone() {
            self.pending.lock().remove(&id);
            return Err(self.gone_error(&why));
        }
        let (cancel_sender, cancelled) = bounded::<()>(1);
        let _on_cancel: Option<CancelGuard> = token.map(|token| {
            token.on_cancel(move || {
                let _ = cancel_sender.try_send(());
            })
        });
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if let Err(error) = self.send(&message) {
            self.pending.lock().remove(&id);
            return Err(error);
        }
        let limit = match (timeout, token.and_then(CancelToken::remaining)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let deadline = match limit {
            Some(limit) => crossbeam_channel::after(limit),
            None => crossbeam_channel::never(),
        };
        let withdraw = |reason: &str| {
            self.pending.lock().remove(&id);
            self.notify(
                "notifications/cancelled",
                json!({"requestId": id, "reason": reason}),
            );
        };
        crossbeam_channel::select! {
            recv(reply) -> answer => match answer {
                Ok(answer) => answer,
                // The reader drops senders only after answering them or marking the
                // server gone.
                Err(_) => Err(self.gone_error(&self.gone().unwrap_or_else(|| "stopped".into()))),
            },
            recv(cancelled) -> _ => {
                withdraw("the subagent run was cancelled");
                match token.map(CancelToken::check) {
                    Some(Err(error)) => Err(error),
                    _ => Err(Error::new(ErrorKind::Cancelled, "the subagent run was cancelled")),
                }
            },
            recv(deadline) -> _ => {
                withdraw("timed out");
                if let Some(Err(error)) = token.map(CancelToken::check) {
                    return Err(error);
                }
                Err(Error::tool(format!(
                    "the MCP server '{}' did not answer `{method}` within {:.0?}",
                    self.server,
                    limit.unwrap_or_default()
                )))
            },
        }
    }
}

/// A running MCP server: its process, its connection, its threads. Dropping it kills the
/// server's process group and joins the threads.
pub struct McpClient {
    connection: Arc<Connection>,
    child: Child,
    /// The reader and the stderr drain, each with a signal sent as it ends.
    threads: Vec<(JoinHandle<()>, Receiver<()>)>,
    /// What `initialize` answered.
    protocol_version: String,
    server_info: Value,
    tools: Vec<Value>,
    /// How long each call of its tools may take.
    call_timeout: Duration,
}

impl fmt::Debug for McpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpClient")
            .field("server", &self.connection.server)
            .field("pid", &self.connection.pgid)
            .field("protocol_version", &self.protocol_version)
            .field("tools", &self.tools.len())
            .finish_non_exhaustive()
    }
}

impl McpClient {
    /// Starts server `name` in `cwd` and connects: `initialize`, `notifications/initialized`,
    /// `tools/list`. Gives up when `token` is cancelled.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the command cannot be started, the server does not
    /// answer within [`START_TIMEOUT`], answers with an error or a protocol version outside
    /// [`SUPPORTED_VERSIONS`], or exits; the token's [`ErrorKind::Cancelled`] or
    /// [`ErrorKind::Timeout`] when it trips first. The server is killed first.
    pub fn start(
        name: &str,
        config: &ServerConfig,
        cwd: &Path,
        token: &CancelToken,
    ) -> Result<McpClient, Error> {
        let mut command = Command::new(&config.command);
        command
            .args(&config.args)
            .envs(&config.env)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().map_err(|error| {
            Error::config(format!(
                "cannot start the MCP server '{name}' (`{}`): {error}; check its `command`",
                config.command
            ))
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let connection = Arc::new(Connection {
            server: name.to_string(),
            stdin: Mutex::new(stdin),
            pending: Mutex::new(HashMap::new()),
            gone: Mutex::new(None),
            next_id: AtomicU64::new(1),
            pgid: child.id(),
        });
        let mut client = McpClient {
            connection: connection.clone(),
            child,
            threads: Vec::new(),
            protocol_version: String::new(),
            server_info: Value::Null,
            tools: Vec::new(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
        };
        // From here on, dropping `client` kills the server and joins what was spawned.
        if let Some(stdout) = stdout {
            let connection = connection.clone();
            client.spawn_thread(format!("mcp-{name}-reader"), move || {
                read_messages(&connection, stdout)
            })?;
        }
        if let Some(stderr) = stderr {
            let server = name.to_string();
            client.spawn_thread(format!("mcp-{name}-stderr"), move || {
                drain_stderr(&server, stderr)
            })?;
        }
        client
            .handshake(token)
            .map_err(|error| match error.kind() {
                // The run was cancelled or ran out of time while the server started.
                ErrorKind::Cancelled | ErrorKind::Timeout => error,
                _ => Error::config(format!(
                    "the MCP server '{name}' could not be started: {}",
                    error.message()
                )),
            })?;
        Ok(client)
    }

    fn spawn_thread(
        &mut self,
        name: String,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<(), Error> {
        let (done, ended) = bounded(1);
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                body();
                let _ = done.send(());
            })
            .map_err(|error| Error::other(format!("cannot start an MCP thread: {error}")))?;
        self.threads.push((handle, ended));
        Ok(())
    }

    fn handshake(&mut self, token: &CancelToken) -> Result<(), Error> {
        let connection = &self.connection;
        let init = connection.request(
            "initialize",
            json!({
                "protocolVersion": OFFERED_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "subtask", "version": env!("CARGO_PKG_VERSION")},
            }),
            Some(token),
            Some(START_TIMEOUT),
        )?;
        let version = init
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(Error::config(format!(
                "it answered protocol version '{version}', and subtask speaks {}",
                SUPPORTED_VERSIONS.join(", ")
            )));
        }
        self.protocol_version = version.to_string();
        self.server_info = init.get("serverInfo").cloned().unwrap_or(Value::Null);
        connection.notify("notifications/initialized", json!({}));
        let mut cursor: Option<Value> = None;
        for _ in 0..MAX_TOOL_PAGES {
            let params = match &cursor {
                Some(cursor) => json!({"cursor": cursor}),
                None => json!({}),
            };
            let page =
                connection.request("tools/list", params, Some(token), Some(START_TIMEOUT))?;
            if let Some(Value::Array(tools)) = page.get("tools") {
                self.tools.extend(tools.iter().cloned());
            }
            cursor = page
                .get("nextCursor")
                .filter(|next| !next.is_null())
                .cloned();
            if cursor.is_none() {
                return Ok(());
            }
        }
        log::warn!(
            "the MCP server '{}' lists tools over more than {MAX_TOOL_PAGES} pages; the rest \
             are left out",
            connection.server
        );
        Ok(())
    }

    /// Limits each call of the tools [`tools`](Self::tools) makes from now on. Defaults to
    /// [`DEFAULT_CALL_TIMEOUT`].
    pub fn set_call_timeout(&mut self, timeout: Duration) {
        self.call_timeout = timeout;
    }

    /// The server's name.
    pub fn server(&self) -> &str {
        &self.connection.server
    }

    /// Its process id (which leads its process group).
    pub fn pid(&self) -> u32 {
        self.connection.pgid
    }

    /// The protocol version agreed.
    pub fn protocol_version(&self) -> &str {
        &self.protocol_version
    }

    /// The server's `serverInfo`.
    pub fn server_info(&self) -> &Value {
        &self.server_info
    }

    /// The server's tools as [`Tool`]s named `mcp__<server>__<tool>`, each result capped at
    /// `output_cap` characters. A tool whose name collides with an earlier one once
    /// sanitised is left out (and logged).
    pub fn tools(&self, output_cap: usize) -> Vec<Arc<dyn Tool>> {
        let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
        for listed in &self.tools {
            let Some(remote) = listed.get("name").and_then(Value::as_str) else {
                continue;
            };
            let name = tool_name(&self.connection.server, remote);
            if tools.iter().any(|tool| tool.name() == name) {
                log::warn!(
                    "the MCP server '{}' has two tools named {name} once sanitised; '{remote}' \
                     is left out",
                    self.connection.server
                );
                continue;
            }
            let parameters = match listed.get("inputSchema") {
                Some(schema @ Value::Object(_)) => schema.clone(),
                _ => json!({"type": "object"}),
            };
            let read_only = listed
                .pointer("/annotations/readOnlyHint")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let description = listed
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            tools.push(Arc::new(McpTool {
                connection: self.connection.clone(),
                description: format!(
                    "{description}\n\n(A tool of the MCP server '{}'.)",
                    self.connection.server
                )
                .trim_start()
                .to_string(),
                name,
                remote: remote.to_string(),
                parameters,
                read_only,
                output_cap: output_cap.max(2),
                call_timeout: self.call_timeout,
            }));
        }
        tools
    }

    /// Kills the server's process group now; its calls fail with a tool error.
    pub fn kill(&self) {
        self.connection
            .mark_gone("was stopped as its run ended".into());
        kill_group(self.connection.pgid);
    }
}

impl Drop for McpClient {
    fn drop(&mut self) {
        self.kill();
        // Closing stdin too, for a server that left the group.
        drop(self.connection.stdin.lock().take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (handle, ended) in self.threads.drain(..) {
            // The pipes close with the group; a process that left the group may keep one
            // open, and then its thread ends with it rather than blocking this drop.
            if ended.recv_timeout(Duration::from_secs(2)).is_ok() {
                let _ = handle.join();
            } else {
                log::warn!(
                    "a thread of the MCP server '{}' is still reading: a process it started \
                     left its group and holds its pipe; the thread ends when that process does",
                    self.connection.server
                );
            }
        }
    }
}

fn kill_group(pgid: u32) {
    if let Some(pid) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        // ESRCH (already gone) is the usual, harmless outcome.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// The reader thread: routes the server's messages until its stdout closes.
fn read_messages(connection: &Connection, stdout: impl Read) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::new();
    let why = loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_MESSAGE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line);
        match read {
            Ok(0) => break "exited (or crashed) and closed its output".to_string(),
            Ok(_) if line.len() > MAX_MESSAGE_BYTES => {
                kill_group(connection.pgid);
                break format!("sent a message over {MAX_MESSAGE_BYTES} bytes and was stopped");
            }
            Ok(_) => {}
            Err(error) => break format!("could not be read ({error})"),
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(message)) => route(connection, message),
            _ => log::debug!(
                "MCP server '{}' wrote a line that is not a JSON-RPC message; ignored",
                connection.server
            ),
        }
    };
    log::debug!("MCP server '{}' {why}", connection.server);
    connection.mark_gone(why.clone());
    let waiting: Vec<_> = connection.pending.lock().drain().collect();
    let why = connection.gone().unwrap_or(why);
    for (_, sender) in waiting {
        let _ = sender.send(Err(connection.gone_error(&why)));
    }
}

fn route(connection: &Connection, message: Map<String, Value>) {
    let id = message.get("id").filter(|id| !id.is_null());
    match (message.get("method").and_then(Value::as_str), id) {
        // A request of the server's: subtask offers no client capabilities.
        (Some(method), Some(id)) => {
            let reply = if method == "ping" {
                json!({"jsonrpc": "2.0", "id": id, "result": {}})
            } else {
                json!({"jsonrpc": "2.0", "id": id, "error": {
                    "code": -32601,
                    "message": format!("method not found: subtask's client does not offer {method}"),
                }})
            };
            if let Err(error) = connection.send(&reply) {
                log::debug!("{error}");
            }
        }
        (Some(method), None) => {
            log::debug!("MCP server '{}': {method}", connection.server);
        }
        (None, Some(id)) => {
            let Some(id) = id.as_u64() else {
                return;
            };
            let Some(waiting) = connection.pending.lock().remove(&id) else {
                // A response to a request withdrawn already.
                return;
            };
            let answer = match (message.get("result"), message.get("error")) {
                (_, Some(error)) => Err(Error::tool(format!(
                    "the MCP server '{}' answered with an error: {}",
                    connection.server,
                    error
                        .get("message")
                        .and_then(Value::as_str)
                        .map_or_else(|| error.to_string(), str::to_string)
                ))),
                (Some(result), None) => Ok(result.clone()),
                (None, None) => Ok(Value::Null),
            };
            let _ = waiting.send(answer);
        }
        (None, None) => {}
    }
}

/// The stderr drain: the server's log, to ours, a line at a time (cut when long).
fn drain_stderr(server: &str, stderr: impl Read) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(STDERR_LINE_CHARS as u64 * 4)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text: String = text.trim_end().chars().take(STDERR_LINE_CHARS).collect();
                log::debug!("MCP server '{server}' stderr: {text}");
            }
        }
    }
}

/// One tool of an MCP server, as the model sees it.
struct McpTool {
    connection: Arc<Connection>,
    name: String,
    remote: String,
    description: String,
    parameters: Value,
    read_only: bool,
    output_cap: usize,
    call_timeout: Duration,
}

impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        self.parameters.clone()
    }

    /// Only a tool the server annotates `readOnlyHint: true`.
    fn read_only(&self) -> bool {
        self.read_only
    }

    fn call(&self, input: &Value, context: &ToolContext<'_>) -> Result<String, Error> {
        let result = self.connection.request(
            "tools/call",
            json!({"name": self.remote, "arguments": input}),
            Some(context.token()),
            Some(self.call_timeout),
        )?;
        let text = result_text(&result);
        let text = crate::tools::cap_text(&text, self.output_cap);
        if result.get("isError").and_then(Value::as_bool) == Some(true) {
            return Err(Error::tool(text));
        }
        Ok(text)
    }
}

/// A `CallToolResult` as text: text blocks joined, other blocks described, the structured
/// content when there is no text.
fn result_text(result: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(Value::Array(blocks)) = result.get("content") {
        for block in blocks {
            let field = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or_default();
            let part = match field("type") {
                "text" => field("text").to_string(),
                kind @ ("image" | "audio") => format!(
                    "[{kind} content, {}, {} bytes base64, not shown]",
                    field("mimeType"),
                    field("data").len()
                ),
                "resource_link" => format!("[resource link: {} {}]", field("uri"), field("name"))
                    .replace(" ]", "]"),
                "resource" => match block.pointer("/resource/text").and_then(Value::as_str) {
                    Some(text) => text.to_string(),
                    None => format!(
                        "[resource {}, binary, not shown]",
                        block
                            .pointer("/resource/uri")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                    ),
                },
                other => format!("[{other} content, not shown]"),
            };
            parts.push(part);
        }
    }
    if parts.is_empty()
        && let Some(structured) = result.get("structuredContent")
    {
        parts.push(structured.to_string());
    }
    parts.join("\n")
}

/// The MCP servers of one subagent run: started together, killed together when dropped or
/// when the run's token is cancelled.
pub struct McpSession {
    clients: Vec<McpClient>,
    /// When the run is cancelled or times out: tells each server its waiting calls are
    /// cancelled (best effort, never blocking the cancelling thread), then kills its group,
    /// so even a call blocked writing to a server that stopped reading returns.
    _on_cancel: Option<CancelGuard>,
}

impl fmt::Debug for McpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.clients).finish()
    }
}

impl McpSession {
    /// No servers.
    pub fn empty() -> McpSession {
        McpSession {
            clients: Vec::new(),
            _on_cancel: None,
        }
    }

    /// Starts `servers` in `cwd`, in parallel, under the run's `token`.
    ///
    /// # Errors
    ///
    /// The first server that could not be started (see [`McpClient::start`]); the others
    /// are killed.
    pub fn start(
        servers: &[(String, ServerConfig)],
        cwd: &Path,
        token: &CancelToken,
    ) -> Result<McpSession, Error> {
        let started: Vec<Result<McpClient, Error>> = std::thread::scope(|scope| {
            let starts: Vec<_> = servers
                .iter()
                .map(|(name, config)| {
                    scope.spawn(move || McpClient::start(name, config, cwd, token))
                })
                .collect();
            starts
                .into_iter()
                .map(|start| {
                    start.join().unwrap_or_else(|panic| {
                        Err(Error::other(format!(
                            "starting an MCP server panicked: {}",
                            crate::runtime::panic_message(panic.as_ref())
                        )))
                    })
                })
                .collect()
        });
        let mut clients = Vec::new();
        for client in started {
            // An error drops (and so kills) the servers already collected.
            clients.push(client?);
        }
        let connections: Vec<Arc<Connection>> = clients
            .iter()
            .map(|client| client.connection.clone())
            .collect();
        let on_cancel = token.on_cancel(move || {
            for connection in connections {
                connection.withdraw_all_now("the subagent run was cancelled");
                connection.mark_gone("was stopped as its run was cancelled".into());
                kill_group(connection.pgid);
            }
        });
        Ok(McpSession {
            clients,
            _on_cancel: Some(on_cancel),
        })
    }

    /// The servers.
    pub fn clients(&self) -> &[McpClient] {
        &self.clients
    }

    /// Every server's tools (see [`McpClient::tools`]).
    pub fn tools(&self, output_cap: usize) -> Vec<Arc<dyn Tool>> {
        self.clients
            .iter()
            .flat_map(|client| client.tools(output_cap))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_read_claude_code_and_desktop_entries() {
        let config = ServerConfig::from_json(
            "fs",
            &json!({"type": "stdio", "command": "npx", "args": ["-y", "x"], "env": {"A": "1"}}),
        )
        .unwrap();
        assert_eq!(
            config,
            ServerConfig::new("npx").args(["-y", "x"]).env("A", "1")
        );
        let remote = ServerConfig::from_json("r", &json!({"type": "http", "url": "https://x"}));
        assert!(remote.unwrap_err().contains("stdio servers only"));
        let remote = ServerConfig::from_json("r", &json!({"url": "https://x"}));
        assert!(remote.unwrap_err().contains("remote"));
        assert!(
            ServerConfig::from_json("n", &json!({"args": []}))
                .unwrap_err()
                .contains("no `command`")
        );
        assert!(
            ServerConfig::from_json("n", &json!({"command": "x", "args": "a b"}))
                .unwrap_err()
                .contains("`args`")
        );
    }

    #[test]
    fn tool_names_are_sanitised_and_bounded() {
        assert_eq!(tool_name("fs", "read_file"), "mcp__fs__read_file");
        assert_eq!(tool_name("my server", "get.sum"), "mcp__my_server__get_sum");
        assert_eq!(tool_name("s", &"x".repeat(100)).len(), 64);
    }

    #[test]
    fn results_join_text_and_describe_the_rest() {
        let result = json!({"content": [
            {"type": "text", "text": "one"},
            {"type": "image", "data": "AAAA", "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "file:///a", "text": "inside"}},
            {"type": "resource_link", "uri": "file:///b", "name": "b"},
        ]});
        assert_eq!(
            result_text(&result),
            "one\n[image content, image/png, 4 bytes base64, not shown]\ninside\n\
             [resource link: file:///b b]"
        );
        let structured = json!({"content": [], "structuredContent": {"a": 1}});
        assert_eq!(result_text(&structured), "{\"a\":1}");
    }
}
