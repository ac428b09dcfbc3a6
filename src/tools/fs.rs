//! What the file tools share: argument access, number formatting, errors, the glob
//! matcher and the directory walker.

use std::fs::{self, Metadata};
use std::io::{self};
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

/// The metadata of `path`, or a tool error naming it when it does not exist.
pub(super) fn stat(path: &Path, shown: &str) -> Result<Metadata, Error> {
    fs::metadata(path).map_err(|error| {
        if error.kind() == io::ErrorKind::NotFound {
            Error::tool(format!(
                "there is no file or directory at '{shown}' (paths are relative to the \
                 workspace root; use ls or glob to find it)"
            ))
        } else {
            io_tool("access", shown, &error)
        }
    })
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
/// symlinks (so it cannot leave the workspace).
pub(super) fn walker(directory: &Path) -> Walk {
    WalkBuilder::new(directory)
        .hidden(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .sort_by_file_name(|a, b| a.cmp(b))
        .build()
}

/// Appends `text`, cut after `max` characters with a marker saying how long it was.
pub(super) fn push_cut(out: &mut String, text: &str, max: usize) {
    match text.char_indices().nth(max) {
        None => out.push_str(text),
        Some((end, _)) => {
            out.push_str(&text[..end]);
            out.push_str(&format!(
                " [... line cut: {} characters in all]",
                thousands(text.chars().count() as u64)
            ));
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
    fn long_lines_are_cut_with_a_marker() {
        let mut out = String::new();
        push_cut(&mut out, &"x".repeat(10), 4);
        assert_eq!(out, "xxxx [... line cut: 10 characters in all]");
    }
}
