//! Language models: the [`ChatModel`] trait subagents think through, and its providers —
//! [`OpenAiCompatible`] (OpenAI, Ollama, vLLM, llama.cpp, LM Studio, OpenRouter…),
//! [`OpenAiResponses`] (OpenAI's Responses API), [`Anthropic`], and [`ScriptedModel`] for
//! tests and demos.
//!
//! ```no_run
//! use subtask::llm::{ChatModel, ChatRequest, Message, ModelConfig};
//! use subtask::CancelToken;
//!
//! // SUBTASK_MODEL=anthropic:claude-sonnet-4-5 and ANTHROPIC_API_KEY=… in the environment.
//! let model = ModelConfig::from_env()?.build()?;
//! let messages = [Message::user("Say hi in three words.")];
//! let request = ChatRequest::new("You are terse.", &messages);
//! let response = model.chat(&request, &CancelToken::new(), &mut |_delta| {})?;
//! println!("{}", response.message.text());
//! # Ok::<(), subtask::Error>(())
//! ```

mod anthropic;
mod config;
mod function;
mod http;
mod message;
mod openai;
mod pricing;
mod responses;
mod scripted;
mod settings;
mod sse;

pub use anthropic::{Anthropic, AnthropicConfig};
pub use config::{ApiKey, MODEL_VAR, ModelConfig, Provider, SETTINGS_VAR, aliases, resolve_alias};
pub use function::FunctionModel;
pub use http::HttpOptions;
pub(crate) use http::preview;
pub use message::{
    ChatResponse, ContentBlock, Message, Role, StopReason, ToolInput, ToolResult, ToolSpec,
    ToolUse, Usage,
};
pub use openai::{OpenAiCompatible, OpenAiConfig};
pub use pricing::{MODELS_FILE_VAR, Price, check_models_file, price_of};
pub use responses::OpenAiResponses;
pub use scripted::{ScriptedModel, ScriptedTurn, SentRequest};
pub use settings::{MaxTokensField, ModelSettings, ReasoningEffort, SETTING_NAMES};

use crate::error::Error;
use crate::runtime::CancelToken;

/// Output tokens asked for when a request does not say.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;

/// One model call: the conversation so far and the tools on offer.
#[derive(Debug, Clone, Copy)]
pub struct ChatRequest<'a> {
    /// The system prompt (empty for none).
    pub system: &'a str,
    /// The conversation, oldest first; it starts with a user message.
    pub messages: &'a [Message],
    /// The tools the model may call.
    pub tools: &'a [ToolSpec],
    /// The most output tokens this call may produce.
    pub max_tokens: u32,
    /// Reasoning effort for this call, over the model's setting (`None`: the model's).
    pub reasoning_effort: Option<ReasoningEffort>,
}

impl<'a> ChatRequest<'a> {
    /// A request without tools, for at most [`DEFAULT_MAX_TOKENS`] output tokens.
    pub fn new(system: &'a str, messages: &'a [Message]) -> ChatRequest<'a> {
        ChatRequest {
            system,
            messages,
            tools: &[],
            max_tokens: DEFAULT_MAX_TOKENS,
            reasoning_effort: None,
        }
    }

    /// Sets the reasoning effort of this call.
    pub fn reasoning_effort(mut self, effort: Option<ReasoningEffort>) -> ChatRequest<'a> {
        self.reasoning_effort = effort;
        self
    }

    /// Offers these tools.
    pub fn tools(mut self, tools: &'a [ToolSpec]) -> ChatRequest<'a> {
        self.tools = tools;
        self
    }

    /// Caps the output tokens.
    pub fn max_tokens(mut self, max_tokens: u32) -> ChatRequest<'a> {
        self.max_tokens = max_tokens;
        self
    }
}

/// A piece of a response as it streams in: for progress display and stall detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delta<'a> {
    /// More answer text.
    Text(&'a str),
    /// The model started a tool call.
    ToolCall {
        /// The tool's name.
        name: &'a str,
    },
    /// More of a tool call's arguments (partial JSON).
    ToolInput(&'a str),
    /// More reasoning (thinking) text: progress, never answer.
    Reasoning(&'a str),
}

/// A chat model: one blocking call per turn of a conversation.
///
/// Implementations must be `Send + Sync` (one model serves many subagents at once), must
/// not outlive `token`'s deadline, and must return promptly once `token` is cancelled.
pub trait ChatModel: Send + Sync {
    /// Sends the conversation and returns the assistant's message, why it stopped, and the
    /// tokens it used. `on_delta` sees the response as it streams (if it does).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Provider`](crate::ErrorKind::Provider) when the provider fails or
    /// refuses (after the retries it allows); [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled)
    /// or [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when the task ends first;
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a request the model cannot take.
    fn chat(
        &self,
        request: &ChatRequest<'_>,
        token: &CancelToken,
        on_delta: &mut dyn FnMut(Delta<'_>),
    ) -> Result<ChatResponse, Error>;

    /// `provider:model`, e.g. `anthropic:claude-sonnet-4-5`, for logs and usage footers.
    fn name(&self) -> &str;
}
