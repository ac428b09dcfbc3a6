//! The bash sandbox's added cost per command: `true` through the `bash` tool, N times
//! unconfined and N times confined (network off, then on), interleaved so that load on the
//! machine hits both alike.
//!
//! `cargo bench --bench sandbox` prints median and p99 of each and the added cost;
//! `cargo bench --bench sandbox -- 500` takes 500 samples of each (default 200). Other
//! arguments (cargo adds `--bench`) are ignored.

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use common::{Samples, Table};
use serde_json::json;
use subtask::CancelToken;
use subtask::sandbox::{Network, Sandbox};
use subtask::tools::{BashTool, ProcessGroups, Tool, ToolContext, Workspace};

const DEFAULT_SAMPLES: usize = 200;
const WARMUP: usize = 10;
const COMMAND: &str = "true";

fn main() {
    let samples = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse::<usize>().ok())
        .unwrap_or(DEFAULT_SAMPLES)
        .max(1);
    let workspace_dir =
        std::env::temp_dir().join(format!("subtask-bench-sandbox-{}", std::process::id()));
    std::fs::create_dir_all(&workspace_dir).expect("a workspace");
    let workspace = Workspace::new(&workspace_dir).expect("a workspace");
    let token = CancelToken::new();
    let processes = ProcessGroups::new(&token);
    let tool = BashTool::new();
    let settings = [
        ("unconfined", Sandbox::unconfined()),
        ("confined, network off", Sandbox::new()),
        ("confined, network on", Sandbox::new().network(Network::On)),
    ];
    Sandbox::new()
        .check()
        .expect("this machine can run the sandbox");
    let run = |sandbox: &Sandbox| {
        let context = ToolContext::new(&workspace, &token, &processes).with_sandbox(sandbox);
        let started = Instant::now();
        let text = tool
            .call(&json!({ "command": COMMAND }), &context)
            .expect("`true` runs");
        let elapsed = started.elapsed();
        assert_eq!(text, "(no output)\nexit code: 0");
        elapsed
    };
    for _ in 0..WARMUP {
        for (_, sandbox) in &settings {
            run(sandbox);
        }
    }
    let mut measured = vec![Vec::with_capacity(samples); settings.len()];
    for _ in 0..samples {
        for (index, (_, sandbox)) in settings.iter().enumerate() {
            measured[index].push(run(sandbox));
        }
    }
    let _ = std::fs::remove_dir_all(&workspace_dir);

    let measured: Vec<Samples> = measured.into_iter().map(Samples::new).collect();
    let base = &measured[0];
    let mut table = Table::new(44, 12, 0);
    for ((name, _), figures) in settings.iter().zip(&measured) {
        for (label, percent) in [("median", 50), ("p99", 99)] {
            table.row(
                &format!("bash `{COMMAND}`, {name}: {label}"),
                format!("{:.2} ms", figures.millis(percent)),
                None,
                &format!("n={}", figures.len()),
            );
        }
    }
    for ((name, _), figures) in settings.iter().zip(&measured).skip(1) {
        for (label, percent) in [("median", 50), ("p99", 99)] {
            table.row(
                &format!("added by the sandbox ({name}): {label}"),
                format!("{:+.2} ms", figures.millis(percent) - base.millis(percent)),
                None,
                "",
            );
        }
    }
    print!("{}", table.finish());
}
