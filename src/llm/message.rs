//! The provider-neutral shape of a conversation: messages made of text, tool-use and
//! tool-result blocks, the tools offered, and what comes back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who wrote a message. The system prompt travels apart, in [`ChatRequest::system`](super::ChatRequest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user, or the host speaking for it (tool results travel as user messages).
    User,
    /// The model.
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its blocks, in order.
    pub content: Vec<ContentBlock>,
}

impl Message {
    /// A user message with one text block.
    pub fn user(text: impl Into<String>) -> Message {
        Message {
            role: Role::User,
            content: vec![ContentBlock::Text { text: text.into() }],
        }
    }

    /// An assistant message with one text block.
    pub fn assistant(text: impl Into<String>) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![ContentBlock::Text { text: text.into() }],
        }
    }

    /// The answer: the text blocks joined by blank lines (never thinking or reasoning).
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self
            .content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n\n")
    }

    /// The tool calls in this message, in order.
    pub fn tool_uses(&self) -> impl Iterator<Item = &ToolUse> {
        self.content.iter().filter_map(|block| match block {
            ContentBlock::ToolUse(tool_use) => Some(tool_use),
            _ => None,
        })
    }
}

/// A block of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// The model asks for a tool to be called.
    ToolUse(ToolUse),
    /// The answer to a tool call, sent back in a user message.
    ToolResult(ToolResult),
    /// Anthropic extended thinking: sent back unchanged (text and signature) in tool loops,
    /// where the API refuses an assistant turn whose thinking block was dropped or edited.
    /// Never part of the answer.
    Thinking {
        /// The (summarised) reasoning.
        thinking: String,
        /// The server's signature over it; opaque.
        signature: String,
    },
    /// Anthropic thinking the server encrypted; sent back unchanged, never shown.
    RedactedThinking {
        /// The encrypted thinking; opaque.
        data: String,
    },
    /// Reasoning text an OpenAI-compatible server sent beside the answer (`reasoning_content`
    /// at DeepSeek, vLLM, llama.cpp; `reasoning` at OpenRouter, Ollama). Sent back to a
    /// server of the same kind under the same field: DeepSeek refuses a tool-loop
    /// continuation without it. Never part of the answer.
    Reasoning {
        /// The reasoning.
        text: String,
        /// The field it came in (`reasoning_content` or `reasoning`).
        field: String,
    },
    /// An item a provider needs back verbatim and nobody else understands, e.g. an OpenAI
    /// Responses `reasoning` item with its `encrypted_content`. Sent back only to the
    /// provider named here.
    Opaque {
        /// The provider that sent it (`openai-responses`).
        provider: String,
        /// The item as sent.
        item: Value,
    },
}

impl ContentBlock {
    /// Whether this block is reasoning of some kind (thinking, redacted thinking, reasoning
    /// text, an opaque provider item) rather than answer, call or result.
    pub fn is_reasoning(&self) -> bool {
        matches!(
            self,
            ContentBlock::Thinking { .. }
                | ContentBlock::RedactedThinking { .. }
                | ContentBlock::Reasoning { .. }
                | ContentBlock::Opaque { .. }
        )
    }
}

/// A tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolUse {
    /// The call's id; the result must carry it. Made up (`call_<n>`) when a server sends none.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments.
    pub input: ToolInput,
    /// Provider data attached to the call that must come back with it, e.g. Gemini's
    /// `extra_content` (`{"google": {"thought_signature": …}}`), sent back as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// A tool call's arguments as the model wrote them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToolInput {
    /// Valid JSON (an object for every well-behaved model).
    Json {
        /// The arguments.
        value: Value,
    },
    /// Text that is not valid JSON. The call must not run: the agent answers it with a tool
    /// error quoting `error`, so the model can fix its call.
    Invalid {
        /// What the model sent.
        raw: String,
        /// Why it does not parse.
        error: String,
    },
}

impl ToolInput {
    /// Parses a JSON text; keeps it raw with the parse error if it is not JSON. An empty
    /// text means no arguments (`{}`), as some servers send for parameterless tools.
    pub fn parse(raw: &str) -> ToolInput {
        if raw.trim().is_empty() {
            return ToolInput::Json {
                value: Value::Object(Default::default()),
            };
        }
        match serde_json::from_str(raw) {
            Ok(value) => ToolInput::Json { value },
            Err(error) => ToolInput::Invalid {
                raw: raw.to_string(),
                error: error.to_string(),
            },
        }
    }

    /// The arguments as a JSON text, as OpenAI-style servers want them in the history.
    pub fn to_json_string(&self) -> String {
        match self {
            ToolInput::Json { value } => value.to_string(),
            ToolInput::Invalid { raw, .. } => raw.clone(),
        }
    }

    /// The arguments as a JSON value; `{}` for invalid ones (Anthropic wants an object).
    pub fn to_value(&self) -> Value {
        match self {
            ToolInput::Json { value } => value.clone(),
            ToolInput::Invalid { .. } => Value::Object(Default::default()),
        }
    }
}

/// The result of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The id of the [`ToolUse`] this answers.
    pub tool_use_id: String,
    /// What the tool returned, or the error message.
    pub content: String,
    /// Whether the call failed.
    pub is_error: bool,
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Its name (`a-zA-Z0-9_-`, at most 64 characters for OpenAI).
    pub name: String,
    /// What it does and when to use it; the model reads this.
    pub description: String,
    /// A JSON Schema of type `object` for its arguments.
    pub parameters: Value,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// It finished its answer.
    EndTurn,
    /// It asks for tool calls (decided by the calls being there, whatever the server said).
    ToolUse,
    /// It hit the output token limit.
    MaxTokens,
    /// It hit a stop sequence.
    StopSequence,
    /// It refused, or a content filter stopped it.
    Refusal,
    /// The conversation filled the model's context window (Anthropic's
    /// `model_context_window_exceeded`): the reply is cut short.
    ContextWindowExceeded,
    /// The server paused a long turn (Anthropic's `pause_turn`); send the conversation
    /// back as it is to let it continue.
    PauseTurn,
    /// Another reason, as the server named it.
    Other(String),
}

impl StopReason {
    /// Whether the reply was cut short by a limit (output tokens or context window), so a
    /// tool call in it may be incomplete and must not run.
    pub fn is_truncation(&self) -> bool {
        matches!(
            self,
            StopReason::MaxTokens | StopReason::ContextWindowExceeded
        )
    }
}

/// Tokens used by one or more model calls, and their cost when the price is known.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens not read from a cache.
    pub input_tokens: u64,
    /// Output tokens (reasoning included).
    pub output_tokens: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write_tokens: u64,
    /// Cost in US dollars; `None` when the model's price is unknown (never a guess).
    pub cost_usd: Option<f64>,
}

impl Usage {
    /// Adds `other` to this. The cost stays known only while every part's cost is known.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.cost_usd = match (self.cost_usd, other.cost_usd) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }

    /// Every input token: uncached, cache reads and cache writes.
    pub fn total_input_tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
    }
}

/// What one model call returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The assistant message (text and tool calls).
    pub message: Message,
    /// Why the model stopped.
    pub stop_reason: StopReason,
    /// Tokens used by this call, and its cost when known.
    pub usage: Usage,
    /// The model that answered, as the server named it.
    pub model: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_input_keeps_invalid_json_raw() {
        assert_eq!(
            ToolInput::parse(r#"{"path":"a"}"#),
            ToolInput::Json {
                value: json!({"path": "a"})
            }
        );
        assert_eq!(ToolInput::parse(" ").to_value(), json!({}));
        let invalid = ToolInput::parse(r#"{"path": "a""#);
        assert!(matches!(invalid, ToolInput::Invalid { .. }));
        assert_eq!(invalid.to_json_string(), r#"{"path": "a""#);
        assert_eq!(invalid.to_value(), json!({}));
    }

    #[test]
    fn usage_cost_is_known_only_when_every_part_is() {
        let mut total = Usage {
            input_tokens: 10,
            cost_usd: Some(0.5),
            ..Usage::default()
        };
        total.add(&Usage {
            output_tokens: 5,
            cost_usd: Some(0.25),
            ..Usage::default()
        });
        assert_eq!((total.input_tokens, total.output_tokens), (10, 5));
        assert_eq!(total.cost_usd, Some(0.75));
        total.add(&Usage::default());
        assert_eq!(total.cost_usd, None);
    }

    #[test]
    fn messages_round_trip_through_json() {
        let message = Message {
            role: Role::Assistant,
            content: vec![
                ContentBlock::Text {
                    text: "Reading it.".into(),
                },
                ContentBlock::ToolUse(ToolUse {
                    id: "call_1".into(),
                    name: "read".into(),
                    input: ToolInput::parse(r#"{"path":"README.md"}"#),
                    extra: None,
                }),
            ],
        };
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(serde_json::from_str::<Message>(&text).unwrap(), message);
        assert_eq!(message.text(), "Reading it.");
        assert_eq!(message.tool_uses().count(), 1);
    }
}
