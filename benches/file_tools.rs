//! What opening beneath the workspace root costs the file tools: `read` and `write` of a
//! small file, and `grep` over a small tree, against the plain `std::fs` call that does the
//! same I/O by path (the check-then-use the tools did before).
//!
//! `cargo bench --bench file_tools` prints a table (median and p99 per call).

mod common;

use std::fs;
use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{Samples, Table};
use serde_json::json;
use subtask::CancelToken;
use subtask::tools::{GrepTool, ProcessGroups, ReadTool, Tool, ToolContext, Workspace, WriteTool};

const WARMUP: usize = 200;
const SAMPLES: usize = 2_000;

fn time(mut call: impl FnMut()) -> Samples {
    for _ in 0..WARMUP {
        call();
    }
    let samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            call();
            start.elapsed()
        })
        .collect();
    Samples::new(samples)
}

fn main() {
    let root = std::env::temp_dir().join(format!("subtask-bench-files-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("src/deep")).unwrap();
    let text: String = (0..100)
        .map(|line| format!("line {line}: some ordinary source text\n"))
        .collect();
    fs::write(root.join("src/deep/notes.txt"), &text).unwrap();
    for index in 0..200 {
        fs::write(root.join(format!("src/file{index}.rs")), &text).unwrap();
    }
    let workspace = Workspace::new(&root).unwrap();
    let token = CancelToken::new();
    let processes = ProcessGroups::new(&token);
    let context = ToolContext::new(&workspace, &token, &processes);
    let call = |tool: &dyn Tool, input: &serde_json::Value| {
        black_box(tool.call(input, &context).unwrap());
    };

    let read_input = json!({"path": "src/deep/notes.txt"});
    let write_input = json!({"path": "src/deep/out.txt", "content": text});
    let grep_input = json!({"pattern": "line 99:", "output_mode": "count"});
    let rows = [
        (
            "read tool, 4 KiB file (openat2 beneath the root)",
            time(|| call(&ReadTool::new(), &read_input)),
        ),
        (
            "  std::fs::read of the same file, by path",
            time(|| {
                black_box(fs::read(root.join("src/deep/notes.txt")).unwrap());
            }),
        ),
        (
            "write tool, 4 KiB (temporary file + renameat beneath)",
            time(|| call(&WriteTool::new(), &write_input)),
        ),
        (
            "  std::fs::write of the same bytes, by path",
            time(|| fs::write(root.join("src/deep/out.txt"), &text).unwrap()),
        ),
        (
            "grep tool, 201 files (each opened beneath)",
            time(|| call(&GrepTool::new(), &grep_input)),
        ),
    ];
    let _ = fs::remove_dir_all(&root);

    println!("file tools, {SAMPLES} calls each after {WARMUP} warm-up calls:");
    let mut table = Table::new(56, 30, 0);
    for (metric, samples) in &rows {
        table.row(
            metric,
            format!(
                "p50 {:.1} µs  p99 {:.1} µs",
                samples.micros(50),
                samples.micros(99)
            ),
            None,
            &samples.len().to_string(),
        );
    }
    print!("{}", table.finish());
    println!("(cargo bench --bench file_tools)");
}
