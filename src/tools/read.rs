//! `read`: text files with line numbers, a range at a time.
//!
//! Files are opened beneath the workspace root by [`Workspace`](super::Workspace) (regular
//! files only), and every path in a result is relative to the workspace root.

use std::io::{self, BufRead, BufReader, Read};

use serde_json::{Value, json};

use super::fs::{
    BINARY_PROBE, bytes_human, io_tool, optional_u64, push_bounded, read_line_bounded,
    required_str, thousands,
};
use super::{Tool, ToolContext};
use crate::error::Error;
use crate::runtime::CancelToken;

/// Reads a text file with line numbers (`cat -n` style), a range of lines at a time.
///
/// Defaults: 2,000 lines from line 1 per call; lines longer than 2,000 characters are cut
/// with a marker. A file larger than the size cap (256 KiB, see
/// [`with_size_cap`](Self::with_size_cap)) is streamed: only the requested lines are
/// decoded and the result says so, and a call's output stops at the same cap. Memory stays
/// bounded whatever the file: at most the size cap for a small file, and for a large one a
/// 64 KiB buffer plus the start of one line (2,000 characters), however long the line.
/// Binary files (a NUL byte in the first 8 KiB, or invalid UTF-8 in what is shown) are
/// refused; FIFOs, sockets and devices are refused without blocking.
#[derive(Debug, Clone)]
pub struct ReadTool {
    size_cap: u64,
    description: String,
}

impl ReadTool {
    /// Lines returned when the call sets no `limit`: 2,000.
    pub const DEFAULT_LIMIT: u64 = 2_000;
    /// Characters of one line shown before it is cut: 2,000.
    pub const MAX_LINE_CHARS: usize = 2_000;
    /// Files larger than this are read only in the requested range: 256 KiB.
    pub const DEFAULT_SIZE_CAP: u64 = 256 * 1024;

    /// The tool with the default size cap (256 KiB).
    pub fn new() -> ReadTool {
        ReadTool::with_size_cap(Self::DEFAULT_SIZE_CAP)
    }

    /// The tool with another size cap in bytes (at least 1 KiB): larger files are read only
    /// in the requested range, and one call returns about this much text at most.
    pub fn with_size_cap(bytes: u64) -> ReadTool {
        let size_cap = bytes.max(1024);
        let description = format!(
            "Reads a text file and returns its lines numbered like `cat -n` (the number, a tab, \
             then the line exactly as in the file). Use it to look at a file before editing \
             it; the numbers are not part of the file. Returns up to {limit} lines from \
             `offset` (1-based, default 1); set `offset` and `limit` to read a long file in \
             parts; the result says how many lines are left. Lines over {line} characters are \
             cut with a marker. Files over {cap} are read only in the requested range, and one \
             call returns at most about {cap}. Binary files are refused; for a directory use \
             ls. `path` is relative to the workspace root.",
            limit = thousands(Self::DEFAULT_LIMIT),
            line = thousands(Self::MAX_LINE_CHARS as u64),
            cap = bytes_human(size_cap),
        );
        ReadTool {
            size_cap,
            description,
        }
    }
}

impl Default for ReadTool {
    fn default() -> ReadTool {
        ReadTool::new()
    }
}

impl Tool for ReadTool {
    fn name(&self) -> &str {
        "read"
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "The file to read, relative to the workspace root."
                },
                "offset": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "The first line to return (1-based); defaults to 1."
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "description": format!(
                        "How many lines to return; defaults to {}.",
                        Self::DEFAULT_LIMIT
                    )
                }
            },
            "required": ["path"],
            "additionalProperties": false
        })
    }

    fn read_only(&self) -> bool {
        true
    }

    fn call(&self, input: &Value, context: &ToolContext<'_>) -> Result<String, Error> {
        let workspace = context.workspace();
        let path = required_str(input, "path")?;
        let offset = optional_u64(input, "offset")?.unwrap_or(1).max(1);
        let limit = optional_u64(input, "limit")?
            .unwrap_or(Self::DEFAULT_LIMIT)
            .max(1);
        let opened = workspace.open_read(path)?;
        let shown = opened.shown;
        if opened.metadata.is_dir() {
            return Err(Error::tool(format!(
                "'{shown}' is a directory; use ls to list it or glob to find files in it"
            )));
        }
        let mut file = opened.file;
        let size = opened.metadata.len();
        let large = size > self.size_cap;
        let mut numbered = if large {
            let mut probe = Vec::with_capacity(BINARY_PROBE);
            (&mut file)
                .take(BINARY_PROBE as u64)
                .read_to_end(&mut probe)
                .map_err(|error| io_tool("read", &shown, &error))?;
            if probe.contains(&0) {
                return Err(binary(&shown, "it has a NUL byte in its first 8 KiB"));
            }
            let reader = BufReader::with_capacity(64 * 1024, io::Cursor::new(probe).chain(file));
            number_lines(
                reader,
                offset,
                limit,
                self.size_cap,
                context.token(),
                &shown,
            )?
        } else {
            // At most the cap, even if the file grew since it was measured.
            let mut bytes = Vec::with_capacity(size as usize);
            file.take(self.size_cap)
                .read_to_end(&mut bytes)
                .map_err(|error| io_tool("read", &shown, &error))?;
            if bytes[..bytes.len().min(BINARY_PROBE)].contains(&0) {
                return Err(binary(&shown, "it has a NUL byte in its first 8 KiB"));
            }
            if let Err(error) = std::str::from_utf8(&bytes) {
                return Err(binary(
                    &shown,
                    &format!("it is not valid UTF-8 at byte {}", error.valid_up_to()),
                ));
            }
            number_lines(&bytes[..], offset, limit, u64::MAX, context.token(), &shown)?
        };
        if numbered.total == 0 {
            return Ok(format!("'{shown}' is empty (0 lines)."));
        }
        if offset > numbered.total {
            return Err(Error::tool(format!(
                "'{shown}' has {} lines; offset {offset} is past its end",
                thousands(numbered.total)
            )));
        }
        let next = offset + numbered.shown;
        if numbered.stopped_early {
            numbered.text.push_str(&format!(
                "[... output stopped at about {}; {} more lines; use offset={next} to read on]\n",
                bytes_human(self.size_cap),
                thousands(numbered.total + 1 - next)
            ));
        } else if next <= numbered.total {
            numbered.text.push_str(&format!(
                "[... {} more lines; use offset={next} to read on]\n",
                thousands(numbered.total + 1 - next)
            ));
        }
        if large {
            numbered.text.push_str(&format!(
                "[the file is {} ({} lines), over the {} cap: only the requested lines were \
                 read; use offset and limit to read other parts]\n",
                bytes_human(size),
                thousands(numbered.total),
                bytes_human(self.size_cap)
            ));
        }
        Ok(numbered.text)
    }
}

struct Numbered {
    text: String,
    /// Lines in `text`.
    shown: u64,
    /// Lines in the file.
    total: u64,
    /// The output reached its byte cap before `limit` lines.
    stopped_early: bool,
}

/// Numbers lines `offset..offset + limit` of `reader` and counts all its lines.
fn number_lines(
    mut reader: impl BufRead,
    offset: u64,
    limit: u64,
    output_cap: u64,
    token: &CancelToken,
    shown_path: &str,
) -> Result<Numbered, Error> {
    let mut numbered = Numbered {
        text: String::new(),
        shown: 0,
        total: 0,
        stopped_early: false,
    };
    // A line is kept only as far as it can be shown: at most 4 bytes a character.
    let keep = ReadTool::MAX_LINE_CHARS * 4;
    let mut line = Vec::with_capacity(keep.min(4096));
    loop {
        if numbered.total.is_multiple_of(16_384) {
            token.check()?;
        }
        let in_range = numbered.total + 1 >= offset
            && numbered.total + 1 < offset.saturating_add(limit)
            && !numbered.stopped_early;
        if !in_range && numbered.total + 1 >= offset {
            // Past the range: only count what is left, without keeping lines.
            numbered.total += count_lines(&mut reader, token, shown_path)?;
            return Ok(numbered);
        }
        let read = read_line_bounded(&mut reader, &mut line, if in_range { keep } else { 0 })
            .map_err(|error| io_tool("read", shown_path, &error))?;
        if read.bytes == 0 {
            return Ok(numbered);
        }
        numbered.total += 1;
        if !in_range {
            continue;
        }
        let bytes = &line[..];
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            // A cut may end inside a character: show what precedes it.
            Err(error) if read.cut && error.error_len().is_none() => {
                std::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or_default()
            }
            Err(_) => {
                return Err(binary(
                    shown_path,
                    &format!("line {} is not valid UTF-8", numbered.total),
                ));
            }
        };
        numbered.text.push_str(&format!("{:>6}\t", numbered.total));
        push_bounded(
            &mut numbered.text,
            text,
            read.chars,
            ReadTool::MAX_LINE_CHARS,
        );
        numbered.text.push('\n');
        numbered.shown += 1;
        if numbered.text.len() as u64 >= output_cap {
            numbered.stopped_early = true;
        }
    }
}

/// Lines left in `reader` (a last line without a newline counts).
fn count_lines(
    reader: &mut impl BufRead,
    token: &CancelToken,
    shown_path: &str,
) -> Result<u64, Error> {
    let mut lines = 0;
    let mut ends_open = false;
    let mut chunks = 0u64;
    loop {
        let buffer = reader
            .fill_buf()
            .map_err(|error| io_tool("read", shown_path, &error))?;
        if buffer.is_empty() {
            return Ok(lines + u64::from(ends_open));
        }
        lines += buffer.iter().filter(|byte| **byte == b'\n').count() as u64;
        ends_open = buffer.last() != Some(&b'\n');
        let length = buffer.len();
        reader.consume(length);
        chunks += 1;
        if chunks.is_multiple_of(256) {
            token.check()?;
        }
    }
}

fn binary(shown: &str, why: &str) -> Error {
    Error::tool(format!(
        "'{shown}' looks binary ({why}); read only text files"
    ))
}
