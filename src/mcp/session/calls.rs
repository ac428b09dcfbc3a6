//! `tools/call`: started on a worker of its own, run to its `CallToolResult`, and answered
//! (or recorded as its task's result).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{InFlight, Session, Shared};
use crate::mcp::kept::KeptCall;
use crate::mcp::output;
use crate::mcp::progress::Call;
use crate::mcp::roots::{self, RootsState};
use crate::mcp::tasks::Form;
use crate::mcp::wire::{
    self, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, RequestMeta, SERVER_BUSY, error,
    error_with_data, result,
};
use crate::runtime::{CancelToken, Event, EventKind, panic_message};
use crate::subagents::TASK_TOOL;
use crate::task_tool::CallOptions;

impl Session {
    /// Starts a `tools/call` on a worker of its own (after asking for the client's roots
    /// first, on 2026-07-28, when it has them and has not sent them with this request).
    pub(super) fn call(&mut self, id: Value, params: &Map<String, Value>, meta: RequestMeta) {
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
    if let Some(trace) = &call.traceparent {
        options = options.trace(trace.as_str());
    }
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
