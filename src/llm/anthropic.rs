//! Anthropic's Messages API: `tool_use` / `tool_result` blocks, a top-level system prompt,
//! and named SSE events (`input_json_delta` assembly, `ping`, cumulative `message_delta`
//! usage, mid-stream `error`).

use std::collections::BTreeMap;
use std::io::BufReader;

use serde_json::{Value, json};

use super::config::ApiKey;
use super::http::{Exchange, Failure, HttpClient, HttpOptions, preview};
use super::message::{
    ChatResponse, ContentBlock, Message, Role, StopReason, ToolInput, ToolUse, Usage,
};
use super::pricing::{Price, price_of};
use super::settings::{ModelSettings, ReasoningEffort, merge_body};
use super::sse::SseReader;
use super::{ChatModel, ChatRequest, Delta};
use crate::error::Error;
use crate::runtime::CancelToken;

const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A five-minute cache breakpoint (`cache_control` on a block).
fn ephemeral() -> Value {
    json!({"type": "ephemeral"})
}

/// Settings of an [`Anthropic`] model; usually made by
/// [`ModelConfig::build`](super::ModelConfig::build).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AnthropicConfig {
    /// The model, e.g. `claude-sonnet-4-5`.
    pub model: String,
    /// Sent as `x-api-key`.
    pub api_key: ApiKey,
    /// Defaults to `https://api.anthropic.com` (a trailing `/v1` is accepted too).
    pub base_url: Option<String>,
    /// Retries and timeouts.
    pub http: HttpOptions,
    /// Stream responses.
    pub stream: bool,
    /// Overrides the price table.
    pub price: Option<Price>,
    /// Thinking, prompt caching, extra headers and body fields.
    pub settings: ModelSettings,
}

impl AnthropicConfig {
    /// Settings for `model` at Anthropic, streaming, with the default retries and timeouts.
    pub fn new(model: impl Into<String>, api_key: ApiKey) -> AnthropicConfig {
        AnthropicConfig {
            model: model.into(),
            api_key,
            base_url: None,
            http: HttpOptions::default(),
            stream: true,
            price: None,
            settings: ModelSettings::default(),
        }
    }

    /// Sets the base URL (`https://api.anthropic.com` by default).
    pub fn base_url(mut self, url: impl Into<String>) -> AnthropicConfig {
        self.base_url = Some(url.into());
        self
    }
}

/// A Claude model behind `POST {base}/v1/messages`.
pub struct Anthropic {
    config: AnthropicConfig,
    name: String,
    url: String,
    price: Option<Price>,
    http: HttpClient,
}

impl Anthropic {
    /// A model with these settings.
    pub fn new(config: AnthropicConfig) -> Anthropic {
        let base = config
            .base_url
            .as_deref()
            .unwrap_or(ANTHROPIC_BASE_URL)
            .trim_end_matches('/');
        let url = match base.strip_suffix("/v1") {
            Some(base) => format!("{base}/v1/messages"),
            None => format!("{base}/v1/messages"),
        };
        Anthropic {
            name: format!("anthropic:{}", config.model),
            url,
            price: config.price.or_else(|| price_of(&config.model)),
            http: HttpClient::new(
                "anthropic",
                config.http.clone(),
                parse_error,
                Some(config.api_key.clone()),
            ),
            config,
        }
    }

    fn body(&self, request: &ChatRequest<'_>) -> Result<Value, Error> {
        let settings = &self.config.settings;
        // Breakpoints on the tools, the system prompt and the end of the conversation: up
        // to three of the four the API allows. The prefix up to each is cached for five
        // minutes, so every turn of a tool loop reads the one before it from the cache.
        let caching = settings.prompt_caching.unwrap_or(true);
        let mut messages: Vec<Value> = request.messages.iter().map(message_json).collect();
        if caching {
            mark_conversation_end(&mut messages);
        }
        let mut max_tokens = request.max_tokens;
        let effort = request.reasoning_effort.or(settings.reasoning_effort);
        let thinking = match (settings.thinking_budget, effort) {
            (_, Some(ReasoningEffort::None)) => Some((json!({"type": "disabled"}), None)),
            (Some(budget), _) => {
                // The budget must stay below max_tokens: the answer keeps its own allowance.
                max_tokens = max_tokens.saturating_add(budget);
                Some((json!({"type": "enabled", "budget_tokens": budget}), None))
            }
            (None, Some(effort)) => {
                let effort = match effort {
                    ReasoningEffort::Minimal => "low",
                    other => other.as_str(),
                };
                Some((json!({"type": "adaptive"}), Some(effort)))
            }
            (None, None) => None,
        };
        let mut body = json!({
            "model": self.config.model,
            "max_tokens": max_tokens,
            "messages": messages,
        });
        if !request.system.is_empty() {
            body["system"] = if caching {
                json!([{"type": "text", "text": request.system, "cache_control": ephemeral()}])
            } else {
                json!(request.system)
            };
        }
        if !request.tools.is_empty() {
            let mut tools: Vec<Value> = request
                .tools
                .iter()
                .map(|tool| {
                    json!({
                        "name": tool.name,
                        "description": tool.description,
                        "input_schema": tool.parameters,
                    })
                })
                .collect();
            if caching && let Some(last) = tools.last_mut() {
                last["cache_control"] = ephemeral();
            }
            body["tools"] = Value::Array(tools);
        }
        if let Some((thinking, effort)) = thinking {
            body["thinking"] = thinking;
            if let Some(effort) = effort {
                body["output_config"] = json!({"effort": effort});
            }
        }
        if self.config.stream {
            body["stream"] = json!(true);
        }
        merge_body(&mut body, &settings.extra_body);
        Ok(body)
    }

    fn read_stream(
        &self,
        exchange: &mut Exchange<'_>,
        token: &CancelToken,
        on_delta: &mut dyn FnMut(Delta<'_>),
    ) -> Result<ChatResponse, Error> {
        let mut events = SseReader::new(BufReader::new(exchange.reader()));
        let mut stream = Assembly::default();
        loop {
            let event = match events.next_event() {
                Ok(event) => event,
                Err(error) => return Err(exchange.client().body_error(error, exchange)),
            };
            token.check()?;
            let Some(event) = event else {
                return Err(exchange.error(
                    None,
                    None,
                    "the stream ended before message_stop (truncated); try again".into(),
                    true,
                ));
            };
            if event.data.trim().is_empty() {
                continue; // an empty `data:` is no JSON and no event of the API's
            }
            let data: Value = serde_json::from_str(&event.data).map_err(|error| {
                exchange.error(
                    None,
                    None,
                    format!(
                        "the stream sent malformed JSON ({error}): {}",
                        exchange.preview(&event.data)
                    ),
                    false,
                )
            })?;
            let kind = event
                .event
                .as_deref()
                .or_else(|| data["type"].as_str())
                .unwrap_or_default();
            match kind {
                "message_stop" => break,
                "error" => {
                    let failure = error_failure(&data);
                    let retryable = failure.retryable.unwrap_or(false);
                    return Err(exchange.error(
                        failure.error_type,
                        failure.code,
                        failure.message,
                        retryable,
                    ));
                }
                _ => stream.apply(kind, &data, on_delta),
            }
        }
        events.drain();
        Ok(self.response(stream))
    }

    fn read_body(&self, exchange: &mut Exchange<'_>) -> Result<ChatResponse, Error> {
        let text = exchange.text()?;
        let body: Value = serde_json::from_str(&text).map_err(|error| {
            exchange.error(
                None,
                None,
                format!("the response is not JSON ({error})"),
                false,
            )
        })?;
        if body["type"] == "error" {
            let failure = error_failure(&body);
            let retryable = failure.retryable.unwrap_or(false);
            return Err(exchange.error(
                failure.error_type,
                failure.code,
                failure.message,
                retryable,
            ));
        }
        let mut stream = Assembly {
            model: body["model"].as_str().map(str::to_string),
            stop_reason: body["stop_reason"].as_str().map(str::to_string),
            ..Assembly::default()
        };
        stream.read_usage(&body["usage"]);
        for (index, block) in body["content"].as_array().into_iter().flatten().enumerate() {
            let mut partial = Block::start(block);
            if let Block::Tool { input, .. } = &mut partial {
                *input = block["input"].to_string();
            }
            stream.blocks.insert(index as u64, partial);
        }
        Ok(self.response(stream))
    }

    fn response(&self, stream: Assembly) -> ChatResponse {
        let mut content = Vec::new();
        let mut tools = false;
        for block in stream.blocks.into_values() {
            match block {
                Block::Text(text) if !text.is_empty() => content.push(ContentBlock::Text { text }),
                Block::Text(_) | Block::Other => {}
                Block::Tool { id, name, input } => {
                    tools = true;
                    content.push(ContentBlock::ToolUse(ToolUse {
                        id,
                        name,
                        // A tool without input deltas means no arguments.
                        input: ToolInput::parse(&input),
                        extra: None,
                    }));
                }
                // Kept exactly as sent, in their place: a tool-loop continuation must
                // start with them unchanged or the API refuses it.
                Block::Thinking {
                    thinking,
                    signature,
                } => content.push(ContentBlock::Thinking {
                    thinking,
                    signature,
                }),
                Block::RedactedThinking(data) => {
                    content.push(ContentBlock::RedactedThinking { data })
                }
            }
        }
        let stop_reason = match stream.stop_reason.as_deref() {
            // A cut reply's tool call may be incomplete: the cut wins over the call.
            Some("max_tokens") => StopReason::MaxTokens,
            Some("model_context_window_exceeded") => StopReason::ContextWindowExceeded,
            _ if tools => StopReason::ToolUse,
            Some("end_turn") | None => StopReason::EndTurn,
            Some("tool_use") => StopReason::ToolUse,
            Some("stop_sequence") => StopReason::StopSequence,
            Some("refusal") => StopReason::Refusal,
            Some("pause_turn") => StopReason::PauseTurn,
            Some(other) => StopReason::Other(other.to_string()),
        };
        let mut usage = stream.usage;
        usage.cost_usd = self.price.map(|price| price.cost(&usage));
        ChatResponse {
            message: Message {
                role: Role::Assistant,
                content,
            },
            stop_reason,
            usage,
            model: stream.model.unwrap_or_else(|| self.config.model.clone()),
        }
    }
}

impl ChatModel for Anthropic {
    fn chat(
        &self,
        request: &ChatRequest<'_>,
        token: &CancelToken,
        on_delta: &mut dyn FnMut(Delta<'_>),
    ) -> Result<ChatResponse, Error> {
        let mut headers = vec![
            ("x-api-key", self.config.api_key.expose()),
            ("anthropic-version", ANTHROPIC_VERSION),
            ("accept", "application/json, text/event-stream"),
        ];
        for (name, value) in &self.config.settings.extra_headers {
            if name != "x-api-key" {
                headers.retain(|(existing, _)| existing != name);
                headers.push((name, value));
            }
        }
        let body = self.body(request)?;
        let mut body_retries = 0;
        loop {
            let mut exchange = self.http.post_json(&self.url, &headers, &body, token)?;
            let mut handed_on = false;
            let result = if self.config.stream {
                self.read_stream(&mut exchange, token, &mut |delta| {
                    handed_on = true;
                    on_delta(delta);
                })
            } else {
                self.read_body(&mut exchange)
            };
            drop(exchange);
            match result {
                // An error event (overloaded_error…) or a cut before anything was handed
                // on is retried like the same error as a status code.
                Err(error)
                    if !handed_on && self.http.retry_body(&error, &mut body_retries, token)? => {}
                other => return other,
            }
        }
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anthropic")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// One message in Messages form. In a user message, tool results come first: the API
/// refuses text before them. In an assistant message, thinking blocks stay where they were,
/// unchanged. A message with nothing to send gets a short text: the API refuses empty
/// content, and such a message would poison a saved conversation for good.
fn message_json(message: &Message) -> Value {
    let mut results = Vec::new();
    let mut others = Vec::new();
    for block in &message.content {
        match block {
            ContentBlock::Text { text } if !text.is_empty() => {
                others.push(json!({"type": "text", "text": text}));
            }
            ContentBlock::Text { .. } => {} // the API refuses empty text blocks
            ContentBlock::ToolUse(call) => others.push(json!({
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": call.input.to_value(),
            })),
            ContentBlock::ToolResult(result) => results.push(json!({
                "type": "tool_result",
                "tool_use_id": result.tool_use_id,
                // An error result with empty content is refused with a 400; an empty
                // success says so too rather than risk it.
                "content": if !result.content.trim().is_empty() {
                    result.content.as_str()
                } else if result.is_error {
                    "the tool failed without a message"
                } else {
                    "(no output)"
                },
                "is_error": result.is_error,
            })),
            ContentBlock::Thinking {
                thinking,
                signature,
            } => others.push(json!({
                "type": "thinking",
                "thinking": thinking,
                "signature": signature,
            })),
            ContentBlock::RedactedThinking { data } => {
                others.push(json!({"type": "redacted_thinking", "data": data}))
            }
            // Another provider's reasoning means nothing here.
            ContentBlock::Reasoning { .. } | ContentBlock::Opaque { .. } => {}
        }
    }
    results.extend(others);
    let sendable = results.iter().any(|block| {
        !matches!(
            block["type"].as_str(),
            Some("thinking" | "redacted_thinking")
        )
    });
    if !sendable {
        results.push(json!({"type": "text", "text": EMPTY_REPLY}));
    }
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    json!({"role": role, "content": results})
}

/// Stands in for a message with nothing in it (an empty reply, say).
pub(crate) const EMPTY_REPLY: &str = "(empty reply)";

/// Puts a cache breakpoint on the last block of the conversation that can carry one
/// (thinking blocks cannot).
fn mark_conversation_end(messages: &mut [Value]) {
    let Some(last) = messages.last_mut() else {
        return;
    };
    if let Some(blocks) = last["content"].as_array_mut()
        && let Some(block) = blocks.iter_mut().rev().find(|block| {
            !matches!(
                block["type"].as_str(),
                Some("thinking" | "redacted_thinking")
            )
        })
    {
        block["cache_control"] = ephemeral();
    }
}

/// A response's blocks by index, and what `message_start` / `message_delta` said.
#[derive(Default)]
struct Assembly {
    blocks: BTreeMap<u64, Block>,
    stop_reason: Option<String>,
    usage: Usage,
    model: Option<String>,
}

enum Block {
    Text(String),
    /// `input` accumulates `input_json_delta` fragments (parsed at the end).
    Tool {
        id: String,
        name: String,
        input: String,
    },
    /// `thinking_delta` and `signature_delta` fragments accumulate here.
    Thinking {
        thinking: String,
        signature: String,
    },
    RedactedThinking(String),
    /// Server-tool and unknown blocks: kept out of the answer.
    Other,
}

impl Block {
    fn start(block: &Value) -> Block {
        match block["type"].as_str() {
            Some("text") => Block::Text(block["text"].as_str().unwrap_or_default().to_string()),
            Some("tool_use") => Block::Tool {
                id: block["id"].as_str().unwrap_or_default().to_string(),
                name: block["name"].as_str().unwrap_or_default().to_string(),
                // The `input: {}` placeholder of a stream is ignored; the deltas carry it.
                input: String::new(),
            },
            Some("thinking") => Block::Thinking {
                thinking: block["thinking"].as_str().unwrap_or_default().to_string(),
                signature: block["signature"].as_str().unwrap_or_default().to_string(),
            },
            Some("redacted_thinking") => {
                Block::RedactedThinking(block["data"].as_str().unwrap_or_default().to_string())
            }
            _ => Block::Other,
        }
    }
}

impl Assembly {
    fn apply(&mut self, kind: &str, data: &Value, on_delta: &mut dyn FnMut(Delta<'_>)) {
        let index = data["index"].as_u64().unwrap_or(0);
        match kind {
            "message_start" => {
                let message = &data["message"];
                self.model = message["model"].as_str().map(str::to_string);
                self.read_usage(&message["usage"]);
            }
            "content_block_start" => {
                let block = Block::start(&data["content_block"]);
                match &block {
                    Block::Tool { name, .. } => on_delta(Delta::ToolCall { name }),
                    Block::Text(text) if !text.is_empty() => on_delta(Delta::Text(text)),
                    _ => {}
                }
                self.blocks.insert(index, block);
            }
            "content_block_delta" => {
                let delta = &data["delta"];
                match (self.blocks.get_mut(&index), delta["type"].as_str()) {
                    (Some(Block::Text(text)), Some("text_delta")) => {
                        let part = delta["text"].as_str().unwrap_or_default();
                        text.push_str(part);
                        on_delta(Delta::Text(part));
                    }
                    (Some(Block::Tool { input, .. }), Some("input_json_delta")) => {
                        let part = delta["partial_json"].as_str().unwrap_or_default();
                        input.push_str(part);
                        if !part.is_empty() {
                            on_delta(Delta::ToolInput(part));
                        }
                    }
                    (Some(Block::Thinking { thinking, .. }), Some("thinking_delta")) => {
                        let part = delta["thinking"].as_str().unwrap_or_default();
                        thinking.push_str(part);
                        if !part.is_empty() {
                            on_delta(Delta::Reasoning(part));
                        }
                    }
                    (Some(Block::Thinking { signature, .. }), Some("signature_delta")) => {
                        signature.push_str(delta["signature"].as_str().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(reason.to_string());
                }
                self.read_usage(&data["usage"]);
            }
            _ => {} // ping, content_block_stop, and events added later
        }
    }

    /// Usage counts are cumulative: a field present replaces the one before.
    fn read_usage(&mut self, usage: &Value) {
        let set = |field: &str, slot: &mut u64| {
            if let Some(count) = usage[field].as_u64() {
                *slot = count;
            }
        };
        set("input_tokens", &mut self.usage.input_tokens);
        set("output_tokens", &mut self.usage.output_tokens);
        set("cache_read_input_tokens", &mut self.usage.cache_read_tokens);
        set(
            "cache_creation_input_tokens",
            &mut self.usage.cache_write_tokens,
        );
    }
}

/// `{"type":"error","error":{"type":…,"message":…}}`, in a body or an `error` event.
fn error_failure(body: &Value) -> Failure {
    let error = &body["error"];
    let error_type = error["type"].as_str().map(str::to_string);
    let code = error["details"]["error_code"].as_str().map(str::to_string);
    let retryable = match (error_type.as_deref(), code.as_deref()) {
        (_, Some("enforced_spend_limit_reached")) => Some(false),
        (Some("billing_error" | "authentication_error" | "permission_error"), _) => Some(false),
        (Some("overloaded_error" | "api_error" | "rate_limit_error" | "timeout_error"), _) => {
            Some(true)
        }
        _ => None,
    };
    Failure {
        message: error["message"]
            .as_str()
            .unwrap_or("the server reported an error without a message")
            .to_string(),
        error_type,
        code,
        retryable,
    }
}

fn parse_error(status: u16, body: &str) -> Failure {
    match serde_json::from_str::<Value>(body) {
        Ok(value) if value["error"].is_object() => error_failure(&value),
        _ if body.trim().is_empty() => Failure {
            message: format!("HTTP {status} with an empty body"),
            ..Failure::default()
        },
        _ => Failure {
            message: preview(body),
            ..Failure::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_results_come_first_in_a_user_message() {
        let message = Message {
            role: Role::User,
            content: vec![
                ContentBlock::Text {
                    text: "And then?".into(),
                },
                ContentBlock::ToolResult(super::super::ToolResult {
                    tool_use_id: "toolu_1".into(),
                    content: "42".into(),
                    is_error: false,
                }),
            ],
        };
        let value = message_json(&message);
        assert_eq!(value["content"][0]["type"], "tool_result");
        assert_eq!(value["content"][1]["type"], "text");
    }

    #[test]
    fn a_streamed_tool_call_is_assembled_from_partial_json() {
        let mut assembly = Assembly::default();
        let mut deltas = Vec::new();
        let events = [
            (
                "message_start",
                json!({"message": {"model": "claude-x", "usage": {"input_tokens": 377, "output_tokens": 1}}}),
            ),
            (
                "content_block_start",
                json!({"index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            (
                "content_block_delta",
                json!({"index": 0, "delta": {"type": "text_delta", "text": "Checking."}}),
            ),
            (
                "content_block_start",
                json!({"index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
            ),
            (
                "content_block_delta",
                json!({"index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
            ),
            (
                "content_block_delta",
                json!({"index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"locati"}}),
            ),
            (
                "content_block_delta",
                json!({"index": 1, "delta": {"type": "input_json_delta", "partial_json": "on\": \"Paris\"}"}}),
            ),
            (
                "content_block_start",
                json!({"index": 2, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}}}),
            ),
            (
                "message_delta",
                json!({"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 65}}),
            ),
        ];
        for (kind, data) in &events {
            assembly.apply(kind, data, &mut |delta| deltas.push(format!("{delta:?}")));
        }
        let model = Anthropic::new(AnthropicConfig::new("claude-x", ApiKey::new("k")));
        let response = model.response(assembly);
        assert_eq!(response.stop_reason, StopReason::ToolUse);
        assert_eq!(
            (response.usage.input_tokens, response.usage.output_tokens),
            (377, 65)
        );
        assert_eq!(response.usage.cost_usd, None, "unknown model: no cost");
        let calls: Vec<&ToolUse> = response.message.tool_uses().collect();
        assert_eq!(
            calls[0].input,
            ToolInput::parse("{\"location\": \"Paris\"}")
        );
        assert_eq!(
            calls[1].input,
            ToolInput::parse("{}"),
            "no deltas means no input"
        );
        assert_eq!(response.message.text(), "Checking.");
        assert!(deltas.contains(&"ToolCall { name: \"get_weather\" }".to_string()));
    }

    #[test]
    fn spend_limits_and_billing_are_not_retried_but_overload_is() {
        let spend = parse_error(
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"spend limit","details":{"error_code":"enforced_spend_limit_reached"}}}"#,
        );
        assert_eq!(spend.retryable, Some(false));
        let overloaded = parse_error(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(overloaded.retryable, Some(true));
        assert_eq!(overloaded.message, "Overloaded");
    }

    #[test]
    fn base_urls_with_or_without_v1_work() {
        let config = |base: &str| AnthropicConfig::new("m", ApiKey::new("k")).base_url(base);
        assert_eq!(
            Anthropic::new(config("http://h/v1/")).url,
            "http://h/v1/messages"
        );
        assert_eq!(
            Anthropic::new(config("http://h")).url,
            "http://h/v1/messages"
        );
    }
}
