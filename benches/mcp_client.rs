//! What an MCP server costs a subagent run: starting it (spawn, `initialize`,
//! `tools/list`), one `tools/call` round trip, and stopping it (kill, reap, join).
//!
//! `cargo bench --bench mcp_client` prints a table (median and p99 of each). It uses the
//! Node fixture server of tests/fixtures/mcp (so `node` must be installed), and
//! `@modelcontextprotocol/server-everything` too when `SUBTASK_TEST_NPM_BIN` names the
//! directory scripts/test installs it to.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{Samples, Table};
use serde_json::json;
use subtask::CancelToken;
use subtask::mcp::client::{McpClient, ServerConfig};
use subtask::tools::{ProcessGroups, ToolContext, Workspace};

const START_SAMPLES: usize = 20;
const CALL_WARMUP: usize = 50;
const CALL_SAMPLES: usize = 2_000;

fn main() {
    let dir = std::env::temp_dir();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp/fixture_server.js");
    let mut servers = vec![(
        "fixture (node)",
        ServerConfig::new("node").args([fixture.to_string_lossy()]),
        "mcp__s__pid",
        json!({}),
    )];
    if let Some(bin) = std::env::var_os("SUBTASK_TEST_NPM_BIN") {
        let bin = PathBuf::from(bin).join("mcp-server-everything");
        servers.push((
            "server-everything",
            ServerConfig::new(bin.to_string_lossy()).args(["stdio"]),
            "mcp__s__echo",
            json!({"message": "hi"}),
        ));
    } else {
        eprintln!("mcp_client bench: SUBTASK_TEST_NPM_BIN unset, server-everything skipped");
    }
    let mut table = Table::new(34, 12, 0);
    for (label, config, tool, input) in servers {
        eprintln!("mcp_client bench: measuring {label}…");
        let mut starts = Vec::new();
        let mut stops = Vec::new();
        for _ in 0..START_SAMPLES {
            let began = Instant::now();
            let client = McpClient::start("s", &config, &dir, &CancelToken::new())
                .expect("the server starts");
            starts.push(began.elapsed());
            let began = Instant::now();
            drop(client);
            stops.push(began.elapsed());
        }
        let client = McpClient::start("s", &config, &dir, &CancelToken::new()).unwrap();
        let tools = client.tools(30_000);
        let tool = tools.iter().find(|t| t.name() == tool).expect("the tool");
        let workspace = Workspace::new(&dir).unwrap();
        let token = CancelToken::new();
        let processes = ProcessGroups::new(&token);
        let context = ToolContext::new(&workspace, &token, &processes);
        for _ in 0..CALL_WARMUP {
            tool.call(&input, &context).unwrap();
        }
        let calls: Vec<_> = (0..CALL_SAMPLES)
            .map(|_| {
                let began = Instant::now();
                tool.call(&input, &context).unwrap();
                began.elapsed()
            })
            .collect();
        for (metric, samples) in [("start", starts), ("tools/call", calls), ("stop", stops)] {
            let samples = Samples::new(samples);
            table.row(
                &format!("{label} {metric}"),
                format!("{:.2} ms", samples.millis(50)),
                None,
                &format!("p99 {:.2} ms, n={}", samples.millis(99), samples.len()),
            );
        }
    }
    print!("{}", table.finish());
}
