//! `ls` and `glob`: what is in a directory, and which files match a pattern.
//!
//! `ls` reads the directory it opened beneath the workspace root (through
//! [`Workspace`](super::Workspace)) by descriptor; `glob` opens its start directory the same
//! way, walks by name, and lists a match only after opening it beneath the root (so a
//! directory swapped for a symlink mid-walk cannot make it list files outside). Every path
//! in a result is relative to the workspace root.

use std::cmp::Reverse;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::SystemTime;

use rustix::fs::{AtFlags, Dir, FileType};
use serde_json::{Value, json};

use super::fs::{
    bytes_human, glob_matcher, io_tool, optional_str, required_str, thousands, walker,
};
use super::{Tool, ToolContext};
use crate::error::Error;

/// Lists one directory level: directories first (with a trailing `/`), then files with
/// their sizes, each group sorted by name; hidden entries included; at most 1,000 entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct LsTool;

impl LsTool {
    /// The most entries listed: 1,000.
    pub const MAX_ENTRIES: usize = 1_000;

    /// The tool.
    pub fn new() -> LsTool {
        LsTool
    }
}

impl Tool for LsTool {
    fn name(&self) -> &str {
        "ls"
    }

    fn description(&self) -> &str {
        "Lists the entries of one directory (not recursive): subdirectories first with a \
         trailing `/`, then files with their sizes, each sorted by name; hidden entries are \
         included and symlinks are shown as `name -> target`. `path` is relative to the \
         workspace root and defaults to the root. At most 1,000 entries are listed. To find \
         files by name across directories use glob; to search contents use grep."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "The directory to list, relative to the workspace root; defaults to the root."
                }
            },
            "additionalProperties": false
        })
    }

    fn read_only(&self) -> bool {
        true
    }

    fn call(&self, input: &Value, context: &ToolContext<'_>) -> Result<String, Error> {
        let workspace = context.workspace();
        let opened = workspace.open_read(optional_str(input, "path")?.unwrap_or("."))?;
        let shown = opened.shown;
        if !opened.metadata.is_dir() {
            return Err(Error::tool(format!(
                "'{shown}' is a file, not a directory; use read to see its content"
            )));
        }
        let directory = OwnedFd::from(opened.file);
        let mut directories = Vec::new();
        let mut files = Vec::new();
        let mut entries =
            Dir::read_from(&directory).map_err(|error| io_tool("list", &shown, &error.into()))?;
        while let Some(entry) = entries.read() {
            if (files.len() + directories.len()).is_multiple_of(4096) {
                context.token().check()?;
            }
            let entry = entry.map_err(|error| io_tool("list", &shown, &error.into()))?;
            let name_bytes = entry.file_name().to_bytes();
            if name_bytes == b"." || name_bytes == b".." {
                continue;
            }
            let name = String::from_utf8_lossy(name_bytes).into_owned();
            // Each entry is looked at through the directory's descriptor, never by path.
            let Ok(stat) =
                rustix::fs::statat(&directory, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
            else {
                files.push((name, String::new()));
                continue;
            };
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => directories.push(format!("{name}/")),
                FileType::Symlink => {
                    let target = rustix::fs::readlinkat(&directory, entry.file_name(), Vec::new())
                        .map(|target| target.to_string_lossy().into_owned())
                        .unwrap_or_else(|_| "?".to_string());
                    files.push((name, format!(" -> {target}")));
                }
                FileType::RegularFile => files.push((
                    name,
                    format!("  ({})", bytes_human(stat.st_size.max(0) as u64)),
                )),
                FileType::Fifo => files.push((name, "  (named pipe)".to_string())),
                FileType::Socket => files.push((name, "  (socket)".to_string())),
                FileType::CharacterDevice | FileType::BlockDevice => {
                    files.push((name, "  (device)".to_string()))
                }
                FileType::Unknown => files.push((name, String::new())),
            }
        }
        directories.sort();
        files.sort();
        let total = directories.len() + files.len();
        if total == 0 {
            return Ok(format!("'{shown}' is empty"));
        }
        let mut text = format!(
            "{}/ ({} directories, {} files)\n",
            shown,
            thousands(directories.len() as u64),
            thousands(files.len() as u64)
        );
        let listed = directories
            .into_iter()
            .chain(files.into_iter().map(|(name, detail)| name + &detail))
            .take(Self::MAX_ENTRIES);
        for entry in listed {
            text.push_str(&entry);
            text.push('\n');
        }
        if total > Self::MAX_ENTRIES {
            text.push_str(&format!(
                "[... {} more entries not listed; use glob to find specific names]\n",
                thousands((total - Self::MAX_ENTRIES) as u64)
            ));
        }
        Ok(text)
    }
}

/// Finds files whose path matches a glob pattern, newest first.
///
/// Walks with the `ignore` crate: `.gitignore`, `.ignore` and git exclude files are
/// honoured even outside a git repository (`require_git(false)`), `.git` is skipped, hidden
/// files are included, symlinks are not followed. At most 1,000 paths are returned.
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobTool;

impl GlobTool {
    /// The most paths returned: 1,000.
    pub const MAX_RESULTS: usize = 1_000;

    /// The tool.
    pub fn new() -> GlobTool {
        GlobTool
    }
}

impl Tool for GlobTool {
    fn name(&self) -> &str {
        "glob"
    }

    fn description(&self) -> &str {
        "Finds files by name pattern and returns their paths (relative to the workspace root), \
         most recently modified first. The pattern is matched against each file's path \
         relative to `path` (default: the workspace root): `*` and `?` stay within one \
         directory, `**` crosses directories, `{a,b}` and `[abc]` work. Examples: `**/*.rs` \
         (every Rust file), `src/*.toml`, `**/test_*.py`, `**/{Cargo,package}.*`. Files \
         ignored by .gitignore and the .git directory are skipped; hidden files are \
         included. At most 1,000 paths are returned. To search file contents use grep."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "pattern": {
                    "type": "string",
                    "description": "The glob, relative to `path`, e.g. `**/*.rs` or `src/*.toml`."
                },
                "path": {
                    "type": "string",
                    "description": "The directory to search, relative to the workspace root; defaults to the root."
                }
            },
            "required": ["pattern"],
            "additionalProperties": false
        })
    }

    fn read_only(&self) -> bool {
        true
    }

    fn call(&self, input: &Value, context: &ToolContext<'_>) -> Result<String, Error> {
        let workspace = context.workspace();
        let pattern = required_str(input, "pattern")?;
        let opened = workspace.open_read(optional_str(input, "path")?.unwrap_or("."))?;
        let (directory, shown) = (opened.path, opened.shown);
        if !opened.metadata.is_dir() {
            return Err(Error::tool(format!(
                "'{shown}' is a file, not a directory; give the directory to search in `path`"
            )));
        }
        if pattern.starts_with('/') {
            return Err(Error::tool(format!(
                "the pattern `{pattern}` is absolute; give a pattern relative to `path` (which \
                 defaults to the workspace root), e.g. `**/*.rs`"
            )));
        }
        let trimmed = pattern.trim_start_matches("./");
        let matcher = glob_matcher(trimmed)?;
        let token = context.token();
        let mut found: Vec<(SystemTime, PathBuf)> = Vec::new();
        for (index, entry) in walker(&directory).enumerate() {
            if index.is_multiple_of(256) {
                token.check()?;
            }
            let Ok(entry) = entry else { continue };
            if !entry.file_type().is_some_and(|kind| kind.is_file()) {
                continue;
            }
            let Ok(relative) = entry.path().strip_prefix(&directory) else {
                continue;
            };
            if matcher.is_match(relative) {
                // Listed only if it is a regular file beneath the root now: a walk led
                // outside by a directory swapped for a symlink finds nothing to list.
                let Some(metadata) = workspace.stat_walked(entry.path()) else {
                    continue;
                };
                let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                found.push((modified, entry.into_path()));
            }
        }
        if found.is_empty() {
            return Ok(format!("no files match `{pattern}` under '{shown}'"));
        }
        found.sort_by(|a, b| (Reverse(a.0), &a.1).cmp(&(Reverse(b.0), &b.1)));
        let total = found.len();
        let mut text = String::new();
        for (_, path) in found.iter().take(Self::MAX_RESULTS) {
            text.push_str(&workspace.relative(path));
            text.push('\n');
        }
        if total > Self::MAX_RESULTS {
            text.push_str(&format!(
                "[... {} more files not listed; narrow the pattern or the path]\n",
                thousands((total - Self::MAX_RESULTS) as u64)
            ));
        }
        Ok(text)
    }
}
