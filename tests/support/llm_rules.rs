//! What real APIs refuse and how they bill, for the scripted server: each rule below is
//! checked against the provider's documentation or SDK (cited beside it), so a client that
//! passes these tests would pass the real server's checks too.
//!
//! [`Api`] is a [`Reply::Handler`]: it validates every request by the rules of the server it
//! plays, answers a refused one with the real 400, and otherwise plays the next turn of its
//! script (streamed or not, as asked), with thinking/reasoning attached as that server
//! sends it, and — for Anthropic — usage that accounts for prompt caching.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::llm_server::{Recorded, Reply, Step, json_reply, sse_reply};

/// Which real server the handler plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// Anthropic Messages with extended thinking on: every assistant turn starts with a
    /// signed thinking block.
    AnthropicThinking,
    /// Anthropic Messages without thinking (for the caching benchmark).
    Anthropic,
    /// DeepSeek's OpenAI-compatible API in thinking mode: `reasoning_content` beside the
    /// answer, required back on tool-call turns.
    DeepSeek,
    /// Gemini's OpenAI-compatible endpoint: a thought signature in `extra_content` of the
    /// first tool call of a turn, required back.
    Gemini,
    /// An OpenAI-compatible gateway that refuses `stream_options` (Azure AI Foundry).
    RefusesStreamOptions,
    /// llama-cpp-python's server: a streaming request with tools gets a 200 and an empty
    /// body ("Automatic streaming tool choice is not supported"); without streaming it
    /// answers.
    LlamaCppPython,
    /// OpenAI's Responses API, stateless (`store: false`): each turn starts with a reasoning
    /// item carrying `encrypted_content`, which must come back before its function calls.
    Responses,
}

/// One turn the model plays: text, or tool calls `(name, arguments)`.
#[derive(Clone, Debug)]
pub enum Turn {
    Text(String),
    Calls(Vec<(String, Value)>),
}

/// Token counts of one request as the API would bill them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Billed {
    pub input: u64,
    pub cache_write: u64,
    pub cache_read: u64,
}

struct State {
    turns: Vec<Turn>,
    next: usize,
    /// Signatures this server issued, by thinking text (Anthropic checks them).
    signatures: HashMap<String, String>,
    /// Prompt prefixes cached so far (hashes of the request up to a breakpoint).
    cached: HashSet<u64>,
    billed: Vec<Billed>,
    refusals: Vec<String>,
}

/// A scripted API with the real server's rules.
#[derive(Clone)]
pub struct Api {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl Api {
    pub fn new(server: Server, turns: Vec<Turn>) -> Api {
        Api {
            server,
            state: Arc::new(Mutex::new(State {
                turns,
                next: 0,
                signatures: HashMap::new(),
                cached: HashSet::new(),
                billed: Vec::new(),
                refusals: Vec::new(),
            })),
        }
    }

    /// The handler to queue on an `LlmServer`.
    pub fn reply(&self) -> Reply {
        let api = self.clone();
        Reply::Handler(Arc::new(move |request: &Recorded| api.answer(request)))
    }

    /// What each answered request was billed (Anthropic).
    pub fn billed(&self) -> Vec<Billed> {
        self.state.lock().unwrap().billed.clone()
    }

    /// The messages of the 400s sent so far.
    pub fn refusals(&self) -> Vec<String> {
        self.state.lock().unwrap().refusals.clone()
    }

    fn answer(&self, request: &Recorded) -> Reply {
        let body = request.json();
        let refusal = match self.server {
            Server::AnthropicThinking | Server::Anthropic => {
                anthropic_rejection(&body, &self.state.lock().unwrap().signatures)
            }
            Server::DeepSeek => deepseek_rejection(&body),
            Server::Gemini => gemini_rejection(&body),
            Server::RefusesStreamOptions => stream_options_rejection(&body),
            Server::LlamaCppPython => None,
            Server::Responses => responses_rejection(&body),
        };
        if let Some(reply) = refusal {
            if let Reply::Json { body, .. } = &reply {
                self.state.lock().unwrap().refusals.push(body.clone());
            }
            return reply;
        }
        let stream = body["stream"] == true;
        if self.server == Server::LlamaCppPython && stream && body["tools"].is_array() {
            return sse_reply(Vec::new());
        }
        let mut state = self.state.lock().unwrap();
        let Some(turn) = state.turns.get(state.next).cloned() else {
            return json_reply(
                500,
                &json!({"error": {"message": "the script has no more turns"}}),
            );
        };
        state.next += 1;
        let serial = state.next;
        match self.server {
            Server::AnthropicThinking | Server::Anthropic => {
                let billed = bill_anthropic(&body, &mut state.cached);
                state.billed.push(billed);
                let thinking = (self.server == Server::AnthropicThinking).then(|| {
                    let text = format!("Thinking about step {serial}.");
                    let signature = format!("sig-{serial}-{:x}", hash(&text));
                    state.signatures.insert(text.clone(), signature.clone());
                    (text, signature)
                });
                anthropic_turn(&turn, thinking, billed, serial, stream)
            }
            Server::Responses => responses_turn(&turn, serial, stream),
            _ => openai_turn(self.server, &turn, serial, stream),
        }
    }
}

fn hash(value: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

fn bad_request(body: Value) -> Reply {
    json_reply(400, &body)
}

fn anthropic_invalid(message: String) -> Reply {
    bad_request(json!({
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
        "request_id": "req_rules"
    }))
}

fn openai_invalid(message: &str) -> Reply {
    bad_request(json!({"error": {
        "message": message, "type": "invalid_request_error", "param": null,
        "code": "invalid_request_error"
    }}))
}

// ---------------------------------------------------------------------------------------------
// Anthropic
// ---------------------------------------------------------------------------------------------

/// The Messages API's checks on a request, from the docs and the SDK:
/// - every message but an optional final assistant one has non-empty content ("all
///   messages must have non-empty content except for the optional final assistant
///   message");
/// - a `tool_result` with `is_error: true` must carry content (the brief's finding; an
///   empty one is refused and poisons the saved conversation);
/// - with thinking on, the assistant turn of a tool loop must start with its `thinking` /
///   `redacted_thinking` block, passed back unmodified: "Thinking blocks must be passed back
///   unmodified and in their original order; a modified block results in a 400
///   `invalid_request_error`" (anthropic-sdk-python `types/thinking_block_param.py`), and a
///   dropped one gives "messages.1.content.0.type: Expected `thinking` or
///   `redacted_thinking`, but found `tool_use`" (platform.claude.com extended-thinking
///   guide, "preserving thinking blocks").
/// - at most 4 blocks carry `cache_control` (prompt-caching guide).
pub fn anthropic_rejection(body: &Value, signatures: &HashMap<String, String>) -> Option<Reply> {
    let messages = body["messages"].as_array()?;
    let thinking_on = matches!(
        body["thinking"]["type"].as_str(),
        Some("enabled" | "adaptive")
    );
    let mut breakpoints = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|tool| tool.get("cache_control").is_some())
        .count();
    breakpoints += body["system"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|block| block.get("cache_control").is_some())
        .count();
    for (index, message) in messages.iter().enumerate() {
        let content = &message["content"];
        let last = index + 1 == messages.len();
        let empty = content.as_array().is_some_and(Vec::is_empty)
            || content.as_str().is_some_and(str::is_empty)
            || content.is_null();
        if empty && !(last && message["role"] == "assistant") {
            return Some(anthropic_invalid(format!(
                "messages.{index}: all messages must have non-empty content except for the \
                 optional final assistant message"
            )));
        }
        for (position, block) in content.as_array().into_iter().flatten().enumerate() {
            if block.get("cache_control").is_some() {
                breakpoints += 1;
            }
            if block["type"] == "tool_result"
                && block["is_error"] == true
                && (block["content"]
                    .as_str()
                    .is_some_and(|text| text.trim().is_empty())
                    || block["content"].as_array().is_some_and(Vec::is_empty)
                    || block.get("content").is_none())
            {
                return Some(anthropic_invalid(format!(
                    "messages.{index}.content.{position}: content cannot be empty if \
                     `is_error` is true"
                )));
            }
            if block["type"] == "thinking" {
                let text = block["thinking"].as_str().unwrap_or_default();
                let signature = block["signature"].as_str().unwrap_or_default();
                if signatures.get(text).map(String::as_str) != Some(signature) {
                    return Some(anthropic_invalid(format!(
                        "messages.{index}.content.{position}: Invalid `signature` in \
                         `thinking` block"
                    )));
                }
            }
        }
        // The assistant turn that a tool result answers, in a thinking tool loop.
        let continued = messages.get(index + 1).is_some_and(|next| {
            next["content"]
                .as_array()
                .is_some_and(|blocks| blocks.iter().any(|block| block["type"] == "tool_result"))
        });
        if thinking_on && message["role"] == "assistant" && continued {
            let first = content[0]["type"].as_str().unwrap_or("text");
            if first != "thinking" && first != "redacted_thinking" {
                return Some(anthropic_invalid(format!(
                    "messages.{index}.content.0.type: Expected `thinking` or \
                     `redacted_thinking`, but found `{first}`. When `thinking` is enabled, a \
                     final `assistant` message must start with a thinking block (preceeding \
                     the lastmost set of `tool_use` and `tool_result` blocks)."
                )));
            }
        }
    }
    if breakpoints > 4 {
        return Some(anthropic_invalid(format!(
            "A maximum of 4 blocks with cache_control may be provided. Found {breakpoints}."
        )));
    }
    None
}

/// Tokens of a JSON value, roughly (4 characters a token, as Anthropic's rule of thumb).
fn tokens(value: &Value) -> u64 {
    (value.to_string().len() as u64).div_ceil(4)
}

/// Bills a request as the prompt-caching guide describes: the prompt is tools, then system,
/// then messages, in blocks; a block with `cache_control` is a breakpoint. The longest
/// prefix ending at a block boundary that an earlier request cached (the system checks
/// "up to 20 blocks before" each breakpoint) is read from the cache (0.1×); the rest up to
/// the last breakpoint is written (1.25×) and cached at every breakpoint; what follows the
/// last breakpoint is plain input. Minimum cacheable prefix: 1024 tokens.
pub fn bill_anthropic(body: &Value, cached: &mut HashSet<u64>) -> Billed {
    const MIN_CACHEABLE: u64 = 1024;
    const LOOKBACK: usize = 20;
    let mut blocks: Vec<(Value, bool)> = Vec::new();
    for tool in body["tools"].as_array().into_iter().flatten() {
        blocks.push((
            without_cache_control(tool),
            tool.get("cache_control").is_some(),
        ));
    }
    match &body["system"] {
        Value::String(text) => blocks.push((json!(text), false)),
        Value::Array(parts) => {
            for part in parts {
                blocks.push((
                    without_cache_control(part),
                    part.get("cache_control").is_some(),
                ));
            }
        }
        _ => {}
    }
    for message in body["messages"].as_array().into_iter().flatten() {
        match &message["content"] {
            Value::Array(parts) => {
                for part in parts {
                    blocks.push((
                        json!({"role": message["role"], "block": without_cache_control(part)}),
                        part.get("cache_control").is_some(),
                    ));
                }
            }
            other => blocks.push((json!({"role": message["role"], "block": other}), false)),
        }
    }
    // Prefix hashes and token counts at every block boundary.
    let mut prefix_hash = Vec::with_capacity(blocks.len());
    let mut prefix_tokens = Vec::with_capacity(blocks.len());
    let mut running = DefaultHasher::new();
    let mut total = 0;
    for (block, _) in &blocks {
        block.to_string().hash(&mut running);
        prefix_hash.push(running.finish());
        total += tokens(block);
        prefix_tokens.push(total);
    }
    let breakpoints: Vec<usize> = blocks
        .iter()
        .enumerate()
        .filter(|(_, (_, marked))| *marked)
        .map(|(index, _)| index)
        .collect();
    let Some(&last) = breakpoints.last() else {
        return Billed {
            input: total,
            ..Billed::default()
        };
    };
    let mut read_end: Option<usize> = None;
    for &breakpoint in &breakpoints {
        for index in (breakpoint.saturating_sub(LOOKBACK)..=breakpoint).rev() {
            if cached.contains(&prefix_hash[index]) {
                read_end = Some(read_end.map_or(index, |end: usize| end.max(index)));
                break;
            }
        }
    }
    let read = read_end.map_or(0, |end| prefix_tokens[end]);
    let mut written = 0;
    if prefix_tokens[last] >= MIN_CACHEABLE {
        for &breakpoint in &breakpoints {
            if prefix_tokens[breakpoint] >= MIN_CACHEABLE {
                cached.insert(prefix_hash[breakpoint]);
            }
        }
        written = prefix_tokens[last].saturating_sub(read);
    }
    let cached_part = read + written;
    Billed {
        input: total.saturating_sub(cached_part),
        cache_write: written,
        cache_read: read,
    }
}

fn without_cache_control(value: &Value) -> Value {
    let mut value = value.clone();
    if let Value::Object(fields) = &mut value {
        fields.remove("cache_control");
    }
    value
}

fn anthropic_turn(
    turn: &Turn,
    thinking: Option<(String, String)>,
    billed: Billed,
    serial: usize,
    stream: bool,
) -> Reply {
    let mut content = Vec::new();
    if let Some((text, signature)) = &thinking {
        content.push(json!({"type": "thinking", "thinking": text, "signature": signature}));
    }
    let stop = match turn {
        Turn::Text(text) => {
            content.push(json!({"type": "text", "text": text}));
            "end_turn"
        }
        Turn::Calls(calls) => {
            for (index, (name, input)) in calls.iter().enumerate() {
                content.push(
                    json!({"type": "tool_use", "id": format!("toolu_{serial}_{index}"),
                    "name": name, "input": input}),
                );
            }
            "tool_use"
        }
    };
    let usage = json!({
        "input_tokens": billed.input,
        "cache_creation_input_tokens": billed.cache_write,
        "cache_read_input_tokens": billed.cache_read,
        "output_tokens": 40,
    });
    let message = json!({
        "id": format!("msg_rules_{serial}"), "type": "message", "role": "assistant",
        "model": "claude-sonnet-5", "content": content, "stop_reason": stop,
        "stop_sequence": null, "usage": usage,
    });
    if !stream {
        return json_reply(200, &message);
    }
    let event = |value: Value| Step::named(value["type"].as_str().unwrap(), value.to_string());
    let mut start = message.clone();
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    let mut steps = vec![event(json!({"type": "message_start", "message": start}))];
    for (index, block) in content.iter().enumerate() {
        let mut opened = block.clone();
        let delta = match block["type"].as_str().unwrap() {
            "thinking" => {
                opened["thinking"] = json!("");
                opened["signature"] = json!("");
                vec![
                    json!({"type": "thinking_delta", "thinking": block["thinking"]}),
                    json!({"type": "signature_delta", "signature": block["signature"]}),
                ]
            }
            "text" => {
                opened["text"] = json!("");
                vec![json!({"type": "text_delta", "text": block["text"]})]
            }
            _ => {
                opened["input"] = json!({});
                vec![
                    json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}),
                ]
            }
        };
        steps.push(event(
            json!({"type": "content_block_start", "index": index, "content_block": opened}),
        ));
        for delta in delta {
            steps.push(event(
                json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        steps.push(event(json!({"type": "content_block_stop", "index": index})));
    }
    steps.push(event(json!({"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 40}})));
    steps.push(event(json!({"type": "message_stop"})));
    sse_reply(steps)
}

// ---------------------------------------------------------------------------------------------
// OpenAI-compatible servers
// ---------------------------------------------------------------------------------------------

/// DeepSeek thinking mode: "For turns that do perform tool calls, the reasoning_content
/// must be fully passed back to the API in all subsequent requests. If your code does not
/// correctly pass back reasoning_content, the API will return a 400 error."
/// (api-docs.deepseek.com/guides/thinking_mode; the message as reported in
/// anomalyco/opencode#24083.) Also: `content: null` without tool calls is refused.
pub fn deepseek_rejection(body: &Value) -> Option<Reply> {
    for message in body["messages"].as_array()? {
        if message["role"] != "assistant" {
            continue;
        }
        if message["tool_calls"].is_array() && !message["reasoning_content"].is_string() {
            return Some(openai_invalid(
                "The reasoning_content in the thinking mode must be passed back to the API.",
            ));
        }
        if message["content"].is_null() && !message["tool_calls"].is_array() {
            return Some(openai_invalid(
                "Invalid assistant message: content or tool_calls must be set",
            ));
        }
    }
    None
}

/// Gemini 3: "you must pass back thought signatures during function calling, otherwise you
/// will get a validation error (4xx status code)" (ai.google.dev/gemini-api/docs/
/// thought-signatures); on the OpenAI-compatible endpoint the signature rides on the first
/// tool call of a turn as `extra_content.google.thought_signature`.
pub fn gemini_rejection(body: &Value) -> Option<Reply> {
    for (index, message) in body["messages"].as_array()?.iter().enumerate() {
        if let Some(first) = message["tool_calls"]
            .as_array()
            .and_then(|calls| calls.first())
            && !first["extra_content"]["google"]["thought_signature"].is_string()
        {
            return Some(bad_request(json!([{"error": {
                "code": 400,
                "message": format!("Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{}` , position {}.", first["function"]["name"].as_str().unwrap_or_default(), index + 1),
                "status": "INVALID_ARGUMENT"
            }}])));
        }
    }
    None
}

/// Azure AI Foundry and some gateways: "Unrecognized request argument supplied:
/// stream_options".
pub fn stream_options_rejection(body: &Value) -> Option<Reply> {
    body.get("stream_options")
        .map(|_| openai_invalid("Unrecognized request argument supplied: stream_options"))
}

fn openai_turn(server: Server, turn: &Turn, serial: usize, stream: bool) -> Reply {
    let reasoning = (server == Server::DeepSeek).then(|| format!("Reasoning for step {serial}."));
    let calls: Vec<Value> = match turn {
        Turn::Text(_) => Vec::new(),
        Turn::Calls(calls) => calls
            .iter()
            .enumerate()
            .map(|(index, (name, arguments))| {
                let mut call = json!({"id": format!("call_{serial}_{index}"), "type": "function",
                    "function": {"name": name, "arguments": arguments.to_string()}});
                if server == Server::Gemini && index == 0 {
                    call["extra_content"] =
                        json!({"google": {"thought_signature": format!("CiQB-{serial}")}});
                }
                call
            })
            .collect(),
    };
    let text = match turn {
        Turn::Text(text) => Some(text.clone()),
        Turn::Calls(_) => None,
    };
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let usage = json!({"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120});
    if !stream {
        let mut message = json!({"role": "assistant", "content": text, "refusal": null});
        if let Some(reasoning) = &reasoning {
            message["reasoning_content"] = json!(reasoning);
        }
        if !calls.is_empty() {
            message["tool_calls"] = json!(calls);
        }
        return json_reply(
            200,
            &json!({"id": format!("chatcmpl-{serial}"),
            "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage}),
        );
    }
    let chunk = |delta: Value, finish: Value| {
        Step::data(
            json!({"id": format!("chatcmpl-{serial}"), "object": "chat.completion.chunk",
            "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            .to_string(),
        )
    };
    let mut steps = vec![chunk(
        json!({"role": "assistant", "content": null}),
        Value::Null,
    )];
    if let Some(reasoning) = &reasoning {
        let (a, b) = reasoning.split_at(reasoning.len() / 2);
        steps.push(chunk(json!({"reasoning_content": a}), Value::Null));
        steps.push(chunk(json!({"reasoning_content": b}), Value::Null));
    }
    if let Some(text) = &text {
        steps.push(chunk(json!({"content": text}), Value::Null));
    }
    for (index, call) in calls.iter().enumerate() {
        let mut opening = call.clone();
        opening["index"] = json!(index);
        opening["function"]["arguments"] = json!("");
        steps.push(chunk(json!({"tool_calls": [opening]}), Value::Null));
        steps.push(chunk(
            json!({"tool_calls": [{"index": index, "function": {"arguments": call["function"]["arguments"]}}]}),
            Value::Null,
        ));
    }
    steps.push(chunk(json!({}), json!(finish)));
    steps.push(Step::data("[DONE]"));
    sse_reply(steps)
}

// ---------------------------------------------------------------------------------------------
// OpenAI Responses
// ---------------------------------------------------------------------------------------------

/// The Responses API, stateless: a `function_call` item sent back with its `id` needs the
/// reasoning item it followed ("Item 'fc_…' of type 'function_call' was provided without its
/// required 'reasoning' item: 'rs_…'."), and a reasoning item's `encrypted_content` must be
/// the one issued (openai-python `ResponseReasoningItemParam`: pass back the completed item
/// with its `encrypted_content` "when `store` is `false`").
pub fn responses_rejection(body: &Value) -> Option<Reply> {
    let input = body["input"].as_array()?;
    let mut reasoning_seen = HashSet::new();
    for item in input {
        if item["type"] == "reasoning" {
            let id = item["id"].as_str().unwrap_or_default();
            let serial = id.trim_start_matches("rs_");
            if item["encrypted_content"].as_str() != Some(&format!("enc-{serial}")) {
                return Some(openai_invalid(&format!(
                    "The encrypted content for item {id} could not be verified."
                )));
            }
            reasoning_seen.insert(serial.to_string());
        }
        if item["type"] == "function_call"
            && let Some(id) = item["id"].as_str()
        {
            let serial = id
                .trim_start_matches("fc_")
                .split('_')
                .next()
                .unwrap_or_default();
            if !reasoning_seen.contains(serial) {
                return Some(openai_invalid(&format!(
                    "Item '{id}' of type 'function_call' was provided without its required \
                     'reasoning' item: 'rs_{serial}'."
                )));
            }
        }
    }
    None
}

fn responses_turn(turn: &Turn, serial: usize, stream: bool) -> Reply {
    let mut output = vec![json!({"type": "reasoning", "id": format!("rs_{serial}"),
        "summary": [{"type": "summary_text", "text": format!("Planning step {serial}.")}],
        "encrypted_content": format!("enc-{serial}")})];
    match turn {
        Turn::Text(text) => output.push(json!({"type": "message", "id": format!("msg_{serial}"),
            "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]})),
        Turn::Calls(calls) => {
            for (index, (name, arguments)) in calls.iter().enumerate() {
                output.push(json!({"type": "function_call",
                    "id": format!("fc_{serial}_{index}"),
                    "call_id": format!("call_{serial}_{index}"), "name": name,
                    "arguments": arguments.to_string(), "status": "completed"}));
            }
        }
    }
    let response = json!({"id": format!("resp_{serial}"), "object": "response",
        "status": "completed", "model": "gpt-5.5", "output": output,
        "usage": {"input_tokens": 120, "input_tokens_details": {"cached_tokens": 100},
            "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 10},
            "total_tokens": 150}});
    if !stream {
        return json_reply(200, &response);
    }
    let event = |value: Value| Step::named(value["type"].as_str().unwrap(), value.to_string());
    let mut created = response.clone();
    created["status"] = json!("in_progress");
    created["output"] = json!([]);
    let mut steps = vec![event(
        json!({"type": "response.created", "response": created}),
    )];
    for (index, item) in output.iter().enumerate() {
        let mut added = item.clone();
        if item["type"] == "reasoning" {
            added["encrypted_content"] = json!("enc-incomplete");
        }
        if item["type"] == "function_call" {
            added["arguments"] = json!("");
        }
        steps.push(event(json!({"type": "response.output_item.added",
            "output_index": index, "item": added})));
        match item["type"].as_str().unwrap() {
            "reasoning" => steps.push(event(
                json!({"type": "response.reasoning_summary_text.delta",
                "output_index": index, "delta": item["summary"][0]["text"]}),
            )),
            "message" => steps.push(event(json!({"type": "response.output_text.delta",
                "output_index": index, "delta": item["content"][0]["text"]}))),
            _ => steps.push(event(
                json!({"type": "response.function_call_arguments.delta",
                "output_index": index, "delta": item["arguments"]}),
            )),
        }
        steps.push(event(json!({"type": "response.output_item.done",
            "output_index": index, "item": item})));
    }
    steps.push(event(
        json!({"type": "response.completed", "response": response}),
    ));
    sse_reply(steps)
}
