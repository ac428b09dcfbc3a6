//! The `task` tool: single and parallel calls, partial failures, several models, every
//! refusal, the prompt a subagent receives, the tools it is offered, resuming (in the same
//! process and after a restart), the definitions the model reads, the tool inside a parent
//! agent, the structured output, and one run against the scripted HTTP server.
//!
//! `subtask::task` / `Task` are not tested here: their default runtime reads the model from
//! the environment once per process, so a test could only pass or fail depending on the
//! machine's variables (and with a key set it would reach a real provider).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::bounded;
use regex::Regex;
use serde_json::{Value, json};
use subtask::agent::{Agent, RunContext};
use subtask::llm::{
    ChatModel, ContentBlock, HttpOptions, Message, ModelConfig, Role, ScriptedModel, ScriptedTurn,
    SentRequest,
};
use subtask::subagents::{
    Isolation, ModelResolver, SubagentRegistry, SubagentSpec, Subagents, Transcripts,
};
use subtask::task_tool::{CallOptions, TaskOutput, TaskTool, TaskToolConfig};
use subtask::tools::{Tool, ToolContext, ToolRegistry, builtin_tools};
use subtask::transcript::TranscriptStore;
use subtask::{CancelToken, Error, Runtime};
use support::llm_server::{LlmServer, STREAM_USAGE, openai_stream_text};
use support::{Gate, PATIENCE, Pass, TempDir, wait_until, watchdog};

const READ_ONLY: [&str; 4] = ["read", "ls", "glob", "grep"];
const TYPES: [&str; 4] = ["general-purpose", "explore", "plan", "bash"];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `echo {text}` answers `echo: <text>`.
struct EchoTool;

impl Tool for EchoTool {
    fn name(&self) -> &str {
        "echo"
    }
    fn description(&self) -> &str {
        "Echoes its text."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {"text": {"type": "string"}}})
    }
    fn read_only(&self) -> bool {
        true
    }
    fn call(&self, input: &Value, _: &ToolContext<'_>) -> Result<String, Error> {
        Ok(format!(
            "echo: {}",
            input["text"].as_str().unwrap_or_default()
        ))
    }
}

fn echo_only() -> ToolRegistry {
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(EchoTool)).unwrap();
    tools
}

/// Holds every run that calls it at a [`Gate`], counting how many are inside at once.
struct HoldTool {
    pass: Pass,
    arrived: Arc<AtomicUsize>,
    inside: AtomicUsize,
    most_inside: Arc<AtomicUsize>,
}

impl Tool for HoldTool {
    fn name(&self) -> &str {
        "hold"
    }
    fn description(&self) -> &str {
        "Waits for the test to let it go."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {}})
    }
    fn call(&self, _: &Value, _: &ToolContext<'_>) -> Result<String, Error> {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_inside.fetch_max(now, Ordering::SeqCst);
        self.arrived.fetch_add(1, Ordering::SeqCst);
        let held = self.pass.wait();
        self.inside.fetch_sub(1, Ordering::SeqCst);
        held.map(|()| "released".to_string())
    }
}

fn scripted(turns: impl IntoIterator<Item = ScriptedTurn>) -> Arc<ScriptedModel> {
    Arc::new(ScriptedModel::new(turns))
}

/// The prompt a run received: the text of its first message.
fn prompt_of(sent: &SentRequest) -> String {
    sent.messages[0].text()
}

/// The decision every run of a shared model makes: answer naming its prompt.
fn answer_naming_the_prompt() -> ScriptedTurn {
    ScriptedTurn::reply(|sent| ScriptedTurn::text(format!("Answer to: {}", prompt_of(sent))))
}

/// A tool over `model` and `tools`, in `dir`, on a fresh default runtime, no transcripts.
fn task_tool(model: Arc<ScriptedModel>, tools: ToolRegistry, dir: &TempDir) -> TaskTool {
    let subagents = Subagents::new(model, tools).transcripts(Transcripts::Off);
    TaskTool::new(Runtime::new().unwrap(), subagents, dir.workspace())
}

/// One task's arguments.
fn one(description: &str, prompt: &str, subagent_type: &str) -> Value {
    json!({"description": description, "prompt": prompt, "subagent_type": subagent_type})
}

/// `value` with `field` set.
fn with(mut value: Value, field: &str, set: Value) -> Value {
    value[field] = set;
    value
}

/// The ScriptedModel's estimate: about four characters a token, at least one for any text.
fn estimate(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Asserts `schema` uses only the JSON Schema keywords every major provider accepts in a
/// function declaration: Gemini's (an OpenAPI subset) refuse `anyOf`, `oneOf`, `$ref`,
/// `additionalProperties`, `exclusiveMinimum` and `propertyNames`.
#[track_caller]
fn assert_portable(schema: &Value) {
    const ALLOWED: &[&str] = &[
        "type",
        "description",
        "enum",
        "properties",
        "required",
        "items",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "format",
        "nullable",
    ];
    let Some(object) = schema.as_object() else {
        return;
    };
    for (key, value) in object {
        assert!(
            ALLOWED.contains(&key.as_str()),
            "`{key}` is not portable: {schema}"
        );
        match key.as_str() {
            "properties" => value
                .as_object()
                .unwrap()
                .values()
                .for_each(assert_portable),
            "items" => assert_portable(value),
            _ => {}
        }
    }
}

/// Asserts `output` is a refused call whose message contains every one of `fragments`.
#[track_caller]
fn assert_invalid(output: &TaskOutput, fragments: &[&str]) {
    assert!(output.is_error, "not an error: {}", output.to_text());
    assert!(output.results.is_empty(), "{:?}", output.results);
    let Some(error) = &output.error else {
        panic!("no `error` for a refused call: {}", output.to_text());
    };
    for fragment in fragments {
        assert!(
            error.contains(fragment),
            "the message does not name {fragment:?}: {error}"
        );
    }
    assert!(error.ends_with("Fix the call and try again."), "{error}");
    assert_eq!(output.to_text(), format!("Invalid task call: {error}"));
}

/// The positions of `needles` in `text`, asserting each is there and they come in order.
#[track_caller]
fn assert_in_order(text: &str, needles: &[String]) {
    let mut from = 0;
    for needle in needles {
        let Some(at) = text[from..].find(needle.as_str()) else {
            panic!("{needle:?} is missing or out of order in:\n{text}");
        };
        from += at + needle.len();
    }
}

/// A resolver for `openai:a` / `openai:b` that counts its calls.
fn resolver_for(
    a: &Arc<ScriptedModel>,
    b: &Arc<ScriptedModel>,
    calls: &Arc<AtomicUsize>,
) -> ModelResolver {
    let (a, b, calls) = (a.clone(), b.clone(), calls.clone());
    Arc::new(move |spec: &str| {
        calls.fetch_add(1, Ordering::SeqCst);
        match spec {
            "openai:a" => Ok(a.clone() as Arc<dyn ChatModel>),
            "openai:b" => Ok(b.clone() as Arc<dyn ChatModel>),
            other => Err(Error::config(format!("the test knows no model {other}"))),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// One task
// ---------------------------------------------------------------------------------------------

#[test]
fn a_single_task_returns_the_full_answer_and_a_footer_of_its_usage() {
    watchdog(|| {
        let dir = TempDir::new("single");
        let mut answer = String::new();
        let mut line = 0;
        while answer.len() < 20_000 {
            answer.push_str(&format!("line {line:05}: the answer goes on.\n"));
            line += 1;
        }
        answer.push_str("THE END");
        let model = scripted([
            ScriptedTurn::tool_call("echo", json!({"text": "looking"})),
            ScriptedTurn::text(answer.clone()),
        ]);
        let tool = task_tool(model.clone(), echo_only(), &dir);
        let output = tool.call_json(&one(
            "Write a long answer",
            "Answer at length.",
            "general-purpose",
        ));
        assert!(!output.is_error, "{}", output.to_text());
        assert_eq!(output.error, None);
        assert_eq!(output.results.len(), 1);
        let result = &output.results[0];
        assert_eq!(result.status, "completed");
        assert!(result.is_complete());
        assert_eq!(result.answer, answer, "the answer must come back whole");
        assert_eq!(result.description, "Write a long answer");
        assert_eq!(result.subagent_type, "general-purpose");
        assert_eq!(result.model.as_deref(), Some("scripted:model"));
        assert_eq!(result.turns, 2);
        assert_eq!(result.tool_calls.get("echo"), Some(&1));
        assert_eq!(result.error, None);

        // The usage is the sum of the model's per-turn estimates: the input of each request,
        // the output of each assistant message (the last one is the answer).
        let requests = model.requests();
        assert_eq!(requests.len(), 2);
        let input: u64 = requests
            .iter()
            .map(|sent| {
                estimate(&serde_json::to_string(&sent.messages).unwrap()) + estimate(&sent.system)
            })
            .sum();
        let mut assistant: Vec<Message> = requests[1]
            .messages
            .iter()
            .filter(|message| message.role == Role::Assistant)
            .cloned()
            .collect();
        assistant.push(Message::assistant(answer.clone()));
        let output_tokens: u64 = assistant
            .iter()
            .map(|message| estimate(&serde_json::to_string(message).unwrap()))
            .sum();
        assert_eq!(result.usage.input_tokens, input);
        assert_eq!(result.usage.output_tokens, output_tokens);
        assert!(output_tokens > 5_000, "{output_tokens}");
        assert_eq!(result.usage.cost_usd, None, "a scripted model has no price");
        assert_eq!(output.usage.input_tokens, input);
        assert_eq!(output.usage.output_tokens, output_tokens);

        // The text: the whole answer, a blank line, the footer.
        let text = output.to_text();
        let footer = result.footer();
        assert_eq!(text, format!("{answer}\n\n{footer}"));
        let pattern = Regex::new(
            r"^\[run (\S+) · completed · scripted:model · 2 turns · ([\d,]+) in / ([\d,]+) out tokens · (\d+\.\d) s\]$",
        )
        .unwrap();
        let Some(parts) = pattern.captures(&footer) else {
            panic!("the footer does not read as expected: {footer}");
        };
        let run_id = result.run_id.as_deref().unwrap();
        assert!(run_id.starts_with("general-purpose-"), "{run_id}");
        assert_eq!(&parts[1], run_id);
        assert_eq!(&parts[2], thousands(input));
        assert_eq!(&parts[3], thousands(output_tokens));
        assert_eq!(
            &parts[4],
            format!("{:.1}", result.duration_ms as f64 / 1000.0)
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Several tasks
// ---------------------------------------------------------------------------------------------

#[test]
fn ten_tasks_run_eight_at_once_and_answer_in_request_order() {
    watchdog(|| {
        let dir = TempDir::new("parallel");
        let gate = Gate::new();
        let arrived = Arc::new(AtomicUsize::new(0));
        let most_inside = Arc::new(AtomicUsize::new(0));
        let mut tools = ToolRegistry::new();
        tools
            .register(Arc::new(HoldTool {
                pass: gate.pass(),
                arrived: arrived.clone(),
                inside: AtomicUsize::new(0),
                most_inside: most_inside.clone(),
            }))
            .unwrap();
        // Every run: call `hold` first, then answer naming its prompt.
        let decide = |sent: &SentRequest| match sent.last_tool_result() {
            None => ScriptedTurn::tool_call("hold", json!({})),
            Some(_) => ScriptedTurn::text(format!("Answer to: {}", prompt_of(sent))),
        };
        let model = scripted((0..20).map(|_| ScriptedTurn::reply(decide)));
        let runtime = Runtime::builder().execution_threads(8).build().unwrap();
        let subagents = Subagents::new(model.clone(), tools).transcripts(Transcripts::Off);
        let tool = TaskTool::new(runtime.clone(), subagents, dir.workspace());
        let tasks: Vec<Value> = (0..10)
            .map(|i| {
                one(
                    &format!("Task {i}"),
                    &format!("Question {i}"),
                    "general-purpose",
                )
            })
            .collect();

        let (done, finished) = bounded(1);
        let caller = tool.clone();
        std::thread::spawn(move || {
            let _ = done.send(caller.call_json(&json!({ "tasks": tasks })));
        });
        gate.expect_arrivals(8);
        let eight_and_two = || runtime.stats().running == 8 && runtime.stats().queued == 2;
        assert!(
            wait_until(Duration::from_secs(5), eight_and_two),
            "expected 8 running and 2 queued, saw {:?}",
            runtime.stats()
        );
        assert_eq!(arrived.load(Ordering::SeqCst), 8, "a ninth run started");
        gate.open();
        let output = finished.recv_timeout(PATIENCE).expect("the call returns");

        assert_eq!(most_inside.load(Ordering::SeqCst), 8);
        assert_eq!(arrived.load(Ordering::SeqCst), 10);
        assert!(!output.is_error, "{}", output.to_text());
        assert_eq!(output.results.len(), 10);
        for (i, result) in output.results.iter().enumerate() {
            assert_eq!(result.status, "completed", "{i}: {:?}", result.error);
            assert_eq!(result.description, format!("Task {i}"));
            assert_eq!(result.answer, format!("Answer to: Question {i}"));
            assert_eq!(result.turns, 2);
        }
        let text = output.to_text();
        assert!(
            text.starts_with("10 tasks: 10 completed, 0 did not.\n"),
            "{text}"
        );
        assert_eq!(text.matches("\n## ").count(), 10, "{text}");
        let expected: Vec<String> = (0..10)
            .flat_map(|i| {
                [
                    format!(
                        "\n## {}. Task {i} (general-purpose, scripted:model)\n\n",
                        i + 1
                    ),
                    format!("Answer to: Question {i}\n\n[run general-purpose-"),
                ]
            })
            .collect();
        assert_in_order(&text, &expected);
        let stats = runtime.stats();
        assert_eq!((stats.submitted, stats.completed), (10, 10));
    });
}

#[test]
fn a_timed_out_and_a_failed_task_keep_the_others_answers_in_order() {
    watchdog(|| {
        let dir = TempDir::new("partial");
        let decide = |sent: &SentRequest| match prompt_of(sent).as_str() {
            "stall" => ScriptedTurn::Stall,
            "fail" => ScriptedTurn::Fail(Error::other("the model broke down")),
            prompt => ScriptedTurn::text(format!("Answer to: {prompt}")),
        };
        let model = scripted((0..4).map(|_| ScriptedTurn::reply(decide)));
        let tool = task_tool(model, echo_only(), &dir);
        let output = tool.call_json(&json!({"tasks": [
            one("Finish quickly", "first", "general-purpose"),
            with(one("Stall forever", "stall", "general-purpose"), "timeout_seconds", json!(0.3)),
            one("Break the model", "fail", "general-purpose"),
            one("Finish too", "last", "general-purpose"),
        ]}));
        assert!(output.is_error, "{}", output.to_text());
        assert_eq!(output.error, None, "a call that ran is not an invalid call");
        let statuses: Vec<&str> = output.results.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(statuses, ["completed", "timed_out", "failed", "completed"]);
        assert_eq!(output.results[0].answer, "Answer to: first");
        assert_eq!(output.results[3].answer, "Answer to: last");

        let timed_out = &output.results[1];
        assert!(timed_out.run_id.is_some());
        assert_eq!(timed_out.turns, 1, "the run handed over its partial usage");
        // The stalled call never answered, so it reported no tokens.
        assert_eq!(timed_out.usage.input_tokens, 0);
        let error = timed_out.error.as_deref().unwrap();
        assert!(
            error.contains("timeout") || error.contains("time"),
            "{error}"
        );

        let failed = &output.results[2];
        assert!(failed.run_id.is_some());
        assert_eq!(failed.turns, 1);
        assert!(
            failed
                .error
                .as_deref()
                .unwrap()
                .contains("the model broke down"),
            "{:?}",
            failed.error
        );

        let text = output.to_text();
        assert!(
            text.starts_with("4 tasks: 2 completed, 2 did not.\n"),
            "{text}"
        );
        assert_in_order(
            &text,
            &[
                "## 1. Finish quickly".into(),
                "Answer to: first".into(),
                "· completed ·".into(),
                "## 2. Stall forever".into(),
                "Error: ".into(),
                "· timed out ·".into(),
                "## 3. Break the model".into(),
                "Error: the model broke down".into(),
                "· failed ·".into(),
                "## 4. Finish too".into(),
                "Answer to: last".into(),
                "· completed ·".into(),
            ],
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Several models
// ---------------------------------------------------------------------------------------------

#[test]
fn several_models_ask_the_same_read_only_question_of_each() {
    watchdog(|| {
        let dir = TempDir::new("models");
        let default = scripted([]);
        let a = Arc::new(ScriptedModel::new([answer_naming_the_prompt()]).named("a"));
        let b = Arc::new(ScriptedModel::new([answer_naming_the_prompt()]).named("b"));
        let calls = Arc::new(AtomicUsize::new(0));
        let runtime = Runtime::new().unwrap();
        let subagents = Subagents::new(default.clone(), builtin_tools())
            .transcripts(Transcripts::Off)
            .model_resolver(resolver_for(&a, &b, &calls));
        let tool = TaskTool::new(runtime.clone(), subagents, dir.workspace());
        let models = json!(["openai:a", "openai:b"]);

        let ask = one("Ask both models", "Where is main?", "general-purpose");
        let output = tool.call_json(&with(
            with(ask.clone(), "model", models.clone()),
            "read_only",
            json!(true),
        ));
        assert!(!output.is_error, "{}", output.to_text());
        assert_eq!(output.results.len(), 2);
        for (result, name) in output.results.iter().zip(["a", "b"]) {
            assert_eq!(result.status, "completed");
            assert_eq!(result.model.as_deref(), Some(&*format!("scripted:{name}")));
            assert_eq!(result.answer, "Answer to: Where is main?");
            assert!(
                result.footer().contains(&format!(" · scripted:{name} · ")),
                "{}",
                result.footer()
            );
        }
        assert_ne!(output.results[0].run_id, output.results[1].run_id);
        for model in [&a, &b] {
            let requests = model.requests();
            assert_eq!(requests.len(), 1);
            assert_eq!(requests[0].tools, READ_ONLY, "read_only reached the run");
        }
        assert!(default.requests().is_empty());
        // Each model is built once to check the call, once to run.
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        let text = output.to_text();
        assert_in_order(
            &text,
            &[
                "## 1. Ask both models (general-purpose, scripted:a)".into(),
                "## 2. Ask both models (general-purpose, scripted:b)".into(),
            ],
        );

        // `models` is the list's own field (the schema offers no list in `model`).
        a.push(answer_naming_the_prompt());
        b.push(answer_naming_the_prompt());
        let output = tool.call_json(&with(
            with(ask.clone(), "models", models.clone()),
            "read_only",
            json!(true),
        ));
        assert!(!output.is_error, "{}", output.to_text());
        assert_eq!(output.results.len(), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 8);

        // Without read_only, a type that may write is refused before anything runs.
        let submitted = runtime.stats().submitted;
        let refused = tool.call_json(&with(ask.clone(), "model", models.clone()));
        assert_invalid(&refused, &["`model` lists 2 models", "read_only: true"]);
        assert_eq!(runtime.stats().submitted, submitted);
        assert_eq!(calls.load(Ordering::SeqCst), 8, "the resolver was called");
        assert_eq!((a.requests().len(), b.requests().len()), (2, 2));

        // A read-only type needs no read_only.
        a.push(answer_naming_the_prompt());
        b.push(answer_naming_the_prompt());
        let explore = one("Explore with both", "Find the tests.", "explore");
        let output = tool.call_json(&with(explore, "model", models));
        assert!(!output.is_error, "{}", output.to_text());
        let names: Vec<_> = output.results.iter().map(|r| r.model.clone()).collect();
        assert_eq!(
            names,
            [
                Some("scripted:a".to_string()),
                Some("scripted:b".to_string())
            ]
        );
        assert_eq!(output.results[1].answer, "Answer to: Find the tests.");
    });
}

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

#[test]
fn every_invalid_call_is_refused_naming_the_field_before_anything_runs() {
    watchdog(|| {
        let dir = TempDir::new("invalid");
        dir.write("notes.txt", "some notes\n");
        dir.write("big.txt", "x".repeat(65));
        dir.write("sixty-a.txt", "a".repeat(60));
        dir.write("sixty-b.txt", "b".repeat(60));
        dir.write(
            "image.bin",
            [0x89, b'P', b'N', b'G', 0xff, 0xfe, 0x00, 0x01],
        );
        dir.write("sub/inner.txt", "inner");
        let outside = TempDir::new("outside");
        outside.write("secret.txt", "secret");
        let secret = outside.path().join("secret.txt");
        let secret = secret.to_str().unwrap();

        let model = scripted([]);
        let (a, b) = (scripted([]), scripted([]));
        let calls = Arc::new(AtomicUsize::new(0));
        let runtime = Runtime::builder()
            .execution_timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let subagents = Subagents::new(model.clone(), builtin_tools())
            .transcripts(Transcripts::Off)
            .model_resolver(resolver_for(&a, &b, &calls));
        let mut config = TaskToolConfig::default();
        config.max_file_bytes = 64;
        config.max_files_bytes = 100;
        let tool = TaskTool::new(runtime.clone(), subagents, dir.workspace()).with_config(config);

        let valid = one("Look around", "Find the tests.", "explore");
        let general = one("Change things", "Fix the bug.", "general-purpose");
        let without = |field: &str| {
            let mut task = valid.clone();
            task.as_object_mut().unwrap().remove(field);
            task
        };
        let set = |field: &str, value: Value| with(valid.clone(), field, value);
        let eleven: Vec<Value> = (0..11).map(|_| valid.clone()).collect();
        let six_read_only: Vec<Value> = (0..6)
            .map(|_| set("model", json!(["openai:a", "openai:b"])))
            .collect();
        let types = TYPES.join(", ");
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!("find the tests"), vec!["must be a JSON object"]),
            (json!([valid.clone()]), vec!["must be a JSON object"]),
            (
                set("colour", json!("red")),
                vec![
                    "unknown field `colour`",
                    "description, prompt, subagent_type",
                    ", tasks",
                ],
            ),
            (
                json!({"tasks": [valid.clone(), set("colour", json!("red"))]}),
                vec![
                    "unknown field `tasks[1].colour`",
                    "the fields are: description",
                ],
            ),
            (
                json!({"tasks": [valid.clone()], "colour": "red"}),
                vec!["unknown field `colour`"],
            ),
            (
                json!({"tasks": [valid.clone()], "prompt": "also this"}),
                vec![
                    "either `tasks` or the single-task fields",
                    "`prompt` is set too",
                ],
            ),
            (
                json!({"tasks": []}),
                vec!["`tasks` must hold 1 to 10 tasks; it holds 0"],
            ),
            (
                json!({ "tasks": eleven }),
                vec!["`tasks` must hold 1 to 10 tasks; it holds 11"],
            ),
            (
                json!({"tasks": valid.clone()}),
                vec!["`tasks` must be an array"],
            ),
            (
                json!({"tasks": [valid.clone(), "x"]}),
                vec!["`tasks[1]` must be an object"],
            ),
            (
                json!({ "tasks": six_read_only }),
                vec!["would start 12 runs", "at most 10"],
            ),
            (without("description"), vec!["`description` is required"]),
            (without("prompt"), vec!["`prompt` is required"]),
            (
                without("subagent_type"),
                vec!["`subagent_type` is required"],
            ),
            (
                json!({"tasks": [valid.clone(), one("Look", "", "explore")]}),
                vec!["`tasks[1].prompt` is empty"],
            ),
            (set("prompt", json!(7)), vec!["`prompt` must be a string"]),
            (
                set(
                    "description",
                    json!("one two three four five six seven eight nine ten eleven"),
                ),
                vec!["`description` should be a few words", "it has 11"],
            ),
            (
                set("subagent_type", json!("wizard")),
                vec!["`subagent_type` 'wizard' is not a subagent type", &types],
            ),
            (
                set("model", json!(5)),
                vec!["`model` must be a model name or an array"],
            ),
            (set("model", json!([])), vec!["`model` lists no models"]),
            (set("models", json!([])), vec!["`models` lists no models"]),
            (
                with(
                    set("models", json!(["openai:a", "openai:b"])),
                    "subagent_type",
                    json!("general-purpose"),
                ),
                vec!["`models` lists 2 models", "read_only: true"],
            ),
            (
                with(
                    set("models", json!(["openai:a"])),
                    "model",
                    json!("openai:b"),
                ),
                vec!["set `model` (one model) or `models` (several), not both"],
            ),
            (
                set("model", json!(["openai:a", 5])),
                vec!["`model` must be an array of strings"],
            ),
            // Names are checked as `provider:model` or an alias, whatever the resolver knows.
            (
                set("model", json!("a")),
                vec!["`model`:", "the test knows no model a"],
            ),
            (
                set("model", json!("acme:big")),
                vec!["`model`:", "the test knows no model acme:big"],
            ),
            (
                json!({"tasks": [valid.clone(), set("model", json!(["openai:a", "acme:x"]))]}),
                vec!["`tasks[1].model`:", "the test knows no model acme:x"],
            ),
            (
                set("cwd", json!("..")),
                vec!["`cwd`:", "outside the workspace"],
            ),
            (
                set("cwd", json!("/")),
                vec!["`cwd`:", "outside the workspace"],
            ),
            (
                set("cwd", json!("notes.txt")),
                vec!["`cwd`: 'notes.txt' is not a directory"],
            ),
            (
                set("cwd", json!("nowhere")),
                vec!["`cwd`: 'nowhere' is not a directory"],
            ),
            (set("cwd", json!(3)), vec!["`cwd` must be a string"]),
            (
                set("tools", json!(["read", "bash"])),
                vec![
                    "`tools`: 'bash' is not one of this run's tools",
                    "they are: read, ls, glob, grep",
                ],
            ),
            (
                with(
                    with(general.clone(), "read_only", json!(true)),
                    "tools",
                    json!(["write"]),
                ),
                vec![
                    "`tools`: 'write' is not one of this run's tools",
                    "they are: read, ls, glob, grep",
                ],
            ),
            (
                set("tools", json!("read")),
                vec!["`tools` must be an array of strings"],
            ),
            (
                set("read_only", json!("yes")),
                vec!["`read_only` must be true or false"],
            ),
            (
                set("files", json!("notes.txt")),
                vec!["`files` must be an array of strings"],
            ),
            (
                set("files", json!(["../x.txt"])),
                vec!["`files`:", "outside the workspace"],
            ),
            (
                set("files", json!([secret])),
                vec!["`files`:", "outside the workspace"],
            ),
            (
                set("files", json!(["missing.txt"])),
                vec!["`files`: there is no file or directory at 'missing.txt'"],
            ),
            (
                set("files", json!(["big.txt"])),
                vec!["`files`: 'big.txt' has 65 bytes, more than the 64"],
            ),
            (
                set("files", json!(["sixty-a.txt", "sixty-b.txt"])),
                vec!["`files` come to more than 100 bytes"],
            ),
            (
                set("files", json!(["image.bin"])),
                vec!["`files`: 'image.bin' is not text"],
            ),
            (
                set("context", json!(["a"])),
                vec!["`context` must be a string"],
            ),
            (set("output", json!({})), vec!["`output` must be a string"]),
            (
                set("timeout_seconds", json!(0)),
                vec!["`timeout_seconds` must be a number of seconds from 0.001 to 30"],
            ),
            (
                set("timeout_seconds", json!(-5)),
                vec!["`timeout_seconds` must be"],
            ),
            (
                set("timeout_seconds", json!(30.5)),
                vec!["`timeout_seconds` must be", "to 30"],
            ),
            (
                set("timeout_seconds", json!("10")),
                vec!["`timeout_seconds` must be"],
            ),
            (
                set("resume", json!("explore-abc")),
                vec!["`resume`:", "transcripts are off"],
            ),
            (set("resume", json!(12)), vec!["`resume` must be a string"]),
        ];
        for (arguments, fragments) in &cases {
            let output = tool.call_json(arguments);
            assert!(
                output.error.is_some(),
                "accepted: {arguments}\n{}",
                output.to_text()
            );
            assert_invalid(&output, fragments);
        }
        assert_invalid(
            &tool.call_str("{\"description\": "),
            &["not valid JSON", "one JSON object"],
        );
        assert_invalid(&tool.call_str("[]"), &["must be a JSON object"]);

        // Nothing ran: no task, no model call (models named in a call are built to check
        // it, which makes no request).
        assert_eq!(runtime.stats().submitted, 0);
        assert!(model.requests().is_empty());
        // The files the checks read are untouched and nothing was written.
        assert!(!dir.path().join(".subtask").exists());
    });
}

// ---------------------------------------------------------------------------------------------
// What the subagent receives
// ---------------------------------------------------------------------------------------------

#[test]
fn context_files_and_output_are_composed_into_the_prompt() {
    watchdog(|| {
        let dir = TempDir::new("compose");
        dir.write("src/timer.rs", "pub fn tick() {}\n\n");
        dir.write("notes.md", "Timers fire once.");
        dir.write("sub/local.txt", "local to sub");
        let model = scripted([ScriptedTurn::text("ok"), ScriptedTurn::text("ok")]);
        let tool = task_tool(model.clone(), builtin_tools(), &dir);
        let task = json!({
            "description": "Explain the timer",
            "prompt": "  How does the timer work?  ",
            "subagent_type": "explore",
            "context": "The user is debugging a missed tick.",
            "files": ["src/timer.rs", "notes.md"],
            "output": "Three bullet points.",
        });
        let output = tool.call_json(&task);
        assert!(!output.is_error, "{}", output.to_text());
        let sent = &model.requests()[0];
        assert_eq!(sent.messages.len(), 1);
        assert_eq!(
            prompt_of(sent),
            "How does the timer work?\n\n\
             ## Context\n\nThe user is debugging a missed tick.\n\n\
             ## Files\n\n\
             ### src/timer.rs\n\n```\npub fn tick() {}\n```\n\n\
             ### notes.md\n\n```\nTimers fire once.\n```\n\n\
             ## What to return\n\nThree bullet points."
        );

        // With a `cwd`, the run is confined there and its files are read from there.
        let output = tool.call_json(&json!({
            "description": "Read locally",
            "prompt": "Read it.",
            "subagent_type": "explore",
            "cwd": "sub",
            "files": ["local.txt"],
        }));
        assert!(!output.is_error, "{}", output.to_text());
        let text = prompt_of(&model.requests()[1]);
        assert!(
            text.ends_with("## Files\n\n### local.txt\n\n```\nlocal to sub\n```"),
            "{text}"
        );
    });
}

#[test]
fn a_tool_subset_and_read_only_decide_the_tools_offered() {
    watchdog(|| {
        let dir = TempDir::new("offered");
        let model = scripted((0..4).map(|_| ScriptedTurn::text("done")));
        let tool = task_tool(model.clone(), builtin_tools(), &dir);
        let general = one("Do the work", "Work.", "general-purpose");
        let runs = [
            general.clone(),
            with(general.clone(), "tools", json!(["grep", "bash"])),
            with(general.clone(), "read_only", json!(true)),
            with(
                with(general, "read_only", json!(true)),
                "tools",
                json!(["read"]),
            ),
        ];
        for arguments in &runs {
            let output = tool.call_json(arguments);
            assert!(!output.is_error, "{}", output.to_text());
        }
        let offered: Vec<Vec<String>> = model.requests().into_iter().map(|r| r.tools).collect();
        assert_eq!(
            offered,
            [
                vec!["bash", "read", "write", "edit", "ls", "glob", "grep"],
                vec!["bash", "grep"],
                READ_ONLY.to_vec(),
                vec!["read"],
            ]
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Resuming
// ---------------------------------------------------------------------------------------------

#[test]
fn a_run_resumes_in_the_same_process_and_after_a_restart() {
    watchdog(|| {
        let dir = TempDir::new("resume");
        let model = scripted([
            ScriptedTurn::tool_call("echo", json!({"text": "42"})),
            ScriptedTurn::text("Noted: 42."),
            ScriptedTurn::text("It was 42."),
        ]);
        // Transcripts in the per-user state directory (the default).
        let store = subtask::transcript::default_dir(dir.workspace().root()).unwrap();
        let _cleanup = support::RemoveOnDrop(store.clone());
        let subagents = Subagents::new(model.clone(), echo_only());
        let tool = TaskTool::new(Runtime::new().unwrap(), subagents, dir.workspace());
        let first = tool.call_json(&one("Echo a number", "Echo 42.", "general-purpose"));
        assert!(!first.is_error, "{}", first.to_text());
        let run_id = first.results[0].run_id.clone().unwrap();
        assert!(
            first
                .to_text()
                .contains(&format!("[run {run_id} · completed"))
        );
        let transcript = store.join(format!("{run_id}.jsonl"));
        assert!(transcript.is_file(), "{}", transcript.display());

        let second = tool.call_json(&with(
            one(
                "Recall the number",
                "Which number did you echo?",
                "general-purpose",
            ),
            "resume",
            json!(run_id),
        ));
        assert!(!second.is_error, "{}", second.to_text());
        assert_eq!(second.results[0].run_id.as_deref(), Some(&*run_id));
        assert_eq!(second.results[0].answer, "It was 42.");
        assert_eq!(
            second.results[0].turns, 1,
            "the resumed run counts its own turns"
        );
        assert!(
            second
                .to_text()
                .contains(&format!("[run {run_id} · completed"))
        );
        let requests = model.requests();
        let mut earlier = requests[1].messages.clone();
        earlier.push(Message::assistant("Noted: 42."));
        let mut expected = earlier.clone();
        expected.push(Message::user("Which number did you echo?"));
        assert_eq!(requests[2].messages, expected);

        // A fresh runtime, subagents and tool on the same workspace: the transcript is enough.
        drop(tool);
        let model = scripted([ScriptedTurn::text("Still 42.")]);
        let subagents = Subagents::new(model.clone(), echo_only());
        let runtime = Runtime::new().unwrap();
        let tool = TaskTool::new(runtime.clone(), subagents, dir.workspace());
        let third = tool.call_json(&with(
            one("Recall again", "And now?", "general-purpose"),
            "resume",
            json!(run_id),
        ));
        assert!(!third.is_error, "{}", third.to_text());
        assert_eq!(third.results[0].run_id.as_deref(), Some(&*run_id));
        assert_eq!(third.results[0].answer, "Still 42.");
        expected.push(Message::assistant("It was 42."));
        expected.push(Message::user("And now?"));
        assert_eq!(model.requests()[0].messages, expected);

        // Ids that name no transcript, ids that are not ids, transcripts that are not
        // transcripts: refused before anything runs.
        let submitted = runtime.stats().submitted;
        let resume = |id: &str| {
            tool.call_json(&with(
                one("Resume it", "Go on.", "general-purpose"),
                "resume",
                json!(id),
            ))
        };
        assert_invalid(
            &resume("general-purpose-zzzzzzzz"),
            &[
                "`resume`:",
                "no transcript for run 'general-purpose-zzzzzzzz'",
            ],
        );
        for id in ["../../etc/passwd", "a b", ""] {
            assert_invalid(&resume(id), &["`resume`:", "is not a run id"]);
        }
        std::fs::write(store.join("general-purpose-empty.jsonl"), "").unwrap();
        assert_invalid(
            &resume("general-purpose-empty"),
            &["`resume`:", "holds no messages"],
        );
        let mut text = std::fs::read_to_string(&transcript).unwrap();
        let lines = text.lines().count();
        text.push_str("{\"type\": \"message\", \"message\": {\"role\": \"us\n");
        std::fs::write(&transcript, text).unwrap();
        assert_invalid(
            &resume(&run_id),
            &[
                "`resume`:",
                "is corrupt at line",
                &format!("line {}", lines + 1),
            ],
        );
        assert_eq!(runtime.stats().submitted, submitted);
        assert_eq!(model.requests().len(), 1);
    });
}

// ---------------------------------------------------------------------------------------------
// Definitions
// ---------------------------------------------------------------------------------------------

#[test]
fn the_definitions_describe_the_live_configuration() {
    let dir = TempDir::new("definitions");
    let mut types = SubagentRegistry::builtin();
    types
        .register(
            SubagentSpec::new("reviewer", "Reviews a diff for bugs.", "You review diffs.")
                .tools(&["read", "grep"])
                .read_only(true),
        )
        .unwrap();
    let subagents = Subagents::new(scripted([]), builtin_tools())
        .types(types)
        .transcripts(Transcripts::Off);
    let runtime = Runtime::builder()
        .execution_threads(3)
        .execution_timeout(Duration::from_secs(123))
        .queue_timeout(Duration::from_secs(45))
        .build()
        .unwrap();
    let mut config = TaskToolConfig::default();
    config.max_parallel = 6;
    let tool = TaskTool::new(runtime, subagents.clone(), dir.workspace()).with_config(config);
    let names = ["general-purpose", "explore", "plan", "bash", "reviewer"];

    let reparse = |value: Value| -> Value { serde_json::from_str(&value.to_string()).unwrap() };
    let openai = reparse(tool.openai_definition());
    let anthropic = reparse(tool.anthropic_definition());
    let mcp = reparse(tool.mcp_definition());
    assert_eq!(openai["type"], "function");
    let function = &openai["function"];
    assert_eq!(function["name"], "task");
    assert_eq!(anthropic["name"], "task");
    assert_eq!(mcp["name"], "task");
    assert!(mcp["title"].is_string());
    let description = tool.description();
    for definition in [
        &function["description"],
        &anthropic["description"],
        &mcp["description"],
    ] {
        assert_eq!(definition, description);
    }
    let schema = &function["parameters"];
    assert_eq!(&anthropic["input_schema"], schema);
    assert_eq!(&mcp["inputSchema"], schema);
    assert_eq!(schema, &tool.parameters());
    assert_eq!(schema, &Tool::parameters(&tool));
    assert_eq!(Tool::name(&tool), "task");
    assert_eq!(Tool::description(&tool), description);

    assert_eq!(schema["type"], "object");
    assert_portable(schema);
    assert_eq!(schema["properties"]["subagent_type"]["enum"], json!(names));
    let tasks = &schema["properties"]["tasks"];
    assert_eq!(tasks["type"], "array");
    assert_eq!(tasks["maxItems"], 6);
    assert_eq!(tasks["minItems"], 1);
    let item = &tasks["items"];
    assert_eq!(item["type"], "object");
    assert_eq!(item["properties"]["subagent_type"]["enum"], json!(names));
    assert_eq!(
        item["required"],
        json!(["description", "prompt", "subagent_type"])
    );
    assert!(item["properties"].get("tasks").is_none());
    assert_eq!(schema["properties"]["timeout_seconds"]["maximum"], 123.0);

    for line in [
        "- general-purpose: General-purpose agent",
        "(all tools)",
        "- explore: Fast read-only codebase search",
        "- plan: Read-only planner",
        "- bash: Command runner",
        "(tools: bash)",
        "- reviewer: Reviews a diff for bugs. (tools: read, grep)",
    ] {
        assert!(
            description.contains(line),
            "{line:?} missing from:\n{description}"
        );
    }
    let explore_line = description
        .lines()
        .find(|line| line.starts_with("- explore:"))
        .unwrap();
    assert!(
        explore_line.ends_with("(tools: read, ls, glob, grep)"),
        "{explore_line}"
    );
    let plan_line = description
        .lines()
        .find(|line| line.starts_with("- plan:"))
        .unwrap();
    assert!(
        plan_line.ends_with("(tools: read, ls, glob, grep)"),
        "{plan_line}"
    );
    for guidance in [
        "write code or only research",
        "The user does not see a subagent's answer",
        "use it proactively",
        "never give two tasks that write the same files",
        "sonnet",
        "haiku",
        "provider:model",
        "{\"tasks\": [{\"description\": \"Find the timer\"",
    ] {
        assert!(
            description.contains(guidance),
            "{guidance:?} missing from:\n{description}"
        );
    }
    for limit in [
        "`tasks` (1 to 6); 3 run at once",
        "a run may take 123 s",
        "`timeout_seconds` to at most 123 s",
        "after 45 s fails",
    ] {
        assert!(
            description.contains(limit),
            "{limit:?} missing from:\n{description}"
        );
    }

    // Other settings, another description.
    let runtime = Runtime::builder()
        .execution_timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let mut config = TaskToolConfig::default();
    config.max_timeout = Some(Duration::from_secs(90));
    let tool = TaskTool::new(runtime, subagents, dir.workspace()).with_config(config);
    let description = tool.description();
    assert!(
        description.contains("(1 to 10); 8 run at once"),
        "{description}"
    );
    assert!(
        description.contains("a run may take 1.5 s"),
        "{description}"
    );
    assert!(description.contains("at most 90 s"), "{description}");
    assert_eq!(
        tool.parameters()["properties"]["tasks"]["items"]["properties"]["timeout_seconds"]["maximum"],
        90.0
    );
}

// ---------------------------------------------------------------------------------------------
// Inside a parent agent
// ---------------------------------------------------------------------------------------------

#[test]
fn a_parent_agent_gets_every_answer_and_a_refusal_as_an_error_result() {
    watchdog(|| {
        let dir = TempDir::new("parent");
        let child = scripted((0..3).map(|_| answer_naming_the_prompt()));
        let tool = task_tool(child.clone(), builtin_tools(), &dir);
        let mut tools = ToolRegistry::new();
        tools.register(Arc::new(tool)).unwrap();
        let quote = || {
            ScriptedTurn::reply(|sent| {
                ScriptedTurn::text(format!(
                    "The subagents said:\n{}",
                    sent.last_tool_result().unwrap_or("nothing")
                ))
            })
        };
        let parent = scripted([
            ScriptedTurn::tool_call(
                "task",
                json!({"tasks": [
                    one("Find the timer", "Where is the timer?", "explore"),
                    one("Find the pool", "Where is the pool?", "explore"),
                    one("Find the tests", "Where are the tests?", "explore"),
                ]}),
            ),
            quote(),
            ScriptedTurn::tool_call(
                "task",
                with(
                    one("Escape", "Look outside.", "explore"),
                    "cwd",
                    json!(".."),
                ),
            ),
            quote(),
        ]);
        let agent = Agent::new(parent.clone(), "You delegate.", tools);
        let token = CancelToken::new();
        let workspace = dir.workspace();
        let context = RunContext::new(&token, &workspace);

        let result = agent.run("Find three things.", &context);
        assert!(result.is_complete(), "{:?}", result.error);
        for prompt in [
            "Where is the timer?",
            "Where is the pool?",
            "Where are the tests?",
        ] {
            assert!(
                result.text.contains(&format!("Answer to: {prompt}")),
                "{prompt:?} missing from:\n{}",
                result.text
            );
        }
        assert!(result.text.contains("3 tasks: 3 completed, 0 did not."));
        assert_eq!(parent.requests()[0].tools, ["task"]);
        assert_eq!(child.requests().len(), 3);

        let result = agent.run("Look outside.", &context);
        assert!(result.is_complete(), "{:?}", result.error);
        let sent = &parent.requests()[3];
        let results: Vec<_> = sent
            .messages
            .last()
            .unwrap()
            .content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::ToolResult(result) => Some(result.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(results.len(), 1);
        assert!(results[0].is_error, "{:?}", results[0]);
        assert!(
            results[0].content.starts_with("Invalid task call: `cwd`:"),
            "{}",
            results[0].content
        );
        assert_eq!(child.requests().len(), 3, "the refused call ran nothing");
    });
}

// ---------------------------------------------------------------------------------------------
// Structured output
// ---------------------------------------------------------------------------------------------

#[test]
fn the_output_serialises_to_structured_json() {
    watchdog(|| {
        let dir = TempDir::new("json");
        let model = scripted([
            ScriptedTurn::tool_call("echo", json!({"text": "x"})),
            ScriptedTurn::text("All done."),
        ]);
        let tool = task_tool(model, echo_only(), &dir);
        let output = tool.call_json(&one("Echo once", "Echo x.", "general-purpose"));
        let value = serde_json::to_value(&output).unwrap();
        assert_eq!(value["is_error"], false);
        assert_eq!(value["error"], Value::Null);
        assert!(value["duration_ms"].is_u64());
        assert_eq!(
            value["usage"]["input_tokens"],
            output.results[0].usage.input_tokens
        );
        let results = value["results"].as_array().unwrap();
        assert_eq!(results.len(), 1);
        let result = &results[0];
        assert_eq!(result["run_id"], json!(output.results[0].run_id));
        assert!(
            result["run_id"]
                .as_str()
                .unwrap()
                .starts_with("general-purpose-")
        );
        assert_eq!(result["status"], "completed");
        assert_eq!(result["answer"], "All done.");
        assert_eq!(result["description"], "Echo once");
        assert_eq!(result["subagent_type"], "general-purpose");
        assert_eq!(result["model"], "scripted:model");
        assert_eq!(result["error"], Value::Null);
        assert_eq!(result["turns"], 2);
        assert_eq!(result["tool_calls"], json!({"echo": 1}));
        assert!(result["usage"]["input_tokens"].as_u64().unwrap() > 0);
        assert!(result["usage"]["output_tokens"].as_u64().unwrap() > 0);
        assert_eq!(result["usage"]["cost_usd"], Value::Null);
        assert!(result["duration_ms"].is_u64());

        let refused = serde_json::to_value(tool.call_json(&json!({}))).unwrap();
        assert_eq!(refused["is_error"], true);
        assert_eq!(refused["results"], json!([]));
        assert!(
            refused["error"]
                .as_str()
                .unwrap()
                .contains("`description` is required"),
            "{refused}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Against the scripted HTTP server
// ---------------------------------------------------------------------------------------------

#[test]
fn a_streamed_openai_run_through_the_tool_has_a_priced_footer() {
    watchdog(|| {
        let dir = TempDir::new("openai");
        let server = LlmServer::start();
        server.push(openai_stream_text(
            &["The timer ", "lives in timer.rs."],
            true,
        ));
        let mut http = HttpOptions::default();
        http.stall_timeout = Duration::from_secs(5);
        http.connect_timeout = Duration::from_secs(2);
        let model = ModelConfig::parse("openai:gpt-4.1-mini")
            .unwrap()
            .api_key("sk-test-secret")
            .base_url(server.base_url() + "/v1")
            .http(http)
            .stream(true)
            .build()
            .unwrap();
        let subagents = Subagents::new(model, builtin_tools()).transcripts(Transcripts::Off);
        let tool = TaskTool::new(Runtime::new().unwrap(), subagents, dir.workspace());
        let output = tool.call_json(&one("Find the timer", "Where is the timer?", "explore"));
        assert!(!output.is_error, "{}", output.to_text());
        let result = &output.results[0];
        assert_eq!(result.answer, "The timer lives in timer.rs.");
        assert_eq!(result.model.as_deref(), Some("openai:gpt-4.1-mini"));
        assert_eq!(result.turns, 1);
        assert_eq!(result.usage.input_tokens, STREAM_USAGE.input);
        assert_eq!(result.usage.output_tokens, STREAM_USAGE.output);
        let cost = result.usage.cost_usd.expect("gpt-4.1-mini has a price");
        let expected = (STREAM_USAGE.input as f64 * 0.4 + STREAM_USAGE.output as f64 * 1.6) / 1e6;
        assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
        assert_eq!(output.usage.cost_usd, Some(cost));
        let footer = result.footer();
        assert!(
            footer.contains(&format!(
                " · openai:gpt-4.1-mini · 1 turn · {} in / {} out tokens · $0.0000 · ",
                STREAM_USAGE.input, STREAM_USAGE.output
            )),
            "{footer}"
        );
        assert_eq!(
            output.to_text(),
            format!("The timer lives in timer.rs.\n\n{footer}")
        );

        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        let body = requests[0].json();
        assert_eq!(body["stream"], true);
        assert_eq!(body["model"], "gpt-4.1-mini");
        let offered: Vec<&str> = body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tool| tool["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(offered, READ_ONLY);
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.last().unwrap()["content"], "Where is the timer?");
    });
}

// ---------------------------------------------------------------------------------------------
// Bugs (these fail until src/ is fixed; see each test's comment)
// ---------------------------------------------------------------------------------------------

/// Resuming one run with a list of models would start two runs under one id, appending to
/// one transcript; such a call is refused.
#[test]
fn resuming_one_run_with_several_models_is_refused() {
    watchdog(|| {
        let dir = TempDir::new("bug-resume-models");
        let default = scripted([ScriptedTurn::text("First answer.")]);
        let a = Arc::new(ScriptedModel::new([ScriptedTurn::text("a goes on.")]).named("a"));
        let b = Arc::new(ScriptedModel::new([ScriptedTurn::text("b goes on.")]).named("b"));
        let calls = Arc::new(AtomicUsize::new(0));
        let subagents =
            Subagents::new(default, builtin_tools()).model_resolver(resolver_for(&a, &b, &calls));
        let tool = TaskTool::new(Runtime::new().unwrap(), subagents, dir.workspace());
        let first = tool.call_json(&one("Look around", "Find the tests.", "explore"));
        assert!(!first.is_error, "{}", first.to_text());
        let run_id = first.results[0].run_id.clone().unwrap();

        let output = tool.call_json(&json!({
            "description": "Go on with both",
            "prompt": "Go on.",
            "subagent_type": "explore",
            "model": ["openai:a", "openai:b"],
            "resume": run_id,
        }));
        let refused = output.error.is_some();
        let ids: Vec<_> = output.results.iter().map(|r| r.run_id.clone()).collect();
        let distinct = ids.len() == 2 && ids[0] != ids[1];
        let store = subtask::transcript::default_dir(dir.workspace().root()).unwrap();
        let _cleanup = support::RemoveOnDrop(store.clone());
        let conversation = TranscriptStore::new(&store).messages(&run_id).unwrap();
        let turns: Vec<String> = conversation
            .iter()
            .map(|message| format!("{:?}: {}", message.role, message.text()))
            .collect();
        assert!(
            refused || distinct,
            "two runs resumed one run under one id {ids:?}; its transcript now reads {turns:#?}"
        );
    });
}

/// A run started with `cwd` keeps its transcript under the tool's workspace, so the id from
/// its footer alone resumes it, in the same `cwd`.
#[test]
fn a_run_started_with_cwd_is_resumed_by_its_id_alone() {
    watchdog(|| {
        let dir = TempDir::new("bug-resume-cwd");
        dir.write("sub/file.txt", "x");
        let model = scripted([ScriptedTurn::text("Looked."), ScriptedTurn::text("Again.")]);
        let subagents = Subagents::new(model, builtin_tools());
        let tool = TaskTool::new(Runtime::new().unwrap(), subagents, dir.workspace());
        let first = tool.call_json(&with(
            one("Look in sub", "Look.", "explore"),
            "cwd",
            json!("sub"),
        ));
        assert!(!first.is_error, "{}", first.to_text());
        let run_id = first.results[0].run_id.clone().unwrap();
        let again = tool.call_json(&with(
            one("Look again", "Again.", "explore"),
            "resume",
            json!(run_id),
        ));
        assert!(!again.is_error, "resume by id failed: {}", again.to_text());
    });
}

/// A timeout too small to be a timeout is an invalid call naming the field, not a run the
/// runtime then refuses.
#[test]
fn a_timeout_under_a_millisecond_is_an_invalid_call() {
    watchdog(|| {
        let dir = TempDir::new("bug-timeout");
        let tool = task_tool(scripted([]), builtin_tools(), &dir);
        let output = tool.call_json(&with(
            one("Be quick", "Quick.", "explore"),
            "timeout_seconds",
            json!(1e-10),
        ));
        assert!(
            output.error.is_some(),
            "accepted, then refused at submit: {}",
            output.to_text()
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Attacks: planted transcripts, scripted models, nesting
// ---------------------------------------------------------------------------------------------

/// Transcript lines for run `evil` whose start line names `workspace`.
fn planted_transcript(workspace: &str) -> String {
    [
        json!({"type": "start", "run_id": "evil", "subagent": "explore", "model": "m",
               "started_at": 1, "workspace": workspace}),
        json!({"type": "message", "message": {"role": "user", "content": [{"type": "text", "text": "hi"}]}}),
        json!({"type": "message", "message": {"role": "assistant", "content": [{"type": "text", "text": "hello"}]}}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n")
}

/// Even with transcripts kept inside the workspace by the host's choice, a planted one
/// that names `<workspace>/../../..`, another directory, or a symlink is refused before
/// anything runs; one naming a directory inside the workspace resumes there.
#[test]
fn a_planted_transcript_cannot_move_a_resumed_run_out_of_its_workspace() {
    watchdog(|| {
        let dir = TempDir::new("planted");
        let elsewhere = TempDir::new("planted-elsewhere");
        dir.write("sub/inner.txt", "inside");
        let root = dir.workspace().root().to_path_buf();
        let store = root.join(".transcripts");
        let model = scripted([
            ScriptedTurn::tool_call("ls", json!({"path": "."})),
            ScriptedTurn::text("Listed."),
        ]);
        let subagents = Subagents::new(model.clone(), builtin_tools())
            .transcripts(Transcripts::In(store.clone()));
        let tool = TaskTool::new(Runtime::new().unwrap(), subagents, dir.workspace());
        let resume = || {
            tool.call_json(&with(
                one("Resume it", "List the directory.", "explore"),
                "resume",
                json!("evil"),
            ))
        };
        for target in [
            format!("{}/../../..", root.display()),
            "/".to_string(),
            elsewhere.path().display().to_string(),
            format!("{}/sub/../..", root.display()),
        ] {
            dir.write(".transcripts/evil.jsonl", planted_transcript(&target));
            assert_invalid(&resume(), &["`resume`:", "cannot be resumed here", &target]);
        }
        // A transcript that is a symlink (to one that would be accepted) is not followed.
        let real = elsewhere.write(
            "real.jsonl",
            planted_transcript(&root.display().to_string()),
        );
        std::fs::remove_file(store.join("evil.jsonl")).unwrap();
        std::os::unix::fs::symlink(&real, store.join("evil.jsonl")).unwrap();
        assert_invalid(&resume(), &["`resume`:", "cannot be used"]);
        assert!(model.requests().is_empty(), "nothing ran");

        // Inside the workspace is fine: the run resumes in `sub`.
        std::fs::remove_file(store.join("evil.jsonl")).unwrap();
        dir.write(
            ".transcripts/evil.jsonl",
            planted_transcript(&format!("{}/sub", root.display())),
        );
        let output = resume();
        assert!(!output.is_error, "{}", output.to_text());
        let listing = &model.requests()[1].messages;
        let listed = format!("{listing:?}");
        assert!(listed.contains("inner.txt"), "ran in sub/: {listed}");
    });
}

/// A `task` call's `model` cannot name a scripted model: the default resolver would play a
/// script file, which the calling model may just have written.
#[test]
fn a_task_call_cannot_choose_a_scripted_model() {
    let dir = TempDir::new("scripted-arg");
    dir.write("model.json", r#"[{"text": "pwned"}]"#);
    let model = scripted([ScriptedTurn::text("unused")]);
    let tool = task_tool(model.clone(), echo_only(), &dir);
    let output = tool.call_json(&with(
        one("Use my model", "Hi.", "general-purpose"),
        "model",
        json!(format!(
            "scripted:{}",
            dir.path().join("model.json").display()
        )),
    ));
    assert_invalid(&output, &["`model`:", "script file", "SUBTASK_MODEL"]);
    assert!(model.requests().is_empty());
}

/// With `max_depth(1)`, a subagent the host started gets a `task` tool; the runs it starts
/// are one level deeper and get none, and a `task` tool that reaches them anyway (a host
/// tool shared by every level) refuses to go deeper.
#[test]
fn nesting_depth_is_counted_and_bounded() {
    watchdog(|| {
        let dir = TempDir::new("nesting");
        let model = scripted([
            // The host's subagent (depth 0) delegates.
            ScriptedTurn::tool_call(
                "task",
                one("Go deeper", "Find it for me.", "general-purpose"),
            ),
            // Its child (depth 1) tries to delegate again: it has no task tool.
            ScriptedTurn::tool_call("task", one("Deeper still", "And again.", "general-purpose")),
            ScriptedTurn::text("Child: found it myself."),
            ScriptedTurn::text("Parent: the child found it."),
        ]);
        let subagents = Subagents::new(model.clone(), echo_only())
            .transcripts(Transcripts::Off)
            .max_depth(1);
        let tool = TaskTool::new(Runtime::new().unwrap(), subagents.clone(), dir.workspace());
        let output = tool.call_json(&one("Delegate", "Find it.", "general-purpose"));
        assert!(!output.is_error, "{}", output.to_text());
        assert_eq!(output.results[0].answer, "Parent: the child found it.");
        let requests = model.requests();
        assert_eq!(requests.len(), 4);
        assert!(
            requests[0].tools.iter().any(|name| name == "task"),
            "depth 0 may nest"
        );
        assert!(
            !requests[1].tools.iter().any(|name| name == "task"),
            "depth 1 may not"
        );
        let refused = format!("{:?}", requests[2].messages.last().unwrap());
        assert!(refused.contains("task"), "{refused}");
        assert!(
            format!("{:?}", requests[3].messages).contains("Child: found it myself."),
            "the child's answer reached the parent"
        );

        // A host's own task tool handed to subagents counts depth from the caller.
        let token = CancelToken::new();
        let processes = subtask::tools::ProcessGroups::new(&token);
        let workspace = dir.workspace();
        let context = ToolContext::new(&workspace, &token, &processes);
        let deep = context.with_subagent_depth(Some(1));
        let error = Tool::call(&tool, &one("Deeper", "Go.", "general-purpose"), &deep)
            .expect_err("refused at depth 1 of 1");
        assert!(
            error.message().contains("may not start subagents"),
            "{error}"
        );
        assert_eq!(model.requests().len(), 4, "nothing ran");

        // With no nesting allowed (the default), subagents get no task tool at all.
        let flat = scripted([ScriptedTurn::text("Flat.")]);
        let tool = task_tool(flat.clone(), echo_only(), &dir);
        assert!(
            !tool
                .call_json(&one("Flat", "Go.", "general-purpose"))
                .is_error
        );
        assert!(!flat.requests()[0].tools.iter().any(|name| name == "task"));
    });
}

// ---------------------------------------------------------------------------------------------
// isolation: worktree
// ---------------------------------------------------------------------------------------------

/// Runs `git` in `dir` and returns its stdout, failing the test on an error.
#[track_caller]
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=test", "-c", "user.email=test@localhost"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A repository in `dir` with `notes.txt` committed.
fn repository(dir: &TempDir) {
    dir.write("notes.txt", "first line\n");
    git(dir.path(), &["init", "--quiet", "--initial-branch=main"]);
    git(dir.path(), &["add", "notes.txt"]);
    git(dir.path(), &["commit", "--quiet", "-m", "start"]);
}

/// A writer type whose runs each work in a worktree of their own.
fn isolated_writers(model: Arc<ScriptedModel>, dir: &TempDir) -> TaskTool {
    let mut types = SubagentRegistry::builtin();
    types
        .register(
            SubagentSpec::new("writer", "Writes notes.", "You write.")
                .isolation(Isolation::Worktree),
        )
        .unwrap();
    let subagents = Subagents::new(model, builtin_tools())
        .types(types)
        .transcripts(Transcripts::Off);
    TaskTool::new(Runtime::new().unwrap(), subagents, dir.workspace())
}

/// Two writing runs edit the same file at once, each in its own worktree: both changes are
/// kept, committed on their own branches, named in the footers; the workspace is untouched.
#[test]
fn isolated_runs_write_the_same_file_on_their_own_branches() {
    watchdog(|| {
        let dir = TempDir::new("worktrees");
        repository(&dir);
        // Each run writes its prompt into notes.txt, then answers.
        let decide = || {
            ScriptedTurn::reply(|sent| match sent.messages.len() {
                1 => ScriptedTurn::tool_call(
                    "write",
                    json!({"path": "notes.txt", "content": format!("{}\n", prompt_of(sent))}),
                ),
                _ => ScriptedTurn::text("Written."),
            })
        };
        let model = scripted([decide(), decide(), decide(), decide()]);
        let tool = isolated_writers(model, &dir);
        let output = tool.call_json(&json!({"tasks": [
            one("Write alpha", "alpha", "writer"),
            one("Write beta", "beta", "writer"),
        ]}));
        assert!(!output.is_error, "{}", output.to_text());
        let mut cleanup = Vec::new();
        for (result, word) in output.results.iter().zip(["alpha", "beta"]) {
            let kept = result.worktree.as_ref().expect("a kept worktree");
            cleanup.push(support::RemoveOnDrop(kept.path.clone()));
            let run_id = result.run_id.as_deref().unwrap();
            assert_eq!(kept.branch, format!("subtask/{run_id}"));
            assert!(!kept.path.starts_with(dir.path()), "outside the workspace");
            assert!(
                result.footer().contains(&format!(
                    "changes on branch {} in {}",
                    kept.branch,
                    kept.path.display()
                )),
                "{}",
                result.footer()
            );
            // The branch holds the run's change as one commit by subtask.
            let file = git(dir.path(), &["show", &format!("{}:notes.txt", kept.branch)]);
            assert_eq!(file, format!("{word}\n"));
            let author = git(dir.path(), &["log", "-1", "--format=%an", &kept.branch]);
            assert_eq!(author.trim(), "subtask");
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
            "first line\n",
            "the workspace itself is untouched"
        );
        assert_eq!(git(dir.path(), &["status", "--porcelain"]), "");

        // The refusal of several models on a writing task is lifted for isolated types.
        let a = Arc::new(ScriptedModel::new([ScriptedTurn::text("a")]).named("a"));
        let b = Arc::new(ScriptedModel::new([ScriptedTurn::text("b")]).named("b"));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut types = SubagentRegistry::builtin();
        types
            .register(SubagentSpec::new("writer", "Writes.", "W.").isolation(Isolation::Worktree))
            .unwrap();
        let subagents = Subagents::new(scripted([]), builtin_tools())
            .types(types)
            .transcripts(Transcripts::Off)
            .model_resolver(resolver_for(&a, &b, &calls));
        let tool = TaskTool::new(Runtime::new().unwrap(), subagents, dir.workspace());
        let output = tool.call_json(&with(
            one("Ask both", "Nothing to change.", "writer"),
            "models",
            json!(["openai:a", "openai:b"]),
        ));
        assert!(!output.is_error, "{}", output.to_text());
        // Runs that changed nothing leave no worktree and no branch behind.
        for result in &output.results {
            assert!(result.worktree.is_none());
            assert!(!result.footer().contains("changes on branch"));
        }
        let branches = git(dir.path(), &["branch", "--list", "subtask/*"]);
        assert_eq!(
            branches.lines().count(),
            2,
            "only the two writers' branches: {branches}"
        );
        let worktrees = git(dir.path(), &["worktree", "list", "--porcelain"]);
        assert_eq!(worktrees.matches("worktree ").count(), 3, "{worktrees}");
    });
}

/// A repository whose own config names a command git would run while making the worktree
/// (a filter driver, an fsmonitor) is refused, and so is a workspace outside git.
#[test]
fn isolation_refuses_a_repository_that_would_run_commands() {
    watchdog(|| {
        let dir = TempDir::new("worktree-hostile");
        repository(&dir);
        dir.write(".gitattributes", "*.txt filter=evil\n");
        git(dir.path(), &["add", ".gitattributes"]);
        git(dir.path(), &["commit", "--quiet", "-m", "attributes"]);
        git(
            dir.path(),
            &["config", "filter.evil.smudge", "touch pwned; cat"],
        );
        let model = scripted([ScriptedTurn::text("unused")]);
        let tool = isolated_writers(model.clone(), &dir);
        let output = tool.call_json(&one("Write", "Write something.", "writer"));
        assert!(output.is_error);
        let error = output.results[0].error.as_deref().unwrap();
        assert!(error.contains("filter.evil.smudge"), "{error}");
        assert!(!dir.path().join("pwned").exists(), "the filter ran");
        assert!(model.requests().is_empty());
        assert_eq!(git(dir.path(), &["branch", "--list", "subtask/*"]), "");

        let plain = TempDir::new("worktree-no-git");
        let tool = isolated_writers(scripted([]), &plain);
        let output = tool.call_json(&one("Write", "Write something.", "writer"));
        let error = output.results[0].error.as_deref().unwrap();
        assert!(error.contains("needs the workspace"), "{error}");
    });
}

/// A call's trace context (an MCP request's `traceparent`) is on every event of its runs, so
/// a host can tie the runs' events to the request that caused them.
#[test]
fn a_calls_trace_context_is_on_every_event_of_its_runs() {
    watchdog(|| {
        let dir = TempDir::new("trace");
        let model = scripted([
            ScriptedTurn::tool_call("echo", json!({"text": "a"})),
            ScriptedTurn::text("Done."),
        ]);
        let tool = task_tool(model, echo_only(), &dir);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let options = {
            let seen = seen.clone();
            CallOptions::new()
                .trace(traceparent)
                .observer(move |event: &subtask::Event| {
                    seen.lock()
                        .unwrap()
                        .push((event.kind.name(), event.trace.clone()));
                })
        };
        let output = tool.call_json_with(&one("Echo", "Echo a.", "general-purpose"), &options);
        assert!(!output.is_error, "{}", output.to_text());
        // The observer's mailbox may still be delivering: wait for the terminal event.
        assert!(wait_until(PATIENCE, || {
            seen.lock()
                .unwrap()
                .iter()
                .any(|(kind, _)| *kind == "finished")
        }));
        let seen = seen.lock().unwrap();
        assert!(seen.len() >= 4, "{seen:?}");
        for (kind, trace) in seen.iter() {
            assert_eq!(trace.as_deref(), Some(traceparent), "{kind}");
        }
        // Without one, events carry none.
        let model = scripted([ScriptedTurn::text("Done.")]);
        let tool = task_tool(model, echo_only(), &dir);
        let (sender, receiver) = bounded(64);
        let options = CallOptions::new().observer(move |event: &subtask::Event| {
            let _ = sender.send(event.trace.clone());
        });
        assert!(
            !tool
                .call_json_with(&one("Echo", "Hi.", "general-purpose"), &options)
                .is_error
        );
        assert_eq!(receiver.recv_timeout(PATIENCE).unwrap(), None);
    });
}
