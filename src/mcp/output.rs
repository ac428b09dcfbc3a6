//! What a `tools/call` of `task` answers: the text the model reads (cut to the output
//! budget when the answers are too long for the host), the same result as
//! `structuredContent`, and its `outputSchema`.

use serde_json::{Value, json};

use crate::task_tool::TaskOutput;

/// Characters of text a call answers with, at most, by default: about 20,000 tokens at four
/// characters a token, under Claude Code's 25,000-token cap on MCP tool output.
pub const DEFAULT_OUTPUT_BUDGET: usize = 80_000;

/// Characters a note on a cut answer may take (it is counted against the budget).
const NOTE_RESERVE: usize = 320;

/// The `CallToolResult` of a call: the text, the structured result, and `isError` when a
/// run did not complete or the call was invalid (so the model can fix it).
pub(crate) fn call_result(output: &TaskOutput, budget: usize) -> Value {
    let output = fit(output, budget);
    let structured = serde_json::to_value(&output).unwrap_or_else(|problem| {
        log::error!("MCP: cannot serialise a task output: {problem}");
        json!({})
    });
    json!({
        "content": [{"type": "text", "text": output.to_text()}],
        "structuredContent": structured,
        "isError": output.is_error,
    })
}

/// `output` with its answers cut, fairly, so that its text fits in `budget` characters:
/// unchanged when it fits; otherwise every answer longer than an equal share of what is
/// left keeps its beginning and gets a note naming its run id (the transcript keeps it all).
pub(crate) fn fit(output: &TaskOutput, budget: usize) -> TaskOutput {
    let total = output.to_text().chars().count();
    if total <= budget {
        return output.clone();
    }
    let lengths: Vec<usize> = output
        .results
        .iter()
        .map(|result| result.answer.chars().count())
        .collect();
    let answers: usize = lengths.iter().sum();
    let overhead = total - answers;
    let available = budget.saturating_sub(overhead + NOTE_RESERVE * lengths.len());
    let cap = fair_cap(&lengths, available);
    let mut fitted = output.clone();
    for (result, length) in fitted.results.iter_mut().zip(lengths) {
        if length <= cap {
            continue;
        }
        let kept: String = result.answer.chars().take(cap).collect();
        // End on a line when one is near, so a cut rarely splits a line.
        let kept = match kept.rfind('\n') {
            Some(at) if at * 5 >= kept.len() * 4 => kept[..at].to_string(),
            _ => kept,
        };
        let shown = kept.chars().count();
        let note = match &result.run_id {
            Some(run) => format!(
                "[answer cut to fit the output budget: {shown} of {length} characters shown. \
                 The transcript of run {run} keeps it all: call `task` with `resume: \"{run}\"` \
                 and ask for the part you need.]"
            ),
            None => format!(
                "[answer cut to fit the output budget: {shown} of {length} characters shown.]"
            ),
        };
        result.answer = format!("{}\n\n{note}", kept.trim_end());
    }
    fitted
}

/// The largest length every answer may keep so that together they fit in `available`
/// characters: answers shorter than an equal share keep everything, and what they leave
/// is shared among the longer ones.
fn fair_cap(lengths: &[usize], available: usize) -> usize {
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    let mut remaining = available;
    for (index, length) in sorted.iter().enumerate() {
        let share = remaining / (sorted.len() - index);
        if *length > share {
            return share;
        }
        remaining -= length;
    }
    usize::MAX
}

/// The JSON Schema of `structuredContent`: a serialised [`TaskOutput`].
pub(crate) fn output_schema() -> Value {
    let text_or_null = json!({"type": ["string", "null"]});
    let usage = json!({
        "type": "object",
        "properties": {
            "input_tokens": {"type": "integer", "minimum": 0},
            "output_tokens": {"type": "integer", "minimum": 0},
            "cache_read_tokens": {"type": "integer", "minimum": 0},
            "cache_write_tokens": {"type": "integer", "minimum": 0},
            "cost_usd": {"type": ["number", "null"], "description": "US dollars; null when a price is unknown."},
        },
        "required": ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd"],
    });
    json!({
        "type": "object",
        "properties": {
            "results": {
                "type": "array",
                "description": "One result per run, in request order.",
                "items": {
                    "type": "object",
                    "properties": {
                        "description": {"type": "string"},
                        "subagent_type": {"type": "string"},
                        "run_id": {"type": ["string", "null"], "description": "Pass as `resume` to continue this run."},
                        "status": {"type": "string", "description": "completed, max_turns, max_output_tokens, max_cost, failed, timed_out, cancelled or refused."},
                        "model": text_or_null,
                        "answer": {"type": "string"},
                        "error": text_or_null,
                        "turns": {"type": "integer", "minimum": 0},
                        "usage": usage,
                        "tool_calls": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
                        "duration_ms": {"type": "integer", "minimum": 0},
                    },
                    "required": ["description", "subagent_type", "run_id", "status", "answer", "usage"],
                },
            },
            "is_error": {"type": "boolean"},
            "error": {"type": ["string", "null"], "description": "Why the call was refused before anything ran."},
            "usage": usage,
            "duration_ms": {"type": "integer", "minimum": 0},
        },
        "required": ["results", "is_error", "error", "usage", "duration_ms"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_shares_what_short_answers_leave() {
        assert_eq!(fair_cap(&[10, 20], 100), usize::MAX);
        assert_eq!(fair_cap(&[10, 1000, 1000], 110), 50);
        assert_eq!(fair_cap(&[1000, 1000], 0), 0);
    }
}
