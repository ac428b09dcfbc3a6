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
            trust_project: false,
        }
    }

    /// No types at all.
    pub fn empty() -> SubagentRegistry {
        SubagentRegistry {
            specs: Vec::new(),
            problems: Vec::new(),
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
        let replaces = match (&existing.source, &spec.source) {
            (SpecSource::BuiltIn, SpecSource::Project(_)) => self.trust_project,
            (SpecSource::BuiltIn, _) => true,
            (SpecSource::Project(_), SpecSource::Project(_)) => false,
            (SpecSource::Project(_), _) => true,
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

    /// Loads the workspace's `.subtask/agents/` as untrusted project types (see the type's
    /// docs for what they may not replace).
    ///
    /// # Errors
    ///
    /// As [`load_dir`](Self::load_dir).
    pub fn load_workspace(&mut self, workspace: &Workspace) -> Result<usize, Error> {
        self.load(&workspace.root().join(AGENTS_DIR), true)
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
            match markdown::parse_file(&file, project).and_then(|spec| self.register(spec)) {
                Ok(()) => loaded += 1,
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
