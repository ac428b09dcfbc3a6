//! What tokens cost, for the current models of Anthropic and OpenAI, as data
//! (`src/llm/models.json`, overridable with `SUBTASK_MODELS_FILE`). Unknown models get no
//! cost, never a guessed one; a price set in [`ModelConfig`](super::ModelConfig) overrides
//! the table.

use std::sync::OnceLock;

use serde_json::Value;

use super::message::Usage;
use crate::error::Error;

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Uncached input tokens.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Input tokens read from the prompt cache.
    pub cache_read: f64,
    /// Input tokens written to the prompt cache.
    pub cache_write: f64,
}

impl Price {
    /// The cost of `usage` in US dollars.
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input
            + usage.output_tokens as f64 * self.output
            + usage.cache_read_tokens as f64 * self.cache_read
            + usage.cache_write_tokens as f64 * self.cache_write)
            / 1_000_000.0
    }
}

/// The built-in table (`src/llm/models.json`): aliases and list prices.
const BUILT_IN: &str = include_str!("models.json");

/// The variable naming a JSON file of the same shape as `models.json`, merged over it: the
/// user's own aliases and prices (new models, negotiated prices).
pub const MODELS_FILE_VAR: &str = "SUBTASK_MODELS_FILE";

/// Aliases and prices, as loaded once per process.
#[derive(Debug, Default)]
pub(crate) struct ModelTable {
    pub(crate) aliases: Vec<(String, String)>,
    pub(crate) prices: Vec<(String, Price)>,
}

impl ModelTable {
    /// Reads a table; `source` names it in errors.
    pub(crate) fn parse(text: &str, source: &str) -> Result<ModelTable, Error> {
        let value: Value = serde_json::from_str(text).map_err(|error| {
            Error::config(format!("{source} is not a valid model table: {error}"))
        })?;
        let mut table = ModelTable::default();
        for (alias, spec) in value["aliases"].as_object().into_iter().flatten() {
            let Some(spec) = spec.as_str() else {
                return Err(Error::config(format!(
                    "{source}: alias '{alias}' must name a provider:model string"
                )));
            };
            table.aliases.push((alias.clone(), spec.to_string()));
        }
        for (model, price) in value["prices"].as_object().into_iter().flatten() {
            let field = |name: &str| -> Result<f64, Error> {
                match price[name].as_f64() {
                    Some(number) if number >= 0.0 && number.is_finite() => Ok(number),
                    Some(_) => Err(Error::config(format!(
                        "{source}: price '{name}' of '{model}' must be a non-negative number"
                    ))),
                    None if name == "cache_read" || name == "cache_write" => Ok(0.0),
                    None => Err(Error::config(format!(
                        "{source}: '{model}' needs '{name}' (USD per million tokens)"
                    ))),
                }
            };
            table.prices.push((
                model.clone(),
                Price {
                    input: field("input")?,
                    output: field("output")?,
                    cache_read: field("cache_read")?,
                    cache_write: field("cache_write")?,
                },
            ));
        }
        Ok(table)
    }

    /// `other`'s entries over this table's.
    fn merge(&mut self, other: ModelTable) {
        for (alias, spec) in other.aliases {
            self.aliases
                .retain(|(existing, _)| !existing.eq_ignore_ascii_case(&alias));
            self.aliases.push((alias, spec));
        }
        for (model, price) in other.prices {
            self.prices.retain(|(existing, _)| existing != &model);
            self.prices.push((model, price));
        }
    }

    /// The price of a model by its name or a dated snapshot of it; the longest name wins
    /// (`gpt-4.1-mini` over `gpt-4.1`).
    pub(crate) fn price_of(&self, model: &str) -> Option<Price> {
        // A provider's routing prefix (`openai/gpt-5.4` at OpenRouter) is not the model.
        let model = model.rsplit('/').next().unwrap_or(model);
        self.prices
            .iter()
            .filter(|(name, _)| {
                model
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.is_empty() || is_date_suffix(rest))
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(_, price)| *price)
    }
}

/// The table in use: built in, with the file named by `SUBTASK_MODELS_FILE` merged over it.
/// A broken user file is reported once (a warning) and ignored, so a typo cannot stop
/// every run; [`check_models_file`] reports it as an error.
pub(crate) fn table() -> &'static ModelTable {
    static TABLE: OnceLock<ModelTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = ModelTable::parse(BUILT_IN, "the built-in model table").unwrap_or_default();
        match load_user_table() {
            Ok(Some(user)) => table.merge(user),
            Ok(None) => {}
            Err(error) => log::warn!("{error}; using the built-in model table"),
        }
        table
    })
}

fn load_user_table() -> Result<Option<ModelTable>, Error> {
    let Some(path) = std::env::var_os(MODELS_FILE_VAR).filter(|path| !path.is_empty()) else {
        return Ok(None);
    };
    let source = format!("{MODELS_FILE_VAR}={}", path.to_string_lossy());
    let text = std::fs::read_to_string(&path)
        .map_err(|error| Error::config(format!("{source} cannot be read: {error}")))?;
    ModelTable::parse(&text, &source).map(Some)
}

/// Checks the file named by `SUBTASK_MODELS_FILE`, if any.
///
/// # Errors
///
/// [`ErrorKind::Config`](crate::ErrorKind::Config) saying what is wrong with it.
pub fn check_models_file() -> Result<(), Error> {
    load_user_table().map(|_| ())
}

/// The list price of a model, by its name or a dated snapshot of it
/// (`claude-sonnet-4-5-20250929`, `gpt-4.1-mini-2025-04-14`), from the built-in table and
/// `SUBTASK_MODELS_FILE`. `None` if unknown: then no cost is reported and cost caps cannot
/// fire, which the usage footer says.
pub fn price_of(model: &str) -> Option<Price> {
    table().price_of(model)
}

/// `-20250929` or `-2025-04-14`: a snapshot date, not another model (`-5`, `-mini`).
fn is_date_suffix(rest: &str) -> bool {
    let Some(date) = rest.strip_prefix('-') else {
        return false;
    };
    date.chars().all(|c| c.is_ascii_digit() || c == '-')
        && date.chars().filter(char::is_ascii_digit).count() == 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_models_have_prices_and_routing_prefixes_are_ignored() {
        assert_eq!(price_of("claude-opus-5-5").unwrap().cache_read, 0.2);
        assert_eq!(price_of("claude-haiku-4-5-20251001").unwrap().input, 1.0);
        assert_eq!(price_of("gpt-5.4-mini").unwrap().input, 0.75);
        assert_eq!(price_of("openai/gpt-5.4").unwrap().output, 15.0);
        // Every alias points at a model with a price.
        for (alias, spec) in &table().aliases {
            let model = spec.split_once(':').unwrap().1;
            assert!(price_of(model).is_some(), "{alias} -> {spec} has no price");
        }
    }

    #[test]
    fn a_user_table_overrides_and_bad_ones_are_refused_clearly() {
        let mut table = ModelTable::parse(BUILT_IN, "built-in").unwrap();
        let user = ModelTable::parse(
            r#"{"aliases": {"local": "openai-compat:qwen3"}, "prices": {"gpt-5.4": {"input": 1, "output": 2}}}"#,
            "mine",
        )
        .unwrap();
        table.merge(user);
        assert_eq!(table.price_of("gpt-5.4").unwrap().input, 1.0);
        assert_eq!(table.price_of("gpt-5.4").unwrap().cache_read, 0.0);
        assert!(table.aliases.iter().any(|(alias, _)| alias == "local"));
        let error =
            ModelTable::parse(r#"{"prices": {"m": {"input": -1, "output": 1}}}"#, "f").unwrap_err();
        assert!(error.message().contains("non-negative"), "{error}");
        let error = ModelTable::parse(r#"{"prices": {"m": {"output": 1}}}"#, "f").unwrap_err();
        assert!(error.message().contains("needs 'input'"), "{error}");
        assert!(ModelTable::parse("{", "f").is_err());
    }

    #[test]
    fn known_models_and_their_snapshots_have_prices() {
        assert_eq!(price_of("gpt-4.1-mini").unwrap().input, 0.4);
        assert_eq!(price_of("gpt-4.1-mini-2025-04-14").unwrap().input, 0.4);
        assert_eq!(price_of("gpt-4.1").unwrap().input, 2.0);
        assert_eq!(price_of("claude-sonnet-4-5-20250929").unwrap().output, 15.0);
    }

    #[test]
    fn unknown_or_merely_similar_models_have_none() {
        assert_eq!(price_of("qwen3"), None);
        assert_eq!(price_of("gpt-4.1-turbo"), None);
        assert_eq!(price_of("claude-sonnet-4-5-custom"), None);
        // A later model is not a snapshot of an earlier one.
        assert_eq!(price_of("claude-haiku-4-6"), None);
    }

    #[test]
    fn cost_counts_every_kind_of_token() {
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_read_tokens: 1_000_000,
            cache_write_tokens: 0,
            cost_usd: None,
        };
        let cost = price_of("claude-sonnet-4-5").unwrap().cost(&usage);
        assert!((cost - (3.0 + 1.5 + 0.3)).abs() < 1e-9, "{cost}");
    }
}
