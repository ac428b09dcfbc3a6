//! What the file tools share: argument access, number formatting, errors, the glob
//! matcher and the directory walker.

use std::io::{self, BufRead};
use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};
use ignore::{Walk, WalkBuilder};
use serde_json::Value;

use crate::error::Error;

/// How many bytes at the start of a file are checked for a NUL byte to call it binary.
pub(super) const BINARY_PROBE: usize = 8 * 1024;

/// A required string argument.
pub(super) fn required_str<'a>(input: &'a Value, field: &str) -> Result<&'a str, Error> {
    optional_str(input, field)?.ok_or_else(|| Error::tool(format!("`{field}` is required")))
}

/// An optional string argument (`null` counts as absent).
pub(super) fn optional_str<'a>(input: &'a Value, field: &str) -> Result<Option<&'a str>, Error> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(Error::tool(format!("`{field}` must be a string"))),
    }
}

/// An optional non-negative integer argument.
pub(super) fn optional_u64(input: &Value, field: &str) -> Result<Option<u64>, Error> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| Error::tool(format!("`{field}` must be a non-negative integer"))),
    }
}

/// An optional boolean argument.
pub(super) fn optional_bool(input: &Value, field: &str) -> Result<Option<bool>, Error> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(_) => Err(Error::tool(format!("`{field}` must be true or false"))),
    }
}

/// `12345` → `12,345`.
pub(super) fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `512 bytes`, `1.5 KiB`, `256 KiB`, `3.2 MiB`.
pub(super) fn bytes_human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() < 0.05 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// An I/O failure on `shown`, as a tool error.
pub(super) fn io_tool(action: &str, shown: &str, error: &io::Error) -> Error {
    Error::tool(format!("cannot {action} '{shown}': {error}"))
}

/// A glob where `*` stays within one path component.
pub(super) fn glob_matcher(pattern: &str) -> Result<GlobMatcher, Error> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|error| Error::tool(format!("invalid glob pattern `{pattern}`: {error}")))
}

/// Walks `directory` in path order: honours `.gitignore` (even outside a git repository),
/// `.ignore` and git exclude files, skips `.git`, includes hidden files, never follows
/// symlinks it sees.
///
/// The walk lists directories by path, so a directory swapped for a symlink between its
/// `lstat` and its listing can show it names from outside (and an ignore file from there
/// can change what is skipped). Its results are therefore only candidates: grep opens
/// every file beneath the root before reading it, and glob before listing it.
pub(super) fn walker(directory: &Path) -> Walk {
    WalkBuilder::new(directory)
        .hidden(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .sort_by_file_name(|a, b| a.cmp(b))
        .build()
}

/// Appends at most `max` characters of `kept` (the start of a line of `total_chars`
/// characters), with a marker when the line was longer than `max`.
pub(super) fn push_bounded(out: &mut String, kept: &str, total_chars: u64, max: usize) {
    let end = kept
        .char_indices()
        .nth(max)
        .map_or(kept.len(), |(end, _)| end);
    out.push_str(&kept[..end]);
    if total_chars > max as u64 {
        out.push_str(&format!(
            " [... line cut: {} characters in all]",
            thousands(total_chars)
        ));
    }
}

/// One line as [`read_line_bounded`] read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BoundedLine {
    /// Bytes of the whole line, its `\n` included; 0 at the end of the input.
    pub(super) bytes: u64,
    /// Characters of the whole line (UTF-8 leading bytes), its `\n` excluded.
    pub(super) chars: u64,
    /// Only the first bytes of the line were kept.
    pub(super) cut: bool,
}

/// Reads one line from `reader` into `line` (cleared first), keeping at most `keep` bytes
/// of it and skipping the rest, so a line of any length costs at most `keep` bytes plus
/// the reader's buffer. The `\n` is not kept.
pub(super) fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    keep: usize,
) -> io::Result<BoundedLine> {
    line.clear();
    let mut read = BoundedLine {
        bytes: 0,
        chars: 0,
        cut: false,
    };
    loop {
        let buffer = match reader.fill_buf() {
            Ok(buffer) => buffer,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if buffer.is_empty() {
            return Ok(read);
        }
        let (part, ended) = match memchr::memchr(b'\n', buffer) {
            Some(end) => (&buffer[..end], true),
            None => (buffer, false),
        };
        let room = keep.saturating_sub(line.len());
        if part.len() > room {
            read.cut = true;
        }
        line.extend_from_slice(&part[..part.len().min(room)]);
        read.chars += part.iter().filter(|byte| (**byte & 0xC0) != 0x80).count() as u64;
        let used = part.len() + usize::from(ended);
        read.bytes += used as u64;
        reader.consume(used);
        if ended {
            return Ok(read);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
        assert_eq!(bytes_human(12), "12 bytes");
        assert_eq!(bytes_human(256 * 1024), "256 KiB");
        assert_eq!(bytes_human(1536), "1.5 KiB");
    }

    #[test]
    fn bounded_lines_keep_a_prefix_and_count_the_whole_line() {
        let text = format!("short\n{}é\nlast", "x".repeat(100));
        let mut reader = io::BufReader::with_capacity(16, text.as_bytes());
        let mut line = Vec::new();
        let first = read_line_bounded(&mut reader, &mut line, 10).unwrap();
        assert_eq!(
            (line.as_slice(), first.bytes, first.chars, first.cut),
            (&b"short"[..], 6, 5, false)
        );
        let long = read_line_bounded(&mut reader, &mut line, 10).unwrap();
        assert_eq!(line, b"xxxxxxxxxx");
        assert_eq!((long.bytes, long.chars, long.cut), (103, 101, true));
        assert!(line.capacity() < 64, "the long line was not kept whole");
        let last = read_line_bounded(&mut reader, &mut line, 10).unwrap();
        assert_eq!(
            (line.as_slice(), last.bytes, last.cut),
            (&b"last"[..], 4, false)
        );
        assert_eq!(
            read_line_bounded(&mut reader, &mut line, 10).unwrap().bytes,
            0
        );
    }

    #[test]
    fn long_lines_are_cut_with_a_marker() {
        let mut out = String::new();
        push_bounded(&mut out, &"x".repeat(10), 10, 4);
        assert_eq!(out, "xxxx [... line cut: 10 characters in all]");
        out.clear();
        push_bounded(&mut out, "éé", 2, 4);
        assert_eq!(out, "éé");
    }
}
