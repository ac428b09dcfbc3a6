//! Latency of the MCP server in-process over OS pipes, with a scripted model that answers at
//! once: what the protocol layer adds to a `task` call.
//!
//! `cargo bench --bench mcp` prints a table: a `tools/call` on a handshake revision (one
//! round trip), on 2026-07-28 asking for the client's roots (an `input_required` result and
//! the retry), and as a task of the tasks extension (the handle, then `tasks/get` until it
//! has completed).

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::Instant;

use common::{Samples, Table};
use serde_json::{Value, json};
use subtask::Runtime;
use subtask::llm::{ScriptedModel, ScriptedTurn};
use subtask::mcp::McpServer;
use subtask::subagents::{Subagents, Transcripts};
use subtask::task_tool::TaskTool;
use subtask::tools::{Workspace, builtin_tools};

const WARMUP: usize = 20;
const SAMPLES: usize = 300;

struct Session {
    input: std::io::PipeWriter,
    output: BufReader<std::io::PipeReader>,
    next: u64,
}

impl Session {
    fn start(calls: usize) -> (Session, std::thread::JoinHandle<()>) {
        let runtime = Runtime::new().expect("a runtime");
        let model = ScriptedModel::new((0..calls).map(|_| ScriptedTurn::text("ok")));
        let subagents =
            Subagents::new(Arc::new(model), builtin_tools()).transcripts(Transcripts::Off);
        let here = Workspace::current_dir().expect("a workspace");
        let task = TaskTool::new(runtime.clone(), subagents.clone(), here);
        let server = McpServer::new(task).follow_roots(move |root: &Workspace| {
            Ok(TaskTool::new(
                runtime.clone(),
                subagents.clone(),
                root.clone(),
            ))
        });
        let (server_input, input) = std::io::pipe().expect("a pipe");
        let (output, server_output) = std::io::pipe().expect("a pipe");
        let served = std::thread::spawn(move || {
            server
                .serve(BufReader::new(server_input), server_output)
                .expect("serve");
        });
        let session = Session {
            input,
            output: BufReader::new(output),
            next: 0,
        };
        (session, served)
    }

    /// Sends a request and returns its response (nothing else is written: no progress).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let request =
            json!({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params});
        writeln!(self.input, "{request}").expect("the server reads");
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .expect("the server answers");
        let response: Value = serde_json::from_str(&line).expect("a JSON line");
        assert_eq!(response["id"], self.next, "{response}");
        response
    }
}

fn task_args() -> Value {
    json!({"description": "Bench", "prompt": "Answer", "subagent_type": "explore"})
}

fn modern(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    })
}

fn measure(mut one: impl FnMut()) -> Samples {
    for _ in 0..WARMUP {
        one();
    }
    let samples = (0..SAMPLES)
        .map(|_| {
            let started = Instant::now();
            one();
            started.elapsed()
        })
        .collect();
    Samples::new(samples)
}

fn main() {
    let calls = WARMUP + SAMPLES;
    let root = std::env::current_dir().expect("a directory");
    let roots = json!({"roots": {"roots": [{"uri": format!("file://{}", root.display())}]}});

    eprintln!("mcp bench: handshake tools/call");
    let (mut session, served) = Session::start(calls);
    session.call(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}}),
    );
    let handshake = measure(|| {
        let response = session.call(
            "tools/call",
            json!({"name": "task", "arguments": task_args()}),
        );
        assert_eq!(response["result"]["isError"], false, "{response}");
    });
    drop(session);
    served.join().expect("served");

    eprintln!("mcp bench: 2026-07-28 tools/call with roots (input_required + retry)");
    let (mut session, served) = Session::start(calls);
    let mrtr = measure(|| {
        let meta = modern(json!({"roots": {}}));
        let asked = session.call(
            "tools/call",
            json!({"name": "task", "arguments": task_args(), "_meta": meta}),
        );
        assert_eq!(asked["result"]["resultType"], "input_required");
        let response = session.call(
            "tools/call",
            json!({"name": "task", "arguments": task_args(), "_meta": meta, "inputResponses": roots}),
        );
        assert_eq!(response["result"]["isError"], false, "{response}");
    });
    drop(session);
    served.join().expect("served");

    eprintln!("mcp bench: tasks extension, created and polled to completion");
    let (mut session, served) = Session::start(calls);
    let mut polls = 0usize;
    let tasks = measure(|| {
        let meta = modern(json!({"extensions": {"io.modelcontextprotocol/tasks": {}}}));
        let handle = session.call(
            "tools/call",
            json!({"name": "task", "arguments": task_args(), "_meta": meta}),
        );
        let task = handle["result"]["taskId"].clone();
        loop {
            polls += 1;
            let got = session.call("tasks/get", json!({"taskId": task, "_meta": meta}));
            if got["result"]["status"] == "completed" {
                break;
            }
        }
    });
    drop(session);
    served.join().expect("served");

    let mut table = Table::new(58, 18, 0);
    let row = |table: &mut Table, metric: &str, samples: &Samples| {
        table.row(
            metric,
            format!("{:.2} / {:.2} ms", samples.millis(50), samples.millis(99)),
            None,
            &format!("{} calls", samples.len()),
        );
    };
    row(
        &mut table,
        "tools/call, 2025-11-25 (median / p99)",
        &handshake,
    );
    row(
        &mut table,
        "tools/call, 2026-07-28 + roots by MRTR (median / p99)",
        &mrtr,
    );
    row(
        &mut table,
        "task extension: create, poll to completed (median / p99)",
        &tasks,
    );
    print!("{}", table.finish());
    println!(
        "tasks/get polls per task (busy polling, no interval): {:.1}",
        polls as f64 / (WARMUP + SAMPLES) as f64
    );
    println!("command: cargo bench --bench mcp");
}
