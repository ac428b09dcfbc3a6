//! [`SubagentSpec`]: a subagent type, and the tools a run of it gets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::TASK_TOOL;
use crate::error::Error;
use crate::mcp::client::ServerConfig;
use crate::sandbox::Network;
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
    /// Whether each run works in a git worktree of its own (`isolation: worktree`).
    pub isolation: Isolation,
    /// Whether its commands run in the kernel sandbox ([`crate::sandbox`]). `false` is for
    /// trusted work only: commands then read and write what the host can. Defaults to `true`.
    pub sandbox: bool,
    /// Its commands' network access, unless a `task` call says otherwise. Defaults to
    /// [`Network::Off`].
    pub network: Network,
    /// The MCP servers whose tools it gets (as `mcp__<server>__<tool>`), started for each
    /// run and stopped when it ends.
    pub mcp_servers: Vec<McpServerRef>,
    /// Where it was defined.
    pub source: SpecSource,
}

/// Where a run of a type works.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Isolation {
    /// In the workspace itself. The default.
    #[default]
    None,
    /// In a fresh `git worktree` of the workspace's repository, on a branch of its own
    /// (`subtask/<run id>`): kept, with the run's changes committed, if it changed
    /// anything, else removed (see [`KeptWorktree`](super::KeptWorktree)).
    Worktree,
}

/// An MCP server a subagent type uses (`mcpServers` in an agent file).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum McpServerRef {
    /// A server of the user's configuration (or the workspace's `.mcp.json`), by name
    /// (see [`SubagentRegistry::mcp_server`](super::SubagentRegistry::mcp_server)).
    Named(String),
    /// A server defined with the type, trusted as the type is.
    Inline {
        /// Its name (the `<server>` in its tools' names).
        name: String,
        /// How to start it.
        config: ServerConfig,
    },
}

impl McpServerRef {
    /// The server's name.
    pub fn name(&self) -> &str {
        match self {
            McpServerRef::Named(name) | McpServerRef::Inline { name, .. } => name,
        }
    }
}

/// Where a subagent type was defined, which decides how far it is trusted.
///
/// Built-in types, types registered in code and files from directories the user or host
/// named ([`SubagentRegistry::load_dir`](super::SubagentRegistry::load_dir)) are the
/// user's own choice. Files in the workspace
/// ([`load_workspace`](super::SubagentRegistry::load_workspace)) come with the repository,
/// which may be a hostile clone: they add types but never replace one of the others unless
/// the user opts in ([`SubagentRegistry::trust_project`](super::SubagentRegistry::trust_project)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecSource {
    /// Built into subtask.
    BuiltIn,
    /// Registered by the host in code.
    Code,
    /// A Markdown file from a directory the user or host named.
    User(PathBuf),
    /// A Markdown file of the workspace (`.subtask/agents/`): untrusted.
    Project(PathBuf),
}

impl SpecSource {
    /// The file it came from, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            SpecSource::User(path) | SpecSource::Project(path) => Some(path),
            _ => None,
        }
    }

    /// Whether it came with the workspace (and so is not trusted to replace other types).
    pub fn is_project(&self) -> bool {
        matches!(self, SpecSource::Project(_))
    }

    /// `built-in`, `code`, `user file <path>` or `project file <path>`, with `path` shown
    /// relative to `base` when inside it.
    pub fn describe(&self, base: &Path) -> String {
        let shown = |path: &Path| {
            path.strip_prefix(base)
                .unwrap_or(path)
                .display()
                .to_string()
        };
        match self {
            SpecSource::BuiltIn => "built-in".to_string(),
            SpecSource::Code => "code".to_string(),
            SpecSource::User(path) => format!("user file {}", shown(path)),
            SpecSource::Project(path) => format!("project file {}", shown(path)),
        }
    }
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
            isolation: Isolation::None,
            sandbox: true,
            network: Network::Off,
            mcp_servers: Vec::new(),
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

    /// Runs each run in a worktree of its own (or not).
    pub fn isolation(mut self, isolation: Isolation) -> SubagentSpec {
        self.isolation = isolation;
        self
    }

    /// Runs its commands in the sandbox (`true`, the default) or unconfined (trusted work).
    pub fn sandbox(mut self, sandbox: bool) -> SubagentSpec {
        self.sandbox = sandbox;
        self
    }

    /// Sets its commands' network access.
    pub fn network(mut self, network: Network) -> SubagentSpec {
        self.network = network;
        self
    }

    /// Gives it the tools of these MCP servers.
    pub fn mcp_servers(mut self, servers: impl IntoIterator<Item = McpServerRef>) -> SubagentSpec {
        self.mcp_servers = servers.into_iter().collect();
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
                .filter(|entry| !available.iter().any(|tool| names_tool(entry, tool.name())))
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
                .is_none_or(|allowed| allowed.iter().any(|allowed| names_tool(allowed, name)))
                && !self
                    .disallowed_tools
                    .iter()
                    .any(|denied| names_tool(denied, name))
                && (!read_only || tool.read_only())
                && (nesting_allowed || name != TASK_TOOL)
        }))
    }

    /// Whether it may start its own inline MCP servers: any type but a workspace one,
    /// which may only when the user trusts the project.
    pub fn trusted_to_run_commands(&self, trust_project: bool) -> bool {
        !self.source.is_project() || trust_project
    }

    pub(super) fn source_note(&self) -> String {
        match &self.source {
            SpecSource::User(path) | SpecSource::Project(path) => {
                format!(" (in {})", path.display())
            }
            _ => String::new(),
        }
    }
}

/// Whether an entry of `tools` or `disallowedTools` names the tool `name`: the same name,
/// or `mcp__<server>` for every tool of that MCP server (as in Claude Code's rules).
fn names_tool(entry: &str, name: &str) -> bool {
    entry == name
        || entry
            .strip_prefix("mcp__")
            .filter(|server| !server.is_empty() && !server.contains("__"))
            .is_some_and(|_| {
                name.strip_prefix(entry)
                    .is_some_and(|rest| rest.starts_with("__"))
            })
}
