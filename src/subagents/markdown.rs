//! Subagent types written as Markdown: YAML front matter, then the system prompt. Claude
//! Code's agent files load as they are.
//!
//! ```markdown
//! ---
//! name: reviewer
//! description: |
//!   Reviews a diff for bugs and missing tests.
//!   Use it proactively after a change.
//! tools: Read, Grep, Glob        # Claude Code's names or ours; a list works too
//! model: haiku                   # or provider:model; `inherit` (or none) for the parent's
//! maxTurns: 20                   # or max_turns
//! effort: high                   # or reasoning_effort: none … max
//! timeout: 5m                    # seconds, or 90s / 5m / 1h
//! permissionMode: plan           # plan = read-only
//! isolation: worktree            # each run in a git worktree of its own
//! network: off                   # its commands' network (default off)
//! color: blue                    # accepted and ignored
//! mcpServers:                    # tools of MCP servers, as mcp__<server>__<tool>
//!   - github                     # a server of your MCP configuration, by name
//!   - fs:                        # or one defined here
//!       command: npx
//!       args: [-y, "@modelcontextprotocol/server-filesystem", "."]
//! ---
//! You review code changes. ...
//! ```
//!
//! The front matter is parsed by a YAML parser ([`serde_saphyr`]: comments, block scalars,
//! quoted strings, lists in either form). Field names are matched without regard to case,
//! `_` or `-` (`maxTurns`, `max_turns`, `max-turns`). Unknown fields, and tools subtask does
//! not have (`WebFetch`, `TodoWrite`…), are warnings, not errors; a field with a value that
//! cannot be used is an error naming the file, the field and what to write. `model` takes
//! settings after a `?` (`openai-compat:qwen3?stream=false&header.x-a=b`, see
//! `ModelConfig::parse`); `effort` / `reasoning_effort` (none … max) applies to any model,
//! inherited or not.
//!
//! `network: on` lets the type's commands reach the network (default `off`); `sandbox: off`
//! runs its commands unconfined, for trusted work only (see [`crate::sandbox`]). Neither is
//! accepted from an untrusted file (the workspace's, unless the user trusts the project): a
//! repository may not loosen the confinement of the commands it asks for.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use rustix::fs::OFlags;
use serde_json::{Map, Value};

use super::{Isolation, McpServerRef, SpecSource, SubagentSpec};
use crate::error::Error;
use crate::llm::ModelConfig;
use crate::mcp::client::{ServerConfig, tool_name};
use crate::sandbox::Network;

/// The fields, by their normalised name (lowercase, no `_` or `-`), with the name shown in
/// messages.
const FIELDS: &[(&str, &str)] = &[
    ("name", "name"),
    ("description", "description"),
    ("tools", "tools"),
    ("disallowedtools", "disallowedTools"),
    ("model", "model"),
    ("maxturns", "maxTurns"),
    ("effort", "effort"),
    ("reasoningeffort", "reasoning_effort"),
    ("timeout", "timeout"),
    ("readonly", "read_only"),
    ("permissionmode", "permissionMode"),
    ("isolation", "isolation"),
    ("sandbox", "sandbox"),
    ("network", "network"),
    ("color", "color"),
    ("memory", "memory"),
    ("mcpservers", "mcpServers"),
];

/// Claude Code's tool names, lowercased, and the tool each maps to (`None`: subtask has
/// nothing like it, so the name is dropped with a warning).
const CLAUDE_TOOLS: &[(&str, Option<&str>)] = &[
    ("read", Some("read")),
    ("write", Some("write")),
    ("edit", Some("edit")),
    ("multiedit", Some("edit")),
    ("bash", Some("bash")),
    ("grep", Some("grep")),
    ("glob", Some("glob")),
    ("ls", Some("ls")),
    ("webfetch", None),
    ("websearch", None),
    ("todowrite", None),
    ("todoread", None),
    ("notebookedit", None),
    ("notebookread", None),
    ("bashoutput", None),
    ("killshell", None),
    ("killbash", None),
    ("exitplanmode", None),
    ("slashcommand", None),
    ("skill", None),
];

/// The largest agent file read: 1 MiB.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A parsed file: its type, and what was accepted but ignored or dropped.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) spec: SubagentSpec,
    pub(crate) warnings: Vec<String>,
}

/// Reads one Markdown subagent file: a regular file (a symlink or FIFO is refused, so a
/// repository cannot point the loader elsewhere or hang it) of at most 1 MiB. `project`
/// marks a file of the workspace (untrusted).
pub(crate) fn parse_file(path: &Path, project: bool, trusted: bool) -> Result<Parsed, Error> {
    let cannot = |error: &dyn std::fmt::Display| {
        Error::config(format!("{}: cannot read it: {error}", path.display()))
    };
    let flags = (OFlags::NOFOLLOW.bits() | OFlags::NONBLOCK.bits()) as i32;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|error| cannot(&error))?;
    let metadata = file.metadata().map_err(|error| cannot(&error))?;
    if !metadata.is_file() {
        return Err(cannot(&"it is not a regular file"));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(cannot(&format!(
            "it has {} bytes, more than the {MAX_FILE_BYTES} an agent file may have",
            metadata.len()
        )));
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|error| cannot(&error))?;
    let source = if project {
        SpecSource::Project(path.to_path_buf())
    } else {
        SpecSource::User(path.to_path_buf())
    };
    parse(&text, path, source, trusted)
}

/// Parses a subagent definition; `path` names the file in errors. An untrusted file may not
/// turn the sandbox off or the network on.
pub(crate) fn parse(
    text: &str,
    path: &Path,
    source: SpecSource,
    trusted: bool,
) -> Result<Parsed, Error> {
    let file = path.display();
    let fail = |message: String| Error::config(format!("{file}: {message}"));
    let (front, body) = split_front_matter(text).map_err(|message| fail(message.into()))?;
    let fields: Map<String, Value> = if front.trim().is_empty() {
        Map::new()
    } else {
        serde_saphyr::from_str(front).map_err(|error| {
            fail(format!(
                "the front matter is not valid YAML ({}); write `field: value` lines, and \
                 quote values that hold `: ` or start with a special character",
                one_line(&error.to_string())
            ))
        })?
    };
    let mut warnings = Vec::new();
    let mut known: Map<String, Value> = Map::new();
    for (key, value) in fields {
        let normalised: String = key
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        match FIELDS.iter().find(|(field, _)| *field == normalised) {
            Some((field, shown)) => {
                if known.insert((*field).to_string(), value).is_some() {
                    return Err(fail(format!("field `{shown}` appears twice")));
                }
            }
            None => warnings.push(format!(
                "unknown field `{key}` ignored; the fields are: {}",
                FIELDS
                    .iter()
                    .map(|(_, shown)| *shown)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    let field = |name: &str| known.get(name).filter(|value| !value.is_null());
    let text_field = |name: &str, shown: &str| -> Result<Option<String>, Error> {
        match field(name) {
            None => Ok(None),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.trim().to_string())),
            Some(Value::Number(number)) => Ok(Some(number.to_string())),
            Some(Value::Bool(flag)) => Ok(Some(flag.to_string())),
            Some(_) => Err(fail(format!("field `{shown}` must be text"))),
        }
    };
    let required = |name: &str| -> Result<String, Error> {
        text_field(name, name)?.ok_or_else(|| {
            fail(format!(
                "field `{name}` is missing or empty; every agent file needs `name:` and \
                 `description:`"
            ))
        })
    };
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
    let system_prompt = body.trim().to_string();
    if system_prompt.is_empty() {
        return Err(fail(
            "the system prompt is empty: write it after the closing '---'".into(),
        ));
    }
    let mcp_servers = match field("mcpservers") {
        None => Vec::new(),
        Some(value) => mcp_servers(value).map_err(fail)?,
    };
    let servers: Vec<String> = mcp_servers
        .iter()
        .map(|server| {
            let prefix = tool_name(server.name(), "");
            prefix.strip_suffix("__").unwrap_or(&prefix).to_string()
        })
        .collect();
    let tools = match field("tools") {
        None => None,
        Some(value) => Some(tool_names(value, "tools", &servers, &mut warnings).map_err(fail)?),
    };
    let disallowed_tools = match field("disallowedtools") {
        None => Vec::new(),
        Some(value) => {
            tool_names(value, "disallowedTools", &servers, &mut warnings).map_err(fail)?
        }
    };
    let max_turns = match field("maxturns") {
        None => None,
        Some(value) => match number(value) {
            Some(turns) if turns >= 1 && turns <= u64::from(u32::MAX) => Some(turns as u32),
            _ => {
                return Err(fail(format!(
                    "field `maxTurns`: {value} is not a whole number of at least 1"
                )));
            }
        },
    };
    let timeout = match field("timeout") {
        None => None,
        Some(value) => Some(duration(value).ok_or_else(|| {
            fail(format!(
                "field `timeout`: {value} is not a duration; write seconds (300) or 90s, 5m, 1h"
            ))
        })?),
    };
    let mut read_only = match field("readonly") {
        None => false,
        Some(value) => boolean(value)
            .ok_or_else(|| fail(format!("field `read_only`: {value} is not true or false")))?,
    };
    if let Some(mode) = text_field("permissionmode", "permissionMode")? {
        match mode.as_str() {
            "plan" => read_only = true,
            // subtask asks no permission: tools are confined instead (see the README's
            // security model), so these modes change nothing here.
            "default" | "acceptEdits" | "bypassPermissions" | "dontAsk" | "auto" => {}
            other => warnings.push(format!(
                "field `permissionMode`: '{other}' is not a mode subtask knows (plan makes \
                 the type read-only; default, acceptEdits, bypassPermissions, dontAsk and \
                 auto change nothing); ignored"
            )),
        }
    }
    let on_off = |key: &str| -> Result<Option<Network>, Error> {
        match text_field(key, key)? {
            None => Ok(None),
            Some(value) => Network::parse(&value)
                .map(Some)
                .ok_or_else(|| fail(format!("field `{key}`: '{value}' is not on or off"))),
        }
    };
    let sandbox = on_off("sandbox")? != Some(Network::Off);
    let network = on_off("network")?.unwrap_or_default();
    if !trusted && (!sandbox || network == Network::On) {
        let field = if sandbox {
            "network: on"
        } else {
            "sandbox: off"
        };
        return Err(fail(format!(
            "`{field}` loosens the confinement of this type's commands, which a repository's \
             agent file may not do; remove it, or, if you trust this repository, pass \
             --trust-project-agents (or set SUBTASK_TRUST_PROJECT_AGENTS=1)"
        )));
    }
    let isolation = match text_field("isolation", "isolation")?.as_deref() {
        None | Some("none") => Isolation::None,
        Some("worktree") => Isolation::Worktree,
        Some(other) => {
            return Err(fail(format!(
                "field `isolation`: '{other}' is not an isolation; write `worktree` (a git \
                 worktree of its own per run) or leave it out"
            )));
        }
    };
    let model =
        text_field("model", "model")?.filter(|model| !model.eq_ignore_ascii_case("inherit"));
    let reasoning_effort = match (
        text_field("effort", "effort")?,
        text_field("reasoningeffort", "reasoning_effort")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "set `effort` or `reasoning_effort`, not both (they are one setting)".into(),
            ));
        }
        (Some(value), None) | (None, Some(value)) => Some(
            value
                .parse::<crate::llm::ReasoningEffort>()
                .map_err(|error| fail(format!("field `effort`: {}", error.message())))?,
        ),
        (None, None) => None,
    };
    // Checked now (settings after `?` included), so a typo names this file, not a failed run.
    let config = match &model {
        Some(model) => Some(
            ModelConfig::parse(model)
                .map_err(|error| fail(format!("field `model`: {}", error.message())))?,
        ),
        None => None,
    };
    if let (Some(model), Some(config)) = (&model, &config)
        && config.provider.reads_files()
    {
        return Err(fail(format!(
            "field `model`: '{model}' plays a script file, which an agent file may not \
             choose; name a provider's model (haiku, openai:gpt-4.1-mini…) or `inherit`. \
             Scripted models are accepted only from host code or your own configuration \
             (SUBTASK_MODEL, --model)"
        )));
    }
    Ok(Parsed {
        spec: SubagentSpec {
            name,
            description,
            system_prompt,
            tools,
            disallowed_tools,
            model,
            max_turns,
            reasoning_effort,
            timeout,
            read_only,
            isolation,
            sandbox,
            network,
            mcp_servers,
            source,
        },
        warnings,
    })
}

/// The front matter (between the first line `---` and the next `---` or `...`) and the
/// body after it.
fn split_front_matter(text: &str) -> Result<(&str, &str), &'static str> {
    let text = text.trim_start_matches('\u{feff}');
    let start = text.trim_start_matches(['\n', '\r', ' ', '\t']);
    let Some(rest) = start.strip_prefix("---") else {
        return Err(
            "no front matter: start the file with a '---' line, then `name:` and \
                    `description:` lines, then '---' and the system prompt",
        );
    };
    let Some(rest) = rest
        .strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))
        .or_else(|| rest.trim_end().is_empty().then_some(""))
    else {
        return Err("the first line must be '---' alone");
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            return Ok((&rest[..offset], &rest[offset + line.len()..]));
        }
        offset += line.len();
    }
    Err("the front matter never ends: close it with a '---' line before the system prompt")
}

/// Tool names from a comma- or space-separated string or a list, mapped to subtask's:
/// Claude Code's names (any case) become ours; names subtask lacks are dropped with a
/// warning; any other name is kept (a host may have registered it).
fn tool_names(
    value: &Value,
    shown: &str,
    mcp_servers: &[String],
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    let items: Vec<String> = match value {
        Value::String(text) => text
            .split([',', ' '])
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_string)
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.trim().to_string()),
                other => Err(format!(
                    "field `{shown}`: {other} is not a tool name; write names like `Read, Grep`"
                )),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(format!(
                "field `{shown}`: {other} is not a list of tools; write `Read, Grep` or a list"
            ));
        }
    };
    let mut names = Vec::new();
    let mut dropped = Vec::new();
    for item in items {
        let lower = item.to_ascii_lowercase();
        let mapped = match CLAUDE_TOOLS.iter().find(|(claude, _)| *claude == lower) {
            Some((_, Some(ours))) => Some((*ours).to_string()),
            Some((_, None)) => None,
            // `Task`, `Agent(explore)`: subagents start subagents only when the host allows
            // nesting, and then get the `task` tool whatever the file says.
            None if lower == "task" || lower == "agent" || lower.starts_with("agent(") => None,
            // `mcp__<server>__<tool>` or `mcp__<server>`: kept when the server is one of
            // the type's (`mcpServers`); Claude Code's session servers are not started.
            None if lower.starts_with("mcp__") => mcp_servers
                .iter()
                .any(|server| item == *server || item.starts_with(&format!("{server}__")))
                .then(|| item.clone()),
            None => Some(item.clone()),
        };
        match mapped {
            Some(name) if !names.contains(&name) => names.push(name),
            Some(_) => {}
            None => dropped.push(item),
        }
    }
    if !dropped.is_empty() {
        warnings.push(format!(
            "field `{shown}`: {} not available in subtask and left out (its tools are bash, \
             read, write, edit, ls, glob, grep and the host's own; a subagent gets `task` \
             only when nesting is allowed; an MCP tool needs its server in `mcpServers`)",
            dropped.join(", ")
        ));
    }
    Ok(names)
}

/// `mcpServers`: a list whose items are server names or `{name: {command, args, env}}`
/// maps (Claude Code's form), or one map of inline servers.
fn mcp_servers(value: &Value) -> Result<Vec<McpServerRef>, String> {
    let shape = "field `mcpServers`: write a list of server names from your MCP configuration \
                 (`[github, fs]`) or of inline servers (`- fs: {command: npx, args: [...]}`)";
    let inline = |servers: &Map<String, Value>, out: &mut Vec<McpServerRef>| {
        for (name, config) in servers {
            let config = ServerConfig::from_json(name, config)
                .map_err(|problem| format!("field `mcpServers`: {problem}"))?;
            out.push(McpServerRef::Inline {
                name: name.clone(),
                config,
            });
        }
        Ok::<(), String>(())
    };
    let mut servers = Vec::new();
    match value {
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(name) if !name.trim().is_empty() => {
                        servers.push(McpServerRef::Named(name.trim().to_string()));
                    }
                    Value::Object(map) => inline(map, &mut servers)?,
                    _ => return Err(format!("{shape}; {item} is neither")),
                }
            }
        }
        Value::String(names) => servers.extend(
            names
                .split([',', ' '])
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(|name| McpServerRef::Named(name.to_string())),
        ),
        Value::Object(map) => inline(map, &mut servers)?,
        _ => return Err(shape.to_string()),
    }
    for (index, server) in servers.iter().enumerate() {
        if servers[..index]
            .iter()
            .any(|earlier| earlier.name() == server.name())
        {
            return Err(format!(
                "field `mcpServers`: the server '{}' is named twice",
                server.name()
            ));
        }
    }
    Ok(servers)
}

/// A whole number, written as a number or as digits.
fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// `true`/`false`, or `yes`/`no` as text.
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Some(true),
            "false" | "no" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Seconds as a number (`300`, `1.5`), or text: `300`, `90s`, `5m`, `1h`.
fn duration(value: &Value) -> Option<Duration> {
    match value {
        Value::Number(number) => number
            .as_f64()
            .filter(|seconds| *seconds > 0.0)
            .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok()),
        Value::String(text) => parse_duration(text),
        _ => None,
    }
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

/// A parser's message on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn path() -> &'static Path {
        Path::new(".subtask/agents/reviewer.md")
    }

    fn parsed(text: &str) -> Result<Parsed, Error> {
        parse(
            text,
            path(),
            SpecSource::Project(path().to_path_buf()),
            false,
        )
    }

    #[test]
    fn a_full_definition_parses() {
        let text = "---\nname: reviewer\ndescription: \"Reviews diffs\"\ntools: [read, grep]\n\
                    disallowed_tools:\n  - bash\nmodel: haiku\nmax_turns: 20\ntimeout: 5m\n\
                    read_only: true\n---\n\nYou review code.\n";
        let Parsed { spec, warnings } = parsed(text).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(spec.name, "reviewer");
        assert_eq!(spec.description, "Reviews diffs");
        assert_eq!(
            spec.tools,
            Some(vec!["read".to_string(), "grep".to_string()])
        );
        assert_eq!(spec.disallowed_tools, vec!["bash".to_string()]);
        assert_eq!(spec.model.as_deref(), Some("haiku"));
        assert_eq!(spec.max_turns, Some(20));
        assert_eq!(spec.timeout, Some(Duration::from_secs(300)));
        assert!(spec.read_only);
        assert_eq!(spec.system_prompt, "You review code.");
    }

    /// A Claude Code agent file as its documentation shows one: a block scalar, Claude
    /// Code's tool names, camelCase fields, comments, and fields subtask ignores.
    #[test]
    fn a_claude_code_agent_file_loads() {
        let text = "---\n\
                    name: code-reviewer  # the id\n\
                    description: |\n  Expert code review specialist.\n  Use proactively after writing code.\n\
                    tools: Read, Grep, Glob, Bash, WebFetch, mcp__github__search\n\
                    model: inherit\n\
                    maxTurns: 12\n\
                    permissionMode: plan\n\
                    color: blue\n\
                    memory: project\n\
                    hooks: {}\n\
                    ---\n\
                    You are a senior code reviewer.\n";
        let Parsed { spec, warnings } = parsed(text).unwrap();
        assert_eq!(spec.name, "code-reviewer");
        assert_eq!(
            spec.description,
            "Expert code review specialist.\nUse proactively after writing code."
        );
        assert_eq!(
            spec.tools.as_deref().unwrap(),
            ["read", "grep", "glob", "bash"]
        );
        assert_eq!(spec.model, None);
        assert_eq!(spec.max_turns, Some(12));
        assert!(spec.read_only, "permissionMode: plan");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("unknown field `hooks`"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].contains("WebFetch, mcp__github__search"),
            "{warnings:?}"
        );
    }

    #[test]
    fn inherit_means_no_model_and_lists_come_in_every_form() {
        let one = "---\nname: a\ndescription: b\nmodel: inherit\ntools: read, grep\n---\nP\n";
        let spec = parsed(one).unwrap().spec;
        assert_eq!(spec.model, None);
        assert_eq!(spec.tools.unwrap(), ["read", "grep"]);
        let block = "---\nname: a\ndescription: b\ntools:\n  - Read\n  - \"Grep\"\n---\nP\n";
        assert_eq!(parsed(block).unwrap().spec.tools.unwrap(), ["read", "grep"]);
        let comment = "---\nname: a\ndescription: b\ntimeout: 5m  # five minutes\n---\nP\n";
        assert_eq!(
            parsed(comment).unwrap().spec.timeout,
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn broken_files_name_the_file_and_the_field() {
        let cases = [
            ("---\nname: x\n---\nP\n", "`description`"),
            ("---\ndescription: d\n---\nP\n", "`name`"),
            ("---\nname: a b\ndescription: d\n---\nP\n", "`name`"),
            (
                "---\nname: x\ndescription: d\nmax_turns: 0\n---\nP\n",
                "`maxTurns`",
            ),
            (
                "---\nname: x\ndescription: d\ntimeout: soon\n---\nP\n",
                "`timeout`",
            ),
            (
                "---\nname: x\ndescription: d\nread_only: maybe\n---\nP\n",
                "`read_only`",
            ),
            (
                "---\nname: x\ndescription: d\ntools: {a: 1}\n---\nP\n",
                "`tools`",
            ),
            (
                "---\nname: x\ndescription: d\n---\n\n",
                "system prompt is empty",
            ),
            ("name: x\n", "no front matter"),
            ("---\nname: x\ndescription: d\n", "never ends"),
            ("---\nname: [x\n---\nP\n", "not valid YAML"),
            (
                "---\nname: x\nName: y\ndescription: d\n---\nP\n",
                "appears twice",
            ),
        ];
        for (text, fragment) in cases {
            let error = parsed(text).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config);
            assert!(
                error.message().starts_with(".subtask/agents/reviewer.md: "),
                "{error}"
            );
            assert!(error.message().contains(fragment), "{fragment}: {error}");
        }
    }

    /// `mcpServers` as Claude Code writes it (names and `{name: config}` items), as a map,
    /// or as names in a string; an MCP tool in `tools` is kept only for a server the type
    /// has.
    #[test]
    fn mcp_servers_come_as_names_or_inline_definitions() {
        let text = "---\nname: a\ndescription: b\n\
                    tools: Read, mcp__fs__read_file, mcp__github, mcp__slack__post\n\
                    mcpServers:\n  - github\n  - fs:\n      type: stdio\n      \
                    command: npx\n      args: [-y, server-filesystem, .]\n      \
                    env: {DEBUG: 1}\n---\nP\n";
        let Parsed { spec, warnings } = parsed(text).unwrap();
        assert_eq!(
            spec.mcp_servers,
            [
                McpServerRef::Named("github".into()),
                McpServerRef::Inline {
                    name: "fs".into(),
                    config: ServerConfig::new("npx")
                        .args(["-y", "server-filesystem", "."])
                        .env("DEBUG", "1"),
                },
            ]
        );
        assert_eq!(
            spec.tools.unwrap(),
            ["read", "mcp__fs__read_file", "mcp__github"]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("mcp__slack__post"), "{warnings:?}");

        let map = "---\nname: a\ndescription: b\nmcpServers:\n  x: {command: run-x}\n---\nP\n";
        assert_eq!(
            parsed(map).unwrap().spec.mcp_servers,
            [McpServerRef::Inline {
                name: "x".into(),
                config: ServerConfig::new("run-x"),
            }]
        );
        let names = "---\nname: a\ndescription: b\nmcp_servers: github, fs\n---\nP\n";
        assert_eq!(parsed(names).unwrap().spec.mcp_servers.len(), 2);

        for (text, fragment) in [
            ("mcpServers: [a, a]", "named twice"),
            (
                "mcpServers: [{r: {type: http, url: 'https://x'}}]",
                "stdio servers only",
            ),
            ("mcpServers: [{r: {args: [x]}}]", "no `command`"),
            ("mcpServers: 3", "`mcpServers`"),
        ] {
            let text = format!("---\nname: a\ndescription: b\n{text}\n---\nP\n");
            let error = parsed(&text).unwrap_err();
            assert!(error.message().contains(fragment), "{fragment}: {error}");
            assert!(error.message().contains("`mcpServers`"), "{error}");
        }
    }

    #[test]
    fn reasoning_effort_and_model_settings_come_from_front_matter() {
        for field in ["reasoning_effort: high", "effort: high"] {
            let text = format!(
                "---\nname: a\ndescription: d\nmodel: openai-compat:qwen3?stream=false\n\
                 {field}\n---\nPrompt"
            );
            let spec = parsed(&text).unwrap().spec;
            assert_eq!(
                spec.reasoning_effort,
                Some(crate::llm::ReasoningEffort::High)
            );
            assert_eq!(
                spec.model.as_deref(),
                Some("openai-compat:qwen3?stream=false")
            );
        }
        for (field, says) in [
            ("reasoning_effort: loud", "field `effort`"),
            ("model: sonnet?colour=red", "unknown model setting 'colour'"),
            ("effort: high\nreasoning_effort: low", "not both"),
        ] {
            let text = format!("---\nname: a\ndescription: d\n{field}\n---\nPrompt");
            let error = parsed(&text).unwrap_err();
            assert!(error.message().contains(says), "{error}");
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(parse_duration("300"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
    }
}
