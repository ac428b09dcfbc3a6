//! The MCP server in-process, over OS pipes: the lifecycle, `tools/list` and `tools/call`
//! (answers, failed runs, refusals), JSON-RPC errors and ids, calls running at once,
//! progress notifications, cancellation, and the end of input.

mod support;

use std::io::{BufRead, BufReader, PipeWriter, Write};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, unbounded};
use parking_lot::{Condvar, Mutex};
use serde_json::{Value, json};
use subtask::llm::{ScriptedModel, ScriptedTurn};
use subtask::mcp::{LATEST_PROTOCOL_VERSION, McpServer, PROTOCOL_VERSIONS};
use subtask::subagents::{Subagents, Transcripts};
use subtask::task_tool::TaskTool;
use subtask::tools::{Workspace, builtin_tools};
use subtask::{Error, Runtime};
use support::{PATIENCE, ms, wait_until, watchdog};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A server on its own thread, fed through one pipe and read through another.
struct Client {
    input: Option<PipeWriter>,
    messages: Receiver<Result<Value, String>>,
    server: Option<JoinHandle<Result<(), Error>>>,
    runtime: Runtime,
    task: TaskTool,
}

impl Client {
    /// A server of a `task` tool whose subagents think with `model`; heartbeats every 50 ms.
    fn start(model: ScriptedModel) -> Client {
        let runtime = Runtime::builder()
            .poll_interval(ms(50))
            .shutdown_grace(ms(500))
            .build()
            .expect("a runtime");
        let subagents =
            Subagents::new(Arc::new(model), builtin_tools()).transcripts(Transcripts::Off);
        let workspace = Workspace::current_dir().expect("the crate's directory");
        let task = TaskTool::new(runtime.clone(), subagents, workspace);
        let (server_input, input) = std::io::pipe().expect("a pipe");
        let (output, server_output) = std::io::pipe().expect("a pipe");
        let server = McpServer::new(task.clone());
        let server =
            std::thread::spawn(move || server.serve(BufReader::new(server_input), server_output));
        let (sender, messages) = unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines() {
                let message = match line {
                    Ok(line) => serde_json::from_str::<Value>(&line)
                        .map_err(|error| format!("not a JSON line ({error}): {line}")),
                    Err(error) => Err(format!("cannot read the output: {error}")),
                };
                let _ = sender.send(message);
            }
        });
        Client {
            input: Some(input),
            messages,
            server: Some(server),
            runtime,
            task,
        }
    }

    fn send_line(&mut self, line: &str) {
        let input = self.input.as_mut().expect("input still open");
        input.write_all(line.as_bytes()).unwrap();
        input.write_all(b"\n").unwrap();
    }

    fn send(&mut self, message: Value) {
        self.send_line(&message.to_string());
    }

    fn request(&mut self, id: Value, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
    }

    /// The next message; fails after [`PATIENCE`].
    fn recv(&self) -> Value {
        match self.messages.recv_timeout(PATIENCE) {
            Ok(Ok(message)) => message,
            Ok(Err(problem)) => panic!("{problem}"),
            Err(_) => panic!("no message from the server within {PATIENCE:?}"),
        }
    }

    /// Messages up to and including the response to `id` (by value and JSON type).
    fn until_response(&self, id: &Value) -> (Vec<Value>, Value) {
        let mut before = Vec::new();
        loop {
            let message = self.recv();
            if message.get("id") == Some(id) && message.get("method").is_none() {
                return (before, message);
            }
            before.push(message);
        }
    }

    /// Sends a request and returns its response, skipping anything before it.
    fn call(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.request(id.clone(), method, params);
        self.until_response(&id).1
    }

    /// Closes the input and waits for `serve` to return; returns how long that took and
    /// every message written after the close.
    fn close(&mut self) -> (Duration, Vec<Value>) {
        drop(self.input.take());
        let started = Instant::now();
        let served = self.server.take().unwrap().join().expect("serve panicked");
        let took = started.elapsed();
        served.expect("serve returns Ok at the end of input");
        let mut rest = Vec::new();
        loop {
            match self.messages.recv_timeout(PATIENCE) {
                Ok(Ok(message)) => rest.push(message),
                Ok(Err(problem)) => panic!("{problem}"),
                Err(RecvTimeoutError::Disconnected) => return (took, rest),
                Err(RecvTimeoutError::Timeout) => panic!("the output never closed"),
            }
        }
    }
}

fn task_args(prompt: &str) -> Value {
    json!({"description": "Find the timer", "prompt": prompt, "subagent_type": "explore"})
}

fn tools_call(arguments: Value) -> Value {
    json!({"name": "task", "arguments": arguments})
}

fn tools_call_with_progress(arguments: Value, token: Value) -> Value {
    json!({"name": "task", "arguments": arguments, "_meta": {"progressToken": token}})
}

fn error_code(response: &Value) -> i64 {
    response["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error response: {response}"))
}

fn is_progress(message: &Value) -> bool {
    message["method"] == "notifications/progress"
}

/// Lets `count` model calls through together; a call still alone after [`PATIENCE`] goes
/// on by itself, so a server that runs calls one at a time fails instead of hanging.
struct Rendezvous {
    arrived: Mutex<usize>,
    all_here: Condvar,
    count: usize,
}

impl Rendezvous {
    fn new(count: usize) -> Arc<Rendezvous> {
        Arc::new(Rendezvous {
            arrived: Mutex::new(0),
            all_here: Condvar::new(),
            count,
        })
    }

    /// Whether every other call arrived in time.
    fn meet(&self) -> bool {
        let mut arrived = self.arrived.lock();
        *arrived += 1;
        self.all_here.notify_all();
        let deadline = Instant::now() + PATIENCE;
        while *arrived < self.count {
            if self.all_here.wait_until(&mut arrived, deadline).timed_out() {
                return false;
            }
        }
        true
    }
}

// ---------------------------------------------------------------------------------------------
// Lifecycle and listing
// ---------------------------------------------------------------------------------------------

#[test]
fn initialize_echoes_supported_versions_and_answers_others_with_the_latest() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([]));
        for (n, version) in PROTOCOL_VERSIONS.iter().enumerate() {
            let response = client.call(
                json!(n),
                "initialize",
                json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}),
            );
            let result = &response["result"];
            assert_eq!(result["protocolVersion"], *version, "{response}");
            assert_eq!(
                result["capabilities"],
                json!({"tools": {"listChanged": false}})
            );
            assert_eq!(result["serverInfo"]["name"], "subtask");
            assert_eq!(result["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
            assert!(result["instructions"].as_str().unwrap().contains("`task`"));
        }
        let response = client.call(
            json!(10),
            "initialize",
            json!({"protocolVersion": "2024-11-05"}),
        );
        assert_eq!(
            response["result"]["protocolVersion"],
            LATEST_PROTOCOL_VERSION
        );
        assert_eq!(LATEST_PROTOCOL_VERSION, "2025-11-25");
        // No params at all: still an answer, with the latest version.
        client.send(json!({"jsonrpc": "2.0", "id": 11, "method": "initialize"}));
        let response = client.recv();
        assert_eq!(response["id"], 11);
        assert_eq!(
            response["result"]["protocolVersion"],
            LATEST_PROTOCOL_VERSION
        );
        let (_, rest) = client.close();
        assert!(rest.is_empty(), "{rest:?}");
    });
}

#[test]
fn notifications_get_no_reply_and_ping_answers_empty() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([]));
        client.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        client.send(json!({"jsonrpc": "2.0", "method": "notifications/whatever", "params": {}}));
        // A cancellation of a request never made is ignored.
        client.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 77}}));
        client.send(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}));
        // The first thing written is the ping's answer: nothing answered the notifications.
        assert_eq!(
            client.recv(),
            json!({"jsonrpc": "2.0", "id": 1, "result": {}})
        );
        let (_, rest) = client.close();
        assert!(rest.is_empty(), "{rest:?}");
    });
}

#[test]
fn tools_list_without_params_offers_the_task_tool() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([]));
        client.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
        let response = client.recv();
        assert_eq!(response["id"], 2);
        let tools = response["result"]["tools"].as_array().unwrap();
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0], client.task.mcp_definition());
        assert_eq!(tools[0]["name"], "task");
        assert_eq!(tools[0]["inputSchema"]["type"], "object");
        assert!(tools[0]["inputSchema"]["properties"]["prompt"].is_object());
        client.close();
    });
}

// ---------------------------------------------------------------------------------------------
// tools/call
// ---------------------------------------------------------------------------------------------

#[test]
fn a_call_answers_with_text_and_structured_content() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([ScriptedTurn::text(
            "The timer lives in timer.rs.",
        )]));
        let response = client.call(
            json!(3),
            "tools/call",
            tools_call(task_args("Where is the timer?")),
        );
        let result = &response["result"];
        assert_eq!(result["isError"], false, "{response}");
        assert_eq!(result["content"][0]["type"], "text");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with("The timer lives in timer.rs."), "{text}");
        assert!(text.contains("· completed ·"), "{text}");
        let structured = &result["structuredContent"];
        assert_eq!(structured["is_error"], false);
        assert_eq!(
            structured["results"][0]["answer"],
            "The timer lives in timer.rs."
        );
        assert_eq!(structured["results"][0]["status"], "completed");
        assert_eq!(structured["results"][0]["subagent_type"], "explore");
        client.close();
    });
}

#[test]
fn a_failed_run_is_an_error_result() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([ScriptedTurn::Fail(Error::other(
            "the model is down",
        ))]));
        let response = client.call(json!(4), "tools/call", tools_call(task_args("Anything?")));
        let result = &response["result"];
        assert_eq!(result["isError"], true, "{response}");
        assert_eq!(
            result["structuredContent"]["results"][0]["status"],
            "failed"
        );
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("the model is down"), "{text}");
        client.close();
    });
}

#[test]
fn refusals_unknown_tools_and_unknown_methods_are_json_rpc_errors() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([]));
        // Arguments the tool refuses: nothing runs, -32602 with the reason.
        let response = client.call(json!(5), "tools/call", tools_call(json!({"prompt": "x"})));
        assert_eq!(error_code(&response), -32602);
        let message = response["error"]["message"].as_str().unwrap();
        assert!(message.contains("`description` is required"), "{message}");
        // No arguments at all are an empty object, refused the same way.
        let response = client.call(json!(6), "tools/call", json!({"name": "task"}));
        assert_eq!(error_code(&response), -32602);
        let response = client.call(
            json!(7),
            "tools/call",
            json!({"name": "nope", "arguments": {}}),
        );
        assert_eq!(error_code(&response), -32602);
        assert_eq!(response["error"]["message"], "Unknown tool: nope");
        // The 2026 probe and anything else unknown: -32601 at once.
        let response = client.call(json!(8), "server/discover", json!({}));
        assert_eq!(error_code(&response), -32601);
        let response = client.call(json!(9), "resources/list", json!({}));
        assert_eq!(error_code(&response), -32601);
        assert_eq!(client.runtime.stats().submitted, 0);
        client.close();
    });
}

#[test]
fn malformed_lines_get_parse_and_invalid_request_errors() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([]));
        client.send_line("this is not JSON");
        let response = client.recv();
        assert_eq!(error_code(&response), -32700);
        assert_eq!(response["id"], Value::Null);
        assert!(response.as_object().unwrap().contains_key("id"));
        client.send_line("[1, 2]");
        let response = client.recv();
        assert_eq!(error_code(&response), -32600);
        assert_eq!(response["id"], Value::Null);
        client.send_line("42");
        assert_eq!(error_code(&client.recv()), -32600);
        client.send(json!({"jsonrpc": "2.0", "id": 1}));
        let response = client.recv();
        assert_eq!(
            (error_code(&response), &response["id"]),
            (-32600, &json!(1))
        );
        // Blank lines are skipped without a word.
        client.send_line("");
        client.send_line("   \r");
        client.request(json!(2), "ping", json!({}));
        assert_eq!(client.recv()["id"], 2);
        client.close();
    });
}

#[test]
fn ids_come_back_with_their_json_type() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([]));
        for id in [
            json!(0),
            json!("abc"),
            json!("0"),
            json!(-3),
            json!(9_007_199_254_740_993u64),
        ] {
            client.request(id.clone(), "ping", json!({}));
            let response = client.recv();
            assert_eq!(response["id"], id);
            assert_eq!(response["result"], json!({}));
        }
        client.request(json!(""), "nope", json!({}));
        assert_eq!(client.recv()["id"], json!(""));
        client.close();
    });
}

#[test]
fn two_calls_run_at_once() {
    watchdog(|| {
        let meeting = Rendezvous::new(2);
        let turn = |meeting: Arc<Rendezvous>| {
            ScriptedTurn::reply(move |_| {
                ScriptedTurn::text(if meeting.meet() { "together" } else { "alone" })
            })
        };
        let mut client = Client::start(ScriptedModel::new([turn(meeting.clone()), turn(meeting)]));
        client.request(json!(1), "tools/call", tools_call(task_args("first")));
        client.request(json!("two"), "tools/call", tools_call(task_args("second")));
        let mut answered = Vec::new();
        while answered.len() < 2 {
            let message = client.recv();
            let result = &message["result"];
            assert_eq!(result["isError"], false, "{message}");
            assert_eq!(
                result["structuredContent"]["results"][0]["answer"],
                "together"
            );
            answered.push(message["id"].clone());
        }
        answered.sort_by_key(Value::to_string);
        assert_eq!(answered, [json!("two"), json!(1)]);
        client.close();
    });
}

// ---------------------------------------------------------------------------------------------
// Progress
// ---------------------------------------------------------------------------------------------

#[test]
fn progress_echoes_the_token_increases_and_stops_at_the_response() {
    watchdog(|| {
        let turns = || {
            [
                ScriptedTurn::tool_call("ls", json!({"path": "src"})),
                ScriptedTurn::text("Listed.").delayed(ms(250)),
            ]
        };
        let mut client = Client::start(ScriptedModel::new(turns().into_iter().chain(turns())));
        for (id, token) in [(json!(1), json!("tok-1")), (json!(2), json!(42))] {
            client.request(
                id.clone(),
                "tools/call",
                tools_call_with_progress(task_args("List src"), token.clone()),
            );
            let (before, response) = client.until_response(&id);
            assert_eq!(response["result"]["isError"], false, "{response}");
            let progress: Vec<&Value> = before.iter().filter(|m| is_progress(m)).collect();
            assert_eq!(
                progress.len(),
                before.len(),
                "only progress before the answer"
            );
            let mut last = 0.0;
            for notification in &progress {
                let params = &notification["params"];
                // The same value and JSON type as sent.
                assert_eq!(params["progressToken"], token, "{notification}");
                let value = params["progress"].as_f64().unwrap();
                assert!(value > last, "progress {value} after {last}");
                last = value;
            }
            let messages: Vec<&str> = progress
                .iter()
                .map(|n| n["params"]["message"].as_str().unwrap())
                .collect();
            assert_eq!(messages[0], "explore: started", "{messages:?}");
            assert!(
                messages
                    .iter()
                    .any(|m| m.starts_with("explore: ls 'src' (1 tool, ")),
                "{messages:?}"
            );
            assert!(
                messages
                    .iter()
                    .any(|m| m.starts_with("explore: ls 'src' done (1 tool,")),
                "{messages:?}"
            );
            assert!(
                messages
                    .iter()
                    .any(|m| m.starts_with("explore: running (1 tool,")),
                "a heartbeat every 50 ms of a 250 ms turn: {messages:?}"
            );
            // Nothing more for this call: the next thing written answers the next request.
            let (after, _) = {
                client.request(json!("after"), "ping", json!({}));
                client.until_response(&json!("after"))
            };
            assert!(after.is_empty(), "written after the response: {after:?}");
        }
        let (_, rest) = client.close();
        assert!(rest.is_empty(), "{rest:?}");
    });
}

#[test]
fn a_call_without_a_token_reports_no_progress() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([
            ScriptedTurn::tool_call("ls", json!({"path": "src"})),
            ScriptedTurn::text("Listed.").delayed(ms(150)),
        ]));
        client.request(json!(1), "tools/call", tools_call(task_args("List src")));
        let (before, response) = client.until_response(&json!(1));
        assert_eq!(response["result"]["isError"], false);
        assert!(before.is_empty(), "{before:?}");
        client.close();
    });
}

// ---------------------------------------------------------------------------------------------
// Cancellation and the end of input
// ---------------------------------------------------------------------------------------------

#[test]
fn a_cancelled_call_stops_its_runs_and_is_never_answered() {
    watchdog(|| {
        // A bash subagent whose command would hold its thread for 30 s unless killed.
        let mut client = Client::start(ScriptedModel::new([
            ScriptedTurn::tool_call("bash", json!({"command": "sleep 30"})),
            ScriptedTurn::text("slept"),
        ]));
        let arguments =
            json!({"description": "Sleep", "prompt": "Sleep.", "subagent_type": "bash"});
        client.request(
            json!(9),
            "tools/call",
            tools_call_with_progress(arguments, json!("t")),
        );
        loop {
            let message = client.recv();
            assert!(is_progress(&message), "{message}");
            if message["params"]["message"]
                .as_str()
                .unwrap()
                .starts_with("bash: bash 'sleep 30'")
            {
                break;
            }
        }
        client.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9, "reason": "the user pressed Esc"}}));
        let runtime = client.runtime.clone();
        assert!(
            wait_until(PATIENCE, || runtime.stats().cancelled == 1),
            "{:?}",
            runtime.stats()
        );
        // The job returned: its `sleep 30` was killed, not waited for.
        assert!(
            wait_until(PATIENCE, || runtime.stats().live == 0),
            "{:?}",
            runtime.stats()
        );
        // Cancelling it again, or cancelling with the id as a string, changes nothing.
        client.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}));
        client.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "9"}}));
        let (between, _) = {
            client.request(json!(10), "ping", json!({}));
            client.until_response(&json!(10))
        };
        assert!(
            between.iter().all(|m| m["id"] != 9 && is_progress(m)),
            "{between:?}"
        );
        // The server goes on serving calls.
        let response = client.call(json!(11), "tools/call", tools_call(task_args("Again")));
        assert_eq!(response["result"]["isError"], false);
        let (_, rest) = client.close();
        assert!(rest.iter().all(|m| m["id"] != 9), "{rest:?}");
        assert!(rest.is_empty(), "{rest:?}");
        assert_eq!(runtime.stats().cancelled, 1);
    });
}

#[test]
fn the_end_of_input_cancels_running_calls_and_returns_promptly() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([ScriptedTurn::Stall]));
        client.request(
            json!(1),
            "tools/call",
            tools_call_with_progress(task_args("Stall"), json!(1)),
        );
        let started = client.recv();
        assert_eq!(started["params"]["message"], "explore: started");
        let runtime = client.runtime.clone();
        let (took, rest) = client.close();
        assert!(
            took < Duration::from_secs(3),
            "serve took {took:?} to return"
        );
        assert!(rest.iter().all(|m| m["id"] != 1), "{rest:?}");
        assert_eq!(runtime.stats().cancelled, 1, "{:?}", runtime.stats());
        assert!(wait_until(PATIENCE, || runtime.stats().live == 0));
    });
}

#[test]
fn a_refused_call_does_not_linger_and_its_id_can_be_used_again() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([ScriptedTurn::text("ok")]));
        let response = client.call(json!(1), "tools/call", tools_call(json!({})));
        assert_eq!(error_code(&response), -32602);
        let response = client.call(json!(1), "tools/call", tools_call(task_args("Now")));
        assert_eq!(response["result"]["isError"], false, "{response}");
        client.close();
    });
}

// ---------------------------------------------------------------------------------------------
// CallOptions, which the server gives each call
// ---------------------------------------------------------------------------------------------

#[test]
fn call_options_observe_their_own_runs_only() {
    watchdog(|| {
        let client = Client::start(ScriptedModel::new([
            ScriptedTurn::text("one"),
            ScriptedTurn::text("two"),
            ScriptedTurn::text("three"),
        ]));
        let (observer, events) = support::recorder();
        let options = subtask::task_tool::CallOptions::new().observer(observer);
        let observed = client.task.call_json_with(
            &json!({"tasks": [task_args("first"), task_args("second")]}),
            &options,
        );
        assert!(!observed.is_error, "{}", observed.to_text());
        let unobserved = client.task.call_json(&task_args("third"));
        assert!(!unobserved.is_error);
        let mut ids: Vec<String> = observed
            .results
            .iter()
            .map(|result| result.run_id.clone().unwrap())
            .collect();
        ids.sort();
        let mut finished = Vec::new();
        while finished.len() < 2 {
            let event = events.recv_timeout(PATIENCE).expect("both runs' events");
            assert!(ids.contains(&event.task.to_string()), "{event}");
            if event.kind.name() == "finished" {
                finished.push(event.task.to_string());
            }
        }
        finished.sort();
        assert_eq!(finished, ids);
        assert!(
            events.recv_timeout(ms(100)).is_err(),
            "the third call was observed"
        );
    });
}

#[test]
fn call_options_cancel_token_stops_every_run_of_the_call() {
    watchdog(|| {
        let client = Client::start(ScriptedModel::new([
            ScriptedTurn::Stall,
            ScriptedTurn::Stall,
        ]));
        let token = subtask::CancelToken::new();
        let options = subtask::task_tool::CallOptions::new().cancel_token(token.clone());
        let task = client.task.clone();
        let call = std::thread::spawn(move || {
            task.call_json_with(
                &json!({"tasks": [task_args("a"), task_args("b")]}),
                &options,
            )
        });
        let runtime = client.runtime.clone();
        assert!(wait_until(PATIENCE, || runtime.stats().running == 2));
        token.cancel();
        let output = call.join().unwrap();
        let statuses: Vec<&str> = output.results.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(statuses, ["cancelled", "cancelled"]);
        assert_eq!(runtime.stats().cancelled, 2);
        // A token tripped before the call cancels each run as it is submitted.
        let options = subtask::task_tool::CallOptions::new().cancel_token(token);
        let output = client.task.call_json_with(&task_args("late"), &options);
        assert_eq!(output.results[0].status, "cancelled");
    });
}
