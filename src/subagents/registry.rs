//! [`SubagentRegistry`]: the subagent types available.

use std::path::{Path, PathBuf};

use super::{AGENTS_DIR, McpServerRef, SpecSource, SubagentSpec, builtin, markdown};
use crate::error::Error;
use crate::mcp::client::{self, ServerConfig};
use crate::tools::Workspace;

/// The environment variable by which a user trusts every workspace's agent files
/// ([`SubagentRegistry::trust_project`]): `1`, `true` or `yes`.
pub const TRUST_PROJECT_ENV: &str = "SUBTASK_TRUST_PROJECT_AGENTS";

/// Whether [`TRUST_PROJECT_ENV`] is set to `1`, `true` or `yes` (read by the command line,
/// the C ABI and [`subtask::task`](crate::task), which act for the user; a library host
/// decides in code).
pub fn trust_project_from_env() -> bool {
    std::env::var(TRUST_PROJECT_ENV).is_ok_and(|value| {
        matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes"
        )
    })
}

/// The workspace's agent directories, in precedence order (the last wins).
const PROJECT_AGENT_DIRS: [&str; 2] = [".claude/agents", AGENTS_DIR];

/// The user's agent directories that exist or may, in precedence order (the last wins):
/// `~/.claude/agents`, then `$XDG_CONFIG_HOME/subtask/agents` (`~/.config/subtask/agents`).
pub fn user_agent_dirs() -> Vec<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    let home = absolute("HOME");
    let config =
        absolute("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|home| home.join(".config")));
    home.map(|home| home.join(".claude/agents"))
        .into_iter()
        .chain(config.map(|config| config.join("subtask/agents")))
        .collect()
}

/// The workspace's MCP configuration (Claude Code's project scope).
const PROJECT_MCP_CONFIG: &str = ".mcp.json";

/// An MCP server defined by name in a configuration, for types to name in `mcpServers`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamedMcpServer {
    /// Its name.
    pub name: String,
    /// How to start it.
    pub config: ServerConfig,
    /// Where it was defined: [`SpecSource::Code`], [`SpecSource::User`] (the user's own
    /// configuration file) or [`SpecSource::Project`] (the workspace's `.mcp.json`, which
    /// starts only when the project is trusted).
    pub source: SpecSource,
}

/// The subagent types available, in a stable order.
///
/// Types come from four places, trusted differently (see [`SpecSource`]): built in, code
/// ([`register`](Self::register)), directories the user or host names
/// ([`load_dir`](Self::load_dir)), and the workspace's `.subtask/agents/`
/// ([`load_workspace`](Self::load_workspace)). A later type replaces an earlier one of the
/// same name only if it is at least as trusted: a workspace file never replaces a built-in,
/// code or user type (it is set aside and reported) unless the user opts in with
/// [`trust_project`](Self::trust_project), and a user type replaces a workspace one.
///
/// One broken file never takes the others down: it is set aside, logged and listed by
/// [`problems`](Self::problems) (which `subtask agents` prints), and the rest load.
#[derive(Debug, Clone, PartialEq)]
pub struct SubagentRegistry {
    specs: Vec<SubagentSpec>,
    /// Files set aside by the loads so far, in load order.
    problems: Vec<LoadProblem>,
    /// Files loaded with something ignored, in load order.
    warnings: Vec<LoadProblem>,
    /// Whether workspace files may replace built-in, code and user types, and the
    /// workspace's MCP servers (its `.mcp.json`, its types' inline ones) may start.
    trust_project: bool,
    /// MCP servers by name, in load order; a name appears once (see
    /// [`register_mcp_server`](Self::register_mcp_server) for which definition wins).
    mcp_servers: Vec<NamedMcpServer>,
}

/// A Markdown file that was not loaded, and why (naming the field and what to write).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadProblem {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it, for a person.
    pub message: String,
}

impl Default for SubagentRegistry {
    fn default() -> SubagentRegistry {
        SubagentRegistry::builtin()
    }
}

impl SubagentRegistry {
    /// The built-in types: `general-purpose`, `explore`, `plan`, `bash`.
    pub fn builtin() -> SubagentRegistry {
        SubagentRegistry {
            specs: builtin::builtin_specs(),
            problems: Vec::new(),
            warnings: Vec::new(),
            trust_project: false,
            mcp_servers: Vec::new(),
        }
    }

    /// No types at all.
    pub fn empty() -> SubagentRegistry {
        SubagentRegistry {
            specs: Vec::new(),
            problems: Vec::new(),
            warnings: Vec::new(),
            trust_project: false,
            mcp_servers: Vec::new(),
        }
    }

    /// Lets the workspace's files replace built-in, code and user types of the same name
    /// (loads after this call), and lets the workspace's MCP servers start (its
    /// `.mcp.json`, the inline `mcpServers` of its agent files: each runs a command). Only
    /// for repositories you trust: a file can give a type every tool and another model. Defaults to `false`; the CLI's
    /// `--trust-project-agents` and `SUBTASK_TRUST_PROJECT_AGENTS=1` set it.
    pub fn trust_project(mut self, trust: bool) -> SubagentRegistry {
        self.trust_project = trust;
        self
    }

    /// Whether the workspace is trusted ([`trust_project`](Self::trust_project)).
    pub fn trusts_project(&self) -> bool {
        self.trust_project
    }

    /// Adds a type, or replaces one of the same name that is no more trusted (a built-in
    /// type by any other; a workspace type by a user or code one; a workspace type by
    /// another only under [`trust_project`](Self::trust_project)). Replacements are logged.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when another type of the same trust
    /// already has that name, or when a workspace type would replace a more trusted one.
    pub fn register(&mut self, spec: SubagentSpec) -> Result<(), Error> {
        let Some(existing) = self.specs.iter_mut().find(|known| known.name == spec.name) else {
            self.specs.push(spec);
            return Ok(());
        };
        // Two files of one trust in different directories: the later directory wins (the
        // load order is the precedence); in one directory, two files may not share a name.
        let later_directory = |old: &Path, new: &Path| old.parent() != new.parent();
        let replaces = match (&existing.source, &spec.source) {
            (SpecSource::BuiltIn, SpecSource::Project(_)) => self.trust_project,
            (SpecSource::BuiltIn, _) => true,
            (SpecSource::Project(old), SpecSource::Project(new)) => later_directory(old, new),
            (SpecSource::Project(_), _) => true,
            (SpecSource::User(old), SpecSource::User(new)) => later_directory(old, new),
            (_, SpecSource::Project(_)) if self.trust_project => true,
            (_, SpecSource::Project(_)) => {
                return Err(Error::config(format!(
                    "the workspace defines a type '{}'{}, but {} already defines it: a \
                     repository's agent files never replace built-in, code or user types. \
                     Rename the file's type, or, if you trust this repository, pass \
                     --trust-project-agents (or set SUBTASK_TRUST_PROJECT_AGENTS=1)",
                    spec.name,
                    spec.source_note(),
                    existing.source.describe(Path::new("/")),
                )));
            }
            _ => false,
        };
        if !replaces {
            if existing.source == SpecSource::BuiltIn {
                return Err(Error::config(format!(
                    "the workspace defines a type '{}'{}, which would replace the built-in \
                     one: a repository's agent files never replace built-in types. Rename \
                     it, or, if you trust this repository, pass --trust-project-agents (or \
                     set SUBTASK_TRUST_PROJECT_AGENTS=1)",
                    spec.name,
                    spec.source_note(),
                )));
            }
            return Err(Error::config(format!(
                "two subagent types are named '{}'{}{}; rename one",
                spec.name,
                existing.source_note(),
                spec.source_note()
                    .replacen(" (in", " and", 1)
                    .replace(')', "")
            )));
        }
        log::info!(
            "the subagent type '{}'{} replaces the one from {}",
            spec.name,
            spec.source_note(),
            existing.source.describe(Path::new("/"))
        );
        *existing = spec;
        Ok(())
    }

    /// Loads every `*.md` file of `dir` (sorted by name) as the user's own types; a
    /// missing directory adds nothing. A file that cannot be loaded is set aside (see
    /// [`problems`](Self::problems)). Returns how many types were loaded.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if the directory exists but cannot
    /// be read.
    pub fn load_dir(&mut self, dir: impl AsRef<Path>) -> Result<usize, Error> {
        self.load(dir.as_ref(), false)
    }

    /// Loads the workspace's `.claude/agents/` then `.subtask/agents/` (which wins for a
    /// name both define) as untrusted project types (see the type's docs for what they
    /// may not replace).
    ///
    /// # Errors
    ///
    /// As [`load_dir`](Self::load_dir).
    pub fn load_workspace(&mut self, workspace: &Workspace) -> Result<usize, Error> {
        let mut loaded = 0;
        for dir in PROJECT_AGENT_DIRS {
            loaded += self.load(&workspace.root().join(dir), true)?;
        }
        self.load_mcp_file(&workspace.root().join(PROJECT_MCP_CONFIG), true)?;
        Ok(loaded)
    }

    /// Defines the MCP server `name` for types to name in `mcpServers` (as the host's own,
    /// trusted). Replaces a server of that name.
    pub fn register_mcp_server(&mut self, name: impl Into<String>, config: ServerConfig) {
        self.add_mcp_server(NamedMcpServer {
            name: name.into(),
            config,
            source: SpecSource::Code,
        });
    }

    /// Loads the MCP servers of a configuration file the user or host names (its top-level
    /// `mcpServers`, as `.mcp.json`, `~/.claude.json` and Claude Desktop's
    /// `claude_desktop_config.json` have it) as the user's own; a missing file adds none.
    /// Servers that cannot be used (remote ones, malformed entries) are listed in
    /// [`warnings`](Self::warnings). Returns how many were loaded.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if the file exists but cannot be read
    /// or is not JSON.
    pub fn load_mcp_config(&mut self, path: impl AsRef<Path>) -> Result<usize, Error> {
        self.load_mcp_file(path.as_ref(), false)
    }

    /// Loads the user's own MCP configurations
    /// ([`mcp::client::user_config_files`](crate::mcp::client::user_config_files): Claude
    /// Desktop's, then Claude Code's `~/.claude.json`, which wins for a name both define).
    /// A file that cannot be read is set aside (see [`problems`](Self::problems)), not an
    /// error: a broken configuration of another program must not stop subtask.
    pub fn load_user_mcp_configs(&mut self) -> usize {
        let mut loaded = 0;
        for path in client::user_config_files() {
            match self.load_mcp_file(&path, false) {
                Ok(count) => loaded += count,
                Err(error) => {
                    log::warn!("{error}");
                    self.problems.push(LoadProblem {
                        path,
                        message: error.message().to_string(),
                    });
                }
            }
        }
        loaded
    }

    fn load_mcp_file(&mut self, path: &Path, project: bool) -> Result<usize, Error> {
        let (servers, problems) = client::read_config_file(path)?;
        for message in problems {
            self.warn(path, message);
        }
        let loaded = servers.len();
        if project && loaded > 0 && !self.trust_project {
            let names: Vec<&str> = servers.iter().map(|(name, _)| name.as_str()).collect();
            self.warn(
                path,
                format!(
                    "defines the MCP servers {}; starting one runs a command, so a \
                     repository's servers start only if you trust it \
                     (--trust-project-agents or SUBTASK_TRUST_PROJECT_AGENTS=1)",
                    names.join(", ")
                ),
            );
        }
        for (name, config) in servers {
            let source = if project {
                SpecSource::Project(path.to_path_buf())
            } else {
                SpecSource::User(path.to_path_buf())
            };
            self.add_mcp_server(NamedMcpServer {
                name,
                config,
                source,
            });
        }
        Ok(loaded)
    }

    /// Adds a server; it replaces one of the same name unless it comes from the workspace
    /// and the other does not (and the project is not trusted).
    fn add_mcp_server(&mut self, server: NamedMcpServer) {
        let Some(existing) = self
            .mcp_servers
            .iter_mut()
            .find(|known| known.name == server.name)
        else {
            self.mcp_servers.push(server);
            return;
        };
        if server.source.is_project() && !existing.source.is_project() && !self.trust_project {
            log::warn!(
                "the workspace defines the MCP server '{}', which {} defines already; the \
                 workspace's is ignored",
                server.name,
                existing.source.describe(Path::new("/"))
            );
            return;
        }
        *existing = server;
    }

    /// The MCP server defined as `name`.
    pub fn mcp_server(&self, name: &str) -> Option<&NamedMcpServer> {
        self.mcp_servers.iter().find(|server| server.name == name)
    }

    /// The MCP servers defined by name, in load order.
    pub fn mcp_servers(&self) -> &[NamedMcpServer] {
        &self.mcp_servers
    }

    /// The servers a run of `spec` starts: its named ones looked up, its inline ones as
    /// they are.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a name no configuration
    /// defines, and for a server the workspace defined (its `.mcp.json`, or inline in one
    /// of its agent files) while the project is not trusted.
    pub fn resolve_mcp_servers(
        &self,
        spec: &SubagentSpec,
    ) -> Result<Vec<(String, ServerConfig)>, Error> {
        let refuse = |name: &str, place: String| {
            Error::config(format!(
                "the subagent type '{}' uses the MCP server '{name}' defined in {place}; \
                 starting it would run a command a repository chose, so it is refused. If \
                 you trust this repository, pass --trust-project-agents (or set \
                 SUBTASK_TRUST_PROJECT_AGENTS=1)",
                spec.name
            ))
        };
        spec.mcp_servers
            .iter()
            .map(|server| match server {
                McpServerRef::Named(name) => {
                    let Some(named) = self.mcp_server(name) else {
                        let known: Vec<&str> =
                            self.mcp_servers.iter().map(|s| s.name.as_str()).collect();
                        return Err(Error::config(format!(
                            "the subagent type '{}'{} uses the MCP server '{name}', which no \
                             configuration defines (the servers are: {}); add it to \
                             ~/.claude.json's `mcpServers`, or define it inline in the \
                             agent file",
                            spec.name,
                            spec.source_note(),
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        )));
                    };
                    if named.source.is_project() && !self.trust_project {
                        return Err(refuse(name, named.source.describe(Path::new("/"))));
                    }
                    Ok((name.clone(), named.config.clone()))
                }
                McpServerRef::Inline { name, config } => {
                    if !spec.trusted_to_run_commands(self.trust_project) {
                        return Err(refuse(name, spec.source.describe(Path::new("/"))));
                    }
                    Ok((name.clone(), config.clone()))
                }
            })
            .collect()
    }

    fn warn(&mut self, path: &Path, message: String) {
        log::warn!("{}: {message}", path.display());
        self.warnings.push(LoadProblem {
            path: path.to_path_buf(),
            message,
        });
    }

    /// Loads the user's own directories: `~/.claude/agents/` then
    /// `$XDG_CONFIG_HOME/subtask/agents/` (`~/.config/subtask/agents/`), which wins for a
    /// name both define. Directories that do not exist add nothing.
    ///
    /// # Errors
    ///
    /// As [`load_dir`](Self::load_dir).
    pub fn load_user_dirs(&mut self) -> Result<usize, Error> {
        let mut loaded = 0;
        for dir in user_agent_dirs() {
            loaded += self.load(&dir, false)?;
        }
        Ok(loaded)
    }

    /// Everything a host acting for the user loads, in precedence order: the user's MCP
    /// configurations ([`load_user_mcp_configs`](Self::load_user_mcp_configs)), the user's
    /// directories ([`load_user_dirs`](Self::load_user_dirs)), the workspace's
    /// ([`load_workspace`](Self::load_workspace)), then `dirs` (named in code, on the
    /// command line or in a configuration; the last wins).
    ///
    /// # Errors
    ///
    /// As [`load_dir`](Self::load_dir).
    pub fn load_all(
        &mut self,
        workspace: &Workspace,
        dirs: impl IntoIterator<Item = impl AsRef<Path>>,
    ) -> Result<usize, Error> {
        self.load_user_mcp_configs();
        let mut loaded = self.load_user_dirs()? + self.load_workspace(workspace)?;
        for dir in dirs {
            loaded += self.load_dir(dir)?;
        }
        Ok(loaded)
    }

    fn load(&mut self, dir: &Path, project: bool) -> Result<usize, Error> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(error) => {
                return Err(Error::config(format!(
                    "cannot read the subagent directory {}: {error}",
                    dir.display()
                )));
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
            .collect();
        files.sort();
        let mut loaded = 0;
        for file in files {
            let trust_project = self.trust_project;
            let trusted = !project || trust_project;
            let parsed = markdown::parse_file(&file, project, trusted).and_then(|mut parsed| {
                let inline: Vec<&str> = parsed
                    .spec
                    .mcp_servers
                    .iter()
                    .filter(|server| matches!(server, McpServerRef::Inline { .. }))
                    .map(McpServerRef::name)
                    .collect();
                if !inline.is_empty() && !parsed.spec.trusted_to_run_commands(trust_project) {
                    parsed.warnings.push(format!(
                        "field `mcpServers`: the servers {} run commands this repository \
                         chose, so they start only if you trust it (--trust-project-agents \
                         or SUBTASK_TRUST_PROJECT_AGENTS=1); until then a run of '{}' is \
                         refused",
                        inline.join(", "),
                        parsed.spec.name
                    ));
                }
                self.register(parsed.spec)?;
                Ok(parsed.warnings)
            });
            match parsed {
                Ok(warnings) => {
                    loaded += 1;
                    for message in warnings {
                        log::warn!("{}: {message}", file.display());
                        self.warnings.push(LoadProblem {
                            path: file.clone(),
                            message,
                        });
                    }
                }
                Err(error) => {
                    log::warn!("subagent type not loaded: {error}");
                    self.problems.push(LoadProblem {
                        path: file,
                        message: error.message().to_string(),
                    });
                }
            }
        }
        Ok(loaded)
    }

    /// The files the loads so far set aside, and why.
    pub fn problems(&self) -> &[LoadProblem] {
        &self.problems
    }

    /// What the loads so far accepted but ignored or left out (unknown fields, tools
    /// subtask does not have), by file.
    pub fn warnings(&self) -> &[LoadProblem] {
        &self.warnings
    }

    /// The type called `name`.
    pub fn get(&self, name: &str) -> Option<&SubagentSpec> {
        self.specs.iter().find(|spec| spec.name == name)
    }

    /// The types' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.specs.iter().map(|spec| spec.name.as_str()).collect()
    }

    /// The types in order.
    pub fn iter(&self) -> impl Iterator<Item = &SubagentSpec> {
        self.specs.iter()
    }
}
