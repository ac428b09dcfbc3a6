//! Tool loops against servers that check what real ones check (tests/support/llm_rules.rs):
//! a reasoning model's second turn is accepted only when its reasoning came back as the
//! server sent it — Anthropic thinking blocks with their signatures, DeepSeek's
//! `reasoning_content`, Gemini's thought signatures — also after the conversation went
//! through a transcript. Each rule is also shown to bite: the same history without the
//! reasoning gets the real 400. Plus the settings real servers need: `stream_options`
//! refused, an empty streaming body (llama-cpp-python), an error event in a 200 stream,
//! an error result with empty content, the first-byte timeout.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use subtask::llm::{
    ChatModel, ChatRequest, ContentBlock, HttpOptions, Message, ModelConfig, Role, StopReason,
    ToolResult, ToolSpec,
};
use subtask::{Error, ErrorKind};
use support::llm_rules::{Api, Server, Turn};
use support::llm_server::*;
use support::{chat_with, watchdog};

fn read_tool() -> ToolSpec {
    ToolSpec {
        name: "read".into(),
        description: "Read a file".into(),
        parameters: json!({"type": "object", "properties": {"path": {"type": "string"}},
            "required": ["path"]}),
    }
}

fn script() -> Vec<Turn> {
    vec![
        Turn::Calls(vec![("read".into(), json!({"path": "README.md"}))]),
        Turn::Calls(vec![("read".into(), json!({"path": "src/lib.rs"}))]),
        Turn::Text("It is a library.".into()),
    ]
}

fn model(spec: &str, server: &LlmServer, stream: bool) -> Arc<dyn ChatModel> {
    let mut http = HttpOptions::default();
    http.stall_timeout = Duration::from_secs(5);
    http.first_byte_timeout = Duration::from_secs(5);
    let base = if spec.starts_with("anthropic:") {
        server.base_url()
    } else {
        format!("{}/v1", server.base_url())
    };
    ModelConfig::parse(spec)
        .unwrap()
        .api_key("sk-test")
        .base_url(base)
        .http(http)
        .stream(stream)
        .build()
        .unwrap()
}

/// Runs the tool loop to its end; every tool call is answered with a short text. Returns
/// the conversation.
fn tool_loop(model: &dyn ChatModel, mut messages: Vec<Message>) -> Result<Vec<Message>, Error> {
    let tools = [read_tool()];
    for _ in 0..6 {
        let request = ChatRequest::new("You are a subagent.", &messages).tools(&tools);
        let response = chat_with(model, &request).0?;
        let calls: Vec<_> = response.message.tool_uses().cloned().collect();
        messages.push(response.message);
        if calls.is_empty() {
            return Ok(messages);
        }
        messages.push(Message {
            role: Role::User,
            content: calls
                .iter()
                .map(|call| {
                    ContentBlock::ToolResult(ToolResult {
                        tool_use_id: call.id.clone(),
                        content: format!("contents of {}", call.input.to_value()["path"]),
                        is_error: false,
                    })
                })
                .collect(),
        });
    }
    panic!("the loop did not end");
}

/// The conversation as a transcript stores it (JSON lines of messages) and reads it back.
fn through_transcript(messages: &[Message]) -> Vec<Message> {
    let lines: Vec<String> = messages
        .iter()
        .map(|message| serde_json::to_string(message).unwrap())
        .collect();
    lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn without_reasoning(messages: &[Message]) -> Vec<Message> {
    messages
        .iter()
        .map(|message| Message {
            role: message.role,
            content: message
                .content
                .iter()
                .filter(|block| !block.is_reasoning())
                .cloned()
                .map(|block| match block {
                    // Gemini's thought signature goes; a Responses item id stays (a client
                    // that keeps the calls as returned but drops the reasoning items).
                    ContentBlock::ToolUse(mut call)
                        if call
                            .extra
                            .as_ref()
                            .is_some_and(|extra| extra.get("google").is_some()) =>
                    {
                        call.extra = None;
                        ContentBlock::ToolUse(call)
                    }
                    other => other,
                })
                .collect(),
        })
        .collect()
}

fn refused(result: Result<Vec<Message>, Error>) -> Error {
    let error = result.expect_err("the server should refuse the history");
    assert_eq!(error.kind(), ErrorKind::Provider);
    assert_eq!(
        error.provider_details().unwrap().status,
        Some(400),
        "{error}"
    );
    error
}

/// The loop with reasoning on, resumed from its transcript, and the rule shown to bite.
fn reasoning_survives(spec: &str, server_kind: Server, stream: bool, rule: &str) {
    let server = LlmServer::start();
    let api = Api::new(server_kind, script());
    server.push(api.reply());
    let model = model(spec, &server, stream);
    let conversation = tool_loop(model.as_ref(), vec![Message::user("What is this repo?")])
        .unwrap_or_else(|error| panic!("{spec}: {error}; refusals: {:?}", api.refusals()));
    assert_eq!(conversation.last().unwrap().text(), "It is a library.");
    assert!(api.refusals().is_empty(), "{:?}", api.refusals());
    let reasoning = conversation
        .iter()
        .flat_map(|message| &message.content)
        .filter(|block| block.is_reasoning())
        .count()
        + conversation
            .iter()
            .flat_map(|message| message.tool_uses())
            .filter(|call| call.extra.is_some())
            .count();
    assert!(reasoning >= 2, "{spec}: reasoning kept: {conversation:?}");
    for message in &conversation {
        assert!(
            !message.text().contains("Thinking about"),
            "never the answer"
        );
        assert!(
            !message.text().contains("Reasoning for"),
            "never the answer"
        );
    }

    // Resumed from the transcript in a fresh model: the next turns are accepted.
    let resumed = through_transcript(&conversation);
    assert_eq!(resumed, conversation, "transcripts round-trip every part");
    let api = Api::new(server_kind, script());
    let server = LlmServer::start();
    server.push(api.reply());
    let mut history = resumed[..4].to_vec(); // user, call, result, call — then its result
    let call = history[3].tool_uses().next().unwrap().id.clone();
    history.push(Message {
        role: Role::User,
        content: vec![ContentBlock::ToolResult(ToolResult {
            tool_use_id: call,
            content: "pub fn x() {}".into(),
            is_error: false,
        })],
    });
    if server_kind == Server::AnthropicThinking {
        // Its signatures are checked: this server must have issued them.
        let mut turns = script();
        turns.push(Turn::Text("Resumed.".into()));
        let replay = Api::new(server_kind, turns);
        let replay_server = LlmServer::start();
        replay_server.push(replay.reply());
        let fresh = self::model(spec, &replay_server, stream);
        let conversation =
            tool_loop(fresh.as_ref(), vec![Message::user("What is this repo?")]).unwrap();
        let mut history = conversation[..4].to_vec();
        history = through_transcript(&history);
        let call = history[3].tool_uses().next().unwrap().id.clone();
        history.push(Message {
            role: Role::User,
            content: vec![ContentBlock::ToolResult(ToolResult {
                tool_use_id: call,
                content: "pub fn x() {}".into(),
                is_error: false,
            })],
        });
        tool_loop(fresh.as_ref(), history.clone()).unwrap();
        let error = refused(tool_loop(fresh.as_ref(), without_reasoning(&history)));
        assert!(error.message().contains(rule), "{error}");
        return;
    }
    let fresh = self::model(spec, &server, stream);
    let error = refused(tool_loop(fresh.as_ref(), without_reasoning(&history)));
    assert!(error.message().contains(rule), "{error}");
    tool_loop(fresh.as_ref(), history).unwrap();
}

#[test]
fn anthropic_thinking_survives_tool_turns_and_resume_streamed() {
    watchdog(|| {
        reasoning_survives(
            "anthropic:claude-sonnet-5?thinking_budget=2048",
            Server::AnthropicThinking,
            true,
            "Expected `thinking` or `redacted_thinking`",
        )
    });
}

#[test]
fn anthropic_thinking_survives_tool_turns_and_resume_not_streamed() {
    watchdog(|| {
        reasoning_survives(
            "anthropic:claude-sonnet-5?reasoning_effort=high",
            Server::AnthropicThinking,
            false,
            "Expected `thinking` or `redacted_thinking`",
        )
    });
}

#[test]
fn deepseek_reasoning_content_survives_tool_turns_and_resume() {
    watchdog(|| {
        for stream in [true, false] {
            reasoning_survives(
                "openai-compat:deepseek-v4-pro?reasoning_effort=high",
                Server::DeepSeek,
                stream,
                "reasoning_content in the thinking mode must be passed back",
            );
        }
    });
}

#[test]
fn gemini_thought_signatures_survive_tool_turns_and_resume() {
    watchdog(|| {
        for stream in [true, false] {
            reasoning_survives(
                "openai-compat:gemini-3-pro-preview",
                Server::Gemini,
                stream,
                "missing a thought_signature",
            );
        }
    });
}

#[test]
fn responses_reasoning_items_survive_tool_turns_and_resume() {
    watchdog(|| {
        for stream in [true, false] {
            reasoning_survives(
                "openai-responses:gpt-5.5?reasoning_effort=medium",
                Server::Responses,
                stream,
                "without its required 'reasoning' item",
            );
        }
        // The request is stateless and asks for the encrypted reasoning.
        let server = LlmServer::start();
        server.push(Api::new(Server::Responses, vec![Turn::Text("ok".into())]).reply());
        let model = model(
            "openai-responses:gpt-5.5?reasoning_effort=high",
            &server,
            true,
        );
        let messages = [Message::user("hi")];
        let (result, seen) = chat_with(model.as_ref(), &ChatRequest::new("Be brief.", &messages));
        let response = result.unwrap();
        assert_eq!(response.message.text(), "ok");
        assert_eq!(response.usage.cache_read_tokens, 100);
        assert_eq!(response.usage.input_tokens, 20);
        assert!(seen.contains(&support::Seen::Reasoning("Planning step 1.".into())));
        let body = server.requests()[0].json();
        assert_eq!(server.requests()[0].path, "/v1/responses");
        assert_eq!(body["store"], false);
        assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
        assert_eq!(body["reasoning"], json!({"effort": "high"}));
        assert_eq!(body["instructions"], "Be brief.");
    });
}

#[test]
fn a_modified_thinking_block_is_refused_as_the_api_does() {
    watchdog(|| {
        let server = LlmServer::start();
        let api = Api::new(Server::AnthropicThinking, script());
        server.push(api.reply());
        let model = model(
            "anthropic:claude-sonnet-5?thinking_budget=2048",
            &server,
            true,
        );
        let mut conversation =
            tool_loop(model.as_ref(), vec![Message::user("What is this repo?")]).unwrap();
        conversation.truncate(3);
        if let ContentBlock::Thinking { thinking, .. } = &mut conversation[1].content[0] {
            thinking.push_str(" (edited)");
        } else {
            panic!("{conversation:?}");
        }
        let error = refused(tool_loop(model.as_ref(), conversation));
        assert!(error.message().contains("Invalid `signature`"), "{error}");
    });
}

#[test]
fn thinking_settings_reach_the_request() {
    watchdog(|| {
        let server = LlmServer::start();
        let api = Api::new(Server::AnthropicThinking, vec![Turn::Text("ok".into())]);
        server.push(api.reply());
        let budgeted = model(
            "anthropic:claude-sonnet-5?thinking_budget=4096&header.anthropic-beta=interleaved-thinking-2025-05-14",
            &server,
            false,
        );
        let messages = [Message::user("hi")];
        chat_with(
            budgeted.as_ref(),
            &ChatRequest::new("", &messages).max_tokens(1000),
        )
        .0
        .unwrap();
        let sent = &server.requests()[0];
        let body = sent.json();
        assert_eq!(
            body["thinking"],
            json!({"type": "enabled", "budget_tokens": 4096})
        );
        assert_eq!(
            body["max_tokens"], 5096,
            "the answer keeps its own allowance"
        );
        assert_eq!(
            sent.header("anthropic-beta"),
            Some("interleaved-thinking-2025-05-14")
        );

        // Per call: the request's effort wins over the model's.
        let server = LlmServer::start();
        server.push(Api::new(Server::Anthropic, vec![Turn::Text("ok".into())]).reply());
        let low = model(
            "anthropic:claude-sonnet-5?reasoning_effort=low",
            &server,
            false,
        );
        let request = ChatRequest::new("", &messages)
            .reasoning_effort(Some(subtask::llm::ReasoningEffort::Max));
        chat_with(low.as_ref(), &request).0.unwrap();
        let body = server.requests()[0].json();
        assert_eq!(body["thinking"], json!({"type": "adaptive"}));
        assert_eq!(body["output_config"], json!({"effort": "max"}));
    });
}

#[test]
fn openai_style_settings_reach_the_request() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(Api::new(Server::DeepSeek, vec![Turn::Text("ok".into())]).reply());
        let model = model(
            "openai-compat:qwen3?reasoning_effort=low&max_tokens_field=max_tokens&body.chat_template_kwargs={\"enable_thinking\":false}&header.HTTP-Referer=https://example.org",
            &server,
            true,
        );
        let messages = [Message::user("hi")];
        chat_with(
            model.as_ref(),
            &ChatRequest::new("", &messages).max_tokens(512),
        )
        .0
        .unwrap();
        let sent = &server.requests()[0];
        let body = sent.json();
        assert_eq!(body["reasoning_effort"], "low");
        assert_eq!(body["max_tokens"], 512);
        assert_eq!(
            body["chat_template_kwargs"],
            json!({"enable_thinking": false})
        );
        assert_eq!(
            body.get("stream_options"),
            None,
            "omitted for compatible servers"
        );
        assert_eq!(sent.header("http-referer"), Some("https://example.org"));
        assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
    });
}

#[test]
fn stream_options_are_omitted_for_a_server_that_refuses_them_and_its_400_is_clear() {
    watchdog(|| {
        let server = LlmServer::start();
        let api = Api::new(Server::RefusesStreamOptions, script());
        server.push(api.reply());
        let conversation = tool_loop(
            model("openai-compat:gpt-5.4", &server, true).as_ref(),
            vec![Message::user("go")],
        )
        .unwrap();
        assert_eq!(conversation.last().unwrap().text(), "It is a library.");
        let forced = model("openai-compat:gpt-5.4?stream_options=true", &server, true);
        let error = refused(tool_loop(forced.as_ref(), vec![Message::user("go")]));
        assert!(error.message().contains("stream_options"), "{error}");
    });
}

#[test]
fn an_empty_streaming_body_falls_back_to_a_plain_request_and_is_remembered() {
    watchdog(|| {
        let server = LlmServer::start();
        let api = Api::new(Server::LlamaCppPython, script());
        server.push(api.reply());
        let model = model("openai-compat:smollm2", &server, true);
        let conversation = tool_loop(model.as_ref(), vec![Message::user("go")]).unwrap();
        assert_eq!(conversation.last().unwrap().text(), "It is a library.");
        let streamed: Vec<bool> = server
            .requests()
            .iter()
            .map(|request| request.json()["stream"] == true)
            .collect();
        // One streaming try, then plain requests only (remembered for this server).
        assert_eq!(streamed, [true, false, false, false]);
    });
}

#[test]
fn an_error_result_with_empty_content_is_sent_as_text() {
    watchdog(|| {
        let server = LlmServer::start();
        let api = Api::new(Server::Anthropic, vec![Turn::Text("ok".into())]);
        server.push(api.reply());
        let model = model("anthropic:claude-sonnet-5", &server, false);
        let messages = vec![
            Message::user("go"),
            Message {
                role: Role::Assistant,
                content: vec![ContentBlock::ToolUse(subtask::llm::ToolUse {
                    id: "toolu_1".into(),
                    name: "read".into(),
                    input: subtask::llm::ToolInput::parse("{}"),
                    extra: None,
                })],
            },
            Message {
                role: Role::User,
                content: vec![ContentBlock::ToolResult(ToolResult {
                    tool_use_id: "toolu_1".into(),
                    content: String::new(),
                    is_error: true,
                })],
            },
            // An empty reply stored earlier: never sent as empty content.
            Message {
                role: Role::Assistant,
                content: Vec::new(),
            },
            Message::user("again"),
        ];
        let tools = [read_tool()];
        let result = chat_with(
            model.as_ref(),
            &ChatRequest::new("", &messages).tools(&tools),
        );
        result
            .0
            .unwrap_or_else(|error| panic!("{error}: {:?}", api.refusals()));

        // The rule itself: the raw empty error result is refused.
        let mut body = server.requests()[0].json();
        body["messages"][2]["content"][0]["content"] = json!("");
        let refusal = support::llm_rules::anthropic_rejection(&body, &Default::default()).unwrap();
        assert!(format!("{refusal:?}").contains("cannot be empty if `is_error` is true"));
    });
}

#[test]
fn an_overloaded_error_event_before_any_text_is_retried() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(anthropic_stream_overloaded(&[]));
        server.push(anthropic_stream_text(&["Sunny."], usage(10, 2)));
        let model = model("anthropic:claude-sonnet-5", &server, true);
        let messages = [Message::user("weather?")];
        let (result, _) = chat_with(model.as_ref(), &ChatRequest::new("", &messages));
        assert_eq!(result.unwrap().message.text(), "Sunny.");
        assert_eq!(server.requests().len(), 2);
    });
}

#[test]
fn openrouter_mid_stream_server_error_before_any_text_is_retried() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(sse_reply(vec![
            Step::Raw(": OPENROUTER PROCESSING\n\n".into()),
            Step::data(
                json!({"error": {"code": 502, "message": "Provider returned error"}, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]})
                    .to_string(),
            ),
        ]));
        server.push(openai_stream_text(&["Hello"], true));
        let model = model("openai-compat:x-ai/grok-4", &server, true);
        let messages = [Message::user("hi")];
        let (result, _) = chat_with(model.as_ref(), &ChatRequest::new("", &messages));
        assert_eq!(result.unwrap().message.text(), "Hello");
        assert_eq!(server.requests().len(), 2);
    });
}

#[test]
fn a_slow_first_byte_is_awaited_but_a_stall_after_it_is_not() {
    watchdog(|| {
        let server = LlmServer::start();
        // Headers after 300 ms, with a stall timeout of 100 ms: fine, it is the first byte.
        server.push(delayed(
            openai_text("Thought hard.", usage(5, 5)),
            Duration::from_millis(300),
        ));
        let mut http = HttpOptions::default();
        http.stall_timeout = Duration::from_millis(100);
        http.first_byte_timeout = Duration::from_secs(5);
        http.max_retries = 0;
        let model = ModelConfig::parse("openai-compat:r1")
            .unwrap()
            .base_url(format!("{}/v1", server.base_url()))
            .http(http.clone())
            .stream(false)
            .build()
            .unwrap();
        let messages = [Message::user("think")];
        let (result, _) = chat_with(model.as_ref(), &ChatRequest::new("", &messages));
        assert_eq!(result.unwrap().message.text(), "Thought hard.");

        // A first-byte timeout shorter than the wait fails, naming the setting.
        server.push(Reply::Hang);
        http.first_byte_timeout = Duration::from_millis(200);
        let model = ModelConfig::parse("openai-compat:r1")
            .unwrap()
            .base_url(format!("{}/v1", server.base_url()))
            .http(http)
            .build()
            .unwrap();
        let (result, _) = chat_with(model.as_ref(), &ChatRequest::new("", &messages));
        let error = result.unwrap_err();
        assert!(error.message().contains("first-byte timeout"), "{error}");
        assert!(
            error.message().contains("SUBTASK_FIRST_BYTE_TIMEOUT"),
            "{error}"
        );
    });
}

#[test]
fn a_tool_call_cut_at_max_tokens_is_reported_as_cut_not_as_a_call() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_json(
            200,
            &openai_completion(
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                    "type": "function", "function": {"name": "write", "arguments": "{\"path\": \"a\", \"content\": \"lo"}}]}),
                "length",
                usage(5, 8192),
            ),
        ));
        let model = model("openai-compat:m", &server, false);
        let messages = [Message::user("write")];
        let (result, _) = chat_with(model.as_ref(), &ChatRequest::new("", &messages));
        assert_eq!(result.unwrap().stop_reason, StopReason::MaxTokens);
    });
}
