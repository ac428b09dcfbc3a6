//! The built-in tools through the public API: what each returns, each error path, that no
//! path argument leaves the workspace, and that no process outlives its task.

mod support;

use std::fs;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::bounded;
use serde_json::{Value, json};
use subtask::sandbox::Sandbox;
use subtask::tools::{
    BashTool, EditTool, GlobTool, GrepTool, LsTool, ProcessGroups, ReadTool, Tool, ToolContext,
    Workspace, WriteTool, builtin_tools, validate,
};
use subtask::{CancelToken, Error, ErrorKind};
use support::{PATIENCE, TempDir, running_with_arg, unique_sleep, wait_until, watchdog};

/// A workspace, a directory beside it (outside), and a task's token and process groups.
struct Fixture {
    root: TempDir,
    outside: TempDir,
    workspace: Workspace,
    token: CancelToken,
    processes: ProcessGroups,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        Fixture::with_token(name, CancelToken::new())
    }

    fn with_token(name: &str, token: CancelToken) -> Fixture {
        let root = TempDir::new(&format!("{name}-root"));
        let outside = TempDir::new(&format!("{name}-outside"));
        let workspace = Workspace::new(root.path()).unwrap();
        let processes = ProcessGroups::new(&token);
        Fixture {
            root,
            outside,
            workspace,
            token,
            processes,
        }
    }

    fn context(&self) -> ToolContext<'_> {
        ToolContext::new(&self.workspace, &self.token, &self.processes)
    }

    /// Calls `tool` as the agent would: arguments validated against its schema first.
    fn call(&self, tool: &dyn Tool, input: Value) -> Result<String, Error> {
        validate(&tool.parameters(), &input)
            .unwrap_or_else(|error| panic!("{input} does not fit {}: {error}", tool.name()));
        tool.call(&input, &self.context())
    }

    fn ok(&self, tool: &dyn Tool, input: Value) -> String {
        self.call(tool, input.clone())
            .unwrap_or_else(|error| panic!("{} {input} failed: {error}", tool.name()))
    }

    /// The message of a tool error (kind `Tool`).
    fn tool_error(&self, tool: &dyn Tool, input: Value) -> String {
        match self.call(tool, input.clone()) {
            Ok(text) => panic!("{} {input} succeeded: {text}", tool.name()),
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Tool, "{error}");
                error.to_string()
            }
        }
    }

    fn write(&self, path: &str, content: impl AsRef<[u8]>) {
        let path = self.root.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn read(&self, path: &str) -> String {
        fs::read_to_string(self.root.path().join(path)).unwrap()
    }
}

/// Whether process `pid` is running (a zombie waiting for its reaper counts as gone).
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            !matches!(state, Some("Z" | "X"))
        }
    }
}

fn gone_within(pid: u32, limit: Duration) -> bool {
    wait_until(limit, || !alive(pid))
}

/// A background `sleep <marker>` that creates `file` once it runs (`$!` would be its pid
/// inside the sandbox's PID namespace, meaningless to the test: the test finds it by its
/// marker with `running_with_arg`).
fn marked_sleep(marker: &str, file: &str) -> String {
    format!("bash -c 'touch {file}; exec sleep {marker}' &")
}

/// The pid a command printed on a line of its own.
fn printed_pid(output: &str) -> u32 {
    output
        .lines()
        .find_map(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {output:?}"))
}

// ---------------------------------------------------------------------------------------
// registry

#[test]
fn builtin_tools_come_in_order_with_schemas_and_read_only_flags() {
    let tools = builtin_tools();
    assert_eq!(
        tools.names(),
        ["bash", "read", "write", "edit", "ls", "glob", "grep"]
    );
    let read_only: Vec<&str> = tools
        .iter()
        .filter(|tool| tool.read_only())
        .map(|tool| tool.name())
        .collect();
    assert_eq!(read_only, ["read", "ls", "glob", "grep"]);
    for tool in tools.iter() {
        let schema = tool.parameters();
        assert_eq!(schema["type"], "object", "{}", tool.name());
        assert_eq!(schema["additionalProperties"], false, "{}", tool.name());
        for (field, property) in schema["properties"].as_object().unwrap() {
            assert!(
                property["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{}.{field} has no description",
                tool.name()
            );
        }
        assert!(tool.description().len() > 100, "{}", tool.name());
    }
    let bash = BashTool::new();
    assert_eq!(bash.timeout(), Duration::from_secs(120));
    assert_eq!(bash.output_cap(), 30_000);
    assert!(bash.description().contains("120 s"));
    assert!(bash.description().contains("30,000"));
}

// ---------------------------------------------------------------------------------------
// bash

#[test]
fn bash_reports_the_exit_code_and_captures_stdout_and_stderr() {
    let fixture = Fixture::new("bash-exit");
    let text = fixture.ok(
        &BashTool::new(),
        json!({"command": "echo out; echo err >&2; echo again; exit 3"}),
    );
    assert_eq!(text, "out\nerr\nagain\nexit code: 3");
    let text = fixture.ok(&BashTool::new(), json!({"command": "pwd; true"}));
    assert_eq!(
        text,
        format!("{}\nexit code: 0", fixture.workspace.root().display())
    );
    let text = fixture.ok(&BashTool::new(), json!({"command": "kill -9 $$"}));
    assert_eq!(text, "(no output)\nkilled by signal 9");
    // Ended commands leave nothing tracked.
    assert!(fixture.processes.is_empty(), "{:?}", fixture.processes);
}

#[test]
fn bash_stdin_is_empty() {
    let fixture = Fixture::new("bash-stdin");
    let text = fixture.ok(
        &BashTool::new(),
        json!({"command": "cat; echo \"read: $?\""}),
    );
    assert_eq!(text, "read: 0\nexit code: 0");
    let error = fixture.tool_error(&BashTool::new(), json!({"command": "  "}));
    assert!(error.contains("empty"), "{error}");
}

#[test]
fn bash_output_cap_keeps_head_and_tail_with_a_note() {
    let fixture = Fixture::new("bash-cap");
    let command = "printf HEAD; head -c 200000 /dev/zero | tr '\\0' x; printf TAIL";
    let text = fixture.ok(&BashTool::new(), json!({ "command": command }));
    assert!(text.starts_with("HEADxxx"), "{}", &text[..20]);
    assert!(
        text.contains("\n[... 170,008 characters cut ...]\n"),
        "{}",
        &text[14_990..15_050]
    );
    assert!(text.ends_with("xxxTAIL\nexit code: 0"));
    assert!(text.chars().count() < 30_100, "{}", text.chars().count());

    let small = BashTool::with_limits(Duration::from_secs(10), 100);
    let text = fixture.ok(&small, json!({"command": "seq 1 1000"}));
    let (head, tail) = text.split_once("[... ").unwrap();
    assert!(head.starts_with("1\n2\n3\n"), "{head}");
    assert!(tail.ends_with("999\n1000\nexit code: 0"), "{tail}");
    assert!(tail.starts_with("3,793 characters cut ...]\n"), "{tail}");
}

#[test]
fn bash_timeout_kills_the_whole_group_and_returns_the_output_so_far() {
    watchdog(|| {
        let fixture = Fixture::new("bash-timeout");
        let started = Instant::now();
        let marker = unique_sleep();
        let command = format!(
            "{} until [ -e started ]; do :; done; echo waiting; wait",
            marked_sleep(&marker, "started")
        );
        let error = fixture.tool_error(
            &BashTool::new(),
            json!({"command": command, "timeout_seconds": 1}),
        );
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert!(error.contains("timed out after 1 s"), "{error}");
        assert!(error.contains("waiting"), "{error}");
        assert!(fixture.root.path().join("started").exists());
        let left = running_with_arg(&marker);
        assert!(left.is_empty(), "sleep {left:?} survived the timeout");
        assert!(fixture.processes.is_empty(), "{:?}", fixture.processes);
    });
}

#[test]
fn bash_default_timeout_comes_from_the_tool() {
    watchdog(|| {
        let fixture = Fixture::new("bash-default-timeout");
        let tool = BashTool::with_limits(Duration::from_secs(1), 1_000);
        let error = fixture.tool_error(&tool, json!({"command": "sleep 30"}));
        assert!(error.contains("timed out after 1 s"), "{error}");
    });
}

#[test]
fn bash_stops_at_the_task_deadline() {
    watchdog(|| {
        let fixture = Fixture::with_token(
            "bash-deadline",
            CancelToken::with_timeout(Duration::from_millis(300)),
        );
        let started = Instant::now();
        let error = fixture
            .call(&BashTool::new(), json!({"command": "sleep 30"}))
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn bash_returns_promptly_when_the_task_is_cancelled_from_another_thread() {
    watchdog(|| {
        let fixture = Fixture::new("bash-cancel");
        let (done, result) = bounded(1);
        let marker = unique_sleep();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let command = format!("{} sleep 30", marked_sleep(&marker, "bg.started"));
                let _ = done.send(fixture.call(&BashTool::new(), json!({ "command": command })));
            });
            assert!(
                wait_until(PATIENCE, || fixture.root.path().join("bg.started").exists()),
                "the command never started"
            );
            let cancelled = Instant::now();
            fixture.token.cancel();
            let error = result
                .recv_timeout(PATIENCE)
                .expect("the call returned")
                .unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");
            assert!(cancelled.elapsed() < Duration::from_secs(2));
            let left = running_with_arg(&marker);
            assert!(left.is_empty(), "background {left:?} survived");
        });
    });
}

#[test]
fn bash_does_not_start_on_a_cancelled_task() {
    let fixture = Fixture::new("bash-precancelled");
    fixture.token.cancel();
    let error = fixture
        .call(&BashTool::new(), json!({"command": "touch ran"}))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    assert!(!fixture.root.path().join("ran").exists());
}

#[test]
fn confined_background_children_end_with_their_command() {
    watchdog(|| {
        let fixture = Fixture::new("bash-background-confined");
        let marker = unique_sleep();
        let text = fixture.ok(
            &BashTool::new(),
            json!({"command": format!(
                "{} until [ -e bg.started ]; do :; done; echo started",
                marked_sleep(&marker, "bg.started")
            )}),
        );
        assert!(text.starts_with("started\n"), "{text}");
        let left = running_with_arg(&marker);
        assert!(
            left.is_empty(),
            "background {left:?} outlived its confined command"
        );
        assert!(fixture.processes.is_empty(), "{:?}", fixture.processes);
    });
}

#[test]
fn no_unconfined_background_child_outlives_the_run() {
    watchdog(|| {
        let fixture = Fixture::new("bash-background-run");
        let sandbox = Sandbox::unconfined();
        let started = Instant::now();
        let text = BashTool::new()
            .call(
                &json!({"command": "sleep 300 & echo $!"}),
                &fixture.context().with_sandbox(&sandbox),
            )
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid = printed_pid(&text);
        assert!(
            alive(pid),
            "the background sleep should run until the run ends"
        );
        assert_eq!(fixture.processes.len(), 1);
        let Fixture { processes, .. } = fixture;
        drop(processes); // the end of the run
        assert!(
            gone_within(pid, PATIENCE),
            "background {pid} outlived its run"
        );
    });
}

#[test]
fn no_unconfined_background_child_outlives_a_cancelled_task() {
    watchdog(|| {
        let fixture = Fixture::new("bash-background-cancel");
        let sandbox = Sandbox::unconfined();
        let text = BashTool::new()
            .call(
                &json!({"command": "sleep 300 & echo $!"}),
                &fixture.context().with_sandbox(&sandbox),
            )
            .unwrap();
        let pid = printed_pid(&text);
        assert!(alive(pid));
        fixture.token.cancel();
        assert!(
            gone_within(pid, PATIENCE),
            "background {pid} outlived its task"
        );
    });
}

// ---------------------------------------------------------------------------------------
// read

#[test]
fn read_numbers_lines_and_pages_with_offset_and_limit() {
    let fixture = Fixture::new("read");
    let lines: String = (1..=10).map(|n| format!("line {n}\n")).collect();
    fixture.write("notes.txt", &lines);
    let text = fixture.ok(
        &ReadTool::new(),
        json!({"path": "notes.txt", "offset": 3, "limit": 2}),
    );
    assert_eq!(
        text,
        "     3\tline 3\n     4\tline 4\n[... 6 more lines; use offset=5 to read on]\n"
    );
    let text = fixture.ok(&ReadTool::new(), json!({"path": "./notes.txt"}));
    assert!(text.starts_with("     1\tline 1\n"));
    assert!(text.ends_with("    10\tline 10\n"), "{text}");
    // A last line without a newline still counts.
    fixture.write("open.txt", "a\nb");
    assert_eq!(
        fixture.ok(&ReadTool::new(), json!({"path": "open.txt", "offset": 2})),
        "     2\tb\n"
    );
}

#[test]
fn read_says_how_many_lines_are_left_after_the_default_limit() {
    let fixture = Fixture::new("read-limit");
    let lines: String = (1..=2_500).map(|n| format!("{n}\n")).collect();
    fixture.write("long.txt", &lines);
    let text = fixture.ok(&ReadTool::new(), json!({"path": "long.txt"}));
    assert_eq!(text.lines().count(), 2_001);
    assert!(text.contains("  2000\t2000\n"));
    assert!(text.ends_with("[... 500 more lines; use offset=2001 to read on]\n"));
}

#[test]
fn read_cuts_long_lines_with_a_marker() {
    let fixture = Fixture::new("read-long-line");
    fixture.write("wide.txt", format!("{}\nshort\n", "y".repeat(5_000)));
    let text = fixture.ok(&ReadTool::new(), json!({"path": "wide.txt"}));
    let first = text.lines().next().unwrap();
    assert!(first.starts_with(&format!("     1\t{}", "y".repeat(2_000))));
    assert!(
        first.ends_with("y [... line cut: 5,000 characters in all]"),
        "{first}"
    );
    assert!(text.contains("     2\tshort\n"));
}

#[test]
fn read_refuses_binary_files_directories_and_missing_files() {
    let fixture = Fixture::new("read-errors");
    fixture.write("image.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    fixture.write("latin1.txt", b"caf\xe9\n");
    fixture.write("dir/file.txt", "x");
    fixture.write("empty.txt", "");
    fixture.write("three.txt", "1\n2\n3\n");
    let read = ReadTool::new();
    let error = fixture.tool_error(&read, json!({"path": "image.png"}));
    assert!(
        error.contains("'image.png' looks binary (") && error.contains("read only text files"),
        "{error}"
    );
    let error = fixture.tool_error(&read, json!({"path": "latin1.txt"}));
    assert!(
        error.contains("looks binary") && error.contains("UTF-8"),
        "{error}"
    );
    let error = fixture.tool_error(&read, json!({"path": "dir"}));
    assert!(
        error.contains("'dir' is a directory") && error.contains("ls"),
        "{error}"
    );
    let error = fixture.tool_error(&read, json!({"path": "nowhere/file.rs"}));
    assert!(error.contains("'nowhere/file.rs'"), "{error}");
    let error = fixture.tool_error(&read, json!({"path": "three.txt", "offset": 9}));
    assert!(
        error.contains("has 3 lines; offset 9 is past its end"),
        "{error}"
    );
    assert_eq!(
        fixture.ok(&read, json!({"path": "empty.txt"})),
        "'empty.txt' is empty (0 lines)."
    );
}

#[test]
fn read_reads_only_the_requested_range_of_a_large_file() {
    let fixture = Fixture::new("read-large");
    let lines: String = (1..=1_000).map(|n| format!("row {n:04}\n")).collect();
    fixture.write("big.txt", &lines); // 9,000 bytes
    let read = ReadTool::with_size_cap(1_024);
    let text = fixture.ok(&read, json!({"path": "big.txt", "offset": 500, "limit": 2}));
    assert!(
        text.starts_with("   500\trow 0500\n   501\trow 0501\n"),
        "{text}"
    );
    assert!(
        text.contains("[... 499 more lines; use offset=502 to read on]"),
        "{text}"
    );
    assert!(text.contains("over the 1 KiB cap"), "{text}");
    // Without a limit, the output stops at the cap.
    let text = fixture.ok(&read, json!({"path": "big.txt"}));
    assert!(text.len() < 2_048, "{}", text.len());
    assert!(text.contains("output stopped at about 1 KiB"), "{text}");
    let mut binary = vec![b'a'; 4_000];
    binary[100] = 0;
    fixture.write("big.bin", &binary);
    let error = fixture.tool_error(&read, json!({"path": "big.bin"}));
    assert!(error.contains("looks binary"), "{error}");
}

// ---------------------------------------------------------------------------------------
// write

#[test]
fn write_creates_parents_and_says_created_or_replaced() {
    let fixture = Fixture::new("write");
    let text = fixture.ok(
        &WriteTool::new(),
        json!({"path": "src/deep/new.rs", "content": "fn a() {}\nfn b() {}\n"}),
    );
    assert_eq!(text, "created 'src/deep/new.rs' (20 bytes, 2 lines)");
    assert_eq!(fixture.read("src/deep/new.rs"), "fn a() {}\nfn b() {}\n");
    let text = fixture.ok(
        &WriteTool::new(),
        json!({"path": "src/deep/new.rs", "content": "x"}),
    );
    assert_eq!(text, "replaced 'src/deep/new.rs' (1 bytes, 1 lines)");
    assert_eq!(fixture.read("src/deep/new.rs"), "x");
    let error = fixture.tool_error(
        &WriteTool::new(),
        json!({"path": "src/deep", "content": "x"}),
    );
    assert!(error.contains("is a directory"), "{error}");
}

// ---------------------------------------------------------------------------------------
// edit

#[test]
fn edit_replaces_one_exact_occurrence_or_all_of_them() {
    let fixture = Fixture::new("edit");
    fixture.write(
        "lib.rs",
        "fn one() {}\nfn two() {}\nlet x = 1; let y = 1;\n",
    );
    let text = fixture.ok(
        &EditTool::new(),
        json!({"path": "lib.rs", "old_string": "fn two() {}", "new_string": "fn deux() {}"}),
    );
    assert_eq!(text, "edited 'lib.rs': 1 replacement");
    let text = fixture.ok(
        &EditTool::new(),
        json!({"path": "lib.rs", "old_string": "= 1", "new_string": "= 2", "replace_all": true}),
    );
    assert_eq!(text, "edited 'lib.rs': 2 replacements");
    assert_eq!(
        fixture.read("lib.rs"),
        "fn one() {}\nfn deux() {}\nlet x = 2; let y = 2;\n"
    );
}

#[test]
fn edit_errors_say_what_to_fix() {
    let fixture = Fixture::new("edit-errors");
    fixture.write("lib.rs", "a = 1\na = 1\n");
    let edit = EditTool::new();
    let error = fixture.tool_error(
        &edit,
        json!({"path": "lib.rs", "old_string": "", "new_string": "b"}),
    );
    assert!(error.contains("old_string is empty"), "{error}");
    let error = fixture.tool_error(
        &edit,
        json!({"path": "lib.rs", "old_string": "a", "new_string": "a"}),
    );
    assert!(error.contains("the same"), "{error}");
    let error = fixture.tool_error(
        &edit,
        json!({"path": "lib.rs", "old_string": "b = 2 and more", "new_string": "c"}),
    );
    assert!(
        error.contains("not found in 'lib.rs': \"b = 2 and more\""),
        "{error}"
    );
    let error = fixture.tool_error(
        &edit,
        json!({"path": "lib.rs", "old_string": "a = 1", "new_string": "b"}),
    );
    assert!(
        error.contains("occurs 2 times") && error.contains("replace_all"),
        "{error}"
    );
    let error = fixture.tool_error(
        &edit,
        json!({"path": "gone.rs", "old_string": "a", "new_string": "b"}),
    );
    assert!(error.contains("'gone.rs'"), "{error}");
    assert_eq!(fixture.read("lib.rs"), "a = 1\na = 1\n");
}

// ---------------------------------------------------------------------------------------
// ls

#[test]
fn ls_lists_directories_first_then_files_with_sizes() {
    let fixture = Fixture::new("ls");
    fixture.write("b.txt", "12345");
    fixture.write(".hidden", "");
    fixture.write("zdir/x", "");
    fixture.write("adir/y", "");
    let text = fixture.ok(&LsTool::new(), json!({}));
    assert_eq!(
        text,
        "./ (2 directories, 2 files)\nadir/\nzdir/\n.hidden  (0 bytes)\nb.txt  (5 bytes)\n"
    );
    let text = fixture.ok(&LsTool::new(), json!({"path": "adir"}));
    assert_eq!(text, "adir/ (0 directories, 1 files)\ny  (0 bytes)\n");
    let error = fixture.tool_error(&LsTool::new(), json!({"path": "b.txt"}));
    assert!(
        error.contains("not a directory") && error.contains("read"),
        "{error}"
    );
    let error = fixture.tool_error(&LsTool::new(), json!({"path": "missing"}));
    assert!(error.contains("'missing'"), "{error}");
}

#[test]
fn ls_lists_at_most_a_thousand_entries() {
    let fixture = Fixture::new("ls-cap");
    for n in 0..1_005 {
        fixture.write(&format!("many/f{n:04}"), "");
    }
    let text = fixture.ok(&LsTool::new(), json!({"path": "many"}));
    assert_eq!(text.lines().count(), 1 + 1_000 + 1);
    assert!(text.ends_with("[... 5 more entries not listed; use glob to find specific names]\n"));
}

// ---------------------------------------------------------------------------------------
// glob

#[test]
fn glob_matches_relative_to_path_newest_first() {
    let fixture = Fixture::new("glob");
    fixture.write("src/lib.rs", "");
    fixture.write("src/tools/mod.rs", "");
    fixture.write("Cargo.toml", "");
    fixture.write("src/Cargo.toml", "");
    let now = SystemTime::now();
    for (age, path) in [(30, "src/lib.rs"), (10, "src/tools/mod.rs")] {
        let file = fs::File::options()
            .write(true)
            .open(fixture.root.path().join(path))
            .unwrap();
        file.set_modified(now - Duration::from_secs(age)).unwrap();
    }
    let text = fixture.ok(&GlobTool::new(), json!({"pattern": "**/*.rs"}));
    assert_eq!(text, "src/tools/mod.rs\nsrc/lib.rs\n");
    let text = fixture.ok(&GlobTool::new(), json!({"pattern": "*.toml"}));
    assert_eq!(text, "Cargo.toml\n", "`*` stays within one directory");
    let text = fixture.ok(&GlobTool::new(), json!({"pattern": "*.rs", "path": "src"}));
    assert_eq!(text, "src/lib.rs\n");
    let text = fixture.ok(&GlobTool::new(), json!({"pattern": "**/*.py"}));
    assert_eq!(text, "no files match `**/*.py` under '.'");
}

#[test]
fn glob_honours_gitignore_without_a_repository_and_skips_dot_git() {
    let fixture = Fixture::new("glob-ignore");
    fixture.write(".gitignore", "target/\n*.log\n");
    fixture.write("target/debug/out.rs", "");
    fixture.write("src/main.rs", "");
    fixture.write("run.log", "");
    fixture.write(".git/hooks/hook.rs", "");
    fixture.write(".github/ci.rs", "");
    let text = fixture.ok(&GlobTool::new(), json!({"pattern": "**/*"}));
    let mut found: Vec<&str> = text.lines().collect();
    found.sort();
    assert_eq!(found, [".github/ci.rs", ".gitignore", "src/main.rs"]);
}

#[test]
fn glob_errors_say_what_to_fix() {
    let fixture = Fixture::new("glob-errors");
    fixture.write("a.txt", "");
    let error = fixture.tool_error(&GlobTool::new(), json!({"pattern": "src/[a"}));
    assert!(error.contains("invalid glob pattern `src/[a`"), "{error}");
    let error = fixture.tool_error(&GlobTool::new(), json!({"pattern": "*", "path": "a.txt"}));
    assert!(error.contains("not a directory"), "{error}");
    let error = fixture.tool_error(&GlobTool::new(), json!({"pattern": "/etc/*"}));
    assert!(error.contains("absolute"), "{error}");
}

// ---------------------------------------------------------------------------------------
// grep

fn grep_fixture(name: &str) -> Fixture {
    let fixture = Fixture::new(name);
    fixture.write("src/a.rs", "fn main() {\n    todo!()\n}\n");
    fixture.write("src/b.rs", "// TODO one\nlet x = 1;\n// todo two\n");
    fixture.write("notes.md", "nothing here\n");
    fixture
}

#[test]
fn grep_lists_files_by_default_and_shows_content_or_counts() {
    let fixture = grep_fixture("grep-modes");
    let grep = GrepTool::new();
    assert_eq!(
        fixture.ok(&grep, json!({"pattern": "todo"})),
        "src/a.rs\nsrc/b.rs\n"
    );
    assert_eq!(
        fixture.ok(&grep, json!({"pattern": "todo", "output_mode": "content"})),
        "src/a.rs:2:    todo!()\nsrc/b.rs:3:// todo two\n"
    );
    assert_eq!(
        fixture.ok(
            &grep,
            json!({"pattern": "todo", "output_mode": "count", "case_insensitive": true})
        ),
        "src/a.rs:1\nsrc/b.rs:2\n3 matching lines in 2 files\n"
    );
    assert_eq!(
        fixture.ok(
            &grep,
            json!({"pattern": "^let \\w+ = \\d;$", "path": "src/b.rs", "output_mode": "content"})
        ),
        "src/b.rs:2:let x = 1;\n"
    );
    assert_eq!(
        fixture.ok(&grep, json!({"pattern": "absent"})),
        "no matches for `absent` under '.'"
    );
}

#[test]
fn grep_shows_context_lines_and_separates_groups() {
    let fixture = Fixture::new("grep-context");
    let lines: String = (1..=12).map(|n| format!("l{n}\n")).collect();
    fixture.write(
        "f.txt",
        lines.replace("l3\n", "hit\n").replace("l10\n", "hit\n"),
    );
    let text = fixture.ok(
        &GrepTool::new(),
        json!({"pattern": "hit", "output_mode": "content", "context": 1}),
    );
    assert_eq!(
        text,
        "f.txt-2-l2\nf.txt:3:hit\nf.txt-4-l4\n--\nf.txt-9-l9\nf.txt:10:hit\nf.txt-11-l11\n"
    );
}

#[test]
fn grep_filters_by_glob_and_honours_gitignore_and_skips_binary_files() {
    let fixture = grep_fixture("grep-filter");
    fixture.write(".gitignore", "ignored/\n");
    fixture.write("ignored/c.rs", "todo\n");
    fixture.write("blob.bin", b"todo\0\x01\x02");
    fixture.write(".git/config", "todo\n");
    let grep = GrepTool::new();
    assert_eq!(
        fixture.ok(&grep, json!({"pattern": "todo"})),
        "src/a.rs\nsrc/b.rs\n"
    );
    assert_eq!(
        fixture.ok(&grep, json!({"pattern": "todo|nothing", "glob": "*.md"})),
        "notes.md\n"
    );
    assert_eq!(
        fixture.ok(&grep, json!({"pattern": "todo", "glob": "src/a*"})),
        "src/a.rs\n"
    );
}

#[test]
fn grep_caps_results_with_a_note() {
    let fixture = Fixture::new("grep-cap");
    let lines: String = (1..=50).map(|n| format!("match {n}\n")).collect();
    fixture.write("many.txt", &lines);
    let text = fixture.ok(
        &GrepTool::new(),
        json!({"pattern": "match", "output_mode": "content", "max_results": 5}),
    );
    assert_eq!(text.lines().count(), 6, "{text}");
    assert!(text.starts_with("many.txt:1:match 1\n"));
    assert!(text.contains("[results capped at 5;"), "{text}");
}

#[test]
fn grep_errors_and_cancellation() {
    let fixture = grep_fixture("grep-errors");
    let error = fixture.tool_error(&GrepTool::new(), json!({"pattern": "fn (main"}));
    assert!(error.contains("invalid regex `fn (main`"), "{error}");
    let error = fixture.tool_error(&GrepTool::new(), json!({"pattern": "x", "path": "nope"}));
    assert!(error.contains("'nope'"), "{error}");
    fixture.token.cancel();
    let error = fixture
        .call(&GrepTool::new(), json!({"pattern": "todo"}))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled);
}

// ---------------------------------------------------------------------------------------
// confinement

#[test]
fn no_path_argument_leaves_the_workspace() {
    let fixture = Fixture::new("confine");
    let outside = fixture.outside.path();
    fs::write(outside.join("secret.txt"), "secret todo\n").unwrap();
    std::os::unix::fs::symlink(
        outside.join("secret.txt"),
        fixture.root.path().join("link.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside, fixture.root.path().join("door")).unwrap();
    let escape = format!(
        "../{}/secret.txt",
        outside.file_name().unwrap().to_str().unwrap()
    );
    let absolute = outside.join("new.txt").display().to_string();

    for (tool, input) in [
        (&ReadTool::new() as &dyn Tool, json!({"path": escape})),
        (&ReadTool::new(), json!({"path": "link.txt"})),
        (&WriteTool::new(), json!({"path": absolute, "content": "x"})),
        (
            &WriteTool::new(),
            json!({"path": "door/new.txt", "content": "x"}),
        ),
        (
            &EditTool::new(),
            json!({"path": "link.txt", "old_string": "secret", "new_string": "public"}),
        ),
        (&LsTool::new(), json!({"path": ".."})),
        (&GlobTool::new(), json!({"pattern": "**/*", "path": ".."})),
        (&GrepTool::new(), json!({"pattern": "secret", "path": ".."})),
        (
            &GrepTool::new(),
            json!({"pattern": "secret", "path": "door"}),
        ),
    ] {
        let error = fixture.tool_error(tool, input);
        assert!(
            error.contains("outside the workspace"),
            "{}: {error}",
            tool.name()
        );
    }
    assert!(!outside.join("new.txt").exists());
    assert_eq!(
        fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "secret todo\n"
    );
    // Walks do not follow symlinks out of the workspace either.
    assert_eq!(
        fixture.ok(&GrepTool::new(), json!({"pattern": "secret"})),
        "no matches for `secret` under '.'"
    );
    assert_eq!(
        fixture.ok(&GlobTool::new(), json!({"pattern": "**/secret*"})),
        "no files match `**/secret*` under '.'"
    );
}
