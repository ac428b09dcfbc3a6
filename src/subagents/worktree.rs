//! `isolation: worktree`: a run that works in a fresh `git worktree` of the workspace's
//! repository, on a branch of its own, so several writing runs can go at once without
//! sharing files.
//!
//! Lifecycle (all on the run's own execution thread, with the real `git`):
//!
//! 1. [`Worktree::create`]: `git worktree add -b subtask/<run id> <dir> HEAD`, the directory in
//!    the per-user state directory (`$XDG_STATE_HOME/subtask/worktrees/<workspace key>/<run
//!    id>`), outside the workspace. The run's workspace is the same sub-directory of the
//!    worktree as the workspace is of the repository. It starts from the last commit:
//!    uncommitted changes of the workspace are not in it.
//! 2. The run works there.
//! 3. [`Worktree::finish`]: whatever the run changed is committed on its branch (`subtask`
//!    as author, hooks off); if it changed nothing, the worktree and branch are removed,
//!    else both are kept and named in the run's footer ([`KeptWorktree`]), for the user to
//!    review and merge (`git merge subtask/<run id>`, then `git worktree remove <dir>`).
//!
//! A repository is untrusted input: its `.git/config` may name commands that git runs by
//! itself (an fsmonitor, hooks, filter drivers that run on checkout). Every git command runs
//! with hooks and fsmonitor off, and a repository whose own config defines a filter driver,
//! an external diff or other commands is refused rather than checked out.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use parking_lot::Mutex;
use serde::Serialize;

use crate::error::Error;
use crate::tools::Workspace;
use crate::transcript;

/// A worktree a run changed, kept for the user: where it is and the branch with the run's
/// commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeptWorktree {
    /// The worktree's directory.
    pub path: PathBuf,
    /// Its branch (`subtask/<run id>`), holding the run's changes as one commit.
    pub branch: String,
}

/// Serialises the changes git makes to a repository's worktree list and branches, which
/// take locks of their own that concurrent `git worktree add`s would trip over. Held only
/// around those `git` commands, never around a run.
static GIT_METADATA: Mutex<()> = Mutex::new(());

/// Configuration keys of a repository that make git run a command on checkout, status or
/// diff; a repository defining any of them (lowercased prefixes and suffixes) is refused.
const COMMAND_KEYS: &[(&str, &str)] = &[
    ("filter.", ".smudge"),
    ("filter.", ".clean"),
    ("filter.", ".process"),
    ("diff.", ".command"),
    ("diff.", ".textconv"),
    ("core.", "fsmonitor"),
    ("core.", "hookspath"),
    ("core.", "sshcommand"),
    ("core.", "pager"),
    ("core.", "editor"),
    ("include", "path"),
    ("includeif.", ".path"),
];

/// A run's worktree while it works.
#[derive(Debug)]
pub(crate) struct Worktree {
    repository: PathBuf,
    path: PathBuf,
    branch: String,
    workspace: Workspace,
    /// Set by [`finish`](Self::finish); a worktree dropped unfinished (the run never
    /// started: a hook vetoed it, its model could not be built) is cleaned up on drop.
    finished: bool,
}

impl Worktree {
    /// Makes a worktree of `workspace`'s repository for run `run_id`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the workspace is not in a git
    /// repository, the repository's config names commands, or git fails (its message
    /// included).
    pub(crate) fn create(workspace: &Workspace, run_id: &str) -> Result<Worktree, Error> {
        let root = workspace.root();
        let top = git(root, &["rev-parse", "--show-toplevel"]).map_err(|error| {
            Error::config(format!(
                "isolation: worktree needs the workspace {} to be in a git repository with a \
                 commit ({})",
                root.display(),
                error.message()
            ))
        })?;
        let repository = PathBuf::from(top.trim());
        refuse_commands(&repository)?;
        let inside = root.strip_prefix(&repository).unwrap_or(Path::new(""));
        let path = transcript::state_dir()?
            .join("subtask/worktrees")
            .join(transcript::workspace_key(&repository))
            .join(run_id);
        let branch = format!("subtask/{run_id}");
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .create(parent)
                .map_err(|error| {
                    Error::from(error).with_context(format!("cannot create {}", parent.display()))
                })?;
        }
        {
            let _metadata = GIT_METADATA.lock();
            git(
                &repository,
                &[
                    "worktree",
                    "add",
                    "--quiet",
                    "-b",
                    &branch,
                    &path.to_string_lossy(),
                    "HEAD",
                ],
            )
            .map_err(|error| {
                Error::config(format!(
                    "isolation: worktree: cannot make a worktree of {}: {}",
                    repository.display(),
                    error.message()
                ))
            })?;
        }
        let isolated = Worktree {
            workspace: Workspace::new(path.join(inside))?,
            repository,
            path,
            branch,
            finished: false,
        };
        Ok(isolated)
    }

    /// Where the run works.
    pub(crate) fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// Commits what the run changed on its branch and keeps the worktree, or removes both
    /// when it changed nothing.
    ///
    /// # Errors
    ///
    /// When git fails; the worktree is then kept (and named in the error) so nothing is lost.
    pub(crate) fn finish(mut self, message: &str) -> Result<Option<KeptWorktree>, Error> {
        self.finished = true;
        self.close(message)
    }

    fn close(&self, message: &str) -> Result<Option<KeptWorktree>, Error> {
        let kept = || {
            format!(
                "the run's worktree is kept at {} (branch {})",
                self.path.display(),
                self.branch
            )
        };
        git(&self.path, &["add", "--all"]).map_err(|error| error.with_context(kept()))?;
        let staged = git(&self.path, &["diff", "--cached", "--name-only"])
            .map_err(|error| error.with_context(kept()))?;
        if staged.trim().is_empty() {
            let _metadata = GIT_METADATA.lock();
            git(
                &self.repository,
                &[
                    "worktree",
                    "remove",
                    "--force",
                    &self.path.to_string_lossy(),
                ],
            )
            .map_err(|error| error.with_context(kept()))?;
            git(&self.repository, &["branch", "-D", "--quiet", &self.branch])
                .map_err(|error| error.with_context(kept()))?;
            return Ok(None);
        }
        git(
            &self.path,
            &[
                "-c",
                "user.name=subtask",
                "-c",
                "user.email=subtask@localhost",
                "commit",
                "--quiet",
                "--no-verify",
                "-m",
                message,
            ],
        )
        .map_err(|error| error.with_context(kept()))?;
        Ok(Some(KeptWorktree {
            path: self.path.clone(),
            branch: self.branch.clone(),
        }))
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        if !self.finished
            && let Err(error) = self.close("subtask: a run that did not start")
        {
            log::warn!("{error}");
        }
    }
}

/// Refuses a repository whose own config names a command git would run.
fn refuse_commands(repository: &Path) -> Result<(), Error> {
    // Reading config runs nothing. `--local`: the user's own global config is theirs.
    let listed =
        git(repository, &["config", "--local", "--name-only", "--list"]).unwrap_or_default();
    let risky: Vec<&str> = listed
        .lines()
        .filter(|key| {
            let key = key.to_ascii_lowercase();
            COMMAND_KEYS
                .iter()
                .any(|(prefix, suffix)| key.starts_with(prefix) && key.ends_with(suffix))
        })
        .collect();
    if risky.is_empty() {
        return Ok(());
    }
    Err(Error::config(format!(
        "isolation: worktree: the repository's .git/config sets {}, which would make git run \
         a command while subtask makes the worktree; remove the setting, or run this type \
         without isolation",
        risky.join(", ")
    )))
}

/// Runs `git <args>` in `dir` with hooks and fsmonitor off and no prompts; its stdout, or an
/// error with its stderr.
fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    let output: Output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.fsmonitor=false",
        ])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| Error::config(format!("git could not be run: {error}")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::config(format!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
