//! The agent loop against a [`ScriptedModel`] and small test tools: tool results fed back,
//! parallel and serial tool calls, every limit, every tool failure, infrastructure failure,
//! progress events, transcripts, and resuming a conversation.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use crossbeam_channel::bounded;
use serde_json::{Value, json};
use subtask::agent::{Agent, AgentLimits, AgentResult, AgentStop, RunContext};
use subtask::llm::{
    ContentBlock, Message, Price, Role, ScriptedModel, ScriptedTurn, SentRequest, ToolInput,
    ToolResult, ToolUse,
};
use subtask::tools::{Tool, ToolContext, ToolRegistry, builtin_tools};
use subtask::transcript::{Entry, TranscriptStore};
use subtask::{CancelToken, Error, ErrorKind, Progress};
use support::{PATIENCE, TempDir, ms, wait_until, watchdog};

const SYSTEM: &str = "You are a test agent.";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type Call = dyn Fn(&Value, &ToolContext<'_>) -> Result<String, Error> + Send + Sync;

/// A tool made of a name, a schema and a closure.
struct TestTool {
    name: &'static str,
    parameters: Value,
    call: Box<Call>,
}

impl Tool for TestTool {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "a test tool"
    }
    fn parameters(&self) -> Value {
        self.parameters.clone()
    }
    fn call(&self, input: &Value, context: &ToolContext<'_>) -> Result<String, Error> {
        (self.call)(input, context)
    }
}

fn tool(
    name: &'static str,
    parameters: Value,
    call: impl Fn(&Value, &ToolContext<'_>) -> Result<String, Error> + Send + Sync + 'static,
) -> Arc<dyn Tool> {
    Arc::new(TestTool {
        name,
        parameters,
        call: Box::new(call),
    })
}

fn any_object() -> Value {
    json!({"type": "object"})
}

/// `echo {text}` answers `echo: <text>`.
fn echo() -> Arc<dyn Tool> {
    tool(
        "echo",
        json!({
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"]
        }),
        |input, _| {
            Ok(format!(
                "echo: {}",
                input["text"].as_str().unwrap_or_default()
            ))
        },
    )
}

/// `echo` that also counts its calls.
fn counted_echo(calls: Arc<AtomicUsize>) -> Arc<dyn Tool> {
    let inner = echo();
    tool("echo", inner.parameters(), move |input, context| {
        calls.fetch_add(1, Ordering::SeqCst);
        inner.call(input, context)
    })
}

const FAIL_MESSAGE: &str = "the disk is on fire; try another path";

/// Always fails the way a tool should: `Error::tool`.
fn fail() -> Arc<dyn Tool> {
    tool("fail", any_object(), |_, _| Err(Error::tool(FAIL_MESSAGE)))
}

/// Always panics.
fn panics() -> Arc<dyn Tool> {
    tool("panic", any_object(), |_, _| panic!("boom in the tool"))
}

/// Takes exactly one integer `count` of at least 1.
fn strict() -> Arc<dyn Tool> {
    tool(
        "strict",
        json!({
            "type": "object",
            "properties": {"count": {"type": "integer", "minimum": 1}},
            "required": ["count"],
            "additionalProperties": false
        }),
        |input, _| Ok(format!("counted {}", input["count"])),
    )
}

fn registry(tools: impl IntoIterator<Item = Arc<dyn Tool>>) -> ToolRegistry {
    let mut registry = ToolRegistry::new();
    for tool in tools {
        registry.register(tool).expect("register a test tool");
    }
    registry
}

fn call(name: &str, arguments: Value) -> (String, Value) {
    (name.to_string(), arguments)
}

fn scripted(turns: impl IntoIterator<Item = ScriptedTurn>) -> Arc<ScriptedModel> {
    Arc::new(ScriptedModel::new(turns))
}

fn agent(model: &Arc<ScriptedModel>, tools: ToolRegistry) -> Agent {
    Agent::new(model.clone(), SYSTEM, tools)
}

fn limits(change: impl FnOnce(&mut AgentLimits)) -> AgentLimits {
    let mut limits = AgentLimits::default();
    change(&mut limits);
    limits
}

/// Runs `agent` on `prompt` with a fresh token in a throwaway workspace.
fn run(agent: &Agent, prompt: &str) -> AgentResult {
    let dir = TempDir::new("run");
    let workspace = dir.workspace();
    let token = CancelToken::new();
    agent.run(prompt, &RunContext::new(&token, &workspace))
}

/// The tool results of the last message of a request (the answers to the previous turn).
fn results_in(request: &SentRequest) -> Vec<ToolResult> {
    let last = request.messages.last().expect("a request has messages");
    assert_eq!(last.role, Role::User, "{last:?}");
    last.content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::ToolResult(result) => Some(result.clone()),
            _ => None,
        })
        .collect()
}

/// Plays `turn`, then a text answer; returns the run and the one tool result the model got.
fn one_call(tools: ToolRegistry, turn: ScriptedTurn) -> (AgentResult, ToolResult) {
    let model = scripted([turn, ScriptedTurn::text("I recovered.")]);
    let result = run(&agent(&model, tools), "Go.");
    let requests = model.requests();
    assert_eq!(requests.len(), 2, "{:?}", result.messages);
    let results = results_in(&requests[1]);
    assert_eq!(results.len(), 1, "{results:?}");
    let first_call = requests[1].messages[1]
        .tool_uses()
        .next()
        .expect("the assistant's tool call")
        .id
        .clone();
    assert_eq!(results[0].tool_use_id, first_call);
    assert_eq!(
        result.stop_reason,
        AgentStop::Completed,
        "{:?}",
        result.error
    );
    assert_eq!(result.text, "I recovered.");
    (result, results[0].clone())
}

fn all_tools() -> ToolRegistry {
    registry([echo(), fail(), panics(), strict()])
}

/// The ScriptedModel's token estimate: about four characters a token.
fn estimate(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// The output tokens the ScriptedModel reports for an assistant message.
fn output_tokens(message: &Message) -> u64 {
    estimate(&serde_json::to_string(message).unwrap())
}

/// The assistant message a `ScriptedTurn::tool_call(name, arguments)` produces as its `n`th
/// tool call of the model.
fn scripted_call_message(n: u64, name: &str, arguments: Value) -> Message {
    Message {
        role: Role::Assistant,
        content: vec![ContentBlock::ToolUse(ToolUse {
            id: format!("toolu_scripted_{n}"),
            name: name.to_string(),
            input: ToolInput::Json { value: arguments },
            extra: None,
        })],
    }
}

/// Progress without the timing: `turn 1`, `start echo 'hi'`, `done echo 'hi' ok`.
fn describe(progress: &Progress) -> Option<String> {
    Some(match progress {
        Progress::TurnStarted { turn } => format!("turn {turn}"),
        Progress::ToolStarted { tool, summary } => format!("start {tool} {summary}"),
        Progress::ToolFinished {
            tool,
            summary,
            is_error,
            ..
        } => format!(
            "done {tool} {summary} {}",
            if *is_error { "error" } else { "ok" }
        ),
        _ => return None, // model deltas are throttled: whether one comes is timing
    })
}

// ---------------------------------------------------------------------------------------------
// The loop
// ---------------------------------------------------------------------------------------------

#[test]
fn a_tool_result_is_fed_back_and_the_final_text_is_the_answer() {
    let model = scripted([
        ScriptedTurn::tool_call("echo", json!({"text": "hi"})),
        ScriptedTurn::text("The tool said hi."),
    ]);
    let result = run(
        &agent(&model, registry([echo()])),
        "Say hi through the tool.",
    );

    assert_eq!(result.text, "The tool said hi.");
    assert_eq!(result.stop_reason, AgentStop::Completed);
    assert!(result.is_complete());
    assert!(result.error.is_none(), "{:?}", result.error);

    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].system, SYSTEM);
    assert_eq!(requests[0].tools, ["echo"]);
    assert_eq!(
        requests[0].max_tokens,
        AgentLimits::default().max_tokens_per_turn
    );
    assert_eq!(
        requests[0].messages,
        [Message::user("Say hi through the tool.")]
    );

    // The second request: prompt, the assistant's tool_use, a user tool_result with the output.
    let second = &requests[1].messages;
    assert_eq!(second.len(), 3, "{second:?}");
    assert_eq!(second[1].role, Role::Assistant);
    let calls: Vec<&ToolUse> = second[1].tool_uses().collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "echo");
    assert_eq!(
        calls[0].input,
        ToolInput::Json {
            value: json!({"text": "hi"})
        }
    );
    assert_eq!(
        second[2],
        Message {
            role: Role::User,
            content: vec![ContentBlock::ToolResult(ToolResult {
                tool_use_id: calls[0].id.clone(),
                content: "echo: hi".into(),
                is_error: false,
            })],
        }
    );

    // The whole conversation, prompt first.
    let mut expected = second.clone();
    expected.push(Message::assistant("The tool said hi."));
    assert_eq!(result.messages, expected);

    // Usage: turns, calls per tool, tokens summed over both turns, time.
    assert_eq!(result.usage.turns, 2);
    assert_eq!(
        result.usage.tool_calls,
        BTreeMap::from([("echo".to_string(), 1)])
    );
    let input: u64 = requests
        .iter()
        .map(|sent| {
            estimate(&serde_json::to_string(&sent.messages).unwrap()) + estimate(&sent.system)
        })
        .sum();
    let output: u64 = result
        .messages
        .iter()
        .filter(|message| message.role == Role::Assistant)
        .map(output_tokens)
        .sum();
    assert_eq!(result.usage.tokens.input_tokens, input);
    assert_eq!(result.usage.tokens.output_tokens, output);
    assert_eq!(result.usage.tokens.cost_usd, None, "no price, no cost");
    assert!(result.usage.wall_time > Duration::ZERO);
}

#[test]
fn calls_of_one_turn_run_at_once_and_their_results_keep_call_order() {
    watchdog(|| {
        // Three calls that each wait for the other two: only parallel calls get through.
        let barrier = Arc::new(Barrier::new(3));
        let meet = tool(
            "meet",
            json!({"type": "object", "properties": {"who": {"type": "string"}}}),
            move |input, _| {
                barrier.wait();
                Ok(format!("met {}", input["who"].as_str().unwrap()))
            },
        );
        let model = scripted([
            ScriptedTurn::tool_calls(["a", "b", "c"].map(|who| call("meet", json!({"who": who})))),
            ScriptedTurn::text("All met."),
        ]);
        let result = run(&agent(&model, registry([meet])), "Meet.");
        assert_eq!(
            result.stop_reason,
            AgentStop::Completed,
            "{:?}",
            result.error
        );
        assert_eq!(result.usage.tool_calls["meet"], 3);

        let requests = model.requests();
        let ids: Vec<String> = requests[1].messages[1]
            .tool_uses()
            .map(|call| call.id.clone())
            .collect();
        let results = results_in(&requests[1]);
        let answered: Vec<(&str, &str)> = results
            .iter()
            .map(|result| (result.tool_use_id.as_str(), result.content.as_str()))
            .collect();
        assert_eq!(
            answered,
            [
                (ids[0].as_str(), "met a"),
                (ids[1].as_str(), "met b"),
                (ids[2].as_str(), "met c")
            ]
        );
    });
}

#[test]
fn parallel_tools_one_runs_the_calls_one_after_another() {
    watchdog(|| {
        let active = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let step = {
            let (active, most, log) = (active.clone(), most.clone(), log.clone());
            tool("step", any_object(), move |input, _| {
                let name = input["name"].as_str().unwrap().to_string();
                log.lock().unwrap().push(format!("start {name}"));
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // Give a concurrent call every chance to show up.
                wait_until(ms(30), || active.load(Ordering::SeqCst) > 1);
                active.fetch_sub(1, Ordering::SeqCst);
                log.lock().unwrap().push(format!("end {name}"));
                Ok(name)
            })
        };
        let model = scripted([
            ScriptedTurn::tool_calls(
                ["a", "b", "c"].map(|name| call("step", json!({"name": name}))),
            ),
            ScriptedTurn::text("Done."),
        ]);
        let agent = agent(&model, registry([step])).with_limits(limits(|l| l.parallel_tools = 1));
        let result = run(&agent, "Step.");
        assert_eq!(result.stop_reason, AgentStop::Completed);
        assert_eq!(most.load(Ordering::SeqCst), 1, "{:?}", log.lock().unwrap());
        assert_eq!(
            *log.lock().unwrap(),
            ["start a", "end a", "start b", "end b", "start c", "end c"]
        );
        let contents: Vec<String> = results_in(&model.requests()[1])
            .into_iter()
            .map(|result| result.content)
            .collect();
        assert_eq!(contents, ["a", "b", "c"]);
    });
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

#[test]
fn max_turns_ends_the_run_with_the_last_text_the_model_wrote() {
    let step = |text: &str| ScriptedTurn::ToolCalls {
        text: text.to_string(),
        calls: vec![call("echo", json!({"text": "again"}))],
    };
    let model = scripted([
        step("Looking at one."),
        step("Looking at two."),
        step(""),
        step("never played"),
        step("never played"),
    ]);
    let agent = agent(&model, registry([echo()])).with_limits(limits(|l| l.max_turns = 3));
    let result = run(&agent, "Loop forever.");
    assert_eq!(result.stop_reason, AgentStop::MaxTurns);
    assert!(!result.is_complete());
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_eq!(model.requests().len(), 3);
    assert_eq!(model.remaining(), 2);
    assert_eq!(result.usage.turns, 3);
    assert_eq!(result.usage.tool_calls["echo"], 3);
    // The third turn wrote no text: the best answer is the last non-empty one.
    assert_eq!(result.text, "Looking at two.");
    // Prompt + three (call, result) pairs; the last call was answered.
    assert_eq!(result.messages.len(), 7);
    assert_eq!(results_in_last(&result)[0].content, "echo: again");
}

fn results_in_last(result: &AgentResult) -> Vec<ToolResult> {
    results_in(&SentRequest {
        system: String::new(),
        messages: result.messages.clone(),
        tools: Vec::new(),
        max_tokens: 0,
    })
}

#[test]
fn max_output_tokens_ends_the_run_once_the_turns_together_reach_it() {
    let arguments = json!({"text": "x"});
    let first = output_tokens(&scripted_call_message(1, "echo", arguments.clone()));
    let second = output_tokens(&scripted_call_message(2, "echo", arguments.clone()));
    let echoes = Arc::new(AtomicUsize::new(0));
    let model = scripted((0..5).map(|_| ScriptedTurn::tool_call("echo", arguments.clone())));
    let agent = agent(&model, registry([counted_echo(echoes.clone())]))
        .with_limits(limits(|l| l.max_output_tokens = Some(first + second)));
    let result = run(&agent, "Loop.");
    assert_eq!(result.stop_reason, AgentStop::MaxOutputTokens);
    assert_eq!(model.requests().len(), 2, "not reached after one turn");
    assert_eq!(result.usage.tokens.output_tokens, first + second);
    // The calls of the turn that reached the limit do not run; they get error results.
    assert_eq!(echoes.load(Ordering::SeqCst), 1);
    let unrun = results_in_last(&result);
    assert_eq!(unrun.len(), 1);
    assert!(unrun[0].is_error);
    assert!(
        unrun[0].content.contains("not run") && unrun[0].content.contains("max_output_tokens"),
        "{}",
        unrun[0].content
    );
}

/// A run's cost is the sum of its turns' costs (it starts known, at zero).
#[test]
fn a_priced_model_gives_the_run_its_summed_cost() {
    let price = Price {
        input: 0.0,
        output: 1_000_000.0,
        cache_read: 0.0,
        cache_write: 0.0,
    };
    let model = Arc::new(
        ScriptedModel::new([
            ScriptedTurn::tool_call("echo", json!({"text": "x"})),
            ScriptedTurn::text("Done."),
        ])
        .price(price),
    );
    let result = run(&agent(&model, registry([echo()])), "Spend.");
    assert_eq!(result.stop_reason, AgentStop::Completed);
    let output = result.usage.tokens.output_tokens;
    assert!(output > 0);
    assert_eq!(result.usage.tokens.cost_usd, Some(output as f64));
}

#[test]
fn max_cost_ends_the_run_once_the_turns_together_reach_it() {
    let arguments = json!({"text": "x"});
    let first = output_tokens(&scripted_call_message(1, "echo", arguments.clone()));
    let second = output_tokens(&scripted_call_message(2, "echo", arguments.clone()));
    // A dollar per output token, input free: the cost is the output token count.
    let price = Price {
        input: 0.0,
        output: 1_000_000.0,
        cache_read: 0.0,
        cache_write: 0.0,
    };
    let model = Arc::new(
        ScriptedModel::new((0..5).map(|_| ScriptedTurn::tool_call("echo", arguments.clone())))
            .price(price),
    );
    let agent = agent(&model, registry([echo()]))
        .with_limits(limits(|l| l.max_cost_usd = Some((first + second) as f64)));
    let result = run(&agent, "Spend.");
    assert_eq!(
        result.stop_reason,
        AgentStop::MaxCost,
        "cost {:?} after {} turns",
        result.usage.tokens.cost_usd,
        result.usage.turns
    );
    assert_eq!(model.requests().len(), 2);
    assert_eq!(result.usage.tokens.cost_usd, Some((first + second) as f64));
    let unrun = results_in_last(&result);
    assert!(
        unrun[0].is_error && unrun[0].content.contains("max_cost"),
        "{unrun:?}"
    );
}

#[test]
fn the_deadline_ends_a_stalled_model_call_as_timed_out() {
    watchdog(|| {
        let model = scripted([
            ScriptedTurn::ToolCalls {
                text: "Checking.".into(),
                calls: vec![call("echo", json!({"text": "a"}))],
            },
            ScriptedTurn::Stall,
            ScriptedTurn::text("never"),
        ]);
        let dir = TempDir::new("deadline");
        let workspace = dir.workspace();
        let token = CancelToken::with_timeout(ms(300));
        let result =
            agent(&model, registry([echo()])).run("Hang.", &RunContext::new(&token, &workspace));
        assert_eq!(result.stop_reason, AgentStop::TimedOut);
        let error = result.error.expect("a timed-out run carries its error");
        assert_eq!(error.kind(), ErrorKind::Timeout);
        assert_eq!(model.requests().len(), 2);
        assert_eq!(model.remaining(), 1);
        assert_eq!(result.text, "Checking.");
        assert!(result.usage.wall_time >= ms(300));
    });
}

#[test]
fn a_cancel_during_a_tool_call_stops_the_next_tool_call_and_the_next_model_call() {
    watchdog(|| {
        let (started, started_rx) = bounded(1);
        let slow = tool("slow", any_object(), move |_, context| {
            let _ = started.send(());
            context.token().sleep(PATIENCE * 2)?;
            Ok("slept".into())
        });
        let echoes = Arc::new(AtomicUsize::new(0));
        let model = scripted([
            ScriptedTurn::tool_calls([call("slow", json!({})), call("echo", json!({"text": "b"}))]),
            ScriptedTurn::text("never"),
        ]);
        let agent = agent(&model, registry([slow, counted_echo(echoes.clone())]))
            .with_limits(limits(|l| l.parallel_tools = 1));
        let token = CancelToken::new();
        let result = std::thread::scope(|scope| {
            let running = scope.spawn(|| {
                let dir = TempDir::new("cancel");
                let workspace = dir.workspace();
                agent.run("Wait.", &RunContext::new(&token, &workspace))
            });
            started_rx
                .recv_timeout(PATIENCE)
                .expect("the slow tool starts");
            assert!(token.cancel());
            running.join().unwrap()
        });
        assert_eq!(result.stop_reason, AgentStop::Cancelled);
        assert_eq!(
            result.error.as_ref().map(Error::kind),
            Some(ErrorKind::Cancelled)
        );
        assert_eq!(model.requests().len(), 1, "no model call after the cancel");
        assert_eq!(
            echoes.load(Ordering::SeqCst),
            0,
            "no tool call after the cancel"
        );
        // Both calls are still answered, so the conversation can be resumed.
        let results = results_in_last(&result);
        assert_eq!(results.len(), 2, "{results:?}");
        assert!(results.iter().all(|result| result.is_error), "{results:?}");
        assert!(results[1].content.starts_with("not run"), "{results:?}");
    });
}

// ---------------------------------------------------------------------------------------------
// Tool failures go back to the model; the run goes on
// ---------------------------------------------------------------------------------------------

#[test]
fn arguments_that_are_not_json_become_an_error_result() {
    let (_, result) = one_call(
        all_tools(),
        ScriptedTurn::InvalidToolCall {
            name: "echo".into(),
            raw: r#"{"text": "unterminated"#.into(),
        },
    );
    assert!(result.is_error);
    assert!(
        result.content.contains("not valid JSON"),
        "{}",
        result.content
    );
    assert!(result.content.contains("`echo`"), "{}", result.content);
}

#[test]
fn arguments_that_fail_the_schema_become_an_error_result_naming_the_field() {
    let (_, result) = one_call(
        all_tools(),
        ScriptedTurn::tool_call("strict", json!({"count": "three"})),
    );
    assert!(result.is_error);
    assert!(result.content.contains("`count`"), "{}", result.content);
    assert!(result.content.contains("integer"), "{}", result.content);

    let (_, result) = one_call(all_tools(), ScriptedTurn::tool_call("strict", json!({})));
    assert!(result.is_error);
    assert!(
        result.content.contains("`count` is required"),
        "{}",
        result.content
    );

    let (_, result) = one_call(
        all_tools(),
        ScriptedTurn::tool_call("strict", json!({"count": 2})),
    );
    assert!(!result.is_error, "{}", result.content);
    assert_eq!(result.content, "counted 2");
}

#[test]
fn an_unknown_tool_becomes_an_error_result_listing_the_tools() {
    let (run, result) = one_call(all_tools(), ScriptedTurn::tool_call("nope", json!({})));
    assert!(result.is_error);
    assert!(result.content.contains("`nope`"), "{}", result.content);
    assert!(
        result.content.contains("echo, fail, panic, strict"),
        "{}",
        result.content
    );
    assert_eq!(run.usage.tool_calls["nope"], 1);
}

#[test]
fn a_tool_error_goes_back_as_its_message() {
    let (_, result) = one_call(all_tools(), ScriptedTurn::tool_call("fail", json!({})));
    assert!(result.is_error);
    assert_eq!(result.content, FAIL_MESSAGE);
}

#[test]
fn a_panicking_tool_becomes_an_error_result_and_the_run_completes() {
    let (_, result) = one_call(all_tools(), ScriptedTurn::tool_call("panic", json!({})));
    assert!(result.is_error);
    assert!(
        result.content.contains("`panic` failed"),
        "{}",
        result.content
    );
    assert!(
        result.content.contains("boom in the tool"),
        "{}",
        result.content
    );
}

#[test]
fn a_command_that_times_out_becomes_an_error_result() {
    watchdog(|| {
        let (run, result) = one_call(
            builtin_tools(),
            ScriptedTurn::tool_call("bash", json!({"command": "sleep 30", "timeout_seconds": 1})),
        );
        assert!(result.is_error);
        assert!(result.content.contains("timed out"), "{}", result.content);
        assert!(run.usage.wall_time < Duration::from_secs(10));
    });
}

#[test]
fn a_provider_failure_ends_the_run_as_failed_with_its_error() {
    let model = scripted([
        ScriptedTurn::ToolCalls {
            text: "Let me look.".into(),
            calls: vec![call("echo", json!({"text": "a"}))],
        },
        ScriptedTurn::Fail(Error::new(
            ErrorKind::Provider,
            "openai: HTTP 500 server_error: the server had an error",
        )),
        ScriptedTurn::text("never"),
    ]);
    let result = run(&agent(&model, registry([echo()])), "Fail.");
    assert_eq!(result.stop_reason, AgentStop::Failed);
    let error = result.error.expect("a failed run carries its error");
    assert_eq!(error.kind(), ErrorKind::Provider);
    assert!(error.message().contains("HTTP 500"), "{error}");
    assert_eq!(model.requests().len(), 2);
    assert_eq!(result.usage.turns, 2);
    assert_eq!(result.text, "Let me look.");
}

// ---------------------------------------------------------------------------------------------
// Progress, transcripts, resuming
// ---------------------------------------------------------------------------------------------

#[test]
fn progress_reports_turns_and_tool_calls_in_order() {
    let model = scripted([
        ScriptedTurn::tool_call("echo", json!({"text": "hi"})),
        ScriptedTurn::tool_call("fail", json!({"path": "src/lib.rs", "n": 3})),
        ScriptedTurn::text("Done."),
    ]);
    let seen = Mutex::new(Vec::new());
    let sink = |progress: Progress| seen.lock().unwrap().push(progress);
    let dir = TempDir::new("progress");
    let workspace = dir.workspace();
    let token = CancelToken::new();
    let result = agent(&model, all_tools()).run(
        "Report.",
        &RunContext::new(&token, &workspace).progress(&sink),
    );
    assert_eq!(result.stop_reason, AgentStop::Completed);
    let seen: Vec<String> = seen.lock().unwrap().iter().filter_map(describe).collect();
    assert_eq!(
        seen,
        [
            "turn 1",
            "start echo 'hi'",
            "done echo 'hi' ok",
            "turn 2",
            "start fail 'src/lib.rs'",
            "done fail 'src/lib.rs' error",
            "turn 3",
        ]
    );
}

#[test]
fn the_transcript_holds_every_message_and_the_end() {
    let dir = TempDir::new("transcript");
    let store = TranscriptStore::new(dir.path().join("transcripts"));
    let transcript = store
        .create("run-1", "general-purpose", "scripted:model")
        .unwrap();
    let model = scripted([
        ScriptedTurn::tool_call("echo", json!({"text": "a"})),
        ScriptedTurn::tool_call("fail", json!({})),
        ScriptedTurn::text("Done."),
    ]);
    let workspace = dir.workspace();
    let token = CancelToken::new();
    let result = agent(&model, all_tools()).run(
        "Record.",
        &RunContext::new(&token, &workspace).transcript(&transcript),
    );
    assert_eq!(result.stop_reason, AgentStop::Completed);
    assert_eq!(store.messages("run-1").unwrap(), result.messages);

    let entries = store.load("run-1").unwrap();
    assert_eq!(entries.len(), 1 + result.messages.len() + 1);
    match &entries[0] {
        Entry::Start {
            run_id, subagent, ..
        } => assert_eq!(
            (run_id.as_str(), subagent.as_str()),
            ("run-1", "general-purpose")
        ),
        other => panic!("the first entry is not a start: {other:?}"),
    }
    match entries.last().unwrap() {
        Entry::End {
            stop_reason,
            usage,
            turns,
        } => {
            assert_eq!(stop_reason, "completed");
            assert_eq!(*turns, 3);
            assert_eq!(*usage, result.usage.tokens);
        }
        other => panic!("the last entry is not an end: {other:?}"),
    }
}

#[test]
fn resume_continues_an_earlier_conversation() {
    let first = scripted([ScriptedTurn::text("Paris.")]);
    let earlier = run(&agent(&first, ToolRegistry::new()), "Capital of France?");
    assert_eq!(earlier.text, "Paris.");

    let model = scripted([ScriptedTurn::text("Berlin.")]);
    let dir = TempDir::new("resume");
    let workspace = dir.workspace();
    let token = CancelToken::new();
    let result = agent(&model, ToolRegistry::new()).resume(
        earlier.messages.clone(),
        "And of Germany?",
        &RunContext::new(&token, &workspace),
    );
    assert_eq!(result.text, "Berlin.");
    assert_eq!(result.usage.turns, 1, "usage counts this run only");
    let mut expected = earlier.messages.clone();
    expected.push(Message::user("And of Germany?"));
    assert_eq!(model.requests()[0].messages, expected);
    expected.push(Message::assistant("Berlin."));
    assert_eq!(result.messages, expected);
}

/// A conversation cut off after the model asked for a tool (a crash mid-turn).
fn history_cut_mid_turn() -> Vec<Message> {
    vec![
        Message::user("Read the file."),
        Message {
            role: Role::Assistant,
            content: vec![
                ContentBlock::Text {
                    text: "Reading.".into(),
                },
                ContentBlock::ToolUse(ToolUse {
                    id: "toolu_cut_1".into(),
                    name: "echo".into(),
                    input: ToolInput::Json {
                        value: json!({"text": "a"}),
                    },
                    extra: None,
                }),
            ],
        },
    ]
}

#[test]
fn resume_repairs_a_history_that_ends_with_unanswered_calls() {
    let model = scripted([ScriptedTurn::text("Carrying on.")]);
    let history = history_cut_mid_turn();
    let dir = TempDir::new("repair");
    let workspace = dir.workspace();
    let token = CancelToken::new();
    let result = agent(&model, registry([echo()])).resume(
        history.clone(),
        "Go on.",
        &RunContext::new(&token, &workspace),
    );
    assert_eq!(result.stop_reason, AgentStop::Completed);
    let sent = &model.requests()[0].messages;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[..2], history[..]);
    let repaired = &sent[2];
    assert_eq!(repaired.role, Role::User);
    match &repaired.content[..] {
        [
            ContentBlock::ToolResult(result),
            ContentBlock::Text { text },
        ] => {
            assert_eq!(result.tool_use_id, "toolu_cut_1");
            assert!(result.is_error);
            assert!(result.content.starts_with("not run"), "{}", result.content);
            assert_eq!(text, "Go on.");
        }
        other => panic!("not an error result then the prompt: {other:?}"),
    }
}

/// Resuming a cut-off history records each message once: the transcript read back equals
/// the conversation, so a later resume from it sends each tool result once.
#[test]
fn resume_with_a_transcript_records_each_message_once() {
    let dir = TempDir::new("repair-transcript");
    let store = TranscriptStore::new(dir.path().join("transcripts"));
    let transcript = store
        .create("run-2", "general-purpose", "scripted:model")
        .unwrap();
    let model = scripted([ScriptedTurn::text("Carrying on.")]);
    let history = history_cut_mid_turn();
    let workspace = dir.workspace();
    let token = CancelToken::new();
    let result = agent(&model, registry([echo()])).resume(
        history.clone(),
        "Go on.",
        &RunContext::new(&token, &workspace).transcript(&transcript),
    );
    assert_eq!(result.stop_reason, AgentStop::Completed);
    assert_eq!(
        store.messages("run-2").unwrap(),
        result.messages[history.len()..],
        "the transcript of a resumed run holds the new messages, each once"
    );
}

/// A model whose every reply is a tool call cut at the output limit (`finish_reason:
/// length`), counting its requests and keeping the last one.
fn cut_model(requests: Arc<Mutex<Vec<Value>>>) -> Arc<dyn subtask::llm::ChatModel> {
    Arc::new(subtask::llm::FunctionModel::new("cut", move |request| {
        requests.lock().unwrap().push(request.clone());
        Ok(
            json!({"choices": [{"index": 0, "finish_reason": "length", "message": {
            "role": "assistant", "content": null, "tool_calls": [{"id": "call_cut",
            "type": "function", "function": {"name": "echo",
            "arguments": "{\"text\": \"a very long te"}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 8192}}),
        )
    }))
}

#[test]
fn a_tool_call_cut_at_the_output_limit_never_runs_and_the_run_ends_as_truncated() {
    watchdog(|| {
        let calls = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let agent = Agent::new(
            cut_model(requests.clone()),
            SYSTEM,
            registry([counted_echo(calls.clone())]),
        );
        let result = run(&agent, "echo something long");
        assert_eq!(
            result.stop_reason,
            AgentStop::Truncated,
            "{:?}",
            result.error
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0, "a cut call never runs");
        // Told once (not "bad JSON"), then stopped at the second cut in a row.
        let requests = requests.lock().unwrap();
        assert_eq!(requests.len(), 2);
        let told = requests[1]["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(told["role"], "tool");
        let told = told["content"].as_str().unwrap();
        assert!(told.contains("cut at the output token limit"), "{told}");
        assert!(!told.to_lowercase().contains("json"), "{told}");
        // The conversation stays one a provider accepts: every call has its result.
        let last = result.messages.last().unwrap();
        assert_eq!(last.role, Role::User);
    });
}
