//! `OpenAiCompatible` against the scripted server: the request it sends (first and second
//! turn), text and tool-call answers streamed or not, usage and cost, every quirk of the
//! compatible servers (PROTOCOLS.md §1.6), and how every kind of error comes back.

mod support;

use support::{Seen, chat_with};

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use subtask::llm::{
    ChatModel, ChatRequest, ChatResponse, ContentBlock, HttpOptions, Message, ModelConfig, Role,
    StopReason, ToolInput, ToolResult, ToolSpec, ToolUse,
};
use subtask::{Error, ErrorKind};
use support::llm_server::*;
use support::watchdog;

const KEY: &str = "sk-test-secret";
const SYSTEM: &str = "You are a subagent.";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Short limits so a broken client fails a test instead of stalling it for a minute.
fn quick() -> HttpOptions {
    let mut http = HttpOptions::default();
    http.stall_timeout = Duration::from_secs(5);
    http.connect_timeout = Duration::from_secs(2);
    http
}

/// `openai:gpt-4.1-mini` with a key, pointed at the server's `/v1`.
fn openai(server: &LlmServer, stream: bool) -> Arc<dyn ChatModel> {
    ModelConfig::parse("openai:gpt-4.1-mini")
        .unwrap()
        .api_key(KEY)
        .base_url(server.base_url() + "/v1")
        .http(quick())
        .stream(stream)
        .build()
        .unwrap()
}

/// `openai-compat:qwen3` without a key (a local server), pointed at the server's `/v1`.
fn compat(server: &LlmServer, stream: bool) -> Arc<dyn ChatModel> {
    ModelConfig::parse("openai-compat:qwen3")
        .unwrap()
        .base_url(server.base_url() + "/v1")
        .http(quick())
        .stream(stream)
        .build()
        .unwrap()
}

fn text(s: &str) -> Seen {
    Seen::Text(s.into())
}
fn call(s: &str) -> Seen {
    Seen::Call(s.into())
}
fn input(s: &str) -> Seen {
    Seen::Input(s.into())
}

/// One call with a fresh token; the deltas the sink received, in order.
/// Asks "Summarize README" with the system prompt and no tools.
fn ask(model: &dyn ChatModel) -> (Result<ChatResponse, Error>, Vec<Seen>) {
    let messages = [Message::user("Summarize README")];
    chat_with(model, &ChatRequest::new(SYSTEM, &messages))
}

fn answer(model: &dyn ChatModel) -> (ChatResponse, Vec<Seen>) {
    let (result, seen) = ask(model);
    (result.expect("a successful answer"), seen)
}

fn failure(model: &dyn ChatModel) -> Error {
    match ask(model).0 {
        Ok(response) => panic!("expected an error, got {response:?}"),
        Err(error) => error,
    }
}

fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "read_file".into(),
            description: "Read a file".into(),
            parameters: json!({
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"]
            }),
        },
        ToolSpec {
            name: "grep".into(),
            description: "Search files".into(),
            parameters: json!({"type": "object", "properties": {"pattern": {"type": "string"}}}),
        },
    ]
}

/// The tool calls of a response as (id, name, input).
fn calls(response: &ChatResponse) -> Vec<(String, String, ToolInput)> {
    response
        .message
        .tool_uses()
        .map(|call| (call.id.clone(), call.name.clone(), call.input.clone()))
        .collect()
}

fn json_input(value: Value) -> ToolInput {
    ToolInput::Json { value }
}

/// Rewrites the JSON payload of every event of a stream.
fn map_events(reply: Reply, change: impl Fn(Value) -> Value) -> Reply {
    let Reply::Stream {
        status,
        headers,
        steps,
    } = reply
    else {
        panic!("map_events: not a stream: {reply:?}");
    };
    let steps = steps
        .into_iter()
        .map(|step| match step {
            Step::Event { event, data } => match serde_json::from_str::<Value>(&data) {
                Ok(value) => Step::Event {
                    event,
                    data: change(value).to_string(),
                },
                Err(_) => Step::Event { event, data },
            },
            other => other,
        })
        .collect();
    Reply::Stream {
        status,
        headers,
        steps,
    }
}

fn only_request(server: &LlmServer) -> Recorded {
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "exactly one request: {requests:#?}");
    requests.into_iter().next().unwrap()
}

fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-12,
        "cost {actual} != expected {expected}"
    );
}

// ---------------------------------------------------------------------------------------------
// The request
// ---------------------------------------------------------------------------------------------

#[test]
fn a_first_turn_posts_model_system_user_tools_and_the_completion_token_limit() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_text("Done.", usage(20, 3)));
        let model = openai(&server, false);
        let messages = [Message::user("Summarize README")];
        let tools = tools();
        let request = ChatRequest::new(SYSTEM, &messages)
            .tools(&tools)
            .max_tokens(1024);
        chat_with(model.as_ref(), &request).0.unwrap();

        let sent = only_request(&server);
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.path, "/v1/chat/completions");
        assert_eq!(sent.header("authorization"), Some("Bearer sk-test-secret"));
        assert!(
            sent.header("content-type")
                .is_some_and(|value| value.starts_with("application/json")),
            "{:?}",
            sent.header("content-type")
        );
        let body = sent.json();
        assert_eq!(body["model"], "gpt-4.1-mini");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": "Summarize README"}
            ])
        );
        assert_eq!(body["max_completion_tokens"], 1024);
        assert!(body.get("max_tokens").is_none(), "{body}");
        assert_eq!(
            body["tools"],
            json!([
                {"type": "function", "function": {
                    "name": "read_file", "description": "Read a file",
                    "parameters": tools[0].parameters
                }},
                {"type": "function", "function": {
                    "name": "grep", "description": "Search files",
                    "parameters": tools[1].parameters
                }}
            ])
        );
        assert_eq!(body["tool_choice"], "auto");
        assert!(
            body.get("stream").is_none_or(|stream| stream == false),
            "{body}"
        );
        assert!(body.get("stream_options").is_none(), "{body}");
    });
}

#[test]
fn a_streaming_request_asks_for_the_usage_chunk() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_stream_text(&["Done."], true));
        let model = openai(&server, true);
        answer(model.as_ref());
        let body = only_request(&server).json();
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
        assert!(
            body.get("tools").is_none(),
            "no tools, no tools field: {body}"
        );
        assert!(body.get("tool_choice").is_none(), "{body}");
    });
}

#[test]
fn a_compatible_server_gets_no_output_limit_by_default_and_no_authorization() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_text("Done.", usage(20, 3)));
        let model = compat(&server, false);
        let messages = [Message::user("Hi")];
        let request = ChatRequest::new("", &messages).max_tokens(77);
        chat_with(model.as_ref(), &request).0.unwrap();
        let sent = only_request(&server);
        assert_eq!(sent.path, "/v1/chat/completions");
        assert_eq!(sent.header("authorization"), None);
        let body = sent.json();
        assert_eq!(body["model"], "qwen3");
        // Unknown server: no limit is sent (vLLM refuses prompt + max_tokens over the
        // context length); max_tokens_field=max_tokens sends it.
        assert!(body.get("max_tokens").is_none(), "{body}");
        assert!(body.get("max_completion_tokens").is_none(), "{body}");
        assert_eq!(
            body["messages"],
            json!([{"role": "user", "content": "Hi"}]),
            "an empty system prompt sends no system message"
        );
    });
}

#[test]
fn a_second_turn_sends_calls_with_string_arguments_then_tool_messages_before_user_text() {
    watchdog(|| {
        let server = LlmServer::start();
        let model = openai(&server, true);
        let messages = vec![
            Message::user("Summarize README"),
            Message {
                role: Role::Assistant,
                content: vec![
                    ContentBlock::ToolUse(ToolUse {
                        id: "call_a".into(),
                        name: "read_file".into(),
                        input: ToolInput::parse(r#"{"path":"README.md"}"#),
                        extra: None,
                    }),
                    ContentBlock::ToolUse(ToolUse {
                        id: "call_b".into(),
                        name: "grep".into(),
                        input: ToolInput::parse(r#"{"pattern": "x""#),
                        extra: None,
                    }),
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    // Text first on purpose: the tool messages must still come first.
                    ContentBlock::Text {
                        text: "Be brief.".into(),
                    },
                    ContentBlock::ToolResult(ToolResult {
                        tool_use_id: "call_a".into(),
                        content: "# Project".into(),
                        is_error: false,
                    }),
                    ContentBlock::ToolResult(ToolResult {
                        tool_use_id: "call_b".into(),
                        content: "bad arguments".into(),
                        is_error: true,
                    }),
                ],
            },
        ];
        let tools = tools();
        let request = ChatRequest::new(SYSTEM, &messages).tools(&tools);
        server.push(openai_stream_text(&["Done."], true));
        chat_with(model.as_ref(), &request).0.unwrap();

        let sent = server.requests();
        let body = sent[0].json();
        let sent_messages = body["messages"].as_array().unwrap();
        let roles: Vec<&str> = sent_messages
            .iter()
            .map(|message| message["role"].as_str().unwrap())
            .collect();
        assert_eq!(
            roles,
            ["system", "user", "assistant", "tool", "tool", "user"]
        );
        let assistant = &sent_messages[2];
        // Never null: llama-cpp-python refuses it beside tool calls.
        assert_eq!(assistant["content"], "");
        let tool_calls = assistant["tool_calls"].as_array().unwrap();
        assert_eq!(tool_calls.len(), 2);
        assert_eq!(tool_calls[0]["id"], "call_a");
        assert_eq!(tool_calls[0]["type"], "function");
        assert_eq!(tool_calls[0]["function"]["name"], "read_file");
        let arguments = tool_calls[0]["function"]["arguments"]
            .as_str()
            .expect("arguments travel as a string");
        assert_eq!(
            serde_json::from_str::<Value>(arguments).unwrap(),
            json!({"path": "README.md"})
        );
        assert_eq!(
            tool_calls[1]["function"]["arguments"], r#"{"pattern": "x""#,
            "invalid arguments go back exactly as the model wrote them"
        );
        assert_eq!(sent_messages[3]["tool_call_id"], "call_a");
        assert_eq!(sent_messages[3]["content"], "# Project");
        assert_eq!(sent_messages[4]["tool_call_id"], "call_b");
        assert!(
            sent_messages[4]["content"]
                .as_str()
                .unwrap()
                .contains("bad arguments"),
            "{}",
            sent_messages[4]
        );
        assert_eq!(sent_messages[5]["content"], "Be brief.");
    });
}

#[test]
fn an_assistant_message_with_text_and_calls_keeps_its_text() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_text("Done.", usage(20, 3)));
        let model = openai(&server, false);
        let messages = vec![
            Message::user("Summarize README"),
            Message {
                role: Role::Assistant,
                content: vec![
                    ContentBlock::Text {
                        text: "Reading it.".into(),
                    },
                    ContentBlock::ToolUse(ToolUse {
                        id: "call_a".into(),
                        name: "read_file".into(),
                        input: ToolInput::parse(r#"{"path":"README.md"}"#),
                        extra: None,
                    }),
                ],
            },
            Message {
                role: Role::User,
                content: vec![ContentBlock::ToolResult(ToolResult {
                    tool_use_id: "call_a".into(),
                    content: "# Project".into(),
                    is_error: false,
                })],
            },
        ];
        chat_with(model.as_ref(), &ChatRequest::new(SYSTEM, &messages))
            .0
            .unwrap();
        let body = only_request(&server).json();
        let sent = body["messages"].as_array().unwrap();
        assert_eq!(sent.len(), 4, "system, user, assistant, tool: {body}");
        assert_eq!(sent[2]["content"], "Reading it.");
        assert_eq!(sent[3]["role"], "tool");
    });
}

// ---------------------------------------------------------------------------------------------
// Text answers, usage, cost, deltas
// ---------------------------------------------------------------------------------------------

#[test]
fn a_text_answer_with_cached_tokens_is_normalised_and_priced() {
    watchdog(|| {
        let server = LlmServer::start();
        let mut body = openai_completion(
            json!({"role": "assistant", "content": "README explains the project.", "refusal": null}),
            "stop",
            usage(100, 20),
        );
        body["usage"]["prompt_tokens_details"]["cached_tokens"] = json!(40);
        server.push(openai_json(200, &body));
        let model = openai(&server, false);
        let (response, seen) = answer(model.as_ref());

        assert_eq!(response.message.role, Role::Assistant);
        assert_eq!(response.message.text(), "README explains the project.");
        assert_eq!(response.stop_reason, StopReason::EndTurn);
        assert_eq!(response.model, OPENAI_MODEL, "the model the server named");
        let usage = response.usage;
        assert_eq!(usage.input_tokens, 60, "prompt_tokens minus cached");
        assert_eq!(usage.cache_read_tokens, 40);
        assert_eq!(usage.cache_write_tokens, 0);
        assert_eq!(usage.output_tokens, 20);
        // gpt-4.1-mini: $0.40 in, $1.60 out, $0.10 cached, per million.
        assert_close(
            usage.cost_usd.expect("gpt-4.1-mini has a price"),
            (60.0 * 0.4 + 20.0 * 1.6 + 40.0 * 0.1) / 1e6,
        );
        assert!(
            seen.is_empty() || seen == [text("README explains the project.")],
            "{seen:?}"
        );
    });
}

#[test]
fn a_streamed_text_answer_arrives_as_deltas_in_order_with_the_final_usage() {
    watchdog(|| {
        let server = LlmServer::start();
        let reply = map_events(
            openai_stream_text(&["README ", "explains ", "the project."], true),
            |mut chunk| {
                if chunk["usage"].is_object() {
                    chunk["usage"]["prompt_tokens"] = json!(100);
                    chunk["usage"]["completion_tokens"] = json!(20);
                    chunk["usage"]["prompt_tokens_details"]["cached_tokens"] = json!(40);
                }
                chunk
            },
        );
        server.push(reply);
        let model = openai(&server, true);
        let (response, seen) = answer(model.as_ref());

        assert_eq!(
            seen,
            [text("README "), text("explains "), text("the project.")]
        );
        assert_eq!(response.message.text(), "README explains the project.");
        assert_eq!(response.stop_reason, StopReason::EndTurn);
        assert_eq!(
            (
                response.usage.input_tokens,
                response.usage.cache_read_tokens,
                response.usage.output_tokens
            ),
            (60, 40, 20)
        );
        assert_close(
            response.usage.cost_usd.unwrap(),
            (60.0 * 0.4 + 20.0 * 1.6 + 40.0 * 0.1) / 1e6,
        );
    });
}

#[test]
fn the_stream_usage_chunk_is_read() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_stream_text(&["Hi"], true));
        let model = openai(&server, true);
        let (response, _) = answer(model.as_ref());
        assert_eq!(
            (response.usage.input_tokens, response.usage.output_tokens),
            (STREAM_USAGE.input, STREAM_USAGE.output)
        );
        assert_close(
            response.usage.cost_usd.unwrap(),
            (3.0 * 0.4 + 9.0 * 1.6) / 1e6,
        );
    });
}

#[test]
fn an_unknown_model_has_no_cost_streamed_or_not() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_text("Hi", usage(20, 3)));
        let (response, _) = answer(compat(&server, false).as_ref());
        assert_eq!(response.usage.input_tokens, 20);
        assert_eq!(response.usage.cost_usd, None);

        server.push(openai_stream_text(&["Hi"], true));
        let (response, _) = answer(compat(&server, true).as_ref());
        assert_eq!(response.usage.output_tokens, STREAM_USAGE.output);
        assert_eq!(response.usage.cost_usd, None);
    });
}

#[test]
fn a_stream_without_the_usage_chunk_still_answers() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_stream_text(&["Hel", "lo"], false));
        let (response, seen) = answer(compat(&server, true).as_ref());
        assert_eq!(response.message.text(), "Hello");
        assert_eq!(seen, [text("Hel"), text("lo")]);
        assert_eq!(response.usage.total_input_tokens(), 0);
    });
}

#[test]
fn finish_reason_length_is_max_tokens() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_length("README explains", usage(20, 16)));
        let (response, _) = answer(openai(&server, false).as_ref());
        assert_eq!(response.stop_reason, StopReason::MaxTokens);
        assert_eq!(response.message.text(), "README explains");
    });
}

// ---------------------------------------------------------------------------------------------
// Tool calls
// ---------------------------------------------------------------------------------------------

#[test]
fn tool_calls_in_a_body_are_read_with_their_ids_and_arguments() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_tool_calls(
            &[
                ("call_a", "read_file", r#"{"path":"README.md"}"#),
                ("call_b", "grep", r#"{"pattern":"TODO"}"#),
            ],
            usage(30, 12),
        ));
        let (response, _) = answer(openai(&server, false).as_ref());
        assert_eq!(response.stop_reason, StopReason::ToolUse);
        assert_eq!(response.message.text(), "", "content null is no text");
        assert_eq!(
            calls(&response),
            [
                (
                    "call_a".to_string(),
                    "read_file".to_string(),
                    json_input(json!({"path": "README.md"}))
                ),
                (
                    "call_b".to_string(),
                    "grep".to_string(),
                    json_input(json!({"pattern": "TODO"}))
                ),
            ]
        );
        assert_eq!(response.usage.input_tokens, 30);
    });
}

#[test]
fn two_streamed_parallel_calls_are_assembled_by_index_with_deltas_in_order() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_stream_tool_calls(
            &[
                ("call_a", "read_file", &[r#"{"path":"#, r#""README.md"}"#]),
                ("call_b", "grep", &[r#"{"pattern""#, r#":"TODO"}"#]),
            ],
            true,
        ));
        let (response, seen) = answer(openai(&server, true).as_ref());
        assert_eq!(response.stop_reason, StopReason::ToolUse);
        assert_eq!(
            calls(&response),
            [
                (
                    "call_a".to_string(),
                    "read_file".to_string(),
                    json_input(json!({"path": "README.md"}))
                ),
                (
                    "call_b".to_string(),
                    "grep".to_string(),
                    json_input(json!({"pattern": "TODO"}))
                ),
            ]
        );
        assert_eq!(
            seen,
            [
                call("read_file"),
                input(r#"{"path":"#),
                input(r#""README.md"}"#),
                call("grep"),
                input(r#"{"pattern""#),
                input(r#":"TODO"}"#),
            ]
        );
        assert_eq!(response.usage.output_tokens, STREAM_USAGE.output);
    });
}

#[test]
fn invalid_json_arguments_are_kept_raw_not_an_error() {
    watchdog(|| {
        let server = LlmServer::start();
        let broken = r#"{"path": "README.md""#;
        server.push(openai_tool_calls(
            &[("call_a", "read_file", broken)],
            usage(30, 12),
        ));
        server.push(openai_stream_tool_calls(
            &[("call_b", "read_file", &[r#"{"path": "#, r#""README.md""#])],
            false,
        ));
        for stream in [false, true] {
            let (response, _) = answer(openai(&server, stream).as_ref());
            assert_eq!(response.stop_reason, StopReason::ToolUse);
            let calls = calls(&response);
            assert_eq!(calls.len(), 1);
            match &calls[0].2 {
                ToolInput::Invalid { raw, error } => {
                    assert_eq!(raw, broken);
                    assert!(!error.is_empty());
                }
                other => panic!("stream {stream}: expected Invalid, got {other:?}"),
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Quirks of compatible servers (PROTOCOLS.md §1.6)
// ---------------------------------------------------------------------------------------------

#[test]
fn quirk_arguments_as_an_object_are_accepted() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_quirk_arguments_object(
            "call_a",
            "read_file",
            json!({"path": "README.md"}),
        ));
        let (response, _) = answer(compat(&server, false).as_ref());
        assert_eq!(
            calls(&response),
            [(
                "call_a".to_string(),
                "read_file".to_string(),
                json_input(json!({"path": "README.md"}))
            )]
        );
        assert_eq!(response.stop_reason, StopReason::ToolUse);
    });
}

/// Synthesised ids must be non-empty and distinct, or results cannot be matched to calls.
fn assert_usable_ids(response: &ChatResponse, names: &[&str]) {
    let calls = calls(response);
    assert_eq!(calls.len(), names.len(), "{calls:?}");
    for ((id, name, input), expected) in calls.iter().zip(names) {
        assert!(!id.trim().is_empty(), "empty id: {calls:?}");
        assert_eq!(name, expected);
        assert!(matches!(input, ToolInput::Json { .. }), "{input:?}");
    }
    let mut ids: Vec<&String> = calls.iter().map(|(id, ..)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), names.len(), "ids not distinct: {calls:?}");
    assert_eq!(response.stop_reason, StopReason::ToolUse);
}

#[test]
fn quirk_missing_and_empty_ids_get_distinct_synthesised_ids() {
    watchdog(|| {
        let server = LlmServer::start();
        let pair = [
            ("read_file", r#"{"path":"a"}"#),
            ("grep", r#"{"pattern":"b"}"#),
        ];
        server.push(openai_quirk_missing_ids(&pair));
        server.push(openai_quirk_empty_ids(&pair));
        let model = compat(&server, false);
        let (first, _) = answer(model.as_ref());
        assert_usable_ids(&first, &["read_file", "grep"]);
        let (second, _) = answer(model.as_ref());
        assert_usable_ids(&second, &["read_file", "grep"]);
    });
}

#[test]
fn quirk_streamed_calls_without_ids_get_distinct_synthesised_ids() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_stream_quirk_missing_ids(&[
            ("read_file", &[r#"{"path":"#, r#""a"}"#]),
            ("grep", &[r#"{"pattern":"b"}"#]),
        ]));
        let (response, _) = answer(compat(&server, true).as_ref());
        assert_usable_ids(&response, &["read_file", "grep"]);
        assert_eq!(
            calls(&response)[0].2,
            json_input(json!({"path": "a"})),
            "fragments still assembled by index"
        );
    });
}

#[test]
fn quirk_integer_ids_become_strings() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_quirk_integer_ids(&[
            (7, "read_file", r#"{"path":"a"}"#),
            (8, "grep", r#"{"pattern":"b"}"#),
        ]));
        let (response, _) = answer(compat(&server, false).as_ref());
        let ids: Vec<String> = calls(&response).into_iter().map(|(id, ..)| id).collect();
        assert_eq!(ids, ["7", "8"]);
    });
}

#[test]
fn quirk_a_shared_index_with_new_ids_is_two_calls() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_stream_quirk_shared_index(&[
            ("call_1", "read_file", &[r#"{"path":"#, r#""a"}"#]),
            ("call_2", "read_file", &[r#"{"path":"b"}"#]),
        ]));
        let (response, seen) = answer(compat(&server, true).as_ref());
        assert_eq!(
            calls(&response),
            [
                (
                    "call_1".to_string(),
                    "read_file".to_string(),
                    json_input(json!({"path": "a"}))
                ),
                (
                    "call_2".to_string(),
                    "read_file".to_string(),
                    json_input(json!({"path": "b"}))
                ),
            ]
        );
        assert_eq!(
            seen.iter().filter(|s| matches!(s, Seen::Call(_))).count(),
            2,
            "{seen:?}"
        );
    });
}

#[test]
fn quirk_a_fresh_id_on_every_chunk_is_one_call() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_stream_quirk_fresh_id_per_chunk(
            "read_file",
            &[r#"{"pa"#, r#"th":"#, r#""README.md"}"#],
        ));
        let (response, seen) = answer(compat(&server, true).as_ref());
        let calls = calls(&response);
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].1, "read_file");
        assert_eq!(calls[0].2, json_input(json!({"path": "README.md"})));
        assert!(!calls[0].0.is_empty());
        assert_eq!(
            seen,
            [
                call("read_file"),
                input(r#"{"pa"#),
                input(r#"th":"#),
                input(r#""README.md"}"#)
            ]
        );
    });
}

#[test]
fn quirk_a_name_resent_in_every_chunk_is_not_duplicated() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_stream_quirk_name_every_chunk(
            "call_a",
            "read_file",
            &[r#"{"path":"#, r#""README.md"}"#],
        ));
        let (response, seen) = answer(compat(&server, true).as_ref());
        assert_eq!(
            calls(&response),
            [(
                "call_a".to_string(),
                "read_file".to_string(),
                json_input(json!({"path": "README.md"}))
            )]
        );
        assert_eq!(
            seen,
            [
                call("read_file"),
                input(r#"{"path":"#),
                input(r#""README.md"}"#)
            ]
        );
    });
}

#[test]
fn quirk_a_missing_index_reads_as_zero() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_stream_quirk_no_index(
            "call_a",
            "read_file",
            &[r#"{"path":"#, r#""README.md"}"#],
        ));
        let (response, _) = answer(compat(&server, true).as_ref());
        assert_eq!(
            calls(&response),
            [(
                "call_a".to_string(),
                "read_file".to_string(),
                json_input(json!({"path": "README.md"}))
            )]
        );
    });
}

#[test]
fn quirk_finish_reason_stop_with_tool_calls_is_tool_use() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_quirk_stop_with_tool_calls(&[(
            "call_a",
            "read_file",
            r#"{"path":"a"}"#,
        )]));
        server.push(openai_stream_quirk_stop_with_tool_calls(&[(
            "call_b",
            "read_file",
            &[r#"{"path":"b"}"#],
        )]));
        let (body, _) = answer(compat(&server, false).as_ref());
        assert_eq!(body.stop_reason, StopReason::ToolUse);
        assert_eq!(calls(&body).len(), 1);
        let (stream, _) = answer(compat(&server, true).as_ref());
        assert_eq!(stream.stop_reason, StopReason::ToolUse);
        assert_eq!(calls(&stream)[0].0, "call_b");
    });
}

#[test]
fn quirk_sse_comment_lines_are_skipped() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_stream_quirk_comments(&["Hel", "lo"]));
        let (response, seen) = answer(compat(&server, true).as_ref());
        assert_eq!(response.message.text(), "Hello");
        assert_eq!(seen, [text("Hel"), text("lo")]);
    });
}

#[test]
fn quirk_data_without_a_space_is_read() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_stream_quirk_data_without_space(&["Hel", "lo"]));
        let (response, seen) = answer(compat(&server, true).as_ref());
        assert_eq!(response.message.text(), "Hello");
        assert_eq!(seen, [text("Hel"), text("lo")]);
        assert_eq!(response.stop_reason, StopReason::EndTurn);
    });
}

#[test]
fn quirk_multi_line_data_is_joined() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_stream_quirk_multiline_data(&["Hel", "lo"]));
        let (response, seen) = answer(compat(&server, true).as_ref());
        assert_eq!(response.message.text(), "Hello");
        assert_eq!(seen, [text("Hel"), text("lo")]);
    });
}

#[test]
fn quirk_a_tool_call_written_as_text_is_an_answer() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_quirk_tool_call_as_text(
            "read_file",
            json!({"path": "a"}),
        ));
        let (response, _) = answer(compat(&server, false).as_ref());
        assert_eq!(response.stop_reason, StopReason::EndTurn);
        assert_eq!(response.message.tool_uses().count(), 0);
        assert!(response.message.text().contains("read_file"));
    });
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

fn details(error: &Error) -> &subtask::ProviderDetails {
    error
        .provider_details()
        .unwrap_or_else(|| panic!("no provider details: {error:?}"))
}

#[test]
fn a_400_is_not_retried() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_quirk_unknown_parameter("max_completion_tokens"));
        let error = failure(openai(&server, false).as_ref());
        assert_eq!(error.kind(), ErrorKind::Provider);
        assert!(!error.is_retryable());
        let details = details(&error);
        assert_eq!(details.provider, "openai");
        assert_eq!(details.status, Some(400));
        assert_eq!(details.error_type.as_deref(), Some("invalid_request_error"));
        assert_eq!(details.attempts, 1);
        assert!(
            error
                .to_string()
                .contains("Unrecognized request argument supplied: max_completion_tokens"),
            "{error}"
        );
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn a_401_is_not_retried_and_says_what_the_provider_said() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_error(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided: sk-proj-****abcd. You can find your API key at \
             https://platform.openai.com/account/api-keys.",
        ));
        let error = failure(openai(&server, true).as_ref());
        assert_eq!(error.kind(), ErrorKind::Provider);
        assert!(!error.is_retryable());
        assert!(
            error.to_string().contains("Incorrect API key provided"),
            "{error}"
        );
        assert!(error.to_string().contains("401"), "{error}");
        let details = details(&error);
        assert_eq!(details.status, Some(401));
        assert_eq!(details.code.as_deref(), Some("invalid_api_key"));
        assert!(details.message.contains("Incorrect API key provided"));
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn a_404_is_not_retried() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_error(
            404,
            "invalid_request_error",
            Some("model_not_found"),
            "The model `gpt-4.1-mini` does not exist or you do not have access to it.",
        ));
        let error = failure(openai(&server, false).as_ref());
        assert_eq!(details(&error).status, Some(404));
        assert_eq!(details(&error).code.as_deref(), Some("model_not_found"));
        assert!(!error.is_retryable());
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn an_insufficient_quota_429_is_not_retried() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_quota_exceeded());
        let error = failure(openai(&server, false).as_ref());
        assert_eq!(error.kind(), ErrorKind::Provider);
        assert!(!error.is_retryable());
        let details = details(&error);
        assert_eq!(details.status, Some(429));
        assert_eq!(details.error_type.as_deref(), Some("insufficient_quota"));
        assert_eq!(details.attempts, 1);
        assert!(error.to_string().contains("exceeded your current quota"));
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn a_vllm_error_is_read_without_its_wrapper() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(vllm_error(
            400,
            "BadRequestError",
            "The model `qwen3` does not exist.",
        ));
        let error = failure(compat(&server, false).as_ref());
        assert_eq!(error.kind(), ErrorKind::Provider);
        let details = details(&error);
        assert_eq!(details.provider, "openai-compat");
        assert_eq!(details.status, Some(400));
        assert_eq!(details.message, "The model `qwen3` does not exist.");
        assert_eq!(details.error_type.as_deref(), Some("BadRequestError"));
        assert_eq!(details.code.as_deref(), Some("400"));
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn an_openrouter_error_inside_a_200_body_is_an_error() {
    watchdog(|| {
        let server = LlmServer::start();
        // A 502 inside the body is retried like a 502 status: three tries in all.
        for _ in 0..3 {
            server.push(openrouter_error_200(
                502,
                "Upstream provider returned an error",
            ));
        }
        let error = failure(compat(&server, false).as_ref());
        assert_eq!(server.requests().len(), 3);
        assert_eq!(error.kind(), ErrorKind::Provider);
        let details = details(&error);
        assert_eq!(details.status, Some(200));
        assert_eq!(details.code.as_deref(), Some("502"));
        assert!(
            details
                .message
                .contains("Upstream provider returned an error")
        );
        assert!(error.is_retryable(), "502 is worth another try: {error:?}");
    });
}

#[test]
fn an_openrouter_error_inside_a_200_stream_is_an_error_after_the_deltas() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openrouter_stream_error(
            &["Hel", "lo"],
            429,
            "Rate limit exceeded: free-models-per-min",
        ));
        let (result, seen) = ask(compat(&server, true).as_ref());
        let error = result.expect_err("an error event is not an answer");
        assert_eq!(seen, [text("Hel"), text("lo")]);
        assert_eq!(error.kind(), ErrorKind::Provider);
        let details = details(&error);
        assert_eq!(details.status, Some(200));
        assert_eq!(details.code.as_deref(), Some("429"));
        assert!(details.message.contains("free-models-per-min"), "{error}");
        assert!(error.is_retryable());
    });
}

#[test]
fn an_openrouter_error_with_its_status_and_a_numeric_code_is_read() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openrouter_error(
            402,
            402,
            "Insufficient credits. Add more using https://openrouter.ai/credits",
        ));
        let error = failure(compat(&server, false).as_ref());
        assert_eq!(error.kind(), ErrorKind::Provider);
        assert!(!error.is_retryable());
        let details = details(&error);
        assert_eq!(details.status, Some(402));
        assert_eq!(details.code.as_deref(), Some("402"));
        assert!(details.message.starts_with("Insufficient credits"));
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn a_malformed_json_body_is_a_provider_error() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(Reply::Json {
            status: 200,
            headers: vec![("x-request-id".into(), "req_malformed".into())],
            body: r#"{"id": "chatcmpl-1", "choices": [{"#.into(),
        });
        let error = failure(openai(&server, false).as_ref());
        assert_eq!(error.kind(), ErrorKind::Provider);
        assert_eq!(details(&error).status, Some(200));
        assert_eq!(details(&error).request_id.as_deref(), Some("req_malformed"));
        assert!(error.to_string().contains("not JSON"), "{error}");
    });
}

#[test]
fn a_malformed_json_event_is_a_provider_error() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(sse_reply(vec![
            Step::data(r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#),
            Step::data(r#"{"choices":[{"#),
            Step::data("[DONE]"),
        ]));
        let (result, seen) = ask(openai(&server, true).as_ref());
        let error = result.expect_err("malformed JSON is not an answer");
        assert_eq!(seen, [text("Hi")]);
        assert_eq!(error.kind(), ErrorKind::Provider);
        assert!(error.to_string().contains("malformed JSON"), "{error}");
    });
}

#[test]
fn a_truncated_stream_is_an_error_not_an_answer() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(truncated(openai_stream_text(&["Hel", "lo"], true)));
        server.push(truncated(openai_stream_tool_calls(
            &[("call_a", "read_file", &[r#"{"path":"#, r#""a"}"#])],
            true,
        )));
        // Cut in the middle of the arguments.
        server.push(truncated_after(
            openai_stream_tool_calls(
                &[("call_b", "read_file", &[r#"{"path":"#, r#""b"}"#])],
                true,
            ),
            3,
        ));
        let model = openai(&server, true);
        for what in ["text", "tool call", "half a tool call"] {
            let (result, seen) = ask(model.as_ref());
            let error = match result {
                Ok(response) => panic!("{what}: a truncated stream answered {response:?}"),
                Err(error) => error,
            };
            assert!(!seen.is_empty(), "{what}: the content came first");
            assert_eq!(error.kind(), ErrorKind::Provider, "{what}: {error:?}");
            assert!(error.is_retryable(), "{what}: {error:?}");
        }
        assert_eq!(server.requests().len(), 3, "a broken stream is not retried");
    });
}

#[test]
fn the_request_id_comes_from_x_request_id() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(with_header(
            openai_error(400, "invalid_request_error", None, "bad"),
            "x-request-id",
            "req_0123456789abcdef",
        ));
        let error = failure(openai(&server, false).as_ref());
        assert_eq!(
            details(&error).request_id.as_deref(),
            Some("req_0123456789abcdef")
        );
        assert!(
            error.to_string().contains("req_0123456789abcdef"),
            "{error}"
        );

        server.push(with_header(
            openrouter_stream_error(&["Hi"], 502, "upstream"),
            "x-request-id",
            "req_stream",
        ));
        let error = failure(openai(&server, true).as_ref());
        assert_eq!(details(&error).request_id.as_deref(), Some("req_stream"));
    });
}

// ---------------------------------------------------------------------------------------------
// Other finishes and settings
// ---------------------------------------------------------------------------------------------

#[test]
fn a_content_filter_finish_is_a_refusal() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_json(
            200,
            &openai_completion(
                json!({"role": "assistant", "content": null, "refusal": "I can't help with that."}),
                "content_filter",
                usage(20, 5),
            ),
        ));
        let (response, _) = answer(openai(&server, false).as_ref());
        assert_eq!(response.stop_reason, StopReason::Refusal);
        assert_eq!(response.message.tool_uses().count(), 0);
    });
}

#[test]
fn a_configured_price_gives_an_unknown_model_a_cost() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_text("Hi", usage(1000, 100)));
        let model = ModelConfig::parse("openai-compat:qwen3")
            .unwrap()
            .base_url(server.base_url() + "/v1")
            .price(subtask::llm::Price {
                input: 1.0,
                output: 2.0,
                cache_read: 0.5,
                cache_write: 0.0,
            })
            .stream(false)
            .build()
            .unwrap();
        let (response, _) = answer(model.as_ref());
        assert_close(
            response.usage.cost_usd.unwrap(),
            (1000.0 * 1.0 + 100.0 * 2.0) / 1e6,
        );
    });
}

#[test]
fn the_max_tokens_field_can_be_chosen() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_text("Hi", usage(1, 1)));
        let mut config = ModelConfig::parse("openai-compat:qwen3")
            .unwrap()
            .base_url(server.base_url() + "/v1")
            .stream(false);
        config.max_tokens_field = Some(subtask::llm::MaxTokensField::MaxCompletionTokens);
        let model = config.build().unwrap();
        let messages = [Message::user("Hi")];
        chat_with(
            model.as_ref(),
            &ChatRequest::new("", &messages).max_tokens(64),
        )
        .0
        .unwrap();
        let body = only_request(&server).json();
        assert_eq!(body["max_completion_tokens"], 64);
        assert!(body.get("max_tokens").is_none(), "{body}");
    });
}
