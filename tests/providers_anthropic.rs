//! `Anthropic` against the scripted server: the request it sends (first and second turn),
//! text and tool-use answers streamed or not (the captured stream of PROTOCOLS.md §2.3
//! included), usage, cache tokens and cost, and how every kind of error comes back.

mod support;

use support::{Seen, chat_with};

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use subtask::llm::{
    ChatModel, ChatRequest, ChatResponse, ContentBlock, HttpOptions, Message, ModelConfig, Role,
    StopReason, ToolInput, ToolResult, ToolSpec, ToolUse,
};
use subtask::{Error, ErrorKind, ProviderDetails};
use support::llm_server::*;
use support::watchdog;

const KEY: &str = "sk-ant-test-secret";
const SYSTEM: &str = "You are a subagent.";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn quick() -> HttpOptions {
    let mut http = HttpOptions::default();
    http.stall_timeout = Duration::from_secs(5);
    http.connect_timeout = Duration::from_secs(2);
    http
}

/// `anthropic:claude-sonnet-4-5` with a key, pointed at the server.
fn claude(server: &LlmServer, stream: bool) -> Arc<dyn ChatModel> {
    ModelConfig::parse("anthropic:claude-sonnet-4-5")
        .unwrap()
        .api_key(KEY)
        .base_url(server.base_url())
        .http(quick())
        .stream(stream)
        .build()
        .unwrap()
}

fn ask(model: &dyn ChatModel) -> (Result<ChatResponse, Error>, Vec<Seen>) {
    let messages = [Message::user("What's the weather in Paris?")];
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

fn details(error: &Error) -> &ProviderDetails {
    error
        .provider_details()
        .unwrap_or_else(|| panic!("no provider details: {error:?}"))
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "Get the current weather in a given location".into(),
        parameters: json!({
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"]
        }),
    }
}

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

/// claude-sonnet-4-5: $3 in, $15 out, $0.30 cache reads, $3.75 cache writes, per million.
fn sonnet_cost(input: f64, output: f64, read: f64, write: f64) -> f64 {
    (input * 3.0 + output * 15.0 + read * 0.3 + write * 3.75) / 1e6
}

// ---------------------------------------------------------------------------------------------
// The request
// ---------------------------------------------------------------------------------------------

#[test]
fn a_first_turn_posts_the_messages_api_shape() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_text("Sunny.", usage(20, 3)));
        let model = claude(&server, false);
        let messages = [Message::user("What's the weather in Paris?")];
        let tools = [weather_tool()];
        let request = ChatRequest::new(SYSTEM, &messages)
            .tools(&tools)
            .max_tokens(1024);
        chat_with(model.as_ref(), &request).0.unwrap();

        let sent = only_request(&server);
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.header("x-api-key"), Some(KEY));
        assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(sent.header("authorization"), None);
        assert!(
            sent.header("content-type")
                .is_some_and(|value| value.starts_with("application/json"))
        );
        let body = sent.json();
        assert_eq!(body["model"], "claude-sonnet-4-5");
        assert_eq!(body["max_tokens"], 1024);
        // Cache breakpoints (prompt caching is on by default): the system prompt, the last
        // tool and the end of the conversation.
        assert_eq!(
            body["system"],
            json!([{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}])
        );
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1, "no system role inside messages: {body}");
        assert_eq!(
            messages[0]["content"][0]["cache_control"],
            json!({"type": "ephemeral"})
        );
        assert_eq!(messages[0]["role"], "user");
        let content = &messages[0]["content"];
        let text = content
            .as_str()
            .map(str::to_string)
            .or_else(|| content[0]["text"].as_str().map(str::to_string));
        assert_eq!(text.as_deref(), Some("What's the weather in Paris?"));
        assert_eq!(
            body["tools"],
            json!([{
                "name": "get_weather",
                "description": "Get the current weather in a given location",
                "input_schema": tools[0].parameters,
                "cache_control": {"type": "ephemeral"}
            }])
        );
        assert!(
            body.get("stream").is_none_or(|stream| stream == false),
            "{body}"
        );
    });
}

#[test]
fn a_streaming_request_says_so_and_an_empty_system_prompt_is_left_out() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_stream_text(&["Sunny."], usage(20, 3)));
        let model = claude(&server, true);
        let messages = [Message::user("Hi")];
        chat_with(model.as_ref(), &ChatRequest::new("", &messages))
            .0
            .unwrap();
        let body = only_request(&server).json();
        assert_eq!(body["stream"], true);
        assert!(body.get("system").is_none(), "{body}");
        assert!(body.get("tools").is_none(), "{body}");
        assert_eq!(body["max_tokens"], subtask::llm::DEFAULT_MAX_TOKENS);
    });
}

#[test]
fn a_base_url_ending_in_v1_reaches_the_same_endpoint() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_text("Sunny.", usage(20, 3)));
        let model = ModelConfig::parse("anthropic:claude-sonnet-4-5")
            .unwrap()
            .api_key(KEY)
            .base_url(server.base_url() + "/v1/")
            .stream(false)
            .build()
            .unwrap();
        answer(model.as_ref());
        assert_eq!(only_request(&server).path, "/v1/messages");
    });
}

#[test]
fn a_second_turn_sends_tool_use_objects_then_tool_results_first_with_is_error() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_stream_text(&["Sunny."], usage(20, 3)));
        let model = claude(&server, true);
        let messages = vec![
            Message::user("What's the weather in Paris and Rome?"),
            Message {
                role: Role::Assistant,
                content: vec![
                    ContentBlock::Text {
                        text: "I'll check both.".into(),
                    },
                    ContentBlock::ToolUse(ToolUse {
                        id: "toolu_01A".into(),
                        name: "get_weather".into(),
                        input: ToolInput::parse(r#"{"location":"Paris"}"#),
                        extra: None,
                    }),
                    ContentBlock::ToolUse(ToolUse {
                        id: "toolu_01B".into(),
                        name: "get_weather".into(),
                        input: ToolInput::parse(r#"{"location":"Rome"}"#),
                        extra: None,
                    }),
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    // Text first on purpose: the results must still lead the message.
                    ContentBlock::Text {
                        text: "Answer in one line.".into(),
                    },
                    ContentBlock::ToolResult(ToolResult {
                        tool_use_id: "toolu_01A".into(),
                        content: "18 °C, sunny".into(),
                        is_error: false,
                    }),
                    ContentBlock::ToolResult(ToolResult {
                        tool_use_id: "toolu_01B".into(),
                        content: "service unavailable".into(),
                        is_error: true,
                    }),
                ],
            },
        ];
        let tools = [weather_tool()];
        chat_with(
            model.as_ref(),
            &ChatRequest::new(SYSTEM, &messages).tools(&tools),
        )
        .0
        .unwrap();

        let body = only_request(&server).json();
        let sent = body["messages"].as_array().unwrap();
        assert_eq!(sent.len(), 3, "{body}");
        assert_eq!(sent[1]["role"], "assistant");
        assert_eq!(
            sent[1]["content"],
            json!([
                {"type": "text", "text": "I'll check both."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
                 "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "toolu_01B", "name": "get_weather",
                 "input": {"location": "Rome"}}
            ])
        );
        assert_eq!(sent[2]["role"], "user");
        let content = sent[2]["content"].as_array().unwrap();
        let kinds: Vec<&str> = content
            .iter()
            .map(|block| block["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["tool_result", "tool_result", "text"]);
        assert_eq!(content[0]["tool_use_id"], "toolu_01A");
        assert_eq!(content[0]["content"], "18 °C, sunny");
        assert_eq!(content[0]["is_error"], false);
        assert_eq!(content[1]["tool_use_id"], "toolu_01B");
        assert_eq!(content[1]["is_error"], true);
        assert_eq!(content[2]["text"], "Answer in one line.");
    });
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

#[test]
fn a_text_answer_is_read_with_usage_and_cost() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_text("Sunny, 18 °C.", usage(377, 65)));
        let (response, _) = answer(claude(&server, false).as_ref());
        assert_eq!(response.message.role, Role::Assistant);
        assert_eq!(response.message.text(), "Sunny, 18 °C.");
        assert_eq!(response.stop_reason, StopReason::EndTurn);
        assert_eq!(response.model, ANTHROPIC_MODEL);
        assert_eq!(
            (response.usage.input_tokens, response.usage.output_tokens),
            (377, 65)
        );
        assert_close(
            response
                .usage
                .cost_usd
                .expect("claude-sonnet-4-5 has a price"),
            sonnet_cost(377.0, 65.0, 0.0, 0.0),
        );
    });
}

#[test]
fn cache_tokens_are_mapped_and_priced() {
    watchdog(|| {
        let server = LlmServer::start();
        let mut body = anthropic_message(
            vec![json!({"type": "text", "text": "Sunny."})],
            "end_turn",
            usage(50, 10),
        );
        body["usage"]["cache_creation_input_tokens"] = json!(1000);
        body["usage"]["cache_read_input_tokens"] = json!(2000);
        server.push(anthropic_json(200, &body));
        let (response, _) = answer(claude(&server, false).as_ref());
        let usage = response.usage;
        assert_eq!(usage.input_tokens, 50);
        assert_eq!(usage.output_tokens, 10);
        assert_eq!(
            usage.cache_write_tokens, 1000,
            "cache_creation → cache_write"
        );
        assert_eq!(usage.cache_read_tokens, 2000, "cache_read → cache_read");
        assert_eq!(usage.total_input_tokens(), 3050);
        assert_close(
            usage.cost_usd.unwrap(),
            sonnet_cost(50.0, 10.0, 2000.0, 1000.0),
        );
    });
}

#[test]
fn a_max_tokens_stop_is_reported() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_max_tokens("Sunny and", usage(20, 1024)));
        let (response, _) = answer(claude(&server, false).as_ref());
        assert_eq!(response.stop_reason, StopReason::MaxTokens);
        assert_eq!(response.message.text(), "Sunny and");
    });
}

#[test]
fn a_tool_use_answer_is_read() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_tool_use(
            "I'll check.",
            &[
                ("toolu_01A", "get_weather", json!({"location": "Paris"})),
                ("toolu_01B", "get_time", json!({})),
            ],
            usage(377, 65),
        ));
        let (response, _) = answer(claude(&server, false).as_ref());
        assert_eq!(response.stop_reason, StopReason::ToolUse);
        assert_eq!(response.message.text(), "I'll check.");
        assert_eq!(
            calls(&response),
            [
                (
                    "toolu_01A".to_string(),
                    "get_weather".to_string(),
                    json_input(json!({"location": "Paris"}))
                ),
                (
                    "toolu_01B".to_string(),
                    "get_time".to_string(),
                    json_input(json!({}))
                ),
            ]
        );
        assert!(matches!(
            response.message.content[0],
            ContentBlock::Text { .. }
        ));
    });
}

#[test]
fn a_streamed_text_answer_arrives_as_deltas_in_order() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_stream_text(
            &["Sunny", ", 18 ", "°C."],
            usage(25, 7),
        ));
        let (response, seen) = answer(claude(&server, true).as_ref());
        assert_eq!(
            seen,
            [
                Seen::Text("Sunny".into()),
                Seen::Text(", 18 ".into()),
                Seen::Text("°C.".into())
            ]
        );
        assert_eq!(response.message.text(), "Sunny, 18 °C.");
        assert_eq!(response.stop_reason, StopReason::EndTurn);
        assert_eq!(
            (response.usage.input_tokens, response.usage.output_tokens),
            (25, 7)
        );
        assert_close(
            response.usage.cost_usd.unwrap(),
            sonnet_cost(25.0, 7.0, 0.0, 0.0),
        );
    });
}

#[test]
fn the_captured_tool_use_stream_gives_text_and_a_tool_call() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_captured_tool_use_stream());
        let (response, seen) = answer(claude(&server, true).as_ref());
        assert_eq!(response.stop_reason, StopReason::ToolUse);
        assert_eq!(
            response.message.text(),
            "I'll check the current weather in Paris for you."
        );
        assert_eq!(
            calls(&response),
            [(
                "toolu_01NRLabsLyVHZPKxbKvkfSMn".to_string(),
                "get_weather".to_string(),
                json_input(json!({"location": "Paris"}))
            )]
        );
        assert_eq!(response.model, "claude-sonnet-4-20250514");
        assert_eq!(
            (response.usage.input_tokens, response.usage.output_tokens),
            (377, 65),
            "input from message_start, output from the cumulative message_delta"
        );
        assert_close(
            response.usage.cost_usd.unwrap(),
            sonnet_cost(377.0, 65.0, 0.0, 0.0),
        );
        assert_eq!(
            seen,
            [
                Seen::Text("I'll check the current weather in Paris for you.".into()),
                Seen::Call("get_weather".into()),
                Seen::Input(r#"{"locati"#.into()),
                Seen::Input(r#"on": "P"#.into()),
                Seen::Input("ar".into()),
                Seen::Input(r#"is"}"#.into()),
            ],
            "ping and the empty first fragment send nothing"
        );
    });
}

#[test]
fn a_streamed_tool_without_input_deltas_has_empty_input() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_stream_tool_use(
            "",
            &[
                ("toolu_01A", "get_time", &[]),
                (
                    "toolu_01B",
                    "get_weather",
                    &[r#"{"location":"#, r#""Rome"}"#],
                ),
            ],
            usage(30, 12),
        ));
        let (response, seen) = answer(claude(&server, true).as_ref());
        assert_eq!(response.stop_reason, StopReason::ToolUse);
        assert_eq!(response.message.text(), "");
        assert_eq!(
            calls(&response),
            [
                (
                    "toolu_01A".to_string(),
                    "get_time".to_string(),
                    json_input(json!({}))
                ),
                (
                    "toolu_01B".to_string(),
                    "get_weather".to_string(),
                    json_input(json!({"location": "Rome"}))
                ),
            ]
        );
        assert_eq!(seen[0], Seen::Call("get_time".into()));
        assert_eq!(seen[1], Seen::Call("get_weather".into()));
    });
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn client_errors_are_not_retried() {
    watchdog(|| {
        let server = LlmServer::start();
        let model = claude(&server, true);
        let cases = [
            (
                400,
                "invalid_request_error",
                "messages: at least one message is required",
            ),
            (401, "authentication_error", "invalid x-api-key"),
            (402, "billing_error", "Your credit balance is too low"),
            (
                403,
                "permission_error",
                "Your API key does not have permission",
            ),
            (404, "not_found_error", "model: claude-sonnet-9"),
            (
                413,
                "request_too_large",
                "Request exceeds the maximum allowed size",
            ),
        ];
        for (count, (status, error_type, message)) in cases.into_iter().enumerate() {
            server.push(anthropic_error(status, error_type, message));
            let error = failure(model.as_ref());
            assert_eq!(error.kind(), ErrorKind::Provider, "{status}: {error:?}");
            assert!(!error.is_retryable(), "{status}: {error:?}");
            let details = details(&error);
            assert_eq!(details.provider, "anthropic");
            assert_eq!(details.status, Some(status));
            assert_eq!(details.error_type.as_deref(), Some(error_type));
            assert_eq!(details.message, message);
            assert_eq!(details.attempts, 1);
            assert!(error.to_string().contains(message), "{error}");
            assert_eq!(
                server.requests().len(),
                count + 1,
                "HTTP {status} was retried"
            );
        }
    });
}

#[test]
fn an_overloaded_529_is_retried_after_a_backoff_then_succeeds() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_overloaded());
        server.push(anthropic_text("Sunny.", usage(20, 3)));
        let (response, _) = answer(claude(&server, false).as_ref());
        assert_eq!(response.message.text(), "Sunny.");
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        let gap = requests[1].at - requests[0].at;
        // No retry-after: the first backoff is 0.5 s less up to a quarter of jitter.
        assert!(gap >= Duration::from_millis(370), "retried after {gap:?}");
    });
}

#[test]
fn an_overload_reported_as_429_is_retried() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(with_header(
            anthropic_overloaded_429(),
            "retry-after-ms",
            "10",
        ));
        server.push(anthropic_text("Sunny.", usage(20, 3)));
        let (response, _) = answer(claude(&server, false).as_ref());
        assert_eq!(response.message.text(), "Sunny.");
        assert_eq!(server.requests().len(), 2);
    });
}

#[test]
fn a_mid_stream_overloaded_error_is_a_retryable_provider_error() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_stream_overloaded(&["Sun", "ny"]));
        let (result, seen) = ask(claude(&server, true).as_ref());
        let error = result.expect_err("an error event is not an answer");
        assert_eq!(seen, [Seen::Text("Sun".into()), Seen::Text("ny".into())]);
        assert_eq!(error.kind(), ErrorKind::Provider);
        assert!(error.is_retryable(), "{error:?}");
        let details = details(&error);
        assert_eq!(details.error_type.as_deref(), Some("overloaded_error"));
        assert_eq!(details.status, Some(200));
        assert_eq!(details.message, "Overloaded");
        assert!(details.request_id.is_some(), "{details:?}");
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn a_spend_limit_429_is_not_retried() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_spend_limit());
        let error = failure(claude(&server, false).as_ref());
        assert_eq!(error.kind(), ErrorKind::Provider);
        assert!(!error.is_retryable());
        let details = details(&error);
        assert_eq!(details.status, Some(429));
        assert_eq!(details.error_type.as_deref(), Some("rate_limit_error"));
        assert_eq!(
            details.code.as_deref(),
            Some("enforced_spend_limit_reached")
        );
        assert!(details.message.contains("API usage limits"), "{error}");
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn the_request_id_comes_from_the_request_id_header() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(with_header(
            anthropic_error(400, "invalid_request_error", "bad"),
            "request-id",
            "req_011CSLsW7mFqvHHnzrKdKjAE",
        ));
        let error = failure(claude(&server, false).as_ref());
        assert_eq!(
            details(&error).request_id.as_deref(),
            Some("req_011CSLsW7mFqvHHnzrKdKjAE")
        );
        assert!(
            error.to_string().contains("req_011CSLsW7mFqvHHnzrKdKjAE"),
            "{error}"
        );
    });
}

#[test]
fn an_error_body_with_status_200_is_an_error() {
    watchdog(|| {
        let server = LlmServer::start();
        // An api_error is retryable, in a body as in a status: tried three times in all.
        for _ in 0..3 {
            server.push(anthropic_json(
                200,
                &json!({"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}),
            ));
        }
        let error = failure(claude(&server, false).as_ref());
        assert_eq!(error.kind(), ErrorKind::Provider);
        assert_eq!(details(&error).status, Some(200));
        assert_eq!(details(&error).error_type.as_deref(), Some("api_error"));
        assert_eq!(server.requests().len(), 3);
    });
}

#[test]
fn a_truncated_stream_is_an_error_not_an_answer() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(truncated(anthropic_stream_text(
            &["Sun", "ny"],
            usage(20, 3),
        )));
        let (result, seen) = ask(claude(&server, true).as_ref());
        let error = match result {
            Ok(response) => panic!("a truncated stream answered {response:?}"),
            Err(error) => error,
        };
        assert_eq!(seen, [Seen::Text("Sun".into()), Seen::Text("ny".into())]);
        assert_eq!(error.kind(), ErrorKind::Provider);
        assert!(error.is_retryable());
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn a_malformed_body_is_a_provider_error() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(Reply::Json {
            status: 200,
            headers: Vec::new(),
            body: r#"{"type": "message", "content": ["#.into(),
        });
        let error = failure(claude(&server, false).as_ref());
        assert_eq!(error.kind(), ErrorKind::Provider);
        assert_eq!(details(&error).status, Some(200));
    });
}

// ---------------------------------------------------------------------------------------------
// Thinking blocks and other stop reasons
// ---------------------------------------------------------------------------------------------

#[test]
fn thinking_blocks_stay_out_of_the_answer() {
    watchdog(|| {
        let server = LlmServer::start();
        let body = anthropic_message(
            vec![
                json!({"type": "thinking", "thinking": "Paris is in France.", "signature": "EqQB"}),
                json!({"type": "text", "text": "Sunny."}),
            ],
            "end_turn",
            usage(20, 30),
        );
        server.push(anthropic_json(200, &body));
        let (response, _) = answer(claude(&server, false).as_ref());
        assert_eq!(response.message.text(), "Sunny.");
        // Kept (for the next turn of a tool loop), but never part of the answer.
        assert_eq!(
            response.message.content[0],
            ContentBlock::Thinking {
                thinking: "Paris is in France.".into(),
                signature: "EqQB".into()
            },
            "{response:?}"
        );
        assert_eq!(response.message.content.len(), 2, "{response:?}");

        let event = |value: Value| {
            let name = value["type"].as_str().unwrap().to_string();
            Step::named(&name, value.to_string())
        };
        let mut message = anthropic_message(Vec::new(), "", usage(20, 1));
        message["stop_reason"] = Value::Null;
        server.push(sse_reply(vec![
            event(json!({"type": "message_start", "message": message})),
            event(json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "thinking", "thinking": ""}})),
            event(json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "Paris is in France."}})),
            event(json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "signature_delta", "signature": "EqQB"}})),
            event(json!({"type": "content_block_stop", "index": 0})),
            event(json!({"type": "content_block_start", "index": 1,
                "content_block": {"type": "text", "text": ""}})),
            event(json!({"type": "content_block_delta", "index": 1,
                "delta": {"type": "text_delta", "text": "Sunny."}})),
            event(json!({"type": "content_block_stop", "index": 1})),
            event(json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": 30}})),
            event(json!({"type": "message_stop"})),
        ]));
        let (response, seen) = answer(claude(&server, true).as_ref());
        assert_eq!(response.message.text(), "Sunny.");
        assert_eq!(
            seen,
            [
                Seen::Reasoning("Paris is in France.".into()),
                Seen::Text("Sunny.".into())
            ]
        );
        assert_eq!(
            response.message.content[0],
            ContentBlock::Thinking {
                thinking: "Paris is in France.".into(),
                signature: "EqQB".into()
            }
        );
        assert_eq!(response.usage.output_tokens, 30);
    });
}

#[test]
fn other_stop_reasons_are_reported() {
    watchdog(|| {
        let server = LlmServer::start();
        let model = claude(&server, false);
        for (reason, expected) in [
            ("refusal", StopReason::Refusal),
            ("stop_sequence", StopReason::StopSequence),
            ("pause_turn", StopReason::PauseTurn),
            (
                "model_context_window_exceeded",
                StopReason::ContextWindowExceeded,
            ),
            ("something_new", StopReason::Other("something_new".into())),
        ] {
            let body = anthropic_message(
                vec![json!({"type": "text", "text": "…"})],
                reason,
                usage(20, 3),
            );
            server.push(anthropic_json(200, &body));
            assert_eq!(answer(model.as_ref()).0.stop_reason, expected, "{reason}");
        }
    });
}
