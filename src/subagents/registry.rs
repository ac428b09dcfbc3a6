//! [`SubagentRegistry`]: the subagent types available.

use std::path::{Path, PathBuf};

use super::{AGENTS_DIR, SpecSource, SubagentSpec, builtin, markdown};
use crate::error::Error;
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
    /// Whether workspace files may replace built-in, code and user types.
    trust_project: bool,
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
        }
    }

    /// No types at all.
    pub fn empty() -> SubagentRegistry {
        SubagentRegistry {
            specs: Vec::new(),
            problems: Vec::new(),
            warnings: Vec::new(),
            trust_project: false,
        }
    }

    /// Lets the workspace's files replace built-in, code and user types of the same name
    /// (loads after this call). Only for repositories you trust: a file can give a type
    /// every tool and another model. Defaults to `false`; the CLI's
    /// `--trust-project-agents` and `SUBTASK_TRUST_PROJECT_AGENTS=1` set it.
    pub fn trust_project(mut self, trust: bool) -> SubagentRegistry {
        self.trust_project = trust;
        self
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
        Ok(loaded)
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

    /// Everything a host acting for the user loads, in precedence order: the user's
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
            let trusted = !project || self.trust_project;
            let parsed = markdown::parse_file(&file, project, trusted).and_then(|parsed| {
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
