//! JSON-RPC and MCP wire facts: protocol revisions, error codes, a request's `_meta`, and
//! the shapes of results and errors.

use serde_json::{Map, Value, json};

/// The MCP protocol versions served, newest first: the stateless revision, then the
/// revisions reached through the `initialize` handshake.
pub const PROTOCOL_VERSIONS: [&str; 4] = ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];
/// The newest revision served (the stateless one: `server/discover`, per-request `_meta`).
pub const LATEST_PROTOCOL_VERSION: &str = PROTOCOL_VERSIONS[0];
/// The revisions an `initialize` handshake may agree on, newest first.
pub const HANDSHAKE_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
/// The version `initialize` answers a client that asks for one the handshake does not serve.
pub const LATEST_HANDSHAKE_VERSION: &str = HANDSHAKE_VERSIONS[0];

pub(crate) const PARSE_ERROR: i64 = -32700;
pub(crate) const INVALID_REQUEST: i64 = -32600;
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
pub(crate) const INVALID_PARAMS: i64 = -32602;
pub(crate) const INTERNAL_ERROR: i64 = -32603;
/// Implementation-defined (-32000..-32019): the server is busy; the same request may
/// succeed later. Carries `data.retryable: true`.
pub(crate) const SERVER_BUSY: i64 = -32000;
/// 2026-07-28: the request's protocol version is not served.
pub(crate) const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

pub(crate) const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub(crate) const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub(crate) const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub(crate) const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
pub(crate) const META_RELATED_TASK: &str = "io.modelcontextprotocol/related-task";
/// The tasks extension's identifier (2026-07-28).
pub(crate) const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// What a request's `params._meta` says about the request.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestMeta {
    /// `io.modelcontextprotocol/protocolVersion`: present on 2026-07-28 requests only.
    pub version: Option<String>,
    /// `io.modelcontextprotocol/clientCapabilities` (2026-07-28).
    pub capabilities: Value,
    /// `progressToken`, a string or a number.
    pub progress_token: Option<Value>,
    /// `io.modelcontextprotocol/logLevel` (2026-07-28).
    pub log_level: Option<String>,
    /// W3C trace context (`traceparent`), passed through to the logs.
    pub traceparent: Option<String>,
}

impl RequestMeta {
    pub fn of(params: &Map<String, Value>) -> RequestMeta {
        let Some(Value::Object(meta)) = params.get("_meta") else {
            return RequestMeta::default();
        };
        let text = |key: &str| meta.get(key).and_then(Value::as_str).map(str::to_string);
        RequestMeta {
            version: text(META_PROTOCOL_VERSION),
            capabilities: meta
                .get(META_CLIENT_CAPABILITIES)
                .filter(|value| value.is_object())
                .cloned()
                .unwrap_or_else(|| json!({})),
            progress_token: meta
                .get("progressToken")
                .filter(|token| token.is_string() || token.is_number())
                .cloned(),
            log_level: text(META_LOG_LEVEL),
            // A trace id is logged, so it is kept short and printable.
            traceparent: text("traceparent")
                .filter(|trace| trace.len() <= 128 && trace.chars().all(|c| c.is_ascii_graphic())),
        }
    }

    /// Whether this is a request of the stateless revision (it names its version).
    pub fn is_modern(&self) -> bool {
        self.version.is_some()
    }

    /// Whether the client declares `roots` on this request.
    pub fn has_roots(&self) -> bool {
        self.capabilities.get("roots").is_some_and(Value::is_object)
    }

    /// Whether the client declares the tasks extension on this request.
    pub fn has_tasks_extension(&self) -> bool {
        self.capabilities
            .get("extensions")
            .and_then(|extensions| extensions.get(TASKS_EXTENSION))
            .is_some_and(Value::is_object)
    }
}

/// Who answers: `serverInfo` in `initialize`, and in every 2026-07-28 result's `_meta`.
pub(crate) fn server_info() -> Value {
    json!({"name": "subtask", "version": env!("CARGO_PKG_VERSION")})
}

/// A response carrying `result`. A 2026-07-28 result gets its `resultType` (unless it has
/// one: `input_required`, `task`) and the server's identity in `_meta`.
pub(crate) fn result(id: &Value, mut result: Value, modern: bool) -> Value {
    if modern && let Value::Object(fields) = &mut result {
        fields
            .entry("resultType")
            .or_insert_with(|| json!("complete"));
        let meta = fields.entry("_meta").or_insert_with(|| json!({}));
        if let Value::Object(meta) = meta {
            meta.insert(META_SERVER_INFO.into(), server_info());
        }
    }
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub(crate) fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

pub(crate) fn error_with_data(id: &Value, code: i64, message: &str, data: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message, "data": data}})
}

/// The error for a request naming a protocol version this server does not serve.
pub(crate) fn unsupported_version(id: &Value, requested: &str) -> Value {
    error_with_data(
        id,
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        json!({"supported": PROTOCOL_VERSIONS, "requested": requested}),
    )
}

/// `notifications/message` levels, least severe first (RFC 5424 names, as MCP uses them).
pub(crate) const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// The rank of a log level name in [`LOG_LEVELS`].
pub(crate) fn log_rank(level: &str) -> Option<usize> {
    LOG_LEVELS.iter().position(|name| *name == level)
}
