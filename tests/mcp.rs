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
use subtask::mcp::{
    HANDSHAKE_VERSIONS, LATEST_HANDSHAKE_VERSION, LATEST_PROTOCOL_VERSION, McpServer,
    PROTOCOL_VERSIONS,
};
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
    /// A server of a `task` tool whose subagents think with `model`; heartbeats and
    /// keep-alives every 50 ms.
    fn start(model: ScriptedModel) -> Client {
        Client::start_with(model, |server, _, _| server)
    }

    /// [`start`](Self::start), with the server as `configure` makes it.
    fn start_with(
        model: ScriptedModel,
        configure: impl FnOnce(McpServer, &Runtime, &Subagents) -> McpServer,
    ) -> Client {
        let runtime = Runtime::builder()
            .poll_interval(ms(50))
            .shutdown_grace(ms(500))
            .build()
            .expect("a runtime");
        let subagents =
            Subagents::new(Arc::new(model), builtin_tools()).transcripts(Transcripts::Off);
        let workspace = Workspace::current_dir().expect("the crate's directory");
        let task = TaskTool::new(runtime.clone(), subagents.clone(), workspace);
        let (server_input, input) = std::io::pipe().expect("a pipe");
        let (output, server_output) = std::io::pipe().expect("a pipe");
        let server = configure(
            McpServer::new(task.clone()).progress_interval(ms(50)),
            &runtime,
            &subagents,
        );
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
        for (n, version) in HANDSHAKE_VERSIONS.iter().enumerate() {
            let response = client.call(
                json!(n),
                "initialize",
                json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}),
            );
            let result = &response["result"];
            assert_eq!(result["protocolVersion"], *version, "{response}");
            let mut capabilities = json!({"tools": {"listChanged": false}, "logging": {}});
            if *version == "2025-11-25" {
                // 2025-11-25's experimental tasks, for tools/call.
                capabilities["tasks"] =
                    json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}});
            }
            assert_eq!(result["capabilities"], capabilities);
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
            LATEST_HANDSHAKE_VERSION
        );
        assert_eq!(LATEST_HANDSHAKE_VERSION, "2025-11-25");
        // The stateless revision has no handshake: asking for it gets the latest handshake.
        let response = client.call(
            json!(12),
            "initialize",
            json!({"protocolVersion": LATEST_PROTOCOL_VERSION}),
        );
        assert_eq!(
            response["result"]["protocolVersion"],
            LATEST_HANDSHAKE_VERSION
        );
        // No params at all: still an answer, with the latest version.
        client.send(json!({"jsonrpc": "2.0", "id": 11, "method": "initialize"}));
        let response = client.recv();
        assert_eq!(response["id"], 11);
        assert_eq!(
            response["result"]["protocolVersion"],
            LATEST_HANDSHAKE_VERSION
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
        let definition = client.task.mcp_definition();
        for field in ["name", "title", "description", "inputSchema"] {
            assert_eq!(tools[0][field], definition[field], "{field}");
        }
        assert_eq!(tools[0]["name"], "task");
        assert_eq!(tools[0]["outputSchema"]["type"], "object");
        assert_eq!(
            tools[0]["annotations"],
            json!({"title": "Run subagents", "readOnlyHint": false, "destructiveHint": true,
                   "idempotentHint": false, "openWorldHint": true})
        );
        // Before a 2025-11-25 handshake, no experimental task support is advertised.
        assert!(tools[0].get("execution").is_none());
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
fn invalid_arguments_are_error_results_and_unknown_tools_json_rpc_errors() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([]));
        // Arguments the tool refuses: nothing runs; an `isError` result the model reads,
        // naming what is wrong (SEP-1303).
        let response = client.call(json!(5), "tools/call", tools_call(json!({"prompt": "x"})));
        let result = &response["result"];
        assert_eq!(result["isError"], true, "{response}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("`description` is required"), "{text}");
        assert_eq!(result["structuredContent"]["is_error"], true);
        assert!(
            result["structuredContent"]["error"]
                .as_str()
                .unwrap()
                .contains("`description` is required")
        );
        // An unknown subagent type: the message lists the types.
        let mut unknown_type = task_args("x");
        unknown_type["subagent_type"] = json!("wizard");
        let response = client.call(json!(51), "tools/call", tools_call(unknown_type));
        let text = response["result"]["content"][0]["text"].as_str().unwrap();
        assert_eq!(response["result"]["isError"], true);
        assert!(
            text.contains("'wizard'") && text.contains("explore"),
            "{text}"
        );
        // A `cwd` outside the workspace.
        let mut outside = task_args("x");
        outside["cwd"] = json!("/etc");
        let response = client.call(json!(52), "tools/call", tools_call(outside));
        assert_eq!(response["result"]["isError"], true, "{response}");
        // No arguments at all are an empty object, refused the same way.
        let response = client.call(json!(6), "tools/call", json!({"name": "task"}));
        assert_eq!(response["result"]["isError"], true, "{response}");
        // A malformed `params`, and a tool that does not exist: JSON-RPC errors.
        let response = client.call(json!(61), "tools/call", json!({"arguments": {}}));
        assert_eq!(error_code(&response), -32602);
        let response = client.call(
            json!(7),
            "tools/call",
            json!({"name": "nope", "arguments": {}}),
        );
        assert_eq!(error_code(&response), -32602);
        assert!(
            response["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Unknown tool: nope"),
            "{response}"
        );
        // Anything unknown: -32601 at once.
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
            assert!(
                messages[0].starts_with("explore: started (run explore-"),
                "{messages:?}"
            );
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
                    .any(|m| m.starts_with("still working: explore (1 tool,")),
                "a keep-alive every 50 ms of a 250 ms turn: {messages:?}"
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
        let started = started["params"]["message"].as_str().unwrap();
        assert!(started.starts_with("explore: started"), "{started}");
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
        assert_eq!(response["result"]["isError"], true, "{response}");
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

// ---------------------------------------------------------------------------------------------
// 2026-07-28: discovery, per-request _meta, roots by MRTR, the tasks extension
// ---------------------------------------------------------------------------------------------

/// `_meta` of a 2026-07-28 request with these client capabilities.
fn modern(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": LATEST_PROTOCOL_VERSION,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    })
}

fn file_uri(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

/// A server following the client's roots, with tools made by the test's runtime.
fn start_following_roots(model: ScriptedModel, refuse: bool) -> Client {
    Client::start_with(model, move |server, runtime, subagents| {
        let (runtime, subagents) = (runtime.clone(), subagents.clone());
        let server = server.follow_roots(move |root: &Workspace| {
            Ok(TaskTool::new(
                runtime.clone(),
                subagents.clone(),
                root.clone(),
            ))
        });
        if refuse {
            server.require_roots("no workspace: pass --cwd")
        } else {
            server
        }
    })
}

fn writes_marker() -> ScriptedModel {
    ScriptedModel::new([
        ScriptedTurn::tool_call("write", json!({"path": "made-here.txt", "content": "x"})),
        ScriptedTurn::text("Written."),
    ])
}

fn general_task(prompt: &str) -> Value {
    json!({"description": "Write a file", "prompt": prompt, "subagent_type": "general-purpose"})
}

#[test]
fn discover_answers_with_versions_and_modern_requests_carry_result_types() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([]));
        let response = client.call(
            json!(1),
            "server/discover",
            json!({"_meta": modern(json!({}))}),
        );
        let result = &response["result"];
        assert_eq!(
            result["supportedVersions"],
            json!(PROTOCOL_VERSIONS),
            "{response}"
        );
        assert_eq!(result["resultType"], "complete");
        assert_eq!(
            result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
            "subtask"
        );
        assert!(result["capabilities"]["extensions"]["io.modelcontextprotocol/tasks"].is_object());
        assert!(result["ttlMs"].is_u64() && result["cacheScope"] == "public");
        // A version not served: -32022 with the versions that are.
        let mut meta = modern(json!({}));
        meta["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
        let response = client.call(json!(2), "tools/list", json!({"_meta": meta}));
        assert_eq!(error_code(&response), -32022);
        assert_eq!(response["error"]["data"]["requested"], "2099-01-01");
        assert_eq!(
            response["error"]["data"]["supported"],
            json!(PROTOCOL_VERSIONS)
        );
        // tools/list with cache hints; no `execution` (that is 2025-11-25's).
        let response = client.call(json!(3), "tools/list", json!({"_meta": modern(json!({}))}));
        let result = &response["result"];
        assert_eq!(result["resultType"], "complete");
        assert_eq!(result["cacheScope"], "private");
        assert!(result["ttlMs"].is_u64());
        assert!(result["tools"][0].get("execution").is_none());
        // 2026-07-28 has no logging/setLevel: its requests carry their log level.
        let response = client.call(
            json!(4),
            "logging/setLevel",
            json!({"level": "info", "_meta": modern(json!({}))}),
        );
        assert_eq!(error_code(&response), -32601);
        let response = client.call(json!(5), "logging/setLevel", json!({"level": "loud"}));
        assert_eq!(error_code(&response), -32602);
        client.close();
    });
}

#[test]
fn a_modern_call_asks_for_the_roots_and_works_in_the_root() {
    watchdog(|| {
        let root = support::TempDir::new("mcp-root");
        let other = support::TempDir::new("mcp-other");
        let mut client = start_following_roots(writes_marker(), true);
        let capabilities = json!({"roots": {}});
        let call = json!({"name": "task", "arguments": general_task("Write"),
                          "_meta": modern(capabilities.clone())});
        let response = client.call(json!(1), "tools/call", call.clone());
        let result = &response["result"];
        assert_eq!(result["resultType"], "input_required", "{response}");
        assert_eq!(
            result["inputRequests"]["roots"],
            json!({"method": "roots/list"})
        );
        assert_eq!(client.runtime.stats().submitted, 0);
        // A cwd outside the roots: an error result naming the roots.
        let mut outside = call.clone();
        outside["arguments"]["cwd"] = json!(other.path().display().to_string());
        let roots =
            json!({"roots": {"roots": [{"uri": file_uri(root.path()), "name": "project"}]}});
        outside["inputResponses"] = roots.clone();
        let response = client.call(json!(2), "tools/call", outside);
        let text = response["result"]["content"][0]["text"].as_str().unwrap();
        assert_eq!(response["result"]["isError"], true, "{response}");
        assert!(
            text.contains("not inside any of the client's roots"),
            "{text}"
        );
        // The retry with the roots runs there.
        let mut retry = call.clone();
        retry["inputResponses"] = roots;
        let response = client.call(json!(3), "tools/call", retry);
        assert_eq!(response["result"]["isError"], false, "{response}");
        assert_eq!(response["result"]["resultType"], "complete");
        assert!(root.path().join("made-here.txt").is_file());
        // With several roots, the tool's description lists them.
        let mut two =
            json!({"name": "task", "arguments": {"prompt": "x"}, "_meta": modern(capabilities)});
        two["inputResponses"] = json!({"roots": {"roots": [
            {"uri": file_uri(root.path())}, {"uri": file_uri(other.path())}]}});
        client.call(json!(31), "tools/call", two);
        let response = client.call(json!(32), "tools/list", json!({"_meta": modern(json!({}))}));
        let description = response["result"]["tools"][0]["description"]
            .as_str()
            .unwrap();
        let canonical = |dir: &support::TempDir| {
            std::fs::canonicalize(dir.path())
                .unwrap()
                .display()
                .to_string()
        };
        assert!(
            description.contains(&format!("\n- {}", canonical(&root)))
                && description.contains(&format!("\n- {}", canonical(&other))),
            "{description}"
        );
        // A client without roots, on a server that must not work in its own directory.
        let response = client.call(
            json!(4),
            "tools/call",
            json!({"name": "task", "arguments": general_task("Write"), "_meta": modern(json!({}))}),
        );
        assert_eq!(response["result"]["isError"], true, "{response}");
        assert_eq!(
            response["result"]["content"][0]["text"],
            "no workspace: pass --cwd"
        );
        client.close();
    });
}

#[test]
fn a_handshake_client_is_asked_for_its_roots_and_they_are_followed() {
    watchdog(|| {
        let root = support::TempDir::new("mcp-root");
        let mut client = start_following_roots(writes_marker(), true);
        client.call(
            json!(1),
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {"roots": {"listChanged": true}}}),
        );
        client.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        let ask = client.recv();
        assert_eq!(ask["method"], "roots/list", "{ask}");
        // The call waits for the answer, then runs in the root.
        client.request(json!(2), "tools/call", tools_call(general_task("Write")));
        client.send(
            json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"roots": [
            {"uri": file_uri(root.path())}, {"uri": "file:///"}, {"uri": "https://example.com"}]}}),
        );
        let (_, response) = client.until_response(&json!(2));
        assert_eq!(response["result"]["isError"], false, "{response}");
        assert!(root.path().join("made-here.txt").is_file());
        // list_changed asks again; an error answer leaves no roots: calls are refused.
        client.send(json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}));
        let ask = client.recv();
        assert_eq!(ask["method"], "roots/list");
        client.send(
            json!({"jsonrpc": "2.0", "id": ask["id"], "error": {"code": -1, "message": "no"}}),
        );
        let response = client.call(json!(3), "tools/call", tools_call(general_task("Write")));
        assert_eq!(
            response["result"]["content"][0]["text"],
            "no workspace: pass --cwd"
        );
        client.close();
    });
}

#[test]
fn a_task_is_answered_at_once_polled_to_its_result_and_its_errors_are_clear() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([ScriptedTurn::text("Found it.")]));
        let meta = modern(json!({"extensions": {"io.modelcontextprotocol/tasks": {}}}));
        let response = client.call(
            json!(1),
            "tools/call",
            json!({"name": "task", "arguments": task_args("Find"), "_meta": meta.clone()}),
        );
        let handle = &response["result"];
        assert_eq!(handle["resultType"], "task", "{response}");
        assert_eq!(handle["status"], "working");
        assert!(handle["ttlMs"].is_u64() && handle["pollIntervalMs"].is_u64());
        let task = handle["taskId"].as_str().unwrap().to_string();
        assert_eq!(task.len(), 32);
        let get = json!({"taskId": task, "_meta": meta.clone()});
        let mut polls = 0;
        let done = loop {
            polls += 1;
            let response = client.call(json!(format!("get{polls}")), "tasks/get", get.clone());
            assert_eq!(response["result"]["resultType"], "complete", "{response}");
            if response["result"]["status"] != "working" {
                break response;
            }
            let _ = client.messages.recv_timeout(ms(20)); // nothing else is written
        };
        assert_eq!(done["result"]["status"], "completed", "{done}");
        let text = done["result"]["result"]["content"][0]["text"]
            .as_str()
            .unwrap();
        assert!(text.starts_with("Found it."), "{text}");
        assert_eq!(
            done["result"]["result"]["structuredContent"]["is_error"],
            false
        );
        // Update is acknowledged (nothing here asks for input); unknown ids are -32602.
        let response = client.call(
            json!(2),
            "tasks/update",
            json!({"taskId": task, "inputResponses": {}, "_meta": meta.clone()}),
        );
        assert_eq!(response["result"]["resultType"], "complete", "{response}");
        for method in ["tasks/get", "tasks/cancel", "tasks/update"] {
            let response = client.call(
                json!(3),
                method,
                json!({"taskId": "nope", "_meta": meta.clone()}),
            );
            assert_eq!(error_code(&response), -32602, "{method}: {response}");
            let response = client.call(json!(4), method, json!({"_meta": meta.clone()}));
            assert_eq!(error_code(&response), -32602, "{method}: {response}");
        }
        // tasks/result and tasks/list are 2025-11-25's, and only after its handshake.
        let response = client.call(
            json!(5),
            "tasks/result",
            json!({"taskId": task, "_meta": meta}),
        );
        assert_eq!(error_code(&response), -32601);
        let response = client.call(json!(6), "tasks/list", json!({}));
        assert_eq!(error_code(&response), -32601);
        client.close();
    });
}

#[test]
fn a_cancelled_task_stops_its_runs_and_live_tasks_are_capped() {
    watchdog(|| {
        let mut client =
            Client::start_with(ScriptedModel::new([ScriptedTurn::Stall]), |server, _, _| {
                server.max_live_tasks(1)
            });
        let meta = modern(json!({"extensions": {"io.modelcontextprotocol/tasks": {}}}));
        let call = json!({"name": "task", "arguments": task_args("Stall"), "_meta": meta.clone()});
        let response = client.call(json!(1), "tools/call", call.clone());
        let task = response["result"]["taskId"].as_str().unwrap().to_string();
        let response = client.call(json!(2), "tools/call", call);
        assert_eq!(error_code(&response), -32000, "{response}");
        assert_eq!(response["error"]["data"]["retryable"], true);
        assert!(wait_until(PATIENCE, || client.runtime.stats().live == 1));
        let response = client.call(
            json!(3),
            "tasks/cancel",
            json!({"taskId": task, "_meta": meta.clone()}),
        );
        assert_eq!(response["result"]["resultType"], "complete", "{response}");
        let runtime = client.runtime.clone();
        assert!(
            wait_until(PATIENCE, || runtime.stats().live == 0),
            "{:?}",
            runtime.stats()
        );
        assert_eq!(runtime.stats().cancelled, 1);
        let response = client.call(
            json!(4),
            "tasks/get",
            json!({"taskId": task, "_meta": meta}),
        );
        assert_eq!(response["result"]["status"], "cancelled", "{response}");
        assert!(response["result"].get("result").is_none());
        let (_, rest) = client.close();
        assert!(rest.is_empty(), "{rest:?}");
    });
}

#[test]
fn experimental_tasks_of_2025_11_25_block_on_their_result() {
    watchdog(|| {
        let mut client = Client::start(ScriptedModel::new([
            ScriptedTurn::text("Done.").delayed(ms(100))
        ]));
        client.call(
            json!(0),
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}}),
        );
        let response = client.call(json!(1), "tools/list", json!({}));
        assert_eq!(
            response["result"]["tools"][0]["execution"]["taskSupport"],
            "optional"
        );
        let response = client.call(
            json!(2),
            "tools/call",
            json!({"name": "task", "arguments": task_args("Do"), "task": {"ttl": 60000}}),
        );
        let handle = &response["result"]["task"];
        assert_eq!(handle["status"], "working", "{response}");
        assert!(handle["ttl"].is_u64() && handle["pollInterval"].is_u64());
        let task = handle["taskId"].as_str().unwrap().to_string();
        let response = client.call(json!(3), "tasks/result", json!({"taskId": task}));
        let result = &response["result"];
        assert!(
            result["content"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("Done."),
            "{response}"
        );
        assert_eq!(
            result["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
            task.as_str()
        );
        let response = client.call(json!(4), "tasks/list", json!({}));
        assert_eq!(
            response["result"]["tasks"][0]["status"], "completed",
            "{response}"
        );
        let response = client.call(json!(5), "tasks/cancel", json!({"taskId": task}));
        assert_eq!(
            response["result"]["status"], "completed",
            "a finished task stays finished"
        );
        client.close();
    });
}

#[test]
fn long_answers_are_cut_fairly_to_the_output_budget() {
    watchdog(|| {
        let long = "word ".repeat(2000);
        let mut client = Client::start_with(
            ScriptedModel::new([
                ScriptedTurn::text(long.clone()),
                ScriptedTurn::text("Short."),
            ]),
            |server, _, _| server.output_budget(3000),
        );
        let tasks = json!({"tasks": [task_args("One"), task_args("Two")]});
        let response = client.call(json!(1), "tools/call", tools_call(tasks));
        let result = &response["result"];
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(
            text.chars().count() <= 3000,
            "{} characters",
            text.chars().count()
        );
        assert!(text.contains("Short."), "the short answer is whole: {text}");
        let cut = result["structuredContent"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|run| run["answer"].as_str().unwrap().starts_with("word"))
            .unwrap();
        let run_id = cut["run_id"].as_str().unwrap();
        assert!(text.contains(&format!("resume: \"{run_id}\"")), "{text}");
        assert!(text.contains("of 10000 characters shown"), "{text}");
        // Within the budget nothing changes.
        let mut client = Client::start(ScriptedModel::new([ScriptedTurn::text(long.clone())]));
        let response = client.call(json!(1), "tools/call", tools_call(task_args("One")));
        let text = response["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with(long.trim_end()), "{}", &text[..100]);
        client.close();
    });
}

#[test]
fn an_abandoned_call_keeps_its_run_for_a_call_that_resumes_it() {
    watchdog(|| {
        // The run outlasts the cancellation by far (a cancelled run would end at once).
        let model = ScriptedModel::new([ScriptedTurn::text("Late answer.").delayed(ms(1500))]);
        let mut client = Client::start_with(model, |server, _, _| server.keep_abandoned_runs(true));
        client.request(
            json!(1),
            "tools/call",
            tools_call_with_progress(task_args("Slow"), json!("p")),
        );
        let started = client.recv();
        let message = started["params"]["message"].as_str().unwrap().to_string();
        let run = message
            .split("(run ")
            .nth(1)
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("no run id in {message}"))
            .to_string();
        client.send(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                           "params": {"requestId": 1, "reason": "timed out"}}),
        );
        let mut resume = task_args("Go on");
        resume["resume"] = json!(run);
        let response = client.call(json!(2), "tools/call", tools_call(resume));
        let text = response["result"]["content"][0]["text"].as_str().unwrap();
        assert_eq!(response["result"]["isError"], false, "{response}");
        assert!(
            text.contains("was still running when its call was cut off"),
            "{text}"
        );
        assert!(text.contains("Late answer."), "{text}");
        assert_eq!(client.runtime.stats().cancelled, 0);
        assert_eq!(
            client.runtime.stats().submitted,
            1,
            "the resume started no new run"
        );
        let (_, rest) = client.close();
        assert!(
            rest.iter().all(|m| m["id"] != 1),
            "the abandoned call is never answered: {rest:?}"
        );
    });
}

#[test]
fn warnings_reach_a_client_that_asked_for_them() {
    watchdog(|| {
        let mut client = start_following_roots(writes_marker(), false);
        client.call(
            json!(1),
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {"roots": {}}}),
        );
        let response = client.call(json!(2), "logging/setLevel", json!({"level": "warning"}));
        assert_eq!(response["result"], json!({}), "{response}");
        client.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        let ask = client.recv();
        // A root that cannot be used is left out, with a warning the client sees.
        client.send(
            json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"roots": [
            {"uri": "file:///no/such/place"}]}}),
        );
        let warning = client.recv();
        assert_eq!(warning["method"], "notifications/message", "{warning}");
        assert_eq!(warning["params"]["level"], "warning");
        let data = warning["params"]["data"].as_str().unwrap();
        assert!(data.contains("/no/such/place"), "{data}");
        // At `error`, warnings are not sent.
        client.call(json!(3), "logging/setLevel", json!({"level": "error"}));
        client.send(json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}));
        let ask = client.recv();
        client.send(
            json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"roots": [
            {"uri": "file:///no/such/place"}]}}),
        );
        let response = client.call(json!(4), "ping", json!({}));
        assert_eq!(
            response["result"],
            json!({}),
            "nothing came before the ping's answer"
        );
        client.close();
    });
}

#[test]
fn a_client_that_never_lists_its_roots_costs_one_wait() {
    watchdog(|| {
        let mut client = Client::start_with(writes_marker(), |server, runtime, subagents| {
            let (runtime, subagents) = (runtime.clone(), subagents.clone());
            server
                .follow_roots(move |root: &Workspace| {
                    Ok(TaskTool::new(
                        runtime.clone(),
                        subagents.clone(),
                        root.clone(),
                    ))
                })
                .require_roots("no workspace: pass --cwd")
                .roots_patience(ms(200))
        });
        client.call(
            json!(1),
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {"roots": {}}}),
        );
        client.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        let ask = client.recv();
        assert_eq!(ask["method"], "roots/list");
        for id in [2, 3] {
            let response = client.call(json!(id), "tools/call", tools_call(general_task("W")));
            assert_eq!(
                response["result"]["content"][0]["text"],
                "no workspace: pass --cwd"
            );
        }
        // A late answer is still taken.
        let root = support::TempDir::new("mcp-late-root");
        client.send(
            json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"roots": [
            {"uri": file_uri(root.path())}]}}),
        );
        let response = client.call(json!(4), "tools/call", tools_call(general_task("W")));
        assert_eq!(response["result"]["isError"], false, "{response}");
        assert!(root.path().join("made-here.txt").is_file());
        client.close();
    });
}

#[test]
fn hostile_roots_and_cwds_never_widen_the_workspace() {
    watchdog(|| {
        let root = support::TempDir::new("mcp-root");
        let outside = support::TempDir::new("mcp-outside");
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let mut client = start_following_roots(writes_marker(), true);
        let meta = modern(json!({"roots": {}}));
        let roots = json!({"roots": {"roots": [
            {"uri": "file:///"},
            {"uri": "file://attacker.example/srv"},
            {"uri": file_uri(root.path())},
        ]}});
        // A cwd through a symlink out of the root, and one with `..`.
        for (id, cwd) in [
            (1, root.path().join("link").display().to_string()),
            (
                2,
                format!(
                    "{}/../{}",
                    root.path().display(),
                    outside.path().file_name().unwrap().to_str().unwrap()
                ),
            ),
        ] {
            let mut arguments = general_task("Write");
            arguments["cwd"] = json!(cwd);
            let response = client.call(
                json!(id),
                "tools/call",
                json!({"name": "task", "arguments": arguments, "_meta": meta.clone(),
                       "inputResponses": roots.clone()}),
            );
            assert_eq!(response["result"]["isError"], true, "{cwd}: {response}");
        }
        assert_eq!(client.runtime.stats().submitted, 0);
        assert!(!outside.path().join("made-here.txt").exists());
        client.close();
    });
}
