//! The `grep` tool: a regular-expression search over the workspace's files, in-process
//! (Rust `regex`, no shell), walking with the `ignore` crate.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use globset::GlobMatcher;
use regex::bytes::{Regex, RegexBuilder};
use serde_json::{Value, json};

use super::fs::{
    BINARY_PROBE, bytes_human, glob_matcher, optional_bool, optional_str, optional_u64,
    push_bounded, read_line_bounded, required_str, thousands, walker,
};
use super::{Tool, ToolContext};
use crate::error::Error;
use crate::runtime::CancelToken;

/// Searches file contents for a regular expression.
///
/// Walks like [`GlobTool`](super::GlobTool): `.gitignore`, `.ignore` and git exclude files
/// honoured even outside a git repository (`require_git(false)`), `.git` skipped, hidden
/// files included, symlinks not followed; files with a NUL byte in their first 8 KiB are
/// skipped as binary. Files are visited in path order. Results are capped (200 by default:
/// output lines in `content` mode, files otherwise).
///
/// Every file is opened beneath the workspace root (regular files only, never through a
/// symlink), so a directory swapped for a symlink during the walk cannot make it read a
/// file outside. Memory and work are bounded: each line is matched on its first
/// [`MAX_LINE_BYTES`](Self::MAX_LINE_BYTES) (the rest is skipped, not kept), and each file
/// is searched in its first [`MAX_FILE_BYTES`](Self::MAX_FILE_BYTES); the result says when
/// either cut applied.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrepTool;

impl GrepTool {
    /// Results returned when the call sets no `max_results`: 200.
    pub const DEFAULT_MAX_RESULTS: u64 = 200;
    /// The largest `max_results` a call may ask for: 2,000.
    pub const MAX_RESULTS: u64 = 2_000;
    /// Characters of a matching line shown before it is cut: 500.
    pub const MAX_LINE_CHARS: usize = 500;
    /// The most context lines around a match: 10.
    pub const MAX_CONTEXT: u64 = 10;
    /// Bytes of one line that are matched (and kept); the rest of a longer line is skipped:
    /// 64 KiB.
    pub const MAX_LINE_BYTES: usize = 64 * 1024;
    /// Bytes of one file that are searched; the rest is skipped: 64 MiB.
    pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

    /// The tool.
    pub fn new() -> GrepTool {
        GrepTool
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Content,
    FilesWithMatches,
    Count,
}

impl Tool for GrepTool {
    fn name(&self) -> &str {
        "grep"
    }

    fn description(&self) -> &str {
        "Searches file contents for a regular expression (Rust regex syntax, like ripgrep: \
         `fn\\s+main`, `TODO|FIXME`, `\\bfoo\\(`; escape literal `.(){}[]*+?|^$\\`). Each line \
         is matched on its own. Searches every text file under `path` (default: the \
         workspace root; may also be one file), skipping files ignored by .gitignore, the \
         .git directory and binary files. `glob` limits the files searched: `*.rs` matches \
         file names, a pattern with `/` (e.g. `src/**/*.ts`) matches paths relative to \
         `path`. `output_mode`: `files_with_matches` (default) lists matching files in path \
         order; `content` shows `path:line:text` for each matching line, with `context` lines \
         before and after as `path-line-text` and `--` between groups; `count` shows \
         `path:N` matching lines per file. Results are capped at `max_results` (default 200: \
         output lines in content mode, files otherwise); narrow the search if capped. Lines \
         are matched on their first 64 KiB and files searched in their first 64 MiB. Paths \
         are relative to the workspace root."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "pattern": {
                    "type": "string",
                    "description": "The regular expression to search for (Rust regex syntax)."
                },
                "path": {
                    "type": "string",
                    "description": "The directory or file to search, relative to the workspace root; defaults to the root."
                },
                "glob": {
                    "type": "string",
                    "description": "Only search files matching this glob: `*.rs` matches file names, a pattern with `/` matches paths relative to `path`."
                },
                "case_insensitive": {
                    "type": "boolean",
                    "description": "Ignore case; defaults to false."
                },
                "output_mode": {
                    "type": "string",
                    "enum": ["content", "files_with_matches", "count"],
                    "description": "`files_with_matches` (default): the matching files; `content`: the matching lines; `count`: matching lines per file."
                },
                "context": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": Self::MAX_CONTEXT,
                    "description": "Lines of context before and after each match, in content mode; defaults to 0."
                },
                "max_results": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": Self::MAX_RESULTS,
                    "description": format!(
                        "The most results: output lines in content mode, files otherwise; defaults to {}.",
                        Self::DEFAULT_MAX_RESULTS
                    )
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
        let start = workspace.open_read(optional_str(input, "path")?.unwrap_or("."))?;
        let (root, shown) = (start.path.clone(), start.shown.clone());
        let glob = optional_str(input, "glob")?
            .map(|glob| glob.trim_start_matches("./"))
            .map(|glob| Ok::<_, Error>((glob_matcher(glob)?, glob.contains('/'))))
            .transpose()?;
        let case_insensitive = optional_bool(input, "case_insensitive")?.unwrap_or(false);
        let mode = match optional_str(input, "output_mode")? {
            None | Some("files_with_matches") => Mode::FilesWithMatches,
            Some("content") => Mode::Content,
            Some("count") => Mode::Count,
            Some(other) => {
                return Err(Error::tool(format!(
                    "`output_mode` must be \"content\", \"files_with_matches\" or \"count\", \
                     not {other:?}"
                )));
            }
        };
        let context_lines = optional_u64(input, "context")?
            .unwrap_or(0)
            .min(Self::MAX_CONTEXT) as usize;
        let max_results = optional_u64(input, "max_results")?
            .unwrap_or(Self::DEFAULT_MAX_RESULTS)
            .clamp(1, Self::MAX_RESULTS) as usize;
        let regex = RegexBuilder::new(pattern)
            .case_insensitive(case_insensitive)
            .build()
            .map_err(|error| Error::tool(format!("invalid regex `{pattern}`: {error}")))?;

        let mut search = Search {
            token: context.token(),
            regex: &regex,
            mode,
            context: if mode == Mode::Content {
                context_lines
            } else {
                0
            },
            max_results,
            out: String::new(),
            results: 0,
            files: 0,
            total_matches: 0,
            groups: 0,
            capped: false,
            unreadable: 0,
            long_lines: 0,
            long_files: 0,
        };
        if start.metadata.is_file() {
            search.file(start.file, &shown)?;
        } else {
            drop(start);
            for (index, entry) in walker(&root).enumerate() {
                if index.is_multiple_of(64) {
                    context.token().check()?;
                }
                let Ok(entry) = entry else {
                    search.unreadable += 1;
                    continue;
                };
                if !entry.file_type().is_some_and(|kind| kind.is_file()) {
                    continue;
                }
                if let Some((matcher, by_path)) = &glob
                    && !glob_accepts(matcher, *by_path, &root, entry.path())
                {
                    continue;
                }
                // Opened beneath the root: a walk led astray by a swapped directory finds
                // only a refusal here.
                match workspace.open_walked(entry.path()) {
                    Ok(Some(file)) => search.file(file, &workspace.relative(entry.path()))?,
                    Ok(None) => {}
                    Err(_) => search.unreadable += 1,
                }
                if search.capped {
                    break;
                }
            }
        }
        Ok(search.finish(pattern, &shown))
    }
}

fn glob_accepts(matcher: &GlobMatcher, by_path: bool, root: &Path, path: &Path) -> bool {
    if by_path {
        path.strip_prefix(root)
            .is_ok_and(|relative| matcher.is_match(relative))
    } else {
        path.file_name().is_some_and(|name| matcher.is_match(name))
    }
}

/// One search in progress and what it has found.
struct Search<'a> {
    token: &'a CancelToken,
    regex: &'a Regex,
    mode: Mode,
    context: usize,
    max_results: usize,
    out: String,
    /// Output lines (content mode) or files listed (other modes).
    results: usize,
    /// Files with at least one match.
    files: usize,
    /// Matching lines.
    total_matches: u64,
    /// Groups of content lines printed, to put `--` between them.
    groups: usize,
    capped: bool,
    unreadable: usize,
    /// Lines matched only on their first `MAX_LINE_BYTES`.
    long_lines: u64,
    /// Files searched only in their first `MAX_FILE_BYTES`.
    long_files: usize,
}

impl Search<'_> {
    /// Searches one file, open for reading; unreadable and binary files are skipped.
    fn file(&mut self, file: File, shown: &str) -> Result<(), Error> {
        let mut reader =
            BufReader::with_capacity(64 * 1024, file.take(GrepTool::MAX_FILE_BYTES + 1));
        match reader.fill_buf() {
            Ok(start) if start[..start.len().min(BINARY_PROBE)].contains(&0) => return Ok(()),
            Ok(_) => {}
            Err(_) => {
                self.unreadable += 1;
                return Ok(());
            }
        }
        let mut before: VecDeque<(u64, Vec<u8>, u64)> = VecDeque::with_capacity(self.context);
        let mut after_left = 0;
        let mut last_printed = 0u64;
        let mut matches = 0u64;
        let mut number = 0u64;
        let mut searched = 0u64;
        let mut line = Vec::new();
        loop {
            let read = match read_line_bounded(&mut reader, &mut line, GrepTool::MAX_LINE_BYTES) {
                Ok(read) if read.bytes == 0 => break,
                Ok(read) => read,
                Err(_) => {
                    self.unreadable += 1;
                    break;
                }
            };
            // The reader ends one byte past the cap, so a file that reaches it ends here
            // with its last line cut short (that line still matched on its start).
            searched += read.bytes;
            if read.cut {
                self.long_lines += 1;
            }
            let chars = read.chars;
            number += 1;
            if number.is_multiple_of(8_192) {
                self.token.check()?;
            }
            let text = trim_newline(&line);
            if !self.regex.is_match(text) {
                if after_left > 0 {
                    after_left -= 1;
                    self.print(shown, number, '-', text, chars);
                    last_printed = number;
                } else if self.context > 0 {
                    if before.len() == self.context {
                        before.pop_front();
                    }
                    before.push_back((number, text.to_vec(), chars));
                }
                if self.capped {
                    break;
                }
                continue;
            }
            matches += 1;
            self.total_matches += 1;
            match self.mode {
                Mode::FilesWithMatches => break,
                Mode::Count => continue,
                Mode::Content => {}
            }
            let first = before.front().map_or(number, |(first, _, _)| *first);
            if self.context > 0
                && self.groups > 0
                && (last_printed == 0 || first > last_printed + 1)
            {
                self.out.push_str("--\n");
            }
            if last_printed == 0 || first > last_printed + 1 {
                self.groups += 1;
            }
            for (context_number, context_text, context_chars) in before.drain(..) {
                self.print(shown, context_number, '-', &context_text, context_chars);
            }
            self.print(shown, number, ':', text, chars);
            last_printed = number;
            after_left = self.context;
            if self.capped {
                break;
            }
        }
        if searched > GrepTool::MAX_FILE_BYTES {
            self.long_files += 1;
        }
        if matches > 0 {
            self.files += 1;
            match self.mode {
                Mode::FilesWithMatches => self.list(shown),
                Mode::Count => self.list(&format!("{shown}:{matches}")),
                Mode::Content => {}
            }
        }
        Ok(())
    }

    /// One content line: `path:12:text` for a match, `path-12-text` for context (`text` is
    /// the kept start of a line of `chars` characters).
    fn print(&mut self, shown: &str, number: u64, separator: char, text: &[u8], chars: u64) {
        if self.capped {
            return;
        }
        self.out
            .push_str(&format!("{shown}{separator}{number}{separator}"));
        push_bounded(
            &mut self.out,
            &String::from_utf8_lossy(text),
            chars,
            GrepTool::MAX_LINE_CHARS,
        );
        self.out.push('\n');
        self.results += 1;
        if self.results >= self.max_results {
            self.capped = true;
        }
    }

    /// One line of the files or count listing.
    fn list(&mut self, line: &str) {
        self.out.push_str(line);
        self.out.push('\n');
        self.results += 1;
        if self.results >= self.max_results {
            self.capped = true;
        }
    }

    /// Notes on what was searched only in part.
    fn push_cuts(&mut self) {
        if self.long_lines > 0 {
            self.out.push_str(&format!(
                "[{} lines longer than {} were matched only on their first {}]\n",
                thousands(self.long_lines),
                bytes_human(GrepTool::MAX_LINE_BYTES as u64),
                bytes_human(GrepTool::MAX_LINE_BYTES as u64)
            ));
        }
        if self.long_files > 0 {
            self.out.push_str(&format!(
                "[{} files larger than {} were searched only in their first {}]\n",
                thousands(self.long_files as u64),
                bytes_human(GrepTool::MAX_FILE_BYTES),
                bytes_human(GrepTool::MAX_FILE_BYTES)
            ));
        }
    }

    fn finish(mut self, pattern: &str, shown: &str) -> String {
        if self.files == 0 && self.out.is_empty() {
            let mut text = format!("no matches for `{pattern}` under '{shown}'");
            if self.unreadable > 0 {
                text.push_str(&format!(
                    " ({} files or directories could not be read)",
                    thousands(self.unreadable as u64)
                ));
            }
            if self.long_lines > 0 || self.long_files > 0 {
                text.push('\n');
                self.out = text;
                self.push_cuts();
                return self.out;
            }
            return text;
        }
        if self.capped {
            self.out.push_str(&format!(
                "[results capped at {}; there may be more: narrow the pattern, path or glob, or \
                 raise max_results]\n",
                thousands(self.max_results as u64)
            ));
        } else if self.mode == Mode::Count {
            self.out.push_str(&format!(
                "{} matching lines in {} files\n",
                thousands(self.total_matches),
                thousands(self.files as u64)
            ));
        }
        if self.unreadable > 0 {
            self.out.push_str(&format!(
                "[{} files or directories could not be read]\n",
                thousands(self.unreadable as u64)
            ));
        }
        self.push_cuts();
        self.out
    }
}

/// The line without its `\n` or `\r\n`.
fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}
