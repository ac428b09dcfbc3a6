//! OpenAI's Responses API (`openai-responses:`), where some current OpenAI models are only
//! served and reasoning items travel between tool turns.
//!
//! Requests are stateless (`store: false`) and ask for `reasoning.encrypted_content`, so a
//! reasoning item comes back whole and is sent back verbatim (as a
//! [`ContentBlock::Opaque`]) before the function calls it led to; the API refuses a
//! `function_call` item whose reasoning item is missing. Function calls keep their item
//! `id` (`fc_…`) for the same reason. Streams are named SSE events (`response.*`): text and
//! argument deltas are handed on as they come; the items of `response.output_item.done`
//! and the usage of `response.completed` are the truth. Checked against openai-python
//! (`types/responses/`: `ResponseReasoningItemParam` — "use the completed reasoning item
//! and its `encrypted_content` from the `response.output_item.done` event",
//! `ResponseFunctionToolCallParam`, `ResponseUsage`, the stream event types).

use std::collections::BTreeMap;
use std::io::BufReader;

use serde_json::{Value, json};

use super::config::{ApiKey, Provider};
use super::http::{Exchange, HttpClient, HttpOptions};
use super::message::{
    ChatResponse, ContentBlock, Message, Role, StopReason, ToolInput, ToolUse, Usage,
};
use super::openai::{embedded_error, parse_error};
use super::pricing::{Price, price_of};
use super::settings::{ModelSettings, merge_body};
use super::sse::SseReader;
use super::{ChatModel, ChatRequest, Delta};
use crate::error::Error;
use crate::runtime::CancelToken;

const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// The provider name on [`ContentBlock::Opaque`] items this module sends back.
pub(crate) const RESPONSES: &str = "openai-responses";

/// A model behind `POST {base}/responses`; made by [`ModelConfig::build`](super::ModelConfig::build)
/// for `openai-responses:` specs.
pub struct OpenAiResponses {
    model: String,
    name: String,
    url: String,
    authorization: Option<String>,
    stream: bool,
    settings: ModelSettings,
    price: Option<Price>,
    http: HttpClient,
}

impl OpenAiResponses {
    /// A model with these settings; `base_url` up to and including `/v1`.
    pub(crate) fn new(
        model: &str,
        api_key: Option<ApiKey>,
        base_url: Option<&str>,
        http: HttpOptions,
        stream: bool,
        settings: ModelSettings,
        price: Option<Price>,
    ) -> OpenAiResponses {
        let base = base_url.unwrap_or(OPENAI_BASE_URL).trim_end_matches('/');
        OpenAiResponses {
            model: model.to_string(),
            name: format!("{}:{model}", Provider::OpenAiResponses),
            url: format!("{base}/responses"),
            authorization: api_key
                .as_ref()
                .map(|key| format!("Bearer {}", key.expose())),
            stream,
            settings,
            price: price.or_else(|| price_of(model)),
            http: HttpClient::new(RESPONSES, http, parse_error, api_key),
        }
    }

    fn body(&self, request: &ChatRequest<'_>) -> Value {
        let mut input = Vec::new();
        for message in request.messages {
            push_items(&mut input, message);
        }
        let mut body = json!({
            "model": self.model,
            "input": input,
            "store": false,
            "include": ["reasoning.encrypted_content"],
            "max_output_tokens": request.max_tokens,
        });
        if !request.system.is_empty() {
            body["instructions"] = json!(request.system);
        }
        if !request.tools.is_empty() {
            body["tools"] = Value::Array(
                request
                    .tools
                    .iter()
                    .map(|tool| {
                        json!({"type": "function", "name": tool.name,
                            "description": tool.description, "parameters": tool.parameters})
                    })
                    .collect(),
            );
        }
        if let Some(effort) = request.reasoning_effort.or(self.settings.reasoning_effort) {
            body["reasoning"] = json!({"effort": effort.as_str()});
        }
        if self.stream {
            body["stream"] = json!(true);
        }
        merge_body(&mut body, &self.settings.extra_body);
        body
    }

    fn read_stream(
        &self,
        exchange: &mut Exchange<'_>,
        token: &CancelToken,
        on_delta: &mut dyn FnMut(Delta<'_>),
    ) -> Result<ChatResponse, Error> {
        let mut events = SseReader::new(BufReader::new(exchange.reader()));
        let mut done: BTreeMap<u64, Value> = BTreeMap::new();
        let finished = loop {
            let event = match events.next_event() {
                Ok(event) => event,
                Err(error) => return Err(exchange.client().body_error(error, exchange)),
            };
            token.check()?;
            let Some(event) = event else {
                return Err(exchange.error(
                    None,
                    None,
                    "the stream ended before response.completed (truncated); try again".into(),
                    true,
                ));
            };
            if event.data.trim().is_empty() || event.data.trim() == "[DONE]" {
                continue;
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
            let kind = data["type"]
                .as_str()
                .or(event.event.as_deref())
                .unwrap_or_default();
            match kind {
                "response.output_text.delta" | "response.refusal.delta" => {
                    if let Some(text) = data["delta"].as_str() {
                        on_delta(Delta::Text(text));
                    }
                }
                "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                    if let Some(text) = data["delta"].as_str() {
                        on_delta(Delta::Reasoning(text));
                    }
                }
                "response.function_call_arguments.delta" => {
                    if let Some(text) = data["delta"].as_str() {
                        on_delta(Delta::ToolInput(text));
                    }
                }
                "response.output_item.added" => {
                    if data["item"]["type"] == "function_call"
                        && let Some(name) = data["item"]["name"].as_str()
                    {
                        on_delta(Delta::ToolCall { name });
                    }
                }
                "response.output_item.done" => {
                    let index = data["output_index"].as_u64().unwrap_or(done.len() as u64);
                    done.insert(index, data["item"].clone());
                }
                "response.completed" | "response.incomplete" => break data["response"].clone(),
                "response.failed" => {
                    let error = &data["response"]["error"];
                    return Err(failure(exchange, error));
                }
                "error" => return Err(failure(exchange, &data)),
                _ => {}
            }
        };
        events.drain();
        let mut response = finished;
        if !done.is_empty() {
            // The completed items of output_item.done are the ones to send back.
            response["output"] = Value::Array(done.into_values().collect());
        }
        Ok(self.response(&response))
    }

    fn read_body(&self, exchange: &mut Exchange<'_>) -> Result<ChatResponse, Error> {
        let text = exchange.text()?;
        let body: Value = serde_json::from_str(&text).map_err(|error| {
            exchange.error(
                None,
                None,
                format!(
                    "the response is not JSON ({error}): {}",
                    exchange.preview(&text)
                ),
                false,
            )
        })?;
        if body["error"].is_object() {
            return Err(failure(exchange, &body["error"]));
        }
        Ok(self.response(&body))
    }

    /// A `Response` object: its output items, status and usage.
    fn response(&self, body: &Value) -> ChatResponse {
        let mut content = Vec::new();
        for item in body["output"].as_array().into_iter().flatten() {
            match item["type"].as_str() {
                Some("reasoning") => content.push(ContentBlock::Opaque {
                    provider: RESPONSES.to_string(),
                    item: item.clone(),
                }),
                Some("message") => {
                    for part in item["content"].as_array().into_iter().flatten() {
                        let text = part["text"].as_str().or_else(|| part["refusal"].as_str());
                        if let Some(text) = text.filter(|text| !text.is_empty()) {
                            content.push(ContentBlock::Text {
                                text: text.to_string(),
                            });
                        }
                    }
                }
                Some("function_call") => content.push(ContentBlock::ToolUse(ToolUse {
                    id: item["call_id"].as_str().unwrap_or_default().to_string(),
                    name: item["name"].as_str().unwrap_or_default().to_string(),
                    input: ToolInput::parse(item["arguments"].as_str().unwrap_or_default()),
                    extra: item["id"].as_str().map(|id| json!({"id": id})),
                })),
                _ => {}
            }
        }
        let refused = body["output"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|item| item["content"].as_array().into_iter().flatten())
            .any(|part| part["type"] == "refusal");
        let calls = content
            .iter()
            .any(|block| matches!(block, ContentBlock::ToolUse(_)));
        let stop_reason = match (
            body["status"].as_str(),
            body["incomplete_details"]["reason"].as_str(),
        ) {
            (Some("incomplete"), Some("max_output_tokens")) => StopReason::MaxTokens,
            (Some("incomplete"), Some("content_filter")) => StopReason::Refusal,
            (Some("incomplete"), reason) => {
                StopReason::Other(reason.unwrap_or("incomplete").to_string())
            }
            _ if refused => StopReason::Refusal,
            _ if calls => StopReason::ToolUse,
            _ => StopReason::EndTurn,
        };
        let usage = &body["usage"];
        let count = |value: &Value| value.as_u64().unwrap_or(0);
        let cached = count(&usage["input_tokens_details"]["cached_tokens"]);
        let mut usage = Usage {
            input_tokens: count(&usage["input_tokens"]).saturating_sub(cached),
            output_tokens: count(&usage["output_tokens"]),
            cache_read_tokens: cached,
            cache_write_tokens: 0,
            cost_usd: None,
        };
        usage.cost_usd = self.price.map(|price| price.cost(&usage));
        ChatResponse {
            message: Message {
                role: Role::Assistant,
                content,
            },
            stop_reason,
            usage,
            model: body["model"]
                .as_str()
                .map_or_else(|| self.model.clone(), str::to_string),
        }
    }
}

/// An `error` object (of an `error` event, a failed response or a body) as an error of
/// this exchange; `server_error` and rate limits are retryable.
fn failure(exchange: &Exchange<'_>, error: &Value) -> Error {
    let parsed = embedded_error(&json!({"error": error})).unwrap_or_default();
    let retryable = parsed.retryable.unwrap_or_else(|| {
        matches!(
            parsed.code.as_deref().or(parsed.error_type.as_deref()),
            Some("server_error" | "rate_limit_exceeded" | "server_is_overloaded")
        )
    });
    exchange.error(parsed.error_type, parsed.code, parsed.message, retryable)
}

/// One message as Responses input items, in its blocks' order (a reasoning item must come
/// before the calls it led to).
fn push_items(out: &mut Vec<Value>, message: &Message) {
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let mut text = Vec::new();
    let flush = |out: &mut Vec<Value>, text: &mut Vec<String>| {
        if !text.is_empty() {
            out.push(json!({"role": role, "content": text.join("\n\n")}));
            text.clear();
        }
    };
    for block in &message.content {
        match block {
            ContentBlock::Text { text: part } if !part.is_empty() => text.push(part.clone()),
            ContentBlock::ToolResult(result) => {
                flush(out, &mut text);
                let output = match (result.is_error, result.content.trim().is_empty()) {
                    (true, true) => "Error: the tool failed without a message".to_string(),
                    (true, false) => format!("Error: {}", result.content),
                    (false, true) => "(no output)".to_string(),
                    (false, false) => result.content.clone(),
                };
                out.push(
                    json!({"type": "function_call_output", "call_id": result.tool_use_id,
                    "output": output}),
                );
            }
            ContentBlock::ToolUse(call) => {
                flush(out, &mut text);
                let mut item = json!({"type": "function_call", "call_id": call.id,
                    "name": call.name, "arguments": call.input.to_json_string()});
                if let Some(id) = call.extra.as_ref().and_then(|extra| extra["id"].as_str()) {
                    item["id"] = json!(id);
                }
                out.push(item);
            }
            ContentBlock::Opaque { provider, item } if provider == RESPONSES => {
                flush(out, &mut text);
                out.push(item.clone());
            }
            _ => {}
        }
    }
    flush(out, &mut text);
}

impl ChatModel for OpenAiResponses {
    fn chat(
        &self,
        request: &ChatRequest<'_>,
        token: &CancelToken,
        on_delta: &mut dyn FnMut(Delta<'_>),
    ) -> Result<ChatResponse, Error> {
        let mut headers = vec![("accept", "application/json, text/event-stream")];
        if let Some(authorization) = &self.authorization {
            headers.push(("authorization", authorization));
        }
        for (name, value) in &self.settings.extra_headers {
            if name != "authorization" {
                headers.retain(|(existing, _)| existing != name);
                headers.push((name, value));
            }
        }
        let body = self.body(request);
        let mut body_retries = 0;
        loop {
            let mut exchange = self.http.post_json(&self.url, &headers, &body, token)?;
            let mut handed_on = false;
            let result = if self.stream {
                self.read_stream(&mut exchange, token, &mut |delta| {
                    handed_on = true;
                    on_delta(delta);
                })
            } else {
                self.read_body(&mut exchange)
            };
            drop(exchange);
            match result {
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

impl std::fmt::Debug for OpenAiResponses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiResponses")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_reasoning_items_before_their_calls_and_call_item_ids() {
        let reasoning = json!({"type": "reasoning", "id": "rs_1", "summary": [],
            "encrypted_content": "gAAAA"});
        let message = Message {
            role: Role::Assistant,
            content: vec![
                ContentBlock::Opaque {
                    provider: RESPONSES.into(),
                    item: reasoning.clone(),
                },
                ContentBlock::Opaque {
                    provider: "elsewhere".into(),
                    item: json!({"x": 1}),
                },
                ContentBlock::ToolUse(ToolUse {
                    id: "call_1".into(),
                    name: "read".into(),
                    input: ToolInput::parse(r#"{"path":"a"}"#),
                    extra: Some(json!({"id": "fc_1"})),
                }),
            ],
        };
        let mut out = Vec::new();
        push_items(&mut out, &message);
        assert_eq!(
            out,
            vec![
                reasoning,
                json!({"type": "function_call", "call_id": "call_1", "id": "fc_1",
                    "name": "read", "arguments": "{\"path\":\"a\"}"})
            ]
        );
    }
}
