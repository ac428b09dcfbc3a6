//! [`SubagentRegistry`]: the subagent types available.

use std::path::{Path, PathBuf};

use super::{AGENTS_DIR, SpecSource, SubagentSpec, builtin, markdown};
use crate::error::Error;
use crate::tools::Workspace;

/// The subagent types available, in a stable order.
#[derive(Debug, Clone, PartialEq)]
pub struct SubagentRegistry {
    specs: Vec<SubagentSpec>,
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
        }
    }

    /// No types at all.
    pub fn empty() -> SubagentRegistry {
        SubagentRegistry { specs: Vec::new() }
    }

    /// Adds a type. A custom type may replace a built-in one of the same name (logged).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if another custom type already has that name.
    pub fn register(&mut self, spec: SubagentSpec) -> Result<(), Error> {
        if let Some(existing) = self.specs.iter_mut().find(|known| known.name == spec.name) {
            if existing.source != SpecSource::BuiltIn {
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
                "the subagent type '{}'{} replaces the built-in one",
                spec.name,
                spec.source_note()
            );
            *existing = spec;
            return Ok(());
        }
        self.specs.push(spec);
        Ok(())
    }

    /// Loads every `*.md` file of `dir` (sorted by name); a missing directory adds nothing.
    /// Returns how many types were loaded.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the file and the field for the first broken file (no
    /// type is silently dropped); the registry is then left as it was.
    pub fn load_dir(&mut self, dir: impl AsRef<Path>) -> Result<usize, Error> {
        let dir = dir.as_ref();
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
            .filter(|path| path.extension().is_some_and(|ext| ext == "md") && path.is_file())
            .collect();
        files.sort();
        // All or nothing: a broken file leaves the registry as it was.
        let mut loaded = self.clone();
        for file in &files {
            loaded.register(markdown::parse_file(file)?)?;
        }
        *self = loaded;
        Ok(files.len())
    }

    /// Loads `.subtask/agents/` of the workspace.
    ///
    /// # Errors
    ///
    /// As [`load_dir`](Self::load_dir).
    pub fn load_workspace(&mut self, workspace: &Workspace) -> Result<usize, Error> {
        self.load_dir(workspace.root().join(AGENTS_DIR))
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
