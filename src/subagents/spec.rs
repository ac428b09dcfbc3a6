//! [`SubagentSpec`]: a subagent type, and the tools a run of it gets.

use std::path::PathBuf;
use std::time::Duration;

use super::TASK_TOOL;
use crate::error::Error;
use crate::tools::ToolRegistry;

/// A subagent type: what the parent model is told about it, and what it runs with.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SubagentSpec {
    /// Its name (`explore`), used as `subagent_type`.
    pub name: String,
    /// What it is for, shown to the parent model.
    pub description: String,
    /// Its system prompt.
    pub system_prompt: String,
    /// The tools it may use; `None` for every tool there is.
    pub tools: Option<Vec<String>>,
    /// Tools it may not use, even if `tools` lists them.
    pub disallowed_tools: Vec<String>,
    /// Its model (`provider:model` or an alias); `None` to use the parent's.
    pub model: Option<String>,
    /// Its turn limit; `None` for the default.
    pub max_turns: Option<u32>,
    /// The reasoning effort of its model calls (front matter `reasoning_effort`), over the
    /// model's own setting; `None` for the model's.
    pub reasoning_effort: Option<crate::llm::ReasoningEffort>,
    /// Its execution timeout; `None` for the runtime's.
    pub timeout: Option<Duration>,
    /// Whether it only reads: no write, edit or shell tools, whatever `tools` says.
    pub read_only: bool,
    /// Where it was defined.
    pub source: SpecSource,
}

/// Where a subagent type was defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecSource {
    /// Built into subtask.
    BuiltIn,
    /// A Markdown file.
    File(PathBuf),
    /// Registered by the host in code.
    Code,
}

impl SubagentSpec {
    /// A type defined in code, with every tool and the parent's model.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        system_prompt: impl Into<String>,
    ) -> SubagentSpec {
        SubagentSpec {
            name: name.into(),
            description: description.into(),
            system_prompt: system_prompt.into(),
            tools: None,
            disallowed_tools: Vec::new(),
            model: None,
            max_turns: None,
            reasoning_effort: None,
            timeout: None,
            read_only: false,
            source: SpecSource::Code,
        }
    }

    /// Limits it to these tools.
    pub fn tools(mut self, tools: &[&str]) -> SubagentSpec {
        self.tools = Some(tools.iter().map(|tool| tool.to_string()).collect());
        self
    }

    /// Makes it read-only.
    pub fn read_only(mut self, read_only: bool) -> SubagentSpec {
        self.read_only = read_only;
        self
    }

    /// Gives it its own model.
    pub fn model(mut self, model: impl Into<String>) -> SubagentSpec {
        self.model = Some(model.into());
        self
    }

    /// The tools a run of this type gets out of `available`: only those it allows, none it
    /// disallows, only read-only ones if it (or the request) is read-only, and the `task`
    /// tool only when `nesting_allowed`. Enforced here, at spawn: the model is offered
    /// these and no other, and a call to any other is refused.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if the type names a tool that does not exist.
    pub fn tool_registry(
        &self,
        available: &ToolRegistry,
        read_only: bool,
        nesting_allowed: bool,
    ) -> Result<ToolRegistry, Error> {
        if let Some(allowed) = &self.tools {
            let unknown: Vec<&str> = allowed
                .iter()
                .map(String::as_str)
                .filter(|name| available.get(name).is_none())
                .collect();
            if !unknown.is_empty() {
                return Err(Error::config(format!(
                    "the subagent type '{}'{} lists tools that do not exist: {}; the tools \
                     are: {}",
                    self.name,
                    self.source_note(),
                    unknown.join(", "),
                    available.names().join(", ")
                )));
            }
        }
        let read_only = read_only || self.read_only;
        Ok(available.filter(|tool| {
            let name = tool.name();
            self.tools
                .as_ref()
                .is_none_or(|allowed| allowed.iter().any(|allowed| allowed == name))
                && !self.disallowed_tools.iter().any(|denied| denied == name)
                && (!read_only || tool.read_only())
                && (nesting_allowed || name != TASK_TOOL)
        }))
    }

    pub(super) fn source_note(&self) -> String {
        match &self.source {
            SpecSource::File(path) => format!(" (in {})", path.display()),
            _ => String::new(),
        }
    }
}
