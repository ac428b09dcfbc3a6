//! `write` and `edit`: the tools that change files.
//!
//! Every path argument goes through [`Workspace::resolve`](super::Workspace::resolve), and
//! every path in a result is relative to the workspace root.

use std::fs::{self};

use serde_json::{Value, json};

use super::fs::{io_tool, optional_bool, required_str, stat, thousands};
use super::{Tool, ToolContext};
use crate::error::Error;

/// Writes a whole file, creating it and its parent directories if needed.
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
         the workspace root. The result says whether the file was created or replaced and \
         how many bytes and lines were written."
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
        let path = workspace.resolve(required_str(input, "path")?)?;
        let content = required_str(input, "content")?;
        let shown = workspace.relative(&path);
        context.token().check()?;
        let existed = match fs::metadata(&path) {
            Ok(metadata) if metadata.is_dir() => {
                return Err(Error::tool(format!(
                    "'{shown}' is a directory; give the path of a file"
                )));
            }
            Ok(_) => true,
            Err(_) => false,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|error| {
                Error::tool(format!(
                    "cannot create the directory '{}' for '{shown}': {error}",
                    workspace.relative(parent)
                ))
            })?;
        }
        fs::write(&path, content).map_err(|error| io_tool("write", &shown, &error))?;
        Ok(format!(
            "{} '{shown}' ({} bytes, {} lines)",
            if existed { "replaced" } else { "created" },
            thousands(content.len() as u64),
            thousands(content.lines().count() as u64)
        ))
    }
}

/// Replaces an exact string in a file: once (it must occur exactly once) or everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct EditTool;

impl EditTool {
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
         create a file or rewrite it whole, use write. The result says how many replacements \
         were made."
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
        let path = workspace.resolve(required_str(input, "path")?)?;
        let old = required_str(input, "old_string")?;
        let new = required_str(input, "new_string")?;
        let replace_all = optional_bool(input, "replace_all")?.unwrap_or(false);
        let shown = workspace.relative(&path);
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
        let metadata = stat(&path, &shown)?;
        if metadata.is_dir() {
            return Err(Error::tool(format!(
                "'{shown}' is a directory; give the path of a file"
            )));
        }
        let bytes = fs::read(&path).map_err(|error| io_tool("read", &shown, &error))?;
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
        let edited = if replace_all {
            content.replace(old, new)
        } else {
            content.replacen(old, new, 1)
        };
        fs::write(&path, edited).map_err(|error| io_tool("write", &shown, &error))?;
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
