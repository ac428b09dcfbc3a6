//! Choosing and configuring a model: `provider:model` specs, short aliases, API keys and
//! base URLs from the environment or from code.

use std::fmt;
use std::sync::Arc;

use super::ChatModel;
use super::anthropic::{Anthropic, AnthropicConfig};
use std::time::Duration;

use super::http::HttpOptions;
use super::openai::{OpenAiCompatible, OpenAiConfig};
use super::pricing::{Price, table};
use super::settings::{MaxTokensField, ModelSettings};
use crate::error::Error;

/// The environment variable that names the model, as `provider:model` or an alias.
pub const MODEL_VAR: &str = "SUBTASK_MODEL";
/// Model settings from the environment: `name=value` pairs separated by `;` or new lines
/// (`reasoning_effort=high;header.anthropic-beta=…`), see [`ModelConfig::set`].
pub const SETTINGS_VAR: &str = "SUBTASK_MODEL_SETTINGS";

/// An API key. Debug and Display print `ApiKey(***)`: a key never reaches a log, an error
/// message or a transcript through this type.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// The key itself, for the request header. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which wire format and which service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// OpenAI's Chat Completions API (`openai:`).
    OpenAi,
    /// Any server that speaks Chat Completions: Ollama, vLLM, llama.cpp, LM Studio,
    /// OpenRouter… (`openai-compat:`). Needs a base URL; the key is optional.
    OpenAiCompat,
    /// OpenAI's Responses API (`openai-responses:`): for models served only there, and
    /// reasoning items kept between tool turns. A base URL is optional (compatible servers
    /// that offer `/v1/responses`); the key is required for OpenAI's own.
    OpenAiResponses,
    /// Anthropic's Messages API (`anthropic:`).
    Anthropic,
    /// A script of turns in a JSON file (`scripted:<path>`), played in-process: for demos
    /// and offline tests of the command line and MCP server. See
    /// [`ScriptedModel::from_file`](super::ScriptedModel::from_file).
    Scripted,
}

impl Provider {
    /// The prefix used in specs: `openai`, `openai-compat`, `anthropic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::OpenAiCompat => "openai-compat",
            Provider::OpenAiResponses => "openai-responses",
            Provider::Anthropic => "anthropic",
            Provider::Scripted => "scripted",
        }
    }

    fn parse(name: &str) -> Option<Provider> {
        match name {
            "openai" => Some(Provider::OpenAi),
            "openai-compat" | "openai-compatible" | "compat" => Some(Provider::OpenAiCompat),
            "openai-responses" | "responses" => Some(Provider::OpenAiResponses),
            "anthropic" | "claude" => Some(Provider::Anthropic),
            "scripted" => Some(Provider::Scripted),
            _ => None,
        }
    }

    /// Whether a model of this provider reads a local file (`scripted:<path>` plays a
    /// script): such a model is accepted only from host code or the user's own
    /// configuration (`SUBTASK_MODEL`, `--model`), never from an agent file or a `task`
    /// call, which a repository or a prompt-injected model may have written.
    pub fn reads_files(self) -> bool {
        matches!(self, Provider::Scripted)
    }

    /// The variable holding this provider's key (`None` for a scripted model).
    pub fn key_var(self) -> Option<&'static str> {
        match self {
            Provider::OpenAi | Provider::OpenAiCompat | Provider::OpenAiResponses => {
                Some("OPENAI_API_KEY")
            }
            Provider::Anthropic => Some("ANTHROPIC_API_KEY"),
            Provider::Scripted => None,
        }
    }

    /// The variable holding this provider's base URL (`None` for a scripted model).
    pub fn base_url_var(self) -> Option<&'static str> {
        match self {
            Provider::OpenAi | Provider::OpenAiCompat | Provider::OpenAiResponses => {
                Some("OPENAI_BASE_URL")
            }
            Provider::Anthropic => Some("ANTHROPIC_BASE_URL"),
            Provider::Scripted => None,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every alias and what it stands for, in the table's order (a name defined again later,
/// by the user's models file, counts once, as its last definition).
pub fn aliases() -> impl Iterator<Item = (&'static str, &'static str)> {
    let aliases = &table().aliases;
    aliases
        .iter()
        .enumerate()
        .filter(move |(index, (alias, _))| {
            !aliases[index + 1..]
                .iter()
                .any(|(later, _)| later.eq_ignore_ascii_case(alias))
        })
        .map(|(_, (alias, spec))| (alias.as_str(), spec.as_str()))
}

/// What an alias stands for: `sonnet` → `anthropic:claude-sonnet-5`. Aliases are data
/// (`src/llm/models.json`, extended by the file named by `SUBTASK_MODELS_FILE`).
pub fn resolve_alias(name: &str) -> Option<&'static str> {
    table()
        .aliases
        .iter()
        .rev()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        .map(|(_, spec)| spec.as_str())
}

fn known_specs() -> String {
    table()
        .aliases
        .iter()
        .map(|(alias, spec)| format!("{alias} ({spec})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything needed to build a model. Read it from the environment with
/// [`from_env`](Self::from_env), or start from a spec with [`parse`](Self::parse) and set
/// the rest in code.
///
/// ```
/// use subtask::llm::{ModelConfig, Provider};
///
/// let config = ModelConfig::parse("openai-compat:qwen3")?
///     .base_url("http://localhost:11434/v1");
/// assert_eq!(config.provider, Provider::OpenAiCompat);
/// let model = config.build()?;
/// assert_eq!(model.name(), "openai-compat:qwen3");
/// # Ok::<(), subtask::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ModelConfig {
    /// The wire format and service.
    pub provider: Provider,
    /// The model's name at the provider.
    pub model: String,
    /// The key; required by `openai` and `anthropic`, optional for `openai-compat`.
    pub api_key: Option<ApiKey>,
    /// Where the API lives; `None` for the provider's own (required for `openai-compat`).
    pub base_url: Option<String>,
    /// Retries, stall and connect timeouts.
    pub http: HttpOptions,
    /// Stream responses (deltas as they come). Defaults to `true`.
    pub stream: bool,
    /// OpenAI-style only: the field that carries the output limit. Defaults to
    /// `max_completion_tokens` for `openai`, `max_tokens` for `openai-compat`.
    pub max_tokens_field: Option<MaxTokensField>,
    /// Overrides the price table (for unlisted models or negotiated prices).
    pub price: Option<Price>,
    /// Reasoning effort, thinking budget, `stream_options`, prompt caching, extra headers
    /// and body fields. Defaults to none set (each provider's defaults).
    pub settings: ModelSettings,
}

impl ModelConfig {
    /// A config for `spec`: `provider:model` (`anthropic:claude-sonnet-5`,
    /// `openai:gpt-5.4-mini`, `openai-compat:qwen3`) or an alias (`sonnet`, `haiku`,
    /// `opus`, `mini`…), optionally followed by settings after a `?`, separated by `&`
    /// (`openai-compat:qwen3?stream=false&reasoning_effort=low`; see [`set`](Self::set)).
    /// No key or URL yet.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for an unknown provider, alias or
    /// setting.
    pub fn parse(spec: &str) -> Result<ModelConfig, Error> {
        let (spec, query) = match spec.trim().split_once('?') {
            Some((spec, query)) => (spec.trim(), Some(query)),
            None => (spec.trim(), None),
        };
        let mut config = ModelConfig::parse_plain(spec)?;
        for pair in query.into_iter().flat_map(|query| query.split('&')) {
            if !pair.trim().is_empty() {
                config.set_pair(pair)?;
            }
        }
        Ok(config)
    }

    fn parse_plain(spec: &str) -> Result<ModelConfig, Error> {
        let resolved = resolve_alias(spec).unwrap_or(spec);
        let Some((provider, model)) = resolved.split_once(':') else {
            return Err(Error::config(format!(
                "unknown model '{spec}': write provider:model (openai:…, openai-compat:…, \
                 anthropic:…) or an alias: {}",
                known_specs()
            )));
        };
        let Some(provider) = Provider::parse(provider.trim()) else {
            return Err(Error::config(format!(
                "unknown provider '{provider}' in '{spec}': use openai, openai-compat, \
                 openai-responses or anthropic"
            )));
        };
        let model = model.trim();
        if model.is_empty() {
            return Err(Error::config(format!(
                "'{spec}' names no model: write {provider}:<model>"
            )));
        }
        Ok(ModelConfig {
            provider,
            model: model.to_string(),
            api_key: None,
            base_url: None,
            http: HttpOptions::default(),
            stream: true,
            max_tokens_field: None,
            price: None,
            settings: ModelSettings::default(),
        })
    }

    /// Sets one setting by name: `stream`, `max_tokens_field`, `first_byte_timeout`,
    /// `stall_timeout` (seconds), `max_retries`, or any of [`ModelSettings::set`]'s
    /// (`reasoning_effort`, `thinking_budget`, `stream_options`, `prompt_caching`,
    /// `header.NAME`, `body.NAME`). The CLI's `--set`, the C ABI, Python, agent front matter
    /// and `SUBTASK_MODEL_SETTINGS` all come here.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the setting and what it takes.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let seconds = |value: &str| -> Result<Duration, Error> {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    Error::config(format!(
                        "setting '{}' takes a number of seconds above 0, not '{value}'",
                        name.trim()
                    ))
                })
        };
        match name.trim() {
            "stream" => {
                self.stream = match value.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => {
                        return Err(Error::config(format!(
                            "setting 'stream' takes true or false, not '{value}'"
                        )));
                    }
                }
            }
            "max_tokens_field" => self.max_tokens_field = Some(value.parse()?),
            "first_byte_timeout" => self.http.first_byte_timeout = seconds(value)?,
            "stall_timeout" => self.http.stall_timeout = seconds(value)?,
            "max_retries" => {
                self.http.max_retries = value.trim().parse().map_err(|_| {
                    Error::config(format!(
                        "setting 'max_retries' takes a count, not '{value}'"
                    ))
                })?
            }
            _ => self.settings.set(name, value)?,
        }
        Ok(())
    }

    /// [`set`](Self::set) from `name=value`.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set), or when there is no `=`.
    pub fn set_pair(&mut self, pair: &str) -> Result<(), Error> {
        match pair.split_once('=') {
            Some((name, value)) => self.set(name, value),
            None => Err(Error::config(format!(
                "model setting '{pair}' needs the form name=value"
            ))),
        }
    }

    /// Applies `name=value` pairs separated by `;` or new lines (the form of
    /// `SUBTASK_MODEL_SETTINGS`).
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn set_all(&mut self, pairs: &str) -> Result<(), Error> {
        for pair in pairs.split([';', '\n']) {
            if !pair.trim().is_empty() {
                self.set_pair(pair)?;
            }
        }
        Ok(())
    }

    /// The model named by `SUBTASK_MODEL` (or, when unset, the provider whose key is set:
    /// the `sonnet` or `mini` alias), with its key and base URL from `ANTHROPIC_API_KEY` /
    /// `ANTHROPIC_BASE_URL` or `OPENAI_API_KEY` / `OPENAI_BASE_URL`, and settings from
    /// `SUBTASK_MODEL_SETTINGS`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the variable to set.
    pub fn from_env() -> Result<ModelConfig, Error> {
        ModelConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with another source of variables (tests, config files).
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ModelConfig, Error> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let spec = match get(MODEL_VAR) {
            Some(spec) => spec,
            None if get("ANTHROPIC_API_KEY").is_some() => "sonnet".to_string(),
            None if get("OPENAI_API_KEY").is_some() => "mini".to_string(),
            None => {
                return Err(Error::config(format!(
                    "no model configured: set {MODEL_VAR} (e.g. anthropic:claude-sonnet-4-5, \
                     openai:gpt-4.1-mini, or openai-compat:qwen3 with OPENAI_BASE_URL) and the \
                     provider's key (ANTHROPIC_API_KEY or OPENAI_API_KEY)"
                )));
            }
        };
        let mut config = ModelConfig::parse(&spec)?.fill_from(&get);
        if let Some(settings) = get(SETTINGS_VAR) {
            config
                .set_all(&settings)
                .map_err(|error| error.with_context(format!("in {SETTINGS_VAR}")))?;
        }
        Ok(config)
    }

    /// Fills the key and base URL from the environment where they are not set yet.
    pub fn with_env(self) -> ModelConfig {
        self.fill_from(&|name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    fn fill_from(mut self, get: &dyn Fn(&str) -> Option<String>) -> ModelConfig {
        if self.api_key.is_none()
            && let Some(var) = self.provider.key_var()
        {
            self.api_key = get(var).map(ApiKey::new);
        }
        if self.base_url.is_none()
            && let Some(var) = self.provider.base_url_var()
        {
            self.base_url = get(var);
        }
        self
    }

    /// Sets the key.
    pub fn api_key(mut self, key: impl Into<String>) -> ModelConfig {
        self.api_key = Some(ApiKey::new(key));
        self
    }

    /// Sets the base URL (`http://localhost:11434/v1` for Ollama).
    pub fn base_url(mut self, url: impl Into<String>) -> ModelConfig {
        self.base_url = Some(url.into());
        self
    }

    /// Sets retries and timeouts.
    pub fn http(mut self, http: HttpOptions) -> ModelConfig {
        self.http = http;
        self
    }

    /// Streams responses or not.
    pub fn stream(mut self, stream: bool) -> ModelConfig {
        self.stream = stream;
        self
    }

    /// Sets the price used for costs.
    pub fn price(mut self, price: Price) -> ModelConfig {
        self.price = Some(price);
        self
    }

    /// `provider:model`.
    pub fn name(&self) -> String {
        format!("{}:{}", self.provider, self.model)
    }

    /// Builds the model.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the key (`openai`, `anthropic`)
    /// or the base URL (`openai-compat`) is missing, naming the variable to set.
    pub fn build(&self) -> Result<Arc<dyn ChatModel>, Error> {
        match self.provider {
            Provider::Scripted => Ok(Arc::new(super::ScriptedModel::from_file(
                std::path::Path::new(&self.model),
            )?)),
            Provider::OpenAiResponses => {
                let api_key = match &self.base_url {
                    Some(_) => self.api_key.clone(),
                    None => Some(self.required_key()?),
                };
                Ok(Arc::new(super::OpenAiResponses::new(
                    &self.model,
                    api_key,
                    self.base_url.as_deref(),
                    self.http.clone(),
                    self.stream,
                    self.settings.clone(),
                    self.price,
                )))
            }
            Provider::Anthropic => {
                let mut config = AnthropicConfig::new(&self.model, self.required_key()?);
                config.base_url = self.base_url.clone();
                config.http = self.http.clone();
                config.stream = self.stream;
                config.price = self.price;
                config.settings = self.settings.clone();
                Ok(Arc::new(Anthropic::new(config)))
            }
            Provider::OpenAi | Provider::OpenAiCompat => {
                let api_key = match self.provider {
                    Provider::OpenAi => Some(self.required_key()?),
                    _ => self.api_key.clone(),
                };
                let base_url = match (&self.base_url, self.provider) {
                    (Some(url), _) => Some(url.clone()),
                    (None, Provider::OpenAiCompat) => {
                        return Err(Error::config(format!(
                            "{} needs the server's address: set OPENAI_BASE_URL (e.g. \
                             http://localhost:11434/v1 for Ollama, http://localhost:8000/v1 for \
                             vLLM) or ModelConfig::base_url",
                            self.name()
                        )));
                    }
                    (None, _) => None,
                };
                let mut config = OpenAiConfig::new(self.provider, &self.model);
                config.api_key = api_key;
                config.base_url = base_url;
                config.http = self.http.clone();
                config.stream = self.stream;
                config.max_tokens_field = self.max_tokens_field;
                config.price = self.price;
                config.settings = self.settings.clone();
                Ok(Arc::new(OpenAiCompatible::new(config)))
            }
        }
    }

    fn required_key(&self) -> Result<ApiKey, Error> {
        self.api_key.clone().ok_or_else(|| {
            Error::config(format!(
                "{} needs an API key: set {} or ModelConfig::api_key",
                self.name(),
                self.provider
                    .key_var()
                    .unwrap_or("the provider's key variable")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn specs_and_aliases_resolve() {
        let config = ModelConfig::parse("sonnet").unwrap();
        assert_eq!(
            (config.provider, config.model.as_str()),
            (Provider::Anthropic, "claude-sonnet-5")
        );
        assert_eq!(
            ModelConfig::parse("opus").unwrap().model,
            "claude-opus-5-5",
            "opus points at the current Opus"
        );
        assert_eq!(
            ModelConfig::parse("openai:gpt-4.1-mini").unwrap().name(),
            "openai:gpt-4.1-mini"
        );
        assert_eq!(
            ModelConfig::parse("openai-compat:qwen3").unwrap().provider,
            Provider::OpenAiCompat
        );
    }

    #[test]
    fn unknown_providers_and_aliases_are_config_errors() {
        let error = ModelConfig::parse("gemini:pro").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(
            error.message().contains("unknown provider 'gemini'"),
            "{error}"
        );
        let error = ModelConfig::parse("sonet").unwrap_err();
        assert!(
            error
                .message()
                .contains("sonnet (anthropic:claude-sonnet-5)"),
            "{error}"
        );
        assert!(ModelConfig::parse("openai:").is_err());
    }

    #[test]
    fn the_environment_supplies_model_key_and_url() {
        let config = ModelConfig::from_lookup(lookup(&[
            ("SUBTASK_MODEL", "openai-compat:qwen3"),
            ("OPENAI_BASE_URL", "http://localhost:11434/v1"),
        ]))
        .unwrap();
        assert_eq!(
            config.base_url.as_deref(),
            Some("http://localhost:11434/v1")
        );
        assert_eq!(config.api_key, None);
        assert!(config.build().is_ok());
        let config =
            ModelConfig::from_lookup(lookup(&[("ANTHROPIC_API_KEY", "sk-ant-secret")])).unwrap();
        assert_eq!(config.name(), "anthropic:claude-sonnet-5");
    }

    #[test]
    fn settings_come_from_the_spec_and_the_environment() {
        let config = ModelConfig::from_lookup(lookup(&[
            (
                "SUBTASK_MODEL",
                "openai-compat:qwen3?stream=false&max_tokens_field=max_tokens",
            ),
            ("OPENAI_BASE_URL", "http://localhost:8000/v1"),
            (
                "SUBTASK_MODEL_SETTINGS",
                "reasoning_effort=low; first_byte_timeout=900\nheader.x-title=subtask",
            ),
        ]))
        .unwrap();
        assert!(!config.stream);
        assert_eq!(config.max_tokens_field, Some(MaxTokensField::MaxTokens));
        assert_eq!(
            config.settings.reasoning_effort,
            Some(super::super::ReasoningEffort::Low)
        );
        assert_eq!(config.http.first_byte_timeout, Duration::from_secs(900));
        assert_eq!(config.settings.extra_headers.len(), 1);
        let error = ModelConfig::from_lookup(lookup(&[
            ("SUBTASK_MODEL", "mini"),
            ("SUBTASK_MODEL_SETTINGS", "stall_timeout=soon"),
        ]))
        .unwrap_err();
        assert!(
            error.to_string().contains("SUBTASK_MODEL_SETTINGS"),
            "{error}"
        );
        assert!(error.to_string().contains("stall_timeout"), "{error}");
        assert!(ModelConfig::parse("mini?colour=blue").is_err());
    }

    #[test]
    fn missing_settings_name_the_variable_to_set() {
        let error = ModelConfig::from_lookup(lookup(&[])).unwrap_err();
        assert!(error.message().contains("SUBTASK_MODEL"), "{error}");
        let error = ModelConfig::from_lookup(lookup(&[("SUBTASK_MODEL", "haiku")]))
            .unwrap()
            .build()
            .err()
            .unwrap();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(error.message().contains("ANTHROPIC_API_KEY"), "{error}");
        let error = ModelConfig::parse("openai-compat:qwen3")
            .unwrap()
            .build()
            .err()
            .unwrap();
        assert!(error.message().contains("OPENAI_BASE_URL"), "{error}");
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let config = ModelConfig::parse("mini")
            .unwrap()
            .api_key("sk-very-secret");
        let debug = format!("{config:?}");
        assert!(!debug.contains("sk-very-secret"), "{debug}");
        assert!(debug.contains("ApiKey(***)"), "{debug}");
    }
}
