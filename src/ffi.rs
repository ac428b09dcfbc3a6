//! The C ABI (`include/subtask.h`, generated from this file by cbindgen): opaque handles,
//! JSON strings in and out, errors as objects. The only module with `unsafe`.
//!
//! Conventions (as regex-capi and wasmtime's C API):
//! - A fallible function returns a `subtask_error*`: NULL on success, else an error the
//!   caller frees with `subtask_error_free`. Out-parameters are written only on success.
//! - Every export runs inside `guard`, which turns a panic into an error; every pointer is
//!   checked for NULL and every string for UTF-8.
//! - Strings returned to the caller are freed with `subtask_string_free`.
//! - Handles are made by `*_new` and released by `*_free`; `*_free(NULL)` does nothing.
//!
//! The doc comments of the exports are the header's documentation: each says its
//! ownership, lifetime, thread safety and NULL handling. After changing any, regenerate
//! the header with `SUBTASK_BLESS=1 cargo test --test ffi_header` (`tests/ffi_header.rs`
//! fails while it is stale); `tests/c/smoke.c` uses it from C.

#![allow(non_camel_case_types, unsafe_code, missing_debug_implementations)] // C handles

use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::Progress;
use crate::error::{Error, ErrorKind};
use crate::llm::{ChatModel, FunctionModel, ModelConfig};
use crate::runtime::{CancelToken, Event, EventKind, Runtime, TaskStatus};
use crate::subagents::{SubagentRegistry, Subagents, Transcripts, trust_project_from_env};
use crate::task_tool::{CallOptions, TaskOutput, TaskTool, TaskToolConfig};
use crate::tools::{Tool, ToolContext, ToolRegistry, Workspace, builtin_tools};

/// The version of this ABI (of this header); it changes when a function's signature or
/// meaning does. Compare it with `subtask_abi_version()`, the loaded library's.
pub const SUBTASK_ABI_VERSION: u32 = 1;

// The error codes (`subtask_error_code`): `ErrorKind::code`, as constants cbindgen can see.
// A unit test below keeps the two tables equal.

/// Error code: the caller passed something invalid (a NULL or non-UTF-8 argument, bad JSON,
/// an unknown setting, a `task` call refused before running).
pub const SUBTASK_ERROR_INVALID_INPUT: i32 = 1;
/// Error code: the runtime, a provider or a subagent is configured wrongly (no model, a
/// workspace that does not exist, a tool name taken twice).
pub const SUBTASK_ERROR_CONFIG: i32 = 2;
/// Error code: too many tasks already wait for an execution slot. Retryable.
pub const SUBTASK_ERROR_QUEUE_FULL: i32 = 3;
/// Error code: a time limit fired.
pub const SUBTASK_ERROR_TIMEOUT: i32 = 4;
/// Error code: the task was cancelled by the host.
pub const SUBTASK_ERROR_CANCELLED: i32 = 5;
/// Error code: the runtime has shut down and takes no more work.
pub const SUBTASK_ERROR_SHUTDOWN: i32 = 6;
/// Error code: subtask panicked (a bug, please report it); the message says where.
pub const SUBTASK_ERROR_PANIC: i32 = 7;
/// Error code: an LLM provider refused or failed a request, or could not be reached.
pub const SUBTASK_ERROR_PROVIDER: i32 = 8;
/// Error code: a tool call failed.
pub const SUBTASK_ERROR_TOOL: i32 = 9;
/// Error code: an I/O operation failed.
pub const SUBTASK_ERROR_IO: i32 = 10;
/// Error code: a failure of another kind.
pub const SUBTASK_ERROR_OTHER: i32 = 11;
/// Error code: a bug in subtask (please report it).
pub const SUBTASK_ERROR_INTERNAL: i32 = 12;

/// An error returned by a fallible call: a stable code (`subtask_error_code`, one of the
/// `SUBTASK_ERROR_*` values) and a message for people (`subtask_error_message`).
///
/// Ownership: the caller owns every error a function returns and releases it with
/// `subtask_error_free`, once. Thread safety: an error never changes, so several threads
/// may read it at once; free it only when no thread reads it any more.
pub struct subtask_error {
    code: i32,
    message: CString,
}

/// Settings and host extensions (a model, tools, an event callback) for a runtime,
/// collected before it is built.
///
/// Ownership: made by `subtask_config_new`, owned by the caller, released with
/// `subtask_config_free`, once. A runtime keeps what it needs, so the config may be freed
/// right after `subtask_runtime_new`, or build more runtimes (which then share its
/// callbacks). Thread safety: none; use a config from one thread at a time (it may move
/// between threads).
pub struct subtask_config {
    settings: Map<String, Value>,
    model: Option<Arc<dyn ChatModel>>,
    /// Host models by the name types and `task` calls give (`subtask_config_add_model`).
    models: Vec<(String, Arc<dyn ChatModel>)>,
    tools: Vec<Arc<dyn Tool>>,
    events: Option<(subtask_event_callback, UserData)>,
}

/// A runtime with the `task` tool: its thread pools, subagent types, tools and model.
///
/// Ownership: made by `subtask_runtime_new`, owned by the caller, released with
/// `subtask_runtime_free`, once; freeing cancels its running tasks and waits for them
/// (`shutdown_grace` at most). Thread safety: every function taking a
/// `const subtask_runtime*` may be called from several threads at once, and a call blocks
/// only its own thread; `subtask_runtime_free` must not overlap any other call on it.
pub struct subtask_runtime {
    runtime: Runtime,
    task: TaskTool,
}

/// Where a host callback writes its result, with `subtask_reply_set`.
///
/// Lifetime: owned by subtask. A callback receives one and may use it only until the
/// callback returns; do not keep the pointer and do not free it.
pub struct subtask_reply {
    text: Option<String>,
    /// The calling task's token, for `subtask_reply_cancelled`.
    token: Option<CancelToken>,
}

/// Cancels one `subtask_task_with` call from another thread: the way an async host (a
/// cancelled asyncio task) stops the runs of a call it no longer waits for.
///
/// Ownership: made by `subtask_canceller_new`, owned by the caller, released with
/// `subtask_canceller_free`, once, after the call that uses it has returned. Thread safety:
/// `subtask_canceller_cancel` may be called from any thread, any number of times, while
/// another thread is inside `subtask_task_with` with it.
pub struct subtask_canceller {
    token: CancelToken,
}

/// A host tool (see `subtask_config_add_tool`). Gets the model's arguments for one call as
/// a JSON object (`input_json`, borrowed for the call) and a reply to write to. On success
/// it writes its result (text the model reads) with `subtask_reply_set` and returns 0. On
/// failure it writes a message and returns non-zero: the model reads the message as a
/// tool error and may recover (without a message it reads "the tool `NAME` failed (code
/// N)").
///
/// Threads: called on the runtime's execution threads, never on the thread that called
/// `subtask_task`; several calls may run at once. It may block, but neither timeouts nor
/// cancellation interrupt it: a task that times out or is cancelled meanwhile ends for its
/// caller all the same (within about 2 s, the grace for a partial answer), and its thread
/// stays busy until the callback returns. A long tool polls `subtask_reply_cancelled(reply)`
/// and returns early once it is true. It must not unwind into subtask (no C++
/// exception or longjmp across it) and must not free the runtime that called it.
pub type subtask_tool_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        input_json: *const c_char,
        reply: *mut subtask_reply,
    ) -> i32,
>;

/// A host chat model (see `subtask_config_set_model`). Gets an OpenAI Chat Completions
/// request body as JSON (`request_json`, borrowed for the call: `model`, `messages`,
/// `tools`, `max_tokens`; never streaming) and a reply to write to. On success it writes a
/// Chat Completions response body (`{"choices": [{"message": {"role": "assistant",
/// "content": ..., "tool_calls": [...]}, "finish_reason": ...}], "usage": {...}}`) with
/// `subtask_reply_set` and returns 0. On failure it writes a message and returns non-zero
/// (or writes a body `{"error": {"message": ...}}`): the subagent's run then fails (status
/// `failed`) with that message.
///
/// Threads: as `subtask_tool_callback`: execution threads, several calls at once, not
/// interrupted by timeouts or cancellation (a long one polls `subtask_reply_cancelled`), no
/// unwinding, never frees the runtime.
pub type subtask_model_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        request_json: *const c_char,
        reply: *mut subtask_reply,
    ) -> i32,
>;

/// Receives the runtime's task events (see `subtask_config_set_event_callback`) as a JSON
/// object (`event_json`, borrowed for the call): `{"task": ID, "label": ..., "kind": K, ...}`,
/// K one of `queued`, `started` (with `queued_for`), `heartbeat` (`status`, `elapsed`),
/// `turn` (`turn`), `delta` (`chars`), `tool` (`tool`, `summary`), `tool done` (`tool`,
/// `summary`, `duration`, `is_error`) and `finished` (`status`, `queued_for`, `ran_for`,
/// `error`); times are in seconds. `task` is the id `subtask_cancel` takes.
///
/// Threads: called on a thread of the runtime's that exists for this callback alone (its
/// mailbox), never on the thread that called `subtask_task` and never on a thread that
/// dispatches or runs tasks, so a slow callback (one waiting for Python's GIL) delays only
/// its own events. Events arrive one at a time, each task's in order. It must not unwind
/// into subtask and must not free the runtime.
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

/// The ABI version of the loaded library. Compare it with `SUBTASK_ABI_VERSION`, the
/// header's: they differ when the library and the header disagree on a function's signature
/// or meaning. Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn subtask_abi_version() -> u32 {
    SUBTASK_ABI_VERSION
}

/// The error's stable code, one of `SUBTASK_ERROR_*`: 1 invalid input, 2 configuration,
/// 3 queue full, 4 timeout, 5 cancelled, 6 shutdown, 7 panic, 8 provider, 9 tool, 10 I/O,
/// 11 other, 12 internal. 0 if `error` is NULL. Thread-safe.
///
/// # Safety
///
/// `error` is NULL or an error from this library, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_error_code(error: *const subtask_error) -> i32 {
    // SAFETY: NULL or a live error, per the header.
    unsafe { error.as_ref() }.map_or(0, |error| error.code)
}

/// The error's message (UTF-8, for people): what went wrong and what to do next.
///
/// Ownership: the string belongs to the error and stays valid until
/// `subtask_error_free(error)`; do not free it or write to it. NULL if `error` is NULL,
/// never NULL otherwise. Thread-safe.
///
/// # Safety
///
/// `error` is NULL or an error from this library, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_error_message(error: *const subtask_error) -> *const c_char {
    // SAFETY: NULL or a live error, per the header.
    unsafe { error.as_ref() }.map_or(ptr::null(), |error| error.message.as_ptr())
}

/// Releases an error (and its message). NULL does nothing. Call at most once per error, when
/// no thread uses it or its message any more.
///
/// # Safety
///
/// `error` is NULL or an error from this library, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_error_free(error: *mut subtask_error) {
    guard_void(|| {
        if !error.is_null() {
            // SAFETY: made by Box::into_raw in `guard`, released once per the header.
            drop(unsafe { Box::from_raw(error) });
        }
    });
}

/// Releases a string this library returned through an out-parameter (`out_json`). NULL does
/// nothing. Call at most once per string; never on `subtask_error_message`'s result or on a
/// string the host allocated. Thread-safe (for different strings).
///
/// # Safety
///
/// `text` is NULL or a string from this library's out-parameters, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_string_free(text: *mut c_char) {
    guard_void(|| {
        if !text.is_null() {
            // SAFETY: made by CString::into_raw in `write_string`, released once.
            drop(unsafe { CString::from_raw(text) });
        }
    });
}

/// Sets a callback's result: copies `text` (UTF-8; invalid bytes become U+FFFD), replacing
/// any text set before. Call it only on the `reply` a callback received, before that
/// callback returns. NULL `reply` or `text` does nothing.
///
/// # Safety
///
/// `reply` is NULL or the reply of a callback still running, used by one thread at a time;
/// `text` is NULL or a NUL-terminated string.
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

/// Whether the task a tool or model callback works for was cancelled or timed out (its
/// caller has stopped waiting, or is about to): a long host tool or model checks it now and
/// then and returns early (whatever it returns then is discarded). False for NULL.
/// Thread-safe.
///
/// # Safety
///
/// `reply` is NULL or the reply of a callback still running.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_reply_cancelled(reply: *const subtask_reply) -> bool {
    let mut cancelled = false;
    guard_void(|| {
        // SAFETY: NULL or the live reply of the callback in progress, per the header.
        if let Some(reply) = unsafe { reply.as_ref() } {
            cancelled = reply.token.as_ref().is_some_and(CancelToken::is_cancelled);
        }
    });
    cancelled
}

/// Makes a canceller for `subtask_task_with`. On success writes it to `*out`; the caller
/// owns it (`subtask_canceller_free`). Thread-safe.
///
/// # Errors
///
/// `SUBTASK_ERROR_INVALID_INPUT` when `out` is NULL.
///
/// # Safety
///
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_canceller_new(
    out: *mut *mut subtask_canceller,
) -> *mut subtask_error {
    guard(|| {
        let out = out_arg(out, "out")?;
        let canceller = Box::new(subtask_canceller {
            token: CancelToken::new(),
        });
        // SAFETY: `out` checked non-NULL; valid for a write per the header.
        unsafe { *out = Box::into_raw(canceller) };
        Ok(())
    })
}

/// Cancels the runs of the `subtask_task_with` call using `canceller` (its call returns them
/// as `cancelled`, with their children killed); a call that starts with it afterwards has
/// its runs cancelled as they are submitted. Returns without waiting; calling it again does
/// nothing more. NULL does nothing. Thread-safe.
///
/// # Safety
///
/// `canceller` is NULL or a live canceller.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_canceller_cancel(canceller: *const subtask_canceller) {
    guard_void(|| {
        // SAFETY: NULL or live, per the header.
        if let Some(canceller) = unsafe { canceller.as_ref() } {
            canceller.token.cancel();
        }
    });
}

/// Releases a canceller. NULL does nothing. Call at most once, after every call using it
/// has returned.
///
/// # Safety
///
/// `canceller` is NULL or a canceller from `subtask_canceller_new`, not yet freed and not in
/// use by a running call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_canceller_free(canceller: *mut subtask_canceller) {
    guard_void(|| {
        if !canceller.is_null() {
            // SAFETY: made by Box::into_raw in `subtask_canceller_new`, released once.
            drop(unsafe { Box::from_raw(canceller) });
        }
    });
}

/// Makes a configuration from a JSON object of settings (NULL or `{}` for every default).
/// Keys, all optional (`null` also means the default):
/// - `scheduler_threads`, `execution_threads`, `max_queued`: whole numbers (defaults 4, 8,
///   64);
/// - `poll_interval`, `execution_timeout`, `queue_timeout`, `wait_timeout`, `shutdown_grace`:
///   seconds, as numbers (defaults 2, 300, 60, the other two plus 5, and 5);
/// - `model` (`provider:model` or an alias; default: the `SUBTASK_MODEL` environment
///   variable), `api_key`, `base_url`: strings, unused when a host model is set
///   (`subtask_config_set_model`);
/// - `workspace`: a directory (default: the current directory);
/// - `transcripts`: a directory, or `"off"` (default: the per-user state directory,
///   `$XDG_STATE_HOME/subtask/transcripts/<workspace>/`, out of the subagents' reach);
/// - `agents_dirs`: an array of directories of Markdown subagent types (yours: read after
///   `~/.claude/agents`, `~/.config/subtask/agents` and the workspace's `.claude/agents`
///   and `.subtask/agents`, whose types never replace built-in or yours);
/// - `trust_project_agents`: `true` to let the workspace's `.subtask/agents` files replace
///   built-in types (default: the `SUBTASK_TRUST_PROJECT_AGENTS` environment variable,
///   else `false`);
/// - `max_parallel` (tasks one `task` call may run, default 10), `max_depth` (how deep
///   subagents may nest, default 0): whole numbers.
///
/// On success writes a new config to `*out`; the caller owns it (`subtask_config_free`).
/// `config_json` is only read during the call. Thread-safe.
///
/// # Errors
///
/// `SUBTASK_ERROR_INVALID_INPUT` when `out` is NULL, or `config_json` is not UTF-8, not JSON,
/// not an object, or holds an unknown key or a value of the wrong type. `*out` is then
/// untouched. Values are checked further (a thread count of 0, a missing directory, no
/// model) by `subtask_runtime_new`.
///
/// # Safety
///
/// `config_json` is NULL or a NUL-terminated string; `out` is NULL or writable.
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
            models: Vec::new(),
            tools: Vec::new(),
            events: None,
        });
        // SAFETY: `out` checked non-NULL; valid for a write per the header.
        unsafe { *out = Box::into_raw(config) };
        Ok(())
    })
}

/// Releases a configuration. Runtimes built from it are not affected. NULL does nothing;
/// call at most once.
///
/// # Safety
///
/// `config` is NULL or a config from `subtask_config_new`, not yet freed and not in use on
/// another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_config_free(config: *mut subtask_config) {
    guard_void(|| {
        if !config.is_null() {
            // SAFETY: made by Box::into_raw in `subtask_config_new`, released once.
            drop(unsafe { Box::from_raw(config) });
        }
    });
}

/// Uses a host model (see `subtask_model_callback`) for every subagent, instead of the
/// `model` setting's provider; replaces a model set before. `name` (copied) names it in
/// requests (`"model"`) and usage footers (`function:NAME`).
///
/// Lifetime: `user_data` is passed back to every call, from any thread, and must stay valid
/// until every runtime built from this config is freed (and the callbacks those runtimes
/// still run have returned).
///
/// # Errors
///
/// `SUBTASK_ERROR_INVALID_INPUT` when `config`, `name` or `callback` is NULL, or `name` is not
/// UTF-8; the config is then unchanged.
///
/// # Safety
///
/// `config` is NULL or a live config used by no other thread; `name` is NULL or a
/// NUL-terminated string; `callback`, if not NULL, behaves as `subtask_model_callback` says.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_config_set_model(
    config: *mut subtask_config,
    name: *const c_char,
    callback: subtask_model_callback,
    user_data: *mut c_void,
) -> *mut subtask_error {
    guard(|| {
        // SAFETY: as this function's own contract.
        let (config, _, model) = unsafe { host_model_args(config, name, callback, user_data) }?;
        config.model = Some(model);
        Ok(())
    })
}

/// Serves the model name `name` with a host model (see `subtask_model_callback`) wherever
/// a subagent type (`model: NAME` in an agent file) or a `task` call (`"model": "NAME"`)
/// names it, instead of building that provider's client from the environment; other names
/// still go to the environment's providers. Replaces a model added before under the same
/// name. `name` (copied) is matched exactly and names the model in requests and usage
/// footers (`function:NAME`). The default model, for types and calls that name none, is
/// still `subtask_config_set_model` or the `model` setting.
///
/// Lifetime: as `subtask_config_set_model`'s `user_data`.
///
/// # Errors
///
/// `SUBTASK_ERROR_INVALID_INPUT` when `config`, `name` or `callback` is NULL, or `name` is not
/// UTF-8 or empty; the config is then unchanged.
///
/// # Safety
///
/// As `subtask_config_set_model`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_config_add_model(
    config: *mut subtask_config,
    name: *const c_char,
    callback: subtask_model_callback,
    user_data: *mut c_void,
) -> *mut subtask_error {
    guard(|| {
        // SAFETY: as this function's own contract.
        let (config, name, model) = unsafe { host_model_args(config, name, callback, user_data) }?;
        if name.trim().is_empty() {
            return Err(Error::invalid_input(
                "`name` is empty; give the model name agent files and task calls use",
            ));
        }
        config.models.retain(|(known, _)| *known != name);
        config.models.push((name, model));
        Ok(())
    })
}

/// The arguments of `subtask_config_set_model` and `subtask_config_add_model`: the config,
/// the model's name, and the host callback as a chat model of that name.
///
/// # Safety
///
/// As those functions': `config` is NULL or a live config used by no other thread, `name` is
/// NULL or NUL-terminated.
unsafe fn host_model_args<'a>(
    config: *mut subtask_config,
    name: *const c_char,
    callback: subtask_model_callback,
    user_data: *mut c_void,
) -> Result<(&'a mut subtask_config, String, Arc<dyn ChatModel>), Error> {
    // SAFETY: NULL or a live config, per the caller's contract.
    let config =
        unsafe { config.as_mut() }.ok_or_else(|| Error::invalid_input("`config` is NULL"))?;
    // SAFETY: NUL-terminated per the caller's contract.
    let name = unsafe { text_arg(name, "name") }?.to_string();
    let callback = callback.ok_or_else(|| Error::invalid_input("`callback` is NULL"))?;
    let model = callback_model(name.clone(), callback, UserData(user_data));
    Ok((config, name, model))
}

/// A chat model whose requests go to a host callback.
fn callback_model(
    name: String,
    callback: unsafe extern "C" fn(*mut c_void, *const c_char, *mut subtask_reply) -> i32,
    user_data: UserData,
) -> Arc<dyn ChatModel> {
    Arc::new(FunctionModel::with_token(
        name,
        move |request: &Value, token| {
            let (code, text) = call_back(request.to_string(), Some(token), |input, reply| {
                // SAFETY: the host's callback, called as its typedef documents.
                unsafe { callback(user_data.get(), input, reply) }
            });
            let text = match (code, text) {
                (0, Some(text)) => text,
                (0, None) => return Err("the model callback wrote no reply".to_string()),
                (_, Some(message)) if !message.is_empty() => return Err(message),
                (code, _) => {
                    return Err(format!("the model callback failed (code {code})"));
                }
            };
            serde_json::from_str(&text)
                .map_err(|error| format!("the model callback's reply is not JSON: {error}"))
        },
    ))
}

/// Adds a host tool that subagents may call (see `subtask_tool_callback`). `name` (1-64
/// letters, digits, `_` or `-`, unlike any built-in tool's or other host tool's),
/// `description` (what the model reads) and `schema_json` (the JSON Schema of its
/// arguments: an object, such as `{"type": "object", "properties": {...}}`) are copied.
/// `read_only` says whether read-only runs and types (`plan`, or any run with
/// `read_only: true`) may use it too; `explore` keeps its fixed tool list.
///
/// Lifetime: `user_data` is passed back to every call, from any thread, and must stay valid
/// until every runtime built from this config is freed (and the callbacks those runtimes
/// still run have returned).
///
/// # Errors
///
/// `SUBTASK_ERROR_INVALID_INPUT` when `config`, `name`, `description` or `callback` is NULL,
/// a string is not UTF-8, or `schema_json` is not a JSON object; the config is then
/// unchanged. A bad or duplicate name is reported by `subtask_runtime_new`
/// (`SUBTASK_ERROR_CONFIG`).
///
/// # Safety
///
/// `config` is NULL or a live config used by no other thread; the strings are NULL or
/// NUL-terminated; `callback`, if not NULL, behaves as `subtask_tool_callback` says.
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

/// Sends every task event of the runtimes built from this config to `callback` (see
/// `subtask_event_callback`); replaces a callback set before.
///
/// Lifetime: `user_data` is passed back to every call, from any thread, and must stay valid
/// until every runtime built from this config is freed.
///
/// # Errors
///
/// `SUBTASK_ERROR_INVALID_INPUT` when `config` or `callback` is NULL; the config is then
/// unchanged.
///
/// # Safety
///
/// `config` is NULL or a live config used by no other thread; `callback`, if not NULL,
/// behaves as `subtask_event_callback` says.
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

/// Builds a runtime from `config` (NULL for every default, with the model from the
/// environment): starts its threads and loads its subagent types. On success writes it to
/// `*out`; the caller owns it (`subtask_runtime_free`). `config` is only read: it stays the
/// caller's, and may be freed right after. Thread-safe (for different configs).
///
/// # Errors
///
/// `SUBTASK_ERROR_INVALID_INPUT` when `out` is NULL; `SUBTASK_ERROR_CONFIG` when a setting
/// is out of range (a thread count or timeout of 0), no model is configured, the workspace
/// or an agents directory cannot be used, or a tool name is bad or taken;
/// `SUBTASK_ERROR_IO` when a thread cannot start. `*out` is then untouched.
///
/// # Safety
///
/// `config` is NULL or a live config not being changed by another thread; `out` is NULL or
/// writable.
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

/// Releases a runtime: refuses new tasks, cancels the running ones (their `subtask_task`
/// calls return them as `cancelled`), and blocks until their threads are free, at most
/// `shutdown_grace` (default 5 s). A host callback still running after that keeps its
/// thread until it returns, and its `user_data` must stay valid until then. No event
/// callback starts once this returns. NULL does nothing.
///
/// Call at most once, not while another thread uses the runtime, and never from one of its
/// callbacks.
///
/// # Safety
///
/// `runtime` is NULL or a runtime from `subtask_runtime_new`, not yet freed, that no other
/// thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_runtime_free(runtime: *mut subtask_runtime) {
    guard_void(|| {
        if !runtime.is_null() {
            // SAFETY: made by Box::into_raw in `subtask_runtime_new`, released once.
            drop(unsafe { Box::from_raw(runtime) });
        }
    });
}

/// Runs a `task` call (the `task` tool's JSON arguments: one task with `description`,
/// `prompt` and `subagent_type`, or several in `tasks`) and blocks until every run it started
/// has ended, by the runtime's timeouts at the latest. Thread-safe: calls from several
/// threads run at once.
///
/// On success writes the result as JSON to `*out_json`, a string the caller owns
/// (`subtask_string_free`): `{"results": [{"description", "subagent_type", "run_id",
/// "status", "model", "answer", "error", "turns", "usage", "tool_calls", "duration_ms"}],
/// "is_error", "error", "usage", "duration_ms"}`, one result per task in request order.
/// `status` is `completed`, `max_turns`, `max_output_tokens`, `max_cost`, `failed`,
/// `timed_out`, `cancelled` or `refused`: a task that failed, timed out or was cancelled is
/// a result, not an error.
///
/// # Errors
///
/// `SUBTASK_ERROR_INVALID_INPUT` when `runtime`, `args_json` or `out_json` is NULL,
/// `args_json` is not UTF-8, or the call is refused before anything runs (not JSON, a
/// missing or bad field, an unknown subagent type: the message names it). `*out_json` is
/// then untouched.
///
/// # Safety
///
/// `runtime` is NULL or a live runtime; `args_json` is NULL or a NUL-terminated string;
/// `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_task(
    runtime: *const subtask_runtime,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
) -> *mut subtask_error {
    // SAFETY: forwarded contract; no canceller.
    unsafe { subtask_task_with(runtime, args_json, ptr::null(), out_json) }
}

/// `subtask_task`, cancellable from another thread through `canceller` (NULL: not
/// cancellable but by `subtask_cancel`): `subtask_canceller_cancel` makes this call return
/// with its runs `cancelled`, their child processes killed and their slots back. Results
/// and errors as `subtask_task`'s. Thread-safe.
///
/// # Safety
///
/// As `subtask_task`; `canceller` is NULL or a live canceller, not freed before this call
/// returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn subtask_task_with(
    runtime: *const subtask_runtime,
    args_json: *const c_char,
    canceller: *const subtask_canceller,
    out_json: *mut *mut c_char,
) -> *mut subtask_error {
    guard(|| {
        // SAFETY: NULL or live, per the header.
        let runtime = unsafe { handle(runtime, "runtime") }?;
        let out = out_arg(out_json, "out_json")?;
        // SAFETY: NUL-terminated per the header.
        let arguments = unsafe { text_arg(args_json, "args_json") }?;
        let arguments: Value = serde_json::from_str(arguments).map_err(|error| {
            Error::invalid_input(format!(
                "the arguments are not valid JSON ({error}); send one JSON object"
            ))
        })?;
        let mut options = CallOptions::new();
        // SAFETY: NULL or live, per the header.
        if let Some(canceller) = unsafe { canceller.as_ref() } {
            options = options.cancel_token(canceller.token.clone());
        }
        let output = runtime.task.call_json_with(&arguments, &options);
        if let Some(refusal) = &output.error {
            return Err(Error::invalid_input(refusal.clone()));
        }
        // SAFETY: `out` checked non-NULL.
        unsafe { write_string(out, output_json(&output)?) };
        Ok(())
    })
}

/// A call's output as the JSON `subtask_task` returns: the output's fields, plus `text`
/// (what the model reads, `TaskOutput::to_text`) and for each result its `footer` and
/// `text` (that run alone, as the model reads it), so hosts never rebuild them.
fn output_json(output: &TaskOutput) -> Result<String, Error> {
    let encoding = |error: serde_json::Error| {
        Error::new(
            ErrorKind::Internal,
            format!("the result could not be encoded: {error}"),
        )
    };
    let mut json = serde_json::to_value(output).map_err(encoding)?;
    if let Some(results) = json.get_mut("results").and_then(Value::as_array_mut) {
        for (entry, result) in results.iter_mut().zip(&output.results) {
            let alone = TaskOutput {
                results: vec![result.clone()],
                is_error: !result.is_complete(),
                error: None,
                usage: result.usage,
                duration_ms: result.duration_ms,
            };
            entry["footer"] = Value::String(result.footer());
            entry["text"] = Value::String(alone.to_text());
        }
    }
    json["text"] = Value::String(output.to_text());
    serde_json::to_string(&json).map_err(encoding)
}

/// The `task` tool's definition, to offer it to a model: `format` `"openai"` (a Chat
/// Completions `tools` entry), `"anthropic"` (a Messages API `tools` entry) or `"mcp"` (an
/// MCP `tools/list` entry). On success writes the JSON to `*out_json`, a string the caller
/// owns (`subtask_string_free`). Thread-safe.
///
/// # Errors
///
/// `SUBTASK_ERROR_INVALID_INPUT` when an argument is NULL, `format` is not UTF-8 or is no
/// known format. `*out_json` is then untouched.
///
/// # Safety
///
/// `runtime` is NULL or a live runtime; `format` is NULL or a NUL-terminated string;
/// `out_json` is NULL or writable.
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

/// Cancels the live task `task_id` (the `task` field of its events): the run stops at its
/// next step and its `subtask_task` call returns it as `cancelled`. A host callback already
/// running is not interrupted: the call then returns after waiting about 2 s for a partial
/// answer, and the callback keeps its thread until it returns. Writes to `*out_cancelled`
/// (if not NULL) whether such a task was live. Thread-safe; returns without waiting.
///
/// # Errors
///
/// `SUBTASK_ERROR_INVALID_INPUT` when `runtime` or `task_id` is NULL or `task_id` is not
/// UTF-8. `*out_cancelled` is then untouched.
///
/// # Safety
///
/// `runtime` is NULL or a live runtime; `task_id` is NULL or a NUL-terminated string;
/// `out_cancelled` is NULL or writable.
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

/// Cancels every live task of the runtime, as `subtask_cancel` does one; writes how many to
/// `*out_count` (if not NULL). Thread-safe; returns without waiting.
///
/// # Errors
///
/// `SUBTASK_ERROR_INVALID_INPUT` when `runtime` is NULL. `*out_count` is then untouched.
///
/// # Safety
///
/// `runtime` is NULL or a live runtime; `out_count` is NULL or writable.
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

/// The runtime's counters as a JSON object of whole numbers: tasks now `queued`, `running`,
/// `zombies` (ended for their caller but still holding a thread), `live`; and since the
/// start, tasks `submitted`, `rejected`, `completed`, `failed`, `cancelled`, `timed_out`.
/// On success writes it to `*out_json`, a string the caller owns (`subtask_string_free`).
/// Thread-safe.
///
/// # Errors
///
/// `SUBTASK_ERROR_INVALID_INPUT` when `runtime` or `out_json` is NULL. `*out_json` is then
/// untouched.
///
/// # Safety
///
/// `runtime` is NULL or a live runtime; `out_json` is NULL or writable.
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

/// The settings `subtask_config_new` takes, by type (see [`count`], [`seconds`],
/// [`string`], [`agents_dirs`]).
const COUNT_SETTINGS: &[&str] = &[
    "scheduler_threads",
    "execution_threads",
    "max_queued",
    "max_parallel",
    "max_depth",
];
const SECONDS_SETTINGS: &[&str] = &[
    "poll_interval",
    "execution_timeout",
    "queue_timeout",
    "wait_timeout",
    "shutdown_grace",
];
const STRING_SETTINGS: &[&str] = &["model", "api_key", "base_url", "workspace", "transcripts"];
const FLAG_SETTINGS: &[&str] = &["trust_project_agents"];
const AGENTS_DIRS: &str = "agents_dirs";

/// Checks every key is known and every value has its setting's type, so a mistake is
/// reported by `subtask_config_new`, where it was made.
fn check_settings(settings: &Map<String, Value>) -> Result<(), Error> {
    let known = || {
        COUNT_SETTINGS
            .iter()
            .chain(SECONDS_SETTINGS)
            .chain(STRING_SETTINGS)
            .chain(FLAG_SETTINGS)
            .chain([&AGENTS_DIRS])
    };
    if let Some(unknown) = settings.keys().find(|key| !known().any(|name| name == key)) {
        let names: Vec<&str> = known().copied().collect();
        return Err(Error::invalid_input(format!(
            "unknown setting `{unknown}`; the settings are: {}",
            names.join(", ")
        )));
    }
    for key in COUNT_SETTINGS {
        count(settings, key)?;
    }
    for key in SECONDS_SETTINGS {
        seconds(settings, key)?;
    }
    for key in STRING_SETTINGS {
        string(settings, key)?;
    }
    for key in FLAG_SETTINGS {
        flag(settings, key)?;
    }
    agents_dirs(settings)?;
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
            // `try_`: a huge number is an error, not a panic.
            .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
            .map(Some)
            .ok_or_else(|| Error::invalid_input(format!("`{key}` must be a number of seconds"))),
    }
}

fn agents_dirs(settings: &Map<String, Value>) -> Result<Vec<&str>, Error> {
    let invalid = || Error::invalid_input(format!("`{AGENTS_DIRS}` must be an array of paths"));
    match settings.get(AGENTS_DIRS) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(dirs)) => dirs
            .iter()
            .map(|dir| dir.as_str().ok_or_else(invalid))
            .collect(),
        Some(_) => Err(invalid()),
    }
}

fn flag(settings: &Map<String, Value>, key: &str) -> Result<Option<bool>, Error> {
    match settings.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(_) => Err(Error::invalid_input(format!(
            "`{key}` must be true or false"
        ))),
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
    let trust_project =
        flag(settings, "trust_project_agents")?.unwrap_or_else(trust_project_from_env);
    let mut types = SubagentRegistry::builtin().trust_project(trust_project);
    types.load_all(&workspace, agents_dirs(settings)?)?;
    let transcripts = match string(settings, "transcripts")?.as_deref() {
        None => Transcripts::PerUser,
        Some("off") => Transcripts::Off,
        Some(dir) => Transcripts::In(PathBuf::from(dir)),
    };
    let mut subagents = Subagents::new(model, tools)
        .types(types)
        .transcripts(transcripts);
    let models = config
        .map(|config| config.models.clone())
        .unwrap_or_default();
    if !models.is_empty() {
        // Host models first; every other name as before (the environment's providers).
        let fallback = subagents.clone();
        subagents = subagents.model_resolver(Arc::new(move |name: &str| {
            match models.iter().find(|(known, _)| known == name) {
                Some((_, model)) => Ok(model.clone()),
                None => fallback.resolve_model(name),
            }
        }));
    }
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
    token: Option<&CancelToken>,
    call: impl FnOnce(*const c_char, *mut subtask_reply) -> i32,
) -> (i32, Option<String>) {
    let input = c_string(input);
    let mut reply = subtask_reply {
        text: None,
        token: token.cloned(),
    };
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

    fn call(&self, input: &Value, context: &ToolContext<'_>) -> Result<String, Error> {
        let (code, text) = call_back(input.to_string(), Some(context.token()), |input, reply| {
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
    if let Some(trace) = &event.trace {
        json["trace"] = json!(&**trace);
    }
    let seconds = |duration: Duration| duration.as_secs_f64();
    match &event.kind {
        EventKind::Started { queued_for } => json["queued_for"] = json!(seconds(*queued_for)),
        EventKind::Heartbeat { status, elapsed } => {
            json["status"] = json!(status_name(*status));
            json["elapsed"] = json!(seconds(*elapsed));
        }
        EventKind::Progress(_) => match event.kind.progress::<Progress>() {
            Some(Progress::TurnStarted { turn }) => json["turn"] = json!(turn),
            Some(Progress::ModelDelta { chars }) => json["chars"] = json!(chars),
            Some(Progress::ToolStarted { tool, summary }) => {
                json["tool"] = json!(tool);
                json["summary"] = json!(summary);
            }
            Some(Progress::ToolFinished {
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
            _ => {}
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_constants_are_the_error_kind_codes() {
        let table = [
            (SUBTASK_ERROR_INVALID_INPUT, ErrorKind::InvalidInput),
            (SUBTASK_ERROR_CONFIG, ErrorKind::Config),
            (SUBTASK_ERROR_QUEUE_FULL, ErrorKind::QueueFull),
            (SUBTASK_ERROR_TIMEOUT, ErrorKind::Timeout),
            (SUBTASK_ERROR_CANCELLED, ErrorKind::Cancelled),
            (SUBTASK_ERROR_SHUTDOWN, ErrorKind::Shutdown),
            (SUBTASK_ERROR_PANIC, ErrorKind::Panic),
            (SUBTASK_ERROR_PROVIDER, ErrorKind::Provider),
            (SUBTASK_ERROR_TOOL, ErrorKind::Tool),
            (SUBTASK_ERROR_IO, ErrorKind::Io),
            (SUBTASK_ERROR_OTHER, ErrorKind::Other),
            (SUBTASK_ERROR_INTERNAL, ErrorKind::Internal),
        ];
        for (constant, kind) in table {
            assert_eq!(constant, kind.code(), "{kind:?}");
            // Exhaustive: a new kind fails to compile here until it gets a constant above.
            match kind {
                ErrorKind::InvalidInput
                | ErrorKind::Config
                | ErrorKind::QueueFull
                | ErrorKind::Timeout
                | ErrorKind::Cancelled
                | ErrorKind::Shutdown
                | ErrorKind::Panic
                | ErrorKind::Provider
                | ErrorKind::Tool
                | ErrorKind::Io
                | ErrorKind::Other
                | ErrorKind::Internal => {}
            }
        }
    }

    #[test]
    fn huge_or_negative_seconds_are_errors_not_panics() {
        for value in [json!(1e300), json!(-1), json!("2")] {
            let settings = Map::from_iter([("poll_interval".to_string(), value)]);
            let error = check_settings(&settings).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidInput);
        }
    }
}
