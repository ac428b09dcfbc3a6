//! The C ABI (`subtask::ffi`) called from Rust as C would call it: NULL and non-UTF-8
//! arguments, out-parameters left alone on failure, `*_free(NULL)`, every setting's type,
//! host model, tool and event callbacks written as `extern "C"` functions, failures of
//! each callback, cancellation from another thread, stats and tool definitions.

mod support;

use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use subtask::ffi::*;
use support::{Gate, PATIENCE, TempDir, watchdog, watchdog_for};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// Bytes that are not UTF-8, NUL-terminated.
const NOT_UTF8: &[u8] = b"{\"a\": \"\xff\xfe\"}\0";

fn not_utf8() -> *const c_char {
    NOT_UTF8.as_ptr().cast()
}

/// Takes an error: its code and message (`None` for success), freeing it.
fn take_error(error: *mut subtask_error) -> Option<(i32, String)> {
    if error.is_null() {
        return None;
    }
    // SAFETY: a live error from the library, freed once, here.
    unsafe {
        let code = subtask_error_code(error);
        let message = CStr::from_ptr(subtask_error_message(error))
            .to_str()
            .expect("messages are UTF-8")
            .to_string();
        subtask_error_free(error);
        Some((code, message))
    }
}

#[track_caller]
fn ok(error: *mut subtask_error) {
    if let Some((code, message)) = take_error(error) {
        panic!("expected success, got error {code}: {message}");
    }
}

/// Asserts `error` is invalid input whose message contains `mentions`.
#[track_caller]
fn invalid(error: *mut subtask_error, mentions: &str) -> String {
    let (code, message) = take_error(error).expect("expected an error, got success");
    assert_eq!(code, SUBTASK_ERROR_INVALID_INPUT, "{message}");
    assert!(
        message.contains(mentions),
        "the message does not mention {mentions:?}: {message}"
    );
    message
}

/// Takes a string the library returned, freeing it.
fn take_string(text: *mut c_char) -> String {
    assert!(!text.is_null(), "the library returned no string");
    // SAFETY: a live string from the library, freed once, here.
    unsafe {
        let owned = CStr::from_ptr(text).to_str().unwrap().to_string();
        subtask_string_free(text);
        owned
    }
}

/// What a host callback does with its input: a return code and the reply text (raw bytes,
/// to test invalid UTF-8), or none.
type Handler = Box<dyn Fn(&str) -> (i32, Option<Vec<u8>>) + Send + Sync>;

fn reply(text: impl Into<String>) -> (i32, Option<Vec<u8>>) {
    (0, Some(text.into().into_bytes()))
}

fn fail(code: i32, text: &str) -> (i32, Option<Vec<u8>>) {
    (code, Some(text.as_bytes().to_vec()))
}

/// The model and tool callback: `user_data` is a `Handler`. A panic becomes code 99 (it
/// must not unwind into the library).
unsafe extern "C" fn call_handler(
    user_data: *mut c_void,
    input: *const c_char,
    reply: *mut subtask_reply,
) -> i32 {
    // SAFETY: `user_data` is the `Handler` the fixture keeps alive until the runtime is
    // freed; `input` is a NUL-terminated string valid for the call.
    let (handler, input) = unsafe { (&*user_data.cast::<Handler>(), CStr::from_ptr(input)) };
    let input = input.to_str().expect("callback input is UTF-8");
    let (code, text) = catch_unwind(AssertUnwindSafe(|| handler(input)))
        .unwrap_or_else(|_| fail(99, "the test's handler panicked"));
    if let Some(mut text) = text {
        text.push(0);
        // SAFETY: the reply of this call, a NUL-terminated string.
        unsafe { subtask_reply_set(reply, text.as_ptr().cast()) };
    }
    code
}

/// Events seen by the event callback, for tests to wait on.
#[derive(Default)]
struct Events {
    seen: Mutex<Vec<Value>>,
    changed: Condvar,
}

impl Events {
    /// Waits until some event satisfies `matches`; returns it.
    fn wait_for(&self, matches: impl Fn(&Value) -> bool) -> Value {
        let seen = self.seen.lock().unwrap();
        let (seen, _) = self
            .changed
            .wait_timeout_while(seen, PATIENCE, |seen| !seen.iter().any(&matches))
            .unwrap();
        seen.iter()
            .find(|event| matches(event))
            .cloned()
            .unwrap_or_else(|| panic!("no such event within {PATIENCE:?}: {seen:?}"))
    }

    fn kinds(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .map(|event| event["kind"].as_str().unwrap().to_string())
            .collect()
    }
}

unsafe extern "C" fn record_event(user_data: *mut c_void, event: *const c_char) {
    // SAFETY: `user_data` is the fixture's `Events`; `event` is valid for the call.
    let (events, event) = unsafe { (&*user_data.cast::<Events>(), CStr::from_ptr(event)) };
    let event = serde_json::from_str(event.to_str().unwrap()).unwrap_or(Value::Null);
    events.seen.lock().unwrap().push(event);
    events.changed.notify_all();
}

/// A runtime with a host model, host tools and the event recorder, freed on drop before
/// the handlers it calls.
struct Fixture {
    runtime: *mut subtask_runtime,
    events: Box<Events>,
    // Boxed: each `Handler` (a fat pointer) needs an address of its own, kept as the Vec
    // grows, to pass as thin `user_data`.
    #[allow(clippy::vec_box)]
    _handlers: Vec<Box<Handler>>,
    _workspace: TempDir,
}

// SAFETY: the runtime is thread-safe (the header says so); the rest is Sync.
unsafe impl Sync for Fixture {}

impl Drop for Fixture {
    fn drop(&mut self) {
        // SAFETY: made by subtask_runtime_new, freed once, here.
        unsafe { subtask_runtime_free(self.runtime) };
    }
}

impl Fixture {
    fn new(settings: Value, model: Handler, tools: Vec<(&str, Handler)>) -> Fixture {
        let workspace = TempDir::new("workspace");
        let mut settings = settings;
        settings["workspace"] = json!(workspace.path());
        settings["transcripts"] = json!("off");
        let mut handlers = vec![Box::new(model)];
        let events = Box::<Events>::default();
        let config = new_config(&settings.to_string());
        // SAFETY: a live config; the handlers and events outlive the runtime (see Drop).
        unsafe {
            let model: *const Handler = &*handlers[0];
            ok(subtask_config_set_model(
                config,
                c("rust-model").as_ptr(),
                Some(call_handler),
                model.cast_mut().cast(),
            ));
            for (name, handler) in tools {
                let handler = Box::new(handler);
                let user_data: *const Handler = &*handler;
                handlers.push(handler);
                ok(subtask_config_add_tool(
                    config,
                    c(name).as_ptr(),
                    c(&format!("The host tool {name}.")).as_ptr(),
                    c(r#"{"type": "object", "properties": {"text": {"type": "string"}}}"#).as_ptr(),
                    false,
                    Some(call_handler),
                    user_data.cast_mut().cast(),
                ));
            }
            let events_data: *const Events = &*events;
            ok(subtask_config_set_event_callback(
                config,
                Some(record_event),
                events_data.cast_mut().cast(),
            ));
        }
        let mut runtime = ptr::null_mut();
        // SAFETY: a live config and a writable out-parameter; the config is freed once.
        unsafe {
            ok(subtask_runtime_new(config, &mut runtime));
            subtask_config_free(config);
        }
        Fixture {
            runtime,
            events,
            _handlers: handlers,
            _workspace: workspace,
        }
    }

    /// Runs a `task` call; returns the result JSON or the error.
    fn task(&self, arguments: &Value) -> Result<Value, (i32, String)> {
        let arguments = c(&arguments.to_string());
        let mut out = ptr::null_mut();
        // SAFETY: a live runtime, a NUL-terminated string, a writable out-parameter.
        let error = unsafe { subtask_task(self.runtime, arguments.as_ptr(), &mut out) };
        match take_error(error) {
            Some(error) => Err(error),
            None => Ok(serde_json::from_str(&take_string(out)).unwrap()),
        }
    }

    fn stats(&self) -> Value {
        let mut out = ptr::null_mut();
        // SAFETY: a live runtime and a writable out-parameter.
        ok(unsafe { subtask_stats(self.runtime, &mut out) });
        serde_json::from_str(&take_string(out)).unwrap()
    }
}

fn new_config(settings: &str) -> *mut subtask_config {
    let settings = c(settings);
    let mut config = ptr::null_mut();
    // SAFETY: a NUL-terminated string and a writable out-parameter.
    ok(unsafe { subtask_config_new(settings.as_ptr(), &mut config) });
    assert!(!config.is_null());
    config
}

fn say_hi() -> Value {
    json!({"description": "Say hi", "prompt": "Say hi", "subagent_type": "general-purpose"})
}

/// A Chat Completions response that calls `tool`.
fn tool_call(tool: &str, arguments: Value) -> String {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "rust-model",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {
                "name": tool, "arguments": arguments.to_string()}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    })
    .to_string()
}

/// A Chat Completions response with a final answer.
fn answer(text: &str) -> String {
    json!({
        "id": "chatcmpl-2", "object": "chat.completion", "model": "rust-model",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23}
    })
    .to_string()
}

/// The `tool` messages of a Chat Completions request.
fn tool_messages(request: &Value) -> Vec<Value> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|message| message["role"] == "tool")
        .cloned()
        .collect()
}

/// A model that calls `tool` once, then answers with what the tool said; it records every
/// request.
fn tool_then_answer(tool: &'static str, requests: Arc<Mutex<Vec<Value>>>) -> Handler {
    Box::new(move |request| {
        let request: Value = serde_json::from_str(request).unwrap();
        requests.lock().unwrap().push(request.clone());
        match tool_messages(&request).last() {
            None => reply(tool_call(tool, json!({"text": "ping"}))),
            Some(result) => reply(answer(&format!(
                "the tool said: {}",
                result["content"].as_str().unwrap_or_default()
            ))),
        }
    })
}

fn first_result(output: &Value) -> &Value {
    &output["results"][0]
}

// ---------------------------------------------------------------------------------------------
// Arguments: NULL, not UTF-8, out-parameters untouched, frees of NULL
// ---------------------------------------------------------------------------------------------

#[test]
fn abi_version_matches_the_header_constant() {
    assert_eq!(subtask_abi_version(), SUBTASK_ABI_VERSION);
}

#[test]
fn freeing_null_does_nothing() {
    // SAFETY: NULL is allowed everywhere here.
    unsafe {
        subtask_error_free(ptr::null_mut());
        subtask_string_free(ptr::null_mut());
        subtask_config_free(ptr::null_mut());
        subtask_runtime_free(ptr::null_mut());
        subtask_reply_set(ptr::null_mut(), c("ignored").as_ptr());
        subtask_reply_set(ptr::null_mut(), ptr::null());
        assert_eq!(subtask_error_code(ptr::null()), 0);
        assert!(subtask_error_message(ptr::null()).is_null());
    }
}

#[test]
fn config_arguments_are_checked_and_out_is_untouched_on_failure() {
    let sentinel = ptr::dangling_mut::<subtask_config>();
    let mut out = sentinel;
    // SAFETY: every pointer is NULL, NUL-terminated or writable.
    unsafe {
        invalid(
            subtask_config_new(c("{}").as_ptr(), ptr::null_mut()),
            "`out`",
        );
        invalid(subtask_config_new(not_utf8(), &mut out), "not UTF-8");
        invalid(
            subtask_config_new(c("{").as_ptr(), &mut out),
            "not valid JSON",
        );
        invalid(
            subtask_config_new(c("[1]").as_ptr(), &mut out),
            "JSON object",
        );
        invalid(
            subtask_config_new(c(r#"{"threads": 2}"#).as_ptr(), &mut out),
            "unknown setting `threads`",
        );
    }
    assert_eq!(out, sentinel, "the out-parameter was written on failure");

    // NULL and `{}` both mean every default.
    for settings in [ptr::null(), c("{}").as_ptr()] {
        let mut config = ptr::null_mut();
        // SAFETY: as above; the config is freed once.
        unsafe {
            ok(subtask_config_new(settings, &mut config));
            assert!(!config.is_null());
            subtask_config_free(config);
        }
    }
}

#[test]
fn every_setting_of_the_wrong_type_is_refused_by_config_new() {
    let counts = [
        "scheduler_threads",
        "execution_threads",
        "max_queued",
        "max_parallel",
        "max_depth",
    ];
    let seconds = [
        "poll_interval",
        "execution_timeout",
        "queue_timeout",
        "wait_timeout",
        "shutdown_grace",
    ];
    let strings = ["model", "api_key", "base_url", "workspace", "transcripts"];
    let mut cases = Vec::new();
    for key in counts {
        cases.extend([(key, json!("x")), (key, json!(-1)), (key, json!(1.5))]);
    }
    for key in seconds {
        cases.extend([(key, json!("x")), (key, json!(-1)), (key, json!(1e300))]);
    }
    for key in strings {
        cases.extend([(key, json!(5)), (key, json!(["a"]))]);
    }
    cases.extend([
        ("agents_dirs", json!("dir")),
        ("agents_dirs", json!([1])),
        ("agents_dirs", json!({"a": "b"})),
    ]);
    for (key, value) in cases {
        let settings = c(&json!({ key: value }).to_string());
        let mut out = ptr::dangling_mut::<subtask_config>();
        // SAFETY: a NUL-terminated string and a writable out-parameter.
        let error = unsafe { subtask_config_new(settings.as_ptr(), &mut out) };
        let message = invalid(error, &format!("`{key}`"));
        assert_eq!(out, ptr::dangling_mut(), "{key} = {value}: out was written");
        assert!(message.contains("must be"), "{key} = {value}: {message}");
    }

    // The right types, and null for a default, are accepted.
    let config = new_config(
        &json!({
            "scheduler_threads": 1, "execution_threads": 2, "max_queued": 3,
            "max_parallel": 4, "max_depth": null, "poll_interval": 0.5,
            "execution_timeout": 30, "queue_timeout": 10, "wait_timeout": null,
            "shutdown_grace": 1, "model": "openai:gpt-4o-mini", "api_key": "k",
            "base_url": "http://127.0.0.1:9", "workspace": ".", "transcripts": "off",
            "agents_dirs": [],
        })
        .to_string(),
    );
    // SAFETY: made above, freed once.
    unsafe { subtask_config_free(config) };
}

#[test]
fn out_of_range_settings_are_refused_by_runtime_new() {
    let workspace = TempDir::new("range");
    for (key, value) in [
        ("execution_threads", json!(0)),
        ("poll_interval", json!(0)),
        ("workspace", json!(workspace.path().join("missing"))),
    ] {
        let mut settings = json!({"transcripts": "off", "workspace": workspace.path()});
        settings[key] = value;
        let config = new_config(&settings.to_string());
        let model: Handler = Box::new(|_| reply(answer("unused")));
        let mut runtime = ptr::dangling_mut::<subtask_runtime>();
        // SAFETY: a live config (freed once), a handler outliving the failed build.
        let error = unsafe {
            ok(subtask_config_set_model(
                config,
                c("m").as_ptr(),
                Some(call_handler),
                ptr::from_ref(&model).cast_mut().cast(),
            ));
            let error = subtask_runtime_new(config, &mut runtime);
            subtask_config_free(config);
            error
        };
        let (code, message) = take_error(error).expect("expected an error");
        assert_eq!(code, SUBTASK_ERROR_CONFIG, "{key}: {message}");
        assert_eq!(runtime, ptr::dangling_mut(), "{key}: out was written");
    }
    // SAFETY: a NULL out-parameter is refused, not written.
    unsafe { invalid(subtask_runtime_new(ptr::null(), ptr::null_mut()), "`out`") };
}

#[test]
fn config_setters_check_their_arguments() {
    let config = new_config("{}");
    let schema = c(r#"{"type": "object"}"#);
    let (name, description) = (c("echo"), c("Echoes."));
    // SAFETY: a live config (freed once at the end); strings NUL-terminated or NULL.
    unsafe {
        invalid(
            subtask_config_set_model(
                ptr::null_mut(),
                name.as_ptr(),
                Some(call_handler),
                ptr::null_mut(),
            ),
            "`config`",
        );
        invalid(
            subtask_config_set_model(config, ptr::null(), Some(call_handler), ptr::null_mut()),
            "`name`",
        );
        invalid(
            subtask_config_set_model(config, not_utf8(), Some(call_handler), ptr::null_mut()),
            "`name` is not UTF-8",
        );
        invalid(
            subtask_config_set_model(config, name.as_ptr(), None, ptr::null_mut()),
            "`callback`",
        );

        let add = |config, name, description, schema, callback| {
            subtask_config_add_tool(
                config,
                name,
                description,
                schema,
                true,
                callback,
                ptr::null_mut(),
            )
        };
        let callback = Some(call_handler as unsafe extern "C" fn(_, _, _) -> _);
        invalid(
            add(
                ptr::null_mut(),
                name.as_ptr(),
                description.as_ptr(),
                schema.as_ptr(),
                callback,
            ),
            "`config`",
        );
        invalid(
            add(
                config,
                ptr::null(),
                description.as_ptr(),
                schema.as_ptr(),
                callback,
            ),
            "`name`",
        );
        invalid(
            add(
                config,
                name.as_ptr(),
                ptr::null(),
                schema.as_ptr(),
                callback,
            ),
            "`description`",
        );
        invalid(
            add(config, name.as_ptr(), not_utf8(), schema.as_ptr(), callback),
            "`description` is not UTF-8",
        );
        invalid(
            add(
                config,
                name.as_ptr(),
                description.as_ptr(),
                ptr::null(),
                callback,
            ),
            "`schema_json`",
        );
        invalid(
            add(
                config,
                name.as_ptr(),
                description.as_ptr(),
                c("[]").as_ptr(),
                callback,
            ),
            "`schema_json` must be a JSON object",
        );
        invalid(
            add(
                config,
                name.as_ptr(),
                description.as_ptr(),
                c("{").as_ptr(),
                callback,
            ),
            "`schema_json` is not valid JSON",
        );
        invalid(
            add(
                config,
                name.as_ptr(),
                description.as_ptr(),
                schema.as_ptr(),
                None,
            ),
            "`callback`",
        );

        invalid(
            subtask_config_set_event_callback(ptr::null_mut(), Some(record_event), ptr::null_mut()),
            "`config`",
        );
        invalid(
            subtask_config_set_event_callback(config, None, ptr::null_mut()),
            "`callback`",
        );
        subtask_config_free(config);
    }
}

#[test]
fn a_tool_name_taken_twice_is_a_configuration_error() {
    let workspace = TempDir::new("dup");
    let config =
        new_config(&json!({"workspace": workspace.path(), "transcripts": "off"}).to_string());
    let model: Handler = Box::new(|_| reply(answer("unused")));
    let mut runtime = ptr::dangling_mut::<subtask_runtime>();
    // SAFETY: a live config (freed once); the handler outlives the failed build.
    let error = unsafe {
        ok(subtask_config_set_model(
            config,
            c("m").as_ptr(),
            Some(call_handler),
            ptr::from_ref(&model).cast_mut().cast(),
        ));
        for _ in 0..2 {
            ok(subtask_config_add_tool(
                config,
                c("twice").as_ptr(),
                c("A tool.").as_ptr(),
                c("{}").as_ptr(),
                false,
                Some(call_handler),
                ptr::from_ref(&model).cast_mut().cast(),
            ));
        }
        let error = subtask_runtime_new(config, &mut runtime);
        subtask_config_free(config);
        error
    };
    let (code, message) = take_error(error).expect("expected an error");
    assert_eq!(code, SUBTASK_ERROR_CONFIG, "{message}");
    assert!(message.contains("twice"), "{message}");
    assert_eq!(runtime, ptr::dangling_mut());
}

#[test]
fn runtime_calls_check_their_arguments_and_leave_out_parameters_alone() {
    let fixture = Fixture::new(json!({}), Box::new(|_| reply(answer("hi"))), vec![]);
    let runtime = fixture.runtime;
    let sentinel = ptr::dangling_mut::<c_char>();
    let mut out = sentinel;
    let args = c(&say_hi().to_string());
    // SAFETY: every pointer is NULL, NUL-terminated, live or writable.
    unsafe {
        invalid(
            subtask_task(ptr::null(), args.as_ptr(), &mut out),
            "`runtime`",
        );
        invalid(subtask_task(runtime, ptr::null(), &mut out), "`args_json`");
        invalid(
            subtask_task(runtime, args.as_ptr(), ptr::null_mut()),
            "`out_json`",
        );
        invalid(subtask_task(runtime, not_utf8(), &mut out), "not UTF-8");

        invalid(
            subtask_tool_definition(ptr::null(), c("openai").as_ptr(), &mut out),
            "`runtime`",
        );
        invalid(
            subtask_tool_definition(runtime, ptr::null(), &mut out),
            "`format`",
        );
        invalid(
            subtask_tool_definition(runtime, c("openai").as_ptr(), ptr::null_mut()),
            "`out_json`",
        );
        invalid(
            subtask_tool_definition(runtime, c("xml").as_ptr(), &mut out),
            "unknown format 'xml'",
        );
        invalid(
            subtask_tool_definition(runtime, not_utf8(), &mut out),
            "not UTF-8",
        );

        invalid(subtask_stats(ptr::null(), &mut out), "`runtime`");
        invalid(subtask_stats(runtime, ptr::null_mut()), "`out_json`");
        assert_eq!(
            out, sentinel,
            "a string out-parameter was written on failure"
        );

        let mut cancelled = true;
        invalid(
            subtask_cancel(ptr::null(), c("x").as_ptr(), &mut cancelled),
            "`runtime`",
        );
        invalid(
            subtask_cancel(runtime, ptr::null(), &mut cancelled),
            "`task_id`",
        );
        invalid(
            subtask_cancel(runtime, not_utf8(), &mut cancelled),
            "not UTF-8",
        );
        assert!(cancelled, "out_cancelled was written on failure");
        let mut count = 42;
        invalid(subtask_cancel_all(ptr::null(), &mut count), "`runtime`");
        assert_eq!(count, 42, "out_count was written on failure");

        // Optional out-parameters may be NULL.
        ok(subtask_cancel(
            runtime,
            c("nothing").as_ptr(),
            ptr::null_mut(),
        ));
        ok(subtask_cancel_all(runtime, ptr::null_mut()));
        ok(subtask_cancel(
            runtime,
            c("nothing").as_ptr(),
            &mut cancelled,
        ));
        assert!(!cancelled, "cancelled a task that does not exist");
        ok(subtask_cancel_all(runtime, &mut count));
        assert_eq!(count, 0);
    }
}

#[test]
fn a_refused_task_call_is_invalid_input_naming_the_field() {
    let fixture = Fixture::new(json!({}), Box::new(|_| reply(answer("hi"))), vec![]);
    for (arguments, mentions) in [
        (
            json!({"prompt": "p", "subagent_type": "general-purpose"}),
            "description",
        ),
        (
            json!({"description": "d", "subagent_type": "general-purpose"}),
            "prompt",
        ),
        (
            json!({"description": "d", "prompt": "p", "subagent_type": "no-such-type"}),
            "no-such-type",
        ),
        (json!([1, 2]), "object"),
    ] {
        let (code, message) = fixture.task(&arguments).unwrap_err();
        assert_eq!(code, SUBTASK_ERROR_INVALID_INPUT, "{message}");
        assert!(message.contains(mentions), "{arguments}: {message}");
    }
    let mut out = ptr::dangling_mut::<c_char>();
    // SAFETY: a live runtime, a NUL-terminated string, a writable out-parameter.
    let error = unsafe { subtask_task(fixture.runtime, c("{not json").as_ptr(), &mut out) };
    invalid(error, "not valid JSON");
    assert_eq!(out, ptr::dangling_mut());
    // Nothing ran.
    assert_eq!(fixture.stats()["submitted"], 0);
}

// ---------------------------------------------------------------------------------------------
// Callbacks
// ---------------------------------------------------------------------------------------------

#[test]
fn model_tool_and_event_callbacks_round_trip() {
    watchdog(|| {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let inputs = Arc::new(Mutex::new(Vec::new()));
        let seen = inputs.clone();
        let fixture = Fixture::new(
            json!({"execution_threads": 2, "scheduler_threads": 1}),
            tool_then_answer("echo", requests.clone()),
            vec![(
                "echo",
                Box::new(move |input: &str| {
                    let input: Value = serde_json::from_str(input).unwrap();
                    seen.lock().unwrap().push(input.clone());
                    reply(format!("echo: {}", input["text"].as_str().unwrap()))
                }),
            )],
        );
        let output = fixture.task(&say_hi()).unwrap();
        let result = first_result(&output);
        assert_eq!(result["status"], "completed", "{output}");
        assert_eq!(result["answer"], "the tool said: echo: ping");
        assert_eq!(result["model"], "function:rust-model");
        assert_eq!(result["turns"], 2);
        assert_eq!(result["tool_calls"]["echo"], 1);
        assert_eq!(result["usage"]["input_tokens"], 30);
        assert_eq!(output["is_error"], false);
        assert_eq!(*inputs.lock().unwrap(), [json!({"text": "ping"})]);

        let requests = requests.lock().unwrap();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0]["model"], "rust-model");
        let offered: Vec<&str> = requests[0]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tool| tool["function"]["name"].as_str().unwrap())
            .collect();
        assert!(offered.contains(&"echo"), "{offered:?}");
        assert!(requests[0]["messages"].to_string().contains("Say hi"));

        // Every event of the task arrives, `finished` last, with the task's id.
        let finished = fixture.events.wait_for(|event| event["kind"] == "finished");
        assert_eq!(finished["status"], "completed");
        let kinds = fixture.events.kinds();
        for kind in ["queued", "started", "turn", "tool", "tool done", "finished"] {
            assert!(kinds.iter().any(|seen| seen == kind), "{kind}: {kinds:?}");
        }
        assert_eq!(kinds.last().map(String::as_str), Some("finished"));
        let tool_done = fixture
            .events
            .wait_for(|event| event["kind"] == "tool done");
        assert_eq!(tool_done["tool"], "echo");
        assert_eq!(tool_done["is_error"], false);
        assert_eq!(tool_done["task"], finished["task"]);
    });
}

#[test]
fn a_failing_tool_callback_is_an_error_result_the_model_reads() {
    watchdog(|| {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let fixture = Fixture::new(
            json!({}),
            tool_then_answer("flaky", requests.clone()),
            vec![("flaky", Box::new(|_: &str| fail(3, "the disk is on fire")))],
        );
        let output = fixture.task(&say_hi()).unwrap();
        assert_eq!(first_result(&output)["status"], "completed", "{output}");
        let requests = requests.lock().unwrap();
        let results = tool_messages(&requests[1]);
        assert_eq!(results.len(), 1);
        let content = results[0]["content"].to_string();
        assert!(content.contains("the disk is on fire"), "{content}");
        let tool_done = fixture
            .events
            .wait_for(|event| event["kind"] == "tool done");
        assert_eq!(tool_done["is_error"], true);
    });
    watchdog(|| {
        // Non-zero without a message: the model reads which tool failed, with the code.
        let requests = Arc::new(Mutex::new(Vec::new()));
        let fixture = Fixture::new(
            json!({}),
            tool_then_answer("silent", requests.clone()),
            vec![("silent", Box::new(|_: &str| (5, None)))],
        );
        fixture.task(&say_hi()).unwrap();
        let content = tool_messages(&requests.lock().unwrap()[1])[0]["content"].to_string();
        assert!(
            content.contains("the tool `silent` failed (code 5)"),
            "{content}"
        );
    });
}

#[test]
fn a_tool_reply_that_is_not_utf8_reaches_the_model_with_replacements() {
    watchdog(|| {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let fixture = Fixture::new(
            json!({}),
            tool_then_answer("bytes", requests.clone()),
            vec![(
                "bytes",
                Box::new(|_: &str| (0, Some(b"ok \xff\xfe done".to_vec()))),
            )],
        );
        fixture.task(&say_hi()).unwrap();
        let content = tool_messages(&requests.lock().unwrap()[1])[0]["content"].to_string();
        assert!(content.contains("ok \u{fffd}\u{fffd} done"), "{content}");
    });
}

#[test]
fn a_failing_model_callback_fails_the_task_with_its_message() {
    watchdog(|| {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let fixture = Fixture::new(
            json!({}),
            Box::new(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
                fail(7, "the GPU melted")
            }),
            vec![],
        );
        let output = fixture.task(&say_hi()).unwrap();
        let result = first_result(&output);
        assert_eq!(result["status"], "failed", "{output}");
        let error = result["error"].as_str().unwrap();
        assert!(error.contains("the GPU melted"), "{error}");
        assert_eq!(output["is_error"], true);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a failure is not retried");
        // The runtime's own task ended normally: the run reported its failure as a result.
        fixture.events.wait_for(|event| event["kind"] == "finished");
    });
    watchdog(|| {
        // Without a message, or a reply that is no Chat Completions body.
        for (handler, expected) in [
            (
                Box::new(|_: &str| (2, None)) as Handler,
                "the model callback failed (code 2)",
            ),
            (
                Box::new(|_: &str| (0, None)) as Handler,
                "the model callback wrote no reply",
            ),
            (
                Box::new(|_: &str| reply("not json")) as Handler,
                "the model callback's reply is not JSON",
            ),
            (
                Box::new(|_: &str| reply(r#"{"error": {"message": "rate limited"}}"#)) as Handler,
                "rate limited",
            ),
        ] {
            let fixture = Fixture::new(json!({}), handler, vec![]);
            let output = fixture.task(&say_hi()).unwrap();
            let result = first_result(&output);
            assert_eq!(result["status"], "failed", "{output}");
            let error = result["error"].as_str().unwrap();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------------

/// A pointer to send to another thread (the runtime is thread-safe).
#[derive(Clone, Copy)]
struct SendPtr(*const subtask_runtime);
// SAFETY: subtask_runtime is thread-safe, per the header.
unsafe impl Send for SendPtr {}

fn blocking_fixture(gate: &Gate, tasks: usize) -> Fixture {
    let pass = gate.pass();
    Fixture::new(
        json!({"execution_threads": tasks, "execution_timeout": 60, "poll_interval": 0.05}),
        tool_then_answer("block", Arc::default()),
        vec![(
            "block",
            Box::new(move |_: &str| match pass.wait() {
                Ok(()) => reply("released"),
                Err(error) => fail(1, &error.to_string()),
            }),
        )],
    )
}

/// Runs `arguments` on another thread; returns its join handle's result through `scope`.
fn task_on_thread<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    runtime: *mut subtask_runtime,
    arguments: Value,
) -> std::thread::ScopedJoinHandle<'scope, Value> {
    let runtime = SendPtr(runtime);
    scope.spawn(move || {
        let runtime = runtime;
        let arguments = c(&arguments.to_string());
        let mut out = ptr::null_mut();
        // SAFETY: a live runtime (freed after the scope), a string and an out-parameter.
        ok(unsafe { subtask_task(runtime.0, arguments.as_ptr(), &mut out) });
        serde_json::from_str(&take_string(out)).unwrap()
    })
}

#[test]
fn cancel_from_another_thread_ends_a_task_blocked_in_a_tool_callback() {
    watchdog_for(PATIENCE * 2, || {
        let gate = Gate::new();
        let fixture = blocking_fixture(&gate, 1);
        std::thread::scope(|scope| {
            let call = task_on_thread(scope, fixture.runtime, say_hi());
            gate.expect_arrivals(1);
            let started = fixture.events.wait_for(|event| event["kind"] == "started");
            let id = c(started["task"].as_str().unwrap());
            let mut cancelled = false;
            // SAFETY: a live runtime, a NUL-terminated id, a writable out-parameter.
            ok(unsafe { subtask_cancel(fixture.runtime, id.as_ptr(), &mut cancelled) });
            assert!(cancelled);
            // The caller gets its answer while the callback still blocks (after the task
            // tool's grace for a partial answer, which a blocked run cannot hand over).
            let output = call.join().unwrap();
            assert_eq!(first_result(&output)["status"], "cancelled", "{output}");
            // SAFETY: as above.
            ok(unsafe { subtask_cancel(fixture.runtime, id.as_ptr(), &mut cancelled) });
            assert!(!cancelled, "a task ended is no longer live");
            let stats = fixture.stats();
            assert_eq!(stats["cancelled"], 1, "{stats}");
            gate.open();
        });
        let finished = fixture.events.wait_for(|event| event["kind"] == "finished");
        assert_eq!(finished["status"], "cancelled");
    });
}

#[test]
fn cancel_all_ends_every_live_task() {
    watchdog_for(PATIENCE * 2, || {
        let gate = Gate::new();
        let fixture = blocking_fixture(&gate, 2);
        std::thread::scope(|scope| {
            let two = json!({"tasks": [say_hi(), say_hi()]});
            let call = task_on_thread(scope, fixture.runtime, two);
            gate.expect_arrivals(2);
            let mut count = 0;
            // SAFETY: a live runtime and a writable out-parameter.
            ok(unsafe { subtask_cancel_all(fixture.runtime, &mut count) });
            assert_eq!(count, 2);
            // Released, the runs see they were cancelled and hand over their partial answers.
            gate.open();
            let output = call.join().unwrap();
            let statuses: Vec<&Value> = output["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|result| &result["status"])
                .collect();
            assert_eq!(statuses, ["cancelled", "cancelled"], "{output}");
        });
    });
}

#[test]
fn freeing_the_runtime_cancels_a_running_task_and_waits_for_it() {
    watchdog_for(PATIENCE * 2, || {
        let gate = Gate::new();
        let mut fixture = blocking_fixture(&gate, 1);
        // Freed below, on another thread: the fixture keeps only the handlers and events.
        let runtime =
            SendPtr(std::mem::replace(&mut fixture.runtime, ptr::null_mut()).cast_const());
        std::thread::scope(|scope| {
            let call = task_on_thread(scope, runtime.0.cast_mut(), say_hi());
            gate.expect_arrivals(1);
            let freeing = scope.spawn(move || {
                let runtime = runtime;
                // SAFETY: the test's runtime, freed once, here.
                unsafe { subtask_runtime_free(runtime.0.cast_mut()) };
            });
            // The shutdown cancels the task at once; released, the callback returns, the run
            // ends, and the free (which waits for it) and the caller return.
            let finished = fixture.events.wait_for(|event| event["kind"] == "finished");
            assert_eq!(finished["status"], "cancelled");
            gate.open();
            freeing.join().unwrap();
            let output = call.join().unwrap();
            assert_eq!(first_result(&output)["status"], "cancelled", "{output}");
        });
    });
}

// ---------------------------------------------------------------------------------------------
// Stats and tool definitions
// ---------------------------------------------------------------------------------------------

#[test]
fn stats_count_tasks_by_outcome() {
    let fixture = Fixture::new(json!({}), Box::new(|_| reply(answer("hi"))), vec![]);
    let fields = [
        "queued",
        "running",
        "zombies",
        "live",
        "submitted",
        "rejected",
        "completed",
        "failed",
        "cancelled",
        "timed_out",
    ];
    let before = fixture.stats();
    let object = before.as_object().unwrap();
    assert_eq!(object.len(), fields.len(), "{before}");
    for field in fields {
        assert_eq!(before[field], 0, "{field}: {before}");
    }
    fixture.task(&say_hi()).unwrap();
    fixture.task(&say_hi()).unwrap();
    let after = fixture.stats();
    assert_eq!(after["submitted"], 2, "{after}");
    assert_eq!(after["completed"], 2, "{after}");
    assert_eq!(after["live"], 0, "{after}");
}

#[test]
fn tool_definitions_parse_back_in_every_format() {
    let fixture = Fixture::new(
        json!({"max_parallel": 3}),
        Box::new(|_| reply(answer("hi"))),
        vec![],
    );
    let definition = |format: &str| -> Value {
        let mut out = ptr::null_mut();
        // SAFETY: a live runtime, a NUL-terminated string, a writable out-parameter.
        ok(unsafe { subtask_tool_definition(fixture.runtime, c(format).as_ptr(), &mut out) });
        serde_json::from_str(&take_string(out)).unwrap()
    };
    let openai = definition("openai");
    assert_eq!(openai["type"], "function");
    assert_eq!(openai["function"]["name"], "task");
    let parameters = &openai["function"]["parameters"];
    assert_eq!(parameters["type"], "object");
    assert!(parameters["properties"]["subagent_type"].is_object());
    assert_eq!(parameters["properties"]["tasks"]["maxItems"], 3);
    assert!(
        !openai["function"]["description"]
            .as_str()
            .unwrap()
            .is_empty()
    );

    let anthropic = definition("anthropic");
    assert_eq!(anthropic["name"], "task");
    assert_eq!(&anthropic["input_schema"], parameters);

    let mcp = definition("mcp");
    assert_eq!(mcp["name"], "task");
    assert_eq!(&mcp["inputSchema"], parameters);
    assert_eq!(mcp["description"], anthropic["description"]);
}

#[test]
fn one_config_builds_runtimes_that_outlive_it() {
    watchdog(|| {
        let workspace = TempDir::new("shared");
        let config =
            new_config(&json!({"workspace": workspace.path(), "transcripts": "off"}).to_string());
        let model: Handler = Box::new(|_| reply(answer("shared")));
        let mut runtimes = [ptr::null_mut(); 2];
        // SAFETY: a live config freed once before the runtimes are used; the handler
        // outlives both runtimes.
        unsafe {
            ok(subtask_config_set_model(
                config,
                c("m").as_ptr(),
                Some(call_handler),
                ptr::from_ref(&model).cast_mut().cast(),
            ));
            for runtime in &mut runtimes {
                ok(subtask_runtime_new(config, runtime));
            }
            subtask_config_free(config);
            let args = c(&say_hi().to_string());
            for runtime in runtimes {
                let mut out = ptr::null_mut();
                ok(subtask_task(runtime, args.as_ptr(), &mut out));
                let output: Value = serde_json::from_str(&take_string(out)).unwrap();
                assert_eq!(first_result(&output)["answer"], "shared");
                subtask_runtime_free(runtime);
            }
        }
    });
}

#[test]
fn results_carry_the_text_and_footer_the_model_reads() {
    watchdog(|| {
        let fixture = Fixture::new(json!({}), Box::new(|_| reply(answer("hi"))), vec![]);
        let output = fixture.task(&say_hi()).unwrap();
        let result = first_result(&output);
        let footer = result["footer"].as_str().unwrap();
        assert!(footer.starts_with("[run general-purpose-"), "{footer}");
        assert_eq!(result["text"], format!("hi\n\n{footer}"));
        assert_eq!(output["text"], result["text"]);
    });
}

#[test]
fn a_canceller_cancels_its_call_and_only_its_call() {
    watchdog(|| {
        let fixture = Fixture::new(json!({}), Box::new(|_| reply(answer("hi"))), vec![]);
        let mut canceller = ptr::null_mut();
        // SAFETY: a writable out-parameter.
        ok(unsafe { subtask_canceller_new(&mut canceller) });
        // SAFETY: a live canceller (twice: the second does nothing more).
        unsafe {
            subtask_canceller_cancel(canceller);
            subtask_canceller_cancel(canceller);
        }
        let arguments = c(&say_hi().to_string());
        let mut out = ptr::null_mut();
        // SAFETY: live runtime and canceller, a NUL-terminated string, a writable out.
        ok(unsafe { subtask_task_with(fixture.runtime, arguments.as_ptr(), canceller, &mut out) });
        let output: Value = serde_json::from_str(&take_string(out)).unwrap();
        assert_eq!(first_result(&output)["status"], "cancelled", "{output}");
        // SAFETY: freed once, after the call returned; NULL does nothing.
        unsafe {
            subtask_canceller_free(canceller);
            subtask_canceller_free(ptr::null_mut());
            subtask_canceller_cancel(ptr::null());
            assert!(!subtask_reply_cancelled(ptr::null()));
        }
        // Without a canceller (NULL), the same call runs as `subtask_task`.
        let mut out = ptr::null_mut();
        // SAFETY: as above, with a NULL canceller.
        ok(unsafe {
            subtask_task_with(fixture.runtime, arguments.as_ptr(), ptr::null(), &mut out)
        });
        let output: Value = serde_json::from_str(&take_string(out)).unwrap();
        assert_eq!(first_result(&output)["status"], "completed", "{output}");
    });
}

#[test]
fn a_named_host_model_serves_the_name_a_call_gives() {
    watchdog(|| {
        let workspace = TempDir::new("workspace");
        let settings = json!({"workspace": workspace.path(), "transcripts": "off"});
        let config = new_config(&settings.to_string());
        let default: Handler = Box::new(|_| reply(answer("default model")));
        let haiku: Handler = Box::new(|request: &str| {
            let request: Value = serde_json::from_str(request).unwrap();
            reply(answer(&format!(
                "host {}",
                request["model"].as_str().unwrap()
            )))
        });
        let mut runtime = ptr::null_mut();
        // SAFETY: a live config; the handlers outlive the runtime (freed below first).
        unsafe {
            ok(subtask_config_set_model(
                config,
                c("main").as_ptr(),
                Some(call_handler),
                (&raw const default).cast_mut().cast(),
            ));
            invalid(
                subtask_config_add_model(
                    config,
                    c(" ").as_ptr(),
                    Some(call_handler),
                    ptr::null_mut(),
                ),
                "name",
            );
            ok(subtask_config_add_model(
                config,
                c("haiku").as_ptr(),
                Some(call_handler),
                (&raw const haiku).cast_mut().cast(),
            ));
            ok(subtask_runtime_new(config, &mut runtime));
            subtask_config_free(config);
        }
        let run = |arguments: Value| {
            let arguments = c(&arguments.to_string());
            let mut out = ptr::null_mut();
            // SAFETY: a live runtime, a NUL-terminated string, a writable out-parameter.
            ok(unsafe { subtask_task(runtime, arguments.as_ptr(), &mut out) });
            serde_json::from_str::<Value>(&take_string(out)).unwrap()
        };
        let mut call = say_hi();
        let output = run(call.clone());
        assert_eq!(first_result(&output)["answer"], "default model", "{output}");
        call["model"] = json!("haiku");
        let output = run(call);
        assert_eq!(first_result(&output)["answer"], "host haiku", "{output}");
        assert_eq!(first_result(&output)["model"], "function:haiku");
        // SAFETY: freed once; the handlers are dropped after.
        unsafe { subtask_runtime_free(runtime) };
        drop((default, haiku));
    });
}

/// A model that answers only once its task is cancelled (or gives up after `PATIENCE`):
/// `user_data` is an `AtomicBool` it sets when it saw the cancellation.
unsafe extern "C" fn model_waiting_for_cancel(
    user_data: *mut c_void,
    _request: *const c_char,
    reply: *mut subtask_reply,
) -> i32 {
    let deadline = Instant::now() + PATIENCE;
    // SAFETY: the live reply of this call.
    while !unsafe { subtask_reply_cancelled(reply) } {
        if Instant::now() > deadline {
            return 7;
        }
        std::thread::yield_now();
    }
    // SAFETY: `user_data` is the test's flag, alive until the runtime is freed.
    unsafe { &*user_data.cast::<AtomicBool>() }.store(true, Ordering::SeqCst);
    0
}

#[test]
fn a_model_callback_sees_its_task_cancelled() {
    watchdog(|| {
        let workspace = TempDir::new("workspace");
        let settings = json!({"workspace": workspace.path(), "transcripts": "off"});
        let config = new_config(&settings.to_string());
        let saw_cancel = AtomicBool::new(false);
        let mut runtime = ptr::null_mut();
        // SAFETY: a live config; the flag outlives the runtime (freed below first).
        unsafe {
            ok(subtask_config_set_model(
                config,
                c("patient").as_ptr(),
                Some(model_waiting_for_cancel),
                (&raw const saw_cancel).cast_mut().cast(),
            ));
            ok(subtask_runtime_new(config, &mut runtime));
            subtask_config_free(config);
        }
        let mut call = say_hi();
        call["timeout_seconds"] = json!(0.2);
        let arguments = c(&call.to_string());
        let mut out = ptr::null_mut();
        // SAFETY: a live runtime, a NUL-terminated string, a writable out-parameter.
        ok(unsafe { subtask_task(runtime, arguments.as_ptr(), &mut out) });
        let output: Value = serde_json::from_str(&take_string(out)).unwrap();
        assert_eq!(first_result(&output)["status"], "timed_out", "{output}");
        // SAFETY: freed once; it waits for the callback, which returned once cancelled.
        unsafe { subtask_runtime_free(runtime) };
        assert!(
            saw_cancel.load(Ordering::SeqCst),
            "the model callback never saw its task's timeout"
        );
    });
}
