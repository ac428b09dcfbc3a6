//! Subagent types written as Markdown: a front-matter block, then the system prompt.
//!
//! ```markdown
//! ---
//! name: reviewer
//! description: Reviews a diff for bugs and missing tests.
//! tools: read, grep, glob
//! model: haiku
//! reasoning_effort: high
//! max_turns: 20
//! timeout: 5m
//! ---
//! You review code changes. ...
//! ```
//!
//! Lists are written `a, b`, `[a, b]`, or as `- a` lines. `timeout` is seconds or a
//! duration (`90s`, `5m`, `1h`). `model: inherit` (or no `model`) uses the parent's model.
//! `model` takes settings after a `?` (`openai-compat:qwen3?stream=false&header.x-a=b`, see
//! `ModelConfig::parse`); `reasoning_effort` (none … max) applies to any model, inherited
//! or not.
//! A file that breaks a rule is an error naming the file and the field.

use std::path::Path;
use std::time::Duration;

use super::{SpecSource, SubagentSpec};
use crate::error::Error;

const FIELDS: &[&str] = &[
    "name",
    "description",
    "tools",
    "disallowed_tools",
    "model",
    "max_turns",
    "reasoning_effort",
    "timeout",
    "read_only",
];

/// Reads one Markdown subagent file.
pub(crate) fn parse_file(path: &Path) -> Result<SubagentSpec, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Error::config(format!("{}: cannot read it: {error}", path.display())))?;
    parse(&text, path)
}

/// Parses a subagent definition; `path` names the file in errors.
pub(crate) fn parse(text: &str, path: &Path) -> Result<SubagentSpec, Error> {
    let file = path.display();
    let fail = |message: String| Error::config(format!("{file}: {message}"));
    let text = text.trim_start_matches('\u{feff}');
    let mut lines = text.lines();
    if lines
        .by_ref()
        .find(|line| !line.trim().is_empty())
        .map(str::trim)
        != Some("---")
    {
        return Err(fail(
            "no front matter: start the file with a '---' line, then `name:` and \
             `description:` lines, then '---' and the system prompt"
                .into(),
        ));
    }
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut closed = false;
    for line in lines.by_ref() {
        let trimmed = line.trim();
        if trimmed == "---" {
            closed = true;
            break;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(item) = trimmed.strip_prefix("- ") {
            // A list item continues the field above (`tools:` then `- read` lines).
            let Some((_, value)) = fields.last_mut() else {
                return Err(fail(format!(
                    "'{trimmed}' is a list item outside any field"
                )));
            };
            if !value.is_empty() {
                value.push(',');
            }
            value.push_str(unquote(item.trim()));
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            return Err(fail(format!(
                "'{trimmed}' in the front matter is not `field: value` (is the closing '---' \
                 line missing?)"
            )));
        };
        let key = key.trim().replace('-', "_").to_ascii_lowercase();
        let key = if key == "disallowedtools" {
            "disallowed_tools".to_string()
        } else {
            key
        };
        if !FIELDS.contains(&key.as_str()) {
            return Err(fail(format!(
                "unknown field `{key}`; the fields are: {}",
                FIELDS.join(", ")
            )));
        }
        if fields.iter().any(|(seen, _)| *seen == key) {
            return Err(fail(format!("field `{key}` appears twice")));
        }
        fields.push((key, unquote(value.trim()).to_string()));
    }
    if !closed {
        return Err(fail(
            "the front matter never ends: close it with a '---' line before the system prompt"
                .into(),
        ));
    }
    let body: Vec<&str> = lines.collect();
    let system_prompt = body.join("\n").trim().to_string();
    let get = |key: &str| {
        fields
            .iter()
            .find(|(field, _)| field == key)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    };
    let required =
        |key: &str| get(key).ok_or_else(|| fail(format!("field `{key}` is missing or empty")));
    let name = required("name")?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(fail(format!(
            "field `name`: '{name}' may hold only letters, digits, '-' and '_'"
        )));
    }
    let description = required("description")?;
    if system_prompt.is_empty() {
        return Err(fail(
            "the system prompt is empty: write it after the closing '---'".into(),
        ));
    }
    let max_turns = match get("max_turns") {
        None => None,
        Some(value) => match value.parse::<u32>() {
            Ok(turns) if turns > 0 => Some(turns),
            _ => {
                return Err(fail(format!(
                    "field `max_turns`: '{value}' is not a whole number of at least 1"
                )));
            }
        },
    };
    let timeout = match get("timeout") {
        None => None,
        Some(value) => Some(parse_duration(value).ok_or_else(|| {
            fail(format!(
                "field `timeout`: '{value}' is not a duration; write seconds (300) or 90s, 5m, 1h"
            ))
        })?),
    };
    let read_only = match get("read_only") {
        None => false,
        Some("true" | "yes") => true,
        Some("false" | "no") => false,
        Some(value) => {
            return Err(fail(format!(
                "field `read_only`: '{value}' is not true or false"
            )));
        }
    };
    let model = get("model")
        .filter(|model| !model.eq_ignore_ascii_case("inherit"))
        .map(str::to_string);
    if let Some(model) = &model {
        // Settings after `?` are checked now, so a typo names this file, not a failed run.
        crate::llm::ModelConfig::parse(model)
            .map_err(|error| fail(format!("field `model`: {}", error.message())))?;
    }
    let reasoning_effort = match get("reasoning_effort") {
        None => None,
        Some(value) => Some(
            value
                .parse::<crate::llm::ReasoningEffort>()
                .map_err(|error| fail(format!("field `reasoning_effort`: {}", error.message())))?,
        ),
    };
    Ok(SubagentSpec {
        name: name.to_string(),
        description: description.to_string(),
        system_prompt,
        tools: get("tools").map(list),
        disallowed_tools: get("disallowed_tools").map(list).unwrap_or_default(),
        model,
        max_turns,
        reasoning_effort,
        timeout,
        read_only,
        source: SpecSource::File(path.to_path_buf()),
    })
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// `a, b`, `[a, b]` or the joined `- a` lines.
fn list(value: &str) -> Vec<String> {
    let value = value
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(value);
    value
        .split(',')
        .map(|item| unquote(item.trim()).trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// `300`, `300s`, `90s`, `5m`, `1h`.
fn parse_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (number, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(split) => value.split_at(split),
        None => (value, "s"),
    };
    let number: u64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "s" | "sec" | "secs" | "seconds" => number,
        "m" | "min" | "mins" | "minutes" => number.checked_mul(60)?,
        "h" | "hour" | "hours" => number.checked_mul(3600)?,
        _ => return None,
    };
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn path() -> &'static Path {
        Path::new(".subtask/agents/reviewer.md")
    }

    #[test]
    fn a_full_definition_parses() {
        let text = "---\nname: reviewer\ndescription: \"Reviews diffs\"\ntools: [read, grep]\n\
                    disallowed_tools:\n  - bash\nmodel: haiku\nmax_turns: 20\ntimeout: 5m\n\
                    read_only: true\n---\n\nYou review code.\n";
        let spec = parse(text, path()).unwrap();
        assert_eq!(spec.name, "reviewer");
        assert_eq!(spec.description, "Reviews diffs");
        assert_eq!(
            spec.tools,
            Some(vec!["read".to_string(), "grep".to_string()])
        );
        assert_eq!(spec.disallowed_tools, vec!["bash".to_string()]);
        assert_eq!(spec.model.as_deref(), Some("haiku"));
        assert_eq!(spec.reasoning_effort, None);
        assert_eq!(spec.max_turns, Some(20));
        assert_eq!(spec.timeout, Some(Duration::from_secs(300)));
        assert!(spec.read_only);
        assert_eq!(spec.system_prompt, "You review code.");
    }

    #[test]
    fn reasoning_effort_and_model_settings_come_from_front_matter() {
        let text = "---\nname: a\ndescription: d\nmodel: openai-compat:qwen3?stream=false\n\
                    reasoning_effort: high\n---\nPrompt";
        let spec = parse(text, path()).unwrap();
        assert_eq!(
            spec.reasoning_effort,
            Some(crate::llm::ReasoningEffort::High)
        );
        assert_eq!(
            spec.model.as_deref(),
            Some("openai-compat:qwen3?stream=false")
        );
        for (field, says) in [
            ("reasoning_effort: loud", "field `reasoning_effort`"),
            ("model: sonnet?colour=red", "unknown model setting 'colour'"),
        ] {
            let text = format!("---\nname: a\ndescription: d\n{field}\n---\nPrompt");
            let error = parse(&text, path()).unwrap_err();
            assert!(error.message().contains(says), "{error}");
        }
    }

    #[test]
    fn inherit_means_no_model_and_comma_lists_work() {
        let text = "---\nname: a\ndescription: d\ntools: read, ls\nmodel: inherit\n---\nPrompt";
        let spec = parse(text, path()).unwrap();
        assert_eq!(spec.model, None);
        assert_eq!(spec.tools.unwrap().len(), 2);
    }

    #[test]
    fn broken_files_name_the_file_and_the_field() {
        let cases = [
            ("name: a\n", "no front matter"),
            ("---\nname: a\ndescription: d\n", "never ends"),
            (
                "---\nname: a\ndescription: d\nPrompt",
                "closing '---' line missing",
            ),
            (
                "---\ndescription: d\n---\nPrompt",
                "field `name` is missing",
            ),
            (
                "---\nname: a\n---\nPrompt",
                "field `description` is missing",
            ),
            (
                "---\nname: a\ndescription: d\nmax_turns: ten\n---\nPrompt",
                "field `max_turns`",
            ),
            (
                "---\nname: a\ndescription: d\ntimeout: soon\n---\nPrompt",
                "field `timeout`",
            ),
            (
                "---\nname: a\ndescription: d\ncolour: red\n---\nPrompt",
                "unknown field `colour`",
            ),
            (
                "---\nname: a b\ndescription: d\n---\nPrompt",
                "field `name`",
            ),
            (
                "---\nname: a\ndescription: d\n---\n  \n",
                "system prompt is empty",
            ),
            (
                "---\nname: a\nname: b\ndescription: d\n---\nx",
                "appears twice",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text, path()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config);
            let message = error.to_string();
            assert!(
                message.starts_with(".subtask/agents/reviewer.md: "),
                "{message}"
            );
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("5 days"), None);
    }
}
