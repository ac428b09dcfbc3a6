//! Paths `write` and `edit` refuse by default: files that make git, an editor, a shell or
//! an agent run commands or change their rules without anyone running the project's code.

use std::fmt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::Workspace;
use crate::error::Error;

/// Why each rule of [`Workspace::DEFAULT_PROTECTED_PATHS`](super::Workspace) is there
/// (shown to the model when it is refused).
///
/// Left out on purpose, with why: `.gitattributes` (a filter driver it names only runs if
/// `.git/config` defines its command, and `.git` is protected), `.gitmodules` (git ignores
/// `update = !command` from it), `.pre-commit-config.yaml`, `Makefile`, `build.rs`,
/// `package.json` and the like (they run only when someone runs the project's own code, as
/// any source file does), `CLAUDE.md`/`AGENTS.md` (instructions, not code; agents edit them
/// routinely).
const REASONS: &[(&str, &str)] = &[
    (
        "**/.git",
        "git's config, hooks and gitdir pointers can run commands (core.fsmonitor, \
         core.hooksPath, hooks)",
    ),
    (
        "**/.subtask",
        "subtask's own agent definitions and transcripts",
    ),
    ("**/.claude", "Claude Code's settings, hooks and agents"),
    (
        "**/.mcp.json",
        "project MCP servers are commands an agent host starts",
    ),
    (
        "**/.envrc",
        "direnv runs it when a shell enters the directory",
    ),
    (
        "**/.vscode",
        "editor settings and tasks can run commands when the folder is opened",
    ),
    (
        "**/.idea",
        "editor settings and run configurations can run commands",
    ),
    ("**/.husky", "git hooks installed through core.hooksPath"),
    ("**/.exrc", "vim runs it on start in this directory"),
    ("**/.nvimrc", "neovim runs it on start in this directory"),
    ("**/.nvim.lua", "neovim runs it on start in this directory"),
    ("**/.bashrc", "a shell start-up file"),
    ("**/.bash_profile", "a shell start-up file"),
    ("**/.bash_login", "a shell start-up file"),
    ("**/.bash_logout", "a shell start-up file"),
    ("**/.profile", "a shell start-up file"),
    ("**/.zshrc", "a shell start-up file"),
    ("**/.zshenv", "a shell start-up file"),
    ("**/.zprofile", "a shell start-up file"),
    ("**/.zlogin", "a shell start-up file"),
];

/// Which writes a workspace refuses: glob rules matched, case-insensitively, against the
/// path relative to the workspace root and against each of its parent directories (so a
/// rule naming a directory covers everything beneath it).
#[derive(Clone)]
pub(crate) struct Protection {
    rules: Vec<String>,
    set: GlobSet,
    /// Writes to protected paths are allowed after all (the user's choice).
    allowed: bool,
}

impl Protection {
    /// The default rules.
    pub(crate) fn default_rules() -> Protection {
        Protection::new(
            Workspace::DEFAULT_PROTECTED_PATHS
                .iter()
                .map(|rule| rule.to_string()),
        )
        .expect("the default protected path rules are valid globs")
    }

    /// `rules` as given (each a glob such as `**/.git` or `secrets/**`).
    pub(crate) fn new(rules: impl IntoIterator<Item = String>) -> Result<Protection, Error> {
        let rules: Vec<String> = rules.into_iter().collect();
        let mut set = GlobSetBuilder::new();
        for rule in &rules {
            let glob = GlobBuilder::new(rule.trim_start_matches("./"))
                .literal_separator(true)
                .case_insensitive(true)
                .build()
                .map_err(|error| {
                    Error::config(format!(
                        "the protected path rule `{rule}` is not a valid glob: {error}"
                    ))
                })?;
            set.add(glob);
        }
        let set = set.build().map_err(|error| {
            Error::config(format!("the protected path rules cannot be used: {error}"))
        })?;
        Ok(Protection {
            rules,
            set,
            allowed: false,
        })
    }

    pub(crate) fn rules(&self) -> &[String] {
        &self.rules
    }

    pub(crate) fn allowed(&self) -> bool {
        self.allowed
    }

    pub(crate) fn allow(&mut self, allowed: bool) {
        self.allowed = allowed;
    }

    /// The first rule that protects `relative` (relative to the top workspace root), with
    /// the reason when it is a default rule; `None` when writes there are fine.
    pub(crate) fn rule_for(&self, relative: &Path) -> Option<(&str, &'static str)> {
        if self.allowed {
            return None;
        }
        let mut prefix = PathBuf::new();
        for component in relative.components() {
            prefix.push(component);
            if let Some(index) = self.set.matches(&prefix).into_iter().min() {
                let rule = self.rules[index].as_str();
                let why = REASONS
                    .iter()
                    .find(|(default, _)| *default == rule)
                    .map_or("a path the user protected", |(_, why)| why);
                return Some((rule, why));
            }
        }
        None
    }
}

impl fmt::Debug for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protection")
            .field("rules", &self.rules)
            .field("allowed", &self.allowed)
            .finish()
    }
}

impl PartialEq for Protection {
    fn eq(&self, other: &Protection) -> bool {
        self.rules == other.rules && self.allowed == other.allowed
    }
}

impl Eq for Protection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_cover_paths_beneath_them_anywhere_and_in_any_case() {
        let protection = Protection::default_rules();
        for (path, rule) in [
            (".git", "**/.git"),
            (".git/config", "**/.git"),
            (".git/hooks/pre-commit", "**/.git"),
            ("vendor/lib/.git/config", "**/.git"),
            (".GIT/config", "**/.git"),
            (".subtask/agents/x.md", "**/.subtask"),
            (".claude/settings.json", "**/.claude"),
            (".envrc", "**/.envrc"),
            ("sub/.envrc", "**/.envrc"),
            (".vscode/tasks.json", "**/.vscode"),
            (".idea/workspace.xml", "**/.idea"),
            (".mcp.json", "**/.mcp.json"),
            (".bashrc", "**/.bashrc"),
        ] {
            assert_eq!(
                protection.rule_for(Path::new(path)).map(|(rule, _)| rule),
                Some(rule),
                "{path}"
            );
        }
        for free in [
            "src/lib.rs",
            ".gitignore",
            ".gitattributes",
            ".gitmodules",
            "git/config",
            "docs/.github/x",
            "my.envrc.txt",
        ] {
            assert_eq!(protection.rule_for(Path::new(free)), None, "{free}");
        }
    }

    #[test]
    fn every_default_rule_says_why() {
        let reasons: Vec<&str> = REASONS.iter().map(|(rule, _)| *rule).collect();
        assert_eq!(reasons, Workspace::DEFAULT_PROTECTED_PATHS);
    }

    #[test]
    fn rules_are_configurable_and_can_be_turned_off() {
        let mut protection = Protection::new(["secrets/**".to_string()]).unwrap();
        assert_eq!(
            protection.rule_for(Path::new("secrets/key.pem")),
            Some(("secrets/**", "a path the user protected"))
        );
        assert_eq!(protection.rule_for(Path::new(".git/config")), None);
        protection.allow(true);
        assert_eq!(protection.rule_for(Path::new("secrets/key.pem")), None);
        let error = Protection::new(["[".to_string()]).unwrap_err();
        assert!(error.to_string().contains("`[`"), "{error}");
    }
}
