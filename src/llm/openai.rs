//! OpenAI's Chat Completions API and the many servers that copy it, quirks included
//! (PROTOCOLS.md §1.6): arguments sent as objects, missing or integer ids, one index
//! reused for parallel calls, names resent in every chunk, `finish_reason: stop` with tool
//! calls, errors inside a 200 response, vLLM's error shape, SSE comment lines; and what
//! reasoning servers need back: `reasoning_content` / `reasoning` beside the answer
//! (DeepSeek refuses a tool-loop continuation without it) and Gemini's thought signatures
//! in `extra_content` of tool calls.

use std::collections::{HashMap, HashSet};
use std::io::BufReader;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use serde_json::{Value, json};

use super::config::{ApiKey, Provider};
use super::http::{Exchange, Failure, HttpClient, HttpOptions, preview};
use super::message::{
    ChatResponse, ContentBlock, Message, Role, StopReason, ToolInput, ToolUse, Usage,
};
use super::pricing::{Price, price_of};
use super::settings::{MaxTokensField, ModelSettings, merge_body};
use super::sse::SseReader;
use super::{ChatModel, ChatRequest, Delta};
use crate::error::Error;
use crate::runtime::CancelToken;

const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// Settings of an [`OpenAiCompatible`] model; usually made by
/// [`ModelConfig::build`](super::ModelConfig::build).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OpenAiConfig {
    /// `OpenAi` or `OpenAiCompat` (names the provider in errors and usage).
    pub provider: Provider,
    /// The model's name at the server.
    pub model: String,
    /// Sent as `Authorization: Bearer …` when present.
    pub api_key: Option<ApiKey>,
    /// Up to and including `/v1`; defaults to `https://api.openai.com/v1`.
    pub base_url: Option<String>,
    /// Retries and timeouts.
    pub http: HttpOptions,
    /// Stream responses.
    pub stream: bool,
    /// Defaults to `MaxCompletionTokens` for OpenAI; for compatible servers to none (no
    /// limit sent: vLLM refuses a prompt plus `max_tokens` over the context length).
    pub max_tokens_field: Option<MaxTokensField>,
    /// Overrides the price table.
    pub price: Option<Price>,
    /// Reasoning effort, `stream_options`, extra headers and body fields.
    pub settings: ModelSettings,
}

impl OpenAiConfig {
    /// Settings for `model` at OpenAI (`Provider::OpenAi`) or at a compatible server
    /// (`Provider::OpenAiCompat`, then set [`base_url`](Self::base_url)), streaming, with
    /// the default retries and timeouts, no key.
    pub fn new(provider: Provider, model: impl Into<String>) -> OpenAiConfig {
        OpenAiConfig {
            provider,
            model: model.into(),
            api_key: None,
            base_url: None,
            http: HttpOptions::default(),
            stream: true,
            max_tokens_field: None,
            price: None,
            settings: ModelSettings::default(),
        }
    }

    /// Sets the key.
    pub fn api_key(mut self, key: ApiKey) -> OpenAiConfig {
        self.api_key = Some(key);
        self
    }

    /// Sets the base URL (up to and including `/v1`).
    pub fn base_url(mut self, url: impl Into<String>) -> OpenAiConfig {
        self.base_url = Some(url.into());
        self
    }
}

/// A model behind an OpenAI-style `POST {base}/chat/completions`.
pub struct OpenAiCompatible {
    config: OpenAiConfig,
    name: String,
    url: String,
    authorization: Option<String>,
    price: Option<Price>,
    http: HttpClient,
}

impl OpenAiCompatible {
    /// A model with these settings.
    pub fn new(config: OpenAiConfig) -> OpenAiCompatible {
        let base = config.base_url.as_deref().unwrap_or(OPENAI_BASE_URL);
        let provider = config.provider.as_str();
        OpenAiCompatible {
            name: format!("{provider}:{}", config.model),
            url: format!("{}/chat/completions", base.trim_end_matches('/')),
            authorization: config
                .api_key
                .as_ref()
                .map(|key| format!("Bearer {}", key.expose())),
            price: config.price.or_else(|| price_of(&config.model)),
            http: HttpClient::new(
                provider,
                config.http.clone(),
                parse_error,
                config.api_key.clone(),
            ),
            config,
        }
    }

    fn body(&self, request: &ChatRequest<'_>, stream: bool) -> Value {
        let settings = &self.config.settings;
        let max_tokens_field = match self.config.max_tokens_field {
            Some(field) => field,
            None if self.config.provider == Provider::OpenAi => MaxTokensField::MaxCompletionTokens,
            None => MaxTokensField::Omit,
        };
        let mut body = request_json(&self.config.model, request, max_tokens_field);
        if let Some(effort) = request.reasoning_effort.or(settings.reasoning_effort) {
            body["reasoning_effort"] = json!(effort.as_str());
        }
        if stream {
            body["stream"] = json!(true);
            // Refused with a 400 by Azure AI Foundry and some gateways: sent by default to
            // OpenAI only.
            let usage = settings
                .stream_options
                .unwrap_or(self.config.provider == Provider::OpenAi);
            if usage {
                body["stream_options"] = json!({"include_usage": true});
            }
        }
        merge_body(&mut body, &settings.extra_body);
        body
    }

    /// Whether to stream to this server: as configured, unless it answered a streaming
    /// request with an empty body before (then never again in this process).
    fn streams(&self) -> bool {
        self.config.stream && !no_stream_servers().lock().contains(&self.url)
    }

    /// Reads a stream; `Ok(None)` when the body was empty (no byte at all).
    fn read_stream(
        &self,
        exchange: &mut Exchange<'_>,
        token: &CancelToken,
        on_delta: &mut dyn FnMut(Delta<'_>),
    ) -> Result<Option<ChatResponse>, Error> {
        let counted = Counted::new(exchange.reader());
        let received = counted.bytes();
        let mut events = SseReader::new(BufReader::new(counted));
        let mut stream = Assembly::default();
        loop {
            let event = match events.next_event() {
                Ok(event) => event,
                Err(error) => return Err(exchange.client().body_error(error, exchange)),
            };
            token.check()?;
            let Some(event) = event else {
                if stream.finish_reason.is_some() {
                    break; // some servers end without [DONE]
                }
                if received.load(Ordering::Relaxed) == 0 {
                    return Ok(None);
                }
                return Err(exchange.error(
                    None,
                    None,
                    "the stream ended before the model finished (truncated); try again".into(),
                    true,
                ));
            };
            if event.data.trim() == "[DONE]" {
                break;
            }
            if event.data.trim().is_empty() {
                continue; // an empty `data:` is not JSON
            }
            let chunk: Value = serde_json::from_str(&event.data).map_err(|error| {
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
            if let Some(failure) = embedded_error(&chunk) {
                return Err(in_band_error(exchange, failure));
            }
            stream.apply(&chunk, on_delta);
        }
        events.drain();
        Ok(Some(self.response(stream.finish())))
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
        if let Some(failure) = embedded_error(&body) {
            return Err(in_band_error(exchange, failure));
        }
        match response_from_json(&body) {
            Ok(finished) => Ok(self.response(finished)),
            Err(problem) => Err(exchange.error(
                None,
                None,
                format!("{problem}: {}", exchange.preview(&text)),
                false,
            )),
        }
    }

    fn response(&self, (message, stop_reason, usage, model): Finished) -> ChatResponse {
        let mut usage = usage;
        usage.cost_usd = self.price.map(|price| price.cost(&usage));
        ChatResponse {
            message,
            stop_reason,
            usage,
            model: model.unwrap_or_else(|| self.config.model.clone()),
        }
    }
}

impl ChatModel for OpenAiCompatible {
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
        for (name, value) in &self.config.settings.extra_headers {
            if name != "authorization" {
                headers.retain(|(existing, _)| existing != name);
                headers.push((name, value));
            }
        }
        let mut body_retries = 0;
        loop {
            let stream = self.streams();
            let body = self.body(request, stream);
            let mut exchange = self.http.post_json(&self.url, &headers, &body, token)?;
            let mut handed_on = false;
            let result = if stream {
                self.read_stream(&mut exchange, token, &mut |delta| {
                    handed_on = true;
                    on_delta(delta);
                })
            } else {
                self.read_body(&mut exchange).map(Some)
            };
            drop(exchange);
            match result {
                Ok(Some(response)) => return Ok(response),
                Ok(None) => {
                    // llama-cpp-python answers a streaming request with tools with a 200
                    // and no body ("Automatic streaming tool choice is not supported").
                    log::warn!(
                        "{}: the server answered a streaming request with an empty body; \
                         asking again without streaming, and not streaming to {} again",
                        self.name,
                        self.url
                    );
                    no_stream_servers().lock().insert(self.url.clone());
                }
                // An error event in a 200 stream (OpenRouter's mid-stream server_error) or a
                // cut stream, before anything was handed on: retried like a status error.
                Err(error)
                    if !handed_on && self.http.retry_body(&error, &mut body_retries, token)? => {}
                Err(error) => return Err(error),
            }
        }
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A non-streaming Chat Completions request body for `model` (also what a host's own model
/// callback receives through the C ABI).
pub(crate) fn request_json(
    model: &str,
    request: &ChatRequest<'_>,
    max_tokens: MaxTokensField,
) -> Value {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system}));
    }
    for message in request.messages {
        push_message(&mut messages, message);
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
    });
    match max_tokens {
        MaxTokensField::MaxTokens => body["max_tokens"] = json!(request.max_tokens),
        MaxTokensField::MaxCompletionTokens => {
            body["max_completion_tokens"] = json!(request.max_tokens)
        }
        MaxTokensField::Omit => {}
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({"type": "function", "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                }})
            })
            .collect();
        body["tools"] = Value::Array(tools);
        body["tool_choice"] = json!("auto");
    }
    body
}

/// Reads a non-streaming Chat Completions response body (error bodies are checked first).
pub(crate) fn response_from_json(body: &Value) -> Result<Finished, &'static str> {
    let Some(choice) = body["choices"].get(0) else {
        return Err("the response has no choices");
    };
    let message = &choice["message"];
    let mut assembly = Assembly {
        finish_reason: choice["finish_reason"].as_str().map(str::to_string),
        usage: parse_usage(&body["usage"]),
        model: body["model"].as_str().map(str::to_string),
        ..Assembly::default()
    };
    assembly.read_texts(message, &mut |_| {});
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        assembly.calls.push(PartialCall {
            id: id_of(&call["id"]),
            name: call["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            arguments: arguments_text(&call["function"]["arguments"]),
            extra: call["extra_content"]
                .is_object()
                .then(|| call["extra_content"].clone()),
        });
    }
    Ok(assembly.finish())
}

/// Appends one message in Chat Completions form: tool results become `tool` messages
/// (first, since they must follow the assistant's calls), arguments travel as strings,
/// reasoning goes back under the field it came in, a call's `extra_content` (Gemini's
/// thought signature) goes back on the call. Content is never `null` without tool calls.
fn push_message(out: &mut Vec<Value>, message: &Message) {
    match message.role {
        Role::User => {
            let mut text = Vec::new();
            for block in &message.content {
                match block {
                    ContentBlock::ToolResult(result) => out.push(json!({
                        "role": "tool",
                        "tool_call_id": result.tool_use_id,
                        "content": match (result.is_error, result.content.trim().is_empty()) {
                            (true, true) => "Error: the tool failed without a message".to_string(),
                            (true, false) => format!("Error: {}", result.content),
                            (false, true) => "(no output)".to_string(),
                            (false, false) => result.content.clone(),
                        },
                    })),
                    ContentBlock::Text { text: part } => text.push(part.as_str()),
                    _ => {}
                }
            }
            if !text.is_empty() {
                out.push(json!({"role": "user", "content": text.join("\n\n")}));
            }
        }
        Role::Assistant => {
            let text = message.text();
            let calls: Vec<Value> = message
                .tool_uses()
                .map(|call| {
                    let mut entry = json!({"id": call.id, "type": "function", "function": {
                        "name": call.name,
                        "arguments": call.input.to_json_string(),
                    }});
                    if let Some(extra) = &call.extra {
                        entry["extra_content"] = extra.clone();
                    }
                    entry
                })
                .collect();
            // Never `null`: the spec allows it beside tool calls, but llama-cpp-python's
            // server refuses it (its assistant message wants a string, verified with
            // scripts/real_llm.sh), and without tool calls it is refused everywhere.
            let content = Value::String(text);
            let mut entry = json!({"role": "assistant", "content": content});
            for block in &message.content {
                if let ContentBlock::Reasoning { text, field } = block
                    && matches!(field.as_str(), "reasoning_content" | "reasoning")
                {
                    let joined = match entry[field.as_str()].as_str() {
                        Some(before) => format!("{before}{text}"),
                        None => text.clone(),
                    };
                    entry[field.as_str()] = Value::String(joined);
                }
            }
            if !calls.is_empty() {
                entry["tool_calls"] = Value::Array(calls);
            }
            out.push(entry);
        }
    }
}

/// Servers that answered a streaming request with an empty body: not streamed to again in
/// this process.
fn no_stream_servers() -> &'static Mutex<HashSet<String>> {
    static SERVERS: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    SERVERS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A reader that counts the bytes it passed on.
struct Counted<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R> Counted<R> {
    fn new(inner: R) -> Counted<R> {
        Counted {
            inner,
            bytes: Arc::new(AtomicU64::new(0)),
        }
    }

    fn bytes(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.bytes)
    }
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.bytes.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

/// A response assembled from chunks (or read whole).
#[derive(Default)]
struct Assembly {
    text: String,
    /// Reasoning text, and the field it came in.
    reasoning: String,
    reasoning_field: Option<&'static str>,
    refusal: String,
    /// In the order they started.
    calls: Vec<PartialCall>,
    /// The call being assembled at each stream index.
    at_index: HashMap<u64, usize>,
    finish_reason: Option<String>,
    usage: Usage,
    model: Option<String>,
}

struct PartialCall {
    id: Option<String>,
    name: String,
    arguments: String,
    extra: Option<Value>,
}

pub(crate) type Finished = (Message, StopReason, Usage, Option<String>);

impl Assembly {
    fn apply(&mut self, chunk: &Value, on_delta: &mut dyn FnMut(Delta<'_>)) {
        if self.model.is_none() {
            self.model = chunk["model"].as_str().map(str::to_string);
        }
        if chunk["usage"].is_object() {
            self.usage = parse_usage(&chunk["usage"]);
        }
        // One choice is asked for; take the first whatever its index.
        let Some(choice) = chunk["choices"].get(0) else {
            return;
        };
        let delta = &choice["delta"];
        self.read_texts(delta, on_delta);
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            self.apply_call(call, on_delta);
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_string());
        }
    }

    /// Reads the answer, reasoning and refusal of a message or delta. `content` may be a
    /// string or an array of parts (Magistral streams `[{"type":"text","text":…}]`).
    fn read_texts(&mut self, message: &Value, on_delta: &mut dyn FnMut(Delta<'_>)) {
        match &message["content"] {
            Value::String(text) if !text.is_empty() => {
                self.text.push_str(text);
                on_delta(Delta::Text(text));
            }
            Value::Array(parts) => {
                for part in parts {
                    if part["type"] == "text"
                        && let Some(text) = part["text"].as_str()
                        && !text.is_empty()
                    {
                        self.text.push_str(text);
                        on_delta(Delta::Text(text));
                    }
                }
            }
            _ => {}
        }
        for field in ["reasoning_content", "reasoning"] {
            if let Some(text) = message[field].as_str()
                && !text.is_empty()
            {
                self.reasoning.push_str(text);
                self.reasoning_field.get_or_insert(field);
                on_delta(Delta::Reasoning(text));
            }
        }
        if let Some(refusal) = message["refusal"].as_str()
            && !refusal.is_empty()
        {
            self.refusal.push_str(refusal);
            on_delta(Delta::Text(refusal));
        }
    }

    fn apply_call(&mut self, fragment: &Value, on_delta: &mut dyn FnMut(Delta<'_>)) {
        let index = fragment["index"].as_u64().unwrap_or(0);
        let id = id_of(&fragment["id"]);
        let name = fragment["function"]["name"]
            .as_str()
            .filter(|name| !name.is_empty());
        let current = self.at_index.get(&index).copied();
        // A different id with a name, after complete arguments, is a new call at a reused
        // index (Ollama). A fresh id without a name is the same call (LM Studio, Kimi).
        let starts_new = match current {
            None => true,
            Some(position) => {
                let call = &self.calls[position];
                id.is_some()
                    && call.id.is_some()
                    && id != call.id
                    && name.is_some()
                    && serde_json::from_str::<Value>(&call.arguments).is_ok()
            }
        };
        let position = if starts_new {
            self.calls.push(PartialCall {
                id: None,
                name: String::new(),
                arguments: String::new(),
                extra: None,
            });
            self.at_index.insert(index, self.calls.len() - 1);
            self.calls.len() - 1
        } else {
            current.unwrap_or_default()
        };
        let call = &mut self.calls[position];
        if call.id.is_none() {
            call.id = id;
        }
        if fragment["extra_content"].is_object() {
            call.extra = Some(fragment["extra_content"].clone());
        }
        if let Some(name) = name
            && call.name.is_empty()
        {
            // Assigned, never appended: some servers resend the full name every chunk.
            call.name = name.to_string();
            on_delta(Delta::ToolCall { name });
        }
        match &fragment["function"]["arguments"] {
            Value::String(part) if !part.is_empty() => {
                call.arguments.push_str(part);
                on_delta(Delta::ToolInput(part));
            }
            Value::Object(_) => {
                let whole = fragment["function"]["arguments"].to_string();
                on_delta(Delta::ToolInput(&whole));
                call.arguments = whole;
            }
            _ => {}
        }
    }

    fn finish(self) -> Finished {
        let mut content = Vec::new();
        if let Some(field) = self.reasoning_field {
            content.push(ContentBlock::Reasoning {
                text: self.reasoning,
                field: field.to_string(),
            });
        }
        let refused = !self.refusal.is_empty();
        if !self.text.is_empty() {
            content.push(ContentBlock::Text { text: self.text });
        }
        if refused {
            content.push(ContentBlock::Text { text: self.refusal });
        }
        for call in self.calls {
            content.push(ContentBlock::ToolUse(ToolUse {
                id: call.id.unwrap_or_else(synthetic_id),
                name: call.name,
                input: ToolInput::parse(&call.arguments),
                extra: call.extra,
            }));
        }
        let message = Message {
            role: Role::Assistant,
            content,
        };
        // Tools are requested when calls are present, whatever `finish_reason` says —
        // unless the reply was cut, when a call may be incomplete and must not run.
        let stop_reason = match self.finish_reason.as_deref() {
            Some("length") => StopReason::MaxTokens,
            _ if refused => StopReason::Refusal,
            _ if message.tool_uses().next().is_some() => StopReason::ToolUse,
            Some("stop") | None => StopReason::EndTurn,
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            Some("content_filter") => StopReason::Refusal,
            Some(other) => StopReason::Other(other.to_string()),
        };
        (message, stop_reason, self.usage, self.model)
    }
}

/// An id as sent: a non-empty string, or a number (Poolside); `None` otherwise.
fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(id) if !id.trim().is_empty() => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// For servers that send no id: unique in the process, so results can refer to it.
fn synthetic_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("call_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Arguments as text: a string as is, an object (llama.cpp) re-encoded.
fn arguments_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `prompt_tokens` includes cached tokens and (at OpenRouter) cache writes; [`Usage`]
/// counts each apart, so every token is counted once.
fn parse_usage(usage: &Value) -> Usage {
    let count = |value: &Value| value.as_u64().unwrap_or(0);
    let prompt = count(&usage["prompt_tokens"]);
    let cached = count(&usage["prompt_tokens_details"]["cached_tokens"]);
    let written = count(&usage["prompt_tokens_details"]["cache_write_tokens"]);
    Usage {
        input_tokens: prompt.saturating_sub(cached).saturating_sub(written),
        output_tokens: count(&usage["completion_tokens"]),
        cache_read_tokens: cached,
        cache_write_tokens: written,
        cost_usd: None,
    }
}

/// The error object of an error body: `{"error": {...}}`, `{"error": "text"}`, or vLLM's
/// unwrapped `{"object": "error", ...}`.
pub(crate) fn embedded_error(body: &Value) -> Option<Failure> {
    let error = match (&body["error"], body["object"].as_str()) {
        (Value::Object(_), _) => &body["error"],
        (Value::String(message), _) => {
            return Some(Failure {
                message: message.clone(),
                ..Failure::default()
            });
        }
        (_, Some("error")) => body,
        _ => return None,
    };
    let error_type = error["type"].as_str().map(str::to_string);
    let code = match &error["code"] {
        Value::String(code) => Some(code.clone()),
        Value::Number(code) => Some(code.to_string()),
        _ => None,
    };
    let quota = [&error_type, &code]
        .iter()
        .any(|field| field.as_deref() == Some("insufficient_quota"));
    Some(Failure {
        message: error["message"]
            .as_str()
            .unwrap_or("the server reported an error without a message")
            .to_string(),
        retryable: quota.then_some(false),
        error_type,
        code,
    })
}

/// An error sent inside a 2xx response (OpenRouter, vLLM). A numeric code that is a
/// retryable HTTP status (OpenRouter's 429, 502, 503) makes it retryable.
fn in_band_error(exchange: &Exchange<'_>, failure: Failure) -> Error {
    let status_like = failure
        .code
        .as_deref()
        .and_then(|code| code.parse::<u16>().ok());
    let retryable = failure.retryable.unwrap_or_else(|| {
        status_like.is_some_and(|status| matches!(status, 408 | 429) || status >= 500)
    });
    exchange.error(failure.error_type, failure.code, failure.message, retryable)
}

/// Reads an error response's body.
pub(crate) fn parse_error(status: u16, body: &str) -> Failure {
    let parsed = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|value| embedded_error(&value));
    parsed.unwrap_or_else(|| Failure {
        message: if body.trim().is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            preview(body)
        },
        ..Failure::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assemble(chunks: &[Value]) -> (Finished, Vec<String>) {
        let mut assembly = Assembly::default();
        let mut deltas = Vec::new();
        for chunk in chunks {
            assembly.apply(chunk, &mut |delta| deltas.push(format!("{delta:?}")));
        }
        (assembly.finish(), deltas)
    }

    fn calls(message: &Message) -> Vec<(String, String, ToolInput)> {
        message
            .tool_uses()
            .map(|call| (call.id.clone(), call.name.clone(), call.input.clone()))
            .collect()
    }

    fn chunk(tool_calls: Value) -> Value {
        json!({"choices": [{"index": 0, "delta": {"tool_calls": tool_calls}}]})
    }

    #[test]
    fn assembles_tool_call_fragments_by_index() {
        let ((message, stop, ..), deltas) = assemble(&[
            chunk(
                json!([{"index": 0, "id": "call_a", "type": "function", "function": {"name": "read", "arguments": ""}}]),
            ),
            chunk(
                json!([{"index": 1, "id": "call_b", "function": {"name": "grep", "arguments": "{\"pattern\":"}}]),
            ),
            chunk(json!([{"index": 0, "function": {"arguments": "{\"path\":\"a\"}"}}])),
            chunk(json!([{"index": 1, "function": {"arguments": "\"x\"}"}}])),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        ]);
        assert_eq!(
            stop,
            StopReason::ToolUse,
            "tool calls win over finish_reason stop"
        );
        let calls = calls(&message);
        assert_eq!(calls[0].0, "call_a");
        assert_eq!(calls[0].2, ToolInput::parse("{\"path\":\"a\"}"));
        assert_eq!(calls[1].1, "grep");
        assert_eq!(calls[1].2, ToolInput::parse("{\"pattern\":\"x\"}"));
        assert!(deltas.iter().any(|d| d.contains("ToolCall")));
    }

    #[test]
    fn a_reused_index_with_a_new_id_and_name_is_a_new_call() {
        let ((message, ..), _) = assemble(&[
            chunk(
                json!([{"index": 0, "id": "a", "function": {"name": "read", "arguments": "{\"path\":\"x\"}"}}]),
            ),
            chunk(
                json!([{"index": 0, "id": "b", "function": {"name": "read", "arguments": "{\"path\":\"y\"}"}}]),
            ),
        ]);
        let calls = calls(&message);
        assert_eq!(calls.len(), 2);
        assert_eq!((calls[0].0.as_str(), calls[1].0.as_str()), ("a", "b"));
    }

    #[test]
    fn fresh_ids_and_resent_names_on_every_chunk_stay_one_call() {
        let ((message, ..), _) = assemble(&[
            chunk(
                json!([{"index": 0, "id": "a", "function": {"name": "read", "arguments": "{\"pa"}}]),
            ),
            chunk(json!([{"index": 0, "id": "b", "function": {"arguments": "th\":"}}])),
            chunk(json!([{"function": {"name": "read", "arguments": "\"x\"}"}}])),
        ]);
        let calls = calls(&message);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].1, "read");
        assert_eq!(calls[0].2, ToolInput::parse("{\"path\":\"x\"}"));
    }

    #[test]
    fn object_arguments_integer_and_missing_ids_are_accepted() {
        let ((message, ..), _) = assemble(&[
            chunk(
                json!([{"index": 0, "id": 7, "function": {"name": "read", "arguments": {"path": "x"}}}]),
            ),
            chunk(json!([{"index": 1, "id": "", "function": {"name": "ls", "arguments": "{}"}}])),
        ]);
        let calls = calls(&message);
        assert_eq!(calls[0].0, "7");
        assert_eq!(calls[0].2, ToolInput::parse("{\"path\":\"x\"}"));
        assert!(calls[1].0.starts_with("call_"), "{}", calls[1].0);
    }

    #[test]
    fn content_parts_refusals_reasoning_and_thought_signatures_are_read() {
        // Magistral streams content as an array of parts.
        let ((message, stop, ..), deltas) = assemble(&[
            json!({"choices": [{"index": 0, "delta": {"content": [
                {"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]},
                {"type": "text", "text": "Hel"}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": "lo"}]},
                "finish_reason": "stop"}]}),
        ]);
        assert_eq!(message.text(), "Hello");
        assert_eq!(stop, StopReason::EndTurn);
        assert!(deltas.iter().any(|delta| delta.contains("Hel")));

        let ((message, stop, ..), _) = assemble(&[json!({"choices": [{"index": 0,
            "delta": {"content": null, "refusal": "I can't help with that."},
            "finish_reason": "stop"}]})]);
        assert_eq!(message.text(), "I can't help with that.");
        assert_eq!(stop, StopReason::Refusal);

        let ((message, ..), deltas) = assemble(&[
            json!({"choices": [{"index": 0, "delta": {"reasoning": "Think"}}]}),
            json!({"choices": [{"index": 0, "delta": {"reasoning": "ing."}}]}),
            chunk(
                json!([{"index": 0, "id": "c1", "function": {"name": "read", "arguments": "{}"},
                "extra_content": {"google": {"thought_signature": "sig"}}}]),
            ),
        ]);
        assert_eq!(
            message.content[0],
            ContentBlock::Reasoning {
                text: "Thinking.".into(),
                field: "reasoning".into()
            }
        );
        assert_eq!(message.text(), "", "reasoning is never the answer");
        assert!(deltas.iter().any(|delta| delta.starts_with("Reasoning")));
        let call = message.tool_uses().next().unwrap();
        assert_eq!(
            call.extra,
            Some(json!({"google": {"thought_signature": "sig"}}))
        );
        // Sent back as received: reasoning under its field, the signature on its call.
        let mut out = Vec::new();
        push_message(&mut out, &message);
        assert_eq!(out[0]["reasoning"], "Thinking.");
        assert_eq!(
            out[0]["tool_calls"][0]["extra_content"]["google"]["thought_signature"],
            "sig"
        );
    }

    #[test]
    fn a_cut_reply_is_max_tokens_even_with_a_tool_call_and_usage_counts_writes_once() {
        let ((message, stop, ..), _) = assemble(&[
            chunk(
                json!([{"index": 0, "id": "c1", "function": {"name": "write",
                "arguments": "{\"content\": \"lo"}}]),
            ),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
        ]);
        assert_eq!(stop, StopReason::MaxTokens);
        assert_eq!(message.tool_uses().count(), 1);
        // OpenRouter: prompt_tokens includes cache reads and writes; each counted once.
        let usage = parse_usage(&json!({"prompt_tokens": 1000, "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 300}}));
        assert_eq!(
            (
                usage.input_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens
            ),
            (100, 600, 300)
        );
        assert_eq!(usage.total_input_tokens(), 1000);
    }

    #[test]
    fn an_empty_reply_is_never_sent_as_null_content() {
        let mut out = Vec::new();
        push_message(
            &mut out,
            &Message {
                role: Role::Assistant,
                content: Vec::new(),
            },
        );
        assert_eq!(out[0]["content"], "");
    }

    #[test]
    fn error_bodies_of_every_shape_are_read() {
        let openai = parse_error(
            429,
            r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(openai.retryable, Some(false));
        let vllm = parse_error(
            400,
            r#"{"object":"error","message":"bad model","type":"BadRequestError","code":400}"#,
        );
        assert_eq!(
            (vllm.message.as_str(), vllm.code.as_deref()),
            ("bad model", Some("400"))
        );
        let plain = parse_error(502, "<html>Bad Gateway</html>");
        assert_eq!(plain.message, "<html>Bad Gateway</html>");
        assert_eq!(parse_error(503, "").message, "HTTP 503 with an empty body");
    }

    #[test]
    fn history_sends_arguments_as_strings_and_results_as_tool_messages() {
        let mut out = Vec::new();
        push_message(
            &mut out,
            &Message {
                role: Role::Assistant,
                content: vec![ContentBlock::ToolUse(ToolUse {
                    id: "call_1".into(),
                    name: "read".into(),
                    input: ToolInput::parse("{\"path\":\"a\"}"),
                    extra: None,
                })],
            },
        );
        push_message(
            &mut out,
            &Message {
                role: Role::User,
                content: vec![ContentBlock::ToolResult(super::super::ToolResult {
                    tool_use_id: "call_1".into(),
                    content: "no such file".into(),
                    is_error: true,
                })],
            },
        );
        assert_eq!(out[0]["content"], "");
        assert_eq!(
            out[0]["tool_calls"][0]["function"]["arguments"],
            "{\"path\":\"a\"}"
        );
        assert_eq!(
            out[1],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "Error: no such file"})
        );
    }
}
