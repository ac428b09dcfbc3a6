//! [`FunctionModel`]: a chat model a host provides as a function over Chat Completions JSON,
//! so any model a host already has (a Python client, a C library) can drive subagents.

use std::fmt;

use serde_json::Value;

use super::openai::{embedded_error, request_json, response_from_json};
use super::settings::MaxTokensField;
use super::{ChatModel, ChatRequest, ChatResponse, Delta};
use crate::error::{Error, ProviderDetails};
use crate::runtime::CancelToken;

type Complete = dyn Fn(&Value, &CancelToken) -> Result<Value, String> + Send + Sync;

/// A [`ChatModel`] that calls a function with an OpenAI Chat Completions request body
/// (`model`, `messages`, `tools`, `max_tokens`; never streaming) and reads the Chat
/// Completions response body it returns (`choices[0].message` with `content` and
/// `tool_calls`, `finish_reason`, `usage`). An `Err`, or an `{"error": …}` body, fails the
/// call with that message.
///
/// The function runs on the subagent's execution thread and is not interrupted by
/// cancellation: it should return within the task's time. A long one (a streaming client)
/// made with [`with_token`](Self::with_token) sees its task's [`CancelToken`] and can stop
/// early.
///
/// ```
/// use serde_json::json;
/// use subtask::llm::{ChatModel, ChatRequest, FunctionModel, Message};
/// use subtask::CancelToken;
///
/// let model = FunctionModel::new("echo", |request| {
///     let last = request["messages"].as_array().unwrap().last().unwrap()["content"].clone();
///     Ok(json!({"choices": [{"message": {"role": "assistant", "content": last}, "finish_reason": "stop"}]}))
/// });
/// let messages = [Message::user("hi")];
/// let reply = model.chat(&ChatRequest::new("", &messages), &CancelToken::new(), &mut |_| {})?;
/// assert_eq!(reply.message.text(), "hi");
/// # Ok::<(), subtask::Error>(())
/// ```
pub struct FunctionModel {
    name: String,
    model: String,
    complete: Box<Complete>,
}

impl FunctionModel {
    /// A model named `function:<model>` whose requests carry `"model": model`.
    pub fn new(
        model: impl Into<String>,
        complete: impl Fn(&Value) -> Result<Value, String> + Send + Sync + 'static,
    ) -> FunctionModel {
        FunctionModel::with_token(model, move |request, _| complete(request))
    }

    /// [`new`](Self::new), the function also getting the calling task's [`CancelToken`]:
    /// tripped when the task is cancelled or times out, so the function can give up early
    /// (its result is discarded then anyway).
    pub fn with_token(
        model: impl Into<String>,
        complete: impl Fn(&Value, &CancelToken) -> Result<Value, String> + Send + Sync + 'static,
    ) -> FunctionModel {
        let model = model.into();
        FunctionModel {
            name: format!("function:{model}"),
            model,
            complete: Box::new(complete),
        }
    }

    fn failure(&self, message: String) -> Error {
        Error::provider(
            ProviderDetails {
                provider: "function".to_string(),
                status: None,
                error_type: None,
                code: None,
                message,
                request_id: None,
                attempts: 1,
            },
            false,
        )
    }
}

impl ChatModel for FunctionModel {
    fn chat(
        &self,
        request: &ChatRequest<'_>,
        token: &CancelToken,
        on_delta: &mut dyn FnMut(Delta<'_>),
    ) -> Result<ChatResponse, Error> {
        token.check()?;
        let body = request_json(&self.model, request, MaxTokensField::MaxTokens);
        let response = (self.complete)(&body, token).map_err(|message| self.failure(message))?;
        token.check()?;
        if let Some(failure) = embedded_error(&response) {
            return Err(self.failure(failure.message));
        }
        let (message, stop_reason, usage, model) = response_from_json(&response)
            .map_err(|problem| self.failure(format!("{problem}: {response}")))?;
        let text = message.text();
        if !text.is_empty() {
            on_delta(Delta::Text(&text));
        }
        Ok(ChatResponse {
            message,
            stop_reason,
            usage,
            model: model.unwrap_or_else(|| self.model.clone()),
        })
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for FunctionModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionModel")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
