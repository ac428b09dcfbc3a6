//! Request settings that differ from server to server: reasoning effort and thinking
//! budget, whether to send `stream_options`, which field carries the output limit, extra
//! headers and extra body fields. Each has a per-provider default (documented on its
//! field) and can be set from the model spec (`provider:model?name=value&…`), the
//! environment (`SUBTASK_MODEL_SETTINGS`), the command line (`--set`), the C ABI and Python
//! (through the model spec) and agent front matter, all through
//! [`ModelConfig::set`](super::ModelConfig::set).

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::error::Error;

/// How hard a reasoning model thinks before it answers.
///
/// Sent as `reasoning_effort` to OpenAI-style servers (OpenAI accepts `none` … `xhigh`;
/// DeepSeek maps `minimal`/`low` to low, `medium`/`high`/`xhigh` to high, `max` to max),
/// as `reasoning.effort` to the Responses API, and as `output_config.effort` with adaptive
/// thinking to Anthropic (`low` … `max`; `none` turns thinking off, `minimal` is sent as
/// `low`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasoningEffort {
    /// No reasoning (where the model allows it).
    None,
    /// The least reasoning.
    Minimal,
    /// Little reasoning.
    Low,
    /// The usual default.
    Medium,
    /// More reasoning.
    High,
    /// More still (OpenAI's `xhigh`, Anthropic's `xhigh`).
    XHigh,
    /// The most (Anthropic's and DeepSeek's `max`).
    Max,
}

impl ReasoningEffort {
    /// The wire value: `none`, `minimal`, `low`, `medium`, `high`, `xhigh`, `max`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::None => "none",
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
            ReasoningEffort::XHigh => "xhigh",
            ReasoningEffort::Max => "max",
        }
    }
}

impl FromStr for ReasoningEffort {
    type Err = Error;

    fn from_str(text: &str) -> Result<ReasoningEffort, Error> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "none" | "off" => ReasoningEffort::None,
            "minimal" => ReasoningEffort::Minimal,
            "low" => ReasoningEffort::Low,
            "medium" => ReasoningEffort::Medium,
            "high" => ReasoningEffort::High,
            "xhigh" => ReasoningEffort::XHigh,
            "max" => ReasoningEffort::Max,
            other => {
                return Err(Error::config(format!(
                    "unknown reasoning effort '{other}': use none, minimal, low, medium, high, \
                     xhigh or max"
                )));
            }
        })
    }
}

impl fmt::Display for ReasoningEffort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which request field carries the output limit of an OpenAI-style request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaxTokensField {
    /// `max_completion_tokens`: OpenAI's current field (needed by o-series and gpt-5 models).
    MaxCompletionTokens,
    /// `max_tokens`: the deprecated field most compatible servers still expect.
    MaxTokens,
    /// No limit is sent; the server decides (vLLM refuses a prompt plus `max_tokens` over
    /// the context length, so leaving it out is the safe choice for unknown servers).
    Omit,
}

impl FromStr for MaxTokensField {
    type Err = Error;

    fn from_str(text: &str) -> Result<MaxTokensField, Error> {
        match text.trim() {
            "max_completion_tokens" => Ok(MaxTokensField::MaxCompletionTokens),
            "max_tokens" => Ok(MaxTokensField::MaxTokens),
            "none" | "omit" | "" => Ok(MaxTokensField::Omit),
            other => Err(Error::config(format!(
                "unknown max-tokens field '{other}': use max_completion_tokens, max_tokens or none"
            ))),
        }
    }
}

/// The setting names [`ModelSettings::set`] takes, with what each does; the CLI, the C ABI,
/// Python and front matter all use these names.
pub const SETTING_NAMES: &[(&str, &str)] = &[
    ("reasoning_effort", "none|minimal|low|medium|high|xhigh|max"),
    (
        "thinking_budget",
        "Anthropic thinking budget in tokens (>= 1024), or 0 for none",
    ),
    ("stream", "true|false: stream responses"),
    (
        "first_byte_timeout",
        "seconds to wait for the first byte (default 600)",
    ),
    (
        "stall_timeout",
        "seconds a started response may pause (default 60)",
    ),
    (
        "stream_options",
        "true|false: send stream_options.include_usage (OpenAI-style)",
    ),
    (
        "max_tokens_field",
        "max_completion_tokens|max_tokens|none (OpenAI-style)",
    ),
    (
        "prompt_caching",
        "true|false: mark Anthropic cache breakpoints",
    ),
    ("header.NAME", "an extra request header"),
    ("body.NAME", "an extra body field (JSON value, or text)"),
];

/// Per-server request settings. `None` means the provider's default, given on each field.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ModelSettings {
    /// Reasoning effort. Defaults to the server's own default (nothing sent).
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Anthropic extended thinking with this budget (`thinking.type = enabled`); it must be
    /// at least 1024 and below the request's output limit. Defaults to none.
    pub thinking_budget: Option<u32>,
    /// Send `stream_options: {include_usage: true}` with streaming OpenAI-style requests.
    /// Defaults to `true` for `openai:`, `false` for `openai-compat:` (Azure AI Foundry and
    /// some gateways refuse it with a 400; usage then comes from the last chunk if the
    /// server sends it anyway).
    pub stream_options: Option<bool>,
    /// Mark Anthropic prompt-cache breakpoints (tools, system, the end of the
    /// conversation). Defaults to `true`.
    pub prompt_caching: Option<bool>,
    /// Extra request headers (`anthropic-beta`, OpenRouter's `HTTP-Referer`…). A header
    /// named here replaces the provider's own of that name, except the key.
    pub extra_headers: Vec<(String, String)>,
    /// Extra top-level body fields (`chat_template_kwargs`, `thinking`, `provider`…),
    /// merged over the request body last.
    pub extra_body: Map<String, Value>,
}

impl ModelSettings {
    /// Sets one setting by name (see [`SETTING_NAMES`]; `stream`, `max_tokens_field` and the
    /// timeouts are set through [`ModelConfig::set`](super::ModelConfig::set)): `reasoning_effort=high`,
    /// `header.anthropic-beta=…`, `body.chat_template_kwargs={"enable_thinking":false}`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the setting and what it takes.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let name = name.trim();
        let value = value.trim();
        let flag = |value: &str| -> Result<bool, Error> {
            match value.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(Error::config(format!(
                    "setting '{name}' takes true or false, not '{value}'"
                ))),
            }
        };
        if let Some(header) = name.strip_prefix("header.") {
            if header.is_empty()
                || !header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                return Err(Error::config(format!(
                    "'{header}' is not a header name: use letters, digits, '-' and '_'"
                )));
            }
            if value.contains(['\r', '\n']) {
                return Err(Error::config(format!(
                    "the value of header '{header}' contains a line break"
                )));
            }
            self.extra_headers
                .retain(|(existing, _)| !existing.eq_ignore_ascii_case(header));
            self.extra_headers
                .push((header.to_ascii_lowercase(), value.to_string()));
            return Ok(());
        }
        if let Some(field) = name.strip_prefix("body.") {
            if field.is_empty() {
                return Err(Error::config("'body.' needs a field name: body.NAME=VALUE"));
            }
            let parsed =
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
            self.extra_body.insert(field.to_string(), parsed);
            return Ok(());
        }
        match name {
            "reasoning_effort" | "effort" => self.reasoning_effort = Some(value.parse()?),
            "thinking_budget" => {
                let budget: u32 = value.parse().map_err(|_| {
                    Error::config(format!(
                        "thinking_budget takes a number of tokens, not '{value}'"
                    ))
                })?;
                if budget != 0 && budget < 1024 {
                    return Err(Error::config(format!(
                        "thinking_budget {budget} is below Anthropic's minimum of 1024 tokens"
                    )));
                }
                self.thinking_budget = (budget != 0).then_some(budget);
            }
            "stream_options" => self.stream_options = Some(flag(value)?),
            "prompt_caching" => self.prompt_caching = Some(flag(value)?),
            other => {
                let known: Vec<&str> = SETTING_NAMES.iter().map(|(name, _)| *name).collect();
                return Err(Error::config(format!(
                    "unknown model setting '{other}': use one of {}",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Parses `name=value` (the CLI's `--set` and the `SUBTASK_MODEL_SETTINGS` lines).
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set), or when there is no `=`.
    pub fn set_pair(&mut self, pair: &str) -> Result<(), Error> {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(Error::config(format!(
                "model setting '{pair}' needs the form name=value"
            )));
        };
        self.set(name, value)
    }

    /// These settings with every unset one taken from `defaults`; headers and body fields
    /// are merged, `self` winning.
    pub fn or(&self, defaults: &ModelSettings) -> ModelSettings {
        let mut extra_headers = defaults.extra_headers.clone();
        for (name, value) in &self.extra_headers {
            extra_headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
            extra_headers.push((name.clone(), value.clone()));
        }
        let mut extra_body = defaults.extra_body.clone();
        for (name, value) in &self.extra_body {
            extra_body.insert(name.clone(), value.clone());
        }
        ModelSettings {
            reasoning_effort: self.reasoning_effort.or(defaults.reasoning_effort),
            thinking_budget: self.thinking_budget.or(defaults.thinking_budget),
            stream_options: self.stream_options.or(defaults.stream_options),
            prompt_caching: self.prompt_caching.or(defaults.prompt_caching),
            extra_headers,
            extra_body,
        }
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == ModelSettings::default()
    }
}

/// Merges `extra` over a request body's top level.
pub(crate) fn merge_body(body: &mut Value, extra: &Map<String, Value>) {
    if let Value::Object(fields) = body {
        for (name, value) in extra {
            fields.insert(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde_json::json;

    #[test]
    fn settings_parse_by_name_and_refuse_bad_values_clearly() {
        let mut settings = ModelSettings::default();
        settings.set("reasoning_effort", "HIGH").unwrap();
        settings.set("thinking_budget", "2048").unwrap();
        settings.set("stream_options", "false").unwrap();
        settings
            .set_pair("header.anthropic-beta=context-1m")
            .unwrap();
        settings
            .set_pair(r#"body.chat_template_kwargs={"enable_thinking":false}"#)
            .unwrap();
        settings.set_pair("body.provider=openrouter").unwrap();
        assert_eq!(settings.reasoning_effort, Some(ReasoningEffort::High));
        assert_eq!(settings.thinking_budget, Some(2048));
        assert_eq!(settings.stream_options, Some(false));
        assert_eq!(
            "none".parse::<MaxTokensField>().unwrap(),
            MaxTokensField::Omit
        );
        assert_eq!(
            settings.extra_headers,
            vec![("anthropic-beta".to_string(), "context-1m".to_string())]
        );
        assert_eq!(
            settings.extra_body["chat_template_kwargs"],
            json!({"enable_thinking": false})
        );
        assert_eq!(settings.extra_body["provider"], json!("openrouter"));

        for (name, value, says) in [
            (
                "reasoning_effort",
                "extreme",
                "unknown reasoning effort 'extreme'",
            ),
            ("thinking_budget", "100", "minimum of 1024"),
            ("stream_options", "maybe", "takes true or false"),
            ("header.bad name", "x", "is not a header name"),
            ("header.x-a", "a\r\nx-injected: 1", "line break"),
            ("temperature", "1", "unknown model setting 'temperature'"),
        ] {
            let error = ModelSettings::default().set(name, value).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config);
            assert!(error.message().contains(says), "{name}: {error}");
        }
        assert!(ModelSettings::default().set_pair("stream").is_err());
    }

    #[test]
    fn set_values_win_over_defaults_and_headers_merge() {
        let mut mine = ModelSettings::default();
        mine.set("header.x-a", "mine").unwrap();
        mine.set("prompt_caching", "false").unwrap();
        let mut defaults = ModelSettings::default();
        defaults.set("header.X-A", "default").unwrap();
        defaults.set("header.x-b", "default").unwrap();
        defaults.set("prompt_caching", "true").unwrap();
        defaults.set("reasoning_effort", "low").unwrap();
        let merged = mine.or(&defaults);
        assert_eq!(merged.prompt_caching, Some(false));
        assert_eq!(merged.reasoning_effort, Some(ReasoningEffort::Low));
        assert_eq!(merged.extra_headers.len(), 2);
        assert!(
            merged
                .extra_headers
                .contains(&("x-a".to_string(), "mine".to_string()))
        );
    }
}
