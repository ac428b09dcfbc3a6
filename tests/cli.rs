//! The `subtask` command line, driven as a user would: the built binary, in a temp
//! directory, with a `scripted:<file>` model instead of a provider.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A directory under the system temp dir, unique to this process and call, removed on drop.
/// The binary runs in it, so its transcripts land here and not in the repository.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "subtask-cli-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `turns` as a script and returns the `SUBTASK_MODEL` value that plays it.
    fn script(&self, name: &str, turns: Value) -> String {
        let path = self.0.join(format!("{name}.json"));
        std::fs::write(&path, turns.to_string()).expect("write the script");
        format!("scripted:{}", path.display())
    }

    /// The binary in this directory, with no model, key or log level from the environment.
    fn subtask(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_subtask"));
        command
            .args(args)
            .current_dir(&self.0)
            .env_remove("SUBTASK_MODEL")
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("ANTHROPIC_BASE_URL")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        command
    }

    /// Runs with `model` as `SUBTASK_MODEL` and waits.
    fn run_with(&self, model: &str, args: &[&str]) -> Output {
        self.subtask(args)
            .env("SUBTASK_MODEL", model)
            .output()
            .expect("run subtask")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing both streams when it is not the one expected.
#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// Runs the binary with `input` on stdin.
fn with_stdin(mut command: Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn subtask");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for subtask")
}

fn answer(text: &str) -> Value {
    json!([{"text": text}])
}

/// Three tasks, one of each kind of entry the file may hold.
fn three_tasks() -> Value {
    json!([
        {"prompt": "Find the timer", "subagent_type": "explore"},
        {"prompt": "Plan the change", "description": "Plan it", "subagent_type": "plan"},
        {"prompt": "Look around"},
    ])
}

// ---------------------------------------------------------------------------------------------
// Help and usage errors
// ---------------------------------------------------------------------------------------------

#[test]
fn every_command_has_help_and_the_top_level_lists_the_exit_codes() {
    let dir = TempDir::new("help");
    let top = dir.subtask(&["--help"]).output().unwrap();
    assert_exit(&top, 0);
    let text = stdout(&top);
    for needle in [
        "Exit codes",
        "0 ",
        "1 ",
        "2 ",
        "130",
        "interrupted",
        "SUBTASK_MODEL",
        "run",
        "agents",
        "schema",
        "mcp",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    for command in ["run", "agents", "schema", "mcp"] {
        let help = dir.subtask(&[command, "--help"]).output().unwrap();
        assert_exit(&help, 0);
        assert!(
            stdout(&help).contains(&format!("Usage: subtask {command}")),
            "{command}: {}",
            stdout(&help)
        );
    }
    let run = stdout(&dir.subtask(&["run", "--help"]).output().unwrap());
    for flag in [
        "--type",
        "--model",
        "--cwd",
        "--read-only",
        "--timeout",
        "--tasks",
        "--quiet",
        "--json",
        "--description",
    ] {
        assert!(run.contains(flag), "run --help lacks {flag}:\n{run}");
    }
    let version = dir.subtask(&["--version"]).output().unwrap();
    assert_exit(&version, 0);
    assert!(stdout(&version).starts_with("subtask "));
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    let dir = TempDir::new("usage");
    let model = dir.script("ok", answer("fine"));
    for args in [
        &["run", "--no-such-flag", "x"][..],
        &["run", "--timeout", "soon", "x"],
        &["run", "--timeout", "0", "x"],
        &["run"],
        &["run", "--tasks", "t.json", "a prompt"],
        &["run", "--quiet", "--json", "x"],
        &["frobnicate"],
        &[],
    ] {
        let output = dir.run_with(&model, args);
        assert_exit(&output, 2);
        assert!(stdout(&output).is_empty(), "{args:?}: {}", stdout(&output));
        assert!(
            stderr(&output).contains("Usage") || stderr(&output).contains("error"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let output = dir.run_with(&model, &["run", "--no-such-flag", "x"]);
    assert!(
        stderr(&output).contains("--no-such-flag"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn run_without_a_model_exits_2_naming_the_variable() {
    let dir = TempDir::new("nomodel");
    let output = dir.subtask(&["run", "hello"]).output().unwrap();
    assert_exit(&output, 2);
    let message = stderr(&output);
    assert!(message.contains("SUBTASK_MODEL"), "{message}");
    assert!(message.contains("ANTHROPIC_API_KEY"), "{message}");
    assert!(stdout(&output).is_empty());
    // A model that needs a key names the key.
    let output = dir
        .subtask(&["run", "--model", "haiku", "hello"])
        .output()
        .unwrap();
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("ANTHROPIC_API_KEY"),
        "{}",
        stderr(&output)
    );
    // A script that is not there names the file.
    let output = dir.run_with("scripted:/nonexistent/script.json", &["run", "hello"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("/nonexistent/script.json"),
        "{}",
        stderr(&output)
    );
}

// ---------------------------------------------------------------------------------------------
// run
// ---------------------------------------------------------------------------------------------

#[test]
fn run_prints_the_answer_on_stdout_and_progress_on_stderr() {
    let dir = TempDir::new("run");
    let model = dir.script(
        "lister",
        json!([
            {"tool_calls": [{"name": "ls", "arguments": {"path": "."}}]},
            {"text": "The directory holds a script."},
        ]),
    );
    let started = Instant::now();
    let output = dir.run_with(&model, &["run", "--type", "explore", "What is in here?"]);
    let took = started.elapsed();
    assert_exit(&output, 0);
    let answer = stdout(&output);
    assert!(
        answer.starts_with("The directory holds a script."),
        "{answer}"
    );
    let footer = answer.lines().last().unwrap();
    assert!(footer.starts_with("[run explore-"), "{footer}");
    assert!(footer.contains("completed"), "{footer}");
    let progress = stderr(&output);
    assert!(progress.contains("started"), "{progress}");
    assert!(progress.contains(" ls "), "{progress}");
    assert!(progress.contains("finished: completed"), "{progress}");
    // Its transcript went to the working directory's .subtask/transcripts/.
    let run_id = footer
        .trim_start_matches("[run ")
        .split(' ')
        .next()
        .unwrap();
    assert!(
        dir.path()
            .join(".subtask/transcripts")
            .join(format!("{run_id}.jsonl"))
            .is_file()
    );
    eprintln!("run with one tool call: {took:?}");
}

#[test]
fn a_long_run_shows_a_heartbeat_every_poll_interval() {
    let dir = TempDir::new("heartbeat");
    // The runtime's poll interval is 2 s; the answer comes a little after one interval.
    let model = dir.script("slow", json!([{"text": "Took a while.", "delay_ms": 2300}]));
    let output = dir.run_with(&model, &["run", "Take your time"]);
    assert_exit(&output, 0);
    let progress = stderr(&output);
    let heartbeats = progress
        .lines()
        .filter(|line| line.contains("running for"))
        .count();
    assert!(heartbeats >= 1, "{progress}");
}

#[test]
fn quiet_runs_print_no_progress() {
    let dir = TempDir::new("quiet");
    let model = dir.script("ok", answer("All quiet."));
    let output = dir.run_with(&model, &["run", "-q", "Say something"]);
    assert_exit(&output, 0);
    assert!(stdout(&output).starts_with("All quiet."));
    assert_eq!(stderr(&output), "");
}

#[test]
fn json_runs_print_only_the_result_as_json() {
    let dir = TempDir::new("json");
    let model = dir.script("ok", answer("As JSON."));
    let output = dir.run_with(&model, &["run", "--json", "--type", "plan", "Plan it"]);
    assert_exit(&output, 0);
    assert_eq!(stderr(&output), "");
    let result: Value = serde_json::from_str(&stdout(&output)).expect("stdout is JSON");
    assert_eq!(result["results"][0]["status"], "completed");
    assert_eq!(result["results"][0]["answer"], "As JSON.");
    assert_eq!(result["results"][0]["subagent_type"], "plan");
    assert_eq!(result["results"][0]["description"], "Plan it");
    assert_eq!(result["is_error"], false);
}

#[test]
fn a_failing_model_exits_1_with_the_error() {
    let dir = TempDir::new("fail");
    let model = dir.script("boom", json!([{"error": "boom"}]));
    let output = dir.run_with(&model, &["run", "Try it"]);
    assert_exit(&output, 1);
    assert!(stdout(&output).contains("boom"), "{}", stdout(&output));
    assert!(stdout(&output).contains("failed"), "{}", stdout(&output));
    let output = dir.run_with(&model, &["run", "--json", "Try it"]);
    assert_exit(&output, 1);
    let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(result["results"][0]["status"], "failed");
}

#[test]
fn a_run_past_its_timeout_exits_1() {
    let dir = TempDir::new("timeout");
    let model = dir.script("stall", json!([{"stall": true}]));
    let started = Instant::now();
    let output = dir.run_with(&model, &["run", "--json", "--timeout", "0.3", "Wait"]);
    assert_exit(&output, 1);
    assert!(started.elapsed() < Duration::from_secs(10));
    let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(result["results"][0]["status"], "timed_out");
}

#[test]
fn an_invalid_task_exits_2_and_runs_nothing() {
    let dir = TempDir::new("invalid");
    let model = dir.script("ok", answer("never"));
    let output = dir.run_with(&model, &["run", "--type", "nope", "x"]);
    assert_exit(&output, 2);
    assert!(stdout(&output).is_empty());
    let message = stderr(&output);
    assert!(
        message.contains("'nope' is not a subagent type"),
        "{message}"
    );
    assert!(
        message.contains("general-purpose, explore, plan, bash"),
        "{message}"
    );
    assert!(!dir.path().join(".subtask/transcripts").exists());
}

#[test]
fn prompts_and_tasks_files_can_come_from_stdin() {
    let dir = TempDir::new("stdin");
    let model = dir.script("ok", answer("Read it."));
    let mut command = dir.subtask(&["run", "-q", "-"]);
    command.env("SUBTASK_MODEL", &model);
    let output = with_stdin(command, "A prompt from a pipe");
    assert_exit(&output, 0);
    assert!(stdout(&output).starts_with("Read it."));
}

#[test]
fn a_tasks_file_runs_its_tasks_at_once() {
    let dir = TempDir::new("tasks");
    let model = dir.script("ok", answer("Done here."));
    let headings = |text: &str| text.lines().filter(|line| line.starts_with("## ")).count();
    // From a file, as an array.
    std::fs::write(dir.path().join("tasks.json"), three_tasks().to_string()).unwrap();
    let output = dir.run_with(&model, &["run", "--tasks", "tasks.json"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert_eq!(headings(&text), 3, "{text}");
    assert!(text.starts_with("3 tasks: 3 completed"), "{text}");
    assert!(text.contains("## 1. Find the timer (explore"), "{text}");
    assert!(text.contains("## 2. Plan it (plan"), "{text}");
    assert!(
        text.contains("## 3. Look around (general-purpose"),
        "{text}"
    );
    assert_eq!(stderr(&output).matches("finished: completed").count(), 3);
    // From stdin, as {"tasks": [...]}, with --type filling in the missing type.
    let mut command = dir.subtask(&["run", "--tasks", "-", "--type", "bash", "--json"]);
    command.env("SUBTASK_MODEL", &model);
    let output = with_stdin(command, &json!({"tasks": three_tasks()}).to_string());
    assert_exit(&output, 0);
    let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let types: Vec<&str> = result["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["subagent_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["explore", "plan", "bash"]);
    let mut command = dir.subtask(&["run", "--tasks", "-"]);
    command.env("SUBTASK_MODEL", &model);
    let output = with_stdin(command, &three_tasks().to_string());
    assert_exit(&output, 0);
    assert_eq!(headings(&stdout(&output)), 3);
}

#[test]
fn an_invalid_tasks_file_exits_2_naming_the_problem() {
    let dir = TempDir::new("badtasks");
    let model = dir.script("ok", answer("never"));
    for (content, expected) in [
        ("not json", "not valid JSON"),
        (r#"{"task": []}"#, "expected an array"),
        ("42", "expected an array"),
        ("[]", "1 to 10 tasks"),
        (
            r#"[{"prompt": "x", "colour": "red"}]"#,
            "unknown field `tasks[0].colour`",
        ),
        (
            r#"[{"prompt": "x", "subagent_type": "nope"}]"#,
            "'nope' is not a subagent type",
        ),
        (
            r#"[{"description": "no prompt"}]"#,
            "`tasks[0].prompt` is required",
        ),
        (r#"["just a string"]"#, "`tasks[0]` must be an object"),
    ] {
        std::fs::write(dir.path().join("tasks.json"), content).unwrap();
        let output = dir.run_with(&model, &["run", "--tasks", "tasks.json"]);
        assert_exit(&output, 2);
        assert!(
            stderr(&output).contains(expected),
            "{content}: {}",
            stderr(&output)
        );
    }
    let output = dir.run_with(&model, &["run", "--tasks", "missing.json"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("missing.json"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn cwd_sets_the_workspace() {
    let dir = TempDir::new("cwd");
    let elsewhere = TempDir::new("cwd-elsewhere");
    let model = dir.script("ok", answer("Over there."));
    let target = elsewhere.path().to_str().unwrap();
    let output = dir.run_with(&model, &["run", "-q", "--cwd", target, "Work there"]);
    assert_exit(&output, 0);
    assert!(elsewhere.path().join(".subtask/transcripts").is_dir());
    assert!(!dir.path().join(".subtask").exists());
    // --no-transcripts keeps none.
    let output = dir.run_with(&model, &["run", "-q", "--no-transcripts", "Work here"]);
    assert_exit(&output, 0);
    assert!(!dir.path().join(".subtask").exists());
    let output = dir.run_with(&model, &["run", "--cwd", "/nonexistent/dir", "x"]);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("--cwd"), "{}", stderr(&output));
}

// ---------------------------------------------------------------------------------------------
// agents and schema: no model needed
// ---------------------------------------------------------------------------------------------

#[test]
fn agents_lists_the_builtin_and_workspace_types_without_a_model() {
    let dir = TempDir::new("agents");
    let agents = dir.path().join(".subtask/agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(
        agents.join("x.md"),
        "---\nname: reviewer\ndescription: Reviews diffs for bugs.\ntools: read, grep\n---\nYou review.\n",
    )
    .unwrap();
    let output = dir.subtask(&["agents"]).output().unwrap();
    assert_exit(&output, 0);
    let text = stdout(&output);
    for name in ["general-purpose", "explore", "plan", "bash", "reviewer"] {
        assert!(
            text.lines()
                .any(|line| line.starts_with(&format!("{name} ("))),
            "no {name} in:\n{text}"
        );
    }
    assert!(text.contains("Reviews diffs for bugs."), "{text}");
    assert!(text.contains("tools: read, grep"), "{text}");
    assert!(text.contains(".subtask/agents/x.md"), "{text}");
    assert!(text.contains("tools: read, ls, glob, grep"), "{text}");
    let output = dir.subtask(&["agents", "--json"]).output().unwrap();
    assert_exit(&output, 0);
    let types: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(types.as_array().unwrap().len(), 5);
    assert_eq!(types[4]["name"], "reviewer");
    assert_eq!(types[4]["tools"], json!(["read", "grep"]));
    // A broken type file is a configuration error naming the file.
    std::fs::write(agents.join("y.md"), "no front matter").unwrap();
    let output = dir.subtask(&["agents"]).output().unwrap();
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("y.md"), "{}", stderr(&output));
}

#[test]
fn schema_prints_each_format_without_a_model() {
    let dir = TempDir::new("schema");
    let parse = |format: &str| -> Value {
        let output = dir
            .subtask(&["schema", "--format", format])
            .output()
            .unwrap();
        assert_exit(&output, 0);
        serde_json::from_str(&stdout(&output)).expect("the definition is JSON")
    };
    let openai = parse("openai");
    assert_eq!(openai["type"], "function");
    assert_eq!(openai["function"]["name"], "task");
    assert_eq!(openai["function"]["parameters"]["type"], "object");
    let anthropic = parse("anthropic");
    assert_eq!(anthropic["name"], "task");
    assert!(anthropic["input_schema"]["properties"]["tasks"].is_object());
    let mcp = parse("mcp");
    assert_eq!(mcp["name"], "task");
    assert_eq!(
        mcp["inputSchema"]["properties"]["subagent_type"]["enum"],
        json!(["general-purpose", "explore", "plan", "bash"])
    );
    assert!(mcp["description"].as_str().unwrap().contains("explore"));
    let output = dir
        .subtask(&["schema", "--format", "yaml"])
        .output()
        .unwrap();
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("yaml"), "{}", stderr(&output));
    assert!(stdout(&output).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Ctrl-C
// ---------------------------------------------------------------------------------------------

/// Whether process `pid` is gone, or a zombie nobody has reaped yet (it runs no more).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses: `531 (sleep) Z 1 …`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Waits up to `limit` for `child` to exit.
fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A script whose run starts a bash command that leaves a background child and waits;
/// the command writes the two sleeps' arguments (unique, so the test finds them from the
/// host: inside the bash sandbox pids are those of its own PID namespace) to the returned
/// file once it runs.
fn slow_command(dir: &TempDir) -> (String, PathBuf) {
    let pidfile = dir.path().join("pids");
    let marker = |n: u32| format!("30.{}{n}", std::process::id());
    let command = format!(
        "sleep {1} & echo {1} {2} > {0}.tmp && mv {0}.tmp {0}; sleep {2}",
        pidfile.display(),
        marker(1),
        marker(2),
    );
    let model = dir.script(
        "slow",
        json!([
            {"tool_calls": [{"name": "bash", "arguments": {"command": command}}]},
            {"text": "never reached"},
        ]),
    );
    (model, pidfile)
}

/// The host pid of the live process with `arg` among its arguments.
fn pid_with_arg(arg: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            !gone(*pid)
                && cmdline
                    .split(|byte| *byte == 0)
                    .any(|part| part == arg.as_bytes())
        })
}

/// Waits (bounded) until the command of [`slow_command`] runs; returns its two pids.
fn wait_for_pids(pidfile: &Path, child: &mut Child) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pidfile.exists() {
        assert!(
            Instant::now() < deadline,
            "the command never started: {:?}",
            child.try_wait()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let markers: Vec<String> = std::fs::read_to_string(pidfile)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(markers.len(), 2);
    let pids: Vec<u32> = markers
        .iter()
        .map(|marker| {
            loop {
                if let Some(pid) = pid_with_arg(marker) {
                    break pid;
                }
                assert!(
                    Instant::now() < deadline,
                    "no process runs `sleep {marker}`"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        })
        .collect();
    assert!(pids.iter().all(|pid| !gone(*pid)), "{pids:?} already gone");
    pids
}

/// Sends SIGINT to `child`, asserts it exits 130 within 2 s and that none of `pids` is
/// left running; returns its output and how long it took to exit.
fn interrupt(mut child: Child, pids: &[u32]) -> (Output, Duration) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    let interrupted = Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = wait_for(&mut child, Duration::from_secs(2));
    let took = interrupted.elapsed();
    let Some(status) = status else {
        let _ = child.kill();
        panic!("subtask was still running 2 s after SIGINT");
    };
    let output = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(130), "{}", stderr(&output));
    assert!(took < Duration::from_secs(2), "{took:?}");
    // SIGKILL was sent before the exit; give the kernel a moment to deliver it.
    let deadline = Instant::now() + Duration::from_secs(1);
    while !pids.iter().all(|pid| gone(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for pid in pids {
        assert!(gone(*pid), "process {pid} outlived the interrupted run");
    }
    (output, took)
}

#[test]
fn ctrl_c_cancels_the_tasks_kills_their_processes_and_exits_130() {
    let dir = TempDir::new("sigint");
    let (model, pidfile) = slow_command(&dir);
    let mut child = dir
        .subtask(&["run", "--type", "bash", "Start a server"])
        .env("SUBTASK_MODEL", &model)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pids = wait_for_pids(&pidfile, &mut child);
    let (output, took) = interrupt(child, &pids);
    assert!(stdout(&output).contains("cancelled"), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("interrupted"),
        "{}",
        stderr(&output)
    );
    eprintln!("run: SIGINT to exit in {took:?}");
}

// ---------------------------------------------------------------------------------------------
// mcp
// ---------------------------------------------------------------------------------------------

/// `subtask mcp` with pipes: requests in, one JSON message a line out.
struct McpClient {
    child: Child,
    messages: crossbeam_channel::Receiver<String>,
}

impl McpClient {
    fn start(dir: &TempDir, model: &str) -> McpClient {
        let mut child = dir
            .subtask(&["mcp"])
            .env("SUBTASK_MODEL", model)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (sender, messages) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        McpClient { child, messages }
    }

    /// Sends a request and returns the response to it (skipping notifications).
    fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.notify_raw(&message);
        loop {
            let line = self
                .messages
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no response to {method}"));
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("stdout carried a non-JSON line ({error}): {line}"));
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    fn notify_raw(&mut self, message: &Value) {
        let input = self.child.stdin.as_mut().expect("stdin open");
        writeln!(input, "{message}").unwrap();
        input.flush().unwrap();
    }
}

#[test]
fn mcp_serves_the_tool_on_stdio_and_ends_with_its_input() {
    let dir = TempDir::new("mcp");
    let model = dir.script("ok", answer("Served."));
    let mut client = McpClient::start(&dir, &model);
    let init = client.request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "test", "version": "0"}}),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "subtask", "{init}");
    client.notify_raw(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let list = client.request(2, "tools/list", json!({}));
    let schema = dir
        .subtask(&["schema", "--format", "mcp"])
        .output()
        .unwrap();
    let schema: Value = serde_json::from_str(&stdout(&schema)).unwrap();
    assert_eq!(
        list["result"]["tools"],
        json!([schema]),
        "schema and server agree"
    );
    let call = client.request(
        3,
        "tools/call",
        json!({"name": "task", "arguments": {"description": "Say it", "prompt": "Say it",
               "subagent_type": "explore"}}),
    );
    assert_eq!(call["result"]["isError"], false, "{call}");
    let text = call["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("Served."), "{text}");
    drop(client.child.stdin.take()); // end of input: the server returns
    let status = wait_for(&mut client.child, Duration::from_secs(10)).expect("mcp exits at EOF");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn mcp_without_a_model_exits_2() {
    let dir = TempDir::new("mcp-nomodel");
    let output = dir.subtask(&["mcp"]).output().unwrap();
    assert_exit(&output, 2);
    assert!(
        stdout(&output).is_empty(),
        "stdout is for the protocol only"
    );
    assert!(
        stderr(&output).contains("SUBTASK_MODEL"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn ctrl_c_stops_the_mcp_server_and_the_processes_of_its_calls() {
    let dir = TempDir::new("mcp-sigint");
    let (model, pidfile) = slow_command(&dir);
    let mut client = McpClient::start(&dir, &model);
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "task",
        "arguments": {"description": "Start a server", "prompt": "Start it", "subagent_type": "bash"},
    }});
    client.notify_raw(&call);
    let pids = wait_for_pids(&pidfile, &mut client.child);
    let (_, took) = interrupt(client.child, &pids);
    eprintln!("mcp: SIGINT to exit in {took:?}");
}
