//! What tokens cost, for the models people use most. Unknown models get no cost, never a
//! guessed one; a price set in [`ModelConfig`](super::ModelConfig) overrides the table.

use super::message::Usage;

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

const fn price(input: f64, output: f64, cache_read: f64, cache_write: f64) -> Price {
    Price {
        input,
        output,
        cache_read,
        cache_write,
    }
}

/// List prices (USD per million tokens) as the providers publish them. OpenAI charges no
/// cache writes; Anthropic charges 1.25× input for 5-minute cache writes.
const PRICES: &[(&str, Price)] = &[
    ("claude-opus-4-1", price(15.0, 75.0, 1.5, 18.75)),
    ("claude-opus-4", price(15.0, 75.0, 1.5, 18.75)),
    ("claude-sonnet-4-5", price(3.0, 15.0, 0.3, 3.75)),
    ("claude-sonnet-4", price(3.0, 15.0, 0.3, 3.75)),
    ("claude-haiku-4-5", price(1.0, 5.0, 0.1, 1.25)),
    ("claude-3-5-haiku", price(0.8, 4.0, 0.08, 1.0)),
    ("gpt-4.1", price(2.0, 8.0, 0.5, 0.0)),
    ("gpt-4.1-mini", price(0.4, 1.6, 0.1, 0.0)),
    ("gpt-4.1-nano", price(0.1, 0.4, 0.025, 0.0)),
    ("gpt-4o", price(2.5, 10.0, 1.25, 0.0)),
    ("gpt-4o-mini", price(0.15, 0.6, 0.075, 0.0)),
    ("o3", price(2.0, 8.0, 0.5, 0.0)),
    ("o4-mini", price(1.1, 4.4, 0.275, 0.0)),
];

/// The list price of a model, by its name or a dated snapshot of it
/// (`claude-sonnet-4-5-20250929`, `gpt-4.1-mini-2025-04-14`). `None` if unknown.
pub fn price_of(model: &str) -> Option<Price> {
    PRICES.iter().find_map(|(name, price)| {
        let rest = model.strip_prefix(name)?;
        (rest.is_empty() || is_date_suffix(rest)).then_some(*price)
    })
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
