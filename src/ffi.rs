//! The C ABI (`include/subtask.h`, generated from this file by cbindgen): opaque handles,
//! JSON strings in and out, errors as objects. The only module with `unsafe`.
//!
//! Conventions (as regex-capi and wasmtime's C API):
//! - A fallible function returns a `subtask_error*`: NULL on success, else an error the
//!   caller frees with `subtask_error_free`. Out-parameters are written only on success.
//! - Every export runs inside [`guard`], which turns a panic into an error; every pointer is
//!   checked for NULL and every string for UTF-8.
//! - Strings returned to the caller are freed with `subtask_string_free`.
//! - Handles are made by `*_new` and released by `*_free`; `*_free(NULL)` does nothing.

#![allow(non_camel_case_types, unsafe_code, missing_debug_implementations)] // C handles

use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorKind};
use crate::llm::{ChatModel, FunctionModel, ModelConfig};
use crate::runtime::{Event, EventKind, Progress, Runtime, TaskStatus};
use crate::subagents::{SubagentRegistry, Subagents, Transcripts};
use crate::task_tool::{TaskTool, TaskToolConfig};
use crate::tools::{Tool, ToolContext, ToolRegistry, Workspace, builtin_tools};

/// The version of this ABI; it changes when a function's signature or meaning does.
pub const SUBTASK_ABI_VERSION: u32 = 1;

/// An error: a stable code (`subtask_error_code`) and a message. Owned by the caller;
/// release it with `subtask_error_free`. Not thread-safe: use it from one thread.
pub struct subtask_error {
    code: i32,
    message: CString,
}

/// Settings and host extensions for a runtime, collected before it is built. Owned by the
/// caller; release with `subtask_config_free` (it may be freed right after
/// `subtask_runtime_new`). Not thread-safe: configure from one thread.
pub struct subtask_config {
    settings: Map<String, Value>,
    model: Option<Arc<dyn ChatModel>>,
    tools: Vec<Arc<dyn Tool>>,
    events: Option<(subtask_event_callback, UserData)>,
}

/// A runtime with the `task` tool. Owned by the caller; release with `subtask_runtime_free`,
/// which cancels running tasks and waits for them (a few seconds at most). Thread-safe:
/// every function taking a `subtask_runtime*` may be called from several threads at once,
/// and a call blocks only its own thread.
pub struct subtask_runtime {
    runtime: Runtime,
    task: TaskTool,
}

/// Where a callback writes its result: passed to the callback, valid only during the call.
pub struct subtask_reply {
    text: Option<String>,
}

/// A host tool: gets the call's arguments as JSON; writes its result with
/// `subtask_reply_set` and returns 0, or writes an error message and returns non-zero (the
/// model reads the message). May be called from several threads at once.
pub type subtask_tool_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        input_json: *const c_char,
        reply: *mut subtask_reply,
    ) -> i32,
>;

/// A host chat model: gets an OpenAI Chat Completions request body as JSON; writes a Chat
/// Completions response body with `subtask_reply_set` and returns 0, or writes an error
/// message and returns non-zero. May be called from several threads at once.
pub type subtask_model_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        request_json: *const c_char,
        reply: *mut subtask_reply,
    ) -> i32,
>;

/// Receives task events as JSON (`{"task": …, "label": …, "kind": "started", …}`), on the
/// runtime's scheduler threads, one event of a task at a time. Must return quickly.
pub type subtask_event_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event_json: *const c_char)>;

/// The host's `user_data`, handed back to its callbacks.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);

impl UserData {
    /// The pointer. A method, so closures capture the whole (Send + Sync) `UserData`
    /// rather than the raw pointer field alone.
    fn get(self) -> *mut c_void {
        self.0
    }
}

// SAFETY: the header requires `user_data` to be usable from any thread, at the same time:
// subtask only passes the pointer back, never dereferences it.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

/// Runs an export's body, turning a panic into an error: nothing unwinds into C.
fn guard(body: impl FnOnce() -> Result<(), Error>) -> *mut subtask_error {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        Err(Error::new(
            ErrorKind::Panic,
            format!(
                "subtask panicked (a bug, please report it): {}",
                crate::runtime::panic_message(panic.as_ref())
            ),
        ))
    });
    match outcome {
        Ok(()) => ptr::null_mut(),
        Err(error) => Box::into_raw(Box::new(subtask_error {
            code: error.kind().code(),
            message: c_string(error.to_string()),
        })),
    }
}

/// Runs an export that returns nothing, swallowing a panic (logged).
fn guard_void(body: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(body)) {
        log::error!(
            "subtask panicked in a C call: {}",
            crate::runtime::panic_message(panic.as_ref())
        );
    }
}

/// A Rust string as an owned C string (NUL bytes, impossible in JSON, become spaces).
fn c_string(text: String) -> CString {
    CString::new(text).unwrap_or_else(|error| {
        let mut bytes = error.into_vec();
        bytes
            .iter_mut()
            .filter(|byte| **byte == 0)
            .for_each(|byte| *byte = b' ');
        CString::new(bytes).unwrap_or_default()
    })
}

/// Reads a string argument.
///
/// # Safety
///
/// `text` is NULL or points to a NUL-terminated string valid for the call.
unsafe fn text_arg<'a>(text: *const c_char, name: &str) -> Result<&'a str, Error> {
    if text.is_null() {
        return Err(Error::invalid_input(format!("`{name}` is NULL")));
    }
    // SAFETY: not NULL, and NUL-terminated per the caller's contract.
    let text = unsafe { CStr::from_ptr(text) };
    text.to_str()
        .map_err(|error| Error::invalid_input(format!("`{name}` is not UTF-8: {error}")))
}

/// Reads a JSON argument (NULL reads as `null`).
///
/// # Safety
///
/// As [`text_arg`].
unsafe fn json_arg(text: *const c_char, name: &str) -> Result<Value, Error> {
    if text.is_null() {
        return Ok(Value::Null);
    }
    // SAFETY: forwarded contract.
    let text = unsafe { text_arg(text, name) }?;
    serde_json::from_str(text)
        .map_err(|error| Error::invalid_input(format!("`{name}` is not valid JSON: {error}")))
}

/// Checks an out-parameter.
fn out_arg<T>(out: *mut T, name: &str) -> Result<*mut T, Error> {
    if out.is_null() {
        Err(Error::invalid_input(format!(
            "`{name}` (the out-parameter) is NULL"
        )))
    } else {
        Ok(out)
    }
}

/// Writes an owned string to an out-parameter.
///
/// # Safety
///
/// `out` is valid for a write (checked non-NULL by [`out_arg`]).
unsafe fn write_string(out: *mut *mut c_char, text: String) {
    // SAFETY: the caller's contract.
    unsafe { *out = c_string(text).into_raw() };
}

/// Borrows a handle.
///
/// # Safety
///
/// `handle` is NULL or a live handle from this library.
unsafe fn handle<'a, T>(handle: *const T, name: &str) -> Result<&'a T, Error> {
    // SAFETY: the caller's contract: NULL or live.
    unsafe { handle.as_ref() }.ok_or_else(|| Error::invalid_input(format!("`{name}` is NULL")))
}

/// The ABI version (`SUBTASK_ABI_VERSION`); compare it with the header's.
#[unsafe(no_mangle)]
pub extern "C" fn subtask_abi_version() -> u32 {
    SUBTASK_ABI_VERSION
}

/// The error's stable code: 1 invalid input, 2 configuration, 3 queue full, 4 timeout,
/// 5 cancelled, 6 shutdown, 7 panic, 8 provider, 9 tool, 10 I/O, 11 failed, 12 internal.
/// 0 if `error` is NULL.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_error_code(error: *const subtask_error) -> i32 {
    // SAFETY: NULL or a live error, per the header.
    unsafe { error.as_ref() }.map_or(0, |error| error.code)
}

/// The error's message, owned by the error (valid until `subtask_error_free`). NULL if
/// `error` is NULL.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_error_message(error: *const subtask_error) -> *const c_char {
    // SAFETY: NULL or a live error, per the header.
    unsafe { error.as_ref() }.map_or(ptr::null(), |error| error.message.as_ptr())
}

/// Releases an error. NULL does nothing; call at most once per error.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_error_free(error: *mut subtask_error) {
    guard_void(|| {
        if !error.is_null() {
            // SAFETY: made by Box::into_raw in `guard`, released once per the header.
            drop(unsafe { Box::from_raw(error) });
        }
    });
}

/// Releases a string this library returned. NULL does nothing; call at most once.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_string_free(text: *mut c_char) {
    guard_void(|| {
        if !text.is_null() {
            // SAFETY: made by CString::into_raw in `write_string`, released once.
            drop(unsafe { CString::from_raw(text) });
        }
    });
}

/// Sets a callback's result (copied). `reply` is the one the callback received; `text` is
/// UTF-8 (invalid bytes are replaced). NULL arguments do nothing.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_reply_set(reply: *mut subtask_reply, text: *const c_char) {
    guard_void(|| {
        if reply.is_null() || text.is_null() {
            return;
        }
        // SAFETY: NUL-terminated per the header.
        let text = unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: `reply` is the live reply of the callback in progress.
        unsafe { (*reply).text = Some(text) };
    });
}

/// Makes a configuration from JSON (NULL for every default). Keys, all optional:
/// `scheduler_threads`, `execution_threads`, `max_queued`, `poll_interval`,
/// `execution_timeout`, `queue_timeout`, `wait_timeout` (seconds), `model`
/// (`provider:model` or an alias; default: `SUBTASK_MODEL`), `api_key`, `base_url`,
/// `workspace` (default: the current directory), `transcripts` (a directory, or `"off"`;
/// default: `.subtask/transcripts` in the workspace), `agents_dirs` (directories of
/// Markdown subagent types, besides `.subtask/agents`), `max_parallel`, `max_depth`.
/// Unknown keys are an error. On success writes a new config to `*out`.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_config_new(
    config_json: *const c_char,
    out: *mut *mut subtask_config,
) -> *mut subtask_error {
    guard(|| {
        let out = out_arg(out, "out")?;
        // SAFETY: NULL or a NUL-terminated string, per the header.
        let settings = match unsafe { json_arg(config_json, "config_json") }? {
            Value::Null => Map::new(),
            Value::Object(settings) => settings,
            _ => return Err(Error::invalid_input("`config_json` must be a JSON object")),
        };
        check_settings(&settings)?;
        let config = Box::new(subtask_config {
            settings,
            model: None,
            tools: Vec::new(),
            events: None,
        });
        // SAFETY: `out` checked non-NULL; valid for a write per the header.
        unsafe { *out = Box::into_raw(config) };
        Ok(())
    })
}

/// Releases a configuration. NULL does nothing; call at most once.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_config_free(config: *mut subtask_config) {
    guard_void(|| {
        if !config.is_null() {
            // SAFETY: made by Box::into_raw in `subtask_config_new`, released once.
            drop(unsafe { Box::from_raw(config) });
        }
    });
}

/// Uses a host model (see `subtask_model_callback`) for every subagent, instead of a
/// configured provider. `name` names it in usage footers. `user_data` is passed back to
/// every call and must stay valid, and usable from any thread, until the runtime is freed.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_config_set_model(
    config: *mut subtask_config,
    name: *const c_char,
    callback: subtask_model_callback,
    user_data: *mut c_void,
) -> *mut subtask_error {
    guard(|| {
        // SAFETY: NULL or a live config, per the header.
        let config =
            unsafe { config.as_mut() }.ok_or_else(|| Error::invalid_input("`config` is NULL"))?;
        // SAFETY: NUL-terminated per the header.
        let name = unsafe { text_arg(name, "name") }?.to_string();
        let callback = callback.ok_or_else(|| Error::invalid_input("`callback` is NULL"))?;
        let user_data = UserData(user_data);
        config.model = Some(Arc::new(FunctionModel::new(
            name,
            move |request: &Value| {
                let (code, text) = call_back(request.to_string(), |input, reply| {
                    // SAFETY: the host's callback, called as its typedef documents.
                    unsafe { callback(user_data.get(), input, reply) }
                });
                let text = text.ok_or_else(|| "the model callback wrote no reply".to_string())?;
                if code != 0 {
                    return Err(text);
                }
                serde_json::from_str(&text)
                    .map_err(|error| format!("the model callback's reply is not JSON: {error}"))
            },
        )));
        Ok(())
    })
}

/// Adds a host tool that subagents may call (see `subtask_tool_callback`). `schema_json` is
/// the JSON Schema of its arguments (an object schema); `read_only` says whether read-only
/// subagents may use it. `user_data` is passed back to every call and must stay valid, and
/// usable from any thread, until the runtime is freed.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_config_add_tool(
    config: *mut subtask_config,
    name: *const c_char,
    description: *const c_char,
    schema_json: *const c_char,
    read_only: bool,
    callback: subtask_tool_callback,
    user_data: *mut c_void,
) -> *mut subtask_error {
    guard(|| {
        // SAFETY: NULL or a live config, per the header.
        let config =
            unsafe { config.as_mut() }.ok_or_else(|| Error::invalid_input("`config` is NULL"))?;
        // SAFETY: NUL-terminated per the header (each).
        let (name, description, parameters) = unsafe {
            (
                text_arg(name, "name")?.to_string(),
                text_arg(description, "description")?.to_string(),
                json_arg(schema_json, "schema_json")?,
            )
        };
        if !parameters.is_object() {
            return Err(Error::invalid_input("`schema_json` must be a JSON object"));
        }
        let callback = callback.ok_or_else(|| Error::invalid_input("`callback` is NULL"))?;
        config.tools.push(Arc::new(CallbackTool {
            name,
            description,
            parameters,
            read_only,
            callback,
            user_data: UserData(user_data),
        }));
        Ok(())
    })
}

/// Sends every task event to `callback` as JSON. `user_data` must stay valid, and usable
/// from any thread, until the runtime is freed.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_config_set_event_callback(
    config: *mut subtask_config,
    callback: subtask_event_callback,
    user_data: *mut c_void,
) -> *mut subtask_error {
    guard(|| {
        // SAFETY: NULL or a live config, per the header.
        let config =
            unsafe { config.as_mut() }.ok_or_else(|| Error::invalid_input("`config` is NULL"))?;
        let callback = callback.ok_or_else(|| Error::invalid_input("`callback` is NULL"))?;
        config.events = Some((Some(callback), UserData(user_data)));
        Ok(())
    })
}

/// Builds a runtime from `config` (NULL for every default and the model from the
/// environment). On success writes it to `*out`; `config` stays the caller's.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_runtime_new(
    config: *const subtask_config,
    out: *mut *mut subtask_runtime,
) -> *mut subtask_error {
    guard(|| {
        let out = out_arg(out, "out")?;
        // SAFETY: NULL or a live config, per the header.
        let config = unsafe { config.as_ref() };
        let runtime = Box::new(build_runtime(config)?);
        // SAFETY: `out` checked non-NULL; valid for a write per the header.
        unsafe { *out = Box::into_raw(runtime) };
        Ok(())
    })
}

/// Releases a runtime: cancels its tasks and waits for them to stop (a few seconds at
/// most). NULL does nothing; call at most once, and not while another thread uses it.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_runtime_free(runtime: *mut subtask_runtime) {
    guard_void(|| {
        if !runtime.is_null() {
            // SAFETY: made by Box::into_raw in `subtask_runtime_new`, released once.
            drop(unsafe { Box::from_raw(runtime) });
        }
    });
}

/// Runs a `task` call and blocks until every run it started has ended. `args_json` is the
/// `task` tool's input (one task, or `tasks`). On success writes the result to `*out_json`:
/// `{"results": [{"run_id", "status", "answer", "error", "turns", "usage", …}], "is_error",
/// "usage", "duration_ms"}` — a task that failed or timed out is a result, not an error. A
/// call refused before running (bad arguments) is an error with code 1 whose message
/// names the field.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_task(
    runtime: *const subtask_runtime,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> *mut subtask_error {
    guard(|| {
        // SAFETY: NULL or live, per the header.
        let runtime = unsafe { handle(runtime, "runtime") }?;
        let out = out_arg(out_json, "out_json")?;
        // SAFETY: NUL-terminated per the header.
        let arguments = unsafe { text_arg(args_json, "args_json") }?;
        let output = runtime.task.call_str(arguments);
        if let Some(refusal) = &output.error {
            return Err(Error::invalid_input(refusal.clone()));
        }
        let text = serde_json::to_string(&output).map_err(|error| {
            Error::new(
                ErrorKind::Internal,
                format!("the result could not be encoded: {error}"),
            )
        })?;
        // SAFETY: `out` checked non-NULL.
        unsafe { write_string(out, text) };
        Ok(())
    })
}

/// The `task` tool's definition as JSON, for `format` `"openai"`, `"anthropic"` or `"mcp"`.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_tool_definition(
    runtime: *const subtask_runtime,
    format: *const c_char,
    out_json: *mut *mut c_char,
) -> *mut subtask_error {
    guard(|| {
        // SAFETY: NULL or live, per the header.
        let runtime = unsafe { handle(runtime, "runtime") }?;
        let out = out_arg(out_json, "out_json")?;
        // SAFETY: NUL-terminated per the header.
        let definition = match unsafe { text_arg(format, "format") }? {
            "openai" => runtime.task.openai_definition(),
            "anthropic" => runtime.task.anthropic_definition(),
            "mcp" => runtime.task.mcp_definition(),
            other => {
                return Err(Error::invalid_input(format!(
                    "unknown format '{other}': use openai, anthropic or mcp"
                )));
            }
        };
        // SAFETY: `out` checked non-NULL.
        unsafe { write_string(out, definition.to_string()) };
        Ok(())
    })
}

/// Cancels the live task `task_id` (from an event); writes whether it was live to
/// `*out_cancelled` (if not NULL).
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_cancel(
    runtime: *const subtask_runtime,
    task_id: *const c_char,
    out_cancelled: *mut bool,
) -> *mut subtask_error {
    guard(|| {
        // SAFETY: NULL or live, per the header.
        let runtime = unsafe { handle(runtime, "runtime") }?;
        // SAFETY: NUL-terminated per the header.
        let task_id = unsafe { text_arg(task_id, "task_id") }?;
        let cancelled = runtime.runtime.cancel(task_id);
        if !out_cancelled.is_null() {
            // SAFETY: not NULL; valid for a write per the header.
            unsafe { *out_cancelled = cancelled };
        }
        Ok(())
    })
}

/// Cancels every live task; writes how many to `*out_count` (if not NULL).
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_cancel_all(
    runtime: *const subtask_runtime,
    out_count: *mut usize,
) -> *mut subtask_error {
    guard(|| {
        // SAFETY: NULL or live, per the header.
        let runtime = unsafe { handle(runtime, "runtime") }?;
        let count = runtime.runtime.cancel_all();
        if !out_count.is_null() {
            // SAFETY: not NULL; valid for a write per the header.
            unsafe { *out_count = count };
        }
        Ok(())
    })
}

/// The runtime's counters as JSON: `{"queued", "running", "zombies", "live", "submitted",
/// "rejected", "completed", "failed", "cancelled", "timed_out"}`.
///
/// # Safety
///
/// Every pointer is NULL or valid as described: strings NUL-terminated, handles and errors
/// made by this library and not yet freed, out-parameters writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_stats(
    runtime: *const subtask_runtime,
    out_json: *mut *mut c_char,
) -> *mut subtask_error {
    guard(|| {
        // SAFETY: NULL or live, per the header.
        let runtime = unsafe { handle(runtime, "runtime") }?;
        let out = out_arg(out_json, "out_json")?;
        let stats = runtime.runtime.stats();
        let json = json!({
            "queued": stats.queued,
            "running": stats.running,
            "zombies": stats.zombies,
            "live": stats.live,
            "submitted": stats.submitted,
            "rejected": stats.rejected,
            "completed": stats.completed,
            "failed": stats.failed,
            "cancelled": stats.cancelled,
            "timed_out": stats.timed_out,
        });
        // SAFETY: `out` checked non-NULL.
        unsafe { write_string(out, json.to_string()) };
        Ok(())
    })
}

const SETTINGS: &[&str] = &[
    "scheduler_threads",
    "execution_threads",
    "max_queued",
    "poll_interval",
    "execution_timeout",
    "queue_timeout",
    "wait_timeout",
    "shutdown_grace",
    "model",
    "api_key",
    "base_url",
    "workspace",
    "transcripts",
    "agents_dirs",
    "max_parallel",
    "max_depth",
];

fn check_settings(settings: &Map<String, Value>) -> Result<(), Error> {
    if let Some(unknown) = settings
        .keys()
        .find(|key| !SETTINGS.contains(&key.as_str()))
    {
        return Err(Error::invalid_input(format!(
            "unknown setting `{unknown}`; the settings are: {}",
            SETTINGS.join(", ")
        )));
    }
    Ok(())
}

fn count(settings: &Map<String, Value>, key: &str) -> Result<Option<usize>, Error> {
    match settings.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|count| usize::try_from(count).ok())
            .map(Some)
            .ok_or_else(|| Error::invalid_input(format!("`{key}` must be a whole number"))),
    }
}

fn seconds(settings: &Map<String, Value>, key: &str) -> Result<Option<Duration>, Error> {
    match settings.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_f64()
            .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
            .map(|seconds| Some(Duration::from_secs_f64(seconds)))
            .ok_or_else(|| Error::invalid_input(format!("`{key}` must be a number of seconds"))),
    }
}

fn string(settings: &Map<String, Value>, key: &str) -> Result<Option<String>, Error> {
    match settings.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(Error::invalid_input(format!("`{key}` must be a string"))),
    }
}

/// The runtime, subagents and task tool a config describes.
fn build_runtime(config: Option<&subtask_config>) -> Result<subtask_runtime, Error> {
    let empty = Map::new();
    let settings = config.map_or(&empty, |config| &config.settings);
    let mut builder = Runtime::builder();
    if let Some(threads) = count(settings, "scheduler_threads")? {
        builder = builder.scheduler_threads(threads);
    }
    if let Some(threads) = count(settings, "execution_threads")? {
        builder = builder.execution_threads(threads);
    }
    if let Some(max) = count(settings, "max_queued")? {
        builder = builder.max_queued(max);
    }
    if let Some(interval) = seconds(settings, "poll_interval")? {
        builder = builder.poll_interval(interval);
    }
    if let Some(timeout) = seconds(settings, "execution_timeout")? {
        builder = builder.execution_timeout(timeout);
    }
    if let Some(timeout) = seconds(settings, "queue_timeout")? {
        builder = builder.queue_timeout(timeout);
    }
    if let Some(timeout) = seconds(settings, "wait_timeout")? {
        builder = builder.wait_timeout(timeout);
    }
    if let Some(grace) = seconds(settings, "shutdown_grace")? {
        builder = builder.shutdown_grace(grace);
    }
    if let Some((Some(callback), user_data)) = config.and_then(|config| config.events) {
        builder = builder.observer(move |event: &Event| {
            let text = c_string(event_json(event).to_string());
            // SAFETY: the host's callback, called as its typedef documents, with a string
            // valid for the call.
            unsafe { callback(user_data.get(), text.as_ptr()) };
        });
    }
    let workspace = match string(settings, "workspace")? {
        Some(path) => Workspace::new(path)?,
        None => Workspace::current_dir()?,
    };
    let model = match config.and_then(|config| config.model.clone()) {
        Some(model) => model,
        None => {
            let mut model = match string(settings, "model")? {
                Some(spec) => ModelConfig::parse(&spec)?,
                None => ModelConfig::from_env()?,
            };
            if let Some(key) = string(settings, "api_key")? {
                model = model.api_key(key);
            }
            if let Some(url) = string(settings, "base_url")? {
                model = model.base_url(url);
            }
            model.with_env().build()?
        }
    };
    let mut tools: ToolRegistry = builtin_tools();
    for tool in config
        .map(|config| config.tools.clone())
        .unwrap_or_default()
    {
        tools.register(tool)?;
    }
    let mut types = SubagentRegistry::builtin();
    types.load_workspace(&workspace)?;
    match settings.get("agents_dirs") {
        None | Some(Value::Null) => {}
        Some(Value::Array(dirs)) => {
            for dir in dirs {
                let dir = dir.as_str().ok_or_else(|| {
                    Error::invalid_input("`agents_dirs` must be an array of paths")
                })?;
                types.load_dir(dir)?;
            }
        }
        Some(_) => {
            return Err(Error::invalid_input(
                "`agents_dirs` must be an array of paths",
            ));
        }
    }
    let transcripts = match string(settings, "transcripts")?.as_deref() {
        None => Transcripts::InWorkspace,
        Some("off") => Transcripts::Off,
        Some(dir) => Transcripts::In(PathBuf::from(dir)),
    };
    let mut subagents = Subagents::new(model, tools)
        .types(types)
        .transcripts(transcripts);
    if let Some(depth) = count(settings, "max_depth")? {
        subagents = subagents.max_depth(u32::try_from(depth).unwrap_or(u32::MAX));
    }
    let runtime = builder.build()?;
    let mut task_config = TaskToolConfig::default();
    if let Some(max) = count(settings, "max_parallel")? {
        task_config.max_parallel = max;
    }
    let task = TaskTool::new(runtime.clone(), subagents, workspace).with_config(task_config);
    Ok(subtask_runtime { runtime, task })
}

/// Calls a host callback with `input` and a fresh reply; returns its code and reply text.
fn call_back(
    input: String,
    call: impl FnOnce(*const c_char, *mut subtask_reply) -> i32,
) -> (i32, Option<String>) {
    let input = c_string(input);
    let mut reply = subtask_reply { text: None };
    let code = call(input.as_ptr(), &mut reply);
    (code, reply.text)
}

/// A tool whose calls go to a host callback.
struct CallbackTool {
    name: String,
    description: String,
    parameters: Value,
    read_only: bool,
    callback: unsafe extern "C" fn(*mut c_void, *const c_char, *mut subtask_reply) -> i32,
    user_data: UserData,
}

impl Tool for CallbackTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        self.parameters.clone()
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn call(&self, input: &Value, _context: &ToolContext<'_>) -> Result<String, Error> {
        let (code, text) = call_back(input.to_string(), |input, reply| {
            // SAFETY: the host's callback, called as its typedef documents.
            unsafe { (self.callback)(self.user_data.get(), input, reply) }
        });
        let text = text.unwrap_or_default();
        if code == 0 {
            Ok(text)
        } else if text.is_empty() {
            Err(Error::tool(format!(
                "the tool `{}` failed (code {code})",
                self.name
            )))
        } else {
            Err(Error::tool(text))
        }
    }
}

/// An event as the JSON the event callback receives.
fn event_json(event: &Event) -> Value {
    let mut json = json!({
        "task": event.task.as_str(),
        "label": &*event.label,
        "kind": event.kind.name(),
    });
    let seconds = |duration: Duration| duration.as_secs_f64();
    match &event.kind {
        EventKind::Started { queued_for } => json["queued_for"] = json!(seconds(*queued_for)),
        EventKind::Heartbeat { status, elapsed } => {
            json["status"] = json!(status_name(*status));
            json["elapsed"] = json!(seconds(*elapsed));
        }
        EventKind::Progress(Progress::TurnStarted { turn }) => json["turn"] = json!(turn),
        EventKind::Progress(Progress::ModelDelta { chars }) => json["chars"] = json!(chars),
        EventKind::Progress(Progress::ToolStarted { tool, summary }) => {
            json["tool"] = json!(tool);
            json["summary"] = json!(summary);
        }
        EventKind::Progress(Progress::ToolFinished {
            tool,
            summary,
            duration,
            is_error,
        }) => {
            json["tool"] = json!(tool);
            json["summary"] = json!(summary);
            json["duration"] = json!(seconds(*duration));
            json["is_error"] = json!(is_error);
        }
        EventKind::Finished {
            status,
            queued_for,
            ran_for,
            error,
        } => {
            json["status"] = json!(status_name(*status));
            json["queued_for"] = json!(seconds(*queued_for));
            json["ran_for"] = json!(ran_for.map(seconds));
            json["error"] = json!(error.as_ref().map(ToString::to_string));
        }
        _ => {}
    }
    json
}

fn status_name(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Pending => "pending",
        TaskStatus::Running => "running",
        TaskStatus::Completed => "completed",
        TaskStatus::Failed => "failed",
        TaskStatus::Cancelled => "cancelled",
        TaskStatus::TimedOut(_) => "timed_out",
    }
}
