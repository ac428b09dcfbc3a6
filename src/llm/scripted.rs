//! [`ScriptedModel`]: an in-process [`ChatModel`] that plays a script of turns, for tests,
//! demos and the quickstart when no provider is configured.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;

use super::message::{
    ChatResponse, ContentBlock, Message, Role, StopReason, ToolInput, ToolUse, Usage,
};
use super::pricing::Price;
use super::{ChatModel, ChatRequest, Delta};
use crate::error::Error;
use crate::runtime::CancelToken;

/// One turn of a script: what the model answers to the next request.
pub enum ScriptedTurn {
    /// Answers with text and stops.
    Text(String),
    /// Asks for tool calls (name, arguments), after an optional text.
    ToolCalls {
        /// Text before the calls (may be empty).
        text: String,
        /// The calls, in order.
        calls: Vec<(String, Value)>,
    },
    /// Sends arguments that are not JSON, as a confused model would.
    InvalidToolCall {
        /// The tool called.
        name: String,
        /// The broken arguments.
        raw: String,
    },
    /// Fails the call with this error.
    Fail(Error),
    /// Waits (cancellably), then plays the inner turn.
    Delayed(Duration, Box<ScriptedTurn>),
    /// Never answers: returns only when the task is cancelled or out of time.
    Stall,
    /// Decides the turn from the request, e.g. to quote a tool result back.
    Reply(Box<dyn Fn(&SentRequest) -> ScriptedTurn + Send + Sync>),
}

impl ScriptedTurn {
    /// A text answer.
    pub fn text(text: impl Into<String>) -> ScriptedTurn {
        ScriptedTurn::Text(text.into())
    }

    /// One tool call.
    pub fn tool_call(name: impl Into<String>, arguments: Value) -> ScriptedTurn {
        ScriptedTurn::ToolCalls {
            text: String::new(),
            calls: vec![(name.into(), arguments)],
        }
    }

    /// Several tool calls in one turn.
    pub fn tool_calls(calls: impl IntoIterator<Item = (String, Value)>) -> ScriptedTurn {
        ScriptedTurn::ToolCalls {
            text: String::new(),
            calls: calls.into_iter().collect(),
        }
    }

    /// A turn computed from the request.
    pub fn reply(
        decide: impl Fn(&SentRequest) -> ScriptedTurn + Send + Sync + 'static,
    ) -> ScriptedTurn {
        ScriptedTurn::Reply(Box::new(decide))
    }

    /// This turn after a delay.
    pub fn delayed(self, delay: Duration) -> ScriptedTurn {
        ScriptedTurn::Delayed(delay, Box::new(self))
    }
}

impl fmt::Debug for ScriptedTurn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptedTurn::Text(text) => f.debug_tuple("Text").field(text).finish(),
            ScriptedTurn::ToolCalls { text, calls } => f
                .debug_struct("ToolCalls")
                .field("text", text)
                .field("calls", calls)
                .finish(),
            ScriptedTurn::InvalidToolCall { name, raw } => f
                .debug_struct("InvalidToolCall")
                .field("name", name)
                .field("raw", raw)
                .finish(),
            ScriptedTurn::Fail(error) => f.debug_tuple("Fail").field(error).finish(),
            ScriptedTurn::Delayed(delay, turn) => {
                f.debug_tuple("Delayed").field(delay).field(turn).finish()
            }
            ScriptedTurn::Stall => f.write_str("Stall"),
            ScriptedTurn::Reply(_) => f.write_str("Reply(..)"),
        }
    }
}

/// A request as the scripted model received it.
#[derive(Debug, Clone, PartialEq)]
pub struct SentRequest {
    /// The system prompt.
    pub system: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// The names of the tools offered.
    pub tools: Vec<String>,
    /// The output limit.
    pub max_tokens: u32,
}

impl SentRequest {
    /// The content of the last tool result in the conversation, if any.
    pub fn last_tool_result(&self) -> Option<&str> {
        self.messages.iter().rev().find_map(|message| {
            message.content.iter().rev().find_map(|block| match block {
                ContentBlock::ToolResult(result) => Some(result.content.as_str()),
                _ => None,
            })
        })
    }
}

/// A [`ChatModel`] that answers from a script, records what it was sent, and can fail,
/// stall or delay on cue. Token counts are estimated (about four characters a token); there
/// is no cost unless a price is set.
///
/// ```
/// use serde_json::json;
/// use subtask::llm::{ChatModel, ChatRequest, Message, ScriptedModel, ScriptedTurn};
/// use subtask::CancelToken;
///
/// let model = ScriptedModel::new([
///     ScriptedTurn::tool_call("read", json!({"path": "README.md"})),
///     ScriptedTurn::text("It is a README."),
/// ]);
/// let messages = [Message::user("What is README.md?")];
/// let first = model.chat(&ChatRequest::new("", &messages), &CancelToken::new(), &mut |_| {})?;
/// assert_eq!(first.message.tool_uses().count(), 1);
/// assert_eq!(model.requests().len(), 1);
/// # Ok::<(), subtask::Error>(())
/// ```
pub struct ScriptedModel {
    name: String,
    turns: Mutex<VecDeque<ScriptedTurn>>,
    /// Plays when the script has run out (a script file repeats its last turn).
    fallback: Option<Box<dyn Fn() -> ScriptedTurn + Send + Sync>>,
    requests: Mutex<Vec<SentRequest>>,
    price: Option<Price>,
    next_id: AtomicU64,
}

impl ScriptedModel {
    /// A model that plays `turns` in order, one per call.
    pub fn new(turns: impl IntoIterator<Item = ScriptedTurn>) -> ScriptedModel {
        ScriptedModel {
            name: "scripted:model".to_string(),
            turns: Mutex::new(turns.into_iter().collect()),
            fallback: None,
            requests: Mutex::new(Vec::new()),
            price: None,
            next_id: AtomicU64::new(1),
        }
    }

    /// A model that plays the script in a JSON file, then repeats its last turn: the
    /// `scripted:<path>` model of [`ModelConfig`](super::ModelConfig), for demos and for
    /// testing the command line and MCP server without a provider. The file is an array
    /// of turns, each one of:
    ///
    /// ```json
    /// {"text": "the answer"}
    /// {"text": "optional", "tool_calls": [{"name": "read", "arguments": {"path": "README.md"}}]}
    /// {"error": "what went wrong"}
    /// {"stall": true}
    /// ```
    ///
    /// and any turn may add `"delay_ms": 500`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the file and the turn at fault.
    pub fn from_file(path: &std::path::Path) -> Result<ScriptedModel, Error> {
        let fail = |message: String| Error::config(format!("{}: {message}", path.display()));
        let text = std::fs::read_to_string(path)
            .map_err(|error| fail(format!("cannot read it: {error}")))?;
        let turns: Vec<Value> = serde_json::from_str(&text)
            .map_err(|error| fail(format!("not a JSON array of turns: {error}")))?;
        if turns.is_empty() {
            return Err(fail("the script has no turns".into()));
        }
        for (index, turn) in turns.iter().enumerate() {
            file_turn(turn).map_err(|problem| fail(format!("turn {}: {problem}", index + 1)))?;
        }
        let last = turns.last().cloned().unwrap_or_default();
        let mut model = ScriptedModel::new(
            turns
                .iter()
                .map(|turn| file_turn(turn).unwrap_or(ScriptedTurn::Stall)),
        );
        model.fallback = Some(Box::new(move || {
            file_turn(&last).unwrap_or(ScriptedTurn::Stall)
        }));
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned());
        Ok(model.named(name.as_deref().unwrap_or("script")))
    }

    /// Names it (`scripted:<name>`) in usage and logs.
    pub fn named(mut self, name: &str) -> ScriptedModel {
        self.name = format!("scripted:{name}");
        self
    }

    /// Gives its usage a cost at this price.
    pub fn price(mut self, price: Price) -> ScriptedModel {
        self.price = Some(price);
        self
    }

    /// Adds a turn at the end of the script.
    pub fn push(&self, turn: ScriptedTurn) {
        self.turns.lock().push_back(turn);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<SentRequest> {
        self.requests.lock().clone()
    }

    /// Turns not played yet.
    pub fn remaining(&self) -> usize {
        self.turns.lock().len()
    }

    fn play(
        &self,
        turn: ScriptedTurn,
        sent: &SentRequest,
        token: &CancelToken,
        on_delta: &mut dyn FnMut(Delta<'_>),
    ) -> Result<(Vec<ContentBlock>, StopReason), Error> {
        token.check()?;
        match turn {
            ScriptedTurn::Text(text) => {
                on_delta(Delta::Text(&text));
                Ok((vec![ContentBlock::Text { text }], StopReason::EndTurn))
            }
            ScriptedTurn::ToolCalls { text, calls } => {
                let mut content = Vec::new();
                if !text.is_empty() {
                    on_delta(Delta::Text(&text));
                    content.push(ContentBlock::Text { text });
                }
                for (name, arguments) in calls {
                    on_delta(Delta::ToolCall { name: &name });
                    on_delta(Delta::ToolInput(&arguments.to_string()));
                    content.push(ContentBlock::ToolUse(ToolUse {
                        id: self.tool_id(),
                        name,
                        input: ToolInput::Json { value: arguments },
                        extra: None,
                    }));
                }
                Ok((content, StopReason::ToolUse))
            }
            ScriptedTurn::InvalidToolCall { name, raw } => {
                on_delta(Delta::ToolCall { name: &name });
                let call = ToolUse {
                    id: self.tool_id(),
                    name,
                    input: ToolInput::parse(&raw),
                    extra: None,
                };
                Ok((vec![ContentBlock::ToolUse(call)], StopReason::ToolUse))
            }
            ScriptedTurn::Fail(error) => Err(error),
            ScriptedTurn::Delayed(delay, turn) => {
                token.sleep(delay)?;
                self.play(*turn, sent, token, on_delta)
            }
            ScriptedTurn::Stall => loop {
                // Wakes at once on cancel or at the deadline; a token with neither keeps
                // stalling, as a hung server would.
                token.sleep(Duration::from_secs(3600))?;
            },
            ScriptedTurn::Reply(decide) => self.play(decide(sent), sent, token, on_delta),
        }
    }

    fn tool_id(&self) -> String {
        format!(
            "toolu_scripted_{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }
}

impl ChatModel for ScriptedModel {
    fn chat(
        &self,
        request: &ChatRequest<'_>,
        token: &CancelToken,
        on_delta: &mut dyn FnMut(Delta<'_>),
    ) -> Result<ChatResponse, Error> {
        let sent = SentRequest {
            system: request.system.to_string(),
            messages: request.messages.to_vec(),
            tools: request.tools.iter().map(|tool| tool.name.clone()).collect(),
            max_tokens: request.max_tokens,
        };
        let number = {
            let mut requests = self.requests.lock();
            requests.push(sent.clone());
            requests.len()
        };
        let next = self.turns.lock().pop_front();
        let Some(turn) = next.or_else(|| self.fallback.as_ref().map(|make| make())) else {
            return Err(Error::other(format!(
                "{}: no scripted turn left for request {number}; add turns to the script",
                self.name
            )));
        };
        let (content, stop_reason) = self.play(turn, &sent, token, on_delta)?;
        let message = Message {
            role: Role::Assistant,
            content,
        };
        let mut usage = Usage {
            input_tokens: estimate_tokens(
                &serde_json::to_string(&sent.messages).unwrap_or_default(),
            ) + estimate_tokens(&sent.system),
            output_tokens: estimate_tokens(&serde_json::to_string(&message).unwrap_or_default()),
            ..Usage::default()
        };
        usage.cost_usd = self.price.map(|price| price.cost(&usage));
        Ok(ChatResponse {
            message,
            stop_reason,
            usage,
            model: self.name.clone(),
        })
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for ScriptedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedModel")
            .field("name", &self.name)
            .field("remaining", &self.remaining())
            .finish_non_exhaustive()
    }
}

/// One turn of a script file.
fn file_turn(turn: &Value) -> Result<ScriptedTurn, String> {
    let Some(fields) = turn.as_object() else {
        return Err("a turn must be an object".into());
    };
    let text = fields
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let played = if let Some(error) = fields.get("error") {
        let message = error.as_str().ok_or("`error` must be a string")?;
        ScriptedTurn::Fail(Error::other(message.to_string()))
    } else if fields.get("stall") == Some(&Value::Bool(true)) {
        ScriptedTurn::Stall
    } else if let Some(calls) = fields.get("tool_calls") {
        let calls = calls.as_array().ok_or("`tool_calls` must be an array")?;
        let calls = calls
            .iter()
            .map(|call| {
                let name = call["name"]
                    .as_str()
                    .ok_or("each tool call needs a `name`")?;
                Ok((
                    name.to_string(),
                    call.get("arguments").cloned().unwrap_or_default(),
                ))
            })
            .collect::<Result<Vec<_>, &str>>()?;
        ScriptedTurn::ToolCalls { text, calls }
    } else if fields.contains_key("text") {
        ScriptedTurn::Text(text)
    } else {
        return Err("give `text`, `tool_calls`, `error` or `stall`".into());
    };
    Ok(match fields.get("delay_ms").and_then(Value::as_u64) {
        Some(delay) => played.delayed(Duration::from_millis(delay)),
        None => played,
    })
}

/// About four characters a token, at least one for any text.
fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde_json::json;

    fn ask(model: &ScriptedModel, token: &CancelToken) -> Result<ChatResponse, Error> {
        let messages = [Message::user("hi")];
        model.chat(&ChatRequest::new("sys", &messages), token, &mut |_| {})
    }

    #[test]
    fn plays_turns_in_order_and_records_requests() {
        let model = ScriptedModel::new([
            ScriptedTurn::tool_call("read", json!({"path": "a"})),
            ScriptedTurn::text("done"),
        ]);
        let token = CancelToken::new();
        let first = ask(&model, &token).unwrap();
        assert_eq!(first.stop_reason, StopReason::ToolUse);
        let second = ask(&model, &token).unwrap();
        assert_eq!(second.message.text(), "done");
        assert!(second.usage.output_tokens > 0);
        assert_eq!(model.requests()[0].system, "sys");
        let error = ask(&model, &token).unwrap_err();
        assert!(
            error
                .message()
                .contains("no scripted turn left for request 3"),
            "{error}"
        );
    }

    #[test]
    fn a_stalled_turn_returns_when_the_token_trips() {
        let model = ScriptedModel::new([ScriptedTurn::Stall]);
        let token = CancelToken::with_timeout(Duration::from_millis(20));
        let error = ask(&model, &token).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Timeout);
    }

    #[test]
    fn a_script_file_plays_then_repeats_its_last_turn() {
        let path = std::env::temp_dir().join(format!("subtask-script-{}.json", std::process::id()));
        std::fs::write(
            &path,
            r#"[{"tool_calls": [{"name": "ls", "arguments": {}}]}, {"text": "done", "delay_ms": 1}]"#,
        )
        .unwrap();
        let model = crate::llm::ModelConfig::parse(&format!("scripted:{}", path.display()))
            .unwrap()
            .with_env()
            .build()
            .unwrap();
        let token = CancelToken::new();
        let messages = [Message::user("hi")];
        let ask = || {
            model
                .chat(&ChatRequest::new("", &messages), &token, &mut |_| {})
                .unwrap()
        };
        assert_eq!(ask().stop_reason, StopReason::ToolUse);
        assert_eq!(ask().message.text(), "done");
        assert_eq!(ask().message.text(), "done");
        std::fs::write(&path, r#"[{"colour": "red"}]"#).unwrap();
        let error = ScriptedModel::from_file(&path).unwrap_err();
        assert!(error.message().contains("turn 1"), "{error}");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn replies_can_quote_the_request() {
        let model = ScriptedModel::new([ScriptedTurn::reply(|sent| {
            ScriptedTurn::text(format!("{} messages", sent.messages.len()))
        })]);
        assert_eq!(
            ask(&model, &CancelToken::new()).unwrap().message.text(),
            "1 messages"
        );
    }
}
