//! `write` and `edit`: the tools that change files.
//!
//! Both open beneath the workspace root through [`Workspace`](super::Workspace), write atomically (a temporary
//! file renamed over the target), and refuse protected paths, special files and files with
//! more than one hard link; every path in a result is relative to the workspace root.

use std::io::Read;

use serde_json::{Value, json};

use super::fs::{bytes_human, io_tool, optional_bool, required_str, thousands};
use super::workspace::check_single_link;
use super::{Tool, ToolContext};
use crate::error::Error;

/// Writes a whole file, creating it and its parent directories if needed.
///
/// The file is replaced atomically (a temporary file in the same directory, renamed over
/// it), keeping its permission bits. Refused: [protected
/// paths](super::Workspace::DEFAULT_PROTECTED_PATHS), directories, FIFOs and other special files,
/// and files with more than one hard link.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteTool;

impl WriteTool {
    /// The tool.
    pub fn new() -> WriteTool {
        WriteTool
    }
}

impl Tool for WriteTool {
    fn name(&self) -> &str {
        "write"
    }

    fn description(&self) -> &str {
        "Writes `content` to a file, replacing everything in it, and creates the file and its \
         parent directories if they do not exist. Use it for new files or complete rewrites; \
         to change part of an existing file use edit, which is safer. `path` is relative to \
         the workspace root. Protected paths (.git, .subtask, .claude, editor and shell hook \
         files) and files with more than one hard link are refused. The result says whether \
         the file was created or replaced and how many bytes and lines were written."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "The file to write, relative to the workspace root."
                },
                "content": {
                    "type": "string",
                    "description": "The complete new content of the file."
                }
            },
            "required": ["path", "content"],
            "additionalProperties": false
        })
    }

    fn call(&self, input: &Value, context: &ToolContext<'_>) -> Result<String, Error> {
        let workspace = context.workspace();
        let path = required_str(input, "path")?;
        let content = required_str(input, "content")?;
        context.token().check()?;
        let written = workspace.write_file(path, content.as_bytes())?;
        Ok(format!(
            "{} '{}' ({} bytes, {} lines)",
            if written.created {
                "created"
            } else {
                "replaced"
            },
            written.shown,
            thousands(content.len() as u64),
            thousands(content.lines().count() as u64)
        ))
    }
}

/// Replaces an exact string in a file: once (it must occur exactly once) or everywhere.
///
/// Files over [`MAX_FILE_BYTES`](Self::MAX_FILE_BYTES) (10 MiB) are refused without being
/// read, and so is an edit whose result would be larger; otherwise it refuses and writes as
/// [`WriteTool`] does.
#[derive(Debug, Clone, Copy, Default)]
pub struct EditTool;

impl EditTool {
    /// The largest file edit reads or writes: 10 MiB.
    pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

    /// The tool.
    pub fn new() -> EditTool {
        EditTool
    }
}

impl Tool for EditTool {
    fn name(&self) -> &str {
        "edit"
    }

    fn description(&self) -> &str {
        "Edits a text file by exact string replacement: `old_string` is replaced with \
         `new_string`. `old_string` must match the file exactly, whitespace and indentation \
         included (copy it from read's output without the line-number prefix), and must occur \
         exactly once unless `replace_all` is true; if it occurs more than once, add \
         surrounding lines to make it unique. To delete text, use an empty `new_string`. To \
         create a file or rewrite it whole, use write. Files over 10 MiB, files with more \
         than one hard link and protected paths (.git, .subtask, .claude, editor and shell \
         hook files) are refused. The result says how many replacements were made."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "The file to edit, relative to the workspace root."
                },
                "old_string": {
                    "type": "string",
                    "description": "The exact text to replace; not empty."
                },
                "new_string": {
                    "type": "string",
                    "description": "The text to put in its place; must differ from old_string."
                },
                "replace_all": {
                    "type": "boolean",
                    "description": "Replace every occurrence instead of exactly one; defaults to false."
                }
            },
            "required": ["path", "old_string", "new_string"],
            "additionalProperties": false
        })
    }

    fn call(&self, input: &Value, context: &ToolContext<'_>) -> Result<String, Error> {
        let workspace = context.workspace();
        let path = required_str(input, "path")?;
        let old = required_str(input, "old_string")?;
        let new = required_str(input, "new_string")?;
        let replace_all = optional_bool(input, "replace_all")?.unwrap_or(false);
        if old.is_empty() {
            return Err(Error::tool(
                "old_string is empty; give the exact text to replace (to create or rewrite a \
                 whole file, use write)",
            ));
        }
        if old == new {
            return Err(Error::tool(
                "old_string and new_string are the same, so nothing would change",
            ));
        }
        context.token().check()?;
        workspace.check_writable(path)?;
        let opened = workspace.open_read(path)?;
        let shown = opened.shown;
        if opened.metadata.is_dir() {
            return Err(Error::tool(format!(
                "'{shown}' is a directory; give the path of a file"
            )));
        }
        check_single_link(&opened.metadata, &shown)?;
        let too_large = || {
            Error::tool(format!(
                "'{shown}' is larger than the {} edit works on; change it with bash (e.g. \
                 sed) or split the file",
                bytes_human(EditTool::MAX_FILE_BYTES)
            ))
        };
        if opened.metadata.len() > EditTool::MAX_FILE_BYTES {
            return Err(too_large());
        }
        let mut bytes = Vec::with_capacity(opened.metadata.len() as usize);
        opened
            .file
            .take(EditTool::MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| io_tool("read", &shown, &error))?;
        if bytes.len() as u64 > EditTool::MAX_FILE_BYTES {
            return Err(too_large()); // it grew while being read
        }
        let content = String::from_utf8(bytes).map_err(|_| {
            Error::tool(format!(
                "'{shown}' is not valid UTF-8 text; edit only text files"
            ))
        })?;
        let matches = content.matches(old).count();
        if matches == 0 {
            let mut message = format!("old_string was not found in '{shown}': {}", snippet(old));
            if old.contains('\n') && !old.contains("\r\n") && content.contains("\r\n") {
                message.push_str("; the file has Windows line endings (\\r\\n)");
            } else if old.trim() != old && content.contains(old.trim()) {
                message.push_str("; it is there with different leading or trailing whitespace");
            }
            message.push_str(". Read the file and copy the text exactly, whitespace included");
            return Err(Error::tool(message));
        }
        if matches > 1 && !replace_all {
            return Err(Error::tool(format!(
                "old_string occurs {matches} times in '{shown}'; add surrounding lines to make it \
                 unique, or set replace_all to true to replace every occurrence"
            )));
        }
        let replaced = if replace_all { matches } else { 1 };
        let edited_length = (content.len() - replaced * old.len()) as u64
            + (replaced as u64).saturating_mul(new.len() as u64);
        if edited_length > EditTool::MAX_FILE_BYTES {
            return Err(Error::tool(format!(
                "the edit would make '{shown}' {}, more than the {} edit may write; replace \
                 fewer occurrences or use write",
                bytes_human(edited_length),
                bytes_human(EditTool::MAX_FILE_BYTES)
            )));
        }
        let edited = if replace_all {
            content.replace(old, new)
        } else {
            content.replacen(old, new, 1)
        };
        workspace.write_file(path, edited.as_bytes())?;
        Ok(format!(
            "edited '{shown}': {matches} replacement{}",
            if matches == 1 { "" } else { "s" }
        ))
    }
}

/// A short quote of `text` for an error message.
fn snippet(text: &str) -> String {
    const MAX: usize = 80;
    let mut quoted: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        quoted.push('…');
    }
    format!("{quoted:?}")
}
